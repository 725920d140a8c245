use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};

use super::*;
use crate::party::{ClientProfile, ProviderProfile};
use crate::report::Priority;
use crate::rules::tests::SPEC_PROVIDER_RULES;
use crate::rules::{ClientRules, ProviderRules, RuleVersion};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const RECORDED: &str = "2025-01-01T00:00:00Z";

fn tier_doc(client: &str, mode: &str, contract: Value) -> Value {
    json!({
        "client_id": client,
        "currency": "INR",
        "contract": contract,
        "tier_mode": mode,
        "tier_scope": "ALL_MODALITIES",
        "tiers": [{"up_to": 100}, {"up_to": 500}, {"up_to": null}],
        "unit_prices": {"XRAY": ["500", "400", "300"], "CT": ["1000", "900", "800"]},
        "tax": {"treatment": "TAXABLE"}
    })
}

fn client_rules(doc: &Value, version: u32, from: &str, recorded: &str) -> RuleVersion<ClientRules> {
    RuleVersion {
        version,
        effective_from: d(from),
        recorded_at: at(recorded),
        rules: Arc::new(ClientRules::parse(&doc.to_string()).unwrap()),
    }
}

fn provider_profile(id: &str, grade: Grade, since: &str) -> ProviderProfile {
    ProviderProfile {
        provider_id: ProviderId::parse(id).unwrap(),
        name: format!("Dr {id}"),
        grade,
        practicing_since: d(since),
        pan: Some("ABCDE1234F".into()),
        effective_from: d("2020-01-01"),
    }
}

fn client_profile(id: &str, currency: Currency) -> ClientProfile {
    ClientProfile {
        client_id: ClientId::parse(id).unwrap(),
        name: format!("{id} Hospital"),
        country: "IN".into(),
        state_code: Some("29".into()),
        gstin: None,
        currency,
        effective_from: d("2020-01-01"),
    }
}

/// Providers RAD-001 (SENIOR, 3 years), RAD-007 (CONSULTANT, 12 years); the spec's provider rules.
fn base_catalog() -> Catalog {
    let mut c = Catalog::default();
    c.add_provider(provider_profile("RAD-001", Grade::Senior, "2023-01-01"));
    c.add_provider(provider_profile("RAD-007", Grade::Consultant, "2014-01-01"));
    c.add_provider_rules(RuleVersion {
        version: 1,
        effective_from: d("2025-01-01"),
        recorded_at: at(RECORDED),
        rules: Arc::new(ProviderRules::parse(SPEC_PROVIDER_RULES).unwrap()),
    });
    c
}

fn catalog_with(docs: &[Value]) -> Catalog {
    let mut c = base_catalog();
    for doc in docs {
        let rules = client_rules(doc, 1, "2025-01-01", RECORDED);
        c.add_client(client_profile(rules.rules.client_id.as_str(), rules.rules.currency));
        c.add_client_rules(rules);
    }
    c
}

fn run(period: &str) -> PricingRun {
    PricingRun {
        calendar: BusinessCalendar::default(),
        period: period.parse().unwrap(),
        rules_as_of: at("2026-06-01T00:00:00Z"),
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    id: &str,
    client: &str,
    provider: &str,
    modality: Modality,
    regions: u8,
    priority: Priority,
    finalized_at: &str,
) -> ReportEvent {
    ReportEvent {
        report_id: ReportId::parse(id).unwrap(),
        revision: 1,
        client_id: ClientId::parse(client).unwrap(),
        provider_id: ProviderId::parse(provider).unwrap(),
        modality,
        body_regions: regions,
        priority,
        finalized_at: at(finalized_at),
        status: ReportStatus::Final,
    }
}

/// `n` routine single-region X-rays for `client`, one a minute from 1 Feb 2026 10:00 IST.
fn xrays(client: &str, n: usize) -> Vec<ReportEvent> {
    let start = at("2026-02-01T04:30:00Z");
    (0..n)
        .map(|i| {
            let mut r = report(
                &format!("{client}-{i:05}"),
                client,
                "RAD-001",
                Modality::Xray,
                1,
                Priority::Routine,
                "2026-02-01T04:30:00Z",
            );
            r.finalized_at = start + Duration::minutes(i as i64);
            r
        })
        .collect()
}

fn invoice<'a>(p: &'a PeriodPricing, client: &str) -> &'a ClientInvoiceDraft {
    p.invoices.iter().find(|i| i.client_id.as_str() == client).unwrap()
}

