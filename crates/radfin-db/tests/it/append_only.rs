//! Append-only tables refuse UPDATE, DELETE and TRUNCATE: the service roles lack the
//! privileges (and cannot disable the triggers), and even the owner is stopped by the triggers.

use diesel_async::AsyncPgConnection;
use radfin_db::StorageError;
use radfin_db::testing::TestDb;

use crate::support::{db, exec};

/// One row in each table under test, as the owner.
async fn seed(db: &TestDb) {
    let mut conn = db.pool().get().await.unwrap();
    for sql in [
        "INSERT INTO reports (report_id, revision, client_id, provider_id, modality, body_regions, priority,
                              finalized_at, status, period)
         VALUES ('RPT-1', 1, 'HOSP-001', 'RAD-007', 'CT', 1, 'ROUTINE', '2026-01-10T10:00:00Z', 'FINAL', '2026-01')",
        "INSERT INTO pricing_runs (period, kind, created_by) VALUES ('2026-01', 'LIVE', 'test')",
        "SELECT radfin_ensure_ledger_partition('2026-01')",
        "INSERT INTO ledger_entries (period, run_id, report_id, revision, side, client_id, provider_id, modality,
                                     grade, status, currency, amount, amount_inr)
         VALUES ('2026-01', 1, 'RPT-1', 1, 'COGS', 'HOSP-001', 'RAD-007', 'CT', 'SENIOR', 'FINAL', 'INR', 600, 600)",
        "INSERT INTO fx_rates (rate_date, currency, inr_per_unit, source) VALUES ('2026-01-09', 'USD', 83.1, 'ECB')",
        "INSERT INTO audit_log (actor, role, action, target, outcome) VALUES ('alice', 'admin', 'Test', 'x', 'ALLOWED')",
    ] {
        exec(&mut conn, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

const TABLES: [(&str, &str); 4] = [
    ("ledger_entries", "amount = amount + 1"),
    ("reports", "priority = 'STAT'"),
    ("fx_rates", "inr_per_unit = 1"),
    ("audit_log", "outcome = 'DENIED'"),
];

fn changes(table: &str, set: &str) -> [String; 3] {
    [format!("UPDATE {table} SET {set}"), format!("DELETE FROM {table}"), format!("TRUNCATE {table} CASCADE")]
}

async fn expect_denied(conn: &mut AsyncPgConnection, sql: &str, role: &str) {
    match exec(conn, sql).await {
        Err(StorageError::PermissionDenied { message }) => {
            assert!(message.contains("permission denied") || message.contains("must be owner"), "{message}")
        }
        other => panic!("{role}: {sql}: expected permission denied, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_roles_cannot_change_or_unguard_append_only_tables() {
    let db = db().await;
    seed(&db).await;
    for role in ["radfin_ledger", "radfin_ingest"] {
        let mut conn = db.connect_as(role).await.unwrap();
        for (table, set) in TABLES {
            for sql in changes(table, set) {
                expect_denied(&mut conn, &sql, role).await;
            }
            expect_denied(&mut conn, &format!("ALTER TABLE {table} DISABLE TRIGGER radfin_append_only_row"), role)
                .await;
            expect_denied(&mut conn, &format!("ALTER TABLE {table} DISABLE TRIGGER ALL"), role).await;
            expect_denied(&mut conn, &format!("DROP TRIGGER radfin_append_only_row ON {table}"), role).await;
        }
        // Nor a partition directly.
        expect_denied(&mut conn, "DELETE FROM ledger_entries_2026_01", role).await;
        expect_denied(&mut conn, "ALTER TABLE ledger_entries_2026_01 DISABLE TRIGGER ALL", role).await;
    }
    let mut owner = db.pool().get().await.unwrap();
    assert_eq!(crate::support::count(&mut owner, "SELECT count(*) AS n FROM ledger_entries").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn even_the_owner_is_stopped_by_the_triggers() {
    let db = db().await;
    seed(&db).await;
    let mut conn = db.pool().get().await.unwrap();
    for (table, set) in TABLES {
        for sql in changes(table, set) {
            match exec(&mut conn, &sql).await {
                Err(StorageError::AppendOnly { message }) => {
                    assert_eq!(message, format!("{table} is append-only"), "{sql}")
                }
                other => panic!("{sql}: expected append-only, got {other:?}"),
            }
        }
    }
    // A partition reports its parent; its TRUNCATE is guarded too (statement triggers are not inherited).
    for sql in
        ["DELETE FROM ledger_entries_2026_01", "TRUNCATE ledger_entries_2026_01", "TRUNCATE ledger_entries_default"]
    {
        match exec(&mut conn, sql).await {
            Err(StorageError::AppendOnly { message }) => assert_eq!(message, "ledger_entries is append-only"),
            other => panic!("{sql}: expected append-only, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_and_the_projection_are_not_append_only() {
    let db = db().await;
    seed(&db).await;
    let mut owner = db.pool().get().await.unwrap();
    exec(&mut owner, "INSERT INTO report_outbox (seq) SELECT seq FROM reports").await.unwrap();
    let mut ingest = db.connect_as("radfin_ingest").await.unwrap();
    assert_eq!(exec(&mut ingest, "DELETE FROM report_outbox").await.unwrap(), 1);
    let mut ledger = db.connect_as("radfin_ledger").await.unwrap();
    exec(
        &mut ledger,
        "INSERT INTO margin_summary (period, client_id, modality, grade, reports, revenue_inr, cogs_inr, margin_inr)
         VALUES ('2026-01', 'HOSP-001', 'NONE', 'NONE', 0, 100, 0, 100)",
    )
    .await
    .unwrap();
    assert_eq!(exec(&mut ledger, "UPDATE margin_summary SET reports = 1, updated_at = now()").await.unwrap(), 1);
    assert_eq!(exec(&mut ledger, "DELETE FROM margin_summary").await.unwrap(), 1);
}

/// Every table the append-only guard protects, as the database lists them, against every
/// service role: UPDATE, DELETE, TRUNCATE and disabling or dropping its triggers are all refused
/// (issue 10, case 6). A table added later with the guard is covered without touching this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_service_role_can_change_or_unguard_any_append_only_table() {
    #[derive(diesel::QueryableByName)]
    struct Guarded {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
    }
    let db = db().await;
    let mut owner = db.pool().get().await.unwrap();
    let guarded: Vec<Guarded> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT c.relname::text AS table_name, a.attname::text AS column_name
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1
             WHERE t.tgname = 'radfin_append_only_row' AND t.tgparentid = 0
             ORDER BY 1",
        ),
        &mut owner,
    )
    .await
    .unwrap();
    let names: Vec<&str> = guarded.iter().map(|g| g.table_name.as_str()).collect();
    for expected in ["audit_log", "finance_invoices", "fx_rates", "ledger_entries", "payout_statements", "reports"] {
        assert!(names.contains(&expected), "{expected} is guarded: {names:?}");
    }
    for role in ["radfin_ingest", "radfin_pricing", "radfin_ledger", "radfin_reporting"] {
        let mut conn = db.connect_as(role).await.unwrap();
        for Guarded { table_name: table, column_name: column } in &guarded {
            for sql in [
                format!("UPDATE {table} SET {column} = {column}"),
                format!("DELETE FROM {table}"),
                format!("TRUNCATE {table} CASCADE"),
                format!("ALTER TABLE {table} DISABLE TRIGGER radfin_append_only_row"),
                format!("ALTER TABLE {table} DISABLE TRIGGER ALL"),
                format!("DROP TRIGGER radfin_append_only_row ON {table}"),
            ] {
                expect_denied(&mut conn, &sql, role).await;
            }
        }
    }
}
