//! `radfin.reporting.v1.ReportingService`: the gRPC face of [`crate::query`].

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use radfin_db::audit::{AuditOutcome, AuditRecord};
use radfin_domain::Currency;
use radfin_domain::close::Effects;
use radfin_proto::reporting::v1 as pb;
use radfin_proto::reporting::v1::reporting_service_server::ReportingService;
use radfin_service::shutdown::Shutdown;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::query::{self, Range, Reporting, ReportingError, SummaryQuery};
use crate::summary::{Dimension, GroupBy, Line, Order, Totals, inr_text, pct_text};
use crate::watch;

/// Clients [`ReportingService::list_top_clients`] returns unless asked for another number.
pub const DEFAULT_TOP: usize = 5;
/// The most it returns.
pub const MAX_TOP: usize = 1000;

/// The gRPC service.
pub struct ReportingApi {
    reporting: Arc<Reporting>,
    /// Requested when the service begins to drain: open `WatchSummary` streams end then.
    draining: Shutdown,
}

impl ReportingApi {
    pub fn new(reporting: Arc<Reporting>, draining: Shutdown) -> ReportingApi {
        ReportingApi { reporting, draining }
    }
}

fn status(e: ReportingError) -> Status {
    e.status()
}

/// A grouped line as a row of the protocol.
pub fn line_row(l: &Line) -> pb::SummaryRow {
    pb::SummaryRow {
        period: l.key.period.clone(),
        client_id: l.key.client_id.clone(),
        modality: l.key.modality.clone(),
        grade: l.key.grade.clone(),
        ..totals_row(&l.totals)
    }
}

/// Totals as a row with no dimension set.
pub fn totals_row(t: &Totals) -> pb::SummaryRow {
    pb::SummaryRow {
        reports: u64::try_from(t.reports).unwrap_or_default(),
        revenue_inr: inr_text(t.revenue_inr),
        cogs_inr: inr_text(t.cogs_inr),
        margin_inr: inr_text(t.margin_inr),
        margin_pct: pct_text(t.margin_pct()),
        ..pb::SummaryRow::default()
    }
}

/// An amount with at least its currency's minor digits.
fn money(d: Decimal, currency: Currency) -> String {
    radfin_proto::convert::amount_text(d.normalize(), currency)
}

fn effects(e: &Effects, currency: Currency) -> pb::Effects {
    pb::Effects {
        difference: money(e.difference(), currency),
        price: money(e.price, currency),
        volume: money(e.volume, currency),
        fx: money(e.fx, currency),
    }
}

fn dimension(field: &'static str, value: i32) -> Result<Dimension, ReportingError> {
    match pb::Dimension::try_from(value) {
        Ok(pb::Dimension::Period) => Ok(Dimension::Period),
        Ok(pb::Dimension::Client) => Ok(Dimension::Client),
        Ok(pb::Dimension::Modality) => Ok(Dimension::Modality),
        Ok(pb::Dimension::Grade) => Ok(Dimension::Grade),
        Ok(pb::Dimension::Unspecified) | Err(_) => {
            Err(ReportingError::invalid(field, format!("{value} is not a dimension (PERIOD, CLIENT, MODALITY, GRADE)")))
        }
    }
}

#[tonic::async_trait]
impl ReportingService for ReportingApi {
    async fn summarize(
        &self,
        request: Request<pb::SummarizeRequest>,
    ) -> Result<Response<pb::SummarizeResponse>, Status> {
        let r = request.into_inner();
        let mut dims = Vec::with_capacity(r.group_by.len());
        for value in &r.group_by {
            let d = dimension("group_by", *value).map_err(status)?;
            if dims.contains(&d) {
                return Err(status(ReportingError::invalid("group_by", format!("{} is given twice", d.as_str()))));
            }
            dims.push(d);
        }
        let query = SummaryQuery {
            range: Range::parse(&r.from_period, &r.to_period).map_err(status)?,
            client_id: query::client_arg("client_id", &r.client_id).map_err(status)?,
            modality: query::modality_arg("modality", &r.modality).map_err(status)?,
            grade: query::grade_arg("grade", &r.grade).map_err(status)?,
            group_by: GroupBy::of(&dims),
        };
        let summary = self.reporting.summarize(&query).await.map_err(status)?;
        Ok(Response::new(pb::SummarizeResponse {
            rows: summary.lines.iter().map(line_row).collect(),
            total: Some(totals_row(&summary.total)),
        }))
    }

