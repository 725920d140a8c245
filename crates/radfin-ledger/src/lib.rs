//! The ledger service: keeps each open client-month's live book ([`books`]) and appends to the
//! append-only `ledger_entries` the signed entries that make the live view exactly the engine's
//! price of the stored month; answers what the ledger holds.
//!
//! Live facts are consumed in batches; a batch is applied in one transaction that locks the
//! books it touches, so a redelivered fact changes nothing, and the messages are acknowledged
//! only after the commit.

mod api;
pub mod books;
pub mod finance;
mod present;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use radfin_domain::BusinessCalendar;
use radfin_domain::tax::{GstConfig, TdsConfig};
use radfin_proto::ledger::v1::ledger_service_server::{LedgerServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen, parse_or, var_or};
use radfin_service::consume::{self, Batching};
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;

pub use api::LedgerApi;
use finance::{Finance, FinanceConfig, Supplier};

/// Durable consumer name shared by every ledger replica.
pub const CONSUMER: &str = "ledger";
/// Facts per transaction: large batches amortize the book locks and round trips.
const BATCHING: Batching =
    Batching { max: 2000, wait: std::time::Duration::from_millis(100), retry_delay: std::time::Duration::from_secs(2) };
/// Connections of one replica: the consumer's transaction plus a few concurrent reads.
const POOL_SIZE: usize = 6;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `RADFIN_LEDGER_LISTEN`, default 127.0.0.1:7053.
    pub listen: SocketAddr,
    /// `RADFIN_SUPPLIER_NAME`, `RADFIN_SUPPLIER_GSTIN`, `RADFIN_SUPPLIER_STATE_CODE` (default 29,
    /// Karnataka), `RADFIN_CGST_PCT`/`RADFIN_SGST_PCT`/`RADFIN_IGST_PCT` (9/9/18): who issues the
    /// invoices and how they are taxed (spec §4.4).
    pub supplier: Supplier,
    /// `RADFIN_TDS_THRESHOLD` (50000), `RADFIN_TDS_PCT` (10), `RADFIN_TDS_NO_PAN_PCT` (20).
    pub tds: TdsConfig,
    /// `RADFIN_FX_MAX_AGE_DAYS`: oldest rate a report may use, default 7 (as pricing).
    pub fx_max_age_days: u32,
    /// `RADFIN_METRICS_LISTEN`, default 127.0.0.1:9103: Prometheus `/metrics`.
    pub metrics: radfin_service::metrics::Listen,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let mut gst = GstConfig::new(var_or("RADFIN_SUPPLIER_STATE_CODE", "29"));
        gst.cgst_pct = parse_or("RADFIN_CGST_PCT", gst.cgst_pct)?;
        gst.sgst_pct = parse_or("RADFIN_SGST_PCT", gst.sgst_pct)?;
        gst.igst_pct = parse_or("RADFIN_IGST_PCT", gst.igst_pct)?;
        let defaults = TdsConfig::default();
        Ok(Self {
            listen: listen("RADFIN_LEDGER_LISTEN", 7053)?,
            supplier: Supplier {
                name: var_or("RADFIN_SUPPLIER_NAME", "radfin"),
                gstin: Some(var_or("RADFIN_SUPPLIER_GSTIN", "")).filter(|g| !g.is_empty()),
                gst,
            },
            tds: TdsConfig {
                threshold: parse_or("RADFIN_TDS_THRESHOLD", defaults.threshold)?,
                rate_pct: parse_or("RADFIN_TDS_PCT", defaults.rate_pct)?,
                rate_without_pan_pct: parse_or("RADFIN_TDS_NO_PAN_PCT", defaults.rate_without_pan_pct)?,
            },
            fx_max_age_days: parse_or("RADFIN_FX_MAX_AGE_DAYS", radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS)?,
            metrics: radfin_service::metrics::Listen::from_env(9103)?,
            common: Common::from_env()?,
        })
    }

    /// Defaults for everything but the common settings (tests).
    pub fn with_common(common: Common) -> Self {
        Self {
            common,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            supplier: Supplier { name: "radfin".to_owned(), gstin: None, gst: GstConfig::new("29") },
            tds: TdsConfig::default(),
            fx_max_age_days: radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS,
            metrics: radfin_service::metrics::Listen::ephemeral(),
        }
    }
}

/// The `radfin-ledger` binary's whole work: telemetry, the configuration from the environment,
/// then [`run`] until SIGTERM or SIGINT. (The fault suite runs the services as processes through
/// this same entry point.)
pub async fn run_from_env() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-ledger")?;
    run(Config::from_env()?, radfin_service::shutdown::signal()).await
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let listener = radfin_service::grpc::bind(config.listen).await?;
    serve(&config, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0) and consumes priced reports.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let common = &config.common;
    let (pool, bus) = common.connect(POOL_SIZE).await?;
    let finance_config = FinanceConfig {
        calendar: BusinessCalendar::named(&common.business_tz)?,
        supplier: config.supplier.clone(),
        tds: config.tds.clone(),
        fx_max_age_days: config.fx_max_age_days,
    };
    let finance = std::sync::Arc::new(Finance::new(pool.clone(), bus.clone(), finance_config.clone()));
    let auth = common.auth(&pool)?;
    let consumer = bus.durable_consumer(bus.names().priced_stream(), CONSUMER, None).await.context("consumer")?;

    // The consumer, supervised: should it fail, the service stops.
    let mut supervisor = Supervisor::new().with_tls(config.common.tls.server.clone());
    let consumer_shutdown = supervisor.shutdown();
    radfin_service::metrics::spawn(&mut supervisor, "ledger", &config.metrics, &pool).await?;
    {
        let pool = pool.clone();
        let books = std::sync::Arc::new(books::Books::default());
        supervisor.spawn("consumer", async move {
            consume::run(CONSUMER, &bus, &consumer, BATCHING, consumer_shutdown, books::decode, |batch| {
                let (pool, books) = (pool.clone(), books.clone());
                async move {
                    let started = std::time::Instant::now();
                    let received = batch.len();
                    let applied = books.apply(&pool, batch).await?;
                    tracing::info!(
                        received,
                        applied = applied.facts,
                        stale = applied.stale,
                        entries = applied.entries,
                        rebuilt = applied.rebuilt,
                        elapsed_ms = started.elapsed().as_millis(),
                        "live facts booked"
                    );
                    Ok(())
                }
            })
            .await
        });
    }

    let routes = tonic::service::Routes::new(LedgerServiceServer::new(LedgerApi::new(pool, finance, finance_config)));
    supervisor.serve(listener, routes, &[SERVICE_NAME], auth, shutdown).await
}
