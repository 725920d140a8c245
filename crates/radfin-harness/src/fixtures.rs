//! Small hand-written reference data and reports, shared by the end-to-end tests
//! (`tests/it`) and the fault suite ([`crate::faults`]): two radiologists, the spec's provider
//! rules, an INR and a USD client on graduated per-study tiers, a night MRI, and every kind of
//! bad report of spec §2.

use radfin_proto::common::v1::{Grade, Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::ReportEvent;
use radfin_proto::pricing::v1 as pricing;
use serde_json::json;

use crate::Stack;

/// The spec's provider rules (`samples/rules/provider.json`).
pub const PROVIDER_RULES: &str = include_str!("../../../samples/rules/provider.json");

/// A client's rule document: INR or USD, per study, graduated tiers 100/500/∞, STAT +20%.
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

/// A radiologist in force from 1 January 2025.
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

/// A client in force from 1 January 2025: in Karnataka when it is billed in INR, in the US
/// otherwise.
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
/// years), the spec's provider rules, and clients HOSP-INR and HOSP-USD, all in force from 2025.
pub async fn setup(stack: &Stack) -> anyhow::Result<()> {
    let mut p = stack.pricing_client().await?;
    p.put_provider(pricing::PutProviderRequest {
        provider: Some(provider("RAD-007", Grade::Consultant, "2014-01-01")),
    })
    .await?;
    p.put_provider(pricing::PutProviderRequest { provider: Some(provider("RAD-001", Grade::Senior, "2023-01-01")) })
        .await?;
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2025-01-01".into(),
        document: PROVIDER_RULES.into(),
    })
    .await?;
    for (id, currency) in [("HOSP-INR", "INR"), ("HOSP-USD", "USD")] {
        p.put_client(pricing::PutClientRequest { client: Some(client(id, currency)) }).await?;
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: id.into(),
            effective_from: "2025-01-01".into(),
            document: client_rules(id, currency),
        })
        .await?;
    }
    Ok(())
}

/// The parties and rules of [`setup`] (HOSP-INR only), in force since 2000, for months long past.
pub async fn setup_since_2000(stack: &Stack) -> anyhow::Result<()> {
    let mut p = stack.pricing_client().await?;
    for (id, grade) in [("RAD-007", Grade::Consultant), ("RAD-001", Grade::Senior)] {
        let provider = pricing::Provider {
            practicing_since: "1990-01-01".into(),
            effective_from: "2000-01-01".into(),
            ..provider(id, grade, "1990-01-01")
        };
        p.put_provider(pricing::PutProviderRequest { provider: Some(provider) }).await?;
    }
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2000-01-01".into(),
        document: PROVIDER_RULES.into(),
    })
    .await?;
    let client = pricing::Client { effective_from: "2000-01-01".into(), ..client("HOSP-INR", "INR") };
    p.put_client(pricing::PutClientRequest { client: Some(client) }).await?;
    p.put_client_rules(pricing::PutClientRulesRequest {
        client_id: "HOSP-INR".into(),
        effective_from: "2000-01-01".into(),
        document: client_rules("HOSP-INR", "INR"),
    })
    .await?;
    Ok(())
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

/// Every kind of bad input of spec §2, each a copy of `good` with one field broken, with the
/// field the refusal must name (`report.<field>: …`).
pub fn bad_reports(good: &ReportEvent) -> Vec<(&'static str, ReportEvent)> {
    let with = |f: &dyn Fn(&mut ReportEvent)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    vec![
        ("report_id", with(&|r| r.report_id = String::new())),
        ("report_id", with(&|r| r.report_id = "has space".into())),
        ("report_id", with(&|r| r.report_id = "x".repeat(65))),
        ("revision", with(&|r| r.revision = 0)),
        ("client_id", with(&|r| r.client_id = String::new())),
        ("provider_id", with(&|r| r.provider_id = "RAD/7".into())),
        ("modality", with(&|r| r.modality = Modality::Unspecified as i32)),
        ("modality", with(&|r| r.modality = 99)),
        ("body_regions", with(&|r| r.body_regions = 0)),
        ("body_regions", with(&|r| r.body_regions = 11)),
        ("priority", with(&|r| r.priority = Priority::Unspecified as i32)),
        ("finalized_at", with(&|r| r.finalized_at = "2026-10-10 18:00".into())),
        ("finalized_at", with(&|r| r.finalized_at = "2099-01-01T00:00:00Z".into())),
        ("status", with(&|r| r.status = ReportStatus::Unspecified as i32)),
    ]
}
