//! The pricing binary as Kubernetes runs it: when its consumer task dies (here: its durable
//! consumer is deleted on the server, which no retry can mend), health turns NOT_SERVING and the
//! process exits non-zero, so it is restarted and creates the consumer anew; on SIGTERM it drains
//! and exits 0.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use radfin_bus::{Bus, BusConfig};
use radfin_db::testing::TestDb;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DEADLINE: Duration = Duration::from_secs(60);

/// A running `radfin-pricing` process with its own database, bus prefix and ports.
struct Process {
    child: Child,
    bus: Bus,
    health: HealthClient<Channel>,
    _db: TestDb,
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("sup{}x{nanos}", std::process::id())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Process {
    async fn start() -> Process {
        let db = TestDb::create().await.unwrap();
        let prefix = unique_prefix();
        let url = radfin_bus::testing::nats_url();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_radfin-pricing"))
            .env("RADFIN_DATABASE_URL", db.url_as("radfin_pricing"))
            .env("RADFIN_NATS_URL", &url)
            .env("RADFIN_BUS_PREFIX", &prefix)
            .env("RADFIN_PRICING_LISTEN", format!("127.0.0.1:{port}"))
            .env("RADFIN_METRICS_LISTEN", "127.0.0.1:0")
            .env_remove("RADFIN_AUTH_TOKENS_FILE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("radfin-pricing starts");
        let started = tokio::time::Instant::now();
        let channel = loop {
            match Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await {
                Ok(channel) => break channel,
                Err(_) if started.elapsed() < DEADLINE => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("radfin-pricing never listened on {port}: {e}"),
            }
        };
        let bus = Bus::connect(&BusConfig { url, prefix, ..BusConfig::default() }).await.unwrap();
        let mut process = Process { child, bus, health: HealthClient::new(channel), _db: db };
        assert_eq!(process.status().await, ServingStatus::Serving);
        process
    }

    async fn status(&mut self) -> ServingStatus {
        let response = self.health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        ServingStatus::try_from(response.into_inner().status).unwrap()
    }

    /// Waits for the process to end: its exit status and what it wrote on stderr.
    async fn exit(mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(DEADLINE, self.child.wait()).await.expect("the process exits").unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
        for stream in
            [self.bus.names().reports_stream(), self.bus.names().priced_stream(), self.bus.names().dlq_stream()]
        {
            let _ = self.bus.jetstream().delete_stream(stream).await;
        }
        (status, stderr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumer_turns_health_not_serving_and_the_process_exits_non_zero() {
    let mut process = Process::start().await;
    let mut watch =
        process.health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(ServingStatus::try_from(first.status).unwrap(), ServingStatus::Serving);

    let reports = process.bus.names().reports_stream().to_owned();
    process.bus.jetstream().delete_consumer_from_stream(radfin_pricing::CONSUMER, &reports).await.unwrap();

    let next = tokio::time::timeout(DEADLINE, watch.message()).await.expect("health changes").unwrap().unwrap();
    assert_eq!(ServingStatus::try_from(next.status).unwrap(), ServingStatus::NotServing);
    drop(watch);
    let (status, stderr) = process.exit().await;
    assert!(!status.success(), "a dead consumer fails the process: {status}\n{stderr}");
    assert!(stderr.contains("no longer exists"), "the log says why: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    let process = Process::start().await;
    let pid = process.child.id().expect("running").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let (status, stderr) = process.exit().await;
    assert!(status.success(), "SIGTERM is a clean stop: {status}\n{stderr}");
}
