//! The fault cases built so far, numbered as in issue 10. Each starts its own [`Stack`] (services
//! in this process, a private database and bus prefix), stops it whatever happened, and returns a
//! [`CaseResult`].

use std::time::{Duration, Instant};

use radfin_domain::{Period, ReportId, ReportStatus};
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest, SubmitOutcome, SubmitReportRequest};
use radfin_testkit::{GeneratedMonth, MonthSpec, generate_month};
use tokio::task::JoinSet;

use super::{Ack, CaseResult, Verdict, settle, stored_rows};
use crate::{Rng, Stack, put_month_reference_data};

/// Case 1's concurrent clients.
pub const CLIENTS: usize = 8;
/// Case 1: how often each report is submitted.
pub const COPIES: usize = 3;
/// Case 5: how many identical calls race.
pub const IDENTICAL_CALLS: usize = 50;
/// The largest batch a case-1 client sends.
const MAX_BATCH: usize = 250;
/// How often a failed call is tried again before the case gives up on it.
const ATTEMPTS: u32 = 5;

pub(super) fn period() -> Period {
    Period::new(2026, 10).unwrap_or_else(|| unreachable!("October 2026 is a period"))
}

/// Runs `case` on a stack of its own, stopped afterwards; a case that could not run at all is a
/// failed row.
pub(super) async fn on_stack<F>(case: &str, done: &str, run: F) -> CaseResult
where
    F: AsyncFnOnce(&Stack) -> anyhow::Result<CaseResult>,
{
    on_started(case, done, Stack::start(), run).await
}

/// Like [`on_stack`], on the stack `start` starts (say, with a pricing service configured
/// otherwise); the case's time includes starting it.
pub(super) async fn on_started<F>(
    case: &str,
    done: &str,
    start: impl Future<Output = anyhow::Result<Stack>>,
    run: F,
) -> CaseResult
where
    F: AsyncFnOnce(&Stack) -> anyhow::Result<CaseResult>,
{
    let started = Instant::now();
    let failed = |why: String| CaseResult {
        case: case.to_owned(),
        done: done.to_owned(),
        verdict: Verdict::default(),
        failure: Some(why),
        elapsed: started.elapsed(),
    };
    let stack = match start.await {
        Ok(s) => s,
        Err(e) => return failed(format!("the services did not start: {e:#}")),
    };
    let result = run(&stack).await;
    let stopped = stack.stop().await;
    match (result, stopped) {
        (Ok(mut r), Ok(())) => {
            r.elapsed = started.elapsed();
            r
        }
        (Ok(mut r), Err(e)) => {
            r.failure.get_or_insert_with(|| format!("stopping the services: {e:#}"));
            r.elapsed = started.elapsed();
            r
        }
        (Err(e), _) => failed(format!("{e:#}")),
    }
}

pub(super) fn month(reports: usize, clients: usize, providers: usize, seed: u64) -> GeneratedMonth {
    generate_month(&MonthSpec { period: period(), clients, providers, reports, seed })
}

