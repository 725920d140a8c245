//! Tax (spec §4.4): GST on client invoices, TDS under section 194J on provider payouts.
//! Tax is not revenue: margins exclude it.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::Currency;
use crate::report::named_enum;

named_enum!(
    /// How an invoice is taxed.
    TaxTreatment { Taxable = "TAXABLE", ExportLut = "EXPORT_LUT", Exempt = "EXEMPT" }
);
named_enum!(
    /// A GST component.
    TaxKind { Cgst = "CGST", Sgst = "SGST", Igst = "IGST" }
);

/// GST settings: the supplier's own state and the rates (percent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GstConfig {
    /// GST state code of the supplier (`29` is Karnataka).
    pub supplier_state_code: String,
    pub cgst_pct: Decimal,
    pub sgst_pct: Decimal,
    pub igst_pct: Decimal,
}

impl GstConfig {
    pub fn new(supplier_state_code: impl Into<String>) -> Self {
        Self {
            supplier_state_code: supplier_state_code.into(),
            cgst_pct: Decimal::from(9),
            sgst_pct: Decimal::from(9),
            igst_pct: Decimal::from(18),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaxLine {
    pub kind: TaxKind,
    pub rate_pct: Decimal,
    pub amount: Decimal,
}

/// The tax part of an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceTax {
    pub treatment: TaxTreatment,
    pub lines: Vec<TaxLine>,
    /// Text the document must carry (LUT endorsement, bill of supply).
    pub endorsement: Option<&'static str>,
}

pub const LUT_ENDORSEMENT: &str =
    "Supply meant for export under Letter of Undertaking without payment of integrated tax";
pub const BILL_OF_SUPPLY: &str = "Bill of supply: exempt supply, no tax charged";

impl InvoiceTax {
    pub fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.amount).sum()
    }
}

/// Tax on an invoice's taxable value; each component rounded separately to the currency.
pub fn invoice_tax(
    taxable_value: Decimal,
    currency: Currency,
    treatment: TaxTreatment,
    client_state_code: Option<&str>,
    gst: &GstConfig,
) -> InvoiceTax {
    let line = |kind, rate_pct: Decimal| TaxLine {
        kind,
        rate_pct,
        amount: currency.round(taxable_value * rate_pct / Decimal::ONE_HUNDRED),
    };
    let (lines, endorsement) = match treatment {
        TaxTreatment::Taxable if client_state_code == Some(gst.supplier_state_code.as_str()) => {
            (vec![line(TaxKind::Cgst, gst.cgst_pct), line(TaxKind::Sgst, gst.sgst_pct)], None)
        }
        TaxTreatment::Taxable => (vec![line(TaxKind::Igst, gst.igst_pct)], None),
        TaxTreatment::ExportLut => (Vec::new(), Some(LUT_ENDORSEMENT)),
        TaxTreatment::Exempt => (Vec::new(), Some(BILL_OF_SUPPLY)),
    };
    InvoiceTax { treatment, lines, endorsement }
}

/// TDS under section 194J on professional fees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdsConfig {
    /// Fees in a financial year above this are subject to TDS.
    pub threshold: Decimal,
    pub rate_pct: Decimal,
    pub rate_without_pan_pct: Decimal,
}

impl Default for TdsConfig {
    fn default() -> Self {
        Self { threshold: Decimal::from(50_000), rate_pct: Decimal::TEN, rate_without_pan_pct: Decimal::from(20) }
    }
}

impl TdsConfig {
    /// TDS on a payout statement of `gross` (INR), given the provider's fees earlier in the same
    /// financial year. The statement that takes the year past the threshold withholds on the
    /// year's whole cumulative fees, its own included; later ones on their own gross. A signed
    /// adjustment (negative gross) after the threshold gives back what was withheld on it.
    pub fn assess(&self, earlier_in_year: Decimal, gross: Decimal, has_pan: bool) -> TdsAssessment {
        let rate_pct = if has_pan { self.rate_pct } else { self.rate_without_pan_pct };
        let base = if earlier_in_year > self.threshold {
            gross
        } else if earlier_in_year + gross > self.threshold {
            earlier_in_year + gross
        } else {
            Decimal::ZERO
        };
        let amount = Currency::INR.round(base * rate_pct / Decimal::ONE_HUNDRED);
        TdsAssessment { rate_pct: if base.is_zero() { Decimal::ZERO } else { rate_pct }, base, amount }
    }

    /// The TDS amount of [`TdsConfig::assess`].
    pub fn withholding(&self, earlier_in_year: Decimal, gross: Decimal, has_pan: bool) -> Decimal {
        self.assess(earlier_in_year, gross, has_pan).amount
    }
}

/// TDS withheld on one statement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TdsAssessment {
    /// Zero when nothing is withheld.
    pub rate_pct: Decimal,
    pub base: Decimal,
    pub amount: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn gst_splits_within_the_suppliers_state() {
        let gst = GstConfig::new("29");
        let t = invoice_tax(dec!(1000.05), Currency::INR, TaxTreatment::Taxable, Some("29"), &gst);
        assert_eq!(
            t.lines.iter().map(|l| (l.kind, l.amount)).collect::<Vec<_>>(),
            [(TaxKind::Cgst, dec!(90.00)), (TaxKind::Sgst, dec!(90.00))]
        );
        let t = invoice_tax(dec!(1000.05), Currency::INR, TaxTreatment::Taxable, Some("27"), &gst);
        assert_eq!(t.lines.len(), 1);
        assert_eq!(t.total(), dec!(180.01));
        let t = invoice_tax(dec!(1000), Currency::USD, TaxTreatment::ExportLut, None, &gst);
        assert_eq!(t.total(), dec!(0));
        assert_eq!(t.endorsement, Some(LUT_ENDORSEMENT));
        assert_eq!(
            invoice_tax(dec!(5), Currency::INR, TaxTreatment::Exempt, None, &gst).endorsement,
            Some(BILL_OF_SUPPLY)
        );
    }

    #[test]
    fn tds_starts_on_the_statement_that_crosses_the_threshold() {
        let tds = TdsConfig::default();
        assert_eq!(tds.withholding(dec!(0), dec!(50000), true), dec!(0));
        assert_eq!(tds.withholding(dec!(30000), dec!(25000), true), dec!(5500.00));
        assert_eq!(tds.withholding(dec!(55000), dec!(1000.05), true), dec!(100.01));
        assert_eq!(tds.withholding(dec!(55000), dec!(1000), false), dec!(200));
    }
}
