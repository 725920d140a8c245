//! radfin-ingest's integration tests: the rolling-window sync and the reconciler, against a
//! real PostgreSQL and NATS, each test on databases and a bus prefix of its own.

mod reconcile;
mod sync;

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use radfin_bus::{Bus, BusConfig};
use radfin_db::testing::TestDb;

pub async fn db() -> TestDb {
    TestDb::create().await.expect("a test database (is PostgreSQL running? see RADFIN_TEST_DATABASE_URL)")
}

/// NATS for tests: `RADFIN_TEST_NATS_URL`, else `RADFIN_NATS_URL`, else the local server; checked
/// once ([`radfin_bus::testing::nats_url`]).
pub fn nats_url() -> String {
    radfin_bus::testing::nats_url()
}

/// A bus prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("i{}x{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos)
}

/// A bus on a fresh prefix, its streams created.
pub async fn bus() -> Bus {
    let bus = Bus::connect(&BusConfig { url: nats_url(), prefix: unique_prefix(), ..BusConfig::default() })
        .await
        .expect("NATS (see RADFIN_TEST_NATS_URL)");
    bus.ensure_streams().await.unwrap();
    bus
}

/// Deletes the bus's streams.
pub async fn delete_streams(bus: &Bus) {
    let names = bus.names();
    for stream in [names.reports_stream(), names.priced_stream(), names.dlq_stream()] {
        bus.jetstream().delete_stream(stream).await.unwrap();
    }
}

/// Runs statements (separated by `;`, no parameters) as the connection's role.
pub async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    conn.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The value of a `SELECT count(*) AS n …`.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    let row: Count = diesel::sql_query(sql).get_result(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.n
}
