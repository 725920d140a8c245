//! Reports per second through the whole pipeline: a generated month of 100,000 reports (50
//! clients on every contract type and currency, 200 radiologists) submitted to ingest in
//! batches over gRPC, committed to PostgreSQL, published on NATS, priced, published again and
//! appended to the ledger, until the ledger holds every current final report (or pricing holds
//! it). Runs the services in-process on a private database and bus prefix.
//!
//! `cargo xtask bench` runs it; `RADFIN_BENCH_REPORTS` changes the size.

use std::time::Instant;

use radfin_domain::{PricingRun, ReportStatus};
use radfin_harness::Stack;
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest};
use radfin_proto::ledger::v1::SummarizePeriodRequest;
use radfin_proto::pricing::v1 as pricing;
use radfin_testkit::{MonthSpec, SPEC_PROVIDER_RULES, client_rules_document, generate_month};
use rust_decimal::Decimal;

fn date(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The services' own logs (batch sizes and timings) when RUST_LOG is set.
    let _telemetry =
        std::env::var("RUST_LOG").is_ok().then(|| radfin_service::telemetry::init("pipeline-bench")).transpose()?;
    let reports: usize = std::env::var("RADFIN_BENCH_REPORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let spec = MonthSpec { period: "2026-10".parse()?, clients: 50, providers: 200, reports, seed: 42 };
    let month = generate_month(&spec);
    let stack = Stack::start().await?;
    let mut p = stack.pricing_client().await?;

    for v in &month.providers {
        p.put_provider(pricing::PutProviderRequest { provider: Some(v.into()) }).await?;
    }
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2020-01-01".into(),
        document: SPEC_PROVIDER_RULES.into(),
    })
    .await?;
    for (i, c) in month.clients.iter().enumerate() {
        p.put_client(pricing::PutClientRequest { client: Some(c.into()) }).await?;
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: c.client_id.to_string(),
            effective_from: "2020-01-01".into(),
            document: client_rules_document(i, &c.client_id, c.currency).to_string(),
        })
        .await?;
    }
    for r in month.fx.rates() {
        p.put_fx_rate(pricing::PutFxRateRequest {
            rate_date: date(r.rate_date),
            currency: r.currency.to_string(),
            inr_per_unit: r.inr_per_unit.to_string(),
            reason: "benchmark".into(),
        })
        .await?;
    }

    // What the ledger must end up with: every current final report, and its COGS to the paisa.
    let offline = PricingRun { calendar: month.calendar, period: month.period, rules_as_of: chrono::Utc::now() }
        .price(&month.catalog, &month.reports)?;
    let expected = offline.reports.iter().filter(|r| r.status == ReportStatus::Final).count() as u64;
    let expected_cogs: Decimal = offline.reports.iter().map(|r| r.cogs).sum();

    let mut ingest = stack.ingest_client().await?;
    let mut ledger = stack.ledger_client().await?;
    let started = Instant::now();
    for chunk in month.reports.chunks(2_000) {
        let reports = chunk.iter().map(ReportEvent::from).collect();
        ingest.submit_batch(SubmitBatchRequest { reports }).await?;
    }
    let ingested = started.elapsed();
    let summary = loop {
        let s =
            ledger.summarize_period(SummarizePeriodRequest { period: month.period.to_string() }).await?.into_inner();
        if s.reports >= expected {
            break s;
        }
        anyhow::ensure!(
            started.elapsed().as_secs() < 1800,
            "only {} of {expected} reports reached the ledger",
            s.reports
        );
        // The summary reads the whole period: poll gently so the measurement is of the pipeline.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    let elapsed = started.elapsed();
    let cogs: Decimal = summary.cogs_inr.parse()?;
    println!(
        "pipeline/{} report events ({} current final reports): ingested in {:.2?}, in the ledger after {:.2?}: {} reports/s end to end",
        month.reports.len(),
        expected,
        ingested,
        elapsed,
        u128::from(expected) * 1000 / elapsed.as_millis().max(1)
    );
    println!(
        "ledger COGS {cogs} INR, engine COGS {expected_cogs} INR: {}",
        if cogs == expected_cogs { "equal" } else { "DIFFERENT" }
    );
    anyhow::ensure!(cogs == expected_cogs, "the ledger's COGS differs from the engine's");
    stack.stop().await
}
