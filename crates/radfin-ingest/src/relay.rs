//! The outbox relay: publishes committed reports to NATS, oldest first, and forgets them once
//! the broker has acknowledged them. Several ingest replicas may relay the same row; the
//! `Nats-Msg-Id` makes the second publish a no-op.

use std::sync::Arc;
use std::time::Duration;

use radfin_bus::{Bus, Outgoing};
use radfin_db::Pool;
use radfin_service::shutdown::Shutdown;
use tokio::sync::Notify;

/// Reports published per round trip to the database.
const BATCH: i64 = 500;
/// How long to wait between polls when nothing was committed (other replicas' rows, retries).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Back-off after a failure (database or broker unavailable).
const RETRY_AFTER: Duration = Duration::from_secs(2);

pub async fn run(pool: Pool, bus: Bus, committed: Arc<Notify>, mut shutdown: Shutdown) -> anyhow::Result<()> {
    loop {
        match relay_once(&pool, &bus).await {
            // A full batch: there may be more right away.
            Ok(n) if n as i64 == BATCH => continue,
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

/// Publishes one batch from the outbox; returns how many reports it published.
async fn relay_once(pool: &Pool, bus: &Bus) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    let pending = radfin_db::reports::pending_outbox(&mut conn, BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let outgoing: Vec<Outgoing<_>> = pending
        .iter()
        .map(|(_, event, period)| Outgoing {
            subject: bus.names().report_subject(*period),
            msg_id: radfin_bus::report_msg_id(event.report_id.as_str(), event.revision),
            message: radfin_proto::ingest::v1::ReportEvent::from(event),
        })
        .collect();
    bus.publish_all(&outgoing).await?;
    let published: Vec<i64> = pending.iter().map(|(seq, _, _)| *seq).collect();
    radfin_db::reports::mark_published(&mut conn, &published).await?;
    tracing::debug!(count = published.len(), "reports published");
    Ok(published.len())
}
