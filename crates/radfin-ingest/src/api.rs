//! The gRPC API: validation at the edge, one transaction per submission.

use std::sync::Arc;

use chrono::Utc;
use radfin_db::reports::{InsertOutcome, NewReport};
use radfin_db::{Pool, StorageError};
use radfin_domain::BusinessCalendar;
use radfin_proto::ingest::v1::ingest_service_server::IngestService;
use radfin_proto::ingest::v1::{
    ReportEvent, SubmitBatchRequest, SubmitBatchResponse, SubmitOutcome, SubmitReportRequest, SubmitReportResponse,
};
use radfin_proto::report_from_proto;
use radfin_service::grpc::storage_status;
use tokio::sync::Notify;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::MAX_BATCH;

/// Attempts of a submission's transaction when PostgreSQL reports a serialization failure.
const TRANSACTION_ATTEMPTS: u32 = 3;

pub struct IngestApi {
    pool: Pool,
    calendar: BusinessCalendar,
    /// Wakes the relay after a commit.
    committed: Arc<Notify>,
}

impl IngestApi {
    pub fn new(pool: Pool, calendar: BusinessCalendar, committed: Arc<Notify>) -> Self {
        Self { pool, calendar, committed }
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

        let stored = radfin_db::transaction_with_retry(&self.pool, TRANSACTION_ATTEMPTS, async |conn| {
            radfin_db::reports::insert_batch(conn, &valid).await
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
            Err(e) => return Err(storage_status(&e)),
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
        request: Request<Streaming<SubmitReportRequest>>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
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
        self.submit(&reports, "reports", true).await.map(Response::new)
    }
}
