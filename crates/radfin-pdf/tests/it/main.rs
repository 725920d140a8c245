//! Documents rendered, then read back with poppler (`pdftotext`, `pdftoppm`): what a reader of
//! the PDF gets is what the document says. The files are kept under `target/pdf-check/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use radfin_pdf::{Party, SAC_DIAGNOSTIC_IMAGING, Supplier, credit_note_pdf, invoice_pdf, payout_statement_pdf};
use radfin_proto::common::v1::Modality;
use radfin_proto::ledger::v1::{
    CreditNote, CreditNoteLine, Invoice, InvoiceLine, PayoutLine, PayoutStatement, TaxLine,
};

fn s(text: &str) -> String {
    text.to_owned()
}

/// `target/pdf-check`.
fn out_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("pdf-check");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Runs a poppler tool; its absence fails the test with what to install.
fn poppler(tool: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): install poppler-utils (`apt-get install -y poppler-utils`; \
             `cargo xtask test` installs it when missing)"
        )
    });
    assert!(output.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Writes `pdf` as `target/pdf-check/<name>.pdf` and returns its path.
fn write(name: &str, pdf: &[u8]) -> PathBuf {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let path = out_dir().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// The text of `pages` (first, last) of the PDF as laid out (a label and its value on one line),
/// whitespace collapsed to single spaces.
fn pdf_text(path: &Path, pages: Option<(u32, u32)>) -> String {
    let file = path.to_string_lossy();
    let (first, last) = pages.map_or((String::new(), String::new()), |(f, l)| (f.to_string(), l.to_string()));
    let mut args = vec!["-layout"];
    if pages.is_some() {
        args.extend(["-f", first.as_str(), "-l", last.as_str()]);
    }
    args.extend([file.as_ref(), "-"]);
    let out = poppler("pdftotext", &args);
    String::from_utf8_lossy(&out).split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_has(text: &str, expected: &[&str]) {
    let missing: Vec<&&str> = expected.iter().filter(|e| !text.contains(**e)).collect();
    assert!(missing.is_empty(), "the PDF's text lacks {missing:?}; it reads:\n{text}");
}

fn supplier() -> Supplier {
    Supplier {
        name: s("Radfin Teleradiology Private Limited"),
        address: s("4th Floor, 12 Residency Road\nBengaluru 560025, Karnataka"),
        gstin: Some(s("29AAACR1234A1Z1")),
        state_code: s("29"),
        pan: Some(s("AAACR1234A")),
    }
}

fn fortis() -> Party {
    Party {
        name: s("Fortis Hospital Bengaluru"),
        address: s("154/9 Bannerghatta Road\nBengaluru 560076"),
        country: s("IN"),
        gstin: Some(s("29ABCDE1234F1Z5")),
        state_code: Some(s("29")),
        pan: None,
    }
}

fn taxable_invoice() -> Invoice {
    Invoice {
        number: s("INV/25-26/000001"),
        kind: s("INVOICE"),
        client_id: s("HOSP-002"),
        client_name: s("Fortis Bengaluru"),
        period: s("2026-01"),
        run_id: 12,
        issue_date: s("2026-02-01"),
        financial_year: s("2025-26"),
        currency: s("INR"),
        billable_reports: 204,
        lines: vec![
            InvoiceLine {
                line_no: 1,
                kind: s("STUDIES"),
                description: s("MRI studies, tier 1"),
                modality: Modality::Mri as i32,
                tier: 1,
                unit_price: s("4000.00"),
                quantity: 100,
                amount: s("400000.00"),
            },
            InvoiceLine {
                line_no: 2,
                kind: s("STUDIES"),
                description: s("MRI studies, tier 2"),
                modality: Modality::Mri as i32,
                tier: 2,
                unit_price: s("3800.00"),
                quantity: 104,
                amount: s("395200.00"),
            },
            InvoiceLine {
                line_no: 3,
                kind: s("RETAINER_FEE"),
                description: s("Monthly retainer fee, 2026-01"),
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
    }
}

fn export_invoice() -> Invoice {
    Invoice {
        number: s("INV/25-26/000002"),
        kind: s("INVOICE"),
        client_id: s("HOSP-101"),
        client_name: s("Mercy Imaging LLC"),
        period: s("2026-01"),
        issue_date: s("2026-02-01"),
        financial_year: s("2025-26"),
        currency: s("USD"),
        billable_reports: 310,
        lines: vec![InvoiceLine {
            line_no: 1,
            kind: s("STUDIES"),
            description: s("CT studies, tier 1"),
            modality: Modality::Ct as i32,
            tier: 1,
            unit_price: s("42.50"),
            quantity: 310,
            amount: s("13175.00"),
        }],
        taxable_value: s("13175.00"),
        tax_treatment: s("EXPORT_LUT"),
        tax_total: s("0.00"),
        total: s("13175.00"),
        endorsement: s("Supply meant for export under Letter of Undertaking without payment of integrated tax"),
        taxable_value_inr: s("1095171.88"),
        supplier_gstin: s("29AAACR1234A1Z1"),
        supplier_state_code: s("29"),
        ..Invoice::default()
    }
}

fn mercy() -> Party {
    Party { name: s("Mercy Imaging LLC"), country: s("US"), ..Party::default() }
}

#[test]
fn a_taxable_intra_state_invoice_carries_the_rule_46_fields() {
    let pdf = invoice_pdf(&taxable_invoice(), &supplier(), &fortis()).unwrap_or_else(|e| panic!("{e}"));
    let path = write("invoice-taxable", &pdf);
    let text = pdf_text(&path, None);
    assert_has(
        &text,
        &[
            "TAX INVOICE",
            "INV/25-26/000001",
            "01 Feb 2026",
            "Radfin Teleradiology Private Limited",
            "4th Floor, 12 Residency Road",
            "GSTIN: 29AAACR1234A1Z1",
            "Fortis Hospital Bengaluru",
            "Client ID: HOSP-002",
            "GSTIN: 29ABCDE1234F1Z5",
            "Karnataka (29)",
            "Place of supply Karnataka (29)",
            "Reverse charge No",
            SAC_DIAGNOSTIC_IMAGING,
            "MRI studies, tier 1",
            "4,00,000.00",
            "3,95,200.00",
            "Taxable value 8,45,200.00",
            "CGST @ 9% 76,068.00",
            "SGST @ 9% 76,068.00",
            "Total tax 1,52,136.00",
            "Total (INR) 9,97,336.00",
            "Rupees Nine Lakh Ninety-Seven Thousand Three Hundred Thirty-Six Only",
            "For Radfin Teleradiology Private Limited",
            "Authorised Signatory",
            "Page 1 of 1",
        ],
    );
    assert!(!text.contains("IGST"), "an intra-state supply has no IGST: {text}");

    // A picture of the first page, to look at.
    let png = out_dir().join("invoice-taxable");
    poppler("pdftoppm", &["-png", "-r", "60", "-singlefile", &path.to_string_lossy(), &png.to_string_lossy()]);
    let png = png.with_extension("png");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("pdftoppm wrote no {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", png.display());
    // A4 at 60 dpi: 497 × 702 pixels (IHDR width and height; poppler rounds 496.07 up).
    assert_eq!(&bytes[16..24], &[0, 0, 1, 241, 0, 0, 2, 190], "unexpected page size in pixels");
}

#[test]
fn an_export_invoice_under_lut_carries_the_endorsement() {
    let pdf = invoice_pdf(&export_invoice(), &supplier(), &mercy()).unwrap_or_else(|e| panic!("{e}"));
    let text = pdf_text(&write("invoice-export-lut", &pdf), None);
    assert_has(
        &text,
        &[
            "EXPORT INVOICE",
            "INV/25-26/000002",
            "Export of services under LUT",
            "GSTIN: 29AAACR1234A1Z1",
            "Mercy Imaging LLC",
            "Country: US",
            "Place of supply Outside India (US)",
            SAC_DIAGNOSTIC_IMAGING,
            "Rate (USD)",
            "42.50",
            "Taxable value 13,175.00",
            "Total tax 0.00",
            "Total (USD) 13,175.00",
            "US Dollars Thirteen Thousand One Hundred Seventy-Five Only",
            "Supply meant for export under Letter of Undertaking without payment of integrated tax",
            "Taxable value in INR: 10,95,171.88",
        ],
    );
    assert!(!text.contains("CGST") && !text.contains("IGST @"), "an export under LUT charges no tax: {text}");
    assert!(!text.contains("unregistered"), "an export recipient has no GSTIN to lack: {text}");
}

#[test]
fn a_supplementary_invoice_and_a_bill_of_supply_say_what_they_are() {
    let mut sup = taxable_invoice();
    sup.number = s("SUP/25-26/000001");
    sup.kind = s("SUPPLEMENTARY");
    sup.corrects_invoice_number = s("INV/25-26/000001");
    let text =
        pdf_text(&write("invoice-supplementary", &invoice_pdf(&sup, &supplier(), &fortis()).unwrap_or_default()), None);
    assert_has(&text, &["SUPPLEMENTARY INVOICE", "SUP/25-26/000001", "Supplements invoice INV/25-26/000001"]);

    let mut exempt = taxable_invoice();
    exempt.tax_treatment = s("EXEMPT");
    exempt.taxes.clear();
    exempt.tax_total = s("0.00");
    exempt.total = s("845200.00");
    exempt.endorsement = String::new();
    let text =
        pdf_text(&write("invoice-exempt", &invoice_pdf(&exempt, &supplier(), &fortis()).unwrap_or_default()), None);
    assert_has(
        &text,
        &[
            "BILL OF SUPPLY",
            "Bill of supply: exempt supply, no tax charged",
            "Rupees Eight Lakh Forty-Five Thousand Two Hundred Only",
        ],
    );
    assert!(!text.contains("TAX INVOICE"), "{text}");
}

#[test]
fn a_credit_note_references_its_invoice() {
    let note = CreditNote {
        number: s("CRN/25-26/000001"),
        client_id: s("HOSP-002"),
        period: s("2026-01"),
        run_id: 0,
        corrects_invoice_number: s("INV/25-26/000001"),
        issue_date: s("2026-02-10"),
        financial_year: s("2025-26"),
        currency: s("INR"),
        lines: vec![CreditNoteLine {
            line_no: 1,
            description: s("Duplicate MRI read credited"),
            modality: Modality::Mri as i32,
            quantity: 2,
            amount: s("8000.00"),
        }],
        taxable_value: s("8000.00"),
        tax_treatment: s("TAXABLE"),
        taxes: vec![
            TaxLine { kind: s("CGST"), rate_pct: s("9"), amount: s("720.00") },
            TaxLine { kind: s("SGST"), rate_pct: s("9"), amount: s("720.00") },
        ],
        tax_total: s("1440.00"),
        total: s("9440.00"),
        taxable_value_inr: s("8000.00"),
        reason: s("Two studies were read twice"),
        created_by: s("finance"),
    };
    let pdf = credit_note_pdf(&note, &supplier(), &fortis()).unwrap_or_else(|e| panic!("{e}"));
    let text = pdf_text(&write("credit-note", &pdf), None);
    assert_has(
        &text,
        &[
            "CREDIT NOTE",
            "CRN/25-26/000001",
            "Against invoice INV/25-26/000001",
            "10 Feb 2026",
            "GSTIN: 29AAACR1234A1Z1",
            "GSTIN: 29ABCDE1234F1Z5",
            "Two studies were read twice",
            SAC_DIAGNOSTIC_IMAGING,
            "Duplicate MRI read credited",
            "Taxable value 8,000.00",
            "CGST @ 9% 720.00",
            "SGST @ 9% 720.00",
            "Total credit (INR) 9,440.00",
            "Rupees Nine Thousand Four Hundred Forty Only",
            "Authorised Signatory",
        ],
    );
}

fn statement() -> PayoutStatement {
    PayoutStatement {
        number: s("PAY/25-26/000007"),
        kind: s("STATEMENT"),
        provider_id: s("RAD-014"),
        provider_name: s("Dr. Asha Rao"),
        period: s("2026-01"),
        run_id: 12,
        issue_date: s("2026-02-01"),
        financial_year: s("2025-26"),
        currency: s("INR"),
        reports: 182,
        lines: vec![
            PayoutLine {
                line_no: 1,
                description: s("CT reports, 2026-01"),
                modality: Modality::Ct as i32,
                quantity: 120,
                amount: s("36000.00"),
            },
            PayoutLine {
                line_no: 2,
                description: s("MRI reports, 2026-01"),
                modality: Modality::Mri as i32,
                quantity: 62,
                amount: s("27900.00"),
            },
        ],
        gross: s("63900.00"),
        fees_earlier_in_year: s("412500.00"),
        pan_present: true,
        tds_section: s("194J"),
        tds_rate_pct: s("10"),
        tds_base: s("63900.00"),
        tds_amount: s("6390.00"),
        net_payable: s("57510.00"),
        corrects_statement_number: String::new(),
    }
}

#[test]
fn a_payout_statement_shows_tds_under_194j() {
    let provider = Party { name: s("Dr. Asha Rao"), pan: Some(s("ABCPR1234K")), ..Party::default() };
    let pdf = payout_statement_pdf(&statement(), &supplier(), &provider).unwrap_or_else(|e| panic!("{e}"));
    let text = pdf_text(&write("payout-statement", &pdf), None);
    assert_has(
        &text,
        &[
            "PAYOUT STATEMENT",
            "PAY/25-26/000007",
            "Dr. Asha Rao",
            "Provider ID: RAD-014",
            "PAN: ABCPR1234K (furnished)",
            "January 2026",
            "CT reports, 2026-01",
            "CT",
            "120",
            "36,000.00",
            "Gross fees 63,900.00",
            "Less: TDS u/s 194J @ 10% 6,390.00",
            "Net payable (INR) 57,510.00",
            "Fees earlier in the financial year 2025-26: INR 4,12,500.00",
            "Base INR 63,900.00",
            "Rupees Fifty-Seven Thousand Five Hundred Ten Only",
        ],
    );
}

#[test]
fn a_payout_adjustment_without_pan_says_so() {
    let mut adj = statement();
    adj.number = s("PAY/25-26/000031");
    adj.kind = s("ADJUSTMENT");
    adj.corrects_statement_number = s("PAY/25-26/000007");
    adj.pan_present = false;
    adj.lines.truncate(1);
    adj.lines[0].amount = s("-1500.00");
    adj.lines[0].quantity = -5;
    adj.gross = s("-1500.00");
    adj.tds_rate_pct = s("20");
    adj.tds_base = s("-1500.00");
    adj.tds_amount = s("-300.00");
    adj.net_payable = s("-1200.00");
    let pdf = payout_statement_pdf(&adj, &supplier(), &Party::default()).unwrap_or_else(|e| panic!("{e}"));
    let text = pdf_text(&write("payout-adjustment", &pdf), None);
    assert_has(
        &text,
        &[
            "PAYOUT ADJUSTMENT",
            "PAY/25-26/000031",
            "Corrects statement PAY/25-26/000007",
            "Dr. Asha Rao",
            "PAN not furnished: TDS at 20%",
            "@ 20%",
            "-1,500.00",
            "Net payable (INR) -1,200.00",
            "Minus Rupees One Thousand Two Hundred Only",
        ],
    );
}

#[test]
fn a_long_invoice_runs_onto_further_pages_with_its_table_header() {
    let mut inv = taxable_invoice();
    inv.number = s("INV/25-26/000003");
    inv.lines = (1..=40)
        .map(|i| InvoiceLine {
            line_no: i,
            kind: s("STUDIES"),
            description: format!(
                "Line {i}: studies of a modality, with a description long enough to wrap onto a second line of its cell"
            ),
            unit_price: s("100.00"),
            quantity: i,
            amount: format!("{}.00", 100 * i),
            ..InvoiceLine::default()
        })
        .collect();
    let pdf = invoice_pdf(&inv, &supplier(), &fortis()).unwrap_or_else(|e| panic!("{e}"));
    let path = write("invoice-long", &pdf);
    let all = pdf_text(&path, None);
    for i in 1..=40 {
        assert!(all.contains(&format!("Line {i}: studies")), "line {i} is missing");
    }
    assert!(all.contains("Page 1 of 2") || all.contains("Page 1 of 3"), "{all}");
    let second = pdf_text(&path, Some((2, 2)));
    assert_has(&second, &["TAX INVOICE INV/25-26/000003 (continued)", "Description of service", "Amount (INR)"]);
    assert!(!second.contains("Line 1: studies"), "page 2 repeats page 1's lines");
}

#[test]
fn the_same_document_renders_to_the_same_bytes() {
    let first = invoice_pdf(&taxable_invoice(), &supplier(), &fortis()).unwrap_or_default();
    let second = invoice_pdf(&taxable_invoice(), &supplier(), &fortis()).unwrap_or_default();
    assert!(!first.is_empty());
    assert!(first == second, "two renderings of one invoice differ");
    let mut other = taxable_invoice();
    other.number = s("INV/25-26/000009");
    assert!(invoice_pdf(&other, &supplier(), &fortis()).unwrap_or_default() != first);
}
