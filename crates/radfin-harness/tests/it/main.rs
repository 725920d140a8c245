//! End to end: reports submitted over gRPC to ingest, priced by pricing, appended by the ledger,
//! with real PostgreSQL and NATS; each test on its own database and bus prefix.

mod close;
mod dashboard;
mod dead_letters;
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
use radfin_proto::common::v1::{Grade, Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::ReportEvent;
use radfin_proto::ledger::v1::{LedgerEntry, ListReportEntriesRequest};
use radfin_proto::pricing::v1 as pricing;
use serde_json::json;

const PROVIDER_RULES: &str = include_str!("../../../../samples/rules/provider.json");

/// A clients' rule document: INR or USD, per study, graduated tiers 100/500/∞.
pub fn client_rules(client_id: &str, currency: &str) -> String {
    let prices = if currency == "INR" {
        json!({"XRAY": ["500.00", "400.00", "300.00"], "MRI": ["4000.00", "3800.00", "3600.00"], "CT": ["2000.00", "1900.00", "1800.00"]})
    } else {
        json!({"XRAY": ["9.00", "8.00", "7.00"], "MRI": ["55.00", "50.00", "45.00"], "CT": ["40.00", "35.00", "30.00"]})
    };
    json!({
        "client_id": client_id,
        "currency": currency,
        "contract": {"type": "PER_STUDY"},
        "tier_mode": "GRADUATED",
        "tier_scope": "ALL_MODALITIES",
        "tiers": [{"up_to": 100}, {"up_to": 500}, {"up_to": null}],
        "unit_prices": prices,
        "uplift_pct": {"STAT": "20"},
        "tax": {"treatment": if currency == "INR" { "TAXABLE" } else { "EXPORT_LUT" }}
    })
    .to_string()
}

pub fn provider(id: &str, grade: Grade, since: &str) -> pricing::Provider {
    pricing::Provider {
        provider_id: id.into(),
        name: format!("Dr {id}"),
        grade: grade as i32,
        practicing_since: since.into(),
        pan: "ABCDE1234F".into(),
        effective_from: "2025-01-01".into(),
    }
}

pub fn client(id: &str, currency: &str) -> pricing::Client {
    pricing::Client {
        client_id: id.into(),
        name: format!("{id} Hospital"),
        country: if currency == "INR" { "IN" } else { "US" }.into(),
        state_code: if currency == "INR" { "29" } else { "" }.into(),
        gstin: String::new(),
        currency: currency.into(),
        effective_from: "2025-01-01".into(),
    }
}

/// RAD-007 (CONSULTANT, 12 years in October 2026; MRI override 1100), RAD-001 (SENIOR, 3
/// years), the spec's provider rules, and clients HOSP-INR and HOSP-USD.
pub async fn setup(stack: &Stack) {
    let mut p = stack.pricing_client().await.unwrap();
    p.put_provider(pricing::PutProviderRequest {
        provider: Some(provider("RAD-007", Grade::Consultant, "2014-01-01")),
    })
    .await
    .unwrap();
    p.put_provider(pricing::PutProviderRequest { provider: Some(provider("RAD-001", Grade::Senior, "2023-01-01")) })
        .await
        .unwrap();
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2025-01-01".into(),
        document: PROVIDER_RULES.into(),
    })
    .await
    .unwrap();
    for (id, currency) in [("HOSP-INR", "INR"), ("HOSP-USD", "USD")] {
        p.put_client(pricing::PutClientRequest { client: Some(client(id, currency)) }).await.unwrap();
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: id.into(),
            effective_from: "2025-01-01".into(),
            document: client_rules(id, currency),
        })
        .await
        .unwrap();
    }
}

/// An MRI, 2 regions, STAT, read by RAD-007 at 23:30 IST on 10 October 2026 (a night read).
pub fn night_mri(report_id: &str, client_id: &str) -> ReportEvent {
    ReportEvent {
        report_id: report_id.into(),
        revision: 1,
        client_id: client_id.into(),
        provider_id: "RAD-007".into(),
        modality: Modality::Mri as i32,
        body_regions: 2,
        priority: Priority::Stat as i32,
        finalized_at: "2026-10-10T18:00:00Z".into(),
        status: ReportStatus::Final as i32,
    }
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
