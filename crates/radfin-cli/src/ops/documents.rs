//! The documents of closed months: invoices, payout statements, credit notes, and a client's
//! account (its statement); each document also as a PDF (`pdf`), rendered here by `radfin-pdf`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use comfy_table::Table;
use radfin_proto::common::v1::Modality;
use radfin_proto::ledger::v1::{
    CreditNote, CreditNoteLine, GetClientStatementRequest, GetInvoiceRequest, GetPayoutStatementRequest, Invoice,
    IssueCreditNoteRequest, ListCreditNotesRequest, ListInvoicesRequest, ListPayoutStatementsRequest, PayoutStatement,
    TaxLine,
};
use radfin_proto::pricing::v1::{GetClientRequest, GetProviderRequest};

use super::json::modality;
use super::{CliError, Ctx, Rpc, exit, period_filter, positive_decimal, required};
use crate::table::{self, grouped, or_dash};

// ---------------------------------------------------------------------------------------------
// Tables shared with close and rerun

/// A number, or what stands for it in a rerun preview.
fn number(n: &str) -> String {
    if n.is_empty() { "(on apply)".to_owned() } else { n.to_owned() }
}

pub fn invoice_table(invoices: &[Invoice]) -> Table {
    let mut t = table::new(
        &[
            "Number",
            "Kind",
            "Client",
            "Period",
            "Issued",
            "Cur",
            "Reports",
            "Taxable value",
            "Tax",
            "Total",
            "Remaining",
        ],
        6,
    );
    for i in invoices {
        t.add_row(vec![
            number(&i.number),
            i.kind.clone(),
            i.client_id.clone(),
            i.period.clone(),
            or_dash(&i.issue_date),
            i.currency.clone(),
            i.billable_reports.to_string(),
            grouped(&i.taxable_value),
            grouped(&i.tax_total),
            grouped(&i.total),
            grouped(&i.remaining),
        ]);
    }
    t
}

pub fn statement_table(statements: &[PayoutStatement]) -> Table {
    let mut t = table::new(
        &["Number", "Kind", "Provider", "Period", "Issued", "Reports", "Gross INR", "TDS", "Net payable"],
        5,
    );
    for s in statements {
        t.add_row(vec![
            number(&s.number),
            s.kind.clone(),
            format!("{} {}", s.provider_id, s.provider_name).trim().to_owned(),
            s.period.clone(),
            or_dash(&s.issue_date),
            s.reports.to_string(),
            grouped(&s.gross),
            grouped(&s.tds_amount),
            grouped(&s.net_payable),
        ]);
    }
    t
}

pub fn credit_note_table(notes: &[CreditNote]) -> Table {
    let mut t = table::with_numeric(
        &["Number", "Client", "Period", "Corrects", "Issued", "Cur", "Taxable value", "Tax", "Total", "Reason"],
        &[6, 7, 8],
    );
    for n in notes {
        t.add_row(vec![
            number(&n.number),
            n.client_id.clone(),
            n.period.clone(),
            n.corrects_invoice_number.clone(),
            or_dash(&n.issue_date),
            n.currency.clone(),
            grouped(&n.taxable_value),
            grouped(&n.tax_total),
            grouped(&n.total),
            n.reason.clone(),
        ]);
    }
    t
}

/// `Key   value` lines, keys padded to one width; empty values are left out.
pub fn details(rows: &[(&str, String)]) -> String {
    let rows: Vec<&(&str, String)> = rows.iter().filter(|(_, v)| !v.is_empty()).collect();
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("  {k:<width$}  {v}")).collect::<Vec<_>>().join("\n")
}

fn totals(taxable_value: &str, taxes: &[TaxLine], tax_total: &str, total: &str, currency: &str) -> Table {
    let mut t = table::new(&["", currency], 1);
    t.add_row(vec!["Taxable value".to_owned(), grouped(taxable_value)]);
    for tax in taxes {
        t.add_row(vec![format!("{} {}%", tax.kind, tax.rate_pct), grouped(&tax.amount)]);
    }
    t.add_row(vec!["Tax".to_owned(), grouped(tax_total)]);
    t.add_row(vec!["Total".to_owned(), grouped(total)]);
    t
}

