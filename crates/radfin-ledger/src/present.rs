//! Finance documents and rerun results as the ledger's gRPC messages. Amounts are decimal
//! strings with the currency's minor digits.

use chrono::SecondsFormat;
use radfin_db::documents::{CreditNoteDoc, InvoiceDoc, PeriodStatus, StatementDoc};
use radfin_domain::close::{ClientDifference, DocLine, Effects, InvoicePlan, PayoutPlan, ProviderDifference};
use radfin_domain::tax::{InvoiceTax, TaxKind};
use radfin_domain::{Currency, FinancialYear, Modality, Period};
use radfin_proto::common::v1 as common;
use radfin_proto::convert::amount_text;
use radfin_proto::ledger::v1 as pb;
use rust_decimal::Decimal;

use crate::finance::{Manifest, Rerun, Supplier};

/// An amount with its currency's minor digits; text of an unknown currency is the plain decimal.
pub(crate) fn money(amount: Decimal, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => amount_text(amount.normalize(), c),
        Err(_) => amount.normalize().to_string(),
    }
}

pub(crate) fn inr(amount: Decimal) -> String {
    money(amount, "INR")
}

fn pct(rate: Decimal) -> String {
    rate.normalize().to_string()
}

fn modality(m: Option<&str>) -> i32 {
    m.and_then(|m| m.parse::<Modality>().ok()).map_or(0, |m| common::Modality::from(m) as i32)
}

