//! `sync_runs` (the sync's record) and `reports::missing_from_ledger` (the reconciler's query).

use radfin_db::StorageError;
use radfin_db::reports;
use radfin_db::sync_runs::{self, MAX_REJECTED_ROWS, NewSyncRun, RejectedRow, SyncCounts, SyncOutcome, SyncTrigger};

use crate::support::{at, count, db, exec, report};

fn run(counts: SyncCounts, rejected: usize, outcome: SyncOutcome) -> NewSyncRun {
    NewSyncRun {
        trigger: SyncTrigger::Schedule,
        source: "postgres://his.example:5432/his".to_owned(),
        source_table: "his.finalized_reports".to_owned(),
        window_start: at("2026-10-31T18:30:00Z"),
        window_end: at("2026-11-15T06:30:00Z"),
        started_at: at("2026-11-15T06:30:00Z"),
        finished_at: at("2026-11-15T06:30:02.5Z"),
        counts,
        rejected: (1..=rejected as u64)
            .map(|row| RejectedRow {
                row,
                report_id: (row % 2 == 0).then(|| format!("RPT-{row}")),
                revision: None,
                reasons: vec!["modality: must be one of XRAY, CT".to_owned(), "body_regions: is NULL".to_owned()],
            })
            .collect(),
        outcome,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_recorded_with_their_first_rejected_rows_and_listed_newest_first() {
    let db = db().await;
    let mut conn = db.connect_as("radfin_ingest").await.unwrap();
    assert_eq!(sync_runs::last_started_at(&mut conn).await.unwrap(), None);
    let counts = SyncCounts { read: 5000, new: 1000, changed: 10, unchanged: 2000, rejected: 1990 };
    let first = sync_runs::insert(&mut conn, &run(counts, 1990, SyncOutcome::Succeeded)).await.unwrap();
    assert_eq!(first.duration_ms, 2500);
    assert_eq!(first.run.rejected.len(), MAX_REJECTED_ROWS, "only the first rejected rows are kept");
    assert_eq!(first.run.rejected[..2], run(counts, 2, SyncOutcome::Succeeded).rejected[..]);
    assert_eq!(first.run.counts, counts);

    let failed = run(
        SyncCounts { read: 1000, new: 10, ..SyncCounts::default() },
        0,
        SyncOutcome::Failed { error: "source: db error: ERROR: relation does not exist".to_owned() },
    );
    let second = sync_runs::insert(&mut conn, &failed).await.unwrap();
    assert_eq!(second.run, failed);
    assert_eq!(sync_runs::list(&mut conn, 10).await.unwrap(), [second.clone(), first.clone()]);
    assert_eq!(sync_runs::list(&mut conn, 1).await.unwrap(), [second]);
    assert_eq!(sync_runs::last_started_at(&mut conn).await.unwrap(), Some(at("2026-11-15T06:30:00Z")));

    // A run that succeeded accounts for every row it read.
    let unaccounted = SyncCounts { read: 10, new: 1, ..SyncCounts::default() };
    assert!(sync_runs::insert(&mut conn, &run(unaccounted, 0, SyncOutcome::Succeeded)).await.is_err());

    // Append-only, and the reporting role may read it.
    for sql in ["UPDATE sync_runs SET new_count = 0", "DELETE FROM sync_runs"] {
        let err = exec(&mut conn, sql).await.unwrap_err();
        assert!(matches!(err, StorageError::PermissionDenied { .. }), "{sql}: {err:?}");
    }
    let mut owner = db.pool().get().await.unwrap();
    let err = exec(&mut owner, "UPDATE sync_runs SET new_count = 0").await.unwrap_err();
    assert!(matches!(err, StorageError::AppendOnly { .. }), "{err:?}");
    let mut reporting = db.connect_as("radfin_reporting").await.unwrap();
    assert_eq!(count(&mut reporting, "SELECT count(*) AS n FROM sync_runs").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_from_ledger_pages_through_current_revisions_without_facts() {
    let db = db().await;
    let mut owner = db.pool().get().await.unwrap();
    let batch: Vec<_> = (1..=7).map(|i| report(&format!("RPT-{i}"), 1, "2026-01-10T10:00:00Z")).collect();
    reports::insert_batch(&mut owner, &batch).await.unwrap();
    // Published, except RPT-7; RPT-2 has a fact; RPT-3 has a revision 2, which has a fact too.
    reports::insert_batch(&mut owner, &[report("RPT-3", 2, "2026-01-10T11:00:00Z")]).await.unwrap();
    for sql in [
        "DELETE FROM report_outbox WHERE seq IN (SELECT seq FROM reports WHERE report_id <> 'RPT-7')",
        "INSERT INTO pricing_runs (period, kind, created_by) VALUES ('2026-01', 'LIVE', 'test')",
        "INSERT INTO ledger_facts (period, client_id, run_id, report_id, revision, outcome, book_version, priced_at, fact)
         SELECT '2026-01', 'HOSP-001', 1, report_id, revision, 'PRICED', 1, now(), '\\x'::bytea
         FROM reports WHERE (report_id, revision) IN (('RPT-2', 1), ('RPT-3', 2))",
    ] {
        exec(&mut owner, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let mut conn = db.connect_as("radfin_ingest").await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    let ids = |found: &[reports::StoredReport]| found.iter().map(|s| s.event.report_id.to_string()).collect::<Vec<_>>();

    let first = reports::missing_from_ledger(&mut conn, later, 0, 2).await.unwrap();
    assert_eq!(ids(&first), ["RPT-1", "RPT-4"]);
    let second = reports::missing_from_ledger(&mut conn, later, first[1].seq, 2).await.unwrap();
    assert_eq!(ids(&second), ["RPT-5", "RPT-6"]);
    let third = reports::missing_from_ledger(&mut conn, later, second[1].seq, 2).await.unwrap();
    assert!(third.is_empty(), "RPT-7 is still in the outbox: {:?}", ids(&third));
    // Nothing received before the cutoff.
    let earlier = chrono::Utc::now() - chrono::Duration::minutes(1);
    assert!(reports::missing_from_ledger(&mut conn, earlier, 0, 10).await.unwrap().is_empty());

    // Settled: RPT-1 is not (no fact); once it is, up to RPT-3's revision 1 (superseded), before
    // RPT-4. Nothing received after the horizon counts as settled.
    assert_eq!(reports::settled_through(&mut conn, 0, later).await.unwrap(), 0);
    exec(
        &mut owner,
        "INSERT INTO ledger_facts (period, client_id, run_id, report_id, revision, outcome, book_version, priced_at, fact)
         VALUES ('2026-01', 'HOSP-001', 1, 'RPT-1', 1, 'HELD', 1, now(), '\\x'::bytea)",
    )
    .await
    .unwrap();
    let through = reports::settled_through(&mut conn, 0, later).await.unwrap();
    assert_eq!(through, seq_of(&db, "RPT-3", 1).await);
    assert_eq!(reports::settled_through(&mut conn, through, later).await.unwrap(), through);
    assert_eq!(reports::settled_through(&mut conn, 0, earlier).await.unwrap(), 0);
    let last = seq_of(&db, "RPT-3", 2).await;
    assert_eq!(reports::settled_through(&mut conn, last, later).await.unwrap(), last, "nothing after the last");
}

/// The `seq` of a stored revision.
async fn seq_of(db: &radfin_db::testing::TestDb, report_id: &str, revision: u32) -> i64 {
    let mut conn = db.pool().get().await.unwrap();
    let sql = format!("SELECT seq AS n FROM reports WHERE report_id = '{report_id}' AND revision = {revision}");
    count(&mut conn, &sql).await
}
