//! `transaction_with_retry` and the classification of errors that warrant it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use radfin_db::audit::{self, AuditOutcome, AuditRecord};
use radfin_db::{StorageError, transaction_with_retry};
use tokio::sync::Barrier;

use crate::support::{count, db, exec};

const FORCE_SERIALIZATION_FAILURE: &str =
    "DO $$ BEGIN RAISE EXCEPTION 'forced serialization failure' USING ERRCODE = '40001'; END $$";

fn audit_record(action: &str) -> AuditRecord {
    AuditRecord {
        actor: "alice".to_owned(),
        role: "admin".to_owned(),
        action: action.to_owned(),
        target: "period 2026-01".to_owned(),
        reason: Some("test".to_owned()),
        outcome: AuditOutcome::Allowed,
        details: serde_json::json!({"attempt": action}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_failure_is_retried_and_the_failed_attempt_leaves_nothing() {
    let db = db().await;
    let attempts = AtomicU32::new(0);
    let id = transaction_with_retry(db.pool(), 3, async |conn| {
        let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let id = audit::record(conn, &audit_record(&format!("attempt {attempt}"))).await?;
        if attempt == 1 {
            exec(conn, FORCE_SERIALIZATION_FAILURE).await?;
        }
        Ok(id)
    })
    .await
    .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let mut conn = db.pool().get().await.unwrap();
    let log = audit::recent(&mut conn, 10).await.unwrap();
    assert_eq!(log.len(), 1, "the first attempt was rolled back");
    assert_eq!((log[0].id, log[0].record.action.as_str()), (id, "attempt 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_and_other_errors_are_not_retried() {
    let db = db().await;
    let attempts = AtomicU32::new(0);
    let result: Result<(), _> = transaction_with_retry(db.pool(), 3, async |conn| {
        attempts.fetch_add(1, Ordering::SeqCst);
        exec(conn, FORCE_SERIALIZATION_FAILURE).await.map(drop)
    })
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, StorageError::Retryable { .. }) && err.is_retryable(), "{err:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);

    let attempts = AtomicU32::new(0);
    let result: Result<(), _> = transaction_with_retry(db.pool(), 3, async |conn| {
        attempts.fetch_add(1, Ordering::SeqCst);
        audit::record(conn, &audit_record("rolled back")).await?;
        Err(StorageError::Corrupt("the caller gave up".to_owned()))
    })
    .await;
    assert!(matches!(result, Err(StorageError::Corrupt(_))));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    let mut conn = db.pool().get().await.unwrap();
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM audit_log").await, 0, "an Err rolls back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_serializable() {
    let db = db().await;
    let isolation = transaction_with_retry(db.pool(), 1, async |conn| {
        Ok(count(conn, "SELECT count(*) AS n WHERE current_setting('transaction_isolation') = 'serializable'").await)
    })
    .await
    .unwrap();
    assert_eq!(isolation, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_retryable() {
    let db = db().await;
    let barrier = Arc::new(Barrier::new(2));
    let tasks = [(1, 2), (2, 1)].map(|(mine, theirs)| {
        let url = db.url().to_owned();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.transaction::<_, StorageError, _>(async |conn| {
                exec(conn, &format!("SELECT pg_advisory_xact_lock({mine})")).await?;
                barrier.wait().await;
                exec(conn, &format!("SELECT pg_advisory_xact_lock({theirs})")).await?;
                Ok(())
            })
            .await
        })
    });
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let failures: Vec<&StorageError> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failures.len(), 1, "{outcomes:?}");
    assert!(
        matches!(failures[0], StorageError::Retryable { message } if message == "deadlock detected"),
        "{failures:?}"
    );
}

/// A service holding the pool, as the gRPC services do.
struct Service {
    pool: radfin_db::Pool,
    actor: String,
}

impl Service {
    /// A handler whose transaction borrows `self` and a local: its future must still be `Send`.
    async fn record(&self, action: &str) -> Result<i64, StorageError> {
        let record = AuditRecord { actor: self.actor.clone(), ..audit_record(action) };
        transaction_with_retry(&self.pool, 3, async |conn| audit::record(conn, &record).await).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_borrowing_the_caller_run_in_spawned_tasks() {
    let db = db().await;
    let service = Arc::new(Service { pool: db.pool().clone(), actor: "carol".to_owned() });
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move { service.record(&format!("call {i}")).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut conn = db.pool().get().await.unwrap();
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM audit_log WHERE actor = 'carol'").await, 4);
}
