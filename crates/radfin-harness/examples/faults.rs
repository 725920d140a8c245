//! The fault suite at full size (issue 10): the cases built so far, each on services of its own
//! (in this process, against a private database and bus prefix), then their table.
//!
//! `cargo xtask faults [--reports N]` runs it against local PostgreSQL and NATS (started if none
//! run). The environment: `RADFIN_FAULTS_REPORTS` (case 1's reports, default 10,000),
//! `RADFIN_TEST_DATABASE_URL` and `RADFIN_TEST_NATS_URL` (as for the tests), `RADFIN_FAULTS_OUT`
//! (where the table is written as `faults.md`, default `target/faults`). Exits non-zero when a
//! case fails, after printing why.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use radfin_harness::faults::{cases, table};

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
    let mut results = Vec::new();
    results.push(cases::triple_submission(reports, patience).await);
    println!("{}", results[0].row());
    results.push(cases::identical_submissions(Duration::from_secs(60)).await);
    println!("{}", results[1].row());
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
