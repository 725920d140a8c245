//! Realistic synthetic data for radfin's tests, benchmarks and demo: hospitals on every kind of
//! contract and currency, radiologists of every grade and seniority, daily FX rates, and a month
//! of report events shaped like a teleradiology marketplace's (mostly daytime X-rays and CTs,
//! a tail of urgent night reads, a few cancellations and corrected revisions).
//!
//! Everything is deterministic for a given seed.

mod reports;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use radfin_domain::fx::{FxRate, FxTable};
use radfin_domain::party::{ClientProfile, Grade, ProviderProfile};
use radfin_domain::rules::{ClientRules, ProviderRules, RuleVersion};
use radfin_domain::{BusinessCalendar, Catalog, ClientId, Currency, Period, ProviderId, ReportEvent};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::json;

pub use reports::{ReportMix, generate_reports};

/// The provider rule document of the product specification (§4.1).
pub const SPEC_PROVIDER_RULES: &str = include_str!("../../../samples/rules/provider.json");

/// What to generate.
#[derive(Clone, Debug)]
pub struct MonthSpec {
    pub period: Period,
    pub clients: usize,
    pub providers: usize,
    pub reports: usize,
    pub seed: u64,
}

/// A generated month: parties and rules, FX rates around the month, and its report events.
pub struct GeneratedMonth {
    pub period: Period,
    pub calendar: BusinessCalendar,
    pub catalog: Catalog,
    pub fx: FxTable,
    pub clients: Vec<ClientProfile>,
    pub providers: Vec<ProviderProfile>,
    pub reports: Vec<ReportEvent>,
}

/// When the generated rules were recorded: long before any generated month.
pub fn rules_recorded_at() -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default().into(), Utc)
}

pub fn generate_month(spec: &MonthSpec) -> GeneratedMonth {
    let mut rng = SmallRng::seed_from_u64(spec.seed);
    let calendar = BusinessCalendar::default();
    let providers: Vec<ProviderProfile> = (0..spec.providers).map(|i| provider(&mut rng, i)).collect();
    let clients: Vec<ClientProfile> = (0..spec.clients).map(client).collect();

    let mut catalog = Catalog::default();
    let since = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    let provider_rules = ProviderRules::parse(SPEC_PROVIDER_RULES).expect("the sample provider rules are valid");
    catalog.add_provider_rules(RuleVersion {
        version: 1,
        effective_from: since,
        recorded_at: rules_recorded_at(),
        rules: Arc::new(provider_rules),
    });
    for p in &providers {
        catalog.add_provider(p.clone());
    }
    for (i, c) in clients.iter().enumerate() {
        catalog.add_client(c.clone());
        let rules = ClientRules::parse(&client_rules_document(i, &c.client_id, c.currency).to_string())
            .expect("generated client rules are valid");
        catalog.add_client_rules(RuleVersion {
            version: 1,
            effective_from: since,
            recorded_at: rules_recorded_at(),
            rules: Arc::new(rules),
        });
    }

    let weights: Vec<(ClientId, u32)> =
        clients.iter().enumerate().map(|(i, c)| (c.client_id.clone(), 2000 / (i as u32 + 1) + 25)).collect();
    let provider_ids: Vec<ProviderId> = providers.iter().map(|p| p.provider_id.clone()).collect();
    let reports =
        generate_reports(&mut rng, calendar, spec.period, &weights, &provider_ids, spec.reports, &ReportMix::default());
    GeneratedMonth {
        period: spec.period,
        calendar,
        catalog,
        fx: fx_rates(spec.period, &mut rng),
        clients,
        providers,
        reports,
    }
}

const CURRENCIES: [Currency; 5] = [Currency::INR, Currency::USD, Currency::EUR, Currency::GBP, Currency::AED];

fn provider(rng: &mut SmallRng, i: usize) -> ProviderProfile {
    let grade = Grade::ALL[[0, 1, 1, 2][i % 4]];
    let practicing_since =
        NaiveDate::from_ymd_opt(2026 - rng.random_range(1..25), rng.random_range(1..=12), rng.random_range(1..=28))
            .unwrap_or_default();
    ProviderProfile {
        provider_id: ProviderId::parse(&format!("RAD-{:04}", i + 1)).expect("generated ids are valid"),
        name: format!(
            "Dr. {} {}",
            FIRST_NAMES[i % FIRST_NAMES.len()],
            LAST_NAMES[(i / FIRST_NAMES.len()) % LAST_NAMES.len()]
        ),
        grade,
        practicing_since,
        pan: (!i.is_multiple_of(9)).then(|| format!("ABCPR{:04}K", i % 10_000)),
        effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
    }
}

fn client(i: usize) -> ClientProfile {
    let currency = CURRENCIES[i % CURRENCIES.len()];
    let domestic = currency == Currency::INR;
    ClientProfile {
        client_id: ClientId::parse(&format!("HOSP-{:03}", i + 1)).expect("generated ids are valid"),
        name: format!("{} {}", CITIES[i % CITIES.len()], HOSPITAL_KINDS[(i / CITIES.len()) % HOSPITAL_KINDS.len()]),
        country: if domestic { "IN" } else { COUNTRIES[i % COUNTRIES.len()] }.to_owned(),
        state_code: domestic.then(|| ["29", "27", "33", "07"][i % 4].to_owned()),
        gstin: None,
        currency,
        effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
    }
}

