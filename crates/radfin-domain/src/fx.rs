//! Foreign exchange (spec §4.3): INR per unit of a currency, by date, and the conversion of
//! revenue to INR. A missing rate is an error the caller must hold the report for, never 1.0.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::limits::{FX_RATE, LimitError};
use crate::money::{Currency, Money};
use crate::rounding::{FX_RATE_DECIMALS, round_half_away};

/// Default oldest rate a report may use, in days before its date.
pub const DEFAULT_MAX_RATE_AGE_DAYS: u32 = 7;

/// The source of a rate put by hand (audited, with a reason). It supersedes a feed's rate for
/// the same date and currency (spec §4.3); no feed may call itself this.
pub const MANUAL_SOURCE: &str = "MANUAL";

/// A reference rate as stored in `fx_rates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate {
    pub rate_date: NaiveDate,
    pub currency: Currency,
    pub inr_per_unit: Decimal,
    pub source: String,
}

impl FxRate {
    /// Whether the rate was put by hand.
    pub fn is_manual(&self) -> bool {
        is_manual(&self.source)
    }
}

/// Whether a rate of this source was put by hand.
pub fn is_manual(source: &str) -> bool {
    source == MANUAL_SOURCE
}

/// Whether a rate of source `later`, recorded after one of source `earlier` for the same date and
/// currency, takes its place (spec §4.3): a rate put by hand supersedes a feed's whatever the order
/// they came in; among rates put by hand, or among a feed's, the later recorded wins.
pub fn supersedes(later: &str, earlier: &str) -> bool {
    is_manual(later) || !is_manual(earlier)
}

/// For rates in the order they were recorded, whether each is the one in effect for its date and
/// currency (see [`supersedes`]): exactly one per date and currency is.
pub fn in_effect(recorded: &[FxRate]) -> Vec<bool> {
    let mut effective: FxHashMap<(NaiveDate, Currency), usize> = FxHashMap::default();
    for (i, rate) in recorded.iter().enumerate() {
        let current = effective.entry((rate.rate_date, rate.currency)).or_insert(i);
        if supersedes(&rate.source, &recorded[*current].source) {
            *current = i;
        }
    }
    let mut flags = vec![false; recorded.len()];
    for i in effective.into_values() {
        flags[i] = true;
    }
    flags
}

/// The rate a conversion used, as every revenue line records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedRate {
    pub inr_per_unit: Decimal,
    pub rate_date: NaiveDate,
    pub source: Arc<str>,
}

/// An amount converted to INR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InrAmount {
    pub amount_inr: Decimal,
    /// None when the amount was already in INR.
    pub rate: Option<AppliedRate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("no {currency} rate dated from {earliest} to {date}")]
    Missing { currency: Currency, date: NaiveDate, earliest: NaiveDate },
    #[error("{currency} rate {rate} is not positive")]
    NotPositive { currency: Currency, rate: Decimal },
    #[error("{currency} rate: {error}")]
    OutOfBounds { currency: Currency, error: LimitError },
    #[error("INR is the base currency and has no rate")]
    BaseCurrency,
}

/// The rate in effect by currency and date. Rates are added in the order they were recorded;
/// for the same currency and date a rate put by hand supersedes a feed's whatever the order, and
/// otherwise the rate added last wins ([`supersedes`]).
#[derive(Clone, Debug)]
pub struct FxTable {
    /// One rate per date, by date.
    rates: FxHashMap<Currency, Vec<(NaiveDate, AppliedRate)>>,
    max_age: Duration,
}

impl Default for FxTable {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RATE_AGE_DAYS)
    }
}

impl FxTable {
    pub fn new(max_age_days: u32) -> Self {
        Self { rates: FxHashMap::default(), max_age: Duration::days(i64::from(max_age_days)) }
    }

    /// Adds a rate recorded after every rate added so far. It is refused when it is for INR, not
    /// positive, or outside [`FX_RATE`]'s bounds.
    pub fn add(&mut self, rate: FxRate) -> Result<(), FxError> {
        if rate.currency == Currency::INR {
            return Err(FxError::BaseCurrency);
        }
        if rate.inr_per_unit <= Decimal::ZERO {
            return Err(FxError::NotPositive { currency: rate.currency, rate: rate.inr_per_unit });
        }
        FX_RATE.check(rate.inr_per_unit).map_err(|error| FxError::OutOfBounds { currency: rate.currency, error })?;
        let list = self.rates.entry(rate.currency).or_default();
        let at = list.partition_point(|(d, _)| *d < rate.rate_date);
        let applied =
            AppliedRate { inr_per_unit: rate.inr_per_unit, rate_date: rate.rate_date, source: Arc::from(rate.source) };
        match list.get_mut(at) {
            Some((date, current)) if *date == rate.rate_date => {
                if supersedes(&applied.source, &current.source) {
                    *current = applied;
                }
            }
            _ => list.insert(at, (rate.rate_date, applied)),
        }
        Ok(())
    }

