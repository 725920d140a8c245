//! What the reporting service reads, for the gRPC API and the dashboard alike: the summary
//! grouped and ranked ([`crate::summary`]), a client's and a provider's month, a rerun's effect,
//! the period states, held reports and runs; and the rebuild of the summary from the ledger.

use std::collections::{BTreeMap, BTreeSet};

use diesel_async::AsyncConnection;
use radfin_db::documents::PeriodStatus;
use radfin_db::held::{HeldFilter, HeldRow};
use radfin_db::margin::{MarginRow, ProviderModalityRow};
use radfin_db::runs::{PricingRun, RunKind};
use radfin_db::sync_runs::SyncRun;
use radfin_db::{Pool, PooledConnection, StorageError};
use radfin_domain::close::{ClientDifference, ProviderDifference};
use radfin_domain::{ClientId, Grade, Modality, Period, ProviderId};

use crate::summary::{self, GroupBy, Line, Order, Totals};

/// Runs looked through for reruns (newest first): far more than a deployment makes in years.
const RUNS_SCANNED: i64 = 5_000;

/// Why a query cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReportingError {
    #[error("{field}: {message}")]
    InvalidArgument { field: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Internal(String),
    /// What the ledger answered (the dashboard's documents are the ledger's); its message is
    /// the ledger's own, written for clients.
    #[error("ledger: {}", .0.message())]
    Ledger(tonic::Status),
}

use radfin_service::error::GrpcError;

impl GrpcError for ReportingError {
    fn code(&self) -> tonic::Code {
        match self {
            ReportingError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            ReportingError::NotFound(_) => tonic::Code::NotFound,
            ReportingError::Storage(e) => e.code(),
            ReportingError::Internal(_) => tonic::Code::Internal,
            ReportingError::Ledger(status) => status.code(),
        }
    }

    fn client_message(&self) -> String {
        match self {
            ReportingError::Storage(e) => e.client_message(),
            // The ledger's message is already written for clients.
            ReportingError::Ledger(status) => format!("ledger: {}", status.message()),
            ReportingError::Internal(_) => "internal error (details are in the service's log)".to_owned(),
            e => e.to_string(),
        }
    }
}

impl ReportingError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ReportingError::InvalidArgument { field, message: message.into() }
    }

    /// As a gRPC status (see [`radfin_service::error`]).
    pub fn status(&self) -> tonic::Status {
        radfin_service::error::to_status(self)
    }

    /// As an HTTP status and a message for the client.
    pub fn http(&self) -> (http::StatusCode, String) {
        let status = self.status();
        let code = match status.code() {
            tonic::Code::InvalidArgument => http::StatusCode::BAD_REQUEST,
            tonic::Code::NotFound => http::StatusCode::NOT_FOUND,
            tonic::Code::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            tonic::Code::PermissionDenied => http::StatusCode::FORBIDDEN,
            tonic::Code::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        (code, status.message().to_owned())
    }
}

/// An optional period argument: empty is none.
pub fn period_arg(field: &'static str, value: &str) -> Result<Option<Period>, ReportingError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    value.trim().parse::<Period>().map(Some).map_err(|e| ReportingError::invalid(field, e.to_string()))
}

/// A required period argument.
pub fn required_period(field: &'static str, value: &str) -> Result<Period, ReportingError> {
    period_arg(field, value)?.ok_or_else(|| ReportingError::invalid(field, "a period YYYY-MM is required"))
}

/// A range of periods, both ends inclusive and optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<Period>,
    pub to: Option<Period>,
}

impl Range {
    pub fn parse(from: &str, to: &str) -> Result<Range, ReportingError> {
        let range = Range { from: period_arg("from_period", from)?, to: period_arg("to_period", to)? };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && f > t
        {
            return Err(ReportingError::invalid("to_period", format!("{t} is before from_period {f}")));
        }
        Ok(range)
    }

    pub fn contains(&self, period: &str) -> bool {
        let Ok(p) = period.parse::<Period>() else {
            return false;
        };
        self.from.is_none_or(|f| p >= f) && self.to.is_none_or(|t| p <= t)
    }
}

/// What to summarize.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryQuery {
    pub range: Range,
    pub client_id: Option<String>,
    /// A modality name or `NONE`.
    pub modality: Option<String>,
    /// A grade name or `NONE`.
    pub grade: Option<String>,
    pub group_by: GroupBy,
}

