//! Amounts as documents print them: in figures (grouped) and in words.
//!
//! Nothing here rounds: an amount with more decimals than its currency's minor unit is refused,
//! not rounded (rounding belongs to the domain's `rounding` module).

use radfin_domain::Currency;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::PdfError;

const ONES: [&str; 20] = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
];
const TENS: [&str; 10] = ["", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"];
/// Powers of a thousand in the international system, as far as a `u128` goes.
const SCALES: [&str; 13] = [
    "",
    "Thousand",
    "Million",
    "Billion",
    "Trillion",
    "Quadrillion",
    "Quintillion",
    "Sextillion",
    "Septillion",
    "Octillion",
    "Nonillion",
    "Decillion",
    "Undecillion",
];

/// How a currency's units are named in words: the major unit (as a heading, plural), and the
/// minor unit (singular, plural) when it has a name.
struct Units {
    major: &'static str,
    minor: Option<(&'static str, &'static str)>,
}

fn units(code: &str) -> Units {
    let (major, minor) = match code {
        "INR" => ("Rupees", Some(("Paisa", "Paise"))),
        "USD" => ("US Dollars", Some(("Cent", "Cents"))),
        "EUR" => ("Euros", Some(("Cent", "Cents"))),
        "GBP" => ("Pounds Sterling", Some(("Penny", "Pence"))),
        "AED" => ("UAE Dirhams", Some(("Fils", "Fils"))),
        "SGD" => ("Singapore Dollars", Some(("Cent", "Cents"))),
        "AUD" => ("Australian Dollars", Some(("Cent", "Cents"))),
        "CAD" => ("Canadian Dollars", Some(("Cent", "Cents"))),
        "NZD" => ("New Zealand Dollars", Some(("Cent", "Cents"))),
        "SAR" => ("Saudi Riyals", Some(("Halala", "Halalas"))),
        "JPY" => ("Japanese Yen", None),
        _ => ("", None),
    };
    Units { major, minor }
}

/// 1..=99.
fn tens(n: u128) -> String {
    let i = usize::try_from(n).unwrap_or(0);
    if i < 20 {
        ONES[i].to_owned()
    } else if i % 10 == 0 {
        TENS[i / 10].to_owned()
    } else {
        format!("{}-{}", TENS[i / 10], ONES[i % 10])
    }
}

/// 1..=999, without "and": "Four Hundred Fifty-Six".
fn hundreds(n: u128) -> String {
    let (h, rest) = (n / 100, n % 100);
    match (h, rest) {
        (0, r) => tens(r),
        (h, 0) => format!("{} Hundred", tens(h)),
        (h, r) => format!("{} Hundred {}", tens(h), tens(r)),
    }
}

/// A whole number in the Indian system: thousand, lakh (10⁵), crore (10⁷); more than 99 crore
/// is counted in crores ("One Hundred Crore", "One Lakh Crore").
pub fn indian_words(n: u128) -> String {
    if n == 0 {
        return ONES[0].to_owned();
    }
    let mut parts = Vec::new();
    let crore = n / 10_000_000;
    if crore > 0 {
        parts.push(format!("{} Crore", indian_words(crore)));
    }
    let rest = n % 10_000_000;
    let (lakh, thousand, below) = (rest / 100_000, rest % 100_000 / 1000, rest % 1000);
    if lakh > 0 {
        parts.push(format!("{} Lakh", tens(lakh)));
    }
    if thousand > 0 {
        parts.push(format!("{} Thousand", tens(thousand)));
    }
    if below > 0 {
        parts.push(hundreds(below));
    }
    parts.join(" ")
}

/// A whole number in the international system: thousand, million, billion…
pub fn international_words(n: u128) -> String {
    if n == 0 {
        return ONES[0].to_owned();
    }
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let mut parts = Vec::new();
    for (scale, &group) in groups.iter().enumerate().rev() {
        if group == 0 {
            continue;
        }
        match SCALES.get(scale).copied().unwrap_or_default() {
            "" => parts.push(hundreds(group)),
            name => parts.push(format!("{} {name}", hundreds(group))),
        }
    }
    parts.join(" ")
}

/// The minor-unit digits of `currency`, checked.
pub(crate) fn currency(code: &str) -> Result<Currency, PdfError> {
    Currency::parse(code.trim()).map_err(|_| PdfError::Currency(code.to_owned()))
}

/// The amount with its whole and minor parts, refusing more decimals than the currency has.
fn split(amount: Decimal, currency: Currency) -> Result<(u128, u128), PdfError> {
    let digits = currency.minor_units();
    if amount.normalize().scale() > digits {
        return Err(PdfError::Precision { amount: amount.to_string(), currency: currency.code() });
    }
    let abs = amount.abs();
    let whole = abs.trunc();
    let scale = Decimal::from(10u64.pow(digits));
    let overflow = || PdfError::Precision { amount: amount.to_string(), currency: currency.code() };
    let major = whole.to_u128().ok_or_else(overflow)?;
    let minor = ((abs - whole) * scale).to_u128().ok_or_else(overflow)?;
    Ok((major, minor))
}

/// An amount in words as an invoice prints it: "Rupees One Lakh Twenty-Three Thousand Four
/// Hundred Fifty-Six and Seventy-Eight Paise Only". Rupees are counted in the Indian system
/// (lakh, crore), other currencies in the international one ("US Dollars One Million … and
/// Five Cents Only"). A currency whose units have no name here is named by its code, with its
/// minor part as a fraction ("CHF One Hundred and 50/100 Only"). A negative amount starts with
/// "Minus".
pub fn amount_in_words(amount: Decimal, currency_code: &str) -> Result<String, PdfError> {
    let currency = currency(currency_code)?;
    let (major, minor) = split(amount, currency)?;
    let code = currency.code();
    let units = units(code);
    let whole = if code == "INR" { indian_words(major) } else { international_words(major) };
    let mut text = String::new();
    if amount.is_sign_negative() && !amount.is_zero() {
        text.push_str("Minus ");
    }
    text.push_str(if units.major.is_empty() { code } else { units.major });
    text.push(' ');
    text.push_str(&whole);
    if minor > 0 {
        match units.minor {
            Some((one, many)) => {
                let name = if minor == 1 { one } else { many };
                text.push_str(&format!(" and {} {name}", international_words(minor)));
            }
            None => text.push_str(&format!(" and {minor}/{}", 10u128.pow(currency.minor_units()))),
        }
    }
    text.push_str(" Only");
    Ok(text)
}

/// An amount in figures: the currency's minor digits (padded, never rounded), thousands grouped
/// (`12,34,567.80` in the Indian system for INR, `1,234,567.80` otherwise).
pub fn format_amount(amount: Decimal, currency: Currency) -> String {
    let mut value = amount;
    if value.scale() < currency.minor_units() {
        value.rescale(currency.minor_units());
    }
    let text = value.abs().to_string();
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let indian = currency.code() == "INR";
    let mut out = String::with_capacity(text.len() + text.len() / 2 + 1);
    if value.is_sign_negative() && !value.is_zero() {
        out.push('-');
    }
    let len = int.len();
    for (i, ch) in int.chars().enumerate() {
        let left = len - i;
        // Indian: the last three digits, then pairs; international: threes.
        let comma = i > 0 && if indian { left >= 3 && (left - 3).is_multiple_of(2) } else { left.is_multiple_of(3) };
        if comma {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rust_decimal_macros::dec;

    use super::*;

    fn words(amount: &str, currency: &str) -> String {
        let amount = Decimal::from_str(amount).unwrap_or_default();
        amount_in_words(amount, currency).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn rupees_in_the_indian_system() {
        assert_eq!(
            words("123456.78", "INR"),
            "Rupees One Lakh Twenty-Three Thousand Four Hundred Fifty-Six and Seventy-Eight Paise Only"
        );
        assert_eq!(words("0", "INR"), "Rupees Zero Only");
        assert_eq!(words("0.00", "INR"), "Rupees Zero Only");
        assert_eq!(words("1", "INR"), "Rupees One Only");
        assert_eq!(words("100000", "INR"), "Rupees One Lakh Only");
        assert_eq!(words("10000000", "INR"), "Rupees One Crore Only");
        assert_eq!(words("1.01", "INR"), "Rupees One and One Paisa Only");
        assert_eq!(words("0.50", "INR"), "Rupees Zero and Fifty Paise Only");
        assert_eq!(
            words("999999999.99", "INR"),
            "Rupees Ninety-Nine Crore Ninety-Nine Lakh Ninety-Nine Thousand Nine Hundred Ninety-Nine and \
             Ninety-Nine Paise Only"
        );
        assert_eq!(words("997336.00", "INR"), "Rupees Nine Lakh Ninety-Seven Thousand Three Hundred Thirty-Six Only");
        assert_eq!(words("1000000000", "INR"), "Rupees One Hundred Crore Only");
        assert_eq!(words("1000000000000", "INR"), "Rupees One Lakh Crore Only");
        assert_eq!(words("1234567890123", "INR"), {
            "Rupees One Lakh Twenty-Three Thousand Four Hundred Fifty-Six Crore Seventy-Eight Lakh Ninety \
             Thousand One Hundred Twenty-Three Only"
        });
        assert_eq!(words("101", "INR"), "Rupees One Hundred One Only");
        assert_eq!(words("110", "INR"), "Rupees One Hundred Ten Only");
        assert_eq!(words("1000", "INR"), "Rupees One Thousand Only");
        assert_eq!(words("1100001", "INR"), "Rupees Eleven Lakh One Only");
        assert_eq!(words("-50.00", "INR"), "Minus Rupees Fifty Only");
    }

    #[test]
    fn other_currencies_in_the_international_system() {
        assert_eq!(
            words("1234567.89", "USD"),
            "US Dollars One Million Two Hundred Thirty-Four Thousand Five Hundred Sixty-Seven and Eighty-Nine \
             Cents Only"
        );
        assert_eq!(words("100000", "USD"), "US Dollars One Hundred Thousand Only");
        assert_eq!(words("0.01", "USD"), "US Dollars Zero and One Cent Only");
        assert_eq!(words("2000000000.10", "EUR"), "Euros Two Billion and Ten Cents Only");
        assert_eq!(words("12.05", "GBP"), "Pounds Sterling Twelve and Five Pence Only");
        assert_eq!(words("1500", "JPY"), "Japanese Yen One Thousand Five Hundred Only");
        assert_eq!(words("7.250", "KWD"), "KWD Seven and 250/1000 Only");
        assert_eq!(words("100.50", "CHF"), "CHF One Hundred and 50/100 Only");
    }

    #[test]
    fn refuses_what_it_would_have_to_round() {
        assert_eq!(
            amount_in_words(dec!(1.005), "INR"),
            Err(PdfError::Precision { amount: "1.005".into(), currency: "INR" })
        );
        assert!(matches!(amount_in_words(dec!(1.5), "JPY"), Err(PdfError::Precision { .. })));
        assert_eq!(amount_in_words(dec!(1), "XXX"), Err(PdfError::Currency("XXX".into())));
        assert_eq!(amount_in_words(dec!(1), "ABC"), Err(PdfError::Currency("ABC".into())));
        // Trailing zeros beyond the minor unit are no precision.
        assert_eq!(amount_in_words(dec!(1.0100), "INR").as_deref(), Ok("Rupees One and One Paisa Only"));
    }

    #[test]
    fn figures_are_grouped_and_padded_never_rounded() {
        let fmt = |amount: Decimal, code: &str| format_amount(amount, currency(code).unwrap_or(Currency::INR));
        assert_eq!(fmt(dec!(123456.78), "INR"), "1,23,456.78");
        assert_eq!(fmt(dec!(999999999.99), "INR"), "99,99,99,999.99");
        assert_eq!(fmt(dec!(1000), "INR"), "1,000.00");
        assert_eq!(fmt(dec!(100), "INR"), "100.00");
        assert_eq!(fmt(dec!(-12345), "INR"), "-12,345.00");
        assert_eq!(fmt(dec!(0), "INR"), "0.00");
        assert_eq!(fmt(dec!(1234567.8), "USD"), "1,234,567.80");
        assert_eq!(fmt(dec!(999), "USD"), "999.00");
        assert_eq!(fmt(dec!(1500), "JPY"), "1,500");
        assert_eq!(fmt(dec!(1.005), "INR"), "1.005");
    }
}
