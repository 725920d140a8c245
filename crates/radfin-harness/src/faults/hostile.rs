//! Hostile input of issue 10: poison messages on a report subject among good reports (case 9),
//! and bad input at every door radfin has (case 10): the gRPC APIs of ingest and pricing, and the
//! FX feed pricing fetches.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use radfin_domain::Period;
use radfin_pricing::fx_feed::{FeedFormat, FxFeed};
use radfin_proto::ingest::v1::{
    ListDeadLettersRequest, RedriveDeadLetterRequest, ReportEvent, SubmitBatchRequest, SubmitOutcome,
    SubmitReportRequest,
};
use radfin_proto::pricing::v1 as pricing;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::cases::{on_stack, on_started};
use super::races::{owner, submit};
use super::{Ack, CaseResult, Verdict, settle};
use crate::{Stack, fixtures, put_month_reference_data};

/// Case 9: one poison message per this many good report events (at least [`MIN_POISON`]).
pub const GOOD_PER_POISON: usize = 50;
/// Case 9: the fewest poison messages published.
pub const MIN_POISON: usize = 9;

/// What a poison message of case 9 is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Poison {
    /// Bytes that are not a report event at all.
    Undecodable,
    /// A report event whose fields are invalid (spec §2).
    Invalid,
    /// A valid report event ingest never stored: it prices to an error.
    NotStored,
}

