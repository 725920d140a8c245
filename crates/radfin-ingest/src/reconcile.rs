//! The reconciler (spec §6, "nothing acknowledged goes missing"): nats-server may lose a message
//! it acknowledged, so every pass compares the stored reports with what the ledger recorded and
//! republishes each current revision (the highest of its report) that was received more than
//! the grace time ago, has left the outbox (was published), and has no `ledger_facts` row (the
//! ledger records one for every priced, held or superseded revision it applied).
//!
//! A republished report goes to the same subject with the same payload as the relay's, under
//! the message id `<report_id>:<revision>:reconcile:<unix seconds of the pass>`, so the
//! stream's de-duplication of the first publish does not swallow it (downstream is idempotent),
//! while replicas reconciling in the same second publish it once.
//!
//! Passes are incremental: the reconciler remembers up to which `seq` every stored revision was
//! settled (superseded, or with a fact: both permanent), and examines only the later ones, so a
//! pass costs what arrived since (and what is still unsettled), not the whole table. Revisions
//! received in the last [`WATERMARK_LAG`] are never counted as settled, so that a transaction
//! still in flight (whose rows may have lower `seq`s than committed ones) is not skipped; and
//! once every [`FULL_PASS_EVERY`] a pass examines every stored revision again.
//!
//! A pass is put off while a durable consumer of the reports or priced stream still has
//! messages to deliver or unacknowledged: a report may then merely be on its way, and
//! republishing a backlog would only grow it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use radfin_bus::{Bus, Outgoing};
use radfin_db::Pool;
use radfin_service::shutdown::Shutdown;
use tokio_stream::StreamExt;

/// Reports examined per query, and republished per round of publishes.
pub const PAGE_SIZE: i64 = 10_000;
/// Revisions received this recently are examined by every pass (far longer than any
/// transaction that stores reports).
pub const WATERMARK_LAG: Duration = Duration::from_secs(10 * 60);
/// How often a pass examines every stored revision, not only those after the watermark.
pub const FULL_PASS_EVERY: Duration = Duration::from_secs(60 * 60);

/// What the reconciler has done since the service started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Passes that compared the stored reports with the ledger's record.
    pub passes: u64,
    /// Passes put off because the pipeline had a backlog.
    pub deferred_passes: u64,
    pub found_total: u64,
    pub republished_total: u64,
    pub last_pass_found: u64,
    pub last_pass_republished: u64,
    /// When the last pass (not put off) ended.
    pub last_pass_at: Option<DateTime<Utc>>,
    pub last_pass_duration: Duration,
    /// Why the last pass failed.
    pub last_error: Option<String>,
    /// Every stored revision up to this `seq` was found settled; passes examine later ones.
    pub settled_through: i64,
    /// When the last pass that examined every stored revision began (its `now`).
    pub last_full_pass_at: Option<DateTime<Utc>>,
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Put off: the pipeline still has work (the reason names the consumer).
    Deferred { reason: String },
    /// Compared and republished what was missing.
    Ran { found: u64, republished: u64 },
}

/// Why a pass failed; the next one tries again.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Storage(#[from] radfin_db::StorageError),
    #[error(transparent)]
    Bus(#[from] radfin_bus::BusError),
    #[error("cannot inspect the consumers of {stream}: {message}")]
    Consumers { stream: String, message: String },
}

pub struct Reconciler {
    pool: Pool,
    bus: Bus,
    interval: Duration,
    grace: Duration,
    status: Mutex<Status>,
}

