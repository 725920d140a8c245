//! Finance documents (spec §4.4, §5, §6): invoices, credit notes, payout statements, their
//! gapless numbers, and the periods' states. Append-only; written only inside the ledger's
//! close, rerun and credit-note transactions.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use radfin_domain::close::{ClientDifference, DocLine, InvoicePlan, PayoutPlan, ProviderDifference};
use radfin_domain::tax::{InvoiceTax, TaxKind};
use radfin_domain::{FinancialYear, Period, ProviderId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::StorageError;
use crate::convert::decode;
use crate::margin::MarginRow;
use crate::schema::{
    document_numbers, finance_credit_note_lines, finance_credit_notes, finance_invoice_lines, finance_invoices,
    payout_statement_lines, payout_statements, period_states, rerun_manifests,
};

/// A document series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocType {
    Invoice,
    CreditNote,
    Supplementary,
    Payout,
}

impl DocType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocType::Invoice => "INV",
            DocType::CreditNote => "CRN",
            DocType::Supplementary => "SUP",
            DocType::Payout => "PAY",
        }
    }

    /// Distinct advisory-lock key of the series.
    fn lock_key(self) -> i32 {
        match self {
            DocType::Invoice => 1,
            DocType::CreditNote => 2,
            DocType::Supplementary => 3,
            DocType::Payout => 4,
        }
    }
}

/// First key of radfin's transaction-level advisory locks on a document series ("nu").
const NUMBERING_LOCK: i32 = 0x6e75;
/// First key of the lock on a period's state ("pe"): closes and reruns take it exclusively, the
/// live view's batches shared.
const PERIOD_LOCK: i32 = 0x7065;

/// The next `count` numbers of a series, assigned inside the caller's transaction: the series
/// is locked until it commits, so numbers are gapless and consecutive (a rolled-back transaction
/// assigned nothing). `INV/25-26/000042`.
pub async fn next_numbers(
    conn: &mut AsyncPgConnection,
    doc_type: DocType,
    year: FinancialYear,
    count: usize,
) -> Result<Vec<String>, StorageError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let fy = year.to_string();
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind::<Integer, _>(NUMBERING_LOCK)
        .bind::<Integer, _>(doc_type.lock_key() * 10_000 + year.start_year().rem_euclid(10_000))
        .execute(conn)
        .await?;
    let last: Option<i32> = document_numbers::table
        .filter(document_numbers::doc_type.eq(doc_type.as_str()))
        .filter(document_numbers::financial_year.eq(&fy))
        .select(diesel::dsl::max(document_numbers::number))
        .first(conn)
        .await?;
    let first = last.unwrap_or(0) + 1;
    let count = i32::try_from(count).map_err(|_| StorageError::OutOfRange(format!("{count} document numbers")))?;
    let numbers: Vec<i32> = (first..first + count).collect();
    let texts: Vec<String> =
        numbers.iter().map(|n| format!("{}/{}/{n:06}", doc_type.as_str(), year.short_label())).collect();
    let rows: Vec<_> = numbers
        .iter()
        .zip(&texts)
        .map(|(n, text)| {
            (
                document_numbers::doc_type.eq(doc_type.as_str()),
                document_numbers::financial_year.eq(&fy),
                document_numbers::number.eq(*n),
                document_numbers::document_number.eq(text),
            )
        })
        .collect();
    for chunk in rows.chunks(10_000) {
        diesel::insert_into(document_numbers::table).values(chunk).execute(conn).await?;
    }
    Ok(texts)
}

/// The next number of a series ([`next_numbers`] of one).
pub async fn next_number(
    conn: &mut AsyncPgConnection,
    doc_type: DocType,
    year: FinancialYear,
) -> Result<String, StorageError> {
    let mut numbers = next_numbers(conn, doc_type, year, 1).await?;
    numbers.pop().ok_or_else(|| StorageError::corrupt("no document number was assigned"))
}

