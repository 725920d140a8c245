//! Conversions between the generated messages and the domain types, done once, at the edge.
//!
//! - A report event from the wire becomes a [`RawReport`] and is validated by the domain
//!   ([`RawReport::validate`], the one place that knows the rules of spec §2). Enumerations are
//!   handed over by their domain names (`MODALITY_CT` → `"CT"`); `UNSPECIFIED` or a number this
//!   build does not know is handed over as text no domain name equals, so the domain reports the
//!   field.
//! - A priced report goes out with the period and run it was priced in and its INR value, and
//!   comes back as a [`PricedInRun`]; money travels as decimal strings and is parsed exactly
//!   ([`Decimal::from_str_exact`]), and every failure names its field ([`ConvertError`]).

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use radfin_domain::fx::{AppliedRate, InrAmount};
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_domain::report::ValidationErrors;
use radfin_domain::{ClientId, Currency, Money, Period, PricedReport, ProviderId, RawReport, ReportEvent, ReportId};
use rust_decimal::Decimal;

use crate::common::v1 as common;
use crate::ingest::v1 as ingest;
use crate::pricing::v1 as pricing;

/// A message that cannot become a domain value, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A required message field is absent.
    #[error("{field}: is required")]
    Missing { field: &'static str },
    /// A field is present but its value is not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

impl ConvertError {
    /// The field at fault, as a path of protobuf field names (`revenue.currency`).
    pub fn field(&self) -> &'static str {
        match self {
            ConvertError::Missing { field } | ConvertError::Invalid { field, .. } => field,
        }
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ConvertError::Invalid { field, message: message.into() }
    }
}

/// A rejected report event as a gRPC status: `INVALID_ARGUMENT`, naming every bad field.
pub fn to_status(errors: &ValidationErrors) -> tonic::Status {
    tonic::Status::invalid_argument(errors.to_string())
}

impl From<ConvertError> for tonic::Status {
    fn from(err: ConvertError) -> Self {
        tonic::Status::invalid_argument(err.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Enumerations

/// A domain enumeration with a twin of the same name in `radfin.common.v1`.
trait Mirrored: FromStr<Err = String> {
    /// The domain name of a protobuf value (`MODALITY_PET_CT` → `"PET_CT"`). For a value with no
    /// domain twin (`UNSPECIFIED`, or a number this build does not know) it is text that names
    /// the value and that no domain name equals, so parsing it fails with the domain's message.
    fn domain_name(value: i32) -> Cow<'static, str>;

    fn from_proto(field: &'static str, value: i32) -> Result<Self, ConvertError> {
        Self::domain_name(value).parse().map_err(|message: String| ConvertError::invalid(field, message))
    }
}

/// Pairs each domain enumeration with its protobuf twin, variant by variant. Both matches are
/// exhaustive: a variant added on either side without the other does not compile.
macro_rules! mirror {
    ($($name:ident { $($variant:ident),+ $(,)? })+) => {$(
        impl From<radfin_domain::$name> for common::$name {
            fn from(value: radfin_domain::$name) -> Self {
                match value {
                    $(radfin_domain::$name::$variant => common::$name::$variant,)+
                }
            }
        }

        impl Mirrored for radfin_domain::$name {
            fn domain_name(value: i32) -> Cow<'static, str> {
                match common::$name::try_from(value) {
                    $(Ok(common::$name::$variant) => {
                        Cow::Borrowed(radfin_domain::$name::$variant.as_str())
                    })+
                    Ok(unspecified @ common::$name::Unspecified) => {
                        Cow::Borrowed(unspecified.as_str_name())
                    }
                    Err(_) => Cow::Owned(format!("unknown value {value}")),
                }
            }
        }
    )+};
}

mirror! {
    Modality { Xray, Ct, Mri, Usg, Mammo, PetCt, Nm }
    Priority { Routine, Urgent, Stat }
    ReportStatus { Final, Cancelled }
    Grade { Junior, Senior, Consultant }
}

// ---------------------------------------------------------------------------------------------
// Text forms shared by both directions

/// An instant as RFC 3339 in UTC (`2026-01-31T20:00:00Z`), with fractional seconds only when
/// it has them.
fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn instant_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An amount with at least the currency's minor digits (`0` INR is `"0.00"`, `4500` JPY is
/// `"4500"`). Only ever adds zeros: an amount with more digits keeps them, so the text is always
/// the exact amount.
pub fn amount_text(amount: Decimal, currency: Currency) -> String {
    let mut amount = amount;
    if amount.scale() < currency.minor_units() {
        amount.rescale(currency.minor_units());
    }
    amount.to_string()
}

fn parse_amount(field: &'static str, s: &str) -> Result<Decimal, ConvertError> {
    Decimal::from_str_exact(s).map_err(|e| {
        ConvertError::invalid(field, format!("must be a decimal number such as \"1234.50\", got {s:?} ({e})"))
    })
}

fn parse_currency(field: &'static str, s: &str) -> Result<Currency, ConvertError> {
    Currency::parse(s).map_err(|e| ConvertError::invalid(field, e.to_string()))
}

fn parse_instant(field: &'static str, s: &str) -> Result<DateTime<Utc>, ConvertError> {
    DateTime::parse_from_rfc3339(s).map(|at| at.with_timezone(&Utc)).map_err(|e| {
        ConvertError::invalid(
            field,
            format!("must be an RFC 3339 instant such as 2026-01-31T20:00:00Z, got {s:?} ({e})"),
        )
    })
}

fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate, ConvertError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
        ConvertError::invalid(field, format!("must be a date YYYY-MM-DD such as 2026-01-31, got {s:?} ({e})"))
    })
}

