//! The rolling-window sync (spec §6): reads the reports of a window from an operator-configured
//! PostgreSQL table or view, a page at a time, and stores them through the submissions' path
//! (validation by the domain, then `radfin_db::reports::insert_batch` with its outbox, so the
//! relay publishes them). Unlike a submitted batch, a sync stores its valid rows even when
//! others are invalid; every rejected row is recorded with its reasons. Every run ends with a
//! row in `sync_runs`.
//!
//! The source has the columns of spec §2: `report_id`, `revision`, `client_id`, `provider_id`,
//! `modality`, `body_regions`, `priority`, `finalized_at`, `status`. Each is read as text (any
//! column type whose text form is what §2 names will do, enumerations included), except
//! `finalized_at`, which must be a `timestamptz` (a `timestamp` is taken as UTC); rows whose
//! `finalized_at` is NULL are not in any window.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use radfin_db::reports::{InsertOutcome, NewReport};
use radfin_db::sync_runs::{MAX_REJECTED_ROWS, NewSyncRun, RejectedRow, SyncCounts, SyncOutcome, SyncRun, SyncTrigger};
use radfin_db::{Pool, StorageError};
use radfin_domain::report::FieldError;
use radfin_domain::{BusinessCalendar, RawReport};
use radfin_service::shutdown::Shutdown;
use tokio::sync::{Mutex, Notify};
use tokio_postgres::{IsolationLevel, NoTls};

/// Rows fetched from the source per round trip, and stored per transaction.
pub const PAGE_SIZE: usize = 1000;
/// Attempts of a page's transaction when PostgreSQL reports a serialization failure.
const TRANSACTION_ATTEMPTS: u32 = 10;
/// How long connecting to the source may take, unless its URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The columns read, in order (spec §2).
const COLUMNS: [&str; 9] = [
    "report_id",
    "revision",
    "client_id",
    "provider_id",
    "modality",
    "body_regions",
    "priority",
    "finalized_at",
    "status",
];

/// A table or view name, optionally schema-qualified: one or two SQL identifiers of ASCII
/// letters, digits and `_`, not starting with a digit, at most 63 characters each. Used as
/// written (quoted), so the case matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTable {
    schema: Option<String>,
    name: String,
}

impl SourceTable {
    /// The name as SQL, each part quoted: `"his"."finalized_reports"`.
    fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }
}

impl FromStr for SourceTable {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let identifier = |part: &str| {
            (1..=63).contains(&part.len())
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !part.as_bytes()[0].is_ascii_digit()
        };
        let parts: Vec<&str> = s.split('.').collect();
        match parts[..] {
            [name] if identifier(name) => Ok(Self { schema: None, name: name.to_owned() }),
            [schema, name] if identifier(schema) && identifier(name) => {
                Ok(Self { schema: Some(schema.to_owned()), name: name.to_owned() })
            }
            _ => Err(format!(
                "{s:?} is not a table name: one or two dot-separated identifiers of ASCII letters, digits and '_', \
                 not starting with a digit, at most 63 characters each"
            )),
        }
    }
}

impl fmt::Display for SourceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Where the sync reads from: `RADFIN_SYNC_SOURCE_URL` and `RADFIN_SYNC_SOURCE_TABLE`.
/// (`Debug` does not show the password.)
#[derive(Clone, Debug)]
pub struct SyncSource {
    config: tokio_postgres::Config,
    table: SourceTable,
}

impl SyncSource {
    /// A source from a `postgres://` (or `postgresql://`) URL and a table or view; the error
    /// is about the URL (and does not repeat it: it may hold a password).
    pub fn new(url: &str, table: SourceTable) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must be a postgres:// URL".to_owned());
        }
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("is not a PostgreSQL URL: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("radfin-ingest sync");
        Ok(Self { config, table })
    }

    pub fn table(&self) -> &SourceTable {
        &self.table
    }

    /// The source database without credentials, e.g. `postgres://his.example:5432/his`.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let host = match host {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                };
                let ports = self.config.get_ports();
                match ports.get(i).or(ports.first()) {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        format!("postgres://{}/{}", hosts.join(","), self.config.get_dbname().unwrap_or_default())
    }
}

