//! Report events as ingest accepts them (spec §2), and their validation.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, ProviderId, ReportId};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Position in [`Self::ALL`]: a dense index for lookup tables.
            pub fn index(self) -> usize {
                self as usize
            }

            /// The accepted names, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("must be one of {}, got {other:?}", Self::expected())),
                }
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// Imaging modality of a study.
    Modality { Xray = "XRAY", Ct = "CT", Mri = "MRI", Usg = "USG", Mammo = "MAMMO", PetCt = "PET_CT", Nm = "NM" }
);
named_enum!(
    /// How urgently the read was requested.
    Priority { Routine = "ROUTINE", Urgent = "URGENT", Stat = "STAT" }
);
named_enum!(
    /// A cancelled report earns and costs nothing and is not counted in tiers.
    ReportStatus { Final = "FINAL", Cancelled = "CANCELLED" }
);

pub const MAX_BODY_REGIONS: u8 = 10;
/// How far in the future `finalized_at` may be (clock skew between systems).
pub const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);

/// A validated report event.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReportEvent {
    pub report_id: ReportId,
    pub revision: u32,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub modality: Modality,
    pub body_regions: u8,
    pub priority: Priority,
    pub finalized_at: DateTime<Utc>,
    pub status: ReportStatus,
}

impl ReportEvent {
    pub fn is_billable(&self) -> bool {
        self.status == ReportStatus::Final
    }
}

/// A report event as received, before validation. Enumerations are given by name.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RawReport {
    pub report_id: String,
    pub revision: u64,
    pub client_id: String,
    pub provider_id: String,
    pub modality: String,
    pub body_regions: u64,
    pub priority: String,
    pub finalized_at: String,
    pub status: String,
}

/// One problem with one field.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in an input, so the sender can fix them all at once.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationErrors {
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|e| e.field.as_str())
    }
}

/// Collects field errors while a value is checked.
#[derive(Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    pub(crate) fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.0.push(FieldError { field: field.to_owned(), message })).ok()
    }

    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, ValidationErrors> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(ValidationErrors(self.0)),
        }
    }
}

impl RawReport {
    /// Checks every field (spec §2) against the clock `now`; lists every problem.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<ReportEvent, ValidationErrors> {
        let mut p = Problems::default();
        let report_id = p.check("report_id", ReportId::parse(&self.report_id));
        let revision = p.check("revision", parse_revision(self.revision));
        let client_id = p.check("client_id", ClientId::parse(&self.client_id));
        let provider_id = p.check("provider_id", ProviderId::parse(&self.provider_id));
        let modality = p.check("modality", self.modality.parse());
        let body_regions = p.check("body_regions", parse_body_regions(self.body_regions));
        let priority = p.check("priority", self.priority.parse());
        let finalized_at = p.check("finalized_at", parse_finalized_at(&self.finalized_at, now));
        let status = p.check("status", self.status.parse());
        let event = (|| {
            Some(ReportEvent {
                report_id: report_id?,
                revision: revision?,
                client_id: client_id?,
                provider_id: provider_id?,
                modality: modality?,
                body_regions: body_regions?,
                priority: priority?,
                finalized_at: finalized_at?,
                status: status?,
            })
        })();
        p.finish(event)
    }
}

impl From<&ReportEvent> for RawReport {
    fn from(e: &ReportEvent) -> Self {
        Self {
            report_id: e.report_id.to_string(),
            revision: e.revision.into(),
            client_id: e.client_id.to_string(),
            provider_id: e.provider_id.to_string(),
            modality: e.modality.to_string(),
            body_regions: e.body_regions.into(),
            priority: e.priority.to_string(),
            finalized_at: e.finalized_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            status: e.status.to_string(),
        }
    }
}

fn parse_revision(revision: u64) -> Result<u32, String> {
    match u32::try_from(revision) {
        Ok(r) if r >= 1 => Ok(r),
        Ok(_) => Err("must be at least 1".to_owned()),
        Err(_) => Err(format!("must be at most {}, got {revision}", u32::MAX)),
    }
}

fn parse_body_regions(n: u64) -> Result<u8, String> {
    match u8::try_from(n) {
        Ok(r) if (1..=MAX_BODY_REGIONS).contains(&r) => Ok(r),
        _ => Err(format!("must be between 1 and {MAX_BODY_REGIONS}, got {n}")),
    }
}

fn parse_finalized_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("must be an RFC 3339 instant such as 2026-01-31T20:00:00Z, got {s:?} ({e})"))?
        .with_timezone(&Utc);
    if at > now + MAX_FUTURE_SKEW {
        return Err(format!("{s} is more than 5 minutes in the future"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-02-10T12:00:00Z".parse().unwrap()
    }

    fn raw() -> RawReport {
        RawReport {
            report_id: "RPT-1".into(),
            revision: 1,
            client_id: "HOSP-001".into(),
            provider_id: "RAD-007".into(),
            modality: "MRI".into(),
            body_regions: 2,
            priority: "STAT".into(),
            finalized_at: "2026-01-31T20:00:00Z".into(),
            status: "FINAL".into(),
        }
    }

    #[test]
    fn a_good_report_validates() {
        let e = raw().validate(now()).unwrap();
        assert_eq!(e.modality, Modality::Mri);
        assert_eq!(e.priority, Priority::Stat);
        assert_eq!(e.body_regions, 2);
        assert!(e.is_billable());
        assert_eq!(RawReport::from(&e), raw());
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = RawReport {
            report_id: "bad id!".into(),
            revision: 0,
            client_id: "".into(),
            provider_id: "x".repeat(65),
            modality: "PET".into(),
            body_regions: 11,
            priority: "LOW".into(),
            finalized_at: "2026-01-31 20:00".into(),
            status: "DRAFT".into(),
        };
        let err = bad.validate(now()).unwrap_err();
        let fields: Vec<&str> = err.fields().collect();
        assert_eq!(
            fields,
            [
                "report_id",
                "revision",
                "client_id",
                "provider_id",
                "modality",
                "body_regions",
                "priority",
                "finalized_at",
                "status"
            ]
        );
        assert!(err.to_string().contains("modality: must be one of XRAY, CT, MRI, USG, MAMMO, PET_CT, NM"));
    }

    #[test]
    fn limits_are_inclusive() {
        let mut r = raw();
        r.body_regions = 10;
        assert!(r.validate(now()).is_ok());
        r.body_regions = 0;
        assert!(r.validate(now()).is_err());
        r = raw();
        r.revision = u64::from(u32::MAX) + 1;
        assert!(r.validate(now()).unwrap_err().to_string().starts_with("revision: must be at most"));
    }

    #[test]
    fn the_future_is_limited_to_five_minutes() {
        let mut r = raw();
        r.finalized_at = "2026-02-10T12:05:00Z".into();
        assert!(r.validate(now()).is_ok());
        r.finalized_at = "2026-02-10T12:05:01Z".into();
        assert!(r.validate(now()).unwrap_err().to_string().contains("in the future"));
        r.finalized_at = "2026-02-10T17:30:00+05:30".into();
        assert_eq!(r.validate(now()).unwrap().finalized_at, now());
    }
}
