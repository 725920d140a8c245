//! radfin's automation: `cargo xtask <command>`.

mod infra;
mod pg;
mod process;
mod python;
mod stack;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xshell::{Shell, cmd};

#[derive(Parser)]
#[command(name = "xtask", about = "radfin's automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every check CI runs: formatting, clippy (warnings are errors), then every test of the workspace
    /// (against local PostgreSQL and NATS, started first if they are not running).
    Test,
    /// Formatting and clippy only.
    Lint,
    /// The benchmarks; they print throughput figures (the engine's target: ≥ 1,000,000 reports/s).
    Bench {
        /// Passed to criterion, e.g. a benchmark name filter.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// The main job: brings everything up (as `up`), drives a realistic generated month through the
    /// services over gRPC (sample parties, rules and FX rates to pricing, reports to ingest) and
    /// prints what the ledger holds; then the same month priced offline, with invoices and payouts.
    Demo {
        #[arg(long, default_value = "2026-10")]
        period: String,
        #[arg(long, default_value_t = 50_000)]
        reports: usize,
    },
    /// Brings up PostgreSQL and NATS (private instances under target/radfin-dev if none run), migrates
    /// the `radfin` database and starts the ingest, pricing and ledger services.
    Up,
    /// Stops the services, and PostgreSQL and NATS if `up` or `test` started them.
    Down,
}

fn main() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let root = project_root();
    sh.change_dir(&root);
    match Cli::parse().command {
        Command::Test => {
            lint(&sh)?;
            let infra = infra::ensure(&root)?;
            let python = python::ensure_grpc(&sh, &root)?;
            cmd!(sh, "cargo test --workspace --locked")
                .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
                .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
                // Read by radfin-bus's tests.
                .env("RADFIN_NATS_URL", &infra.nats_url)
                .env("RADFIN_TEST_PYTHON", python)
                .run()
                .context("tests failed")?;
        }
        Command::Lint => lint(&sh)?,
        Command::Bench { args } => {
            cmd!(sh, "cargo bench --locked -p radfin-domain --bench pricing -- {args...}").run()?;
            let infra = infra::ensure(&root)?;
            cmd!(sh, "cargo bench --locked -p radfin-harness --bench pipeline")
                .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
                .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
                .run()?;
        }
        Command::Demo { period, reports } => {
            stack::up(&sh, &root)?;
            let reports = reports.to_string();
            cmd!(sh, "cargo run --locked --quiet -p radfin-cli -- demo --samples samples --period {period} --reports {reports}")
                .run()?;
            println!("\nThe same month priced offline by the engine (final invoices as they would be on close):\n");
            cmd!(sh, "cargo run --locked --quiet -p radfin-cli -- simulate --samples samples --period {period} --reports {reports}")
                .run()?;
            println!("\nThe services keep running (logs in target/radfin-dev); `cargo xtask down` stops them.");
        }
        Command::Up => stack::up(&sh, &root)?,
        Command::Down => stack::down(&root)?,
    }
    Ok(())
}

fn lint(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo fmt --all -- --check").run().context("formatting differs: run `cargo fmt --all`")?;
    cmd!(sh, "cargo clippy --locked --workspace --all-targets -- -D warnings")
        .run()
        .context("clippy found problems")?;
    Ok(())
}

fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(ToOwned::to_owned).unwrap_or_default()
}
