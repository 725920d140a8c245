//! The ledger's read API.

use chrono::SecondsFormat;
use radfin_db::ledger::{ClientTotalsRow, LedgerEntryRow, LedgerSide};
use radfin_db::{Pool, StorageError};
use radfin_domain::audit_chain::ChainPoint;
use radfin_domain::{Period, ReportId};
use radfin_proto::common::v1 as common;
use radfin_proto::ledger::v1 as pb;
use radfin_proto::ledger::v1::ledger_service_server::LedgerService;
use radfin_service::error::to_status;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use radfin_db::documents::{CreditFilter, DocFilter};
use radfin_domain::ClientId;
use radfin_domain::close::DocLine;

use crate::finance::{Actor, Finance, FinanceConfig};
use crate::present::{self, inr, money};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub struct LedgerApi {
    pool: Pool,
    finance: Arc<Finance>,
    config: FinanceConfig,
}

impl LedgerApi {
    pub fn new(pool: Pool, finance: Arc<Finance>, config: FinanceConfig) -> Self {
        Self { pool, finance, config }
    }

    async fn conn(&self) -> Result<radfin_db::PooledConnection, Status> {
        self.pool.get().await.map_err(|e| to_status(&StorageError::from(e)))
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
        amount: money(row.amount, row.currency.code()),
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

fn totals(rows: &[ClientTotalsRow]) -> pb::SummarizePeriodResponse {
    let mut response = pb::SummarizePeriodResponse::default();
    let (mut reports, mut revenue, mut cogs) = (0u64, Decimal::ZERO, Decimal::ZERO);
    for r in rows {
        let n = u64::try_from(r.reports).unwrap_or_default();
        reports += n;
        revenue += r.revenue_inr;
        cogs += r.cogs_inr;
        let revenue_text = money(r.revenue, &r.currency);
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
    ) -> Result<Response<pb::ListReportEntriesResponse>, Status> {
        let msg = request.into_inner();
        let report_id =
            ReportId::parse(&msg.report_id).map_err(|e| Status::invalid_argument(format!("report_id: {e}")))?;
        let mut conn = self.conn().await?;
        let rows = radfin_db::ledger::of_report(&mut conn, report_id.as_str()).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListReportEntriesResponse { entries: rows.into_iter().map(entry).collect() }))
    }

