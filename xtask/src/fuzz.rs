//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/` (cargo-fuzz and libFuzzer),
//! each run for a bounded time. `fuzz/` is a project of its own, outside the workspace: its
//! targets are built with the sanitizer and coverage flags cargo-fuzz passes to rustc, some of
//! them unstable, which `RUSTC_BOOTSTRAP=1` allows on the stable toolchain.
//!
//! cargo-fuzz is installed with `cargo install --locked` at the version pinned here, under
//! `target/radfin-dev/cargo-fuzz`, on first use. The targets build in `target/fuzz`; each one's
//! corpus grows in `target/fuzz/corpus/<target>`, starting from the seeds checked in under
//! `fuzz/seeds/<target>`, with the libFuzzer dictionary `fuzz/dicts/<target>.dict` where there is
//! one. An input that crashes a target is written by libFuzzer to
//! `fuzz/artifacts/<target>/` (ignored by git) and named in the error.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::infra;

/// The cargo-fuzz release installed (checked with `cargo fuzz --version`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// libFuzzer's limit on one input's run, in seconds: a slower input is reported as a timeout.
const INPUT_TIMEOUT_SECS: u64 = 10;

/// What one target's bounded run did.
#[derive(Clone, Debug)]
pub struct TargetRun {
    pub target: String,
    /// How long it was asked to run (libFuzzer's `-max_total_time`).
    pub seconds: u64,
    /// The inputs libFuzzer ran, from its closing `Done N runs in S second(s)` line.
    pub runs: Option<u64>,
    /// The wall-clock time of the run, building included.
    pub elapsed: Duration,
    /// Why it failed: a crash (with its artifacts and how to replay them), or a failed build.
    pub failure: Option<String>,
}

impl TargetRun {
    /// Inputs per second of fuzzing (the requested time, not the build's).
    pub fn runs_per_second(&self) -> Option<u64> {
        self.runs.map(|r| r / self.seconds.max(1))
    }
}

/// Builds and runs `target` (every target when `None`) for `seconds` each; fails, naming the
/// crash artifacts, as soon as one target crashes.
pub fn run(sh: &Shell, root: &Path, seconds: u64, target: Option<&str>, sanitizer: &str) -> anyhow::Result<()> {
    let runs = run_targets(sh, root, seconds, target, sanitizer, false)?;
    let names: Vec<&str> = runs.iter().map(|r| r.target.as_str()).collect();
    println!("fuzz: no crash in {} ({seconds} s each)", names.join(", "));
    Ok(())
}

/// Builds and runs `target` (every target when `None`) for `seconds` each, and says what each
/// run did. A target that crashes (or does not build) is an error at once, unless `keep_going`:
/// then its [`TargetRun::failure`] says why and the next target runs. Failing to set up
/// (installing cargo-fuzz, listing the targets) is an error either way.
pub fn run_targets(
    sh: &Shell,
    root: &Path,
    seconds: u64,
    target: Option<&str>,
    sanitizer: &str,
    keep_going: bool,
) -> anyhow::Result<Vec<TargetRun>> {
    anyhow::ensure!(seconds > 0, "--seconds must be at least 1");
    let cargo_fuzz = ensure_cargo_fuzz(sh, root)?;
    let fuzz_dir = root.join("fuzz");
    let target_dir = infra::target_dir(root).join("fuzz");
    let _root = sh.push_dir(root);
    let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");

    let all = cmd!(sh, "{cargo_fuzz} fuzz list --fuzz-dir {fuzz_dir}")
        .read()
        .context("cargo fuzz list failed")?
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>();
    let targets = match target {
        Some(t) if all.iter().any(|a| a == t) => vec![t.to_owned()],
        Some(t) => anyhow::bail!("no fuzz target {t:?}; fuzz/Cargo.toml has {}", all.join(", ")),
        None => all,
    };

    let max_time = format!("-max_total_time={seconds}");
    let timeout = format!("-timeout={INPUT_TIMEOUT_SECS}");
    let mut done = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let corpus = target_dir.join("corpus").join(target);
        let seeds = fuzz_dir.join("seeds").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
        // A target's libFuzzer dictionary, when it has one: the tokens of its format.
        let dict = fuzz_dir.join("dicts").join(format!("{target}.dict"));
        let dict = dict.is_file().then(|| format!("-dict={}", dict.display()));
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let before = files_in(&artifacts);
        println!("fuzz: {target} for {seconds} s (corpus {}, seeds {})", corpus.display(), seeds.display());
        // libFuzzer refuses a corpus directory that does not exist.
        let seeds = seeds.is_dir().then_some(seeds);
        // The first corpus directory receives the new inputs; the seeds are only read.
        let command = cmd!(
            sh,
            "{cargo_fuzz} fuzz run --fuzz-dir {fuzz_dir} --target-dir {target_dir} --sanitizer {sanitizer}
             {target} {corpus} {seeds...} -- {max_time} {timeout} -print_funcs=0 {dict...}"
        );
        let (status, runs) = run_counting(command.into())?;
        let failure = (!status.success()).then(|| {
            let found: Vec<PathBuf> = files_in(&artifacts).difference(&before).cloned().collect();
            if found.is_empty() {
                return format!("fuzz target {target} failed ({status}; no crash artifact written)");
            }
            let list = found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
            let cargo_fuzz = cargo_fuzz.display();
            let sanitizer = format!("--sanitizer {sanitizer}");
            let replay = format!(
                "RUSTC_BOOTSTRAP=1 {cargo_fuzz} fuzz run --fuzz-dir fuzz --target-dir target/fuzz {sanitizer} {target} <artifact>"
            );
            format!("fuzz target {target} crashed on {list}; replay with `{replay}`")
        });
        if let (Some(why), false) = (&failure, keep_going) {
            anyhow::bail!("{why}");
        }
        done.push(TargetRun { target: target.clone(), seconds, runs, elapsed: started.elapsed(), failure });
    }
    Ok(done)
}