/// Locks a period's state for the rest of the transaction: `exclusive` for a close or rerun,
/// shared for the live view's batches (which then see the state the last close committed).
pub async fn lock_period(conn: &mut AsyncPgConnection, period: Period, exclusive: bool) -> Result<(), StorageError> {
    let sql =
        if exclusive { "SELECT pg_advisory_xact_lock($1, $2)" } else { "SELECT pg_advisory_xact_lock_shared($1, $2)" };
    let key = period.year() * 100 + i32::try_from(period.month()).unwrap_or(0);
    diesel::sql_query(sql).bind::<Integer, _>(PERIOD_LOCK).bind::<Integer, _>(key).execute(conn).await?;
    Ok(())
}

/// A period's state as its events say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodStatus {
    pub period: Period,
    pub closed: bool,
    /// The run of the period's current view, once closed (the CLOSE run, then the last applied
    /// RERUN).
    pub current_run_id: Option<i64>,
    pub close_run_id: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
}

#[derive(Queryable)]
struct StateRow {
    period: String,
    state: String,
    run_id: Option<i64>,
    actor: String,
    at: DateTime<Utc>,
}

/// The states of the periods with state events (`None`: all of them); a period without events
/// is open.
pub async fn period_statuses(
    conn: &mut AsyncPgConnection,
    periods: Option<&[Period]>,
) -> Result<BTreeMap<Period, PeriodStatus>, StorageError> {
    let mut query = period_states::table
        .select((
            period_states::period,
            period_states::state,
            period_states::run_id,
            period_states::actor,
            period_states::at,
        ))
        .order(period_states::id.asc())
        .into_boxed();
    if let Some(periods) = periods {
        query = query.filter(period_states::period.eq_any(periods.iter().map(ToString::to_string).collect::<Vec<_>>()));
    }
    let rows: Vec<StateRow> = query.load(conn).await?;
    let mut out: BTreeMap<Period, PeriodStatus> = BTreeMap::new();
    for row in rows {
        let period: Period = decode("period_states.period", &row.period, str::parse)?;
        let s = out.entry(period).or_insert(PeriodStatus {
            period,
            closed: false,
            current_run_id: None,
            close_run_id: None,
            closed_at: None,
            closed_by: None,
        });
        s.closed = row.state == "CLOSED";
        s.current_run_id = row.run_id;
        if s.closed && s.close_run_id.is_none() {
            s.close_run_id = row.run_id;
            s.closed_at = Some(row.at);
            s.closed_by = Some(row.actor);
        }
    }
    Ok(out)
}

/// The state of one period (open when it has no events).
pub async fn period_status(conn: &mut AsyncPgConnection, period: Period) -> Result<PeriodStatus, StorageError> {
    Ok(period_statuses(conn, Some(&[period])).await?.remove(&period).unwrap_or(PeriodStatus {
        period,
        closed: false,
        current_run_id: None,
        close_run_id: None,
        closed_at: None,
        closed_by: None,
    }))
}