fn parse_id<T>(field: &'static str, s: &str, parse: fn(&str) -> Result<T, String>) -> Result<T, ConvertError> {
    parse(s).map_err(|message| ConvertError::invalid(field, message))
}

// ---------------------------------------------------------------------------------------------
// Money

impl From<Money> for common::Money {
    fn from(money: Money) -> Self {
        Self { amount: amount_text(money.amount, money.currency), currency: money.currency.code().to_owned() }
    }
}

/// Errors name the fields `amount` and `currency` of the `Money` message.
impl TryFrom<&common::Money> for Money {
    type Error = ConvertError;

    fn try_from(msg: &common::Money) -> Result<Self, ConvertError> {
        let currency = parse_currency("currency", &msg.currency)?;
        let amount = parse_amount("amount", &msg.amount)?;
        Ok(Money::new(amount, currency))
    }
}

// ---------------------------------------------------------------------------------------------
// Report events

impl From<&ReportEvent> for ingest::ReportEvent {
    fn from(e: &ReportEvent) -> Self {
        Self {
            report_id: e.report_id.to_string(),
            revision: e.revision,
            client_id: e.client_id.to_string(),
            provider_id: e.provider_id.to_string(),
            modality: i32::from(common::Modality::from(e.modality)),
            body_regions: e.body_regions.into(),
            priority: i32::from(common::Priority::from(e.priority)),
            finalized_at: instant_text(e.finalized_at),
            status: i32::from(common::ReportStatus::from(e.status)),
        }
    }
}

/// The event as received, enumerations by their domain names, for [`RawReport::validate`].
impl From<&ingest::ReportEvent> for RawReport {
    fn from(msg: &ingest::ReportEvent) -> Self {
        Self {
            report_id: msg.report_id.clone(),
            revision: msg.revision.into(),
            client_id: msg.client_id.clone(),
            provider_id: msg.provider_id.clone(),
            modality: radfin_domain::Modality::domain_name(msg.modality).into_owned(),
            body_regions: msg.body_regions.into(),
            priority: radfin_domain::Priority::domain_name(msg.priority).into_owned(),
            finalized_at: msg.finalized_at.clone(),
            status: radfin_domain::ReportStatus::domain_name(msg.status).into_owned(),
        }
    }
}

/// Validates a report event from the wire against the clock `now` (spec §2), listing every bad
/// field. The rules are the domain's ([`RawReport::validate`]); nothing is checked here.
pub fn report_from_proto(msg: &ingest::ReportEvent, now: DateTime<Utc>) -> Result<ReportEvent, ValidationErrors> {
    RawReport::from(msg).validate(now)
}

// ---------------------------------------------------------------------------------------------
// Priced reports

/// A priced report as it travels between pricing and the ledger: the domain's [`PricedReport`]
/// with the period and pricing run it was priced in and its revenue converted to INR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedInRun {
    pub period: Period,
    pub run_id: u64,
    pub report: PricedReport,
    pub revenue_inr: InrAmount,
}

impl From<&PricedInRun> for pricing::PricedReport {
    fn from(m: &PricedInRun) -> Self {
        let p = &m.report;
        Self {
            report_id: p.report_id.to_string(),
            revision: p.revision,
            period: m.period.to_string(),
            client_id: p.client_id.to_string(),
            provider_id: p.provider_id.to_string(),
            modality: i32::from(common::Modality::from(p.modality)),
            grade: i32::from(common::Grade::from(p.grade)),
            status: i32::from(common::ReportStatus::from(p.status)),
            finalized_at: instant_text(p.finalized_at),
            local_date: date_text(p.local_date),
            cogs: Some(pricing::Cogs {
                amount_inr: amount_text(p.cogs, Currency::INR),
                rule_version: p.cogs_rule_version,
            }),
            revenue: Some(pricing::Revenue {
                amount: amount_text(p.revenue.amount, p.revenue.currency),
                currency: p.revenue.currency.code().to_owned(),
                rule_version: p.revenue_rule_version,
                amount_inr: amount_text(m.revenue_inr.amount_inr, Currency::INR),
                fx: m.revenue_inr.rate.as_ref().map(|r| pricing::FxApplied {
                    inr_per_unit: r.inr_per_unit.to_string(),
                    rate_date: date_text(r.rate_date),
                    source: r.source.to_string(),
                }),
            }),
            run_id: m.run_id,
        }
    }
}

