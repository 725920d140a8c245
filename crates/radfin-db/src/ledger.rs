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
use crate::convert::{decode, in_array, revision_from_db, u32_from_db, u32_to_db};
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

/// The report a study entry belongs to (client-level entries have none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryReport {
    pub report_id: ReportId,
    pub revision: u32,
    pub provider_id: ProviderId,
    pub modality: Modality,
    pub grade: Grade,
    pub status: ReportStatus,
}

/// A ledger entry to write: a BOOKING (no `adjusts_id`) or a signed ADJUSTMENT of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLedgerEntry {
    pub period: Period,
    pub run_id: i64,
    pub client_id: ClientId,
    /// `STUDY`, `RETAINER_FEE` or `MINIMUM_SHORTFALL`.
    pub line: &'static str,
    /// None for a client-level line.
    pub report: Option<EntryReport>,
    pub side: LedgerSide,
    pub currency: Currency,
    pub amount: Decimal,
    /// The rate that converted `amount` (None when `currency` is INR).
    pub fx: Option<AppliedRate>,
    pub amount_inr: Decimal,
    pub rule_version: Option<u32>,
    /// The BOOKING entry this one adjusts.
    pub adjusts_id: Option<i64>,
    pub reason: Option<&'static str>,
    /// Where a live client-month book's write put it; none for the bookings of a close or rerun
    /// run, which is written whole, once, under the period's lock.
    pub book: Option<BookSlot>,
}

/// The client-month book version that wrote an entry, and the entry's place in that write: the
/// unique book key, which refuses a second writer of the same version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookSlot {
    pub version: i64,
    pub line_no: i32,
}

/// A stored ledger entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntryRow {
    pub id: i64,
    pub period: Period,
    pub run_id: i64,
    pub client_id: ClientId,
    pub line: String,
    pub report: Option<EntryReport>,
    pub side: LedgerSide,
    pub currency: Currency,
    pub amount: Decimal,
    pub fx: Option<AppliedRate>,
    pub amount_inr: Decimal,
    pub rule_version: Option<u32>,
    /// `BOOKING` or `ADJUSTMENT`.
    pub entry_kind: String,
    pub adjusts_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An entry's column values as written.
struct LedgerInsert<'a> {
    period: String,
    run_id: i64,
    report_id: Option<&'a str>,
    revision: Option<i64>,
    side: &'static str,
    client_id: &'a str,
    provider_id: Option<&'a str>,
    modality: &'static str,
    grade: &'static str,
    status: Option<&'static str>,
    currency: &'static str,
    amount: Decimal,
    fx_rate: Option<Decimal>,
    fx_rate_date: Option<NaiveDate>,
    fx_source: Option<&'a str>,
    amount_inr: Decimal,
    rule_version: Option<i32>,
    line: &'static str,
    entry_kind: &'static str,
    adjusts_id: Option<i64>,
    reason: Option<&'static str>,
    book_version: Option<i64>,
    line_no: Option<i32>,
}

