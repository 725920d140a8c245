//! `fx`: a rate put by hand supersedes the feed's for its date and currency (spec §4.3), whatever
//! the order they were recorded in; among rates put by hand the latest wins.

use chrono::NaiveDate;
use radfin_db::audit::{self, AuditOutcome, AuditRecord};
use radfin_db::fx::{self, ManualPut};
use radfin_db::testing::TestDb;
use radfin_db::{AsyncPgConnection, StorageError};
use radfin_domain::Currency;
use radfin_domain::fx::{FxRate, MANUAL_SOURCE};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::support::db;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn feed_rate(date: &str, inr_per_unit: Decimal) -> FxRate {
    FxRate { rate_date: d(date), currency: Currency::USD, inr_per_unit, source: "ECB".to_owned() }
}

async fn pricing(db: &TestDb) -> AsyncPgConnection {
    db.connect_as("radfin_pricing").await.unwrap()
}

async fn put(conn: &mut AsyncPgConnection, date: &str, inr_per_unit: Decimal) -> ManualPut {
    fx::put_manual(conn, d(date), Currency::USD, inr_per_unit).await.unwrap()
}

/// The USD rate pricing uses for a report dated `date`: (value, rate date, source).
async fn loaded(conn: &mut AsyncPgConnection, date: &str) -> (Decimal, NaiveDate, String) {
    let table = fx::load(conn, d(date), d(date), 7).await.unwrap();
    let r = table.rate_on(Currency::USD, d(date)).unwrap();
    (r.inr_per_unit, r.rate_date, r.source.to_string())
}

