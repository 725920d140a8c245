//! radfin's automation: `cargo xtask <command>`.

mod browser;
mod buf;
mod dev_tokens;
mod faults;
mod fuzz;
mod infra;
mod k8s;
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
    /// Every check CI runs: the static checks of `lint` (formatting, clippy with warnings as errors,
    /// the Kubernetes manifests, `buf lint` and `buf breaking` of the protos), then every test of the workspace
    /// (against local PostgreSQL and NATS, started first if they are not running; poppler-utils, which
    /// the PDF tests read their output with, installed if missing; so are chromium and the npm
    /// packages of the dashboard's browser test).
    Test,
    /// The static checks only: formatting, clippy (warnings are errors), the Kubernetes manifests
    /// (rendered and validated offline, see `deploy/validate.py`), and the protos: `buf lint` (buf's
    /// STANDARD rules, `buf.yaml`) and `buf breaking` against the git tag `proto-v1` (skipped, saying
    /// so, when the tag is absent). buf is installed from npm at the version `xtask/buf` pins.
    Lint,
    /// The benchmarks: the engine (criterion, and its time as a multiple of sorting the month), then
    /// PostgreSQL and JetStream baselines and the whole pipeline end to end, then the freshness of the
    /// margin summary's stream while the pipeline runs at 1,000 reports/s; prints their tables
    /// (markdown, also in target/bench/) at the end. The environment passes through:
    /// `RADFIN_BENCH_REPORTS` (pipeline sizes, default `100000,1000000`), `RADFIN_BENCH_COPY_ROWS`,
    /// `RADFIN_BENCH_PUBLISH_MSGS`, `RADFIN_BENCH_FRESHNESS_RATE` (1000), `RADFIN_BENCH_FRESHNESS_SECS` (30).
    Bench {
        /// Passed to criterion (the engine benchmark only), e.g. a benchmark name filter.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// The main job: brings everything up (as `up`), drives a realistic generated month through the
    /// services over gRPC (sample parties, rules and FX rates to pricing, reports to ingest), prints
    /// the live view, then ends the month: close, a late report held, a retroactive price change
    /// rerun (preview, apply) and a client's statement; ends by printing the dashboard's address.
    Demo {
        #[arg(long, default_value = "2026-10")]
        period: String,
        #[arg(long, default_value_t = 50_000)]
        reports: usize,
    },
    /// Brings up PostgreSQL and NATS (private instances under target/radfin-dev if none run), migrates
    /// the `radfin` database and starts the ingest, pricing, ledger and reporting services, which require a
    /// bearer token: one per role in target/radfin/dev-tokens.txt (made on the first run).
    Up,
    /// Stops the services, and PostgreSQL and NATS if `up` or `test` started them.
    Down,
    /// The fault suite of issue 10 at full size (`crates/radfin-harness/src/faults`, run by the
    /// harness's example `faults` against local PostgreSQL and NATS, started if none run): each case
    /// on services of its own, then a table of case, what was done, reports acknowledged, missing,
    /// duplicated, client-months equal to the engine / total, pass or fail and seconds (also in
    /// target/faults/faults.md). Built so far: case 1 (every report submitted three times from 8
    /// concurrent clients), case 5 (50 identical concurrent submissions, a changed revision refused),
    /// 7 (closes racing submissions), 8 (a rerun applied twice and concurrently), 9 (poison messages),
    /// 10 (hostile input) and 11 (every fuzz target for --fuzz-seconds, a row each).
    Faults {
        /// Case 1's reports (each submitted three times).
        #[arg(long, default_value_t = 10_000)]
        reports: usize,
        /// Build the services optimized (slower to build, faster to run).
        #[arg(long)]
        release: bool,
        /// Case 11: how long each fuzz target runs (0: none run).
        #[arg(long, default_value_t = 30)]
        fuzz_seconds: u64,
    },
    /// The coverage-guided fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer; `rules`, `fx`, `event`),
    /// each for `--seconds`, on the stable toolchain (`RUSTC_BOOTSTRAP=1`); fails, naming the crash
    /// artifact, when one crashes. cargo-fuzz is installed at a pinned version under
    /// target/radfin-dev on first use; corpora grow in target/fuzz/corpus from `fuzz/seeds`.
    Fuzz {
        /// How long each target runs (libFuzzer's `-max_total_time`).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The sanitizer the targets are built with (cargo-fuzz's `--sanitizer`): `address` or `none`.
        #[arg(long, default_value = "address")]
        sanitizer: String,
        /// One target (default: every target).
        target: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let root = project_root();
    sh.change_dir(&root);
    match Cli::parse().command {
        Command::Test => {
            lint(&sh)?;
            let infra = infra::ensure(&root)?;
            infra::ensure_poppler()?;
            let python = python::ensure_grpc(&sh, &root)?;
            let chromium = browser::ensure(&sh, &root)?;
            cmd!(sh, "cargo test --workspace --locked")
                .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
                .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
                // Read by radfin-bus's tests.
                .env("RADFIN_NATS_URL", &infra.nats_url)
                .env("RADFIN_TEST_PYTHON", python)
                .env("RADFIN_CHROMIUM", chromium)
                .run()
                .context("tests failed")?;
        }
        Command::Lint => lint(&sh)?,
        Command::Bench { args } => {
            let out = root.join("target").join("bench");
            // A table left by an earlier run must not pass for this one's.
            for table in BENCH_TABLES {
                let _ = std::fs::remove_file(out.join(table.0));
            }
            let engine = cmd!(sh, "cargo bench --locked -p radfin-domain --bench pricing -- {args...}")
                .env("RADFIN_BENCH_OUT", &out)
                .run();
            let infra = infra::ensure(&root)?;
            let pipeline = cmd!(sh, "cargo bench --locked -p radfin-harness --bench pipeline")
                .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
                .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
                .env("RADFIN_BENCH_OUT", &out)
                .run();
            let freshness = cmd!(sh, "cargo bench --locked -p radfin-harness --bench freshness")
                .env("RADFIN_TEST_DATABASE_URL", &infra.admin_url)
                .env("RADFIN_TEST_NATS_URL", &infra.nats_url)
                .env("RADFIN_BENCH_OUT", &out)
                .run();
            println!("\nBenchmark results (markdown; also in {}):", out.display());
            for (file, title) in BENCH_TABLES {
                match std::fs::read_to_string(out.join(file)) {
                    Ok(table) => println!("\n{title}\n\n{}", table.trim_end()),
                    Err(_) => println!("\n{title}\n\n(no table: the benchmark did not finish)"),
                }
            }
            engine.context("the engine benchmark failed")?;
            pipeline.context("the pipeline benchmark failed")?;
            freshness.context("the freshness benchmark failed")?;
        }
        Command::Demo { period, reports } => {
            stack::up(&sh, &root)?;
            let reports = reports.to_string();
            // The demo puts reference data, submits and reads: the admin token may do all of it.
            let token = dev_tokens::DevTokens::new(&root).token("admin")?;
            cmd!(sh, "cargo run --locked --quiet -p radfin-cli -- demo --samples samples --period {period} --reports {reports}")
                .env("RADFIN_TOKEN", token)
                .run()?;
            let viewer = dev_tokens::DevTokens::new(&root).token("viewer")?;
            println!("\nThe services keep running (logs in target/radfin-dev); `cargo xtask down` stops them.");
            println!("The dashboard: {}", stack::dashboard_url(&viewer));
        }
        Command::Up => stack::up(&sh, &root)?,
        Command::Down => stack::down(&root)?,
        Command::Faults { reports, release, fuzz_seconds } => faults::run(&sh, &root, reports, release, fuzz_seconds)?,
        Command::Fuzz { seconds, sanitizer, target } => fuzz::run(&sh, &root, seconds, target.as_deref(), &sanitizer)?,
    }
    Ok(())
}

/// The tables the benchmarks write to target/bench, and their titles.
const BENCH_TABLES: [(&str, &str); 3] = [
    ("engine.md", "**Engine** (`crates/radfin-domain/benches/pricing.rs`)"),
    ("pipeline.md", "**Pipeline** (`crates/radfin-harness/benches/pipeline.rs`)"),
    ("freshness.md", "**Freshness of the margin summary** (`crates/radfin-harness/benches/freshness.rs`)"),
];

fn lint(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo fmt --all -- --check").run().context("formatting differs: run `cargo fmt --all`")?;
    cmd!(sh, "cargo clippy --locked --workspace --all-targets -- -D warnings")
        .run()
        .context("clippy found problems")?;
    k8s::validate(sh, &project_root())?;
    buf::check(sh, &project_root())?;
    Ok(())
}

fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(ToOwned::to_owned).unwrap_or_default()
}
