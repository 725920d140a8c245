//! The three documents: invoice, credit note, payout statement.

use radfin_domain::Currency;
use radfin_domain::tax::{BILL_OF_SUPPLY, LUT_ENDORSEMENT};
use radfin_proto::common::v1::Modality;
use radfin_proto::ledger::v1::{CreditNote, Invoice, PayoutStatement, TaxLine};
use rust_decimal::Decimal;

use crate::fonts::Font;
use crate::layout::{
    Align, BLACK, BODY, Column, LEFT, Layout, MUTED, Meta, PAD_X, RIGHT, SMALL, Table, WIDTH, leading, wrap,
};
use crate::words::{amount_in_words, currency, format_amount};
use crate::{Party, PdfError, SAC_DIAGNOSTIC_IMAGING, Supplier};

const TITLE: i32 = 1600;
const NAME: i32 = 1300;
/// Where the right-hand blocks (title, details, totals) start.
const MID: i32 = LEFT + WIDTH * 55 / 100;
/// Width of the labels of a details block.
const LABEL: i32 = 9_000;
/// Space between blocks.
const GAP: i32 = 900;

// ---------------------------------------------------------------------------------------------
// Invoice

/// An invoice (or supplementary invoice) as a PDF: "TAX INVOICE" (TAXABLE), "EXPORT INVOICE"
/// with the LUT endorsement (EXPORT_LUT), "BILL OF SUPPLY" (EXEMPT); "SUPPLEMENTARY INVOICE",
/// naming the invoice it supplements, for kind SUPPLEMENTARY.
///
/// The invoice's own supplier GSTIN and state, client GSTIN and place of supply (what the ledger
/// recorded when it issued it) win over `supplier`'s and `recipient`'s.
pub fn invoice_pdf(inv: &Invoice, supplier: &Supplier, recipient: &Party) -> Result<Vec<u8>, PdfError> {
    require_name(supplier)?;
    let money = Money::new(&inv.currency)?;
    let treatment = inv.tax_treatment.trim();
    let (kind_title, default_endorsement, nature) = match treatment {
        "TAXABLE" => ("TAX INVOICE", None, "Tax invoice"),
        "EXPORT_LUT" => ("EXPORT INVOICE", Some(LUT_ENDORSEMENT), "Export of services under LUT"),
        "EXEMPT" => ("BILL OF SUPPLY", Some(BILL_OF_SUPPLY), "Bill of supply"),
        other => return Err(PdfError::TaxTreatment(other.to_owned())),
    };
    let supplementary = inv.kind.trim() == "SUPPLEMENTARY";
    let title = if supplementary { "SUPPLEMENTARY INVOICE" } else { kind_title };
    let mut subtitle = vec!["Original for recipient".to_owned()];
    if supplementary {
        subtitle.push(format!("Supplements invoice {}", or_dash(&inv.corrects_invoice_number)));
        subtitle.push(nature.to_owned());
    } else if treatment == "EXPORT_LUT" {
        subtitle.push(nature.to_owned());
    }
    let export = treatment == "EXPORT_LUT";
    let number = number(&inv.number);
    let head = format!("{title} {number}");
    let mut doc = Layout::new(&head);

    let supplier_gstin = first(&[&inv.supplier_gstin, opt(&supplier.gstin)]);
    let supplier_state = first(&[&inv.supplier_state_code, &supplier.state_code]);
    letterhead(&mut doc, supplier, supplier_gstin, supplier_state, title, &subtitle);

    let name = first(&[&recipient.name, &inv.client_name, &inv.client_id]);
    let gstin = first(&[&inv.client_gstin, opt(&recipient.gstin)]);
    let state_code = first(&[&inv.place_of_supply, opt(&recipient.state_code)]);
    let party = recipient_lines(name, &inv.client_id, "Client ID", recipient, gstin, state_code, export);
    let mut rows = vec![
        ("Invoice No.", number.clone()),
        ("Invoice date", date(&inv.issue_date)),
        ("Billing period", period(&inv.period)),
        ("Place of supply", place_of_supply(state_code, &recipient.country, export)),
        ("Reverse charge", "No".to_owned()),
        ("Currency", money.code().to_owned()),
    ];
    if supplementary {
        rows.push(("Supplements invoice", or_dash(&inv.corrects_invoice_number)));
    }
    blocks(&mut doc, "Bill to", &party, &rows);

    let table = Table::new(vec![
        Column::new("#", 2_200, Align::Right),
        Column::new("Description of service", 0, Align::Left),
        Column::new("SAC", 4_200, Align::Left),
        Column::new("Qty", 3_800, Align::Right),
        Column::new(format!("Rate ({})", money.code()), 8_000, Align::Right),
        Column::new(format!("Amount ({})", money.code()), 9_400, Align::Right),
    ]);
    table.header(&mut doc);
    for (i, l) in inv.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        let cells = [
            line_no(l.line_no, i),
            l.description.clone(),
            SAC_DIAGNOSTIC_IMAGING.to_owned(),
            quantity(i64::from(l.quantity)),
            money.optional(&field("unit_price"), &l.unit_price)?,
            money.figures(&field("amount"), &l.amount)?,
        ];
        table.row(&mut doc, Font::Regular, &cells);
    }

    let mut totals = vec![Total::plain("Taxable value", money.figures("taxable_value", &inv.taxable_value)?)];
    totals.extend(taxes(&money, &inv.taxes)?);
    totals.push(Total::plain("Total tax", money.figures("tax_total", &inv.tax_total)?));
    totals.push(Total::strong(format!("Total ({})", money.code()), money.figures("total", &inv.total)?));
    totals_block(&mut doc, &totals);

    let mut notes = Vec::new();
    if money.code() != "INR" && !inv.taxable_value_inr.trim().is_empty() {
        let inr = format_amount(decimal("taxable_value_inr", &inv.taxable_value_inr)?, Currency::INR);
        notes.push(format!("Taxable value in INR: {inr}"));
    }
    in_words(&mut doc, "Total in words", &money.words("total", &inv.total)?);
    let endorsement = Some(inv.endorsement.trim()).filter(|e| !e.is_empty()).or(default_endorsement);
    if let Some(text) = endorsement {
        boxed(&mut doc, text);
    }
    notes.push(format!(
        "SAC {SAC_DIAGNOSTIC_IMAGING}: diagnostic imaging services (teleradiology reporting). Billable reports: {}.",
        inv.billable_reports
    ));
    notes.push("Tax is not payable on reverse charge.".to_owned());
    small_notes(&mut doc, &notes);
    signature(&mut doc, &supplier.name);

    Ok(doc.finish(&Meta {
        title: head,
        author: supplier.name.clone(),
        subject: format!("{title} to {name} for {}", period(&inv.period)),
        date: inv.issue_date.clone(),
        key: format!("invoice {}", inv.number),
    }))
}

