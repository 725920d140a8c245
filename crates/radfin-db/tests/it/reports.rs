//! `reports::insert_batch` and the outbox.

use radfin_db::StorageError;
use radfin_db::reports::{self, InsertOutcome, NewReport};
use radfin_db::transaction_with_retry;
use radfin_domain::{ClientId, Priority, ReportId};

use crate::support::{at, count, db, event, new_report, period, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_inserts_new_revisions_and_skips_identical_ones() {
    let db = db().await;
    let mut conn = db.pool().get().await.unwrap();
    let a = report("RPT-A", 1, "2026-01-10T10:00:00Z");
    let b = report("RPT-B", 1, "2026-01-11T10:00:00Z");
    let outcomes = reports::insert_batch(&mut conn, &[a.clone(), b.clone()]).await.unwrap();
    let [InsertOutcome::Inserted { seq: seq_a }, InsertOutcome::Inserted { seq: seq_b }] = outcomes[..] else {
        panic!("both new: {outcomes:?}");
    };
    assert!(seq_a < seq_b, "seq follows the batch order");

    // Redelivery: duplicates, nothing new, no new outbox rows; a new revision is new.
    let mut a2 = event("RPT-A", 2, "2026-01-10T10:00:00Z");
    a2.priority = Priority::Urgent;
    let a2 = new_report(a2);
    let outcomes = reports::insert_batch(&mut conn, &[b.clone(), a.clone(), a2]).await.unwrap();
    assert_eq!(outcomes[0], InsertOutcome::Duplicate { seq: seq_b });
    assert_eq!(outcomes[1], InsertOutcome::Duplicate { seq: seq_a });
    assert!(matches!(outcomes[2], InsertOutcome::Inserted { seq } if seq > seq_b));
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM reports").await, 3);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM report_outbox").await, 3);

    // The same revision twice in one batch: one row.
    let c = report("RPT-C", 1, "2026-01-12T10:00:00Z");
    let outcomes = reports::insert_batch(&mut conn, &[c.clone(), c]).await.unwrap();
    let InsertOutcome::Inserted { seq } = outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(outcomes[1], InsertOutcome::Duplicate { seq });

    let stored = reports::get(&mut conn, &a.event().report_id, 1).await.unwrap().expect("stored");
    assert_eq!((stored.seq, &stored.event, stored.period), (seq_a, a.event(), period("2026-01")));
    assert_eq!(reports::by_seq(&mut conn, seq_b).await.unwrap().map(|s| s.event), Some(b.event().clone()));
    assert_eq!(reports::by_seq(&mut conn, 999_999).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_conflicting_content_writes_nothing() {
    let db = db().await;
    let mut conn = db.pool().get().await.unwrap();
    let a = report("RPT-A", 1, "2026-01-10T10:00:00Z");
    reports::insert_batch(&mut conn, std::slice::from_ref(&a)).await.unwrap();
    let seq_a = count(&mut conn, "SELECT max(seq) AS n FROM reports").await;

    let mut changed = a.event().clone();
    changed.body_regions = 3;
    let batch = [report("RPT-NEW", 1, "2026-01-15T10:00:00Z"), new_report(changed)];
    match reports::insert_batch(&mut conn, &batch).await {
        Err(StorageError::ConflictingRevisions { conflicts }) => {
            assert_eq!(conflicts.len(), 1);
            assert_eq!((conflicts[0].report_id.as_str(), conflicts[0].revision), ("RPT-A", 1));
            assert_eq!(conflicts[0].existing_seq, Some(seq_a));
            assert_eq!(conflicts[0].to_string(), "report RPT-A revision 1 already exists with different content");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM reports").await, 1, "RPT-NEW was not written");
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM report_outbox").await, 1);

    // Conflicting content within one batch is refused too, and inside a caller's transaction
    // the error rolls the caller's work back with it.
    let x = report("RPT-X", 1, "2026-01-20T10:00:00Z");
    let mut y = x.event().clone();
    y.client_id = ClientId::parse("HOSP-002").unwrap();
    let result = transaction_with_retry(db.pool(), 3, async |conn| {
        reports::insert_batch(conn, std::slice::from_ref(&report("RPT-Y", 1, "2026-01-20T10:00:00Z"))).await?;
        reports::insert_batch(conn, &[x.clone(), new_report(y.clone())]).await
    })
    .await;
    match result {
        Err(StorageError::ConflictingRevisions { conflicts }) => {
            assert_eq!(conflicts[0].report_id.as_str(), "RPT-X");
            assert_eq!(conflicts[0].existing_seq, None);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM reports").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instants_are_kept_to_the_microsecond_so_redelivery_stays_a_duplicate() {
    let db = db().await;
    let mut conn = db.pool().get().await.unwrap();
    let precise = event("RPT-NS", 1, "2026-01-10T10:00:00.123456789Z");
    let first = reports::insert_batch(&mut conn, &[new_report(precise.clone())]).await.unwrap();
    // Built without `NewReport::new`: `insert_batch` normalizes it the same way.
    let raw = NewReport { event: precise, period: period("2026-01") };
    let again = reports::insert_batch(&mut conn, &[raw]).await.unwrap();
    assert_eq!(again, [InsertOutcome::Duplicate { seq: first[0].seq() }]);
    let stored = reports::by_seq(&mut conn, first[0].seq()).await.unwrap().unwrap();
    assert_eq!(stored.event.finalized_at, at("2026-01-10T10:00:00.123456Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_lists_unpublished_revisions_in_order() {
    let db = db().await;
    let mut conn = db.connect_as("radfin_ingest").await.unwrap();
    let batch: Vec<_> = (1..=5).map(|i| report(&format!("RPT-{i}"), 1, "2026-01-10T10:00:00Z")).collect();
    let seqs: Vec<i64> = reports::insert_batch(&mut conn, &batch).await.unwrap().iter().map(|o| o.seq()).collect();

    let pending = reports::pending_outbox(&mut conn, 0, 3).await.unwrap();
    assert_eq!(pending.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(), seqs[..3]);
    assert_eq!(pending[0].1, *batch[0].event());
    assert_eq!(pending[0].2, period("2026-01"));

    assert_eq!(reports::mark_published(&mut conn, &seqs[..3]).await.unwrap(), 3);
    assert_eq!(reports::mark_published(&mut conn, &seqs[..3]).await.unwrap(), 0);
    let rest = reports::pending_outbox(&mut conn, 0, 10).await.unwrap();
    assert_eq!(rest.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(), seqs[3..]);
    // From past a seq: only what is above it.
    let above = reports::pending_outbox(&mut conn, seqs[3], 10).await.unwrap();
    assert_eq!(above.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(), seqs[4..]);
    assert!(reports::pending_outbox(&mut conn, seqs[4], 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_revision_is_the_highest_wherever_it_moved() {
    let db = db().await;
    let mut conn = db.pool().get().await.unwrap();
    let mut r1v2 = event("RPT-1", 2, "2026-01-05T10:00:00Z");
    r1v2.priority = Priority::Routine;
    let mut r4 = event("RPT-4", 1, "2026-01-06T10:00:00Z");
    r4.client_id = ClientId::parse("HOSP-002").unwrap();
    let batch = [
        report("RPT-1", 1, "2026-01-05T10:00:00Z"),
        new_report(r1v2.clone()),
        report("RPT-2", 1, "2026-01-03T10:00:00Z"),
        // Revision 2 moved to February (2026-01-31T20:00Z is February in Kolkata).
        report("RPT-3", 1, "2026-01-07T10:00:00Z"),
        report("RPT-3", 2, "2026-01-31T20:00:00Z"),
        new_report(r4.clone()),
    ];
    reports::insert_batch(&mut conn, &batch).await.unwrap();
    let hosp1 = ClientId::parse("HOSP-001").unwrap();

    let january = reports::current_of_client_period(&mut conn, &hosp1, period("2026-01")).await.unwrap();
    let ids: Vec<(&str, u32)> = january.iter().map(|e| (e.report_id.as_str(), e.revision)).collect();
    assert_eq!(ids, [("RPT-2", 1), ("RPT-1", 2)], "billing order, current revisions only");
    assert_eq!(january[1], r1v2);

    let february = reports::current_of_client_period(&mut conn, &hosp1, period("2026-02")).await.unwrap();
    assert_eq!(february.iter().map(|e| e.report_id.clone()).collect::<Vec<_>>(), [ReportId::parse("RPT-3").unwrap()]);

    let all = reports::current_of_period(&mut conn, period("2026-01")).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.contains(&r4));
}
