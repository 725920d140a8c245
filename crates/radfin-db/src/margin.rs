//! `margin_summary` (spec §7): per period × client × modality × provider grade, the reports,
//! revenue, COGS and margin in INR of the period's current view (its LIVE run while open, then
//! its CLOSE run, then the last applied RERUN). A projection of the ledger, kept by the ledger in
//! the transactions that write the entries it sums ([`add`] for the live view's postings,
//! [`of_run_lines`] when a close or an applied rerun changes the current view), so it always
//! equals the ledger; [`ledger_view`] computes the same rows from the entries, and [`rebuild`]
//! serves a rebuild from scratch. Client-level lines stand under modality and grade `NONE`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Numeric, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeMap;

use radfin_domain::Period;
use radfin_domain::close::RunLine;
use radfin_domain::live::{LineRef, Side};
use rust_decimal::Decimal;

use crate::StorageError;

/// One row of the summary.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName, serde::Serialize, serde::Deserialize)]
pub struct MarginRow {
    #[diesel(sql_type = Text)]
    pub period: String,
    #[diesel(sql_type = Text)]
    pub client_id: String,
    /// A modality, or `NONE` for client-level lines.
    #[diesel(sql_type = Text)]
    pub modality: String,
    /// A grade, or `NONE`.
    #[diesel(sql_type = Text)]
    pub grade: String,
    /// Billable reports (with COGS booked).
    #[diesel(sql_type = BigInt)]
    pub reports: i64,
    #[diesel(sql_type = Numeric)]
    pub revenue_inr: Decimal,
    #[diesel(sql_type = Numeric)]
    pub cogs_inr: Decimal,
    #[diesel(sql_type = Numeric)]
    pub margin_inr: Decimal,
}

/// A change to one row: what a batch of the live view's postings adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarginDelta {
    pub reports: i64,
    pub revenue_inr: Decimal,
    pub cogs_inr: Decimal,
}

/// A row's key: (period, client, modality or `NONE`, grade or `NONE`).
pub type MarginKey = (Period, String, &'static str, &'static str);

/// Adds deltas to their rows (creating them), in the caller's transaction, which must hold the
/// books of the client-months it touches (so no other writer changes those rows meanwhile).
/// Existing rows are updated first and missing ones inserted after (a CHECK is evaluated on a
/// proposed row before `ON CONFLICT` would turn it into an update, so a decrement cannot go
/// through an upsert); rows that net to nothing are removed, as [`ledger_view`] has none.
pub async fn add(
    conn: &mut AsyncPgConnection,
    deltas: &std::collections::BTreeMap<MarginKey, MarginDelta>,
) -> Result<(), StorageError> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        period: String,
        #[diesel(sql_type = Text)]
        client_id: String,
        #[diesel(sql_type = Text)]
        modality: String,
        #[diesel(sql_type = Text)]
        grade: String,
    }
    let deltas: Vec<(&MarginKey, &MarginDelta)> =
        deltas.iter().filter(|(_, d)| d.reports != 0 || !d.revenue_inr.is_zero() || !d.cogs_inr.is_zero()).collect();
    if deltas.is_empty() {
        return Ok(());
    }
    let columns = |deltas: &[(&MarginKey, &MarginDelta)]| {
        (
            deltas.iter().map(|(k, _)| k.0.to_string()).collect::<Vec<_>>(),
            deltas.iter().map(|(k, _)| k.1.clone()).collect::<Vec<_>>(),
            deltas.iter().map(|(k, _)| k.2).collect::<Vec<_>>(),
            deltas.iter().map(|(k, _)| k.3).collect::<Vec<_>>(),
            deltas.iter().map(|(_, d)| d.reports).collect::<Vec<_>>(),
            deltas.iter().map(|(_, d)| d.revenue_inr).collect::<Vec<_>>(),
            deltas.iter().map(|(_, d)| d.cogs_inr).collect::<Vec<_>>(),
        )
    };
    let (periods, clients, modalities, grades, reports, revenue, cogs) = columns(&deltas);
    let updated: Vec<Key> = diesel::sql_query(
        "UPDATE margin_summary m SET reports = m.reports + d.reports, revenue_inr = m.revenue_inr + d.revenue_inr, \
             cogs_inr = m.cogs_inr + d.cogs_inr, margin_inr = m.margin_inr + d.revenue_inr - d.cogs_inr, \
             updated_at = now() \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::numeric[], $7::numeric[]) \
              AS d(period, client_id, modality, grade, reports, revenue_inr, cogs_inr) \
         WHERE m.period = d.period AND m.client_id = d.client_id AND m.modality = d.modality AND m.grade = d.grade \
         RETURNING m.period, m.client_id, m.modality, m.grade",
    )
    .bind::<Array<Text>, _>(&periods)
    .bind::<Array<Text>, _>(&clients)
    .bind::<Array<Text>, _>(&modalities)
    .bind::<Array<Text>, _>(&grades)
    .bind::<Array<BigInt>, _>(&reports)
    .bind::<Array<Numeric>, _>(&revenue)
    .bind::<Array<Numeric>, _>(&cogs)
    .load(conn)
    .await?;
    let updated: std::collections::HashSet<(String, String, String, String)> =
        updated.into_iter().map(|k| (k.period, k.client_id, k.modality, k.grade)).collect();
    let missing: Vec<(&MarginKey, &MarginDelta)> = deltas
        .iter()
        .copied()
        .filter(|(k, _)| !updated.contains(&(k.0.to_string(), k.1.clone(), k.2.to_owned(), k.3.to_owned())))
        .collect();
    if !missing.is_empty() {
        let (periods, clients, modalities, grades, reports, revenue, cogs) = columns(&missing);
        diesel::sql_query(
            "INSERT INTO margin_summary (period, client_id, modality, grade, reports, revenue_inr, cogs_inr, margin_inr) \
             SELECT period, client_id, modality, grade, reports, revenue_inr, cogs_inr, revenue_inr - cogs_inr \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::numeric[], $7::numeric[]) \
                  AS d(period, client_id, modality, grade, reports, revenue_inr, cogs_inr)",
        )
        .bind::<Array<Text>, _>(&periods)
        .bind::<Array<Text>, _>(&clients)
        .bind::<Array<Text>, _>(&modalities)
        .bind::<Array<Text>, _>(&grades)
        .bind::<Array<BigInt>, _>(&reports)
        .bind::<Array<Numeric>, _>(&revenue)
        .bind::<Array<Numeric>, _>(&cogs)
        .execute(conn)
        .await?;
    }
    diesel::sql_query(
        "DELETE FROM margin_summary m USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
             AS d(period, client_id, modality, grade) \
         WHERE m.period = d.period AND m.client_id = d.client_id AND m.modality = d.modality \
           AND m.grade = d.grade AND m.reports = 0 AND m.revenue_inr = 0 AND m.cogs_inr = 0",
    )
    .bind::<Array<Text>, _>(&periods)
    .bind::<Array<Text>, _>(&clients)
    .bind::<Array<Text>, _>(&modalities)
    .bind::<Array<Text>, _>(&grades)
    .execute(conn)
    .await?;
    Ok(())
}

