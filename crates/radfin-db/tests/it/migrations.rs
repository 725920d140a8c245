//! The migrations: idempotent, reversible, least privilege, and `schema.rs` in step with them.

use std::collections::BTreeMap;

use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::support::{count, db};

const SERVICE_ROLES: [&str; 4] = ["radfin_ingest", "radfin_pricing", "radfin_ledger", "radfin_reporting"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_twice_and_revert() {
    let db = db().await;
    let migrations = 15;
    radfin_db::migrate(db.url()).await.expect("a second migration is a no-op");
    radfin_db::migrate(db.url()).await.expect("and a third");
    let mut conn = db.pool().get().await.unwrap();
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM __diesel_schema_migrations").await, migrations);

    db.revert_all_migrations().await.expect("every down.sql runs");
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM __diesel_schema_migrations").await, 0);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
        )
        .await,
        1,
        "only diesel's bookkeeping table is left"
    );
    radfin_db::migrate(db.url()).await.expect("migrating again after a revert");
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM __diesel_schema_migrations").await, migrations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_roles_own_nothing_and_hold_least_privilege() {
    let db = db().await;
    let mut conn = db.pool().get().await.unwrap();
    for role in SERVICE_ROLES {
        let powerful = count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM pg_roles WHERE rolname = '{role}' AND rolcanlogin
                 AND NOT (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)"
            ),
        )
        .await;
        assert_eq!(powerful, 1, "{role} logs in and has no special attribute");
        let owned = count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = '{role}'"
            ),
        )
        .await;
        assert_eq!(owned, 0, "{role} owns nothing");
        // Nothing any service role may UPDATE, DELETE or TRUNCATE, except the outbox, the live
        // books' version rows and the projection.
        let writable = privileged_tables(&mut conn, role, "UPDATE, DELETE, TRUNCATE").await;
        let expected: &[&str] = match role {
            "radfin_ingest" => &["report_outbox"],
            // The live books' lock-and-version rows.
            "radfin_ledger" => &["live_books", "margin_summary"],
            "radfin_reporting" => &["margin_summary"],
            _ => &[],
        };
        assert_eq!(writable, expected, "{role} may change only these tables");
    }
    assert_eq!(
        privileged_tables(&mut conn, "radfin_ingest", "INSERT").await,
        ["audit_log", "report_outbox", "reports", "sync_runs"]
    );
    assert_eq!(
        privileged_tables(&mut conn, "radfin_pricing", "INSERT").await,
        [
            "audit_log",
            "client_pricing_rules",
            "clients",
            "fx_rates",
            "held_reports",
            "pricing_runs",
            "provider_pricing_rules",
            "providers"
        ]
    );
    assert_eq!(
        privileged_tables(&mut conn, "radfin_ledger", "INSERT").await,
        [
            "audit_log",
            "document_numbers",
            "finance_credit_note_lines",
            "finance_credit_notes",
            "finance_invoice_lines",
            "finance_invoices",
            "held_reports",
            "ledger_entries",
            "ledger_facts",
            "live_books",
            "margin_summary",
            "payout_statement_lines",
            "payout_statements",
            "period_states",
            "pricing_runs",
            "rerun_manifests"
        ]
    );
    assert_eq!(privileged_tables(&mut conn, "radfin_reporting", "INSERT").await, ["audit_log", "margin_summary"]);
    let can_execute = |role: &str| {
        format!(
            "SELECT count(*) AS n WHERE has_function_privilege('{role}', 'radfin_ensure_ledger_partition(text)', 'EXECUTE')"
        )
    };
    assert_eq!(count(&mut conn, &can_execute("radfin_ledger")).await, 1);
    assert_eq!(count(&mut conn, &can_execute("radfin_pricing")).await, 0);
}

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    relname: String,
}

/// The tables (not partitions) of `public` on which `role` holds any of `privileges`, by name.
async fn privileged_tables(conn: &mut AsyncPgConnection, role: &str, privileges: &str) -> Vec<String> {
    let rows: Vec<TableName> = diesel::sql_query(format!(
        "SELECT c.relname FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND has_table_privilege('{role}', c.oid, '{privileges}')
         ORDER BY c.relname"
    ))
    .load(conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.relname).collect()
}

#[derive(diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    #[diesel(sql_type = Bool)]
    in_primary_key: bool,
}

/// (column, SQL type, nullable, in the primary key) per table, in column order.
type Tables = BTreeMap<String, Vec<(String, String, bool, bool)>>;

/// What `diesel print-schema` would check: every table of the migrations is in `schema.rs`
/// with the same columns, in the same order, of the same types, nullability and primary key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_matches_the_database() {
    let db = db().await;
    let mut conn = db.pool().get().await.unwrap();
    let columns: Vec<Column> = diesel::sql_query(
        "SELECT c.relname::text AS table_name, a.attname::text AS column_name,
                format_type(a.atttypid, NULL) AS data_type, NOT a.attnotnull AS nullable,
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary
                        AND a.attnum = ANY (i.indkey)) AS in_primary_key
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND c.relname <> '__diesel_schema_migrations' AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY c.relname, a.attnum",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut database = Tables::new();
    for c in columns {
        database.entry(c.table_name).or_default().push((c.column_name, c.data_type, c.nullable, c.in_primary_key));
    }
    assert_eq!(parse_schema_rs(include_str!("../../src/schema.rs")), database);
}

/// The tables of a `schema.rs` in the shape of the query above.
fn parse_schema_rs(text: &str) -> Tables {
    let mut tables = Tables::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines().map(str::trim) {
        if let Some((name, rest)) = line.split_once(" (").filter(|_| line.ends_with(") {")) {
            let keys = rest.trim_end_matches(") {").split(", ").map(str::to_owned).collect();
            current = Some((name.to_owned(), keys));
            tables.insert(name.to_owned(), Vec::new());
        } else if let (Some((table, keys)), Some((column, ty))) = (&current, line.split_once(" -> ")) {
            let ty = ty.trim_end_matches(',');
            let (nullable, ty) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (true, inner.trim_end_matches('>')),
                None => (false, ty),
            };
            let sql = match ty {
                "Int2" => "smallint",
                "Int4" => "integer",
                "Int8" => "bigint",
                "Text" => "text",
                "Bpchar" => "character",
                "Numeric" => "numeric",
                "Bool" => "boolean",
                "Date" => "date",
                "Timestamptz" => "timestamp with time zone",
                "Jsonb" => "jsonb",
                "Bytea" => "bytea",
                other => panic!("schema.rs: unexpected type {other}"),
            };
            let column = column.to_owned();
            let in_key = keys.contains(&column);
            tables.get_mut(table).unwrap().push((column, sql.to_owned(), nullable, in_key));
        } else if line == "}" {
            current = None;
        }
    }
    tables
}
