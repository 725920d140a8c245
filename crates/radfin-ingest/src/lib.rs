//! The ingest service: the only way reports enter radfin.
//!
//! A submitted report is validated (spec §2, every bad field named), committed to PostgreSQL
//! together with an outbox row, and only then acknowledged. The [`relay`] publishes committed
//! reports from the outbox to NATS (awaiting the broker's ack, with `Nats-Msg-Id` =
//! `report_id:revision` so a re-publish is deduplicated) and deletes the outbox rows; after a
//! crash or a broker outage it resumes from the outbox, so an acknowledged report is never lost.
//!
//! Reports also arrive by the rolling-window [`sync`] from an operator's PostgreSQL table (on a
//! schedule and on demand), through the same validation and store. The [`reconcile`]r
//! republishes stored reports the ledger never recorded (a broker may lose what it
//! acknowledged). Operators list the dead letters and redrive them (`ListDeadLetters`,
//! `RedriveDeadLetter`, audited): ingest owns the report stream most of them come from.

mod api;
pub mod reconcile;
mod relay;
pub mod sync;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use radfin_domain::BusinessCalendar;
use radfin_proto::ingest::v1::ingest_service_server::{IngestServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen, parse_or, var_or};
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use api::IngestApi;
pub use reconcile::Reconciler;
pub use sync::{SourceTable, SyncSource, SyncWindow, Syncer};

/// Most reports one batch or stream may carry.
pub const MAX_BATCH: usize = 100_000;
/// Database connections of one ingest replica: a few concurrent submissions plus the relay,
/// the sync and the reconciler.
const POOL_SIZE: usize = 8;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `RADFIN_INGEST_LISTEN`, default 127.0.0.1:7051.
    pub listen: SocketAddr,
    /// `RADFIN_SYNC_SOURCE_URL` (a `postgres://` URL) and `RADFIN_SYNC_SOURCE_TABLE` (a table or
    /// view, optionally schema-qualified): where the rolling-window sync reads; none disables
    /// the sync.
    pub sync_source: Option<SyncSource>,
    /// `RADFIN_SYNC_INTERVAL_SECS`, default 3600: how often the sync runs.
    pub sync_interval: Duration,
    /// `RADFIN_RECONCILE_INTERVAL_SECS`, default 60: how often the reconciler compares.
    pub reconcile_interval: Duration,
    /// `RADFIN_RECONCILE_GRACE_SECS`, default 120: how long after it was received a report
    /// may take to reach the ledger before it counts as missing.
    pub reconcile_grace: Duration,
    /// `RADFIN_METRICS_LISTEN`, default 127.0.0.1:9101: Prometheus `/metrics`.
    pub metrics: radfin_service::metrics::Listen,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let url = var_or("RADFIN_SYNC_SOURCE_URL", "");
        let table = var_or("RADFIN_SYNC_SOURCE_TABLE", "");
        let sync_source = match (url.is_empty(), table.is_empty()) {
            (true, true) => None,
            (true, false) => anyhow::bail!("RADFIN_SYNC_SOURCE_TABLE is set but RADFIN_SYNC_SOURCE_URL is not"),
            (false, true) => anyhow::bail!("RADFIN_SYNC_SOURCE_TABLE must be set with RADFIN_SYNC_SOURCE_URL"),
            (false, false) => {
                let table = table.parse().map_err(|e| anyhow::anyhow!("RADFIN_SYNC_SOURCE_TABLE is invalid: {e}"))?;
                // The URL is not repeated: it may hold a password.
                Some(SyncSource::new(&url, table).map_err(|e| anyhow::anyhow!("RADFIN_SYNC_SOURCE_URL {e}"))?)
            }
        };
        let config = Self {
            common: Common::from_env()?,
            listen: listen("RADFIN_INGEST_LISTEN", 7051)?,
            sync_source,
            sync_interval: Duration::from_secs(parse_or("RADFIN_SYNC_INTERVAL_SECS", 3600)?),
            reconcile_interval: Duration::from_secs(parse_or("RADFIN_RECONCILE_INTERVAL_SECS", 60)?),
            reconcile_grace: Duration::from_secs(parse_or("RADFIN_RECONCILE_GRACE_SECS", 120)?),
            metrics: radfin_service::metrics::Listen::from_env(9101)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Defaults for everything but the common settings: no sync source (tests).
    pub fn with_common(common: Common) -> Self {
        Self {
            common,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sync_source: None,
            sync_interval: Duration::from_secs(3600),
            reconcile_interval: Duration::from_secs(60),
            reconcile_grace: Duration::from_secs(120),
            metrics: radfin_service::metrics::Listen::ephemeral(),
        }
    }

    /// Checks what the types do not: the intervals are at least a second.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.sync_interval >= Duration::from_secs(1), "RADFIN_SYNC_INTERVAL_SECS must be at least 1");
        anyhow::ensure!(
            self.reconcile_interval >= Duration::from_secs(1),
            "RADFIN_RECONCILE_INTERVAL_SECS must be at least 1"
        );
        Ok(())
    }
}

