//! Bounds on every decimal radfin accepts from outside: amounts, percentages and multipliers in
//! rule documents, FX rates put by hand or fetched from a feed. A value is refused with the bound
//! it breaks (`"79228162514264337593543950335" has 29 integer digits; at most 12 are allowed`),
//! never accepted to overflow later.
//!
//! # Why these numbers
//!
//! The ledger stores amounts as `numeric(20,4)` (below 10^16) and rates as `numeric(24,6)`;
//! `rust_decimal` holds about 7.9 × 10^28. The bounds keep a month of 10 million reports well
//! inside both:
//!
//! - One report is priced at most [`MAX_REPORT_AMOUNT`] (below 10^12) in its currency: every
//!   amount is below 10^12 ([`MONEY`]), and the rule parsers check that the largest amount a
//!   document can price one report at (its largest price or fee × the factors for 10 body regions,
//!   the largest grade and seniority multipliers and uplifts, plus a client's monthly fee or
//!   minimum) stays within it. Percentages are at most [`MAX_PERCENT`] and multipliers at most
//!   [`MAX_MULTIPLIER`], so those factors are finite and small (at most 91 × 11 on a client's side,
//!   91 × 10 × 10 × 21 on a radiologist's).
//! - An FX rate is below 10^4 INR per unit ([`FX_RATE`]; the strongest billing currency, KWD,
//!   is about 300), so one report's revenue in INR is below 10^12 × 10^4 = 10^16: it fits a ledger
//!   entry's `numeric(20,4)`.
//! - A month of 10^7 reports then sums to below 10^23 in any currency or in INR, five orders of
//!   magnitude under `rust_decimal`'s limit, which leaves room for tax and totals across clients.
//!
//! Decimal places are counted as written: `"120.00000"` has 5.

use std::fmt;

use rust_decimal::Decimal;

/// How many integer digits and decimal places a value may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalLimit {
    /// Digits before the point, leading zeros not counted (`0.5` has none).
    pub integer_digits: u32,
    /// Digits after the point, as written.
    pub decimals: u32,
}

/// An amount of money: a price, a fee, a monthly minimum (a currency may allow fewer decimals
/// where a rule says so).
pub const MONEY: DecimalLimit = DecimalLimit { integer_digits: 12, decimals: 4 };

/// A percentage (uplifts, additional regions), from 0 to [`MAX_PERCENT`].
pub const PERCENT: DecimalLimit = DecimalLimit { integer_digits: 4, decimals: 4 };

/// The largest percentage a rule may give.
pub const MAX_PERCENT: Decimal = Decimal::ONE_THOUSAND;

/// A multiplier (grade, seniority), greater than 0 and at most [`MAX_MULTIPLIER`].
pub const MULTIPLIER: DecimalLimit = DecimalLimit { integer_digits: 2, decimals: 6 };

/// The largest multiplier a rule may give.
pub const MAX_MULTIPLIER: Decimal = Decimal::TEN;

/// INR per unit of a currency, as stored and applied (`numeric(24,6)` holds more; see the module
/// documentation for why radfin accepts less).
pub const FX_RATE: DecimalLimit = DecimalLimit { integer_digits: 4, decimals: 6 };

/// A feed's rate before radfin turns it into INR per unit: a quote per 1 EUR (17 000 IDR,
/// 0.33 KWD), or a row for a currency radfin does not bill in. What is derived from it is then
/// checked against [`FX_RATE`].
pub const FX_QUOTE: DecimalLimit = DecimalLimit { integer_digits: 12, decimals: 10 };

/// The most one report may be priced at, on either side, in its currency: [`MONEY`]'s largest value.
pub const MAX_REPORT_AMOUNT: Decimal = Decimal::from_parts(0x6FC0_FFFF, 0x0023_86F2, 0, false, 4);

