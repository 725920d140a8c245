//! The fault cases that break processes (issue 10, cases 2, 3, 4 and 12): the services run as
//! processes of their own ([`ProcStack`], through the `radfin-service` binary), and the case kills
//! them with `kill -9`, kills nats-server, or stops PostgreSQL, while a client submits a
//! generated month. Then the checker must find every acknowledged report booked once and every
//! client-month equal to the engine's, with nothing dead-lettered and every surviving process
//! SERVING.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use radfin_domain::Period;
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest, SubmitOutcome};
use radfin_testkit::{MonthSpec, generate_month};
use tonic::transport::{Channel, Endpoint};

use super::{Ack, CaseResult, Verdict, settle};
use crate::procs::{Gate, Layout, Nats, Postgres, ProcStack, Service};
use crate::put_month_reference_data;

/// Reports per `SubmitBatch` call.
const BATCH: usize = 25;
/// How long one batch may go unanswered (every ingest replica down, PostgreSQL stopped) before
/// the client gives up.
const BATCH_PATIENCE: Duration = Duration::from_secs(180);

fn period() -> Period {
    Period::new(2026, 10).unwrap_or_else(|| unreachable!("October 2026 is a period"))
}

/// What a process case runs on: the services, and the servers the case started for itself.
pub struct World {
    pub stack: ProcStack,
    /// A nats-server (or cluster) of the case's own, when it kills one.
    pub nats: Option<Nats>,
    /// A PostgreSQL server of the case's own, when it stops it.
    pub pg: Option<Postgres>,
    /// The gate between the ledger and NATS, when the case holds the ledger's acks.
    pub gate: Option<Gate>,
    /// How many report events the client has had acknowledged so far, of `total`.
    pub progress: Arc<AtomicUsize>,
    /// The client sends no batch while `progress` is at or past this.
    pub stop_at: Arc<AtomicUsize>,
    pub total: usize,
}

impl World {
    /// The case's own nats-server.
    pub fn nats(&mut self) -> anyhow::Result<&mut Nats> {
        self.nats.as_mut().ok_or_else(|| anyhow::anyhow!("no nats-server of the case's own"))
    }