/// (value, source, in effect) of every stored USD rate of `date`, in the order recorded.
async fn listed(conn: &mut AsyncPgConnection, date: &str) -> Vec<(Decimal, String, bool)> {
    let rows = fx::list(conn, Some(Currency::USD), d(date), d(date)).await.unwrap();
    rows.into_iter().map(|r| (r.rate.inr_per_unit, r.rate.source, r.in_effect)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rate_put_before_the_feeds_is_the_one_loaded() {
    let db = db().await;
    let mut conn = pricing(&db).await;
    assert_eq!(put(&mut conn, "2026-01-05", dec!(83.30)).await, ManualPut::Recorded { superseded: None });
    // The feed's rate for the same date arrives later: stored, but not in effect.
    assert_eq!(fx::insert_rates(&mut conn, &[feed_rate("2026-01-05", dec!(83.20))]).await.unwrap(), 1);
    assert_eq!(loaded(&mut conn, "2026-01-05").await, (dec!(83.30), d("2026-01-05"), MANUAL_SOURCE.to_owned()));
    // A later date the feed alone covers uses the feed's rate.
    fx::insert_rates(&mut conn, &[feed_rate("2026-01-06", dec!(83.40))]).await.unwrap();
    assert_eq!(loaded(&mut conn, "2026-01-07").await, (dec!(83.40), d("2026-01-06"), "ECB".to_owned()));
    assert_eq!(
        listed(&mut conn, "2026-01-05").await,
        [(dec!(83.30), MANUAL_SOURCE.to_owned(), true), (dec!(83.20), "ECB".to_owned(), false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rate_put_after_the_feeds_is_the_one_loaded() {
    let db = db().await;
    let mut conn = pricing(&db).await;
    fx::insert_rates(&mut conn, &[feed_rate("2026-01-05", dec!(83.20))]).await.unwrap();
    assert_eq!(loaded(&mut conn, "2026-01-05").await.2, "ECB");
    let ManualPut::Recorded { superseded: Some(feed) } = put(&mut conn, "2026-01-05", dec!(83.30)).await else {
        panic!("the manual rate supersedes the feed's");
    };
    assert_eq!((feed.rate.inr_per_unit, feed.rate.source.as_str()), (dec!(83.20), "ECB"));
    // A corrected feed rate fetched afterwards still does not displace it.
    fx::insert_rates(&mut conn, &[feed_rate("2026-01-05", dec!(83.25))]).await.unwrap();
    assert_eq!(loaded(&mut conn, "2026-01-05").await, (dec!(83.30), d("2026-01-05"), MANUAL_SOURCE.to_owned()));
    assert_eq!(
        listed(&mut conn, "2026-01-05").await,
        [
            (dec!(83.20), "ECB".to_owned(), false),
            (dec!(83.30), MANUAL_SOURCE.to_owned(), true),
            (dec!(83.25), "ECB".to_owned(), false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn among_manual_rates_the_latest_put_wins() {
    let db = db().await;
    let mut conn = pricing(&db).await;
    fx::insert_rates(&mut conn, &[feed_rate("2026-01-05", dec!(83.20))]).await.unwrap();
    put(&mut conn, "2026-01-05", dec!(83.30)).await;
    let second = put(&mut conn, "2026-01-05", dec!(83.35)).await;
    assert!(
        matches!(&second, ManualPut::Recorded { superseded: Some(r) } if r.rate.inr_per_unit == dec!(83.30)),
        "{second:?}"
    );
    assert_eq!(loaded(&mut conn, "2026-01-05").await.0, dec!(83.35));
    // Putting the rate in effect again records nothing (83.350000 is the same number).
    assert_eq!(put(&mut conn, "2026-01-05", dec!(83.350000)).await, ManualPut::AlreadyInEffect);
    // Putting back a superseded value cannot be recorded twice: it is refused, naming the rate in effect.
    let ManualPut::Superseded { by } = put(&mut conn, "2026-01-05", dec!(83.3)).await else {
        panic!("a superseded manual rate is not silently kept");
    };
    assert_eq!((by.rate.inr_per_unit, by.in_effect), (dec!(83.35), true));
    assert_eq!(loaded(&mut conn, "2026-01-05").await.0, dec!(83.35));
    let effective: Vec<bool> = listed(&mut conn, "2026-01-05").await.into_iter().map(|r| r.2).collect();
    assert_eq!(effective, [false, false, true]);
}

/// What the pricing API does: the put and its audit row in one serializable transaction, as the
/// pricing service's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_put_is_audited_with_it_in_one_transaction() {
    let db = db().await;
    let pool = radfin_db::pool(&db.url_as("radfin_pricing"), 2).await.unwrap();
    let record = |put: &ManualPut| AuditRecord {
        actor: "ops@example.com".to_owned(),
        role: String::new(),
        action: "PutFxRate".to_owned(),
        target: "USD 2026-01-05".to_owned(),
        reason: Some("ECB feed down; rate from the bank's advice".to_owned()),
        outcome: if matches!(put, ManualPut::Superseded { .. }) { AuditOutcome::Failed } else { AuditOutcome::Allowed },
        details: serde_json::json!({"inr_per_unit": "83.30"}),
    };
    let put = radfin_db::transaction_with_retry(&pool, 3, async |conn| {
        let put = fx::put_manual(conn, d("2026-01-05"), Currency::USD, dec!(83.30)).await?;
        audit::record(conn, &record(&put)).await?;
        Ok(put)
    })
    .await
    .unwrap();
    assert_eq!(put, ManualPut::Recorded { superseded: None });
    let mut conn = pricing(&db).await;
    let mut admin = db.pool().get().await.unwrap();
    let entries = audit::recent(&mut admin, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].record, record(&put));

    // When the audit row cannot be written, the rate is not recorded either.
    let failed: Result<ManualPut, StorageError> = radfin_db::transaction_with_retry(&pool, 3, async |conn| {
        let put = fx::put_manual(conn, d("2026-01-05"), Currency::USD, dec!(83.40)).await?;
        audit::record(conn, &AuditRecord { actor: String::new(), ..record(&put) }).await?;
        Ok(put)
    })
    .await;
    assert!(failed.is_err(), "an audit row without an actor is refused");
    assert_eq!(loaded(&mut conn, "2026-01-05").await.0, dec!(83.30));
    assert_eq!(listed(&mut conn, "2026-01-05").await.len(), 1);
}
