//! The exact live view over the real services (spec §6): random months for every contract
//! type, tier mode and scope, submitted in random orders and batch sizes, with duplicates,
//! revisions, cancellations and moves to another period or client. Once settled, every
//! client-month's live totals equal the engine's price of the stored month (contract currency
//! and INR), and every report's entries sum to its current study line and COGS.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use radfin_harness::{Rng, Stack, live_view_differences};
use radfin_proto::common::v1::{Grade, Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest};
use radfin_proto::ledger::v1::ListPeriodEntriesRequest;
use radfin_proto::pricing::v1 as pricing;
use rust_decimal::Decimal;
use serde_json::json;

use crate::{PROVIDER_RULES, client, provider};

const CLIENTS: usize = 12;

fn client_id(i: usize) -> String {
    format!("HOSP-{i:02}")
}

/// Client i: contract i % 3 (per study, minimum, retainer), mode (i / 3) % 2, scope i / 6;
/// odd clients bill in USD. Small tiers so a month of a few dozen reports crosses them.
fn rules(i: usize) -> String {
    let usd = i % 2 == 1;
    let contract = match i % 3 {
        0 => json!({"type": "PER_STUDY"}),
        1 => json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": if usd { "95.00" } else { "9000.00" }}),
        _ => json!({"type": "RETAINER", "monthly_fee": if usd { "40.00" } else { "3500.00" }, "included_studies": 3}),
    };
    let prices = if usd {
        json!({"XRAY": ["9.00", "8.00", "7.00"], "MRI": ["55.00", "50.00", "45.00"], "CT": ["40.00", "35.50", "30.25"]})
    } else {
        json!({"XRAY": ["500.00", "400.00", "300.00"], "MRI": ["4000.00", "3800.00", "3600.00"], "CT": ["2000.00", "1900.00", "1800.00"]})
    };
    json!({
        "client_id": client_id(i),
        "currency": if usd { "USD" } else { "INR" },
        "contract": contract,
        "tier_mode": if (i / 3).is_multiple_of(2) { "GRADUATED" } else { "VOLUME" },
        "tier_scope": if i / 6 == 0 { "ALL_MODALITIES" } else { "PER_MODALITY" },
        "tiers": [{"up_to": 3}, {"up_to": 7}, {"up_to": null}],
        "unit_prices": prices,
        "additional_region_pct": "12.5",
        "uplift_pct": {"STAT": "20", "URGENT": "7.5"},
        "tax": {"treatment": if usd { "EXPORT_LUT" } else { "TAXABLE" }}
    })
    .to_string()
}

async fn reference_data(stack: &Stack) {
    let mut p = stack.pricing_client().await.unwrap();
    for (id, grade) in [("RAD-007", Grade::Consultant), ("RAD-001", Grade::Senior), ("RAD-002", Grade::Junior)] {
        p.put_provider(pricing::PutProviderRequest { provider: Some(provider(id, grade, "2014-01-01")) })
            .await
            .unwrap();
    }
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2025-01-01".into(),
        document: PROVIDER_RULES.into(),
    })
    .await
    .unwrap();
    for i in 0..CLIENTS {
        let currency = if i % 2 == 1 { "USD" } else { "INR" };
        p.put_client(pricing::PutClientRequest { client: Some(client(&client_id(i), currency)) }).await.unwrap();
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: client_id(i),
            effective_from: "2025-01-01".into(),
            document: rules(i),
        })
        .await
        .unwrap();
    }
    // A USD rate every day from late September to the end of November.
    let start = chrono::NaiveDate::from_ymd_opt(2026, 9, 25).unwrap();
    for day in 0..70 {
        let date = start + chrono::Duration::days(day);
        p.put_fx_rate(pricing::PutFxRateRequest {
            rate_date: date.format("%Y-%m-%d").to_string(),
            currency: "USD".into(),
            inr_per_unit: Decimal::new(83_100_000 + day * 13_717, 6).to_string(),
            reason: "test rates".into(),
        })
        .await
        .unwrap();
    }
}

/// Report events with unique (id, revision): revisions change client, modality, time (also
/// into November) or cancel.
fn events(rng: &mut Rng, n: usize) -> Vec<ReportEvent> {
    let modalities = [Modality::Xray, Modality::Ct, Modality::Mri];
    let priorities = [Priority::Routine, Priority::Urgent, Priority::Stat];
    let providers = ["RAD-007", "RAD-001", "RAD-002"];
    let mut out = Vec::new();
    for r in 0..n {
        let revisions = 1 + usize::from(rng.below(4) == 0) + usize::from(rng.below(8) == 0);
        for revision in 1..=revisions {
            // Mostly October (IST), a few early November.
            let second = if rng.below(12) == 0 { 31 * 86_400 + rng.below(5 * 86_400) } else { rng.below(31 * 86_400) };
            let at = "2026-09-30T18:30:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()
                + chrono::Duration::seconds(second as i64);
            out.push(ReportEvent {
                report_id: format!("LIVE-{r:04}"),
                revision: revision as u32,
                client_id: client_id(rng.below(CLIENTS)),
                provider_id: providers[rng.below(3)].into(),
                modality: modalities[rng.below(3)] as i32,
                body_regions: 1 + rng.below(3) as u32,
                priority: priorities[rng.below(3)] as i32,
                finalized_at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                status: if rng.below(10) == 0 { ReportStatus::Cancelled } else { ReportStatus::Final } as i32,
            });
        }
    }
    out
}

