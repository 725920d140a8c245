//! PostgreSQL: a server already listening is used; otherwise xtask runs a private cluster in
//! `target/radfin-dev/postgres` (trust authentication, 127.0.0.1 only) with the Debian binaries
//! in `/usr/lib/postgresql/<version>/bin`, installing them first if there are none.

use std::fs::{self, File};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_postgres::error::SqlState;

use super::{Apt, Dev, is_root};
use crate::pg;
use crate::process::{self, Probe};

/// How long a starting server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Where Debian installs the server binaries, one directory per major version.
const BIN_ROOT: &str = "/usr/lib/postgresql";
/// The OS user owning the private cluster when xtask runs as root (initdb and postgres refuse root).
const OS_USER: &str = "postgres";

pub(super) fn ensure(dev: &Dev, port: u16, apt: &mut Apt) -> anyhow::Result<()> {
    let existing = existing_data_dir(dev)?;
    let private = existing.as_deref().and_then(postmaster);
    if process::port_open(port) {
        wait_ready(port, Duration::from_secs(30)).with_context(|| {
            format!(
                "something accepts connections on 127.0.0.1:{port}, but xtask cannot use it as PostgreSQL \
                 user postgres (set RADFIN_PG_PORT to a free port and xtask runs a private instance there)"
            )
        })?;
        let whose = match private {
            Some(pm) if pm.port == port => "xtask's private instance",
            _ => "not managed by xtask",
        };
        println!("PostgreSQL: found running at 127.0.0.1:{port} ({whose})");
        return Ok(());
    }

    // Nothing listens: run the private cluster there.
    if let (Some(data), Some(pm)) = (&existing, private) {
        if pm.port == port {
            println!("PostgreSQL: xtask's private instance does not accept connections; restarting it");
        } else {
            println!("PostgreSQL: xtask's private instance runs on port {}; restarting it on port {port}", pm.port);
        }
        pg_ctl_stop(&bin_dir_of(data)?, data)?;
    }
    let bin = match &existing {
        Some(data) if data.join("PG_VERSION").exists() => bin_dir_of(data)?,
        _ => match newest_installed() {
            Some(bin) => bin,
            None => {
                install_server(apt)?;
                newest_installed().with_context(|| format!("no {BIN_ROOT}/*/bin/initdb after installing postgresql"))?
            }
        },
    };
    let data = match existing {
        Some(data) => data,
        None => create_data_dir(dev)?,
    };
    if !data.join("PG_VERSION").exists() {
        initdb(&bin, &data)?;
    }
    let log = dev.path("postgres.log");
    start(&bin, &data, port, &log)?;
    wait_ready(port, START_DEADLINE).with_context(|| {
        format!("the private PostgreSQL does not accept connections\n{}", process::log_tail(&log, 30))
    })?;
    let version = fs::read_to_string(data.join("PG_VERSION")).unwrap_or_default();
    println!(
        "PostgreSQL: started xtask's private instance {} at 127.0.0.1:{port} (data {}, log {})",
        version.trim(),
        dev.show(&dev.path("postgres")),
        dev.show(&log)
    );
    Ok(())
}

pub(super) fn stop_private(dev: &Dev) -> anyhow::Result<()> {
    let running = existing_data_dir(dev)?.and_then(|data| postmaster(&data).map(|pm| (data, pm)));
    match running {
        None => println!("PostgreSQL: no private instance running (a machine-wide server is left alone)"),
        Some((data, pm)) => {
            pg_ctl_stop(&bin_dir_of(&data)?, &data)?;
            println!("PostgreSQL: stopped xtask's private instance (port {}, pid {})", pm.port, pm.pid);
        }
    }
    Ok(())
}

/// Polls until `postgres@127.0.0.1:port/postgres` answers `SELECT 1`. A server that is starting
/// (or refuses the connection) is waited for; any other failure, e.g. a password demand, is final.
fn wait_ready(port: u16, deadline: Duration) -> anyhow::Result<()> {
    process::poll(&format!("PostgreSQL at 127.0.0.1:{port}"), deadline, || {
        match pg::query(port, "postgres", "postgres", "SELECT 1") {
            Ok(_) => Probe::Ready(()),
            Err(e) => {
                let starting = pg::sqlstate(&e) == Some(&SqlState::CANNOT_CONNECT_NOW);
                let refused = e
                    .chain()
                    .filter_map(|c| c.downcast_ref::<std::io::Error>())
                    .any(|io| matches!(io.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset));
                if starting || refused { Probe::Pending(format!("{e:#}")) } else { Probe::Failed(e) }
            }
        }
    })
}

