//! `cargo xtask faults`: the fault suite of issue 10 at full size.
//!
//! The cases live in `radfin_harness::faults` (xtask does not depend on the services); the
//! harness's example `faults` runs them, each on services of its own (in process, or as
//! `radfin-service` processes for the cases that kill them, built here first) against the local
//! PostgreSQL and NATS (started here if none run), and prints the table: case,
//! what was done, reports acknowledged, missing, duplicated, client-months equal / total,
//! pass/fail, seconds. The table is also written to `target/faults/faults.md`. The quick sizes of
//! the same cases run in the test suite (`crates/radfin-harness/tests/it/faults.rs`).
//!
//! Case 11 runs here, after the example: every fuzz target of `fuzz/` for `--fuzz-seconds` each
//! (through [`fuzz::run_targets`], as `cargo xtask fuzz` runs them), one row per target appended
//! to the table: passed when it ran its time without a crash, with the inputs it ran per second.

use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{fuzz, infra};

/// The sanitizer case 11's fuzz targets are built with (as `cargo xtask fuzz` defaults to).
const FUZZ_SANITIZER: &str = "address";

/// Runs the harness's example `faults` (case 1 with `reports` reports), then case 11: every fuzz
/// target for `fuzz_seconds` (none when 0), its rows appended to the table.
pub fn run(sh: &Shell, root: &Path, reports: usize, release: bool, fuzz_seconds: u64) -> anyhow::Result<()> {
    let infra = infra::ensure(root)?;
    let out = root.join("target").join("faults");
    // A table left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(out.join("faults.md"));
    let profile: &[&str] = if release { &["--release"] } else { &[] };
    // The process cases run the services as this binary (built first, so never a stale one).
    cmd!(sh, "cargo build --locked --quiet {profile...} -p radfin-harness --bin radfin-service")
        .run()
        .context("cannot build the services' binary")?;
    let binary = infra::target_dir(root).join(if release { "release" } else { "debug" }).join("radfin-service");
    let ran = cmd!(sh, "cargo run --locked --quiet {profile...} -p radfin-harness --example faults")
        .env("RADFIN_SERVICE_BIN", &binary)
        .env("RADFIN_FAULTS_REPORTS", reports.to_string())
        .env("RADFIN_FAULTS_OUT", &out)
        .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
        .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
        .env("RADFIN_NATS_URL", &infra.nats_url)
        .run();
    let fuzzed = if fuzz_seconds == 0 { Ok(Vec::new()) } else { fuzz_rows(sh, root, fuzz_seconds) };
    let rows = match &fuzzed {
        Ok(rows) => rows.clone(),
        Err(e) => {
            vec![format!("| 11. fuzz targets | did not run: {} | – | – | – | – | FAIL | – |", cell(&format!("{e:#}")))]
        }
    };
    match std::fs::read_to_string(out.join("faults.md")) {
        Ok(mut table) => {
            for row in &rows {
                table.push_str(row);
                table.push('\n');
            }
            std::fs::write(out.join("faults.md"), &table)
                .with_context(|| format!("cannot write {}", out.join("faults.md").display()))?;
            println!("\nFault suite (also in {}):\n\n{}", out.join("faults.md").display(), table.trim_end());
        }
        Err(_) => {
            println!("\nFault suite: no table (the run did not finish)");
            for row in &rows {
                println!("{row}");
            }
        }
    }
    ran.context("the fault suite failed")?;
    let failed = fuzzed?.iter().filter(|r| r.contains("| FAIL |")).count();
    anyhow::ensure!(failed == 0, "{failed} fuzz target(s) crashed or did not build");
    Ok(())
}

/// Case 11: every fuzz target for `seconds`, a table row each.
fn fuzz_rows(sh: &Shell, root: &Path, seconds: u64) -> anyhow::Result<Vec<String>> {
    let runs = fuzz::run_targets(sh, root, seconds, None, FUZZ_SANITIZER, true)?;
    Ok(runs
        .iter()
        .map(|r| {
            let speed = match (r.runs, r.runs_per_second()) {
                (Some(n), Some(per_second)) => format!("{n} inputs, {per_second}/s"),
                _ => "inputs not reported".to_owned(),
            };
            let outcome = match &r.failure {
                None => "no crash".to_owned(),
                Some(why) => cell(why),
            };
            format!(
                "| 11. fuzz `{}` | libFuzzer for {} s (sanitizer {FUZZ_SANITIZER}): {speed}; {outcome} | – | – | – | – | {} | {:.1} |",
                r.target,
                r.seconds,
                if r.failure.is_none() { "pass" } else { "FAIL" },
                r.elapsed.as_secs_f64()
            )
        })
        .collect())
}

/// `s` fit for a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
