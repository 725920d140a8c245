//! Prices a generated month of 1,000,000 reports over 200 clients and 500 radiologists: both
//! sides, every contract type, tier mode, tier scope and currency. Target: ≥ 1,000,000 reports/s
//! on one core (the engine is single-threaded).
//!
//! Also times the floor any month pricing pays: sorting the month's reports by (client_id,
//! finalized_at, report_id). After criterion's own output, the engine and the sort are timed
//! again in alternation (median of [`FLOOR_RUNS`] runs each, so both see the same load on a
//! shared machine) and the engine's time is printed as a multiple of the sort's (target ≤ 2×),
//! as a markdown table that is also written to `$RADFIN_BENCH_OUT/engine.md` (default
//! `target/bench/engine.md`) for `cargo xtask bench` to print at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use radfin_domain::margin::value;
use radfin_domain::{PricingRun, ReportEvent};
use radfin_testkit::{GeneratedMonth, MonthSpec, generate_month};

const REPORTS: usize = 1_000_000;
const CLIENTS: usize = 200;
const PROVIDERS: usize = 500;
/// Timed runs of the engine and of the sort (each) for the engine ÷ sort figure.
const FLOOR_RUNS: usize = 7;

/// The floor: the month's reports in (client, finalization instant, report) order. The engine
/// borrows the reports, so the floor sorts references; the key is unique (a revision of a report
/// is finalized at another instant), so an unstable sort gives the same order as a stable one.
fn sort_floor(reports: &[ReportEvent]) -> Vec<&ReportEvent> {
    let mut sorted: Vec<&ReportEvent> = reports.iter().collect();
    sorted.sort_unstable_by(|a, b| {
        (&a.client_id, a.finalized_at, &a.report_id).cmp(&(&b.client_id, b.finalized_at, &b.report_id))
    });
    sorted
}

fn criterion_benches(c: &mut Criterion, month: &GeneratedMonth, run: &PricingRun) {
    let priced = run.price(&month.catalog, &month.reports).expect("a generated month prices");
    assert_eq!(priced.reports.len() + priced.held.len(), REPORTS);
    assert!(priced.held.is_empty(), "generated parties and rules cover every report");

    let mut group = c.benchmark_group("month");
    group.sample_size(10).measurement_time(Duration::from_secs(15)).throughput(Throughput::Elements(REPORTS as u64));
    group.bench_function("price_1m_reports_200_clients_500_providers", |b| {
        b.iter(|| run.price(&month.catalog, &month.reports).expect("prices"))
    });
    group.bench_function("value_in_inr_1m_reports", |b| b.iter(|| value(&priced, &month.fx)));
    group.bench_function("sort_1m_reports_by_client_finalized_at_report_id", |b| b.iter(|| sort_floor(&month.reports)));
    group.finish();
}

/// The engine's and the sort's median times, measured alternately after one warm-up run each.
fn engine_and_floor(month: &GeneratedMonth, run: &PricingRun) -> (Duration, Duration) {
    let time = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        started.elapsed()
    };
    let mut engine = Vec::with_capacity(FLOOR_RUNS);
    let mut floor = Vec::with_capacity(FLOOR_RUNS);
    for i in 0..=FLOOR_RUNS {
        let e = time(&mut || drop(std::hint::black_box(run.price(&month.catalog, &month.reports).expect("prices"))));
        let s = time(&mut || drop(std::hint::black_box(sort_floor(&month.reports))));
        if i > 0 {
            engine.push(e);
            floor.push(s);
        }
    }
    (median(engine), median(floor))
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort_unstable();
    runs[runs.len() / 2]
}

fn main() {
    let spec = MonthSpec {
        period: "2026-10".parse().expect("a period"),
        clients: CLIENTS,
        providers: PROVIDERS,
        reports: REPORTS,
        seed: 42,
    };
    let month = generate_month(&spec);
    let run = PricingRun { calendar: month.calendar, period: month.period, rules_as_of: chrono::Utc::now() };

    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &month, &run);
    criterion.final_summary();

    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) criterion only checks
    // that each benchmark runs, and so does this.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (engine, floor) = engine_and_floor(&month, &run);
    let table = format!(
        "| engine, one core: {reports} reports, {CLIENTS} clients, {PROVIDERS} radiologists | median of {FLOOR_RUNS} | reports/s |\n\
         | --- | ---: | ---: |\n\
         | price the month (`PricingRun::price`, both sides) | {engine_ms} ms | {engine_rate} |\n\
         | floor: sort the month's reports by (client_id, finalized_at, report_id) | {floor_ms} ms | {floor_rate} |\n\
         | **engine ÷ sort** (target ≤ 2×) | **{ratio}×** | |\n",
        reports = thousands(REPORTS as u128),
        engine_ms = engine.as_millis(),
        engine_rate = thousands(per_second(REPORTS, engine)),
        floor_ms = floor.as_millis(),
        floor_rate = thousands(per_second(REPORTS, floor)),
        ratio = hundredths((engine.as_nanos() * 100 + floor.as_nanos() / 2) / floor.as_nanos().max(1)),
    );
    println!("\n{table}");
    let out = out_dir();
    let written = std::fs::create_dir_all(&out).and_then(|()| std::fs::write(out.join("engine.md"), &table));
    if let Err(e) = written {
        eprintln!("cannot write {}: {e}", out.join("engine.md").display());
    }
}

/// Where the tables go: `RADFIN_BENCH_OUT`, or the workspace's `target/bench`.
fn out_dir() -> PathBuf {
    std::env::var_os("RADFIN_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"))
}

fn per_second(n: usize, elapsed: Duration) -> u128 {
    n as u128 * 1_000_000_000 / elapsed.as_nanos().max(1)
}

/// `1234567` → `1,234,567`.
fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value in hundredths, e.g. `238` → `2.38`.
fn hundredths(n: u128) -> String {
    format!("{}.{:02}", n / 100, n % 100)
}
