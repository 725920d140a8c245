//! Held reports (`held_reports`, append-only HELD / RELEASED events). A report revision is
//! currently held when its latest event is HELD.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use radfin_domain::pricing::HoldReason;
use radfin_domain::{ClientId, Period, ProviderId, ReportId};

use crate::StorageError;
use crate::convert::{decode, revision_from_db};
use crate::schema::held_reports;

/// Why a report is held, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeldStatus {
    /// No client or provider profile in force on the report's date.
    UnknownParty,
    /// No provider or client rules in force on the report's date.
    NoRule,
    /// The client's rules cannot price the report (no unit price, another currency).
    NoPrice,
    /// No FX rate recent enough for the report's date.
    AwaitingFx,
    /// The report arrived for a closed period; only a rerun applies it.
    HeldClosedPeriod,
}

impl HeldStatus {
    pub const ALL: &'static [HeldStatus] = &[
        HeldStatus::UnknownParty,
        HeldStatus::NoRule,
        HeldStatus::NoPrice,
        HeldStatus::AwaitingFx,
        HeldStatus::HeldClosedPeriod,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HeldStatus::UnknownParty => "UNKNOWN_PARTY",
            HeldStatus::NoRule => "NO_RULE",
            HeldStatus::NoPrice => "NO_PRICE",
            HeldStatus::AwaitingFx => "AWAITING_FX",
            HeldStatus::HeldClosedPeriod => "HELD_CLOSED_PERIOD",
        }
    }

    /// The status of a reason the pricing engine gave.
    pub fn of_reason(reason: &HoldReason) -> Self {
        match reason {
            HoldReason::UnknownClient | HoldReason::UnknownProvider => HeldStatus::UnknownParty,
            HoldReason::NoProviderRule | HoldReason::NoClientRule => HeldStatus::NoRule,
            HoldReason::NoUnitPrice { .. } | HoldReason::CurrencyChanged { .. } => HeldStatus::NoPrice,
        }
    }
}

impl fmt::Display for HeldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HeldStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        HeldStatus::ALL.iter().copied().find(|h| h.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = HeldStatus::ALL.iter().map(|h| h.as_str()).collect();
            format!("must be one of {}, got {s:?}", names.join(", "))
        })
    }
}

/// A report revision to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewHold {
    pub report_id: ReportId,
    pub revision: u32,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub period: Period,
    pub status: HeldStatus,
    /// The detailed reason, for operators.
    pub reason: String,
}

/// A currently held report revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRow {
    /// The id of the HELD event.
    pub id: i64,
    pub report_id: ReportId,
    pub revision: u32,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub period: Period,
    pub status: HeldStatus,
    pub reason: String,
    pub held_at: DateTime<Utc>,
}

/// Which held reports to list; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldFilter {
    pub status: Option<HeldStatus>,
    pub period: Option<Period>,
    pub client_id: Option<ClientId>,
    pub provider_id: Option<ProviderId>,
}

#[derive(QueryableByName)]
#[diesel(table_name = held_reports, check_for_backend(diesel::pg::Pg))]
struct HeldEventRow {
    id: i64,
    report_id: String,
    revision: i64,
    client_id: String,
    provider_id: String,
    period: String,
    status: String,
    reason: String,
    at: DateTime<Utc>,
}

impl TryFrom<HeldEventRow> for HeldRow {
    type Error = StorageError;

    fn try_from(row: HeldEventRow) -> Result<Self, StorageError> {
        Ok(HeldRow {
            id: row.id,
            report_id: decode("held_reports.report_id", &row.report_id, ReportId::parse)?,
            revision: revision_from_db("held_reports.revision", row.revision)?,
            client_id: decode("held_reports.client_id", &row.client_id, ClientId::parse)?,
            provider_id: decode("held_reports.provider_id", &row.provider_id, ProviderId::parse)?,
            period: decode("held_reports.period", &row.period, str::parse)?,
            status: decode("held_reports.status", &row.status, str::parse)?,
            reason: row.reason,
            held_at: row.at,
        })
    }
}