/// Appends a state event: `CLOSED` with the run that is now the period's current view.
pub async fn mark_closed(
    conn: &mut AsyncPgConnection,
    period: Period,
    run_id: i64,
    actor: &str,
    reason: Option<&str>,
) -> Result<(), StorageError> {
    diesel::insert_into(period_states::table)
        .values((
            period_states::period.eq(period.to_string()),
            period_states::state.eq("CLOSED"),
            period_states::run_id.eq(Some(run_id)),
            period_states::actor.eq(actor),
            period_states::reason.eq(reason.filter(|r| !r.is_empty())),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Where a new document comes from.
pub struct Issue<'a> {
    pub period: Period,
    pub run_id: Option<i64>,
    pub issue_date: NaiveDate,
    pub created_by: &'a str,
}

fn tax_columns(tax: &InvoiceTax) -> [(Option<Decimal>, Decimal); 3] {
    let mut out = [(None, Decimal::ZERO); 3];
    for l in &tax.lines {
        let i = match l.kind {
            TaxKind::Cgst => 0,
            TaxKind::Sgst => 1,
            TaxKind::Igst => 2,
        };
        out[i] = (Some(l.rate_pct), l.amount);
    }
    out
}

/// Writes an invoice (kind `INVOICE`, or `SUPPLEMENTARY` correcting `corrects`) with its
/// lines; returns its id.
pub async fn insert_invoice(
    conn: &mut AsyncPgConnection,
    issue: &Issue<'_>,
    number: &str,
    plan: &InvoicePlan,
    corrects: Option<i64>,
) -> Result<i64, StorageError> {
    let [cgst, sgst, igst] = tax_columns(&plan.tax);
    let id: i64 = diesel::insert_into(finance_invoices::table)
        .values((
            finance_invoices::invoice_number.eq(number),
            finance_invoices::kind.eq(if corrects.is_some() { "SUPPLEMENTARY" } else { "INVOICE" }),
            finance_invoices::client_id.eq(plan.client_id.as_str()),
            finance_invoices::period.eq(issue.period.to_string()),
            finance_invoices::run_id.eq(issue.run_id.unwrap_or_default()),
            finance_invoices::issue_date.eq(issue.issue_date),
            finance_invoices::financial_year.eq(FinancialYear::of(issue.issue_date).to_string()),
            finance_invoices::currency.eq(plan.currency.code()),
            finance_invoices::client_rule_version.eq(plan.contract_rule_version.and_then(|v| i32::try_from(v).ok())),
            finance_invoices::billable_reports.eq(i32::try_from(plan.billable_reports).unwrap_or(i32::MAX)),
            finance_invoices::taxable_value.eq(plan.taxable_value),
            finance_invoices::tax_treatment.eq(plan.tax.treatment.as_str()),
            finance_invoices::cgst_rate_pct.eq(cgst.0),
            finance_invoices::cgst_amount.eq(cgst.1),
            finance_invoices::sgst_rate_pct.eq(sgst.0),
            finance_invoices::sgst_amount.eq(sgst.1),
            finance_invoices::igst_rate_pct.eq(igst.0),
            finance_invoices::igst_amount.eq(igst.1),
            finance_invoices::tax_total.eq(plan.tax.total()),
            finance_invoices::total.eq(plan.total()),
            finance_invoices::endorsement.eq(plan.tax.endorsement),
            finance_invoices::taxable_value_inr.eq(plan.taxable_value_inr),
            finance_invoices::client_gstin.eq(plan.client_gstin.as_deref()),
            finance_invoices::place_of_supply.eq(plan.place_of_supply.as_deref()),
            finance_invoices::corrects_invoice_id.eq(corrects),
            finance_invoices::created_by.eq(issue.created_by),
        ))
        .returning(finance_invoices::id)
        .get_result(conn)
        .await?;
    let lines: Vec<_> = plan
        .lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            (
                finance_invoice_lines::invoice_id.eq(id),
                finance_invoice_lines::line_no.eq(i32::try_from(n + 1).unwrap_or(i32::MAX)),
                finance_invoice_lines::kind.eq(l.kind),
                finance_invoice_lines::description.eq(&l.description),
                finance_invoice_lines::modality.eq(l.modality.map(|m| m.as_str())),
                finance_invoice_lines::tier.eq(l.tier.and_then(|t| i32::try_from(t).ok())),
                finance_invoice_lines::unit_price.eq(l.unit_price),
                finance_invoice_lines::quantity.eq(l.quantity.max(0)),
                finance_invoice_lines::amount.eq(l.amount),
            )
        })
        .collect();
    diesel::insert_into(finance_invoice_lines::table).values(lines).execute(conn).await?;
    Ok(id)
}

/// A credit note to write.
pub struct NewCreditNote<'a> {
    pub client_id: &'a str,
    pub corrects_invoice_id: i64,
    pub currency: &'a str,
    pub lines: &'a [DocLine],
    pub taxable_value: Decimal,
    pub tax: &'a InvoiceTax,
    pub taxable_value_inr: Decimal,
    pub reason: &'a str,
    /// The caller's idempotency key of a credit note issued by hand (no run).
    pub request_id: Option<&'a str>,
}

