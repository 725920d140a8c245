//! The FX feed (spec §4.3): arbitrary bytes through both body parsers, `parse_ecb_xml` and
//! `parse_json`. Neither may panic; what they accept keeps the module's promises: only billable
//! currencies other than INR, each with the caller's source, positive and within
//! `limits::FX_RATE`, sorted by date then currency code, each (date, currency) once.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radfin_domain::fx::FxRate;
use radfin_domain::limits::FX_RATE;
use radfin_domain::money::Currency;
use radfin_pricing::fx_feed::{FeedError, parse_ecb_xml, parse_json};

const SOURCE: &str = "FUZZ";

fuzz_target!(|data: &[u8]| {
    check(parse_ecb_xml(data, SOURCE));
    check(parse_json(data, SOURCE));
});

fn check(parsed: Result<Vec<FxRate>, FeedError>) {
    match parsed {
        Ok(rates) => {
            for rate in &rates {
                assert_eq!(rate.source, SOURCE);
                assert_ne!(rate.currency, Currency::INR, "INR, the base, is returned: {rate:?}");
                assert!(rate.inr_per_unit.is_sign_positive() && !rate.inr_per_unit.is_zero(), "{rate:?}");
                assert!(FX_RATE.check(rate.inr_per_unit).is_ok(), "beyond FX_RATE: {rate:?}");
            }
            for pair in rates.windows(2) {
                let key = |r: &FxRate| (r.rate_date, r.currency.code());
                assert!(key(&pair[0]) < key(&pair[1]), "out of order or listed twice: {pair:?}");
            }
        }
        Err(error) => {
            let mut source: Option<&dyn std::error::Error> = Some(&error);
            while let Some(e) = source {
                let _ = e.to_string();
                source = e.source();
            }
        }
    }
}