/// The `radfin-ingest` binary's whole work: telemetry, the configuration from the environment,
/// then [`run`] until SIGTERM or SIGINT. (The fault suite runs the services as processes through
/// this same entry point.)
pub async fn run_from_env() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-ingest")?;
    run(Config::from_env()?, radfin_service::shutdown::signal()).await
}

/// Runs the service until `shutdown` resolves: gRPC stops taking submissions, in-flight ones
/// finish, the relay publishes what was committed, then it returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let listener = radfin_service::grpc::bind(config.listen).await?;
    serve_with(&config, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0) with the defaults of
/// [`Config::with_common`].
pub async fn serve(
    common: &Common,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_with(&Config::with_common(common.clone()), listener, shutdown).await
}

/// Serves `config` on an already bound listener (its `listen` is not used).
pub async fn serve_with(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    config.validate()?;
    let calendar = BusinessCalendar::named(&config.common.business_tz)?;
    let (pool, bus) = config.common.connect(POOL_SIZE).await?;
    let auth = config.common.auth(&pool)?;
    let committed = Arc::new(Notify::new());

    // Draining begins when `shutdown` resolves or a background task fails: syncs stop at their
    // next page, the schedule and the reconciler stop. The relay stops only after the gRPC
    // server has drained, so that it publishes what the last submissions committed.
    let mut supervisor = Supervisor::new().with_tls(config.common.tls.server.clone());
    let draining = supervisor.draining();
    let relay_shutdown = supervisor.shutdown();
    radfin_service::metrics::spawn(&mut supervisor, "ingest", &config.metrics, &pool).await?;
    supervisor.spawn("outbox metrics", relay::sample_outbox(pool.clone(), supervisor.shutdown()));

    let syncer = config.sync_source.as_ref().map(|source| {
        Arc::new(Syncer::new(
            pool.clone(),
            calendar,
            source.clone(),
            config.sync_interval,
            committed.clone(),
            draining.clone(),
        ))
    });
    let reconciler =
        Arc::new(Reconciler::new(pool.clone(), bus.clone(), config.reconcile_interval, config.reconcile_grace));

    // Every background task of the service, supervised: one that fails stops the service.
    let traces = relay::Traces::default();
    supervisor.spawn("relay", relay::run(pool.clone(), bus.clone(), committed.clone(), traces.clone(), relay_shutdown));
    supervisor.spawn("reconciler", reconciler.clone().run(draining.clone()));
    if let Some(syncer) = &syncer {
        supervisor.spawn("sync schedule", syncer.clone().run_schedule(draining.clone()));
    }

    let api = IngestApi::new(pool, calendar, committed)
        .with_sync(syncer)
        .with_reconciler(reconciler)
        .with_traces(traces)
        .with_bus(bus);
    let routes = tonic::service::Routes::new(IngestServiceServer::new(api).max_decoding_message_size(64 << 20));
    // Once submissions are over, the relay publishes what they committed, then everything stops.
    supervisor.serve(listener, routes, &[SERVICE_NAME], auth, shutdown).await
}