/// Holds report revisions with one statement. A revision already held with the same status
/// and reason gets no new event (repricing the open month every hour does not pile up events);
/// one held for another status or reason gets a new HELD event. Of several holds of one
/// revision in `holds`, the last counts. Returns the events added.
pub async fn hold(conn: &mut AsyncPgConnection, holds: &[NewHold]) -> Result<usize, StorageError> {
    let mut last: Vec<&NewHold> = Vec::with_capacity(holds.len());
    for h in holds.iter().rev() {
        if !last.iter().any(|l| l.report_id == h.report_id && l.revision == h.revision) {
            last.push(h);
        }
    }
    last.reverse();
    if last.is_empty() {
        return Ok(0);
    }
    let added = diesel::sql_query(
        "INSERT INTO held_reports (report_id, revision, client_id, provider_id, period, status, reason, event)
         SELECT v.report_id, v.revision, v.client_id, v.provider_id, v.period, v.status, v.reason, 'HELD'
         FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
              AS v(report_id, revision, client_id, provider_id, period, status, reason, ord)
         WHERE NOT EXISTS (
             SELECT 1 FROM (
                 SELECT h.event, h.status, h.reason FROM held_reports h
                 WHERE h.report_id = v.report_id AND h.revision = v.revision
                 ORDER BY h.id DESC LIMIT 1
             ) latest
             WHERE latest.event = 'HELD' AND latest.status = v.status AND latest.reason = v.reason
         )
         ORDER BY v.ord",
    )
    .bind::<Array<Text>, _>(last.iter().map(|h| h.report_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(last.iter().map(|h| i64::from(h.revision)).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(last.iter().map(|h| h.client_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(last.iter().map(|h| h.provider_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(last.iter().map(|h| h.period.to_string()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(last.iter().map(|h| h.status.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(last.iter().map(|h| h.reason.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(added)
}

/// Releases report revisions with one statement: for each (report, revision), every currently
/// held revision of the report up to and including it gets a RELEASED event (pricing a higher
/// revision releases the holds of the lower ones it supersedes). Releasing what is not held
/// does nothing. Returns the events added.
pub async fn release(conn: &mut AsyncPgConnection, reports: &[(ReportId, u32)]) -> Result<usize, StorageError> {
    if reports.is_empty() {
        return Ok(0);
    }
    let released = diesel::sql_query(
        "INSERT INTO held_reports (report_id, revision, client_id, provider_id, period, status, reason, event)
         SELECT l.report_id, l.revision, l.client_id, l.provider_id, l.period, l.status, l.reason, 'RELEASED'
         FROM (
             SELECT DISTINCT ON (h.report_id, h.revision) h.*
             FROM held_reports h
             JOIN unnest($1::text[], $2::int8[]) AS v(report_id, revision)
               ON h.report_id = v.report_id AND h.revision <= v.revision
             ORDER BY h.report_id, h.revision, h.id DESC
         ) l
         WHERE l.event = 'HELD'
         ORDER BY l.report_id, l.revision",
    )
    .bind::<Array<Text>, _>(reports.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(reports.iter().map(|(_, rev)| i64::from(*rev)).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(released)
}

/// How many report revisions are currently held, per status (statuses with none are absent).
pub async fn current_counts(conn: &mut AsyncPgConnection) -> Result<Vec<(HeldStatus, i64)>, StorageError> {
    #[derive(QueryableByName)]
    struct CountRow {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        held: i64,
    }
    let rows: Vec<CountRow> = diesel::sql_query(
        "SELECT l.status, count(*) AS held
         FROM (
             SELECT DISTINCT ON (h.report_id, h.revision) h.status, h.event
             FROM held_reports h
             ORDER BY h.report_id, h.revision, h.id DESC
         ) l
         WHERE l.event = 'HELD'
         GROUP BY l.status",
    )
    .load(conn)
    .await?;
    rows.into_iter().map(|r| Ok((decode("held_reports.status", &r.status, str::parse)?, r.held))).collect()
}

/// The currently held report revisions matching `filter`, by period, report and revision.
pub async fn current(conn: &mut AsyncPgConnection, filter: &HeldFilter) -> Result<Vec<HeldRow>, StorageError> {
    let rows: Vec<HeldEventRow> = diesel::sql_query(
        "SELECT l.id, l.report_id, l.revision, l.client_id, l.provider_id, l.period, l.status, l.reason, l.at
         FROM (
             SELECT DISTINCT ON (h.report_id, h.revision) h.*
             FROM held_reports h
             WHERE ($1::text IS NULL OR h.period = $1)
               AND ($2::text IS NULL OR h.client_id = $2)
               AND ($3::text IS NULL OR h.provider_id = $3)
             ORDER BY h.report_id, h.revision, h.id DESC
         ) l
         WHERE l.event = 'HELD' AND ($4::text IS NULL OR l.status = $4)
         ORDER BY l.period, l.report_id, l.revision",
    )
    .bind::<Nullable<Text>, _>(filter.period.map(|p| p.to_string()))
    .bind::<Nullable<Text>, _>(filter.client_id.as_ref().map(ClientId::as_str))
    .bind::<Nullable<Text>, _>(filter.provider_id.as_ref().map(ProviderId::as_str))
    .bind::<Nullable<Text>, _>(filter.status.map(HeldStatus::as_str))
    .load(conn)
    .await?;
    rows.into_iter().map(HeldRow::try_from).collect()
}
