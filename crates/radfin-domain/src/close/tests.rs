use std::sync::Arc;

use proptest::prelude::*;
use rust_decimal_macros::dec;

use super::*;
use crate::fx::AppliedRate;
use crate::party::Grade;

fn client(i: u8) -> ClientId {
    ClientId::parse(&format!("HOSP-{i}")).unwrap()
}

fn provider(i: u8) -> ProviderId {
    ProviderId::parse(&format!("RAD-{i}")).unwrap()
}

fn rate(r: Decimal) -> AppliedRate {
    AppliedRate { inr_per_unit: r, rate_date: "2026-01-31".parse().unwrap(), source: Arc::from("ECB") }
}

/// A report's two lines: COGS in INR, revenue in USD at `usd_rate` (or INR when None).
fn report(id: &str, c: u8, p: u8, cogs: Decimal, revenue: Decimal, usd_rate: Option<Decimal>) -> [RunLine; 2] {
    let dims = ReportDims {
        revision: 1,
        provider_id: provider(p),
        modality: Modality::Ct,
        grade: Grade::Senior,
        status: ReportStatus::Final,
    };
    let id = ReportId::parse(id).unwrap();
    let (currency, fx, revenue_inr) = match usd_rate {
        Some(r) => (Currency::USD, Some(rate(r)), Currency::INR.round(revenue * r)),
        None => (Currency::INR, None, revenue),
    };
    [
        RunLine {
            client_id: client(c),
            line: LineRef::Study(id.clone(), Side::Cogs),
            part: Part {
                dims: Dims { report: Some(dims.clone()), currency: Currency::INR, rule_version: Some(1), fx: None },
                amount: cogs,
                amount_inr: cogs,
            },
        },
        RunLine {
            client_id: client(c),
            line: LineRef::Study(id, Side::Revenue),
            part: Part {
                dims: Dims { report: Some(dims), currency, rule_version: Some(1), fx },
                amount: revenue,
                amount_inr: revenue_inr,
            },
        },
    ]
}

#[test]
fn a_rerun_difference_splits_into_price_volume_and_fx() {
    // Billed: A at 10 USD (rate 80) and B at 10 USD (rate 80). Rerun: A at 12 USD (rate 82),
    // B gone (moved away), C new at 5 USD (rate 82).
    let billed: Vec<RunLine> = [
        report("A", 1, 1, dec!(100), dec!(10), Some(dec!(80))),
        report("B", 1, 1, dec!(100), dec!(10), Some(dec!(80))),
    ]
    .concat();
    let rerun: Vec<RunLine> =
        [report("A", 1, 1, dec!(110), dec!(12), Some(dec!(82))), report("C", 1, 2, dec!(50), dec!(5), Some(dec!(82)))]
            .concat();
    let (clients, providers) = compare(&billed, &rerun);
    let d = &clients[0];
    assert_eq!((d.billed, d.rerun), (dec!(20), dec!(17)));
    assert_eq!(d.contract, Effects { price: dec!(2), volume: dec!(-5), fx: dec!(0) });
    // price: round(12 × 80) − 800 = 160; fx: 984 − 960 = 24; volume: 410 − 800 = −390.
    assert_eq!(d.inr, Effects { price: dec!(160), volume: dec!(-390), fx: dec!(24) });
    assert_eq!(d.inr.difference(), d.rerun_inr - d.billed_inr);
    assert_eq!(providers.len(), 2);
    assert_eq!(providers[0].effects, Effects { price: dec!(10), volume: dec!(-100), fx: dec!(0) });
    assert_eq!(providers[1].effects, Effects { price: dec!(0), volume: dec!(50), fx: dec!(0) });
}

#[test]
fn credits_never_exceed_what_remains_and_follow_issue_order() {
    let d = ClientDifference {
        client_id: client(1),
        currency: Currency::INR,
        billed: dec!(1000),
        rerun: dec!(700),
        contract: Effects { price: dec!(-300), ..Effects::default() },
        billed_inr: dec!(1000),
        rerun_inr: dec!(700),
        inr: Effects { price: dec!(-300), ..Effects::default() },
        billed_reports: 10,
        rerun_reports: 10,
    };
    let invoice = |id: i64, remaining: Decimal| IssuedInvoice {
        id,
        number: format!("INV/26-27/{id:06}"),
        client_id: client(1),
        currency: Currency::INR,
        tax_treatment: TaxTreatment::Taxable,
        place_of_supply: Some("27".into()),
        client_gstin: None,
        remaining,
    };
    let gst = GstConfig::new("29");
    let period: Period = "2026-01".parse().unwrap();
    let plan = |invoices: &[IssuedInvoice]| {
        corrections(
            period,
            9,
            std::slice::from_ref(&d),
            &[],
            invoices,
            &[],
            &Catalog::default(),
            &gst,
            &BTreeMap::new(),
            &TdsConfig::default(),
        )
    };
    let ok = plan(&[invoice(1, dec!(250)), invoice(2, dec!(100))]).unwrap();
    let credited: Vec<(i64, Decimal, Decimal)> =
        ok.credit_notes.iter().map(|c| (c.corrects_invoice_id, c.taxable_value, c.taxable_value_inr)).collect();
    assert_eq!(credited, [(1, dec!(250), dec!(250)), (2, dec!(50), dec!(50))]);
    // IGST: another state than the supplier's.
    assert_eq!(ok.credit_notes[0].tax.total(), dec!(45.00));
    assert!(matches!(plan(&[invoice(1, dec!(299.99))]), Err(CorrectionError::CreditExceedsInvoices { .. })));
}