async fn settled(stack: &Stack, periods: &[&str]) -> Vec<String> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut differences = Vec::new();
        for p in periods {
            differences.extend(live_view_differences(stack, p.parse().unwrap()).await.unwrap());
            differences.extend(radfin_harness::margin_summary_differences(stack, p.parse().unwrap()).await.unwrap());
        }
        if differences.is_empty() || Instant::now() > deadline {
            return differences;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Per report and side, the sum of the live entries of `period`.
async fn report_sums(stack: &Stack, period: &str) -> BTreeMap<(String, i32), Decimal> {
    let mut ledger = stack.ledger_client().await.unwrap();
    let mut sums = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = ledger
            .list_period_entries(ListPeriodEntriesRequest {
                period: period.into(),
                page_size: 1000,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for e in page.entries.iter().filter(|e| e.line == "STUDY") {
            *sums.entry((e.report_id.clone(), e.side)).or_default() += e.amount.parse::<Decimal>().unwrap();
        }
        if page.next_page_token.is_empty() {
            return sums;
        }
        token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_equals_the_engine_whatever_the_arrival() {
    for seed in [0x9E37_79B9_7F4A_7C15_u64, 0xD1B5_4A32_D192_ED03] {
        let stack = Stack::start().await.unwrap();
        let mut rng = Rng(seed);
        // Some reports arrive before their parties and rules (held, then released).
        let events = events(&mut rng, 160);
        let mut arrivals: Vec<ReportEvent> = events.clone();
        arrivals.extend((0..events.len() / 3).map(|_| events[rng.below(events.len())].clone()));
        for i in (1..arrivals.len()).rev() {
            arrivals.swap(i, rng.below(i + 1));
        }
        let mut ingest = stack.ingest_client().await.unwrap();
        let early = arrivals.len() / 5;
        ingest.submit_batch(SubmitBatchRequest { reports: arrivals[..early].to_vec() }).await.unwrap();
        reference_data(&stack).await;
        let mut i = early;
        while i < arrivals.len() {
            let n = 1 + rng.below(40);
            let batch = arrivals[i..(i + n).min(arrivals.len())].to_vec();
            ingest.submit_batch(SubmitBatchRequest { reports: batch }).await.unwrap();
            i += n;
        }

        let differences = settled(&stack, &["2026-10", "2026-11"]).await;
        assert!(
            differences.is_empty(),
            "seed {seed:#x}: the live view differs from the engine:\n{}",
            differences.join("\n")
        );

        // Every report's entries sum to its current study line (zero for a superseded, moved or
        // cancelled revision): checked through the engine view's per-client totals above, and
        // here per report, nothing is left on a report that moved away or was cancelled.
        let mut current: BTreeMap<&str, &ReportEvent> = BTreeMap::new();
        for e in &events {
            if current.get(e.report_id.as_str()).is_none_or(|c| c.revision < e.revision) {
                current.insert(&e.report_id, e);
            }
        }
        for period in ["2026-10", "2026-11"] {
            for ((report_id, side), sum) in report_sums(&stack, period).await {
                let e = current[report_id.as_str()];
                let here = e.finalized_at.as_str() < "2026-10-31T18:30:00Z" && period == "2026-10"
                    || e.finalized_at.as_str() >= "2026-10-31T18:30:00Z" && period == "2026-11";
                if !here || e.status == ReportStatus::Cancelled as i32 {
                    assert!(sum.is_zero(), "seed {seed:#x}: {report_id} side {side} keeps {sum} in {period}");
                }
            }
        }

        // A rule change reprices the open months: a new version for two clients (a retainer
        // and a minimum), effective for the whole period, with other prices and tiers.
        let mut p = stack.pricing_client().await.unwrap();
        for i in [2, 7] {
            let document =
                rules(i).replace("\"up_to\":3", "\"up_to\":2").replace("500.00", "555.55").replace("9.00", "9.99");
            p.put_client_rules(pricing::PutClientRulesRequest {
                client_id: client_id(i),
                effective_from: "2026-10-01".into(),
                document,
            })
            .await
            .unwrap();
        }
        let differences = settled(&stack, &["2026-10", "2026-11"]).await;
        assert!(differences.is_empty(), "seed {seed:#x}, after a rule change:\n{}", differences.join("\n"));
        stack.stop().await.unwrap();
    }
}
