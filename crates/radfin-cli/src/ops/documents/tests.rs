//! Snapshots of documents as the CLI prints them.

use expect_test::expect;
use radfin_proto::common::v1::Modality;
use radfin_proto::ledger::v1::{
    CreditNote, CreditNoteLine, Invoice, InvoiceLine, PayoutLine, PayoutStatement, TaxLine,
};

use super::{print_credit_note, print_invoice, print_statement};

fn s(text: &str) -> String {
    text.to_owned()
}

fn printed(print: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    print(&mut out).unwrap_or_default();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn an_invoice() {
    let invoice = Invoice {
        number: s("INV/25-26/000001"),
        kind: s("INVOICE"),
        client_id: s("HOSP-002"),
        client_name: s("Fortis Bengaluru"),
        period: s("2026-01"),
        run_id: 12,
        issue_date: s("2026-02-01"),
        financial_year: s("2025-26"),
        currency: s("INR"),
        billable_reports: 1204,
        lines: vec![
            InvoiceLine {
                line_no: 1,
                kind: s("STUDIES"),
                description: s("MRI, tier 1 (1–100)"),
                modality: Modality::Mri as i32,
                tier: 1,
                unit_price: s("4000.00"),
                quantity: 100,
                amount: s("400000.00"),
            },
            InvoiceLine {
                line_no: 2,
                kind: s("STUDIES"),
                description: s("MRI, tier 2 (101–500)"),
                modality: Modality::Mri as i32,
                tier: 2,
                unit_price: s("3800.00"),
                quantity: 104,
                amount: s("395200.00"),
            },
            InvoiceLine {
                line_no: 3,
                kind: s("RETAINER_FEE"),
                description: s("Monthly retainer"),
                amount: s("50000.00"),
                ..InvoiceLine::default()
            },
        ],
        taxable_value: s("845200.00"),
        tax_treatment: s("TAXABLE"),
        taxes: vec![
            TaxLine { kind: s("CGST"), rate_pct: s("9"), amount: s("76068.00") },
            TaxLine { kind: s("SGST"), rate_pct: s("9"), amount: s("76068.00") },
        ],
        tax_total: s("152136.00"),
        total: s("997336.00"),
        taxable_value_inr: s("845200.00"),
        client_gstin: s("29ABCDE1234F1Z5"),
        place_of_supply: s("29"),
        supplier_gstin: s("29AAACR1234A1Z1"),
        supplier_state_code: s("29"),
        credited: s("0.00"),
        remaining: s("845200.00"),
        client_rule_version: 1,
        ..Invoice::default()
    };
    expect![[r#"
        TAX INVOICE INV/25-26/000001
          Client            HOSP-002 Fortis Bengaluru
          Client GSTIN      29ABCDE1234F1Z5
          Place of supply   29
          Supplier GSTIN    29AAACR1234A1Z1
          Supplier state    29
          Period            2026-01
          Issue date        2026-02-01 (FY 2025-26)
          Run               12
          Client rules      v1
          Billable reports  1204
          Tax treatment     TAXABLE
        ┌───┬──────────────┬───────────────────────┬──────────┬──────┬─────┬────────────┬────────────┐
        │ # ┆ Kind         ┆ Description           ┆ Modality ┆ Tier ┆ Qty ┆ Unit price ┆     Amount │
        ╞═══╪══════════════╪═══════════════════════╪══════════╪══════╪═════╪════════════╪════════════╡
        │ 1 ┆ STUDIES      ┆ MRI, tier 1 (1–100)   ┆ MRI      ┆    1 ┆ 100 ┆   4,000.00 ┆ 400,000.00 │
        │ 2 ┆ STUDIES      ┆ MRI, tier 2 (101–500) ┆ MRI      ┆    2 ┆ 104 ┆   3,800.00 ┆ 395,200.00 │
        │ 3 ┆ RETAINER_FEE ┆ Monthly retainer      ┆          ┆      ┆     ┆            ┆  50,000.00 │
        └───┴──────────────┴───────────────────────┴──────────┴──────┴─────┴────────────┴────────────┘
        ┌───────────────┬────────────┐
        │               ┆        INR │
        ╞═══════════════╪════════════╡
        │ Taxable value ┆ 845,200.00 │
        │ CGST 9%       ┆  76,068.00 │
        │ SGST 9%       ┆  76,068.00 │
        │ Tax           ┆ 152,136.00 │
        │ Total         ┆ 997,336.00 │
        └───────────────┴────────────┘
        Credited: 0.00 INR; remaining creditable: 845,200.00 INR
    "#]]
    .assert_eq(&printed(|out| print_invoice(out, &invoice)));
}

#[test]
fn a_credit_note() {
    let note = CreditNote {
        number: s("CRN/25-26/000001"),
        client_id: s("HOSP-001"),
        period: s("2026-01"),
        run_id: 0,
        corrects_invoice_number: s("INV/25-26/000004"),
        issue_date: s("2026-02-10"),
        financial_year: s("2025-26"),
        currency: s("USD"),
        lines: vec![CreditNoteLine {
            line_no: 1,
            description: s("Duplicate MRI reads"),
            modality: Modality::Mri as i32,
            quantity: 3,
            amount: s("165.00"),
        }],
        taxable_value: s("165.00"),
        tax_treatment: s("EXPORT_LUT"),
        taxes: Vec::new(),
        tax_total: s("0.00"),
        total: s("165.00"),
        taxable_value_inr: s("13823.68"),
        reason: s("duplicate studies billed"),
        created_by: s("finance@radfin"),
    };
    expect![[r#"
        CREDIT NOTE CRN/25-26/000001 against INV/25-26/000004
          Client         HOSP-001
          Period         2026-01
          Issue date     2026-02-10 (FY 2025-26)
          Issued by      hand
          Reason         duplicate studies billed
          Created by     finance@radfin
          Tax treatment  EXPORT_LUT
        ┌───┬─────────────────────┬──────────┬─────┬────────┐
        │ # ┆ Description         ┆ Modality ┆ Qty ┆ Amount │
        ╞═══╪═════════════════════╪══════════╪═════╪════════╡
        │ 1 ┆ Duplicate MRI reads ┆ MRI      ┆   3 ┆ 165.00 │
        └───┴─────────────────────┴──────────┴─────┴────────┘
        ┌───────────────┬────────┐
        │               ┆    USD │
        ╞═══════════════╪════════╡
        │ Taxable value ┆ 165.00 │
        │ Tax           ┆   0.00 │
        │ Total         ┆ 165.00 │
        └───────────────┴────────┘
        Taxable value in INR: 13,823.68
    "#]]
    .assert_eq(&printed(|out| print_credit_note(out, &note)));
}

#[test]
fn a_payout_statement() {
    let statement = PayoutStatement {
        number: s("PAY/25-26/000007"),
        kind: s("STATEMENT"),
        provider_id: s("RAD-004"),
        provider_name: s("Dr. Arjun Khan"),
        period: s("2026-01"),
        run_id: 12,
        issue_date: s("2026-02-01"),
        financial_year: s("2025-26"),
        currency: s("INR"),
        reports: 412,
        lines: vec![
            PayoutLine {
                line_no: 1,
                description: s("CT reads"),
                modality: Modality::Ct as i32,
                quantity: 300,
                amount: s("153000.00"),
            },
            PayoutLine {
                line_no: 2,
                description: s("XRAY reads"),
                modality: Modality::Xray as i32,
                quantity: 112,
                amount: s("11424.00"),
            },
        ],
        gross: s("164424.00"),
        fees_earlier_in_year: s("0.00"),
        pan_present: true,
        tds_section: s("194J"),
        tds_rate_pct: s("10"),
        tds_base: s("164424.00"),
        tds_amount: s("16442.40"),
        net_payable: s("147981.60"),
        corrects_statement_number: String::new(),
    };
    expect![[r#"
        PAYOUT STATEMENT PAY/25-26/000007
          Provider    RAD-004 Dr. Arjun Khan
          Period      2026-01
          Issue date  2026-02-01 (FY 2025-26)
          Run         12
          Reports     412
        ┌───┬─────────────┬──────────┬─────┬────────────┐
        │ # ┆ Description ┆ Modality ┆ Qty ┆     Amount │
        ╞═══╪═════════════╪══════════╪═════╪════════════╡
        │ 1 ┆ CT reads    ┆ CT       ┆ 300 ┆ 153,000.00 │
        │ 2 ┆ XRAY reads  ┆ XRAY     ┆ 112 ┆  11,424.00 │
        └───┴─────────────┴──────────┴─────┴────────────┘
        ┌────────────────────────────────────┬────────────┐
        │                                    ┆        INR │
        ╞════════════════════════════════════╪════════════╡
        │ Gross fees                         ┆ 164,424.00 │
        │ Fees earlier in the financial year ┆       0.00 │
        │ TDS 194J at 10% on 164,424.00      ┆  16,442.40 │
        │ Net payable                        ┆ 147,981.60 │
        └────────────────────────────────────┴────────────┘
    "#]]
    .assert_eq(&printed(|out| print_statement(out, &statement)));
}