/// The run whose entries are a period's current view: the last CLOSED event's run, else LIVE.
const CURRENT_RUN: &str = "coalesce( \
     (SELECT s.run_id FROM period_states s WHERE s.period = $1 AND s.state = 'CLOSED' ORDER BY s.id DESC LIMIT 1), \
     (SELECT r.run_id FROM pricing_runs r WHERE r.period = $1 AND r.kind = 'LIVE'))";

/// The summary rows of a period computed from the ledger's current view, by key.
pub async fn ledger_view(conn: &mut AsyncPgConnection, period: Period) -> Result<Vec<MarginRow>, StorageError> {
    let sql = format!(
        "WITH lines AS ( \
             SELECT e.client_id, e.modality, e.grade, e.side, e.report_id, \
                    sum(e.amount) AS amount, sum(e.amount_inr) AS amount_inr \
             FROM ledger_entries e \
             WHERE e.period = $1 AND e.run_id = {CURRENT_RUN} \
             GROUP BY e.client_id, e.modality, e.grade, e.side, e.report_id, e.line) \
         SELECT $1 AS period, client_id, modality, grade, \
                count(*) FILTER (WHERE side = 'COGS' AND report_id IS NOT NULL AND amount <> 0) AS reports, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'REVENUE'), 0) AS revenue_inr, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'COGS'), 0) AS cogs_inr, \
                coalesce(sum(amount_inr) FILTER (WHERE side = 'REVENUE'), 0) \
                  - coalesce(sum(amount_inr) FILTER (WHERE side = 'COGS'), 0) AS margin_inr \
         FROM lines GROUP BY client_id, modality, grade \
         HAVING count(*) FILTER (WHERE side = 'COGS' AND report_id IS NOT NULL AND amount <> 0) <> 0 \
             OR coalesce(sum(amount_inr) FILTER (WHERE side = 'REVENUE'), 0) <> 0 \
             OR coalesce(sum(amount_inr) FILTER (WHERE side = 'COGS'), 0) <> 0 \
         ORDER BY client_id, modality, grade"
    );
    Ok(diesel::sql_query(sql).bind::<Text, _>(period.to_string()).load(conn).await?)
}

