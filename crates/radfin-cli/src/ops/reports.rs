//! Reports in: `submit` (a file, in batches), `sync` (the source connector now, and its runs),
//! and `held` (what pricing cannot price yet).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use radfin_domain::RawReport;
use radfin_proto::ingest::v1::{
    ListSyncRunsRequest, ReportEvent, SubmitBatchRequest, SubmitOutcome, SubmitReportRequest, SyncNowRequest, SyncRun,
};
use radfin_proto::pricing::v1::ListHeldReportsRequest;
use serde_json::Value;
use tonic::Code;

use super::json::{sync_outcome, sync_trigger};
use super::{CliError, Ctx, Rpc, exit, period_filter, read_input, required, spinner};
use crate::table;

// ---------------------------------------------------------------------------------------------
// submit

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A JSON array of report objects.
    Json,
    /// One report object per line.
    Jsonl,
    /// Comma-separated, with a header naming the fields.
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// The reports: objects with the fields report_id, revision, client_id, provider_id, modality,
    /// body_regions, priority, finalized_at, status (enumerations by name, e.g. "MRI", "STAT",
    /// "FINAL"). `-` reads standard input.
    pub file: PathBuf,
    /// The file's format [default: from the extension (.json, .jsonl or .ndjson, .csv), else from
    /// its first character]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Reports per SubmitBatch call (a batch is stored atomically).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

/// One report of the file, as read.
#[derive(Debug)]
pub struct Row {
    /// Line number (JSON lines, CSV) or 1-based element (JSON array).
    pub position: usize,
    pub report: Result<RawReport, String>,
}

/// A report that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub position: u64,
    pub report_id: String,
    pub revision: u64,
    pub reasons: Vec<String>,
}

/// What `submit` did (printed as a table or JSON).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubmitSummary {
    pub file: String,
    pub reports: u64,
    pub batches: u64,
    /// Stored for the first time.
    pub accepted: u64,
    /// Already stored with identical content.
    pub unchanged: u64,
    pub rejected: u64,
    /// Stored or unchanged reports per billing period.
    pub periods: BTreeMap<String, u64>,
    pub rejections: Vec<Rejection>,
}

fn format_of(path: &Path, text: &str) -> Format {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Format::Csv,
        Some("jsonl" | "ndjson") => Format::Jsonl,
        Some("json") => Format::Json,
        _ => match text.trim_start().chars().next() {
            Some('[') => Format::Json,
            Some('{') => Format::Jsonl,
            _ => Format::Csv,
        },
    }
}

/// The rows of a file of reports. A malformed row is a row with its reason (rejected, the rest
/// goes on); a file that cannot be read at all is an error.
pub fn parse_reports(text: &str, format: Format) -> Result<Vec<Row>, CliError> {
    match format {
        Format::Json => {
            let items: Vec<Value> = serde_json::from_str(text)
                .map_err(|e| CliError::invalid(format!("not a JSON array of reports: {e}")))?;
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Row { position: i + 1, report: serde_json::from_value(v).map_err(|e| e.to_string()) })
                .collect())
        }
        Format::Jsonl => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| Row { position: i + 1, report: serde_json::from_str(line).map_err(|e| e.to_string()) })
            .collect()),
        Format::Csv => parse_csv(text),
    }
}

const FIELDS: [&str; 9] = [
    "report_id",
    "revision",
    "client_id",
    "provider_id",
    "modality",
    "body_regions",
    "priority",
    "finalized_at",
    "status",
];

/// Simple CSV: a header naming the §2 fields (any order), no quoted commas (no field can hold
/// one); surrounding quotes and spaces are trimmed.
fn parse_csv(text: &str) -> Result<Vec<Row>, CliError> {
    let cells =
        |line: &str| -> Vec<String> { line.split(',').map(|c| c.trim().trim_matches('"').to_owned()).collect() };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { return Ok(Vec::new()) };
    let header = cells(header.trim_start_matches('\u{feff}'));
    if let Some(unknown) = header.iter().find(|h| !FIELDS.contains(&h.as_str())) {
        return Err(CliError::invalid(format!(
            "CSV header: unknown column {unknown:?} (the columns are {})",
            FIELDS.join(", ")
        )));
    }
    if let Some(missing) = FIELDS.iter().find(|f| !header.iter().any(|h| h == *f)) {
        return Err(CliError::invalid(format!(
            "CSV header: no column {missing:?} (the columns are {})",
            FIELDS.join(", ")
        )));
    }
    Ok(lines
        .map(|(i, line)| {
            let values = cells(line);
            let report = if values.len() == header.len() {
                csv_report(&header, &values)
            } else {
                Err(format!("{} cells, the header has {}", values.len(), header.len()))
            };
            Row { position: i + 1, report }
        })
        .collect())
}

