//! Processes xtask starts and stops: detached spawning, pid files, liveness, signals, and
//! deadline-bounded polling.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How often a polling loop probes.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    connect(port, Duration::from_millis(500)).is_ok()
}

/// A TCP connection to `127.0.0.1:port`. A port in the ephemeral range can connect to itself when
/// nothing listens (the kernel picks that very port as the source: TCP simultaneous open), and
/// such a socket would keep the server about to start from binding it; it is closed at once and
/// reported as refused.
pub fn connect(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    if stream.local_addr()? == stream.peer_addr()? {
        drop(stream);
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connected to itself: nothing listens"));
    }
    Ok(stream)
}

/// What one probe of [`poll`] found.
pub enum Probe<T> {
    /// Done.
    Ready(T),
    /// Not yet; the reason is reported if the deadline passes.
    Pending(String),
    /// Will never succeed: stop polling.
    Failed(anyhow::Error),
}

/// Probes every 100 ms until `probe` is ready, fails, or `deadline` has passed since the call.
pub fn poll<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Probe<T>) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        let reason = match probe() {
            Probe::Ready(value) => return Ok(value),
            Probe::Failed(error) => return Err(error.context(format!("{what} failed"))),
            Probe::Pending(reason) => reason,
        };
        if start.elapsed() >= deadline {
            bail!("{what}: still not ready after {} s ({reason})", deadline.as_secs());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Starts `command` detached from xtask: its own process group (a Ctrl-C at the terminal does not
/// reach it), stdin from /dev/null, stdout and stderr to `log` (truncated). It outlives xtask.
pub fn spawn_detached(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone().with_context(|| format!("cannot duplicate the handle of {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))
}

/// Whether `child` (a process this xtask started) has exited; its status if so.
pub fn exited(child: &mut Child) -> Option<String> {
    match child.try_wait() {
        Ok(Some(status)) => Some(status.to_string()),
        Ok(None) => None,
        Err(e) => Some(format!("cannot be waited for: {e}")),
    }
}

/// The pid in a pid file, if the file exists and holds one.
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.lines().next()?.trim().parse().ok()
}

/// Writes a pid file.
pub fn write_pid(path: &Path, pid: u32) -> anyhow::Result<()> {
    fs::write(path, format!("{pid}\n")).with_context(|| format!("cannot write {}", path.display()))
}

/// Whether `pid` is a live (not zombie) process whose command name is `name` (as in
/// `/proc/<pid>/comm`, at most 15 bytes); guards against a stale pid file and pid reuse.
pub fn alive(pid: u32, name: &str) -> bool {
    let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) else { return false };
    let expected = &name.as_bytes()[..name.len().min(15)];
    if comm.trim_end_matches('\n').as_bytes() != expected {
        return false;
    }
    // `/proc/<pid>/stat` is "pid (comm) state ...": a zombie (Z) or dead (X) process is gone.
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Sends `signal` (`TERM`, `KILL`) to `pid` with the shell's `kill` built-in (no procps needed).
fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("sh")
        .args(["-c", r#"kill -s "$1" "$2""#, "sh", signal, &pid.to_string()])
        .status()
        .context("cannot run sh to send a signal")?;
    if !status.success() {
        bail!("kill -s {signal} {pid} failed ({status})");
    }
    Ok(())
}

/// Stops the process `pid` named `name`: SIGTERM, then waits up to `deadline` for it to exit;
/// if it has not, SIGKILL. Returns whether it had to be killed.
pub fn terminate(pid: u32, name: &str, deadline: Duration) -> anyhow::Result<bool> {
    if !alive(pid, name) {
        return Ok(false);
    }
    signal(pid, "TERM").with_context(|| format!("cannot stop {name} (pid {pid})"))?;
    let gone = poll(&format!("{name} (pid {pid}) exiting"), deadline, || {
        if alive(pid, name) { Probe::Pending("still running".into()) } else { Probe::Ready(()) }
    });
    if gone.is_ok() {
        return Ok(false);
    }
    signal(pid, "KILL").with_context(|| format!("cannot kill {name} (pid {pid})"))?;
    poll(&format!("{name} (pid {pid}) exiting after SIGKILL"), Duration::from_secs(10), || {
        if alive(pid, name) { Probe::Pending("still running".into()) } else { Probe::Ready(()) }
    })?;
    Ok(true)
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            format!("last lines of {}:\n{tail}", path.display())
        }
        Err(e) => format!("{} cannot be read: {e}", path.display()),
    }
}