/// A running postmaster, from the data directory's `postmaster.pid`.
#[derive(Clone, Copy)]
struct Postmaster {
    pid: u32,
    port: u16,
}

fn postmaster(data: &Path) -> Option<Postmaster> {
    let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let port = lines.nth(2)?.trim().parse().ok()?;
    process::alive(pid, "postgres").then_some(Postmaster { pid, port })
}

/// The private data directory if it exists (following the symlink to a fallback location).
fn existing_data_dir(dev: &Dev) -> anyhow::Result<Option<PathBuf>> {
    let link = dev.path("postgres");
    let Ok(meta) = fs::symlink_metadata(&link) else { return Ok(None) };
    if meta.is_dir() {
        return Ok(Some(link));
    }
    if meta.file_type().is_symlink() {
        if let Ok(real) = fs::canonicalize(&link)
            && real.is_dir()
        {
            return Ok(Some(real));
        }
        // It points to a directory that is gone: start afresh.
        fs::remove_file(&link).with_context(|| format!("cannot remove the dangling symlink {}", link.display()))?;
        return Ok(None);
    }
    bail!("{} exists and is not a directory", link.display())
}

/// Creates the private data directory, owned by the `postgres` OS user when xtask runs as root.
/// If that user cannot reach `target/radfin-dev` (a checkout under /root, say), the directory is
/// created under /var/tmp instead and `target/radfin-dev/postgres` links to it.
fn create_data_dir(dev: &Dev) -> anyhow::Result<PathBuf> {
    let link = dev.path("postgres");
    if !is_root() {
        fs::create_dir_all(&link).with_context(|| format!("cannot create {}", link.display()))?;
        fs::set_permissions(&link, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", link.display()))?;
        return Ok(link);
    }
    let reachable = as_owner(Path::new("test"))
        .arg("-x")
        .arg(dev.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run runuser (util-linux)")?
        .success();
    let data = if reachable {
        link.clone()
    } else {
        let hash = dev.dir().as_os_str().as_encoded_bytes().iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3) // FNV-1a
        });
        PathBuf::from(format!("/var/tmp/radfin-dev-postgres-{hash:016x}"))
    };
    let status = Command::new("install")
        .args(["-d", "-m", "0700", "-o", OS_USER, "-g", OS_USER])
        .arg(&data)
        .status()
        .context("cannot run install (coreutils)")?;
    if !status.success() {
        bail!("cannot create {} owned by {OS_USER} ({status})", data.display());
    }
    if data != link {
        std::os::unix::fs::symlink(&data, &link)
            .with_context(|| format!("cannot link {} to {}", link.display(), data.display()))?;
        println!(
            "PostgreSQL: user {OS_USER} cannot reach {}; the private data directory is {}",
            dev.show(dev.dir()),
            data.display()
        );
    }
    Ok(data)
}

/// `program` run as the cluster's owner: `runuser -u postgres --` when xtask runs as root.
fn as_owner(program: &Path) -> Command {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The owner may not be able to read the current directory.
    command.current_dir("/");
    command
}

