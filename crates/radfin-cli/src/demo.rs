//! `radfin demo`: drives a generated month through the running services over gRPC (parties,
//! rules and FX rates to pricing, reports to ingest) and prints what the ledger then holds.
//! Running it again changes nothing: every put and every report is idempotent. Calls carry the
//! bearer token of `RADFIN_TOKEN` (puts need `finance`, submissions `ingest`: use an admin token).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use radfin_domain::{BusinessCalendar, ClientId, Period, ProviderId, ReportStatus};
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest};
use radfin_proto::ledger::v1::SummarizePeriodRequest;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::pricing::v1 as pricing;
use radfin_proto::pricing::v1::pricing_service_client::PricingServiceClient;
use radfin_testkit::{ReportMix, generate_reports};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rust_decimal::Decimal;

use crate::connect::connect;
use crate::samples;
use crate::table::{self, inr};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "RADFIN_INGEST_URL", default_value = "http://127.0.0.1:7051")]
    ingest: String,
    #[arg(long, env = "RADFIN_PRICING_URL", default_value = "http://127.0.0.1:7052")]
    pricing: String,
    #[arg(long, env = "RADFIN_LEDGER_URL", default_value = "http://127.0.0.1:7053")]
    ledger: String,
    /// Directory with parties.json, rules/ and fx-rates.json.
    #[arg(long, default_value = "samples")]
    samples: PathBuf,
    #[arg(long)]
    period: Period,
    #[arg(long, default_value_t = 20_000)]
    reports: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Reports per ingest call.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// How long to wait for the pipeline to price and record everything.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

