//! The audit log (`audit_log`, append-only): every privileged action, allowed or denied.
//!
//! The log is hash-chained by the database as rows are inserted (see
//! `radfin_domain::audit_chain`); [`verify_chain`] reads the chain back and checks it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};
use radfin_domain::audit_chain::{ChainPoint, ChainRow, Verification, Verifier};

use crate::StorageError;
use crate::convert::decode;
use crate::schema::audit_log;

/// How a privileged action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    Allowed,
    Denied,
    /// Allowed, but it failed.
    Failed,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "ALLOWED",
            AuditOutcome::Denied => "DENIED",
            AuditOutcome::Failed => "FAILED",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ALLOWED" => Ok(AuditOutcome::Allowed),
            "DENIED" => Ok(AuditOutcome::Denied),
            "FAILED" => Ok(AuditOutcome::Failed),
            other => Err(format!("must be one of ALLOWED, DENIED, FAILED, got {other:?}")),
        }
    }
}

/// One audited action: who (actor, role), what (action, target), why (reason), outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub actor: String,
    pub role: String,
    /// What was attempted, e.g. `ClosePeriod`.
    pub action: String,
    /// What it was attempted on, e.g. `period 2026-01`.
    pub target: String,
    pub reason: Option<String>,
    pub outcome: AuditOutcome,
    /// Anything else worth keeping (request parameters, error text); an object.
    pub details: serde_json::Value,
}

/// A stored audit row.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub record: AuditRecord,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    role: String,
    action: String,
    target: String,
    reason: Option<String>,
    outcome: String,
    details: serde_json::Value,
}

/// Appends an audit row; returns its id.
pub async fn record(conn: &mut AsyncPgConnection, record: &AuditRecord) -> Result<i64, StorageError> {
    let id = diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor.eq(&record.actor),
            audit_log::role.eq(&record.role),
            audit_log::action.eq(&record.action),
            audit_log::target.eq(&record.target),
            audit_log::reason.eq(record.reason.as_deref()),
            audit_log::outcome.eq(record.outcome.as_str()),
            audit_log::details.eq(&record.details),
        ))
        .returning(audit_log::id)
        .get_result(conn)
        .await?;
    Ok(id)
}

/// The most recent audit rows, newest first.
pub async fn recent(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<AuditEntry>, StorageError> {
    let rows: Vec<AuditRow> =
        audit_log::table.order(audit_log::id.desc()).limit(limit).select(AuditRow::as_select()).load(conn).await?;
    rows.into_iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.id,
                at: row.at,
                record: AuditRecord {
                    actor: row.actor,
                    role: row.role,
                    action: row.action,
                    target: row.target,
                    reason: row.reason,
                    outcome: decode("audit_log.outcome", &row.outcome, str::parse)?,
                    details: row.details,
                },
            })
        })
        .collect()
}

/// Rows read per query when verifying the chain.
pub const CHAIN_PAGE: i64 = 1000;

#[derive(QueryableByName)]
struct ChainRowSql {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Text)]
    details: String,
    #[diesel(sql_type = Bytea)]
    prev_hash: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

/// Up to `limit` rows in chain order (`seq`, then `id`) after position `after` (`(seq, id)`;
/// `None`: from the start), with `details` as PostgreSQL prints it, which is what the hash covers.
pub async fn chain_page(
    conn: &mut AsyncPgConnection,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<ChainRow>, StorageError> {
    let (seq, id) = after.unwrap_or((i64::MIN, i64::MIN));
    let rows: Vec<ChainRowSql> = diesel::sql_query(
        "SELECT seq, id, at, actor, role, action, target, reason, outcome, details::text AS details, prev_hash, hash
         FROM audit_log WHERE (seq, id) > ($1, $2) ORDER BY seq, id LIMIT $3",
    )
    .bind::<BigInt, _>(seq)
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ChainRow {
            seq: r.seq,
            id: r.id,
            at: r.at,
            actor: r.actor,
            role: r.role,
            action: r.action,
            target: r.target,
            reason: r.reason,
            outcome: r.outcome,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect())
}

/// The chain's head (last position and hash) as the database keeps it; `None` unless there is
/// exactly one.
pub async fn chain_head(conn: &mut AsyncPgConnection) -> Result<Option<ChainPoint>, StorageError> {
    use crate::schema::audit_chain_head::dsl as head;
    let rows: Vec<(i64, Vec<u8>)> = head::audit_chain_head.select((head::seq, head::hash)).limit(2).load(conn).await?;
    Ok(match <[_; 1]>::try_from(rows) {
        Ok([(seq, hash)]) => Some(ChainPoint { seq, hash }),
        Err(_) => None,
    })
}

/// Verifies the whole chain, reading `page` rows at a time in one REPEATABLE READ, read-only
/// transaction (so the head and every page are of one snapshot, whatever is appended meanwhile).
/// `anchor`: a position and hash recorded earlier, checked to be still in the chain.
pub async fn verify_chain(
    conn: &mut AsyncPgConnection,
    anchor: Option<ChainPoint>,
    page: i64,
) -> Result<Verification, StorageError> {
    AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let result = async {
        let mut verifier = Verifier::new(chain_head(conn).await?, anchor);
        loop {
            let rows = chain_page(conn, verifier.position(), page.max(1)).await?;
            for row in &rows {
                verifier.check(row);
            }
            if rows.len() < usize::try_from(page.max(1)).unwrap_or(usize::MAX) {
                return Ok(verifier.finish());
            }
        }
    }
    .await;
    // Nothing was written: ending the transaction either way is the same.
    match result {
        Ok(verification) => {
            <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::commit_transaction(conn).await?;
            Ok(verification)
        }
        Err(e) => {
            let _ = <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::rollback_transaction(conn).await;
            Err(e)
        }
    }
}
