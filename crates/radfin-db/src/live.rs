//! The live view's bookkeeping (spec §6): the facts each client-month book was priced from
//! (`ledger_facts`), the book rows the ledger locks and versions (`live_books`), and what a book
//! needs to be rebuilt from the database.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Int4, Int8, Nullable, Numeric, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use radfin_domain::fx::AppliedRate;
use radfin_domain::live::{ClientLine, Dims, LineRef, Part, ReportDims, Side};
use radfin_domain::{ClientId, Currency, Period, ProviderId, ReportId};
use rust_decimal::Decimal;

use crate::StorageError;
use crate::convert::{decode, revision_from_db, u32_from_db};

/// A client-month book of a run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BookKey {
    pub period: Period,
    pub client_id: ClientId,
    pub run_id: i64,
}

/// The latest fact the ledger applied for a report: where the report lives now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatestFact {
    pub report_id: ReportId,
    pub revision: u32,
    pub book: BookKey,
    pub priced_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct LatestRow {
    #[diesel(sql_type = Text)]
    report_id: String,
    #[diesel(sql_type = BigInt)]
    revision: i64,
    #[diesel(sql_type = Text)]
    period: String,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = BigInt)]
    run_id: i64,
    #[diesel(sql_type = Timestamptz)]
    priced_at: DateTime<Utc>,
}

/// The latest applied fact of each of `report_ids` that has one.
pub async fn latest_facts(conn: &mut AsyncPgConnection, report_ids: &[&str]) -> Result<Vec<LatestFact>, StorageError> {
    if report_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<LatestRow> = diesel::sql_query(
        // One index lookup per report (see `reports::PER_KEY`), in the order of the index
        // (report_id, revision, id): a report's facts are recorded in ascending revision, so its
        // latest by id is its latest by (revision, id).
        "SELECT f.* FROM (SELECT DISTINCT unnest($1::text[])) AS k(key) CROSS JOIN LATERAL ( \
             SELECT report_id, revision, period, client_id, run_id, priced_at FROM ledger_facts \
             WHERE report_id = k.key ORDER BY revision DESC, id DESC LIMIT 1) f",
    )
    .bind::<Array<Text>, _>(report_ids)
    .load(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(LatestFact {
                report_id: decode("ledger_facts.report_id", &r.report_id, ReportId::parse)?,
                revision: revision_from_db("ledger_facts.revision", r.revision)?,
                book: BookKey {
                    period: decode("ledger_facts.period", &r.period, str::parse)?,
                    client_id: decode("ledger_facts.client_id", &r.client_id, ClientId::parse)?,
                    run_id: r.run_id,
                },
                priced_at: r.priced_at,
            })
        })
        .collect()
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    period: String,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = BigInt)]
    run_id: i64,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

fn columns(books: &[BookKey]) -> (Vec<String>, Vec<&str>, Vec<i64>) {
    (
        books.iter().map(|b| b.period.to_string()).collect(),
        books.iter().map(|b| b.client_id.as_str()).collect(),
        books.iter().map(|b| b.run_id).collect(),
    )
}

