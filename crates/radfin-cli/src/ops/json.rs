//! `--output json`: every response message as JSON, in one place.
//!
//! prost messages do not implement serde, so each message the CLI prints has a [`ToJson`] here,
//! written by [`messages!`] from the list of its fields. The macro destructures the message
//! exhaustively: a field added to a `.proto` file fails to compile here until it is listed.
//!
//! The shape: an object per message, field names as in the `.proto` file (snake_case, keys sorted),
//! every field present (empty strings and zeros included), nested
//! messages as objects (`null` when absent), repeated fields as arrays, integers as numbers,
//! money and rates as the decimal strings the service returned (never parsed), enumerations by
//! name without their prefix (`MODALITY_PET_CT` is `"PET_CT"`, unspecified is `null`). Audit
//! event `details` (a JSON object in a string) is embedded as JSON.

use std::collections::BTreeMap;

use radfin_proto::common::v1::{Grade, Modality};
use radfin_proto::ingest::v1::{
    DeadLetter, ListDeadLettersResponse, ListSyncRunsResponse, RedriveDeadLetterResponse, SyncOutcome, SyncRejectedRow,
    SyncRun, SyncTrigger,
};
use radfin_proto::ledger::v1::{
    AuditChainProblem, AuditEvent, ClientDifference, ClientStatement, ClientTotals, ClosePeriodResponse, CreditNote,
    CreditNoteLine, CurrencyBalance, Effects, FxRateUsed, Invoice, InvoiceLine, ListAuditEventsResponse,
    ListCreditNotesResponse, ListInvoicesResponse, ListPayoutStatementsResponse, ListPeriodsResponse, ListRunsResponse,
    PayoutLine, PayoutStatement, Period, PeriodState, ProviderDifference, RerunManifest, RerunMode,
    RerunPeriodResponse, RuleVersionsUsed, Run, StatementEntry, SummarizePeriodResponse, TaxLine,
    VerifyAuditLogResponse,
};
use radfin_proto::pricing::v1::{
    Client, FetchFxRatesResponse, FxRate, HeldReport, ListClientsResponse, ListFxRatesResponse,
    ListHeldReportsResponse, ListProvidersResponse, ListRuleVersionsResponse, Provider, PutFxRateResponse, RuleVersion,
};
use serde_json::{Map, Value};

use super::reference::{AllRuleVersions, FxPut, Parties, PartiesPut, RulesPut};
use super::reports::{Rejection, SubmitSummary};

/// A value printed by `--output json`.
pub trait ToJson {
    fn to_json(&self) -> Value;
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl ToJson for str {
    fn to_json(&self) -> Value {
        Value::from(self)
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
}

macro_rules! numbers {
    ($($t:ty),+) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
        }
    )+};
}

numbers!(u32, u64, i32, i64, usize);

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<V: ToJson> ToJson for BTreeMap<String, V> {
    fn to_json(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    }
}

impl ToJson for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }
}

/// An object of `(name, value)` pairs (serde_json keeps its keys sorted).
pub fn object(fields: Vec<(&str, Value)>) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())
}

// ---------------------------------------------------------------------------------------------
// Enumerations: the name without its prefix; None for UNSPECIFIED (and a number this build does
// not know). Tables use the same names.

macro_rules! enums {
    ($($f:ident, $json:ident: $ty:ident = $prefix:literal),+ $(,)?) => {$(
        pub fn $f(value: i32) -> Option<&'static str> {
            let name = $ty::try_from(value).ok()?.as_str_name();
            let short = name.strip_prefix($prefix).unwrap_or(name);
            (short != "UNSPECIFIED").then_some(short)
        }

        fn $json(value: &i32) -> Value {
            $f(*value).map_or(Value::Null, Value::from)
        }
    )+};
}

