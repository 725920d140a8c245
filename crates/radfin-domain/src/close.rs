//! Closing a period and correcting a closed one (spec §4.4, §5, §6), without I/O.
//!
//! A close books the engine's price of the stored month line by line ([`run_lines`]: per billable
//! report its COGS and its revenue with its share of the client-level lines; client-level lines
//! as such only for a client without billable reports) and issues documents whose sums are those
//! lines' sums: an invoice per client ([`invoices`]) and a payout statement per provider
//! ([`payouts`]). A rerun prices the period again into lines of its own; [`compare`] splits each
//! difference into price, volume and FX effects and [`corrections`] plans the credit notes,
//! supplementary invoices and payout adjustments that bring what was billed and paid to it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::fx::{FxError, FxTable};
use crate::ids::{ClientId, ProviderId, ReportId};
use crate::live::{ClientLine, Dims, LineRef, Part, ReportDims, Side};
use crate::money::{Currency, Money};
use crate::period::Period;
use crate::pricing::{InvoiceLineKind, PeriodPricing};
use crate::report::{Modality, ReportStatus};
use crate::tax::{GstConfig, InvoiceTax, TaxTreatment, TdsAssessment, TdsConfig, invoice_tax};

/// One line of a close or rerun run, as the ledger books it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunLine {
    pub client_id: ClientId,
    pub line: LineRef,
    pub part: Part,
}

impl RunLine {
    fn report(&self) -> Option<(&ReportId, &ReportDims)> {
        match (&self.line, &self.part.dims.report) {
            (LineRef::Study(id, _), Some(dims)) => Some((id, dims)),
            _ => None,
        }
    }
}

/// Something a close cannot book yet: an amount without its FX rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwaitingFx {
    /// A report id, or `client X (retainer fee)`.
    pub what: String,
    pub error: FxError,
}

/// The lines a close (or rerun) books for a priced period. A cancelled report books a zero COGS
/// line only, so the run records every report it priced.
pub fn run_lines(pricing: &PeriodPricing, fx: &FxTable) -> Result<Vec<RunLine>, Vec<AwaitingFx>> {
    let mut lines = Vec::with_capacity(pricing.reports.len() * 2);
    let mut awaiting = Vec::new();
    for r in &pricing.reports {
        let report = ReportDims {
            revision: r.revision,
            provider_id: r.provider_id.clone(),
            modality: r.modality,
            grade: r.grade,
            status: r.status,
        };
        lines.push(RunLine {
            client_id: r.client_id.clone(),
            line: LineRef::Study(r.report_id.clone(), Side::Cogs),
            part: Part {
                dims: Dims {
                    report: Some(report.clone()),
                    currency: Currency::INR,
                    rule_version: r.cogs_rule_version,
                    fx: None,
                },
                amount: r.cogs,
                amount_inr: r.cogs,
            },
        });
        if r.status != ReportStatus::Final {
            continue;
        }
        match fx.to_inr(r.revenue, r.local_date) {
            Ok(inr) => lines.push(RunLine {
                client_id: r.client_id.clone(),
                line: LineRef::Study(r.report_id.clone(), Side::Revenue),
                part: Part {
                    dims: Dims {
                        report: Some(report),
                        currency: r.revenue.currency,
                        rule_version: r.revenue_rule_version,
                        fx: inr.rate,
                    },
                    amount: r.revenue.amount,
                    amount_inr: inr.amount_inr,
                },
            }),
            Err(error) => awaiting.push(AwaitingFx { what: format!("report {}", r.report_id), error }),
        }
    }
    // A client without billable reports still owes its retainer or minimum (spec §4.2), booked as
    // a client-level line at the rate of the period's last day.
    let last_day = pricing.period.last_day();
    for inv in pricing.invoices.iter().filter(|i| i.billable_reports == 0) {
        for l in &inv.lines {
            let kind = match l.kind {
                InvoiceLineKind::RetainerFee => ClientLine::RetainerFee,
                InvoiceLineKind::MinimumShortfall => ClientLine::MinimumShortfall,
                _ => continue,
            };
            if l.amount.is_zero() {
                continue;
            }
            match fx.to_inr(Money::new(l.amount, inv.currency), last_day) {
                Ok(inr) => lines.push(RunLine {
                    client_id: inv.client_id.clone(),
                    line: LineRef::Client(kind),
                    part: Part {
                        dims: Dims {
                            report: None,
                            currency: inv.currency,
                            rule_version: Some(inv.contract_rule_version),
                            fx: inr.rate,
                        },
                        amount: l.amount,
                        amount_inr: inr.amount_inr,
                    },
                }),
                Err(error) => awaiting.push(AwaitingFx {
                    what: format!("client {} ({})", inv.client_id, kind.as_str().to_lowercase().replace('_', " ")),
                    error,
                }),
            }
        }
    }
    if awaiting.is_empty() { Ok(lines) } else { Err(awaiting) }
}

