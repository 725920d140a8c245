//! The fault suite's quick cases (issue 10; `cargo xtask faults` runs them at full size): the
//! checker of `radfin_harness::faults` must find every acknowledged report booked once and every
//! client-month equal to the engine's.

use std::time::Duration;

use radfin_harness::Stack;
use radfin_harness::faults::{cases, hostile, races, table};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_7_closes_racing_submissions_book_before_or_hold_and_nothing_commits_after() {
    let result = races::close_races(20, Duration::from_secs(60)).await;
    assert_passed(&result);
    let v = &result.verdict;
    assert_eq!((v.missing, v.duplicated, v.misstated), (0, 0, 0));
    assert!(result.done.contains("LIVE entries committed after a close: 0"), "{}", result.done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_8_a_rerun_applied_twice_or_by_two_callers_issues_once_and_leaves_the_originals() {
    let result = races::rerun_applied_twice(12, Duration::from_secs(60)).await;
    assert_passed(&result);
    assert!(result.verdict.once >= 24 && result.verdict.client_months == 4, "{:?}", result.verdict);
    assert!(result.done.contains("byte-identical"), "{}", result.done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_9_poison_messages_are_dead_lettered_and_the_good_reports_booked_once() {
    let result = hostile::poison_messages(300, Duration::from_secs(90)).await;
    assert_passed(&result);
    assert!(result.verdict.acknowledged > 300, "{:?}", result.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_10_hostile_input_is_refused_naming_the_problem_and_writes_nothing() {
    let result = hostile::hostile_input(Duration::from_secs(60)).await;
    assert_passed(&result);
    assert!(result.done.contains(" 0 rows written"), "{}", result.done);
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