// ---------------------------------------------------------------------------------------------
// Credit note

/// A credit note as a PDF: against its invoice, with its reason, lines, taxes and total.
pub fn credit_note_pdf(note: &CreditNote, supplier: &Supplier, recipient: &Party) -> Result<Vec<u8>, PdfError> {
    require_name(supplier)?;
    let money = Money::new(&note.currency)?;
    let export = note.tax_treatment.trim() == "EXPORT_LUT";
    let number = number(&note.number);
    let title = "CREDIT NOTE";
    let head = format!("{title} {number}");
    let mut doc = Layout::new(&head);
    let subtitle = vec![
        "Original for recipient".to_owned(),
        format!("Against invoice {}", or_dash(&note.corrects_invoice_number)),
    ];
    letterhead(&mut doc, supplier, opt(&supplier.gstin), &supplier.state_code, title, &subtitle);

    let name = first(&[&recipient.name, &note.client_id]);
    let gstin = opt(&recipient.gstin);
    let state_code = opt(&recipient.state_code);
    let party = recipient_lines(name, &note.client_id, "Client ID", recipient, gstin, state_code, export);
    let rows = vec![
        ("Credit note No.", number.clone()),
        ("Date", date(&note.issue_date)),
        ("Against invoice", or_dash(&note.corrects_invoice_number)),
        ("Billing period", period(&note.period)),
        ("Place of supply", place_of_supply(state_code, &recipient.country, export)),
        ("Reverse charge", "No".to_owned()),
        ("Currency", money.code().to_owned()),
    ];
    blocks(&mut doc, "Recipient", &party, &rows);
    if !note.reason.trim().is_empty() {
        doc.line(LEFT, Font::Bold, BODY, "Reason for the credit", Align::Left);
        doc.paragraph(LEFT, WIDTH, Font::Regular, BODY, note.reason.trim());
        doc.y -= GAP / 2;
    }

    let table = Table::new(vec![
        Column::new("#", 2_200, Align::Right),
        Column::new("Description", 0, Align::Left),
        Column::new("SAC", 4_200, Align::Left),
        Column::new("Qty", 3_800, Align::Right),
        Column::new(format!("Amount ({})", money.code()), 9_400, Align::Right),
    ]);
    table.header(&mut doc);
    for (i, l) in note.lines.iter().enumerate() {
        let cells = [
            line_no(l.line_no, i),
            l.description.clone(),
            SAC_DIAGNOSTIC_IMAGING.to_owned(),
            quantity(i64::from(l.quantity)),
            money.figures(&format!("lines[{i}].amount"), &l.amount)?,
        ];
        table.row(&mut doc, Font::Regular, &cells);
    }

    let mut totals = vec![Total::plain("Taxable value", money.figures("taxable_value", &note.taxable_value)?)];
    totals.extend(taxes(&money, &note.taxes)?);
    totals.push(Total::plain("Total tax", money.figures("tax_total", &note.tax_total)?));
    totals.push(Total::strong(format!("Total credit ({})", money.code()), money.figures("total", &note.total)?));
    totals_block(&mut doc, &totals);
    in_words(&mut doc, "Total credit in words", &money.words("total", &note.total)?);
    let mut notes = Vec::new();
    if money.code() != "INR" && !note.taxable_value_inr.trim().is_empty() {
        let inr = format_amount(decimal("taxable_value_inr", &note.taxable_value_inr)?, Currency::INR);
        notes.push(format!("Taxable value in INR: {inr}"));
    }
    notes.push(format!(
        "This note reduces the taxable value and tax of invoice {} (section 34 of the CGST Act, 2017).",
        or_dash(&note.corrects_invoice_number)
    ));
    small_notes(&mut doc, &notes);
    signature(&mut doc, &supplier.name);

    Ok(doc.finish(&Meta {
        title: head,
        author: supplier.name.clone(),
        subject: format!("{title} to {name} against {}", note.corrects_invoice_number),
        date: note.issue_date.clone(),
        key: format!("credit note {}", note.number),
    }))
}