/// Writes a credit note with its lines; returns its id.
pub async fn insert_credit_note(
    conn: &mut AsyncPgConnection,
    issue: &Issue<'_>,
    number: &str,
    note: &NewCreditNote<'_>,
) -> Result<i64, StorageError> {
    let [cgst, sgst, igst] = tax_columns(note.tax);
    let id: i64 = diesel::insert_into(finance_credit_notes::table)
        .values((
            finance_credit_notes::credit_note_number.eq(number),
            finance_credit_notes::client_id.eq(note.client_id),
            finance_credit_notes::period.eq(issue.period.to_string()),
            finance_credit_notes::run_id.eq(issue.run_id),
            finance_credit_notes::corrects_invoice_id.eq(note.corrects_invoice_id),
            finance_credit_notes::issue_date.eq(issue.issue_date),
            finance_credit_notes::financial_year.eq(FinancialYear::of(issue.issue_date).to_string()),
            finance_credit_notes::currency.eq(note.currency),
            finance_credit_notes::taxable_value.eq(note.taxable_value),
            finance_credit_notes::tax_treatment.eq(note.tax.treatment.as_str()),
            finance_credit_notes::cgst_rate_pct.eq(cgst.0),
            finance_credit_notes::cgst_amount.eq(cgst.1),
            finance_credit_notes::sgst_rate_pct.eq(sgst.0),
            finance_credit_notes::sgst_amount.eq(sgst.1),
            finance_credit_notes::igst_rate_pct.eq(igst.0),
            finance_credit_notes::igst_amount.eq(igst.1),
            finance_credit_notes::tax_total.eq(note.tax.total()),
            finance_credit_notes::total.eq(note.taxable_value + note.tax.total()),
            finance_credit_notes::taxable_value_inr.eq(note.taxable_value_inr),
            finance_credit_notes::reason.eq(note.reason),
            finance_credit_notes::created_by.eq(issue.created_by),
            finance_credit_notes::request_id.eq(note.request_id),
        ))
        .returning(finance_credit_notes::id)
        .get_result(conn)
        .await?;
    let lines: Vec<_> = note
        .lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            (
                finance_credit_note_lines::credit_note_id.eq(id),
                finance_credit_note_lines::line_no.eq(i32::try_from(n + 1).unwrap_or(i32::MAX)),
                finance_credit_note_lines::description.eq(&l.description),
                finance_credit_note_lines::modality.eq(l.modality.map(|m| m.as_str())),
                finance_credit_note_lines::quantity.eq(l.quantity.max(0)),
                finance_credit_note_lines::amount.eq(l.amount),
            )
        })
        .collect();
    diesel::insert_into(finance_credit_note_lines::table).values(lines).execute(conn).await?;
    Ok(id)
}

/// Writes a payout statement (or, correcting `corrects`, a signed adjustment); returns its id.
pub async fn insert_statement(
    conn: &mut AsyncPgConnection,
    issue: &Issue<'_>,
    number: &str,
    plan: &PayoutPlan,
    adjustment: bool,
    corrects: Option<i64>,
) -> Result<i64, StorageError> {
    let id: i64 = diesel::insert_into(payout_statements::table)
        .values((
            payout_statements::statement_number.eq(number),
            payout_statements::kind.eq(if adjustment { "ADJUSTMENT" } else { "STATEMENT" }),
            payout_statements::provider_id.eq(plan.provider_id.as_str()),
            payout_statements::period.eq(issue.period.to_string()),
            payout_statements::run_id.eq(issue.run_id.unwrap_or_default()),
            payout_statements::issue_date.eq(issue.issue_date),
            payout_statements::financial_year.eq(FinancialYear::of(issue.issue_date).to_string()),
            payout_statements::reports.eq(plan.reports),
            payout_statements::gross.eq(plan.gross),
            payout_statements::fees_earlier_in_year.eq(plan.earlier_in_year),
            payout_statements::pan_present.eq(plan.pan_present),
            payout_statements::tds_rate_pct.eq(plan.tds.rate_pct),
            payout_statements::tds_base.eq(plan.tds.base),
            payout_statements::tds_amount.eq(plan.tds.amount),
            payout_statements::net_payable.eq(plan.net()),
            payout_statements::corrects_statement_id.eq(corrects),
            payout_statements::created_by.eq(issue.created_by),
        ))
        .returning(payout_statements::id)
        .get_result(conn)
        .await?;
    let lines: Vec<_> = plan
        .lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            (
                payout_statement_lines::statement_id.eq(id),
                payout_statement_lines::line_no.eq(i32::try_from(n + 1).unwrap_or(i32::MAX)),
                payout_statement_lines::description.eq(&l.description),
                payout_statement_lines::modality.eq(l.modality.map(|m| m.as_str())),
                payout_statement_lines::quantity.eq(l.quantity),
                payout_statement_lines::amount.eq(l.amount),
            )
        })
        .collect();
    diesel::insert_into(payout_statement_lines::table).values(lines).execute(conn).await?;
    Ok(id)
}

