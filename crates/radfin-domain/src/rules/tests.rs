use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal_macros::dec;
use serde_json::json;

use super::*;
use crate::ids::{ClientId, ProviderId};
use crate::money::Currency;
use crate::party::Grade;
use crate::report::{Modality, Priority};
use crate::tax::TaxTreatment;

pub(crate) const SPEC_PROVIDER_RULES: &str = r#"{
  "currency": "INR",
  "base_fee": {"XRAY": "120.00", "CT": "600.00", "MRI": "900.00", "USG": "250.00",
               "MAMMO": "300.00", "PET_CT": "1500.00", "NM": "800.00"},
  "additional_region_pct": "50",
  "grade_multiplier": {"JUNIOR": "0.85", "SENIOR": "1.00", "CONSULTANT": "1.20"},
  "seniority_multiplier": [{"min_years": 0, "multiplier": "1.00"},
                           {"min_years": 5, "multiplier": "1.05"},
                           {"min_years": 10, "multiplier": "1.10"}],
  "uplift_pct": {"URGENT": "10", "STAT": "25", "NIGHT": "20"},
  "night_window": {"start": "22:00", "end": "06:00"},
  "provider_overrides": {"RAD-007": {"base_fee": {"MRI": "1100.00"}}}
}"#;

pub(crate) const SPEC_CLIENT_RULES: &str = r#"{
  "client_id": "HOSP-001",
  "currency": "USD",
  "contract": {"type": "PER_STUDY"},
  "tier_mode": "GRADUATED",
  "tier_scope": "ALL_MODALITIES",
  "tiers": [{"up_to": 100}, {"up_to": 500}, {"up_to": null}],
  "unit_prices": {"XRAY": ["9.00", "8.00", "7.00"], "CT": ["40.00", "35.00", "30.00"],
                  "MRI": ["55.00", "50.00", "45.00"]},
  "additional_region_pct": "0",
  "uplift_pct": {"STAT": "20"},
  "tax": {"treatment": "EXPORT_LUT"}
}"#;

fn paths(err: &RuleErrors) -> Vec<&str> {
    let mut p: Vec<&str> = err.paths().collect();
    p.sort();
    p
}

#[test]
fn the_specs_provider_document_parses() {
    let r = ProviderRules::parse(SPEC_PROVIDER_RULES).unwrap();
    assert_eq!(r.currency, Currency::INR);
    assert_eq!(r.base_fee[Modality::PetCt.index()], dec!(1500.00));
    assert_eq!(r.base_fee(&ProviderId::parse("RAD-007").unwrap(), Modality::Mri), dec!(1100.00));
    assert_eq!(r.base_fee(&ProviderId::parse("RAD-007").unwrap(), Modality::Ct), dec!(600.00));
    assert_eq!(r.base_fee(&ProviderId::parse("RAD-001").unwrap(), Modality::Mri), dec!(900.00));
    assert_eq!(r.grade_multiplier[Grade::Consultant.index()], dec!(1.20));
    assert_eq!(r.seniority_multiplier(0), dec!(1.00));
    assert_eq!(r.seniority_multiplier(9), dec!(1.05));
    assert_eq!(r.seniority_multiplier(40), dec!(1.10));
    assert_eq!(r.region_factor(1), dec!(1));
    assert_eq!(r.region_factor(3), dec!(2));
    assert_eq!(r.uplift_factor(Priority::Stat, true), dec!(1.45));
    assert_eq!(r.uplift_factor(Priority::Routine, false), dec!(1));
}

#[test]
fn the_night_window_crosses_midnight() {
    let r = ProviderRules::parse(SPEC_PROVIDER_RULES).unwrap();
    let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
    assert!(r.is_night(t("23:30")));
    assert!(r.is_night(t("22:00")));
    assert!(r.is_night(t("00:00")));
    assert!(r.is_night(t("05:59")));
    assert!(!r.is_night(t("06:00")));
    assert!(!r.is_night(t("21:59")));
    assert!(!r.is_night(t("12:00")));
    let day = NightWindow { start: t("01:00"), end: t("05:00") };
    assert!(day.contains(t("01:00")) && !day.contains(t("05:00")) && !day.contains(t("23:00")));
}

