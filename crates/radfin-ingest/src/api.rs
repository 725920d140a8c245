//! The gRPC API: validation at the edge, one transaction per submission.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use radfin_bus::Bus;
use radfin_db::audit::{AuditOutcome, AuditRecord};
use radfin_db::reports::{InsertOutcome, NewReport};
use radfin_db::sync_runs::{SyncOutcome, SyncRun, SyncTrigger};
use radfin_db::{Pool, StorageError};
use radfin_domain::BusinessCalendar;
use radfin_proto::ingest::v1 as proto;
use radfin_proto::ingest::v1::ingest_service_server::IngestService;
use radfin_proto::ingest::v1::{
    GetReconcilerStatusRequest, GetReconcilerStatusResponse, ListDeadLettersRequest, ListDeadLettersResponse,
    ListSyncRunsRequest, ListSyncRunsResponse, ReconcilerStatus, RedriveDeadLetterRequest, RedriveDeadLetterResponse,
    ReportEvent, SubmitBatchRequest, SubmitBatchResponse, SubmitOutcome, SubmitReportRequest, SubmitReportResponse,
    SubmitStreamRequest, SubmitStreamResponse, SyncNowRequest, SyncNowResponse,
};
use radfin_proto::report_from_proto;
use radfin_service::error::to_status;
use tokio::sync::Notify;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::MAX_BATCH;
use crate::reconcile::Reconciler;
use crate::relay::Traces;
use crate::sync::{SyncWindow, Syncer};

/// Attempts of a submission's transaction when PostgreSQL reports a serialization failure.
const TRANSACTION_ATTEMPTS: u32 = 10;
/// Sync runs listed when the request does not say, and at most.
const DEFAULT_SYNC_RUNS: u32 = 20;
const MAX_SYNC_RUNS: u32 = 100;
/// Dead letters listed when the request does not say, and at most.
const DEFAULT_DEAD_LETTERS: u32 = 100;
const MAX_DEAD_LETTERS: u32 = 1000;

pub struct IngestApi {
    pool: Pool,
    calendar: BusinessCalendar,
    /// Wakes the relay after a commit.
    committed: Arc<Notify>,
    /// The rolling-window sync, when a source is configured.
    syncer: Option<Arc<Syncer>>,
    reconciler: Option<Arc<Reconciler>>,
    /// The bus whose dead letters `ListDeadLetters` and `RedriveDeadLetter` serve.
    bus: Option<Bus>,
    /// The trace of each submission, for the relay to publish its reports in.
    traces: Traces,
}

impl IngestApi {
    pub fn new(pool: Pool, calendar: BusinessCalendar, committed: Arc<Notify>) -> Self {
        Self { pool, calendar, committed, syncer: None, reconciler: None, bus: None, traces: Traces::default() }
    }

    /// Serves `SyncNow` with `syncer` (without one, it fails with FAILED_PRECONDITION).
    pub fn with_sync(mut self, syncer: Option<Arc<Syncer>>) -> Self {
        self.syncer = syncer;
        self
    }

    /// Hands the trace of each submission to the relay that publishes its reports.
    pub fn with_traces(mut self, traces: Traces) -> Self {
        self.traces = traces;
        self
    }

    /// Serves `GetReconcilerStatus` from `reconciler`.
    pub fn with_reconciler(mut self, reconciler: Arc<Reconciler>) -> Self {
        self.reconciler = Some(reconciler);
        self
    }

    /// Serves `ListDeadLetters` and `RedriveDeadLetter` from `bus`'s dead-letter stream.
    pub fn with_bus(mut self, bus: Bus) -> Self {
        self.bus = Some(bus);
        self
    }

    fn bus(&self) -> Result<&Bus, Status> {
        self.bus.as_ref().ok_or_else(|| Status::failed_precondition("this ingest has no message bus"))
    }