fn lines_strategy() -> impl Strategy<Value = Vec<RunLine>> {
    prop::collection::vec(
        (0u8..12, 0u8..3, 0u8..3, 1i64..100_000, 1i64..100_000, prop::option::of(7_000i64..9_000)),
        0..30,
    )
    .prop_map(|rows| {
        let mut seen = std::collections::BTreeSet::new();
        rows.into_iter()
            .filter(|(id, ..)| seen.insert(*id))
            .flat_map(|(id, c, p, cogs, revenue, r)| {
                report(
                    &format!("R{id}"),
                    c,
                    p,
                    Decimal::new(cogs, 2),
                    Decimal::new(revenue, 2),
                    r.map(|r| Decimal::new(r, 2)),
                )
            })
            .collect()
    })
}

proptest! {
    /// Whatever two runs hold, each client's price + volume + FX is exactly its INR difference,
    /// price + volume its contract-currency difference, and the planned documents move what was
    /// billed and paid by exactly the differences.
    #[test]
    fn effects_and_documents_sum_to_the_differences(billed in lines_strategy(), rerun in lines_strategy()) {
        let (clients, providers) = compare(&billed, &rerun);
        for d in &clients {
            prop_assert_eq!(d.inr.difference(), d.rerun_inr - d.billed_inr);
            prop_assert_eq!(d.contract.difference(), d.rerun - d.billed);
            prop_assert!(d.contract.fx.is_zero());
        }
        for d in &providers {
            prop_assert_eq!(d.effects.difference(), d.rerun - d.paid);
        }
        let invoices: Vec<IssuedInvoice> = (0..3u8)
            .map(|c| IssuedInvoice {
                id: i64::from(c),
                number: format!("INV/26-27/{c:06}"),
                client_id: client(c),
                currency: Currency::INR,
                tax_treatment: TaxTreatment::ExportLut,
                place_of_supply: None,
                client_gstin: None,
                remaining: dec!(10_000_000),
            })
            .collect();
        let plan = corrections(
            "2026-01".parse().unwrap(), 1, &clients, &providers, &invoices, &[], &Catalog::default(),
            &GstConfig::new("29"), &BTreeMap::new(), &TdsConfig::default(),
        ).unwrap();
        let issued: Decimal = plan.invoices.iter().map(|s| s.invoice.taxable_value).sum::<Decimal>()
            - plan.credit_notes.iter().map(|c| c.taxable_value).sum::<Decimal>();
        prop_assert_eq!(issued, clients.iter().map(|d| d.contract.difference()).sum::<Decimal>());
        let paid: Decimal = plan.payouts.iter().map(|p| p.payout.gross).sum();
        prop_assert_eq!(paid, providers.iter().map(|d| d.effects.difference()).sum::<Decimal>());
    }
}

#[test]
fn tds_is_withheld_from_the_statement_that_crosses_the_threshold_and_at_20_percent_without_pan() {
    use crate::party::ProviderProfile;
    let mut catalog = Catalog::default();
    for (i, pan) in [(1, Some("ABCDE1234F")), (2, None)] {
        catalog.add_provider(ProviderProfile {
            provider_id: provider(i),
            name: format!("Dr {i}"),
            grade: Grade::Senior,
            practicing_since: "2015-01-01".parse().unwrap(),
            pan: pan.map(str::to_owned),
            effective_from: "2020-01-01".parse().unwrap(),
        });
    }
    // Each provider earns 10,000 this month (two reports of 5,000).
    let lines: Vec<RunLine> = [
        report("A", 1, 1, dec!(5000), dec!(1), None),
        report("B", 1, 1, dec!(5000), dec!(1), None),
        report("C", 1, 2, dec!(5000), dec!(1), None),
        report("D", 1, 2, dec!(5000), dec!(1), None),
    ]
    .concat();
    let period: Period = "2026-10".parse().unwrap();
    let statements = |earlier: Decimal| {
        let earlier = BTreeMap::from([(provider(1), earlier), (provider(2), earlier)]);
        payouts(&lines, &catalog, period, &earlier, &TdsConfig::default())
    };
    let tds = |s: &[PayoutPlan]| s.iter().map(|p| (p.tds.rate_pct, p.tds.base, p.tds.amount)).collect::<Vec<_>>();
    // Below the threshold after this statement: nothing withheld.
    assert_eq!(tds(&statements(dec!(30000))), [(dec!(0), dec!(0), dec!(0)); 2]);
    // This statement crosses ₹50,000: withholding on the year's cumulative fees, its own included.
    assert_eq!(
        tds(&statements(dec!(45000))),
        [(dec!(10), dec!(55000), dec!(5500.00)), (dec!(20), dec!(55000), dec!(11000.00))]
    );
    // Past the threshold already: on its own gross.
    let past = statements(dec!(60000));
    assert_eq!(tds(&past), [(dec!(10), dec!(10000), dec!(1000.00)), (dec!(20), dec!(10000), dec!(2000.00))]);
    assert_eq!(past[0].net(), dec!(9000.00));
    assert_eq!((past[0].reports, past[0].gross), (2, dec!(10000)));
}
