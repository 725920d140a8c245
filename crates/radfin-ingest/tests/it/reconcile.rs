//! The reconciler: stored current revisions the ledger has no fact of are republished.

use std::time::Duration;

use chrono::{DateTime, Utc};
use radfin_bus::PeriodStream;
use radfin_ingest::Reconciler;
use radfin_ingest::reconcile::Pass;
use tokio_stream::StreamExt;

use crate::{bus, count, db, delete_streams, exec};

/// A report of October 2026 received `age` ago (as the admin, who may set `received_at`).
fn insert_report(report_id: &str, revision: u32, age: &str) -> String {
    format!(
        "INSERT INTO reports (report_id, revision, client_id, provider_id, modality, body_regions, priority,
                              finalized_at, status, period, received_at)
         VALUES ('{report_id}', {revision}, 'HOSP-001', 'RAD-007', 'MRI', 2, 'STAT', '2026-10-10T18:00:00Z',
                 'FINAL', '2026-10', now() - interval '{age}')"
    )
}

fn fact(report_id: &str, revision: u32) -> String {
    format!(
        "INSERT INTO ledger_facts (period, client_id, run_id, report_id, revision, outcome, book_version, priced_at, fact)
         SELECT '2026-10', 'HOSP-001', run_id, '{report_id}', {revision}, 'PRICED', 1, now(), '\\x'::bytea
         FROM pricing_runs WHERE period = '2026-10' AND kind = 'LIVE'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_missing_from_the_ledger_is_republished_once_per_pass() {
    let db = db().await;
    let bus = bus().await;
    let mut admin = db.pool().get().await.unwrap();
    exec(&mut admin, "INSERT INTO pricing_runs (period, kind, created_by) VALUES ('2026-10', 'LIVE', 'test')").await;
    for sql in [
        // Lost: published (not in the outbox), no fact.
        insert_report("RPT-LOST", 1, "1 hour"),
        // Reached the ledger.
        insert_report("RPT-DONE", 1, "1 hour"),
        fact("RPT-DONE", 1),
        // Still in the outbox: the relay will publish it.
        insert_report("RPT-QUEUED", 1, "1 hour"),
        "INSERT INTO report_outbox (seq) SELECT seq FROM reports WHERE report_id = 'RPT-QUEUED'".to_owned(),
        // Within the grace time.
        insert_report("RPT-YOUNG", 1, "10 seconds"),
        // Revision 1 has no fact, but revision 2 (the current one) has.
        insert_report("RPT-REV", 1, "2 hours"),
        insert_report("RPT-REV", 2, "1 hour"),
        fact("RPT-REV", 2),
        // Revision 1 reached the ledger, revision 2 did not: revision 2 is republished.
        insert_report("RPT-NEWER", 1, "2 hours"),
        fact("RPT-NEWER", 1),
        insert_report("RPT-NEWER", 2, "1 hour"),
    ] {
        exec(&mut admin, &sql).await;
    }

    let pool = radfin_db::pool(&db.url_as("radfin_ingest"), 2).await.unwrap();
    let reconciler = Reconciler::new(pool, bus.clone(), Duration::from_secs(60), Duration::from_secs(120));
    let (_stop, shutdown) = radfin_service::shutdown::channel();
    let first: DateTime<Utc> = Utc::now();
    let second = first + chrono::Duration::seconds(1);
    assert_eq!(reconciler.pass(first, &shutdown).await.unwrap(), Pass::Ran { found: 2, republished: 2 });
    assert_eq!(reconciler.pass(second, &shutdown).await.unwrap(), Pass::Ran { found: 2, republished: 2 });
    let status = reconciler.status();
    assert_eq!(
        (status.passes, status.found_total, status.republished_total, status.last_pass_found, status.deferred_passes),
        (2, 4, 4, 2, 0)
    );
    assert!(status.last_error.is_none() && status.last_pass_at.is_some());

    // What the relay would have published, under message ids of their own.
    let mut replay = bus.replay(PeriodStream::Reports, "2026-10".parse().unwrap()).await.unwrap();
    let mut published = Vec::new();
    while let Some(message) = replay.next().await {
        let message = message.unwrap();
        let event: radfin_proto::ingest::v1::ReportEvent = message.decode().unwrap();
        published.push((message.msg_id().unwrap().to_owned(), event.report_id, event.revision));
    }
    let (a, b) = (first.timestamp(), second.timestamp());
    assert_eq!(
        published,
        [
            (format!("RPT-LOST:1:reconcile:{a}"), "RPT-LOST".to_owned(), 1),
            (format!("RPT-NEWER:2:reconcile:{a}"), "RPT-NEWER".to_owned(), 2),
            (format!("RPT-LOST:1:reconcile:{b}"), "RPT-LOST".to_owned(), 1),
            (format!("RPT-NEWER:2:reconcile:{b}"), "RPT-NEWER".to_owned(), 2),
        ]
    );

    // Once the ledger has recorded them, nothing is missing.
    exec(&mut admin, &fact("RPT-LOST", 1)).await;
    exec(&mut admin, &fact("RPT-NEWER", 2)).await;
    let third = second + chrono::Duration::seconds(1);
    assert_eq!(reconciler.pass(third, &shutdown).await.unwrap(), Pass::Ran { found: 0, republished: 0 });
    // Settled up to RPT-QUEUED (in the outbox, no fact yet): later passes start there, until the
    // next full pass.
    let status = reconciler.status();
    let done = count(&mut admin, "SELECT seq AS n FROM reports WHERE report_id = 'RPT-DONE'").await;
    assert_eq!(status.settled_through, done);
    assert_eq!(status.last_full_pass_at, Some(first), "the first pass was a full one, the others were not");

    // While a consumer has messages to process, a pass is put off.
    exec(&mut admin, &insert_report("RPT-LATE", 1, "1 hour")).await;
    let _pricing = bus.durable_consumer(bus.names().reports_stream(), "pricing", None).await.unwrap();
    match reconciler.pass(third + chrono::Duration::seconds(1), &shutdown).await.unwrap() {
        Pass::Deferred { reason } => assert!(reason.contains("consumer pricing"), "{reason}"),
        other => panic!("expected the pass to be put off, got {other:?}"),
    }
    let status = reconciler.status();
    assert_eq!((status.passes, status.deferred_passes, status.found_total), (3, 1, 4));
    delete_streams(&bus).await;
}
