//! The consuming loop every service's bus consumer runs: fetch a batch, decode it (what cannot
//! be decoded is dead-lettered with the reason, at once), hand it to the service, and only when
//! the service has made its effects durable acknowledge the batch.
//!
//! A failed batch is never nak'ed: how it is retried depends on whether the failure is
//! retryable ([`is_retryable`]).
//!
//! - **Retryable** (the database or the broker is unreachable, a pool timeout, a serialization
//!   failure, a handler's [`Transient`]): the batch stays in hand and the handler runs again in
//!   process, after an exponential, jittered backoff ([`Batching::retry_delay`] doubling up to
//!   [`MAX_RETRY_DELAY`]), for as long as it takes. In-progress acks keep the server from
//!   delivering the messages again meanwhile, so an outage never counts against a message's
//!   delivery attempts and never dead-letters it. A shutdown during the wait leaves the
//!   messages unacknowledged (they are delivered again after `ack_wait`).
//! - **Permanent** (anything else): the batch is split in halves and the handler runs on each,
//!   recursively, so that only the messages that fail on their own are dead-lettered, with the
//!   failure as their reason, and every other message of the batch is handled and acked.
//!
//! Handlers must therefore be idempotent (a message may be handled again, alone or with others)
//! and may be called with any subset of a batch, in the batch's order.
//!
//! Each consumer reports its batches (size, time to settle), acks, redeliveries, dead letters
//! and lag as Prometheus metrics labelled with its name ([`crate::metrics`]).

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::future::join_all;
use opentelemetry::trace::TraceContextExt as _;
use radfin_bus::{Bus, BusError, Consumer, Delivery};
use radfin_db::StorageError;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics;
use crate::shutdown::Shutdown;

/// Longest wait between two attempts at a batch that failed with a retryable error (jitter adds
/// up to as much again), and between two fetches that failed.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// How a consumer takes its messages.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most messages handled together.
    pub max: usize,
    /// How long a fetch waits for the batch to fill.
    pub wait: Duration,
    /// First wait before a batch that failed with a retryable error is handled again (in
    /// process, the messages kept in hand); doubled per attempt up to [`MAX_RETRY_DELAY`]. Also
    /// the first wait after a failed fetch.
    pub retry_delay: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Self { max: 500, wait: Duration::from_millis(200), retry_delay: Duration::from_secs(2) }
    }
}

/// Marks a handler's error as transient: the batch is handled again after a backoff, in
/// process, however long it takes, and never dead-lettered for it. For failures the handler
/// knows to be temporary that [`is_retryable`] cannot recognize by type, such as an
/// optimistic-concurrency conflict:
///
/// ```
/// use anyhow::Context as _;
/// use radfin_service::consume::{self, Transient};
///
/// fn book() -> anyhow::Result<()> {
///     // As a context of an error…
///     Err(anyhow::anyhow!("client month changed concurrently")).context(Transient)?;
///     // …or wrapping one.
///     Err(consume::transient(anyhow::anyhow!("client month changed concurrently")))
/// }
/// let e = book().unwrap_err();
/// assert!(consume::is_retryable(&e));
/// assert_eq!(format!("{e:#}"), "transient failure: client month changed concurrently");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transient;

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("transient failure")
    }
}

impl std::error::Error for Transient {}

/// `error` marked [`Transient`].
pub fn transient(error: impl Into<anyhow::Error>) -> anyhow::Error {
    error.into().context(Transient)
}

/// Whether handling again later may succeed. Walks the error's chain, outermost first, and
/// answers for the first cause it knows: a [`Transient`] marker (anywhere) is retryable; a
/// [`StorageError`] (or the diesel or pool error it translates) and a [`BusError`] answer with
/// their own `is_retryable()`. Anything else is permanent.
pub fn is_retryable(error: &anyhow::Error) -> bool {
    // Contexts (`.context(Transient)`) are found by anyhow's downcast, not by the chain.
    if error.downcast_ref::<Transient>().is_some() {
        return true;
    }
    for cause in error.chain() {
        if cause.is::<Transient>() {
            return true;
        }
        if let Some(retryable) = StorageError::classify_retryable(cause) {
            return retryable;
        }
        if let Some(e) = cause.downcast_ref::<BusError>() {
            return e.is_retryable();
        }
    }
    false
}

