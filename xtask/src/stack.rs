//! The local stack: `cargo xtask up` (infrastructure, database, migrations, dev tokens, the four
//! services) and `cargo xtask down`.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio_postgres::error::SqlState;
use xshell::{Shell, cmd};

use crate::dev_tokens::DevTokens;
use crate::infra::{self, Dev, Infra};
use crate::pg;
use crate::process::{self, Probe};

/// The database the services use.
const DATABASE: &str = "radfin";
/// Subject and stream prefix of the local stack.
const BUS_PREFIX: &str = "radfin";
/// How long a service may take to accept connections on its port.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a service may take to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(15);

struct Service {
    /// Package, binary and process name.
    name: &'static str,
    /// Its gRPC listen address variable.
    listen_var: &'static str,
    port: u16,
    /// Its HTTP listen address variable and port, if it serves HTTP too.
    http: Option<(&'static str, u16)>,
}

impl Service {
    /// Its PostgreSQL role, e.g. `radfin_ingest`.
    fn role(&self) -> String {
        self.name.replace('-', "_")
    }
}

const SERVICES: [Service; 4] = [
    Service { name: "radfin-ingest", listen_var: "RADFIN_INGEST_LISTEN", port: 7051, http: None },
    Service { name: "radfin-pricing", listen_var: "RADFIN_PRICING_LISTEN", port: 7052, http: None },
    Service { name: "radfin-ledger", listen_var: "RADFIN_LEDGER_LISTEN", port: 7053, http: None },
    Service {
        name: "radfin-reporting",
        listen_var: "RADFIN_REPORTING_LISTEN",
        port: 7054,
        http: Some(("RADFIN_REPORTING_HTTP", DASHBOARD_PORT)),
    },
];

/// The reporting service's dashboard port.
const DASHBOARD_PORT: u16 = 7080;

/// The dashboard's address, with the viewer token that signs the browser in (once; it is kept
/// in an HttpOnly cookie and taken out of the address).
pub fn dashboard_url(viewer_token: &str) -> String {
    format!("http://127.0.0.1:{DASHBOARD_PORT}/?token={viewer_token}")
}

/// Brings up PostgreSQL and NATS, creates and migrates the `radfin` database, makes the dev tokens
/// (one per role) unless they exist, builds the services and starts those not running yet (with
/// authentication by those tokens), then waits until each accepts connections.
pub fn up(sh: &Shell, root: &Path) -> anyhow::Result<()> {
    let infra = infra::ensure(root)?;
    create_database(&infra, DATABASE)?;
    let owner_url = infra.database_url("postgres", DATABASE);
    cmd!(sh, "cargo run --quiet -p radfin-cli -- migrate --database-url {owner_url}")
        .run()
        .context("the migrations failed")?;
    cmd!(sh, "cargo build --quiet -p radfin-ingest -p radfin-pricing -p radfin-ledger -p radfin-reporting")
        .run()
        .context("cannot build the services")?;

    let dev = Dev::new(root)?;
    let tokens = DevTokens::new(root);
    if tokens.ensure().context("cannot make the dev tokens")? {
        println!("dev tokens: created {} (one per role)", dev.show(&tokens.txt));
    }
    let bin_dir = infra::target_dir(root).join("debug");
    // Every service about to start must have its binary and a free port before any is started.
    let pids: Vec<Option<u32>> = SERVICES.iter().map(|service| running_pid(service, &dev)).collect();
    for (service, pid) in SERVICES.iter().zip(&pids) {
        if pid.is_some() {
            continue;
        }
        let binary = bin_dir.join(service.name);
        if !binary.is_file() {
            bail!("cannot start {}: {} does not exist after the build", service.name, binary.display());
        }
        for (var, port) in std::iter::once((service.listen_var, service.port)).chain(service.http) {
            if process::port_open(port) {
                bail!(
                    "cannot start {}: 127.0.0.1:{port} ({var}) is taken by a process xtask did not start",
                    service.name
                );
            }
        }
    }
    let mut started = Vec::new();
    for (service, pid) in SERVICES.iter().zip(pids) {
        started.push(match pid {
            Some(pid) => {
                println!(
                    "{}: already running (pid {pid}; `cargo xtask down` first to restart it on a fresh build)",
                    service.name
                );
                Running::Existing(pid)
            }
            None => start(service, &infra, &dev, root, &bin_dir, &tokens.json)?,
        });
    }
    for (service, running) in SERVICES.iter().zip(started) {
        wait_listening(service, running, &dev)?;
    }

    println!("\nradfin is up (`cargo xtask down` stops it):");
    for service in &SERVICES {
        println!(
            "  {:<16} gRPC 127.0.0.1:{}   log {}",
            service.name,
            service.port,
            dev.show(&dev.path(&format!("{}.log", service.name)))
        );
    }
    println!(
        "  {:<16} {} (the viewer token signs the browser in)",
        "dashboard",
        dashboard_url(&tokens.token("viewer")?)
    );
    println!("  {:<15} {}", "PostgreSQL", owner_url);
    println!("  {:<15} {} (bus prefix {BUS_PREFIX})", "NATS", infra.nats_url);
    println!(
        "  {:<15} {} (`role token` per line; send `authorization: Bearer <token>`, e.g. RADFIN_TOKEN for `radfin demo`)",
        "tokens",
        dev.show(&tokens.txt)
    );
    Ok(())
}

/// Stops the services, then the private PostgreSQL and NATS if xtask started them.
pub fn down(root: &Path) -> anyhow::Result<()> {
    let dev = Dev::new(root)?;
    let mut failures = Vec::new();
    for service in SERVICES.iter().rev() {
        if let Err(e) = stop(service, &dev) {
            failures.push(format!("{e:#}"));
        }
    }
    if let Err(e) = infra::stop_private(root) {
        failures.push(format!("{e:#}"));
    }
    if !failures.is_empty() {
        bail!("`down` did not stop everything:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// Creates `name` unless it exists (a concurrent creation is fine too).
fn create_database(infra: &Infra, name: &str) -> anyhow::Result<()> {
    let query = |sql: &str| {
        pg::query(infra.pg_port, "postgres", "postgres", sql)
            .with_context(|| format!("cannot query {}", infra.admin_url))
    };
    let exists = !query(&format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))?.is_empty();
    if exists {
        println!("database {name}: exists");
        return Ok(());
    }
    match query(&format!("CREATE DATABASE \"{name}\"")) {
        Ok(_) => println!("database {name}: created"),
        Err(e) if pg::sqlstate(&e) == Some(&SqlState::DUPLICATE_DATABASE) => {
            println!("database {name}: exists");
        }
        Err(e) => return Err(e.context(format!("cannot create database {name}"))),
    }
    Ok(())
}

/// A service process: one this xtask just started, or one already running.
enum Running {
    Started(Child),
    Existing(u32),
}

/// The pid of `service` if its pid file names a live process of that name.
fn running_pid(service: &Service, dev: &Dev) -> Option<u32> {
    process::read_pid(&dev.path(&format!("{}.pid", service.name))).filter(|pid| process::alive(*pid, service.name))
}

fn start(
    service: &Service,
    infra: &Infra,
    dev: &Dev,
    root: &Path,
    bin_dir: &Path,
    tokens_file: &Path,
) -> anyhow::Result<Running> {
    let name = service.name;
    let mut command = Command::new(bin_dir.join(name));
    command
        .current_dir(root)
        .env("RADFIN_DATABASE_URL", infra.database_url(&service.role(), DATABASE))
        .env("RADFIN_NATS_URL", &infra.nats_url)
        .env("RADFIN_BUS_PREFIX", BUS_PREFIX)
        .env("RADFIN_AUTH_TOKENS_FILE", tokens_file);
    for other in &SERVICES {
        command.env(other.listen_var, format!("127.0.0.1:{}", other.port));
        if let Some((var, port)) = other.http {
            command.env(var, format!("127.0.0.1:{port}"));
        }
    }
    let log = dev.path(&format!("{name}.log"));
    let child = process::spawn_detached(&mut command, &log)?;
    process::write_pid(&dev.path(&format!("{name}.pid")), child.id())?;
    println!("{name}: started (pid {}, log {})", child.id(), dev.show(&log));
    Ok(Running::Started(child))
}

fn wait_listening(service: &Service, mut running: Running, dev: &Dev) -> anyhow::Result<()> {
    let name = service.name;
    let log = dev.path(&format!("{name}.log"));
    process::poll(&format!("{name} on 127.0.0.1:{}", service.port), START_DEADLINE, || {
        let gone = match &mut running {
            Running::Started(child) => process::exited(child),
            Running::Existing(pid) => (!process::alive(*pid, name)).then(|| "exited".to_owned()),
        };
        if let Some(status) = gone {
            return Probe::Failed(anyhow!("{name} exited ({status})"));
        }
        let ports = std::iter::once(service.port).chain(service.http.map(|(_, port)| port));
        if ports.clone().all(process::port_open) {
            Probe::Ready(())
        } else {
            Probe::Pending(format!(
                "port {} closed",
                ports.filter(|p| !process::port_open(*p)).map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ))
        }
    })
    .with_context(|| format!("{name} did not come up\n{}", process::log_tail(&log, 40)))
}

fn stop(service: &Service, dev: &Dev) -> anyhow::Result<()> {
    let name = service.name;
    let pid_file = dev.path(&format!("{name}.pid"));
    match running_pid(service, dev) {
        None => println!("{name}: not running"),
        Some(pid) => {
            let killed = process::terminate(pid, name, STOP_DEADLINE)?;
            let how = if killed { ", killed: SIGTERM was not enough" } else { "" };
            println!("{name}: stopped (pid {pid}{how})");
        }
    }
    match std::fs::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", pid_file.display()))
        }
        _ => Ok(()),
    }
}
