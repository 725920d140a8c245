//! Pricing runs (`pricing_runs`, append-only): LIVE (one per period, rules as of now), CLOSE
//! and RERUN (rules as of a recorded instant).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use radfin_domain::Period;

use crate::StorageError;
use crate::convert::decode;
use crate::schema::pricing_runs;

/// Who creates the LIVE run of a period (it is created on demand by whichever service needs it).
pub const LIVE_RUN_CREATOR: &str = "system";

/// The kind of a pricing run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// The open period's provisional pricing; one per period, always with the current rules.
    Live,
    /// The final pricing pass of a close.
    Close,
    /// An operator's reprice of a period, with a reason.
    Rerun,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Live => "LIVE",
            RunKind::Close => "CLOSE",
            RunKind::Rerun => "RERUN",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "LIVE" => Ok(RunKind::Live),
            "CLOSE" => Ok(RunKind::Close),
            "RERUN" => Ok(RunKind::Rerun),
            other => Err(format!("must be one of LIVE, CLOSE, RERUN, got {other:?}")),
        }
    }
}

/// A stored pricing run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricingRun {
    pub run_id: i64,
    pub period: Period,
    pub kind: RunKind,
    /// `None` for LIVE, which always prices with the rules as of now.
    pub rules_as_of: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = pricing_runs, check_for_backend(diesel::pg::Pg))]
struct RunRow {
    run_id: i64,
    period: String,
    kind: String,
    rules_as_of: Option<DateTime<Utc>>,
    reason: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<RunRow> for PricingRun {
    type Error = StorageError;

    fn try_from(row: RunRow) -> Result<Self, StorageError> {
        Ok(PricingRun {
            run_id: row.run_id,
            period: decode("pricing_runs.period", &row.period, str::parse)?,
            kind: decode("pricing_runs.kind", &row.kind, str::parse)?,
            rules_as_of: row.rules_as_of,
            reason: row.reason,
            created_by: row.created_by,
            created_at: row.created_at,
        })
    }
}

#[derive(QueryableByName)]
struct RunId {
    #[diesel(sql_type = BigInt)]
    run_id: i64,
}

/// The LIVE run of `period`, created if there is none. Race-safe: the partial unique index
/// admits one LIVE run per period, a concurrent creator's insert does nothing, and the lookup
/// that follows finds the winner's row (under READ COMMITTED; under SERIALIZABLE the loser
/// fails with a serialization failure, which [`crate::transaction_with_retry`] retries).
pub async fn live_run(conn: &mut AsyncPgConnection, period: Period) -> Result<i64, StorageError> {
    let created: Option<RunId> = diesel::sql_query(
        "INSERT INTO pricing_runs (period, kind, created_by) VALUES ($1, 'LIVE', $2)
         ON CONFLICT (period) WHERE kind = 'LIVE' DO NOTHING
         RETURNING run_id",
    )
    .bind::<Text, _>(period.to_string())
    .bind::<Text, _>(LIVE_RUN_CREATOR)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(created) = created {
        return Ok(created.run_id);
    }
    pricing_runs::table
        .filter(pricing_runs::period.eq(period.to_string()))
        .filter(pricing_runs::kind.eq(RunKind::Live.as_str()))
        .select(pricing_runs::run_id)
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| StorageError::corrupt(format_args!("the live run of {period} was neither created nor found")))
}

/// Records a CLOSE or RERUN run priced with the rules as of `rules_as_of` (a RERUN needs a
/// reason, which the table checks). For `RunKind::Live` this is [`live_run`]: the period's one
/// LIVE run, whose rules are always those of now, so `rules_as_of` and `reason` are ignored.
pub async fn create(
    conn: &mut AsyncPgConnection,
    period: Period,
    kind: RunKind,
    rules_as_of: DateTime<Utc>,
    reason: Option<&str>,
    created_by: &str,
) -> Result<i64, StorageError> {
    if kind == RunKind::Live {
        return live_run(conn, period).await;
    }
    let run_id = diesel::insert_into(pricing_runs::table)
        .values((
            pricing_runs::period.eq(period.to_string()),
            pricing_runs::kind.eq(kind.as_str()),
            pricing_runs::rules_as_of.eq(Some(rules_as_of)),
            pricing_runs::reason.eq(reason),
            pricing_runs::created_by.eq(created_by),
        ))
        .returning(pricing_runs::run_id)
        .get_result(conn)
        .await?;
    Ok(run_id)
}

/// One run.
pub async fn get(conn: &mut AsyncPgConnection, run_id: i64) -> Result<Option<PricingRun>, StorageError> {
    let row: Option<RunRow> =
        pricing_runs::table.find(run_id).select(RunRow::as_select()).first(conn).await.optional()?;
    row.map(PricingRun::try_from).transpose()
}

/// The most recent runs (of one period, or of all), newest first.
pub async fn recent(
    conn: &mut AsyncPgConnection,
    period: Option<Period>,
    limit: i64,
) -> Result<Vec<PricingRun>, StorageError> {
    let mut query =
        pricing_runs::table.order(pricing_runs::run_id.desc()).limit(limit).select(RunRow::as_select()).into_boxed();
    if let Some(period) = period {
        query = query.filter(pricing_runs::period.eq(period.to_string()));
    }
    let rows: Vec<RunRow> = query.load(conn).await?;
    rows.into_iter().map(PricingRun::try_from).collect()
}