/// Each provider's gross on the statements and adjustments of a financial year: the fees
/// "earlier in the year" of the next statement (spec §4.4).
pub async fn fees_in_year(
    conn: &mut AsyncPgConnection,
    year: FinancialYear,
) -> Result<BTreeMap<ProviderId, Decimal>, StorageError> {
    let rows: Vec<(String, Option<Decimal>)> = payout_statements::table
        .filter(payout_statements::financial_year.eq(year.to_string()))
        .group_by(payout_statements::provider_id)
        .select((payout_statements::provider_id, diesel::dsl::sum(payout_statements::gross)))
        .load(conn)
        .await?;
    rows.into_iter()
        .map(|(id, sum)| {
            Ok((decode("payout_statements.provider_id", &id, ProviderId::parse)?, sum.unwrap_or_default()))
        })
        .collect()
}

/// A stored invoice.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = finance_invoices, check_for_backend(diesel::pg::Pg))]
pub struct InvoiceRow {
    pub id: i64,
    pub invoice_number: String,
    pub kind: String,
    pub client_id: String,
    pub period: String,
    pub run_id: i64,
    pub issue_date: NaiveDate,
    pub financial_year: String,
    pub currency: String,
    pub client_rule_version: Option<i32>,
    pub billable_reports: i32,
    pub taxable_value: Decimal,
    pub tax_treatment: String,
    pub cgst_rate_pct: Option<Decimal>,
    pub cgst_amount: Decimal,
    pub sgst_rate_pct: Option<Decimal>,
    pub sgst_amount: Decimal,
    pub igst_rate_pct: Option<Decimal>,
    pub igst_amount: Decimal,
    pub tax_total: Decimal,
    pub total: Decimal,
    pub endorsement: Option<String>,
    pub taxable_value_inr: Decimal,
    pub client_gstin: Option<String>,
    pub place_of_supply: Option<String>,
    pub corrects_invoice_id: Option<i64>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = finance_invoice_lines, check_for_backend(diesel::pg::Pg))]
pub struct InvoiceLineRow {
    pub invoice_id: i64,
    pub line_no: i32,
    pub kind: String,
    pub description: String,
    pub modality: Option<String>,
    pub tier: Option<i32>,
    pub unit_price: Option<Decimal>,
    pub quantity: i32,
    pub amount: Decimal,
}

/// An invoice with its lines, what has been credited against it, and the number of the invoice
/// it supplements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceDoc {
    pub invoice: InvoiceRow,
    pub lines: Vec<InvoiceLineRow>,
    /// Σ taxable value of its credit notes.
    pub credited: Decimal,
    pub corrects_number: Option<String>,
}

impl InvoiceDoc {
    pub fn remaining(&self) -> Decimal {
        self.invoice.taxable_value - self.credited
    }
}

/// Which invoices to read.
#[derive(Clone, Debug, Default)]
pub struct DocFilter {
    pub period: Option<Period>,
    /// A client or provider id.
    pub party: Option<String>,
    pub number: Option<String>,
    pub run_id: Option<i64>,
}

