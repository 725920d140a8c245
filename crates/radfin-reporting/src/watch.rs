//! `WatchSummary`: the summary rows that change, pushed to a subscriber as the ledger commits
//! them.
//!
//! The ledger stamps each row it writes with `updated_at`, the start of its transaction. A
//! watcher reads what changed after its previous read's clock less [`OVERLAP`] every [`POLL`],
//! because a transaction that began before that read may commit after it; a row already sent
//! with the same values is not sent again (each watcher remembers the values it has sent, by
//! key). Every [`RESYNC`] it compares the whole table with what it has sent, which catches rows
//! removed (a row that nets to nothing is deleted, a close or rerun replaces a period's rows)
//! and any transaction that took longer than the overlap to commit.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use radfin_db::margin::{MarginChange, MarginRow};
use radfin_db::{Pool, StorageError};
use radfin_proto::reporting::v1 as pb;
use radfin_service::shutdown::Shutdown;
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::query::Range;
use crate::summary::{inr_text, margin_pct, pct_text};

/// How often a watcher reads what changed.
pub const POLL: Duration = Duration::from_millis(250);
/// How far before its previous read's clock a read starts, so that a transaction that began
/// before that read and committed after it is still seen.
pub const OVERLAP: Duration = Duration::from_secs(2);
/// How often a watcher compares the whole summary with what it has sent.
pub const RESYNC: Duration = Duration::from_secs(5);

/// Which rows a subscriber wants.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub range: Range,
    pub client_id: Option<String>,
}

impl Filter {
    fn wants(&self, r: &MarginRow) -> bool {
        self.range.contains(&r.period) && self.client_id.as_deref().is_none_or(|c| r.client_id == c)
    }
}

type RowKey = (String, String, String, String);
type Values = (i64, Decimal, Decimal);

fn key(r: &MarginRow) -> RowKey {
    (r.period.clone(), r.client_id.clone(), r.modality.clone(), r.grade.clone())
}

fn values(r: &MarginRow) -> Values {
    (r.reports, r.revenue_inr, r.cogs_inr)
}

fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A summary row as the stream sends it.
pub fn row_message(r: &MarginRow) -> pb::SummaryRow {
    pb::SummaryRow {
        period: r.period.clone(),
        client_id: r.client_id.clone(),
        modality: r.modality.clone(),
        grade: r.grade.clone(),
        reports: u64::try_from(r.reports).unwrap_or_default(),
        revenue_inr: inr_text(r.revenue_inr),
        cogs_inr: inr_text(r.cogs_inr),
        margin_inr: inr_text(r.margin_inr),
        margin_pct: pct_text(margin_pct(r.margin_inr, r.revenue_inr)),
    }
}

/// What one watcher has sent, by key.
#[derive(Default)]
struct Sent {
    rows: HashMap<RowKey, Values>,
}

impl Sent {
    /// The change of `c` if its values differ from what was sent (recording them).
    fn change(&mut self, c: &MarginChange) -> Option<pb::SummaryChange> {
        let v = values(&c.row);
        if self.rows.get(&key(&c.row)) == Some(&v) {
            return None;
        }
        self.rows.insert(key(&c.row), v);
        Some(pb::SummaryChange { row: Some(row_message(&c.row)), updated_at: time_text(c.updated_at), removed: false })
    }
}

/// Streams the changes wanted by `filter` into `tx` until the subscriber goes away, `stop` is
/// requested (the service drains), or the database fails (sent as the stream's last message).
pub async fn run(
    pool: Pool,
    filter: Filter,
    tx: mpsc::Sender<Result<pb::WatchSummaryResponse, tonic::Status>>,
    mut stop: Shutdown,
) {
    let result = tokio::select! {
        result = watch(&pool, &filter, &tx) => result,
        () = stop.requested() => Ok(()),
        () = tx.closed() => Ok(()),
    };
    if let Err(e) = result {
        let _ = tx.send(Err(radfin_service::error::to_status(&e))).await;
    }
}