fn initdb(bin: &Path, data: &Path) -> anyhow::Result<()> {
    // A failed earlier attempt may have left files behind; initdb wants an empty directory.
    if fs::read_dir(data).with_context(|| format!("cannot read {}", data.display()))?.next().is_some() {
        for entry in fs::read_dir(data)? {
            let path = entry?.path();
            if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) }
                .with_context(|| format!("cannot clean {}", path.display()))?;
        }
    }
    let output = as_owner(&bin.join("initdb"))
        .arg("-D")
        .arg(data)
        .args(["--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C"])
        .output()
        .context("cannot run initdb")?;
    if !output.status.success() {
        bail!(
            "initdb of {} failed ({}):\n{}{}",
            data.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // 127.0.0.1 only, the Unix socket inside the data directory (never /var/run/postgresql, which a
    // machine-wide server owns), and durability traded for speed: this is a disposable dev cluster.
    let socket_dir = data.to_str().filter(|d| d.len() + ".s.PGSQL.65535".len() < 100 && !d.contains('\''));
    let conf = data.join("postgresql.conf");
    let mut file =
        fs::OpenOptions::new().append(true).open(&conf).with_context(|| format!("cannot open {}", conf.display()))?;
    writeln!(
        file,
        "\n# radfin: xtask's private development cluster\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\n\
         max_connections = 200\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off",
        socket_dir.unwrap_or("")
    )
    .with_context(|| format!("cannot write {}", conf.display()))?;
    Ok(())
}

fn start(bin: &Path, data: &Path, port: u16, log: &Path) -> anyhow::Result<()> {
    // pg_ctl without -l hands its stdout to the server: the log file is opened here, so the
    // `postgres` user needs no access to target/radfin-dev.
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    let status = as_owner(&bin.join("pg_ctl"))
        .arg("start")
        .arg("-D")
        .arg(data)
        .args(["-w", "-t", &START_DEADLINE.as_secs().to_string(), "-o", &format!("-p {port}")])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // A Ctrl-C at the terminal must not reach the server.
        .process_group(0)
        .status()
        .context("cannot run pg_ctl")?;
    if !status.success() {
        bail!("pg_ctl start failed ({status})\n{}", process::log_tail(log, 30));
    }
    Ok(())
}

fn pg_ctl_stop(bin: &Path, data: &Path) -> anyhow::Result<()> {
    let output = as_owner(&bin.join("pg_ctl"))
        .arg("stop")
        .arg("-D")
        .arg(data)
        .args(["-m", "fast", "-w", "-t", "60"])
        .output()
        .context("cannot run pg_ctl")?;
    if !output.status.success() {
        bail!(
            "pg_ctl stop -D {} failed ({}):\n{}{}",
            data.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The binaries of the major version that created `data`.
fn bin_dir_of(data: &Path) -> anyhow::Result<PathBuf> {
    let version =
        fs::read_to_string(data.join("PG_VERSION")).with_context(|| format!("{} has no PG_VERSION", data.display()))?;
    let bin = Path::new(BIN_ROOT).join(version.trim()).join("bin");
    if !bin.join("pg_ctl").is_file() {
        bail!(
            "{} was created by PostgreSQL {}, whose binaries ({}) are not installed; \
             install them or remove the directory",
            data.display(),
            version.trim(),
            bin.display()
        );
    }
    Ok(bin)
}

/// `/usr/lib/postgresql/<newest major>/bin`, if a server is installed.
fn newest_installed() -> Option<PathBuf> {
    fs::read_dir(BIN_ROOT)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: Vec<u32> =
                entry.file_name().to_str()?.split('.').map(str::parse).collect::<Result<_, _>>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// `apt-get install postgresql`. On a machine without clusters, Debian's packages would create and
/// start a `main` cluster (port 5432, password authentication) that would take the port of the
/// private one; a temporary drop-in `create_main_cluster = off` (see `createcluster.conf`) keeps
/// the installation to the binaries.
fn install_server(apt: &mut Apt) -> anyhow::Result<()> {
    let why = format!("no PostgreSQL server binaries ({BIN_ROOT}/*/bin/initdb)");
    let drop_in_dir = Path::new("/etc/postgresql-common/createcluster.d");
    let drop_in = drop_in_dir.join("zz-radfin-xtask.conf");
    let skip_main_cluster = is_root() && !has_clusters();
    let created_dir = skip_main_cluster && !drop_in_dir.exists();
    if skip_main_cluster {
        fs::create_dir_all(drop_in_dir).with_context(|| format!("cannot create {}", drop_in_dir.display()))?;
        fs::write(&drop_in, "# written by radfin's `cargo xtask` while it installs postgresql; removed afterwards\ncreate_main_cluster = off\n")
            .with_context(|| format!("cannot write {}", drop_in.display()))?;
    }
    let installed = apt.install("postgresql", &why);
    if skip_main_cluster {
        let _ = fs::remove_file(&drop_in);
        if created_dir {
            let _ = fs::remove_dir(drop_in_dir);
        }
    }
    installed
}

/// Whether any Debian cluster is configured (`/etc/postgresql/<version>/<name>/postgresql.conf`).
fn has_clusters() -> bool {
    let Ok(versions) = fs::read_dir("/etc/postgresql") else { return false };
    versions.flatten().any(|version| {
        fs::read_dir(version.path())
            .map(|clusters| clusters.flatten().any(|c| c.path().join("postgresql.conf").is_file()))
            .unwrap_or(false)
    })
}
