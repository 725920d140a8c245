//! Conversions between the generated messages and the domain types, done once, at the edge.
//!
//! - A report event from the wire becomes a [`RawReport`] and is validated by the domain
//!   ([`RawReport::validate`], the one place that knows the rules of spec §2). Enumerations are
//!   handed over by their domain names (`MODALITY_CT` → `"CT"`); `UNSPECIFIED` or a number this
//!   build does not know is handed over as text no domain name equals, so the domain reports the
//!   field.
//! - A live fact (pricing → ledger, [`LiveFact`]) travels with money as decimal strings, parsed
//!   exactly ([`Decimal::from_str_exact`]); every failure names its field ([`ConvertError`]).

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use radfin_domain::fx::AppliedRate;
use radfin_domain::live::{Card, FactKind, LiveFact, StudyFact, Terms};
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_domain::report::ValidationErrors;
use radfin_domain::rules::Contract;
use radfin_domain::{ClientId, Currency, Money, Period, ProviderId, RawReport, ReportEvent, ReportId};
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

/// A modality from its protobuf value; `UNSPECIFIED` or an unknown value is an error naming `field`.
pub fn modality(field: &'static str, value: i32) -> Result<radfin_domain::Modality, ConvertError> {
    radfin_domain::Modality::from_proto(field, value)
}

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

impl From<&LiveFact> for pricing::LiveFact {
    fn from(f: &LiveFact) -> Self {
        let (outcome, report_id, revision, study, hold_reason) = match &f.kind {
            FactKind::Priced(s) => {
                (pricing::LiveOutcome::Priced, s.report_id.to_string(), s.revision, Some(study_msg(s)), String::new())
            }
            FactKind::Held { report_id, revision, reason } => {
                (pricing::LiveOutcome::Held, report_id.to_string(), *revision, None, reason.clone())
            }
            FactKind::Contract => (pricing::LiveOutcome::Contract, String::new(), 0, None, String::new()),
        };
        Self {
            period: f.period.to_string(),
            client_id: f.client_id.to_string(),
            run_id: f.run_id,
            outcome: i32::from(outcome),
            priced_at: instant_text(f.priced_at),
            terms: f.terms.as_ref().map(terms_msg),
            report_id,
            revision,
            study,
            hold_reason,
        }
    }
}

fn rate_msg(r: &AppliedRate) -> pricing::FxApplied {
    pricing::FxApplied {
        inr_per_unit: r.inr_per_unit.to_string(),
        rate_date: date_text(r.rate_date),
        source: r.source.to_string(),
    }
}

fn terms_msg(t: &Terms) -> pricing::LiveTerms {
    let (contract, amount, included) = match &t.contract {
        Contract::PerStudy => ("PER_STUDY", Decimal::ZERO, 0),
        Contract::MinimumCommitment { monthly_minimum } => ("MINIMUM_COMMITMENT", *monthly_minimum, 0),
        Contract::Retainer { monthly_fee, included_studies } => ("RETAINER", *monthly_fee, *included_studies),
    };
    pricing::LiveTerms {
        currency: t.currency.code().to_owned(),
        contract: contract.to_owned(),
        contract_amount: amount.to_string(),
        included_studies: included,
        tier_mode: t.tier_mode.to_string(),
        tier_scope: t.tier_scope.to_string(),
        rule_version: t.rule_version,
        standing: t.standing,
        fallback_rate: t.fallback_rate.as_ref().map(rate_msg),
    }
}

fn study_msg(s: &StudyFact) -> pricing::LiveStudy {
    pricing::LiveStudy {
        provider_id: s.provider_id.to_string(),
        modality: i32::from(common::Modality::from(s.modality)),
        grade: i32::from(common::Grade::from(s.grade)),
        status: i32::from(common::ReportStatus::from(s.status)),
        finalized_at: instant_text(s.finalized_at),
        local_date: date_text(s.local_date),
        cogs: s.cogs.to_string(),
        cogs_rule_version: s.cogs_rule_version,
        card: s.card.as_ref().map(|c| pricing::LiveCard {
            rule_version: c.rule_version,
            up_to: c.tiers.iter().filter_map(|t| *t).collect(),
            amounts: c.amounts.iter().map(Decimal::to_string).collect(),
        }),
        fx: s.fx.as_ref().map(rate_msg),
    }
}

fn parse_rate(field: &'static str, fx: &pricing::FxApplied) -> Result<AppliedRate, ConvertError> {
    if fx.source.is_empty() {
        return Err(ConvertError::invalid(field, "source is required"));
    }
    Ok(AppliedRate {
        inr_per_unit: parse_amount(field, &fx.inr_per_unit)?,
        rate_date: parse_date(field, &fx.rate_date)?,
        source: Arc::from(fx.source.as_str()),
    })
}

