use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest, SubmitOutcome, SubmitReportRequest};
use tonic::Code;

use super::*;

/// Every kind of bad input of spec §2, with the field the error must name.
fn bad_reports() -> Vec<(&'static str, ReportEvent)> {
    radfin_harness::fixtures::bad_reports(&night_mri("RPT-OK", "HOSP-INR"))
}

#[tokio::test]
async fn bad_input_is_rejected_naming_the_field_and_nothing_is_written() {
    let stack = Stack::start().await.unwrap();
    let mut ingest = stack.ingest_client().await.unwrap();
    for (field, report) in bad_reports() {
        let err = ingest.submit_report(SubmitReportRequest { report: Some(report) }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().starts_with(&format!("report.{field}: ")), "{field}: {}", err.message());
    }
    let err = ingest.submit_report(SubmitReportRequest { report: None }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "report: is required"));

    // A batch with bad rows is refused whole, every bad row named.
    let good = night_mri("RPT-OK", "HOSP-INR");
    let mut batch = vec![good.clone()];
    batch.extend(bad_reports().into_iter().map(|(_, r)| r));
    let err = ingest.submit_batch(SubmitBatchRequest { reports: batch.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for (i, (field, _)) in bad_reports().iter().enumerate() {
        assert!(err.message().contains(&format!("reports[{}].{field}: ", i + 1)), "{}", err.message());
    }
    assert!(!err.message().contains("reports[0]"), "{}", err.message());
    // Nothing of it was stored: the good report is new when sent on its own.
    let r = ingest.submit_report(SubmitReportRequest { report: Some(good.clone()) }).await.unwrap().into_inner();
    assert_eq!(r.outcome, SubmitOutcome::Accepted as i32);
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn the_same_revision_with_other_content_is_already_exists_and_rolls_the_batch_back() {
    let stack = Stack::start().await.unwrap();
    let mut ingest = stack.ingest_client().await.unwrap();
    let first = night_mri("RPT-C", "HOSP-INR");
    ingest.submit_report(SubmitReportRequest { report: Some(first.clone()) }).await.unwrap();

    let mut changed = first.clone();
    changed.body_regions = 3;
    let err = ingest.submit_report(SubmitReportRequest { report: Some(changed.clone()) }).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().contains("revision 1 of report RPT-C is already stored with different content"),
        "{}",
        err.message()
    );

    let fresh = night_mri("RPT-D", "HOSP-INR");
    let err = ingest.submit_batch(SubmitBatchRequest { reports: vec![fresh.clone(), changed] }).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().starts_with("reports[1]: "), "{}", err.message());
    let r = ingest.submit_report(SubmitReportRequest { report: Some(fresh) }).await.unwrap().into_inner();
    assert_eq!(r.outcome, SubmitOutcome::Accepted as i32, "the rolled-back batch stored nothing");
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn the_services_roles_cannot_change_the_ledger() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-L", "HOSP-INR")) }).await.unwrap();
    wait_entries(&stack, "RPT-L", 2).await;
    for role in ["radfin_ledger", "radfin_pricing", "radfin_ingest"] {
        for sql in [
            "UPDATE ledger_entries SET amount = 0",
            "DELETE FROM ledger_entries",
            "TRUNCATE ledger_entries",
            "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
            "UPDATE reports SET body_regions = 1",
            "DELETE FROM reports",
        ] {
            let result = radfin_db::testing::execute_as(&stack.db, role, sql).await;
            assert!(result.is_err(), "{role} could run {sql}");
        }
    }
    assert_eq!(entries(&stack, "RPT-L").await.len(), 2);
    stack.stop().await.unwrap();
}
