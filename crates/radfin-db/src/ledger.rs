//! Ledger entries (`ledger_entries`, append-only, partitioned by period): two per priced
//! report and pricing run, keyed by (period, report, revision, run, side).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use radfin_domain::fx::AppliedRate;
use radfin_domain::{ClientId, Currency, Grade, Modality, Period, ProviderId, ReportId, ReportStatus};
use rust_decimal::Decimal;

use crate::StorageError;
use crate::convert::{decode, revision_from_db, rows_per_insert, u32_from_db, u32_to_db};
use crate::schema::ledger_entries;

/// The side of a report an entry books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerSide {
    /// What the platform pays the radiologist (INR).
    Cogs,
    /// What the platform charges the hospital (contract currency).
    Revenue,
}

impl LedgerSide {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerSide::Cogs => "COGS",
            LedgerSide::Revenue => "REVENUE",
        }
    }
}

impl fmt::Display for LedgerSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LedgerSide {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "COGS" => Ok(LedgerSide::Cogs),
            "REVENUE" => Ok(LedgerSide::Revenue),
            other => Err(format!("must be one of COGS, REVENUE, got {other:?}")),
        }
    }
}

/// A ledger entry to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLedgerEntry {
    pub period: Period,
    pub run_id: i64,
    pub report_id: ReportId,
    pub revision: u32,
    pub side: LedgerSide,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub modality: Modality,
    pub grade: Grade,
    pub status: ReportStatus,
    pub currency: Currency,
    pub amount: Decimal,
    /// The rate that converted `amount` (None when `currency` is INR).
    pub fx: Option<AppliedRate>,
    pub amount_inr: Decimal,
    /// The rule version that priced this side (None for a cancelled report).
    pub rule_version: Option<u32>,
}

/// A stored ledger entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntryRow {
    pub id: i64,
    pub period: Period,
    pub run_id: i64,
    pub report_id: ReportId,
    pub revision: u32,
    pub side: LedgerSide,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub modality: Modality,
    pub grade: Grade,
    pub status: ReportStatus,
    pub currency: Currency,
    pub amount: Decimal,
    pub fx: Option<AppliedRate>,
    pub amount_inr: Decimal,
    pub rule_version: Option<u32>,
    pub created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = ledger_entries)]
struct LedgerInsert<'a> {
    period: String,
    run_id: i64,
    report_id: &'a str,
    revision: i64,
    side: &'static str,
    client_id: &'a str,
    provider_id: &'a str,
    modality: &'static str,
    grade: &'static str,
    status: &'static str,
    currency: &'static str,
    amount: Decimal,
    fx_rate: Option<Decimal>,
    fx_rate_date: Option<NaiveDate>,
    fx_source: Option<&'a str>,
    amount_inr: Decimal,
    rule_version: Option<i32>,
}

/// Bound columns of [`LedgerInsert`].
const INSERT_COLUMNS: usize = 17;