/// Creates the books that do not exist yet and locks them all (`FOR UPDATE`, in key order, so
/// two writers never deadlock) until the transaction ends; returns each one's version.
pub async fn lock_books(conn: &mut AsyncPgConnection, books: &[BookKey]) -> Result<Vec<i64>, StorageError> {
    let mut sorted: Vec<BookKey> = books.to_vec();
    sorted.sort();
    sorted.dedup();
    let (periods, clients, runs) = columns(&sorted);
    diesel::sql_query(
        "INSERT INTO live_books (period, client_id, run_id, version) \
         SELECT p, c, r, 0 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(p, c, r) \
         ORDER BY p, c, r ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(&periods)
    .bind::<Array<Text>, _>(&clients)
    .bind::<Array<Int8>, _>(&runs)
    .execute(conn)
    .await?;
    let rows: Vec<VersionRow> = diesel::sql_query(
        "SELECT b.period, b.client_id, b.run_id, b.version FROM live_books b \
         JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(p, c, r) \
           ON b.period = k.p AND b.client_id = k.c AND b.run_id = k.r \
         ORDER BY b.period, b.client_id, b.run_id FOR UPDATE OF b",
    )
    .bind::<Array<Text>, _>(&periods)
    .bind::<Array<Text>, _>(&clients)
    .bind::<Array<Int8>, _>(&runs)
    .load(conn)
    .await?;
    books
        .iter()
        .map(|b| {
            rows.iter()
                .find(|r| {
                    r.period == b.period.to_string() && r.client_id == b.client_id.as_str() && r.run_id == b.run_id
                })
                .map(|r| r.version)
                .ok_or_else(|| StorageError::corrupt(format_args!("live book {b:?} was not created")))
        })
        .collect()
}

/// Sets the books' versions (still locked by [`lock_books`]).
pub async fn set_versions(conn: &mut AsyncPgConnection, books: &[(BookKey, i64)]) -> Result<(), StorageError> {
    if books.is_empty() {
        return Ok(());
    }
    let keys: Vec<BookKey> = books.iter().map(|(k, _)| k.clone()).collect();
    let (periods, clients, runs) = columns(&keys);
    let versions: Vec<i64> = books.iter().map(|(_, v)| *v).collect();
    diesel::sql_query(
        "UPDATE live_books b SET version = k.v, updated_at = now() \
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS k(p, c, r, v) \
         WHERE b.period = k.p AND b.client_id = k.c AND b.run_id = k.r",
    )
    .bind::<Array<Text>, _>(&periods)
    .bind::<Array<Text>, _>(&clients)
    .bind::<Array<Int8>, _>(&runs)
    .bind::<Array<Int8>, _>(&versions)
    .execute(conn)
    .await?;
    Ok(())
}

/// A fact the ledger applied, to record.
#[derive(Clone, Debug)]
pub struct NewFact<'a> {
    pub book: &'a BookKey,
    /// None for a contract fact.
    pub report: Option<(&'a ReportId, u32)>,
    /// `PRICED`, `HELD` or `CONTRACT`.
    pub outcome: &'static str,
    pub book_version: i64,
    pub priced_at: DateTime<Utc>,
    /// The `LiveFact` message as received.
    pub fact: &'a [u8],
}

/// Records applied facts in one statement per chunk.
pub async fn record_facts(conn: &mut AsyncPgConnection, facts: &[NewFact<'_>]) -> Result<(), StorageError> {
    for chunk in facts.chunks(5000) {
        let periods: Vec<String> = chunk.iter().map(|f| f.book.period.to_string()).collect();
        let clients: Vec<&str> = chunk.iter().map(|f| f.book.client_id.as_str()).collect();
        let runs: Vec<i64> = chunk.iter().map(|f| f.book.run_id).collect();
        let ids: Vec<Option<&str>> = chunk.iter().map(|f| f.report.map(|(id, _)| id.as_str())).collect();
        let revisions: Vec<Option<i64>> = chunk.iter().map(|f| f.report.map(|(_, r)| i64::from(r))).collect();
        let outcomes: Vec<&str> = chunk.iter().map(|f| f.outcome).collect();
        let versions: Vec<i64> = chunk.iter().map(|f| f.book_version).collect();
        let at: Vec<DateTime<Utc>> = chunk.iter().map(|f| f.priced_at).collect();
        let bytes: Vec<&[u8]> = chunk.iter().map(|f| f.fact).collect();
        diesel::sql_query(
            "INSERT INTO ledger_facts (period, client_id, run_id, report_id, revision, outcome, book_version, \
                                       priced_at, fact) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], \
                                  $7::bigint[], $8::timestamptz[], $9::bytea[])",
        )
        .bind::<Array<Text>, _>(&periods)
        .bind::<Array<Text>, _>(&clients)
        .bind::<Array<Int8>, _>(&runs)
        .bind::<Array<Nullable<Text>>, _>(&ids)
        .bind::<Array<Nullable<Int8>>, _>(&revisions)
        .bind::<Array<Text>, _>(&outcomes)
        .bind::<Array<Int8>, _>(&versions)
        .bind::<Array<Timestamptz>, _>(&at)
        .bind::<Array<Bytea>, _>(&bytes)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct FactRow {
    #[diesel(sql_type = Bytea)]
    fact: Vec<u8>,
}

/// What a book is rebuilt from: the newest fact carrying its contract, and the current fact of
/// every report that lives in it (the report's latest applied fact is this book's).
pub struct BookSource {
    pub terms_fact: Option<Vec<u8>>,
    pub report_facts: Vec<Vec<u8>>,
    /// What the ledger holds per line, by dimensions (non-zero sums only).
    pub booked: Vec<(LineRef, Part)>,
    /// The BOOKING entry of each line.
    pub bookings: Vec<(LineRef, i64)>,
}

pub async fn book_source(conn: &mut AsyncPgConnection, book: &BookKey) -> Result<BookSource, StorageError> {
    let period = book.period.to_string();
    let terms: Vec<FactRow> = diesel::sql_query(
        "SELECT fact FROM ledger_facts WHERE period = $1 AND client_id = $2 AND run_id = $3 \
         ORDER BY priced_at DESC, id DESC LIMIT 1",
    )
    .bind::<Text, _>(&period)
    .bind::<Text, _>(book.client_id.as_str())
    .bind::<Int8, _>(book.run_id)
    .load(conn)
    .await?;
    let reports: Vec<FactRow> = diesel::sql_query(
        "SELECT f.fact FROM ledger_facts f \
         WHERE f.period = $1 AND f.client_id = $2 AND f.run_id = $3 AND f.outcome = 'PRICED' \
           AND f.id = (SELECT max(g.id) FROM ledger_facts g WHERE g.report_id = f.report_id)",
    )
    .bind::<Text, _>(&period)
    .bind::<Text, _>(book.client_id.as_str())
    .bind::<Int8, _>(book.run_id)
    .load(conn)
    .await?;
    let parts: Vec<PartRow> = diesel::sql_query(
        "SELECT report_id, side, line, revision, provider_id, modality, grade, status, currency, rule_version, \
                fx_rate, fx_rate_date, fx_source, sum(amount) AS amount, sum(amount_inr) AS amount_inr \
         FROM ledger_entries WHERE period = $1 AND client_id = $2 AND run_id = $3 \
         GROUP BY report_id, side, line, revision, provider_id, modality, grade, status, currency, rule_version, \
                  fx_rate, fx_rate_date, fx_source \
         HAVING sum(amount) <> 0 OR sum(amount_inr) <> 0",
    )
    .bind::<Text, _>(&period)
    .bind::<Text, _>(book.client_id.as_str())
    .bind::<Int8, _>(book.run_id)
    .load(conn)
    .await?;
    let bookings: Vec<BookingRow> = diesel::sql_query(
        "SELECT id, report_id, side, line FROM ledger_entries \
         WHERE period = $1 AND client_id = $2 AND run_id = $3 AND entry_kind = 'BOOKING'",
    )
    .bind::<Text, _>(&period)
    .bind::<Text, _>(book.client_id.as_str())
    .bind::<Int8, _>(book.run_id)
    .load(conn)
    .await?;
    Ok(BookSource {
        terms_fact: terms.into_iter().next().map(|r| r.fact),
        report_facts: reports.into_iter().map(|r| r.fact).collect(),
        booked: parts.into_iter().map(PartRow::into_part).collect::<Result<_, _>>()?,
        bookings: bookings
            .into_iter()
            .map(|b| Ok((line_ref(b.report_id.as_deref(), &b.side, &b.line)?, b.id)))
            .collect::<Result<_, StorageError>>()?,
    })
}

/// The line an entry books, from its columns.
pub fn line_ref(report_id: Option<&str>, side: &str, line: &str) -> Result<LineRef, StorageError> {
    let side = match side {
        "COGS" => Side::Cogs,
        "REVENUE" => Side::Revenue,
        other => return Err(StorageError::corrupt(format_args!("ledger_entries.side {other:?}"))),
    };
    match (line, report_id) {
        ("STUDY", Some(id)) => Ok(LineRef::Study(decode("ledger_entries.report_id", id, ReportId::parse)?, side)),
        ("RETAINER_FEE", None) => Ok(LineRef::Client(ClientLine::RetainerFee)),
        ("MINIMUM_SHORTFALL", None) => Ok(LineRef::Client(ClientLine::MinimumShortfall)),
        (other, _) => {
            Err(StorageError::corrupt(format_args!("ledger_entries.line {other:?} with report {report_id:?}")))
        }
    }
}

#[derive(QueryableByName)]
struct BookingRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    report_id: Option<String>,
    #[diesel(sql_type = Text)]
    side: String,
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct PartRow {
    #[diesel(sql_type = Nullable<Text>)]
    report_id: Option<String>,
    #[diesel(sql_type = Text)]
    side: String,
    #[diesel(sql_type = Text)]
    line: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    revision: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    provider_id: Option<String>,
    #[diesel(sql_type = Text)]
    modality: String,
    #[diesel(sql_type = Text)]
    grade: String,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bpchar)]
    currency: String,
    #[diesel(sql_type = Nullable<Int4>)]
    rule_version: Option<i32>,
    #[diesel(sql_type = Nullable<Numeric>)]
    fx_rate: Option<Decimal>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Date>)]
    fx_rate_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    fx_source: Option<String>,
    #[diesel(sql_type = Numeric)]
    amount: Decimal,
    #[diesel(sql_type = Numeric)]
    amount_inr: Decimal,
}