#[test]
fn the_specs_client_document_parses() {
    let r = ClientRules::parse(SPEC_CLIENT_RULES).unwrap();
    assert_eq!(r.client_id, ClientId::parse("HOSP-001").unwrap());
    assert_eq!(r.currency, Currency::USD);
    assert_eq!(r.contract, Contract::PerStudy);
    assert_eq!((r.tier_mode, r.tier_scope), (TierMode::Graduated, TierScope::AllModalities));
    assert_eq!(r.tiers, vec![Some(100), Some(500), None]);
    assert_eq!(r.prices(Modality::Ct), Some(&[dec!(40.00), dec!(35.00), dec!(30.00)][..]));
    assert_eq!(r.prices(Modality::Nm), None);
    assert_eq!(r.tax, TaxTreatment::ExportLut);
    assert_eq!((r.tier_for(1), r.tier_for(100), r.tier_for(101), r.tier_for(500), r.tier_for(501)), (0, 0, 1, 1, 2));
    assert_eq!(r.study_amount(Modality::Mri, 0, 1, Priority::Stat), Some(dec!(66.0000)));
}

#[test]
fn contracts_parse_with_their_amounts() {
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_CLIENT_RULES).unwrap();
    doc["contract"] = json!({"type": "RETAINER", "monthly_fee": "5000.00", "included_studies": 200});
    let r = ClientRules::parse(&doc.to_string()).unwrap();
    assert_eq!(r.contract, Contract::Retainer { monthly_fee: dec!(5000.00), included_studies: 200 });
    doc["contract"] = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "2500"});
    let r = ClientRules::parse(&doc.to_string()).unwrap();
    assert_eq!(r.contract, Contract::MinimumCommitment { monthly_minimum: dec!(2500) });
}

#[test]
fn an_invalid_provider_document_lists_every_problem() {
    let doc = json!({
        "currency": "USD",
        "base_fee": {"XRAY": 120, "CT": "-1", "MRI": "abc", "USG": "250", "MAMMO": "300", "PET_CT": "1500", "BONE": "1"},
        "additional_region_pct": "5000",
        "grade_multiplier": {"JUNIOR": "0", "SENIOR": "1.00"},
        "seniority_multiplier": [{"min_years": 2, "multiplier": "1.00"}, {"min_years": 1, "multiplier": "1.1"}],
        "uplift_pct": {"STAT": "25", "NIGHT": "20", "LATE": "5"},
        "night_window": {"start": "22:00", "end": "6am"},
        "provider_overrides": {"RAD 7": {"base_fee": {"MRI": "1100.00"}}},
        "colour": "blue"
    });
    let err = ProviderRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        paths(&err),
        [
            "$.additional_region_pct",
            "$.base_fee.BONE",
            "$.base_fee.CT",
            "$.base_fee.MRI",
            "$.base_fee.XRAY",
            "$.colour",
            "$.currency",
            "$.grade_multiplier.CONSULTANT",
            "$.grade_multiplier.JUNIOR",
            "$.night_window.end",
            "$.provider_overrides.RAD 7",
            "$.seniority_multiplier[0].min_years",
            "$.seniority_multiplier[1].min_years",
            "$.uplift_pct.LATE",
        ]
    );
    let text = err.to_string();
    assert!(text.contains("$.base_fee.XRAY: must be a decimal string such as \"120\", not a JSON number"), "{text}");
    assert!(text.contains("$.currency: provider payouts are made in INR"), "{text}");
}

#[test]
fn missing_fields_are_named() {
    let err = ProviderRules::parse("{}").unwrap_err();
    assert_eq!(paths(&err), ["$.base_fee", "$.currency", "$.grade_multiplier", "$.seniority_multiplier"]);
    let err = ClientRules::parse("{}").unwrap_err();
    assert_eq!(
        paths(&err),
        ["$.client_id", "$.contract", "$.currency", "$.tax", "$.tier_mode", "$.tier_scope", "$.tiers", "$.unit_prices"]
    );
    let err = ClientRules::parse("[1,").unwrap_err();
    assert_eq!(paths(&err), ["$"]);
    assert!(err.to_string().contains("not valid JSON"));
    let err = ProviderRules::parse("[]").unwrap_err();
    assert_eq!(err.to_string(), "invalid rule document: $: must be an object, got an array");
}