fn revenue_of(p: &PeriodPricing, client: &str) -> Decimal {
    p.reports.iter().filter(|r| r.client_id.as_str() == client).map(|r| r.revenue.amount).sum()
}

#[test]
fn the_specs_tier_checks() {
    let cat = catalog_with(&[
        tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"})),
        tier_doc("VOL", "VOLUME", json!({"type": "PER_STUDY"})),
    ]);
    for (n, graduated, volume) in [(600, dec!(240000), dec!(180000)), (101, dec!(50400), dec!(40400))] {
        let mut reports = xrays("GRAD", n);
        reports.extend(xrays("VOL", n));
        let p = run("2026-02").price(&cat, &reports).unwrap();
        assert_eq!(invoice(&p, "GRAD").taxable_value, graduated, "graduated, {n} studies");
        assert_eq!(invoice(&p, "VOL").taxable_value, volume, "volume, {n} studies");
        assert_eq!(revenue_of(&p, "GRAD"), graduated);
        assert_eq!(revenue_of(&p, "VOL"), volume);
    }
}

#[test]
fn graduated_invoice_lines_show_each_tier() {
    let cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let p = run("2026-02").price(&cat, &xrays("GRAD", 600)).unwrap();
    let lines: Vec<(u32, u32, Decimal)> = invoice(&p, "GRAD")
        .lines
        .iter()
        .map(|l| match l.kind {
            InvoiceLineKind::Studies { tier, .. } => (tier, l.quantity, l.amount),
            other => panic!("unexpected line {other:?}"),
        })
        .collect();
    assert_eq!(lines, [(1, 100, dec!(50000)), (2, 400, dec!(160000)), (3, 100, dec!(30000))]);
    // The 101st study in billing order is the first priced in tier 2.
    assert_eq!(p.reports[99].revenue.amount, dec!(500));
    assert_eq!(p.reports[100].revenue.amount, dec!(400));
}

#[test]
fn per_modality_scope_counts_each_modality_on_its_own() {
    let mut doc = tier_doc("PM", "GRADUATED", json!({"type": "PER_STUDY"}));
    doc["tier_scope"] = json!("PER_MODALITY");
    let cat = catalog_with(&[doc]);
    let mut reports = xrays("PM", 150);
    for r in reports.iter_mut().skip(100) {
        r.modality = Modality::Ct;
    }
    let p = run("2026-02").price(&cat, &reports).unwrap();
    // 100 X-rays in tier 1, 50 CTs also in tier 1 (their own count).
    assert_eq!(invoice(&p, "PM").taxable_value, dec!(100) * dec!(500) + dec!(50) * dec!(1000));
    let mut all = tier_doc("ALL", "GRADUATED", json!({"type": "PER_STUDY"}));
    all["client_id"] = json!("ALL");
    let cat = catalog_with(&[all]);
    let reports: Vec<_> = reports
        .into_iter()
        .map(|mut r| {
            r.client_id = ClientId::parse("ALL").unwrap();
            r
        })
        .collect();
    let p = run("2026-02").price(&cat, &reports).unwrap();
    assert_eq!(invoice(&p, "ALL").taxable_value, dec!(100) * dec!(500) + dec!(50) * dec!(900));
}