/// A value outside its [`DecimalLimit`], or no decimal number at all. The message quotes the
/// value as written and says what the limit is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{text:?} is not a decimal number")]
    NotANumber { text: String },
    #[error("{text:?} has {digits} integer digits; at most {max} are allowed")]
    IntegerDigits { text: String, digits: u32, max: u32 },
    #[error("{text:?} has {places} decimal places; at most {max} are allowed")]
    DecimalPlaces { text: String, places: u32, max: u32 },
}

impl DecimalLimit {
    /// Parses a decimal written as text (`"120.50"`, `"-3"`), exactly, and checks it against the
    /// limit. Text too long for a `Decimal` is measured as written, so it is refused with the
    /// limit it breaks rather than as "not a number".
    pub fn parse(self, text: &str) -> Result<Decimal, LimitError> {
        match Decimal::from_str_exact(text) {
            Ok(value) => self.check_as(value, text),
            Err(_) => Err(match measure(text) {
                Some((digits, places)) => self.error(text, digits, places),
                None => None,
            }
            .unwrap_or_else(|| LimitError::NotANumber { text: text.to_owned() })),
        }
    }

    /// Checks a value already parsed (its scale counts as its decimal places).
    pub fn check(self, value: Decimal) -> Result<Decimal, LimitError> {
        self.check_as(value, &value.to_string())
    }

    /// The largest value within the limit: `999999999999.9999` for [`MONEY`].
    pub fn max_value(self) -> Decimal {
        let digits = self.integer_digits + self.decimals;
        Decimal::from_i128_with_scale(10i128.pow(digits) - 1, self.decimals)
    }

    fn check_as(self, value: Decimal, text: &str) -> Result<Decimal, LimitError> {
        match self.error(text, integer_digits(value), value.scale()) {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }

    fn error(self, text: &str, digits: u32, places: u32) -> Option<LimitError> {
        if digits > self.integer_digits {
            Some(LimitError::IntegerDigits { text: text.to_owned(), digits, max: self.integer_digits })
        } else if places > self.decimals {
            Some(LimitError::DecimalPlaces { text: text.to_owned(), places, max: self.decimals })
        } else {
            None
        }
    }
}

impl fmt::Display for DecimalLimit {
    /// `at most 12 integer digits and 4 decimal places`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most {} integer digits and {} decimal places", self.integer_digits, self.decimals)
    }
}

/// Digits of the integer part of a value, leading zeros not counted.
fn integer_digits(value: Decimal) -> u32 {
    value.abs().trunc().mantissa().unsigned_abs().checked_ilog10().map_or(0, |log| log + 1)
}