    /// The rate in effect for each date, by currency code and date.
    pub fn rates(&self) -> impl Iterator<Item = FxRate> + '_ {
        let mut currencies: Vec<&Currency> = self.rates.keys().collect();
        currencies.sort_by_key(|c| c.code());
        currencies.into_iter().flat_map(move |c| {
            self.rates[c].iter().map(move |(date, r)| FxRate {
                rate_date: *date,
                currency: *c,
                inr_per_unit: r.inr_per_unit,
                source: r.source.to_string(),
            })
        })
    }

    /// The latest rate on or before `date`, at most the configured age old.
    pub fn rate_on(&self, currency: Currency, date: NaiveDate) -> Result<&AppliedRate, FxError> {
        let earliest = date - self.max_age;
        let missing = || FxError::Missing { currency, date, earliest };
        let list = self.rates.get(&currency).ok_or_else(missing)?;
        let n = list.partition_point(|(d, _)| *d <= date);
        match n.checked_sub(1).map(|i| &list[i]) {
            Some((d, rate)) if *d >= earliest => Ok(rate),
            _ => Err(missing()),
        }
    }

    /// `round(amount × rate)` in INR with the rate of `date`; INR passes through unchanged.
    pub fn to_inr(&self, money: Money, date: NaiveDate) -> Result<InrAmount, FxError> {
        if money.currency == Currency::INR {
            return Ok(InrAmount { amount_inr: money.amount, rate: None });
        }
        let rate = self.rate_on(money.currency, date)?;
        Ok(InrAmount { amount_inr: Currency::INR.round(money.amount * rate.inr_per_unit), rate: Some(rate.clone()) })
    }
}

