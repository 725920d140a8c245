//! A PostgreSQL outage in the middle of a stream of reports: the services reach the database
//! through a TCP proxy that the test cuts for 20 seconds (every connection dropped, new ones
//! refused). Every acknowledged report must still reach the ledger, once, and nothing may be
//! dead-lettered: an outage is waited out, never counted against a message's deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use radfin_proto::ingest::v1::SubmitBatchRequest;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::*;

const REPORTS: usize = 3000;
const BATCH: usize = 50;
/// Batches acknowledged before the database goes away.
const CUT_AFTER_BATCHES: usize = 20;
const OUTAGE: Duration = Duration::from_secs(20);
/// How long the pipeline may take to catch up once the database is back.
const CATCH_UP: Duration = Duration::from_secs(180);
/// Each report's COGS (see `pipeline::a_report_yields_one_cogs_and_one_revenue_entry_…`).
const COGS: &str = "3158.10";

/// A TCP proxy to `target` on a fixed local address that can be cut and restored.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    /// Connections open now.
    open: Arc<AtomicUsize>,
    accepting: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicUsize::new(0));
        let accepting = Some(tokio::spawn(accept(listener, target, open.clone())));
        Proxy { addr, target, open, accepting }
    }

    /// Drops every connection and stops listening (new connections are refused); returns how
    /// many connections were dropped.
    async fn cut(&mut self) -> usize {
        let dropped = self.open.load(Ordering::SeqCst);
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
            let _ = accepting.await;
        }
        dropped
    }

    /// Listens again on the same address.
    async fn restore(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot listen on {} again: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        self.accepting = Some(tokio::spawn(accept(listener, self.target, self.open.clone())));
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Counts a connection open while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts and forwards connections; dropping this future (aborting its task) drops the
/// listener and, with the `JoinSet`, every connection.
async fn accept(listener: TcpListener, target: SocketAddr, open: Arc<AtomicUsize>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((mut inbound, _)) = listener.accept().await else { continue };
        open.fetch_add(1, Ordering::SeqCst);
        let guard = Open(open.clone());
        connections.spawn(async move {
            let _guard = guard;
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// The PostgreSQL server the tests use (`RADFIN_TEST_DATABASE_URL`'s host and port).
async fn postgres_addr() -> SocketAddr {
    let url = std::env::var("RADFIN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    tokio::net::lookup_host(&host_port).await.expect("resolve the database host").next().expect("an address")
}

fn report_id(i: usize) -> String {
    format!("OUT-{i:05}")
}

/// Submits every report in batches, retrying a batch until ingest acknowledges it (a batch is
/// atomic and idempotent, so a retry after an unknown outcome stores nothing twice). Returns how
/// many submissions failed; `acked` counts the acknowledged batches.
async fn submit_all(stack: &Stack, acked: Arc<AtomicUsize>) -> usize {
    let mut ingest = stack.ingest_client().await.expect("ingest client");
    let mut failures = 0;
    let ids: Vec<String> = (0..REPORTS).map(report_id).collect();
    for chunk in ids.chunks(BATCH) {
        let reports: Vec<ReportEvent> = chunk.iter().map(|id| night_mri(id, "HOSP-INR")).collect();
        loop {
            match ingest.submit_batch(SubmitBatchRequest { reports: reports.clone() }).await {
                Ok(response) => {
                    let r = response.into_inner();
                    assert_eq!(r.accepted + r.duplicates, chunk.len() as u64, "{r:?}");
                    break;
                }
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        acked.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    failures
}

/// Per consumer (pricing, ledger): messages not yet acknowledged, and whether any message was
/// delivered more than once (deliveries made ≠ the stream sequence reached).
async fn unfinished(bus: &radfin_bus::Bus) -> Vec<(u64, bool)> {
    let mut found = Vec::new();
    for (stream, consumer) in [(bus.names().reports_stream(), "pricing"), (bus.names().priced_stream(), "ledger")] {
        let stream = bus.jetstream().get_stream(stream).await.expect("stream");
        let info = stream.consumer_info(consumer).await.expect("consumer info");
        let redelivered = info.delivered.consumer_sequence != info.delivered.stream_sequence;
        found.push((info.num_pending + info.num_ack_pending as u64, redelivered));
    }
    found
}

async fn query_i64(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_mid_stream_loses_no_report_books_none_twice_and_dead_letters_nothing() {
    let mut proxy = Proxy::start(postgres_addr().await).await;
    let stack = Arc::new(Stack::start_through(proxy.addr).await.expect("stack"));
    setup(&stack).await;

    let acked = Arc::new(AtomicUsize::new(0));
    let submitting = tokio::spawn({
        let (stack, acked) = (stack.clone(), acked.clone());
        async move { submit_all(&stack, acked).await }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < CUT_AFTER_BATCHES {
        assert!(Instant::now() < deadline, "submissions did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dropped = proxy.cut().await;
    assert!(dropped > 0, "the services had no database connection to lose");
    let bus = stack.bus().await.expect("bus");
    let in_flight = unfinished(&bus).await;
    assert!(in_flight.iter().any(|(n, _)| *n > 0), "the outage must catch messages in flight: {in_flight:?}");
    tokio::time::sleep(OUTAGE).await;
    proxy.restore().await;
    let failed_submissions = submitting.await.expect("submitter");
    assert!(failed_submissions > 0, "ingest never saw the outage");

    // Plain SQL on the ledger, straight to the database (not through the proxy).
    let (client, connection) = tokio_postgres::connect(stack.db.url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let booked_reports = "SELECT count(DISTINCT report_id) FROM ledger_entries WHERE report_id LIKE 'OUT-%'";
    let caught_up_by = Instant::now() + CATCH_UP;
    loop {
        let booked = query_i64(&client, booked_reports).await;
        if booked == REPORTS as i64 {
            break;
        }
        assert!(Instant::now() < caught_up_by, "only {booked} of {REPORTS} reports reached the ledger");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Nothing doubled: every report's COGS entries add up to one report's COGS.
    let per_report = client
        .query(
            "SELECT round(total, 2)::text, count(*) FROM (SELECT report_id, sum(amount_inr) AS total FROM ledger_entries \
             WHERE side = 'COGS' AND report_id LIKE 'OUT-%' GROUP BY report_id) AS r GROUP BY total",
            &[],
        )
        .await
        .expect("COGS per report");
    let totals: Vec<(String, i64)> = per_report.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(totals, [(COGS.to_owned(), REPORTS as i64)]);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM reports WHERE report_id LIKE 'OUT-%'").await, REPORTS as i64);

    // Kept in hand through the outage: no message was delivered twice.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let consumers = unfinished(&bus).await;
        assert!(consumers.iter().all(|(_, redelivered)| !redelivered), "messages were delivered again: {consumers:?}");
        if consumers.iter().all(|(n, _)| *n == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the consumers did not finish: {consumers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing dead-lettered.
    let mut dlq = bus.jetstream().get_stream(bus.names().dlq_stream()).await.expect("dlq stream");
    assert_eq!(dlq.info().await.expect("dlq info").state.messages, 0, "dead letters");

    drop(client);
    let Ok(stack) = Arc::try_unwrap(stack) else { panic!("the stack is still shared") };
    stack.stop().await.expect("every service ran through the outage and stopped cleanly");
}
