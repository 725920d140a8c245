//! The ledger's read API.

use chrono::SecondsFormat;
use radfin_db::ledger::{ClientTotalsRow, LedgerEntryRow, LedgerSide};
use radfin_db::{Pool, StorageError};
use radfin_domain::{Currency, Period, ReportId};
use radfin_proto::common::v1 as common;
use radfin_proto::convert::amount_text;
use radfin_proto::ledger::v1 as pb;
use radfin_proto::ledger::v1::ledger_service_server::LedgerService;
use radfin_service::grpc::storage_status;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub struct LedgerApi {
    pool: Pool,
}

impl LedgerApi {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> Result<radfin_db::PooledConnection, Status> {
        self.pool.get().await.map_err(|e| storage_status(&StorageError::from(e)))
    }
}

fn period(field: &str, s: &str) -> Result<Period, Status> {
    s.parse().map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

fn entry(row: LedgerEntryRow) -> pb::LedgerEntry {
    let side = match row.side {
        LedgerSide::Cogs => pb::Side::Cogs,
        LedgerSide::Revenue => pb::Side::Revenue,
    };
    let r = row.report.as_ref();
    pb::LedgerEntry {
        id: u64::try_from(row.id).unwrap_or_default(),
        period: row.period.to_string(),
        run_id: u64::try_from(row.run_id).unwrap_or_default(),
        report_id: r.map(|r| r.report_id.to_string()).unwrap_or_default(),
        revision: r.map_or(0, |r| r.revision),
        side: side as i32,
        client_id: row.client_id.to_string(),
        provider_id: r.map(|r| r.provider_id.to_string()).unwrap_or_default(),
        modality: r.map_or(0, |r| common::Modality::from(r.modality) as i32),
        grade: r.map_or(0, |r| common::Grade::from(r.grade) as i32),
        status: r.map_or(0, |r| common::ReportStatus::from(r.status) as i32),
        currency: row.currency.to_string(),
        amount: money(row.amount, row.currency),
        amount_inr: inr(row.amount_inr),
        fx_rate: row.fx.as_ref().map(|r| r.inr_per_unit.to_string()).unwrap_or_default(),
        fx_rate_date: row.fx.as_ref().map(|r| r.rate_date.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        fx_source: row.fx.as_ref().map(|r| r.source.to_string()).unwrap_or_default(),
        rule_version: row.rule_version.unwrap_or_default(),
        created_at: row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        line: row.line,
        entry_kind: row.entry_kind,
        adjusts_id: row.adjusts_id.and_then(|id| u64::try_from(id).ok()).unwrap_or_default(),
        reason: row.reason.unwrap_or_default(),
    }
}

fn money(amount: Decimal, currency: Currency) -> String {
    amount_text(amount.normalize(), currency)
}

fn inr(amount: Decimal) -> String {
    money(amount, Currency::INR)
}

fn totals(rows: &[ClientTotalsRow]) -> pb::SummarizePeriodResponse {
    let mut response = pb::SummarizePeriodResponse::default();
    let (mut reports, mut revenue, mut cogs) = (0u64, Decimal::ZERO, Decimal::ZERO);
    for r in rows {
        let n = u64::try_from(r.reports).unwrap_or_default();
        reports += n;
        revenue += r.revenue_inr;
        cogs += r.cogs_inr;
        let revenue_text = match Currency::parse(&r.currency) {
            Ok(c) => money(r.revenue, c),
            Err(_) => r.revenue.normalize().to_string(),
        };
        response.clients.push(pb::ClientTotals {
            currency: r.currency.clone(),
            revenue: revenue_text,
            client_id: r.client_id.clone(),
            reports: n,
            revenue_inr: inr(r.revenue_inr),
            cogs_inr: inr(r.cogs_inr),
            margin_inr: inr(r.revenue_inr - r.cogs_inr),
        });
    }
    response.reports = reports;
    response.revenue_inr = inr(revenue);
    response.cogs_inr = inr(cogs);
    response.margin_inr = inr(revenue - cogs);
    response
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn list_report_entries(
        &self,
        request: Request<pb::ListReportEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let msg = request.into_inner();
        let report_id =
            ReportId::parse(&msg.report_id).map_err(|e| Status::invalid_argument(format!("report_id: {e}")))?;
        let mut conn = self.conn().await?;
        let rows = radfin_db::ledger::of_report(&mut conn, report_id.as_str()).await.map_err(|e| storage_status(&e))?;
        Ok(Response::new(pb::ListEntriesResponse {
            entries: rows.into_iter().map(entry).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn list_period_entries(
        &self,
        request: Request<pb::ListPeriodEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let msg = request.into_inner();
        let period = period("period", &msg.period)?;
        let size = match msg.page_size {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after: Option<i64> = if msg.page_token.is_empty() {
            None
        } else {
            Some(
                msg.page_token
                    .parse()
                    .map_err(|_| Status::invalid_argument("page_token: not a token from a previous page"))?,
            )
        };
        let mut conn = self.conn().await?;
        let rows = radfin_db::ledger::of_period(&mut conn, period, i64::from(size), after)
            .await
            .map_err(|e| storage_status(&e))?;
        let next_page_token = if rows.len() == size as usize {
            rows.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListEntriesResponse { entries: rows.into_iter().map(entry).collect(), next_page_token }))
    }

    async fn summarize_period(
        &self,
        request: Request<pb::SummarizePeriodRequest>,
    ) -> Result<Response<pb::SummarizePeriodResponse>, Status> {
        let period = period("period", &request.into_inner().period)?;
        let mut conn = self.conn().await?;
        let rows = radfin_db::ledger::summarize_live(&mut conn, period).await.map_err(|e| storage_status(&e))?;
        Ok(Response::new(totals(&rows)))
    }
}