impl<'a> LedgerInsert<'a> {
    fn new(e: &'a NewLedgerEntry) -> Result<Self, StorageError> {
        let r = e.report.as_ref();
        Ok(LedgerInsert {
            period: e.period.to_string(),
            run_id: e.run_id,
            report_id: r.map(|r| r.report_id.as_str()),
            revision: r.map(|r| i64::from(r.revision)),
            side: e.side.as_str(),
            client_id: e.client_id.as_str(),
            provider_id: r.map(|r| r.provider_id.as_str()),
            modality: r.map_or("NONE", |r| r.modality.as_str()),
            grade: r.map_or("NONE", |r| r.grade.as_str()),
            status: r.map(|r| r.status.as_str()),
            currency: e.currency.code(),
            amount: e.amount,
            fx_rate: e.fx.as_ref().map(|r| r.inr_per_unit),
            fx_rate_date: e.fx.as_ref().map(|r| r.rate_date),
            fx_source: e.fx.as_ref().map(|r| &*r.source),
            amount_inr: e.amount_inr,
            rule_version: e.rule_version.map(|v| u32_to_db("ledger_entries.rule_version", v)).transpose()?,
            line: e.line,
            entry_kind: if e.adjusts_id.is_some() { "ADJUSTMENT" } else { "BOOKING" },
            adjusts_id: e.adjusts_id,
            reason: e.reason,
            book_version: e.book.map(|b| b.version),
            line_no: e.book.map(|b| b.line_no),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger_entries, check_for_backend(diesel::pg::Pg))]
struct LedgerRow {
    id: i64,
    period: String,
    run_id: i64,
    report_id: Option<String>,
    revision: Option<i64>,
    side: String,
    client_id: String,
    provider_id: Option<String>,
    modality: String,
    grade: String,
    status: Option<String>,
    currency: String,
    amount: Decimal,
    fx_rate: Option<Decimal>,
    fx_rate_date: Option<NaiveDate>,
    fx_source: Option<String>,
    amount_inr: Decimal,
    rule_version: Option<i32>,
    created_at: DateTime<Utc>,
    line: String,
    entry_kind: String,
    adjusts_id: Option<i64>,
    reason: Option<String>,
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
        let report = match (row.report_id, row.revision, row.provider_id, row.status) {
            (Some(report_id), Some(revision), Some(provider_id), Some(status)) => Some(EntryReport {
                report_id: decode("ledger_entries.report_id", &report_id, ReportId::parse)?,
                revision: revision_from_db("ledger_entries.revision", revision)?,
                provider_id: decode("ledger_entries.provider_id", &provider_id, ProviderId::parse)?,
                modality: decode("ledger_entries.modality", &row.modality, str::parse)?,
                grade: decode("ledger_entries.grade", &row.grade, str::parse)?,
                status: decode("ledger_entries.status", &status, str::parse)?,
            }),
            (None, None, None, None) => None,
            _ => return Err(StorageError::corrupt(format_args!("ledger_entries id {} has a partial report", row.id))),
        };
        Ok(LedgerEntryRow {
            id: row.id,
            period: decode("ledger_entries.period", &row.period, str::parse)?,
            run_id: row.run_id,
            client_id: decode("ledger_entries.client_id", &row.client_id, ClientId::parse)?,
            line: row.line,
            report,
            side: decode("ledger_entries.side", &row.side, str::parse)?,
            currency: decode("ledger_entries.currency", &row.currency, Currency::parse)?,
            amount: row.amount,
            fx,
            amount_inr: row.amount_inr,
            rule_version: row.rule_version.map(|v| u32_from_db("ledger_entries.rule_version", v)).transpose()?,
            entry_kind: row.entry_kind,
            adjusts_id: row.adjusts_id,
            reason: row.reason,
            created_at: row.created_at,
        })
    }
}

/// An entry written by [`insert_entries`]: its id and what it books.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub id: i64,
    pub report_id: Option<String>,
    pub side: String,
    pub line: String,
    pub entry_kind: String,
}

/// What `RETURNING` gives of a written entry: [`Inserted`] and the book key that identifies it.
#[derive(QueryableByName)]
struct Returned {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    period: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    run_id: i64,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    book_version: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    line_no: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    report_id: Option<String>,
    #[diesel(sql_type = Text)]
    side: String,
    #[diesel(sql_type = Text)]
    line: String,
    #[diesel(sql_type = Text)]
    entry_kind: String,
}

/// First key of the advisory lock that orders ledger writers and partition creation ("le").
const LEDGER_WRITE_LOCK: i32 = 0x6c65;