/// Whether the loop goes on or stops (shutdown requested while waiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Runs until `shutdown`; the handler call in progress when it is requested is finished first,
/// a wait before a retry is not.
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
    let consuming = Consuming {
        name,
        bus,
        batching,
        keep_alive: keep_alive_interval(consumer.ack_wait()),
        shutdown: shutdown.clone(),
    };
    // The consumer's counters start at 0, so they are scraped before anything happens.
    ::metrics::counter!(metrics::CONSUMER_ACKED, "consumer" => name).increment(0);
    ::metrics::counter!(metrics::CONSUMER_REDELIVERIES, "consumer" => name).increment(0);
    for kind in ["undecodable", "permanent"] {
        ::metrics::counter!(metrics::DEAD_LETTERS, "consumer" => name, "reason" => kind).increment(0);
    }
    let mut fetch_backoff = None;
    let mut backlog_due = tokio::time::Instant::now();
    loop {
        if backlog_due <= tokio::time::Instant::now() {
            backlog_due = tokio::time::Instant::now() + metrics::SAMPLE_INTERVAL;
            // A consumer deleted on the server is never coming back by itself: the task fails, so
            // the service turns NOT_SERVING and exits, and its restart creates the consumer anew.
            if let Err(gone @ radfin_bus::BusError::ConsumerGone { .. }) = record_backlog(name, consumer).await {
                return Err(gone.into());
            }
        }
        let fetched = tokio::select! {
            fetched = consumer.fetch(batching.max, batching.wait) => fetched,
            () = shutdown.requested() => return Ok(()),
        };
        let deliveries = match fetched {
            Ok(d) => {
                fetch_backoff = None;
                d
            }
            Err(e) => {
                let delay = next_delay(&mut fetch_backoff, batching);
                tracing::warn!(consumer = name, error = %e, retry_in_ms = delay.as_millis(), "fetch failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = shutdown.requested() => return Ok(()),
                }
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        ::metrics::histogram!(metrics::CONSUMER_BATCH_SIZE, "consumer" => name).record(deliveries.len() as f64);
        let redelivered = deliveries.iter().filter(|d| d.delivered() > 1).count();
        if redelivered > 0 {
            ::metrics::counter!(metrics::CONSUMER_REDELIVERIES, "consumer" => name).increment(redelivered as u64);
        }
        let started = std::time::Instant::now();
        let span = batch_span(name, &deliveries);
        if consuming.batch(deliveries, &decode, &mut handle).instrument(span).await == Flow::Stop {
            return Ok(());
        }
        ::metrics::histogram!(metrics::CONSUMER_BATCH_DURATION, "consumer" => name)
            .record(started.elapsed().as_secs_f64());
    }
}

/// The span of handling a batch (everything the handler does is within it): a child of the
/// first message's publisher (the trace context of its headers), so that the trace of a
/// message goes on through the handler's database writes and publishes; linked to the
/// publishers of the batch's other messages that are not of that same span, so that each of
/// their traces leads to it. A batch of messages of one trace (a submitted batch, what one
/// priced batch published) is wholly in that trace.
fn batch_span(name: &'static str, deliveries: &[Delivery]) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        otel.name = %format_args!("{name} process"),
        otel.kind = "consumer",
        consumer = name,
        messages = deliveries.len(),
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.batch.message_count = deliveries.len(),
    );
    let mut publishers =
        deliveries.iter().map(|d| d.parent_context().span().span_context().clone()).filter(|c| c.is_valid());
    let Some(parent) = publishers.next() else {
        return span;
    };
    if let Err(e) = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.clone())) {
        tracing::debug!(error = %e, "no trace context to continue");
    }
    let mut linked = vec![parent.span_id()];
    for publisher in publishers {
        if !linked.contains(&publisher.span_id()) {
            linked.push(publisher.span_id());
            span.add_link(publisher);
        }
    }
    span
}

/// What handling a batch needs besides the service's functions.
struct Consuming<'a> {
    name: &'static str,
    bus: &'a Bus,
    batching: Batching,
    /// How often messages in hand are reported in progress.
    keep_alive: Duration,
    shutdown: Shutdown,
}