#[test]
fn a_retainer_covers_its_studies_and_tiers_count_the_excess() {
    let contract = json!({"type": "RETAINER", "monthly_fee": "10000.00", "included_studies": 20});
    let cat = catalog_with(&[tier_doc("RET", "GRADUATED", contract)]);
    let p = run("2026-02").price(&cat, &xrays("RET", 125)).unwrap();
    let inv = invoice(&p, "RET");
    // 20 included; the 105 excess are counted from 1: 100 at 500, 5 at 400.
    assert_eq!(inv.taxable_value, dec!(10000) + dec!(50000) + dec!(2000));
    let kinds: Vec<(InvoiceLineKind, u32)> = inv.lines.iter().map(|l| (l.kind, l.quantity)).collect();
    assert_eq!(kinds[0], (InvoiceLineKind::Studies { modality: Modality::Xray, tier: 1, unit_price: dec!(500) }, 100));
    assert!(kinds.contains(&(InvoiceLineKind::IncludedStudies { modality: Modality::Xray }, 20)));
    assert!(kinds.contains(&(InvoiceLineKind::RetainerFee, 1)));
    // The fee is spread over all 125 reports: 80.00 each.
    assert_eq!(p.reports[0].revenue.amount, dec!(80.00));
    assert_eq!(p.reports[20].revenue.amount, dec!(580.00));
    assert_eq!(revenue_of(&p, "RET"), inv.taxable_value);
}

#[test]
fn a_minimum_commitment_tops_up_and_spreads_the_shortfall() {
    let contract = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "2000.00"});
    let cat = catalog_with(&[tier_doc("MIN", "GRADUATED", contract)]);
    let p = run("2026-02").price(&cat, &xrays("MIN", 3)).unwrap();
    let inv = invoice(&p, "MIN");
    assert_eq!(inv.taxable_value, dec!(2000.00));
    assert_eq!(inv.lines.last().unwrap().kind, InvoiceLineKind::MinimumShortfall);
    assert_eq!(inv.lines.last().unwrap().amount, dec!(500.00));
    let shares: Vec<Decimal> = p.reports.iter().map(|r| r.revenue.amount).collect();
    assert_eq!(shares, [dec!(666.67), dec!(666.67), dec!(666.66)]);
    // Above the minimum there is no shortfall line.
    let p = run("2026-02").price(&cat, &xrays("MIN", 5)).unwrap();
    assert_eq!(invoice(&p, "MIN").taxable_value, dec!(2500));
    assert!(invoice(&p, "MIN").lines.iter().all(|l| l.kind != InvoiceLineKind::MinimumShortfall));
}

#[test]
fn a_month_without_studies_still_bills_the_retainer_and_minimum() {
    let cat = catalog_with(&[
        tier_doc("RET", "GRADUATED", json!({"type": "RETAINER", "monthly_fee": "10000.00", "included_studies": 20})),
        tier_doc("MIN", "VOLUME", json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "2000.00"})),
        tier_doc("PER", "VOLUME", json!({"type": "PER_STUDY"})),
    ]);
    let p = run("2026-02").price(&cat, &[]).unwrap();
    let billed: Vec<(&str, Decimal, u32)> =
        p.invoices.iter().map(|i| (i.client_id.as_str(), i.taxable_value, i.billable_reports)).collect();
    assert_eq!(billed, [("MIN", dec!(2000.00), 0), ("RET", dec!(10000.00), 0)]);
}

#[test]
fn study_lines_apply_regions_and_priority_uplift() {
    let mut doc = tier_doc("UP", "GRADUATED", json!({"type": "PER_STUDY"}));
    doc["additional_region_pct"] = json!("25");
    doc["uplift_pct"] = json!({"STAT": "20", "URGENT": "10"});
    doc["unit_prices"] = json!({"XRAY": ["333.33", "1", "1"]});
    let cat = catalog_with(&[doc]);
    let r = report("R1", "UP", "RAD-001", Modality::Xray, 3, Priority::Stat, "2026-02-03T05:00:00Z");
    let p = run("2026-02").price(&cat, &[r]).unwrap();
    // 333.33 × 1.5 × 1.2 = 599.994 → 599.99
    assert_eq!(p.reports[0].revenue.amount, dec!(599.99));
}