/// The reports a run reads: those finalized in `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl SyncWindow {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(format!("the window must start before it ends, got [{start}, {end})"))
        }
    }

    /// The rolling window at `now`: from the first instant (in the business time zone) of the
    /// month that was open one `interval` ago, to `now`. Most of the time that is the open month;
    /// in the first `interval` of a month it still covers the month before, so the reports of
    /// its last hour are not skipped by the turn of the month.
    pub fn rolling(calendar: BusinessCalendar, now: DateTime<Utc>, interval: Duration) -> Self {
        let lookback = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::zero());
        let since = now.checked_sub_signed(lookback).unwrap_or(now);
        let (start, _) = calendar.period_bounds(calendar.period_of(since));
        Self { start, end: now }
    }
}

/// Why a run stopped early. Recorded in the run; nothing read before is undone.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("source: {0}")]
    Source(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("interrupted: the service is shutting down")]
    Interrupted,
}

impl From<tokio_postgres::Error> for SyncError {
    fn from(e: tokio_postgres::Error) -> Self {
        // tokio-postgres puts the server's message in the error's source.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        SyncError::Source(message)
    }
}

/// What a run has done so far.
#[derive(Default)]
struct Tally {
    counts: SyncCounts,
    rejected: Vec<RejectedRow>,
}

impl Tally {
    fn reject(&mut self, row: RejectedRow) {
        self.counts.rejected += 1;
        if self.rejected.len() < MAX_REJECTED_ROWS {
            self.rejected.push(row);
        }
    }
}

/// A row of the source, read.
struct SourceRow {
    /// Position in the read order, from 1.
    row: u64,
    /// `report_id` and `revision` as read, for the record of a rejection.
    report_id: Option<String>,
    revision: Option<String>,
    parsed: Result<NewReport, Vec<String>>,
}

/// Runs syncs from one source: on the schedule and on demand, one at a time per replica.
pub struct Syncer {
    pool: Pool,
    calendar: BusinessCalendar,
    source: SyncSource,
    interval: Duration,
    /// Wakes the relay after a commit.
    committed: Arc<Notify>,
    /// Fired when the service starts shutting down: a run stops at its next page.
    draining: Shutdown,
    /// Held while a run is in progress.
    running: Mutex<()>,
}

impl Syncer {
    pub fn new(
        pool: Pool,
        calendar: BusinessCalendar,
        source: SyncSource,
        interval: Duration,
        committed: Arc<Notify>,
        draining: Shutdown,
    ) -> Self {
        Self { pool, calendar, source, interval, committed, draining, running: Mutex::new(()) }
    }

    /// The rolling window now (see [`SyncWindow::rolling`]).
    pub fn rolling_window(&self, now: DateTime<Utc>) -> SyncWindow {
        SyncWindow::rolling(self.calendar, now, self.interval)
    }

    /// Runs a sync of `window` (the rolling window when `None`), waiting for a run in progress
    /// to end first, and records it. Returns the record; a run that failed is recorded and
    /// returned too (outcome FAILED). The error is only that the record could not be written.
    pub async fn run(&self, trigger: SyncTrigger, window: Option<SyncWindow>) -> Result<SyncRun, StorageError> {
        let _running = self.running.lock().await;
        let started_at = Utc::now();
        let window = window.unwrap_or_else(|| self.rolling_window(started_at));
        let mut tally = Tally::default();
        let result = self.read_and_store(window, &mut tally).await;
        let finished_at = Utc::now();
        let c = tally.counts;
        let outcome = match result {
            Ok(()) => {
                tracing::info!(
                    trigger = %trigger, source = %self.source.describe(), table = %self.source.table,
                    window_start = %window.start, window_end = %window.end,
                    read = c.read, new = c.new, changed = c.changed, unchanged = c.unchanged, rejected = c.rejected,
                    elapsed_ms = (finished_at - started_at).num_milliseconds(),
                    "sync finished"
                );
                SyncOutcome::Succeeded
            }
            Err(e) => {
                tracing::warn!(
                    trigger = %trigger, source = %self.source.describe(), table = %self.source.table,
                    read = c.read, new = c.new, changed = c.changed, unchanged = c.unchanged, rejected = c.rejected,
                    error = %e, "sync failed"
                );
                SyncOutcome::Failed { error: e.to_string() }
            }
        };
        let record = NewSyncRun {
            trigger,
            source: self.source.describe(),
            source_table: self.source.table.to_string(),
            window_start: window.start,
            window_end: window.end,
            started_at,
            finished_at,
            counts: tally.counts,
            rejected: tally.rejected,
            outcome,
        };
        let mut conn = self.pool.get().await?;
        radfin_db::sync_runs::insert(&mut conn, &record).await
    }

