//! radfin-service against a real NATS JetStream server (`RADFIN_TEST_NATS_URL`, else
//! `RADFIN_NATS_URL`, else `nats://127.0.0.1:4222`): the consuming loop through outages and bad
//! messages, and the supervision of background tasks. Every test has its own bus prefix. And
//! the auth layer in front of a served stub, auditing in a PostgreSQL test database
//! (`RADFIN_TEST_DATABASE_URL`). And TLS and mutual TLS of a served health service, with
//! certificates made in the test (neither NATS nor PostgreSQL needed).

mod auth;
mod consume;
mod supervise;
mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use radfin_bus::{Bus, BusConfig};
use radfin_proto::common::v1::{Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::ReportEvent;

/// How long a test waits for an effect before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

fn nats_url() -> String {
    radfin_bus::testing::nats_url()
}

/// A prefix no other test (or test run) uses.
fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos();
    format!("s{}x{}x{}", std::process::id(), nanos % 1_000_000_000_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Logs of the test (`RUST_LOG`), shown for failing tests.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A bus with its streams; consumers made from it deliver a message at most `max_deliver`
/// times and again after `ack_wait` without an ack.
async fn bus(max_deliver: i64, ack_wait: Duration) -> Bus {
    let config = BusConfig {
        url: nats_url(),
        prefix: unique_prefix(),
        connection_name: "radfin-service-tests".to_owned(),
        max_deliver,
        ack_wait,
        ..BusConfig::default()
    };
    let bus = Bus::connect(&config).await.expect("nats with jetstream must be running (RADFIN_NATS_URL)");
    bus.ensure_streams().await.expect("streams");
    bus
}

/// Deletes the bus's streams (and with them their consumers); failures are ignored.
async fn teardown(bus: &Bus) {
    let names = bus.names();
    for stream in [names.reports_stream(), names.priced_stream(), names.dlq_stream()] {
        let _ = bus.jetstream().delete_stream(stream).await;
    }
}

fn report(report_id: &str) -> ReportEvent {
    ReportEvent {
        report_id: report_id.to_owned(),
        revision: 1,
        client_id: "HOSP-001".to_owned(),
        provider_id: "RAD-007".to_owned(),
        modality: Modality::Mri as i32,
        body_regions: 2,
        priority: Priority::Stat as i32,
        finalized_at: "2026-01-20T10:00:00Z".to_owned(),
        status: ReportStatus::Final as i32,
    }
}

/// Publishes report events `ids` to January's subject.
async fn publish(bus: &Bus, ids: &[String]) {
    let subject = bus.names().report_subject("2026-01".parse().expect("period"));
    for id in ids {
        bus.publish(&subject, &radfin_bus::report_msg_id(id, 1), &report(id)).await.expect("publish");
    }
}

/// Polls `f` until it yields `Some`, for at most [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