/// INR per unit of X from rates quoted per 1 EUR (the ECB's form): `rate(INR) / rate(X)`,
/// kept to 6 decimals, half away from zero. For EUR itself pass `x_per_eur = 1`.
pub fn inr_per_unit_from_eur_quotes(inr_per_eur: Decimal, x_per_eur: Decimal) -> Option<Decimal> {
    if inr_per_eur <= Decimal::ZERO || x_per_eur <= Decimal::ZERO {
        return None;
    }
    inr_per_eur.checked_div(x_per_eur).map(|r| round_half_away(r, FX_RATE_DECIMALS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn rate(date: &str, currency: Currency, r: Decimal, source: &str) -> FxRate {
        FxRate { rate_date: d(date), currency, inr_per_unit: r, source: source.into() }
    }

    #[test]
    fn uses_the_latest_rate_within_the_age_limit() {
        let mut t = FxTable::default();
        t.add(rate("2026-01-02", Currency::USD, dec!(83.10), "ECB")).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.20), "ECB")).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.25), "MANUAL")).unwrap();
        assert_eq!(t.rate_on(Currency::USD, d("2026-01-04")).unwrap().inr_per_unit, dec!(83.10));
        let r = t.rate_on(Currency::USD, d("2026-01-12")).unwrap();
        assert_eq!((r.inr_per_unit, &*r.source), (dec!(83.25), "MANUAL"));
        assert!(matches!(t.rate_on(Currency::USD, d("2026-01-13")), Err(FxError::Missing { .. })));
        assert!(t.rate_on(Currency::USD, d("2026-01-01")).is_err());
        assert!(t.rate_on(Currency::EUR, d("2026-01-05")).is_err());
    }

    #[test]
    fn a_manual_rate_supersedes_the_feeds_whatever_the_order() {
        // Put by hand before the feed's rate for the same date was fetched.
        let mut t = FxTable::default();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.25), MANUAL_SOURCE)).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.20), "ECB")).unwrap();
        let r = t.rate_on(Currency::USD, d("2026-01-06")).unwrap();
        assert_eq!((r.inr_per_unit, &*r.source), (dec!(83.25), MANUAL_SOURCE));
        // And after it.
        let mut t = FxTable::default();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.20), "ECB")).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.25), MANUAL_SOURCE)).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.21), "ECB")).unwrap();
        let r = t.rate_on(Currency::USD, d("2026-01-05")).unwrap();
        assert_eq!((r.inr_per_unit, &*r.source), (dec!(83.25), MANUAL_SOURCE));
        // One rate per date and currency is kept: the one in effect.
        assert_eq!(t.rates().count(), 1);
    }

    #[test]
    fn among_rates_of_one_kind_the_latest_recorded_wins() {
        let mut t = FxTable::default();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.20), "ECB")).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.22), "ECB")).unwrap();
        assert_eq!(t.rate_on(Currency::USD, d("2026-01-05")).unwrap().inr_per_unit, dec!(83.22));
        t.add(rate("2026-01-05", Currency::USD, dec!(83.30), MANUAL_SOURCE)).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.31), MANUAL_SOURCE)).unwrap();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.40), "ECB")).unwrap();
        let r = t.rate_on(Currency::USD, d("2026-01-05")).unwrap();
        assert_eq!((r.inr_per_unit, &*r.source), (dec!(83.31), MANUAL_SOURCE));
        // Other dates and currencies are untouched: the feed's rate of the next day is used.
        t.add(rate("2026-01-06", Currency::USD, dec!(83.50), "ECB")).unwrap();
        t.add(rate("2026-01-05", Currency::EUR, dec!(90.10), "ECB")).unwrap();
        let r = t.rate_on(Currency::USD, d("2026-01-07")).unwrap();
        assert_eq!((r.inr_per_unit, r.rate_date, &*r.source), (dec!(83.50), d("2026-01-06"), "ECB"));
        assert_eq!(t.rate_on(Currency::EUR, d("2026-01-05")).unwrap().inr_per_unit, dec!(90.10));
        let kept: Vec<_> = t.rates().map(|r| (r.currency, r.rate_date, r.inr_per_unit)).collect();
        assert_eq!(
            kept,
            [
                (Currency::EUR, d("2026-01-05"), dec!(90.10)),
                (Currency::USD, d("2026-01-05"), dec!(83.31)),
                (Currency::USD, d("2026-01-06"), dec!(83.50)),
            ]
        );
    }

    #[test]
    fn in_effect_marks_one_rate_per_date_and_currency() {
        let recorded = [
            rate("2026-01-05", Currency::USD, dec!(83.30), MANUAL_SOURCE),
            rate("2026-01-05", Currency::USD, dec!(83.20), "ECB"),
            rate("2026-01-05", Currency::EUR, dec!(90.10), "ECB"),
            rate("2026-01-05", Currency::EUR, dec!(90.20), "ECB"),
            rate("2026-01-06", Currency::USD, dec!(83.50), "ECB"),
            rate("2026-01-05", Currency::USD, dec!(83.31), MANUAL_SOURCE),
            rate("2026-01-05", Currency::USD, dec!(83.21), "ECB"),
        ];
        assert_eq!(in_effect(&recorded), [false, false, false, true, true, true, false]);
        assert!(in_effect(&[]).is_empty());
        assert!(supersedes(MANUAL_SOURCE, "ECB") && supersedes(MANUAL_SOURCE, MANUAL_SOURCE));
        assert!(supersedes("ECB", "ECB") && supersedes("ECB", "SAMPLE") && !supersedes("ECB", MANUAL_SOURCE));
        assert!(recorded[0].is_manual() && !recorded[1].is_manual());
    }

    #[test]
    fn rates_out_of_bounds_are_refused() {
        let mut t = FxTable::default();
        let e = t.add(rate("2026-01-05", Currency::USD, dec!(123456789012345678), "ECB")).unwrap_err();
        assert_eq!(e.to_string(), r#"USD rate: "123456789012345678" has 18 integer digits; at most 4 are allowed"#);
        let e = t.add(rate("2026-01-05", Currency::USD, dec!(83.1234567), MANUAL_SOURCE)).unwrap_err();
        assert_eq!(e.to_string(), r#"USD rate: "83.1234567" has 7 decimal places; at most 6 are allowed"#);
        t.add(rate("2026-01-05", Currency::parse("KWD").unwrap(), dec!(9999.999999), "ECB")).unwrap();
        assert!(t.rate_on(Currency::USD, d("2026-01-05")).is_err());
    }

    #[test]
    fn converts_with_one_rounding() {
        let mut t = FxTable::default();
        t.add(rate("2026-01-05", Currency::USD, dec!(83.123457), "ECB")).unwrap();
        let inr = t.to_inr(Money::new(dec!(45.00), Currency::USD), d("2026-01-06")).unwrap();
        assert_eq!(inr.amount_inr, dec!(3740.56));
        assert_eq!(inr.rate.unwrap().rate_date, d("2026-01-05"));
        let same = t.to_inr(Money::new(dec!(12.34), Currency::INR), d("2020-01-01")).unwrap();
        assert_eq!((same.amount_inr, same.rate), (dec!(12.34), None));
    }

    #[test]
    fn refuses_nonsense_rates() {
        let mut t = FxTable::default();
        assert_eq!(t.add(rate("2026-01-05", Currency::INR, dec!(1), "X")), Err(FxError::BaseCurrency));
        assert!(t.add(rate("2026-01-05", Currency::USD, dec!(0), "X")).is_err());
    }

    #[test]
    fn cross_rates_from_euro_quotes() {
        // 1 EUR = 89.5 INR = 1.0823 USD → 1 USD = 82.694262... INR
        assert_eq!(inr_per_unit_from_eur_quotes(dec!(89.5), dec!(1.0823)), Some(dec!(82.694262)));
        assert_eq!(inr_per_unit_from_eur_quotes(dec!(89.5), dec!(1)), Some(dec!(89.5)));
        assert_eq!(inr_per_unit_from_eur_quotes(dec!(89.5), dec!(0)), None);
    }
}