/// Replaces a period's rows with [`ledger_view`], in the caller's transaction: on an operator's
/// rebuild.
pub async fn rebuild(conn: &mut AsyncPgConnection, period: Period) -> Result<usize, StorageError> {
    let rows = ledger_view(conn, period).await?;
    replace(conn, period, &rows).await
}

/// The rows [`ledger_view`] gives once a close or rerun run is the period's current view,
/// computed from the run's lines as they are booked (one entry per line) instead of read back.
pub fn of_run_lines(period: Period, lines: &[RunLine]) -> Vec<MarginRow> {
    let mut rows: BTreeMap<(&str, &'static str, &'static str), MarginDelta> = BTreeMap::new();
    for l in lines {
        let (modality, grade) =
            l.part.dims.report.as_ref().map_or(("NONE", "NONE"), |r| (r.modality.as_str(), r.grade.as_str()));
        let row = rows.entry((l.client_id.as_str(), modality, grade)).or_default();
        match l.line.side() {
            Side::Revenue => row.revenue_inr += l.part.amount_inr,
            Side::Cogs => {
                row.cogs_inr += l.part.amount_inr;
                if matches!(l.line, LineRef::Study(..)) && !l.part.amount.is_zero() {
                    row.reports += 1;
                }
            }
        }
    }
    rows.into_iter()
        .filter(|(_, d)| d.reports != 0 || !d.revenue_inr.is_zero() || !d.cogs_inr.is_zero())
        .map(|((client_id, modality, grade), d)| MarginRow {
            period: period.to_string(),
            client_id: client_id.to_owned(),
            modality: modality.to_owned(),
            grade: grade.to_owned(),
            reports: d.reports,
            revenue_inr: d.revenue_inr,
            cogs_inr: d.cogs_inr,
            margin_inr: d.revenue_inr - d.cogs_inr,
        })
        .collect()
}

/// Replaces a period's rows with `rows`, in the caller's transaction: when a close or an
/// applied rerun changes the period's current view ([`of_run_lines`]), and on a rebuild.
pub async fn replace(conn: &mut AsyncPgConnection, period: Period, rows: &[MarginRow]) -> Result<usize, StorageError> {
    diesel::sql_query("DELETE FROM margin_summary WHERE period = $1")
        .bind::<Text, _>(period.to_string())
        .execute(conn)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "INSERT INTO margin_summary (period, client_id, modality, grade, reports, revenue_inr, cogs_inr, margin_inr) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::numeric[], \
                              $7::numeric[], $8::numeric[])",
    )
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.period.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.client_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.modality.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.grade.as_str()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.reports).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.revenue_inr).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.cogs_inr).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(rows.iter().map(|r| r.margin_inr).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(rows.len())
}

/// Every period with ledger entries or summary rows, for a rebuild from scratch.
pub async fn periods(conn: &mut AsyncPgConnection) -> Result<Vec<Period>, StorageError> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Text)]
        period: String,
    }
    let rows: Vec<P> =
        diesel::sql_query("SELECT period FROM pricing_runs UNION SELECT period FROM margin_summary ORDER BY period")
            .load(conn)
            .await?;
    rows.into_iter().map(|p| crate::convert::decode("pricing_runs.period", &p.period, str::parse)).collect()
}

/// Stored rows of the periods from `from` to `to` (inclusive; `None`: unbounded), optionally of
/// one client, by key.
pub async fn rows(
    conn: &mut AsyncPgConnection,
    from: Option<Period>,
    to: Option<Period>,
    client_id: Option<&str>,
) -> Result<Vec<MarginRow>, StorageError> {
    Ok(diesel::sql_query(
        "SELECT period, client_id, modality, grade, reports, revenue_inr, cogs_inr, margin_inr FROM margin_summary \
         WHERE ($1::text IS NULL OR period >= $1) AND ($2::text IS NULL OR period <= $2) \
           AND ($3::text IS NULL OR client_id = $3) \
         ORDER BY period, client_id, modality, grade",
    )
    .bind::<Nullable<Text>, _>(from.map(|p| p.to_string()))
    .bind::<Nullable<Text>, _>(to.map(|p| p.to_string()))
    .bind::<Nullable<Text>, _>(client_id)
    .load(conn)
    .await?)
}

/// Rows changed after `since` (for a stream of updates), by key.
pub async fn changed_since(conn: &mut AsyncPgConnection, since: DateTime<Utc>) -> Result<Vec<MarginRow>, StorageError> {
    Ok(diesel::sql_query(
        "SELECT period, client_id, modality, grade, reports, revenue_inr, cogs_inr, margin_inr FROM margin_summary \
         WHERE updated_at > $1 ORDER BY period, client_id, modality, grade",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .load(conn)
    .await?)
}

/// A summary row with when it last changed (`updated_at`: the start of the ledger transaction
/// that wrote it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarginChange {
    pub row: MarginRow,
    pub updated_at: DateTime<Utc>,
}