#[test]
fn cogs_follows_the_formula() {
    let cat = base_catalog();
    let cal = BusinessCalendar::default();
    let as_of = at("2026-06-01T00:00:00Z");
    // RAD-007: override MRI 1100, CONSULTANT 1.20, 12 years → 1.10; 2 regions → 1.5; STAT + NIGHT → 1.45.
    // 23:30 IST on 10 Feb 2026 is 18:00Z.
    let night = report("R1", "HOSP-001", "RAD-007", Modality::Mri, 2, Priority::Stat, "2026-02-10T18:00:00Z");
    let q = price_cogs(&cat, cal, as_of, &night).unwrap();
    assert!(q.night);
    assert_eq!(q.amount, dec!(1100) * dec!(1.5) * dec!(1.20) * dec!(1.10) * dec!(1.45));
    assert_eq!(q.amount, dec!(3158.10));
    assert_eq!((q.rule_version, q.grade), (Some(1), Grade::Consultant));
    // 06:00 IST is 00:30Z: not a night read.
    let morning = report("R2", "HOSP-001", "RAD-007", Modality::Mri, 2, Priority::Stat, "2026-02-11T00:30:00Z");
    let q = price_cogs(&cat, cal, as_of, &morning).unwrap();
    assert!(!q.night);
    assert_eq!(q.amount, dec!(2722.50));
    // RAD-001: SENIOR, 3 years; CT 600 × 1 × 1.00 × 1.00 × 1.10 (URGENT).
    let urgent = report("R3", "HOSP-001", "RAD-001", Modality::Ct, 1, Priority::Urgent, "2026-02-11T06:30:00Z");
    assert_eq!(price_cogs(&cat, cal, as_of, &urgent).unwrap().amount, dec!(660.00));
    // JUNIOR 0.85 on an X-ray with 2 regions: 120 × 1.5 × 0.85 = 153.
    let mut cat = cat;
    cat.add_provider(provider_profile("RAD-J", Grade::Junior, "2025-06-01"));
    let junior = report("R4", "HOSP-001", "RAD-J", Modality::Xray, 2, Priority::Routine, "2026-02-11T06:30:00Z");
    assert_eq!(price_cogs(&cat, cal, as_of, &junior).unwrap().amount, dec!(153.00));
    let unknown = report("R5", "HOSP-001", "RAD-404", Modality::Xray, 1, Priority::Routine, "2026-02-11T06:30:00Z");
    assert_eq!(price_cogs(&cat, cal, as_of, &unknown), Err(HoldReason::UnknownProvider));
}

#[test]
fn cogs_rounds_half_away_from_zero_once() {
    // 120.10 × 1.05 (seniority) = 126.105 → 126.11 (banker's would give 126.10).
    let mut doc: Value = serde_json::from_str(SPEC_PROVIDER_RULES).unwrap();
    doc["base_fee"]["XRAY"] = json!("120.10");
    let mut cat = base_catalog();
    cat.add_provider_rules(RuleVersion {
        version: 2,
        effective_from: d("2026-02-01"),
        recorded_at: at(RECORDED),
        rules: Arc::new(ProviderRules::parse(&doc.to_string()).unwrap()),
    });
    cat.add_provider(provider_profile("RAD-S", Grade::Senior, "2019-01-01"));
    let r = report("R1", "HOSP-001", "RAD-S", Modality::Xray, 1, Priority::Routine, "2026-02-11T06:30:00Z");
    let q = price_cogs(&cat, BusinessCalendar::default(), at("2026-06-01T00:00:00Z"), &r).unwrap();
    assert_eq!((q.amount, q.rule_version), (dec!(126.11), Some(2)));
}

#[test]
fn reports_belong_to_their_local_month() {
    let cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let r = report("R1", "GRAD", "RAD-001", Modality::Xray, 1, Priority::Routine, "2026-01-31T20:00:00Z");
    let err = run("2026-01").price(&cat, std::slice::from_ref(&r)).unwrap_err();
    assert_eq!(err.to_string(), "report R1 revision 1 belongs to period 2026-02, not 2026-01");
    let p = run("2026-02").price(&cat, &[r]).unwrap();
    assert_eq!(p.reports[0].local_date, d("2026-02-01"));
}

#[test]
fn the_highest_revision_counts_and_repeats_change_nothing() {
    let cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let r1 = report("R1", "GRAD", "RAD-001", Modality::Xray, 1, Priority::Routine, "2026-02-05T06:30:00Z");
    let mut r2 = r1.clone();
    r2.revision = 2;
    r2.modality = Modality::Ct;
    let p = run("2026-02").price(&cat, &[r2.clone(), r1.clone(), r1.clone(), r2.clone()]).unwrap();
    assert_eq!(p.reports.len(), 1);
    assert_eq!((p.reports[0].revision, p.reports[0].modality), (2, Modality::Ct));
    assert_eq!(p.reports[0].revenue.amount, dec!(1000));
    assert_eq!(p.reports[0].cogs, dec!(600.00));

    let mut conflicting = r1.clone();
    conflicting.body_regions = 2;
    let err = run("2026-02").price(&cat, &[r1, conflicting]).unwrap_err();
    assert_eq!(err, PricingError::ConflictingRevision { report_id: ReportId::parse("R1").unwrap(), revision: 1 });
}