    /// Validates every report (naming each bad field as `<prefix>[i].<field>`), then stores all
    /// of them in one transaction, or none.
    async fn submit(
        &self,
        reports: &[ReportEvent],
        prefix: &str,
        indexed: bool,
    ) -> Result<SubmitBatchResponse, Status> {
        if reports.is_empty() {
            return Err(Status::invalid_argument(format!("{prefix}: must not be empty")));
        }
        if reports.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "{prefix}: at most {MAX_BATCH} reports per submission, got {}",
                reports.len()
            )));
        }
        let label = |i: usize| if indexed { format!("{prefix}[{i}]") } else { prefix.to_owned() };
        let now = Utc::now();
        let mut problems = Vec::new();
        let mut valid = Vec::with_capacity(reports.len());
        for (i, msg) in reports.iter().enumerate() {
            match report_from_proto(msg, now) {
                Ok(event) => {
                    let period = self.calendar.period_of(event.finalized_at);
                    valid.push(NewReport::new(event, period));
                }
                Err(errors) => {
                    problems.extend(errors.0.iter().map(|e| format!("{}.{}: {}", label(i), e.field, e.message)))
                }
            }
        }
        if !problems.is_empty() {
            return Err(Status::invalid_argument(problems.join("; ")));
        }

        let trace = Traces::current();
        let stored =
            radfin_db::named_transaction_with_retry(&self.pool, "store_reports", TRANSACTION_ATTEMPTS, async |conn| {
                let outcomes = radfin_db::reports::insert_batch(conn, &valid).await?;
                // Before the commit, so that the relay never publishes one without its trace.
                self.traces.record(trace.as_ref(), &outcomes);
                Ok(outcomes)
            })
            .await;
        let outcomes = match stored {
            Ok(o) => o,
            Err(StorageError::ConflictingRevisions { conflicts }) => {
                let named: Vec<String> = conflicts
                    .iter()
                    .map(|c| {
                        let at = valid
                            .iter()
                            .position(|n| n.event().report_id == c.report_id && n.event().revision == c.revision)
                            .map_or_else(|| prefix.to_owned(), label);
                        format!(
                            "{at}: revision {} of report {} is already stored with different content; send a higher revision to correct it",
                            c.revision, c.report_id
                        )
                    })
                    .collect();
                return Err(Status::already_exists(named.join("; ")));
            }
            Err(e) => return Err(to_status(&e)),
        };
        self.committed.notify_one();

        let mut response = SubmitBatchResponse::default();
        for (outcome, new) in outcomes.iter().zip(&valid) {
            let (outcome, sequence) = match *outcome {
                InsertOutcome::Inserted { seq } => (SubmitOutcome::Accepted, seq),
                InsertOutcome::Duplicate { seq } => (SubmitOutcome::Duplicate, seq),
            };
            match outcome {
                SubmitOutcome::Accepted => response.accepted += 1,
                _ => response.duplicates += 1,
            }
            response.results.push(SubmitReportResponse {
                outcome: outcome as i32,
                sequence: u64::try_from(sequence).unwrap_or_default(),
                period: new.period().to_string(),
            });
        }
        tracing::info!(accepted = response.accepted, duplicates = response.duplicates, "reports stored");
        Ok(response)
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn submit_report(
        &self,
        request: Request<SubmitReportRequest>,
    ) -> Result<Response<SubmitReportResponse>, Status> {
        let report = request.into_inner().report.ok_or_else(|| Status::invalid_argument("report: is required"))?;
        let mut response = self.submit(std::slice::from_ref(&report), "report", false).await?;
        Ok(Response::new(response.results.remove(0)))
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let reports = request.into_inner().reports;
        self.submit(&reports, "reports", true).await.map(Response::new)
    }

    async fn submit_stream(
        &self,
        request: Request<Streaming<SubmitStreamRequest>>,
    ) -> Result<Response<SubmitStreamResponse>, Status> {
        let mut stream = request.into_inner();
        let mut reports = Vec::new();
        while let Some(item) = stream.next().await {
            let i = reports.len();
            let report = item?.report.ok_or_else(|| Status::invalid_argument(format!("reports[{i}]: is required")))?;
            if reports.len() == MAX_BATCH {
                return Err(Status::invalid_argument(format!("reports: at most {MAX_BATCH} reports per stream")));
            }
            reports.push(report);
        }
        let SubmitBatchResponse { results, accepted, duplicates } = self.submit(&reports, "reports", true).await?;
        Ok(Response::new(SubmitStreamResponse { results, accepted, duplicates }))
    }

    async fn sync_now(&self, request: Request<SyncNowRequest>) -> Result<Response<SyncNowResponse>, Status> {
        let request = request.into_inner();
        let syncer = self.syncer.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "no sync source is configured (RADFIN_SYNC_SOURCE_URL and RADFIN_SYNC_SOURCE_TABLE)",
            )
        })?;
        let start = instant("window_start", &request.window_start)?;
        let end = instant("window_end", &request.window_end)?;
        let window = match (start, end) {
            (None, None) => None,
            (None, Some(_)) => return Err(Status::invalid_argument("window_start: is required with window_end")),
            (Some(start), end) => Some(
                SyncWindow::new(start, end.unwrap_or_else(Utc::now))
                    .map_err(|e| Status::invalid_argument(format!("window_end: {e}")))?,
            ),
        };
        let run = syncer.run(SyncTrigger::OnDemand, window).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(SyncNowResponse { run: Some(sync_run_to_proto(&run, true)) }))
    }

    async fn list_sync_runs(
        &self,
        request: Request<ListSyncRunsRequest>,
    ) -> Result<Response<ListSyncRunsResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_SYNC_RUNS,
            n => n.min(MAX_SYNC_RUNS),
        };
        let mut conn = self.pool.get().await.map_err(|e| to_status(&radfin_db::StorageError::from(e)))?;
        let runs = radfin_db::sync_runs::list(&mut conn, i64::from(limit)).await.map_err(|e| to_status(&e))?;
        let runs = runs.iter().map(|r| sync_run_to_proto(r, request.with_rejected_rows)).collect();
        Ok(Response::new(ListSyncRunsResponse { runs }))
    }

    async fn get_reconciler_status(
        &self,
        _request: Request<GetReconcilerStatusRequest>,
    ) -> Result<Response<GetReconcilerStatusResponse>, Status> {
        let reconciler =
            self.reconciler.as_ref().ok_or_else(|| Status::failed_precondition("the reconciler is not running"))?;
        let s = reconciler.status();
        let status = ReconcilerStatus {
            passes: s.passes,
            deferred_passes: s.deferred_passes,
            found_total: s.found_total,
            republished_total: s.republished_total,
            last_pass_found: s.last_pass_found,
            last_pass_republished: s.last_pass_republished,
            last_pass_at: s.last_pass_at.map(rfc3339).unwrap_or_default(),
            last_pass_duration_ms: u64::try_from(s.last_pass_duration.as_millis()).unwrap_or(u64::MAX),
            last_error: s.last_error.unwrap_or_default(),
            settled_through_seq: u64::try_from(s.settled_through).unwrap_or_default(),
            last_full_pass_at: s.last_full_pass_at.map(rfc3339).unwrap_or_default(),
            interval_secs: reconciler.interval().as_secs(),
            grace_secs: reconciler.grace().as_secs(),
        };
        Ok(Response::new(GetReconcilerStatusResponse { status: Some(status) }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_DEAD_LETTERS,
            n => n.min(MAX_DEAD_LETTERS),
        };
        let letters = self
            .bus()?
            .dead_letters(request.after_seq, usize::try_from(limit).unwrap_or(usize::MAX))
            .await
            .map_err(|e| to_status(&e))?;
        let next_after_seq = letters.last().map_or(request.after_seq, |l| l.seq);
        let dead_letters = letters
            .into_iter()
            .map(|l| proto::DeadLetter {
                seq: l.seq,
                dead_lettered_at: rfc3339(DateTime::<Utc>::from(l.published_at)),
                original_subject: l.original_subject,
                original_stream: l.original_stream,
                original_sequence: l.original_sequence,
                consumer: l.consumer,
                reason: l.reason,
                delivered: l.delivered,
                msg_id: l.msg_id.unwrap_or_default(),
                payload_bytes: u64::try_from(l.payload_len).unwrap_or(u64::MAX),
            })
            .collect();
        Ok(Response::new(ListDeadLettersResponse { dead_letters, next_after_seq }))
    }

    async fn redrive_dead_letter(
        &self,
        request: Request<RedriveDeadLetterRequest>,
    ) -> Result<Response<RedriveDeadLetterResponse>, Status> {
        let caller = radfin_service::auth::principal(&request);
        let request = request.into_inner();
        if request.seq == 0 {
            return Err(Status::invalid_argument("seq: is required (a dead letter's seq from ListDeadLetters)"));
        }
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(Status::invalid_argument("reason: is required (it is written to the audit log)"));
        }
        let result = self.bus()?.redrive(request.seq).await;
        let (outcome, details) = match &result {
            Ok(r) => (
                AuditOutcome::Allowed,
                serde_json::json!({
                    "subject": r.subject,
                    "stream": r.stream,
                    "stream_sequence": r.stream_sequence,
                    "duplicate": r.duplicate,
                }),
            ),
            Err(e) => (AuditOutcome::Failed, serde_json::json!({"error": e.to_string()})),
        };
        let record = AuditRecord {
            actor: caller.name.clone(),
            role: caller.role.as_str().to_owned(),
            action: "RedriveDeadLetter".to_owned(),
            target: format!("dead letter {}", request.seq),
            reason: Some(reason.to_owned()),
            outcome,
            details,
        };
        let audited = async {
            let mut conn = self.pool.get().await.map_err(StorageError::from)?;
            radfin_db::audit::record(&mut conn, &record).await
        }
        .await;
        let redriven = result.map_err(|e| to_status(&e))?;
        if let Err(e) = audited {
            // The redrive happened; what could not be recorded is an error of the call all the same.
            tracing::error!(error = %e, seq = request.seq, "cannot audit the redrive of a dead letter");
            return Err(to_status(&e));
        }
        Ok(Response::new(RedriveDeadLetterResponse {
            seq: redriven.seq,
            subject: redriven.subject,
            stream_sequence: redriven.stream_sequence,
        }))
    }
}