// ---------------------------------------------------------------------------------------------
// Payout statement

/// A payout statement (or, for kind ADJUSTMENT, a payout adjustment naming the statement it
/// corrects) as a PDF: the provider's fees per modality, gross, TDS under section 194J and the
/// net payable.
pub fn payout_statement_pdf(s: &PayoutStatement, supplier: &Supplier, provider: &Party) -> Result<Vec<u8>, PdfError> {
    require_name(supplier)?;
    let money = Money::new(if s.currency.trim().is_empty() { "INR" } else { &s.currency })?;
    let adjustment = s.kind.trim() == "ADJUSTMENT";
    let title = if adjustment { "PAYOUT ADJUSTMENT" } else { "PAYOUT STATEMENT" };
    let number = number(&s.number);
    let head = format!("{title} {number}");
    let mut doc = Layout::new(&head);
    let mut subtitle = vec!["Fees for professional services".to_owned()];
    if adjustment {
        subtitle.push(format!("Corrects statement {}", or_dash(&s.corrects_statement_number)));
    }
    letterhead(&mut doc, supplier, opt(&supplier.gstin), &supplier.state_code, title, &subtitle);

    let name = first(&[&provider.name, &s.provider_name, &s.provider_id]);
    let mut party = vec![(Font::Bold, name.to_owned())];
    if name != s.provider_id && !s.provider_id.is_empty() {
        party.push((Font::Regular, format!("Provider ID: {}", s.provider_id)));
    }
    for l in provider.address.lines().filter(|l| !l.trim().is_empty()) {
        party.push((Font::Regular, l.trim().to_owned()));
    }
    if !provider.country.trim().is_empty() {
        party.push((Font::Regular, format!("Country: {}", provider.country.trim())));
    }
    party.push((Font::Regular, format!("PAN: {}", pan(s.pan_present, provider))));
    if let Some(gstin) = provider.gstin.as_deref().filter(|g| !g.trim().is_empty()) {
        party.push((Font::Regular, format!("GSTIN: {gstin}")));
    }
    let mut rows = vec![
        ("Statement No.", number.clone()),
        ("Date", date(&s.issue_date)),
        ("Period", period(&s.period)),
        ("Financial year", or_dash(&s.financial_year)),
        ("Reports", s.reports.to_string()),
        ("Currency", money.code().to_owned()),
    ];
    if adjustment {
        rows.push(("Corrects statement", or_dash(&s.corrects_statement_number)));
    }
    blocks(&mut doc, "Payee", &party, &rows);

    let table = Table::new(vec![
        Column::new("#", 2_200, Align::Right),
        Column::new("Description", 0, Align::Left),
        Column::new("Modality", 7_000, Align::Left),
        Column::new("Reports", 4_800, Align::Right),
        Column::new(format!("Amount ({})", money.code()), 9_400, Align::Right),
    ]);
    table.header(&mut doc);
    for (i, l) in s.lines.iter().enumerate() {
        let cells = [
            line_no(l.line_no, i),
            l.description.clone(),
            modality(l.modality),
            quantity(i64::from(l.quantity)),
            money.figures(&format!("lines[{i}].amount"), &l.amount)?,
        ];
        table.row(&mut doc, Font::Regular, &cells);
    }

    let section = first(&[&s.tds_section, "194J"]);
    let rate = first(&[&s.tds_rate_pct, "0"]);
    let totals = vec![
        Total::plain("Gross fees", money.figures("gross", &s.gross)?),
        Total::plain(format!("Less: TDS u/s {section} @ {rate}%"), money.figures("tds_amount", &s.tds_amount)?),
        Total::strong(format!("Net payable ({})", money.code()), money.figures("net_payable", &s.net_payable)?),
    ];
    totals_block(&mut doc, &totals);
    in_words(&mut doc, "Net payable in words", &money.words("net_payable", &s.net_payable)?);

    let tds_rows = vec![
        ("Section", format!("{section} of the Income-tax Act, 1961 (fees for professional services)")),
        ("Rate", format!("{rate}%{}", if s.pan_present { "" } else { " (no PAN: 20%, section 206AA)" })),
        ("Base", format!("{} {}", money.code(), money.figures("tds_base", &s.tds_base)?)),
        ("Tax deducted", format!("{} {}", money.code(), money.figures("tds_amount", &s.tds_amount)?)),
        ("PAN", pan(s.pan_present, provider)),
    ];
    doc.ensure(leading(BODY) * 8);
    doc.line(LEFT, Font::Bold, BODY, "Tax deducted at source", Align::Left);
    let top = doc.y;
    doc.y = details(&mut doc, LEFT, top, WIDTH, &tds_rows);
    let earlier = money.optional("fees_earlier_in_year", &s.fees_earlier_in_year)?;
    let fy = if s.financial_year.trim().is_empty() { String::new() } else { format!(" {}", s.financial_year.trim()) };
    doc.line(
        LEFT,
        Font::Regular,
        BODY,
        &format!("Fees earlier in the financial year{fy}: {} {earlier}", money.code()),
        Align::Left,
    );
    doc.y -= GAP / 2;
    small_notes(
        &mut doc,
        &["TDS is deducted once the payee's fees in the financial year exceed the threshold: the statement that \
             crosses it on the year's whole fees including its own, later statements on their own gross."
            .to_owned()],
    );
    signature(&mut doc, &supplier.name);

    Ok(doc.finish(&Meta {
        title: head,
        author: supplier.name.clone(),
        subject: format!("{title} to {name} for {}", period(&s.period)),
        date: s.issue_date.clone(),
        key: format!("payout statement {}", s.number),
    }))
}

