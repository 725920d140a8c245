//! Background work of the pricing service: retrying held reports when what they wait for may
//! have arrived, and fetching FX reference rates on a schedule.

use std::sync::Arc;
use std::time::Duration;

use radfin_db::Pool;
use radfin_db::held::{HeldFilter, HeldStatus};
use radfin_service::shutdown::Shutdown;
use tokio::sync::Notify;

use crate::fx_feed::FeedClient;
use crate::pricer::{Pricer, Target};
use crate::reference::ReferenceCache;

/// Delay before a failed reprice of the open months is tried again.
const REPRICE_RETRY: Duration = Duration::from_secs(2);
/// Held reports priced per settle.
const CHUNK: usize = 1000;

/// After each change made through this replica: reprices every current report of the open
/// periods. Every `every` (for changes made elsewhere, and rates that arrived): retries every
/// held report but those held for a closed period, which only a rerun applies.
pub async fn run(
    pricer: Arc<Pricer>,
    changed: Arc<Notify>,
    every: Duration,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    // A reprice that failed is tried again soon, not only at the next change.
    let mut reprice_pending = false;
    loop {
        let wait = if reprice_pending { REPRICE_RETRY } else { every };
        let reprice = tokio::select! {
            () = changed.notified() => true,
            () = tokio::time::sleep(wait) => reprice_pending,
            () = shutdown.requested() => return Ok(()),
        };
        if reprice {
            reprice_pending = false;
            if let Err(e) = reprice_open(&pricer).await {
                tracing::warn!(error = %format!("{e:#}"), "repricing the open months failed; will try again");
                reprice_pending = true;
            }
        }
        if let Err(e) = retry_held(&pricer).await {
            tracing::warn!(error = %format!("{e:#}"), "retrying held reports failed; will try again");
        }
    }
}

/// Prices every current report of the open periods again with the reference data as it is now
/// (the ledger applies only what changed). Work proportional to the open months, once per change.
async fn reprice_open(pricer: &Pricer) -> anyhow::Result<()> {
    pricer.reference.invalidate().await;
    let periods = {
        let mut conn = pricer.pool.get().await?;
        radfin_db::live::open_periods(&mut conn).await?
    };
    for period in periods {
        let reports = {
            let mut conn = pricer.pool.get().await?;
            radfin_db::reports::current_of_period(&mut conn, period).await?
        };
        let targets: Vec<Target> = reports
            .into_iter()
            .map(|e| Target {
                client_id: e.client_id,
                provider_id: e.provider_id,
                period,
                report_id: e.report_id,
                revision: e.revision,
            })
            .collect();
        for chunk in targets.chunks(CHUNK) {
            pricer.settle(chunk).await?;
        }
        tracing::info!(%period, reports = targets.len(), "open month repriced");
    }
    Ok(())
}

async fn retry_held(pricer: &Pricer) -> anyhow::Result<()> {
    let held = {
        let mut conn = pricer.pool.get().await?;
        radfin_db::held::current(&mut conn, &HeldFilter::default()).await?
    };
    let targets: Vec<Target> = held
        .into_iter()
        .filter(|h| h.status != HeldStatus::HeldClosedPeriod)
        .map(|h| Target {
            client_id: h.client_id,
            provider_id: h.provider_id,
            period: h.period,
            report_id: h.report_id,
            revision: h.revision,
        })
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    pricer.reference.invalidate().await;
    for chunk in targets.chunks(CHUNK) {
        let settled = pricer.settle(chunk).await?;
        tracing::info!(
            retried = chunk.len(),
            priced = settled.priced,
            still_held = settled.held,
            "held reports retried"
        );
    }
    Ok(())
}

/// Samples the currently held report revisions per reason every
/// [`radfin_service::metrics::SAMPLE_INTERVAL`] until `shutdown`: the gauge
/// `radfin_held_reports{reason}`, every reason present (0 when none is held for it). The count
/// is the database's, so every replica reports the same.
pub async fn sample_held(pool: Pool, shutdown: Shutdown) -> anyhow::Result<()> {
    radfin_service::metrics::sample_every(shutdown, || async {
        let sampled = async {
            let mut conn = pool.get().await.map_err(radfin_db::StorageError::from)?;
            radfin_db::timed("held_counts", radfin_db::held::current_counts(&mut conn)).await
        };
        match sampled.await {
            Ok(counts) => {
                for status in HeldStatus::ALL {
                    let held = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
                    metrics::gauge!("radfin_held_reports", "reason" => status.as_str()).set(held as f64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count the held reports"),
        }
    })
    .await
}

/// Fetches reference rates now and then every `interval`; new rates release reports waiting
/// for them.
pub async fn fetch_rates(
    pool: Pool,
    feed: Arc<FeedClient>,
    interval: Duration,
    reference: Arc<ReferenceCache>,
    changed: Arc<Notify>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let sink = |rates: Vec<radfin_domain::fx::FxRate>| {
        let (pool, reference, changed) = (pool.clone(), reference.clone(), changed.clone());
        async move {
            match store_rates(&pool, &rates).await {
                Ok(0) => tracing::debug!("no new fx rates"),
                Ok(n) => {
                    tracing::info!(fetched = rates.len(), inserted = n, "fx rates stored");
                    reference.invalidate().await;
                    changed.notify_one();
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "storing fx rates failed; the next fetch retries"),
            }
        }
    };
    crate::fx_feed::run_schedule(&feed.feed, &feed.client, interval, sink, shutdown).await;
    Ok(())
}

async fn store_rates(pool: &Pool, rates: &[radfin_domain::fx::FxRate]) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    Ok(radfin_db::fx::insert_rates(&mut conn, rates).await?)
}
