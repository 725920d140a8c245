//! The record of the rolling-window sync (`sync_runs`, append-only): one row per run, written
//! once it has ended, with what it read from the source, what became of each row, and the first
//! [`MAX_REJECTED_ROWS`] rejected rows with their reasons.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::StorageError;
use crate::schema::sync_runs;

/// Most rejected rows a run keeps (the count covers all of them).
pub const MAX_REJECTED_ROWS: usize = 1000;

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncTrigger {
    /// The service's schedule.
    Schedule,
    /// An operator's request.
    OnDemand,
}

impl SyncTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncTrigger::Schedule => "SCHEDULE",
            SyncTrigger::OnDemand => "ON_DEMAND",
        }
    }
}

impl fmt::Display for SyncTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncTrigger {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "SCHEDULE" => Ok(SyncTrigger::Schedule),
            "ON_DEMAND" => Ok(SyncTrigger::OnDemand),
            other => Err(format!("{other:?} is not a sync trigger")),
        }
    }
}

/// What became of the rows a run read. A run that succeeded accounts for every row:
/// `read = new + changed + unchanged + rejected`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Rows read from the source.
    pub read: u64,
    /// Stored, of a report no revision of which was stored before.
    pub new: u64,
    /// Stored, a new revision of a report already stored.
    pub changed: u64,
    /// Identical to what is stored: nothing written.
    pub unchanged: u64,
    /// Not stored: invalid, or an existing revision with different content.
    pub rejected: u64,
}

/// A row of the source that was not stored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRow {
    /// Its position in the run's read order, from 1.
    pub row: u64,
    /// Its `report_id` and `revision` as read (`None` when NULL).
    pub report_id: Option<String>,
    pub revision: Option<String>,
    /// Every problem, e.g. `modality: must be one of …`.
    pub reasons: Vec<String>,
}

impl RejectedRow {
    fn to_json(&self) -> Value {
        json!({
            "row": self.row,
            "report_id": self.report_id,
            "revision": self.revision,
            "reasons": self.reasons,
        })
    }

    fn from_json(value: &Value) -> Result<Self, StorageError> {
        let corrupt = || StorageError::corrupt(format_args!("sync_runs.rejected {value}"));
        let text = |key: &str| -> Result<Option<String>, StorageError> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(corrupt()),
            }
        };
        let reasons = value
            .get("reasons")
            .and_then(Value::as_array)
            .ok_or_else(corrupt)?
            .iter()
            .map(|r| r.as_str().map(str::to_owned).ok_or_else(corrupt))
            .collect::<Result<_, _>>()?;
        Ok(RejectedRow {
            row: value.get("row").and_then(Value::as_u64).ok_or_else(corrupt)?,
            report_id: text("report_id")?,
            revision: text("revision")?,
            reasons,
        })
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded,
    /// The run stopped early; what it stored before stays stored (and is counted).
    Failed {
        error: String,
    },
}

/// A finished run, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSyncRun {
    pub trigger: SyncTrigger,
    /// The source database without credentials, e.g. `postgres://db.example:5432/his`.
    pub source: String,
    pub source_table: String,
    /// The reports finalized in `[window_start, window_end)`.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub counts: SyncCounts,
    /// The first rejected rows; only the first [`MAX_REJECTED_ROWS`] are kept.
    pub rejected: Vec<RejectedRow>,
    pub outcome: SyncOutcome,
}

/// A recorded run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub id: i64,
    pub run: NewSyncRun,
    pub duration_ms: u64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sync_runs, check_for_backend(diesel::pg::Pg))]
struct SyncRunRow {
    id: i64,
    trigger: String,
    source: String,
    source_table: String,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    duration_ms: i64,
    read_count: i64,
    new_count: i64,
    changed_count: i64,
    unchanged_count: i64,
    rejected_count: i64,
    rejected: Value,
    outcome: String,
    error: Option<String>,
}

impl TryFrom<SyncRunRow> for SyncRun {
    type Error = StorageError;

