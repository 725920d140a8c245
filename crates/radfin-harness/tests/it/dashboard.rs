//! The dashboard in a real browser: headless Debian `chromium` driven by `playwright-core`
//! (`crates/radfin-reporting/tests/browser/dashboard.mjs`; `cargo xtask test` installs both) opens
//! the page the reporting service serves over three generated months (two closed, one of them
//! rerun and applied, one open, with held reports and a sync run), waits for every chart to draw
//! its data, requires no console or page error, tabs through the page, changes the period with
//! the keyboard, downloads a CSV, sees the page refresh itself, and saves a full-page screenshot
//! to `target/dashboard.png`.

use std::path::PathBuf;

use radfin_proto::ingest::v1::SubmitBatchRequest;
use radfin_proto::ledger::v1 as ledger;
use radfin_testkit::{GeneratedMonth, MonthSpec, SPEC_PROVIDER_RULES, client_rules_document, generate_month};

use super::*;

const MONTHS: [&str; 3] = ["2026-08", "2026-09", "2026-10"];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn put_reference_data(stack: &Stack, month: &GeneratedMonth, first: bool) {
    let mut p = stack.pricing_client().await.unwrap();
    if first {
        for v in &month.providers {
            p.put_provider(pricing::PutProviderRequest { provider: Some(v.into()) }).await.unwrap();
        }
        p.put_provider_rules(pricing::PutProviderRulesRequest {
            effective_from: "2020-01-01".into(),
            document: SPEC_PROVIDER_RULES.into(),
        })
        .await
        .unwrap();
        for (i, c) in month.clients.iter().enumerate() {
            p.put_client(pricing::PutClientRequest { client: Some(c.into()) }).await.unwrap();
            p.put_client_rules(pricing::PutClientRulesRequest {
                client_id: c.client_id.to_string(),
                effective_from: "2020-01-01".into(),
                document: client_rules_document(i, &c.client_id, c.currency).to_string(),
            })
            .await
            .unwrap();
        }
    }
    for r in month.fx.rates() {
        p.put_fx_rate(pricing::PutFxRateRequest {
            rate_date: r.rate_date.format("%Y-%m-%d").to_string(),
            currency: r.currency.to_string(),
            inr_per_unit: r.inr_per_unit.to_string(),
            reason: "dashboard test".into(),
        })
        .await
        .unwrap();
    }
}

