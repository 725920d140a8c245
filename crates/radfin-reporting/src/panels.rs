//! The dashboard's tables: one [`Table`] per panel, served as JSON (`/api/<name>`) and as CSV
//! (`/api/<name>.csv`) from the same rows, so the CSV is exactly what the page shows. Money is
//! text (exact decimal strings), counts are numbers.

use std::collections::BTreeMap;

use radfin_db::held::HeldStatus;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::query::{Range, Reporting, ReportingError, SummaryQuery};
use crate::summary::{GroupBy, Line, Order, inr_text, pct_text};

/// Rows of a long table sent as JSON (the CSV has them all).
pub const JSON_ROWS: usize = 200;
/// Clients in each of the top and bottom tables unless asked otherwise.
pub const DEFAULT_RANKED: usize = 10;
/// Runs and sync runs listed unless asked otherwise.
pub const DEFAULT_RECENT: i64 = 20;
/// The most rows a `limit` may ask for.
pub const MAX_LIMIT: usize = 10_000;

/// Every table of the dashboard, by name.
pub const TABLES: [&str; 12] = [
    "trend",
    "clients",
    "modalities",
    "top-clients",
    "bottom-clients",
    "rerun-clients",
    "rerun-providers",
    "periods",
    "held-by-status",
    "held",
    "sync-runs",
    "runs",
];

/// One cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Codes, ids, periods, timestamps and exact money (decimal strings).
    Text(String),
    /// Free text someone typed (a reason, a name): guarded against spreadsheet formulas in CSV.
    Free(String),
    Count(i64),
}

