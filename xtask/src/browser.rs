//! What the dashboard's browser test needs (`crates/radfin-harness/tests/it/dashboard.rs`):
//! Debian's `chromium`, node, and `playwright-core` installed from npm (`npm ci`, from the lock
//! file) in `crates/radfin-reporting/tests/browser`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::infra;

/// Ensures chromium, node and the test's npm packages; returns chromium's path.
pub fn ensure(sh: &Shell, root: &Path) -> anyhow::Result<PathBuf> {
    let chromium = infra::ensure_chromium()?;
    infra::ensure_npm()?;
    let dir = root.join("crates").join("radfin-reporting").join("tests").join("browser");
    let lock = dir.join("package-lock.json");
    // `npm ci` leaves node_modules/.package-lock.json: newer than the lock file, it is current.
    let installed = dir.join("node_modules").join(".package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let current = matches!((modified(&installed), modified(&lock)), (Some(i), Some(l)) if i >= l)
        && dir.join("node_modules").join("playwright-core").is_dir();
    if !current {
        let _dir = sh.push_dir(&dir);
        cmd!(sh, "npm ci --no-audit --no-fund")
            .run()
            .with_context(|| format!("cannot install the browser test's npm packages in {}", dir.display()))?;
        println!("browser test: playwright-core installed in {}", dir.display());
    }
    Ok(chromium)
}
