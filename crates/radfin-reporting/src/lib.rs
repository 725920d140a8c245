//! The reporting service: margins as the C-suite reads them (spec §7), from `margin_summary`,
//! which the ledger keeps equal to its current view of each period in the transactions that
//! write its entries (and rebuilds on close and on an applied rerun).
//!
//! - gRPC `radfin.reporting.v1.ReportingService` ([`api`]): the summary grouped by any of
//!   period, client, modality and grade; a client's and a provider's month; top and bottom
//!   clients by margin %; a rerun's effect split into price, volume and FX; a stream of the rows
//!   that change ([`watch`]); a rebuild of the summary from the ledger (admin, audited).
//! - HTTP ([`http`]): the executives' dashboard, its JSON and CSV per panel ([`panels`]), and
//!   the ledger's finance documents as PDF ([`documents`]).
//!
//! Both are served by one binary on two listeners; the HTTP server is a supervised task, so a
//! failure of either stops the service.

mod api;
pub mod documents;
pub mod http;
pub mod panels;
pub mod query;
pub mod summary;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use radfin_proto::reporting::v1::reporting_service_server::{ReportingServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen, parse_or, var_or};
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;

pub use api::ReportingApi;
pub use query::{Reporting, ReportingError};

/// Connections of one replica: the queries of the API and the dashboard, the watchers' polls
/// (each holds one only while it reads) and a rebuild.
const POOL_SIZE: usize = 6;

#[derive(Clone, Debug)]
pub struct Config {
    /// The database as `radfin_reporting`; the NATS settings are not used (the summary is read
    /// from PostgreSQL).
    pub common: Common,
    /// `RADFIN_REPORTING_LISTEN`, default 127.0.0.1:7054: gRPC.
    pub listen: SocketAddr,
    /// `RADFIN_REPORTING_HTTP`, default 127.0.0.1:7080: the dashboard.
    pub http_listen: SocketAddr,
    /// `RADFIN_DASHBOARD_REFRESH_MS`, default 5000: how often the page refreshes its panels.
    pub refresh: Duration,
    /// `RADFIN_LEDGER_URL`, default http://127.0.0.1:7053: where the documents come from.
    pub ledger_url: String,
    /// `RADFIN_PRICING_URL`, default http://127.0.0.1:7052: the parties' profiles on documents.
    pub pricing_url: String,
    /// Who issues the documents, as on `radfin invoices pdf`: `RADFIN_SUPPLIER_NAME` (default
    /// radfin), `RADFIN_SUPPLIER_ADDRESS` (lines separated by `\n`), `RADFIN_SUPPLIER_GSTIN`,
    /// `RADFIN_SUPPLIER_STATE_CODE` (default 29), `RADFIN_SUPPLIER_PAN`.
    pub supplier: radfin_pdf::Supplier,
    /// `RADFIN_METRICS_LISTEN`, default 127.0.0.1:9104: Prometheus `/metrics` (a listener of
    /// its own, as every service's, not the dashboard's).
    pub metrics: radfin_service::metrics::Listen,
}

/// The supplier as the environment names it (the same variables the ledger and the CLI read).
fn supplier_from_env() -> radfin_pdf::Supplier {
    let optional = |name: &str| std::env::var(name).ok();
    radfin_pdf::Supplier::from_config(
        &var_or("RADFIN_SUPPLIER_NAME", "radfin"),
        &var_or("RADFIN_SUPPLIER_ADDRESS", ""),
        optional("RADFIN_SUPPLIER_GSTIN").as_deref(),
        &var_or("RADFIN_SUPPLIER_STATE_CODE", "29"),
        optional("RADFIN_SUPPLIER_PAN").as_deref(),
    )
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            listen: listen("RADFIN_REPORTING_LISTEN", 7054)?,
            http_listen: parse_or("RADFIN_REPORTING_HTTP", SocketAddr::from(([127, 0, 0, 1], 7080)))?,
            refresh: Duration::from_millis(parse_or("RADFIN_DASHBOARD_REFRESH_MS", 5000)?),
            ledger_url: var_or("RADFIN_LEDGER_URL", "http://127.0.0.1:7053"),
            pricing_url: var_or("RADFIN_PRICING_URL", "http://127.0.0.1:7052"),
            supplier: supplier_from_env(),
            metrics: radfin_service::metrics::Listen::from_env(9104)?,
            common: Common::from_env()?,
        })
    }

    /// Defaults for everything but the common settings and where the ledger and pricing are
    /// (tests: both listeners on port 0, the supplier `radfin` in state 29).
    pub fn with_common(common: Common, ledger_url: String, pricing_url: String) -> Self {
        Self {
            common,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            refresh: Duration::from_secs(5),
            ledger_url,
            pricing_url,
            supplier: radfin_pdf::Supplier { name: "radfin".into(), state_code: "29".into(), ..Default::default() },
            metrics: radfin_service::metrics::Listen::ephemeral(),
        }
    }
}

/// The `radfin-reporting` binary's whole work: telemetry, the configuration from the environment,
/// then [`run`] until SIGTERM or SIGINT. (The fault suite runs the services as processes through
/// this same entry point.)
pub async fn run_from_env() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-reporting")?;
    run(Config::from_env()?, radfin_service::shutdown::signal()).await
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let grpc = radfin_service::grpc::bind(config.listen).await?;
    let http = radfin_service::grpc::bind(config.http_listen).await?;
    serve(&config, grpc, http, shutdown).await
}

/// Serves gRPC on `grpc_listener` and the dashboard on `http_listener` (tests bind port 0)
/// until `shutdown` resolves or either fails.
pub async fn serve(
    config: &Config,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let pool = radfin_db::pool(&config.common.database_url, POOL_SIZE).await.context("database")?;
    let auth = config.common.auth(&pool)?;
    let reporting = Arc::new(Reporting::new(pool));

    let mut supervisor = Supervisor::new().with_tls(config.common.tls.server.clone());
    radfin_service::metrics::spawn(&mut supervisor, "reporting", &config.metrics, reporting.pool()).await?;
    {
        let documents = documents::Documents::new(
            &config.ledger_url,
            &config.pricing_url,
            &config.common.tls.client,
            config.supplier.clone(),
        )?;
        let dashboard = http::Dashboard {
            reporting: Arc::clone(&reporting),
            auth: auth.clone(),
            refresh: config.refresh,
            documents,
        };
        let mut draining = supervisor.draining();
        let addr = http_listener.local_addr().context("http listener address")?;
        supervisor.spawn("http", async move {
            tracing::info!(%addr, authentication = dashboard.auth.is_enabled(), "dashboard serving");
            axum::serve(http_listener, http::router(dashboard))
                .with_graceful_shutdown(async move { draining.requested().await })
                .await
                .context("dashboard http server")
        });
    }
    let api = ReportingApi::new(reporting, supervisor.draining());
    let routes = tonic::service::Routes::new(ReportingServiceServer::new(api));
    supervisor.serve(grpc_listener, routes, &[SERVICE_NAME], auth, shutdown).await
}