fn parse_terms(t: &pricing::LiveTerms) -> Result<Terms, ConvertError> {
    let currency = parse_currency("terms.currency", &t.currency)?;
    let amount = || parse_amount("terms.contract_amount", &t.contract_amount);
    let contract = match t.contract.as_str() {
        "PER_STUDY" => Contract::PerStudy,
        "MINIMUM_COMMITMENT" => Contract::MinimumCommitment { monthly_minimum: amount()? },
        "RETAINER" => Contract::Retainer { monthly_fee: amount()?, included_studies: t.included_studies },
        other => return Err(ConvertError::invalid("terms.contract", format!("unknown contract {other:?}"))),
    };
    Ok(Terms {
        currency,
        contract,
        tier_mode: t.tier_mode.parse().map_err(|e| ConvertError::invalid("terms.tier_mode", e))?,
        tier_scope: t.tier_scope.parse().map_err(|e| ConvertError::invalid("terms.tier_scope", e))?,
        rule_version: t.rule_version,
        standing: t.standing,
        fallback_rate: t.fallback_rate.as_ref().map(|r| parse_rate("terms.fallback_rate", r)).transpose()?,
    })
}

fn parse_study(report_id: ReportId, revision: u32, s: &pricing::LiveStudy) -> Result<StudyFact, ConvertError> {
    let card = match &s.card {
        None => None,
        Some(c) => {
            let amounts =
                c.amounts.iter().map(|a| parse_amount("study.card.amounts", a)).collect::<Result<Vec<Decimal>, _>>()?;
            if amounts.len() != c.up_to.len() + 1 || c.up_to.windows(2).any(|w| w[0] >= w[1]) {
                return Err(ConvertError::invalid(
                    "study.card",
                    "needs ascending up_to bounds and one amount more than bounds",
                ));
            }
            let tiers: Vec<Option<u32>> = c.up_to.iter().map(|u| Some(*u)).chain([None]).collect();
            Some(Card { rule_version: c.rule_version, tiers: tiers.into(), amounts: amounts.into() })
        }
    };
    Ok(StudyFact {
        report_id,
        revision,
        provider_id: parse_id("study.provider_id", &s.provider_id, ProviderId::parse)?,
        modality: radfin_domain::Modality::from_proto("study.modality", s.modality)?,
        grade: radfin_domain::Grade::from_proto("study.grade", s.grade)?,
        status: radfin_domain::ReportStatus::from_proto("study.status", s.status)?,
        finalized_at: parse_instant("study.finalized_at", &s.finalized_at)?,
        local_date: parse_date("study.local_date", &s.local_date)?,
        cogs: parse_amount("study.cogs", &s.cogs)?,
        cogs_rule_version: s.cogs_rule_version,
        card,
        fx: s.fx.as_ref().map(|r| parse_rate("study.fx", r)).transpose()?,
    })
}

/// Parses every field; the first problem is returned, naming its field.
impl TryFrom<&pricing::LiveFact> for LiveFact {
    type Error = ConvertError;

    fn try_from(msg: &pricing::LiveFact) -> Result<Self, ConvertError> {
        let period: Period = msg
            .period
            .parse()
            .map_err(|e: radfin_domain::period::PeriodParseError| ConvertError::invalid("period", e.to_string()))?;
        let client_id = parse_id("client_id", &msg.client_id, ClientId::parse)?;
        let report = || -> Result<(ReportId, u32), ConvertError> {
            let id = parse_id("report_id", &msg.report_id, ReportId::parse)?;
            if msg.revision == 0 {
                return Err(ConvertError::invalid("revision", "must be at least 1"));
            }
            Ok((id, msg.revision))
        };
        let kind = match pricing::LiveOutcome::try_from(msg.outcome) {
            Ok(pricing::LiveOutcome::Priced) => {
                let (id, revision) = report()?;
                let study = msg.study.as_ref().ok_or(ConvertError::Missing { field: "study" })?;
                let study = parse_study(id, revision, study)?;
                if !period.contains(study.local_date) {
                    return Err(ConvertError::invalid("study.local_date", format!("must be in period {period}")));
                }
                FactKind::Priced(study)
            }
            Ok(pricing::LiveOutcome::Held) => {
                let (report_id, revision) = report()?;
                FactKind::Held { report_id, revision, reason: msg.hold_reason.clone() }
            }
            Ok(pricing::LiveOutcome::Contract) => FactKind::Contract,
            _ => return Err(ConvertError::invalid("outcome", format!("unknown outcome {}", msg.outcome))),
        };
        Ok(LiveFact {
            period,
            client_id,
            run_id: msg.run_id,
            priced_at: parse_instant("priced_at", &msg.priced_at)?,
            terms: msg.terms.as_ref().map(parse_terms).transpose()?,
            kind,
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
