//! The pricing service: prices every report event (both sides, with the pricing engine of
//! `radfin-domain`), publishes the priced result for the ledger, and holds back what it cannot
//! price yet (`UNKNOWN_PARTY`, `NO_RULE`, `NO_PRICE`, `AWAITING_FX`) until the missing party,
//! rule or rate arrives. Over gRPC it manages parties, rule versions and FX rates; FX reference
//! rates are also fetched on a schedule from a configurable URL ([`fx_feed`]).

mod api;
pub mod fx_feed;
mod pricer;
mod reference;
mod retry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use radfin_bus::Delivery;
use radfin_domain::BusinessCalendar;
use radfin_proto::pricing::v1::pricing_service_server::{PricingServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen, parse_or, var_or};
use radfin_service::consume::{self, Batching};
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use api::PricingApi;
pub use pricer::{NotStored, Pricer, Settled, Target};

/// Durable consumer name shared by every pricing replica.
pub const CONSUMER: &str = "pricing";
/// Facts of a batch are published together; large batches amortize the lookups.
const BATCHING: Batching =
    Batching { max: 2000, wait: Duration::from_millis(250), retry_delay: Duration::from_secs(2) };
/// Connections of one replica: the consumer, the retry of held reports and a few API calls.
const POOL_SIZE: usize = 8;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `RADFIN_PRICING_LISTEN`, default 127.0.0.1:7052.
    pub listen: SocketAddr,
    /// `RADFIN_FX_URL`: where reference rates are fetched from; none disables fetching.
    pub fx_url: Option<reqwest::Url>,
    /// `RADFIN_FX_FORMAT`: `ecb-xml` (eurofxref XML, default) or `json`.
    pub fx_format: fx_feed::FeedFormat,
    /// `RADFIN_FX_SOURCE`: the source recorded with fetched rates, default `ECB`.
    pub fx_source: String,
    /// `RADFIN_FX_INTERVAL_SECS`, default 3600.
    pub fx_interval: Duration,
    /// `RADFIN_FX_MAX_AGE_DAYS`: oldest rate a report may use, default 7.
    pub fx_max_age_days: u32,
    /// `RADFIN_REFERENCE_TTL_MS`: how long parties, rules and rates are cached, default 2000.
    pub reference_ttl: Duration,
    /// `RADFIN_HOLD_RETRY_SECS`: how often held reports are retried besides after each change
    /// made through this replica, default 60.
    pub hold_retry: Duration,
    /// `RADFIN_METRICS_LISTEN`, default 127.0.0.1:9102: Prometheus `/metrics`.
    pub metrics: radfin_service::metrics::Listen,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let fx_url = Some(var_or("RADFIN_FX_URL", ""))
            .filter(|u| !u.is_empty())
            .map(|u| u.parse().with_context(|| format!("RADFIN_FX_URL={u:?} is not a URL")))
            .transpose()?;
        Ok(Self {
            common: Common::from_env()?,
            listen: listen("RADFIN_PRICING_LISTEN", 7052)?,
            fx_url,
            fx_format: parse_or("RADFIN_FX_FORMAT", fx_feed::FeedFormat::EcbXml)?,
            fx_source: var_or("RADFIN_FX_SOURCE", "ECB"),
            fx_interval: Duration::from_secs(parse_or("RADFIN_FX_INTERVAL_SECS", 3600)?),
            fx_max_age_days: parse_or("RADFIN_FX_MAX_AGE_DAYS", radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS)?,
            reference_ttl: Duration::from_millis(parse_or("RADFIN_REFERENCE_TTL_MS", 2000)?),
            hold_retry: Duration::from_secs(parse_or("RADFIN_HOLD_RETRY_SECS", 60)?),
            metrics: radfin_service::metrics::Listen::from_env(9102)?,
        })
    }

    /// Defaults for everything but the common settings (tests).
    pub fn with_common(common: Common) -> Self {
        Self {
            common,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fx_url: None,
            fx_format: fx_feed::FeedFormat::EcbXml,
            fx_source: "ECB".to_owned(),
            fx_interval: Duration::from_secs(3600),
            fx_max_age_days: radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS,
            reference_ttl: Duration::from_millis(2000),
            hold_retry: Duration::from_secs(60),
            metrics: radfin_service::metrics::Listen::ephemeral(),
        }
    }
}

