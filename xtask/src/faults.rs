//! `cargo xtask faults`: the fault suite of issue 10 at full size.
//!
//! The cases live in `radfin_harness::faults` (xtask does not depend on the services); the
//! harness's example `faults` runs them, each on the services of its own in-process `Stack`
//! against the local PostgreSQL and NATS (started here if none run), and prints the table: case,
//! what was done, reports acknowledged, missing, duplicated, client-months equal / total,
//! pass/fail, seconds. The table is also written to `target/faults/faults.md`. The quick sizes of
//! the same cases run in the test suite (`crates/radfin-harness/tests/it/faults.rs`).

use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::infra;

pub fn run(sh: &Shell, root: &Path, reports: usize, release: bool) -> anyhow::Result<()> {
    let infra = infra::ensure(root)?;
    let out = root.join("target").join("faults");
    // A table left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(out.join("faults.md"));
    let profile: &[&str] = if release { &["--release"] } else { &[] };
    let ran = cmd!(sh, "cargo run --locked --quiet {profile...} -p radfin-harness --example faults")
        .env("RADFIN_FAULTS_REPORTS", reports.to_string())
        .env("RADFIN_FAULTS_OUT", &out)
        .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
        .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
        .env("RADFIN_NATS_URL", &infra.nats_url)
        .run();
    match std::fs::read_to_string(out.join("faults.md")) {
        Ok(table) => println!("\nFault suite (also in {}):\n\n{}", out.join("faults.md").display(), table.trim_end()),
        Err(_) => println!("\nFault suite: no table (the run did not finish)"),
    }
    ran.context("the fault suite failed")
}
