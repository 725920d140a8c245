//! Reference data pricing looks things up in: parties, rule versions and FX rates, loaded from
//! the database and cached for a short while. A change made through this replica invalidates
//! the cache at once; other replicas' changes are seen within the TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use radfin_db::Pool;
use radfin_domain::Catalog;
use radfin_domain::fx::FxTable;
use tokio::sync::Mutex;

/// Everything pricing needs besides the reports.
pub struct Reference {
    pub catalog: Catalog,
    pub fx: FxTable,
    /// The version of the data: when its newest party, rule version or rate was recorded.
    /// Facts priced from it carry it, and of two facts the ledger keeps the later.
    pub loaded_at: chrono::DateTime<chrono::Utc>,
}

/// The span of rate dates loaded: every rate radfin can have stored.
pub const EARLIEST_RATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
pub const LATEST_RATE: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date");

pub struct ReferenceCache {
    pool: Pool,
    ttl: Duration,
    max_rate_age_days: u32,
    loaded: Mutex<Option<(Instant, Arc<Reference>)>>,
}

impl ReferenceCache {
    pub fn new(pool: Pool, ttl: Duration, max_rate_age_days: u32) -> Self {
        Self { pool, ttl, max_rate_age_days, loaded: Mutex::new(None) }
    }

    /// The current reference data, reloaded when older than the TTL or invalidated.
    pub async fn get(&self) -> anyhow::Result<Arc<Reference>> {
        let mut loaded = self.loaded.lock().await;
        if let Some((at, reference)) = loaded.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(reference.clone());
        }
        let reference = Arc::new(self.load().await?);
        *loaded = Some((Instant::now(), reference.clone()));
        Ok(reference)
    }

    pub async fn invalidate(&self) {
        *self.loaded.lock().await = None;
    }

    async fn load(&self) -> anyhow::Result<Reference> {
        let mut conn = self.pool.get().await?;
        // The data version is read before the data: a change committed in between is then in the
        // data but not in the version (harmless: the next load states it), never the other way
        // round (a version that claims data this load did not see would make the ledger drop
        // the facts priced with that data as stale).
        let loaded_at = radfin_db::rules::reference_version(&mut conn).await?;
        let mut catalog = Catalog::default();
        radfin_db::parties::load_into(&mut conn, &mut catalog).await?;
        radfin_db::rules::load_into(&mut conn, &mut catalog).await?;
        let fx = radfin_db::fx::load(&mut conn, EARLIEST_RATE, LATEST_RATE, self.max_rate_age_days).await?;
        Ok(Reference { catalog, fx, loaded_at })
    }
}