/// Case 1: `reports` reports of a generated month (30 clients on every contract type, tier mode
/// and currency; with the generator's cancellations and corrected revisions), each report event
/// submitted [`COPIES`] times by [`CLIENTS`] concurrent clients, each on its own gRPC channel:
/// copy `c` of event `i` goes to client `(i + 3c) mod 8`, so the copies of one event race on
/// three different clients; clients submit their share in batches of 1 to 250 in four orders
/// (ascending, descending, shuffled, strided). Then, once the pipeline settles (at most
/// `patience`), every acknowledged report must be booked once and every client-month equal the
/// engine's; and ingest must have accepted each event exactly once.
pub async fn triple_submission(reports: usize, patience: Duration) -> CaseResult {
    let done =
        format!("{reports} reports × {COPIES} submissions, {CLIENTS} concurrent clients, batches of 1–{MAX_BATCH}");
    on_stack("1. triple submission", &done, async |stack| {
        let month = month(reports, 30, 60, 0x5EED_0001);
        put_month_reference_data(stack, &month).await?;
        let events: Vec<ReportEvent> = month.reports.iter().map(ReportEvent::from).collect();

        let mut shares: Vec<Vec<usize>> = vec![Vec::new(); CLIENTS];
        for i in 0..events.len() {
            for c in 0..COPIES {
                shares[(i + 3 * c) % CLIENTS].push(i);
            }
        }
        let mut tasks = JoinSet::new();
        for (k, mut share) in shares.into_iter().enumerate() {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (k as u64 + 1));
            match k % 4 {
                0 => {}
                1 => share.reverse(),
                2 => {
                    for i in (1..share.len()).rev() {
                        share.swap(i, rng.below(i + 1));
                    }
                }
                _ => {
                    let stride = 7;
                    share = (0..stride).flat_map(|s| share.iter().skip(s).step_by(stride).copied()).collect();
                }
            }
            let batch: Vec<ReportEvent> = share.iter().map(|&i| events[i].clone()).collect();
            let mut ingest = stack.ingest_client().await?;
            tasks.spawn(async move {
                let (mut acks, mut accepted, mut retried) = (Vec::new(), 0_usize, Vec::new());
                let mut at = 0;
                while at < batch.len() {
                    let n = 1 + rng.below(MAX_BATCH);
                    let reports = batch[at..(at + n).min(batch.len())].to_vec();
                    at += n;
                    let mut attempt = 1;
                    let response = loop {
                        match ingest.submit_batch(SubmitBatchRequest { reports: reports.clone() }).await {
                            Ok(r) => break r.into_inner(),
                            Err(status) if attempt < ATTEMPTS => {
                                retried.push(status.code());
                                attempt += 1;
                                pause(attempt, &status).await;
                            }
                            Err(status) => anyhow::bail!("client {k}: a batch failed {ATTEMPTS} times: {status}"),
                        }
                    };
                    for (r, e) in response.results.iter().zip(&reports) {
                        if r.outcome == SubmitOutcome::Accepted as i32 {
                            accepted += 1;
                        }
                        if r.outcome == SubmitOutcome::Accepted as i32 || r.outcome == SubmitOutcome::Duplicate as i32 {
                            acks.push(Ack { report_id: e.report_id.clone(), revision: e.revision });
                        }
                    }
                }
                anyhow::Ok((acks, accepted, retried))
            });
        }
        let (mut acks, mut accepted) = (Vec::new(), 0);
        let mut retried: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined? {
                Ok((a, n, r)) => {
                    acks.extend(a);
                    accepted += n;
                    for code in r {
                        *retried.entry(format!("{code:?}")).or_default() += 1;
                    }
                }
                Err(e) => failure = failure.or(Some(format!("{e:#}"))),
            }
        }
        let submitted = events.len() * COPIES;
        let verdict = settle(stack, &[period()], &acks, patience).await?;
        if failure.is_none() && accepted != events.len() {
            failure = Some(format!("ingest accepted {accepted} of {} distinct report events", events.len()));
        }
        if failure.is_none() && acks.len() != submitted {
            failure = Some(format!("{} of {submitted} submissions acknowledged", acks.len()));
        }
        Ok(CaseResult {
            case: "1. triple submission".into(),
            done: format!(
                "{reports} reports ({} events, {} current billable) × {COPIES} = {submitted} submissions from {CLIENTS} concurrent clients, batches of 1–{MAX_BATCH}; {accepted} accepted, {} duplicates; calls retried: {}",
                events.len(),
                month.reports.iter().filter(|r| r.status == ReportStatus::Final).count(),
                acks.len().saturating_sub(accepted),
                if retried.is_empty() {
                    "none".to_owned()
                } else {
                    retried.iter().map(|(code, n)| format!("{n} {code}")).collect::<Vec<_>>().join(", ")
                },
            ),
            verdict,
            failure,
            elapsed: Duration::ZERO,
        })
    })
    .await
}

/// Waits a little before a retry: 100 ms × the attempt, longer when the service says it is busy.
pub(super) async fn pause(attempt: u32, status: &tonic::Status) {
    let busy = matches!(status.code(), tonic::Code::Unavailable | tonic::Code::ResourceExhausted);
    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt) * if busy { 3 } else { 1 })).await;
}