    async fn list_period_entries(
        &self,
        request: Request<pb::ListPeriodEntriesRequest>,
    ) -> Result<Response<pb::ListPeriodEntriesResponse>, Status> {
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
        let rows =
            radfin_db::ledger::of_period(&mut conn, period, i64::from(size), after).await.map_err(|e| to_status(&e))?;
        let next_page_token = if rows.len() == size as usize {
            rows.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListPeriodEntriesResponse {
            entries: rows.into_iter().map(entry).collect(),
            next_page_token,
        }))
    }

    async fn summarize_period(
        &self,
        request: Request<pb::SummarizePeriodRequest>,
    ) -> Result<Response<pb::SummarizePeriodResponse>, Status> {
        let period = period("period", &request.into_inner().period)?;
        let mut conn = self.conn().await?;
        // A closed period's current view is its close (or last applied rerun) run.
        let status = radfin_db::documents::period_status(&mut conn, period).await.map_err(|e| to_status(&e))?;
        let run = status.current_run_id.filter(|_| status.closed);
        let rows = radfin_db::ledger::summarize_run(&mut conn, period, run).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(totals(&rows)))
    }

    async fn close_period(
        &self,
        request: Request<pb::ClosePeriodRequest>,
    ) -> Result<Response<pb::ClosePeriodResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner();
        let period = period("period", &msg.period)?;
        let closed = self.finance.close(period, msg.reason.trim(), &actor).await?;
        let t = &closed.totals;
        Ok(Response::new(pb::ClosePeriodResponse {
            period: Some(present::period(&closed.status, None, closed.held)),
            closed_now: closed.closed_now,
            invoices: closed.documents.invoices.iter().map(|d| present::invoice(d, &self.config.supplier)).collect(),
            payout_statements: closed.documents.statements.iter().map(present::statement).collect(),
            reports: t.reports,
            revenue_inr: inr(t.revenue_inr),
            cogs_inr: inr(t.cogs_inr),
            margin_inr: inr(t.revenue_inr - t.cogs_inr),
            held_reports: closed.held,
        }))
    }

    async fn list_periods(
        &self,
        _request: Request<pb::ListPeriodsRequest>,
    ) -> Result<Response<pb::ListPeriodsResponse>, Status> {
        let mut conn = self.conn().await?;
        let statuses = radfin_db::documents::period_statuses(&mut conn, None).await.map_err(|e| to_status(&e))?;
        let runs = radfin_db::runs::recent(&mut conn, None, 10_000).await.map_err(|e| to_status(&e))?;
        let held = radfin_db::held::current(&mut conn, &radfin_db::held::HeldFilter::default())
            .await
            .map_err(|e| to_status(&e))?;
        let mut periods: std::collections::BTreeSet<Period> = runs.iter().map(|r| r.period).collect();
        periods.extend(statuses.keys().copied());
        let out = periods
            .into_iter()
            .rev()
            .map(|p| {
                let status = statuses.get(&p).cloned().unwrap_or(radfin_db::documents::PeriodStatus {
                    period: p,
                    closed: false,
                    current_run_id: None,
                    close_run_id: None,
                    closed_at: None,
                    closed_by: None,
                });
                let live = runs.iter().find(|r| r.period == p && r.kind == radfin_db::runs::RunKind::Live);
                let held = held.iter().filter(|h| h.period == p).count() as u64;
                present::period(&status, live.map(|r| r.run_id), held)
            })
            .collect();
        Ok(Response::new(pb::ListPeriodsResponse { periods: out }))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let msg = request.into_inner();
        let filter = DocFilter {
            period: optional_period(&msg.period)?,
            party: optional_client(&msg.client_id)?,
            ..DocFilter::default()
        };
        let mut conn = self.conn().await?;
        let docs = radfin_db::documents::invoices(&mut conn, &filter).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: docs.iter().rev().map(|d| present::invoice(d, &self.config.supplier)).collect(),
        }))
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::GetInvoiceResponse>, Status> {
        let number = document_number(&request.into_inner().number)?;
        let mut conn = self.conn().await?;
        let filter = DocFilter { number: Some(number.clone()), ..DocFilter::default() };
        let doc = radfin_db::documents::invoices(&mut conn, &filter)
            .await
            .map_err(|e| to_status(&e))?
            .into_iter()
            .next()
            .ok_or_else(|| Status::not_found(format!("no invoice numbered {number:?}")))?;
        Ok(Response::new(pb::GetInvoiceResponse { invoice: Some(present::invoice(&doc, &self.config.supplier)) }))
    }

    async fn issue_credit_note(
        &self,
        request: Request<pb::IssueCreditNoteRequest>,
    ) -> Result<Response<pb::IssueCreditNoteResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner();
        let number = document_number(&msg.invoice_number)?;
        let mut lines = Vec::with_capacity(msg.lines.len());
        for (i, l) in msg.lines.iter().enumerate() {
            let amount: Decimal =
                l.amount.trim().parse().map_err(|_| {
                    Status::invalid_argument(format!("lines[{i}].amount: {:?} is not a decimal", l.amount))
                })?;
            let modality = match l.modality {
                0 => None,
                m => Some(
                    radfin_proto::convert::modality("lines.modality", m)
                        .map_err(|e| Status::invalid_argument(e.to_string()))?,
                ),
            };
            lines.push(DocLine {
                kind: "ADJUSTMENT",
                description: if l.description.trim().is_empty() {
                    msg.reason.trim().to_owned()
                } else {
                    l.description.trim().to_owned()
                },
                modality,
                tier: None,
                unit_price: None,
                quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
                amount,
            });
        }
        let note = self
            .finance
            .credit_note(&number, msg.reason.trim(), lines, Some(msg.request_id.trim().to_owned()), &actor)
            .await?;
        Ok(Response::new(pb::IssueCreditNoteResponse { credit_note: Some(present::credit_note(&note)) }))
    }

    async fn list_credit_notes(
        &self,
        request: Request<pb::ListCreditNotesRequest>,
    ) -> Result<Response<pb::ListCreditNotesResponse>, Status> {
        let msg = request.into_inner();
        let mut conn = self.conn().await?;
        let invoice_id = if msg.invoice_number.is_empty() {
            None
        } else {
            let filter = DocFilter { number: Some(document_number(&msg.invoice_number)?), ..DocFilter::default() };
            let doc = radfin_db::documents::invoices(&mut conn, &filter).await.map_err(|e| to_status(&e))?;
            match doc.first() {
                Some(d) => Some(d.invoice.id),
                None => return Err(Status::not_found(format!("no invoice numbered {:?}", msg.invoice_number))),
            }
        };
        let filter = CreditFilter {
            docs: DocFilter {
                period: optional_period(&msg.period)?,
                party: optional_client(&msg.client_id)?,
                ..DocFilter::default()
            },
            invoice_id,
            request_id: None,
        };
        let docs = radfin_db::documents::credit_notes(&mut conn, &filter).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListCreditNotesResponse {
            credit_notes: docs.iter().rev().map(present::credit_note).collect(),
        }))
    }

    async fn list_payout_statements(
        &self,
        request: Request<pb::ListPayoutStatementsRequest>,
    ) -> Result<Response<pb::ListPayoutStatementsResponse>, Status> {
        let msg = request.into_inner();
        let party = if msg.provider_id.is_empty() {
            None
        } else {
            Some(
                radfin_domain::ProviderId::parse(&msg.provider_id)
                    .map_err(|e| Status::invalid_argument(format!("provider_id: {e}")))?
                    .to_string(),
            )
        };
        let filter = DocFilter { period: optional_period(&msg.period)?, party, ..DocFilter::default() };
        let mut conn = self.conn().await?;
        let docs = radfin_db::documents::statements(&mut conn, &filter).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListPayoutStatementsResponse {
            statements: docs.iter().rev().map(present::statement).collect(),
        }))
    }

    async fn get_payout_statement(
        &self,
        request: Request<pb::GetPayoutStatementRequest>,
    ) -> Result<Response<pb::GetPayoutStatementResponse>, Status> {
        let number = document_number(&request.into_inner().number)?;
        let mut conn = self.conn().await?;
        let filter = DocFilter { number: Some(number.clone()), ..DocFilter::default() };
        let doc = radfin_db::documents::statements(&mut conn, &filter)
            .await
            .map_err(|e| to_status(&e))?
            .into_iter()
            .next()
            .ok_or_else(|| Status::not_found(format!("no payout statement numbered {number:?}")))?;
        Ok(Response::new(pb::GetPayoutStatementResponse { statement: Some(present::statement(&doc)) }))
    }

    async fn get_client_statement(
        &self,
        request: Request<pb::GetClientStatementRequest>,
    ) -> Result<Response<pb::GetClientStatementResponse>, Status> {
        let msg = request.into_inner();
        let client =
            ClientId::parse(&msg.client_id).map_err(|e| Status::invalid_argument(format!("client_id: {e}")))?;
        let mut conn = self.conn().await?;
        let filter = DocFilter { party: Some(client.to_string()), ..DocFilter::default() };
        let invoices = radfin_db::documents::invoices(&mut conn, &filter).await.map_err(|e| to_status(&e))?;
        let credits =
            radfin_db::documents::credit_notes(&mut conn, &CreditFilter { docs: filter, ..Default::default() })
                .await
                .map_err(|e| to_status(&e))?;
        // In issue order: by issue date, then the moment each was written.
        let mut docs: Vec<(chrono::NaiveDate, chrono::DateTime<chrono::Utc>, pb::StatementEntry, Decimal)> = invoices
            .iter()
            .map(|d| {
                let i = &d.invoice;
                let entry = pb::StatementEntry {
                    kind: i.kind.clone(),
                    number: i.invoice_number.clone(),
                    period: i.period.clone(),
                    issue_date: i.issue_date.to_string(),
                    currency: i.currency.clone(),
                    amount: String::new(),
                    balance: String::new(),
                };
                (i.issue_date, i.created_at, entry, i.total)
            })
            .chain(credits.iter().map(|d| {
                let n = &d.note;
                let entry = pb::StatementEntry {
                    kind: "CREDIT_NOTE".to_owned(),
                    number: n.credit_note_number.clone(),
                    period: n.period.clone(),
                    issue_date: n.issue_date.to_string(),
                    currency: n.currency.clone(),
                    amount: String::new(),
                    balance: String::new(),
                };
                (n.issue_date, n.created_at, entry, -n.total)
            }))
            .collect();
        docs.sort_by_key(|d| (d.0, d.1));
        let mut balances: std::collections::BTreeMap<String, (Decimal, Decimal)> = std::collections::BTreeMap::new();
        let mut entries = Vec::with_capacity(docs.len());
        for (_, _, mut entry, amount) in docs {
            let b = balances.entry(entry.currency.clone()).or_default();
            if amount.is_sign_negative() {
                b.1 -= amount;
            } else {
                b.0 += amount;
            }
            entry.amount = money(amount, &entry.currency);
            entry.balance = money(b.0 - b.1, &entry.currency);
            entries.push(entry);
        }
        let statement = pb::ClientStatement {
            client_id: client.to_string(),
            entries,
            balances: balances
                .into_iter()
                .map(|(currency, (invoiced, credited))| pb::CurrencyBalance {
                    invoiced: money(invoiced, &currency),
                    credited: money(credited, &currency),
                    total_due: money(invoiced - credited, &currency),
                    currency,
                })
                .collect(),
        };
        Ok(Response::new(pb::GetClientStatementResponse { statement: Some(statement) }))
    }

    async fn rerun_period(
        &self,
        request: Request<pb::RerunPeriodRequest>,
    ) -> Result<Response<pb::RerunPeriodResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner();
        let period = period("period", &msg.period)?;
        let apply = match pb::RerunMode::try_from(msg.mode) {
            Ok(pb::RerunMode::Preview) => false,
            Ok(pb::RerunMode::Apply) => true,
            _ => return Err(Status::invalid_argument("mode: must be RERUN_MODE_PREVIEW or RERUN_MODE_APPLY")),
        };
        let run = (msg.run_id != 0)
            .then(|| i64::try_from(msg.run_id).map_err(|_| Status::invalid_argument("run_id: out of range")))
            .transpose()?;
        let rerun = self.finance.rerun(period, msg.reason.trim(), apply, run, &actor).await?;
        let issue_date = radfin_domain::close::issue_date(self.config.calendar, chrono::Utc::now());
        Ok(Response::new(present::rerun(&rerun, apply, &self.config.supplier, issue_date)))
    }

    async fn list_runs(&self, request: Request<pb::ListRunsRequest>) -> Result<Response<pb::ListRunsResponse>, Status> {
        let msg = request.into_inner();
        let limit = match msg.limit {
            0 => 50,
            n => n.min(MAX_PAGE),
        };
        let mut conn = self.conn().await?;
        let runs = radfin_db::runs::recent(&mut conn, optional_period(&msg.period)?, i64::from(limit))
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: runs
                .into_iter()
                .map(|r| pb::Run {
                    run_id: u64::try_from(r.run_id).unwrap_or_default(),
                    period: r.period.to_string(),
                    kind: r.kind.as_str().to_owned(),
                    rules_as_of: r
                        .rules_as_of
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                        .unwrap_or_default(),
                    reason: r.reason.unwrap_or_default(),
                    created_by: r.created_by,
                    created_at: r.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                })
                .collect(),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let mut conn = self.conn().await?;
        let rows = radfin_db::audit::recent(&mut conn, i64::from(limit)).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: rows
                .into_iter()
                .map(|e| pb::AuditEvent {
                    id: u64::try_from(e.id).unwrap_or_default(),
                    at: e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
                    actor: e.record.actor,
                    role: e.record.role,
                    action: e.record.action,
                    target: e.record.target,
                    reason: e.record.reason.unwrap_or_default(),
                    outcome: e.record.outcome.as_str().to_owned(),
                    details: e.record.details.to_string(),
                })
                .collect(),
        }))
    }

    async fn verify_audit_log(
        &self,
        request: Request<pb::VerifyAuditLogRequest>,
    ) -> Result<Response<pb::VerifyAuditLogResponse>, Status> {
        let anchor = request.into_inner().anchor;
        let anchor = match anchor.trim() {
            "" => None,
            text => Some(ChainPoint::parse(text).map_err(|e| Status::invalid_argument(format!("anchor: {e}")))?),
        };
        let mut conn = self.conn().await?;
        let verification = radfin_db::audit::verify_chain(&mut conn, anchor, radfin_db::audit::CHAIN_PAGE)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::VerifyAuditLogResponse {
            intact: verification.is_ok(),
            rows_checked: verification.rows_checked,
            last: verification.last.as_ref().map(ToString::to_string).unwrap_or_default(),
            problems: verification
                .problems
                .into_iter()
                .map(|p| pb::AuditChainProblem {
                    seq: p.seq,
                    id: p.id.and_then(|id| u64::try_from(id).ok()).unwrap_or_default(),
                    kind: p.kind.as_str().to_owned(),
                    message: p.message,
                })
                .collect(),
            problems_omitted: verification.problems_omitted,
        }))
    }
}

fn actor<T>(request: &Request<T>) -> Actor {
    let p = radfin_service::auth::principal(request);
    Actor { name: p.name, role: p.role.as_str().to_owned() }
}

fn optional_period(s: &str) -> Result<Option<Period>, Status> {
    if s.is_empty() { Ok(None) } else { period("period", s).map(Some) }
}

fn optional_client(s: &str) -> Result<Option<String>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    ClientId::parse(s).map(|c| Some(c.to_string())).map_err(|e| Status::invalid_argument(format!("client_id: {e}")))
}

/// A document number as issued: `INV/25-26/000042`.
fn document_number(s: &str) -> Result<String, Status> {
    let s = s.trim();
    let ok = !s.is_empty() && s.len() <= 16 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Status::invalid_argument(format!(
            "number: {s:?} is not a document number (at most 16 characters of [A-Za-z0-9/-], e.g. INV/25-26/000042)"
        )))
    }
}
