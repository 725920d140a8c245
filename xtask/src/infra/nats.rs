//! NATS with JetStream: a server already listening is used; otherwise xtask runs a private
//! `nats-server` (JetStream store `target/radfin-dev/nats`), installing the Debian package first
//! if there is no binary.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::{Apt, Dev, find_program};
use crate::process::{self, Probe};

/// How long a starting server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a stopping server may take before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
const NAME: &str = "nats-server";
const CANDIDATES: [&str; 3] = [NAME, "/usr/sbin/nats-server", "/usr/local/bin/nats-server"];

pub(super) fn ensure(dev: &Dev, port: u16, apt: &mut Apt) -> anyhow::Result<()> {
    let pid_file = dev.path("nats.pid");
    let private = private_server(&pid_file);
    if process::port_open(port) {
        let whose = match private {
            Some((_, p)) if p == port => "xtask's private server",
            _ => "not managed by xtask",
        };
        return use_running(port, whose);
    }
    if let Some((pid, _)) = private {
        println!("NATS: xtask's private server (pid {pid}) does not listen on port {port}; restarting it");
        process::terminate(pid, NAME, STOP_DEADLINE)?;
    }

    let binary = match find_program(&CANDIDATES) {
        Some(binary) => binary,
        None => {
            apt.install("nats-server", "no nats-server binary")?;
            if process::port_open(port) {
                // With systemd, the package starts its own service (127.0.0.1:4222, no JetStream).
                if info(port).is_ok_and(|i| jetstream(&i)) {
                    return use_running(port, "the nats-server service");
                }
                if Path::new("/run/systemd/system").is_dir() {
                    println!("NATS: disabling the nats-server service just installed (it runs without JetStream)");
                    let status = Command::new("systemctl")
                        .args(["disable", "--now", "nats-server"])
                        .status()
                        .context("cannot run systemctl")?;
                    if !status.success() {
                        bail!("systemctl disable --now nats-server failed ({status})");
                    }
                }
            }
            find_program(&CANDIDATES).context("no nats-server binary after installing the package")?
        }
    };

    let store = dev.path("nats");
    fs::create_dir_all(&store).with_context(|| format!("cannot create {}", store.display()))?;
    let log = dev.path("nats.log");
    let mut command = Command::new(&binary);
    command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]).arg(&store).current_dir(dev.dir());
    let mut child = process::spawn_detached(&mut command, &log)?;
    fs::write(&pid_file, format!("{}\n{port}\n", child.id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    process::poll(&format!("NATS at 127.0.0.1:{port}"), START_DEADLINE, || {
        if let Some(status) = process::exited(&mut child) {
            return Probe::Failed(anyhow!("nats-server exited ({status})"));
        }
        match info(port) {
            Ok(info) if jetstream(&info) => Probe::Ready(()),
            Ok(_) => Probe::Pending("JetStream not enabled yet".into()),
            Err(e) => Probe::Pending(format!("{e:#}")),
        }
    })
    .with_context(|| process::log_tail(&log, 30))?;
    println!(
        "NATS: started xtask's private server at nats://127.0.0.1:{port} (JetStream store {}, log {})",
        dev.show(&store),
        dev.show(&log)
    );
    Ok(())
}

pub(super) fn stop_private(dev: &Dev) -> anyhow::Result<()> {
    let pid_file = dev.path("nats.pid");
    match private_server(&pid_file) {
        None => println!("NATS: no private server running (a machine-wide server is left alone)"),
        Some((pid, port)) => {
            let killed = process::terminate(pid, NAME, STOP_DEADLINE)?;
            let how = if killed { ", killed: SIGTERM was not enough" } else { "" };
            println!("NATS: stopped xtask's private server (port {port}, pid {pid}{how})");
        }
    }
    match fs::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", pid_file.display()))
        }
        _ => Ok(()),
    }
}

/// Checks the server on `port` and reports it.
fn use_running(port: u16, whose: &str) -> anyhow::Result<()> {
    let info = info(port).with_context(|| format!("something listens on 127.0.0.1:{port}, but it is not NATS"))?;
    if !jetstream(&info) {
        bail!(
            "the NATS server at 127.0.0.1:{port} runs without JetStream (start it with -js, or set \
             RADFIN_NATS_PORT to a free port and xtask runs a private server there)"
        );
    }
    let version = json_string(&info, "version").unwrap_or("?");
    println!("NATS: found running at nats://127.0.0.1:{port} (version {version}, JetStream; {whose})");
    Ok(())
}

/// The private server's pid and port (`nats.pid`: pid, then port), if it is alive.
fn private_server(pid_file: &Path) -> Option<(u32, u16)> {
    let text = fs::read_to_string(pid_file).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let port = lines.next()?.trim().parse().ok()?;
    process::alive(pid, NAME).then_some((pid, port))
}

/// The `INFO {...}` line a NATS server sends on connection.
fn info(port: u16) -> anyhow::Result<String> {
    let stream = process::connect(port, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream.take(64 * 1024)).read_line(&mut line).context("no INFO greeting within 2 s")?;
    match line.strip_prefix("INFO ") {
        Some(json) => Ok(json.trim().to_owned()),
        None => bail!("unexpected greeting {:?}", line.trim()),
    }
}

fn jetstream(info: &str) -> bool {
    info.contains(r#""jetstream":true"#)
}

/// A string field of the INFO JSON (no escapes in the fields read here).
fn json_string<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!(r#""{key}":""#))? + key.len() + 4;
    json[start..].split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_info_greeting() {
        let info = r#"{"server_id":"N1","version":"2.9.10","proto":1,"headers":true,"jetstream":true}"#;
        assert_eq!(json_string(info, "version"), Some("2.9.10"));
        assert_eq!(json_string(info, "missing"), None);
        assert!(jetstream(info));
        assert!(!jetstream(r#"{"version":"2.9.10"}"#));
    }
}