// ---------------------------------------------------------------------------------------------
// Blocks shared by the documents

fn require_name(supplier: &Supplier) -> Result<(), PdfError> {
    if supplier.name.trim().is_empty() { Err(PdfError::SupplierName) } else { Ok(()) }
}

/// The top of the first page: the issuer on the left, the title and what qualifies it on the
/// right, then a rule.
fn letterhead(doc: &mut Layout, supplier: &Supplier, gstin: &str, state_code: &str, title: &str, subtitle: &[String]) {
    let top = doc.y;
    doc.text(RIGHT, top, Font::Bold, TITLE, BLACK, title, Align::Right);
    let mut right = top - leading(TITLE);
    for l in subtitle {
        doc.text(RIGHT, right, Font::Regular, BODY, MUTED, l, Align::Right);
        right -= leading(BODY);
    }

    let width = MID - LEFT - GAP;
    let mut left = top;
    for l in wrap(Font::Bold, NAME, supplier.name.trim(), width) {
        doc.text(LEFT, left, Font::Bold, NAME, BLACK, &l, Align::Left);
        left -= leading(NAME);
    }
    let mut lines = wrap(Font::Regular, BODY, supplier.address.trim(), width);
    lines.retain(|l| !l.is_empty());
    lines.push(format!("GSTIN: {}", or_dash(gstin)));
    if !state_code.trim().is_empty() {
        lines.push(format!("State: {}", state(state_code)));
    }
    if let Some(pan) = supplier.pan.as_deref().filter(|p| !p.trim().is_empty()) {
        lines.push(format!("PAN: {}", pan.trim()));
    }
    for l in &lines {
        doc.text(LEFT, left, Font::Regular, BODY, BLACK, l, Align::Left);
        left -= leading(BODY);
    }
    doc.y = left.min(right) - GAP / 2;
    doc.rule(LEFT, RIGHT, 80, BLACK);
    doc.y -= GAP;
}

