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
}
