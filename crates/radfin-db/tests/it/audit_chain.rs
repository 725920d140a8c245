//! The audit log's hash chain: rows appended by the services (concurrently too) form one
//! gapless chain, and tampering as the table owner — triggers disabled — is named by the
//! verification: an altered, inserted or removed row, and a rewrite caught by an anchor.

use diesel_async::AsyncPgConnection;
use radfin_db::audit::{self, AuditOutcome, AuditRecord};
use radfin_db::testing::TestDb;
use radfin_domain::audit_chain::{ChainPoint, ProblemKind, Verification};

use crate::support::{db, exec};

fn record(n: usize) -> AuditRecord {
    AuditRecord {
        actor: format!("user-{n}"),
        role: "finance".into(),
        action: "ClosePeriod".into(),
        target: format!("period 2026-{:02}", n % 12 + 1),
        reason: n.is_multiple_of(2).then(|| format!("month end ✓ {n}")),
        outcome: AuditOutcome::Allowed,
        details: serde_json::json!({ "n": n, "note": "ünïcode", "nested": { "b": 1, "a": [1, 2] } }),
    }
}

/// `rows` audit rows appended by the ledger's role, as the services append them.
async fn seeded(rows: usize) -> TestDb {
    let db = db().await;
    let mut conn = db.connect_as("radfin_ledger").await.unwrap();
    for n in 1..=rows {
        audit::record(&mut conn, &record(n)).await.unwrap();
    }
    db
}

async fn verify(db: &TestDb, anchor: Option<ChainPoint>, page: i64) -> Verification {
    let mut conn = db.connect_as("radfin_ledger").await.unwrap();
    audit::verify_chain(&mut conn, anchor, page).await.unwrap()
}

