//! The demo's month end (spec §6): the month closed (invoices, payout statements), a late report
//! held, a retroactive price change recorded now, the rerun previewed and applied (credit notes,
//! supplementary invoices, payout adjustments), and a client's statement. Run again, it issues
//! nothing new: every step is idempotent.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use radfin_domain::{Period, rounding};
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest};
use radfin_proto::ledger::v1 as ledger;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::pricing::v1 as pricing;
use radfin_proto::pricing::v1::pricing_service_client::PricingServiceClient;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::connect::AuthChannel;
use crate::samples::Samples;
use crate::table::{self, money};

/// The demo's repricing: this client's unit prices fall by 5%, that one's rise by 4%.
const CHEAPER: (&str, i64) = ("HOSP-002", -5);
const DEARER: (&str, i64) = ("HOSP-003", 4);
/// The client the late report is for.
const LATE_CLIENT: &str = "HOSP-001";

pub struct Clients {
    pub pricing: PricingServiceClient<AuthChannel>,
    pub ingest: IngestServiceClient<AuthChannel>,
    pub ledger: LedgerServiceClient<AuthChannel>,
}

pub async fn run(c: &mut Clients, samples: &Samples, period: Period, out: &mut impl Write) -> anyhow::Result<()> {
    // 1. Close.
    writeln!(out, "Month end: closing {period} (a final pricing pass, then invoices and payout statements)")?;
    let closed = c
        .ledger
        .close_period(ledger::ClosePeriodRequest {
            period: period.to_string(),
            reason: "month-end close (demo)".into(),
        })
        .await
        .context("closing the period")?
        .into_inner();
    if !closed.closed_now {
        let at = closed.period.as_ref().map(|p| p.closed_at.as_str()).unwrap_or_default();
        writeln!(out, "(already closed at {at}: its documents as they were issued)")?;
    }
    writeln!(
        out,
        "close run: {} reports, revenue {} INR, COGS {} INR, margin {} INR (equal to the live view)",
        closed.reports,
        table::grouped(&closed.revenue_inr),
        table::grouped(&closed.cogs_inr),
        table::grouped(&closed.margin_inr)
    )?;
    writeln!(out, "{}", invoices_table(&closed.invoices))?;
    writeln!(out, "{}\n", statements_table(&closed.payout_statements))?;

    // 2. A report for the closed month arrives late: stored and held, not booked.
    let late = late_report(samples, period)?;
    c.ingest.submit_batch(SubmitBatchRequest { reports: vec![late.clone()] }).await?;
    wait_held(&mut c.pricing, period, &late.report_id).await?;
    writeln!(
        out,
        "A late report for {period}: {} ({}) is stored and held as HELD_CLOSED_PERIOD; only a rerun applies it.\n",
        late.report_id, late.client_id
    )?;

    // 3. Prices renegotiated for the closed month, recorded now.
    for (client_id, pct) in [CHEAPER, DEARER] {
        let (_, file) = samples
            .rule_files
            .clients
            .iter()
            .rev()
            .find(|(id, _)| id.as_str() == client_id)
            .with_context(|| format!("the samples have no rules of {client_id}"))?;
        let document = scale_prices(&file.document, pct)?;
        let put = c
            .pricing
            .put_client_rules(pricing::PutClientRulesRequest {
                client_id: client_id.into(),
                effective_from: period.first_day().format("%Y-%m-%d").to_string(),
                document,
            })
            .await?
            .into_inner();
        writeln!(
            out,
            "Retroactive price change recorded now: {client_id} unit prices {pct:+}% from {} (rule version {})",
            period.first_day(),
            put.version
        )?;
    }

    // 4. The rerun, previewed.
    let request = |mode: ledger::RerunMode, run_id: u64| ledger::RerunPeriodRequest {
        period: period.to_string(),
        reason: "prices renegotiated for the month (demo)".into(),
        mode: mode as i32,
        run_id,
    };
    let started = Instant::now();
    let preview = c.ledger.rerun_period(request(ledger::RerunMode::Preview, 0)).await?.into_inner();
    let manifest = preview.manifest.clone().unwrap_or_default();
    writeln!(
        out,
        "\nRerun {} of {period} previewed in {:.1?}: {} reports repriced with the rules as of {} (report set {}…; {} messages replayed from JetStream, {} priced from the store the stream no longer had)",
        manifest.run_id,
        started.elapsed(),
        manifest.reports,
        manifest.rules_as_of,
        &manifest.report_set_hash[..12.min(manifest.report_set_hash.len())],
        manifest.replayed_messages,
        manifest.missing_from_stream
    )?;
    writeln!(out, "{}", differences_table(&preview.clients))?;
    let paid: Decimal = preview.providers.iter().filter_map(|p| p.effects.as_ref()).map(|e| dec(&e.difference)).sum();
    writeln!(
        out,
        "Payouts: {} radiologists' fees change by {} INR in all.\n",
        preview.providers.len(),
        table::inr(paid)
    )?;

    // 5. Applied exactly as previewed.
    let applied = c.ledger.rerun_period(request(ledger::RerunMode::Apply, manifest.run_id)).await?.into_inner();
    if applied.already_applied {
        writeln!(out, "(this rerun was applied before: nothing new is issued)")?;
    }
    writeln!(out, "Rerun {} applied: the period's current view; documents issued:", manifest.run_id)?;
    writeln!(out, "{}\n", corrections_table(&applied))?;

    // 6. A client's account.
    let client_id = CHEAPER.0;
    let account = c
        .ledger
        .get_client_statement(ledger::GetClientStatementRequest { client_id: client_id.into() })
        .await?
        .into_inner()
        .statement
        .context("GetClientStatement returned no statement")?;
    writeln!(out, "Statement of {client_id}: Σ invoices − Σ credit notes = total due")?;
    let mut t = table::with_numeric(&["Document", "Kind", "Period", "Issued", "Amount", "Balance"], &[4, 5]);
    for e in &account.entries {
        t.add_row(vec![
            e.number.clone(),
            e.kind.clone(),
            e.period.clone(),
            e.issue_date.clone(),
            money(&e.amount, &e.currency),
            money(&e.balance, &e.currency),
        ]);
    }
    for b in &account.balances {
        t.add_row(vec![
            "Total due".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            money(&b.total_due, &b.currency),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(())
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// A report of `LATE_CLIENT` dated on the period's last day, read by the first radiologist.
fn late_report(samples: &Samples, period: Period) -> anyhow::Result<ReportEvent> {
    let provider = samples.providers.first().context("the samples have no providers")?;
    Ok(ReportEvent {
        report_id: format!("DEMO-LATE-{period}"),
        revision: 1,
        client_id: LATE_CLIENT.into(),
        provider_id: provider.provider_id.to_string(),
        modality: radfin_proto::common::v1::Modality::Ct as i32,
        body_regions: 1,
        priority: radfin_proto::common::v1::Priority::Routine as i32,
        // Noon IST on the last day.
        finalized_at: format!("{}T06:30:00Z", period.last_day().format("%Y-%m-%d")),
        status: radfin_proto::common::v1::ReportStatus::Final as i32,
    })
}

async fn wait_held(
    pricing: &mut PricingServiceClient<AuthChannel>,
    period: Period,
    report_id: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = pricing
            .list_held_reports(pricing::ListHeldReportsRequest {
                status: "HELD_CLOSED_PERIOD".into(),
                period: period.to_string(),
            })
            .await?
            .into_inner();
        if held.reports.iter().any(|h| h.report_id == report_id) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{report_id} was not held within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The rule document with every unit price changed by `pct` percent, rounded half away from
/// zero to the cent.
fn scale_prices(document: &str, pct: i64) -> anyhow::Result<String> {
    let mut doc: Value = serde_json::from_str(document)?;
    let factor = Decimal::ONE + Decimal::new(pct, 2);
    if let Some(prices) = doc.get_mut("unit_prices").and_then(Value::as_object_mut) {
        for tiers in prices.values_mut().filter_map(Value::as_array_mut) {
            for p in tiers.iter_mut() {
                let price: Decimal = p.as_str().context("a unit price is not a string")?.parse()?;
                *p = Value::String(rounding::round_half_away(price * factor, 2).to_string());
            }
        }
    }
    Ok(serde_json::to_string_pretty(&doc)?)
}

fn invoices_table(invoices: &[ledger::Invoice]) -> comfy_table::Table {
    let mut t =
        table::with_numeric(&["Invoice", "Client", "Treatment", "Reports", "Taxable", "Tax", "Total"], &[3, 4, 5, 6]);
    for i in invoices {
        let taxes: Vec<String> = i.taxes.iter().map(|x| format!("{} {}", x.kind, table::grouped(&x.amount))).collect();
        t.add_row(vec![
            i.number.clone(),
            i.client_id.clone(),
            i.tax_treatment.clone(),
            i.billable_reports.to_string(),
            money(&i.taxable_value, &i.currency),
            if taxes.is_empty() { "—".into() } else { taxes.join(" + ") },
            money(&i.total, &i.currency),
        ]);
    }
    t
}

fn statements_table(statements: &[ledger::PayoutStatement]) -> comfy_table::Table {
    let mut t =
        table::with_numeric(&["Payout statement", "Radiologist", "Reports", "Gross", "TDS 194J", "Net"], &[2, 3, 4, 5]);
    for s in statements {
        t.add_row(vec![
            s.number.clone(),
            s.provider_id.clone(),
            s.reports.to_string(),
            money(&s.gross, "INR"),
            if dec(&s.tds_amount).is_zero() {
                "—".into()
            } else {
                format!("{} ({}%)", money(&s.tds_amount, "INR"), s.tds_rate_pct)
            },
            money(&s.net_payable, "INR"),
        ]);
    }
    t
}

fn differences_table(clients: &[ledger::ClientDifference]) -> comfy_table::Table {
    let mut t = table::with_numeric(
        &["Client", "Billed", "Rerun", "Difference", "Price (INR)", "Volume (INR)", "FX (INR)"],
        &[1, 2, 3, 4, 5, 6],
    );
    for d in clients {
        let inr = d.inr.clone().unwrap_or_default();
        let contract = d.contract.clone().unwrap_or_default();
        t.add_row(vec![
            d.client_id.clone(),
            money(&d.billed, &d.currency),
            money(&d.rerun, &d.currency),
            money(&contract.difference, &d.currency),
            table::grouped(&inr.price),
            table::grouped(&inr.volume),
            table::grouped(&inr.fx),
        ]);
    }
    t
}

fn corrections_table(r: &ledger::RerunPeriodResponse) -> comfy_table::Table {
    let mut t =
        table::with_numeric(&["Document", "Kind", "Party", "Corrects", "Taxable / gross", "Total / net"], &[4, 5]);
    for n in &r.credit_notes {
        t.add_row(vec![
            n.number.clone(),
            "CREDIT_NOTE".into(),
            n.client_id.clone(),
            n.corrects_invoice_number.clone(),
            money(&n.taxable_value, &n.currency),
            money(&n.total, &n.currency),
        ]);
    }
    for i in &r.invoices {
        t.add_row(vec![
            i.number.clone(),
            i.kind.clone(),
            i.client_id.clone(),
            table::or_dash(&i.corrects_invoice_number),
            money(&i.taxable_value, &i.currency),
            money(&i.total, &i.currency),
        ]);
    }
    for s in &r.payout_adjustments {
        t.add_row(vec![
            s.number.clone(),
            s.kind.clone(),
            s.provider_id.clone(),
            table::or_dash(&s.corrects_statement_number),
            money(&s.gross, "INR"),
            money(&s.net_payable, "INR"),
        ]);
    }
    t
}
