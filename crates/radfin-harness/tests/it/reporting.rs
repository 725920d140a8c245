//! The reporting service over a month that lives (spec §7): after a random mix of submissions,
//! revisions and cancellations over two months, a close, a late report and a retroactive price
//! change rerun and applied, the summary it serves equals the aggregate of the ledger's current
//! view to the paisa, a rebuild from scratch writes the same rows, the stream of changes
//! delivers a report that lands, and a rerun's effects add up to its differences.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use radfin_proto::ingest::v1::SubmitBatchRequest;
use radfin_proto::ledger::v1 as ledger;
use radfin_proto::reporting::v1 as reporting;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::*;

const SEPTEMBER: &str = "2026-09";
const OCTOBER: &str = "2026-10";
const SEED: u64 = 20261008;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// (period, client, modality, grade) → (reports, revenue INR, COGS INR, margin INR).
type Aggregate = BTreeMap<(String, String, String, String), (u64, Decimal, Decimal, Decimal)>;

/// The ledger's current view of the periods, as `radfin_db::margin::ledger_view` computes it
/// from the entries.
async fn ledger_aggregate(stack: &Stack, periods: &[&str]) -> Aggregate {
    let mut conn = stack.db.pool().get().await.unwrap();
    let mut out = Aggregate::new();
    for p in periods {
        for r in radfin_db::margin::ledger_view(&mut conn, p.parse().unwrap()).await.unwrap() {
            out.insert(
                (r.period, r.client_id, r.modality, r.grade),
                (r.reports as u64, r.revenue_inr, r.cogs_inr, r.margin_inr),
            );
        }
    }
    out
}

fn by_all_dimensions() -> Vec<i32> {
    [
        reporting::Dimension::Period,
        reporting::Dimension::Client,
        reporting::Dimension::Modality,
        reporting::Dimension::Grade,
    ]
    .iter()
    .map(|d| *d as i32)
    .collect()
}