#[test]
fn cancelled_reports_earn_and_cost_nothing_and_do_not_count_in_tiers() {
    let cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let mut reports = xrays("GRAD", 101);
    reports[0].status = ReportStatus::Cancelled;
    let p = run("2026-02").price(&cat, &reports).unwrap();
    assert_eq!(invoice(&p, "GRAD").taxable_value, dec!(50000));
    assert_eq!(invoice(&p, "GRAD").billable_reports, 100);
    let cancelled = p.reports.iter().find(|r| r.status == ReportStatus::Cancelled).unwrap();
    assert_eq!((cancelled.cogs, cancelled.revenue.amount, cancelled.cogs_rule_version), (dec!(0), dec!(0), None));
    assert_eq!(p.payouts[0].reports, 100);
}

#[test]
fn what_cannot_be_priced_is_held_with_its_reason() {
    let cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let reports = [
        report("A", "NOBODY", "RAD-001", Modality::Xray, 1, Priority::Routine, "2026-02-05T06:30:00Z"),
        report("B", "GRAD", "RAD-404", Modality::Xray, 1, Priority::Routine, "2026-02-05T06:30:00Z"),
        report("C", "GRAD", "RAD-001", Modality::Mri, 1, Priority::Routine, "2026-02-05T06:30:00Z"),
        report("D", "GRAD", "RAD-001", Modality::Xray, 1, Priority::Routine, "2026-02-05T06:30:00Z"),
    ];
    let p = run("2026-02").price(&cat, &reports).unwrap();
    let held: Vec<(&str, &str)> = p.held.iter().map(|h| (h.report_id.as_str(), h.reason.status())).collect();
    assert_eq!(held, [("A", "UNKNOWN_PARTY"), ("B", "UNKNOWN_PARTY"), ("C", "NO_PRICE")]);
    assert_eq!(p.held[2].reason.to_string(), "the client's rules have no price for MRI");
    assert_eq!(p.reports.len(), 1);
    assert_eq!(invoice(&p, "GRAD").billable_reports, 1);
}

#[test]
fn a_rerun_sees_rates_recorded_after_the_live_run() {
    let mut cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let mut cheaper = tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}));
    cheaper["unit_prices"]["XRAY"] = json!(["450", "400", "300"]);
    // Negotiated on 10 March, effective from 1 February.
    cat.add_client_rules(client_rules(&cheaper, 2, "2026-02-01", "2026-03-10T09:00:00Z"));
    let reports = xrays("GRAD", 10);
    let live = PricingRun { rules_as_of: at("2026-02-28T23:00:00Z"), ..run("2026-02") };
    let rerun = PricingRun { rules_as_of: at("2026-03-11T00:00:00Z"), ..run("2026-02") };
    let before = live.price(&cat, &reports).unwrap();
    let after = rerun.price(&cat, &reports).unwrap();
    assert_eq!(
        (invoice(&before, "GRAD").taxable_value, invoice(&before, "GRAD").rule_versions.clone()),
        (dec!(5000), vec![1])
    );
    assert_eq!(
        (invoice(&after, "GRAD").taxable_value, invoice(&after, "GRAD").rule_versions.clone()),
        (dec!(4500), vec![2])
    );
    assert_eq!(after.reports[0].revenue_rule_version, Some(2));
    assert_eq!(after.provider_rule_versions, [1]);
}