/// One line of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocLine {
    /// `STUDIES`, `INCLUDED_STUDIES`, `RETAINER_FEE`, `MINIMUM_SHORTFALL` or `ADJUSTMENT`.
    pub kind: &'static str,
    pub description: String,
    pub modality: Option<Modality>,
    pub tier: Option<u32>,
    pub unit_price: Option<Decimal>,
    /// Signed only on a payout adjustment.
    pub quantity: i32,
    pub amount: Decimal,
}

/// An invoice a close will issue (numbers are assigned when it is written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoicePlan {
    pub client_id: ClientId,
    pub client_name: String,
    pub client_gstin: Option<String>,
    /// The recipient's state code; None for an export.
    pub place_of_supply: Option<String>,
    pub currency: Currency,
    pub billable_reports: u32,
    pub contract_rule_version: Option<u32>,
    pub lines: Vec<DocLine>,
    pub taxable_value: Decimal,
    pub tax: InvoiceTax,
    /// Σ the INR of the client's run lines: the invoice equals the ledger in INR too.
    pub taxable_value_inr: Decimal,
}

impl InvoicePlan {
    pub fn total(&self) -> Decimal {
        self.taxable_value + self.tax.total()
    }
}

fn place_of_supply(treatment: TaxTreatment, state_code: Option<&str>) -> Option<String> {
    (treatment != TaxTreatment::ExportLut).then(|| state_code.map(str::to_owned)).flatten()
}

