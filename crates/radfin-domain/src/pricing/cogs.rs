//! COGS (spec §4.1): the fee for one report, independent of every other report.

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;

use super::HoldReason;
use crate::catalog::Catalog;
use crate::money::Currency;
use crate::party::{Grade, ProviderProfile};
use crate::period::BusinessCalendar;
use crate::report::{Priority, ReportEvent, ReportStatus};
use crate::rules::ProviderRules;

/// The COGS of one report, with what it was derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CogsQuote {
    /// INR, rounded; zero for a cancelled report.
    pub amount: Decimal,
    /// The provider rule version used (none for a cancelled report).
    pub rule_version: Option<u32>,
    pub grade: Grade,
    pub night: bool,
}

/// `base × regions × grade × seniority × (1 + (uplift[priority] + uplift[NIGHT])/100)`, rounded once.
pub(crate) fn cogs_amount(
    report: &ReportEvent,
    local: NaiveDateTime,
    profile: &ProviderProfile,
    rules: &ProviderRules,
) -> (Decimal, bool) {
    let base = rules.base_fee(&report.provider_id, report.modality);
    cogs_from_base(base, report.body_regions, report.priority, local, profile, rules)
}

/// [`cogs_amount`] with the base fee (the provider's override first) already looked up.
pub(crate) fn cogs_from_base(
    base: Decimal,
    body_regions: u8,
    priority: Priority,
    local: NaiveDateTime,
    profile: &ProviderProfile,
    rules: &ProviderRules,
) -> (Decimal, bool) {
    let night = rules.is_night(local.time());
    let years = profile.years_of_practice(local.date());
    let amount = base
        * rules.region_factor(body_regions)
        * rules.grade_multiplier[profile.grade.index()]
        * rules.seniority_multiplier(years)
        * rules.uplift_factor(priority, night);
    (rules.currency.round(amount), night)
}

/// Prices one report's COGS with the rules recorded by `rules_as_of`.
pub fn price_cogs(
    catalog: &Catalog,
    calendar: BusinessCalendar,
    rules_as_of: DateTime<Utc>,
    report: &ReportEvent,
) -> Result<CogsQuote, HoldReason> {
    let local = calendar.local(report.finalized_at);
    let profile = catalog
        .provider(&report.provider_id)
        .and_then(|v| v.in_force(local.date()))
        .ok_or(HoldReason::UnknownProvider)?;
    if report.status == ReportStatus::Cancelled {
        return Ok(CogsQuote { amount: Decimal::ZERO, rule_version: None, grade: profile.grade, night: false });
    }
    let version = catalog.provider_rules().select(local.date(), rules_as_of).ok_or(HoldReason::NoProviderRule)?;
    let (amount, night) = cogs_amount(report, local, profile, &version.rules);
    debug_assert_eq!(version.rules.currency, Currency::INR);
    Ok(CogsQuote { amount, rule_version: Some(version.version), grade: profile.grade, night })
}