#[test]
fn payouts_sum_cogs_per_provider() {
    let cat = catalog_with(&[tier_doc("GRAD", "GRADUATED", json!({"type": "PER_STUDY"}))]);
    let mut reports = xrays("GRAD", 4);
    reports[3].provider_id = ProviderId::parse("RAD-007").unwrap();
    let p = run("2026-02").price(&cat, &reports).unwrap();
    let payouts: Vec<(&str, u32, Decimal)> =
        p.payouts.iter().map(|p| (p.provider_id.as_str(), p.reports, p.gross)).collect();
    // RAD-001: 3 × 120; RAD-007: 120 × 1.20 × 1.10 = 158.40.
    assert_eq!(payouts, [("RAD-001", 3, dec!(360.00)), ("RAD-007", 1, dec!(158.40))]);
}

/// The month engine computes each distinct amount once and reuses it; every report's COGS and
/// study line must still be exactly (scale included) what pricing the report alone gives.
#[test]
fn each_amount_is_exactly_that_of_the_report_priced_alone() {
    let mut cat = base_catalog();
    cat.add_provider(provider_profile("RAD-010", Grade::Junior, "2020-02-10"));
    let mut later: Value = serde_json::from_str(SPEC_PROVIDER_RULES).unwrap();
    // The same fee at another scale, for one provider only; another grade multiplier.
    later["provider_overrides"]["RAD-001"] = json!({"base_fee": {"XRAY": "120.0", "CT": "601"}});
    later["grade_multiplier"]["SENIOR"] = json!("1.0");
    cat.add_provider_rules(RuleVersion {
        version: 2,
        effective_from: d("2026-02-15"),
        recorded_at: at(RECORDED),
        rules: Arc::new(ProviderRules::parse(&later.to_string()).unwrap()),
    });
    let mut doc = tier_doc("ONE", "GRADUATED", json!({"type": "PER_STUDY"}));
    doc["tiers"] = json!([{"up_to": null}]);
    doc["unit_prices"] = json!({"XRAY": ["500"], "CT": ["999.99"]});
    doc["additional_region_pct"] = json!("12.5");
    doc["uplift_pct"] = json!({"STAT": "20", "URGENT": "7.5"});
    let v1 = client_rules(&doc, 1, "2025-01-01", RECORDED);
    cat.add_client(client_profile("ONE", v1.rules.currency));
    cat.add_client_rules(v1);
    doc["unit_prices"] = json!({"XRAY": ["500.0"], "CT": ["999.990"]});
    cat.add_client_rules(client_rules(&doc, 2, "2026-02-10", RECORDED));

    let providers = ["RAD-001", "RAD-007", "RAD-010"];
    let reports: Vec<ReportEvent> = (0..600)
        .map(|i| {
            let mut r = report(
                &format!("R{i:04}"),
                "ONE",
                providers[i % 3],
                [Modality::Xray, Modality::Ct][(i / 3) % 2],
                (i % 5) as u8 + 1,
                Priority::ALL[(i / 7) % 3],
                "2026-01-31T18:30:00Z",
            );
            r.finalized_at += Duration::minutes(i as i64 * 67);
            r
        })
        .collect();
    let run = run("2026-02");
    let priced = run.price(&cat, &reports).unwrap();
    assert_eq!(priced.reports.len(), reports.len());
    let terms = run.terms(&cat, &ClientId::parse("ONE").unwrap());
    for p in &priced.reports {
        let report = reports.iter().find(|r| r.report_id == p.report_id).unwrap();
        let alone = price_cogs(&cat, run.calendar, run.rules_as_of, report).unwrap();
        assert_eq!(p.cogs.to_string(), alone.amount.to_string(), "{}", p.report_id);
        let quote = run.quote(&cat, terms.as_ref(), report).unwrap();
        assert_eq!(p.study_line.to_string(), quote.card.unwrap().amounts[0].to_string(), "{}", p.report_id);
    }
    assert_eq!(priced.provider_rule_versions, [1, 2]);
}

// ---- properties ----

