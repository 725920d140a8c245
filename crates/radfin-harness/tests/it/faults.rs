//! The fault suite's quick cases (issue 10; `cargo xtask faults` runs them at full size): the
//! checker of `radfin_harness::faults` must find every acknowledged report booked once and every
//! client-month equal to the engine's.

use std::time::Duration;

use radfin_harness::Stack;
use radfin_harness::faults::{cases, table};

fn assert_passed(result: &radfin_harness::faults::CaseResult) {
    println!("{}", table(std::slice::from_ref(result)));
    assert!(result.passed(), "{}", result.explain());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_1_reports_submitted_three_times_from_eight_clients_are_booked_once() {
    let result = cases::triple_submission(1_000, Duration::from_secs(120)).await;
    assert_passed(&result);
    let v = &result.verdict;
    assert!(v.acknowledged >= 1_000 && v.client_months > 0, "{v:?}");
    assert_eq!((v.missing, v.duplicated, v.misstated), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_5_identical_submissions_store_one_report_and_a_changed_revision_is_refused() {
    let result = cases::identical_submissions(Duration::from_secs(60)).await;
    assert_passed(&result);
    assert_eq!((result.verdict.acknowledged, result.verdict.once), (1, 1));
}

/// The checker itself, on real tables: a report acknowledged but never stored is missing, and a
/// second BOOKING written behind the ledger's back (as the database owner) is a duplicate, and
/// its client-month no longer equals the engine's.
#[tokio::test]
async fn the_checker_finds_a_lost_and_a_doubled_report() {
    use radfin_harness::faults::{Ack, check_stack, settle};
    use radfin_proto::ingest::v1::SubmitReportRequest;

    let stack = Stack::start().await.unwrap();
    crate::setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    for id in ["CHK-1", "CHK-2"] {
        ingest.submit_report(SubmitReportRequest { report: Some(crate::night_mri(id, "HOSP-INR")) }).await.unwrap();
    }
    let period = "2026-10".parse().unwrap();
    let ack = |id: &str| Ack { report_id: id.into(), revision: 1 };
    let booked = [ack("CHK-1"), ack("CHK-2")];
    let v = settle(&stack, &[period], &booked, Duration::from_secs(30)).await.unwrap();
    assert!(v.passed() && v.once == 2, "{v:?}");

    let lost = [ack("CHK-1"), ack("CHK-2"), ack("CHK-NEVER")];
    let v = check_stack(&stack, &[period], &lost).await.unwrap();
    assert_eq!((v.once, v.missing, v.duplicated), (2, 1, 0), "{v:?}");
    assert!(v.offenders[0].starts_with("CHK-NEVER Missing"), "{:?}", v.offenders);

    let (client, connection) = tokio_postgres::connect(stack.db.url(), tokio_postgres::NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    let doubled = client
        .execute(
            "INSERT INTO ledger_entries (period, run_id, report_id, revision, side, client_id, provider_id, modality, \
               grade, status, currency, amount, fx_rate, fx_rate_date, fx_source, amount_inr, rule_version, line, \
               entry_kind) \
             SELECT period, run_id, report_id, revision, side, client_id, provider_id, modality, grade, status, \
               currency, amount, fx_rate, fx_rate_date, fx_source, amount_inr, rule_version, line, entry_kind \
             FROM ledger_entries WHERE report_id = 'CHK-2' AND entry_kind = 'BOOKING'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(doubled, 2);
    drop(client);
    connection.await.unwrap().unwrap();
    let v = check_stack(&stack, &[period], &booked).await.unwrap();
    assert_eq!((v.once, v.missing, v.duplicated), (1, 0, 1), "{v:?}");
    assert_eq!((v.client_months, v.client_months_equal), (1, 0), "{v:?}");
    assert!(!v.passed());
    stack.stop().await.unwrap();
}