    async fn get_client_month(
        &self,
        request: Request<pb::GetClientMonthRequest>,
    ) -> Result<Response<pb::GetClientMonthResponse>, Status> {
        let r = request.into_inner();
        let period = query::required_period("period", &r.period).map_err(status)?;
        let m = self.reporting.client_month(&r.client_id, period).await.map_err(status)?;
        Ok(Response::new(pb::GetClientMonthResponse {
            client_id: m.client_id,
            period: m.period.to_string(),
            closed: m.closed,
            current_run_id: m.current_run_id.and_then(|id| u64::try_from(id).ok()).unwrap_or_default(),
            rows: m.rows.iter().map(line_row).collect(),
            modalities: m.modalities.iter().map(line_row).collect(),
            total: Some(totals_row(&m.total)),
        }))
    }

    async fn get_provider_month(
        &self,
        request: Request<pb::GetProviderMonthRequest>,
    ) -> Result<Response<pb::GetProviderMonthResponse>, Status> {
        let r = request.into_inner();
        let period = query::required_period("period", &r.period).map_err(status)?;
        let m = self.reporting.provider_month(&r.provider_id, period).await.map_err(status)?;
        let reports: i64 = m.modalities.iter().map(|x| x.reports).sum();
        let cogs: Decimal = m.modalities.iter().map(|x| x.cogs_inr).sum();
        Ok(Response::new(pb::GetProviderMonthResponse {
            provider_id: m.provider_id,
            period: m.period.to_string(),
            run_id: m.run_id.and_then(|id| u64::try_from(id).ok()).unwrap_or_default(),
            reports: u64::try_from(reports).unwrap_or_default(),
            cogs_inr: inr_text(cogs),
            modalities: m
                .modalities
                .iter()
                .map(|x| pb::ProviderModality {
                    modality: x.modality.clone(),
                    reports: u64::try_from(x.reports).unwrap_or_default(),
                    cogs_inr: inr_text(x.cogs_inr),
                })
                .collect(),
        }))
    }

    async fn list_top_clients(
        &self,
        request: Request<pb::ListTopClientsRequest>,
    ) -> Result<Response<pb::ListTopClientsResponse>, Status> {
        let r = request.into_inner();
        let range = Range::parse(&r.from_period, &r.to_period).map_err(status)?;
        let limit = match r.limit as usize {
            0 => DEFAULT_TOP,
            n if n > MAX_TOP => {
                return Err(status(ReportingError::invalid("limit", format!("at most {MAX_TOP}, got {n}"))));
            }
            n => n,
        };
        let order = match pb::Order::try_from(r.order) {
            Ok(pb::Order::Unspecified | pb::Order::Top) => Order::Top,
            Ok(pb::Order::Bottom) => Order::Bottom,
            Err(_) => return Err(status(ReportingError::invalid("order", format!("{} is not an order", r.order)))),
        };
        let clients = self.reporting.top_clients(range, limit, order).await.map_err(status)?;
        Ok(Response::new(pb::ListTopClientsResponse { clients: clients.iter().map(line_row).collect() }))
    }