/// A client rule document. Clients cycle through every contract type, tier mode, tier scope
/// and currency, so any few dozen consecutive clients cover all combinations.
pub fn client_rules_document(i: usize, client_id: &ClientId, currency: Currency) -> serde_json::Value {
    // INR prices; other currencies are scaled to roughly the same value.
    let per_unit: Decimal = match currency.code() {
        "USD" => Decimal::new(84, 0),
        "EUR" => Decimal::new(91, 0),
        "GBP" => Decimal::new(107, 0),
        "AED" => Decimal::new(23, 0),
        _ => Decimal::ONE,
    };
    let price = |inr: i64| currency.round(Decimal::from(inr) / per_unit).to_string();
    let prices = |a: i64, b: i64, c: i64| json!([price(a), price(b), price(c)]);
    let contract = match i % 3 {
        0 => json!({"type": "PER_STUDY"}),
        1 => json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": price(150_000 + 25_000 * (i as i64 % 5))}),
        _ => {
            json!({"type": "RETAINER", "monthly_fee": price(100_000 + 20_000 * (i as i64 % 4)), "included_studies": 150 + 25 * (i % 6)})
        }
    };
    json!({
        "client_id": client_id.as_str(),
        "currency": currency.code(),
        "contract": contract,
        "tier_mode": if i.is_multiple_of(2) { "GRADUATED" } else { "VOLUME" },
        "tier_scope": if (i / 2).is_multiple_of(2) { "ALL_MODALITIES" } else { "PER_MODALITY" },
        "tiers": [{"up_to": 500}, {"up_to": 2000}, {"up_to": null}],
        "unit_prices": {
            "XRAY": prices(450, 400, 350), "CT": prices(2200, 2000, 1800), "MRI": prices(3500, 3200, 2900),
            "USG": prices(900, 800, 700), "MAMMO": prices(1200, 1100, 1000), "PET_CT": prices(6000, 5500, 5000),
            "NM": prices(3000, 2800, 2600)
        },
        "additional_region_pct": (["0", "25", "40"][i % 3]),
        "uplift_pct": {"URGENT": "15", "STAT": "30"},
        "tax": {"treatment": if currency == Currency::INR { "TAXABLE" } else { "EXPORT_LUT" }}
    })
}

/// Daily reference rates from 10 days before the period to its end, drifting a little each day.
pub fn fx_rates(period: Period, rng: &mut SmallRng) -> FxTable {
    let mut table = FxTable::default();
    let start = period.first_day() - Duration::days(10);
    let days = (period.last_day() - start).num_days() + 1;
    for (currency, base) in [
        (Currency::USD, 83_200_000i64),
        (Currency::EUR, 90_100_000),
        (Currency::GBP, 105_300_000),
        (Currency::AED, 22_650_000),
    ] {
        let mut micros = base;
        for d in 0..days {
            micros += rng.random_range(-(base / 400)..=(base / 400));
            let rate = FxRate {
                rate_date: start + Duration::days(d),
                currency,
                inr_per_unit: Decimal::new(micros, 6),
                source: "SYNTHETIC".to_owned(),
            };
            table.add(rate).expect("generated rates are positive and not INR");
        }
    }
    table
}

const FIRST_NAMES: [&str; 20] = [
    "Aarav",
    "Diya",
    "Vihaan",
    "Ananya",
    "Arjun",
    "Ishita",
    "Kabir",
    "Meera",
    "Rohan",
    "Saanvi",
    "Vikram",
    "Priya",
    "Aditya",
    "Kavya",
    "Nikhil",
    "Riya",
    "Siddharth",
    "Tara",
    "Yash",
    "Zoya",
];
const LAST_NAMES: [&str; 25] = [
    "Sharma",
    "Iyer",
    "Reddy",
    "Nair",
    "Menon",
    "Patel",
    "Gupta",
    "Rao",
    "Das",
    "Kulkarni",
    "Bose",
    "Chatterjee",
    "Joshi",
    "Khan",
    "Mehta",
    "Pillai",
    "Singh",
    "Verma",
    "Banerjee",
    "Desai",
    "Hegde",
    "Kapoor",
    "Malhotra",
    "Shetty",
    "Sinha",
];
const CITIES: [&str; 16] = [
    "Bengaluru",
    "Mumbai",
    "Chennai",
    "Delhi",
    "Dubai",
    "London",
    "Nairobi",
    "Singapore",
    "Pune",
    "Kochi",
    "Hyderabad",
    "Lagos",
    "Dhaka",
    "Colombo",
    "Muscat",
    "Kathmandu",
];
const HOSPITAL_KINDS: [&str; 5] =
    ["General Hospital", "Diagnostics", "Medical Centre", "Imaging Clinic", "Care Institute"];
const COUNTRIES: [&str; 5] = ["IN", "US", "DE", "GB", "AE"];
