//! A document's other party from pricing's profiles: the version in force on the document's
//! issue date. Shared by every place that renders a document (the CLI, the dashboard).

use radfin_proto::pricing::v1::{Client, Provider};

use crate::Party;

/// The version in force on `date` (`YYYY-MM-DD`): the latest effective on or before it, else
/// the earliest (a document issued before the profile's first version still names the party).
fn in_force<'a, T>(versions: &'a [T], date: &str, effective_from: impl Fn(&T) -> &str) -> Option<&'a T> {
    versions
        .iter()
        .filter(|v| effective_from(v) <= date)
        .max_by(|a, b| effective_from(a).cmp(effective_from(b)))
        .or_else(|| versions.iter().min_by(|a, b| effective_from(a).cmp(effective_from(b))))
}

fn present(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// An invoice's or credit note's recipient: the client's name, country, state and GSTIN from
/// its profile versions (`GetClient`); empty when there are none.
pub fn client_party(versions: &[Client], date: &str) -> Party {
    in_force(versions, date, |c| c.effective_from.as_str()).map_or_else(Party::default, |c| Party {
        name: c.name.clone(),
        country: c.country.clone(),
        gstin: present(&c.gstin),
        state_code: present(&c.state_code),
        ..Party::default()
    })
}

/// A payout statement's payee: the provider's name and PAN from its profile versions
/// (`GetProvider`); empty when there are none.
pub fn provider_party(versions: &[Provider], date: &str) -> Party {
    in_force(versions, date, |p| p.effective_from.as_str()).map_or_else(Party::default, |p| Party {
        name: p.name.clone(),
        pan: present(&p.pan),
        ..Party::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, from: &str) -> Client {
        Client { client_id: "C".into(), name: name.into(), effective_from: from.into(), ..Client::default() }
    }

    #[test]
    fn the_version_in_force_on_the_issue_date_names_the_party() {
        let versions = [client("New", "2026-03-01"), client("Old", "2025-01-01")];
        assert_eq!(client_party(&versions, "2026-02-28").name, "Old");
        assert_eq!(client_party(&versions, "2026-03-01").name, "New");
        assert_eq!(client_party(&versions, "2024-12-31").name, "Old", "before every version: the earliest");
        assert_eq!(client_party(&[], "2026-03-01"), Party::default());
    }

    #[test]
    fn an_empty_pan_or_gstin_is_absent() {
        let p = Provider {
            name: "Dr A".into(),
            pan: "  ".into(),
            effective_from: "2025-01-01".into(),
            ..Provider::default()
        };
        assert_eq!(provider_party(&[p], "2026-01-01").pan, None);
        let c = Client { gstin: String::new(), ..client("X", "2025-01-01") };
        assert_eq!(client_party(&[c], "2026-01-01").gstin, None);
    }
}
