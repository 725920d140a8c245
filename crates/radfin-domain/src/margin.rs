//! Margins in INR (spec §7): a priced period valued with FX and summarised per
//! client × modality × provider grade.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::fx::{FxError, FxTable, InrAmount};
use crate::ids::{ClientId, ReportId};
use crate::money::Money;
use crate::party::Grade;
use crate::pricing::PeriodPricing;
use crate::report::{Modality, ReportStatus};
use crate::rounding::round_half_away;

/// A row of the margin summary. `modality` and `grade` are `None` (shown as `NONE`) for
/// client-level charges of a month without billable reports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MarginKey {
    pub client_id: ClientId,
    pub modality: Option<Modality>,
    pub grade: Option<Grade>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarginTotals {
    pub reports: u64,
    pub revenue_inr: Decimal,
    pub cogs_inr: Decimal,
}

impl MarginTotals {
    pub fn margin_inr(&self) -> Decimal {
        self.revenue_inr - self.cogs_inr
    }

    /// Margin as a percentage of revenue, 2 decimals; none without revenue.
    pub fn margin_pct(&self) -> Option<Decimal> {
        (!self.revenue_inr.is_zero())
            .then(|| round_half_away(self.margin_inr() * Decimal::ONE_HUNDRED / self.revenue_inr, 2))
    }

    fn add(&mut self, other: &MarginTotals) {
        self.reports += other.reports;
        self.revenue_inr += other.revenue_inr;
        self.cogs_inr += other.cogs_inr;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarginSummary {
    pub rows: BTreeMap<MarginKey, MarginTotals>,
}

impl MarginSummary {
    pub fn add(&mut self, key: MarginKey, totals: &MarginTotals) {
        self.rows.entry(key).or_default().add(totals);
    }

    pub fn total(&self) -> MarginTotals {
        let mut t = MarginTotals::default();
        self.rows.values().for_each(|r| t.add(r));
        t
    }

    /// Totals per client, in client order.
    pub fn by_client(&self) -> BTreeMap<&ClientId, MarginTotals> {
        let mut out: BTreeMap<&ClientId, MarginTotals> = BTreeMap::new();
        for (k, v) in &self.rows {
            out.entry(&k.client_id).or_default().add(v);
        }
        out
    }
}

/// A priced period in INR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valuation {
    /// One per `PeriodPricing::reports`, in the same order; `Err` while the rate is missing.
    pub revenue_inr: Vec<Result<InrAmount, FxError>>,
    /// Reports waiting for a rate (`AWAITING_FX`): left out of the summary until it arrives.
    pub awaiting_fx: Vec<(ReportId, FxError)>,
    /// Client-level charges of clients without billable reports, converted at the period's
    /// last-day rate; `Err` while that rate is missing.
    pub standing_charges: Vec<(ClientId, Result<InrAmount, FxError>)>,
    pub summary: MarginSummary,
}

/// Converts revenue to INR (each report at the rate of its own date) and builds the summary.
pub fn value(pricing: &PeriodPricing, fx: &FxTable) -> Valuation {
    let mut summary = MarginSummary::default();
    let mut awaiting_fx = Vec::new();
    let revenue_inr: Vec<_> = pricing
        .reports
        .iter()
        .map(|p| {
            let inr = fx.to_inr(p.revenue, p.local_date);
            match &inr {
                Ok(inr) => {
                    let billable = p.status == ReportStatus::Final;
                    let key =
                        MarginKey { client_id: p.client_id.clone(), modality: Some(p.modality), grade: Some(p.grade) };
                    let totals =
                        MarginTotals { reports: u64::from(billable), revenue_inr: inr.amount_inr, cogs_inr: p.cogs };
                    summary.add(key, &totals);
                }
                Err(e) => awaiting_fx.push((p.report_id.clone(), e.clone())),
            }
            inr
        })
        .collect();

    let last_day = pricing.period.last_day();
    let standing_charges: Vec<_> = pricing
        .invoices
        .iter()
        .filter(|i| i.billable_reports == 0)
        .map(|i| {
            let inr = fx.to_inr(Money::new(i.taxable_value, i.currency), last_day);
            if let Ok(inr) = &inr {
                let key = MarginKey { client_id: i.client_id.clone(), modality: None, grade: None };
                summary.add(key, &MarginTotals { reports: 0, revenue_inr: inr.amount_inr, cogs_inr: Decimal::ZERO });
            }
            (i.client_id.clone(), inr)
        })
        .collect();
    Valuation { revenue_inr, awaiting_fx, standing_charges, summary }
}