/// Integer digits and decimal places of text written the way `Decimal::from_str_exact` reads it
/// (an optional sign, digits with `_` separators, at most one point) but too long for a
/// `Decimal`; `None` for anything else.
fn measure(text: &str) -> Option<(u32, u32)> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let well_formed = |part: &str| part.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed(int) || !well_formed(frac) || !unsigned.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let count = |part: &str| u32::try_from(part.bytes().filter(u8::is_ascii_digit).count()).unwrap_or(u32::MAX);
    Some((count(int.trim_start_matches(['0', '_'])), count(frac)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn values_within_the_limit_parse_exactly() {
        assert_eq!(MONEY.parse("120.00"), Ok(dec!(120.00)));
        assert_eq!(MONEY.parse("999999999999.9999"), Ok(MONEY.max_value()));
        assert_eq!(MONEY.parse("-0.5"), Ok(dec!(-0.5)));
        assert_eq!(MONEY.parse("000000000000001"), Ok(dec!(1)));
        assert_eq!(FX_RATE.parse("9999.999999"), Ok(FX_RATE.max_value()));
        assert_eq!(PERCENT.parse("1000"), Ok(dec!(1000)));
        assert_eq!(MULTIPLIER.parse("1.234567"), Ok(dec!(1.234567)));
    }

    #[test]
    fn too_many_integer_digits_are_refused_with_the_limit() {
        let e = MONEY.parse("79228162514264337593543950335").unwrap_err();
        assert_eq!(e.to_string(), r#""79228162514264337593543950335" has 29 integer digits; at most 12 are allowed"#);
        // Beyond what a Decimal holds at all: still measured, not "not a number".
        let e = MONEY.parse("792281625142643375935439503350").unwrap_err();
        assert_eq!(e, LimitError::IntegerDigits { text: "792281625142643375935439503350".into(), digits: 30, max: 12 });
        assert!(matches!(MONEY.parse("1000000000000"), Err(LimitError::IntegerDigits { digits: 13, .. })));
        assert!(matches!(FX_RATE.parse("10000"), Err(LimitError::IntegerDigits { digits: 5, max: 4, .. })));
        assert!(matches!(FX_RATE.check(dec!(123456789012345678)), Err(LimitError::IntegerDigits { digits: 18, .. })));
    }

    #[test]
    fn too_many_decimal_places_are_refused_with_the_limit() {
        let e = MONEY.parse("1234567890.1234567890123456789").unwrap_err();
        assert_eq!(e.to_string(), r#""1234567890.1234567890123456789" has 19 decimal places; at most 4 are allowed"#);
        let e = MONEY.parse("0.00000000000000000000000000001").unwrap_err();
        assert_eq!(e.to_string(), r#""0.00000000000000000000000000001" has 29 decimal places; at most 4 are allowed"#);
        assert!(matches!(MONEY.parse("120.00000"), Err(LimitError::DecimalPlaces { places: 5, .. })));
        assert!(matches!(FX_RATE.parse("83.1234567"), Err(LimitError::DecimalPlaces { places: 7, max: 6, .. })));
        assert!(matches!(FX_RATE.check(dec!(83.1234567)), Err(LimitError::DecimalPlaces { places: 7, .. })));
    }

    #[test]
    fn text_that_is_no_number_says_so() {
        for text in ["", "abc", "1e5", " 1", "1.2.3", "-", ".", "NaN", "0x10", "1,5"] {
            assert_eq!(MONEY.parse(text), Err(LimitError::NotANumber { text: text.into() }), "{text:?}");
        }
        assert_eq!(MONEY.parse("abc").unwrap_err().to_string(), r#""abc" is not a decimal number"#);
    }

    #[test]
    fn max_values() {
        assert_eq!(MAX_REPORT_AMOUNT, MONEY.max_value());
        assert_eq!(MAX_REPORT_AMOUNT, dec!(999999999999.9999));
        assert_eq!(PERCENT.max_value(), dec!(9999.9999));
        assert!(MAX_PERCENT <= PERCENT.max_value() && MAX_MULTIPLIER <= MULTIPLIER.max_value());
        assert_eq!(MONEY.to_string(), "at most 12 integer digits and 4 decimal places");
    }

    /// The arithmetic of the module documentation, done with `Decimal`'s checked operations.
    #[test]
    fn a_month_at_the_bounds_fits_the_ledger_and_rust_decimal() {
        let numeric_20_4 = DecimalLimit { integer_digits: 16, decimals: 4 }.max_value();
        let report_inr = MAX_REPORT_AMOUNT.checked_mul(FX_RATE.max_value()).unwrap();
        assert!(report_inr <= numeric_20_4, "{report_inr}");
        let month = report_inr.checked_mul(Decimal::from(10_000_000)).unwrap();
        // With GST at 28 % and across every client of the month, still far from the limit.
        assert!(month.checked_mul(dec!(1.28)).unwrap().checked_mul(Decimal::from(100_000)).is_some());
        // The largest factors one report can carry (10 body regions, the largest uplifts,
        // multipliers), at the largest price, are what the rule parsers hold to MAX_REPORT_AMOUNT.
        let percent = |p: Decimal| Decimal::ONE + p / Decimal::ONE_HUNDRED;
        let regions = Decimal::ONE + MAX_PERCENT / Decimal::ONE_HUNDRED * Decimal::from(9);
        let provider = MONEY.max_value() * regions * MAX_MULTIPLIER * MAX_MULTIPLIER * percent(MAX_PERCENT * dec!(2));
        assert!(provider.checked_mul(Decimal::from(10_000_000)).is_some());
    }
}
