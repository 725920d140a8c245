//! `runs`: one LIVE run per period, however many ask for it at once.

use radfin_db::runs::{self, RunKind};
use radfin_db::{StorageError, transaction_with_retry};
use tokio::sync::Barrier;

use crate::support::{db, period};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_get_the_same_live_run() {
    let db = db().await;
    let jan = period("2026-01");
    // Plain (READ COMMITTED) connections, released together.
    let barrier = std::sync::Arc::new(Barrier::new(2));
    let plain = (0..2).map(|_| {
        let pool = db.pool().clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            let mut conn = pool.get().await?;
            barrier.wait().await;
            runs::live_run(&mut conn, jan).await
        })
    });
    let mut ids = Vec::new();
    for task in plain.collect::<Vec<_>>() {
        ids.push(task.await.unwrap().unwrap());
    }
    assert_eq!(ids[0], ids[1]);

    // SERIALIZABLE transactions, retried on serialization failure.
    let feb = period("2026-02");
    let barrier = std::sync::Arc::new(Barrier::new(2));
    let serializable = (0..2).map(|_| {
        let pool = db.pool().clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            transaction_with_retry(&pool, 10, async |conn| runs::live_run(conn, feb).await).await
        })
    });
    let mut feb_ids = Vec::new();
    for task in serializable.collect::<Vec<_>>() {
        feb_ids.push(task.await.unwrap().unwrap());
    }
    assert_eq!(feb_ids[0], feb_ids[1]);
    assert_ne!(feb_ids[0], ids[0]);

    let mut conn = db.pool().get().await.unwrap();
    assert_eq!(runs::live_run(&mut conn, jan).await.unwrap(), ids[0]);
    let run = runs::get(&mut conn, ids[0]).await.unwrap().unwrap();
    assert_eq!((run.period, run.kind, run.rules_as_of), (jan, RunKind::Live, None));
    let recent = runs::recent(&mut conn, None, 10).await.unwrap();
    assert_eq!(recent.iter().map(|r| r.run_id).collect::<Vec<_>>(), [feb_ids[0], ids[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_needs_a_reason() {
    let db = db().await;
    let mut conn = db.connect_as("radfin_pricing").await.unwrap();
    let now = chrono::Utc::now();
    let err = runs::create(&mut conn, period("2026-01"), RunKind::Rerun, now, None, "alice").await.unwrap_err();
    assert!(matches!(err, StorageError::Query(_)), "{err:?}");
    assert!(err.to_string().contains("pricing_runs_rerun_reason_check"), "{err}");
    let close = runs::create(&mut conn, period("2026-01"), RunKind::Close, now, None, "bob").await.unwrap();
    let run = runs::get(&mut conn, close).await.unwrap().unwrap();
    assert_eq!(run.kind, RunKind::Close);
    assert!(run.rules_as_of.is_some_and(|t| (t - now).num_milliseconds().abs() < 1));
}