/// Declares the transaction a writer of `ledger_entries` (a shared lock held until it ends).
/// Every transaction that appends entries takes it first, so [`ensure_partitions`] can create a
/// partition between writers instead of deadlocking with one: a partition being created blocks
/// inserts into the partitioned table, and the creation waits for locks that writers hold.
pub async fn lock_for_write(conn: &mut AsyncPgConnection) -> Result<(), StorageError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock_shared($1, 0)")
        .bind::<diesel::sql_types::Integer, _>(LEDGER_WRITE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes sure each period has its ledger partition. Call it outside a transaction: a missing
/// partition is created in a short transaction of its own that waits for the writers of the
/// moment ([`lock_for_write`]) to finish; an existing one costs a catalog lookup.
pub async fn ensure_partitions(conn: &mut AsyncPgConnection, periods: &[Period]) -> Result<(), StorageError> {
    #[derive(QueryableByName)]
    struct Missing {
        #[diesel(sql_type = Text)]
        period: String,
    }
    let periods: Vec<String> = periods.iter().map(ToString::to_string).collect();
    let missing: Vec<Missing> = diesel::sql_query(
        "SELECT p AS period FROM unnest($1::text[]) AS p \
         WHERE to_regclass(format('public.%I', 'ledger_entries_' || replace(p, '-', '_'))) IS NULL",
    )
    .bind::<Array<Text>, _>(&periods)
    .load(conn)
    .await?;
    if missing.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = missing.into_iter().map(|m| m.period).collect();
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind::<diesel::sql_types::Integer, _>(LEDGER_WRITE_LOCK)
            .execute(conn)
            .await?;
        diesel::sql_query("SELECT radfin_ensure_ledger_partition(p) FROM unnest($1::text[]) AS p")
            .bind::<Array<Text>, _>(&missing)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// Appends a live book's entries: makes sure each of their periods has its partition
/// (`radfin_ensure_ledger_partition`), then [`unnest_insert`]s them. Atomic (a savepoint of the
/// caller's transaction, if any). The unique book key (period, run, client, book version, line
/// number), which every entry here carries, refuses a second writer of the same book version.
/// Returns what was written, in the order of `entries`.
pub async fn insert_entries(
    conn: &mut AsyncPgConnection,
    entries: &[NewLedgerEntry],
) -> Result<Vec<Inserted>, StorageError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let rows = entries.iter().map(LedgerInsert::new).collect::<Result<Vec<_>, _>>()?;
    let mut keys: std::collections::HashMap<(&str, i64, &str, i64, i32), usize> =
        std::collections::HashMap::with_capacity(rows.len());
    for (n, r) in rows.iter().enumerate() {
        let (Some(version), Some(line_no)) = (r.book_version, r.line_no) else {
            return Err(StorageError::OutOfRange(format!(
                "ledger entry {n} of {} has no book position: a live book's entries are numbered",
                rows.len()
            )));
        };
        keys.insert((r.period.as_str(), r.run_id, r.client_id, version, line_no), n);
    }
    let mut periods: Vec<String> = rows.iter().map(|r| r.period.clone()).collect();
    periods.sort_unstable();
    periods.dedup();
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT radfin_ensure_ledger_partition(p) FROM unnest($1::text[]) AS p")
            .bind::<Array<Text>, _>(&periods)
            .execute(conn)
            .await?;
        let mut inserted: Vec<Option<Inserted>> = vec![None; rows.len()];
        for chunk in rows.chunks(BULK_ROWS) {
            let returned: Vec<Returned> = unnest_insert(
                "RETURNING id, period, run_id, client_id, book_version, line_no, report_id, side, line, entry_kind",
                chunk,
            )
            .load(conn)
            .await?;
            for r in returned {
                let key = (
                    r.period.as_str(),
                    r.run_id,
                    r.client_id.as_str(),
                    r.book_version.unwrap_or(0),
                    r.line_no.unwrap_or(0),
                );
                let slot = keys.get(&key).and_then(|&n| inserted.get_mut(n)).ok_or_else(|| {
                    StorageError::corrupt(format_args!("ledger_entries id {} was not among the entries written", r.id))
                })?;
                *slot = Some(Inserted {
                    id: r.id,
                    report_id: r.report_id,
                    side: r.side,
                    line: r.line,
                    entry_kind: r.entry_kind,
                });
            }
        }
        inserted.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| {
            StorageError::corrupt(format_args!("fewer entries returned than the {} written", rows.len()))
        })
    })
    .await
}