/// Invoices in issue order (id), with their lines and credits.
pub async fn invoices(conn: &mut AsyncPgConnection, filter: &DocFilter) -> Result<Vec<InvoiceDoc>, StorageError> {
    let mut query =
        finance_invoices::table.select(InvoiceRow::as_select()).order(finance_invoices::id.asc()).into_boxed();
    if let Some(p) = filter.period {
        query = query.filter(finance_invoices::period.eq(p.to_string()));
    }
    if let Some(c) = &filter.party {
        query = query.filter(finance_invoices::client_id.eq(c.clone()));
    }
    if let Some(n) = &filter.number {
        query = query.filter(finance_invoices::invoice_number.eq(n.clone()));
    }
    if let Some(r) = filter.run_id {
        query = query.filter(finance_invoices::run_id.eq(r));
    }
    let rows: Vec<InvoiceRow> = query.load(conn).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let lines: Vec<InvoiceLineRow> = finance_invoice_lines::table
        .filter(finance_invoice_lines::invoice_id.eq_any(&ids))
        .select(InvoiceLineRow::as_select())
        .order((finance_invoice_lines::invoice_id.asc(), finance_invoice_lines::line_no.asc()))
        .load(conn)
        .await?;
    let credits: Vec<(i64, Option<Decimal>)> = finance_credit_notes::table
        .filter(finance_credit_notes::corrects_invoice_id.eq_any(&ids))
        .group_by(finance_credit_notes::corrects_invoice_id)
        .select((finance_credit_notes::corrects_invoice_id, diesel::dsl::sum(finance_credit_notes::taxable_value)))
        .load(conn)
        .await?;
    let corrected: Vec<i64> = rows.iter().filter_map(|r| r.corrects_invoice_id).collect();
    let numbers: BTreeMap<i64, String> = if corrected.is_empty() {
        BTreeMap::new()
    } else {
        finance_invoices::table
            .filter(finance_invoices::id.eq_any(&corrected))
            .select((finance_invoices::id, finance_invoices::invoice_number))
            .load::<(i64, String)>(conn)
            .await?
            .into_iter()
            .collect()
    };
    let credits: BTreeMap<i64, Decimal> = credits.into_iter().map(|(id, s)| (id, s.unwrap_or_default())).collect();
    let mut by_invoice: BTreeMap<i64, Vec<InvoiceLineRow>> = BTreeMap::new();
    for l in lines {
        by_invoice.entry(l.invoice_id).or_default().push(l);
    }
    Ok(rows
        .into_iter()
        .map(|invoice| InvoiceDoc {
            lines: by_invoice.remove(&invoice.id).unwrap_or_default(),
            credited: credits.get(&invoice.id).copied().unwrap_or_default(),
            corrects_number: invoice.corrects_invoice_id.and_then(|id| numbers.get(&id).cloned()),
            invoice,
        })
        .collect())
}

/// A stored credit note.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = finance_credit_notes, check_for_backend(diesel::pg::Pg))]
pub struct CreditNoteRow {
    pub id: i64,
    pub credit_note_number: String,
    pub client_id: String,
    pub period: String,
    pub run_id: Option<i64>,
    pub corrects_invoice_id: i64,
    pub issue_date: NaiveDate,
    pub financial_year: String,
    pub currency: String,
    pub taxable_value: Decimal,
    pub tax_treatment: String,
    pub cgst_rate_pct: Option<Decimal>,
    pub cgst_amount: Decimal,
    pub sgst_rate_pct: Option<Decimal>,
    pub sgst_amount: Decimal,
    pub igst_rate_pct: Option<Decimal>,
    pub igst_amount: Decimal,
    pub tax_total: Decimal,
    pub total: Decimal,
    pub taxable_value_inr: Decimal,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub request_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = finance_credit_note_lines, check_for_backend(diesel::pg::Pg))]
pub struct CreditNoteLineRow {
    pub credit_note_id: i64,
    pub line_no: i32,
    pub description: String,
    pub modality: Option<String>,
    pub quantity: i32,
    pub amount: Decimal,
}

/// A credit note with its lines and the number of the invoice it corrects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditNoteDoc {
    pub note: CreditNoteRow,
    pub lines: Vec<CreditNoteLineRow>,
    pub invoice_number: String,
}

/// Which credit notes to read.
#[derive(Clone, Debug, Default)]
pub struct CreditFilter {
    pub docs: DocFilter,
    pub invoice_id: Option<i64>,
    pub request_id: Option<String>,
}