fn date(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub async fn run(args: &Args, out: &mut impl Write) -> anyhow::Result<()> {
    let samples = samples::load(&args.samples, radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS)?;
    let mut pricing = PricingServiceClient::new(connect(&args.pricing).await?);
    let mut ingest = IngestServiceClient::new(connect(&args.ingest).await?);
    let mut ledger = LedgerServiceClient::new(connect(&args.ledger).await?);

    // Reference data: parties, rule versions, FX rates (puts of what is already there are no-ops).
    for p in &samples.providers {
        pricing.put_provider(pricing::PutProviderRequest { provider: Some(p.into()) }).await?;
    }
    for c in &samples.clients {
        pricing.put_client(pricing::PutClientRequest { client: Some(c.into()) }).await?;
    }
    for v in &samples.rule_files.provider {
        pricing
            .put_provider_rules(pricing::PutProviderRulesRequest {
                effective_from: date(v.effective_from),
                document: v.document.clone(),
            })
            .await?;
    }
    for (client_id, v) in &samples.rule_files.clients {
        pricing
            .put_client_rules(pricing::PutClientRulesRequest {
                client_id: client_id.to_string(),
                effective_from: date(v.effective_from),
                document: v.document.clone(),
            })
            .await?;
    }
    for r in &samples.rates {
        pricing
            .put_fx_rate(pricing::PutFxRateRequest {
                rate_date: date(r.rate_date),
                currency: r.currency.to_string(),
                inr_per_unit: r.inr_per_unit.to_string(),
                reason: format!("demo sample rate ({})", r.source),
            })
            .await?;
    }
    writeln!(
        out,
        "reference data: {} providers, {} clients, {} rule versions, {} FX rates",
        samples.providers.len(),
        samples.clients.len(),
        samples.rule_files.provider.len() + samples.rule_files.clients.len(),
        samples.rates.len()
    )?;

    // A month of reports.
    let weights: Vec<(ClientId, u32)> = samples.demo.traffic_weights.iter().map(|(id, w)| (id.clone(), *w)).collect();
    let providers: Vec<ProviderId> = samples.providers.iter().map(|p| p.provider_id.clone()).collect();
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let events = generate_reports(
        &mut rng,
        BusinessCalendar::default(),
        args.period,
        &weights,
        &providers,
        args.reports,
        &ReportMix::default(),
    );
    let mut current: BTreeMap<&str, &radfin_domain::ReportEvent> = BTreeMap::new();
    for e in &events {
        let slot = current.entry(e.report_id.as_str()).or_insert(e);
        if e.revision > slot.revision {
            *slot = e;
        }
    }
    let expected = current.values().filter(|e| e.status == ReportStatus::Final).count() as u64;

    let started = Instant::now();
    let (mut accepted, mut duplicates) = (0, 0);
    for chunk in events.chunks(args.batch.max(1)) {
        let reports: Vec<ReportEvent> = chunk.iter().map(ReportEvent::from).collect();
        let r = ingest.submit_batch(SubmitBatchRequest { reports }).await?.into_inner();
        accepted += r.accepted;
        duplicates += r.duplicates;
    }
    writeln!(
        out,
        "ingest: {} report events submitted in {:.1?} ({accepted} accepted, {duplicates} already stored)",
        events.len(),
        started.elapsed()
    )?;

    // Wait until every current, final report is in the ledger or held.
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let (summary, held) = loop {
        let summary =
            ledger.summarize_period(SummarizePeriodRequest { period: args.period.to_string() }).await?.into_inner();
        let held = pricing
            .list_held_reports(pricing::ListHeldReportsRequest {
                status: String::new(),
                period: args.period.to_string(),
            })
            .await?
            .into_inner()
            .reports;
        let held_final = held.len() as u64;
        if summary.reports + held_final >= expected {
            break (summary, held);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the pipeline has recorded {} of {expected} reports ({} held) after {:?}",
            summary.reports,
            held_final,
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let elapsed = started.elapsed();
    writeln!(
        out,
        "pipeline: {} reports in the ledger, {} held, after {:.1?} ({})\n",
        summary.reports,
        held.len(),
        elapsed,
        if accepted == 0 {
            "nothing new to price".to_owned()
        } else {
            format!("{} reports/s end to end", u128::from(expected) * 1000 / elapsed.as_millis().max(1))
        }
    )?;

    writeln!(
        out,
        "Ledger for {} (the live run: study lines per report, retainer fees and minimum shortfalls as \
         client-level lines; exactly the engine's price of the stored month; INR)",
        args.period
    )?;
    let mut t = table::new(&["Client", "Reports", "Revenue (contract)", "Revenue", "COGS", "Margin", "Margin %"], 1);
    let names: BTreeMap<String, &str> =
        samples.clients.iter().map(|c| (c.client_id.to_string(), c.name.as_str())).collect();
    for c in &summary.clients {
        let revenue: Decimal = c.revenue_inr.parse()?;
        let margin: Decimal = c.margin_inr.parse()?;
        t.add_row(vec![
            format!("{} {}", c.client_id, names.get(&c.client_id).copied().unwrap_or("")),
            c.reports.to_string(),
            format!("{} {}", c.revenue, c.currency),
            inr(revenue),
            inr(c.cogs_inr.parse()?),
            inr(margin),
            table::pct(margin_pct(margin, revenue)),
        ]);
    }
    let (revenue, margin): (Decimal, Decimal) = (summary.revenue_inr.parse()?, summary.margin_inr.parse()?);
    t.add_row(vec![
        "Total".to_owned(),
        summary.reports.to_string(),
        String::new(),
        inr(revenue),
        inr(summary.cogs_inr.parse()?),
        inr(margin),
        table::pct(margin_pct(margin, revenue)),
    ]);
    writeln!(out, "{t}\n")?;

    if !held.is_empty() {
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for h in &held {
            *counts.entry((h.status.clone(), format!("{}: {}", h.client_id, h.reason))).or_default() += 1;
        }
        writeln!(out, "Held reports (visible with ListHeldReports; priced when what they wait for arrives)")?;
        let mut t = table::new(&["Status", "Reason", "Reports"], 2);
        for ((status, reason), n) in counts {
            t.add_row(vec![status, reason, n.to_string()]);
        }
        writeln!(out, "{t}")?;
    }
    writeln!(out)?;
    let mut clients = crate::month_end::Clients { pricing, ingest, ledger };
    crate::month_end::run(&mut clients, &samples, args.period, out).await
}

fn margin_pct(margin: Decimal, revenue: Decimal) -> Option<Decimal> {
    (!revenue.is_zero()).then(|| radfin_domain::rounding::round_half_away(margin * Decimal::ONE_HUNDRED / revenue, 2))
}