#[test]
fn an_invalid_client_document_lists_every_problem() {
    let doc = json!({
        "client_id": "HOSP 1",
        "currency": "XXX",
        "contract": {"type": "RETAINER", "monthly_fee": "100.005"},
        "tier_mode": "TIERED",
        "tier_scope": "ALL_MODALITIES",
        "tiers": [{"up_to": 100}, {"up_to": null}, {"up_to": 50}],
        "unit_prices": {"XRAY": ["9.00", "8.00"], "CT": ["40.00", "35.00", "-30.00"]},
        "uplift_pct": {"NIGHT": "20"},
        "tax": {"treatment": "GST"}
    });
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        paths(&err),
        [
            "$.client_id",
            "$.contract.included_studies",
            "$.currency",
            "$.tax.treatment",
            "$.tier_mode",
            "$.tiers[1].up_to",
            "$.tiers[2].up_to",
            "$.unit_prices.CT[2]",
            "$.unit_prices.XRAY",
            "$.uplift_pct.NIGHT",
        ]
    );
}

#[test]
fn amounts_billed_as_lines_must_fit_the_currency() {
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_CLIENT_RULES).unwrap();
    doc["currency"] = json!("JPY");
    doc["contract"] = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "1000.50"});
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(err.0[0].path, "$.contract.monthly_minimum");
    assert!(err.0[0].message.contains("JPY minor units"));
    doc["contract"] = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "1000.00"});
    assert!(ClientRules::parse(&doc.to_string()).is_ok());
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn version(v: u32, from: &str, recorded: &str) -> RuleVersion<u32> {
    RuleVersion { version: v, effective_from: d(from), recorded_at: at(recorded), rules: Arc::new(v) }
}

#[test]
fn rule_selection_is_bitemporal() {
    let h: RuleHistory<u32> = [
        version(1, "2025-04-01", "2025-03-20T00:00:00Z"),
        // Negotiated in February, effective for January.
        version(2, "2026-01-01", "2026-02-10T09:00:00Z"),
        // A correction of version 2, recorded later with the same effective date.
        version(3, "2026-01-01", "2026-02-12T09:00:00Z"),
        version(4, "2026-03-01", "2026-02-20T00:00:00Z"),
    ]
    .into_iter()
    .collect();
    let pick = |date: &str, as_of: &str| h.select(d(date), at(as_of)).map(|v| v.version);
    // January as the live run saw it at the end of January.
    assert_eq!(pick("2026-01-15", "2026-01-31T23:00:00Z"), Some(1));
    // A rerun in February sees the new January rate, and the correction once recorded.
    assert_eq!(pick("2026-01-15", "2026-02-11T00:00:00Z"), Some(2));
    assert_eq!(pick("2026-01-15", "2026-02-13T00:00:00Z"), Some(3));
    assert_eq!(pick("2026-03-01", "2026-02-13T00:00:00Z"), Some(3));
    assert_eq!(pick("2026-03-01", "2026-02-21T00:00:00Z"), Some(4));
    assert_eq!(pick("2025-03-31", "2030-01-01T00:00:00Z"), None);
    assert_eq!(pick("2025-06-01", "2025-03-01T00:00:00Z"), None);
}

/// The problem at `path`, as `path: message`.
fn problem_at(err: &RuleErrors, path: &str) -> String {
    err.0
        .iter()
        .find(|p| p.path == path)
        .map(ToString::to_string)
        .unwrap_or_else(|| panic!("no problem at {path}: {err}"))
}

const TOO_MANY_DIGITS: &str = "79228162514264337593543950335";
const TOO_MANY_DECIMALS: &str = "1234567890.1234567890123456789";
const BEYOND_A_DECIMAL: &str = "0.00000000000000000000000000001";

