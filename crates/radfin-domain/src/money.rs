//! Currencies (ISO 4217, with their minor units) and amounts of money.
//!
//! Amounts are `rust_decimal::Decimal`; a float never touches money. Rounding lives in
//! [`crate::rounding`], the only place that rounds.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rounding;

/// An ISO 4217 currency that has minor units (funds, precious metals and other special codes are
/// not money radfin bills in).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    iso: iso_currency::Currency,
    minor_units: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("'{0}' is not an ISO 4217 currency code")]
    Unknown(String),
    #[error("'{0}' is an ISO 4217 code without minor units (a fund, metal or special code), not a billing currency")]
    NotACurrency(String),
}

impl Currency {
    /// The base currency every margin is normalized to.
    pub const INR: Currency = Currency { iso: iso_currency::Currency::INR, minor_units: 2 };
    pub const USD: Currency = Currency { iso: iso_currency::Currency::USD, minor_units: 2 };
    pub const EUR: Currency = Currency { iso: iso_currency::Currency::EUR, minor_units: 2 };
    pub const GBP: Currency = Currency { iso: iso_currency::Currency::GBP, minor_units: 2 };
    pub const AED: Currency = Currency { iso: iso_currency::Currency::AED, minor_units: 2 };
    pub const JPY: Currency = Currency { iso: iso_currency::Currency::JPY, minor_units: 0 };

    /// Parses an upper-case ISO 4217 alphabetic code such as `INR`.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let iso = iso_currency::Currency::from_code(code).ok_or_else(|| CurrencyError::Unknown(code.to_owned()))?;
        if iso.is_fund() || iso.is_special() {
            return Err(CurrencyError::NotACurrency(code.to_owned()));
        }
        let minor_units = iso
            .exponent()
            .and_then(|e| u8::try_from(e).ok())
            .ok_or_else(|| CurrencyError::NotACurrency(code.to_owned()))?;
        Ok(Self { iso, minor_units })
    }

    pub fn code(self) -> &'static str {
        self.iso.code()
    }

    /// Decimal places of the minor unit: 2 for INR, 0 for JPY, 3 for KWD.
    pub fn minor_units(self) -> u32 {
        u32::from(self.minor_units)
    }

    /// The value of one minor unit (0.01 for INR, 1 for JPY).
    pub fn minor_unit(self) -> Decimal {
        Decimal::new(1, self.minor_units())
    }

    /// Rounds an amount to this currency's minor unit, half away from zero.
    pub fn round(self, amount: Decimal) -> Decimal {
        rounding::round_half_away(amount, self.minor_units())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount in a currency. Arithmetic between different currencies is an error, never a
/// silent conversion.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot combine {left} with {right}")]
pub struct CurrencyMismatch {
    pub left: Currency,
    pub right: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self { amount: Decimal::ZERO, currency }
    }

    /// The amount rounded to the currency's minor unit (half away from zero).
    pub fn rounded(amount: Decimal, currency: Currency) -> Self {
        Self { amount: currency.round(amount), currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, CurrencyMismatch> {
        self.same_currency(other)?;
        Ok(Money::new(self.amount + other.amount, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, CurrencyMismatch> {
        self.same_currency(other)?;
        Ok(Money::new(self.amount - other.amount, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<(), CurrencyMismatch> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }
}

impl fmt::Display for Money {
    /// `1234.50 INR`, always with the currency's minor digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut amount = self.amount;
        amount.rescale(self.currency.minor_units());
        write!(f, "{amount} {}", self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::parse("INR").unwrap().minor_units(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert_eq!(Currency::parse("AED").unwrap(), Currency::AED);
    }

    #[test]
    fn rejects_unknown_and_special_codes() {
        assert_eq!(Currency::parse("XYZ"), Err(CurrencyError::Unknown("XYZ".into())));
        assert_eq!(Currency::parse("inr"), Err(CurrencyError::Unknown("inr".into())));
        assert_eq!(Currency::parse("XAU"), Err(CurrencyError::NotACurrency("XAU".into())));
    }

    #[test]
    fn money_does_not_mix_currencies() {
        let inr = Money::new(dec!(10), Currency::INR);
        let usd = Money::new(dec!(1), Currency::USD);
        assert!(inr.checked_add(usd).is_err());
        assert_eq!(inr.checked_add(inr).unwrap().amount, dec!(20));
        assert_eq!(Money::new(dec!(5), Currency::JPY).to_string(), "5 JPY");
        assert_eq!(Money::new(dec!(5.5), Currency::INR).to_string(), "5.50 INR");
    }

    #[test]
    fn currency_serializes_as_its_code() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
        let c: Currency = serde_json::from_str("\"GBP\"").unwrap();
        assert_eq!(c, Currency::GBP);
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }
}