impl Reconciler {
    pub fn new(pool: Pool, bus: Bus, interval: Duration, grace: Duration) -> Self {
        Self { pool, bus, interval, grace, status: Mutex::new(Status::default()) }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        match self.status.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A pass now, then one every interval, until `shutdown`.
    pub async fn run(self: std::sync::Arc<Self>, mut shutdown: Shutdown) -> anyhow::Result<()> {
        loop {
            // Failures are logged and counted by the pass; the next one tries again. A pass
            // (a long anti-join on a big store) is abandoned on shutdown: it only reads and
            // republishes, so a cut pass loses nothing.
            let pass_shutdown = shutdown.clone();
            tokio::select! {
                _ = self.pass(Utc::now(), &pass_shutdown) => {}
                () = shutdown.requested() => return Ok(()),
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = shutdown.requested() => return Ok(()),
            }
        }
    }

    /// One pass as of `now`: unless the pipeline has a backlog, finds every current revision
    /// received before `now - grace` that is neither in the outbox nor in the ledger's facts,
    /// and republishes it. Updates the status (a failed pass keeps what it counted before
    /// failing). Stops between pages once `shutdown` is requested.
    pub async fn pass(&self, now: DateTime<Utc>, shutdown: &Shutdown) -> Result<Pass, ReconcileError> {
        let started = Instant::now();
        match self.backlog().await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                tracing::debug!(%reason, "reconciliation put off");
                self.update(|s| s.deferred_passes += 1);
                metrics::counter!("radfin_reconciler_passes_total", "outcome" => "deferred").increment(1);
                return Ok(Pass::Deferred { reason });
            }
            Err(e) => {
                self.finish(0, 0, started, Some(&e));
                return Err(e);
            }
        }
        let status = self.status();
        let full = status.last_full_pass_at.is_none_or(|at| now - at >= chrono_duration(FULL_PASS_EVERY));
        let from = if full { 0 } else { status.settled_through };
        let (mut found, mut republished) = (0, 0);
        let mut result = self.republish_missing(now, from, shutdown, &mut found, &mut republished).await;
        if result.is_ok() {
            // Settled from the watermark on (a full pass re-examined what is below it).
            let horizon = now - chrono_duration(WATERMARK_LAG.max(self.grace));
            result = self.advance_watermark(status.settled_through, horizon, full, now).await;
        }
        self.finish(found, republished, started, result.as_ref().err());
        result.map(|()| Pass::Ran { found, republished })
    }

    async fn advance_watermark(
        &self,
        settled_through: i64,
        horizon: DateTime<Utc>,
        full: bool,
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        let mut conn = self.pool.get().await.map_err(radfin_db::StorageError::from)?;
        let settled = radfin_db::reports::settled_through(&mut conn, settled_through, horizon).await?;
        self.update(|s| {
            s.settled_through = s.settled_through.max(settled);
            if full {
                s.last_full_pass_at = Some(now);
            }
        });
        Ok(())
    }

    fn finish(&self, found: u64, republished: u64, started: Instant, error: Option<&ReconcileError>) {
        let outcome = if error.is_some() { "failed" } else { "ok" };
        metrics::counter!("radfin_reconciler_passes_total", "outcome" => outcome).increment(1);
        metrics::counter!("radfin_reconciler_findings_total").increment(found);
        metrics::counter!("radfin_reconciler_republished_total").increment(republished);
        match error {
            Some(e) => tracing::warn!(error = %e, found, republished, "reconciliation pass failed"),
            None if found > 0 => tracing::warn!(
                found,
                republished,
                "reports stored but missing from the ledger were republished (the broker lost them)"
            ),
            None => tracing::debug!("reconciliation pass found nothing missing"),
        }
        self.update(|s| {
            s.passes += 1;
            s.found_total += found;
            s.republished_total += republished;
            s.last_pass_found = found;
            s.last_pass_republished = republished;
            s.last_pass_at = Some(Utc::now());
            s.last_pass_duration = started.elapsed();
            s.last_error = error.map(ToString::to_string);
        });
    }

    async fn republish_missing(
        &self,
        now: DateTime<Utc>,
        from_seq: i64,
        shutdown: &Shutdown,
        found: &mut u64,
        republished: &mut u64,
    ) -> Result<(), ReconcileError> {
        let received_before = now - chrono_duration(self.grace);
        let stamp = now.timestamp();
        let mut after_seq = from_seq;
        while !shutdown.is_requested() {
            let missing = {
                let mut conn = self.pool.get().await.map_err(radfin_db::StorageError::from)?;
                radfin_db::reports::missing_from_ledger(&mut conn, received_before, after_seq, PAGE_SIZE).await?
            };
            let Some(last) = missing.last() else { break };
            after_seq = last.seq;
            *found += missing.len() as u64;
            let outgoing: Vec<Outgoing<_>> = missing
                .iter()
                .map(|stored| {
                    let event = &stored.event;
                    Outgoing {
                        subject: self.bus.names().report_subject(stored.period),
                        msg_id: format!(
                            "{}:reconcile:{stamp}",
                            radfin_bus::report_msg_id(event.report_id.as_str(), event.revision)
                        ),
                        message: radfin_proto::ingest::v1::ReportEvent::from(event),
                    }
                })
                .collect();
            for m in outgoing.iter().take(10) {
                tracing::info!(msg_id = %m.msg_id, subject = %m.subject, "republishing a report missing from the ledger");
            }
            self.bus.publish_all(&outgoing).await?;
            *republished += outgoing.len() as u64;
            if (missing.len() as i64) < PAGE_SIZE {
                break;
            }
        }
        Ok(())
    }

    /// Why reconciling now would be premature: a durable consumer of the reports or priced
    /// stream with messages still to deliver or unacknowledged.
    async fn backlog(&self) -> Result<Option<String>, ReconcileError> {
        let names = self.bus.names();
        for stream_name in [names.reports_stream(), names.priced_stream()] {
            let error = |e: &dyn std::fmt::Display| ReconcileError::Consumers {
                stream: stream_name.to_owned(),
                message: e.to_string(),
            };
            let stream = self.bus.jetstream().get_stream(stream_name).await.map_err(|e| error(&e))?;
            let mut consumers = stream.consumers();
            while let Some(info) = consumers.next().await {
                let info = info.map_err(|e| error(&e))?;
                if info.config.durable_name.is_none() {
                    continue;
                }
                if info.num_pending > 0 || info.num_ack_pending > 0 {
                    return Ok(Some(format!(
                        "consumer {} of {stream_name} has {} messages to deliver and {} unacknowledged",
                        info.name, info.num_pending, info.num_ack_pending
                    )));
                }
            }
        }
        Ok(None)
    }
}

/// A configured duration as chrono's (saturating at about 292 years).
fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365 * 100))
}