/// The recipient's lines: name, id, address, country, GSTIN, state.
fn recipient_lines(
    name: &str,
    id: &str,
    id_label: &str,
    party: &Party,
    gstin: &str,
    state_code: &str,
    export: bool,
) -> Vec<(Font, String)> {
    let mut lines = vec![(Font::Bold, name.to_owned())];
    if name != id && !id.is_empty() {
        lines.push((Font::Regular, format!("{id_label}: {id}")));
    }
    for l in party.address.lines().filter(|l| !l.trim().is_empty()) {
        lines.push((Font::Regular, l.trim().to_owned()));
    }
    if !party.country.trim().is_empty() {
        lines.push((Font::Regular, format!("Country: {}", party.country.trim())));
    }
    if !gstin.is_empty() {
        lines.push((Font::Regular, format!("GSTIN: {gstin}")));
    } else if !export {
        lines.push((Font::Regular, "GSTIN: unregistered".to_owned()));
    }
    if !state_code.is_empty() {
        lines.push((Font::Regular, format!("State: {}", state(state_code))));
    }
    lines
}

/// A party on the left (under a heading), the document's details on the right.
fn blocks(doc: &mut Layout, heading: &str, party: &[(Font, String)], rows: &[(&str, String)]) {
    let top = doc.y;
    let width = MID - LEFT - GAP;
    doc.text(LEFT, top, Font::Bold, SMALL, MUTED, &heading.to_uppercase(), Align::Left);
    let mut left = top - leading(SMALL);
    for (font, text) in party {
        for l in wrap(*font, BODY, text, width) {
            doc.text(LEFT, left, *font, BODY, BLACK, &l, Align::Left);
            left -= leading(BODY);
        }
    }
    let right = details(doc, MID, top, RIGHT - MID, rows);
    doc.y = left.min(right) - GAP;
}

