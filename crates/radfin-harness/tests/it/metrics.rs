//! Every service's Prometheus endpoint (`GET /metrics`) exposes the series ARCHITECTURE.md
//! lists ("Metrics"), with the values the traffic of the test implies: gRPC calls by method
//! and code, consumer batches, acks and dead letters, the outbox, the reconciler, held reports,
//! the pools and the database operations.
//!
//! The services of a stack share the process's one registry, and so do the stacks of the tests
//! running alongside: counters are asserted at least what this test's traffic adds, and gauges
//! that every stack writes alike (outbox, held reports) are polled until they show it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use radfin_proto::ingest::v1::{SubmitBatchRequest, SubmitReportRequest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// One sample of the text exposition format: `name{label="value",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format (comments skipped; label values unescaped).
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}"));
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices();
            let mut key = String::new();
            let end = loop {
                let (i, c) = chars.next().unwrap_or_else(|| panic!("unterminated labels: {line}"));
                match c {
                    '}' => break i,
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                Some('"') => break,
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c) => value.push(c),
                                    None => panic!("{line}"),
                                },
                                Some(c) => value.push(c),
                                None => panic!("unterminated value: {line}"),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &inner[end + 1..];
        }
        let value = rest.split_whitespace().next().unwrap_or_else(|| panic!("no value: {line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
        };
        samples.push(Sample { name, labels, value });
    }
    samples
}

/// `GET http://{addr}/metrics` over a plain HTTP/1.1 connection: the status, content type and
/// the parsed body.
async fn scrape(addr: SocketAddr) -> (u16, String, Vec<Sample>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, parse(body))
}

