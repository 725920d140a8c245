//! Shared fixtures.

use chrono::{DateTime, Utc};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use radfin_db::StorageError;
use radfin_db::reports::NewReport;
use radfin_db::testing::TestDb;
use radfin_domain::{
    BusinessCalendar, ClientId, Modality, Period, Priority, ProviderId, ReportEvent, ReportId, ReportStatus,
};

pub async fn db() -> TestDb {
    TestDb::create().await.expect("a test database (is PostgreSQL running? see RADFIN_TEST_DATABASE_URL)")
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

pub fn period(s: &str) -> Period {
    s.parse().expect("a period")
}

pub fn event(report_id: &str, revision: u32, finalized_at: &str) -> ReportEvent {
    ReportEvent {
        report_id: ReportId::parse(report_id).expect("a report id"),
        revision,
        client_id: ClientId::parse("HOSP-001").expect("a client id"),
        provider_id: ProviderId::parse("RAD-007").expect("a provider id"),
        modality: Modality::Mri,
        body_regions: 2,
        priority: Priority::Stat,
        finalized_at: at(finalized_at),
        status: ReportStatus::Final,
    }
}

/// A report with its period by the default business calendar (Asia/Kolkata).
pub fn new_report(event: ReportEvent) -> NewReport {
    let period = BusinessCalendar::default().period_of(event.finalized_at);
    NewReport::new(event, period)
}

pub fn report(report_id: &str, revision: u32, finalized_at: &str) -> NewReport {
    new_report(event(report_id, revision, finalized_at))
}

/// Runs a statement, through the same error translation as the repositories.
pub async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, StorageError> {
    Ok(diesel::sql_query(sql).execute(conn).await?)
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The value of a `SELECT count(*) AS n …` (or any bigint aliased `n`).
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    let row: Count = diesel::sql_query(sql).get_result(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.n
}
