//! TEMPORARY scaffolding: records / compares the engine's full output on varied inputs.
#![allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::restriction)]

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use radfin_domain::catalog::Catalog;
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_domain::rules::{Contract, RuleVersion};
use radfin_domain::{BusinessCalendar, ClientId, Modality, Period, PricingRun, ProviderId, ReportEvent};
use radfin_testkit::{MonthSpec, generate_month};

fn fixed_now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn check(name: &str, run: &PricingRun, catalog: &Catalog, reports: &[ReportEvent]) {
    let out = format!("{:#?}", run.price(catalog, reports));
    // The order of input must not matter either.
    let mut rev: Vec<ReportEvent> = reports.to_vec();
    rev.reverse();
    let out_rev = format!("{:#?}", run.price(catalog, &rev));
    assert_eq!(out, out_rev, "{name}: order matters");
    // The live quote path too.
    let mut quotes = String::new();
    for r in reports.iter().step_by(97) {
        let terms = run.terms(catalog, &r.client_id);
        quotes.push_str(&format!("{:?}\n", run.quote(catalog, terms.as_ref(), r)));
    }
    let out = format!("{out}\n{quotes}");
    let path = format!("/tmp/radfin_equiv/{name}.txt");
    if std::env::var_os("RECORD").is_some() {
        std::fs::create_dir_all("/tmp/radfin_equiv").unwrap();
        std::fs::write(&path, &out).unwrap();
    } else {
        let want = std::fs::read_to_string(&path).unwrap();
        assert!(want == out, "{name} differs from the recorded output");
    }
}

fn spec(seed: u64, reports: usize) -> MonthSpec {
    MonthSpec { period: "2026-10".parse().unwrap(), clients: 40, providers: 60, reports, seed }
}

#[test]
fn plain_months() {
    for seed in 1..=4 {
        let m = generate_month(&spec(seed, 50_000));
        let run = PricingRun { calendar: m.calendar, period: m.period, rules_as_of: fixed_now() };
        check(&format!("plain_{seed}"), &run, &m.catalog, &m.reports);
    }
}