impl Consuming<'_> {
    /// Handles a batch until each of its messages is acked or dead-lettered, or shutdown is
    /// requested while waiting to retry.
    async fn batch<T, Fut>(
        &self,
        deliveries: Vec<Delivery>,
        decode: &impl Fn(&Delivery) -> Result<T, String>,
        handle: &mut impl FnMut(Vec<T>) -> Fut,
    ) -> Flow
    where
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let Some((items, decoded)) = self.decode_all(deliveries, decode).await else {
            return Flow::Stop;
        };
        // Parts of the batch still to handle, the next on top; the first is the whole batch,
        // whose items are decoded already (the others are decoded again from their messages).
        let mut first = Some(items);
        let mut parts = vec![decoded];
        let mut backoff = None;
        let mut attempt: u32 = 0;
        while let Some(part) = parts.pop() {
            let (items, part) = match first.take() {
                Some(items) => (items, part),
                None => match self.decode_all(part, decode).await {
                    Some(decoded) => decoded,
                    None => return Flow::Stop,
                },
            };
            if items.is_empty() {
                continue;
            }
            let handled = self.keeping_alive(handle(items), &part, &parts).await;
            match handled {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(consumer = self.name, messages = part.len(), attempt, "handled after retrying");
                    }
                    (backoff, attempt) = (None, 0);
                    self.ack(&part).await;
                    ::metrics::counter!(metrics::CONSUMER_ACKED, "consumer" => self.name).increment(part.len() as u64);
                }
                Err(e) if is_retryable(&e) => {
                    attempt += 1;
                    let delay = next_delay(&mut backoff, self.batching);
                    tracing::warn!(
                        consumer = self.name,
                        error = %format!("{e:#}"),
                        messages = part.len(),
                        attempt,
                        retry_in_ms = delay.as_millis(),
                        "handling failed with a retryable error; retrying in process, not counted as a delivery"
                    );
                    if self.wait(delay, &part, &parts).await == Flow::Stop {
                        let left = part.len() + parts.iter().map(Vec::len).sum::<usize>();
                        tracing::info!(
                            consumer = self.name,
                            messages = left,
                            "shutdown while waiting to retry; the messages are delivered again after ack_wait"
                        );
                        return Flow::Stop;
                    }
                    parts.push(part);
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    if let [delivery] = part.as_slice() {
                        tracing::error!(
                            consumer = self.name,
                            subject = delivery.subject(),
                            sequence = delivery.stream_sequence(),
                            %reason,
                            "message failed on its own with a permanent error; dead-lettering it"
                        );
                        if self.dead_letter(delivery, "permanent", &reason, &parts).await == Flow::Stop {
                            return Flow::Stop;
                        }
                    } else {
                        tracing::warn!(
                            consumer = self.name,
                            error = %reason,
                            messages = part.len(),
                            "handling failed with a permanent error; splitting the batch to isolate the failing messages"
                        );
                        let mut left = part;
                        let right = left.split_off(left.len() / 2);
                        parts.push(right);
                        parts.push(left);
                    }
                }
            }
        }
        Flow::Continue
    }

    /// Decodes every delivery: the items and their deliveries. What cannot be decoded is
    /// dead-lettered at once. `None` when shutdown came while a dead letter waited for the broker.
    async fn decode_all<T>(
        &self,
        deliveries: Vec<Delivery>,
        decode: &impl Fn(&Delivery) -> Result<T, String>,
    ) -> Option<(Vec<T>, Vec<Delivery>)> {
        let mut items = Vec::with_capacity(deliveries.len());
        let mut decoded = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match decode(&d) {
                Ok(item) => {
                    items.push(item);
                    decoded.push(d);
                }
                Err(reason) => {
                    tracing::error!(consumer = self.name, subject = d.subject(), %reason, "undecodable message; dead-lettering it");
                    if self.dead_letter(&d, "undecodable", &reason, &[]).await == Flow::Stop {
                        return None;
                    }
                }
            }
        }
        Some((items, decoded))
    }

    /// Acks a handled part. Every consumer's effects are idempotent, so an unconfirmed ack is
    /// enough: a lost one only means a redelivery that changes nothing.
    async fn ack(&self, part: &[Delivery]) {
        for result in join_all(part.iter().map(Delivery::ack_unconfirmed)).await {
            if let Err(e) = result {
                tracing::warn!(consumer = self.name, error = %e, "ack failed; the message will be redelivered");
            }
        }
    }

    /// Dead-letters `delivery`, waiting out a broker outage (with backoff) while keeping it
    /// and `rest` alive, and counts it by `kind` of reason. A dead letter the broker refuses for
    /// good is left to be delivered again.
    async fn dead_letter(&self, delivery: &Delivery, kind: &'static str, reason: &str, rest: &[Vec<Delivery>]) -> Flow {
        let mut backoff = None;
        loop {
            match delivery.dead_letter(self.bus, reason).await {
                Ok(_) => {
                    ::metrics::counter!(metrics::DEAD_LETTERS, "consumer" => self.name, "reason" => kind).increment(1);
                    return Flow::Continue;
                }
                Err(e) if e.is_retryable() => {
                    let delay = next_delay(&mut backoff, self.batching);
                    tracing::warn!(
                        consumer = self.name,
                        error = %e,
                        retry_in_ms = delay.as_millis(),
                        "dead-lettering failed with a retryable error; retrying"
                    );
                    if self.wait(delay, std::slice::from_ref(delivery), rest).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Err(e) => {
                    tracing::error!(
                        consumer = self.name,
                        error = %e,
                        "dead-lettering failed; the message will be delivered again after ack_wait"
                    );
                    return Flow::Continue;
                }
            }
        }
    }

    /// Waits `delay` keeping the messages in hand alive; `Stop` when shutdown is requested first.
    async fn wait(&self, delay: Duration, part: &[Delivery], rest: &[Vec<Delivery>]) -> Flow {
        let mut shutdown = self.shutdown.clone();
        let waited = async {
            tokio::select! {
                () = tokio::time::sleep(delay) => Flow::Continue,
                () = shutdown.requested() => Flow::Stop,
            }
        };
        self.keeping_alive(waited, part, rest).await
    }

    /// Runs `work`, reporting the messages in hand (`part` and `rest`) in progress every
    /// `keep_alive` meanwhile, so that the server does not deliver them again.
    async fn keeping_alive<F: Future>(&self, work: F, part: &[Delivery], rest: &[Vec<Delivery>]) -> F::Output {
        let every = self.keep_alive;
        let keep_alive = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                let in_hand = part.iter().chain(rest.iter().flatten());
                let results = join_all(in_hand.map(Delivery::in_progress)).await;
                if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                    tracing::warn!(consumer = self.name, error = %e, "in-progress ack failed");
                }
            }
        };
        tokio::select! {
            output = work => output,
            () = keep_alive => unreachable!("keeping alive never ends"),
        }
    }
}

