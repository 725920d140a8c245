//! radfin's automation: `cargo xtask <command>`.

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
    /// Every check CI runs: formatting, clippy (warnings are errors), then every test of the workspace.
    Test,
    /// Formatting and clippy only.
    Lint,
    /// The benchmarks; they print throughput figures (the engine's target: ≥ 1,000,000 reports/s).
    Bench {
        /// Passed to criterion, e.g. a benchmark name filter.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Prices a realistic generated month from the sample rules and prints invoices, payouts and margins.
    Demo {
        #[arg(long, default_value = "2026-10")]
        period: String,
        #[arg(long, default_value_t = 50_000)]
        reports: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match Cli::parse().command {
        Command::Test => {
            lint(&sh)?;
            cmd!(sh, "cargo test --workspace --locked").run().context("tests failed")?;
        }
        Command::Lint => lint(&sh)?,
        Command::Bench { args } => {
            cmd!(sh, "cargo bench --locked -p radfin-domain --bench pricing -- {args...}").run()?;
        }
        Command::Demo { period, reports } => {
            let reports = reports.to_string();
            cmd!(sh, "cargo run --locked --quiet -p radfin-cli -- simulate --samples samples --period {period} --reports {reports}")
                .run()?;
        }
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