impl<'a> LedgerInsert<'a> {
    fn new(e: &'a NewLedgerEntry) -> Result<Self, StorageError> {
        Ok(LedgerInsert {
            period: e.period.to_string(),
            run_id: e.run_id,
            report_id: e.report_id.as_str(),
            revision: i64::from(e.revision),
            side: e.side.as_str(),
            client_id: e.client_id.as_str(),
            provider_id: e.provider_id.as_str(),
            modality: e.modality.as_str(),
            grade: e.grade.as_str(),
            status: e.status.as_str(),
            currency: e.currency.code(),
            amount: e.amount,
            fx_rate: e.fx.as_ref().map(|r| r.inr_per_unit),
            fx_rate_date: e.fx.as_ref().map(|r| r.rate_date),
            fx_source: e.fx.as_ref().map(|r| &*r.source),
            amount_inr: e.amount_inr,
            rule_version: e.rule_version.map(|v| u32_to_db("ledger_entries.rule_version", v)).transpose()?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger_entries, check_for_backend(diesel::pg::Pg))]
struct LedgerRow {
    id: i64,
    period: String,
    run_id: i64,
    report_id: String,
    revision: i64,
    side: String,
    client_id: String,
    provider_id: String,
    modality: String,
    grade: String,
    status: String,
    currency: String,
    amount: Decimal,
    fx_rate: Option<Decimal>,
    fx_rate_date: Option<NaiveDate>,
    fx_source: Option<String>,
    amount_inr: Decimal,
    rule_version: Option<i32>,
    created_at: DateTime<Utc>,
}

impl TryFrom<LedgerRow> for LedgerEntryRow {
    type Error = StorageError;

    fn try_from(row: LedgerRow) -> Result<Self, StorageError> {
        let fx = match (row.fx_rate, row.fx_rate_date, row.fx_source) {
            (Some(inr_per_unit), Some(rate_date), Some(source)) => {
                Some(AppliedRate { inr_per_unit, rate_date, source: Arc::from(source) })
            }
            (None, None, None) => None,
            _ => return Err(StorageError::corrupt(format_args!("ledger_entries id {} has a partial FX rate", row.id))),
        };
        Ok(LedgerEntryRow {
            id: row.id,
            period: decode("ledger_entries.period", &row.period, str::parse)?,
            run_id: row.run_id,
            report_id: decode("ledger_entries.report_id", &row.report_id, ReportId::parse)?,
            revision: revision_from_db("ledger_entries.revision", row.revision)?,
            side: decode("ledger_entries.side", &row.side, str::parse)?,
            client_id: decode("ledger_entries.client_id", &row.client_id, ClientId::parse)?,
            provider_id: decode("ledger_entries.provider_id", &row.provider_id, ProviderId::parse)?,
            modality: decode("ledger_entries.modality", &row.modality, str::parse)?,
            grade: decode("ledger_entries.grade", &row.grade, str::parse)?,
            status: decode("ledger_entries.status", &row.status, str::parse)?,
            currency: decode("ledger_entries.currency", &row.currency, Currency::parse)?,
            amount: row.amount,
            fx,
            amount_inr: row.amount_inr,
            rule_version: row.rule_version.map(|v| u32_from_db("ledger_entries.rule_version", v)).transpose()?,
            created_at: row.created_at,
        })
    }
}

/// Writes ledger entries: makes sure each of their periods has its partition
/// (`radfin_ensure_ledger_partition`), then multi-row `INSERT … ON CONFLICT DO NOTHING` on the
/// idempotency key, so a redelivered entry changes nothing. Atomic (a savepoint of the caller's
/// transaction, if any). Returns the rows actually inserted.
pub async fn insert_entries(conn: &mut AsyncPgConnection, entries: &[NewLedgerEntry]) -> Result<usize, StorageError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let rows = entries.iter().map(LedgerInsert::new).collect::<Result<Vec<_>, _>>()?;
    let mut periods: Vec<String> = rows.iter().map(|r| r.period.clone()).collect();
    periods.sort_unstable();
    periods.dedup();
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT radfin_ensure_ledger_partition(p) FROM unnest($1::text[]) AS p")
            .bind::<Array<Text>, _>(&periods)
            .execute(conn)
            .await?;
        let mut inserted = 0;
        for chunk in rows.chunks(rows_per_insert(INSERT_COLUMNS)) {
            inserted += diesel::insert_into(ledger_entries::table)
                .values(chunk)
                .on_conflict((
                    ledger_entries::period,
                    ledger_entries::report_id,
                    ledger_entries::revision,
                    ledger_entries::run_id,
                    ledger_entries::side,
                ))
                .do_nothing()
                .execute(conn)
                .await?;
        }
        Ok(inserted)
    })
    .await
}

/// Every entry of a report, all revisions and runs, by (revision, run, side).
pub async fn of_report(conn: &mut AsyncPgConnection, report_id: &str) -> Result<Vec<LedgerEntryRow>, StorageError> {
    let rows: Vec<LedgerRow> = ledger_entries::table
        .filter(ledger_entries::report_id.eq(report_id))
        .order((ledger_entries::revision.asc(), ledger_entries::run_id.asc(), ledger_entries::side.asc()))
        .select(LedgerRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter().map(LedgerEntryRow::try_from).collect()
}

/// A page of a period's entries in id order: up to `limit` entries with an id above `after_id`
/// (the last id of the previous page; `None` for the first page).
pub async fn of_period(
    conn: &mut AsyncPgConnection,
    period: Period,
    limit: i64,
    after_id: Option<i64>,
) -> Result<Vec<LedgerEntryRow>, StorageError> {
    let rows: Vec<LedgerRow> = ledger_entries::table
        .filter(ledger_entries::period.eq(period.to_string()))
        .filter(ledger_entries::id.gt(after_id.unwrap_or(0)))
        .order(ledger_entries::id.asc())
        .limit(limit)
        .select(LedgerRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter().map(LedgerEntryRow::try_from).collect()
}

/// A client's totals in a period's current view.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct ClientTotalsRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub client_id: String,
    /// Final reports with a revenue entry.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub reports: i64,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub revenue_inr: Decimal,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub cogs_inr: Decimal,
}

/// Per client, the period's live run as it stands: for each report and side the entry of its
/// highest revision, summed in INR. Provisional until the period is closed.
pub async fn summarize_live(
    conn: &mut AsyncPgConnection,
    period: Period,
) -> Result<Vec<ClientTotalsRow>, StorageError> {
    let rows = diesel::sql_query(
        "WITH current AS ( \
             SELECT DISTINCT ON (e.report_id, e.side) e.client_id, e.side, e.status, e.amount_inr \
             FROM ledger_entries e JOIN pricing_runs r ON r.run_id = e.run_id AND r.kind = 'LIVE' \
             WHERE e.period = $1 \
             ORDER BY e.report_id, e.side, e.revision DESC) \
         SELECT client_id, \
                count(*) FILTER (WHERE side = 'REVENUE' AND status = 'FINAL') AS reports, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'REVENUE'), 0) AS revenue_inr, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'COGS'), 0) AS cogs_inr \
         FROM current GROUP BY client_id ORDER BY client_id",
    )
    .bind::<Text, _>(period.to_string())
    .load(conn)
    .await?;
    Ok(rows)
}