/// What [`changes_since`] read, and the database's clock just before it read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes {
    pub as_of: DateTime<Utc>,
    pub rows: Vec<MarginChange>,
}

/// Rows changed after `since`, by key, with their `updated_at` (for a stream of updates that
/// reports when each change was written), and the database's clock (`as_of`) taken just before
/// they were read: the next read should start a little before it, as a transaction that began
/// earlier may commit later.
pub async fn changes_since(conn: &mut AsyncPgConnection, since: DateTime<Utc>) -> Result<Changes, StorageError> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        now: DateTime<Utc>,
    }
    let now: Now = diesel::sql_query("SELECT statement_timestamp() AS now").get_result(conn).await?;
    #[derive(QueryableByName)]
    struct Changed {
        #[diesel(sql_type = Text)]
        period: String,
        #[diesel(sql_type = Text)]
        client_id: String,
        #[diesel(sql_type = Text)]
        modality: String,
        #[diesel(sql_type = Text)]
        grade: String,
        #[diesel(sql_type = BigInt)]
        reports: i64,
        #[diesel(sql_type = Numeric)]
        revenue_inr: Decimal,
        #[diesel(sql_type = Numeric)]
        cogs_inr: Decimal,
        #[diesel(sql_type = Numeric)]
        margin_inr: Decimal,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        updated_at: DateTime<Utc>,
    }
    let rows: Vec<Changed> = diesel::sql_query(
        "SELECT period, client_id, modality, grade, reports, revenue_inr, cogs_inr, margin_inr, updated_at \
         FROM margin_summary WHERE updated_at > $1 ORDER BY period, client_id, modality, grade",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .load(conn)
    .await?;
    let rows = rows
        .into_iter()
        .map(|c| MarginChange {
            row: MarginRow {
                period: c.period,
                client_id: c.client_id,
                modality: c.modality,
                grade: c.grade,
                reports: c.reports,
                revenue_inr: c.revenue_inr,
                cogs_inr: c.cogs_inr,
                margin_inr: c.margin_inr,
            },
            updated_at: c.updated_at,
        })
        .collect();
    Ok(Changes { as_of: now.now, rows })
}

/// The run of a period's current view (its last CLOSED event's run, else its LIVE run), if it
/// has one.
pub async fn current_run(conn: &mut AsyncPgConnection, period: Period) -> Result<Option<i64>, StorageError> {
    #[derive(QueryableByName)]
    struct Run {
        #[diesel(sql_type = Nullable<BigInt>)]
        run_id: Option<i64>,
    }
    let run: Run = diesel::sql_query(format!("SELECT {CURRENT_RUN} AS run_id"))
        .bind::<Text, _>(period.to_string())
        .get_result(conn)
        .await?;
    Ok(run.run_id)
}

/// One modality of a provider's month in the period's current view.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct ProviderModalityRow {
    #[diesel(sql_type = Text)]
    pub modality: String,
    /// Reports with COGS booked.
    #[diesel(sql_type = BigInt)]
    pub reports: i64,
    #[diesel(sql_type = Numeric)]
    pub cogs_inr: Decimal,
}

/// A provider's month from the ledger's current view of the period: reports and COGS (INR) by
/// modality, counted as [`ledger_view`] counts them (a report line whose entries net to zero is
/// not a report).
pub async fn provider_month(
    conn: &mut AsyncPgConnection,
    period: Period,
    provider_id: &str,
) -> Result<Vec<ProviderModalityRow>, StorageError> {
    let sql = format!(
        "WITH lines AS ( \
             SELECT e.modality, e.report_id, sum(e.amount) AS amount, sum(e.amount_inr) AS amount_inr \
             FROM ledger_entries e \
             WHERE e.period = $1 AND e.run_id = {CURRENT_RUN} AND e.side = 'COGS' AND e.provider_id = $2 \
             GROUP BY e.modality, e.report_id, e.line) \
         SELECT modality, count(*) FILTER (WHERE report_id IS NOT NULL AND amount <> 0) AS reports, \
                coalesce(sum(amount_inr), 0) AS cogs_inr \
         FROM lines GROUP BY modality \
         HAVING count(*) FILTER (WHERE report_id IS NOT NULL AND amount <> 0) <> 0 OR coalesce(sum(amount_inr), 0) <> 0 \
         ORDER BY modality"
    );
    Ok(diesel::sql_query(sql).bind::<Text, _>(period.to_string()).bind::<Text, _>(provider_id).load(conn).await?)
}
