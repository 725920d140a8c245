//! The audit log (`audit_log`, append-only): every privileged action, allowed or denied.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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
