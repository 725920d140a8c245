//! Parties (spec §3): radiologists (providers) and hospitals (clients), versioned by the date
//! from which each profile is in force.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, ProviderId};
use crate::money::Currency;
use crate::report::named_enum;

named_enum!(
    /// A radiologist's grade.
    Grade { Junior = "JUNIOR", Senior = "SENIOR", Consultant = "CONSULTANT" }
);

/// A radiologist's profile from `effective_from` on.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProviderProfile {
    pub provider_id: ProviderId,
    pub name: String,
    pub grade: Grade,
    pub practicing_since: NaiveDate,
    /// Permanent Account Number; without one, TDS is withheld at the higher rate.
    pub pan: Option<String>,
    pub effective_from: NaiveDate,
}

impl ProviderProfile {
    /// Whole years of practice on `date` (0 before the first anniversary, never negative).
    pub fn years_of_practice(&self, date: NaiveDate) -> u32 {
        let since = self.practicing_since;
        let mut years = date.year() - since.year();
        if (date.month(), date.day()) < (since.month(), since.day()) {
            years -= 1;
        }
        u32::try_from(years).unwrap_or(0)
    }
}

/// A hospital's profile from `effective_from` on.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ClientProfile {
    pub client_id: ClientId,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// GST state code of a domestic client (`27` is Maharashtra).
    pub state_code: Option<String>,
    pub gstin: Option<String>,
    pub currency: Currency,
    pub effective_from: NaiveDate,
}

/// Something that is in force from a date on.
pub trait EffectiveDated {
    fn effective_from(&self) -> NaiveDate;
}

impl EffectiveDated for ProviderProfile {
    fn effective_from(&self) -> NaiveDate {
        self.effective_from
    }
}

impl EffectiveDated for ClientProfile {
    fn effective_from(&self) -> NaiveDate {
        self.effective_from
    }
}

/// The versions of one thing, ordered by `effective_from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions<T> {
    versions: Vec<T>,
}

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Self { versions: Vec::new() }
    }
}

impl<T: EffectiveDated> Versions<T> {
    /// Adds a version; a later one with the same `effective_from` replaces the earlier in force.
    pub fn push(&mut self, version: T) {
        let at = self.versions.partition_point(|v| v.effective_from() <= version.effective_from());
        self.versions.insert(at, version);
    }

    /// The version in force on `date`: the latest `effective_from` on or before it.
    pub fn in_force(&self, date: NaiveDate) -> Option<&T> {
        let n = self.versions.partition_point(|v| v.effective_from() <= date);
        n.checked_sub(1).map(|i| &self.versions[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.versions.iter()
    }
}

impl<T: EffectiveDated> FromIterator<T> for Versions<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = Self::default();
        iter.into_iter().for_each(|x| v.push(x));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn provider(grade: Grade, from: &str) -> ProviderProfile {
        ProviderProfile {
            provider_id: ProviderId::parse("RAD-1").unwrap(),
            name: "Dr A".into(),
            grade,
            practicing_since: d("2016-03-15"),
            pan: None,
            effective_from: d(from),
        }
    }

    #[test]
    fn whole_years_of_practice() {
        let p = provider(Grade::Senior, "2020-01-01");
        assert_eq!(p.years_of_practice(d("2026-03-14")), 9);
        assert_eq!(p.years_of_practice(d("2026-03-15")), 10);
        assert_eq!(p.years_of_practice(d("2015-01-01")), 0);
    }

    #[test]
    fn the_profile_in_force_on_the_date_is_used() {
        let v: Versions<_> =
            [provider(Grade::Consultant, "2026-02-01"), provider(Grade::Junior, "2025-01-01")].into_iter().collect();
        assert!(v.in_force(d("2024-12-31")).is_none());
        assert_eq!(v.in_force(d("2026-01-31")).unwrap().grade, Grade::Junior);
        assert_eq!(v.in_force(d("2026-02-01")).unwrap().grade, Grade::Consultant);
        let mut v = v;
        v.push(provider(Grade::Senior, "2026-02-01"));
        assert_eq!(v.in_force(d("2026-02-02")).unwrap().grade, Grade::Senior);
    }
}
