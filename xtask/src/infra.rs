//! Local infrastructure: PostgreSQL and NATS (JetStream) on 127.0.0.1.
//!
//! A server already accepting connections on the port is used as it is (PostgreSQL must trust
//! local TCP connections of user `postgres`; NATS must have JetStream). Otherwise xtask installs
//! the Debian packages if needed (root, apt) and runs a private instance under
//! `target/radfin-dev/`, which `cargo xtask down` stops again. Machine-wide servers are never
//! stopped or reconfigured; the one exception is the `nats-server` systemd service that xtask's
//! own `apt-get install nats-server` has just started (without JetStream) on a systemd machine.

mod nats;
mod postgres;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Where the local infrastructure is.
#[derive(Clone, Debug)]
pub struct Infra {
    /// Superuser URL of the `postgres` database, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
    pub admin_url: String,
    /// e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    pub pg_port: u16,
}

impl Infra {
    /// URL of `database` as `user` (trust authentication: no password).
    pub fn database_url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.pg_port)
    }
}

/// Makes sure PostgreSQL and NATS accept connections on 127.0.0.1 (ports 5432 and 4222, or
/// `RADFIN_PG_PORT` and `RADFIN_NATS_PORT`), starting private instances when nothing listens.
/// Prints one line per component.
pub fn ensure(root: &Path) -> anyhow::Result<Infra> {
    let dev = Dev::new(root)?;
    let pg_port = env_port("RADFIN_PG_PORT", 5432)?;
    let nats_port = env_port("RADFIN_NATS_PORT", 4222)?;
    let mut apt = Apt::default();
    postgres::ensure(&dev, pg_port, &mut apt).context("cannot bring up PostgreSQL")?;
    nats::ensure(&dev, nats_port, &mut apt).context("cannot bring up NATS")?;
    Ok(Infra {
        admin_url: format!("postgres://postgres@127.0.0.1:{pg_port}/postgres"),
        nats_url: format!("nats://127.0.0.1:{nats_port}"),
        pg_port,
    })
}

/// Makes sure poppler's `pdftotext` and `pdftoppm` are on `PATH` (radfin-pdf's tests read back
/// the PDFs they render with them), installing the Debian package `poppler-utils` if not.
pub fn ensure_poppler() -> anyhow::Result<()> {
    if find_program(&["pdftotext"]).is_some() && find_program(&["pdftoppm"]).is_some() {
        return Ok(());
    }
    Apt::default().install("poppler-utils", "pdftotext or pdftoppm not found (radfin-pdf's tests need them)")
}

/// Makes sure Debian's `chromium` is installed (the dashboard's browser test drives it headless
/// through playwright-core, which brings no browser of its own), installing it if not. Returns
/// its path.
pub fn ensure_chromium() -> anyhow::Result<PathBuf> {
    if let Some(chromium) = find_program(&["chromium"]) {
        return Ok(chromium);
    }
    Apt::default().install("chromium", "chromium not found (the dashboard's browser test drives it)")?;
    find_program(&["chromium"]).context("chromium is not on PATH after installing it")
}

/// Makes sure `node` and `npm` are on `PATH` (the dashboard's browser test is a node script, and
/// buf is installed from npm), installing the Debian package `npm` (which brings `nodejs`) if not.
pub fn ensure_npm() -> anyhow::Result<()> {
    if find_program(&["node"]).is_some() && find_program(&["npm"]).is_some() {
        return Ok(());
    }
    Apt::default().install("npm", "node or npm not found (the dashboard's browser test and buf need them)")
}

/// Stops the private PostgreSQL and NATS instances xtask started, if they run; machine-wide
/// servers are left alone. Prints one line per component.
pub fn stop_private(root: &Path) -> anyhow::Result<()> {
    let dev = Dev::new(root)?;
    let pg = postgres::stop_private(&dev).context("cannot stop the private PostgreSQL");
    let nats = nats::stop_private(&dev).context("cannot stop the private NATS server");
    pg.and(nats)
}

/// `target/radfin-dev`: data, logs and pid files of everything xtask runs locally.
pub struct Dev {
    dir: PathBuf,
    root: PathBuf,
}

impl Dev {
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        let dir = target_dir(root).join("radfin-dev");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self { dir, root: root.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `path`, relative to the project root when inside it (for messages).
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).display().to_string()
    }
}

/// `apt-get update` once, then `apt-get install` as needed.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn install(&mut self, package: &str, why: &str) -> anyhow::Result<()> {
        if !is_root() {
            bail!("{why}; install the Debian package `{package}` (xtask installs it itself only when run as root)");
        }
        println!("{why}: installing `{package}` with apt-get");
        if !self.updated {
            apt_get(&["update", "-q"])?;
            self.updated = true;
        }
        apt_get(&["install", "-y", "-q", "--no-install-recommends", package])
    }
}

fn apt_get(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("apt-get {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Whether xtask runs as root (effective uid 0, from `/proc/self/status`).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.to_owned();
            uids.split_whitespace().nth(1).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target` in the project root).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t))
}

fn env_port(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().with_context(|| format!("{name}={v:?} is not a TCP port number"))
        }
        _ => Ok(default),
    }
}

/// The first of `candidates` (absolute paths, or names looked up in `PATH`) that is a file.
fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|c| {
        let c = Path::new(c);
        if c.is_absolute() {
            return c.is_file().then(|| c.to_owned());
        }
        std::env::split_paths(&path).map(|dir| dir.join(c)).find(|p| p.is_file())
    })
}