#[test]
fn varied_catalog() {
    let m = generate_month(&spec(7, 30_000));
    let mid = NaiveDate::from_ymd_opt(2026, 10, 15).unwrap();
    let recorded = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap();
    let late = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let mut catalog = Catalog::default();
    // Providers: drop a few, change the grade of some mid-month.
    for (i, p) in m.providers.iter().enumerate() {
        if i % 17 == 3 {
            continue;
        }
        catalog.add_provider(p.clone());
        if i % 5 == 1 {
            let mut q: ProviderProfile = p.clone();
            q.grade = radfin_domain::Grade::ALL[(q.grade.index() + 1) % 3];
            q.effective_from = mid;
            catalog.add_provider(q);
        }
    }
    let base = m.catalog.provider_rules().iter().next().unwrap().clone();
    catalog.add_provider_rules(base.clone());
    let mut p2 = (*base.rules).clone();
    p2.base_fee[Modality::Ct.index()] += rust_decimal::Decimal::new(3333, 2);
    p2.grade_multiplier[0] = rust_decimal::Decimal::new(877, 3);
    let pid = ProviderId::parse("RAD-0002").unwrap();
    p2.overrides.insert(pid, [Some(rust_decimal::Decimal::new(12345, 2)); 7]);
    catalog.add_provider_rules(RuleVersion {
        version: 2,
        effective_from: mid,
        recorded_at: recorded,
        rules: Arc::new(p2),
    });
    let mut p3 = (*base.rules).clone();
    p3.base_fee[Modality::Mri.index()] = rust_decimal::Decimal::new(1, 0);
    catalog.add_provider_rules(RuleVersion { version: 3, effective_from: mid, recorded_at: late, rules: Arc::new(p3) });

    for (i, c) in m.clients.iter().enumerate() {
        if i % 13 != 5 {
            catalog.add_client(c.clone());
        }
        let hist = m.catalog.client_rules(&c.client_id).unwrap();
        let v1 = hist.iter().next().unwrap().clone();
        if i % 11 == 4 {
            continue; // profile but no rules
        }
        catalog.add_client_rules(v1.clone());
        let mut r2 = (*v1.rules).clone();
        match i % 4 {
            0 => {
                if let Some(p) = r2.unit_prices[Modality::Xray.index()].as_mut() {
                    p[0] += rust_decimal::Decimal::new(1, 2);
                }
                r2.unit_prices[Modality::Nm.index()] = None;
            }
            1 => {
                r2.currency = if r2.currency == radfin_domain::Currency::INR {
                    radfin_domain::Currency::USD
                } else {
                    radfin_domain::Currency::INR
                }
            }
            2 => {
                r2.contract =
                    Contract::MinimumCommitment { monthly_minimum: rust_decimal::Decimal::new(99_999_999, 2) };
            }
            _ => {
                r2.contract =
                    Contract::Retainer { monthly_fee: rust_decimal::Decimal::new(7_777_777, 2), included_studies: 3 };
            }
        }
        let eff = if i % 3 == 0 { mid } else { NaiveDate::from_ymd_opt(2026, 10, 31).unwrap() };
        catalog.add_client_rules(RuleVersion {
            version: 2,
            effective_from: eff,
            recorded_at: if i % 7 == 0 { late } else { recorded },
            rules: Arc::new(r2),
        });
    }
    // A client with rules and no reports, one with a profile only.
    for (k, extra) in ["HOSP-900", "HOSP-901", "HOSP-902"].iter().enumerate() {
        let mut prof: ClientProfile = m.clients[k + 1].clone();
        prof.client_id = ClientId::parse(extra).unwrap();
        catalog.add_client(prof);
        if k < 2 {
            let mut r =
                (*m.catalog.client_rules(&m.clients[k + 1].client_id).unwrap().iter().next().unwrap().rules).clone();
            r.client_id = ClientId::parse(extra).unwrap();
            catalog.add_client_rules(RuleVersion {
                version: 1,
                effective_from: mid,
                recorded_at: recorded,
                rules: Arc::new(r),
            });
        }
    }
    let mut reports = m.reports.clone();
    let weird: Vec<ClientId> =
        ["HOSP-777", "HOSP-902", "HOSP-003"].iter().map(|c| ClientId::parse(c).unwrap()).collect();
    let provs: Vec<ProviderId> =
        ["RAD-0001", "RAD-9999", "RAD-0004"].iter().map(|p| ProviderId::parse(p).unwrap()).collect();
    for (i, r) in m.reports.iter().step_by(53).enumerate() {
        let mut x = r.clone();
        x.report_id = radfin_domain::ReportId::parse(&format!("X-{i:06}")).unwrap();
        x.client_id = weird[i % 3].clone();
        x.provider_id = provs[(i / 3) % 3].clone();
        reports.push(x);
    }
    for (k, as_of) in [as_of, fixed_now(), recorded - Duration::days(1)].into_iter().enumerate() {
        let run = PricingRun { calendar: m.calendar, period: m.period, rules_as_of: as_of };
        check(&format!("varied_{k}"), &run, &catalog, &reports);
    }
}

#[test]
fn other_time_zones() {
    for (k, tz) in ["Europe/London", "America/New_York", "UTC", "Australia/Lord_Howe"].iter().enumerate() {
        let m = generate_month(&spec(11 + k as u64, 30_000));
        let calendar = BusinessCalendar::named(tz).unwrap();
        for (shift, period) in [(0i64, "2026-10"), (10, "2026-11"), (-200, "2026-03"), (-190, "2026-04")] {
            let period: Period = period.parse().unwrap();
            let (start, end) = calendar.period_bounds(period);
            let reports: Vec<ReportEvent> = m
                .reports
                .iter()
                .map(|r| {
                    let mut x = r.clone();
                    x.finalized_at += Duration::days(shift);
                    x
                })
                .filter(|r| (start..end).contains(&r.finalized_at))
                .collect();
            assert!(reports.len() > 1000);
            let run = PricingRun { calendar, period, rules_as_of: fixed_now() };
            check(&format!("tz_{k}_{period}"), &run, &m.catalog, &reports);
        }
    }
}