    /// Waits until `percent` % of the events have been acknowledged.
    pub async fn at(&self, percent: usize) {
        let target = self.total * percent.min(100) / 100;
        while self.progress.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Has the client stop once `percent` % of the events are acknowledged, and waits until
    /// then: the case acts on a pipeline whose traffic it releases with [`World::resume`].
    pub async fn pause_at(&self, percent: usize) {
        self.stop_at.store(self.total * percent.min(100) / 100, Ordering::Relaxed);
        self.at(percent).await;
    }

    pub fn resume(&self) {
        self.stop_at.store(usize::MAX, Ordering::Relaxed);
    }

    /// [`World::pause_at`] `percent`, then [`World::resume`]: what the case does next strikes a
    /// pipeline with a fresh batch of traffic on its way.
    pub async fn strike_at(&self, percent: usize) {
        self.pause_at(percent).await;
        self.resume();
    }
}

/// The infrastructure a process case asks for.
pub struct Setup {
    /// Nodes of a nats-server of the case's own (0: the shared server of the tests).
    pub nats_nodes: usize,
    /// A PostgreSQL server of the case's own (else the tests' server).
    pub private_postgres: bool,
    /// Replicas of ingest, pricing and ledger.
    pub replicas: usize,
    /// The ledger reaches NATS through a [`Gate`].
    pub gate_ledger: bool,
}

/// Starts what `setup` asks for and the services, submits a generated month of `reports` while
/// `fault` breaks things, lets the pipeline settle (at most `patience`) and checks it. `fault`
/// returns what it did, for the table.
async fn run_case<F>(
    case: &str,
    binary: PathBuf,
    setup: Setup,
    reports: usize,
    patience: Duration,
    fault: F,
) -> CaseResult
where
    F: AsyncFnOnce(&mut World) -> anyhow::Result<String>,
{
    let started = Instant::now();
    let result = run(binary, setup, reports, patience, fault).await;
    let (done, verdict, failure) = match result {
        Ok((done, verdict, problems)) => (done, verdict, (!problems.is_empty()).then(|| problems.join("; "))),
        Err(e) => (format!("{reports} reports"), Verdict::default(), Some(format!("{e:#}"))),
    };
    CaseResult { case: case.to_owned(), done, verdict, failure, elapsed: started.elapsed() }
}

async fn run<F>(
    binary: PathBuf,
    setup: Setup,
    reports: usize,
    patience: Duration,
    fault: F,
) -> anyhow::Result<(String, Verdict, Vec<String>)>
where
    F: AsyncFnOnce(&mut World) -> anyhow::Result<String>,
{
    let nats = match setup.nats_nodes {
        0 => None,
        n => Some(Nats::start(n).await?),
    };
    let pg = if setup.private_postgres { Some(Postgres::start().await?) } else { None };
    let nats_url = nats.as_ref().map_or_else(crate::nats_url, Nats::url);
    let gate = if setup.gate_ledger {
        let first = nats_url.split(',').next().unwrap_or_default();
        let addr = first.trim_start_matches("nats://").parse().with_context(|| format!("NATS at {first}"))?;
        Some(Gate::start(addr).await?)
    } else {
        None
    };
    let layout = Layout {
        binary,
        ledger_nats_url: gate.as_ref().map(|g| format!("nats://{}", g.addr())),
        nats_url,
        admin_url: pg.as_ref().map_or_else(radfin_db::testing::admin_url, Postgres::admin_url),
        replicas: setup.replicas,
        stream_replicas: setup.nats_nodes.max(1),
    };
    let stack = ProcStack::start(&layout).await?;
    let month = generate_month(&MonthSpec { period: period(), clients: 12, providers: 20, reports, seed: 0x5EED_0002 });
    put_month_reference_data(&stack, &month).await?;
    let events: Vec<ReportEvent> = month.reports.iter().map(ReportEvent::from).collect();

    let mut clients = Vec::new();
    for i in 0..setup.replicas {
        let endpoint = Endpoint::from_shared(format!("http://{}", stack.addr(Service::Ingest, i)))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30));
        clients.push(IngestServiceClient::new(endpoint.connect_lazy()));
    }
    let (progress, stop_at) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(usize::MAX)));
    let mut world =
        World { stack, nats, pg, gate, progress: progress.clone(), stop_at: stop_at.clone(), total: events.len() };
    let submitter = tokio::spawn(submit(clients, events, progress, stop_at));
    let faulted = fault(&mut world).await;
    // A fault script that failed may have left the client paused or the services down.
    world.resume();
    if faulted.is_err() {
        submitter.abort();
    }
    let what = faulted?;
    let (acks, retried) = submitter.await??;

    let verdict = settle(&world.stack, &[period()], &acks, patience).await?;
    let mut problems = world.stack.all_serving().await;
    if let Err(e) = drained(&world.stack, patience).await {
        problems.push(format!("{e:#}"));
    }
    let dead_letters = dead_letters(&world.stack).await?;
    if dead_letters > 0 {
        problems.push(format!("{dead_letters} messages dead-lettered"));
    }
    for (name, log) in world.stack.logs() {
        if log.contains("panicked") {
            problems.push(format!("{name} panicked (see its log)"));
        }
    }
    // The ledger logs each committed batch with the facts it found already booked ("stale": delivered
    // again because its ack never reached the broker); the reconciler each republishing pass.
    let (batches, stale) = log_sum(&world.stack, "ledger", "live facts booked", "stale");
    let (_, republished) = log_sum(&world.stack, "ingest", "were republished", "republished");
    let done = format!(
        "{reports} reports ({} events) in batches of {BATCH}, calls retried {retried}; {what}; the ledger \
         committed {batches} batches and found {stale} facts delivered again already booked; the reconciler \
         republished {republished}; dead letters {dead_letters}",
        acks.len()
    );
    problems.extend(world.stack.stop_replicas().await);
    // On the shared server the stack's streams would outlive it.
    if world.nats.is_none() {
        crate::delete_streams(&world.stack.bus().await?).await?;
    }
    if !(problems.is_empty() && verdict.passed())
        && let Some(dir) = world.stack.keep_logs()
    {
        problems.push(format!("the services' logs are kept in {}", dir.display()));
    }
    Ok((done, verdict, problems))
}