/// Runs `command` with its standard error passed through line by line, and returns its exit
/// status and the runs of libFuzzer's closing `Done N runs in S second(s)` line, if it printed one.
fn run_counting(mut command: Command) -> anyhow::Result<(std::process::ExitStatus, Option<u64>)> {
    let mut child = command.stderr(Stdio::piped()).spawn().context("cannot start cargo fuzz")?;
    let mut runs = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading cargo fuzz's output")?;
            eprintln!("{line}");
            if let Some(n) = done_runs(&line) {
                runs = Some(n);
            }
        }
    }
    Ok((child.wait().context("waiting for cargo fuzz")?, runs))
}

/// N of libFuzzer's `Done N runs in S second(s)`.
fn done_runs(line: &str) -> Option<u64> {
    line.strip_prefix("Done ")?.split_once(" runs in ")?.0.parse().ok()
}

/// The files directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default()
}

/// `cargo-fuzz` at the pinned version, installed under `target/radfin-dev/cargo-fuzz` when missing.
fn ensure_cargo_fuzz(sh: &Shell, root: &Path) -> anyhow::Result<PathBuf> {
    let dir = infra::target_dir(root).join("radfin-dev").join("cargo-fuzz");
    let bin = dir.join("bin").join("cargo-fuzz");
    if bin.exists() && version(sh, &bin).is_some_and(|v| v == CARGO_FUZZ_VERSION) {
        return Ok(bin);
    }
    cmd!(sh, "cargo install cargo-fuzz --locked --version {CARGO_FUZZ_VERSION} --root {dir}")
        .run()
        .with_context(|| format!("cannot install cargo-fuzz {CARGO_FUZZ_VERSION} in {}", dir.display()))?;
    let installed = version(sh, &bin).with_context(|| format!("{} does not run", bin.display()))?;
    anyhow::ensure!(installed == CARGO_FUZZ_VERSION, "installed cargo-fuzz {installed}, expected {CARGO_FUZZ_VERSION}");
    println!("fuzz: cargo-fuzz {CARGO_FUZZ_VERSION} installed in {}", dir.display());
    Ok(bin)
}

/// The version `cargo fuzz --version` prints (`cargo-fuzz 0.13.2`), if it runs.
fn version(sh: &Shell, bin: &Path) -> Option<String> {
    let out = cmd!(sh, "{bin} fuzz --version").quiet().ignore_stderr().read().ok()?;
    out.split_whitespace().last().map(ToOwned::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn libfuzzers_closing_line_gives_the_runs() {
        assert_eq!(super::done_runs("Done 1234567 runs in 31 second(s)"), Some(1_234_567));
        assert_eq!(super::done_runs("#1024\tpulse  cov: 12 ft: 14 corp: 3/5b exec/s: 512"), None);
        assert_eq!(super::done_runs("Done x runs in 1 second(s)"), None);
    }
}
