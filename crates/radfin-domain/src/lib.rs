//! radfin's domain, without I/O: money and its one rounding rule, periods in the business time
//! zone, report events and parties, pricing rules, the pricing engine, FX, tax and margins.
//!
//! Every amount is a `rust_decimal::Decimal` with a [`Currency`]; nothing here touches a float.

pub mod allocation;
pub mod audit_chain;
pub mod catalog;
pub mod close;
pub mod fx;
pub mod ids;
pub mod limits;
pub mod live;
pub mod margin;
pub mod money;
pub mod party;
pub mod period;
pub mod pricing;
pub mod report;
pub mod rounding;
pub mod rules;
pub mod tax;

pub use catalog::Catalog;
pub use ids::{ClientId, ProviderId, ReportId};
pub use money::{Currency, Money};
pub use party::Grade;
pub use period::{BusinessCalendar, FinancialYear, Period};
pub use pricing::{PeriodPricing, PricedReport, PricingRun};
pub use report::{Modality, Priority, RawReport, ReportEvent, ReportStatus};
