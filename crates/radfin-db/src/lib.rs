//! radfin's database layer: the embedded migrations, the diesel schema, a `diesel-async` pool,
//! [`StorageError`] (diesel errors translated by SQLSTATE), a serializable transaction with
//! bounded retries, and one repository module per table family.
//!
//! Repositories take a `&mut AsyncPgConnection` and never open a transaction of their own
//! except where a single call must be atomic (then it nests as a savepoint inside the caller's
//! transaction). Bulk paths send multi-row statements, chunked below PostgreSQL's bind limit.
//!
//! Append-only tables are enforced by the database (triggers and privileges, see `migrations/`);
//! nothing here updates or deletes them. The only deletes are of published outbox rows.

pub mod audit;
mod convert;
pub mod documents;
mod error;
pub mod fx;
pub mod held;
pub mod ledger;
pub mod live;
pub mod margin;
pub mod parties;
pub mod reports;
pub mod rules;
pub mod runs;
pub mod schema;
pub mod sync_runs;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use diesel::Connection as _;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AnsiTransactionManager, TransactionManager};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use diesel_async::AsyncPgConnection;
pub use error::{APPEND_ONLY_MARKER, RevisionConflict, StorageError};

/// The migrations of the repository's root `migrations/` folder, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A pool of `diesel-async` PostgreSQL connections (deadpool).
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;

/// A connection checked out of a [`Pool`]; dereferences to [`AsyncPgConnection`].
pub type PooledConnection = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// Connections per service replica unless configured otherwise: the services run on two cores
/// and spend most of a request waiting on PostgreSQL, so a few connections per core keep them
/// busy while many replicas still fit under PostgreSQL's default `max_connections` (100).
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How long a caller waits for a free connection before failing with [`StorageError::Pool`]:
/// long enough to ride out a burst, short enough that an overloaded or unreachable database
/// turns into errors (and back-pressure) instead of an ever-growing queue of waiting requests.
pub const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening a new connection may take (TCP, TLS and authentication).
pub const POOL_CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the health check of a connection being reused (`SELECT 1`) may take before the
/// connection is thrown away and another one is tried.
pub const POOL_RECYCLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Attempts [`transaction_with_retry`] callers use unless they have a reason to differ.
pub const DEFAULT_TRANSACTION_ATTEMPTS: u32 = 5;

/// First backoff after a serialization failure; doubled per attempt up to [`RETRY_MAX_BACKOFF`],
/// with jitter so that transactions that collided do not collide again in lockstep.
pub const RETRY_BASE_BACKOFF: Duration = Duration::from_millis(10);

/// The longest backoff between two attempts of a transaction.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Applies the pending migrations. Idempotent: applied migrations are recorded in
/// `__diesel_schema_migrations` and skipped.
///
/// diesel's migration harness is synchronous; it runs on a blocking thread through
/// `AsyncConnectionWrapper` (pure Rust, no libpq).
pub async fn migrate(database_url: &str) -> Result<(), StorageError> {
    let url = database_url.to_owned();
    let applied = tokio::task::spawn_blocking(move || -> Result<Vec<String>, StorageError> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
    .map_err(|e| StorageError::Migration(format!("migration task did not finish: {e}")))??;
    if applied.is_empty() {
        tracing::debug!("database schema is up to date");
    } else {
        tracing::info!(applied = ?applied, "database migrated");
    }
    Ok(())
}

/// A connection pool of at most `max_size` connections, limited by the `POOL_*` timeouts.
/// Checks out one connection before returning, so a wrong URL or an unreachable database fails
/// here rather than at the first request.
pub async fn pool(database_url: &str, max_size: usize) -> Result<Pool, StorageError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    let pool = Pool::builder(manager)
        .max_size(max_size.max(1))
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(POOL_CREATE_TIMEOUT))
        .recycle_timeout(Some(POOL_RECYCLE_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| StorageError::InvalidConfig(format!("cannot build the connection pool: {e}")))?;
    drop(pool.get().await?);
    Ok(pool)
}

/// Runs `f` in a SERIALIZABLE transaction on a pooled connection, committing when it returns
/// `Ok`, rolling back when it returns `Err`, and running it again (at most `max_attempts` times
/// in all) when the transaction fails with a serialization failure or a deadlock, after a
/// short, jittered, exponential backoff.
///
/// SERIALIZABLE, because the writes that matter (ledger entries, numbering, get-or-create of
/// runs) must behave as if transactions ran one at a time, and PostgreSQL's SSI gives that
/// without explicit locks, at the price of occasional 40001 failures, which are retried here.
/// `f` must therefore be safe to run more than once: it should only touch the database through
/// the connection it is given (effects outside the database are not rolled back).
///
/// ```no_run
/// # async fn example(pool: &radfin_db::Pool, batch: &[radfin_db::reports::NewReport]) -> Result<(), radfin_db::StorageError> {
/// let outcomes = radfin_db::transaction_with_retry(pool, radfin_db::DEFAULT_TRANSACTION_ATTEMPTS, async |conn| {
///     radfin_db::reports::insert_batch(conn, batch).await
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn transaction_with_retry<T, F>(pool: &Pool, max_attempts: u32, f: F) -> Result<T, StorageError>
where
    F: for<'c> TransactionAttempt<'c, T, Fut: Send> + Clone,
{
    named_transaction_with_retry(pool, "transaction", max_attempts, f).await
}

