//! radfin's finance documents as PDF: the ledger's invoices (GST tax invoice, export invoice under
//! LUT, bill of supply, supplementary invoice), credit notes and payout statements (with TDS under
//! section 194J), rendered from their gRPC messages into A4 pages a finance team can send.
//!
//! The PDF is written with [`pdf_writer`] (the Typst project's PDF writer) in the PDF standard
//! Helvetica fonts, so no font file is embedded or needed; those fonts have no rupee sign, so
//! amounts say `INR` (and `Rs.` in running text). Layout is computed in whole hundredths of a
//! point (no float arithmetic), and the output is deterministic: the same document renders to
//! the same bytes (its date is the issue date, its file identifier derived from its number).
//!
//! What an invoice carries is what GST rule 46 (CGST Rules, 2017) asks of a tax invoice: the
//! supplier's name, address, GSTIN and state; the recipient's name, GSTIN when registered and
//! state; a consecutive number and the date; the SAC ([`SAC_DIAGNOSTIC_IMAGING`]) and description
//! of the services; the taxable value; each tax with its rate and amount; the total, in figures
//! and in words; the place of supply; whether tax is payable on reverse charge; and the supplier's
//! signature. An export invoice carries the LUT endorsement, a bill of supply its own.

mod documents;
mod fonts;
mod layout;
mod parties;
mod words;

pub use documents::{credit_note_pdf, invoice_pdf, payout_statement_pdf, state_name};
pub use parties::{client_party, provider_party};
pub use words::{amount_in_words, format_amount, indian_words, international_words};

/// The services' SAC (Services Accounting Code, the HSN classification of services used on GST
/// documents): heading 9993 "Human health and social care services", group 99931 "Human health
/// services", code 999316 "Diagnostic imaging services" — what teleradiology reporting is.
pub const SAC_DIAGNOSTIC_IMAGING: &str = "999316";

/// Who issues the documents: the platform (configuration, not ledger data).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Supplier {
    pub name: String,
    /// Postal address; lines separated by newlines (or one line, wrapped to fit).
    pub address: String,
    pub gstin: Option<String>,
    /// GST state code, e.g. `29` (Karnataka).
    pub state_code: String,
    /// Permanent Account Number (shown on payout statements: the deductor's).
    pub pan: Option<String>,
}

impl Supplier {
    /// A supplier from configuration text: names and codes trimmed, a literal `\n` in the
    /// address taken as a line break, empty optional fields left off.
    pub fn from_config(name: &str, address: &str, gstin: Option<&str>, state_code: &str, pan: Option<&str>) -> Self {
        let present = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Self {
            name: name.trim().to_owned(),
            address: address.replace("\\n", "\n"),
            gstin: present(gstin),
            state_code: state_code.trim().to_owned(),
            pan: present(pan),
        }
    }
}

/// The other party: an invoice's or credit note's recipient (a client), a payout statement's
/// payee (a provider). Empty fields are left off the document; what the document itself records
/// (an invoice's client GSTIN and place of supply) wins over what is given here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Party {
    /// Empty: the document's name for the party, else its id.
    pub name: String,
    /// Postal address; lines separated by newlines.
    pub address: String,
    /// ISO 3166-1 alpha-2, e.g. `IN`, `US`.
    pub country: String,
    pub gstin: Option<String>,
    /// GST state code of a party in India, e.g. `27`.
    pub state_code: Option<String>,
    /// A provider's PAN, printed on the payout statement when known.
    pub pan: Option<String>,
}

/// Why a document could not be rendered: something in it is not what the ledger sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("{field} {value:?} is not a decimal amount")]
    Amount { field: String, value: String },
    #[error("{0:?} is not a billing currency (ISO 4217 with minor units)")]
    Currency(String),
    #[error("{amount} has more decimals than the minor unit of {currency}")]
    Precision { amount: String, currency: &'static str },
    #[error("unknown tax treatment {0:?}: expected TAXABLE, EXPORT_LUT or EXEMPT")]
    TaxTreatment(String),
    #[error("the supplier's name is required on the document")]
    SupplierName,
}