#[test]
fn unit_prices_are_bounded() {
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_CLIENT_RULES).unwrap();
    doc["unit_prices"]["XRAY"] = json!([TOO_MANY_DIGITS, TOO_MANY_DECIMALS, BEYOND_A_DECIMAL]);
    doc["unit_prices"]["CT"] = json!(["1000000000000", "40.12345", "999999999999.9999"]);
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        problem_at(&err, "$.unit_prices.XRAY[0]"),
        r#"$.unit_prices.XRAY[0]: "79228162514264337593543950335" has 29 integer digits; at most 12 are allowed"#
    );
    assert_eq!(
        problem_at(&err, "$.unit_prices.XRAY[1]"),
        r#"$.unit_prices.XRAY[1]: "1234567890.1234567890123456789" has 19 decimal places; at most 4 are allowed"#
    );
    assert_eq!(
        problem_at(&err, "$.unit_prices.XRAY[2]"),
        r#"$.unit_prices.XRAY[2]: "0.00000000000000000000000000001" has 29 decimal places; at most 4 are allowed"#
    );
    assert!(problem_at(&err, "$.unit_prices.CT[0]").ends_with("has 13 integer digits; at most 12 are allowed"));
    assert!(problem_at(&err, "$.unit_prices.CT[1]").ends_with("has 5 decimal places; at most 4 are allowed"));
    assert_eq!(
        paths(&err),
        [
            "$.unit_prices.CT[0]",
            "$.unit_prices.CT[1]",
            "$.unit_prices.XRAY[0]",
            "$.unit_prices.XRAY[1]",
            "$.unit_prices.XRAY[2]"
        ]
    );
    // Text that is no number at all is still called that.
    doc["unit_prices"]["XRAY"] = json!(["abc", "8.00", "7.00"]);
    doc["unit_prices"]["CT"] = json!(["40.00", "35.00", "30.00"]);
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(err.to_string(), r#"invalid rule document: $.unit_prices.XRAY[0]: "abc" is not a decimal number"#);
}

#[test]
fn fees_and_line_amounts_are_bounded() {
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_CLIENT_RULES).unwrap();
    doc["contract"] = json!({"type": "RETAINER", "monthly_fee": TOO_MANY_DIGITS, "included_studies": 10});
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid rule document: $.contract.monthly_fee: "79228162514264337593543950335" has 29 integer digits; at most 12 are allowed"#
    );
    doc["contract"] = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": TOO_MANY_DECIMALS});
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        problem_at(&err, "$.contract.monthly_minimum"),
        r#"$.contract.monthly_minimum: "1234567890.1234567890123456789" has 19 decimal places; at most 4 are allowed"#
    );
    // Within the digits, the currency's minor unit still applies to a line of its own.
    doc["contract"] = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "100.005"});
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert!(problem_at(&err, "$.contract.monthly_minimum").contains("USD minor units"), "{err}");

    let mut doc: serde_json::Value = serde_json::from_str(SPEC_PROVIDER_RULES).unwrap();
    doc["base_fee"]["MRI"] = json!(TOO_MANY_DIGITS);
    doc["base_fee"]["CT"] = json!(TOO_MANY_DECIMALS);
    doc["provider_overrides"]["RAD-007"]["base_fee"]["MRI"] = json!(BEYOND_A_DECIMAL);
    let err = ProviderRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(paths(&err), ["$.base_fee.CT", "$.base_fee.MRI", "$.provider_overrides.RAD-007.base_fee.MRI"]);
    assert_eq!(
        problem_at(&err, "$.base_fee.MRI"),
        r#"$.base_fee.MRI: "79228162514264337593543950335" has 29 integer digits; at most 12 are allowed"#
    );
    assert!(problem_at(&err, "$.base_fee.CT").ends_with("has 19 decimal places; at most 4 are allowed"));
    assert!(
        problem_at(&err, "$.provider_overrides.RAD-007.base_fee.MRI")
            .ends_with("has 29 decimal places; at most 4 are allowed")
    );
}