/// Submits `events` in batches of [`BATCH`], in order (holding back while `progress` is at or
/// past `stop_at`), each batch to the next ingest replica;
/// a call that fails (its replica killed, PostgreSQL down) goes to the next replica after a pause,
/// until it is answered. Returns the acknowledgements and how many calls were retried.
async fn submit(
    mut clients: Vec<IngestServiceClient<Channel>>,
    events: Vec<ReportEvent>,
    progress: Arc<AtomicUsize>,
    stop_at: Arc<AtomicUsize>,
) -> anyhow::Result<(Vec<Ack>, usize)> {
    let (mut acks, mut retried) = (Vec::new(), 0);
    for (n, batch) in events.chunks(BATCH).enumerate() {
        while progress.load(Ordering::Relaxed) >= stop_at.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let since = Instant::now();
        let mut attempt = 0;
        let response = loop {
            let replicas = clients.len();
            match clients[(n + attempt) % replicas].submit_batch(SubmitBatchRequest { reports: batch.to_vec() }).await {
                Ok(r) => break r.into_inner(),
                Err(status) if since.elapsed() < BATCH_PATIENCE => {
                    retried += 1;
                    attempt += 1;
                    let pause = Duration::from_millis(100 * attempt.min(20) as u64);
                    tracing::debug!(code = ?status.code(), message = status.message(), "batch refused, retrying");
                    tokio::time::sleep(pause).await;
                }
                Err(status) => anyhow::bail!("a batch was refused for {} s: {status}", BATCH_PATIENCE.as_secs()),
            }
        };
        for (r, e) in response.results.iter().zip(batch) {
            if r.outcome == SubmitOutcome::Accepted as i32 || r.outcome == SubmitOutcome::Duplicate as i32 {
                acks.push(Ack { report_id: e.report_id.clone(), revision: e.revision });
            } else {
                anyhow::bail!("{} revision {} was refused: {r:?}", e.report_id, e.revision);
            }
        }
        progress.fetch_add(batch.len(), Ordering::Relaxed);
    }
    Ok((acks, retried))
}

