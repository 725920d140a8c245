//! The outbox relay: publishes committed reports to NATS, oldest first, and forgets them once
//! the broker has acknowledged them. Several ingest replicas may relay the same row; the
//! `Nats-Msg-Id` makes the second publish a no-op.
//!
//! A report submitted over gRPC is published in the trace of its submission: the API records the
//! trace of each outbox row it writes ([`Traces`]), and the relay publishes the row in a span of
//! that trace, so that the trace goes on to pricing and the ledger. The hand-off is in memory: a
//! row relayed by another replica, or after a restart, is published in a trace of its own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use radfin_bus::{Bus, MAX_IN_FLIGHT, Outgoing};
use radfin_db::Pool;
use radfin_db::reports::InsertOutcome;
use radfin_service::shutdown::Shutdown;
use tokio::sync::Notify;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reports published per round trip to the database.
const BATCH: i64 = 500;
/// How long to wait between polls when nothing was committed (other replicas' rows, retries).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Back-off after a failure (database or broker unavailable).
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long the relay may read past a cursor before it reads the outbox from the start again.
const SWEEP: Duration = Duration::from_secs(5);

/// Most traces kept for rows not yet relayed (the oldest are forgotten first): rows another
/// replica relays are never taken.
const MAX_TRACES: usize = 100_000;

/// The trace context of the submission of each outbox row (by `seq`) not yet relayed.
#[derive(Clone, Debug, Default)]
pub struct Traces(Arc<Mutex<BTreeMap<i64, SpanContext>>>);

impl Traces {
    /// The current span's trace context, when it is part of a trace.
    pub fn current() -> Option<SpanContext> {
        let context = tracing::Span::current().context();
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    /// Records `trace` for the rows `outcomes` inserted (duplicates were queued before).
    pub fn record(&self, trace: Option<&SpanContext>, outcomes: &[InsertOutcome]) {
        let Some(trace) = trace else {
            return;
        };
        let mut traces = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for outcome in outcomes {
            if let InsertOutcome::Inserted { seq } = outcome {
                traces.insert(*seq, trace.clone());
            }
        }
        while traces.len() > MAX_TRACES {
            traces.pop_first();
        }
    }

    fn get(&self, seq: i64) -> Option<SpanContext> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&seq).cloned()
    }

    fn forget(&self, seqs: &[i64]) {
        let mut traces = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for seq in seqs {
            traces.remove(seq);
        }
    }
}

pub async fn run(
    pool: Pool,
    bus: Bus,
    committed: Arc<Notify>,
    traces: Traces,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Where the next read starts: past the last full batch published, so that working through a
    // long outbox does not rescan what it deleted. An entry committed late below it (its `seq`
    // was taken before a higher one that committed first) is found by the next read from 0: when
    // the outbox runs dry above the cursor, and every SWEEP at the latest.
    let (mut after, mut swept) = (0_i64, tokio::time::Instant::now());
    loop {
        if swept.elapsed() >= SWEEP {
            (after, swept) = (0, tokio::time::Instant::now());
        }
        match relay_once(&pool, &bus, &traces, after).await {
            // A full batch: there may be more right away.
            Ok((n, last)) if n as i64 == BATCH => after = last,
            Ok(_) if after > 0 => after = 0,
            Ok(_) if shutdown.is_requested() => return Ok(()),
            Ok(_) => {
                tokio::select! {
                    () = committed.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    () = shutdown.requested() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "relay failed; retrying");
                if shutdown.is_requested() {
                    // What is left stays in the outbox for the next start.
                    return Ok(());
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Publishes one batch of the outbox's entries above `after`; returns how many reports it
/// published and the highest `seq` among them.
async fn relay_once(pool: &Pool, bus: &Bus, traces: &Traces, after: i64) -> anyhow::Result<(usize, i64)> {
    let mut conn = pool.get().await?;
    let pending = radfin_db::timed("outbox_read", radfin_db::reports::pending_outbox(&mut conn, after, BATCH)).await?;
    let Some(&(last, _, _)) = pending.last() else { return Ok((0, after)) };
    let outgoing: Vec<Outgoing<_>> = pending
        .iter()
        .map(|(_, event, period)| Outgoing {
            subject: bus.names().report_subject(*period),
            msg_id: radfin_bus::report_msg_id(event.report_id.as_str(), event.revision),
            message: radfin_proto::ingest::v1::ReportEvent::from(event),
        })
        .collect();
    let published: Vec<i64> = pending.iter().map(|(seq, _, _)| *seq).collect();
    let parents: Vec<Option<SpanContext>> = published.iter().map(|seq| traces.get(*seq)).collect();
    if parents.iter().all(Option::is_none) {
        bus.publish_all(&outgoing).await?;
    } else {
        // As `publish_all`, each message in the trace of its submission.
        for (chunk, parents) in outgoing.chunks(MAX_IN_FLIGHT).zip(parents.chunks(MAX_IN_FLIGHT)) {
            let publishes = chunk.iter().zip(parents).map(|(m, parent)| {
                let span = tracing::info_span!("relay", otel.name = "outbox relay", report = %m.msg_id);
                if let Some(parent) = parent
                    && let Err(e) =
                        span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.clone()))
                {
                    tracing::debug!(error = %e, "no trace context to continue");
                }
                let publish = span.in_scope(|| bus.publish(&m.subject, &m.msg_id, &m.message));
                publish.instrument(span)
            });
            futures::future::try_join_all(publishes).await?;
        }
    }
    radfin_db::timed("outbox_delete", radfin_db::reports::mark_published(&mut conn, &published)).await?;
    traces.forget(&published);
    metrics::counter!("radfin_outbox_published_total").increment(published.len() as u64);
    metrics::histogram!("radfin_outbox_relay_batch_size").record(published.len() as f64);
    tracing::debug!(count = published.len(), "reports published");
    Ok((published.len(), last))
}

/// Samples the outbox every [`radfin_service::metrics::SAMPLE_INTERVAL`] until `shutdown`:
/// `radfin_outbox_depth` (entries not yet published, by every replica) and
/// `radfin_outbox_oldest_age_seconds` (0 when empty).
pub async fn sample_outbox(pool: Pool, shutdown: Shutdown) -> anyhow::Result<()> {
    radfin_service::metrics::sample_every(shutdown, || async {
        let sampled = async {
            let mut conn = pool.get().await.map_err(radfin_db::StorageError::from)?;
            radfin_db::timed("outbox_depth", radfin_db::reports::outbox_depth(&mut conn)).await
        };
        match sampled.await {
            Ok((depth, oldest)) => {
                metrics::gauge!("radfin_outbox_depth").set(depth as f64);
                let age = oldest.map_or(Duration::ZERO, |at| (chrono::Utc::now() - at).to_std().unwrap_or_default());
                metrics::gauge!("radfin_outbox_oldest_age_seconds").set(age.as_secs_f64());
            }
            Err(e) => tracing::warn!(error = %e, "cannot sample the outbox"),
        }
    })
    .await
}
