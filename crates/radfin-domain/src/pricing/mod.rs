//! The pricing engine: a period's reports in, both sides of every report out.
//!
//! COGS is per report. Revenue is per client and period (tiers, retainers and minimums need the
//! whole month), then spread back over the client's reports so per-report revenue sums exactly to
//! the invoice's taxable value. A report that cannot be priced yet is held with its reason and
//! takes no part in any sum until it can.

mod batch;
mod cogs;
mod memo;
mod revenue;

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::Serialize;

pub use cogs::{CogsQuote, price_cogs};
pub use revenue::{ClientInvoiceDraft, InvoiceLine, InvoiceLineKind};

use crate::catalog::Catalog;
use crate::ids::{ClientId, ProviderId, ReportId};
use crate::live::{Card, Terms};
use crate::money::{Currency, Money};
use crate::party::{Grade, ProviderProfile};
use crate::period::{BusinessCalendar, Period};
use crate::report::{Modality, ReportEvent, ReportStatus};
use crate::rules::{ClientRules, ProviderRules, RuleVersion};

/// One report priced for the live view ([`PricingRun::quote`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The provider's grade on the report's date.
    pub grade: Grade,
    pub local_date: NaiveDate,
    /// INR; zero for a cancelled report.
    pub cogs: Decimal,
    pub cogs_rule_version: Option<u32>,
    /// None for a cancelled report.
    pub card: Option<Card>,
}

/// The frame of one pricing pass: which period, in which time zone, seeing which rules.
#[derive(Clone, Copy, Debug)]
pub struct PricingRun {
    pub calendar: BusinessCalendar,
    pub period: Period,
    /// Rule versions recorded after this instant are invisible to the run (spec §4).
    pub rules_as_of: DateTime<Utc>,
}

/// Why a report cannot be priced yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldReason {
    /// No client profile is in force on the report's date.
    UnknownClient,
    /// No provider profile is in force on the report's date.
    UnknownProvider,
    NoProviderRule,
    NoClientRule,
    /// The client's rules in force on the report's date have no price for its modality.
    NoUnitPrice {
        modality: Modality,
    },
    /// The client's rules on the report's date bill in another currency than the contract
    /// in force at the end of the period.
    CurrencyChanged {
        report_rules: Currency,
        contract: Currency,
    },
}

impl HoldReason {
    /// The held status operators see: `UNKNOWN_PARTY`, `NO_RULE` or `NO_PRICE`.
    pub fn status(&self) -> &'static str {
        match self {
            HoldReason::UnknownClient | HoldReason::UnknownProvider => "UNKNOWN_PARTY",
            HoldReason::NoProviderRule | HoldReason::NoClientRule => "NO_RULE",
            HoldReason::NoUnitPrice { .. } | HoldReason::CurrencyChanged { .. } => "NO_PRICE",
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldReason::UnknownClient => f.write_str("no client profile in force on the report's date"),
            HoldReason::UnknownProvider => f.write_str("no provider profile in force on the report's date"),
            HoldReason::NoProviderRule => f.write_str("no provider rules in force on the report's date"),
            HoldReason::NoClientRule => f.write_str("no client rules in force on the report's date"),
            HoldReason::NoUnitPrice { modality } => {
                write!(f, "the client's rules have no price for {modality}")
            }
            HoldReason::CurrencyChanged { report_rules, contract } => {
                write!(f, "the client's rules on the report's date bill in {report_rules}, the contract in {contract}")
            }
        }
    }
}

/// Input the engine refuses: the caller handed it something that is not one period's reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("report {report_id} revision {revision} belongs to period {actual}, not {expected}")]
    OutsidePeriod { report_id: ReportId, revision: u32, actual: Period, expected: Period },
    #[error("report {report_id} revision {revision} was given twice with different content")]
    ConflictingRevision { report_id: ReportId, revision: u32 },
}

/// Both sides of one report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PricedReport {
    pub report_id: ReportId,
    pub revision: u32,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub modality: Modality,
    /// The provider's grade on the report's date.
    pub grade: Grade,
    pub status: ReportStatus,
    pub finalized_at: DateTime<Utc>,
    /// The report's date in the business time zone (what rules and FX are chosen by).
    pub local_date: NaiveDate,
    /// INR.
    pub cogs: Decimal,
    pub cogs_rule_version: Option<u32>,
    /// In the client's contract currency: the study line plus its share of client-level lines.
    pub revenue: Money,
    /// The report's own study line (tiers, uplifts), without the share of client-level lines:
    /// what the live view books per report (spec §6).
    pub study_line: Decimal,
    pub revenue_rule_version: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldReport {
    pub report_id: ReportId,
    pub revision: u32,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub reason: HoldReason,
}

/// What a provider earned in the period (before TDS, which the payout statement applies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderPayoutDraft {
    pub provider_id: ProviderId,
    pub reports: u32,
    /// INR.
    pub gross: Decimal,
}

/// The result of pricing a period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeriodPricing {
    pub period: Period,
    pub rules_as_of: DateTime<Utc>,
    /// Ordered by client, then billing order (`finalized_at`, `report_id`).
    pub reports: Vec<PricedReport>,
    /// Ordered by report id.
    pub held: Vec<HeldReport>,
    /// Ordered by client id.
    pub invoices: Vec<ClientInvoiceDraft>,
    /// Ordered by provider id.
    pub payouts: Vec<ProviderPayoutDraft>,
    /// Provider rule versions used, ascending.
    pub provider_rule_versions: Vec<u32>,
}

/// A report whose parties and rules are known.
struct Resolved<'a> {
    local: NaiveDateTime,
    provider: &'a ProviderProfile,
    /// None for a cancelled report, which needs no rules.
    rules: Option<(&'a RuleVersion<ProviderRules>, &'a RuleVersion<ClientRules>)>,
}

