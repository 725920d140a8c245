//! Rule documents (spec §4.1, §4.2): arbitrary text through `ProviderRules::parse` and
//! `ClientRules::parse`. Neither may panic; a refusal names at least one problem; a document
//! that validates prices every modality, tier, region count and priority without overflowing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radfin_domain::report::MAX_BODY_REGIONS;
use radfin_domain::rules::{ClientRules, ProviderRules, RuleErrors};
use radfin_domain::{Modality, Priority};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ProviderRules::parse(text) {
        Ok(rules) => exercise_provider(&rules),
        Err(errors) => refused(&errors),
    }
    match ClientRules::parse(text) {
        Ok(rules) => exercise_client(&rules),
        Err(errors) => refused(&errors),
    }
});

fn refused(errors: &RuleErrors) {
    assert!(!errors.0.is_empty(), "a refused rule document names no problem");
    let _ = errors.to_string();
}

fn exercise_provider(rules: &ProviderRules) {
    for years in [0, 1, 5, 40, u32::MAX] {
        let _ = rules.seniority_multiplier(years);
    }
    for &modality in Modality::ALL {
        let mut fees = vec![rules.base_fee[modality.index()]];
        fees.extend(rules.overrides.keys().map(|provider| rules.base_fee(provider, modality)));
        for fee in fees {
            for regions in 0..=MAX_BODY_REGIONS.saturating_add(1) {
                for &priority in Priority::ALL {
                    for night in [false, true] {
                        // What the engine computes before grade and seniority (spec §4.1).
                        let _ = fee * rules.region_factor(regions) * rules.uplift_factor(priority, night);
                    }
                }
            }
        }
    }
}

fn exercise_client(rules: &ClientRules) {
    for count in [1, 2, 100, 10_000, u32::MAX] {
        let tier = rules.tier_for(count);
        for &modality in Modality::ALL {
            if let Some(prices) = rules.prices(modality) {
                assert!(tier < prices.len(), "tier {tier} of {count} studies has no {modality:?} price");
            }
            for regions in 0..=MAX_BODY_REGIONS.saturating_add(1) {
                for &priority in Priority::ALL {
                    let _ = rules.study_amount(modality, tier, regions, priority);
                }
            }
        }
    }
}
