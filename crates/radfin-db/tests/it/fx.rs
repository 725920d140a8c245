//! `fx`: stored rates come back as the domain's `FxTable`, latest fetched first.

use chrono::NaiveDate;
use radfin_db::fx;
use radfin_domain::Currency;
use radfin_domain::fx::{FxError, FxRate};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::support::db;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn rate(date: &str, currency: Currency, inr_per_unit: Decimal, source: &str) -> FxRate {
    FxRate { rate_date: d(date), currency, inr_per_unit, source: source.to_owned() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_round_trip_and_refetching_is_a_no_op() {
    let db = db().await;
    let mut conn = db.connect_as("radfin_pricing").await.unwrap();
    let rates = [
        rate("2026-01-02", Currency::USD, dec!(83.10), "ECB"),
        rate("2026-01-05", Currency::USD, dec!(83.20), "ECB"),
        rate("2026-01-05", Currency::EUR, dec!(89.512345), "ECB"),
        rate("2026-01-05", Currency::USD, dec!(83.20), "ECB"),
    ];
    assert_eq!(fx::insert_rates(&mut conn, &rates).await.unwrap(), 3, "the repeat within the batch is skipped");
    assert_eq!(fx::insert_rates(&mut conn, &rates).await.unwrap(), 0, "re-fetching stores nothing");
    // 83.2 is the same number as 83.20 once stored as numeric(24,6).
    assert_eq!(fx::insert_rates(&mut conn, &[rate("2026-01-05", Currency::USD, dec!(83.2), "ECB")]).await.unwrap(), 0);
    // A corrected rate for the same day, fetched later, wins.
    assert_eq!(fx::insert_rates(&mut conn, &[rate("2026-01-05", Currency::USD, dec!(83.25), "ECB")]).await.unwrap(), 1);

    let table = fx::load(&mut conn, d("2026-01-06"), d("2026-01-31"), 7).await.unwrap();
    assert_eq!(table.rate_on(Currency::USD, d("2026-01-04")).unwrap().inr_per_unit, dec!(83.10));
    let usd = table.rate_on(Currency::USD, d("2026-01-12")).unwrap();
    assert_eq!((usd.inr_per_unit, usd.rate_date, &*usd.source), (dec!(83.25), d("2026-01-05"), "ECB"));
    assert_eq!(table.rate_on(Currency::EUR, d("2026-01-06")).unwrap().inr_per_unit, dec!(89.512345));
    assert!(matches!(table.rate_on(Currency::USD, d("2026-01-13")), Err(FxError::Missing { .. })), "older than 7 days");
    assert!(table.rate_on(Currency::GBP, d("2026-01-06")).is_err(), "no rate is never a default");

    let listed = fx::list(&mut conn, Some(Currency::USD), d("2026-01-01"), d("2026-01-31")).await.unwrap();
    let values: Vec<Decimal> = listed.iter().map(|r| r.rate.inr_per_unit).collect();
    assert_eq!(values, [dec!(83.10), dec!(83.20), dec!(83.25)]);
    assert_eq!(fx::list(&mut conn, None, d("2026-01-05"), d("2026-01-05")).await.unwrap().len(), 3);
}