/// Waits (at most 20 s) until `consumer` on `stream` holds delivered messages it has not
/// acknowledged; how many it holds then.
async fn in_hand_of(bus: &radfin_bus::Bus, stream: &str, consumer: &str) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            bus.jetstream().get_consumer_from_stream(consumer, stream).await?;
        let pending = c.info().await?.num_ack_pending;
        if pending > 0 || Instant::now() >= deadline {
            return Ok(pending);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until pricing's and the ledger's consumers have delivered every message and been
/// acknowledged for it (what a killed process held is delivered again after the ack wait), so
/// the logs read afterwards hold every redelivery.
async fn drained(stack: &ProcStack, patience: Duration) -> anyhow::Result<()> {
    let bus = stack.bus().await?;
    let names = bus.names().clone();
    let deadline = Instant::now() + patience;
    for (stream, consumer) in
        [(names.reports_stream(), radfin_pricing::CONSUMER), (names.priced_stream(), radfin_ledger::CONSUMER)]
    {
        loop {
            let mut c: async_nats::jetstream::consumer::PullConsumer =
                bus.jetstream().get_consumer_from_stream(consumer, stream).await?;
            let info = c.info().await?;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{consumer}: {} messages pending and {} unacknowledged after {} s",
                info.num_pending,
                info.num_ack_pending,
                patience.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Messages in the stack's dead-letter stream.
async fn dead_letters(stack: &ProcStack) -> anyhow::Result<u64> {
    let bus = stack.bus().await?;
    let name = bus.names().dlq_stream().to_owned();
    Ok(bus.jetstream().get_stream(&name).await?.info().await?.state.messages)
}

/// Of `service`'s log lines holding `message`: how many, and the sum of their field `field`.
fn log_sum(stack: &ProcStack, service: &str, message: &str, field: &str) -> (usize, u64) {
    let (mut lines, mut sum) = (0, 0);
    for (_, log) in stack.logs().iter().filter(|(name, _)| name.starts_with(service)) {
        for line in log.lines().filter(|l| l.contains(message)) {
            lines += 1;
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            sum += v.pointer(&format!("/fields/{field}")).and_then(serde_json::Value::as_u64).unwrap_or(0);
        }
    }
    (lines, sum)
}

/// Case 2: `kill -9` of the ledger three times between its commit and its ack, and of pricing
/// twice mid-batch (while it holds delivered messages unacknowledged); each restarted at once. The ledger reaches NATS through a [`Gate`]: the case
/// holds what the ledger sends, waits until it logs "live facts booked" (after the commit of a
/// batch it was delivered), and kills it: its acks never reached the broker, which delivers the
/// batch again after the ack wait, and the restarted ledger must find it booked.
pub async fn kill_services(binary: PathBuf, reports: usize, patience: Duration) -> CaseResult {
    let setup = Setup { nats_nodes: 0, private_postgres: false, replicas: 1, gate_ledger: true };
    run_case("2. kill -9 of ledger and pricing", binary, setup, reports, patience, async |w: &mut World| {
        let (mut after_commit, mut in_hand) = (0, Vec::new());
        let bus = w.stack.bus().await?;
        let names = bus.names().clone();
        for (percent, service) in [
            (10, Service::Ledger),
            (25, Service::Pricing),
            (40, Service::Ledger),
            (55, Service::Pricing),
            (70, Service::Ledger),
        ] {
            // The client waits at `percent` while the case gets ready, then sends on: the
            // pipeline is busy when the process is killed.
            w.pause_at(percent).await;
            w.resume();
            if service == Service::Ledger {
                let Some(gate) = w.gate.as_ref() else { anyhow::bail!("no gate before the ledger") };
                let ledger = &mut w.stack.replica(service, 0).proc;
                // Held when the ledger has a batch in hand; killed when it has committed it. A
                // batch acked before the gate closed gets another try.
                let mut between = false;
                for _ in 0..20 {
                    in_hand_of(&bus, names.priced_stream(), radfin_ledger::CONSUMER).await?;
                    gate.hold();
                    between = ledger.kill_after("live facts booked", Duration::from_secs(3)).await?;
                    gate.release();
                    if between {
                        break;
                    }
                }
                if !between {
                    ledger.kill()?;
                }
                after_commit += usize::from(between);
            } else {
                in_hand.push(in_hand_of(&bus, names.reports_stream(), radfin_pricing::CONSUMER).await?.to_string());
                w.stack.kill(service, 0)?;
            }
            w.stack.restart(service, 0).await?;
        }
        w.at(100).await;
        Ok(format!(
            "ledger killed 3× ({after_commit} between a commit and its ack), pricing 2× (holding {} messages \
             unacknowledged), each restarted",
            in_hand.join(" and ")
        ))
    })
    .await
}

/// Case 3: nats-server (the case's own, one node) `kill -9`ed twice, each time restarted after
/// 2 s: mid-stream (at 50%), and right after the last report was acknowledged, this time with its
/// store rolled back to a copy taken at 30%: as if it had lost power before syncing what it
/// acknowledged since (it syncs every two minutes), so acknowledged publishes, consumer
/// positions and acks are gone. Pricing is killed at 80% and started again after the broker, so
/// the last fifth of the month is still unpriced when the broker loses it. Every report ingest
/// acknowledged must still reach the ledger once: the reconciler finds the stored reports
/// without a ledger fact and republishes them.
pub async fn kill_nats(binary: PathBuf, reports: usize, patience: Duration) -> CaseResult {
    let setup = Setup { nats_nodes: 1, private_postgres: false, replicas: 1, gate_ledger: false };
    run_case("3. kill -9 of nats-server", binary, setup, reports, patience, async |w: &mut World| {
        // The copy is taken with the submissions paused and everything acknowledged so far
        // published, so that every later publish is lost with the roll-back.
        w.pause_at(30).await;
        let published = w.progress.load(Ordering::Relaxed) as u64;
        let bus = w.stack.bus().await?;
        let reports_stream = bus.names().reports_stream().to_owned();
        let mut stream = bus.jetstream().get_stream(&reports_stream).await?;
        while stream.info().await?.state.messages < published {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        w.nats()?.snapshot(0).await?;
        w.resume();
        w.at(50).await;
        w.nats()?.kill(0)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        w.nats()?.restart(0).await?;
        // Pricing is down for the last fifth, so that what the broker then loses is still
        // waiting in it, not priced and booked already.
        w.at(80).await;
        w.stack.kill(Service::Pricing, 0)?;
        w.at(100).await;
        let nats = w.nats()?;
        nats.kill(0)?;
        nats.roll_back(0)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        nats.restart(0).await?;
        w.stack.restart(Service::Pricing, 0).await?;
        let held = bus.jetstream().get_stream(&reports_stream).await?.info().await?.state.messages;
        Ok(format!(
            "store copied after {published} acks; nats-server killed at 50% and restarted; pricing killed at 80%; \
             nats-server killed again after the last ack and restarted on the copy (then pricing): its report \
             stream then held {held} of the {} messages ingest had published",
            w.total
        ))
    })
    .await
}

/// Case 4: the case's own PostgreSQL stopped as if it crashed (`pg_ctl stop -m immediate`) at
/// 40% of the submissions, down for 10 s, then started again (recovering from its WAL). The
/// services must back off and recover: nothing lost, nothing doubled, nothing dead-lettered, and
/// their logs must say what happened (each service logs the outage as a retryable failure).
pub async fn restart_postgres(binary: PathBuf, reports: usize, patience: Duration) -> CaseResult {
    let setup = Setup { nats_nodes: 0, private_postgres: true, replicas: 1, gate_ledger: false };
    run_case("4. PostgreSQL restarted", binary, setup, reports, patience, async |w: &mut World| {
        w.strike_at(40).await;
        let Some(pg) = w.pg.as_ref() else { anyhow::bail!("no PostgreSQL of the case's own") };
        pg.stop("immediate").await?;
        let stopped = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        pg.start_again().await?;
        let down = stopped.elapsed();
        w.at(100).await;
        let recovered = pg.log().contains("database system was not properly shut down");
        let mut told = Vec::new();
        for (name, log) in w.stack.logs() {
            let lines = log
                .lines()
                .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.contains("retry") || l.contains("database") || l.contains("storage") || l.contains("connect")
                })
                .count();
            told.push(format!("{name} {lines}"));
        }
        Ok(format!(
            "PostgreSQL stopped (immediate) at 40%, down {:.1} s, {}; log lines on the outage: {}",
            down.as_secs_f64(),
            if recovered { "recovered from its WAL" } else { "started" },
            told.join(", ")
        ))
    })
    .await
}

/// Case 12: a three-node NATS cluster of the case's own (streams with 3 replicas) and two replicas
/// of ingest, pricing and ledger. Mid-stream one NATS node is killed (at 30%), then one replica
/// of each service (at 50%); none is restarted. The month must come out the same.
pub async fn scale_out(binary: PathBuf, reports: usize, patience: Duration) -> CaseResult {
    let setup = Setup { nats_nodes: 3, private_postgres: false, replicas: 2, gate_ledger: false };
    run_case("12. cluster, replicas killed", binary, setup, reports, patience, async |w: &mut World| {
        w.strike_at(30).await;
        w.nats()?.kill(1)?;
        w.strike_at(50).await;
        for service in [Service::Ingest, Service::Pricing, Service::Ledger] {
            w.stack.kill(service, 1)?;
        }
        w.at(100).await;
        Ok("3-node NATS cluster, streams ×3, ingest/pricing/ledger ×2; NATS node 2 killed at 30%, \
            replica 2 of ingest, pricing and ledger killed at 50%, none restarted"
            .to_owned())
    })
    .await
}
