//! The consuming loop every service's bus consumer runs: fetch a batch, decode it (what cannot
//! be decoded is dead-lettered with the reason, at once), hand it to the service, and only when
//! the service has made its effects durable acknowledge the batch. On failure the batch is
//! redelivered after a delay; on its last allowed delivery a message is dead-lettered with the
//! failure as its reason, so nothing is silently lost.

use std::future::Future;
use std::time::Duration;

use futures::future::join_all;
use radfin_bus::{Bus, Consumer, Delivery};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::shutdown::Shutdown;

/// How a consumer takes its messages.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most messages handled together.
    pub max: usize,
    /// How long a fetch waits for the batch to fill.
    pub wait: Duration,
    /// Delay before a failed batch is redelivered.
    pub retry_delay: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Self { max: 500, wait: Duration::from_millis(200), retry_delay: Duration::from_secs(2) }
    }
}

/// Runs until `shutdown`; the batch in hand when it is requested is finished first.
pub async fn run<T, Fut>(
    name: &'static str,
    bus: &Bus,
    consumer: &Consumer,
    batching: Batching,
    mut shutdown: Shutdown,
    decode: impl Fn(&Delivery) -> Result<T, String>,
    mut handle: impl FnMut(Vec<T>) -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        let fetched = tokio::select! {
            fetched = consumer.fetch(batching.max, batching.wait) => fetched,
            () = shutdown.requested() => return Ok(()),
        };
        let deliveries = match fetched {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "fetch failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(batching.retry_delay) => continue,
                    () = shutdown.requested() => return Ok(()),
                }
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        let span = tracing::info_span!("consume", consumer = name, messages = deliveries.len());
        if let Err(e) = span.set_parent(deliveries[0].parent_context()) {
            tracing::debug!(error = %e, "no trace context to continue");
        }
        handle_batch(name, bus, consumer, batching, deliveries, &decode, &mut handle).instrument(span).await;
    }
}

async fn handle_batch<T, Fut>(
    name: &'static str,
    bus: &Bus,
    consumer: &Consumer,
    batching: Batching,
    deliveries: Vec<Delivery>,
    decode: &impl Fn(&Delivery) -> Result<T, String>,
    handle: &mut impl FnMut(Vec<T>) -> Fut,
) where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut items = Vec::with_capacity(deliveries.len());
    let mut decoded = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        match decode(&d) {
            Ok(item) => {
                items.push(item);
                decoded.push(d);
            }
            Err(reason) => {
                tracing::error!(consumer = name, subject = d.subject(), %reason, "undecodable message dead-lettered");
                if let Err(e) = d.dead_letter(bus, &reason).await {
                    tracing::error!(consumer = name, error = %e, "dead-lettering failed; the message will be redelivered");
                }
            }
        }
    }
    if items.is_empty() {
        return;
    }
    match handle(items).await {
        Ok(()) => {
            // Every consumer's effects are idempotent, so an unconfirmed ack is enough: a lost
            // one only means a redelivery that changes nothing.
            for result in join_all(decoded.iter().map(Delivery::ack_unconfirmed)).await {
                if let Err(e) = result {
                    // The effects are durable and idempotent: a redelivery changes nothing.
                    tracing::warn!(consumer = name, error = %e, "ack failed; the message will be redelivered");
                }
            }
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::warn!(consumer = name, error = %reason, messages = decoded.len(), "batch failed; redelivering");
            for d in &decoded {
                let result = if d.is_last_attempt(consumer.max_deliver()) {
                    tracing::error!(consumer = name, subject = d.subject(), %reason, "last delivery failed; dead-lettered");
                    d.dead_letter(bus, &reason).await.map(|_| ())
                } else {
                    d.nak(Some(batching.retry_delay)).await
                };
                if let Err(e) = result {
                    tracing::warn!(consumer = name, error = %e, "nak failed; the message will be redelivered after ack_wait");
                }
            }
        }
    }
}