/// The invoices of a priced period: one per client that has billable reports or a charge.
/// `lines` are the period's [`run_lines`], whose sums the invoices carry in INR.
pub fn invoices(pricing: &PeriodPricing, lines: &[RunLine], catalog: &Catalog, gst: &GstConfig) -> Vec<InvoicePlan> {
    let mut inr: BTreeMap<&ClientId, Decimal> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.line.side() == Side::Revenue) {
        *inr.entry(&l.client_id).or_default() += l.part.amount_inr;
    }
    let last_day = pricing.period.last_day();
    pricing
        .invoices
        .iter()
        .filter(|i| i.billable_reports > 0 || !i.taxable_value.is_zero())
        .map(|draft| {
            let profile = catalog.client(&draft.client_id).and_then(|v| v.in_force(last_day));
            let state = profile.and_then(|p| p.state_code.as_deref());
            let tax = invoice_tax(draft.taxable_value, draft.currency, draft.tax_treatment, state, gst);
            let doc_lines = draft
                .lines
                .iter()
                .map(|l| {
                    let (kind, description, modality, tier, unit_price) = match l.kind {
                        InvoiceLineKind::Studies { modality, tier, unit_price } => (
                            "STUDIES",
                            format!("{modality} studies, tier {tier}"),
                            Some(modality),
                            Some(tier),
                            Some(unit_price),
                        ),
                        InvoiceLineKind::IncludedStudies { modality } => (
                            "INCLUDED_STUDIES",
                            format!("{modality} studies included in the retainer"),
                            Some(modality),
                            None,
                            None,
                        ),
                        InvoiceLineKind::RetainerFee => {
                            ("RETAINER_FEE", format!("Monthly retainer fee, {}", pricing.period), None, None, None)
                        }
                        InvoiceLineKind::MinimumShortfall => (
                            "MINIMUM_SHORTFALL",
                            format!("Shortfall against the monthly minimum commitment, {}", pricing.period),
                            None,
                            None,
                            None,
                        ),
                    };
                    DocLine {
                        kind,
                        description,
                        modality,
                        tier,
                        unit_price,
                        quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
                        amount: l.amount,
                    }
                })
                .collect();
            InvoicePlan {
                client_id: draft.client_id.clone(),
                client_name: profile.map_or_else(|| draft.client_id.to_string(), |p| p.name.clone()),
                client_gstin: profile.and_then(|p| p.gstin.clone()),
                place_of_supply: place_of_supply(draft.tax_treatment, state),
                currency: draft.currency,
                billable_reports: draft.billable_reports,
                contract_rule_version: Some(draft.contract_rule_version),
                lines: doc_lines,
                taxable_value: draft.taxable_value,
                tax,
                taxable_value_inr: inr.get(&draft.client_id).copied().unwrap_or_default(),
            }
        })
        .collect()
}

/// A payout statement (or, from a rerun, a signed adjustment) before its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PayoutPlan {
    pub provider_id: ProviderId,
    pub provider_name: String,
    pub reports: i32,
    pub lines: Vec<DocLine>,
    /// INR.
    pub gross: Decimal,
    pub earlier_in_year: Decimal,
    pub pan_present: bool,
    pub tds: TdsAssessment,
}

impl PayoutPlan {
    pub fn net(&self) -> Decimal {
        self.gross - self.tds.amount
    }
}

/// The payout statements of a run's lines: per provider, the COGS booked per modality, with TDS
/// given the provider's fees on earlier statements of the financial year (`earlier`).
pub fn payouts(
    lines: &[RunLine],
    catalog: &Catalog,
    period: Period,
    earlier: &BTreeMap<ProviderId, Decimal>,
    tds: &TdsConfig,
) -> Vec<PayoutPlan> {
    let mut by_provider: BTreeMap<&ProviderId, BTreeMap<Modality, (i32, Decimal)>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.line.side() == Side::Cogs) {
        if let Some((_, dims)) = l.report().filter(|(_, d)| d.status == ReportStatus::Final) {
            let e = by_provider.entry(&dims.provider_id).or_default().entry(dims.modality).or_default();
            e.0 += 1;
            e.1 += l.part.amount;
        }
    }
    let last_day = period.last_day();
    by_provider
        .into_iter()
        .map(|(provider_id, modalities)| {
            let profile = catalog.provider(provider_id).and_then(|v| v.in_force(last_day));
            let pan_present = profile.is_some_and(|p| p.pan.as_deref().is_some_and(|p| !p.is_empty()));
            let gross: Decimal = modalities.values().map(|(_, a)| *a).sum();
            let reports = modalities.values().map(|(n, _)| *n).sum();
            let earlier_in_year = earlier.get(provider_id).copied().unwrap_or_default();
            PayoutPlan {
                provider_id: provider_id.clone(),
                provider_name: profile.map_or_else(|| provider_id.to_string(), |p| p.name.clone()),
                reports,
                lines: modalities
                    .into_iter()
                    .map(|(modality, (quantity, amount))| DocLine {
                        kind: "STUDIES",
                        description: format!("{modality} reports, {period}"),
                        modality: Some(modality),
                        tier: None,
                        unit_price: None,
                        quantity,
                        amount,
                    })
                    .collect(),
                gross,
                earlier_in_year,
                pan_present,
                tds: tds.assess(earlier_in_year, gross, pan_present),
            }
        })
        .collect()
}