enums! {
    modality, modality_json: Modality = "MODALITY_",
    grade, grade_json: Grade = "GRADE_",
    sync_trigger, sync_trigger_json: SyncTrigger = "SYNC_TRIGGER_",
    sync_outcome, sync_outcome_json: SyncOutcome = "SYNC_OUTCOME_",
    period_state, period_state_json: PeriodState = "PERIOD_STATE_",
    rerun_mode, rerun_mode_json: RerunMode = "RERUN_MODE_",
}

/// A string holding JSON, embedded as JSON (kept as a string if it is not).
fn embedded(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

/// `Message { field, field: converter, … }`: the message as an object of its fields, each by
/// [`ToJson`] or by `converter(value)`.
macro_rules! messages {
    ($($ty:ident { $($field:ident $(: $conv:ident)?),* $(,)? })+) => {$(
        impl ToJson for $ty {
            fn to_json(&self) -> Value {
                let $ty { $($field),* } = self;
                object(vec![$((stringify!($field), messages!(@value $field $(, $conv)?))),*])
            }
        }
    )+};
    (@value $field:ident) => { ToJson::to_json($field) };
    (@value $field:ident, $conv:ident) => { $conv($field) };
}

messages! {
    // ingest
    SyncRejectedRow { row, report_id, revision, reasons }
    SyncRun {
        id, trigger: sync_trigger_json, source, source_table, window_start, window_end,
        started_at, finished_at, duration_ms, read, new, changed, unchanged, rejected, rejected_rows,
        outcome: sync_outcome_json, error,
    }
    ListSyncRunsResponse { runs }
    DeadLetter {
        seq, dead_lettered_at, original_subject, original_stream, original_sequence, consumer, reason, delivered,
        msg_id, payload_bytes,
    }
    ListDeadLettersResponse { dead_letters, next_after_seq }
    RedriveDeadLetterResponse { seq, subject, stream_sequence }

    // pricing
    Provider { provider_id, name, grade: grade_json, practicing_since, pan, effective_from }
    Client { client_id, name, country, state_code, gstin, currency, effective_from }
    ListProvidersResponse { providers }
    ListClientsResponse { clients }
    RuleVersion { version, effective_from, recorded_at, recorded_by, document }
    ListRuleVersionsResponse { versions }
    FxRate { rate_date, currency, inr_per_unit, source, fetched_at, in_effect }
    PutFxRateResponse { inserted }
    FetchFxRatesResponse { source, url, fetched, stored, earliest_rate_date, latest_rate_date }
    ListFxRatesResponse { rates }
    HeldReport { report_id, revision, client_id, provider_id, period, status, reason, held_at }
    ListHeldReportsResponse { reports }

    // ledger: periods and runs
    ClientTotals { client_id, reports, revenue_inr, cogs_inr, margin_inr, currency, revenue }
    SummarizePeriodResponse { clients, reports, revenue_inr, cogs_inr, margin_inr }
    Period {
        period, state: period_state_json, current_run_id, close_run_id, closed_at, closed_by,
        held_reports,
    }
    ListPeriodsResponse { periods }
    ClosePeriodResponse {
        period, closed_now, invoices, payout_statements, reports, revenue_inr, cogs_inr, margin_inr, held_reports,
    }
    Run { run_id, period, kind, rules_as_of, reason, created_by, created_at }
    ListRunsResponse { runs }

    // ledger: documents
    TaxLine { kind, rate_pct, amount }
    InvoiceLine {
        line_no, kind, description, modality: modality_json, tier, unit_price, quantity, amount,
    }
    Invoice {
        number, kind, client_id, client_name, period, run_id, issue_date, financial_year, currency,
        billable_reports, lines, taxable_value, tax_treatment, taxes, tax_total, total, endorsement,
        taxable_value_inr, client_gstin, place_of_supply, supplier_gstin, supplier_state_code,
        corrects_invoice_number, credited, remaining, client_rule_version,
    }
    ListInvoicesResponse { invoices }
    CreditNoteLine { line_no, description, modality: modality_json, quantity, amount }
    CreditNote {
        number, client_id, period, run_id, corrects_invoice_number, issue_date, financial_year, currency, lines,
        taxable_value, tax_treatment, taxes, tax_total, total, taxable_value_inr, reason, created_by,
    }
    ListCreditNotesResponse { credit_notes }
    PayoutLine { line_no, description, modality: modality_json, quantity, amount }
    PayoutStatement {
        number, kind, provider_id, provider_name, period, run_id, issue_date, financial_year, currency, reports,
        lines, gross, fees_earlier_in_year, pan_present, tds_section, tds_rate_pct, tds_base, tds_amount,
        net_payable, corrects_statement_number,
    }
    ListPayoutStatementsResponse { statements }
    StatementEntry { kind, number, period, issue_date, currency, amount, balance }
    CurrencyBalance { currency, invoiced, credited, total_due }
    ClientStatement { client_id, entries, balances }

    // ledger: reruns
    Effects { difference, price, volume, fx }
    ClientDifference { client_id, currency, billed, rerun, contract, billed_inr, rerun_inr, inr }
    ProviderDifference { provider_id, paid, rerun, effects }
    FxRateUsed { currency, rate_date, inr_per_unit, source }
    RuleVersionsUsed { client_id, versions }
    RerunManifest {
        run_id, period, compared_run_id, rules_as_of, rule_versions, fx_rates, report_set_hash, reports,
        replayed_messages, missing_from_stream, held_reports,
    }
    RerunPeriodResponse {
        manifest, mode: rerun_mode_json, applied, already_applied, clients, providers,
        credit_notes, invoices, payout_adjustments,
    }

    // ledger: audit
    AuditEvent { id, at, actor, role, action, target, reason, outcome, details: embedded }
    ListAuditEventsResponse { events }
    AuditChainProblem { seq, id, kind, message }
    VerifyAuditLogResponse { intact, rows_checked, last, problems, problems_omitted }

    // the CLI's own summaries
    Rejection { position, report_id, revision, reasons }
    SubmitSummary { file, reports, batches, accepted, unchanged, rejected, periods, rejections }
    Parties { providers, clients }
    PartiesPut { providers, clients }
    RulesPut { version, recorded_at }
    AllRuleVersions { provider, clients }
    FxPut { rates, inserted, unchanged }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn enumerations_are_named_without_their_prefix() {
        assert_eq!(modality(Modality::PetCt as i32), Some("PET_CT"));
        assert_eq!(modality(0), None);
        assert_eq!(modality(99), None);
        assert_eq!(period_state(PeriodState::Closed as i32), Some("CLOSED"));
        assert_eq!(rerun_mode(RerunMode::Preview as i32), Some("PREVIEW"));
        assert_eq!(grade(Grade::Consultant as i32), Some("CONSULTANT"));
    }

    #[test]
    fn an_invoice_is_an_object_of_its_fields_with_money_as_strings() {
        let invoice = Invoice {
            number: "INV/25-26/000001".to_owned(),
            kind: "INVOICE".to_owned(),
            client_id: "HOSP-001".to_owned(),
            currency: "USD".to_owned(),
            billable_reports: 2,
            lines: vec![
                InvoiceLine {
                    line_no: 1,
                    kind: "STUDIES".to_owned(),
                    modality: Modality::Mri as i32,
                    tier: 1,
                    unit_price: "55.00".to_owned(),
                    quantity: 2,
                    amount: "110.00".to_owned(),
                    ..InvoiceLine::default()
                },
                InvoiceLine {
                    line_no: 2,
                    kind: "RETAINER_FEE".to_owned(),
                    amount: "0.10".to_owned(),
                    ..InvoiceLine::default()
                },
            ],
            taxable_value: "110.10".to_owned(),
            taxes: vec![TaxLine { kind: "IGST".to_owned(), rate_pct: "18".to_owned(), amount: "19.82".to_owned() }],
            total: "129.92".to_owned(),
            ..Invoice::default()
        };
        let v = invoice.to_json();
        assert_eq!(v["number"], json!("INV/25-26/000001"));
        assert_eq!(v["billable_reports"], json!(2));
        assert_eq!(v["total"], json!("129.92"));
        assert_eq!(v["lines"][0]["modality"], json!("MRI"));
        assert_eq!(v["lines"][0]["unit_price"], json!("55.00"));
        assert_eq!(v["lines"][1]["modality"], Value::Null);
        assert_eq!(v["taxes"][0], json!({"kind": "IGST", "rate_pct": "18", "amount": "19.82"}));
        // Every field of the message.
        let keys: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys.len(), 26);
        assert!(keys.contains(&"client_rule_version") && keys.contains(&"corrects_invoice_number"));
        assert_eq!(v["corrects_invoice_number"], json!(""));
    }

    #[test]
    fn nested_messages_and_lists() {
        let response = RerunPeriodResponse {
            manifest: Some(RerunManifest {
                run_id: 7,
                period: "2026-01".to_owned(),
                replayed_messages: 120,
                missing_from_stream: 3,
                ..RerunManifest::default()
            }),
            mode: RerunMode::Preview as i32,
            clients: vec![ClientDifference {
                client_id: "HOSP-001".to_owned(),
                contract: Some(Effects {
                    difference: "-10.00".to_owned(),
                    price: "-10.00".to_owned(),
                    volume: "0.00".to_owned(),
                    fx: "0.00".to_owned(),
                }),
                ..ClientDifference::default()
            }],
            ..RerunPeriodResponse::default()
        };
        let v = response.to_json();
        assert_eq!(v["mode"], json!("PREVIEW"));
        assert_eq!(v["manifest"]["replayed_messages"], json!(120));
        assert_eq!(v["manifest"]["missing_from_stream"], json!(3));
        assert_eq!(v["clients"][0]["contract"]["difference"], json!("-10.00"));
        assert_eq!(v["clients"][0]["inr"], Value::Null);
        assert_eq!(v["credit_notes"], json!([]));
    }

    #[test]
    fn audit_details_are_embedded_and_held_reports_listed() {
        let event = AuditEvent {
            id: 1,
            action: "ClosePeriod".to_owned(),
            outcome: "DENIED".to_owned(),
            details: r#"{"period":"2026-01"}"#.to_owned(),
            ..AuditEvent::default()
        };
        assert_eq!(event.to_json()["details"], json!({"period": "2026-01"}));
        assert_eq!(AuditEvent::default().to_json()["details"], Value::Null);

        let held = ListHeldReportsResponse {
            reports: vec![HeldReport {
                report_id: "R-1".to_owned(),
                revision: 1,
                status: "UNKNOWN_PARTY".to_owned(),
                ..HeldReport::default()
            }],
        };
        let v = held.to_json();
        assert_eq!(v["reports"][0]["report_id"], json!("R-1"));
        assert_eq!(v["reports"][0]["revision"], json!(1));
        assert_eq!(v["reports"][0]["status"], json!("UNKNOWN_PARTY"));
    }

    #[test]
    fn a_sync_run_names_its_trigger_and_outcome() {
        let run = SyncRun {
            id: 4,
            trigger: SyncTrigger::OnDemand as i32,
            outcome: SyncOutcome::Succeeded as i32,
            read: 10,
            new: 9,
            rejected: 1,
            rejected_rows: vec![SyncRejectedRow {
                row: 3,
                report_id: "R-3".to_owned(),
                revision: "1".to_owned(),
                reasons: vec!["modality: must be one of XRAY, CT".to_owned()],
            }],
            ..SyncRun::default()
        };
        let v = run.to_json();
        assert_eq!(v["trigger"], json!("ON_DEMAND"));
        assert_eq!(v["outcome"], json!("SUCCEEDED"));
        assert_eq!(v["new"], json!(9));
        assert_eq!(v["rejected_rows"][0]["reasons"][0], json!("modality: must be one of XRAY, CT"));
    }
}
