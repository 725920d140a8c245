//! The ledger service: appends both entries (COGS and REVENUE) of every priced report to the
//! append-only `ledger_entries`, and answers what the ledger holds.
//!
//! Priced reports are consumed in batches; a batch's entries are inserted in one transaction
//! keyed by (period, report, revision, pricing run, side), so a redelivered message inserts
//! nothing, and the messages are acknowledged only after the commit.

mod api;
mod entries;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use radfin_proto::ledger::v1::ledger_service_server::{LedgerServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen};
use radfin_service::consume::{self, Batching};
use tokio::net::TcpListener;

pub use api::LedgerApi;

/// Durable consumer name shared by every ledger replica.
pub const CONSUMER: &str = "ledger";
/// Connections of one replica: the consumer's transaction plus a few concurrent reads.
const POOL_SIZE: usize = 6;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `RADFIN_LEDGER_LISTEN`, default 127.0.0.1:7053.
    pub listen: SocketAddr,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { common: Common::from_env()?, listen: listen("RADFIN_LEDGER_LISTEN", 7053)? })
    }
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let listener = radfin_service::grpc::bind(config.listen).await?;
    serve(&config.common, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0) and consumes priced reports.
pub async fn serve(
    common: &Common,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (pool, bus) = common.connect(POOL_SIZE).await?;
    let consumer = bus.durable_consumer(bus.names().priced_stream(), CONSUMER, None).await.context("consumer")?;

    let (stop_consumer, consumer_shutdown) = radfin_service::shutdown::channel();
    let consuming = {
        let pool = pool.clone();
        tokio::spawn(async move {
            consume::run(CONSUMER, &bus, &consumer, Batching::default(), consumer_shutdown, entries::decode, |batch| {
                entries::append(&pool, batch)
            })
            .await
        })
    };

    let routes = tonic::service::Routes::new(LedgerServiceServer::new(LedgerApi::new(pool)));
    let served = radfin_service::grpc::serve(listener, routes, &[SERVICE_NAME], shutdown).await;
    stop_consumer.fire();
    consuming.await.context("consumer task")??;
    served
}