async fn watch(
    pool: &Pool,
    filter: &Filter,
    tx: &mpsc::Sender<Result<pb::WatchSummaryResponse, tonic::Status>>,
) -> Result<(), StorageError> {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    // What is there when the call begins is known, not sent: only changes from now on are.
    let baseline = read(pool, epoch).await?;
    let mut sent = Sent::default();
    for c in baseline.rows.iter().filter(|c| filter.wants(&c.row)) {
        sent.change(c);
    }
    let mut as_of = baseline.as_of;
    let mut last_resync = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let resync = last_resync.elapsed() >= RESYNC;
        let since = if resync { epoch } else { as_of - chrono::Duration::from_std(OVERLAP).unwrap_or_default() };
        let read = read(pool, since).await?;
        let mut changes: Vec<pb::SummaryChange> =
            read.rows.iter().filter(|c| filter.wants(&c.row)).filter_map(|c| sent.change(c)).collect();
        if resync {
            last_resync = tokio::time::Instant::now();
            let present: std::collections::HashSet<RowKey> = read.rows.iter().map(|c| key(&c.row)).collect();
            let removed: Vec<RowKey> = sent.rows.keys().filter(|k| !present.contains(*k)).cloned().collect();
            for k in removed {
                sent.rows.remove(&k);
                changes.push(removal(k, read.as_of));
            }
        }
        as_of = read.as_of;
        if !changes.is_empty() {
            let message = pb::WatchSummaryResponse { changes, as_of: time_text(read.as_of) };
            if tx.send(Ok(message)).await.is_err() {
                return Ok(());
            }
        }
    }
}

async fn read(pool: &Pool, since: DateTime<Utc>) -> Result<radfin_db::margin::Changes, StorageError> {
    let mut conn = pool.get().await?;
    radfin_db::margin::changes_since(&mut conn, since).await
}

fn removal((period, client_id, modality, grade): RowKey, seen: DateTime<Utc>) -> pb::SummaryChange {
    pb::SummaryChange {
        row: Some(pb::SummaryRow {
            period,
            client_id,
            modality,
            grade,
            reports: 0,
            revenue_inr: inr_text(Decimal::ZERO),
            cogs_inr: inr_text(Decimal::ZERO),
            margin_inr: inr_text(Decimal::ZERO),
            margin_pct: String::new(),
        }),
        updated_at: time_text(seen),
        removed: true,
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn change(client: &str, revenue: Decimal) -> MarginChange {
        MarginChange {
            row: MarginRow {
                period: "2026-10".into(),
                client_id: client.into(),
                modality: "CT".into(),
                grade: "SENIOR".into(),
                reports: 1,
                revenue_inr: revenue,
                cogs_inr: dec!(100),
                margin_inr: revenue - dec!(100),
            },
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_row_is_sent_again_only_when_its_values_change() {
        let mut sent = Sent::default();
        let first = sent.change(&change("HOSP-A", dec!(250.00))).expect("new");
        assert_eq!(first.row.as_ref().unwrap().margin_pct, "60.00");
        assert_eq!(first.updated_at, "1970-01-01T00:00:00.000000Z");
        assert!(sent.change(&change("HOSP-A", dec!(250.0000))).is_none(), "same values, other scale");
        assert!(sent.change(&change("HOSP-A", dec!(251))).is_some());
        assert!(sent.change(&change("HOSP-B", dec!(251))).is_some(), "another key");
    }

    #[test]
    fn filters_select_periods_and_clients() {
        let f = Filter {
            range: Range { from: Some("2026-10".parse().unwrap()), to: None },
            client_id: Some("HOSP-A".into()),
        };
        assert!(f.wants(&change("HOSP-A", dec!(1)).row));
        assert!(!f.wants(&change("HOSP-B", dec!(1)).row));
        let mut old = change("HOSP-A", dec!(1)).row;
        old.period = "2026-09".into();
        assert!(!f.wants(&old));
    }
}
