//! The ingest service: the only way reports enter radfin.
//!
//! A submitted report is validated (spec §2, every bad field named), committed to PostgreSQL
//! together with an outbox row, and only then acknowledged. The [`relay`] publishes committed
//! reports from the outbox to NATS (awaiting the broker's ack, with `Nats-Msg-Id` =
//! `report_id:revision` so a re-publish is deduplicated) and deletes the outbox rows; after a
//! crash or a broker outage it resumes from the outbox, so an acknowledged report is never lost.

mod api;
mod relay;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use radfin_domain::BusinessCalendar;
use radfin_proto::ingest::v1::ingest_service_server::{IngestServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use api::IngestApi;

/// Most reports one batch or stream may carry.
pub const MAX_BATCH: usize = 100_000;
/// Database connections of one ingest replica: a few concurrent submissions plus the relay.
const POOL_SIZE: usize = 8;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `RADFIN_INGEST_LISTEN`, default 127.0.0.1:7051.
    pub listen: SocketAddr,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { common: Common::from_env()?, listen: listen("RADFIN_INGEST_LISTEN", 7051)? })
    }
}

/// Runs the service until `shutdown` resolves: gRPC stops taking submissions, in-flight ones
/// finish, the relay publishes what was committed, then it returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let listener = radfin_service::grpc::bind(config.listen).await?;
    serve(&config.common, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve(
    common: &Common,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let calendar = BusinessCalendar::named(&common.business_tz)?;
    let (pool, bus) = common.connect(POOL_SIZE).await?;

    let committed = Arc::new(Notify::new());
    let (stop_relay, relay_shutdown) = radfin_service::shutdown::channel();
    let relay = tokio::spawn(relay::run(pool.clone(), bus, committed.clone(), relay_shutdown));

    let api = IngestApi::new(pool, calendar, committed);
    let routes = tonic::service::Routes::new(IngestServiceServer::new(api).max_decoding_message_size(64 << 20));
    let served = radfin_service::grpc::serve(listener, routes, &[SERVICE_NAME], shutdown).await;

    // Submissions are over: let the relay publish what they committed, then stop it.
    stop_relay.fire();
    relay.await.context("relay task")??;
    served
}
