//! radfin as separate processes, and the servers under it, for the fault cases that kill and
//! restart them: [`Proc`] (one child process, logged to a file), [`Nats`] (nats-server, alone or
//! as a JetStream cluster on loopback ports), [`Postgres`] (a private PostgreSQL cluster of
//! Debian's binaries), [`Gate`] (a proxy that can hold what a client sends) and [`ProcStack`]
//! (the four services, with replicas, each a `radfin-service` process on its own ports, against
//! a private database and bus prefix).
//!
//! Everything here is torn down when dropped: processes are killed, scratch directories removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use radfin_db::testing::TestDb;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a process may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a process may take to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it before the
/// caller binds it, which on a test machine does not happen in practice).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One child process: started, killed and started again with the same command line, its standard
/// output and error appended to one log file across restarts.
pub struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, log: PathBuf) -> Self {
        Self { name: name.into(), program: program.into(), args: Vec::new(), env: BTreeMap::new(), log, child: None }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts the process (a no-op when it runs).
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.running() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .env_remove("RADFIN_AUTH_TOKENS_FILE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C at the terminal is for the suite, not the child.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the process was started and not killed or stopped since (it may have exited).
    pub fn started(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the process runs (a process that exited is reaped).
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// How the process ended, if it did by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().with_context(|| format!("waiting for {} after SIGKILL", self.name))?;
        }
        Ok(())
    }

    /// `kill -9` the moment the process writes a line holding `marker` from now on (its log is
    /// polled every millisecond on a thread of its own), to kill it at a chosen point of its
    /// work. Returns whether it did so within `patience` (else the process runs on).
    pub async fn kill_after(&mut self, marker: &str, patience: Duration) -> anyhow::Result<bool> {
        let Some(pid) = self.child.as_ref().and_then(|c| rustix::process::Pid::from_raw(c.id() as i32)) else {
            bail!("{} is not running", self.name);
        };
        let seen = self.watch_log(marker, patience, move || {
            rustix::process::kill_process(pid, rustix::process::Signal::KILL).ok();
        });
        let seen = seen.await?;
        if seen {
            self.kill()?;
        }
        Ok(seen)
    }

    /// Polls the log every millisecond for a new line holding `marker` and runs `then` at once
    /// (on the polling thread) when one appears.
    async fn watch_log(
        &self,
        marker: &str,
        patience: Duration,
        then: impl FnOnce() + Send + 'static,
    ) -> anyhow::Result<bool> {
        let (log, marker) = (self.log.clone(), marker.to_owned());
        tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            use std::io::{Read as _, Seek as _, SeekFrom};
            let mut file = File::open(&log)?;
            let mut offset = file.seek(SeekFrom::End(0))?;
            let (mut pending, deadline) = (String::new(), Instant::now() + patience);
            while Instant::now() < deadline {
                let mut new = String::new();
                file.seek(SeekFrom::Start(offset))?;
                offset += file.read_to_string(&mut new)? as u64;
                pending.push_str(&new);
                if pending.lines().any(|l| l.contains(&marker)) {
                    then();
                    return Ok(true);
                }
                // Keep only the unfinished last line.
                let keep = pending.rfind('\n').map_or(0, |i| i + 1);
                pending.drain(..keep);
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(false)
        })
        .await?
    }

    /// SIGTERM, then SIGKILL if it has not exited within 15 s. Returns its exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).ok();
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().ok();
        Ok(Some(child.wait()?))
    }

    /// What the process wrote (every start of it).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Polls `probe` every 100 ms until it holds, for at most `deadline`.
