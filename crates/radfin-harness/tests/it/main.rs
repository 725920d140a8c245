//! End to end: reports submitted over gRPC to ingest, priced by pricing, appended by the ledger,
//! with real PostgreSQL and NATS; each test on its own database and bus prefix.

mod close;
mod dashboard;
mod dead_letters;
mod fault_procs;
mod faults;
mod fx_feed;
mod live;
mod metrics;
mod outage;
mod pipeline;
mod reconcile;
mod reflection;
mod rejects;
mod reporting;
mod roles;

use std::time::{Duration, Instant};

use radfin_harness::Stack;
pub use radfin_harness::eventually;
use radfin_proto::common::v1::{Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::ReportEvent;
use radfin_proto::ledger::v1::{LedgerEntry, ListReportEntriesRequest};
use radfin_proto::pricing::v1 as pricing;
use serde_json::json;

pub use radfin_harness::fixtures::{PROVIDER_RULES, client, client_rules, night_mri, provider};

/// RAD-007 (CONSULTANT, 12 years in October 2026; MRI override 1100), RAD-001 (SENIOR, 3
/// years), the spec's provider rules, and clients HOSP-INR and HOSP-USD
/// ([`radfin_harness::fixtures::setup`]).
pub async fn setup(stack: &Stack) {
    radfin_harness::fixtures::setup(stack).await.unwrap();
}

pub async fn entries(stack: &Stack, report_id: &str) -> Vec<LedgerEntry> {
    let mut ledger = stack.ledger_client().await.unwrap();
    ledger
        .list_report_entries(ListReportEntriesRequest { report_id: report_id.into() })
        .await
        .unwrap()
        .into_inner()
        .entries
}

/// Waits until the ledger holds exactly `n` entries for the report.
pub async fn wait_entries(stack: &Stack, report_id: &str, n: usize) -> Vec<LedgerEntry> {
    eventually(&format!("{n} ledger entries of {report_id}"), || async {
        let e = entries(stack, report_id).await;
        (e.len() >= n).then_some(e)
    })
    .await
}
