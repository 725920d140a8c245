//! From priced reports to ledger entries.

use radfin_bus::Delivery;
use radfin_db::Pool;
use radfin_db::ledger::{LedgerSide, NewLedgerEntry};
use radfin_domain::Currency;
use radfin_proto::PricedInRun;
use radfin_proto::pricing::v1::PricedReport;

/// Attempts of the append transaction on a serialization failure.
const TRANSACTION_ATTEMPTS: u32 = 3;

pub fn decode(d: &Delivery) -> Result<PricedInRun, String> {
    let msg: PricedReport = d.decode().map_err(|e| e.to_string())?;
    PricedInRun::try_from(&msg).map_err(|e| format!("invalid priced report: {e}"))
}

/// The two entries of a priced report.
pub fn entries_of(p: &PricedInRun) -> [NewLedgerEntry; 2] {
    let r = &p.report;
    let cogs = NewLedgerEntry {
        period: p.period,
        run_id: i64::try_from(p.run_id).unwrap_or(i64::MAX),
        report_id: r.report_id.clone(),
        revision: r.revision,
        side: LedgerSide::Cogs,
        client_id: r.client_id.clone(),
        provider_id: r.provider_id.clone(),
        modality: r.modality,
        grade: r.grade,
        status: r.status,
        currency: Currency::INR,
        amount: r.cogs,
        fx: None,
        amount_inr: r.cogs,
        rule_version: r.cogs_rule_version,
    };
    let revenue = NewLedgerEntry {
        side: LedgerSide::Revenue,
        currency: r.revenue.currency,
        amount: r.revenue.amount,
        fx: p.revenue_inr.rate.clone(),
        amount_inr: p.revenue_inr.amount_inr,
        rule_version: r.revenue_rule_version,
        ..cogs.clone()
    };
    [cogs, revenue]
}

/// Appends a batch's entries in one transaction; entries already present are left as they are.
pub async fn append(pool: &Pool, batch: Vec<PricedInRun>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let entries: Vec<NewLedgerEntry> = batch.iter().flat_map(entries_of).collect();
    let inserted = radfin_db::transaction_with_retry(pool, TRANSACTION_ATTEMPTS, async |conn| {
        radfin_db::ledger::insert_entries(conn, &entries).await
    })
    .await?;
    tracing::info!(
        priced = batch.len(),
        inserted,
        duplicates = entries.len() - inserted,
        elapsed_ms = started.elapsed().as_millis(),
        "ledger entries appended"
    );
    Ok(())
}
