use radfin_proto::common::v1::Modality;
use radfin_proto::ingest::v1::{SubmitBatchRequest, SubmitOutcome, SubmitReportRequest};
use radfin_proto::ledger::v1::{Side, SummarizePeriodRequest};
use radfin_proto::pricing::v1 as pricing;

use super::*;

#[tokio::test]
async fn a_report_yields_one_cogs_and_one_revenue_entry_with_the_specs_amounts() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    let r = ingest
        .submit_report(SubmitReportRequest { report: Some(night_mri("RPT-1", "HOSP-INR")) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.outcome, r.period.as_str()), (SubmitOutcome::Accepted as i32, "2026-10"));

    let e = wait_entries(&stack, "RPT-1", 2).await;
    assert_eq!(e.len(), 2);
    let cogs = e.iter().find(|x| x.side == Side::Cogs as i32).unwrap();
    let revenue = e.iter().find(|x| x.side == Side::Revenue as i32).unwrap();
    // 1100 (RAD-007's MRI override) × 1.5 (2 regions) × 1.20 (consultant) × 1.10 (12 years) × 1.45 (STAT + night)
    assert_eq!((cogs.currency.as_str(), cogs.amount.as_str(), cogs.amount_inr.as_str()), ("INR", "3158.10", "3158.10"));
    assert_eq!(cogs.rule_version, 1);
    // 4000 (first MRI, tier 1) × 1.20 (STAT)
    assert_eq!(
        (revenue.currency.as_str(), revenue.amount.as_str(), revenue.amount_inr.as_str()),
        ("INR", "4800.00", "4800.00")
    );
    assert_eq!((revenue.fx_rate.as_str(), revenue.fx_source.as_str()), ("", ""));
    assert_eq!((cogs.period.as_str(), cogs.revision, cogs.run_id), ("2026-10", 1, revenue.run_id));
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn a_higher_revision_supersedes_and_repeats_add_nothing() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    let first = night_mri("RPT-2", "HOSP-INR");
    ingest.submit_report(SubmitReportRequest { report: Some(first.clone()) }).await.unwrap();
    wait_entries(&stack, "RPT-2", 2).await;

    // The same revision again, alone and in a batch: no-ops.
    let again = ingest.submit_report(SubmitReportRequest { report: Some(first.clone()) }).await.unwrap().into_inner();
    assert_eq!(again.outcome, SubmitOutcome::Duplicate as i32);
    let batch = ingest
        .submit_batch(SubmitBatchRequest { reports: vec![first.clone(), first.clone()] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((batch.accepted, batch.duplicates), (0, 2));

    // Revision 2 corrects the modality to CT.
    let mut second = first.clone();
    second.revision = 2;
    second.modality = Modality::Ct as i32;
    ingest.submit_report(SubmitReportRequest { report: Some(second) }).await.unwrap();
    // Revision 1's lines are reversed (they carry its modality) and revision 2's booked.
    let e = wait_entries(&stack, "RPT-2", 6).await;
    let lines: Vec<(u32, i32, &str, &str)> =
        e.iter().map(|x| (x.revision, x.side, x.entry_kind.as_str(), x.reason.as_str())).collect();
    let (cogs, revenue) = (Side::Cogs as i32, Side::Revenue as i32);
    assert_eq!(
        lines,
        [
            (1, cogs, "BOOKING", ""),
            (1, revenue, "BOOKING", ""),
            (1, cogs, "ADJUSTMENT", "REVISION"),
            (2, cogs, "ADJUSTMENT", "REVISION"),
            (1, revenue, "ADJUSTMENT", "REVISION"),
            (2, revenue, "ADJUSTMENT", "REVISION"),
        ]
    );
    assert_eq!((e[4].amount.as_str(), e[5].amount.as_str()), ("-4800.00", "2400.00")); // MRI 4000, CT 2000 × 1.20
    assert!(e[2..].iter().all(|x| x.adjusts_id == e[0].id || x.adjusts_id == e[1].id));

    // The period's current view counts the report once, at revision 2.
    let mut ledger = stack.ledger_client().await.unwrap();
    let summary =
        ledger.summarize_period(SummarizePeriodRequest { period: "2026-10".into() }).await.unwrap().into_inner();
    assert_eq!((summary.reports, summary.revenue_inr.as_str()), (1, "2400.00"));

    // A fact delivered again (published anew, past the broker's dedupe) adds nothing: the
    // ledger already applied it.
    let bus = stack.bus().await.unwrap();
    let period = "2026-10".parse().unwrap();
    let mut replay = bus.replay(radfin_bus::PeriodStream::Priced, period).await.unwrap();
    let stored = futures::StreamExt::next(&mut replay).await.unwrap().unwrap();
    let priced: radfin_proto::pricing::v1::LiveFact = stored.decode().unwrap();
    bus.publish(&bus.names().priced_subject(period), "redelivered-by-hand", &priced).await.unwrap();
    // A later report, consumed after the redelivered message, shows the ledger has caught up.
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-2-MARKER", "HOSP-INR")) }).await.unwrap();
    wait_entries(&stack, "RPT-2-MARKER", 2).await;
    assert_eq!(entries(&stack, "RPT-2").await.len(), 6);
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn foreign_currency_entries_carry_their_rate_and_a_missing_rate_holds_the_report() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-USD", "HOSP-USD")) }).await.unwrap();

    let mut p = stack.pricing_client().await.unwrap();
    let held = eventually("the report held for its rate", || {
        let mut p = p.clone();
        async move {
            let held = p
                .list_held_reports(pricing::ListHeldReportsRequest {
                    status: "AWAITING_FX".into(),
                    period: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .reports;
            (!held.is_empty()).then_some(held)
        }
    })
    .await;
    assert_eq!((held[0].report_id.as_str(), held[0].status.as_str()), ("RPT-USD", "AWAITING_FX"));
    assert!(held[0].reason.contains("no USD rate"), "{}", held[0].reason);
    assert!(entries(&stack, "RPT-USD").await.is_empty());

    // A rate arrives (dated the day before the report's local date): the report is released.
    let put = p
        .put_fx_rate(pricing::PutFxRateRequest {
            rate_date: "2026-10-10".into(),
            currency: "USD".into(),
            inr_per_unit: "83.123456".into(),
            reason: "ECB feed down; rate from the bank's advice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(put.inserted);
    let e = wait_entries(&stack, "RPT-USD", 2).await;
    let revenue = e.iter().find(|x| x.side == Side::Revenue as i32).unwrap();
    // 55.00 × 1.20 = 66.00 USD; × 83.123456 = 5486.148096 → 5486.15
    assert_eq!((revenue.currency.as_str(), revenue.amount.as_str()), ("USD", "66.00"));
    assert_eq!(
        (
            revenue.fx_rate.as_str(),
            revenue.fx_rate_date.as_str(),
            revenue.fx_source.as_str(),
            revenue.amount_inr.as_str()
        ),
        ("83.123456", "2026-10-10", "MANUAL", "5486.15")
    );
    let still_held =
        p.list_held_reports(pricing::ListHeldReportsRequest::default()).await.unwrap().into_inner().reports;
    assert!(still_held.is_empty(), "{still_held:?}");
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_party_holds_the_report_until_it_is_known() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut r = night_mri("RPT-NEW-RAD", "HOSP-INR");
    r.provider_id = "RAD-NEW".into();
    ingest.submit_report(SubmitReportRequest { report: Some(r) }).await.unwrap();

    let mut p = stack.pricing_client().await.unwrap();
    let held = eventually("the report held for its party", || {
        let mut p = p.clone();
        async move {
            let held =
                p.list_held_reports(pricing::ListHeldReportsRequest::default()).await.unwrap().into_inner().reports;
            (!held.is_empty()).then_some(held)
        }
    })
    .await;
    assert_eq!((held[0].status.as_str(), held[0].provider_id.as_str()), ("UNKNOWN_PARTY", "RAD-NEW"));

    p.put_provider(pricing::PutProviderRequest {
        provider: Some(provider("RAD-NEW", radfin_proto::common::v1::Grade::Junior, "2025-06-01")),
    })
    .await
    .unwrap();
    let e = wait_entries(&stack, "RPT-NEW-RAD", 2).await;
    let cogs = e.iter().find(|x| x.side == Side::Cogs as i32).unwrap();
    // 900 × 1.5 × 0.85 × 1.00 × 1.45
    assert_eq!(cogs.amount, "1663.88");
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn reference_data_is_validated_versioned_and_readable() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut p = stack.pricing_client().await.unwrap();

    // Putting the same version again is a no-op; a new document is a new version.
    let again = p
        .put_client_rules(pricing::PutClientRulesRequest {
            client_id: "HOSP-INR".into(),
            effective_from: "2025-01-01".into(),
            document: client_rules("HOSP-INR", "INR"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.version, 1);
    let v2 = p
        .put_client_rules(pricing::PutClientRulesRequest {
            client_id: "HOSP-INR".into(),
            effective_from: "2026-11-01".into(),
            document: client_rules("HOSP-INR", "INR"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    let got = p
        .get_rule_version(pricing::GetRuleVersionRequest { client_id: "HOSP-INR".into(), version: 2 })
        .await
        .unwrap()
        .into_inner()
        .rule_version
        .expect("the rule version");
    assert_eq!((got.effective_from.as_str(), got.document), ("2026-11-01", client_rules("HOSP-INR", "INR")));
    let missing =
        p.get_rule_version(pricing::GetRuleVersionRequest { client_id: String::new(), version: 9 }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // An invalid document is refused with every problem and its JSON path; nothing is recorded.
    let bad = p
        .put_client_rules(pricing::PutClientRulesRequest {
            client_id: "HOSP-INR".into(),
            effective_from: "2026-12-01".into(),
            document: client_rules("HOSP-INR", "INR")
                .replace("\"GRADUATED\"", "\"TIERED\"")
                .replace("\"PER_STUDY\"", "\"FLAT\""),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("$.tier_mode") && bad.message().contains("$.contract.type"), "{}", bad.message());
    let versions = p
        .list_rule_versions(pricing::ListRuleVersionsRequest { client_id: "HOSP-INR".into() })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 2);

    let providers =
        p.get_provider(pricing::GetProviderRequest { provider_id: "RAD-007".into() }).await.unwrap().into_inner();
    assert_eq!(providers.providers.len(), 1);
    let unknown = p.get_provider(pricing::GetProviderRequest { provider_id: "RAD-404".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn a_revision_that_moves_a_report_to_another_period_is_priced_there() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut first = night_mri("RPT-MOVE", "HOSP-INR");
    first.finalized_at = "2026-10-31T17:00:00Z".into(); // 22:30 IST on 31 October
    let mut second = first.clone();
    second.revision = 2;
    second.finalized_at = "2026-10-31T19:00:00Z".into(); // 00:30 IST on 1 November
    let r = ingest.submit_batch(SubmitBatchRequest { reports: vec![first, second] }).await.unwrap().into_inner();
    let periods: Vec<&str> = r.results.iter().map(|x| x.period.as_str()).collect();
    assert_eq!(periods, ["2026-10", "2026-11"]);

    let e = eventually("revision 2 booked in November", || async {
        let e = entries(&stack, "RPT-MOVE").await;
        e.iter().any(|x| x.revision == 2 && x.side == Side::Revenue as i32).then_some(e)
    })
    .await;
    let rev2: Vec<&str> = e.iter().filter(|x| x.revision == 2).map(|x| x.period.as_str()).collect();
    assert_eq!(rev2, ["2026-11", "2026-11"]);
    // Revision 1 counts in one period only: whatever October booked for it is reversed there.
    let october = eventually("revision 1 reversed in October", || async {
        let e = entries(&stack, "RPT-MOVE").await;
        let net: rust_decimal::Decimal = e
            .iter()
            .filter(|x| x.period == "2026-10")
            .map(|x| x.amount.parse::<rust_decimal::Decimal>().unwrap())
            .sum();
        net.is_zero().then_some(e)
    })
    .await;
    assert!(october.iter().filter(|x| x.period == "2026-10").all(|x| x.revision == 1));
    // Whatever became of revision 1, the pipeline goes on.
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-AFTER-MOVE", "HOSP-INR")) }).await.unwrap();
    wait_entries(&stack, "RPT-AFTER-MOVE", 2).await;
    stack.stop().await.unwrap();
}