/// Credit notes in issue order.
pub async fn credit_notes(
    conn: &mut AsyncPgConnection,
    filter: &CreditFilter,
) -> Result<Vec<CreditNoteDoc>, StorageError> {
    let mut query = finance_credit_notes::table
        .inner_join(finance_invoices::table)
        .select((CreditNoteRow::as_select(), finance_invoices::invoice_number))
        .order(finance_credit_notes::id.asc())
        .into_boxed();
    let f = &filter.docs;
    if let Some(p) = f.period {
        query = query.filter(finance_credit_notes::period.eq(p.to_string()));
    }
    if let Some(c) = &f.party {
        query = query.filter(finance_credit_notes::client_id.eq(c.clone()));
    }
    if let Some(n) = &f.number {
        query = query.filter(finance_credit_notes::credit_note_number.eq(n.clone()));
    }
    if let Some(r) = f.run_id {
        query = query.filter(finance_credit_notes::run_id.eq(r));
    }
    if let Some(i) = filter.invoice_id {
        query = query.filter(finance_credit_notes::corrects_invoice_id.eq(i));
    }
    if let Some(r) = &filter.request_id {
        query = query.filter(finance_credit_notes::request_id.eq(r.clone()));
    }
    let rows: Vec<(CreditNoteRow, String)> = query.load(conn).await?;
    let ids: Vec<i64> = rows.iter().map(|(r, _)| r.id).collect();
    let mut lines: BTreeMap<i64, Vec<CreditNoteLineRow>> = BTreeMap::new();
    if !ids.is_empty() {
        let all: Vec<CreditNoteLineRow> = finance_credit_note_lines::table
            .filter(finance_credit_note_lines::credit_note_id.eq_any(&ids))
            .select(CreditNoteLineRow::as_select())
            .order((finance_credit_note_lines::credit_note_id.asc(), finance_credit_note_lines::line_no.asc()))
            .load(conn)
            .await?;
        for l in all {
            lines.entry(l.credit_note_id).or_default().push(l);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(note, invoice_number)| CreditNoteDoc {
            lines: lines.remove(&note.id).unwrap_or_default(),
            note,
            invoice_number,
        })
        .collect())
}

/// A stored payout statement.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = payout_statements, check_for_backend(diesel::pg::Pg))]
pub struct StatementRow {
    pub id: i64,
    pub statement_number: String,
    pub kind: String,
    pub provider_id: String,
    pub period: String,
    pub run_id: i64,
    pub issue_date: NaiveDate,
    pub financial_year: String,
    pub currency: String,
    pub reports: i32,
    pub gross: Decimal,
    pub fees_earlier_in_year: Decimal,
    pub pan_present: bool,
    pub tds_section: String,
    pub tds_rate_pct: Decimal,
    pub tds_base: Decimal,
    pub tds_amount: Decimal,
    pub net_payable: Decimal,
    pub corrects_statement_id: Option<i64>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = payout_statement_lines, check_for_backend(diesel::pg::Pg))]
pub struct StatementLineRow {
    pub statement_id: i64,
    pub line_no: i32,
    pub description: String,
    pub modality: Option<String>,
    pub quantity: i32,
    pub amount: Decimal,
}

/// A payout statement with its lines and the number of the statement it corrects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementDoc {
    pub statement: StatementRow,
    pub lines: Vec<StatementLineRow>,
    pub corrects_number: Option<String>,
}

/// Payout statements and adjustments in issue order.
pub async fn statements(conn: &mut AsyncPgConnection, filter: &DocFilter) -> Result<Vec<StatementDoc>, StorageError> {
    let mut query =
        payout_statements::table.select(StatementRow::as_select()).order(payout_statements::id.asc()).into_boxed();
    if let Some(p) = filter.period {
        query = query.filter(payout_statements::period.eq(p.to_string()));
    }
    if let Some(c) = &filter.party {
        query = query.filter(payout_statements::provider_id.eq(c.clone()));
    }
    if let Some(n) = &filter.number {
        query = query.filter(payout_statements::statement_number.eq(n.clone()));
    }
    if let Some(r) = filter.run_id {
        query = query.filter(payout_statements::run_id.eq(r));
    }
    let rows: Vec<StatementRow> = query.load(conn).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut lines: BTreeMap<i64, Vec<StatementLineRow>> = BTreeMap::new();
    let all: Vec<StatementLineRow> = payout_statement_lines::table
        .filter(payout_statement_lines::statement_id.eq_any(&ids))
        .select(StatementLineRow::as_select())
        .order((payout_statement_lines::statement_id.asc(), payout_statement_lines::line_no.asc()))
        .load(conn)
        .await?;
    for l in all {
        lines.entry(l.statement_id).or_default().push(l);
    }
    let corrected: Vec<i64> = rows.iter().filter_map(|r| r.corrects_statement_id).collect();
    let numbers: BTreeMap<i64, String> = if corrected.is_empty() {
        BTreeMap::new()
    } else {
        payout_statements::table
            .filter(payout_statements::id.eq_any(&corrected))
            .select((payout_statements::id, payout_statements::statement_number))
            .load::<(i64, String)>(conn)
            .await?
            .into_iter()
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|statement| StatementDoc {
            lines: lines.remove(&statement.id).unwrap_or_default(),
            corrects_number: statement.corrects_statement_id.and_then(|id| numbers.get(&id).cloned()),
            statement,
        })
        .collect())
}

