//! Tables for the terminal.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use radfin_domain::Currency;
use rust_decimal::Decimal;

/// A table whose columns from `first_numeric` on are right-aligned.
pub fn new(header: &[&str], first_numeric: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for i in first_numeric..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// `1,234,567.80`: the currency's minor digits, thousands grouped.
pub fn amount(value: Decimal, currency: Currency) -> String {
    let mut v = value;
    v.rescale(currency.minor_units());
    let text = v.abs().to_string();
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(text.len() + text.len() / 3 + 1);
    if v.is_sign_negative() && !v.is_zero() {
        grouped.push('-');
    }
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if let Some(f) = frac {
        grouped.push('.');
        grouped.push_str(f);
    }
    grouped
}

/// A table whose columns `numeric` are right-aligned (for tables whose amounts are not all last).
pub fn with_numeric(header: &[&str], numeric: &[usize]) -> Table {
    let mut t = new(header, header.len());
    for &i in numeric {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// A decimal string as a service returned it, thousands grouped (`-1234567.805` is
/// `-1,234,567.805`): digits are never added, dropped or rounded. Text that is not a plain
/// decimal number is returned as it is.
pub fn grouped(text: &str) -> String {
    let (sign, unsigned) = text.strip_prefix('-').map_or(("", text), |rest| ("-", rest));
    let (int, frac) = unsigned.split_once('.').map_or((unsigned, None), |(i, f)| (i, Some(f)));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + int.len() / 3);
    out.push_str(sign);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
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

/// An amount with its currency, `1,234.50 USD`; empty text stays empty.
pub fn money(text: &str, currency: &str) -> String {
    if text.is_empty() { String::new() } else { format!("{} {currency}", grouped(text)) }
}

/// A cell for an optional value: the text, or a dash when it is empty.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() { "—".to_owned() } else { text.to_owned() }
}

pub fn inr(value: Decimal) -> String {
    amount(value, Currency::INR)
}

pub fn pct(value: Option<Decimal>) -> String {
    value.map_or_else(|| "—".to_owned(), |p| format!("{p:.2}%"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn amounts_are_grouped_with_minor_digits() {
        assert_eq!(amount(dec!(1234567.8), Currency::INR), "1,234,567.80");
        assert_eq!(amount(dec!(-1234.5), Currency::INR), "-1,234.50");
        assert_eq!(amount(dec!(999), Currency::JPY), "999");
        assert_eq!(amount(dec!(0), Currency::USD), "0.00");
        assert_eq!(pct(Some(dec!(12.3))), "12.30%");
    }

    #[test]
    fn decimal_strings_are_grouped_as_given() {
        assert_eq!(grouped("1234567.805"), "1,234,567.805");
        assert_eq!(grouped("-1234.5"), "-1,234.5");
        assert_eq!(grouped("999"), "999");
        assert_eq!(grouped("-0.01"), "-0.01");
        assert_eq!(grouped("100000"), "100,000");
        assert_eq!(grouped(""), "");
        assert_eq!(grouped("1e5"), "1e5");
        assert_eq!(grouped("12."), "12.");
        assert_eq!(money("1500.00", "USD"), "1,500.00 USD");
        assert_eq!(money("", "USD"), "");
    }
}