/// An optional RFC 3339 instant of a request, naming the field when it does not parse.
fn instant(field: &str, value: &str) -> Result<Option<DateTime<Utc>>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value).map(|t| Some(t.with_timezone(&Utc))).map_err(|e| {
        Status::invalid_argument(format!(
            "{field}: must be an RFC 3339 instant such as 2026-10-01T00:00:00+05:30, got {value:?} ({e})"
        ))
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A recorded run as the protocol shows it, with or without its rejected rows.
fn sync_run_to_proto(run: &SyncRun, with_rejected_rows: bool) -> proto::SyncRun {
    let r = &run.run;
    let (outcome, error) = match &r.outcome {
        SyncOutcome::Succeeded => (proto::SyncOutcome::Succeeded, String::new()),
        SyncOutcome::Failed { error } => (proto::SyncOutcome::Failed, error.clone()),
    };
    let trigger = match r.trigger {
        SyncTrigger::Schedule => proto::SyncTrigger::Schedule,
        SyncTrigger::OnDemand => proto::SyncTrigger::OnDemand,
    };
    let rejected_rows = if with_rejected_rows {
        r.rejected
            .iter()
            .map(|row| proto::SyncRejectedRow {
                row: row.row,
                report_id: row.report_id.clone().unwrap_or_default(),
                revision: row.revision.clone().unwrap_or_default(),
                reasons: row.reasons.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    proto::SyncRun {
        id: u64::try_from(run.id).unwrap_or_default(),
        trigger: trigger as i32,
        source: r.source.clone(),
        source_table: r.source_table.clone(),
        window_start: rfc3339(r.window_start),
        window_end: rfc3339(r.window_end),
        started_at: rfc3339(r.started_at),
        finished_at: rfc3339(r.finished_at),
        duration_ms: run.duration_ms,
        read: r.counts.read,
        new: r.counts.new,
        changed: r.counts.changed,
        unchanged: r.counts.unchanged,
        rejected: r.counts.rejected,
        rejected_rows,
        outcome: outcome as i32,
        error,
    }
}