async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut probe: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        let last = match probe().await {
            Ok(true) => return Ok(()),
            Ok(false) => String::from("not yet"),
            Err(e) => format!("{e:#}"),
        };
        if started.elapsed() >= deadline {
            bail!("{what}: not ready after {} s ({last})", deadline.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP proxy on a loopback port whose client-to-server direction can be held: what a client
/// sends while held never reaches the server (the server's replies still reach the client). The
/// fault suite puts one between the ledger and NATS to kill the ledger after it has committed a
/// batch but before its acknowledgements reached the broker.
pub struct Gate {
    addr: SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
    connections: std::sync::Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Gate {
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (open, _) = tokio::sync::watch::channel(true);
        let connections = std::sync::Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let accept = tokio::spawn({
            let (open, connections) = (open.clone(), connections.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let open = open.subscribe();
                    if let Ok(mut set) = connections.lock() {
                        set.spawn(forward(client, target, open));
                    }
                }
            }
        });
        Ok(Self { addr, open, connections, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on nothing a client sends reaches the server.
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Drops every connection made so far (with what it held) and lets new ones through.
    pub fn release(&self) {
        if let Ok(mut set) = self.connections.lock() {
            set.abort_all();
        }
        self.open.send_replace(true);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(mut set) = self.connections.lock() {
            set.abort_all();
        }
    }
}

/// One proxied connection: server to client always; client to server only while `open` (what is
/// read while held is kept back until the connection is dropped).
async fn forward(mut client: tokio::net::TcpStream, target: SocketAddr, mut open: tokio::sync::watch::Receiver<bool>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let upstream = async {
        let mut buf = vec![0; 64 << 10];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 || open.wait_for(|open| *open).await.is_err() {
                return std::io::Result::Ok(());
            }
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    let _ = tokio::join!(upstream, downstream);
}

/// nats-server with JetStream on loopback ports: one node, or a cluster whose nodes route to each
/// other (streams can then have up to that many replicas). Each node keeps its store in a
/// directory of its own, so a node killed and started again finds what it had written.
pub struct Nats {
    nodes: Vec<Proc>,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
}

impl Nats {
    /// Starts `n` nodes (1 is a plain server; more form a cluster named `radfin-faults`) and
    /// waits until JetStream answers on every node.
    pub async fn start(n: usize) -> anyhow::Result<Self> {
        let program = find_program("nats-server", &["/usr/sbin/nats-server", "/usr/bin/nats-server"])?;
        let dir = tempfile::Builder::new().prefix("radfin-faults-nats").tempdir()?;
        let ports = (0..n).map(|_| free_port()).collect::<anyhow::Result<Vec<_>>>()?;
        let routes = (0..n).map(|_| free_port()).collect::<anyhow::Result<Vec<_>>>()?;
        let route_list = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        let mut nodes = Vec::new();
        for i in 0..n {
            let store = dir.path().join(format!("n{i}"));
            let mut node = Proc::new(format!("nats-server n{i}"), &program, dir.path().join(format!("n{i}.log")))
                .arg("-a")
                .arg("127.0.0.1")
                .arg("-p")
                .arg(ports[i].to_string())
                .arg("-n")
                .arg(format!("n{i}"))
                .arg("-js")
                .arg("-sd")
                .arg(store.display().to_string());
            if n > 1 {
                node = node
                    .arg("--cluster_name")
                    .arg("radfin-faults")
                    .arg("--cluster")
                    .arg(format!("nats://127.0.0.1:{}", routes[i]))
                    .arg("--routes")
                    .arg(&route_list);
            }
            nodes.push(node);
        }
        let mut nats = Self { nodes, ports, dir };
        for i in 0..n {
            nats.nodes[i].start()?;
        }
        for i in 0..n {
            nats.wait_ready(i).await?;
        }
        Ok(nats)
    }

    /// Every node's client URL, comma separated (what `RADFIN_NATS_URL` takes).
    pub fn url(&self) -> String {
        self.ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// `kill -9` of node `i`.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].kill()
    }

    /// Starts node `i` again (same port, same store) and waits until JetStream answers on it.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].start()?;
        self.wait_ready(i).await
    }

    /// Copies node `i`'s store (while it runs) to be rolled back to by [`Nats::roll_back`].
    pub async fn snapshot(&self, i: usize) -> anyhow::Result<()> {
        let (store, snapshot) = self.store_and_snapshot(i);
        tokio::task::spawn_blocking(move || {
            let _ = fs::remove_dir_all(&snapshot);
            copy_tree(&store, &snapshot).with_context(|| format!("cannot copy {}", store.display()))
        })
        .await?
    }

    /// Replaces node `i`'s store (the node must be stopped) with the copy [`Nats::snapshot`]
    /// made: what the node wrote after it is gone, as after a power cut before its writes were
    /// synced to disk (nats-server syncs every two minutes by default).
    pub fn roll_back(&mut self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nodes[i].running(), "{} must be stopped to roll its store back", self.nodes[i].name());
        let (store, snapshot) = self.store_and_snapshot(i);
        fs::remove_dir_all(&store).with_context(|| format!("cannot remove {}", store.display()))?;
        fs::rename(&snapshot, &store).with_context(|| format!("cannot restore {}", snapshot.display()))
    }

    fn store_and_snapshot(&self, i: usize) -> (PathBuf, PathBuf) {
        (self.dir.path().join(format!("n{i}")), self.dir.path().join(format!("n{i}.snapshot")))
    }

    /// Until JetStream on node `i` answers an account-info request (in a cluster: once a
    /// meta leader is elected).
    async fn wait_ready(&mut self, i: usize) -> anyhow::Result<()> {
        let url = format!("nats://127.0.0.1:{}", self.ports[i]);
        let what = format!("{} at {url}", self.nodes[i].name());
        let result = wait_for(&what, START_DEADLINE, || {
            let url = url.clone();
            async move {
                let client = async_nats::connect(&url).await?;
                // The account-info request answered without an error (async-nats's own
                // `query_account` cannot read nats-server 2.9's answer).
                let reply = tokio::time::timeout(Duration::from_secs(2), client.request("$JS.API.INFO", "".into()))
                    .await
                    .map_err(|_| anyhow::anyhow!("no answer to $JS.API.INFO"))??;
                let reply: serde_json::Value = serde_json::from_slice(&reply.payload)?;
                match reply.get("error") {
                    None => Ok(true),
                    Some(e) => Err(anyhow::anyhow!("JetStream: {e}")),
                }
            }
        })
        .await;
        result.with_context(|| tail(&self.nodes[i].log(), 20))
    }
}

/// A private PostgreSQL cluster (Debian's binaries under `/usr/lib/postgresql/<major>/bin`) on a
/// loopback port, trust authentication, run as the `postgres` OS user when the suite runs as root
/// (initdb and postgres refuse root). Stopped and removed when dropped.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    /// Creates the cluster and starts it.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL's server binaries are not installed (Debian package `postgresql`)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .max_by_key(|bin| bin.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()))
            .context("no /usr/lib/postgresql/<major>/bin/initdb")?;
        let dir = tempfile::Builder::new().prefix("radfin-faults-pg").tempdir_in("/var/tmp")?.keep();
        if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            run_off_reactor(chown).await?;
        }
        let data = dir.join("data");
        let pg = Self { bin, data, dir, port: free_port()? };
        let mut initdb = pg.owner_command("initdb");
        initdb.arg("-D").arg(&pg.data).args(["--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C"]);
        run_off_reactor(initdb).await?;
        pg.start_again().await?;
        Ok(pg)
    }

    /// The superuser's URL of its `postgres` database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server: `mode` `immediate` is a crash (no checkpoint; the next start recovers
    /// from the WAL), `fast` a clean shutdown that disconnects every session.
    pub async fn stop(&self, mode: &str) -> anyhow::Result<()> {
        run_off_reactor(self.pg_ctl_stop(mode)).await
    }

    fn pg_ctl_stop(&self, mode: &str) -> Command {
        let mut command = self.owner_command("pg_ctl");
        command.arg("stop").arg("-D").arg(&self.data).args(["-m", mode, "-w", "-t", "60"]);
        command
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200",
            self.port
        );
        let log = self.dir.join("postgres.log");
        let mut start = self.owner_command("pg_ctl");
        start.arg("start").arg("-D").arg(&self.data).arg("-l").arg(&log).args(["-w", "-t", "60", "-o", &options]);
        run_off_reactor(start).await?;
        let url = self.admin_url();
        wait_for(&format!("PostgreSQL at {url}"), START_DEADLINE, || {
            let url = url.clone();
            async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                let connection = tokio::spawn(connection);
                let ok = client.simple_query("SELECT 1").await.is_ok();
                drop(client);
                let _ = connection.await;
                Ok(ok)
            }
        })
        .await
    }

    /// The server's log (every start).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// `program` of the server's binaries, run as the cluster's owner.
    fn owner_command(&self, program: &str) -> Command {
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        };
        command.current_dir("/");
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(&mut self.pg_ctl_stop("immediate"));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Copies the directory tree `from` to `to`; a file that vanishes meanwhile (a running server
/// removed it) is left out.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let copied = if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)
        } else {
            fs::copy(entry.path(), &target).map(drop)
        };
        match copied {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// [`run`] on a blocking thread, not the async reactor's.
async fn run_off_reactor(mut command: Command) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run(&mut command)).await?
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn find_program(name: &str, candidates: &[&str]) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found (Debian package `{name}`)"))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A radfin service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Ingest,
    Pricing,
    Ledger,
    Reporting,
}