/// Case 5: [`IDENTICAL_CALLS`] concurrent `SubmitReport` calls of one report (over 10 channels,
/// released together) store one row: one ACCEPTED, the rest DUPLICATE, and the ledger books it
/// once. Then the same id and revision with other content is refused with ALREADY_EXISTS, and
/// the stored original is unchanged.
pub async fn identical_submissions(patience: Duration) -> CaseResult {
    let done = format!("{IDENTICAL_CALLS} concurrent identical SubmitReport; then the same revision changed");
    on_stack("5. identical submissions", &done, async |stack| {
        let month = month(12, 3, 3, 0x5EED_0005);
        put_month_reference_data(stack, &month).await?;
        let original = month
            .reports
            .iter()
            .find(|r| r.revision == 1 && r.status == ReportStatus::Final)
            .ok_or_else(|| anyhow::anyhow!("the generated month has no final report"))?
            .clone();
        let event = ReportEvent::from(&original);

        let mut channels = Vec::new();
        for _ in 0..10 {
            channels.push(stack.ingest_client().await?);
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(IDENTICAL_CALLS));
        let mut calls = JoinSet::new();
        for i in 0..IDENTICAL_CALLS {
            let mut ingest = channels[i % channels.len()].clone();
            let (start, event) = (start.clone(), event.clone());
            calls.spawn(async move {
                start.wait().await;
                ingest.submit_report(SubmitReportRequest { report: Some(event) }).await.map(|r| r.into_inner())
            });
        }
        let (mut accepted, mut duplicates, mut errors) = (0, 0, Vec::new());
        while let Some(joined) = calls.join_next().await {
            match joined? {
                Ok(r) if r.outcome == SubmitOutcome::Accepted as i32 => accepted += 1,
                Ok(r) if r.outcome == SubmitOutcome::Duplicate as i32 => duplicates += 1,
                Ok(r) => errors.push(format!("outcome {}", r.outcome)),
                Err(status) => errors.push(format!("{:?}: {}", status.code(), status.message())),
            }
        }
        let mut problems = Vec::new();
        if (accepted, duplicates) != (1, IDENTICAL_CALLS - 1) || !errors.is_empty() {
            problems.push(format!("{accepted} accepted, {duplicates} duplicates, errors {errors:?}"));
        }
        let rows = stored_rows(stack, &event.report_id).await?;
        if rows != 1 {
            problems.push(format!("{rows} stored rows"));
        }

        let mut changed = event.clone();
        changed.body_regions = event.body_regions % 4 + 1;
        let refused = channels[0].submit_report(SubmitReportRequest { report: Some(changed) }).await;
        let refusal = match &refused {
            Err(status) if status.code() == tonic::Code::AlreadyExists => "ALREADY_EXISTS".to_owned(),
            Err(status) => {
                problems.push(format!("the changed revision was refused with {:?}", status.code()));
                format!("{:?}", status.code())
            }
            Ok(r) => {
                problems.push(format!("the changed revision was taken: {:?}", r.get_ref()));
                "taken".to_owned()
            }
        };
        let mut conn = stack.db.pool().get().await?;
        let stored = radfin_db::reports::get(&mut conn, &ReportId::parse(&event.report_id).map_err(anyhow::Error::msg)?, 1).await?;
        drop(conn);
        let unchanged = stored.as_ref().is_some_and(|s| s.event == original);
        if !unchanged {
            problems.push(format!("the stored revision is {stored:?}, not the original"));
        }
        let rows_after = stored_rows(stack, &event.report_id).await?;
        if rows_after != 1 {
            problems.push(format!("{rows_after} stored rows after the changed revision"));
        }

        let acks = vec![Ack { report_id: event.report_id.clone(), revision: 1 }; accepted + duplicates];
        let verdict = settle(stack, &[period()], &acks, patience).await?;
        Ok(CaseResult {
            case: "5. identical submissions".into(),
            done: format!(
                "{IDENTICAL_CALLS} concurrent identical SubmitReport: {accepted} accepted, {duplicates} duplicates, {rows} stored row; same id and revision with other content: {refusal}, original {}",
                if unchanged { "unchanged" } else { "CHANGED" }
            ),
            verdict,
            failure: (!problems.is_empty()).then(|| problems.join("; ")),
            elapsed: Duration::ZERO,
        })
    })
    .await
}