/// A difference split into its effects (spec §6): `price + volume + fx = difference`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    pub price: Decimal,
    pub volume: Decimal,
    pub fx: Decimal,
}

impl Effects {
    pub fn difference(&self) -> Decimal {
        self.price + self.volume + self.fx
    }
}

/// What a rerun changes for a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDifference {
    pub client_id: ClientId,
    pub currency: Currency,
    pub billed: Decimal,
    pub rerun: Decimal,
    /// In the contract currency: FX is zero.
    pub contract: Effects,
    pub billed_inr: Decimal,
    pub rerun_inr: Decimal,
    pub inr: Effects,
    pub billed_reports: i32,
    pub rerun_reports: i32,
}

/// What a rerun changes for a provider (INR; no FX effect).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDifference {
    pub provider_id: ProviderId,
    pub paid: Decimal,
    pub rerun: Decimal,
    pub effects: Effects,
    pub paid_reports: i32,
    pub rerun_reports: i32,
}

/// Splits the differences between a billed run's lines and a rerun's (spec §6): for lines in
/// both, price = Σ (round(N amount × O rate) − O INR) and FX = Σ (N INR − round(N amount × O
/// rate)); volume = Σ INR of lines only in N − Σ INR of lines only in O. Only clients and
/// providers with some difference are returned.
///
/// The clients' and the providers' sides are independent walks over a month's lines each: they
/// run on two threads.
pub fn compare(billed: &[RunLine], rerun: &[RunLine]) -> (Vec<ClientDifference>, Vec<ProviderDifference>) {
    std::thread::scope(|scope| {
        let providers = scope.spawn(|| compare_providers(billed, rerun));
        let clients = compare_clients(billed, rerun);
        (clients, providers.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

fn compare_clients(billed: &[RunLine], rerun: &[RunLine]) -> Vec<ClientDifference> {
    let mut clients: Vec<ClientDifference> = Vec::new();
    merge_join(&revenue_lines(billed), &revenue_lines(rerun), |&(client_id, line), old, new| {
        let d = match clients.last_mut() {
            Some(d) if d.client_id == *client_id => d,
            _ => {
                let currency = old.or(new).map_or(Currency::INR, |p| p.dims.currency);
                clients.push(ClientDifference {
                    client_id: client_id.clone(),
                    currency,
                    billed: Decimal::ZERO,
                    rerun: Decimal::ZERO,
                    contract: Effects::default(),
                    billed_inr: Decimal::ZERO,
                    rerun_inr: Decimal::ZERO,
                    inr: Effects::default(),
                    billed_reports: 0,
                    rerun_reports: 0,
                });
                let Some(d) = clients.last_mut() else { return };
                d
            }
        };
        if let Some(old) = old {
            d.billed += old.amount;
            d.billed_inr += old.amount_inr;
            d.billed_reports += i32::from(is_billable(line, old));
        }
        if let Some(new) = new {
            d.currency = new.dims.currency;
            d.rerun += new.amount;
            d.rerun_inr += new.amount_inr;
            d.rerun_reports += i32::from(is_billable(line, new));
        }
        match (old, new) {
            (Some(old), None) => {
                d.contract.volume -= old.amount;
                d.inr.volume -= old.amount_inr;
            }
            (None, Some(new)) => {
                d.contract.volume += new.amount;
                d.inr.volume += new.amount_inr;
            }
            (Some(old), Some(new)) => {
                d.contract.price += new.amount - old.amount;
                let old_rate = old.dims.fx.as_ref().map_or(Decimal::ONE, |r| r.inr_per_unit);
                let at_old_rate = Currency::INR.round(new.amount * old_rate);
                d.inr.price += at_old_rate - old.amount_inr;
                d.inr.fx += new.amount_inr - at_old_rate;
            }
            (None, None) => {}
        }
    });
    clients.retain(|d| d.billed != d.rerun || d.billed_inr != d.rerun_inr);
    clients
}

fn compare_providers(billed: &[RunLine], rerun: &[RunLine]) -> Vec<ProviderDifference> {
    let mut providers: Vec<ProviderDifference> = Vec::new();
    merge_join(&cogs_lines(billed), &cogs_lines(rerun), |&(provider_id, _), old, new| {
        let d = match providers.last_mut() {
            Some(d) if d.provider_id == *provider_id => d,
            _ => {
                providers.push(ProviderDifference {
                    provider_id: provider_id.clone(),
                    paid: Decimal::ZERO,
                    rerun: Decimal::ZERO,
                    effects: Effects::default(),
                    paid_reports: 0,
                    rerun_reports: 0,
                });
                let Some(d) = providers.last_mut() else { return };
                d
            }
        };
        if let Some((old, status)) = old {
            d.paid += *old;
            d.paid_reports += i32::from(*status == ReportStatus::Final);
        }
        if let Some((new, status)) = new {
            d.rerun += *new;
            d.rerun_reports += i32::from(*status == ReportStatus::Final);
        }
        match (old, new) {
            (Some((old, _)), None) => d.effects.volume -= *old,
            (None, Some((new, _))) => d.effects.volume += *new,
            (Some((old, _)), Some((new, _))) => d.effects.price += *new - *old,
            (None, None) => {}
        }
    });
    providers.retain(|d| d.paid != d.rerun);
    providers
}

fn is_billable(line: &LineRef, part: &Part) -> bool {
    matches!(line, LineRef::Study(..)) && part.dims.report.as_ref().is_some_and(|r| r.status == ReportStatus::Final)
}

// A month is millions of lines: both runs' lines are sorted by key and walked together (no map
// of either), so the differences come out by client and by provider.

fn revenue_lines(lines: &[RunLine]) -> Vec<((&ClientId, &LineRef), &Part)> {
    by_key(lines.iter().filter(|l| l.line.side() == Side::Revenue).map(|l| ((&l.client_id, &l.line), &l.part)))
}

/// A report's COGS line keyed by (provider, report): INR amount and status.
type CogsLine<'a> = ((&'a ProviderId, &'a ReportId), (Decimal, ReportStatus));

fn cogs_lines(lines: &[RunLine]) -> Vec<CogsLine<'_>> {
    by_key(
        lines
            .iter()
            .filter(|l| l.line.side() == Side::Cogs)
            .filter_map(|l| l.report().map(|(id, dims)| ((&dims.provider_id, id), (l.part.amount_inr, dims.status)))),
    )
}

/// Entries sorted by key, the last of several with one key kept.
fn by_key<K: Ord, V>(entries: impl Iterator<Item = (K, V)>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = entries.collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    v
}

/// Walks two key-sorted, key-unique lists together: every key once, with its value in each.
fn merge_join<'a, K: Ord, V>(o: &'a [(K, V)], n: &'a [(K, V)], mut f: impl FnMut(&'a K, Option<&'a V>, Option<&'a V>)) {
    let (mut o, mut n) = (o.iter().peekable(), n.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => return,
            (Some((ko, vo)), None) => {
                f(ko, Some(vo), None);
                o.next();
            }
            (None, Some((kn, vn))) => {
                f(kn, None, Some(vn));
                n.next();
            }
            (Some((ko, vo)), Some((kn, vn))) => match ko.cmp(kn) {
                std::cmp::Ordering::Less => {
                    f(ko, Some(vo), None);
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    f(kn, None, Some(vn));
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    f(ko, Some(vo), Some(vn));
                    o.next();
                    n.next();
                }
            },
        }
    }
}