/// An invoice as `invoices show` prints it.
pub fn print_invoice(out: &mut dyn Write, i: &Invoice) -> io::Result<()> {
    let title = if i.kind == "SUPPLEMENTARY" { "SUPPLEMENTARY INVOICE" } else { "TAX INVOICE" };
    writeln!(out, "{title} {}", number(&i.number))?;
    let client = format!("{} {}", i.client_id, i.client_name).trim().to_owned();
    writeln!(
        out,
        "{}",
        details(&[
            ("Client", client),
            ("Client GSTIN", i.client_gstin.clone()),
            ("Place of supply", i.place_of_supply.clone()),
            ("Supplier GSTIN", i.supplier_gstin.clone()),
            ("Supplier state", i.supplier_state_code.clone()),
            ("Period", i.period.clone()),
            ("Issue date", format!("{} (FY {})", i.issue_date, i.financial_year)),
            ("Supplements", i.corrects_invoice_number.clone()),
            ("Run", i.run_id.to_string()),
            (
                "Client rules",
                if i.client_rule_version == 0 { String::new() } else { format!("v{}", i.client_rule_version) }
            ),
            ("Billable reports", i.billable_reports.to_string()),
            ("Tax treatment", i.tax_treatment.clone()),
        ])
    )?;
    let mut t = table::new(&["#", "Kind", "Description", "Modality", "Tier", "Qty", "Unit price", "Amount"], 4);
    if let Some(c) = t.column_mut(0) {
        c.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    for l in &i.lines {
        t.add_row(vec![
            l.line_no.to_string(),
            l.kind.clone(),
            l.description.clone(),
            modality(l.modality).unwrap_or("").to_owned(),
            if l.tier == 0 { String::new() } else { l.tier.to_string() },
            if l.quantity == 0 { String::new() } else { l.quantity.to_string() },
            grouped(&l.unit_price),
            grouped(&l.amount),
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(out, "{}", totals(&i.taxable_value, &i.taxes, &i.tax_total, &i.total, &i.currency))?;
    let mut notes = Vec::new();
    if !i.taxable_value_inr.is_empty() && i.currency != "INR" {
        notes.push(format!("Taxable value in INR: {}", grouped(&i.taxable_value_inr)));
    }
    if !i.credited.is_empty() {
        notes.push(format!(
            "Credited: {} {}; remaining creditable: {} {}",
            grouped(&i.credited),
            i.currency,
            grouped(&i.remaining),
            i.currency
        ));
    }
    if !i.endorsement.is_empty() {
        notes.push(i.endorsement.clone());
    }
    for n in notes {
        writeln!(out, "{n}")?;
    }
    Ok(())
}

/// A credit note as `credit-note` prints it.
pub fn print_credit_note(out: &mut dyn Write, n: &CreditNote) -> io::Result<()> {
    writeln!(out, "CREDIT NOTE {} against {}", number(&n.number), n.corrects_invoice_number)?;
    writeln!(
        out,
        "{}",
        details(&[
            ("Client", n.client_id.clone()),
            ("Period", n.period.clone()),
            ("Issue date", format!("{} (FY {})", n.issue_date, n.financial_year)),
            ("Issued by", if n.run_id == 0 { "hand".to_owned() } else { format!("rerun {}", n.run_id) }),
            ("Reason", n.reason.clone()),
            ("Created by", n.created_by.clone()),
            ("Tax treatment", n.tax_treatment.clone()),
        ])
    )?;
    let mut t = table::new(&["#", "Description", "Modality", "Qty", "Amount"], 3);
    if let Some(c) = t.column_mut(0) {
        c.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    for l in &n.lines {
        t.add_row(vec![
            l.line_no.to_string(),
            l.description.clone(),
            modality(l.modality).unwrap_or("").to_owned(),
            if l.quantity == 0 { String::new() } else { l.quantity.to_string() },
            grouped(&l.amount),
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(out, "{}", totals(&n.taxable_value, &n.taxes, &n.tax_total, &n.total, &n.currency))?;
    if !n.taxable_value_inr.is_empty() && n.currency != "INR" {
        writeln!(out, "Taxable value in INR: {}", grouped(&n.taxable_value_inr))?;
    }
    Ok(())
}

/// A payout statement as `statements show` prints it.
pub fn print_statement(out: &mut dyn Write, s: &PayoutStatement) -> io::Result<()> {
    let title = if s.kind == "ADJUSTMENT" { "PAYOUT ADJUSTMENT" } else { "PAYOUT STATEMENT" };
    writeln!(out, "{title} {}", number(&s.number))?;
    writeln!(
        out,
        "{}",
        details(&[
            ("Provider", format!("{} {}", s.provider_id, s.provider_name).trim().to_owned()),
            ("Period", s.period.clone()),
            ("Issue date", format!("{} (FY {})", s.issue_date, s.financial_year)),
            ("Corrects", s.corrects_statement_number.clone()),
            ("Run", s.run_id.to_string()),
            ("Reports", s.reports.to_string()),
        ])
    )?;
    let mut t = table::new(&["#", "Description", "Modality", "Qty", "Amount"], 3);
    if let Some(c) = t.column_mut(0) {
        c.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    for l in &s.lines {
        t.add_row(vec![
            l.line_no.to_string(),
            l.description.clone(),
            modality(l.modality).unwrap_or("").to_owned(),
            if l.quantity == 0 { String::new() } else { l.quantity.to_string() },
            grouped(&l.amount),
        ]);
    }
    writeln!(out, "{t}")?;
    let mut t = table::new(&["", &s.currency], 1);
    t.add_row(vec!["Gross fees".to_owned(), grouped(&s.gross)]);
    t.add_row(vec!["Fees earlier in the financial year".to_owned(), grouped(&s.fees_earlier_in_year)]);
    t.add_row(vec![
        format!(
            "TDS {} at {}%{} on {}",
            s.tds_section,
            s.tds_rate_pct,
            if s.pan_present { "" } else { " (no PAN)" },
            grouped(&s.tds_base)
        ),
        grouped(&s.tds_amount),
    ]);
    t.add_row(vec!["Net payable".to_owned(), grouped(&s.net_payable)]);
    writeln!(out, "{t}")
}

// ---------------------------------------------------------------------------------------------
// invoices

#[derive(clap::Subcommand, Debug)]
pub enum InvoicesCommand {
    /// Invoices and supplementary invoices, newest first.
    List {
        /// Only this period (YYYY-MM).
        #[arg(long)]
        period: Option<String>,
        /// Only this client.
        #[arg(long)]
        client: Option<String>,
    },
    /// One invoice with its lines, taxes and what remains creditable.
    Show {
        /// Its number, e.g. INV/25-26/000001.
        number: String,
    },
    /// One invoice as a PDF (tax invoice, export invoice under LUT, bill of supply or
    /// supplementary invoice), the recipient's details from pricing.
    Pdf(PdfArgs),
}

pub async fn invoices(ctx: &Ctx, cmd: InvoicesCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let mut ledger = ctx.ledger().await?;
    match cmd {
        InvoicesCommand::List { period, client } => {
            let response = ledger
                .list_invoices(ListInvoicesRequest {
                    period: period_filter(period.as_deref())?,
                    client_id: client.unwrap_or_default(),
                })
                .await
                .rpc(&ctx.ledger, "ListInvoices")?;
            ctx.emit(out, &response, |out| {
                if response.invoices.is_empty() {
                    return writeln!(out, "no invoices");
                }
                writeln!(out, "{}", invoice_table(&response.invoices))
            })
        }
        InvoicesCommand::Show { number } => {
            let invoice = ledger
                .get_invoice(GetInvoiceRequest { number: number.trim().to_owned() })
                .await
                .rpc(&ctx.ledger, "GetInvoice")
                .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin invoices list` lists the invoices"))?;
            let invoice = required(invoice.invoice, "GetInvoice", "invoice")?;
            ctx.emit(out, &invoice, |out| print_invoice(out, &invoice))
        }
        InvoicesCommand::Pdf(args) => {
            let invoice = ledger
                .get_invoice(GetInvoiceRequest { number: args.number.trim().to_owned() })
                .await
                .rpc(&ctx.ledger, "GetInvoice")
                .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin invoices list` lists the invoices"))?;
            let invoice = required(invoice.invoice, "GetInvoice", "invoice")?;
            let recipient = client_party(ctx, &invoice.client_id, &invoice.issue_date).await;
            let pdf = radfin_pdf::invoice_pdf(&invoice, &args.supplier.supplier(), &recipient)
                .map_err(|e| cannot_render(&invoice.number, &e))?;
            write_pdf(ctx, out, &invoice.number, args.out.as_deref(), &pdf)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// statements

#[derive(clap::Subcommand, Debug)]
pub enum StatementsCommand {
    /// Payout statements and adjustments, newest first.
    List {
        /// Only this period (YYYY-MM).
        #[arg(long)]
        period: Option<String>,
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
    },
    /// One payout statement with its lines and TDS.
    Show {
        /// Its number, e.g. PAY/25-26/000001.
        number: String,
    },
    /// One payout statement (or adjustment) as a PDF, the provider's details from pricing.
    Pdf(PdfArgs),
}

pub async fn statements(ctx: &Ctx, cmd: StatementsCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let mut ledger = ctx.ledger().await?;
    match cmd {
        StatementsCommand::List { period, provider } => {
            let response = ledger
                .list_payout_statements(ListPayoutStatementsRequest {
                    period: period_filter(period.as_deref())?,
                    provider_id: provider.unwrap_or_default(),
                })
                .await
                .rpc(&ctx.ledger, "ListPayoutStatements")?;
            ctx.emit(out, &response, |out| {
                if response.statements.is_empty() {
                    return writeln!(out, "no payout statements");
                }
                writeln!(out, "{}", statement_table(&response.statements))
            })
        }
        StatementsCommand::Show { number } => {
            let statement = ledger
                .get_payout_statement(GetPayoutStatementRequest { number: number.trim().to_owned() })
                .await
                .rpc(&ctx.ledger, "GetPayoutStatement")
                .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin statements list` lists the payout statements"))?;
            let statement = required(statement.statement, "GetPayoutStatement", "statement")?;
            ctx.emit(out, &statement, |out| print_statement(out, &statement))
        }
        StatementsCommand::Pdf(args) => {
            let statement = ledger
                .get_payout_statement(GetPayoutStatementRequest { number: args.number.trim().to_owned() })
                .await
                .rpc(&ctx.ledger, "GetPayoutStatement")
                .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin statements list` lists the payout statements"))?;
            let statement = required(statement.statement, "GetPayoutStatement", "statement")?;
            let provider = provider_party(ctx, &statement.provider_id, &statement.issue_date).await;
            let pdf = radfin_pdf::payout_statement_pdf(&statement, &args.supplier.supplier(), &provider)
                .map_err(|e| cannot_render(&statement.number, &e))?;
            write_pdf(ctx, out, &statement.number, args.out.as_deref(), &pdf)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// account

#[derive(clap::Args, Debug)]
pub struct AccountArgs {
    /// The client id, e.g. HOSP-001.
    pub client: String,
}

pub async fn account(ctx: &Ctx, args: &AccountArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let statement = ctx
        .ledger()
        .await?
        .get_client_statement(GetClientStatementRequest { client_id: args.client.trim().to_owned() })
        .await
        .rpc(&ctx.ledger, "GetClientStatement")
        .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin parties` lists the clients"))?;
    let statement = required(statement.statement, "GetClientStatement", "statement")?;
    ctx.emit(out, &statement, |out| {
        writeln!(out, "Account of {} (invoices − credit notes = total due)", statement.client_id)?;
        let mut t = table::new(&["Kind", "Number", "Period", "Issued", "Currency", "Amount", "Balance"], 5);
        for e in &statement.entries {
            t.add_row(vec![
                e.kind.clone(),
                e.number.clone(),
                e.period.clone(),
                e.issue_date.clone(),
                e.currency.clone(),
                grouped(&e.amount),
                grouped(&e.balance),
            ]);
        }
        writeln!(out, "{t}")?;
        let mut t = table::new(&["Currency", "Invoiced", "Credited", "Total due"], 1);
        for b in &statement.balances {
            t.add_row(vec![b.currency.clone(), grouped(&b.invoiced), grouped(&b.credited), grouped(&b.total_due)]);
        }
        writeln!(out, "{t}")
    })
}

// ---------------------------------------------------------------------------------------------
// credit notes

#[derive(clap::Args, Debug)]
pub struct CreditNoteArgs {
    /// The invoice credited, e.g. INV/25-26/000001.
    pub invoice: String,
    /// Why the client is credited (on the note and in the audit log).
    #[arg(long)]
    pub reason: String,
    /// The amount credited before tax, in the invoice's currency, a decimal such as 1250.00.
    #[arg(long, allow_negative_numbers = true)]
    pub amount: String,
    /// The line's description [default: the reason]
    #[arg(long)]
    pub description: Option<String>,
    /// The modality the credit concerns (XRAY, CT, MRI, USG, MAMMO, PET_CT, NM).
    #[arg(long)]
    pub modality: Option<String>,
    /// How many studies the credit concerns.
    #[arg(long, default_value_t = 0)]
    pub quantity: u32,
    /// An idempotency key (1–64 of A-Z a-z 0-9 . _ : -): the same key returns the note already
    /// issued instead of issuing another.
    #[arg(long)]
    pub request_id: Option<String>,
}

fn modality_arg(text: &str) -> Result<i32, CliError> {
    let name = format!("MODALITY_{}", text.trim().to_ascii_uppercase());
    Modality::from_str_name(&name).filter(|m| *m != Modality::Unspecified).map(|m| m as i32).ok_or_else(|| {
        CliError::invalid(format!("--modality {text:?}: must be one of XRAY, CT, MRI, USG, MAMMO, PET_CT, NM"))
    })
}

/// The request `credit-note` sends: one line.
pub fn credit_note_request(args: &CreditNoteArgs) -> Result<IssueCreditNoteRequest, CliError> {
    if args.reason.trim().is_empty() {
        return Err(CliError::invalid("--reason must say why the client is credited"));
    }
    Ok(IssueCreditNoteRequest {
        invoice_number: args.invoice.trim().to_owned(),
        reason: args.reason.clone(),
        lines: vec![CreditNoteLine {
            line_no: 1,
            description: args.description.clone().unwrap_or_else(|| args.reason.clone()),
            modality: args.modality.as_deref().map(modality_arg).transpose()?.unwrap_or(0),
            quantity: args.quantity,
            amount: positive_decimal("--amount", &args.amount)?,
        }],
        request_id: args.request_id.clone().unwrap_or_default(),
    })
}

pub async fn credit_note(ctx: &Ctx, args: &CreditNoteArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let request = credit_note_request(args)?;
    let note = ctx
        .ledger()
        .await?
        .issue_credit_note(request)
        .await
        .rpc(&ctx.ledger, "IssueCreditNote")
        .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin invoices list` lists the invoices"))?;
    let note = required(note.credit_note, "IssueCreditNote", "credit_note")?;
    ctx.emit(out, &note, |out| print_credit_note(out, &note))
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreditNotesArgs {
    #[command(subcommand)]
    pub command: Option<CreditNotesCommand>,
    /// Only this period (YYYY-MM).
    #[arg(long)]
    pub period: Option<String>,
    /// Only this client.
    #[arg(long)]
    pub client: Option<String>,
    /// Only notes against this invoice.
    #[arg(long)]
    pub invoice: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum CreditNotesCommand {
    /// One credit note as a PDF, found by its number among the notes listed (--invoice or
    /// --period narrow the search), the recipient's details from pricing.
    Pdf(CreditNotePdfArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreditNotePdfArgs {
    #[command(flatten)]
    pub pdf: PdfArgs,
    /// The invoice the note is against (narrows the search).
    #[arg(long)]
    pub invoice: Option<String>,
    /// The note's period, YYYY-MM (narrows the search).
    #[arg(long)]
    pub period: Option<String>,
}

pub async fn credit_notes(ctx: &Ctx, args: &CreditNotesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if let Some(CreditNotesCommand::Pdf(args)) = &args.command {
        return credit_note_pdf(ctx, args, out).await;
    }
    let response = ctx
        .ledger()
        .await?
        .list_credit_notes(ListCreditNotesRequest {
            period: period_filter(args.period.as_deref())?,
            client_id: args.client.clone().unwrap_or_default(),
            invoice_number: args.invoice.clone().unwrap_or_default(),
        })
        .await
        .rpc(&ctx.ledger, "ListCreditNotes")?;
    ctx.emit(out, &response, |out| {
        if response.credit_notes.is_empty() {
            return writeln!(out, "no credit notes");
        }
        writeln!(out, "{}", credit_note_table(&response.credit_notes))
    })
}

/// `credit-notes pdf`: ListCreditNotes has no filter by number, so the note is found among those
/// listed (narrowed by invoice and period when given).
async fn credit_note_pdf(ctx: &Ctx, args: &CreditNotePdfArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let number = args.pdf.number.trim();
    let response = ctx
        .ledger()
        .await?
        .list_credit_notes(ListCreditNotesRequest {
            period: period_filter(args.period.as_deref())?,
            client_id: String::new(),
            invoice_number: args.invoice.as_deref().map(str::trim).unwrap_or_default().to_owned(),
        })
        .await
        .rpc(&ctx.ledger, "ListCreditNotes")?;
    let note = response.credit_notes.into_iter().find(|n| n.number == number).ok_or_else(|| {
        CliError::new(exit::NOT_FOUND, format!("not found: credit note {number}"))
            .hint(exit::NOT_FOUND, "`radfin credit-notes` lists the credit notes")
    })?;
    let recipient = client_party(ctx, &note.client_id, &note.issue_date).await;
    let pdf = radfin_pdf::credit_note_pdf(&note, &args.pdf.supplier.supplier(), &recipient)
        .map_err(|e| cannot_render(&note.number, &e))?;
    write_pdf(ctx, out, &note.number, args.pdf.out.as_deref(), &pdf)
}

// ---------------------------------------------------------------------------------------------
// PDF

/// What every `pdf` command takes.
#[derive(clap::Args, Debug)]
pub struct PdfArgs {
    /// The document's number, e.g. INV/25-26/000001.
    pub number: String,
    /// The file to write [default: the number with `/` replaced by `_`, plus `.pdf`]
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub supplier: SupplierArgs,
}

/// Who issues the documents, as the ledger is configured (the GSTIN and state code the ledger
/// recorded on an invoice take precedence).
#[derive(clap::Args, Debug, Clone)]
pub struct SupplierArgs {
    /// The supplier's legal name.
    #[arg(long = "supplier-name", env = "RADFIN_SUPPLIER_NAME", default_value = "radfin", value_name = "NAME")]
    pub name: String,
    /// The supplier's address (newlines, or a literal `\n`, separate its lines).
    #[arg(long = "supplier-address", env = "RADFIN_SUPPLIER_ADDRESS", default_value = "", value_name = "TEXT")]
    pub address: String,
    #[arg(long = "supplier-gstin", env = "RADFIN_SUPPLIER_GSTIN", value_name = "GSTIN")]
    pub gstin: Option<String>,
    /// GST state code of the supplier.
    #[arg(long = "supplier-state-code", env = "RADFIN_SUPPLIER_STATE_CODE", default_value = "29", value_name = "CODE")]
    pub state_code: String,
    #[arg(long = "supplier-pan", env = "RADFIN_SUPPLIER_PAN", value_name = "PAN")]
    pub pan: Option<String>,
}

impl SupplierArgs {
    pub fn supplier(&self) -> radfin_pdf::Supplier {
        radfin_pdf::Supplier::from_config(
            &self.name,
            &self.address,
            self.gstin.as_deref(),
            &self.state_code,
            self.pan.as_deref(),
        )
    }
}

/// Where a document's PDF goes: `-o FILE`, else `<number with / replaced by _>.pdf` here.
pub fn pdf_path(number: &str, out: Option<&Path>) -> PathBuf {
    out.map_or_else(|| PathBuf::from(format!("{}.pdf", number.trim().replace('/', "_"))), Path::to_path_buf)
}

fn cannot_render(number: &str, e: &radfin_pdf::PdfError) -> CliError {
    CliError::other(format!("cannot render {number} as PDF: {e}"))
}

fn write_pdf(ctx: &Ctx, out: &mut dyn Write, number: &str, file: Option<&Path>, pdf: &[u8]) -> Result<(), CliError> {
    let path = pdf_path(number, file);
    std::fs::write(&path, pdf).map_err(|e| CliError::other(format!("cannot write {}: {e}", path.display())))?;
    let written = serde_json::json!({ "number": number, "file": path.display().to_string(), "bytes": pdf.len() });
    ctx.emit(out, &written, |out| writeln!(out, "{number}: {} ({} bytes)", path.display(), pdf.len()))
}

/// What the document alone cannot say about a party: pricing's profile, when pricing answers.
fn profile_unavailable(what: &str, id: &str, e: &CliError) {
    eprintln!("radfin: note: no {what} profile of {id} from pricing ({e}); the document's own details are printed");
}

/// A client's name, country, state and GSTIN from pricing (empty when pricing cannot say: the
/// document's own fields are printed then).
async fn client_party(ctx: &Ctx, client_id: &str, date: &str) -> radfin_pdf::Party {
    let request = GetClientRequest { client_id: client_id.to_owned() };
    let response = match ctx.pricing().await {
        Ok(mut pricing) => pricing.get_client(request).await.rpc(&ctx.pricing, "GetClient"),
        Err(e) => Err(e),
    };
    match response {
        Ok(r) => radfin_pdf::client_party(&r.clients, date),
        Err(e) => {
            profile_unavailable("client", client_id, &e);
            radfin_pdf::Party::default()
        }
    }
}

/// A provider's name and PAN from pricing (empty when pricing cannot say).
async fn provider_party(ctx: &Ctx, provider_id: &str, date: &str) -> radfin_pdf::Party {
    let request = GetProviderRequest { provider_id: provider_id.to_owned() };
    let response = match ctx.pricing().await {
        Ok(mut pricing) => pricing.get_provider(request).await.rpc(&ctx.pricing, "GetProvider"),
        Err(e) => Err(e),
    };
    match response {
        Ok(r) => radfin_pdf::provider_party(&r.providers, date),
        Err(e) => {
            profile_unavailable("provider", provider_id, &e);
            radfin_pdf::Party::default()
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod pdf_tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::Cli;
    use crate::ops::Command;

    fn ops(args: &[&str]) -> Command {
        match Cli::try_parse_from(std::iter::once("radfin").chain(args.iter().copied())) {
            Ok(Cli { command: crate::Command::Ops(c), .. }) => c,
            Ok(_) => panic!("{args:?} is not an operator command"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn pdf_subcommands_parse_with_an_optional_output_file() {
        let Command::Invoices(InvoicesCommand::Pdf(a)) = ops(&["invoices", "pdf", "INV/25-26/000001"]) else {
            panic!("not invoices pdf")
        };
        assert_eq!((a.number.as_str(), a.out.as_deref()), ("INV/25-26/000001", None));
        assert_eq!(pdf_path(&a.number, a.out.as_deref()), Path::new("INV_25-26_000001.pdf"));

        let Command::Statements(StatementsCommand::Pdf(a)) =
            ops(&["statements", "pdf", "PAY/25-26/000002", "-o", "/tmp/pay.pdf", "--output", "json"])
        else {
            panic!("not statements pdf")
        };
        assert_eq!(pdf_path(&a.number, a.out.as_deref()), Path::new("/tmp/pay.pdf"));

        let Command::CreditNotes(CreditNotesArgs { command: Some(CreditNotesCommand::Pdf(a)), .. }) =
            ops(&["credit-notes", "pdf", "CRN/25-26/000003", "--invoice", "INV/25-26/000001", "--out", "c.pdf"])
        else {
            panic!("not credit-notes pdf")
        };
        assert_eq!(a.pdf.number, "CRN/25-26/000003");
        assert_eq!(a.invoice.as_deref(), Some("INV/25-26/000001"));
        assert_eq!(a.pdf.out.as_deref(), Some(Path::new("c.pdf")));

        // Listing credit notes is unchanged.
        assert!(matches!(
            ops(&["credit-notes", "--client", "HOSP-001"]),
            Command::CreditNotes(CreditNotesArgs { command: None, client: Some(_), .. })
        ));
    }
}