/// Appends the bookings of a close or rerun run ([`unnest_insert`], no book positions): a
/// month's two entries per report without a round trip per few thousand rows. The period's
/// partition must exist ([`ensure_partitions`]). Returns how many were written.
pub async fn insert_bookings(conn: &mut AsyncPgConnection, entries: &[NewLedgerEntry]) -> Result<usize, StorageError> {
    let mut written = 0;
    for chunk in entries.chunks(BULK_ROWS) {
        let rows = chunk.iter().map(LedgerInsert::new).collect::<Result<Vec<_>, _>>()?;
        written += unnest_insert("", &rows).execute(conn).await?;
    }
    Ok(written)
}

/// Rows per statement of [`unnest_insert`].
const BULK_ROWS: usize = 50_000;

/// `INSERT INTO ledger_entries … SELECT FROM unnest(…)`, one array per column: one statement
/// text whatever the number of rows (prepared once, bound with 23 parameters instead of 23 per
/// row), then `returning`.
fn unnest_insert<'a>(
    returning: &'static str,
    rows: &'a [LedgerInsert<'a>],
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    use diesel::sql_types::{BigInt, Date, Integer, Nullable, Numeric};
    diesel::sql_query(format!(
        "INSERT INTO ledger_entries (period, run_id, report_id, revision, side, client_id, provider_id, \
             modality, grade, status, currency, amount, fx_rate, fx_rate_date, fx_source, amount_inr, \
             rule_version, line, entry_kind, adjusts_id, reason, book_version, line_no) \
         SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::numeric[], $13::numeric[], \
             $14::date[], $15::text[], $16::numeric[], $17::int4[], $18::text[], $19::text[], $20::int8[], \
             $21::text[], $22::int8[], $23::int4[]) {returning}"
    ))
    .into_boxed()
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.period.as_str()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.run_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.report_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.revision).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.side).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.client_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.provider_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.modality).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.grade).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.currency).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.amount).collect::<Vec<_>>())
    .bind::<Array<Nullable<Numeric>>, _>(rows.iter().map(|r| r.fx_rate).collect::<Vec<_>>())
    .bind::<Array<Nullable<Date>>, _>(rows.iter().map(|r| r.fx_rate_date).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.fx_source).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.amount_inr).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(rows.iter().map(|r| r.rule_version).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.line).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.entry_kind).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.adjusts_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.reason).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.book_version).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(rows.iter().map(|r| r.line_no).collect::<Vec<_>>())
}

/// Every entry of a report, all revisions and runs, by run and in the order written.
pub async fn of_report(conn: &mut AsyncPgConnection, report_id: &str) -> Result<Vec<LedgerEntryRow>, StorageError> {
    let rows: Vec<LedgerRow> = ledger_entries::table
        .filter(ledger_entries::report_id.eq(report_id))
        .order((ledger_entries::run_id.asc(), ledger_entries::id.asc()))
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

/// A client's totals in a period's live view.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct ClientTotalsRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub client_id: String,
    /// Billable reports: reports with COGS booked.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub reports: i64,
    /// The contract currency of the revenue (empty without revenue).
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub currency: String,
    /// Revenue in the contract currency: study lines plus client-level lines.
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub revenue: Decimal,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub revenue_inr: Decimal,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub cogs_inr: Decimal,
}

/// Per client, a run of the period as it stands (`run_id`; `None`: the LIVE run): every entry
/// (bookings and adjustments) summed. Once the pipeline has settled the live run is exactly the
/// engine's price of the stored month.
pub async fn summarize_run(
    conn: &mut AsyncPgConnection,
    period: Period,
    run_id: Option<i64>,
) -> Result<Vec<ClientTotalsRow>, StorageError> {
    let rows = diesel::sql_query(
        "WITH lines AS ( \
             SELECT e.client_id, e.side, e.report_id, e.currency, \
                    sum(e.amount) AS amount, sum(e.amount_inr) AS amount_inr \
             FROM ledger_entries e JOIN pricing_runs r ON r.run_id = e.run_id \
             WHERE e.period = $1 AND (r.run_id = $2 OR ($2 IS NULL AND r.kind = 'LIVE')) \
             GROUP BY e.client_id, e.side, e.report_id, e.line, e.currency) \
         SELECT client_id, \
                count(*) FILTER (WHERE side = 'COGS' AND report_id IS NOT NULL AND amount <> 0) AS reports, \
                coalesce(string_agg(DISTINCT currency, ',') \
                    FILTER (WHERE side = 'REVENUE' AND (amount <> 0 OR amount_inr <> 0)), '') AS currency, \
                coalesce(sum(amount) FILTER (WHERE side = 'REVENUE'), 0) AS revenue, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'REVENUE'), 0) AS revenue_inr, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'COGS'), 0) AS cogs_inr \
         FROM lines GROUP BY client_id ORDER BY client_id",
    )
    .bind::<Text, _>(period.to_string())
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(run_id)
    .load(conn)
    .await?;
    Ok(rows)
}