fn id(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn date(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn tax_lines(parts: [(&str, Option<Decimal>, Decimal); 3], currency: &str) -> Vec<pb::TaxLine> {
    parts
        .into_iter()
        .filter_map(|(kind, rate, amount)| {
            rate.map(|r| pb::TaxLine { kind: kind.to_owned(), rate_pct: pct(r), amount: money(amount, currency) })
        })
        .collect()
}

fn plan_tax_lines(tax: &InvoiceTax, currency: Currency) -> Vec<pb::TaxLine> {
    tax.lines
        .iter()
        .map(|l| pb::TaxLine {
            kind: match l.kind {
                TaxKind::Cgst => "CGST",
                TaxKind::Sgst => "SGST",
                TaxKind::Igst => "IGST",
            }
            .to_owned(),
            rate_pct: pct(l.rate_pct),
            amount: money(l.amount, currency.code()),
        })
        .collect()
}

pub fn period(status: &PeriodStatus, live_run: Option<i64>, held: u64) -> pb::Period {
    pb::Period {
        period: status.period.to_string(),
        state: if status.closed { pb::PeriodState::Closed } else { pb::PeriodState::Open } as i32,
        current_run_id: status.current_run_id.filter(|_| status.closed).or(live_run).map_or(0, id),
        close_run_id: status.close_run_id.map_or(0, id),
        closed_at: status.closed_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default(),
        closed_by: status.closed_by.clone().unwrap_or_default(),
        held_reports: held,
    }
}

pub fn invoice(d: &InvoiceDoc, supplier: &Supplier) -> pb::Invoice {
    let i = &d.invoice;
    let c = i.currency.as_str();
    pb::Invoice {
        number: i.invoice_number.clone(),
        kind: i.kind.clone(),
        client_id: i.client_id.clone(),
        client_name: String::new(),
        period: i.period.clone(),
        run_id: id(i.run_id),
        issue_date: date(i.issue_date),
        financial_year: i.financial_year.clone(),
        currency: i.currency.clone(),
        billable_reports: u32::try_from(i.billable_reports).unwrap_or_default(),
        lines: d
            .lines
            .iter()
            .map(|l| pb::InvoiceLine {
                line_no: u32::try_from(l.line_no).unwrap_or_default(),
                kind: l.kind.clone(),
                description: l.description.clone(),
                modality: modality(l.modality.as_deref()),
                tier: l.tier.and_then(|t| u32::try_from(t).ok()).unwrap_or_default(),
                unit_price: l.unit_price.map(|p| money(p, c)).unwrap_or_default(),
                quantity: u32::try_from(l.quantity).unwrap_or_default(),
                amount: money(l.amount, c),
            })
            .collect(),
        taxable_value: money(i.taxable_value, c),
        tax_treatment: i.tax_treatment.clone(),
        taxes: tax_lines(
            [
                ("CGST", i.cgst_rate_pct, i.cgst_amount),
                ("SGST", i.sgst_rate_pct, i.sgst_amount),
                ("IGST", i.igst_rate_pct, i.igst_amount),
            ],
            c,
        ),
        tax_total: money(i.tax_total, c),
        total: money(i.total, c),
        endorsement: i.endorsement.clone().unwrap_or_default(),
        taxable_value_inr: inr(i.taxable_value_inr),
        client_gstin: i.client_gstin.clone().unwrap_or_default(),
        place_of_supply: i.place_of_supply.clone().unwrap_or_default(),
        supplier_gstin: supplier.gstin.clone().unwrap_or_default(),
        supplier_state_code: supplier.gst.supplier_state_code.clone(),
        corrects_invoice_number: d.corrects_number.clone().unwrap_or_default(),
        credited: money(d.credited, c),
        remaining: money(d.remaining(), c),
        client_rule_version: i.client_rule_version.and_then(|v| u32::try_from(v).ok()).unwrap_or_default(),
    }
}

pub fn credit_note(d: &CreditNoteDoc) -> pb::CreditNote {
    let n = &d.note;
    let c = n.currency.as_str();
    pb::CreditNote {
        number: n.credit_note_number.clone(),
        client_id: n.client_id.clone(),
        period: n.period.clone(),
        run_id: n.run_id.map_or(0, id),
        corrects_invoice_number: d.invoice_number.clone(),
        issue_date: date(n.issue_date),
        financial_year: n.financial_year.clone(),
        currency: n.currency.clone(),
        lines: d
            .lines
            .iter()
            .map(|l| pb::CreditNoteLine {
                line_no: u32::try_from(l.line_no).unwrap_or_default(),
                description: l.description.clone(),
                modality: modality(l.modality.as_deref()),
                quantity: u32::try_from(l.quantity).unwrap_or_default(),
                amount: money(l.amount, c),
            })
            .collect(),
        taxable_value: money(n.taxable_value, c),
        tax_treatment: n.tax_treatment.clone(),
        taxes: tax_lines(
            [
                ("CGST", n.cgst_rate_pct, n.cgst_amount),
                ("SGST", n.sgst_rate_pct, n.sgst_amount),
                ("IGST", n.igst_rate_pct, n.igst_amount),
            ],
            c,
        ),
        tax_total: money(n.tax_total, c),
        total: money(n.total, c),
        taxable_value_inr: inr(n.taxable_value_inr),
        reason: n.reason.clone(),
        created_by: n.created_by.clone(),
    }
}

pub fn statement(d: &StatementDoc) -> pb::PayoutStatement {
    let s = &d.statement;
    pb::PayoutStatement {
        number: s.statement_number.clone(),
        kind: s.kind.clone(),
        provider_id: s.provider_id.clone(),
        provider_name: String::new(),
        period: s.period.clone(),
        run_id: id(s.run_id),
        issue_date: date(s.issue_date),
        financial_year: s.financial_year.clone(),
        currency: s.currency.clone(),
        reports: s.reports,
        lines: d
            .lines
            .iter()
            .map(|l| pb::PayoutLine {
                line_no: u32::try_from(l.line_no).unwrap_or_default(),
                description: l.description.clone(),
                modality: modality(l.modality.as_deref()),
                quantity: l.quantity,
                amount: inr(l.amount),
            })
            .collect(),
        gross: inr(s.gross),
        fees_earlier_in_year: inr(s.fees_earlier_in_year),
        pan_present: s.pan_present,
        tds_section: s.tds_section.clone(),
        tds_rate_pct: pct(s.tds_rate_pct),
        tds_base: inr(s.tds_base),
        tds_amount: inr(s.tds_amount),
        net_payable: inr(s.net_payable),
        corrects_statement_number: d.corrects_number.clone().unwrap_or_default(),
    }
}

fn doc_lines_invoice(lines: &[DocLine], currency: Currency) -> Vec<pb::InvoiceLine> {
    lines
        .iter()
        .enumerate()
        .map(|(n, l)| pb::InvoiceLine {
            line_no: u32::try_from(n + 1).unwrap_or_default(),
            kind: l.kind.to_owned(),
            description: l.description.clone(),
            modality: l.modality.map_or(0, |m| common::Modality::from(m) as i32),
            tier: l.tier.unwrap_or_default(),
            unit_price: l.unit_price.map(|p| money(p, currency.code())).unwrap_or_default(),
            quantity: u32::try_from(l.quantity).unwrap_or_default(),
            amount: money(l.amount, currency.code()),
        })
        .collect()
}

/// A planned (unnumbered) invoice of a rerun preview.
fn planned_invoice(
    plan: &InvoicePlan,
    kind: &str,
    corrects: Option<&str>,
    period: Period,
    run_id: i64,
    issue_date: chrono::NaiveDate,
    supplier: &Supplier,
) -> pb::Invoice {
    let c = plan.currency;
    pb::Invoice {
        number: String::new(),
        kind: kind.to_owned(),
        client_id: plan.client_id.to_string(),
        client_name: plan.client_name.clone(),
        period: period.to_string(),
        run_id: id(run_id),
        issue_date: date(issue_date),
        financial_year: FinancialYear::of(issue_date).to_string(),
        currency: c.code().to_owned(),
        billable_reports: plan.billable_reports,
        lines: doc_lines_invoice(&plan.lines, c),
        taxable_value: money(plan.taxable_value, c.code()),
        tax_treatment: plan.tax.treatment.as_str().to_owned(),
        taxes: plan_tax_lines(&plan.tax, c),
        tax_total: money(plan.tax.total(), c.code()),
        total: money(plan.total(), c.code()),
        endorsement: plan.tax.endorsement.unwrap_or_default().to_owned(),
        taxable_value_inr: inr(plan.taxable_value_inr),
        client_gstin: plan.client_gstin.clone().unwrap_or_default(),
        place_of_supply: plan.place_of_supply.clone().unwrap_or_default(),
        supplier_gstin: supplier.gstin.clone().unwrap_or_default(),
        supplier_state_code: supplier.gst.supplier_state_code.clone(),
        corrects_invoice_number: corrects.unwrap_or_default().to_owned(),
        credited: money(Decimal::ZERO, c.code()),
        remaining: money(plan.taxable_value, c.code()),
        client_rule_version: plan.contract_rule_version.unwrap_or_default(),
    }
}

fn planned_payout(
    plan: &PayoutPlan,
    corrects: Option<&str>,
    period: Period,
    run_id: i64,
    issue_date: chrono::NaiveDate,
) -> pb::PayoutStatement {
    pb::PayoutStatement {
        number: String::new(),
        kind: if corrects.is_some() { "ADJUSTMENT" } else { "STATEMENT" }.to_owned(),
        provider_id: plan.provider_id.to_string(),
        provider_name: plan.provider_name.clone(),
        period: period.to_string(),
        run_id: id(run_id),
        issue_date: date(issue_date),
        financial_year: FinancialYear::of(issue_date).to_string(),
        currency: "INR".to_owned(),
        reports: plan.reports,
        lines: plan
            .lines
            .iter()
            .enumerate()
            .map(|(n, l)| pb::PayoutLine {
                line_no: u32::try_from(n + 1).unwrap_or_default(),
                description: l.description.clone(),
                modality: l.modality.map_or(0, |m| common::Modality::from(m) as i32),
                quantity: l.quantity,
                amount: inr(l.amount),
            })
            .collect(),
        gross: inr(plan.gross),
        fees_earlier_in_year: inr(plan.earlier_in_year),
        pan_present: plan.pan_present,
        tds_section: "194J".to_owned(),
        tds_rate_pct: pct(plan.tds.rate_pct),
        tds_base: inr(plan.tds.base),
        tds_amount: inr(plan.tds.amount),
        net_payable: inr(plan.net()),
        corrects_statement_number: corrects.unwrap_or_default().to_owned(),
    }
}

fn effects(e: &Effects, currency: &str) -> pb::Effects {
    pb::Effects {
        difference: money(e.difference(), currency),
        price: money(e.price, currency),
        volume: money(e.volume, currency),
        fx: money(e.fx, currency),
    }
}

fn client_difference(d: &ClientDifference) -> pb::ClientDifference {
    let c = d.currency.code();
    pb::ClientDifference {
        client_id: d.client_id.to_string(),
        currency: c.to_owned(),
        billed: money(d.billed, c),
        rerun: money(d.rerun, c),
        contract: Some(effects(&d.contract, c)),
        billed_inr: inr(d.billed_inr),
        rerun_inr: inr(d.rerun_inr),
        inr: Some(effects(&d.inr, "INR")),
    }
}

fn provider_difference(d: &ProviderDifference) -> pb::ProviderDifference {
    pb::ProviderDifference {
        provider_id: d.provider_id.to_string(),
        paid: inr(d.paid),
        rerun: inr(d.rerun),
        effects: Some(effects(&d.effects, "INR")),
    }
}

fn manifest(m: &Manifest) -> pb::RerunManifest {
    pb::RerunManifest {
        run_id: id(m.run_id),
        period: m.period.clone(),
        compared_run_id: id(m.compared_run_id),
        rules_as_of: m.rules_as_of.to_rfc3339_opts(SecondsFormat::Micros, true),
        rule_versions: m
            .rule_versions
            .iter()
            .map(|(client_id, versions)| pb::RuleVersionsUsed {
                client_id: client_id.clone(),
                versions: versions.clone(),
            })
            .collect(),
        fx_rates: m
            .fx_rates
            .iter()
            .map(|(currency, rate_date, inr_per_unit, source)| pb::FxRateUsed {
                currency: currency.clone(),
                rate_date: rate_date.clone(),
                inr_per_unit: inr_per_unit.clone(),
                source: source.clone(),
            })
            .collect(),
        report_set_hash: m.report_set_hash.clone(),
        reports: m.reports,
        replayed_messages: m.replayed_messages,
        missing_from_stream: m.missing_from_stream,
        held_reports: m.held_reports,
    }
}

pub fn rerun(r: &Rerun, apply: bool, supplier: &Supplier, issue_date: chrono::NaiveDate) -> pb::RerunPeriodResponse {
    let period: Period = r.manifest.period.parse().unwrap_or_else(|_| Period::of_date(issue_date));
    let run_id = r.manifest.run_id;
    let (credit_notes, invoices, payout_adjustments) = if r.applied {
        (
            r.issued.credit_notes.iter().map(credit_note).collect(),
            r.issued.invoices.iter().map(|d| invoice(d, supplier)).collect(),
            r.issued.statements.iter().map(statement).collect(),
        )
    } else {
        (
            r.planned
                .credit_notes
                .iter()
                .map(|c| {
                    let code = c.currency.code();
                    pb::CreditNote {
                        number: String::new(),
                        client_id: c.client_id.to_string(),
                        period: period.to_string(),
                        run_id: id(run_id),
                        corrects_invoice_number: c.corrects_invoice_number.clone(),
                        issue_date: date(issue_date),
                        financial_year: FinancialYear::of(issue_date).to_string(),
                        currency: code.to_owned(),
                        lines: c
                            .lines
                            .iter()
                            .enumerate()
                            .map(|(n, l)| pb::CreditNoteLine {
                                line_no: u32::try_from(n + 1).unwrap_or_default(),
                                description: l.description.clone(),
                                modality: l.modality.map_or(0, |m| common::Modality::from(m) as i32),
                                quantity: u32::try_from(l.quantity).unwrap_or_default(),
                                amount: money(l.amount, code),
                            })
                            .collect(),
                        taxable_value: money(c.taxable_value, code),
                        tax_treatment: c.tax.treatment.as_str().to_owned(),
                        taxes: plan_tax_lines(&c.tax, c.currency),
                        tax_total: money(c.tax.total(), code),
                        total: money(c.taxable_value + c.tax.total(), code),
                        taxable_value_inr: inr(c.taxable_value_inr),
                        reason: format!("Rerun {run_id} of {period}: overcharge"),
                        created_by: String::new(),
                    }
                })
                .collect(),
            r.planned
                .invoices
                .iter()
                .map(|s| {
                    let kind = if s.corrects.is_some() { "SUPPLEMENTARY" } else { "INVOICE" };
                    let corrects = s.corrects.as_ref().map(|(_, n)| n.as_str());
                    planned_invoice(&s.invoice, kind, corrects, period, run_id, issue_date, supplier)
                })
                .collect(),
            r.planned
                .payouts
                .iter()
                .map(|p| {
                    planned_payout(&p.payout, p.corrects.as_ref().map(|(_, n)| n.as_str()), period, run_id, issue_date)
                })
                .collect(),
        )
    };
    pb::RerunPeriodResponse {
        manifest: Some(manifest(&r.manifest)),
        mode: if apply { pb::RerunMode::Apply } else { pb::RerunMode::Preview } as i32,
        applied: r.applied,
        already_applied: r.already_applied,
        clients: r.clients.iter().map(client_difference).collect(),
        providers: r.providers.iter().map(provider_difference).collect(),
        credit_notes,
        invoices,
        payout_adjustments,
    }
}