/// The `radfin-pricing` binary's whole work: telemetry, the configuration from the environment,
/// then [`run`] until SIGTERM or SIGINT. (The fault suite runs the services as processes through
/// this same entry point.)
pub async fn run_from_env() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-pricing")?;
    run(Config::from_env()?, radfin_service::shutdown::signal()).await
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let listener = radfin_service::grpc::bind(config.listen).await?;
    serve(&config, listener, shutdown).await
}

fn decode(calendar: BusinessCalendar) -> impl Fn(&Delivery) -> Result<Target, String> {
    move |d| {
        let msg: radfin_proto::ingest::v1::ReportEvent = d.decode().map_err(|e| e.to_string())?;
        let event = radfin_proto::report_from_proto(&msg, Utc::now()).map_err(|e| format!("invalid report: {e}"))?;
        Ok(Target {
            period: calendar.period_of(event.finalized_at),
            client_id: event.client_id,
            provider_id: event.provider_id,
            report_id: event.report_id,
            revision: event.revision,
        })
    }
}

/// Serves on an already bound listener (tests bind port 0), consumes report events, retries
/// held reports and, when configured, fetches FX rates.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let common = &config.common;
    let calendar = BusinessCalendar::named(&common.business_tz)?;
    let (pool, bus) = common.connect(POOL_SIZE).await?;
    let auth = common.auth(&pool)?;
    let consumer = bus.durable_consumer(bus.names().reports_stream(), CONSUMER, None).await.context("consumer")?;

    let reference =
        Arc::new(reference::ReferenceCache::new(pool.clone(), config.reference_ttl, config.fx_max_age_days));
    let pricer = Arc::new(Pricer::new(pool.clone(), bus.clone(), calendar, reference.clone()));
    let changed = Arc::new(Notify::new());
    // Every background task of the service, supervised: one that fails stops the service.
    let mut supervisor = Supervisor::new().with_tls(config.common.tls.server.clone());
    let stopped = supervisor.shutdown();
    radfin_service::metrics::spawn(&mut supervisor, "pricing", &config.metrics, &pool).await?;
    supervisor.spawn("held metrics", retry::sample_held(pool.clone(), stopped.clone()));
    {
        let (pricer, stopped) = (pricer.clone(), stopped.clone());
        supervisor.spawn("consumer", async move {
            consume::run(CONSUMER, &pricer.bus, &consumer, BATCHING, stopped, decode(calendar), |targets| {
                let pricer = pricer.clone();
                async move {
                    let started = std::time::Instant::now();
                    let settled = pricer.settle(&targets).await?;
                    tracing::info!(
                        priced = settled.priced,
                        held = settled.held,
                        superseded = settled.superseded,
                        contracts = settled.contracts,
                        elapsed_ms = started.elapsed().as_millis(),
                        "reports priced"
                    );
                    Ok(())
                }
            })
            .await
        });
    }
    supervisor.spawn("held retry", retry::run(pricer.clone(), changed.clone(), config.hold_retry, stopped.clone()));
    let feed = match &config.fx_url {
        Some(url) => Some(Arc::new(fx_feed::FeedClient::new(fx_feed::FxFeed::new(
            url.clone(),
            config.fx_format,
            config.fx_source.clone(),
        ))?)),
        None => None,
    };
    if let Some(feed) = &feed {
        supervisor.spawn(
            "fx feed",
            retry::fetch_rates(
                pool.clone(),
                feed.clone(),
                config.fx_interval,
                reference.clone(),
                changed.clone(),
                stopped,
            ),
        );
    }

    let api = PricingApi { pool, reference, changed, feed };
    let routes = tonic::service::Routes::new(PricingServiceServer::new(api));
    supervisor.serve(listener, routes, &[SERVICE_NAME], auth, shutdown).await
}
