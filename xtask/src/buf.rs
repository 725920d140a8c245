//! The protos' check in `cargo xtask lint`: `buf lint` with `buf.yaml` at the repository root
//! (the module `proto/`, buf's STANDARD rules, nothing excepted), then `buf breaking` of `proto/`
//! against the protos of the git tag `proto-v1` (the FILE rules: no change that breaks the
//! generated code or the wire format of a file). Without that tag the breaking check is skipped,
//! saying so. buf is the npm package `@bufbuild/buf`, pinned by `xtask/buf/package-lock.json` and
//! installed from it (`npm ci`) under `target/radfin-dev/buf` on first use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::infra;

/// The version `xtask/buf/package.json` and its lock file pin (checked after installing).
const BUF_VERSION: &str = "1.75.0";

/// The git tag whose protos are the baseline of `buf breaking`.
const BASELINE_TAG: &str = "proto-v1";

/// The package files under `xtask/`, copied to the install directory.
const PACKAGE_FILES: [&str; 2] = ["package.json", "package-lock.json"];

/// Lints the protos and, when the baseline tag exists, checks them for breaking changes.
pub fn check(sh: &Shell, root: &Path) -> anyhow::Result<()> {
    let buf = ensure_buf(sh, root)?;
    let _root = sh.push_dir(root);
    cmd!(sh, "{buf} lint").run().context("buf lint found problems in proto/ (buf.yaml: the STANDARD rules)")?;
    if tag_exists(sh, BASELINE_TAG) {
        let against = format!(".git#tag={BASELINE_TAG},subdir=proto");
        cmd!(sh, "{buf} breaking proto --against {against}")
            .run()
            .with_context(|| format!("buf breaking: proto/ breaks compatibility with the git tag {BASELINE_TAG}"))?;
    } else {
        println!("buf breaking: skipped, the git tag {BASELINE_TAG} (the protos' baseline) is absent");
    }
    Ok(())
}

/// Whether the repository has the tag (false outside a git checkout, or in a clone without tags).
fn tag_exists(sh: &Shell, tag: &str) -> bool {
    let rev = format!("refs/tags/{tag}");
    cmd!(sh, "git rev-parse --quiet --verify {rev}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
}

/// `buf` at the pinned version, installed with `npm ci` from `xtask/buf` when missing or when the
/// package files changed.
fn ensure_buf(sh: &Shell, root: &Path) -> anyhow::Result<PathBuf> {
    let source = root.join("xtask").join("buf");
    let dir = infra::target_dir(root).join("radfin-dev").join("buf");
    let buf = dir.join("node_modules").join(".bin").join("buf");
    let mut files = Vec::with_capacity(PACKAGE_FILES.len());
    for name in PACKAGE_FILES {
        let path = source.join(name);
        files.push((name, std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?));
    }
    let copied = files.iter().all(|(name, content)| std::fs::read(dir.join(name)).is_ok_and(|c| c == *content));
    if copied && buf.exists() && version(sh, &buf).is_some_and(|v| v == BUF_VERSION) {
        return Ok(buf);
    }

    infra::ensure_npm()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, content) in &files {
        let path = dir.join(name);
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    {
        let _dir = sh.push_dir(&dir);
        // No install scripts: bin/buf, a node launcher, runs the binary of the platform package.
        cmd!(sh, "npm ci --no-audit --no-fund --ignore-scripts").run().with_context(|| {
            format!("cannot install buf from npm (xtask/buf/package-lock.json) in {}", dir.display())
        })?;
    }
    let installed = version(sh, &buf).with_context(|| format!("{} does not run", buf.display()))?;
    anyhow::ensure!(
        installed == BUF_VERSION,
        "xtask/buf pins buf {installed}, xtask/src/buf.rs expects {BUF_VERSION}: make them agree"
    );
    println!("buf: @bufbuild/buf {BUF_VERSION} installed in {}", dir.display());
    Ok(buf)
}

/// What `buf --version` prints, if it runs.
fn version(sh: &Shell, buf: &Path) -> Option<String> {
    cmd!(sh, "{buf} --version").quiet().ignore_stderr().read().ok().map(|v| v.trim().to_owned())
}
