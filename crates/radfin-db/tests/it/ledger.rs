//! `ledger::insert_entries`: partitions on demand, one writer per book version, bookings and
//! signed adjustments.

use std::sync::Arc;

use radfin_db::ledger::{self, BookSlot, EntryReport, LedgerSide, NewLedgerEntry};
use radfin_db::{reports, runs};
use radfin_domain::fx::AppliedRate;
use radfin_domain::{Currency, Grade, Period};
use rust_decimal_macros::dec;

use crate::support::{count, db, period, report};

fn entries(report: &reports::NewReport, run_id: i64) -> [NewLedgerEntry; 2] {
    let e = report.event();
    let entry = |side, currency, amount, fx: Option<AppliedRate>, amount_inr, rule_version| NewLedgerEntry {
        period: report.period(),
        run_id,
        client_id: e.client_id.clone(),
        line: "STUDY",
        report: Some(EntryReport {
            report_id: e.report_id.clone(),
            revision: e.revision,
            provider_id: e.provider_id.clone(),
            modality: e.modality,
            grade: Grade::Consultant,
            status: e.status,
        }),
        side,
        currency,
        amount,
        fx,
        amount_inr,
        rule_version,
        adjusts_id: None,
        reason: None,
        // Each report its own book version in these tests.
        book: Some(BookSlot {
            version: i64::from(e.revision) + if e.report_id.as_str() == "RPT-2" { 10 } else { 0 },
            line_no: if side == LedgerSide::Cogs { 1 } else { 2 },
        }),
    };
    let rate =
        AppliedRate { inr_per_unit: dec!(83.123457), rate_date: report.period().first_day(), source: Arc::from("ECB") };
    [
        entry(LedgerSide::Cogs, Currency::INR, dec!(1296.00), None, dec!(1296.00), Some(1)),
        entry(LedgerSide::Revenue, Currency::USD, dec!(45.00), Some(rate), dec!(3740.56), Some(2)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_entries_are_written_once_per_key() {
    let db = db().await;
    let batch = [
        report("RPT-1", 1, "2026-01-10T10:00:00Z"),
        report("RPT-1", 2, "2026-01-10T11:00:00Z"),
        report("RPT-2", 1, "2026-02-10T10:00:00Z"),
    ];
    let (jan_run, feb_run) = {
        let mut admin = db.pool().get().await.unwrap();
        reports::insert_batch(&mut admin, &batch).await.unwrap();
        let jan = runs::live_run(&mut admin, period("2026-01")).await.unwrap();
        let feb = runs::live_run(&mut admin, period("2026-02")).await.unwrap();
        (jan, feb)
    };
    let all: Vec<NewLedgerEntry> =
        [entries(&batch[0], jan_run), entries(&batch[1], jan_run), entries(&batch[2], feb_run)]
            .into_iter()
            .flatten()
            .collect();

    // As the ledger service's role: it may execute the partition function and insert.
    let mut conn = db.connect_as("radfin_ledger").await.unwrap();
    let written = ledger::insert_entries(&mut conn, &all).await.unwrap();
    assert_eq!(written.len(), 6);
    assert!(written.iter().all(|w| w.entry_kind == "BOOKING"));
    // A second writer of the same book version is refused, and writes nothing.
    let again = ledger::insert_entries(&mut conn, &all).await;
    assert!(matches!(again, Err(radfin_db::StorageError::Conflict { .. })), "{again:?}");

    // A signed adjustment references the booking it corrects.
    let mut adjustment = entries(&batch[0], jan_run)[1].clone();
    adjustment.amount = dec!(-5.00);
    adjustment.amount_inr = dec!(-415.62);
    adjustment.adjusts_id = Some(written[1].id);
    adjustment.reason = Some("TIER");
    adjustment.book = Some(BookSlot { version: 7, line_no: 1 });
    let adjusted = ledger::insert_entries(&mut conn, &[adjustment.clone()]).await.unwrap();
    assert_eq!(adjusted[0].entry_kind, "ADJUSTMENT");
    // A booking cannot be negative; an adjustment must say why.
    let mut bad = adjustment.clone();
    (bad.adjusts_id, bad.book) = (None, Some(BookSlot { version: 8, line_no: 1 }));
    assert!(ledger::insert_entries(&mut conn, &[bad]).await.is_err());
    let mut bad = adjustment;
    (bad.reason, bad.book) = (None, Some(BookSlot { version: 9, line_no: 1 }));
    assert!(ledger::insert_entries(&mut conn, &[bad]).await.is_err());

    let mut admin = db.pool().get().await.unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM ledger_entries").await, 7);
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM ledger_entries_2026_01").await, 5);
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM ledger_entries_2026_02").await, 2);
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM ledger_entries_default").await, 0);

    let of_report = ledger::of_report(&mut conn, batch[0].event().report_id.as_str()).await.unwrap();
    let keys: Vec<(u32, LedgerSide, &str)> =
        of_report.iter().map(|e| (e.report.as_ref().unwrap().revision, e.side, e.entry_kind.as_str())).collect();
    assert_eq!(
        keys,
        [
            (1, LedgerSide::Cogs, "BOOKING"),
            (1, LedgerSide::Revenue, "BOOKING"),
            (2, LedgerSide::Cogs, "BOOKING"),
            (2, LedgerSide::Revenue, "BOOKING"),
            (1, LedgerSide::Revenue, "ADJUSTMENT"),
        ]
    );
    assert_eq!((of_report[4].adjusts_id, of_report[4].reason.as_deref()), (Some(of_report[1].id), Some("TIER")));
    let revenue = &of_report[1];
    assert_eq!((revenue.currency, revenue.amount, revenue.amount_inr), (Currency::USD, dec!(45.00), dec!(3740.56)));
    assert_eq!(revenue.fx.as_ref().map(|r| (r.inr_per_unit, &*r.source)), Some((dec!(83.123457), "ECB")));
    assert_eq!(revenue.rule_version, Some(2));
    assert_eq!(of_report[0].fx, None);

    // Pages of a period in id order.
    let jan = period("2026-01");
    let first = ledger::of_period(&mut conn, jan, 3, None).await.unwrap();
    let second = ledger::of_period(&mut conn, jan, 3, first.last().map(|e| e.id)).await.unwrap();
    assert_eq!((first.len(), second.len()), (3, 2));
    assert!(first.iter().chain(&second).all(|e| e.period == jan && e.run_id == jan_run));
    assert!(first.last().unwrap().id < second[0].id);

    // A new run of the same period books its own entries.
    let rerun = runs::create(
        &mut admin,
        jan,
        runs::RunKind::Rerun,
        chrono::Utc::now(),
        Some("rate negotiated in February"),
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(ledger::insert_entries(&mut conn, &entries(&batch[1], rerun)).await.unwrap().len(), 2);

    // Every entry of a statement references a stored report revision and run (checked once per
    // statement), or nothing of the statement is written: a bulk booking of a run as much as a
    // live book's write.
    let mut unknown_revision = entries(&batch[2], feb_run);
    for (n, e) in (1..).zip(unknown_revision.iter_mut()) {
        e.book = Some(BookSlot { version: 99, line_no: n });
    }
    if let Some(r) = unknown_revision[1].report.as_mut() {
        r.revision = 9;
    }
    let live = ledger::insert_entries(&mut conn, &unknown_revision).await.map(|w| w.len());
    let bulk = ledger::insert_bookings(&mut conn, &unknown_revision.map(|e| NewLedgerEntry { book: None, ..e })).await;
    for message in [format!("{live:?}"), format!("{bulk:?}")] {
        assert!(message.contains("report RPT-2 revision 9 which is not stored"), "{message}");
    }
    let unknown_run = entries(&batch[2], rerun + 1000).map(|e| NewLedgerEntry { book: None, ..e });
    let message = format!("{:?}", ledger::insert_bookings(&mut conn, &unknown_run).await.unwrap_err());
    assert!(message.contains(&format!("pricing run {} which is not stored", rerun + 1000)), "{message}");
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM ledger_entries").await, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_gets_its_partition_once_even_when_writers_race() {
    let db = db().await;
    let period: Period = period("2026-03");
    let run = {
        let mut admin = db.pool().get().await.unwrap();
        reports::insert_batch(
            &mut admin,
            &[report("RPT-1", 1, "2026-03-10T10:00:00Z"), report("RPT-2", 1, "2026-03-11T10:00:00Z")],
        )
        .await
        .unwrap();
        runs::live_run(&mut admin, period).await.unwrap()
    };
    let writers = ["RPT-1", "RPT-2"].map(|id| {
        let pool = db.pool().clone();
        tokio::spawn(async move {
            let r = report(id, 1, if id == "RPT-1" { "2026-03-10T10:00:00Z" } else { "2026-03-11T10:00:00Z" });
            radfin_db::transaction_with_retry(&pool, 10, async |conn| {
                ledger::insert_entries(conn, &entries(&r, run)).await.map(|w| w.len())
            })
            .await
        })
    });
    for writer in writers {
        assert_eq!(writer.await.unwrap().unwrap(), 2);
    }
    let mut admin = db.pool().get().await.unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM ledger_entries_2026_03").await, 4);
}
