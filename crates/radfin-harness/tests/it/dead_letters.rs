//! Dead letters end to end: pricing dead-letters what it cannot decode and what prices to an
//! error, and moves on; an operator lists them over ingest's gRPC and redrives one, which then
//! reaches the ledger, leaves the dead letters, and cannot be redriven twice. Redrives are audited.

use radfin_proto::ingest::v1::{DeadLetter, ListDeadLettersRequest, RedriveDeadLetterRequest, SubmitReportRequest};
use radfin_proto::ledger::v1 as ledger;
use tonic::Code;

use super::*;

async fn list(stack: &Stack, after_seq: u64, limit: u32) -> (Vec<DeadLetter>, u64) {
    let mut ingest = stack.ingest_client().await.unwrap();
    let r = ingest.list_dead_letters(ListDeadLettersRequest { after_seq, limit }).await.unwrap().into_inner();
    (r.dead_letters, r.next_after_seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_redriven_by_an_operator() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let bus = stack.bus().await.unwrap();
    let subject = bus.names().report_subject("2026-10".parse().unwrap());

    // Not a report at all: dead-lettered as undecodable.
    bus.jetstream().publish(subject.clone(), vec![0xff, 0xff, 0xff].into()).await.unwrap().await.unwrap();
    // A valid report event ingest never stored (as if published ahead of its commit): pricing
    // cannot price it and dead-letters it. Its message id is the one ingest publishes under.
    let report = night_mri("RPT-DL1", "HOSP-INR");
    bus.publish(&subject, &radfin_bus::report_msg_id("RPT-DL1", 1), &report).await.unwrap();

    let letters = eventually("two dead letters", || async {
        let (letters, _) = list(&stack, 0, 0).await;
        (letters.len() == 2).then_some(letters)
    })
    .await;
    let undecodable = letters.iter().find(|l| l.msg_id.is_empty()).expect("the undecodable one").clone();
    let unpriced = letters.iter().find(|l| l.msg_id == "RPT-DL1:1").expect("the report").clone();
    for letter in [&undecodable, &unpriced] {
        assert_eq!(letter.original_subject, subject);
        assert_eq!(letter.original_stream, bus.names().reports_stream());
        assert_eq!(letter.consumer, "pricing");
        assert!(letter.delivered >= 1, "{letter:?}");
        assert!(letter.original_sequence >= 1, "{letter:?}");
        assert!(!letter.reason.is_empty() && !letter.dead_lettered_at.is_empty(), "{letter:?}");
    }
    assert_eq!(undecodable.payload_bytes, 3);
    assert!(unpriced.reason.contains("RPT-DL1") && unpriced.reason.contains("not stored"), "{}", unpriced.reason);

    // Pages in sequence order.
    let (first, next) = list(&stack, 0, 1).await;
    assert_eq!(first.len(), 1);
    assert_eq!(next, first[0].seq);
    let (second, last) = list(&stack, next, 1).await;
    assert_eq!(second.len(), 1);
    assert!(second[0].seq > first[0].seq);
    let (none, unchanged) = list(&stack, last, 10).await;
    assert!(none.is_empty());
    assert_eq!(unchanged, last);

    // Ingest stores the report now; its own publish (same message id, within the duplicate
    // window) is dropped by the stream, so nothing prices it until the operator redrives it.
    let mut ingest = stack.ingest_client().await.unwrap();
    ingest.submit_report(SubmitReportRequest { report: Some(report.clone()) }).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(entries(&stack, "RPT-DL1").await.is_empty());

    let no_reason = ingest
        .redrive_dead_letter(RedriveDeadLetterRequest { seq: unpriced.seq, reason: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let redriven = ingest
        .redrive_dead_letter(RedriveDeadLetterRequest { seq: unpriced.seq, reason: "report stored since".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(redriven.seq, unpriced.seq);
    assert_eq!(redriven.subject, subject);
    assert!(redriven.stream_sequence > unpriced.original_sequence);
    let booked = wait_entries(&stack, "RPT-DL1", 2).await;
    assert_eq!(booked.len(), 2, "{booked:?}");

    // Gone from the dead letters; a second redrive is NOT_FOUND.
    let (left, _) = list(&stack, 0, 0).await;
    assert_eq!(left.iter().map(|l| l.seq).collect::<Vec<_>>(), [undecodable.seq]);
    let again = ingest
        .redrive_dead_letter(RedriveDeadLetterRequest { seq: unpriced.seq, reason: "once more".into() })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound, "{again:?}");

    // Redriving what still cannot be decoded dead-letters it again, under a new seq.
    ingest
        .redrive_dead_letter(RedriveDeadLetterRequest { seq: undecodable.seq, reason: "try again".into() })
        .await
        .unwrap();
    let back = eventually("the undecodable message dead-lettered again", || async {
        let (letters, _) = list(&stack, 0, 0).await;
        letters.into_iter().find(|l| l.payload_bytes == 3 && l.seq > undecodable.seq)
    })
    .await;
    assert_eq!(back.original_subject, subject);
    assert_eq!(list(&stack, 0, 0).await.0.len(), 1);
    // The report was booked once: a second pass over the ledger finds the same entries.
    assert_eq!(entries(&stack, "RPT-DL1").await.len(), 2);

    // Every redrive is audited, the failed one too.
    let mut l = stack.ledger_client().await.unwrap();
    let audit = l.list_audit_events(ledger::ListAuditEventsRequest { limit: 50 }).await.unwrap().into_inner().events;
    let redrives: Vec<&ledger::AuditEvent> = audit.iter().filter(|e| e.action == "RedriveDeadLetter").collect();
    let target = format!("dead letter {}", unpriced.seq);
    assert!(
        redrives.iter().any(|e| e.target == target && e.outcome == "ALLOWED" && e.reason == "report stored since"),
        "{redrives:?}"
    );
    assert!(
        redrives.iter().any(|e| e.target == target && e.outcome == "FAILED" && e.reason == "once more"),
        "{redrives:?}"
    );
    assert_eq!(redrives.len(), 3, "{redrives:?}");

    stack.stop().await.unwrap();
}
