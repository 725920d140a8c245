//! Prices a generated month of 1,000,000 reports over 200 clients and 500 radiologists: both
//! sides, every contract type, tier mode, tier scope and currency. Target: ≥ 1,000,000 reports/s
//! on one core (the engine is single-threaded).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use radfin_domain::PricingRun;
use radfin_domain::margin::value;
use radfin_testkit::{MonthSpec, generate_month};

const REPORTS: usize = 1_000_000;

fn pricing(c: &mut Criterion) {
    let spec = MonthSpec {
        period: "2026-10".parse().expect("a period"),
        clients: 200,
        providers: 500,
        reports: REPORTS,
        seed: 42,
    };
    let month = generate_month(&spec);
    let run = PricingRun { calendar: month.calendar, period: month.period, rules_as_of: chrono::Utc::now() };
    let priced = run.price(&month.catalog, &month.reports).expect("a generated month prices");
    assert_eq!(priced.reports.len() + priced.held.len(), REPORTS);
    assert!(priced.held.is_empty(), "generated parties and rules cover every report");

    let mut group = c.benchmark_group("month");
    group.sample_size(10).measurement_time(Duration::from_secs(15)).throughput(Throughput::Elements(REPORTS as u64));
    group.bench_function("price_1m_reports_200_clients_500_providers", |b| {
        b.iter(|| run.price(&month.catalog, &month.reports).expect("prices"))
    });
    group.bench_function("value_in_inr_1m_reports", |b| b.iter(|| value(&priced, &month.fx)));
    group.finish();
}

criterion_group!(benches, pricing);
criterion_main!(benches);