async fn settled(stack: &Stack, period: &str) {
    eventually(&format!("{period} to settle"), || async {
        let p = period.parse().unwrap();
        (radfin_harness::live_view_differences(stack, p).await.unwrap().is_empty()
            && radfin_harness::margin_summary_differences(stack, p).await.unwrap().is_empty())
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_every_panel_in_headless_chromium_without_errors() {
    let script = workspace().join("crates/radfin-reporting/tests/browser/dashboard.mjs");
    let modules = script.with_file_name("node_modules").join("playwright-core");
    assert!(
        modules.is_dir(),
        "{} is missing: run `npm ci` in {} (`cargo xtask test` does)",
        modules.display(),
        script.parent().unwrap().display()
    );

    let stack = Stack::start().await.unwrap();
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut l = stack.ledger_client().await.unwrap();
    for (i, period) in MONTHS.iter().enumerate() {
        let spec = MonthSpec { period: period.parse().unwrap(), clients: 12, providers: 24, reports: 500, seed: 7 };
        let month = generate_month(&spec);
        put_reference_data(&stack, &month, i == 0).await;
        let events: Vec<ReportEvent> = month.reports.iter().map(ReportEvent::from).collect();
        ingest.submit_batch(SubmitBatchRequest { reports: events }).await.unwrap();
        settled(&stack, period).await;
    }
    for period in &MONTHS[..2] {
        l.close_period(ledger::ClosePeriodRequest { period: (*period).into(), reason: "month end".into() })
            .await
            .unwrap();
    }
    // A late September report (held, then booked by the rerun: volume), and retroactive rule
    // changes for two clients (price); September is rerun with them and the rerun applied.
    let spec = MonthSpec { period: MONTHS[1].parse().unwrap(), clients: 12, providers: 24, reports: 0, seed: 7 };
    let month = generate_month(&spec);
    let mut late_september = night_mri("LATE-SEP-1", "HOSP-004");
    late_september.provider_id = "RAD-0002".into();
    late_september.finalized_at = "2026-09-18T06:00:00Z".into();
    ingest.submit_batch(SubmitBatchRequest { reports: vec![late_september] }).await.unwrap();
    eventually("the late September report to be held", || async {
        let mut conn = stack.db.pool().get().await.unwrap();
        let held = radfin_db::held::current(&mut conn, &radfin_db::held::HeldFilter::default()).await.unwrap();
        held.iter().any(|h| h.report_id.as_str() == "LATE-SEP-1").then_some(())
    })
    .await;
    let mut p = stack.pricing_client().await.unwrap();
    for (client, document) in [(0, 1), (2, 0)] {
        let c = &month.clients[client];
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: c.client_id.to_string(),
            effective_from: "2020-01-01".into(),
            document: client_rules_document(document, &c.client_id, c.currency).to_string(),
        })
        .await
        .unwrap();
    }
    let rerun = |mode: ledger::RerunMode, run_id: u64| ledger::RerunPeriodRequest {
        period: MONTHS[1].into(),
        reason: "renegotiated rates".into(),
        mode: mode as i32,
        run_id,
    };
    let preview = l.rerun_period(rerun(ledger::RerunMode::Preview, 0)).await.unwrap().into_inner();
    let run_id = preview.manifest.unwrap().run_id;
    l.rerun_period(rerun(ledger::RerunMode::Apply, run_id)).await.unwrap();
    // Held reports: a radiologist nobody knows, and a late report for closed August.
    let mut unknown = night_mri("HELD-UNKNOWN-1", "HOSP-001");
    unknown.provider_id = "RAD-9999".into();
    unknown.finalized_at = "2026-10-12T06:00:00Z".into();
    let mut late = night_mri("HELD-LATE-1", "HOSP-001");
    late.provider_id = "RAD-0001".into();
    late.finalized_at = "2026-08-20T06:00:00Z".into();
    ingest.submit_batch(SubmitBatchRequest { reports: vec![unknown, late] }).await.unwrap();
    eventually("both reports to be held", || async {
        let mut conn = stack.db.pool().get().await.unwrap();
        let held = radfin_db::held::current(&mut conn, &radfin_db::held::HeldFilter::default()).await.unwrap();
        (held.len() >= 2).then_some(())
    })
    .await;
    settled(&stack, MONTHS[2]).await;
    // A sync run, as ingest records one (this stack has no sync source configured).
    {
        let mut conn = stack.db.pool().get().await.unwrap();
        let at = chrono::Utc::now();
        radfin_db::sync_runs::insert(
            &mut conn,
            &radfin_db::sync_runs::NewSyncRun {
                trigger: radfin_db::sync_runs::SyncTrigger::Schedule,
                source: "postgres://his.example:5432/his".into(),
                source_table: "finalized_reports".into(),
                window_start: "2026-10-01T00:00:00+05:30".parse().unwrap(),
                window_end: at,
                started_at: at - chrono::Duration::milliseconds(840),
                finished_at: at,
                counts: radfin_db::sync_runs::SyncCounts { read: 500, new: 0, changed: 0, unchanged: 500, rejected: 0 },
                rejected: Vec::new(),
                outcome: radfin_db::sync_runs::SyncOutcome::Succeeded,
            },
        )
        .await
        .unwrap();
    }

    let url = format!("http://{}/", stack.reporting_http);
    let screenshot = workspace().join("target/dashboard.png");
    let node = std::env::var("RADFIN_TEST_NODE").unwrap_or_else(|_| "node".to_owned());
    let out = tokio::process::Command::new(&node)
        .arg(&script)
        .arg(&url)
        .arg(&screenshot)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {node}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed ({}):\n{stdout}\n{stderr}", script.display(), out.status);
    assert!(stdout.contains("dashboard ok"), "{stdout}\n{stderr}");
    assert!(std::fs::metadata(&screenshot).map(|m| m.len() > 10_000).unwrap_or(false), "no screenshot");
    stack.stop().await.unwrap();
}