impl PartRow {
    fn into_part(self) -> Result<(LineRef, Part), StorageError> {
        let line = line_ref(self.report_id.as_deref(), &self.side, &self.line)?;
        let report = match (self.revision, self.provider_id, self.status) {
            (Some(revision), Some(provider_id), Some(status)) => Some(ReportDims {
                revision: revision_from_db("ledger_entries.revision", revision)?,
                provider_id: decode("ledger_entries.provider_id", &provider_id, ProviderId::parse)?,
                modality: decode("ledger_entries.modality", &self.modality, str::parse)?,
                grade: decode("ledger_entries.grade", &self.grade, str::parse)?,
                status: decode("ledger_entries.status", &status, str::parse)?,
            }),
            _ => None,
        };
        let fx = match (self.fx_rate, self.fx_rate_date, self.fx_source) {
            (Some(inr_per_unit), Some(rate_date), Some(source)) => {
                Some(AppliedRate { inr_per_unit, rate_date, source: Arc::from(source) })
            }
            _ => None,
        };
        let dims = Dims {
            report,
            currency: decode("ledger_entries.currency", &self.currency, Currency::parse)?,
            rule_version: self.rule_version.map(|v| u32_from_db("ledger_entries.rule_version", v)).transpose()?,
            fx,
        };
        Ok((line, Part { dims, amount: self.amount, amount_inr: self.amount_inr }))
    }
}

/// Periods with stored reports that are not closed (what a rule, party or rate change
/// reprices). From the reports, not the live books: the ledger may not have caught up yet.
pub async fn open_periods(conn: &mut AsyncPgConnection) -> Result<Vec<Period>, StorageError> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Text)]
        period: String,
    }
    let rows: Vec<P> = diesel::sql_query(
        "SELECT p.period FROM (SELECT DISTINCT period FROM reports) p \
         WHERE coalesce((SELECT s.state FROM period_states s WHERE s.period = p.period ORDER BY s.id DESC LIMIT 1), \
                        'OPEN') = 'OPEN' \
         ORDER BY p.period",
    )
    .load(conn)
    .await?;
    rows.into_iter().map(|r| decode("live_books.period", &r.period, str::parse)).collect()
}