/// An invoice of the period as issued, with what remains creditable on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedInvoice {
    pub id: i64,
    pub number: String,
    pub client_id: ClientId,
    pub currency: Currency,
    pub tax_treatment: TaxTreatment,
    pub place_of_supply: Option<String>,
    pub client_gstin: Option<String>,
    /// Taxable value less the credit notes against it.
    pub remaining: Decimal,
}

/// A payout statement of the period as issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedStatement {
    pub id: i64,
    pub number: String,
    pub provider_id: ProviderId,
    pub pan_present: bool,
}

/// A credit note to issue against an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreditPlan {
    pub client_id: ClientId,
    pub corrects_invoice_id: i64,
    pub corrects_invoice_number: String,
    pub currency: Currency,
    pub lines: Vec<DocLine>,
    pub taxable_value: Decimal,
    pub tax: InvoiceTax,
    pub taxable_value_inr: Decimal,
}

/// A supplementary invoice (referencing the invoice it supplements) or, for a client the
/// period never invoiced, a first invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SupplementPlan {
    pub corrects: Option<(i64, String)>,
    pub invoice: InvoicePlan,
}

/// A signed payout adjustment of a provider's statement (or, for a provider the period never
/// paid, a first statement).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PayoutAdjustmentPlan {
    pub corrects: Option<(i64, String)>,
    pub payout: PayoutPlan,
}