/// What the reporting service summarizes, grouped by every dimension, checking each row's
/// margin and margin % on the way.
async fn served_aggregate(stack: &Stack) -> Aggregate {
    let response = stack
        .reporting_client()
        .await
        .unwrap()
        .summarize(reporting::SummarizeRequest {
            from_period: SEPTEMBER.into(),
            to_period: OCTOBER.into(),
            group_by: by_all_dimensions(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Aggregate::new();
    for r in response.rows {
        let (revenue, cogs, margin) = (dec(&r.revenue_inr), dec(&r.cogs_inr), dec(&r.margin_inr));
        assert_eq!(margin, revenue - cogs, "{r:?}");
        let pct = (!revenue.is_zero())
            .then(|| radfin_domain::rounding::round_half_away(margin * Decimal::ONE_HUNDRED / revenue, 2));
        assert_eq!(r.margin_pct.parse::<Decimal>().ok(), pct, "{r:?}");
        out.insert((r.period, r.client_id, r.modality, r.grade), (r.reports, revenue, cogs, margin));
    }
    out
}

/// Waits until the live views of the open months equal the engine's price of what is stored
/// and the summary equals the ledger.
async fn settled(stack: &Stack, open: &[&str]) {
    eventually("the pipeline to settle", || async {
        for p in open {
            if !radfin_harness::live_view_differences(stack, p.parse().unwrap()).await.unwrap().is_empty() {
                return None;
            }
        }
        for p in [SEPTEMBER, OCTOBER] {
            if !radfin_harness::margin_summary_differences(stack, p.parse().unwrap()).await.unwrap().is_empty() {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// A random report of one of the two months.
fn random_report(rng: &mut SmallRng, id: &str) -> ReportEvent {
    let client = if rng.random_bool(0.6) { "HOSP-INR" } else { "HOSP-USD" };
    let mut r = night_mri(id, client);
    r.provider_id = if rng.random_bool(0.5) { "RAD-007" } else { "RAD-001" }.into();
    r.modality = [Modality::Mri, Modality::Ct, Modality::Xray][rng.random_range(0..3)] as i32;
    r.body_regions = rng.random_range(1..=3);
    r.priority =
        [Priority::Routine, Priority::Routine, Priority::Urgent, Priority::Stat][rng.random_range(0..4)] as i32;
    let month = if rng.random_bool(0.5) { "09" } else { "10" };
    r.finalized_at = format!(
        "2026-{month}-{:02}T{:02}:{:02}:00Z",
        rng.random_range(1..=28),
        rng.random_range(0..17),
        rng.random_range(0..60)
    );
    r
}

async fn put_usd_rates(stack: &Stack) {
    let mut p = stack.pricing_client().await.unwrap();
    for month in [9, 10] {
        for day in 1..=30 {
            p.put_fx_rate(pricing::PutFxRateRequest {
                rate_date: format!("2026-{month:02}-{day:02}"),
                currency: "USD".into(),
                inr_per_unit: format!("83.{:06}", 100_000 + month * 10_000 + day * 1_717),
                reason: "test rates".into(),
            })
            .await
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_equals_the_ledger_after_revisions_a_close_and_a_rerun_and_rebuilds_to_the_same_rows() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    put_usd_rates(&stack).await;
    let mut rng = SmallRng::seed_from_u64(SEED);

    // 80 reports over September and October; then revisions of a third of them (another
    // modality, priority or date, sometimes moving to the other month or client) and
    // cancellations of a tenth, all submitted in random order and batches.
    let mut events: Vec<ReportEvent> = (0..80).map(|i| random_report(&mut rng, &format!("R-{i:03}"))).collect();
    let originals = events.clone();
    for r in &originals {
        if rng.random_bool(0.33) {
            let mut revised = random_report(&mut rng, &r.report_id);
            revised.revision = 2;
            events.push(revised);
        } else if rng.random_bool(0.1) {
            events.push(ReportEvent { revision: 2, status: ReportStatus::Cancelled as i32, ..r.clone() });
        }
    }
    events.shuffle(&mut rng);
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut rest = events.as_slice();
    while !rest.is_empty() {
        let n = rng.random_range(1..=12).min(rest.len());
        let (batch, tail) = rest.split_at(n);
        ingest.submit_batch(SubmitBatchRequest { reports: batch.to_vec() }).await.unwrap();
        rest = tail;
    }
    settled(&stack, &[SEPTEMBER, OCTOBER]).await;
    assert_eq!(served_aggregate(&stack).await, ledger_aggregate(&stack, &[SEPTEMBER, OCTOBER]).await);

    // Close October; a late October report is held; HOSP-INR's prices drop retroactively (the
    // open September is repriced live); October is rerun and the rerun applied.
    let mut l = stack.ledger_client().await.unwrap();
    l.close_period(ledger::ClosePeriodRequest { period: OCTOBER.into(), reason: "month end".into() }).await.unwrap();
    let mut late = night_mri("LATE-001", "HOSP-USD");
    late.finalized_at = "2026-10-20T06:00:00Z".into();
    ingest.submit_batch(SubmitBatchRequest { reports: vec![late] }).await.unwrap();
    let mut p = stack.pricing_client().await.unwrap();
    eventually("the late report to be held", || {
        let mut p = p.clone();
        async move {
            let held = p
                .list_held_reports(pricing::ListHeldReportsRequest {
                    status: "HELD_CLOSED_PERIOD".into(),
                    period: OCTOBER.into(),
                })
                .await
                .unwrap()
                .into_inner();
            held.reports.iter().any(|h| h.report_id == "LATE-001").then_some(())
        }
    })
    .await;
    let lower = client_rules("HOSP-INR", "INR").replace("4000.00", "3100.00").replace("2000.00", "1450.00");
    p.put_client_rules(pricing::PutClientRulesRequest {
        client_id: "HOSP-INR".into(),
        effective_from: "2025-01-01".into(),
        document: lower,
    })
    .await
    .unwrap();
    let rerun = |mode: ledger::RerunMode, run_id: u64| ledger::RerunPeriodRequest {
        period: OCTOBER.into(),
        reason: "renegotiated INR prices".into(),
        mode: mode as i32,
        run_id,
    };
    let preview = l.rerun_period(rerun(ledger::RerunMode::Preview, 0)).await.unwrap().into_inner();
    let run_id = preview.manifest.as_ref().unwrap().run_id;
    let applied = l.rerun_period(rerun(ledger::RerunMode::Apply, run_id)).await.unwrap().into_inner();
    assert!(applied.applied);
    settled(&stack, &[SEPTEMBER]).await;

    // The summary, grouped by every dimension, is the ledger's current view to the paisa.
    let expected = ledger_aggregate(&stack, &[SEPTEMBER, OCTOBER]).await;
    assert!(expected.len() > 6, "a summary worth comparing: {expected:?}");
    assert_eq!(served_aggregate(&stack).await, expected);

    // Totals by client, a client's month and the providers' months agree with it.
    let mut r = stack.reporting_client().await.unwrap();
    let month = r
        .get_client_month(reporting::GetClientMonthRequest { client_id: "HOSP-INR".into(), period: OCTOBER.into() })
        .await
        .unwrap()
        .into_inner();
    assert!(month.closed);
    assert_eq!(month.current_run_id, run_id, "the applied rerun is October's current view");
    let inr_october: Decimal =
        expected.iter().filter(|((p, c, _, _), _)| p == OCTOBER && c == "HOSP-INR").map(|(_, v)| v.1).sum();
    assert_eq!(dec(&month.total.as_ref().unwrap().revenue_inr), inr_october);
    assert_eq!(
        month.rows.iter().map(|x| dec(&x.margin_inr)).sum::<Decimal>(),
        dec(&month.total.as_ref().unwrap().margin_inr)
    );
    let mut provider_cogs = Decimal::ZERO;
    let mut provider_reports = 0;
    for provider in ["RAD-001", "RAD-007"] {
        let m = r
            .get_provider_month(reporting::GetProviderMonthRequest {
                provider_id: provider.into(),
                period: OCTOBER.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.run_id, run_id);
        assert_eq!(m.modalities.iter().map(|x| dec(&x.cogs_inr)).sum::<Decimal>(), dec(&m.cogs_inr));
        provider_cogs += dec(&m.cogs_inr);
        provider_reports += m.reports;
    }
    let october: Vec<_> = expected.iter().filter(|((p, ..), _)| p == OCTOBER).map(|(_, v)| v).collect();
    assert_eq!(provider_cogs, october.iter().map(|v| v.2).sum::<Decimal>(), "Σ radiologists' COGS = the month's");
    assert_eq!(provider_reports, october.iter().map(|v| v.0).sum::<u64>());
    let top = r
        .list_top_clients(reporting::ListTopClientsRequest {
            from_period: SEPTEMBER.into(),
            to_period: OCTOBER.into(),
            limit: 2,
            order: reporting::Order::Top as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .clients;
    assert_eq!(top.len(), 2);
    assert!(dec(&top[0].margin_pct) >= dec(&top[1].margin_pct), "{top:?}");
    let bottom = r
        .list_top_clients(reporting::ListTopClientsRequest {
            limit: 1,
            order: reporting::Order::Bottom as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .clients;
    assert_eq!(bottom[0].client_id, top[1].client_id);

    // The rerun's effect: per client, price + volume + FX = rerun − billed = the difference,
    // in INR and in the contract currency, and exactly what the ledger's apply reported.
    let effect = r.get_rerun_effect(reporting::GetRerunEffectRequest { run_id: 0 }).await.unwrap().into_inner();
    assert_eq!((effect.run_id, effect.period.as_str(), effect.applied), (run_id, OCTOBER, true));
    assert!(!effect.clients.is_empty());
    for c in &effect.clients {
        for (e, billed, rerun) in [
            (c.inr.as_ref().unwrap(), &c.billed_inr, &c.rerun_inr),
            (c.contract.as_ref().unwrap(), &c.billed, &c.rerun),
        ] {
            assert_eq!(dec(&e.price) + dec(&e.volume) + dec(&e.fx), dec(&e.difference), "{}", c.client_id);
            assert_eq!(dec(rerun) - dec(billed), dec(&e.difference), "{}", c.client_id);
        }
        let from_ledger = applied.clients.iter().find(|x| x.client_id == c.client_id).unwrap();
        let (mine, theirs) = (c.inr.as_ref().unwrap(), from_ledger.inr.as_ref().unwrap());
        assert_eq!(
            (dec(&mine.price), dec(&mine.volume), dec(&mine.fx)),
            (dec(&theirs.price), dec(&theirs.volume), dec(&theirs.fx)),
            "{}",
            c.client_id
        );
    }
    let usd = effect.clients.iter().find(|c| c.client_id == "HOSP-USD").unwrap();
    assert!(dec(&usd.inr.as_ref().unwrap().volume) > Decimal::ZERO, "the late report is volume");
    let inr = effect.clients.iter().find(|c| c.client_id == "HOSP-INR").unwrap();
    assert!(dec(&inr.inr.as_ref().unwrap().price) < Decimal::ZERO, "the lower prices are price");
    for pr in &effect.providers {
        let e = pr.effects.as_ref().unwrap();
        assert_eq!(dec(&e.price) + dec(&e.volume) + dec(&e.fx), dec(&pr.rerun) - dec(&pr.paid));
    }

    // A rebuild from scratch: the summary emptied, then rebuilt from the ledger's entries.
    {
        let (client, connection) = tokio_postgres::connect(stack.db.url(), tokio_postgres::NoTls).await.unwrap();
        let connection = tokio::spawn(connection);
        client.execute("DELETE FROM margin_summary", &[]).await.unwrap();
        drop(client);
        connection.await.unwrap().unwrap();
    }
    assert!(served_aggregate(&stack).await.is_empty());
    let rebuilt = r
        .rebuild_summary(reporting::RebuildSummaryRequest {
            period: String::new(),
            reason: "test: from scratch".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rebuilt.rows, expected.len() as u64);
    assert_eq!(rebuilt.periods.iter().map(|p| p.period.as_str()).collect::<Vec<_>>(), [SEPTEMBER, OCTOBER]);
    assert_eq!(served_aggregate(&stack).await, expected);
    let one = r
        .rebuild_summary(reporting::RebuildSummaryRequest { period: OCTOBER.into(), reason: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.rows, october.len() as u64);
    assert_eq!(served_aggregate(&stack).await, expected, "rebuilding again changes nothing");
    let audit = l.list_audit_events(ledger::ListAuditEventsRequest { limit: 20 }).await.unwrap().into_inner().events;
    let rebuilds: Vec<&ledger::AuditEvent> = audit.iter().filter(|e| e.action == "RebuildSummary").collect();
    assert_eq!(rebuilds.len(), 2, "{audit:?}");
    assert!(
        rebuilds
            .iter()
            .any(|e| e.target == "every period" && e.reason == "test: from scratch" && e.outcome == "ALLOWED")
    );
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_delivers_the_change_of_a_report_that_lands() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut first = night_mri("W-001", "HOSP-INR");
    first.finalized_at = "2026-09-10T06:00:00Z".into();
    ingest.submit_batch(SubmitBatchRequest { reports: vec![first.clone()] }).await.unwrap();
    settled(&stack, &[SEPTEMBER]).await;

    let mut stream = stack
        .reporting_client()
        .await
        .unwrap()
        .watch_summary(reporting::WatchSummaryRequest {
            from_period: SEPTEMBER.into(),
            to_period: SEPTEMBER.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // What was there when the call began is not sent again: the next report lands, and the first
    // change seen is its row going from one report to two.
    let landed = Instant::now();
    let second = ReportEvent { report_id: "W-002".into(), ..first.clone() };
    ingest.submit_batch(SubmitBatchRequest { reports: vec![second] }).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("a change within 30 s")
        .unwrap()
        .expect("the stream is open");
    assert!(!change.changes.is_empty());
    let c = &change.changes[0];
    let row = c.row.as_ref().unwrap();
    assert_eq!(
        (
            row.period.as_str(),
            row.client_id.as_str(),
            row.modality.as_str(),
            row.grade.as_str(),
            row.reports,
            c.removed
        ),
        (SEPTEMBER, "HOSP-INR", "MRI", "CONSULTANT", 2, false),
        "{change:?}"
    );
    let written = chrono::DateTime::parse_from_rfc3339(&c.updated_at).unwrap();
    assert!(written <= chrono::DateTime::parse_from_rfc3339(&change.as_of).unwrap());
    let mut conn = stack.db.pool().get().await.unwrap();
    let view = radfin_db::margin::ledger_view(&mut conn, SEPTEMBER.parse().unwrap()).await.unwrap();
    let ledger_row = view.iter().find(|r| r.modality == "MRI").unwrap();
    assert_eq!(dec(&row.revenue_inr), ledger_row.revenue_inr);
    assert!(landed.elapsed() < Duration::from_secs(30));
    drop(stream);
    stack.stop().await.unwrap();
}