    fn try_from(row: SyncRunRow) -> Result<Self, StorageError> {
        let count = |column: &'static str, value: i64| {
            u64::try_from(value).map_err(|_| StorageError::corrupt(format_args!("sync_runs.{column} {value}")))
        };
        let counts = SyncCounts {
            read: count("read_count", row.read_count)?,
            new: count("new_count", row.new_count)?,
            changed: count("changed_count", row.changed_count)?,
            unchanged: count("unchanged_count", row.unchanged_count)?,
            rejected: count("rejected_count", row.rejected_count)?,
        };
        let rejected = row
            .rejected
            .as_array()
            .ok_or_else(|| StorageError::corrupt(format_args!("sync_runs.rejected is not an array")))?
            .iter()
            .map(RejectedRow::from_json)
            .collect::<Result<_, _>>()?;
        let outcome = match (row.outcome.as_str(), row.error) {
            ("SUCCEEDED", None) => SyncOutcome::Succeeded,
            ("FAILED", Some(error)) => SyncOutcome::Failed { error },
            (other, _) => return Err(StorageError::corrupt(format_args!("sync_runs.outcome {other:?}"))),
        };
        let trigger =
            row.trigger.parse().map_err(|e: String| StorageError::corrupt(format_args!("sync_runs.trigger: {e}")))?;
        Ok(SyncRun {
            id: row.id,
            duration_ms: count("duration_ms", row.duration_ms)?,
            run: NewSyncRun {
                trigger,
                source: row.source,
                source_table: row.source_table,
                window_start: row.window_start,
                window_end: row.window_end,
                started_at: row.started_at,
                finished_at: row.finished_at,
                counts,
                rejected,
                outcome,
            },
        })
    }
}

fn to_db(column: &str, value: u64) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|_| StorageError::OutOfRange(format!("sync_runs.{column} {value}")))
}

/// Records a finished run (keeping its first [`MAX_REJECTED_ROWS`] rejected rows) and returns it
/// as stored.
pub async fn insert(conn: &mut AsyncPgConnection, run: &NewSyncRun) -> Result<SyncRun, StorageError> {
    let duration_ms = (run.finished_at - run.started_at).num_milliseconds().max(0);
    let rejected: Vec<Value> = run.rejected.iter().take(MAX_REJECTED_ROWS).map(RejectedRow::to_json).collect();
    let (outcome, error) = match &run.outcome {
        SyncOutcome::Succeeded => ("SUCCEEDED", None),
        SyncOutcome::Failed { error } => ("FAILED", Some(error.as_str())),
    };
    let c = &run.counts;
    let row: SyncRunRow = diesel::insert_into(sync_runs::table)
        .values((
            sync_runs::trigger.eq(run.trigger.as_str()),
            sync_runs::source.eq(&run.source),
            sync_runs::source_table.eq(&run.source_table),
            sync_runs::window_start.eq(run.window_start),
            sync_runs::window_end.eq(run.window_end),
            sync_runs::started_at.eq(run.started_at),
            sync_runs::finished_at.eq(run.finished_at.max(run.started_at)),
            sync_runs::duration_ms.eq(duration_ms),
            sync_runs::read_count.eq(to_db("read_count", c.read)?),
            sync_runs::new_count.eq(to_db("new_count", c.new)?),
            sync_runs::changed_count.eq(to_db("changed_count", c.changed)?),
            sync_runs::unchanged_count.eq(to_db("unchanged_count", c.unchanged)?),
            sync_runs::rejected_count.eq(to_db("rejected_count", c.rejected)?),
            sync_runs::rejected.eq(Value::Array(rejected)),
            sync_runs::outcome.eq(outcome),
            sync_runs::error.eq(error),
        ))
        .returning(SyncRunRow::as_returning())
        .get_result(conn)
        .await?;
    SyncRun::try_from(row)
}

/// The latest `limit` runs, newest first.
pub async fn list(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<SyncRun>, StorageError> {
    let rows: Vec<SyncRunRow> = sync_runs::table
        .select(SyncRunRow::as_select())
        .order(sync_runs::id.desc())
        .limit(limit.max(0))
        .load(conn)
        .await?;
    rows.into_iter().map(SyncRun::try_from).collect()
}

/// When the latest recorded run started (of any trigger), for the schedule.
pub async fn last_started_at(conn: &mut AsyncPgConnection) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(sync_runs::table.select(diesel::dsl::max(sync_runs::started_at)).first(conn).await?)
}