/// The documents that bring a closed period's billing and payouts to a rerun's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Corrections {
    pub credit_notes: Vec<CreditPlan>,
    pub invoices: Vec<SupplementPlan>,
    pub payouts: Vec<PayoutAdjustmentPlan>,
}

/// Why a rerun's corrections cannot be issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionError {
    #[error(
        "client {client_id} would be credited {amount} {currency}, but only {remaining} remains creditable on its invoices for the period"
    )]
    CreditExceedsInvoices { client_id: ClientId, currency: Currency, amount: Decimal, remaining: Decimal },
}

/// What the rerun of a period issues, given its differences and the period's documents.
#[allow(clippy::too_many_arguments)]
pub fn corrections(
    period: Period,
    run_id: i64,
    clients: &[ClientDifference],
    providers: &[ProviderDifference],
    issued_invoices: &[IssuedInvoice],
    issued_statements: &[IssuedStatement],
    catalog: &Catalog,
    gst: &GstConfig,
    earlier: &BTreeMap<ProviderId, Decimal>,
    tds: &TdsConfig,
) -> Result<Corrections, CorrectionError> {
    let mut out = Corrections::default();
    let last_day = period.last_day();
    let adjustment_line = |what: &str, quantity: i32, amount: Decimal| DocLine {
        kind: "ADJUSTMENT",
        description: format!("Rerun {run_id} of {period}: {what}"),
        modality: None,
        tier: None,
        unit_price: None,
        quantity,
        amount,
    };
    for d in clients {
        let amount = d.contract.difference();
        let invoices: Vec<&IssuedInvoice> = issued_invoices.iter().filter(|i| i.client_id == d.client_id).collect();
        if amount.is_sign_negative() && !amount.is_zero() {
            let credit = -amount;
            let remaining: Decimal = invoices.iter().map(|i| i.remaining).sum();
            if credit > remaining {
                return Err(CorrectionError::CreditExceedsInvoices {
                    client_id: d.client_id.clone(),
                    currency: d.currency,
                    amount: credit,
                    remaining,
                });
            }
            // Credited against the period's invoices in issue order, each up to what remains.
            let mut left = credit;
            let mut parts: Vec<(&IssuedInvoice, Decimal)> = Vec::new();
            for inv in invoices {
                let take = left.min(inv.remaining);
                if take > Decimal::ZERO {
                    parts.push((inv, take));
                    left -= take;
                }
            }
            let weights: Vec<u64> = parts
                .iter()
                .map(|(_, a)| u64::try_from((*a / d.currency.minor_unit()).mantissa()).unwrap_or(1))
                .collect();
            let inr_shares = crate::allocation::allocate_by_weights(-d.inr.difference(), &weights, Currency::INR)
                .unwrap_or_else(|_| vec![-d.inr.difference(); parts.len().min(1)]);
            for ((inv, taxable_value), taxable_value_inr) in parts.into_iter().zip(inr_shares) {
                out.credit_notes.push(CreditPlan {
                    client_id: d.client_id.clone(),
                    corrects_invoice_id: inv.id,
                    corrects_invoice_number: inv.number.clone(),
                    currency: inv.currency,
                    lines: vec![adjustment_line("overcharge credited", 0, taxable_value)],
                    taxable_value,
                    tax: invoice_tax(
                        taxable_value,
                        inv.currency,
                        inv.tax_treatment,
                        inv.place_of_supply.as_deref(),
                        gst,
                    ),
                    taxable_value_inr,
                });
            }
        } else if amount > Decimal::ZERO {
            let first = invoices.first();
            let profile = catalog.client(&d.client_id).and_then(|v| v.in_force(last_day));
            let state = profile.and_then(|p| p.state_code.as_deref());
            let treatment = first.map_or_else(
                || {
                    catalog
                        .client_rules(&d.client_id)
                        .and_then(|h| h.select(last_day, chrono::DateTime::<chrono::Utc>::MAX_UTC))
                        .map_or(TaxTreatment::Taxable, |r| r.rules.tax)
                },
                |i| i.tax_treatment,
            );
            let place = first.map_or_else(|| place_of_supply(treatment, state), |i| i.place_of_supply.clone());
            out.invoices.push(SupplementPlan {
                corrects: first.map(|i| (i.id, i.number.clone())),
                invoice: InvoicePlan {
                    client_id: d.client_id.clone(),
                    client_name: profile.map_or_else(|| d.client_id.to_string(), |p| p.name.clone()),
                    client_gstin: first
                        .map_or_else(|| profile.and_then(|p| p.gstin.clone()), |i| i.client_gstin.clone()),
                    tax: invoice_tax(amount, d.currency, treatment, place.as_deref(), gst),
                    place_of_supply: place,
                    currency: d.currency,
                    billable_reports: u32::try_from((d.rerun_reports - d.billed_reports).max(0)).unwrap_or(0),
                    contract_rule_version: None,
                    lines: vec![adjustment_line("undercharge invoiced", d.rerun_reports - d.billed_reports, amount)],
                    taxable_value: amount,
                    taxable_value_inr: d.inr.difference(),
                },
            });
        }
    }
    for d in providers {
        let gross = d.effects.difference();
        if gross.is_zero() {
            continue;
        }
        let statement = issued_statements.iter().find(|s| s.provider_id == d.provider_id);
        let profile = catalog.provider(&d.provider_id).and_then(|v| v.in_force(last_day));
        let pan_present = statement.map_or_else(
            || profile.is_some_and(|p| p.pan.as_deref().is_some_and(|p| !p.is_empty())),
            |s| s.pan_present,
        );
        let earlier_in_year = earlier.get(&d.provider_id).copied().unwrap_or_default();
        let quantity = d.rerun_reports - d.paid_reports;
        out.payouts.push(PayoutAdjustmentPlan {
            corrects: statement.map(|s| (s.id, s.number.clone())),
            payout: PayoutPlan {
                provider_id: d.provider_id.clone(),
                provider_name: profile.map_or_else(|| d.provider_id.to_string(), |p| p.name.clone()),
                reports: quantity,
                lines: vec![adjustment_line("fees corrected", quantity, gross)],
                gross,
                earlier_in_year,
                pan_present,
                tds: tds.assess(earlier_in_year, gross, pan_present),
            },
        });
    }
    Ok(out)
}

/// The day a document is issued: today in the business time zone.
pub fn issue_date(calendar: crate::period::BusinessCalendar, now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    calendar.local_date(now)
}

#[cfg(test)]
mod tests;
