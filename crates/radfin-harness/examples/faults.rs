//! The fault suite at full size (issue 10): every case but 11 (fuzzing, which xtask runs), each on
//! services of its own (a private database and bus prefix), then their table: 1 and 5
//! (submissions), 7 and 8 (a close and a rerun racing), 9 and 10 (poison messages, hostile input)
//! with the services in this process; 2, 3, 4 and 12 (processes killed: services, nats-server,
//! PostgreSQL, a NATS cluster with service replicas) with each service a `radfin-service` process.
//!
//! `cargo xtask faults [--reports N]` runs it against local PostgreSQL and NATS (started if none
//! run). The environment: `RADFIN_FAULTS_REPORTS` (case 1's reports, default 10,000),
//! `RADFIN_TEST_DATABASE_URL` and `RADFIN_TEST_NATS_URL` (as for the tests), `RADFIN_FAULTS_OUT`
//! (where the table is written as `faults.md`, default `target/faults`), `RADFIN_SERVICE_BIN`
//! (the services' binary, see [`service_binary`]). Exits non-zero when a
//! case fails, after printing why.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use radfin_harness::faults::{CaseResult, cases, hostile, kills, races, table};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry =
        std::env::var("RUST_LOG").is_ok().then(|| radfin_service::telemetry::init("faults")).transpose()?;
    let reports = match std::env::var("RADFIN_FAULTS_REPORTS") {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("RADFIN_FAULTS_REPORTS={v:?}: expected a positive count"))?,
        Err(_) => 10_000,
    };
    // Settling time grows with the month: a generous bound, not a target.
    let patience = Duration::from_secs(120 + reports as u64 / 50);
    let binary = service_binary()?;
    let mut results = Vec::new();
    let mut record = |result: CaseResult| {
        println!("{}", result.row());
        results.push(result);
    };
    record(cases::triple_submission(reports, patience).await);
    record(kills::kill_services(binary.clone(), reports, patience).await);
    record(kills::kill_nats(binary.clone(), reports, patience).await);
    record(kills::restart_postgres(binary.clone(), reports, patience).await);
    record(cases::identical_submissions(Duration::from_secs(60)).await);
    record(races::close_races(races::CLOSE_TRIALS, Duration::from_secs(120)).await);
    record(races::rerun_applied_twice(60, Duration::from_secs(120)).await);
    // Case 9's month: a fifth of case 1's, with a poison message per 50 report events.
    record(hostile::poison_messages((reports / 5).max(100), patience).await);
    record(hostile::hostile_input(Duration::from_secs(60)).await);
    record(kills::scale_out(binary, reports, patience).await);
    let table = table(&results);
    println!("\n{table}");
    for r in results.iter().filter(|r| !r.passed()) {
        eprint!("{}", r.explain());
    }
    let out = std::env::var_os("RADFIN_FAULTS_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/faults"));
    std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("faults.md"), &table))
        .with_context(|| format!("cannot write {}", out.join("faults.md").display()))?;
    let failed = results.iter().filter(|r| !r.passed()).count();
    anyhow::ensure!(failed == 0, "{failed} of {} fault cases failed", results.len());
    Ok(())
}

/// The `radfin-service` binary the process cases run: `RADFIN_SERVICE_BIN` (`cargo xtask faults`
/// builds it and sets it), else the one beside this example's directory (`target/<profile>/`).
fn service_binary() -> anyhow::Result<PathBuf> {
    let binary = match std::env::var_os("RADFIN_SERVICE_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe()?;
            let profile_dir = exe.parent().and_then(|examples| examples.parent()).context("no target directory")?;
            profile_dir.join("radfin-service")
        }
    };
    anyhow::ensure!(
        binary.is_file(),
        "{} does not exist: build it with `cargo build -p radfin-harness --bin radfin-service` (`cargo xtask faults` does)",
        binary.display()
    );
    Ok(binary)
}