#[test]
fn percentages_and_multipliers_are_bounded() {
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_PROVIDER_RULES).unwrap();
    doc["additional_region_pct"] = json!(TOO_MANY_DIGITS);
    doc["uplift_pct"]["STAT"] = json!(TOO_MANY_DECIMALS);
    doc["uplift_pct"]["NIGHT"] = json!("20.00001");
    doc["grade_multiplier"]["JUNIOR"] = json!(TOO_MANY_DIGITS);
    doc["seniority_multiplier"][1]["multiplier"] = json!("1.0500001");
    let err = ProviderRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        paths(&err),
        [
            "$.additional_region_pct",
            "$.grade_multiplier.JUNIOR",
            "$.seniority_multiplier[1].multiplier",
            "$.uplift_pct.NIGHT",
            "$.uplift_pct.STAT",
        ]
    );
    assert_eq!(
        problem_at(&err, "$.additional_region_pct"),
        r#"$.additional_region_pct: "79228162514264337593543950335" has 29 integer digits; at most 4 are allowed"#
    );
    assert_eq!(
        problem_at(&err, "$.uplift_pct.STAT"),
        r#"$.uplift_pct.STAT: "1234567890.1234567890123456789" has 10 integer digits; at most 4 are allowed"#
    );
    assert!(problem_at(&err, "$.uplift_pct.NIGHT").ends_with("has 5 decimal places; at most 4 are allowed"));
    assert!(problem_at(&err, "$.grade_multiplier.JUNIOR").ends_with("has 29 integer digits; at most 2 are allowed"));
    assert!(
        problem_at(&err, "$.seniority_multiplier[1].multiplier")
            .ends_with("has 7 decimal places; at most 6 are allowed")
    );

    // Within the digits, the ranges still apply.
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_CLIENT_RULES).unwrap();
    doc["uplift_pct"] = json!({"STAT": "1000.0001", "URGENT": BEYOND_A_DECIMAL});
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        problem_at(&err, "$.uplift_pct.STAT"),
        "$.uplift_pct.STAT: must be at least 0 and at most 1000, got 1000.0001"
    );
    assert_eq!(
        problem_at(&err, "$.uplift_pct.URGENT"),
        r#"$.uplift_pct.URGENT: "0.00000000000000000000000000001" has 29 decimal places; at most 4 are allowed"#
    );
}

#[test]
fn no_report_can_be_priced_beyond_the_bound() {
    // 999 999 999 999 × (1 + 1000 % × 9 regions) × (1 + 20 % STAT) = 109 199 999 999 890.8: far too much for one report.
    let mut doc: serde_json::Value = serde_json::from_str(SPEC_CLIENT_RULES).unwrap();
    doc["unit_prices"]["MRI"] = json!(["55.00", "999999999999", "45.00"]);
    doc["additional_region_pct"] = json!("1000");
    let err = ClientRules::parse(&doc.to_string()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid rule document: $.unit_prices.MRI[1]: \"999999999999\" can charge one report up to \
         109199999999890.80 USD (with 10 body regions and the largest uplift); at most 999999999999.9999 is allowed"
    );
    // At the bound it is accepted; a monthly fee one report may carry counts too.
    doc["unit_prices"]["MRI"] = json!(["55.00", "1000000000", "45.00"]);
    doc["additional_region_pct"] = json!("0");
    doc["uplift_pct"] = json!({"STAT": "0"});
    let max_price = |fee: &str| {
        let mut doc = doc.clone();
        doc["unit_prices"]["MRI"][1] = json!("999999999999.9999");
        doc["contract"] = json!({"type": "RETAINER", "monthly_fee": fee, "included_studies": 0});
        ClientRules::parse(&doc.to_string())
    };
    assert!(max_price("0").is_ok());
    let err = max_price("0.01").unwrap_err();
    assert!(err.to_string().contains("plus the monthly fee 0.01); at most 999999999999.9999 is allowed"), "{err}");

    let mut doc: serde_json::Value = serde_json::from_str(SPEC_PROVIDER_RULES).unwrap();
    doc["provider_overrides"]["RAD-007"]["base_fee"]["MRI"] = json!("100000000000");
    let err = ProviderRules::parse(&doc.to_string()).unwrap_err();
    // 100 000 000 000 × (1 + 50 % × 9) × 1.20 × 1.10 × (1 + (25 + 20) / 100)
    assert_eq!(
        err.to_string(),
        "invalid rule document: $.provider_overrides.RAD-007.base_fee.MRI: \"100000000000\" can cost one report up \
         to 1052700000000.0000 INR (with 10 body regions, the largest grade and seniority multipliers and the \
         largest uplift); at most 999999999999.9999 is allowed"
    );
    doc["provider_overrides"]["RAD-007"]["base_fee"]["MRI"] = json!("1100.00");
    doc["base_fee"]["NM"] = json!("999999999999");
    doc["additional_region_pct"] = json!("0");
    doc["uplift_pct"] = json!({});
    doc["grade_multiplier"]["CONSULTANT"] = json!("1");
    doc["seniority_multiplier"] = json!([{"min_years": 0, "multiplier": "1"}]);
    doc.as_object_mut().unwrap().remove("night_window");
    assert!(ProviderRules::parse(&doc.to_string()).is_ok());
}
