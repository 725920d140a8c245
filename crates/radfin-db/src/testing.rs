//! Throw-away databases for tests (feature `testing`): each [`TestDb`] is a freshly created and
//! migrated database of its own, so tests run in parallel and leave nothing behind.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;

use crate::{MIGRATIONS, Pool, StorageError};

/// Environment variable with the URL of a database the tests may create databases from.
pub const ADMIN_URL_ENV: &str = "RADFIN_TEST_DATABASE_URL";

/// The admin URL when [`ADMIN_URL_ENV`] is not set: the local PostgreSQL's superuser.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connections of a test database's pool.
pub const TEST_POOL_SIZE: usize = 4;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A uniquely named database, migrated, dropped (best-effort) when the value is dropped.
pub struct TestDb {
    name: String,
    admin_url: String,
    url: String,
    pool: Pool,
}

impl TestDb {
    /// Creates and migrates `radfin_t_<pid>_<counter>_<nanos>` on the server of the admin URL.
    pub async fn create() -> Result<TestDb, StorageError> {
        Self::create_on(admin_url()).await
    }

    /// Like [`TestDb::create`], on the server of `admin_url` (a superuser's URL), e.g. a
    /// private server a test stops and starts.
    pub async fn create_on(admin_url: String) -> Result<TestDb, StorageError> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("radfin_t_{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut admin = AsyncPgConnection::establish(&admin_url).await?;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await?;
        let url = with_database(&admin_url, &name);
        let pool = match crate::pool(&url, TEST_POOL_SIZE).await {
            Ok(pool) => pool,
            Err(e) => {
                drop_database(&admin_url, &name);
                return Err(e);
            }
        };
        // From here on, dropping `db` (as `?` does on failure) drops the database.
        let db = TestDb { name, admin_url, url, pool };
        crate::migrate(&db.url).await?;
        Ok(db)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the database, as the admin user (who owns its tables).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the database as `role` (no password: the test server trusts local logins).
    pub fn url_as(&self, role: &str) -> String {
        with_user(&self.url, role)
    }

    /// A pool of admin connections to the database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs one SQL statement as the admin user, the tables' owner (e.g. to tamper with an
    /// append-only table in a test of what notices it).
    pub async fn execute(&self, sql: &str) -> Result<usize, StorageError> {
        let mut conn = self.pool.get().await?;
        Ok(diesel::sql_query(sql).execute(&mut conn).await?)
    }

    /// A new connection to the database as `role`.
    pub async fn connect_as(&self, role: &str) -> Result<AsyncPgConnection, StorageError> {
        Ok(AsyncPgConnection::establish(&self.url_as(role)).await?)
    }

    /// Reverts every migration (runs each `down.sql`), for tests of the migrations themselves.
    pub async fn revert_all_migrations(&self) -> Result<(), StorageError> {
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)?;
            conn.revert_all_migrations(MIGRATIONS).map_err(|e| StorageError::Migration(e.to_string()))?;
            Ok(())
        })
        .await
        .map_err(|e| StorageError::Migration(format!("revert task did not finish: {e}")))?
    }
}

/// Runs one SQL statement on `db` as `role` (a new connection), with the error translated as
/// the repositories translate theirs: for tests of what a role may and may not do.
pub async fn execute_as(db: &TestDb, role: &str, sql: &str) -> Result<usize, StorageError> {
    let mut conn = db.connect_as(role).await?;
    Ok(diesel::sql_query(sql).execute(&mut conn).await?)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.pool.close();
        drop_database(&self.admin_url, &self.name);
    }
}

/// The admin URL: [`ADMIN_URL_ENV`], else [`DEFAULT_ADMIN_URL`]. The first call of a process
/// checks that something accepts connections there; when nothing does, the process ends at once
/// with one line saying what to run instead, rather than every test failing on its own.
pub fn admin_url() -> String {
    static CHECKED: OnceLock<()> = OnceLock::new();
    let url = std::env::var(ADMIN_URL_ENV).ok().filter(|v| !v.trim().is_empty());
    let url = url.unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned());
    CHECKED.get_or_init(|| require_server("PostgreSQL", ADMIN_URL_ENV, &url, 5432));
    url
}

/// Ends the test process with one line on standard error when nothing accepts TCP connections
/// at the host and port of `url` (`default_port` when it names none). (radfin-bus's `testing`
/// does the same for NATS.)
fn require_server(what: &str, env: &str, url: &str, default_port: u16) {
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;

    let Some(authority) = authority(url, default_port) else { return };
    let reachable = authority
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()));
    if let Ok(true) = reachable {
        return;
    }
    let why = match reachable {
        Err(e) => e.to_string(),
        Ok(_) => "nothing accepts connections".to_owned(),
    };
    let line = format!(
        "error: the tests need {what} at {authority} ({why}): run `cargo xtask test`, which starts PostgreSQL and \
         NATS and runs them, or set {env} to a running server\n"
    );
    // Past the test harness's capture of `eprintln!`, which would swallow it on exit.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    std::process::exit(2);
}

/// `host:port` of a URL (no user, no password).
fn authority(url: &str, default_port: u16) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_port = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, h)| h);
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].contains(':'),
        None => host_port.contains(':'),
    };
    Some(if has_port { host_port.to_owned() } else { format!("{host_port}:{default_port}") })
}

/// `DROP DATABASE … WITH (FORCE)` on a thread of its own (with its own runtime, as this may run
/// inside the test's runtime, which cannot be blocked on). Best-effort: failures are logged.
fn drop_database(admin_url: &str, name: &str) {
    let admin_url = admin_url.to_owned();
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let dropped = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut admin = AsyncPgConnection::establish(&admin_url).await.map_err(|e| e.to_string())?;
            diesel::sql_query(sql).execute(&mut admin).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    })
    .join();
    match dropped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(database = name, error = %e, "could not drop test database"),
        Err(_) => tracing::warn!(database = name, "dropping the test database panicked"),
    }
}

/// `url` with its database (path) replaced.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority_start..].find('/') {
        Some(slash) => &head[..authority_start + slash],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// `url` with its user (and password) replaced by `user`.
fn with_user(url: &str, user: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{}{user}@{host}", &url[..authority_start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_user("postgres://postgres@127.0.0.1:5432/t", "radfin_ingest"),
            "postgres://radfin_ingest@127.0.0.1:5432/t"
        );
        assert_eq!(with_user("postgres://u:p@h/db?a=b", "r"), "postgres://r@h/db?a=b");
        assert_eq!(with_user("postgres://h:5432/db", "r"), "postgres://r@h:5432/db");
        assert_eq!(authority("postgres://u:p@127.0.0.1:5433/db", 5432).as_deref(), Some("127.0.0.1:5433"));
        assert_eq!(authority("postgres://u@db.local/db?a=b", 5432).as_deref(), Some("db.local:5432"));
        assert_eq!(authority("postgres://[::1]/db", 5432).as_deref(), Some("[::1]:5432"));
    }
}