/// Runs statements as the table owner with the append-only guard off.
async fn tamper(conn: &mut AsyncPgConnection, statements: &[&str]) {
    exec(conn, "ALTER TABLE audit_log DISABLE TRIGGER USER").await.unwrap();
    for sql in statements {
        exec(conn, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    exec(conn, "ALTER TABLE audit_log ENABLE TRIGGER USER").await.unwrap();
}

fn kinds(v: &Verification) -> Vec<(i64, ProblemKind)> {
    v.problems.iter().map(|p| (p.seq, p.kind)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_log_verifies_in_pages_of_any_size() {
    let seven = seeded(7).await;
    for page in [1, 3, 1000] {
        let v = verify(&seven, None, page).await;
        assert!(v.is_ok(), "page {page}: {:?}", v.problems);
        assert_eq!(v.rows_checked, 7);
        assert_eq!(v.last.as_ref().map(|l| l.seq), Some(7));
    }
    let empty = db().await;
    let v = verify(&empty, None, 10).await;
    assert!(v.is_ok() && v.rows_checked == 0 && v.last.is_none(), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_form_one_gapless_chain() {
    let db = db().await;
    let writers = (0..8).map(|w| {
        let url = db.url_as("radfin_ingest");
        tokio::spawn(async move {
            use diesel_async::AsyncConnection;
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            for n in 0..25 {
                audit::record(&mut conn, &record(w * 100 + n)).await.unwrap();
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let v = verify(&db, None, 50).await;
    assert!(v.is_ok(), "{:?}", v.problems);
    assert_eq!(v.rows_checked, 200);
    assert_eq!(v.last.map(|l| l.seq), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_row_is_named() {
    let db = seeded(5).await;
    let mut owner = db.pool().get().await.unwrap();
    tamper(&mut owner, &["UPDATE audit_log SET outcome = 'DENIED' WHERE seq = 3"]).await;
    let v = verify(&db, None, 2).await;
    assert_eq!(kinds(&v), [(3, ProblemKind::Altered)], "{:?}", v.problems);
    assert!(v.problems[0].message.contains("row seq 3"), "{}", v.problems[0]);
    // Even a change in the JSON details, or to the timestamp.
    tamper(
        &mut owner,
        &[
            "UPDATE audit_log SET outcome = 'ALLOWED' WHERE seq = 3",
            "UPDATE audit_log SET details = details || '{\"n\": 99}' WHERE seq = 4",
            "UPDATE audit_log SET at = at + interval '1 microsecond' WHERE seq = 5",
        ],
    )
    .await;
    assert_eq!(kinds(&verify(&db, None, 1000).await), [(4, ProblemKind::Altered), (5, ProblemKind::Altered)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_row_is_named_in_the_middle_and_at_the_end() {
    let db = seeded(6).await;
    let mut owner = db.pool().get().await.unwrap();
    tamper(&mut owner, &["DELETE FROM audit_log WHERE seq = 2"]).await;
    let v = verify(&db, None, 1000).await;
    assert_eq!(kinds(&v), [(2, ProblemKind::Removed)], "{:?}", v.problems);
    assert!(v.problems[0].message.contains("row seq 2 removed"), "{}", v.problems[0]);

    let db = seeded(6).await;
    let mut owner = db.pool().get().await.unwrap();
    tamper(&mut owner, &["DELETE FROM audit_log WHERE seq >= 5"]).await;
    let v = verify(&db, None, 1000).await;
    assert_eq!(kinds(&v), [(5, ProblemKind::Removed)], "{:?}", v.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_row_is_named() {
    let db = seeded(4).await;
    let mut owner = db.pool().get().await.unwrap();
    // A forged row appended after the last one, linked to it, with the hash the database itself
    // would compute — but not through the log, so the chain's head does not know it.
    tamper(
        &mut owner,
        &["INSERT INTO audit_log (id, at, actor, role, action, target, outcome, details, seq, prev_hash, hash)
         SELECT 1000, now(), 'mallory', 'admin', 'RerunPeriod', 'period 2026-01', 'ALLOWED', '{}', 5, a.hash,
                sha256(a.hash || radfin_audit_canonical(5, 1000, now(), 'mallory', 'admin', 'RerunPeriod',
                                                        'period 2026-01', NULL, 'ALLOWED', '{}'))
         FROM audit_log a WHERE a.seq = 4"],
    )
    .await;
    let v = verify(&db, None, 1000).await;
    assert_eq!(kinds(&v), [(5, ProblemKind::Inserted)], "{:?}", v.problems);
    assert!(v.problems[0].message.contains("row seq 5 (id 1000)"), "{}", v.problems[0]);
    // Slipped in between two rows, the later rows renumbered to make room: they no longer match
    // their hashes, from the row after the forged one on.
    tamper(
        &mut owner,
        &[
            "DELETE FROM audit_log WHERE id = 1000",
            "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
            "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103",
            "INSERT INTO audit_log (id, at, actor, role, action, target, outcome, details, seq, prev_hash, hash)
         SELECT 1001, now(), 'mallory', 'admin', 'RerunPeriod', 'period 2026-01', 'ALLOWED', '{}', 3, a.hash,
                sha256(a.hash || radfin_audit_canonical(3, 1001, now(), 'mallory', 'admin', 'RerunPeriod',
                                                        'period 2026-01', NULL, 'ALLOWED', '{}'))
         FROM audit_log a WHERE a.seq = 2",
        ],
    )
    .await;
    let v = verify(&db, None, 1000).await;
    assert!(!v.is_ok());
    assert_eq!(v.problems[0].seq, 4, "the first broken row is the one after the forged row: {:?}", v.problems);
    assert_eq!(v.problems[0].kind, ProblemKind::Relinked, "{:?}", v.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_catches_a_rewritten_and_rehashed_log() {
    let db = seeded(5).await;
    let anchor = verify(&db, None, 1000).await.last.unwrap();
    let mut owner = db.pool().get().await.unwrap();
    // Row 2 altered, then every hash from it on recomputed: the chain itself is consistent again.
    tamper(
        &mut owner,
        &[
            "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 2",
            "DO $$ DECLARE r record; prev bytea := decode(repeat('00', 32), 'hex'); BEGIN
           FOR r IN SELECT * FROM audit_log ORDER BY seq LOOP
             UPDATE audit_log SET prev_hash = prev, hash = sha256(prev || radfin_audit_canonical(r.seq, r.id, r.at,
               r.actor, r.role, r.action, r.target, r.reason, r.outcome, r.details)) WHERE id = r.id
             RETURNING hash INTO prev;
           END LOOP;
           UPDATE audit_chain_head SET hash = prev; END $$",
        ],
    )
    .await;
    assert!(verify(&db, None, 1000).await.is_ok(), "without an anchor a full rehash goes unseen");
    let v = verify(&db, Some(anchor.clone()), 1000).await;
    assert_eq!(kinds(&v), [(5, ProblemKind::AnchorMismatch)], "{:?}", v.problems);
    assert!(v.problems[0].message.contains(&anchor.to_string()), "{}", v.problems[0]);
}
