//! The month's life after the live view (spec §6): close, reruns and credit notes. Each runs in
//! one transaction that holds the period's lock exclusively (the live view's batches hold it
//! shared), so a close or rerun sees every report whose facts the ledger booked, and a fact for a
//! closed period is never booked into it afterwards: it is held (`HELD_CLOSED_PERIOD`) for a
//! rerun. Pricing passes run the domain's engine on the stored month, off the async reactor.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use futures::StreamExt as _;
use radfin_bus::{Bus, PeriodStream};
use radfin_db::audit::{AuditOutcome, AuditRecord};
use radfin_db::documents::{
    self, CreditFilter, CreditNoteDoc, DocFilter, DocType, InvoiceDoc, Issue, NewCreditNote, NewManifest, PeriodStatus,
    RerunComparison, StatementDoc,
};
use radfin_db::runs::RunKind;
use radfin_db::{AsyncPgConnection, Pool, StorageError};
use radfin_domain::close::{self, ClientDifference, Corrections, DocLine, ProviderDifference, RunLine};
use radfin_domain::fx::FxTable;
use radfin_domain::tax::{GstConfig, TdsConfig, invoice_tax};
use radfin_domain::{BusinessCalendar, Catalog, Currency, FinancialYear, Period, PeriodPricing, ReportEvent};
use rust_decimal::Decimal;
use sha2::Digest as _;

/// Who supplies the invoices: the platform's name, GSTIN and state (spec §4.4).
#[derive(Clone, Debug)]
pub struct Supplier {
    pub name: String,
    pub gstin: Option<String>,
    pub gst: GstConfig,
}

/// What close, rerun and credit notes need besides the database.
#[derive(Clone, Debug)]
pub struct FinanceConfig {
    pub calendar: BusinessCalendar,
    pub supplier: Supplier,
    pub tds: TdsConfig,
    pub fx_max_age_days: u32,
}

/// Who asked, for the documents and the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

/// Why a finance action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the JetStream replay of {subject} failed: {message}")]
    Replay { subject: String, message: String },
}

impl From<diesel::result::Error> for FinanceError {
    fn from(e: diesel::result::Error) -> Self {
        FinanceError::Storage(e.into())
    }
}

use radfin_service::error::GrpcError;

impl GrpcError for FinanceError {
    fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            FinanceError::Storage(e) => e.code(),
            FinanceError::Invalid(_) => Code::InvalidArgument,
            FinanceError::NotFound(_) => Code::NotFound,
            FinanceError::Precondition(_) => Code::FailedPrecondition,
            FinanceError::Conflict(_) => Code::AlreadyExists,
            FinanceError::Replay { .. } => Code::Unavailable,
        }
    }

    fn client_message(&self) -> String {
        match self {
            FinanceError::Storage(e) => e.client_message(),
            FinanceError::Replay { subject, .. } => format!("the JetStream replay of {subject} failed; retry"),
            e => e.to_string(),
        }
    }
}

impl From<FinanceError> for tonic::Status {
    fn from(e: FinanceError) -> Self {
        radfin_service::error::to_status(&e)
    }
}

/// The documents of one run.
#[derive(Clone, Debug, Default)]
pub struct RunDocuments {
    pub invoices: Vec<InvoiceDoc>,
    pub credit_notes: Vec<CreditNoteDoc>,
    pub statements: Vec<StatementDoc>,
}

/// What a close did (or had done).
#[derive(Debug)]
pub struct Closed {
    pub status: PeriodStatus,
    pub closed_now: bool,
    pub documents: RunDocuments,
    pub held: u64,
    pub totals: CloseTotals,
}

/// A close run's totals over every client: billable reports, revenue and COGS in INR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloseTotals {
    pub reports: u64,
    pub revenue_inr: Decimal,
    pub cogs_inr: Decimal,
}

impl CloseTotals {
    /// Sums per-row (billable reports, revenue INR, COGS INR): the margin summary rows a close
    /// writes, or the run's entries summed per client.
    fn sum(rows: impl Iterator<Item = (i64, Decimal, Decimal)>) -> Self {
        rows.fold(Self::default(), |t, (reports, revenue_inr, cogs_inr)| Self {
            reports: t.reports + u64::try_from(reports).unwrap_or_default(),
            revenue_inr: t.revenue_inr + revenue_inr,
            cogs_inr: t.cogs_inr + cogs_inr,
        })
    }
}

/// The manifest of a rerun (spec §6): enough to reproduce it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub run_id: i64,
    pub period: String,
    pub compared_run_id: i64,
    pub rules_as_of: DateTime<Utc>,
    /// Client id (empty for the provider rules) → versions.
    pub rule_versions: BTreeMap<String, Vec<u32>>,
    /// (currency, rate date, INR per unit, source).
    pub fx_rates: Vec<(String, String, String, String)>,
    pub report_set_hash: String,
    pub reports: u64,
    pub replayed_messages: u64,
    pub missing_from_stream: u64,
    pub held_reports: u64,
}