    async fn get_rerun_effect(
        &self,
        request: Request<pb::GetRerunEffectRequest>,
    ) -> Result<Response<pb::GetRerunEffectResponse>, Status> {
        let r = request.into_inner();
        let run_id = match r.run_id {
            0 => None,
            id => Some(
                i64::try_from(id)
                    .map_err(|_| status(ReportingError::invalid("run_id", format!("{id} is out of range"))))?,
            ),
        };
        let e = self.reporting.rerun_effect(run_id).await.map_err(status)?;
        let mut total = Effects::default();
        for c in &e.clients {
            total.price += c.inr.price;
            total.volume += c.inr.volume;
            total.fx += c.inr.fx;
        }
        Ok(Response::new(pb::GetRerunEffectResponse {
            run_id: u64::try_from(e.run.run_id).unwrap_or_default(),
            period: e.run.period.to_string(),
            compared_run_id: u64::try_from(e.compared_run_id).unwrap_or_default(),
            applied: e.applied,
            created_by: e.run.created_by.clone(),
            created_at: e.run.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            reason: e.run.reason.clone().unwrap_or_default(),
            clients: e
                .clients
                .iter()
                .map(|c| pb::ClientEffect {
                    client_id: c.client_id.to_string(),
                    currency: c.currency.code().to_owned(),
                    billed: money(c.billed, c.currency),
                    rerun: money(c.rerun, c.currency),
                    contract: Some(effects(&c.contract, c.currency)),
                    billed_inr: inr_text(c.billed_inr),
                    rerun_inr: inr_text(c.rerun_inr),
                    inr: Some(effects(&c.inr, Currency::INR)),
                    billed_reports: u32::try_from(c.billed_reports).unwrap_or_default(),
                    rerun_reports: u32::try_from(c.rerun_reports).unwrap_or_default(),
                })
                .collect(),
            providers: e
                .providers
                .iter()
                .map(|p| pb::ProviderEffect {
                    provider_id: p.provider_id.to_string(),
                    paid: inr_text(p.paid),
                    rerun: inr_text(p.rerun),
                    effects: Some(effects(&p.effects, Currency::INR)),
                    paid_reports: u32::try_from(p.paid_reports).unwrap_or_default(),
                    rerun_reports: u32::try_from(p.rerun_reports).unwrap_or_default(),
                })
                .collect(),
            total_inr: Some(effects(&total, Currency::INR)),
        }))
    }

    type WatchSummaryStream = Pin<Box<dyn Stream<Item = Result<pb::WatchSummaryResponse, Status>> + Send>>;

    async fn watch_summary(
        &self,
        request: Request<pb::WatchSummaryRequest>,
    ) -> Result<Response<Self::WatchSummaryStream>, Status> {
        let r = request.into_inner();
        let filter = watch::Filter {
            range: Range::parse(&r.from_period, &r.to_period).map_err(status)?,
            client_id: query::client_arg("client_id", &r.client_id).map_err(status)?,
        };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(watch::run(self.reporting.pool().clone(), filter, tx, self.draining.clone()));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn rebuild_summary(
        &self,
        request: Request<pb::RebuildSummaryRequest>,
    ) -> Result<Response<pb::RebuildSummaryResponse>, Status> {
        let caller = radfin_service::auth::principal(&request);
        let r = request.into_inner();
        let period = query::period_arg("period", &r.period).map_err(status)?;
        let target = period.map_or_else(|| "every period".to_owned(), |p| format!("period {p}"));
        let result = self.reporting.rebuild(period).await;
        let (outcome, details) = match &result {
            Ok(rebuilt) => (
                AuditOutcome::Allowed,
                serde_json::json!({
                    "periods": rebuilt.iter().map(|(p, n)| serde_json::json!({"period": p.to_string(), "rows": n})).collect::<Vec<_>>(),
                    "rows": rebuilt.iter().map(|(_, n)| n).sum::<usize>(),
                }),
            ),
            Err(e) => (AuditOutcome::Failed, serde_json::json!({"error": e.to_string()})),
        };
        let record = AuditRecord {
            actor: caller.name.clone(),
            role: caller.role.as_str().to_owned(),
            action: "RebuildSummary".to_owned(),
            target,
            reason: Some(r.reason.clone()).filter(|r| !r.is_empty()),
            outcome,
            details,
        };
        let audited = async {
            let mut conn = self.reporting.pool().get().await.map_err(radfin_db::StorageError::from)?;
            radfin_db::audit::record(&mut conn, &record).await
        }
        .await;
        let rebuilt = result.map_err(status)?;
        if let Err(e) = audited {
            // The rebuild happened; what could not be recorded is an error of the call all the same.
            tracing::error!(error = %e, "cannot audit a rebuild of the margin summary");
            return Err(radfin_service::error::to_status(&e));
        }
        Ok(Response::new(pb::RebuildSummaryResponse {
            rows: rebuilt.iter().map(|(_, n)| *n as u64).sum(),
            periods: rebuilt
                .into_iter()
                .map(|(p, n)| pb::RebuiltPeriod { period: p.to_string(), rows: n as u64 })
                .collect(),
        }))
    }
}