    /// Runs on the schedule until `shutdown`: a run every `interval` after the start of the
    /// latest recorded run (of any replica or trigger), at once when there is none or it is
    /// overdue, so restarts neither skip nor repeat runs.
    pub async fn run_schedule(self: Arc<Self>, mut shutdown: Shutdown) -> anyhow::Result<()> {
        loop {
            let wait = match self.next_run_in().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the latest sync run; trying again later");
                    self.interval.min(Duration::from_secs(60))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.requested() => return Ok(()),
            }
            if shutdown.is_requested() {
                return Ok(());
            }
            if let Err(e) = self.run(SyncTrigger::Schedule, None).await {
                tracing::error!(error = %e, "cannot record a sync run");
                // Do not run again at once: the record is what the schedule is based on.
                tokio::select! {
                    () = tokio::time::sleep(self.interval.min(Duration::from_secs(60))) => {}
                    () = shutdown.requested() => return Ok(()),
                }
            }
        }
    }

    async fn next_run_in(&self) -> Result<Duration, StorageError> {
        let mut conn = self.pool.get().await?;
        let Some(last) = radfin_db::sync_runs::last_started_at(&mut conn).await? else {
            return Ok(Duration::ZERO);
        };
        let elapsed = (Utc::now() - last).to_std().unwrap_or(Duration::ZERO);
        Ok(self.interval.saturating_sub(elapsed))
    }

    /// Reads the window from the source in pages (one read-only, repeatable-read transaction,
    /// so the pages are of one snapshot) and stores each page before reading the next.
    async fn read_and_store(&self, window: SyncWindow, tally: &mut Tally) -> Result<(), SyncError> {
        let (mut client, connection) = self.source.config.connect(NoTls).await?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "sync source connection ended");
            }
        });
        let result = async {
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            // A `timestamp` (without time zone) column is read as UTC.
            tx.batch_execute("SET LOCAL TIME ZONE 'UTC'").await?;
            let statement = tx.prepare(&self.query()).await?;
            let start = window.start.to_rfc3339_opts(SecondsFormat::Micros, true);
            let end = window.end.to_rfc3339_opts(SecondsFormat::Micros, true);
            let portal = tx.bind(&statement, &[&start, &end]).await?;
            let page_size = i32::try_from(PAGE_SIZE).unwrap_or(i32::MAX);
            loop {
                if self.draining.is_requested() {
                    return Err(SyncError::Interrupted);
                }
                let rows = tx.query_portal(&portal, page_size).await?;
                let now = Utc::now();
                let mut page = Vec::with_capacity(rows.len());
                for row in &rows {
                    tally.counts.read += 1;
                    page.push(self.parse(tally.counts.read, row, now)?);
                }
                self.store(page, tally).await?;
                if rows.len() < PAGE_SIZE {
                    break;
                }
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        drop(client);
        let _ = connection.await;
        result
    }

    /// Every column as text (`finalized_at` as an RFC 3339 UTC instant to the microsecond),
    /// of the rows finalized in the window `[$1, $2)`, in a stable order.
    fn query(&self) -> String {
        format!(
            "SELECT report_id::text, revision::text, client_id::text, provider_id::text, modality::text, \
                    body_regions::text, priority::text, \
                    to_char(finalized_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
                    status::text \
             FROM {} \
             WHERE finalized_at::timestamptz >= $1::text::timestamptz \
               AND finalized_at::timestamptz < $2::text::timestamptz \
             ORDER BY finalized_at, report_id, revision",
            self.source.table.sql()
        )
    }

    /// A source row as a report to store, or every reason it cannot be one.
    fn parse(&self, row_number: u64, row: &tokio_postgres::Row, now: DateTime<Utc>) -> Result<SourceRow, SyncError> {
        let mut values: Vec<Option<String>> = Vec::with_capacity(COLUMNS.len());
        for i in 0..COLUMNS.len() {
            values.push(row.try_get(i)?);
        }
        let mut problems: Vec<FieldError> = Vec::new();
        let mut text = |i: usize| match &values[i] {
            Some(v) => v.clone(),
            None => {
                problems.push(FieldError { field: COLUMNS[i].to_owned(), message: "is NULL".to_owned() });
                String::new()
            }
        };
        let (report_id, revision, client_id, provider_id) = (text(0), text(1), text(2), text(3));
        let (modality, body_regions, priority, finalized_at, status) = (text(4), text(5), text(6), text(7), text(8));
        let mut number = |i: usize, value: &str| -> u64 {
            if values[i].is_none() {
                return 1;
            }
            value.trim().parse().unwrap_or_else(|_| {
                problems.push(FieldError {
                    field: COLUMNS[i].to_owned(),
                    message: format!("must be a whole number, got {value:?}"),
                });
                // A valid placeholder: the problem is reported once, above.
                1
            })
        };
        let raw = RawReport {
            revision: number(1, &revision),
            body_regions: number(5, &body_regions),
            report_id,
            client_id,
            provider_id,
            modality,
            priority,
            finalized_at,
            status,
        };
        let parsed = match raw.validate(now) {
            Ok(event) if problems.is_empty() => {
                let period = self.calendar.period_of(event.finalized_at);
                Ok(NewReport::new(event, period))
            }
            Ok(_) => Err(problems.iter().map(ToString::to_string).collect()),
            Err(errors) => {
                let named: HashSet<String> = problems.iter().map(|p| p.field.clone()).collect();
                problems.extend(errors.0.into_iter().filter(|e| !named.contains(&e.field)));
                problems.sort_by_key(|p| COLUMNS.iter().position(|c| *c == p.field));
                Err(problems.iter().map(ToString::to_string).collect())
            }
        };
        Ok(SourceRow { row: row_number, report_id: values[0].clone(), revision: values[1].clone(), parsed })
    }

    /// Stores the valid rows of a page (one transaction), counts each row and records each
    /// rejected one. A revision stored with different content is rejected and the rest of the
    /// page stored without it.
    async fn store(&self, page: Vec<SourceRow>, tally: &mut Tally) -> Result<(), SyncError> {
        let mut rejected: Vec<RejectedRow> = Vec::new();
        let reject = |row: &SourceRow, reasons: Vec<String>| RejectedRow {
            row: row.row,
            report_id: row.report_id.clone(),
            revision: row.revision.clone(),
            reasons,
        };
        // Valid rows; a key given again in the page with other content is rejected here (the
        // first occurrence wins, as it would across pages).
        let mut batch: Vec<(&SourceRow, NewReport)> = Vec::with_capacity(page.len());
        let mut first: HashMap<(String, u32), (u64, NewReport)> = HashMap::new();
        for row in &page {
            match &row.parsed {
                Err(reasons) => rejected.push(reject(row, reasons.clone())),
                Ok(report) => {
                    let key = (report.event().report_id.to_string(), report.event().revision);
                    match first.get(&key) {
                        Some((earlier, seen)) if seen != report => rejected.push(reject(
                            row,
                            vec![format!(
                                "revision {} of report {} is given earlier in the source (row {earlier}) with different content",
                                key.1, key.0
                            )],
                        )),
                        Some(_) => batch.push((row, report.clone())),
                        None => {
                            first.insert(key, (row.row, report.clone()));
                            batch.push((row, report.clone()));
                        }
                    }
                }
            }
        }

        let ids: Vec<String> = first.keys().map(|(id, _)| id.clone()).collect::<HashSet<_>>().into_iter().collect();
        let mut known: HashSet<String> = if ids.is_empty() {
            HashSet::new()
        } else {
            let mut conn = self.pool.get().await.map_err(StorageError::from)?;
            radfin_db::reports::stored_report_ids(&mut conn, &ids).await?
        };

        // Each failed attempt removes at least one revision, so this ends.
        let outcomes = loop {
            if batch.is_empty() {
                break Vec::new();
            }
            let reports: Vec<NewReport> = batch.iter().map(|(_, r)| r.clone()).collect();
            let stored = radfin_db::named_transaction_with_retry(
                &self.pool,
                "sync_store_reports",
                TRANSACTION_ATTEMPTS,
                async |conn| radfin_db::reports::insert_batch(conn, &reports).await,
            )
            .await;
            match stored {
                Ok(outcomes) => break outcomes,
                Err(StorageError::ConflictingRevisions { conflicts }) => {
                    let conflicting: HashSet<(String, u32)> =
                        conflicts.iter().map(|c| (c.report_id.to_string(), c.revision)).collect();
                    batch.retain(|(row, report)| {
                        let key = (report.event().report_id.to_string(), report.event().revision);
                        if !conflicting.contains(&key) {
                            return true;
                        }
                        rejected.push(reject(
                            row,
                            vec![format!(
                                "revision {} of report {} is already stored with different content; \
                                 send a higher revision to correct it",
                                key.1, key.0
                            )],
                        ));
                        false
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };

        let mut inserted = false;
        for ((_, report), outcome) in batch.iter().zip(&outcomes) {
            match outcome {
                InsertOutcome::Inserted { .. } => {
                    inserted = true;
                    if known.insert(report.event().report_id.to_string()) {
                        tally.counts.new += 1;
                    } else {
                        tally.counts.changed += 1;
                    }
                }
                InsertOutcome::Duplicate { .. } => tally.counts.unchanged += 1,
            }
        }
        if inserted {
            self.committed.notify_one();
        }
        rejected.sort_by_key(|r| r.row);
        for r in rejected {
            tally.reject(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers() {
        let t: SourceTable = "finalized_reports".parse().unwrap();
        assert_eq!((t.sql(), t.to_string()), ("\"finalized_reports\"".to_owned(), "finalized_reports".to_owned()));
        let t: SourceTable = "his.Reports_2".parse().unwrap();
        assert_eq!(t.sql(), "\"his\".\"Reports_2\"");
        for bad in ["", "a.b.c", "1abc", "a;drop table x", "a b", "\"a\"", "a.", ".a", &"x".repeat(64)] {
            assert!(bad.parse::<SourceTable>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn sources_are_postgres_urls_described_without_credentials() {
        let table: SourceTable = "reports".parse().unwrap();
        let s = SyncSource::new("postgres://reader:s3cret@his.example:6543/his", table.clone()).unwrap();
        assert_eq!(s.describe(), "postgres://his.example:6543/his");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(SyncSource::new("host=his.example dbname=his", table.clone()).is_err());
        assert!(SyncSource::new("mysql://his.example/his", table.clone()).is_err());
        let e = SyncSource::new("postgres://reader:s3cret@his.example:port/his", table).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn the_rolling_window_starts_with_the_open_month() {
        let calendar = BusinessCalendar::default();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let hour = Duration::from_secs(3600);
        // 15 October 2026, 12:00 IST: from 1 October 00:00 IST.
        let w = SyncWindow::rolling(calendar, at("2026-10-15T06:30:00Z"), hour);
        assert_eq!((w.start, w.end), (at("2026-09-30T18:30:00Z"), at("2026-10-15T06:30:00Z")));
        // 1 November 00:20 IST: still October's, so its last hour is read.
        let w = SyncWindow::rolling(calendar, at("2026-10-31T18:50:00Z"), hour);
        assert_eq!(w.start, at("2026-09-30T18:30:00Z"));
        // 1 November 01:40 IST: November's.
        let w = SyncWindow::rolling(calendar, at("2026-10-31T20:10:00Z"), hour);
        assert_eq!(w.start, at("2026-10-31T18:30:00Z"));
        assert!(SyncWindow::new(w.end, w.start).is_err());
    }
}