/// The columns of an entry a close or rerun run's line is made of.
#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger_entries, check_for_backend(diesel::pg::Pg))]
struct RunLineRow {
    id: i64,
    client_id: String,
    report_id: Option<String>,
    revision: Option<i64>,
    side: String,
    provider_id: Option<String>,
    modality: String,
    grade: String,
    status: Option<String>,
    currency: String,
    amount: Decimal,
    fx_rate: Option<Decimal>,
    fx_rate_date: Option<NaiveDate>,
    fx_source: Option<String>,
    amount_inr: Decimal,
    rule_version: Option<i32>,
    line: String,
}

/// One shared copy of each of the few distinct parties and rate sources of a month's lines:
/// less to allocate, and equal ids compare by pointer.
#[derive(Default)]
struct Interned {
    clients: std::collections::HashMap<String, ClientId>,
    providers: std::collections::HashMap<String, ProviderId>,
    sources: std::collections::HashMap<String, Arc<str>>,
}

impl Interned {
    fn client(&mut self, id: String) -> Result<ClientId, StorageError> {
        if let Some(c) = self.clients.get(&id) {
            return Ok(c.clone());
        }
        let c = decode("ledger_entries.client_id", &id, ClientId::parse)?;
        self.clients.insert(id, c.clone());
        Ok(c)
    }

    fn provider(&mut self, id: String) -> Result<ProviderId, StorageError> {
        if let Some(p) = self.providers.get(&id) {
            return Ok(p.clone());
        }
        let p = decode("ledger_entries.provider_id", &id, ProviderId::parse)?;
        self.providers.insert(id, p.clone());
        Ok(p)
    }

    fn source(&mut self, source: String) -> Arc<str> {
        self.sources.entry(source).or_insert_with_key(|s| Arc::from(s.as_str())).clone()
    }
}

/// The lines of a close or rerun run (one booking per line), as the domain compares them, in
/// no particular order. A month's millions of rows are converted off the async reactor.
pub async fn run_lines(
    conn: &mut AsyncPgConnection,
    period: Period,
    run_id: i64,
) -> Result<Vec<radfin_domain::close::RunLine>, StorageError> {
    let rows: Vec<RunLineRow> = ledger_entries::table
        .filter(ledger_entries::period.eq(period.to_string()))
        .filter(ledger_entries::run_id.eq(run_id))
        .select(RunLineRow::as_select())
        .load(conn)
        .await?;
    tokio::task::spawn_blocking(move || {
        let mut interned = Interned::default();
        rows.into_iter().map(|row| run_line(row, &mut interned)).collect()
    })
    .await
    .map_err(|e| StorageError::corrupt(format_args!("converting run {run_id}'s lines did not finish: {e}")))?
}