impl Service {
    pub const ALL: [Service; 4] = [Service::Ingest, Service::Pricing, Service::Ledger, Service::Reporting];

    pub fn name(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Pricing => "pricing",
            Service::Ledger => "ledger",
            Service::Reporting => "reporting",
        }
    }

    fn listen_var(self) -> &'static str {
        match self {
            Service::Ingest => "RADFIN_INGEST_LISTEN",
            Service::Pricing => "RADFIN_PRICING_LISTEN",
            Service::Ledger => "RADFIN_LEDGER_LISTEN",
            Service::Reporting => "RADFIN_REPORTING_LISTEN",
        }
    }
}

/// How a [`ProcStack`] is laid out.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The `radfin-service` binary (`env!("CARGO_BIN_EXE_radfin-service")` in the harness's tests).
    pub binary: PathBuf,
    /// NATS URL(s) the services use.
    pub nats_url: String,
    /// Superuser URL of the PostgreSQL server the stack's database is created on.
    pub admin_url: String,
    /// Replicas of ingest, pricing and ledger (reporting runs once).
    pub replicas: usize,
    /// `RADFIN_NATS_REPLICAS`: replicas of each stream.
    pub stream_replicas: usize,
    /// The ledger's NATS URL when it differs from [`Layout::nats_url`] (e.g. through a [`Gate`]).
    pub ledger_nats_url: Option<String>,
}

