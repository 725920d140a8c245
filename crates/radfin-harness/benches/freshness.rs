//! Freshness of the margin summary (spec §7: "updated within a second of a ledger commit"): the
//! pipeline runs at about `RADFIN_BENCH_FRESHNESS_RATE` reports/s (default 1,000) for
//! `RADFIN_BENCH_FRESHNESS_SECS` (default 30) — a generated month of 200 clients and 500
//! radiologists submitted to ingest in batches on a fixed schedule, priced, booked by the
//! ledger, which updates `margin_summary` in the same transactions — while a subscriber of the
//! reporting service's `WatchSummary` stream measures, for every change it receives, the time
//! from the change's `updated_at` (the start of the ledger transaction that wrote it, so the
//! figure includes that transaction's own duration) to its arrival. Target: p99 ≤ 1 s.
//!
//! The results are printed as a markdown table, also written to `$RADFIN_BENCH_OUT/freshness.md`
//! (default `target/bench/freshness.md`). `cargo xtask bench` runs it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use radfin_harness::Stack;
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest};
use radfin_proto::reporting::v1::{WatchSummaryRequest, WatchSummaryResponse};
use radfin_testkit::{GeneratedMonth, MonthSpec, generate_month};

const CLIENTS: usize = 200;
const PROVIDERS: usize = 500;
/// Submissions per second: each carries rate ÷ this many reports.
const BATCHES_PER_SECOND: usize = 20;
/// Submissions in flight at most.
const MAX_IN_FLIGHT: usize = 8;
/// How long the tail of the pipeline may take to settle after the last submission.
const SETTLE: Duration = Duration::from_secs(60);
/// The target.
const TARGET_P99: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry =
        std::env::var("RUST_LOG").is_ok().then(|| radfin_service::telemetry::init("freshness-bench")).transpose()?;
    let rate = env_count("RADFIN_BENCH_FRESHNESS_RATE", 1_000)?;
    let secs = env_count("RADFIN_BENCH_FRESHNESS_SECS", 30)?;
    let spec = MonthSpec {
        period: "2026-11".parse()?,
        clients: CLIENTS,
        providers: PROVIDERS,
        reports: rate * secs,
        seed: 11,
    };
    let month = generate_month(&spec);
    let stack = Stack::start().await?;
    let run = drive(&stack, &month, rate).await;
    let stopped = stack.stop().await.context("stopping the services");
    let run = run?;
    stopped?;

    let table = table(&run, rate, secs);
    println!("\n{table}");
    let out = std::env::var_os("RADFIN_BENCH_OUT").map_or_else(|| PathBuf::from("target/bench"), PathBuf::from);
    std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("freshness.md"), &table))
        .with_context(|| format!("cannot write {}", out.join("freshness.md").display()))?;
    Ok(())
}

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().with_context(|| format!("{name}={v:?}")),
        _ => Ok(default),
    }
}

struct Run {
    /// Report events submitted, and how long the submission took.
    submitted: usize,
    submitting: Duration,
    /// Freshness of every change received, sorted.
    latencies: Vec<Duration>,
    /// Messages received, and changes of rows removed (not measured).
    messages: usize,
    removed: usize,
}

async fn drive(stack: &Stack, month: &GeneratedMonth, rate: usize) -> anyhow::Result<Run> {
    radfin_harness::put_month_reference_data(stack, month).await?;
    let mut stream = stack
        .reporting_client()
        .await?
        .watch_summary(WatchSummaryRequest::default())
        .await
        .context("WatchSummary")?
        .into_inner();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let collector = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let (mut messages, mut removed) = (0, 0);
        loop {
            let message: WatchSummaryResponse = tokio::select! {
                m = stream.message() => match m? {
                    Some(m) => m,
                    None => break,
                },
                _ = done_rx.changed() => break,
            };
            let received = chrono::Utc::now();
            messages += 1;
            for c in &message.changes {
                if c.removed {
                    removed += 1;
                    continue;
                }
                let written = chrono::DateTime::parse_from_rfc3339(&c.updated_at).context("updated_at")?;
                latencies.push((received - written.with_timezone(&chrono::Utc)).to_std().unwrap_or_default());
            }
        }
        anyhow::Ok((latencies, messages, removed))
    });

    // Batches go out on a fixed schedule, several in flight, so a slow call does not slow the load.
    let ingest = stack.ingest_client().await?;
    let per_batch = rate.div_ceil(BATCHES_PER_SECOND).max(1);
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / BATCHES_PER_SECOND as u32);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = tokio::task::JoinSet::new();
    let started = Instant::now();
    for chunk in month.reports.chunks(per_batch) {
        ticks.tick().await;
        while in_flight.len() >= MAX_IN_FLIGHT {
            in_flight.join_next().await.context("a submission")???;
        }
        let mut ingest = ingest.clone();
        let reports = chunk.iter().map(ReportEvent::from).collect();
        in_flight.spawn(async move { ingest.submit_batch(SubmitBatchRequest { reports }).await.map(|_| ()) });
    }
    while let Some(submitted) = in_flight.join_next().await {
        submitted??;
    }
    let submitting = started.elapsed();
    println!(
        "freshness: {} report events submitted in {:.1} s ({}/s)",
        month.reports.len(),
        submitting.as_secs_f64(),
        per_second(month.reports.len(), submitting)
    );
    // The summary settles: the ledger's view of the month is what the summary holds.
    let deadline = Instant::now() + SETTLE;
    loop {
        let differences = radfin_harness::margin_summary_differences(stack, month.period).await?;
        let live = radfin_harness::live_view_differences(stack, month.period).await?;
        if differences.is_empty() && live.is_empty() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the pipeline did not settle within {SETTLE:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // What was committed last reaches the stream within a few polls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = done_tx.send(true);
    let (mut latencies, messages, removed) = collector.await??;
    latencies.sort_unstable();
    anyhow::ensure!(!latencies.is_empty(), "the stream delivered no change");
    Ok(Run { submitted: month.reports.len(), submitting, latencies, messages, removed })
}

/// The `q`-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[Duration], q: u32) -> Duration {
    let rank = (sorted.len() * q as usize).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Per second, rounded down.
fn per_second(count: usize, elapsed: Duration) -> u128 {
    count as u128 * 1_000_000 / elapsed.as_micros().max(1)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn table(run: &Run, rate: usize, secs: usize) -> String {
    let l = &run.latencies;
    let p99 = quantile(l, 99);
    let mut t = String::new();
    let _ = writeln!(t, "| freshness of `WatchSummary` (ledger transaction start → change received) | value |");
    let _ = writeln!(t, "| --- | ---: |");
    let _ = writeln!(
        t,
        "| load: report events submitted ({rate}/s asked for {secs} s; 200 clients, 500 radiologists) | {} in {:.1} s = {}/s |",
        run.submitted,
        run.submitting.as_secs_f64(),
        per_second(run.submitted, run.submitting)
    );
    let _ = writeln!(
        t,
        "| changes received (in {} messages; {} removals not timed) | {} |",
        run.messages,
        run.removed,
        l.len()
    );
    let _ = writeln!(t, "| p50 | {} |", ms(quantile(l, 50)));
    let _ = writeln!(t, "| p95 | {} |", ms(quantile(l, 95)));
    let _ = writeln!(
        t,
        "| p99 (target ≤ {}) | **{}** — {} |",
        ms(TARGET_P99),
        ms(p99),
        if p99 <= TARGET_P99 { "met" } else { "not met" }
    );
    let _ = writeln!(t, "| max | {} |", ms(*l.last().unwrap_or(&Duration::ZERO)));
    t
}