/// `label  value` rows from `top` down, values wrapped; returns the bottom.
fn details(doc: &mut Layout, x: i32, top: i32, width: i32, rows: &[(&str, String)]) -> i32 {
    let mut y = top;
    for (label, value) in rows {
        doc.text(x, y, Font::Regular, BODY, MUTED, label, Align::Left);
        for l in wrap(Font::Regular, BODY, value, width - LABEL) {
            doc.text(x + LABEL, y, Font::Regular, BODY, BLACK, &l, Align::Left);
            y -= leading(BODY);
        }
    }
    y
}

struct Total {
    label: String,
    value: String,
    strong: bool,
}

impl Total {
    fn plain(label: impl Into<String>, value: String) -> Self {
        Self { label: label.into(), value, strong: false }
    }

    fn strong(label: impl Into<String>, value: String) -> Self {
        Self { label: label.into(), value, strong: true }
    }
}

/// Each tax with its rate.
fn taxes(money: &Money, taxes: &[TaxLine]) -> Result<Vec<Total>, PdfError> {
    taxes
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let amount = money.figures(&format!("taxes[{i}].amount"), &t.amount)?;
            Ok(Total::plain(format!("{} @ {}%", t.kind, t.rate_pct), amount))
        })
        .collect()
}

/// The totals on the right, amounts aligned with the table's last column; kept on one page.
fn totals_block(doc: &mut Layout, totals: &[Total]) {
    let step = leading(BODY) + 200;
    let height = i32::try_from(totals.len()).unwrap_or(1) * step + GAP * 2;
    doc.ensure(height);
    doc.y -= GAP / 2;
    for t in totals {
        let font = if t.strong { Font::Bold } else { Font::Regular };
        if t.strong {
            doc.y -= 100;
            doc.rule(MID, RIGHT, 70, BLACK);
            doc.y -= 250;
        }
        let y = doc.y;
        doc.text(MID + PAD_X, y, font, BODY, BLACK, &t.label, Align::Left);
        doc.text(RIGHT - PAD_X, y, font, BODY, BLACK, &t.value, Align::Right);
        doc.y -= step;
    }
    doc.y -= GAP / 2;
}

fn in_words(doc: &mut Layout, label: &str, words: &str) {
    let lines = wrap(Font::Regular, BODY, words, WIDTH);
    doc.ensure(leading(BODY) * (i32::try_from(lines.len()).unwrap_or(1) + 1));
    doc.line(LEFT, Font::Bold, BODY, label, Align::Left);
    for l in &lines {
        doc.line(LEFT, Font::Regular, BODY, l, Align::Left);
    }
    doc.y -= GAP / 2;
}

/// Text in a frame across the page (an endorsement), kept on one page.
fn boxed(doc: &mut Layout, text: &str) {
    let inset = 700;
    let lines = wrap(Font::Bold, BODY, text, WIDTH - 2 * inset);
    let height = i32::try_from(lines.len()).unwrap_or(1) * leading(BODY) + 2 * inset - (leading(BODY) - BODY);
    doc.ensure(height + GAP);
    let top = doc.y;
    doc.rect(LEFT, top, WIDTH, height, BLACK, false);
    let mut y = top - inset;
    for l in &lines {
        doc.text(LEFT + inset, y, Font::Bold, BODY, BLACK, l, Align::Left);
        y -= leading(BODY);
    }
    doc.y = top - height - GAP / 2;
}

fn small_notes(doc: &mut Layout, notes: &[String]) {
    for n in notes {
        for l in wrap(Font::Regular, SMALL, n, WIDTH) {
            doc.ensure(leading(SMALL));
            let y = doc.y;
            doc.text(LEFT, y, Font::Regular, SMALL, MUTED, &l, Align::Left);
            doc.y -= leading(SMALL);
        }
    }
}

