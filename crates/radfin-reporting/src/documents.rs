//! The finance documents on the dashboard: the ledger's invoices, credit notes and payout
//! statements of the periods shown, and each one as PDF.
//!
//! The documents are the ledger's: they are read from it over gRPC with the dashboard user's own
//! token, so the ledger's roles decide what a user may see, and rendered by `radfin-pdf` with
//! the recipient's profile from pricing, exactly as `radfin invoices pdf` renders them (the same
//! document gives the same bytes).

use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::ledger::v1::{
    CreditNote, GetInvoiceRequest, GetPayoutStatementRequest, Invoice, ListCreditNotesRequest, ListInvoicesRequest,
    ListPayoutStatementsRequest, PayoutStatement,
};
use radfin_proto::pricing::v1::pricing_service_client::PricingServiceClient;
use radfin_proto::pricing::v1::{GetClientRequest, GetProviderRequest};
use radfin_service::telemetry::TracedChannel;
use radfin_service::tls::ClientTls;

use crate::panels::{Cell, Table};
use crate::query::{Range, ReportingError};

/// The columns of the documents table.
pub const COLUMNS: [&str; 9] =
    ["number", "kind", "party_id", "period", "issue_date", "currency", "total", "corrects", "pdf"];

/// What a document number says it is (its series: `INV/26-27/000001`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// `INV` and `SUP` (supplementary invoices).
    Invoice,
    /// `CRN`.
    CreditNote,
    /// `PAY`: payout statements and adjustments.
    Payout,
}

impl Series {
    pub fn of(number: &str) -> Option<Series> {
        match number.split('/').next()? {
            "INV" | "SUP" => Some(Series::Invoice),
            "CRN" => Some(Series::CreditNote),
            "PAY" => Some(Series::Payout),
            _ => None,
        }
    }
}

/// The ledger and pricing as the dashboard calls them.
#[derive(Clone)]
pub struct Documents {
    ledger: LedgerServiceClient<TracedChannel>,
    pricing: PricingServiceClient<TracedChannel>,
    supplier: radfin_pdf::Supplier,
}

/// A call with the caller's bearer token, if there is one.
fn call<T>(message: T, token: Option<&str>) -> Result<tonic::Request<T>, ReportingError> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ReportingError::invalid("token", "is not a valid bearer token"))?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

impl Documents {
    /// Clients of the ledger at `ledger_url` and pricing at `pricing_url`, connected on first use,
    /// over TLS as `tls` says for `https://` URLs.
    pub fn new(
        ledger_url: &str,
        pricing_url: &str,
        tls: &ClientTls,
        supplier: radfin_pdf::Supplier,
    ) -> anyhow::Result<Self> {
        // Each call carries the caller's trace context.
        let channel = |url: &str| -> anyhow::Result<TracedChannel> {
            Ok(radfin_service::telemetry::traced(tls.endpoint(url)?.connect_lazy()))
        };
        Ok(Self {
            ledger: LedgerServiceClient::new(channel(ledger_url)?),
            pricing: PricingServiceClient::new(channel(pricing_url)?),
            supplier,
        })
    }

    /// The documents of the periods in `range`: invoices, then credit notes, then payout
    /// statements, each by number.
    pub async fn table(&self, range: &Range, token: Option<&str>) -> Result<Table, ReportingError> {
        // One period is asked for as such; a range is every period, filtered here.
        let period = match (range.from, range.to) {
            (Some(f), Some(t)) if f == t => f.to_string(),
            _ => String::new(),
        };
        let mut ledger = self.ledger.clone();
        let invoices = ledger
            .list_invoices(call(ListInvoicesRequest { period: period.clone(), client_id: String::new() }, token)?)
            .await
            .map_err(ReportingError::Ledger)?
            .into_inner()
            .invoices;
        let notes = ledger
            .list_credit_notes(call(
                ListCreditNotesRequest { period: period.clone(), ..ListCreditNotesRequest::default() },
                token,
            )?)
            .await
            .map_err(ReportingError::Ledger)?
            .into_inner()
            .credit_notes;
        let statements = ledger
            .list_payout_statements(call(ListPayoutStatementsRequest { period, provider_id: String::new() }, token)?)
            .await
            .map_err(ReportingError::Ledger)?
            .into_inner()
            .statements;

        let mut rows: Vec<[String; 8]> = Vec::new();
        for i in invoices.iter().filter(|i| range.contains(&i.period)) {
            rows.push([
                i.number.clone(),
                i.kind.clone(),
                i.client_id.clone(),
                i.period.clone(),
                i.issue_date.clone(),
                i.currency.clone(),
                i.total.clone(),
                i.corrects_invoice_number.clone(),
            ]);
        }
        for n in notes.iter().filter(|n| range.contains(&n.period)) {
            rows.push([
                n.number.clone(),
                "CREDIT_NOTE".to_owned(),
                n.client_id.clone(),
                n.period.clone(),
                n.issue_date.clone(),
                n.currency.clone(),
                n.total.clone(),
                n.corrects_invoice_number.clone(),
            ]);
        }
        for s in statements.iter().filter(|s| range.contains(&s.period)) {
            rows.push([
                s.number.clone(),
                s.kind.clone(),
                s.provider_id.clone(),
                s.period.clone(),
                s.issue_date.clone(),
                if s.currency.is_empty() { "INR".to_owned() } else { s.currency.clone() },
                s.net_payable.clone(),
                s.corrects_statement_number.clone(),
            ]);
        }
        let order = |number: &str| match Series::of(number) {
            Some(Series::Invoice) => 0,
            Some(Series::CreditNote) => 1,
            Some(Series::Payout) | None => 2,
        };
        rows.sort_by(|a, b| order(&a[0]).cmp(&order(&b[0])).then_with(|| a[0].cmp(&b[0])));

        let mut table = Table::new(&COLUMNS);
        for [number, kind, party, period, date, currency, total, corrects] in rows {
            let pdf = format!("/documents/pdf?number={number}");
            table.rows.push(vec![
                Cell::Text(number),
                Cell::Text(kind),
                Cell::Text(party),
                Cell::Text(period),
                Cell::Text(date),
                Cell::Text(currency),
                Cell::Text(total),
                Cell::Text(corrects),
                Cell::Text(pdf),
            ]);
        }
        Ok(table)
    }