impl PricingRun {
    /// Prices every report of the period. The result depends only on the set of reports: their
    /// order and repeated deliveries change nothing, and of several revisions the highest counts.
    pub fn price(&self, catalog: &Catalog, reports: &[ReportEvent]) -> Result<PeriodPricing, PricingError> {
        self.price_month(catalog, reports)
    }

    /// Marks the highest revision of each report, after checking every event is of this period;
    /// the error is the first problem in input order.
    fn current_revisions(&self, reports: &[ReportEvent]) -> Result<Vec<bool>, PricingError> {
        let (start, end) = self.calendar.period_bounds(self.period);
        // Index of the current revision of each report; `current[i]` marks the kept events, so
        // they come out in input order (sequential memory access for what follows).
        let mut slots: FxHashMap<&str, usize> = FxHashMap::default();
        slots.reserve(reports.len());
        let mut current = vec![false; reports.len()];
        for (i, r) in reports.iter().enumerate() {
            if !(start..end).contains(&r.finalized_at) {
                return Err(PricingError::OutsidePeriod {
                    report_id: r.report_id.clone(),
                    revision: r.revision,
                    actual: self.calendar.period_of(r.finalized_at),
                    expected: self.period,
                });
            }
            let slot = slots.entry(r.report_id.as_str()).or_insert(i);
            let kept = &reports[*slot];
            if *slot == i || r.revision > kept.revision {
                current[*slot] = false;
                current[i] = true;
                *slot = i;
            } else if r.revision == kept.revision && kept != r {
                return Err(PricingError::ConflictingRevision { report_id: r.report_id.clone(), revision: r.revision });
            }
        }
        Ok(current)
    }

    /// Finds the parties and rules of one report, or why it cannot be priced.
    fn resolve<'a>(&self, catalog: &'a Catalog, report: &'a ReportEvent) -> Result<Resolved<'a>, HoldReason> {
        let local = self.calendar.local(report.finalized_at);
        let date = local.date();
        catalog.client(&report.client_id).and_then(|v| v.in_force(date)).ok_or(HoldReason::UnknownClient)?;
        let provider =
            catalog.provider(&report.provider_id).and_then(|v| v.in_force(date)).ok_or(HoldReason::UnknownProvider)?;
        if report.status == ReportStatus::Cancelled {
            return Ok(Resolved { local, provider, rules: None });
        }
        let provider_rules =
            catalog.provider_rules().select(date, self.rules_as_of).ok_or(HoldReason::NoProviderRule)?;
        let client_rules = catalog
            .client_rules(&report.client_id)
            .and_then(|h| h.select(date, self.rules_as_of))
            .ok_or(HoldReason::NoClientRule)?;
        if client_rules.rules.prices(report.modality).is_none() {
            return Err(HoldReason::NoUnitPrice { modality: report.modality });
        }
        Ok(Resolved { local, provider, rules: Some((provider_rules, client_rules)) })
    }

    /// A client-month's contract for the live view: the client rules in force on the period's
    /// last day (None: no rules, so nothing of the client's can be priced). The fallback rate
    /// is the caller's to fill (it needs the FX table).
    pub fn terms(&self, catalog: &Catalog, client_id: &ClientId) -> Option<Terms> {
        let last_day = self.period.last_day();
        let contract = catalog.client_rules(client_id)?.select(last_day, self.rules_as_of)?;
        let rules = &contract.rules;
        Some(Terms {
            currency: rules.currency,
            contract: rules.contract,
            tier_mode: rules.tier_mode,
            tier_scope: rules.tier_scope,
            rule_version: contract.version,
            standing: catalog.client(client_id).and_then(|v| v.in_force(last_day)).is_some(),
            fallback_rate: None,
        })
    }

    /// Prices one report of the period for the live view: its COGS and its revenue at every
    /// tier of its rule version ([`Card`]), for a book whose contract is `terms` — or why it is
    /// held, exactly as [`PricingRun::price`] would hold it.
    pub fn quote(&self, catalog: &Catalog, terms: Option<&Terms>, report: &ReportEvent) -> Result<Quote, HoldReason> {
        let r = self.resolve(catalog, report)?;
        let Some(terms) = terms else { return Err(HoldReason::NoClientRule) };
        let local_date = r.local.date();
        let Some((provider_rules, client_rules)) = r.rules else {
            return Ok(Quote {
                grade: r.provider.grade,
                local_date,
                cogs: Decimal::ZERO,
                cogs_rule_version: None,
                card: None,
            });
        };
        let rules = &client_rules.rules;
        if rules.currency != terms.currency {
            return Err(HoldReason::CurrencyChanged { report_rules: rules.currency, contract: terms.currency });
        }
        let (cogs, _) = cogs::cogs_amount(report, r.local, r.provider, &provider_rules.rules);
        let amounts: Vec<Decimal> = (0..rules.tiers.len())
            .map(|t| {
                terms.currency.round(
                    rules.study_amount(report.modality, t, report.body_regions, report.priority).unwrap_or_default(),
                )
            })
            .collect();
        let card =
            Card { rule_version: client_rules.version, tiers: rules.tiers.as_slice().into(), amounts: amounts.into() };
        Ok(Quote {
            grade: r.provider.grade,
            local_date,
            cogs,
            cogs_rule_version: Some(provider_rules.version),
            card: Some(card),
        })
    }
}

fn held_report(report: &ReportEvent, reason: HoldReason) -> HeldReport {
    HeldReport {
        report_id: report.report_id.clone(),
        revision: report.revision,
        client_id: report.client_id.clone(),
        provider_id: report.provider_id.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests;
