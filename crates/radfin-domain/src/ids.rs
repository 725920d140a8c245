//! Identifiers of reports and parties: 1–64 characters of `[A-Za-z0-9._:-]`. Cheap to clone.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const MAX_ID_LEN: usize = 64;

/// Why a string is not an identifier.
pub fn id_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if s.len() > MAX_ID_LEN {
        return Some(format!("must be at most {MAX_ID_LEN} characters, got {}", s.len()));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    s.chars()
        .find(|&c| !allowed(c))
        .map(|c| format!("may contain only A-Z, a-z, 0-9, '.', '_', ':' and '-', found {c:?}"))
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                match id_problem(s) {
                    None => Ok(Self(Arc::from(s))),
                    Some(problem) => Err(problem),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(|p| serde::de::Error::custom(format!("{:?} {p}", s)))
            }
        }
    };
}

identifier!(
    /// The source system's id of a report; with the revision, the idempotency key.
    ReportId
);
identifier!(
    /// A hospital.
    ClientId
);
identifier!(
    /// A radiologist.
    ProviderId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(ReportId::parse("RPT-2026.01:0001_a").is_ok());
        assert_eq!(ReportId::parse("").unwrap_err(), "must not be empty");
        assert!(ReportId::parse(&"x".repeat(64)).is_ok());
        assert!(ReportId::parse(&"x".repeat(65)).unwrap_err().contains("at most 64"));
        assert!(ClientId::parse("HOSP 1").unwrap_err().contains("' '"));
        assert!(ProviderId::parse("RAD/7").is_err());
    }
}
