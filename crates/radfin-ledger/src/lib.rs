//! The ledger service: keeps each open client-month's live book ([`books`]) and appends to the
//! append-only `ledger_entries` the signed entries that make the live view exactly the engine's
//! price of the stored month; answers what the ledger holds.
//!
//! Live facts are consumed in batches; a batch is applied in one transaction that locks the
//! books it touches, so a redelivered fact changes nothing, and the messages are acknowledged
//! only after the commit.

mod api;
pub mod books;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use radfin_proto::ledger::v1::ledger_service_server::{LedgerServiceServer, SERVICE_NAME};
use radfin_service::config::{Common, listen};
use radfin_service::consume::{self, Batching};
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;

pub use api::LedgerApi;

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

    // The consumer, supervised: should it fail, the service stops.
    let mut supervisor = Supervisor::new();
    let consumer_shutdown = supervisor.shutdown();
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

    let routes = tonic::service::Routes::new(LedgerServiceServer::new(LedgerApi::new(pool)));
    supervisor.serve(listener, routes, &[SERVICE_NAME], shutdown).await
}