/// "For <supplier>", room to sign, "Authorised Signatory"; kept on one page.
fn signature(doc: &mut Layout, supplier: &str) {
    doc.ensure(6_000);
    doc.y -= GAP;
    let top = doc.y;
    doc.text(RIGHT, top, Font::Bold, BODY, BLACK, &format!("For {}", supplier.trim()), Align::Right);
    doc.y = top - 3_800;
    doc.rule(RIGHT - 17_000, RIGHT, 50, BLACK);
    doc.y -= 300;
    let y = doc.y;
    doc.text(RIGHT, y, Font::Regular, BODY, BLACK, "Authorised Signatory", Align::Right);
    doc.y -= leading(BODY);
}

// ---------------------------------------------------------------------------------------------
// Values

/// A document's currency, and its amounts in figures and words.
struct Money(Currency);

impl Money {
    fn new(code: &str) -> Result<Self, PdfError> {
        currency(code).map(Self)
    }

    fn code(&self) -> &'static str {
        self.0.code()
    }

    fn figures(&self, field: &str, text: &str) -> Result<String, PdfError> {
        Ok(format_amount(decimal(field, text)?, self.0))
    }

    /// An amount that may be absent (empty).
    fn optional(&self, field: &str, text: &str) -> Result<String, PdfError> {
        if text.trim().is_empty() { Ok(String::new()) } else { self.figures(field, text) }
    }

    fn words(&self, field: &str, text: &str) -> Result<String, PdfError> {
        amount_in_words(decimal(field, text)?, self.code())
    }
}

fn decimal(field: &str, text: &str) -> Result<Decimal, PdfError> {
    Decimal::from_str_exact(text.trim())
        .map_err(|_| PdfError::Amount { field: field.to_owned(), value: text.to_owned() })
}

/// The first of `values` that is not blank (trimmed), else "".
fn first<'a>(values: &[&'a str]) -> &'a str {
    values.iter().map(|v| v.trim()).find(|v| !v.is_empty()).unwrap_or("")
}

fn opt(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() { "-".to_owned() } else { text.trim().to_owned() }
}

/// A document's number, or what stands for it in a rerun preview.
fn number(n: &str) -> String {
    if n.trim().is_empty() { "DRAFT (not issued)".to_owned() } else { n.trim().to_owned() }
}

fn line_no(line_no: u32, index: usize) -> String {
    if line_no == 0 { (index + 1).to_string() } else { line_no.to_string() }
}

fn quantity(q: i64) -> String {
    if q == 0 { String::new() } else { q.to_string() }
}

fn modality(value: i32) -> String {
    Modality::try_from(value)
        .ok()
        .filter(|m| *m != Modality::Unspecified)
        .map(|m| m.as_str_name().trim_start_matches("MODALITY_").replace('_', "-"))
        .unwrap_or_default()
}

fn pan(present: bool, provider: &Party) -> String {
    match provider.pan.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(pan) if present => format!("{pan} (furnished)"),
        _ if present => "furnished".to_owned(),
        _ => "not furnished: TDS at 20%".to_owned(),
    }
}

fn place_of_supply(state_code: &str, country: &str, export: bool) -> String {
    if !state_code.trim().is_empty() {
        state(state_code)
    } else if export || !country.trim().is_empty() {
        match country.trim() {
            "" | "IN" => "Outside India".to_owned(),
            c => format!("Outside India ({c})"),
        }
    } else {
        "-".to_owned()
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn month_name(month: &str) -> Option<&'static str> {
    let m: usize = month.parse().ok()?;
    MONTHS.get(m.checked_sub(1)?).copied()
}

/// `2026-02-01` as `01 Feb 2026`; anything else as it is.
fn date(text: &str) -> String {
    let parts: Vec<&str> = text.trim().split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && d.len() == 2 => match month_name(m) {
            Some(name) => format!("{d} {} {y}", &name[..3]),
            None => text.to_owned(),
        },
        _ => or_dash(text),
    }
}