fn run_line(row: RunLineRow, interned: &mut Interned) -> Result<radfin_domain::close::RunLine, StorageError> {
    use radfin_domain::live::{ClientLine, Dims, LineRef, Part, ReportDims, Side};
    let side = match row.side.as_str() {
        "COGS" => Side::Cogs,
        "REVENUE" => Side::Revenue,
        other => return Err(StorageError::corrupt(format_args!("ledger_entries id {}: side {other:?}", row.id))),
    };
    let fx = match (row.fx_rate, row.fx_rate_date, row.fx_source) {
        (Some(inr_per_unit), Some(rate_date), Some(source)) => {
            Some(AppliedRate { inr_per_unit, rate_date, source: interned.source(source) })
        }
        (None, None, None) => None,
        _ => return Err(StorageError::corrupt(format_args!("ledger_entries id {} has a partial FX rate", row.id))),
    };
    let (line, report) = match (row.line.as_str(), row.report_id, row.revision, row.provider_id, row.status) {
        ("STUDY", Some(report_id), Some(revision), Some(provider_id), Some(status)) => (
            LineRef::Study(decode("ledger_entries.report_id", &report_id, ReportId::parse)?, side),
            Some(ReportDims {
                revision: revision_from_db("ledger_entries.revision", revision)?,
                provider_id: interned.provider(provider_id)?,
                modality: decode("ledger_entries.modality", &row.modality, str::parse)?,
                grade: decode("ledger_entries.grade", &row.grade, str::parse)?,
                status: decode("ledger_entries.status", &status, str::parse)?,
            }),
        ),
        ("RETAINER_FEE", None, None, None, None) => (LineRef::Client(ClientLine::RetainerFee), None),
        ("MINIMUM_SHORTFALL", None, None, None, None) => (LineRef::Client(ClientLine::MinimumShortfall), None),
        (other, ..) => {
            return Err(StorageError::corrupt(format_args!("ledger_entries id {}: line {other:?}", row.id)));
        }
    };
    Ok(radfin_domain::close::RunLine {
        client_id: interned.client(row.client_id)?,
        line,
        part: Part {
            dims: Dims {
                report,
                currency: decode("ledger_entries.currency", &row.currency, Currency::parse)?,
                rule_version: row.rule_version.map(|v| u32_from_db("ledger_entries.rule_version", v)).transpose()?,
                fx,
            },
            amount: row.amount,
            amount_inr: row.amount_inr,
        },
    })
}

/// The entries that book a close or rerun run's lines: one BOOKING each.
pub fn run_entries(period: Period, run_id: i64, lines: &[radfin_domain::close::RunLine]) -> Vec<NewLedgerEntry> {
    use radfin_domain::live::{LineRef, Side};
    lines
        .iter()
        .map(|l| {
            let (line, report) = match &l.line {
                LineRef::Study(id, _) => (
                    "STUDY",
                    l.part.dims.report.as_ref().map(|d| EntryReport {
                        report_id: id.clone(),
                        revision: d.revision,
                        provider_id: d.provider_id.clone(),
                        modality: d.modality,
                        grade: d.grade,
                        status: d.status,
                    }),
                ),
                LineRef::Client(kind) => (kind.as_str(), None),
            };
            NewLedgerEntry {
                period,
                run_id,
                client_id: l.client_id.clone(),
                line,
                report,
                side: match l.line.side() {
                    Side::Cogs => LedgerSide::Cogs,
                    Side::Revenue => LedgerSide::Revenue,
                },
                currency: l.part.dims.currency,
                amount: l.part.amount,
                fx: l.part.dims.fx.clone(),
                amount_inr: l.part.amount_inr,
                rule_version: l.part.dims.rule_version,
                adjusts_id: None,
                reason: None,
                book: None,
            }
        })
        .collect()
}

/// Which of `reports` (id, revision) a run booked.
pub async fn booked_in_run(
    conn: &mut AsyncPgConnection,
    period: Period,
    run_id: i64,
    reports: &[(&str, u32)],
) -> Result<std::collections::HashSet<(String, u32)>, StorageError> {
    if reports.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let ids: Vec<&str> = reports.iter().map(|(id, _)| *id).collect();
    let rows: Vec<(Option<String>, Option<i64>)> = ledger_entries::table
        .filter(ledger_entries::period.eq(period.to_string()))
        .filter(ledger_entries::run_id.eq(run_id))
        .filter(in_array("ledger_entries.report_id IN").bind::<Array<Text>, _>(ids).sql("))"))
        .select((ledger_entries::report_id, ledger_entries::revision))
        .distinct()
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(id, rev)| Some((id?, u32::try_from(rev?).ok()?))).collect())
}