fn csv_report(header: &[String], values: &[String]) -> Result<RawReport, String> {
    let mut r = RawReport::default();
    for (name, value) in header.iter().zip(values) {
        let number = |field: &str| value.parse::<u64>().map_err(|_| format!("{field}: not a whole number: {value:?}"));
        match name.as_str() {
            "report_id" => r.report_id.clone_from(value),
            "revision" => r.revision = number("revision")?,
            "client_id" => r.client_id.clone_from(value),
            "provider_id" => r.provider_id.clone_from(value),
            "modality" => r.modality.clone_from(value),
            "body_regions" => r.body_regions = number("body_regions")?,
            "priority" => r.priority.clone_from(value),
            "finalized_at" => r.finalized_at.clone_from(value),
            _ => r.status.clone_from(value),
        }
    }
    Ok(r)
}

/// Validates each row (the domain's rules, the same ingest applies); invalid rows are rejected
/// here with every reason, so one bad report does not refuse its whole batch.
fn validate(rows: Vec<Row>, now: chrono::DateTime<chrono::Utc>) -> (Vec<(u64, ReportEvent)>, Vec<Rejection>) {
    let mut valid = Vec::with_capacity(rows.len());
    let mut rejected = Vec::new();
    for row in rows {
        let position = row.position as u64;
        match row.report {
            Ok(raw) => match raw.validate(now) {
                Ok(event) => valid.push((position, ReportEvent::from(&event))),
                Err(errors) => rejected.push(Rejection {
                    position,
                    report_id: raw.report_id,
                    revision: raw.revision,
                    reasons: errors.0.iter().map(ToString::to_string).collect(),
                }),
            },
            Err(reason) => {
                rejected.push(Rejection { position, report_id: String::new(), revision: 0, reasons: vec![reason] })
            }
        }
    }
    (valid, rejected)
}

/// Whether a refused batch should be retried report by report to find the refused ones.
fn refused_by_content(code: Code) -> bool {
    matches!(code, Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition)
}