/// Case 9: the report events of a generated month (`reports` reports, 10 clients), submitted to
/// ingest in batches, with a poison message published straight onto the month's report subject
/// after each batch: in turn bytes that do not decode, a report event with an invalid field, and
/// a valid report event ingest never stored. Each poison message must be dead-lettered with its
/// reason (naming why: it does not decode, the invalid field, not stored), and nothing else: the
/// consumer moves on, and the checker finds every good report booked once and every client-month
/// equal to the engine's. An operator then lists the dead letters over ingest's gRPC, stores one
/// of the never-stored reports through ingest and redrives its dead letter: it is booked once,
/// and leaves the dead letters.
pub async fn poison_messages(reports: usize, patience: Duration) -> CaseResult {
    let case = "9. poison messages";
    let done = format!("{reports} reports submitted, poison messages interleaved on the report subject");
    on_stack(case, &done, async |stack| {
        let month = super::cases::month(reports, 10, 20, 0x5EED_0009);
        put_month_reference_data(stack, &month).await?;
        let period = super::cases::period();
        let events: Vec<ReportEvent> = month.reports.iter().map(ReportEvent::from).collect();
        let poisons = (events.len() / GOOD_PER_POISON).max(MIN_POISON);
        let bus = stack.bus().await?;
        let subject = bus.names().report_subject(period);
        let template = events.first().context("the generated month is empty")?.clone();
        // Every bad field of spec §2 but the id (each poison message has an id of its own).
        let invalid: Vec<(&str, ReportEvent)> =
            fixtures::bad_reports(&template).into_iter().filter(|(field, _)| *field != "report_id").collect();

        let mut ingest = stack.ingest_client().await?;
        let (mut acks, mut retried) = (Vec::new(), 0);
        // The stream sequence of each poison message, and what it is.
        let mut published: BTreeMap<u64, (Poison, String)> = BTreeMap::new();
        let mut not_stored = Vec::new();
        let per_batch = events.len().div_ceil(poisons);
        for (k, batch) in events.chunks(per_batch.max(1)).enumerate() {
            let (a, r) = submit(&mut ingest, batch.to_vec()).await?;
            acks.extend(a);
            retried += r;
            let (kind, sequence, what) = match k % 3 {
                0 => {
                    // Not protobuf: a field tag of wire type 7, which does not exist.
                    let junk = [vec![0xff; 3], b"{\"report_id\": \"JSON-1\"}".to_vec(), vec![0x0f, 0x07]][k / 3 % 3].clone();
                    let ack = bus.jetstream().publish(subject.clone(), junk.into()).await?.await?;
                    (Poison::Undecodable, ack.sequence, String::new())
                }
                1 => {
                    let (field, mut event) = invalid[k / 3 % invalid.len()].clone();
                    event.report_id = format!("POISON-INVALID-{k}");
                    let ack = bus.publish(&subject, &format!("poison-invalid-{k}"), &event).await?;
                    (Poison::Invalid, ack.sequence, field.to_owned())
                }
                _ => {
                    let mut event = template.clone();
                    event.report_id = format!("POISON-NOT-STORED-{k}");
                    event.revision = 1;
                    // The id ingest would publish it under, as if published ahead of its commit.
                    let ack = bus.publish(&subject, &radfin_bus::report_msg_id(&event.report_id, 1), &event).await?;
                    not_stored.push(event.clone());
                    (Poison::NotStored, ack.sequence, event.report_id.clone())
                }
            };
            published.insert(sequence, (kind, what));
        }
        anyhow::ensure!(!not_stored.is_empty(), "no never-stored report was published");

        // Every poison message dead-lettered, listed over gRPC.
        let deadline = Instant::now() + patience;
        let letters = loop {
            let r = ingest.list_dead_letters(ListDeadLettersRequest { after_seq: 0, limit: 0 }).await?.into_inner();
            if r.dead_letters.len() >= published.len() || Instant::now() >= deadline {
                break r.dead_letters;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let verdict = settle(stack, &[period], &acks, patience).await?;
        let mut problems = Vec::new();
        let mut reasons: BTreeMap<Poison, String> = BTreeMap::new();
        let mut good_dead = 0;
        for letter in &letters {
            let Some((kind, what)) = published.get(&letter.original_sequence) else {
                good_dead += 1;
                problems.push(format!("a good message was dead-lettered: {letter:?}"));
                continue;
            };
            let named = match kind {
                Poison::Undecodable => !letter.reason.is_empty(),
                Poison::Invalid => letter.reason.contains(what.as_str()),
                Poison::NotStored => letter.reason.contains(what.as_str()) && letter.reason.contains("not stored"),
            };
            if !named || letter.original_subject != subject || letter.consumer != "pricing" {
                problems.push(format!("{kind:?} dead letter without its reason: {letter:?}"));
            }
            reasons.entry(*kind).or_insert_with(|| letter.reason.clone());
        }
        if letters.len() != published.len() {
            problems.push(format!("{} poison messages published, {} dead letters listed", published.len(), letters.len()));
        }

        // The operator: stores one never-stored report, then redrives its dead letter.
        let report = not_stored[0].clone();
        let msg_id = radfin_bus::report_msg_id(&report.report_id, 1);
        let letter = letters.iter().find(|l| l.msg_id == msg_id).context("the never-stored report's dead letter")?;
        let stored = ingest.submit_report(SubmitReportRequest { report: Some(report.clone()) }).await?.into_inner();
        anyhow::ensure!(stored.outcome == SubmitOutcome::Accepted as i32, "storing {msg_id}: {stored:?}");
        let request = RedriveDeadLetterRequest { seq: letter.seq, reason: "report stored since".into() };
        ingest.redrive_dead_letter(request).await?;
        acks.push(Ack { report_id: report.report_id.clone(), revision: 1 });
        let verdict_after = settle(stack, &[period], &acks, patience).await?;
        let left = ingest.list_dead_letters(ListDeadLettersRequest { after_seq: 0, limit: 0 }).await?.into_inner();
        if left.dead_letters.len() + 1 != letters.len() || left.dead_letters.iter().any(|l| l.seq == letter.seq) {
            problems.push(format!("{} dead letters left of {} after one redrive", left.dead_letters.len(), letters.len()));
        }
        let count = |k: Poison| published.values().filter(|(p, _)| *p == k).count();
        Ok(CaseResult {
            case: case.into(),
            done: format!(
                "{} report events ({} reports) in batches of {per_batch}, {} poison messages interleaved ({} undecodable, \
                 {} with an invalid field, {} never stored): {} dead letters, each with its reason (e.g. {:?}), \
                 {good_dead} of good messages; before the redrive {} / {} reports booked once; {} listed over gRPC, 1 redriven after its \
                 report was stored, booked once; calls retried: {retried}",
                events.len(),
                reports,
                published.len(),
                count(Poison::Undecodable),
                count(Poison::Invalid),
                count(Poison::NotStored),
                letters.len(),
                reasons.values().map(|r| r.chars().take(120).collect::<String>()).collect::<Vec<_>>(),
                verdict.once,
                verdict.reports,
                letters.len(),
            ),
            verdict: if verdict.passed() { verdict_after } else { verdict },
            failure: (!problems.is_empty()).then(|| problems.join("; ")),
            elapsed: Duration::ZERO,
        })
    })
    .await
}

/// An ECB daily file with one rate, and the two ways case 10 breaks it.
const ECB_MISSING_RATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <Cube><Cube time="2026-10-09"><Cube currency="USD"/><Cube currency="INR" rate="97.0000"/></Cube></Cube>
</gesmes:Envelope>"#;
const ECB_MALFORMED_RATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <Cube><Cube time="2026-10-09"><Cube currency="USD" rate="1,16"/><Cube currency="INR" rate="97.0000"/></Cube></Cube>
</gesmes:Envelope>"#;

/// A tiny HTTP server for an FX feed: `/missing.xml` and `/malformed.xml` serve the broken ECB
/// files, `/feed.xml` (what the pricing service fetches) serves them in turn; it counts the
/// fetches of `/feed.xml`.
struct FeedServer {
    addr: SocketAddr,
    fetched: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FeedServer {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fetched = Arc::new(AtomicUsize::new(0));
        let counter = fetched.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0_u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_owned();
                    let body = if line.contains("/missing.xml") {
                        Some(ECB_MISSING_RATE)
                    } else if line.contains("/malformed.xml") {
                        Some(ECB_MALFORMED_RATE)
                    } else if line.contains("/feed.xml") {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        Some(if n.is_multiple_of(2) { ECB_MISSING_RATE } else { ECB_MALFORMED_RATE })
                    } else {
                        None
                    };
                    let response = match body {
                        Some(b) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                            b.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(Self { addr, fetched, task })
    }

    fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        Ok(format!("http://{}/{path}", self.addr).parse()?)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The rows of the tables bad input could write to: reports and their outbox, parties, rules and
/// FX rates.
async fn rows(db: &tokio_postgres::Client) -> anyhow::Result<BTreeMap<&'static str, i64>> {
    let mut counts = BTreeMap::new();
    for table in [
        "reports",
        "report_outbox",
        "providers",
        "clients",
        "provider_pricing_rules",
        "client_pricing_rules",
        "fx_rates",
    ] {
        let n: i64 = db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?.try_get(0)?;
        counts.insert(table, n);
    }
    Ok(counts)
}

/// Whether each of the stack's services answers its health check SERVING.
async fn serving(stack: &Stack) -> anyhow::Result<Vec<String>> {
    let mut not = Vec::new();
    for (name, addr) in
        [("ingest", stack.ingest), ("pricing", stack.pricing), ("ledger", stack.ledger), ("reporting", stack.reporting)]
    {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect().await;
        let status = match channel {
            Ok(c) => HealthClient::new(c)
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map(|r| r.into_inner().status),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        };
        if !matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
            not.push(format!("{name}: {status:?}"));
        }
    }
    Ok(not)
}

/// One hostile input's outcome: what was sent, and the refusal if it was refused as it must be.
struct Attempt {
    what: String,
    refusal: Result<String, String>,
}

/// Checks a call's answer: refused with `code` (one of them) and a message containing each of
/// `names`.
fn refused<T: std::fmt::Debug>(
    what: impl Into<String>,
    answer: Result<T, tonic::Status>,
    codes: &[Code],
    names: &[&str],
) -> Attempt {
    let what = what.into();
    let refusal = match answer {
        Ok(taken) => Err(format!("taken: {taken:?}")),
        Err(s) if codes.contains(&s.code()) && names.iter().all(|n| s.message().contains(n)) => {
            Ok(format!("{:?}: {}", s.code(), s.message().chars().take(160).collect::<String>()))
        }
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message().chars().take(300).collect::<String>())),
    };
    Attempt { what, refusal }
}