/// One service replica: its process and gRPC address.
pub struct Replica {
    pub service: Service,
    pub index: usize,
    pub addr: SocketAddr,
    pub proc: Proc,
}

/// The four services as processes of their own (ingest, pricing and ledger with
/// [`Layout::replicas`] replicas each), on a private database and bus prefix. Ingest's reconciler
/// runs every 2 s with a 5 s grace time, so what the broker loses is found quickly, and a message
/// a killed replica held unacknowledged is delivered again after 10 s. Logs are JSON.
pub struct ProcStack {
    pub db: TestDb,
    pub prefix: String,
    pub replicas: Vec<Replica>,
    nats_url: String,
    /// The replicas' logs: removed with the stack unless [`ProcStack::keep_logs`] was called.
    logs: Option<tempfile::TempDir>,
}

impl ProcStack {
    pub async fn start(layout: &Layout) -> anyhow::Result<Self> {
        let db = TestDb::create_on(layout.admin_url.clone()).await.context("the stack's database")?;
        let prefix = crate::unique_prefix();
        let logs = tempfile::Builder::new().prefix("radfin-faults-logs").tempdir()?;
        let mut ports = BTreeMap::new();
        for service in Service::ALL {
            let count = if service == Service::Reporting { 1 } else { layout.replicas };
            for index in 0..count {
                ports.insert((service, index), free_port()?);
            }
        }
        let mut replicas = Vec::new();
        for (&(service, index), &port) in &ports {
            let role = format!("radfin_{}", service.name());
            let log = logs.path().join(format!("{}-{index}.log", service.name()));
            let proc = Proc::new(format!("{} replica {index}", service.name()), &layout.binary, log)
                .arg(service.name())
                .env("RADFIN_DATABASE_URL", db.url_as(&role))
                .env(
                    "RADFIN_NATS_URL",
                    match (service, &layout.ledger_nats_url) {
                        (Service::Ledger, Some(url)) => url,
                        _ => &layout.nats_url,
                    },
                )
                .env("RADFIN_BUS_PREFIX", &prefix)
                .env("RADFIN_NATS_REPLICAS", layout.stream_replicas.to_string())
                .env(service.listen_var(), format!("127.0.0.1:{port}"))
                .env("RADFIN_METRICS_LISTEN", "127.0.0.1:0")
                .env("RADFIN_REPORTING_HTTP", "127.0.0.1:0")
                .env("RADFIN_REFERENCE_TTL_MS", "0")
                .env("RADFIN_RECONCILE_INTERVAL_SECS", "2")
                .env("RADFIN_RECONCILE_GRACE_SECS", "5")
                .env("RADFIN_LEDGER_URL", format!("http://127.0.0.1:{}", ports[&(Service::Ledger, 0)]))
                .env("RADFIN_PRICING_URL", format!("http://127.0.0.1:{}", ports[&(Service::Pricing, 0)]))
                .env("RADFIN_NATS_ACK_WAIT_SECS", "10")
                .env("RADFIN_LOG_FORMAT", "json")
                .env("RUST_LOG", "info");
            replicas.push(Replica { service, index, addr: SocketAddr::from(([127, 0, 0, 1], port)), proc });
        }
        let mut stack = Self { db, prefix, replicas, nats_url: layout.nats_url.clone(), logs: Some(logs) };
        // One at a time: the first of each creates the streams and consumers the others find.
        for i in 0..stack.replicas.len() {
            stack.replicas[i].proc.start()?;
            stack.wait_serving_at(i).await?;
        }
        Ok(stack)
    }