    /// The document `number` as PDF.
    pub async fn pdf(&self, number: &str, token: Option<&str>) -> Result<Vec<u8>, ReportingError> {
        let number = number.trim();
        let series = Series::of(number).ok_or_else(|| {
            ReportingError::invalid("number", format!("{number:?} is not a document number (INV/, SUP/, CRN/ or PAY/)"))
        })?;
        let mut ledger = self.ledger.clone();
        let rendered = match series {
            Series::Invoice => {
                let invoice: Invoice = ledger
                    .get_invoice(call(GetInvoiceRequest { number: number.to_owned() }, token)?)
                    .await
                    .map_err(ReportingError::Ledger)?
                    .into_inner()
                    .invoice
                    .ok_or_else(|| ReportingError::Internal(format!("the ledger returned no invoice for {number}")))?;
                let recipient = self.client(&invoice.client_id, &invoice.issue_date, token).await;
                radfin_pdf::invoice_pdf(&invoice, &self.supplier, &recipient)
            }
            Series::CreditNote => {
                // ListCreditNotes has no filter by number: the note is found among them all.
                let note: CreditNote = ledger
                    .list_credit_notes(call(ListCreditNotesRequest::default(), token)?)
                    .await
                    .map_err(ReportingError::Ledger)?
                    .into_inner()
                    .credit_notes
                    .into_iter()
                    .find(|n| n.number == number)
                    .ok_or_else(|| ReportingError::NotFound(format!("no credit note {number}")))?;
                let recipient = self.client(&note.client_id, &note.issue_date, token).await;
                radfin_pdf::credit_note_pdf(&note, &self.supplier, &recipient)
            }
            Series::Payout => {
                let statement: PayoutStatement = ledger
                    .get_payout_statement(call(GetPayoutStatementRequest { number: number.to_owned() }, token)?)
                    .await
                    .map_err(ReportingError::Ledger)?
                    .into_inner()
                    .statement
                    .ok_or_else(|| {
                        ReportingError::Internal(format!("the ledger returned no payout statement for {number}"))
                    })?;
                let provider = self.provider(&statement.provider_id, &statement.issue_date, token).await;
                radfin_pdf::payout_statement_pdf(&statement, &self.supplier, &provider)
            }
        };
        rendered.map_err(|e| ReportingError::Internal(format!("cannot render {number} as PDF: {e}")))
    }

    /// The client's profile from pricing; when pricing cannot say, the document's own details
    /// are printed (as the CLI does).
    async fn client(&self, client_id: &str, date: &str, token: Option<&str>) -> radfin_pdf::Party {
        let request = match call(GetClientRequest { client_id: client_id.to_owned() }, token) {
            Ok(r) => r,
            Err(_) => return radfin_pdf::Party::default(),
        };
        match self.pricing.clone().get_client(request).await {
            Ok(r) => radfin_pdf::client_party(&r.into_inner().clients, date),
            Err(status) => {
                tracing::warn!(client_id, %status, "no client profile from pricing; the document's own details are printed");
                radfin_pdf::Party::default()
            }
        }
    }

    async fn provider(&self, provider_id: &str, date: &str, token: Option<&str>) -> radfin_pdf::Party {
        let request = match call(GetProviderRequest { provider_id: provider_id.to_owned() }, token) {
            Ok(r) => r,
            Err(_) => return radfin_pdf::Party::default(),
        };
        match self.pricing.clone().get_provider(request).await {
            Ok(r) => radfin_pdf::provider_party(&r.into_inner().providers, date),
            Err(status) => {
                tracing::warn!(provider_id, %status, "no provider profile from pricing; the statement's own details are printed");
                radfin_pdf::Party::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_names_its_series() {
        assert_eq!(Series::of("INV/26-27/000001"), Some(Series::Invoice));
        assert_eq!(Series::of("SUP/26-27/000002"), Some(Series::Invoice));
        assert_eq!(Series::of("CRN/26-27/000003"), Some(Series::CreditNote));
        assert_eq!(Series::of("PAY/26-27/000004"), Some(Series::Payout));
        assert_eq!(Series::of("XYZ/1"), None);
        assert_eq!(Series::of(""), None);
    }
}