/// Case 10: bad input at every door, each refused with a clear error naming the problem, nothing
/// written, no panic:
///
/// - ingest: every invalid field of spec §2 (`SubmitReport`, each named `report.<field>`), all of
///   them in one batch with a good report (refused whole, each row named), a request without its
///   report, and a message over ingest's 64 MiB limit;
/// - pricing: client and provider rules with a 29-digit decimal, of the wrong shape, a huge one
///   (3 MiB, under the 4 MiB limit, refused for what it holds), one over the size limit, and one
///   nested 100,000 deep;
/// - the FX feed: an ECB file with a rate missing and one with a malformed rate, fetched by the
///   pricing service's schedule (every 200 ms, the files in turn) and by [`FxFeed::fetch`] for
///   the error it names.
///
/// The rows of reports, the outbox, parties, rules and FX rates are counted before and after
/// (nothing written), and every service must still answer SERVING. Last, a good report is taken
/// and booked (the checker), so the refusals were not those of a broken service.
pub async fn hostile_input(patience: Duration) -> CaseResult {
    let case = "10. hostile input";
    let done = "bad reports, oversize messages, bad rules documents and ECB files".to_owned();
    let server = match FeedServer::start().await {
        Ok(s) => s,
        Err(e) => {
            return CaseResult {
                case: case.into(),
                done,
                verdict: Verdict::default(),
                failure: Some(format!("the feed server did not start: {e:#}")),
                elapsed: Duration::ZERO,
            };
        }
    };
    let feed_url = server.url("feed.xml");
    let start = async {
        let url = feed_url?;
        Stack::start_with(|c| {
            c.fx_url = Some(url);
            c.fx_interval = Duration::from_millis(200);
        })
        .await
    };
    on_started(case, &done, start, async |stack| {
        fixtures::setup(stack).await?;
        let db = owner(stack).await?;
        let before = rows(&db).await?;
        let mut ingest = stack.ingest_client().await?;
        let mut p = stack.pricing_client().await?;
        let mut attempts = Vec::new();
        let invalid = [Code::InvalidArgument];

        let good = fixtures::night_mri("HOSTILE-OK", "HOSP-INR");
        let bad = fixtures::bad_reports(&good);
        for (field, report) in &bad {
            let answer = ingest.submit_report(SubmitReportRequest { report: Some(report.clone()) }).await;
            let name = format!("report.{field}: ");
            attempts.push(refused(format!("report with a bad {field}"), answer, &invalid, &[&name]));
        }
        let mut batch = vec![good.clone()];
        batch.extend(bad.iter().map(|(_, r)| r.clone()));
        let names: Vec<String> = bad.iter().enumerate().map(|(i, (f, _))| format!("reports[{}].{f}: ", i + 1)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let answer = ingest.submit_batch(SubmitBatchRequest { reports: batch }).await;
        attempts.push(refused(format!("a batch of 1 good and {} bad reports", bad.len()), answer, &invalid, &names));
        let answer = ingest.submit_report(SubmitReportRequest { report: None }).await;
        attempts.push(refused("a request without its report", answer, &invalid, &["report: is required"]));

        let too_large = [Code::OutOfRange, Code::ResourceExhausted];
        let mut huge = good.clone();
        huge.report_id = "X".repeat(65 << 20);
        let answer = ingest.submit_report(SubmitReportRequest { report: Some(huge) }).await;
        attempts.push(refused("a 65 MiB SubmitReport (ingest's limit: 64 MiB)", answer, &too_large, &["too large"]));

        let rules = |document: String| pricing::PutClientRulesRequest {
            client_id: "HOSP-INR".into(),
            effective_from: "2025-01-01".into(),
            document,
        };
        let base = fixtures::client_rules("HOSP-INR", "INR");
        let digits29 = base.replace("\"4000.00\"", "\"4000.0000000000000000000000001\"");
        let answer = p.put_client_rules(rules(digits29)).await;
        attempts.push(refused("client rules with a 29-digit price", answer, &invalid, &["document: ", "$.unit_prices.MRI"]));
        let provider29 = fixtures::PROVIDER_RULES.replacen("\"900.00\"", "\"12345678901234567890123456789\"", 1);
        let answer = p
            .put_provider_rules(pricing::PutProviderRulesRequest {
                effective_from: "2025-01-01".into(),
                document: provider29,
            })
            .await;
        attempts.push(refused("provider rules with a 29-digit fee", answer, &invalid, &["document: ", "$.base_fee.MRI"]));
        let shape = base.replace("\"tiers\":[{\"up_to\":100},{\"up_to\":500},{\"up_to\":null}]", "\"tiers\":{\"up_to\":100}");
        let answer = p.put_client_rules(rules(shape)).await;
        attempts.push(refused("client rules whose tiers are not a list", answer, &invalid, &["$.tiers", "must be an array"]));
        let answer = p
            .put_provider_rules(pricing::PutProviderRulesRequest {
                effective_from: "2025-01-01".into(),
                document: "[1, 2, 3]".into(),
            })
            .await;
        attempts.push(refused("provider rules that are a list", answer, &invalid, &["document: ", "must be an object"]));
        let padding = format!(",\"notes\":[{}0]}}", "0,".repeat(3 << 19));
        let huge = format!("{}{padding}", &base[..base.len() - 1]);
        let answer = p.put_client_rules(rules(huge)).await;
        attempts.push(refused("3 MiB of client rules", answer, &invalid, &["$.notes", "unknown field"]));
        let over = format!("{},\"notes\":\"{}\"}}", &base[..base.len() - 1], "x".repeat(5 << 20));
        let answer = p.put_client_rules(rules(over)).await;
        attempts.push(refused("5 MiB of client rules (pricing's limit: 4 MiB)", answer, &too_large, &["too large"]));
        let depth = 100_000;
        let nested = format!("{{\"client_id\":\"HOSP-INR\",\"contract\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let answer = p.put_client_rules(rules(nested)).await;
        attempts.push(refused("client rules nested 100,000 deep", answer, &invalid, &["not valid JSON", "recursion limit"]));

        // The FX feed: the pricing service fetches both files in turn; the error each names.
        let http = reqwest::Client::new();
        for (path, names) in [("missing.xml", ["missing attribute 'rate'", "USD"]), ("malformed.xml", ["invalid rate '1,16'", "USD"])] {
            let feed = FxFeed::new(server.url(path)?, FeedFormat::EcbXml, "ECB");
            let refusal = match feed.fetch(&http).await {
                Ok(rates) => Err(format!("parsed: {rates:?}")),
                Err(e) if names.iter().all(|n| e.to_string().contains(n)) => Ok(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            attempts.push(Attempt { what: format!("an ECB file with a {} rate", &path[..path.len() - 4]), refusal });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.fetched.load(Ordering::SeqCst) < 6 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let fetched = server.fetched.load(Ordering::SeqCst);

        let after = rows(&db).await?;
        let written: i64 = after.iter().map(|(t, n)| n - before.get(t).copied().unwrap_or(0)).sum();
        let not_serving = serving(stack).await?;
        let mut problems: Vec<String> = attempts
            .iter()
            .filter_map(|a| a.refusal.as_ref().err().map(|e| format!("{}: {e}", a.what)))
            .collect();
        if written != 0 {
            problems.push(format!("rows written: {before:?} → {after:?}"));
        }
        if fetched < 6 {
            problems.push(format!("the pricing service fetched the feed {fetched} times"));
        }
        if !not_serving.is_empty() {
            problems.push(format!("not serving afterwards: {not_serving:?}"));
        }

        // A good report after all that: taken, and booked once.
        let taken = ingest.submit_report(SubmitReportRequest { report: Some(good.clone()) }).await?.into_inner();
        anyhow::ensure!(taken.outcome == SubmitOutcome::Accepted as i32, "the good report: {taken:?}");
        let acks = [Ack { report_id: good.report_id.clone(), revision: 1 }];
        let period = Period::new(2026, 10).context("a period")?;
        let verdict = settle(stack, &[period], &acks, patience).await?;
        let refused_count = attempts.iter().filter(|a| a.refusal.is_ok()).count();
        Ok(CaseResult {
            case: case.into(),
            done: format!(
                "{} hostile inputs ({} invalid report fields, a batch of them, a missing report, a 65 MiB message to \
                 ingest, rules with 29-digit decimals (client and provider), of the wrong shape (2), 3 MiB, 5 MiB \
                 over the limit and nested {depth} deep, 2 ECB files with a missing and a malformed rate): {refused_count} \
                 refused with an error naming the problem, {} rows written; the feed fetched {fetched} times by \
                 pricing, no rate written; services SERVING afterwards: {}; then a good report booked",
                attempts.len(),
                bad.len(),
                written,
                if not_serving.is_empty() { "all 4" } else { "NOT all" },
            ),
            verdict,
            failure: (!problems.is_empty()).then(|| problems.join("; ")),
            elapsed: Duration::ZERO,
        })
    })
    .await
}