/// `2026-01` as `January 2026`; anything else as it is.
fn period(text: &str) -> String {
    match text.trim().split_once('-') {
        Some((y, m)) if y.len() == 4 => month_name(m).map_or_else(|| text.to_owned(), |name| format!("{name} {y}")),
        _ => or_dash(text),
    }
}

/// `Karnataka (29)`; an unknown code as it is.
fn state(code: &str) -> String {
    let code = code.trim();
    state_name(code).map_or_else(|| code.to_owned(), |name| format!("{name} ({code})"))
}

/// The name of a GST state code (the first two digits of a GSTIN), e.g. `29` → Karnataka.
pub fn state_name(code: &str) -> Option<&'static str> {
    let name = match code.trim() {
        "01" => "Jammu and Kashmir",
        "02" => "Himachal Pradesh",
        "03" => "Punjab",
        "04" => "Chandigarh",
        "05" => "Uttarakhand",
        "06" => "Haryana",
        "07" => "Delhi",
        "08" => "Rajasthan",
        "09" => "Uttar Pradesh",
        "10" => "Bihar",
        "11" => "Sikkim",
        "12" => "Arunachal Pradesh",
        "13" => "Nagaland",
        "14" => "Manipur",
        "15" => "Mizoram",
        "16" => "Tripura",
        "17" => "Meghalaya",
        "18" => "Assam",
        "19" => "West Bengal",
        "20" => "Jharkhand",
        "21" => "Odisha",
        "22" => "Chhattisgarh",
        "23" => "Madhya Pradesh",
        "24" => "Gujarat",
        "26" => "Dadra and Nagar Haveli and Daman and Diu",
        "27" => "Maharashtra",
        "29" => "Karnataka",
        "30" => "Goa",
        "31" => "Lakshadweep",
        "32" => "Kerala",
        "33" => "Tamil Nadu",
        "34" => "Puducherry",
        "35" => "Andaman and Nicobar Islands",
        "36" => "Telangana",
        "37" => "Andhra Pradesh",
        "38" => "Ladakh",
        "97" => "Other Territory",
        _ => return None,
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_periods_and_states() {
        assert_eq!(date("2026-02-01"), "01 Feb 2026");
        assert_eq!(date("2026-13-01"), "2026-13-01");
        assert_eq!(date(""), "-");
        assert_eq!(period("2026-01"), "January 2026");
        assert_eq!(period("2025-12"), "December 2025");
        assert_eq!(state("29"), "Karnataka (29)");
        assert_eq!(state("27"), "Maharashtra (27)");
        assert_eq!(state("XX"), "XX");
        assert_eq!(place_of_supply("", "US", true), "Outside India (US)");
        assert_eq!(place_of_supply("33", "IN", false), "Tamil Nadu (33)");
        assert_eq!(modality(Modality::PetCt as i32), "PET-CT");
        assert_eq!(modality(0), "");
    }

    #[test]
    fn an_unknown_treatment_or_a_bad_amount_is_refused() {
        let supplier = Supplier { name: "S".into(), state_code: "29".into(), ..Supplier::default() };
        let inv = Invoice { currency: "INR".into(), tax_treatment: "ZERO".into(), ..Invoice::default() };
        assert_eq!(invoice_pdf(&inv, &supplier, &Party::default()), Err(PdfError::TaxTreatment("ZERO".into())));
        let inv = Invoice {
            currency: "INR".into(),
            tax_treatment: "TAXABLE".into(),
            taxable_value: "12,00".into(),
            ..Invoice::default()
        };
        assert_eq!(
            invoice_pdf(&inv, &supplier, &Party::default()),
            Err(PdfError::Amount { field: "taxable_value".into(), value: "12,00".into() })
        );
        assert_eq!(invoice_pdf(&inv, &Supplier::default(), &Party::default()), Err(PdfError::SupplierName));
    }
}