pub async fn submit(ctx: &Ctx, args: &SubmitArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let text = read_input(&args.file)?;
    let format = args.format.unwrap_or_else(|| format_of(&args.file, &text));
    let rows = parse_reports(&text, format).map_err(|e| CliError::invalid(format!("{}: {e}", args.file.display())))?;
    let (valid, mut rejections) = validate(rows, chrono::Utc::now());
    let mut summary = SubmitSummary {
        file: args.file.display().to_string(),
        reports: (valid.len() + rejections.len()) as u64,
        ..SubmitSummary::default()
    };

    if !valid.is_empty() {
        let mut ingest = ctx.ingest().await?;
        let bar = ProgressBar::with_draw_target(Some(valid.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} reports ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let stored_so_far = |s: &SubmitSummary| {
            format!(
                "; {} reports were stored before it (submitting the file again is safe: stored reports are unchanged)",
                s.accepted + s.unchanged
            )
        };
        for chunk in valid.chunks(args.batch as usize) {
            summary.batches += 1;
            let reports: Vec<ReportEvent> = chunk.iter().map(|(_, r)| r.clone()).collect();
            match ingest.submit_batch(SubmitBatchRequest { reports }).await {
                Ok(response) => {
                    for r in response.into_inner().results {
                        count(&mut summary, r.outcome, r.period);
                    }
                }
                Err(status) if refused_by_content(status.code()) => {
                    // Find the refused reports: each on its own (the others are stored).
                    for (position, report) in chunk {
                        match ingest.submit_report(SubmitReportRequest { report: Some(report.clone()) }).await {
                            Ok(r) => {
                                let r = r.into_inner();
                                count(&mut summary, r.outcome, r.period);
                            }
                            Err(s) if refused_by_content(s.code()) => rejections.push(Rejection {
                                position: *position,
                                report_id: report.report_id.clone(),
                                revision: report.revision.into(),
                                reasons: vec![s.message().to_owned()],
                            }),
                            Err(s) => {
                                bar.abandon();
                                let e = ctx.ingest.status_error("SubmitReport", &s);
                                return Err(CliError::new(e.code, e.message + &stored_so_far(&summary)));
                            }
                        }
                    }
                }
                Err(status) => {
                    bar.abandon();
                    let e = ctx.ingest.status_error("SubmitBatch", &status);
                    return Err(CliError::new(e.code, e.message + &stored_so_far(&summary)));
                }
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
    }

    rejections.sort_by_key(|r| r.position);
    summary.rejected = rejections.len() as u64;
    summary.rejections = rejections;
    ctx.emit(out, &summary, |out| print_summary(out, &summary))?;
    if summary.rejected > 0 {
        return Err(CliError::new(
            exit::REFUSED,
            format!(
                "{} of {} reports were rejected: fix them and submit them again",
                summary.rejected, summary.reports
            ),
        ));
    }
    Ok(())
}

fn count(summary: &mut SubmitSummary, outcome: i32, period: String) {
    if outcome == SubmitOutcome::Duplicate as i32 {
        summary.unchanged += 1;
    } else {
        summary.accepted += 1;
    }
    *summary.periods.entry(period).or_default() += 1;
}

fn print_summary(out: &mut dyn Write, s: &SubmitSummary) -> io::Result<()> {
    writeln!(
        out,
        "{}: {} reports in {} batches: {} accepted, {} unchanged (already stored), {} rejected",
        s.file, s.reports, s.batches, s.accepted, s.unchanged, s.rejected
    )?;
    if !s.periods.is_empty() {
        let periods: Vec<String> = s.periods.iter().map(|(p, n)| format!("{p} ({n})")).collect();
        writeln!(out, "periods: {}", periods.join(", "))?;
    }
    if !s.rejections.is_empty() {
        let mut t = table::with_numeric(&["Row", "Report", "Revision", "Reason"], &[0, 2]);
        for r in &s.rejections {
            t.add_row(vec![
                r.position.to_string(),
                table::or_dash(&r.report_id),
                if r.revision == 0 { "—".to_owned() } else { r.revision.to_string() },
                r.reasons.join("\n"),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sync

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    /// Start of the window of `finalized_at` to read (RFC 3339) [default: the first instant of
    /// the open month]
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<String>,
    /// End of the window, exclusive (RFC 3339) [default: now]
    #[arg(long, value_name = "RFC3339")]
    pub to: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum SyncCommand {
    /// The recorded sync runs, newest first.
    List(SyncListArgs),
}

#[derive(clap::Args, Debug)]
pub struct SyncListArgs {
    /// How many runs (at most 100).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Include each run's rejected rows.
    #[arg(long)]
    pub rejected: bool,
}

pub async fn sync(ctx: &Ctx, args: &SyncArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if let Some(SyncCommand::List(list)) = &args.command {
        return sync_list(ctx, list, out).await;
    }
    let mut ingest = ctx.ingest().await?;
    let bar = spinner("syncing from the source".to_owned());
    let run = ingest
        .sync_now(SyncNowRequest {
            window_start: args.from.clone().unwrap_or_default(),
            window_end: args.to.clone().unwrap_or_default(),
        })
        .await
        .rpc(&ctx.ingest, "SyncNow");
    bar.finish_and_clear();
    let run = required(run?.run, "SyncNow", "run")?;
    ctx.emit(out, &run, |out| print_sync_run(out, &run))?;
    if sync_outcome(run.outcome) == Some("FAILED") {
        return Err(CliError::other(format!("sync run {} failed: {}", run.id, run.error)));
    }
    Ok(())
}

fn print_sync_run(out: &mut dyn Write, run: &SyncRun) -> io::Result<()> {
    writeln!(
        out,
        "sync run {} ({}, {}): {} from {}.{}",
        run.id,
        sync_trigger(run.trigger).unwrap_or("—"),
        run.started_at,
        sync_outcome(run.outcome).unwrap_or("—"),
        run.source,
        run.source_table
    )?;
    writeln!(out, "window [{}, {}), {} ms", run.window_start, run.window_end, run.duration_ms)?;
    let mut t = table::new(&["Read", "New", "Changed", "Unchanged", "Rejected"], 0);
    t.add_row(vec![
        run.read.to_string(),
        run.new.to_string(),
        run.changed.to_string(),
        run.unchanged.to_string(),
        run.rejected.to_string(),
    ]);
    writeln!(out, "{t}")?;
    if !run.error.is_empty() {
        writeln!(out, "error: {}", run.error)?;
    }
    if !run.rejected_rows.is_empty() {
        writeln!(out, "Rejected rows")?;
        let mut t = table::with_numeric(&["Row", "Report", "Revision", "Reasons"], &[0]);
        for r in &run.rejected_rows {
            t.add_row(vec![
                r.row.to_string(),
                table::or_dash(&r.report_id),
                table::or_dash(&r.revision),
                r.reasons.join("\n"),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}

pub async fn sync_list(ctx: &Ctx, args: &SyncListArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let response = ctx
        .ingest()
        .await?
        .list_sync_runs(ListSyncRunsRequest { limit: args.limit, with_rejected_rows: args.rejected })
        .await
        .rpc(&ctx.ingest, "ListSyncRuns")?;
    ctx.emit(out, &response, |out| {
        if response.runs.is_empty() {
            return writeln!(out, "no sync runs recorded");
        }
        let mut t = table::with_numeric(
            &[
                "Run",
                "Trigger",
                "Started",
                "Window",
                "ms",
                "Read",
                "New",
                "Changed",
                "Unchanged",
                "Rejected",
                "Outcome",
            ],
            &[0, 4, 5, 6, 7, 8, 9],
        );
        for r in &response.runs {
            t.add_row(vec![
                r.id.to_string(),
                sync_trigger(r.trigger).unwrap_or("—").to_owned(),
                r.started_at.clone(),
                format!("{} – {}", r.window_start, r.window_end),
                r.duration_ms.to_string(),
                r.read.to_string(),
                r.new.to_string(),
                r.changed.to_string(),
                r.unchanged.to_string(),
                r.rejected.to_string(),
                if r.error.is_empty() {
                    sync_outcome(r.outcome).unwrap_or("—").to_owned()
                } else {
                    format!("{}: {}", sync_outcome(r.outcome).unwrap_or("—"), r.error)
                },
            ]);
        }
        writeln!(out, "{t}")?;
        if args.rejected {
            for run in response.runs.iter().filter(|r| !r.rejected_rows.is_empty()) {
                writeln!(out, "Rejected rows of run {}", run.id)?;
                let mut t = table::with_numeric(&["Row", "Report", "Revision", "Reasons"], &[0]);
                for r in &run.rejected_rows {
                    t.add_row(vec![
                        r.row.to_string(),
                        table::or_dash(&r.report_id),
                        table::or_dash(&r.revision),
                        r.reasons.join("\n"),
                    ]);
                }
                writeln!(out, "{t}")?;
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// held

#[derive(clap::Args, Debug)]
pub struct HeldArgs {
    /// Only this period (YYYY-MM).
    #[arg(long)]
    pub period: Option<String>,
    /// Only this status: UNKNOWN_PARTY, NO_RULE, NO_PRICE, AWAITING_FX (or HELD_CLOSED_PERIOD).
    #[arg(long)]
    pub status: Option<String>,
}

pub async fn held(ctx: &Ctx, args: &HeldArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let period = period_filter(args.period.as_deref())?;
    let status = args.status.as_deref().unwrap_or_default().trim().to_ascii_uppercase();
    let response = ctx
        .pricing()
        .await?
        .list_held_reports(ListHeldReportsRequest { status, period })
        .await
        .rpc(&ctx.pricing, "ListHeldReports")?;
    ctx.emit(out, &response, |out| {
        if response.reports.is_empty() {
            return writeln!(out, "no held reports");
        }
        let mut t = table::with_numeric(
            &["Report", "Rev", "Client", "Provider", "Period", "Status", "Reason", "Held at"],
            &[1],
        );
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for h in &response.reports {
            *by_status.entry(h.status.as_str()).or_default() += 1;
            t.add_row(vec![
                h.report_id.clone(),
                h.revision.to_string(),
                h.client_id.clone(),
                h.provider_id.clone(),
                h.period.clone(),
                h.status.clone(),
                h.reason.clone(),
                h.held_at.clone(),
            ]);
        }
        writeln!(out, "{t}")?;
        let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
        writeln!(out, "{} held: {}", response.reports.len(), counts.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"report_id":"R-1","revision":1,"client_id":"HOSP-001","provider_id":"RAD-001","modality":"MRI","body_regions":1,"priority":"ROUTINE","finalized_at":"2026-01-10T10:00:00Z","status":"FINAL"}"#;

    #[test]
    fn the_format_follows_the_extension_then_the_content() {
        assert_eq!(format_of(Path::new("a.csv"), "["), Format::Csv);
        assert_eq!(format_of(Path::new("a.JSONL"), "["), Format::Jsonl);
        assert_eq!(format_of(Path::new("a.json"), "{"), Format::Json);
        assert_eq!(format_of(Path::new("-"), "  [{}]"), Format::Json);
        assert_eq!(format_of(Path::new("a.txt"), "{}\n{}"), Format::Jsonl);
        assert_eq!(format_of(Path::new("a"), "report_id,revision"), Format::Csv);
    }

    #[test]
    fn json_lines_and_arrays_give_one_row_per_report_with_bad_rows_kept() {
        let lines = format!("{REPORT}\n\n{{\"revision\": \"one\"}}\n");
        let rows = parse_reports(&lines, Format::Jsonl).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].position, 1);
        assert_eq!(rows[0].report.as_ref().map(|r| r.modality.as_str()), Ok("MRI"));
        assert_eq!(rows[1].position, 3);
        assert!(rows[1].report.is_err());

        let rows = parse_reports(&format!("[{REPORT}, {REPORT}]"), Format::Json).unwrap_or_default();
        assert_eq!(rows.iter().map(|r| r.position).collect::<Vec<_>>(), vec![1, 2]);
        assert!(parse_reports("{", Format::Json).is_err());
    }

    #[test]
    fn csv_columns_may_come_in_any_order() {
        let csv = "revision,report_id,client_id,provider_id,modality,body_regions,priority,finalized_at,status\n\
                   2,R-9,HOSP-002,RAD-003,CT,2,STAT,2026-01-10T10:00:00Z,FINAL\n\
                   x,R-10,HOSP-002,RAD-003,CT,2,STAT,2026-01-10T10:00:00Z,FINAL\n";
        let rows = parse_reports(csv, Format::Csv).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        let first = rows[0].report.as_ref().cloned().unwrap_or_default();
        assert_eq!((first.report_id.as_str(), first.revision, first.body_regions), ("R-9", 2, 2));
        assert_eq!(rows[1].position, 3);
        assert!(rows[1].report.as_ref().is_err_and(|e| e.contains("revision")));
        assert!(parse_reports("report_id,colour\n", Format::Csv).is_err());
        assert!(parse_reports("report_id\n", Format::Csv).is_err());
    }

    #[test]
    fn invalid_reports_are_rejected_with_every_reason() {
        let bad = r#"{"report_id":"R 2","revision":0,"client_id":"HOSP-001","provider_id":"RAD-001","modality":"PET","body_regions":1,"priority":"ROUTINE","finalized_at":"2026-01-10T10:00:00Z","status":"FINAL"}"#;
        let rows = parse_reports(&format!("{REPORT}\n{bad}\n"), Format::Jsonl).unwrap_or_default();
        let now = chrono::DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
        let (valid, rejected) = validate(rows, now);
        assert_eq!(valid.len(), 1);
        assert_eq!(valid[0].1.report_id, "R-1");
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].position, 2);
        assert_eq!(rejected[0].reasons.len(), 3, "{:?}", rejected[0].reasons);
        assert!(rejected[0].reasons.iter().any(|r| r.starts_with("modality")));
    }
}