/// Locks an invoice against concurrent credit notes for the rest of the transaction.
pub async fn lock_invoice(conn: &mut AsyncPgConnection, invoice_id: i64) -> Result<(), StorageError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(invoice_id.wrapping_add(0x696e_0000_0000_0000))
        .execute(conn)
        .await?;
    Ok(())
}

/// Σ INR of the credit notes against an invoice.
pub async fn credited_inr(conn: &mut AsyncPgConnection, invoice_id: i64) -> Result<Decimal, StorageError> {
    let sum: Option<Decimal> = finance_credit_notes::table
        .filter(finance_credit_notes::corrects_invoice_id.eq(invoice_id))
        .select(diesel::dsl::sum(finance_credit_notes::taxable_value_inr))
        .first(conn)
        .await?;
    Ok(sum.unwrap_or_default())
}

/// What a previewed rerun changes, kept with its manifest (both runs' entries never change, so
/// it holds for as long as the period's current view is the run it was compared with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunComparison {
    pub clients: Vec<ClientDifference>,
    pub providers: Vec<ProviderDifference>,
    /// The period's margin summary once the rerun is applied.
    pub margin: Vec<MarginRow>,
}

/// A rerun's manifest row, written when it is previewed.
pub struct NewManifest<'a> {
    pub run_id: i64,
    pub period: Period,
    pub compared_run_id: i64,
    pub report_set_hash: &'a str,
    pub manifest: &'a serde_json::Value,
    pub comparison: &'a RerunComparison,
}

/// Records a previewed rerun's manifest and comparison.
pub async fn insert_manifest(conn: &mut AsyncPgConnection, m: &NewManifest<'_>) -> Result<(), StorageError> {
    let comparison = serde_json::to_value(m.comparison)
        .map_err(|e| StorageError::corrupt(format_args!("rerun {} comparison: {e}", m.run_id)))?;
    diesel::insert_into(rerun_manifests::table)
        .values((
            rerun_manifests::run_id.eq(m.run_id),
            rerun_manifests::period.eq(m.period.to_string()),
            rerun_manifests::compared_run_id.eq(m.compared_run_id),
            rerun_manifests::report_set_hash.eq(m.report_set_hash),
            rerun_manifests::manifest.eq(m.manifest),
            rerun_manifests::comparison.eq(Some(comparison)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A rerun's manifest, if `run_id` is a previewed rerun.
pub async fn manifest(conn: &mut AsyncPgConnection, run_id: i64) -> Result<Option<serde_json::Value>, StorageError> {
    Ok(rerun_manifests::table.find(run_id).select(rerun_manifests::manifest).first(conn).await.optional()?)
}

/// A previewed rerun's comparison; `None` if `run_id` is not a previewed rerun, or was previewed
/// before previews kept their comparison (see [`manifest`]).
pub async fn comparison(conn: &mut AsyncPgConnection, run_id: i64) -> Result<Option<RerunComparison>, StorageError> {
    let stored: Option<Option<serde_json::Value>> =
        rerun_manifests::table.find(run_id).select(rerun_manifests::comparison).first(conn).await.optional()?;
    stored
        .flatten()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StorageError::corrupt(format_args!("rerun_manifests {run_id} comparison: {e}")))
}

/// Whether a run became its period's current view (a close, or an applied rerun).
pub async fn applied(conn: &mut AsyncPgConnection, period: Period, run_id: i64) -> Result<bool, StorageError> {
    let n: i64 = period_states::table
        .filter(period_states::period.eq(period.to_string()))
        .filter(period_states::run_id.eq(run_id))
        .count()
        .get_result(conn)
        .await?;
    Ok(n > 0)
}