impl Cell {
    fn json(&self) -> Value {
        match self {
            Cell::Text(s) | Cell::Free(s) => Value::String(s.clone()),
            Cell::Count(n) => json!(n),
        }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            // OWASP's advice against CSV injection: text that a spreadsheet would read as a
            // formula is prefixed with an apostrophe.
            Cell::Free(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
            Cell::Free(s) => s.clone(),
            Cell::Count(n) => n.to_string(),
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn inr(d: Decimal) -> Cell {
    Cell::Text(inr_text(d))
}

fn time(at: chrono::DateTime<chrono::Utc>) -> Cell {
    Cell::Text(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A table: named columns, rows of cells, and what else a panel needs (`meta`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    pub meta: Option<Value>,
}

impl Table {
    pub(crate) fn new(columns: &[&'static str]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new(), meta: None }
    }

    /// `{"columns": [...], "rows": [{column: value}], "total_rows": n, "meta": ...}`, at most
    /// `limit` rows.
    pub fn json(&self, limit: usize) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .take(limit)
            .map(|row| {
                Value::Object(self.columns.iter().zip(row).map(|(c, cell)| ((*c).to_owned(), cell.json())).collect())
            })
            .collect();
        json!({"columns": self.columns, "rows": rows, "total_rows": self.rows.len(), "meta": self.meta})
    }

    /// The header and every row, CSV-escaped (RFC 4180).
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns)?;
        for row in &self.rows {
            w.write_record(row.iter().map(Cell::csv))?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }
}

/// What a panel is asked for: a range of periods, a rerun, a number of rows.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub range: Range,
    pub run_id: Option<i64>,
    pub limit: Option<usize>,
}

const SUMMARY_COLUMNS: [&str; 5] = ["reports", "revenue_inr", "cogs_inr", "margin_inr", "margin_pct"];

fn summary_cells(l: &Line) -> Vec<Cell> {
    vec![
        Cell::Count(l.totals.reports),
        inr(l.totals.revenue_inr),
        inr(l.totals.cogs_inr),
        inr(l.totals.margin_inr),
        text(pct_text(l.totals.margin_pct())),
    ]
}

fn with_summary(first: &[&'static str]) -> Vec<&'static str> {
    first.iter().chain(SUMMARY_COLUMNS.iter()).copied().collect()
}

/// The table `name`, or `None` when there is no such table.
pub async fn table(reporting: &Reporting, name: &str, params: &Params) -> Result<Option<Table>, ReportingError> {
    let grouped = |group_by: GroupBy| SummaryQuery { range: params.range, group_by, ..SummaryQuery::default() };
    let table = match name {
        "trend" => {
            let s = reporting.summarize(&grouped(GroupBy { period: true, ..GroupBy::default() })).await?;
            let mut t = Table::new(&with_summary(&["period"]));
            for l in &s.lines {
                t.rows.push([vec![text(&l.key.period)], summary_cells(l)].concat());
            }
            let total = Line { totals: s.total, ..Line::default() };
            let cells = summary_cells(&total);
            t.meta = Some(Value::Object(
                SUMMARY_COLUMNS.iter().zip(&cells).map(|(c, cell)| ((*c).to_owned(), cell.json())).collect(),
            ));
            t
        }
        "clients" => {
            let mut s = reporting.summarize(&grouped(GroupBy { client: true, ..GroupBy::default() })).await?;
            // Largest revenue first (exact), then by id.
            s.lines.sort_by(|a, b| {
                b.totals.revenue_inr.cmp(&a.totals.revenue_inr).then_with(|| a.key.client_id.cmp(&b.key.client_id))
            });
            let mut t = Table::new(&with_summary(&["client_id"]));
            for l in &s.lines {
                t.rows.push([vec![text(&l.key.client_id)], summary_cells(l)].concat());
            }
            t
        }
        "modalities" => {
            let s = reporting.summarize(&grouped(GroupBy { modality: true, ..GroupBy::default() })).await?;
            let mut t = Table::new(&with_summary(&["modality"]));
            for l in &s.lines {
                t.rows.push([vec![text(&l.key.modality)], summary_cells(l)].concat());
            }
            t
        }
        "top-clients" | "bottom-clients" => {
            let order = if name == "top-clients" { Order::Top } else { Order::Bottom };
            let limit = params.limit.unwrap_or(DEFAULT_RANKED).min(MAX_LIMIT);
            let ranked = reporting.top_clients(params.range, limit, order).await?;
            let mut t = Table::new(&with_summary(&["rank", "client_id"]));
            for (i, l) in ranked.iter().enumerate() {
                t.rows.push([vec![Cell::Count(i as i64 + 1), text(&l.key.client_id)], summary_cells(l)].concat());
            }
            t
        }
        "rerun-clients" | "rerun-providers" => rerun_table(reporting, name, params).await?,
        "periods" => {
            let mut t = Table::new(&[
                "period",
                "state",
                "current_run_id",
                "current_run_kind",
                "close_run_id",
                "closed_at",
                "closed_by",
            ]);
            for s in reporting.period_states().await? {
                t.rows.push(vec![
                    text(s.period.to_string()),
                    text(if s.status.closed { "CLOSED" } else { "OPEN" }),
                    s.current_run.map_or(text(""), |(id, _)| Cell::Count(id)),
                    text(s.current_run.map_or("", |(_, kind)| kind.as_str())),
                    s.status.close_run_id.map_or(text(""), Cell::Count),
                    s.status.closed_at.map_or(text(""), time),
                    Cell::Free(s.status.closed_by.clone().unwrap_or_default()),
                ]);
            }
            t
        }
        "held-by-status" => {
            let mut counts: BTreeMap<HeldStatus, i64> = HeldStatus::ALL.iter().map(|s| (*s, 0)).collect();
            for h in reporting.held().await?.iter().filter(|h| params.range.contains(&h.period.to_string())) {
                *counts.entry(h.status).or_default() += 1;
            }
            let mut t = Table::new(&["status", "reports"]);
            for status in HeldStatus::ALL {
                t.rows.push(vec![text(status.as_str()), Cell::Count(counts[status])]);
            }
            t
        }
        "held" => {
            let mut t = Table::new(&[
                "period",
                "report_id",
                "revision",
                "client_id",
                "provider_id",
                "status",
                "reason",
                "held_at",
            ]);
            for h in reporting.held().await?.iter().filter(|h| params.range.contains(&h.period.to_string())) {
                t.rows.push(vec![
                    text(h.period.to_string()),
                    text(h.report_id.as_str()),
                    Cell::Count(i64::from(h.revision)),
                    text(h.client_id.as_str()),
                    text(h.provider_id.as_str()),
                    text(h.status.as_str()),
                    Cell::Free(h.reason.clone()),
                    time(h.held_at),
                ]);
            }
            t
        }
        "sync-runs" => {
            let limit = params.limit.map_or(DEFAULT_RECENT, |l| l.min(MAX_LIMIT) as i64);
            let mut t = Table::new(&[
                "id",
                "trigger",
                "source_table",
                "window_start",
                "window_end",
                "started_at",
                "duration_ms",
                "read",
                "new",
                "changed",
                "unchanged",
                "rejected",
                "outcome",
            ]);
            for s in reporting.sync_runs(limit).await? {
                let c = s.run.counts;
                let count = |n: u64| Cell::Count(i64::try_from(n).unwrap_or(i64::MAX));
                let outcome = match &s.run.outcome {
                    radfin_db::sync_runs::SyncOutcome::Succeeded => "SUCCEEDED".to_owned(),
                    radfin_db::sync_runs::SyncOutcome::Failed { error } => format!("FAILED: {error}"),
                };
                t.rows.push(vec![
                    Cell::Count(s.id),
                    text(s.run.trigger.as_str()),
                    Cell::Free(s.run.source_table.clone()),
                    time(s.run.window_start),
                    time(s.run.window_end),
                    time(s.run.started_at),
                    count(s.duration_ms),
                    count(c.read),
                    count(c.new),
                    count(c.changed),
                    count(c.unchanged),
                    count(c.rejected),
                    Cell::Free(outcome),
                ]);
            }
            t
        }
        "runs" => {
            let limit = params.limit.map_or(DEFAULT_RECENT, |l| l.min(MAX_LIMIT) as i64);
            let mut t = Table::new(&["run_id", "period", "kind", "rules_as_of", "reason", "created_by", "created_at"]);
            for r in reporting.runs(limit).await?.iter().filter(|r| params.range.contains(&r.period.to_string())) {
                t.rows.push(vec![
                    Cell::Count(r.run_id),
                    text(r.period.to_string()),
                    text(r.kind.as_str()),
                    r.rules_as_of.map_or(text(""), time),
                    Cell::Free(r.reason.clone().unwrap_or_default()),
                    Cell::Free(r.created_by.clone()),
                    time(r.created_at),
                ]);
            }
            t
        }
        _ => return Ok(None),
    };
    Ok(Some(table))
}

/// A rerun's effect per client (INR and contract currency) or per provider; an empty table
/// (with `meta` null) while no period has been rerun.
async fn rerun_table(reporting: &Reporting, name: &str, params: &Params) -> Result<Table, ReportingError> {
    let clients = name == "rerun-clients";
    let mut t = if clients {
        Table::new(&[
            "client_id",
            "currency",
            "billed_inr",
            "rerun_inr",
            "price_inr",
            "volume_inr",
            "fx_inr",
            "difference_inr",
            "billed",
            "rerun",
            "difference",
        ])
    } else {
        Table::new(&["provider_id", "paid_inr", "rerun_inr", "price_inr", "volume_inr", "difference_inr"])
    };
    let effect = match reporting.rerun_effect(params.run_id).await {
        Ok(e) => e,
        Err(ReportingError::NotFound(_)) if params.run_id.is_none() => return Ok(t),
        Err(e) => return Err(e),
    };
    let money = |d: Decimal, c: radfin_domain::Currency| text(radfin_proto::convert::amount_text(d.normalize(), c));
    if clients {
        // The largest differences (exact, in INR) first: what a chart of the first few shows.
        let mut sorted: Vec<&radfin_domain::close::ClientDifference> = effect.clients.iter().collect();
        sorted.sort_by(|a, b| {
            b.inr.difference().abs().cmp(&a.inr.difference().abs()).then_with(|| a.client_id.cmp(&b.client_id))
        });
        for c in sorted {
            t.rows.push(vec![
                text(c.client_id.as_str()),
                text(c.currency.code()),
                inr(c.billed_inr),
                inr(c.rerun_inr),
                inr(c.inr.price),
                inr(c.inr.volume),
                inr(c.inr.fx),
                inr(c.inr.difference()),
                money(c.billed, c.currency),
                money(c.rerun, c.currency),
                money(c.contract.difference(), c.currency),
            ]);
        }
    } else {
        for p in &effect.providers {
            t.rows.push(vec![
                text(p.provider_id.as_str()),
                inr(p.paid),
                inr(p.rerun),
                inr(p.effects.price),
                inr(p.effects.volume),
                inr(p.effects.difference()),
            ]);
        }
    }
    t.meta = Some(json!({
        "run_id": effect.run.run_id,
        "period": effect.run.period.to_string(),
        "compared_run_id": effect.compared_run_id,
        "applied": effect.applied,
        "created_by": effect.run.created_by,
        "created_at": effect.run.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reason": effect.run.reason,
    }));
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_escapes_and_guards_formulas_in_free_text_only() {
        let mut t = Table::new(&["client_id", "margin_inr", "reason"]);
        t.rows.push(vec![text("HOSP-1"), text("-12.50"), Cell::Free("=HYPERLINK(\"x\")".into())]);
        t.rows.push(vec![text("HOSP-2"), Cell::Count(3), Cell::Free("a, \"quoted\"\nline".into())]);
        let csv = String::from_utf8(t.csv().unwrap()).unwrap();
        assert_eq!(
            csv,
            "client_id,margin_inr,reason\nHOSP-1,-12.50,\"'=HYPERLINK(\"\"x\"\")\"\nHOSP-2,3,\"a, \"\"quoted\"\"\nline\"\n"
        );
    }

    #[test]
    fn json_rows_are_objects_by_column_with_counts_as_numbers() {
        let mut t = Table::new(&["status", "reports"]);
        t.rows.push(vec![text("AWAITING_FX"), Cell::Count(2)]);
        t.rows.push(vec![text("NO_RULE"), Cell::Count(0)]);
        let j = t.json(1);
        assert_eq!(j["rows"], json!([{"status": "AWAITING_FX", "reports": 2}]));
        assert_eq!(j["total_rows"], json!(2));
        assert_eq!(j["columns"], json!(["status", "reports"]));
    }
}
