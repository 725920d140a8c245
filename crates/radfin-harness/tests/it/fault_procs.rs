//! The fault suite's process cases at quick sizes (issue 10, cases 2, 3, 4 and 12; `cargo xtask
//! faults` runs them at full size): the services run as `radfin-service` processes that the case
//! kills, and nats-server or PostgreSQL are the case's own, killed or stopped mid-stream.

use std::path::PathBuf;
use std::time::Duration;

use radfin_harness::faults::{CaseResult, kills, table};

/// The services' binary, built by cargo for these tests (never a stale one).
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_radfin-service"))
}

const REPORTS: usize = 600;
const PATIENCE: Duration = Duration::from_secs(120);

fn assert_passed(result: &CaseResult) {
    println!("{}", table(std::slice::from_ref(result)));
    assert!(result.passed(), "{}", result.explain());
    let v = &result.verdict;
    assert!(v.acknowledged >= REPORTS && v.client_months > 0, "{v:?}");
    assert_eq!((v.missing, v.duplicated, v.misstated), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_2_the_ledger_and_pricing_killed_mid_stream_lose_and_double_nothing() {
    assert_passed(&kills::kill_services(binary(), REPORTS, PATIENCE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_3_nats_server_killed_after_acknowledging_loses_no_acknowledged_report() {
    assert_passed(&kills::kill_nats(binary(), REPORTS, PATIENCE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_4_postgresql_restarted_mid_stream_loses_doubles_and_dead_letters_nothing() {
    assert_passed(&kills::restart_postgres(binary(), REPORTS, PATIENCE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_12_a_nats_cluster_and_service_replicas_with_one_of_each_killed_keep_the_month_exact() {
    assert_passed(&kills::scale_out(binary(), REPORTS, PATIENCE).await);
}