/// The sum of the samples of `name` whose labels include `labels`; `None` when there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// A series expected (its name and some of its labels) and the least its sum may be.
type Expectation<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// What is missing from `samples`: a line per expectation not met (`at_least` of the sum).
fn shortfalls(samples: &[Sample], expectations: &[Expectation<'_>]) -> Vec<String> {
    expectations
        .iter()
        .filter_map(|(name, labels, at_least)| match value(samples, name, labels) {
            Some(v) if v >= *at_least => None,
            found => Some(format!("{name}{labels:?}: {found:?}, expected at least {at_least}")),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exposes_its_metrics_with_real_values_after_traffic() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();

    // Five reports priced and booked, one held (its client is unknown), one refused.
    let reports: Vec<ReportEvent> = (1..=5).map(|i| night_mri(&format!("RPT-M{i}"), "HOSP-INR")).collect();
    ingest.submit_batch(SubmitBatchRequest { reports: reports.clone() }).await.unwrap();
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-MH", "HOSP-NOBODY")) }).await.unwrap();
    let mut bad = night_mri("RPT-MX", "HOSP-INR");
    bad.revision = 0;
    let refused = ingest.submit_report(SubmitReportRequest { report: Some(bad) }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    for r in &reports {
        wait_entries(&stack, &r.report_id, 2).await;
    }
    // A message pricing cannot decode: dead-lettered.
    let bus = stack.bus().await.unwrap();
    let subject = bus.names().report_subject("2026-10".parse().unwrap());
    bus.jetstream().publish(subject, vec![0xff, 0xff, 0xff].into()).await.unwrap().await.unwrap();

    let ingest_method = |m: &str| format!("radfin.ingest.v1.IngestService/{m}");
    let (submit_batch, submit_report) = (ingest_method("SubmitBatch"), ingest_method("SubmitReport"));
    let (submit_batch, submit_report) = (submit_batch.as_str(), submit_report.as_str());
    let list_entries = "radfin.ledger.v1.LedgerService/ListReportEntries";
    let put_client = "radfin.pricing.v1.PricingService/PutClient";
    let expectations: Vec<Expectation<'_>> = vec![
        // gRPC: calls by method and code, and their durations.
        ("radfin_grpc_requests_total", vec![("method", submit_batch), ("code", "OK")], 1.0),
        ("radfin_grpc_requests_total", vec![("method", submit_report), ("code", "OK")], 1.0),
        ("radfin_grpc_requests_total", vec![("method", submit_report), ("code", "INVALID_ARGUMENT")], 1.0),
        ("radfin_grpc_requests_total", vec![("method", put_client), ("code", "OK")], 2.0),
        ("radfin_grpc_requests_total", vec![("method", list_entries), ("code", "OK")], 5.0),
        ("radfin_grpc_requests_total", vec![("method", "grpc.health.v1.Health/Check"), ("code", "OK")], 4.0),
        ("radfin_grpc_request_duration_seconds_count", vec![("method", submit_batch)], 1.0),
        ("radfin_grpc_request_duration_seconds_bucket", vec![("method", submit_batch), ("le", "+Inf")], 1.0),
        // Consumers: batches, acks, redeliveries, dead letters, lag.
        ("radfin_consumer_batch_size_count", vec![("consumer", "pricing")], 1.0),
        ("radfin_consumer_batch_size_sum", vec![("consumer", "pricing")], 6.0),
        ("radfin_consumer_batch_size_count", vec![("consumer", "ledger")], 1.0),
        ("radfin_consumer_batch_duration_seconds_count", vec![("consumer", "pricing")], 1.0),
        ("radfin_consumer_batch_duration_seconds_count", vec![("consumer", "ledger")], 1.0),
        ("radfin_consumer_acked_total", vec![("consumer", "pricing")], 6.0),
        ("radfin_consumer_acked_total", vec![("consumer", "ledger")], 5.0),
        ("radfin_consumer_redeliveries_total", vec![("consumer", "pricing")], 0.0),
        ("radfin_dead_letters_total", vec![("consumer", "pricing"), ("reason", "undecodable")], 1.0),
        ("radfin_dead_letters_total", vec![("consumer", "ledger"), ("reason", "permanent")], 0.0),
        ("radfin_consumer_lag", vec![("consumer", "pricing")], 0.0),
        ("radfin_consumer_lag", vec![("consumer", "ledger")], 0.0),
        ("radfin_consumer_ack_pending", vec![("consumer", "ledger")], 0.0),
        // Ingest: the outbox and the reconciler.
        ("radfin_outbox_depth", vec![], 0.0),
        ("radfin_outbox_oldest_age_seconds", vec![], 0.0),
        ("radfin_outbox_published_total", vec![], 6.0),
        ("radfin_outbox_relay_batch_size_count", vec![], 1.0),
        ("radfin_reconciler_passes_total", vec![], 1.0),
        ("radfin_reconciler_findings_total", vec![], 0.0),
        // Pricing: held reports by reason.
        ("radfin_held_reports", vec![("reason", "UNKNOWN_PARTY")], 1.0),
        ("radfin_held_reports", vec![("reason", "AWAITING_FX")], 0.0),
        // Every service's pool.
        ("radfin_db_pool_max", vec![("service", "ingest")], 8.0),
        ("radfin_db_pool_max", vec![("service", "pricing")], 8.0),
        ("radfin_db_pool_max", vec![("service", "ledger")], 6.0),
        ("radfin_db_pool_max", vec![("service", "reporting")], 6.0),
        ("radfin_db_pool_size", vec![("service", "ingest")], 1.0),
        ("radfin_db_pool_size", vec![("service", "ledger")], 1.0),
        ("radfin_db_pool_available", vec![("service", "pricing")], 0.0),
        ("radfin_db_pool_waiting", vec![("service", "reporting")], 0.0),
        // Database operations.
        ("radfin_db_operation_duration_seconds_count", vec![("operation", "store_reports"), ("outcome", "ok")], 2.0),
        ("radfin_db_operation_duration_seconds_count", vec![("operation", "book_live_facts"), ("outcome", "ok")], 1.0),
        ("radfin_db_operation_duration_seconds_count", vec![("operation", "latest_reports")], 1.0),
        ("radfin_db_operation_duration_seconds_count", vec![("operation", "outbox_read")], 1.0),
        ("radfin_db_operation_duration_seconds_count", vec![("operation", "held_counts")], 1.0),
    ];

    let addrs = [
        ("ingest", stack.metrics.ingest),
        ("pricing", stack.metrics.pricing),
        ("ledger", stack.metrics.ledger),
        ("reporting", stack.metrics.reporting),
    ];
    // The samplers (every 5 s) and the dead letter catch up within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let met = loop {
        let (status, content_type, samples) = scrape(stack.metrics.pricing).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let missing = shortfalls(&samples, &expectations);
        if missing.is_empty() {
            break samples;
        }
        assert!(Instant::now() < deadline, "after 30 s, /metrics still lacks:\n{}", missing.join("\n"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Every service serves the process's registry on its own port.
    for (service, addr) in addrs {
        let (status, _, samples) = scrape(addr).await;
        assert_eq!(status, 200, "{service}");
        let missing = shortfalls(&samples, &[("radfin_db_pool_max", vec![("service", service)], 1.0)]);
        assert!(missing.is_empty(), "{service}: {missing:?}");
        assert!(value(&samples, "radfin_grpc_requests_total", &[("method", submit_batch), ("code", "OK")]).is_some());
    }
    // Only methods radfin serves become labels.
    assert!(met.iter().filter(|s| s.name == "radfin_grpc_requests_total").all(|s| {
        let method = &s.labels["method"];
        method.starts_with("radfin.") || method.starts_with("grpc.") || method == "other"
    }));
    stack.stop().await.unwrap();
}