fn property_catalog() -> Catalog {
    let mut usd = tier_doc("USD-GRAD", "GRADUATED", json!({"type": "PER_STUDY"}));
    usd["currency"] = json!("USD");
    usd["unit_prices"] = json!({"XRAY": ["9.00", "8.00", "7.00"], "CT": ["40.00", "35.00", "30.00"], "MRI": ["55.55", "50.05", "45.45"]});
    usd["tiers"] = json!([{"up_to": 5}, {"up_to": 12}, {"up_to": null}]);
    usd["uplift_pct"] = json!({"STAT": "20", "URGENT": "7.5"});
    usd["additional_region_pct"] = json!("33.3");
    let mut vol = usd.clone();
    vol["client_id"] = json!("VOL-PM");
    vol["tier_mode"] = json!("VOLUME");
    vol["tier_scope"] = json!("PER_MODALITY");
    let mut ret = usd.clone();
    ret["client_id"] = json!("RET");
    ret["contract"] = json!({"type": "RETAINER", "monthly_fee": "1000.01", "included_studies": 7});
    let mut min = usd.clone();
    min["client_id"] = json!("MIN");
    min["contract"] = json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "777.77"});
    min["tier_mode"] = json!("VOLUME");
    catalog_with(&[usd, vol, ret, min])
}

const CLIENTS: [&str; 4] = ["USD-GRAD", "VOL-PM", "RET", "MIN"];
const PROVIDERS: [&str; 2] = ["RAD-001", "RAD-007"];

prop_compose! {
    fn arb_report(id: usize)(
        client in 0..CLIENTS.len(),
        provider in 0..PROVIDERS.len(),
        modality in 0..3usize,
        regions in 1u8..=10,
        priority in 0..3usize,
        // Minutes into February 2026 IST; collisions exercise the report_id tie-break.
        minute in 0i64..(28 * 24 * 60) / 97,
        cancelled in proptest::bool::weighted(0.1),
    ) -> ReportEvent {
        let mut r = report(&format!("R{id:04}"), CLIENTS[client], PROVIDERS[provider], Modality::ALL[modality], regions,
            Priority::ALL[priority], "2026-01-31T18:30:00Z");
        r.finalized_at += Duration::minutes(minute * 97);
        if cancelled { r.status = ReportStatus::Cancelled; }
        r
    }
}

fn arb_reports() -> impl Strategy<Value = Vec<ReportEvent>> {
    (0usize..60).prop_flat_map(|n| (0..n).map(arb_report).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_invoice_does_not_depend_on_order_or_repeats(reports in arb_reports(), seed in any::<u64>()) {
        let cat = property_catalog();
        let base = run("2026-02").price(&cat, &reports).unwrap();
        // Shuffle deterministically and deliver some reports twice.
        let mut shuffled: Vec<ReportEvent> = reports.iter().chain(reports.iter().step_by(3)).cloned().collect();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let again = run("2026-02").price(&cat, &shuffled).unwrap();
        prop_assert_eq!(base, again);
    }

    #[test]
    fn per_report_revenue_sums_to_the_taxable_value(reports in arb_reports()) {
        let p = run("2026-02").price(&property_catalog(), &reports).unwrap();
        for inv in &p.invoices {
            // A month without billable reports has nothing to spread its standing charge over.
            if inv.billable_reports > 0 {
                let sum: Decimal = p.reports.iter().filter(|r| r.client_id == inv.client_id).map(|r| r.revenue.amount).sum();
                prop_assert_eq!(sum, inv.taxable_value, "client {}", inv.client_id);
            }
            let lines: Decimal = inv.lines.iter().map(|l| l.amount).sum();
            prop_assert_eq!(lines, inv.taxable_value);
        }
        let gross: Decimal = p.payouts.iter().map(|x| x.gross).sum();
        prop_assert_eq!(gross, p.reports.iter().map(|r| r.cogs).sum::<Decimal>());
    }

    #[test]
    fn revenue_and_cogs_are_never_negative_and_in_minor_units(reports in arb_reports()) {
        let p = run("2026-02").price(&property_catalog(), &reports).unwrap();
        for r in &p.reports {
            prop_assert!(r.cogs >= Decimal::ZERO && r.revenue.amount >= Decimal::ZERO);
            prop_assert_eq!(r.cogs.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero), r.cogs);
            prop_assert_eq!(r.revenue.currency.round(r.revenue.amount), r.revenue.amount);
            if r.status == ReportStatus::Cancelled {
                prop_assert_eq!((r.cogs, r.revenue.amount), (Decimal::ZERO, Decimal::ZERO));
            }
        }
        prop_assert_eq!(p.reports.len() + p.held.len(), reports.len());
    }
}