/// A rerun's result: previewed, or applied.
#[derive(Debug)]
pub struct Rerun {
    pub manifest: Manifest,
    pub applied: bool,
    pub already_applied: bool,
    pub clients: Vec<ClientDifference>,
    pub providers: Vec<ProviderDifference>,
    /// The documents a preview would issue (unnumbered).
    pub planned: Corrections,
    /// The documents an apply issued.
    pub issued: RunDocuments,
}

/// Milliseconds per stage of a close or rerun, for the log (where a long one spends its time).
struct Stages {
    last: std::time::Instant,
    done: Vec<(&'static str, u128)>,
}

impl Stages {
    fn start() -> Self {
        Self { last: std::time::Instant::now(), done: Vec::new() }
    }

    fn mark(&mut self, stage: &'static str) {
        self.done.push((stage, self.last.elapsed().as_millis()));
        self.last = std::time::Instant::now();
    }
}

impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (stage, ms)) in self.done.iter().enumerate() {
            write!(f, "{}{stage} {ms} ms", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

/// A period's stored month priced by the engine.
struct Priced {
    pricing: PeriodPricing,
    lines: Vec<RunLine>,
    catalog: Catalog,
    reports: Vec<ReportEvent>,
}

pub struct Finance {
    pool: Pool,
    bus: Bus,
    config: FinanceConfig,
    /// Closes and reruns of this replica, one at a time: each holds a connection for its whole
    /// pricing pass, and concurrent ones would only queue on the numbering lock while starving
    /// the pool the live view needs. (Replicas still serialize per period in the database.)
    heavy: tokio::sync::Semaphore,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> FinanceError {
    FinanceError::Invalid(format!("{field}: {message}"))
}

impl Finance {
    pub fn new(pool: Pool, bus: Bus, config: FinanceConfig) -> Self {
        Self { pool, bus, config, heavy: tokio::sync::Semaphore::new(1) }
    }

    async fn conn(&self) -> Result<radfin_db::PooledConnection, FinanceError> {
        Ok(self.pool.get().await.map_err(StorageError::from)?)
    }

    /// Writes an audit row for an attempt that failed (the transaction that would have written
    /// the ALLOWED row rolled back). Best effort: the failure is what the caller sees.
    async fn audit_failure(&self, actor: &Actor, action: &str, target: &str, reason: Option<&str>, e: &FinanceError) {
        let record = AuditRecord {
            actor: actor.name.clone(),
            role: actor.role.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason: reason.filter(|r| !r.is_empty()).map(str::to_owned),
            outcome: AuditOutcome::Failed,
            details: serde_json::json!({ "error": e.to_string() }),
        };
        match self.pool.get().await {
            Ok(mut conn) => {
                if let Err(e) = radfin_db::audit::record(&mut conn, &record).await {
                    tracing::error!(error = %e, action, "cannot write the audit row of a failed action");
                }
            }
            Err(e) => tracing::error!(error = %e, action, "cannot write the audit row of a failed action"),
        }
    }

    fn ended(&self, period: Period, now: DateTime<Utc>) -> Result<(), FinanceError> {
        let (_, end) = self.config.calendar.period_bounds(period);
        if end > now {
            return Err(FinanceError::Precondition(format!(
                "period {period} has not ended yet (it ends at {} in {}); it can be closed after that",
                end.to_rfc3339(),
                self.config.calendar.time_zone()
            )));
        }
        Ok(())
    }

    /// Prices the stored month with the rules as of `rules_as_of`, off the reactor.
    async fn price(
        &self,
        conn: &mut AsyncPgConnection,
        period: Period,
        rules_as_of: DateTime<Utc>,
    ) -> Result<Priced, FinanceError> {
        let mut catalog = Catalog::default();
        radfin_db::parties::load_into(conn, &mut catalog).await?;
        radfin_db::rules::load_into(conn, &mut catalog).await?;
        let fx: FxTable =
            radfin_db::fx::load(conn, period.first_day(), period.last_day(), self.config.fx_max_age_days).await?;
        let reports = radfin_db::reports::current_of_period(conn, period).await?;
        let run = radfin_domain::PricingRun { calendar: self.config.calendar, period, rules_as_of };
        let priced = tokio::task::spawn_blocking(move || {
            let pricing = run.price(&catalog, &reports).map_err(|e| FinanceError::Precondition(e.to_string()))?;
            let lines = close::run_lines(&pricing, &fx).map_err(|awaiting| {
                let mut message = format!(
                    "{} amount(s) of {period} have no FX rate yet, so the period cannot be priced; put the rates (or wait for the feed) and try again:",
                    awaiting.len()
                );
                for a in awaiting.iter().take(5) {
                    let _ = write!(message, " {}: {};", a.what, a.error);
                }
                FinanceError::Precondition(message)
            })?;
            Ok::<_, FinanceError>(Priced { pricing, lines, catalog, reports })
        })
        .await
        .map_err(|e| FinanceError::Storage(StorageError::corrupt(format_args!("the pricing pass panicked: {e}"))))??;
        Ok(priced)
    }

    /// Closes `period` (spec §6); closing a closed period returns its documents.
    pub async fn close(&self, period: Period, reason: &str, actor: &Actor) -> Result<Closed, FinanceError> {
        let result = self.close_inner(period, reason, actor).await;
        if let Err(e) = &result
            && !matches!(e, FinanceError::Storage(s) if s.is_retryable())
        {
            self.audit_failure(actor, "ClosePeriod", &format!("period {period}"), Some(reason), e).await;
        }
        result
    }

    async fn close_inner(&self, period: Period, reason: &str, actor: &Actor) -> Result<Closed, FinanceError> {
        self.ended(period, Utc::now())?;
        let _turn = self.heavy.acquire().await.map_err(|_| FinanceError::Precondition("shutting down".into()))?;
        let now = Utc::now();
        let mut conn = self.conn().await?;
        radfin_db::ledger::ensure_partitions(&mut conn, &[period]).await?;
        conn.transaction(async |conn| {
            radfin_db::ledger::lock_for_write(conn).await?;
            documents::lock_period(conn, period, true).await?;
            let status = documents::period_status(conn, period).await?;
            if let Some(run_id) = status.close_run_id {
                let documents = self.run_documents(conn, period, run_id).await?;
                let held = held_count(conn, period).await?;
                let totals = CloseTotals::sum(
                    radfin_db::ledger::summarize_run(conn, period, Some(run_id))
                        .await?
                        .iter()
                        .map(|r| (r.reports, r.revenue_inr, r.cogs_inr)),
                );
                return Ok(Closed { status, closed_now: false, documents, held, totals });
            }
            let mut stages = Stages::start();
            let priced = self.price(conn, period, now).await?;
            stages.mark("priced");
            let run_id = radfin_db::runs::create(conn, period, RunKind::Close, now, None, &actor.name).await?;
            radfin_db::ledger::insert_bookings(conn, &radfin_db::ledger::run_entries(period, run_id, &priced.lines))
                .await?;
            stages.mark("booked");

            let issue_date = close::issue_date(self.config.calendar, now);
            let issue = Issue { period, run_id: Some(run_id), issue_date, created_by: &actor.name };
            let year = FinancialYear::of(issue_date);
            let invoices = close::invoices(&priced.pricing, &priced.lines, &priced.catalog, &self.config.supplier.gst);
            let numbers = documents::next_numbers(conn, DocType::Invoice, year, invoices.len()).await?;
            for (plan, number) in invoices.iter().zip(&numbers) {
                documents::insert_invoice(conn, &issue, number, plan, None).await?;
            }
            let earlier = documents::fees_in_year(conn, year).await?;
            let payouts = close::payouts(&priced.lines, &priced.catalog, period, &earlier, &self.config.tds);
            let numbers = documents::next_numbers(conn, DocType::Payout, year, payouts.len()).await?;
            for (plan, number) in payouts.iter().zip(&numbers) {
                documents::insert_statement(conn, &issue, number, plan, false, None).await?;
            }
            stages.mark("documents");
            documents::mark_closed(conn, period, run_id, &actor.name, Some(reason)).await?;
            let margin = radfin_db::margin::of_run_lines(period, &priced.lines);
            radfin_db::margin::replace(conn, period, &margin).await?;
            stages.mark("summary");
            radfin_db::audit::record(
                conn,
                &AuditRecord {
                    actor: actor.name.clone(),
                    role: actor.role.clone(),
                    action: "ClosePeriod".to_owned(),
                    target: format!("period {period}"),
                    reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
                    outcome: AuditOutcome::Allowed,
                    details: serde_json::json!({
                        "run_id": run_id,
                        "reports": priced.pricing.reports.len(),
                        "held": priced.pricing.held.len(),
                        "invoices": invoices.len(),
                        "payout_statements": payouts.len(),
                    }),
                },
            )
            .await?;
            let status = documents::period_status(conn, period).await?;
            let documents = self.run_documents(conn, period, run_id).await?;
            let held = held_count(conn, period).await?;
            stages.mark("read back");
            tracing::info!(%period, run_id, stages = %stages, "period closed");
            Ok(Closed {
                status,
                closed_now: true,
                documents,
                held,
                totals: CloseTotals::sum(margin.iter().map(|r| (r.reports, r.revenue_inr, r.cogs_inr))),
            })
        })
        .await
    }

    async fn run_documents(
        &self,
        conn: &mut AsyncPgConnection,
        period: Period,
        run_id: i64,
    ) -> Result<RunDocuments, FinanceError> {
        let filter = DocFilter { period: Some(period), run_id: Some(run_id), ..DocFilter::default() };
        Ok(RunDocuments {
            invoices: documents::invoices(conn, &filter).await?,
            credit_notes: documents::credit_notes(
                conn,
                &CreditFilter { docs: filter.clone(), ..CreditFilter::default() },
            )
            .await?,
            statements: documents::statements(conn, &filter).await?,
        })
    }

    /// Reprices a closed period into an isolated RERUN run and shows (PREVIEW) or issues (APPLY)
    /// what it changes. `apply_run`: apply a previewed run as it was previewed.
    pub async fn rerun(
        &self,
        period: Period,
        reason: &str,
        apply: bool,
        apply_run: Option<i64>,
        actor: &Actor,
    ) -> Result<Rerun, FinanceError> {
        let result = self.rerun_inner(period, reason, apply, apply_run, actor).await;
        if let Err(e) = &result
            && !matches!(e, FinanceError::Storage(s) if s.is_retryable())
        {
            let action = if apply { "RerunPeriod APPLY" } else { "RerunPeriod PREVIEW" };
            self.audit_failure(actor, action, &format!("period {period}"), Some(reason), e).await;
        }
        result
    }

    async fn rerun_inner(
        &self,
        period: Period,
        reason: &str,
        apply: bool,
        apply_run: Option<i64>,
        actor: &Actor,
    ) -> Result<Rerun, FinanceError> {
        if reason.trim().is_empty() {
            return Err(invalid("reason", "a rerun needs a reason (it is kept on the run and in the audit log)"));
        }
        if apply_run.is_some() && !apply {
            return Err(invalid("run_id", "only APPLY takes the run of an earlier PREVIEW"));
        }
        // A preview replays the period's subject beside its pricing pass (a read: nothing is
        // acknowledged and no durable consumer moves); what the broker no longer has is counted
        // against the reports priced, which come from the store. Aborted if the rerun fails first.
        let mut replay = tokio::task::JoinSet::new();
        if apply_run.is_none() {
            replay.spawn(replay_period(self.bus.clone(), period));
        }
        let _turn = self.heavy.acquire().await.map_err(|_| FinanceError::Precondition("shutting down".into()))?;
        let now = Utc::now();
        let mut conn = self.conn().await?;
        radfin_db::ledger::ensure_partitions(&mut conn, &[period]).await?;
        conn.transaction(async |conn| {
            let mut stages = Stages::start();
            radfin_db::ledger::lock_for_write(conn).await?;
            documents::lock_period(conn, period, true).await?;
            let status = documents::period_status(conn, period).await?;
            let Some(current) = status.current_run_id.filter(|_| status.closed) else {
                return Err(FinanceError::Precondition(format!(
                    "period {period} is open: its live view already prices with the current rules; reruns are for closed periods"
                )));
            };
            let (manifest, comparison, priced_catalog) = match apply_run {
                Some(run_id) => {
                    let stored = radfin_db::documents::manifest(conn, run_id).await?.ok_or_else(|| {
                        FinanceError::NotFound(format!("run {run_id} is not a previewed rerun of any period"))
                    })?;
                    let manifest: Manifest = serde_json::from_value(stored).map_err(|e| {
                        FinanceError::Storage(StorageError::corrupt(format_args!("rerun_manifests {run_id}: {e}")))
                    })?;
                    if manifest.period != period.to_string() {
                        return Err(invalid("run_id", format!("run {run_id} reruns {}, not {period}", manifest.period)));
                    }
                    // What the preview compared, read back rather than compared again: neither
                    // run's entries change, and the current view is checked below to be the
                    // run it was compared with.
                    let comparison = radfin_db::documents::comparison(conn, run_id).await?.ok_or_else(|| {
                        FinanceError::Precondition(format!(
                            "run {run_id} was previewed before previews kept their comparison; preview the period again"
                        ))
                    })?;
                    if radfin_db::documents::applied(conn, period, run_id).await? {
                        let issued = self.run_documents(conn, period, run_id).await?;
                        return Ok(Rerun {
                            manifest,
                            applied: true,
                            already_applied: true,
                            clients: comparison.clients,
                            providers: comparison.providers,
                            planned: Corrections::default(),
                            issued,
                        });
                    }
                    if manifest.compared_run_id != current {
                        return Err(FinanceError::Precondition(format!(
                            "run {run_id} was previewed against run {}, but the period's current view is now run {current}; preview again",
                            manifest.compared_run_id
                        )));
                    }
                    let mut catalog = Catalog::default();
                    radfin_db::parties::load_into(conn, &mut catalog).await?;
                    radfin_db::rules::load_into(conn, &mut catalog).await?;
                    (manifest, comparison, catalog)
                }
                None => {
                    let priced = self.price(conn, period, now).await?;
                    stages.mark("priced");
                    let run_id =
                        radfin_db::runs::create(conn, period, RunKind::Rerun, now, Some(reason), &actor.name).await?;
                    radfin_db::ledger::insert_bookings(
                        conn,
                        &radfin_db::ledger::run_entries(period, run_id, &priced.lines),
                    )
                    .await?;
                    stages.mark("booked");
                    let replayed = replay.join_next().await.unwrap_or_else(|| Ok(Ok(Replayed::default()))).map_err(
                        |e| FinanceError::Storage(StorageError::corrupt(format_args!("the replay did not finish: {e}"))),
                    )??;
                    let missing = priced
                        .reports
                        .iter()
                        .filter(|r| !replayed.seen.contains(&(r.report_id.to_string(), r.revision)))
                        .count() as u64;
                    stages.mark("replayed");
                    let manifest = manifest(run_id, current, now, &priced, replayed.messages, missing);
                    let billed = radfin_db::ledger::run_lines(conn, period, current).await?;
                    let (clients, providers, lines) = compare(billed, priced.lines).await?;
                    let comparison = RerunComparison {
                        clients,
                        providers,
                        margin: radfin_db::margin::of_run_lines(period, &lines),
                    };
                    radfin_db::documents::insert_manifest(
                        conn,
                        &NewManifest {
                            run_id,
                            period,
                            compared_run_id: current,
                            report_set_hash: &manifest.report_set_hash,
                            manifest: &serde_json::to_value(&manifest).map_err(|e| {
                                FinanceError::Storage(StorageError::corrupt(format_args!("manifest: {e}")))
                            })?,
                            comparison: &comparison,
                        },
                    )
                    .await?;
                    (manifest, comparison, priced.catalog)
                }
            };
            let run_id = manifest.run_id;
            let RerunComparison { clients, providers, margin } = comparison;
            let issue_date = close::issue_date(self.config.calendar, now);
            let year = FinancialYear::of(issue_date);
            let earlier = documents::fees_in_year(conn, year).await?;
            let period_filter = DocFilter { period: Some(period), ..DocFilter::default() };
            let issued_invoices: Vec<close::IssuedInvoice> = documents::invoices(conn, &period_filter)
                .await?
                .into_iter()
                .filter_map(|d| issued_invoice(&d))
                .collect();
            let issued_statements: Vec<close::IssuedStatement> = documents::statements(conn, &period_filter)
                .await?
                .into_iter()
                .filter(|d| d.statement.kind == "STATEMENT")
                .filter_map(|d| issued_statement(&d))
                .collect();
            let planned = close::corrections(
                period,
                run_id,
                &clients,
                &providers,
                &issued_invoices,
                &issued_statements,
                &priced_catalog,
                &self.config.supplier.gst,
                &earlier,
                &self.config.tds,
            )
            .map_err(|e| FinanceError::Precondition(e.to_string()))?;
            stages.mark("compared");

            let action = if apply { "RerunPeriod APPLY" } else { "RerunPeriod PREVIEW" };
            let details = serde_json::json!({
                "run_id": run_id,
                "compared_run_id": current,
                "clients_changed": clients.len(),
                "providers_changed": providers.len(),
                "credit_notes": planned.credit_notes.len(),
                "invoices": planned.invoices.len(),
                "payout_adjustments": planned.payouts.len(),
            });
            radfin_db::audit::record(
                conn,
                &AuditRecord {
                    actor: actor.name.clone(),
                    role: actor.role.clone(),
                    action: action.to_owned(),
                    target: format!("period {period}"),
                    reason: Some(reason.to_owned()),
                    outcome: AuditOutcome::Allowed,
                    details,
                },
            )
            .await?;
            if !apply {
                tracing::info!(%period, run_id, stages = %stages, "rerun previewed");
                return Ok(Rerun {
                    manifest,
                    applied: false,
                    already_applied: false,
                    clients,
                    providers,
                    planned,
                    issued: RunDocuments::default(),
                });
            }
            self.issue_corrections(conn, period, run_id, now, &planned, actor).await?;
            documents::mark_closed(conn, period, run_id, &actor.name, Some(reason)).await?;
            release_applied(conn, period, run_id).await?;
            radfin_db::margin::replace(conn, period, &margin).await?;
            stages.mark("issued");
            tracing::info!(%period, run_id, stages = %stages, "rerun applied");
            let issued = self.run_documents(conn, period, run_id).await?;
            Ok(Rerun { manifest, applied: true, already_applied: false, clients, providers, planned, issued })
        })
        .await
    }

    async fn issue_corrections(
        &self,
        conn: &mut AsyncPgConnection,
        period: Period,
        run_id: i64,
        now: DateTime<Utc>,
        planned: &Corrections,
        actor: &Actor,
    ) -> Result<(), FinanceError> {
        let issue_date = close::issue_date(self.config.calendar, now);
        let year = FinancialYear::of(issue_date);
        let issue = Issue { period, run_id: Some(run_id), issue_date, created_by: &actor.name };
        for c in &planned.credit_notes {
            let number = documents::next_number(conn, DocType::CreditNote, year).await?;
            documents::insert_credit_note(
                conn,
                &issue,
                &number,
                &NewCreditNote {
                    client_id: c.client_id.as_str(),
                    corrects_invoice_id: c.corrects_invoice_id,
                    currency: c.currency.code(),
                    lines: &c.lines,
                    taxable_value: c.taxable_value,
                    tax: &c.tax,
                    taxable_value_inr: c.taxable_value_inr,
                    reason: &format!("Rerun {run_id} of {period}: overcharge"),
                    request_id: None,
                },
            )
            .await?;
        }
        for s in &planned.invoices {
            let doc_type = if s.corrects.is_some() { DocType::Supplementary } else { DocType::Invoice };
            let number = documents::next_number(conn, doc_type, year).await?;
            documents::insert_invoice(conn, &issue, &number, &s.invoice, s.corrects.as_ref().map(|(id, _)| *id))
                .await?;
        }
        for p in &planned.payouts {
            let number = documents::next_number(conn, DocType::Payout, year).await?;
            documents::insert_statement(
                conn,
                &issue,
                &number,
                &p.payout,
                p.corrects.is_some(),
                p.corrects.as_ref().map(|(id, _)| *id),
            )
            .await?;
        }
        Ok(())
    }

    /// Credits part of an invoice by hand (role finance), never more than remains of it.
    pub async fn credit_note(
        &self,
        invoice_number: &str,
        reason: &str,
        lines: Vec<DocLine>,
        request_id: Option<String>,
        actor: &Actor,
    ) -> Result<CreditNoteDoc, FinanceError> {
        let result = self.credit_note_inner(invoice_number, reason, lines, request_id, actor).await;
        if let Err(e) = &result
            && !matches!(e, FinanceError::Storage(s) if s.is_retryable())
        {
            self.audit_failure(actor, "IssueCreditNote", &format!("invoice {invoice_number}"), Some(reason), e).await;
        }
        result
    }

    async fn credit_note_inner(
        &self,
        invoice_number: &str,
        reason: &str,
        lines: Vec<DocLine>,
        request_id: Option<String>,
        actor: &Actor,
    ) -> Result<CreditNoteDoc, FinanceError> {
        if reason.trim().is_empty() {
            return Err(invalid("reason", "a credit note needs a reason"));
        }
        if lines.is_empty() {
            return Err(invalid("lines", "a credit note needs at least one line"));
        }
        let request_id = match request_id.filter(|r| !r.is_empty()) {
            Some(r) => {
                radfin_domain::ReportId::parse(&r)
                    .map_err(|_| invalid("request_id", "1–64 characters of [A-Za-z0-9._:-]"))?;
                r
            }
            None => format!("crn-{:016x}", rand::random::<u64>()),
        };
        let now = Utc::now();
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let same_request = CreditFilter { request_id: Some(request_id.clone()), ..CreditFilter::default() };
            if let Some(existing) = documents::credit_notes(conn, &same_request).await?.into_iter().next() {
                if existing.invoice_number != invoice_number {
                    return Err(FinanceError::Conflict(format!(
                        "request_id {request_id} already issued credit note {} against invoice {}",
                        existing.note.credit_note_number, existing.invoice_number
                    )));
                }
                return Ok(existing);
            }
            let by_number = DocFilter { number: Some(invoice_number.to_owned()), ..DocFilter::default() };
            let Some(invoice) = documents::invoices(conn, &by_number).await?.into_iter().next() else {
                return Err(FinanceError::NotFound(format!("no invoice numbered {invoice_number:?}")));
            };
            documents::lock_invoice(conn, invoice.invoice.id).await?;
            // Read again under the lock: a concurrent credit note may have committed meanwhile.
            let invoice = documents::invoices(conn, &by_number).await?.into_iter().next().unwrap_or(invoice);
            let currency = Currency::parse(&invoice.invoice.currency).map_err(|e| {
                FinanceError::Storage(StorageError::corrupt(format_args!("finance_invoices.currency: {e}")))
            })?;
            for (i, l) in lines.iter().enumerate() {
                if l.amount <= Decimal::ZERO {
                    return Err(invalid(&format!("lines[{i}].amount"), "must be positive"));
                }
                if l.amount.normalize().scale() > currency.minor_units() {
                    return Err(invalid(
                        &format!("lines[{i}].amount"),
                        format!("{} has more decimals than {currency} allows ({})", l.amount, currency.minor_units()),
                    ));
                }
                if l.description.trim().is_empty() {
                    return Err(invalid(&format!("lines[{i}].description"), "must not be empty"));
                }
            }
            let amount: Decimal = lines.iter().map(|l| l.amount).sum();
            let remaining = invoice.remaining();
            if amount > remaining {
                return Err(FinanceError::Precondition(format!(
                    "a credit of {amount} {currency} exceeds what remains of invoice {invoice_number} ({remaining} {currency} of {})",
                    invoice.invoice.taxable_value
                )));
            }
            let treatment = invoice.invoice.tax_treatment.parse().map_err(|e: String| {
                FinanceError::Storage(StorageError::corrupt(format_args!("finance_invoices.tax_treatment: {e}")))
            })?;
            let tax = invoice_tax(
                amount,
                currency,
                treatment,
                invoice.invoice.place_of_supply.as_deref(),
                &self.config.supplier.gst,
            );
            // INR in proportion; the credit that exhausts the invoice takes exactly what is left.
            let credited_inr = documents::credited_inr(conn, invoice.invoice.id).await?;
            let taxable_value_inr = if amount == remaining {
                invoice.invoice.taxable_value_inr - credited_inr
            } else {
                Currency::INR.round(invoice.invoice.taxable_value_inr * amount / invoice.invoice.taxable_value)
            };
            let period: Period = invoice.invoice.period.parse().map_err(|e| {
                FinanceError::Storage(StorageError::corrupt(format_args!("finance_invoices.period: {e}")))
            })?;
            let issue_date = close::issue_date(self.config.calendar, now);
            let number = documents::next_number(conn, DocType::CreditNote, FinancialYear::of(issue_date)).await?;
            let issue = Issue { period, run_id: None, issue_date, created_by: &actor.name };
            documents::insert_credit_note(
                conn,
                &issue,
                &number,
                &NewCreditNote {
                    client_id: &invoice.invoice.client_id,
                    corrects_invoice_id: invoice.invoice.id,
                    currency: currency.code(),
                    lines: &lines,
                    taxable_value: amount,
                    tax: &tax,
                    taxable_value_inr,
                    reason,
                    request_id: Some(&request_id),
                },
            )
            .await?;
            radfin_db::audit::record(
                conn,
                &AuditRecord {
                    actor: actor.name.clone(),
                    role: actor.role.clone(),
                    action: "IssueCreditNote".to_owned(),
                    target: format!("invoice {invoice_number}"),
                    reason: Some(reason.to_owned()),
                    outcome: AuditOutcome::Allowed,
                    details: serde_json::json!({ "credit_note": number, "amount": amount.to_string(), "currency": currency.code() }),
                },
            )
            .await?;
            let same = CreditFilter { request_id: Some(request_id.clone()), ..CreditFilter::default() };
            documents::credit_notes(conn, &same).await?.into_iter().next().ok_or_else(|| {
                FinanceError::Storage(StorageError::corrupt(format_args!("credit note {number} was not written")))
            })
        })
        .await
    }
}

/// What a replay of a period's report subject found: the messages, and the (report, revision)
/// pairs they carry.
#[derive(Default)]
struct Replayed {
    messages: u64,
    seen: HashSet<(String, u32)>,
}

/// Reads the period's report subject back from JetStream.
async fn replay_period(bus: Bus, period: Period) -> Result<Replayed, FinanceError> {
    let started = std::time::Instant::now();
    let subject = bus.names().report_subject(period);
    let replay_error =
        |e: &dyn std::fmt::Display| FinanceError::Replay { subject: subject.clone(), message: e.to_string() };
    let mut replay = bus.replay(PeriodStream::Reports, period).await.map_err(|e| replay_error(&e))?;
    let mut replayed = Replayed::default();
    while let Some(message) = replay.next().await {
        let message = message.map_err(|e| replay_error(&e))?;
        replayed.messages += 1;
        if let Ok(event) = message.decode::<radfin_proto::ingest::v1::ReportEvent>() {
            replayed.seen.insert((event.report_id, event.revision));
        }
    }
    tracing::info!(%period, messages = replayed.messages, elapsed_ms = started.elapsed().as_millis(), "period replayed");
    Ok(replayed)
}

/// [`close::compare`] of two runs' lines off the async reactor (a month's lines are millions);
/// the rerun's lines are handed back.
async fn compare(
    billed: Vec<RunLine>,
    rerun: Vec<RunLine>,
) -> Result<(Vec<ClientDifference>, Vec<ProviderDifference>, Vec<RunLine>), FinanceError> {
    tokio::task::spawn_blocking(move || {
        let (clients, providers) = close::compare(&billed, &rerun);
        (clients, providers, rerun)
    })
    .await
    .map_err(|e| FinanceError::Storage(StorageError::corrupt(format_args!("comparing the runs panicked: {e}"))))
}

/// Releases the `HELD_CLOSED_PERIOD` holds of the reports an applied rerun booked.
async fn release_applied(conn: &mut AsyncPgConnection, period: Period, run_id: i64) -> Result<(), StorageError> {
    let filter = radfin_db::held::HeldFilter {
        status: Some(radfin_db::held::HeldStatus::HeldClosedPeriod),
        period: Some(period),
        ..Default::default()
    };
    let held = radfin_db::held::current(conn, &filter).await?;
    if held.is_empty() {
        return Ok(());
    }
    let ids: Vec<(&str, u32)> = held.iter().map(|h| (h.report_id.as_str(), h.revision)).collect();
    let booked = radfin_db::ledger::booked_in_run(conn, period, run_id, &ids).await?;
    let released: Vec<(radfin_domain::ReportId, u32)> = held
        .into_iter()
        .filter(|h| booked.contains(&(h.report_id.to_string(), h.revision)))
        .map(|h| (h.report_id, h.revision))
        .collect();
    radfin_db::held::release(conn, &released).await?;
    Ok(())
}

async fn held_count(conn: &mut AsyncPgConnection, period: Period) -> Result<u64, StorageError> {
    let filter = radfin_db::held::HeldFilter { period: Some(period), ..Default::default() };
    Ok(radfin_db::held::current(conn, &filter).await?.len() as u64)
}

fn issued_invoice(d: &InvoiceDoc) -> Option<close::IssuedInvoice> {
    Some(close::IssuedInvoice {
        id: d.invoice.id,
        number: d.invoice.invoice_number.clone(),
        client_id: radfin_domain::ClientId::parse(&d.invoice.client_id).ok()?,
        currency: Currency::parse(&d.invoice.currency).ok()?,
        tax_treatment: d.invoice.tax_treatment.parse().ok()?,
        place_of_supply: d.invoice.place_of_supply.clone(),
        client_gstin: d.invoice.client_gstin.clone(),
        remaining: d.remaining(),
    })
}

fn issued_statement(d: &StatementDoc) -> Option<close::IssuedStatement> {
    Some(close::IssuedStatement {
        id: d.statement.id,
        number: d.statement.statement_number.clone(),
        provider_id: radfin_domain::ProviderId::parse(&d.statement.provider_id).ok()?,
        pan_present: d.statement.pan_present,
    })
}

/// The manifest of a rerun priced now.
fn manifest(
    run_id: i64,
    compared_run_id: i64,
    rules_as_of: DateTime<Utc>,
    priced: &Priced,
    replayed_messages: u64,
    missing_from_stream: u64,
) -> Manifest {
    let mut rule_versions: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    rule_versions.insert(String::new(), priced.pricing.provider_rule_versions.clone());
    for inv in &priced.pricing.invoices {
        rule_versions.insert(inv.client_id.to_string(), inv.rule_versions.clone());
    }
    let fx_rates: BTreeSet<(String, String, String, String)> = priced
        .lines
        .iter()
        .filter_map(|l| l.part.dims.fx.as_ref().map(|r| (l.part.dims.currency, r)))
        .map(|(c, r)| {
            (c.code().to_owned(), r.rate_date.to_string(), r.inr_per_unit.normalize().to_string(), r.source.to_string())
        })
        .collect();
    Manifest {
        run_id,
        period: priced.pricing.period.to_string(),
        compared_run_id,
        rules_as_of,
        rule_versions,
        fx_rates: fx_rates.into_iter().collect(),
        report_set_hash: report_set_hash(&priced.reports),
        reports: priced.reports.len() as u64,
        replayed_messages,
        missing_from_stream,
        held_reports: priced.pricing.held.len() as u64,
    }
}

/// SHA-256 of the priced report set: each current revision's fields, one line per report, by
/// report id.
pub fn report_set_hash(reports: &[ReportEvent]) -> String {
    let mut sorted: Vec<&ReportEvent> = reports.iter().collect();
    sorted.sort_by(|a, b| (&a.report_id, a.revision).cmp(&(&b.report_id, b.revision)));
    let mut hasher = sha2::Sha256::new();
    for r in sorted {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.report_id,
            r.revision,
            r.client_id,
            r.provider_id,
            r.modality,
            r.body_regions,
            r.priority,
            r.finalized_at.to_rfc3339(),
            r.status
        );
        hasher.update(line.as_bytes());
    }
    hasher.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
