//! The fault suite (issue 10): cases that submit, race and (in later cases) break things, and the
//! checker that says what became of every acknowledged report.
//!
//! - [`check`]: the classification itself, without I/O.
//! - [`check_stack`]: reads what the checker needs from a [`Deployment`]'s database (the live runs'
//!   STUDY entries and the ledger facts of the acknowledged reports, straight from the tables, not
//!   through the code under test) and the engine's price of the stored month.
//! - [`cases`]: the cases built so far, each returning a [`CaseResult`] (a row of [`table`]).
//! - [`races`]: a close racing submissions for its month (case 7), a rerun applied twice and by
//!   two callers at once (case 8).
//! - [`hostile`]: poison messages on a report subject among good reports (case 9), and hostile
//!   input at every door, each refused naming the problem with nothing written (case 10).
//!
//! The quick sizes run in the test suite (`tests/it/faults.rs`); `cargo xtask faults` runs the
//! full sizes (`examples/faults.rs`) and prints the table.

pub mod cases;
pub mod check;
pub mod hostile;
pub mod kills;
pub mod races;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
pub use check::{Ack, CaseResult, Class, ClientMonth, Expected, Side, StudyEntry, Verdict, table};
use radfin_domain::{Period, ReportStatus};
use rust_decimal::Decimal;
use tokio_postgres::NoTls;

use crate::Deployment;

/// Classifies every report of `acks` against the live ledger of `stack`, and compares every
/// client-month of `periods` with the engine's price of the stored month.
pub async fn check_stack(stack: &impl Deployment, periods: &[Period], acks: &[Ack]) -> anyhow::Result<Verdict> {
    let mut expected = BTreeMap::new();
    let mut months = Vec::new();
    for &period in periods {
        let (pricing, fx) = crate::engine_pricing(stack, period).await?;
        for r in &pricing.reports {
            expected.insert(
                r.report_id.to_string(),
                Expected {
                    revision: r.revision,
                    billable: r.status == ReportStatus::Final,
                    cogs: r.cogs,
                    study_line: r.study_line,
                },
            );
        }
        months.extend(crate::client_months(stack, &pricing, &fx).await?);
    }
    let ids: Vec<String> = acks.iter().map(|a| a.report_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let (entries, facts) = ledger_of(stack, &ids).await?;
    let classified = check::classify(acks, &expected, &entries, &facts);
    Ok(Verdict::new(acks, &classified, &months))
}

/// Polls [`check_stack`] until it passes or `patience` has gone by; returns the last verdict.
/// (A pipeline still at work can look wrong for a moment: a report not yet booked, a tier not yet
/// adjusted. What is still wrong when it has settled is a fault.)
pub async fn settle(
    stack: &impl Deployment,
    periods: &[Period],
    acks: &[Ack],
    patience: Duration,
) -> anyhow::Result<Verdict> {
    let deadline = Instant::now() + patience;
    loop {
        let verdict = check_stack(stack, periods, acks).await?;
        if verdict.passed() || Instant::now() >= deadline {
            return Ok(verdict);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The live runs' STUDY entries of `report_ids` (every period) and the report revisions the
/// ledger recorded a fact for, read with the database owner's connection.
async fn ledger_of(
    stack: &impl Deployment,
    report_ids: &[String],
) -> anyhow::Result<(Vec<StudyEntry>, BTreeSet<(String, u32)>)> {
    let (client, connection) =
        tokio_postgres::connect(stack.db().url(), NoTls).await.context("the checker's connection")?;
    let connection = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT e.period, e.report_id, e.revision, e.side, e.entry_kind = 'BOOKING', e.amount \
             FROM ledger_entries e JOIN pricing_runs r ON r.run_id = e.run_id \
             WHERE r.kind = 'LIVE' AND e.line = 'STUDY' AND e.report_id = ANY($1)",
            &[&report_ids],
        )
        .await
        .context("reading the live entries")?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let side: String = row.try_get(3)?;
        let revision: i64 = row.try_get(2)?;
        entries.push(StudyEntry {
            period: row.try_get(0)?,
            report_id: row.try_get(1)?,
            revision: u32::try_from(revision)?,
            side: if side == "COGS" { Side::Cogs } else { Side::Revenue },
            booking: row.try_get(4)?,
            amount: row.try_get::<_, Decimal>(5)?,
        });
    }
    let rows = client
        .query(
            "SELECT DISTINCT report_id, revision FROM ledger_facts \
             WHERE report_id = ANY($1) AND revision IS NOT NULL",
            &[&report_ids],
        )
        .await
        .context("reading the ledger facts")?;
    let mut facts = BTreeSet::new();
    for row in rows {
        let revision: i64 = row.try_get(1)?;
        facts.insert((row.try_get::<_, String>(0)?, u32::try_from(revision)?));
    }
    drop(client);
    connection.await??;
    Ok((entries, facts))
}

/// How many rows `reports` holds for `report_id` (every revision).
pub async fn stored_rows(stack: &impl Deployment, report_id: &str) -> anyhow::Result<i64> {
    let (client, connection) = tokio_postgres::connect(stack.db().url(), NoTls).await?;
    let connection = tokio::spawn(connection);
    let n: i64 = client.query_one("SELECT count(*) FROM reports WHERE report_id = $1", &[&report_id]).await?.get(0);
    drop(client);
    connection.await??;
    Ok(n)
}