/// A client id argument: empty is none.
pub fn client_arg(field: &'static str, value: &str) -> Result<Option<String>, ReportingError> {
    if value.is_empty() {
        return Ok(None);
    }
    ClientId::parse(value).map(|c| Some(c.to_string())).map_err(|e| ReportingError::invalid(field, e.to_string()))
}

/// A modality filter: a modality's name, `NONE` (client-level lines) or empty (any).
pub fn modality_arg(field: &'static str, value: &str) -> Result<Option<String>, ReportingError> {
    match value {
        "" => Ok(None),
        "NONE" => Ok(Some(value.to_owned())),
        _ => value
            .parse::<Modality>()
            .map(|m| Some(m.as_str().to_owned()))
            .map_err(|e| ReportingError::invalid(field, format!("{e} (or NONE)"))),
    }
}

/// A grade filter: a grade's name, `NONE` (client-level lines) or empty (any).
pub fn grade_arg(field: &'static str, value: &str) -> Result<Option<String>, ReportingError> {
    match value {
        "" => Ok(None),
        "NONE" => Ok(Some(value.to_owned())),
        _ => value
            .parse::<Grade>()
            .map(|g| Some(g.as_str().to_owned()))
            .map_err(|e| ReportingError::invalid(field, format!("{e} (or NONE)"))),
    }
}

/// A grouped summary and its total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: Vec<Line>,
    pub total: Totals,
}

/// A client's month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMonth {
    pub client_id: String,
    pub period: Period,
    pub closed: bool,
    pub current_run_id: Option<i64>,
    /// By modality × grade.
    pub rows: Vec<Line>,
    pub modalities: Vec<Line>,
    pub total: Totals,
}

/// A provider's month in the period's current view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMonth {
    pub provider_id: String,
    pub period: Period,
    pub run_id: Option<i64>,
    pub modalities: Vec<ProviderModalityRow>,
}

/// A rerun and what it changes against the run it was compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RerunEffect {
    pub run: PricingRun,
    pub compared_run_id: i64,
    pub applied: bool,
    pub clients: Vec<ClientDifference>,
    pub providers: Vec<ProviderDifference>,
}

/// A rerun as the dashboard lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RerunInfo {
    pub run: PricingRun,
    pub applied: bool,
}

/// A period's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodState {
    pub period: Period,
    pub status: PeriodStatus,
    /// The run of its current view (the LIVE run while open), and that run's kind.
    pub current_run: Option<(i64, RunKind)>,
}

/// The reporting service's reads over a pool of its own role's connections.
pub struct Reporting {
    pool: Pool,
}

