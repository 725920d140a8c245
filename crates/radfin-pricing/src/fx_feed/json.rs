//! radfin's JSON feed format: rates in INR per unit (`"base": "INR"`) or one day per 1 EUR
//! (`"base": "EUR"`). The schema is in the [module documentation](super).

use std::collections::BTreeSet;
use std::fmt;

use radfin_domain::fx::FxRate;
use radfin_domain::limits;
use radfin_domain::money::Currency;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{FeedError, Location, Parsed, billable, check_code, check_source, parse_date, parse_rate};

/// Parses a JSON feed body into INR per unit of each billable currency, with `source` on every
/// rate. See the [module documentation](super) for the schema and the rules.
pub fn parse_json(body: &[u8], source: &str) -> Result<Vec<FxRate>, FeedError> {
    check_source(source)?;
    parse(body, source).map(|parsed| parsed.finish(source))
}

#[derive(Deserialize)]
#[serde(tag = "base", deny_unknown_fields)]
enum JsonFeed {
    #[serde(rename = "INR")]
    Inr { rates: Vec<InrRow> },
    #[serde(rename = "EUR")]
    Eur { date: String, rates: EurQuotes },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InrRow {
    date: String,
    currency: String,
    inr_per_unit: RateText,
}

/// A rate as the JSON string it was written as. A JSON number is refused.
struct RateText(String);

impl<'de> Deserialize<'de> for RateText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = RateText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate as a decimal string such as \"83.123456\" (json numbers are not accepted)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateText, E> {
                Ok(RateText(v.to_owned()))
            }
        }
        d.deserialize_str(RateVisitor)
    }
}

/// Rates per 1 EUR by currency code, in document order, with repeated keys kept (so that they
/// can be refused rather than silently overwritten).
struct EurQuotes(Vec<(String, RateText)>);

impl<'de> Deserialize<'de> for EurQuotes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct QuotesVisitor;
        impl<'de> Visitor<'de> for QuotesVisitor {
            type Value = EurQuotes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of rates per 1 EUR by currency code")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EurQuotes, A::Error> {
                let mut quotes = Vec::new();
                while let Some(entry) = map.next_entry::<String, RateText>()? {
                    quotes.push(entry);
                }
                Ok(EurQuotes(quotes))
            }
        }
        d.deserialize_map(QuotesVisitor)
    }
}

/// Parses a body, keeping a day without INR apart for the caller.
pub(super) fn parse(body: &[u8], source: &str) -> Result<Parsed, FeedError> {
    let feed: JsonFeed = serde_json::from_slice(body).map_err(|source| FeedError::Json { source })?;
    let mut parsed = Parsed::default();
    match feed {
        JsonFeed::Inr { rates } => {
            if rates.is_empty() {
                return Err(FeedError::NoRates);
            }
            let mut seen = BTreeSet::new();
            for (i, row) in rates.into_iter().enumerate() {
                let date = parse_date(&row.date, || Location::Row(i))?;
                check_code(&row.currency, || Location::Day(date))?;
                let at = || Location::Quote(date, row.currency.clone());
                if row.currency == Currency::INR.code() {
                    return Err(FeedError::BaseListed { currency: Currency::INR, at: at() });
                }
                if !seen.insert((date, row.currency.clone())) {
                    return Err(FeedError::Duplicate { at: at() });
                }
                // A currency radfin does not bill in is checked, then skipped.
                let currency = billable(&row.currency);
                let limit = if currency.is_some() { limits::FX_RATE } else { limits::FX_QUOTE };
                let inr_per_unit = parse_rate(&row.inr_per_unit.0, limit, at)?;
                if let Some(currency) = currency {
                    parsed.rates.push(FxRate { rate_date: date, currency, inr_per_unit, source: source.to_owned() });
                }
            }
        }
        JsonFeed::Eur { date, rates } => {
            let date = parse_date(&date, || Location::Field("date"))?;
            if rates.0.is_empty() {
                return Err(FeedError::NoRates);
            }
            let mut quotes: Vec<(String, Decimal)> = Vec::with_capacity(rates.0.len());
            for (code, rate) in rates.0 {
                check_code(&code, || Location::Day(date))?;
                let at = || Location::Quote(date, code.clone());
                if code == Currency::EUR.code() {
                    return Err(FeedError::BaseListed { currency: Currency::EUR, at: at() });
                }
                if quotes.iter().any(|(seen, _)| *seen == code) {
                    return Err(FeedError::Duplicate { at: at() });
                }
                let rate = parse_rate(&rate.0, limits::FX_QUOTE, at)?;
                quotes.push((code, rate));
            }
            parsed.add_eur_day(date, &quotes, source)?;
        }
    }
    Ok(parsed)
}
