//! Foreign exchange (spec §4.3): INR per unit of a currency, by date, and the conversion of
//! revenue to INR. A missing rate is an error the caller must hold the report for, never 1.0.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::rounding::{FX_RATE_DECIMALS, round_half_away};

/// Default oldest rate a report may use, in days before its date.
pub const DEFAULT_MAX_RATE_AGE_DAYS: u32 = 7;

/// A reference rate as stored in `fx_rates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate {
    pub rate_date: NaiveDate,
    pub currency: Currency,
    pub inr_per_unit: Decimal,
    pub source: String,
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
    #[error("INR is the base currency and has no rate")]
    BaseCurrency,
}

/// Rates by currency and date. For the same currency and date, the rate added last wins
/// (rates are added in the order they were recorded).
#[derive(Clone, Debug)]
pub struct FxTable {
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

    pub fn add(&mut self, rate: FxRate) -> Result<(), FxError> {
        if rate.currency == Currency::INR {
            return Err(FxError::BaseCurrency);
        }
        if rate.inr_per_unit <= Decimal::ZERO {
            return Err(FxError::NotPositive { currency: rate.currency, rate: rate.inr_per_unit });
        }
        let list = self.rates.entry(rate.currency).or_default();
        let at = list.partition_point(|(d, _)| *d <= rate.rate_date);
        let applied =
            AppliedRate { inr_per_unit: rate.inr_per_unit, rate_date: rate.rate_date, source: Arc::from(rate.source) };
        list.insert(at, (rate.rate_date, applied));
        Ok(())
    }

    /// Every rate, by currency code and date (for the same date, in the order added).
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