    fn position(&self, service: Service, index: usize) -> usize {
        self.replicas
            .iter()
            .position(|r| r.service == service && r.index == index)
            .unwrap_or_else(|| panic!("no {} replica {index}", service.name()))
    }

    pub fn replica(&mut self, service: Service, index: usize) -> &mut Replica {
        let i = self.position(service, index);
        &mut self.replicas[i]
    }

    pub fn addr(&self, service: Service, index: usize) -> SocketAddr {
        self.replicas[self.position(service, index)].addr
    }

    /// `kill -9` of one replica.
    pub fn kill(&mut self, service: Service, index: usize) -> anyhow::Result<()> {
        self.replica(service, index).proc.kill()
    }

    /// Starts a killed replica again and waits until its health check says SERVING.
    pub async fn restart(&mut self, service: Service, index: usize) -> anyhow::Result<()> {
        let i = self.position(service, index);
        self.replicas[i].proc.start()?;
        self.wait_serving_at(i).await
    }

    async fn wait_serving_at(&mut self, i: usize) -> anyhow::Result<()> {
        let addr = self.replicas[i].addr;
        let name = self.replicas[i].proc.name().to_owned();
        let started = Instant::now();
        loop {
            if let Some(status) = self.replicas[i].proc.exited() {
                bail!("{name} exited while starting ({status}):\n{}", tail(&self.replicas[i].proc.log(), 30));
            }
            if serving(addr).await {
                return Ok(());
            }
            if started.elapsed() > START_DEADLINE {
                bail!("{name} did not start serving on {addr}:\n{}", tail(&self.replicas[i].proc.log(), 30));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether every replica not killed on purpose still runs (none exited by itself) and
    /// answers SERVING; the problems found.
    pub async fn all_serving(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for r in self.replicas.iter_mut().filter(|r| r.proc.started()) {
            if let Some(status) = r.proc.exited() {
                problems.push(format!("{} exited ({status})", r.proc.name()));
            } else if !serving(r.addr).await {
                problems.push(format!("{} is not SERVING", r.proc.name()));
            }
        }
        problems
    }

    /// A bus client on the stack's own streams.
    pub async fn bus(&self) -> anyhow::Result<radfin_bus::Bus> {
        let config = radfin_bus::BusConfig {
            url: self.nats_url.clone(),
            prefix: self.prefix.clone(),
            ..radfin_bus::BusConfig::default()
        };
        Ok(radfin_bus::Bus::connect(&config).await?)
    }

    /// Keeps the replicas' log files after the stack is gone (for a case that failed); where.
    pub fn keep_logs(&mut self) -> Option<PathBuf> {
        self.logs.take().map(tempfile::TempDir::keep)
    }

    /// Every replica's name and log.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.replicas.iter().map(|r| (r.proc.name().to_owned(), r.proc.log())).collect()
    }

    /// Stops every replica with SIGTERM (reporting first, ingest last); returns the replicas that
    /// did not exit cleanly. (The database and the logs go when the stack is dropped.)
    pub async fn stop_replicas(&mut self) -> Vec<String> {
        let mut unclean = Vec::new();
        for r in self.replicas.iter_mut().rev() {
            match r.proc.terminate().await {
                Ok(Some(status)) if !status.success() => unclean.push(format!("{} exited {status}", r.proc.name())),
                Err(e) => unclean.push(format!("{}: {e:#}", r.proc.name())),
                _ => {}
            }
        }
        unclean
    }
}

impl crate::Deployment for ProcStack {
    fn db(&self) -> &TestDb {
        &self.db
    }

    fn ledger_addr(&self) -> SocketAddr {
        self.addr(Service::Ledger, 0)
    }

    fn pricing_addr(&self) -> SocketAddr {
        self.addr(Service::Pricing, 0)
    }
}

async fn serving(addr: SocketAddr) -> bool {
    let Ok(endpoint) = Channel::from_shared(format!("http://{addr}")) else { return false };
    let Ok(channel) = endpoint.connect_timeout(Duration::from_secs(1)).connect().await else { return false };
    let mut health = HealthClient::new(channel);
    let check = health.check(HealthCheckRequest { service: String::new() });
    matches!(
        tokio::time::timeout(Duration::from_secs(2), check).await,
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
    )
}