impl Reporting {
    pub fn new(pool: Pool) -> Reporting {
        Reporting { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn conn(&self) -> Result<PooledConnection, ReportingError> {
        Ok(self.pool.get().await.map_err(StorageError::from)?)
    }

    async fn rows(&self, range: Range, client_id: Option<&str>) -> Result<Vec<MarginRow>, ReportingError> {
        let mut conn = self.conn().await?;
        Ok(radfin_db::margin::rows(&mut conn, range.from, range.to, client_id).await?)
    }

    /// The summary over `query`'s periods and filters, grouped as asked.
    pub async fn summarize(&self, query: &SummaryQuery) -> Result<Summary, ReportingError> {
        let mut rows = self.rows(query.range, query.client_id.as_deref()).await?;
        rows.retain(|r| {
            query.modality.as_deref().is_none_or(|m| r.modality == m)
                && query.grade.as_deref().is_none_or(|g| r.grade == g)
        });
        Ok(Summary { lines: summary::group(&rows, query.group_by), total: Totals::of(&rows) })
    }

    /// The clients ranked by margin % over `range`.
    pub async fn top_clients(&self, range: Range, limit: usize, order: Order) -> Result<Vec<Line>, ReportingError> {
        let rows = self.rows(range, None).await?;
        Ok(summary::rank_clients(&rows, limit, order))
    }

    /// One client's month.
    pub async fn client_month(&self, client_id: &str, period: Period) -> Result<ClientMonth, ReportingError> {
        let client_id = client_arg("client_id", client_id)?
            .ok_or_else(|| ReportingError::invalid("client_id", "a client id is required"))?;
        let mut conn = self.conn().await?;
        let rows = radfin_db::margin::rows(&mut conn, Some(period), Some(period), Some(&client_id)).await?;
        let status = radfin_db::documents::period_status(&mut conn, period).await?;
        let current_run_id = radfin_db::margin::current_run(&mut conn, period).await?;
        Ok(ClientMonth {
            client_id,
            period,
            closed: status.closed,
            current_run_id,
            rows: summary::group(&rows, GroupBy { modality: true, grade: true, ..GroupBy::default() }),
            modalities: summary::group(&rows, GroupBy { modality: true, ..GroupBy::default() }),
            total: Totals::of(&rows),
        })
    }

    /// One provider's month from the ledger's current view.
    pub async fn provider_month(&self, provider_id: &str, period: Period) -> Result<ProviderMonth, ReportingError> {
        let provider_id = ProviderId::parse(provider_id)
            .map_err(|e| ReportingError::invalid("provider_id", e.to_string()))?
            .to_string();
        let mut conn = self.conn().await?;
        let run_id = radfin_db::margin::current_run(&mut conn, period).await?;
        let modalities = radfin_db::margin::provider_month(&mut conn, period, &provider_id).await?;
        Ok(ProviderMonth { provider_id, period, run_id, modalities })
    }

    /// Every rerun (previewed or applied), newest first.
    pub async fn reruns(&self) -> Result<Vec<RerunInfo>, ReportingError> {
        let mut conn = self.conn().await?;
        let runs = radfin_db::runs::recent(&mut conn, None, RUNS_SCANNED).await?;
        let mut out = Vec::new();
        for run in runs.into_iter().filter(|r| r.kind == RunKind::Rerun) {
            let applied = radfin_db::documents::applied(&mut conn, run.period, run.run_id).await?;
            out.push(RerunInfo { run, applied });
        }
        Ok(out)
    }

    /// A rerun's effect per client and provider (the most recent rerun when `run_id` is `None`),
    /// compared with the run its manifest names, as the ledger's preview computes it.
    pub async fn rerun_effect(&self, run_id: Option<i64>) -> Result<RerunEffect, ReportingError> {
        let mut conn = self.conn().await?;
        let run = match run_id {
            Some(id) => radfin_db::runs::get(&mut conn, id)
                .await?
                .ok_or_else(|| ReportingError::NotFound(format!("there is no run {id}")))?,
            None => radfin_db::runs::recent(&mut conn, None, RUNS_SCANNED)
                .await?
                .into_iter()
                .find(|r| r.kind == RunKind::Rerun)
                .ok_or_else(|| ReportingError::NotFound("no period has been rerun".to_owned()))?,
        };
        if run.kind != RunKind::Rerun {
            return Err(ReportingError::invalid(
                "run_id",
                format!("run {} is a {} run, not a rerun", run.run_id, run.kind),
            ));
        }
        let manifest = radfin_db::documents::manifest(&mut conn, run.run_id)
            .await?
            .ok_or_else(|| ReportingError::NotFound(format!("rerun {} has no manifest", run.run_id)))?;
        let compared_run_id = manifest.get("compared_run_id").and_then(serde_json::Value::as_i64).ok_or_else(|| {
            ReportingError::Storage(StorageError::corrupt(format_args!(
                "rerun_manifests {}: no compared_run_id",
                run.run_id
            )))
        })?;
        let applied = radfin_db::documents::applied(&mut conn, run.period, run.run_id).await?;
        let comparison = radfin_db::documents::comparison(&mut conn, run.run_id).await?.ok_or_else(|| {
            ReportingError::NotFound(format!(
                "rerun {} was previewed before previews kept their comparison; preview the period again",
                run.run_id
            ))
        })?;
        Ok(RerunEffect { run, compared_run_id, applied, clients: comparison.clients, providers: comparison.providers })
    }

    /// Every period with ledger entries, summary rows or state events, with its state.
    pub async fn period_states(&self) -> Result<Vec<PeriodState>, ReportingError> {
        let mut conn = self.conn().await?;
        let mut periods: BTreeSet<Period> = radfin_db::margin::periods(&mut conn).await?.into_iter().collect();
        let statuses = radfin_db::documents::period_statuses(&mut conn, None).await?;
        periods.extend(statuses.keys().copied());
        let runs: BTreeMap<i64, RunKind> = radfin_db::runs::recent(&mut conn, None, RUNS_SCANNED)
            .await?
            .into_iter()
            .map(|r| (r.run_id, r.kind))
            .collect();
        let mut out = Vec::with_capacity(periods.len());
        for period in periods.into_iter().rev() {
            let status = statuses.get(&period).cloned().unwrap_or(PeriodStatus {
                period,
                closed: false,
                current_run_id: None,
                close_run_id: None,
                closed_at: None,
                closed_by: None,
            });
            let current = radfin_db::margin::current_run(&mut conn, period).await?;
            let current_run = current.map(|id| (id, runs.get(&id).copied().unwrap_or(RunKind::Live)));
            out.push(PeriodState { period, status, current_run });
        }
        Ok(out)
    }

    /// The report revisions held now, by period, report and revision.
    pub async fn held(&self) -> Result<Vec<HeldRow>, ReportingError> {
        let mut conn = self.conn().await?;
        Ok(radfin_db::held::current(&mut conn, &HeldFilter::default()).await?)
    }

    /// The most recent sync runs, newest first.
    pub async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>, ReportingError> {
        let mut conn = self.conn().await?;
        Ok(radfin_db::sync_runs::list(&mut conn, limit).await?)
    }

    /// The most recent pricing runs (LIVE, CLOSE, RERUN), newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<PricingRun>, ReportingError> {
        let mut conn = self.conn().await?;
        Ok(radfin_db::runs::recent(&mut conn, None, limit).await?)
    }

    /// Every period known to the summary or the ledger, oldest first.
    pub async fn periods(&self) -> Result<Vec<Period>, ReportingError> {
        let mut conn = self.conn().await?;
        Ok(radfin_db::margin::periods(&mut conn).await?)
    }

    /// Rebuilds the summary of `period` (every period when `None`) from the ledger's current
    /// view, each period in a transaction of its own holding the ledger writers' lock and the
    /// period's lock exclusively (so no live batch, close or rerun of it runs meanwhile).
    /// Returns the rows written per period.
    pub async fn rebuild(&self, period: Option<Period>) -> Result<Vec<(Period, usize)>, ReportingError> {
        let mut conn = self.conn().await?;
        let periods = match period {
            Some(p) => vec![p],
            None => radfin_db::margin::periods(&mut conn).await?,
        };
        let mut rebuilt = Vec::with_capacity(periods.len());
        for p in periods {
            let rows = conn
                .transaction(async |conn| {
                    radfin_db::ledger::lock_for_write(conn).await?;
                    radfin_db::documents::lock_period(conn, p, true).await?;
                    radfin_db::margin::rebuild(conn, p).await
                })
                .await?;
            tracing::info!(period = %p, rows, "margin summary rebuilt");
            rebuilt.push((p, rows));
        }
        Ok(rebuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_filters_are_validated_naming_the_field() {
        assert_eq!(Range::parse("", "").unwrap(), Range::default());
        let r = Range::parse("2026-09", "2026-10").unwrap();
        assert!(r.contains("2026-09") && r.contains("2026-10") && !r.contains("2026-11") && !r.contains("x"));
        let e = Range::parse("2026-10", "2026-09").unwrap_err();
        assert!(e.to_string().starts_with("to_period: 2026-09 is before"), "{e}");
        let e = Range::parse("2026-13", "").unwrap_err();
        assert!(e.to_string().starts_with("from_period:"), "{e}");
        assert_eq!(modality_arg("modality", "PET_CT").unwrap().as_deref(), Some("PET_CT"));
        assert_eq!(modality_arg("modality", "NONE").unwrap().as_deref(), Some("NONE"));
        assert!(modality_arg("modality", "xray").unwrap_err().to_string().starts_with("modality:"));
        assert_eq!(grade_arg("grade", "").unwrap(), None);
        assert!(grade_arg("grade", "CHIEF").is_err());
        assert_eq!(ReportingError::invalid("x", "bad").status().code(), tonic::Code::InvalidArgument);
        assert_eq!(ReportingError::NotFound("none".into()).http().0, http::StatusCode::NOT_FOUND);
    }
}