/// [`transaction_with_retry`] recorded under `operation` ([`timed`]): its duration, connection
/// wait and retries included, and each retry (`radfin_db_transaction_retries_total`).
pub async fn named_transaction_with_retry<T, F>(
    pool: &Pool,
    operation: &'static str,
    max_attempts: u32,
    f: F,
) -> Result<T, StorageError>
where
    F: for<'c> TransactionAttempt<'c, T, Fut: Send> + Clone,
{
    timed(operation, async {
        let max_attempts = max_attempts.max(1);
        let mut conn = pool.get().await?;
        let mut attempt = 1;
        loop {
            match serializable(&mut conn, f.clone()).await {
                Err(StorageError::Retryable { message }) if attempt < max_attempts => {
                    let wait = backoff(attempt);
                    tracing::debug!(attempt, max_attempts, wait_ms = wait.as_millis(), %message, "retrying transaction");
                    metrics::counter!("radfin_db_transaction_retries_total", "operation" => operation).increment(1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    })
    .await
}

/// Runs `work`, a database operation, recording how long it took in the histogram
/// `radfin_db_operation_duration_seconds{operation, outcome}` (`outcome` `ok` or `error`).
/// Recorded through the `metrics` facade: nothing when no recorder is installed.
///
/// Within a span (a gRPC call's, a consumed batch's), `work` runs in a child span named
/// `operation` (OpenTelemetry: a client span with `db.system.name` and `db.operation.name`, an
/// error status when it fails), part of the caller's trace. Outside any span (pollers,
/// samplers) it makes none, rather than a trace of one span per poll.
pub async fn timed<T, E>(operation: &'static str, work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    use tracing::Instrument as _;
    let span = if tracing::Span::current().is_none() {
        tracing::Span::none()
    } else {
        tracing::info_span!(
            "db",
            otel.name = operation,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = "postgresql",
            db.operation.name = operation,
        )
    };
    let started = std::time::Instant::now();
    let result = work.instrument(span.clone()).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    if result.is_err() {
        span.record("otel.status_code", "error");
    }
    metrics::histogram!("radfin_db_operation_duration_seconds", "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// What [`transaction_with_retry`] runs: an async closure taking the connection,
/// `async |conn| …` or `async move |conn| …`, whose future is `Send` (so the caller's future is
/// too, as gRPC handlers and spawned tasks need). Implemented for every such closure; naming the
/// future as the closure's `FnOnce` output is what lets the compiler check `Send` without
/// tripping over the higher-ranked lifetimes of async closures that capture references.
/// The closure is cloned for each attempt (an async closure is `Clone` when its captures are,
/// and captured references always are).
pub trait TransactionAttempt<'c, T>:
    AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, StorageError>
    + FnOnce(&'c mut AsyncPgConnection) -> <Self as TransactionAttempt<'c, T>>::Fut
{
    /// The future of one attempt.
    type Fut: Future<Output = Result<T, StorageError>>;
}

impl<'c, T, F, Fut> TransactionAttempt<'c, T> for F
where
    F: AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, StorageError> + FnOnce(&'c mut AsyncPgConnection) -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    type Fut = Fut;
}

/// One attempt: BEGIN ISOLATION LEVEL SERIALIZABLE, `f`, COMMIT or ROLLBACK. Uses diesel-async's
/// transaction manager, so transactions opened inside `f` become savepoints.
async fn serializable<T, F>(conn: &mut AsyncPgConnection, f: F) -> Result<T, StorageError>
where
    F: for<'c> TransactionAttempt<'c, T, Fut: Send>,
{
    AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE").await?;
    match f(conn).await {
        Ok(value) => {
            <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => {
            match <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::rollback_transaction(conn).await {
                Ok(()) => Err(error),
                // The connection is unusable now (the pool discards it). Report what went wrong
                // first, unless that would have the caller retry on this connection.
                Err(rollback) => {
                    tracing::warn!(error = %error, rollback_error = %rollback, "rollback failed");
                    match error {
                        StorageError::Retryable { .. } => Err(rollback.into()),
                        other => Err(other),
                    }
                }
            }
        }
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random.
fn backoff(attempt: u32) -> Duration {
    let exponential = RETRY_BASE_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let delay = u64::try_from(exponential.min(RETRY_MAX_BACKOFF).as_micros()).unwrap_or(u64::MAX);
    let half = delay / 2;
    let random = RandomState::new().build_hasher().finish();
    Duration::from_micros(half + random % (half + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..40 {
            let wait = backoff(attempt);
            let nominal = RETRY_BASE_BACKOFF.saturating_mul(1 << (attempt - 1).min(16)).min(RETRY_MAX_BACKOFF);
            assert!(wait >= nominal / 2 && wait <= nominal, "attempt {attempt}: {wait:?} for {nominal:?}");
        }
    }
}