/// Sets the consumer's lag gauges from the server's count (a failure is logged, the gauges keep
/// their last values) and passes the failure on.
async fn record_backlog(name: &'static str, consumer: &Consumer) -> Result<(), radfin_bus::BusError> {
    match tokio::time::timeout(Duration::from_secs(2), consumer.backlog()).await {
        Ok(Ok(backlog)) => {
            ::metrics::gauge!(metrics::CONSUMER_LAG, "consumer" => name).set(backlog.pending as f64);
            ::metrics::gauge!(metrics::CONSUMER_ACK_PENDING, "consumer" => name).set(backlog.ack_pending as f64);
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::debug!(consumer = name, error = %e, "cannot read the consumer's backlog");
            Err(e)
        }
        Err(_) => {
            tracing::debug!(consumer = name, "reading the consumer's backlog timed out");
            Ok(())
        }
    }
}

/// A third of `ack_wait`: two in-progress acks may be lost before a message is redelivered.
fn keep_alive_interval(ack_wait: Duration) -> Duration {
    (ack_wait / 3).max(Duration::from_millis(50))
}

/// The next wait of `backoff`, started anew when it is `None`.
fn next_delay(backoff: &mut Option<ExponentialBackoff>, batching: Batching) -> Duration {
    let max = MAX_RETRY_DELAY.max(batching.retry_delay);
    backoff
        .get_or_insert_with(|| {
            ExponentialBuilder::default()
                .with_min_delay(batching.retry_delay)
                .with_max_delay(max)
                .with_jitter()
                .without_max_times()
                .build()
        })
        .next()
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn retryability_is_read_from_the_error_chain() {
        let outage = anyhow::Error::new(StorageError::Retryable { message: "could not serialize".into() });
        assert!(is_retryable(&outage));
        assert!(is_retryable(&outage.context("appending ledger entries").context("batch of 3")));

        let corrupt = anyhow::Error::new(StorageError::Corrupt("bad rule".into())).context("pricing");
        assert!(!is_retryable(&corrupt));
        assert!(!is_retryable(&anyhow::anyhow!("report R-1 has no price")));

        let conflict = transient(anyhow::anyhow!("client month booked concurrently"));
        assert!(is_retryable(&conflict));
        assert!(is_retryable(&conflict.context("ledger")));
        let marked: anyhow::Result<()> = Err(std::io::Error::other("stale version")).context(Transient);
        assert!(is_retryable(&marked.unwrap_err()));

        let bus = anyhow::Error::new(BusError::InvalidConfig("prefix".into()));
        assert!(!is_retryable(&bus));
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let batching = Batching { retry_delay: Duration::from_millis(100), ..Batching::default() };
        let mut backoff = None;
        let delays: Vec<Duration> = (0..12).map(|_| next_delay(&mut backoff, batching)).collect();
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= MAX_RETRY_DELAY * 2), "{delays:?}");
        assert!(delays[11] >= MAX_RETRY_DELAY, "{delays:?}");
        assert_eq!(keep_alive_interval(Duration::from_secs(30)), Duration::from_secs(10));
    }
}