/// Parses every field; the first problem is returned, naming its field. Also checks that
/// `local_date` lies in `period`, which holds for everything the pricing engine produces, and
/// that foreign-currency revenue carries its rate.
impl TryFrom<&pricing::PricedReport> for PricedInRun {
    type Error = ConvertError;

    fn try_from(msg: &pricing::PricedReport) -> Result<Self, ConvertError> {
        let report_id = parse_id("report_id", &msg.report_id, ReportId::parse)?;
        if msg.revision == 0 {
            return Err(ConvertError::invalid("revision", "must be at least 1"));
        }
        let period: Period = msg
            .period
            .parse()
            .map_err(|e: radfin_domain::period::PeriodParseError| ConvertError::invalid("period", e.to_string()))?;
        let client_id = parse_id("client_id", &msg.client_id, ClientId::parse)?;
        let provider_id = parse_id("provider_id", &msg.provider_id, ProviderId::parse)?;
        let modality = radfin_domain::Modality::from_proto("modality", msg.modality)?;
        let grade = radfin_domain::Grade::from_proto("grade", msg.grade)?;
        let status = radfin_domain::ReportStatus::from_proto("status", msg.status)?;
        let finalized_at = parse_instant("finalized_at", &msg.finalized_at)?;
        let local_date = parse_date("local_date", &msg.local_date)?;
        if !period.contains(local_date) {
            return Err(ConvertError::invalid("local_date", format!("must be in period {period}, got {local_date}")));
        }
        let cogs = msg.cogs.as_ref().ok_or(ConvertError::Missing { field: "cogs" })?;
        let revenue = msg.revenue.as_ref().ok_or(ConvertError::Missing { field: "revenue" })?;
        let cogs_amount = parse_amount("cogs.amount_inr", &cogs.amount_inr)?;
        let revenue_currency = parse_currency("revenue.currency", &revenue.currency)?;
        let revenue_amount = parse_amount("revenue.amount", &revenue.amount)?;
        let amount_inr = parse_amount("revenue.amount_inr", &revenue.amount_inr)?;
        let rate = match (&revenue.fx, revenue_currency == Currency::INR) {
            (None, true) => None,
            (Some(_), true) => return Err(ConvertError::invalid("revenue.fx", "must be absent for INR revenue")),
            (None, false) => return Err(ConvertError::Missing { field: "revenue.fx" }),
            (Some(fx), false) => Some(AppliedRate {
                inr_per_unit: parse_amount("revenue.fx.inr_per_unit", &fx.inr_per_unit)?,
                rate_date: parse_date("revenue.fx.rate_date", &fx.rate_date)?,
                source: if fx.source.is_empty() {
                    return Err(ConvertError::Missing { field: "revenue.fx.source" });
                } else {
                    Arc::from(fx.source.as_str())
                },
            }),
        };

        Ok(PricedInRun {
            period,
            run_id: msg.run_id,
            report: PricedReport {
                report_id,
                revision: msg.revision,
                client_id,
                provider_id,
                modality,
                grade,
                status,
                finalized_at,
                local_date,
                cogs: cogs_amount,
                cogs_rule_version: cogs.rule_version,
                revenue: Money::new(revenue_amount, revenue_currency),
                revenue_rule_version: revenue.rule_version,
            },
            revenue_inr: InrAmount { amount_inr, rate },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Parties

impl From<&ProviderProfile> for pricing::Provider {
    fn from(p: &ProviderProfile) -> Self {
        Self {
            provider_id: p.provider_id.to_string(),
            name: p.name.clone(),
            grade: i32::from(common::Grade::from(p.grade)),
            practicing_since: date_text(p.practicing_since),
            pan: p.pan.clone().unwrap_or_default(),
            effective_from: date_text(p.effective_from),
        }
    }
}

impl From<&ClientProfile> for pricing::Client {
    fn from(c: &ClientProfile) -> Self {
        Self {
            client_id: c.client_id.to_string(),
            name: c.name.clone(),
            country: c.country.clone(),
            state_code: c.state_code.clone().unwrap_or_default(),
            gstin: c.gstin.clone().unwrap_or_default(),
            currency: c.currency.to_string(),
            effective_from: date_text(c.effective_from),
        }
    }
}

#[cfg(test)]
mod tests;
