//! A period's life: `close`, `rerun` (preview, apply), `replay`, and reading `periods`,
//! `summary` and `runs`.

use std::io::{self, Write};

use radfin_proto::ledger::v1::{
    ClosePeriodRequest, ClosePeriodResponse, Effects, ListPeriodsRequest, ListRunsRequest, RerunManifest, RerunMode,
    RerunPeriodRequest, RerunPeriodResponse, SummarizePeriodRequest,
};
use rust_decimal::Decimal;

use super::documents::{credit_note_table, details, invoice_table, statement_table};
use super::json::{period_state, rerun_mode};
use super::{CliError, Ctx, Rpc, exit, period, period_filter, spinner};
use crate::table::{self, grouped};

// ---------------------------------------------------------------------------------------------
// close

#[derive(clap::Args, Debug)]
pub struct CloseArgs {
    /// The period, YYYY-MM.
    pub period: String,
    /// A note kept in the audit log.
    #[arg(long, default_value = "")]
    pub reason: String,
}

pub async fn close(ctx: &Ctx, args: &CloseArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let period = period(&args.period)?;
    let mut ledger = ctx.ledger().await?;
    let bar = spinner(format!("closing {period}: final pricing pass, invoices, payout statements"));
    let response = ledger
        .close_period(ClosePeriodRequest { period: period.clone(), reason: args.reason.clone() })
        .await
        .rpc(&ctx.ledger, "ClosePeriod");
    bar.finish_and_clear();
    let response = response?;
    ctx.emit(out, &response, |out| print_close(out, &period, &response))
}

fn print_close(out: &mut dyn Write, period: &str, r: &ClosePeriodResponse) -> io::Result<()> {
    let p = r.period.clone().unwrap_or_default();
    if r.closed_now {
        writeln!(out, "{period} closed (close run {}).", p.close_run_id)?;
    } else {
        writeln!(
            out,
            "{period} was already closed (at {}, by {}, close run {}): its documents as issued.",
            table::or_dash(&p.closed_at),
            table::or_dash(&p.closed_by),
            p.close_run_id
        )?;
    }
    section(out, "Invoices", r.invoices.len(), || invoice_table(&r.invoices))?;
    section(out, "Payout statements", r.payout_statements.len(), || statement_table(&r.payout_statements))?;
    let mut t = table::new(&["", "Reports", "Revenue INR", "COGS INR", "Margin INR", "Held reports"], 1);
    t.add_row(vec![
        "Close run".to_owned(),
        r.reports.to_string(),
        grouped(&r.revenue_inr),
        grouped(&r.cogs_inr),
        grouped(&r.margin_inr),
        r.held_reports.to_string(),
    ]);
    writeln!(out, "\n{t}")?;
    if r.held_reports > 0 {
        writeln!(out, "{} reports of {period} are held: `radfin held --period {period}` lists them.", r.held_reports)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// rerun

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["preview", "apply"])))]
pub struct RerunArgs {
    /// The closed period, YYYY-MM.
    pub period: String,
    /// Why the period is repriced (kept on the run and in the audit log).
    #[arg(long)]
    pub reason: String,
    /// Show the differences and the documents an apply would issue; issues nothing.
    #[arg(long)]
    pub preview: bool,
    /// Issue the credit notes, supplementary invoices and payout adjustments, and make the rerun
    /// the period's current view.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: the run a preview returned, applied exactly as previewed [default: price
    /// afresh and apply at once]
    #[arg(long, conflicts_with = "preview", value_name = "RUN_ID")]
    pub run: Option<u64>,
}

pub async fn rerun(ctx: &Ctx, args: &RerunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let period = period(&args.period)?;
    if args.reason.trim().is_empty() {
        return Err(CliError::invalid("--reason must say why the period is repriced"));
    }
    let mode = if args.apply { RerunMode::Apply } else { RerunMode::Preview };
    let mut ledger = ctx.ledger().await?;
    let bar = spinner(format!(
        "{} {period}: replaying its reports and repricing",
        if args.apply { "rerunning" } else { "previewing a rerun of" }
    ));
    let response = ledger
        .rerun_period(RerunPeriodRequest {
            period: period.clone(),
            reason: args.reason.clone(),
            mode: mode as i32,
            run_id: args.run.unwrap_or(0),
        })
        .await
        .rpc(&ctx.ledger, "RerunPeriod")
        .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin runs --period` lists the period's runs"));
    bar.finish_and_clear();
    let response = response?;
    ctx.emit(out, &response, |out| print_rerun(out, &period, &args.reason, &response))
}

/// A titled table of documents, or "none".
fn section(
    out: &mut dyn Write,
    title: &str,
    count: usize,
    table: impl FnOnce() -> comfy_table::Table,
) -> io::Result<()> {
    if count == 0 { writeln!(out, "\n{title}: none") } else { writeln!(out, "\n{title}\n{}", table()) }
}

fn effects_cells(e: Option<&Effects>) -> [String; 4] {
    let e = e.cloned().unwrap_or_default();
    [grouped(&e.difference), grouped(&e.price), grouped(&e.volume), grouped(&e.fx)]
}

fn print_rerun(out: &mut dyn Write, period: &str, reason: &str, r: &RerunPeriodResponse) -> io::Result<()> {
    let m = r.manifest.clone().unwrap_or_default();
    let preview = rerun_mode(r.mode) != Some("APPLY");
    if preview {
        writeln!(
            out,
            "Rerun preview of {period} (run {}, compared with run {}): nothing issued.",
            m.run_id, m.compared_run_id
        )?;
    } else if r.already_applied {
        writeln!(out, "Rerun {} of {period} was already applied: its documents as issued, nothing new.", m.run_id)?;
    } else {
        writeln!(
            out,
            "Rerun {} of {period} applied (compared with run {}): it is the period's current view.",
            m.run_id, m.compared_run_id
        )?;
    }
    print_manifest(out, &m)?;

    let mut t = table::new(&["Client", "Currency", "Billed", "Rerun", "Difference", "Price", "Volume", "FX"], 2);
    for c in &r.clients {
        let mut row = vec![c.client_id.clone(), c.currency.clone(), grouped(&c.billed), grouped(&c.rerun)];
        row.extend(effects_cells(c.contract.as_ref()));
        t.add_row(row);
    }
    let title = "Client differences (contract currency, before tax; difference = price + volume + FX)";
    section(out, title, r.clients.len(), || t)?;
    let mut t = table::new(&["Client", "Billed INR", "Rerun INR", "Difference", "Price", "Volume", "FX"], 1);
    for c in &r.clients {
        let mut row = vec![c.client_id.clone(), grouped(&c.billed_inr), grouped(&c.rerun_inr)];
        row.extend(effects_cells(c.inr.as_ref()));
        t.add_row(row);
    }
    section(out, "Client differences (INR)", r.clients.len(), || t)?;
    let mut t = table::new(&["Provider", "Paid", "Rerun", "Difference", "Price", "Volume"], 1);
    for p in &r.providers {
        let [difference, price, volume, _fx] = effects_cells(p.effects.as_ref());
        t.add_row(vec![p.provider_id.clone(), grouped(&p.paid), grouped(&p.rerun), difference, price, volume]);
    }
    section(out, "Provider differences (INR)", r.providers.len(), || t)?;

    let verb = if preview { "to issue on apply" } else { "issued" };
    section(out, &format!("Credit notes {verb}"), r.credit_notes.len(), || credit_note_table(&r.credit_notes))?;
    section(out, &format!("Supplementary invoices {verb}"), r.invoices.len(), || invoice_table(&r.invoices))?;
    section(out, &format!("Payout adjustments {verb}"), r.payout_adjustments.len(), || {
        statement_table(&r.payout_adjustments)
    })?;
    if preview {
        writeln!(
            out,
            "\nApply exactly this preview: radfin rerun {period} --reason {reason:?} --apply --run {}",
            m.run_id
        )?;
    }
    Ok(())
}

fn print_manifest(out: &mut dyn Write, m: &RerunManifest) -> io::Result<()> {
    let rules: Vec<String> = m
        .rule_versions
        .iter()
        .map(|v| {
            let versions: Vec<String> = v.versions.iter().map(|n| format!("v{n}")).collect();
            format!("{} {}", if v.client_id.is_empty() { "provider" } else { &v.client_id }, versions.join(","))
        })
        .collect();
    // Per currency: how many rates, over which dates (every rate is in --output json).
    let mut by_currency: std::collections::BTreeMap<&str, (usize, &str, &str)> = std::collections::BTreeMap::new();
    for r in &m.fx_rates {
        let e = by_currency.entry(&r.currency).or_insert((0, &r.rate_date, &r.rate_date));
        e.0 += 1;
        e.1 = e.1.min(r.rate_date.as_str());
        e.2 = e.2.max(r.rate_date.as_str());
    }
    let rates: Vec<String> = by_currency
        .iter()
        .map(
            |(c, (n, first, last))| {
                if n == &1 { format!("{c} 1 rate ({first})") } else { format!("{c} {n} rates ({first} – {last})") }
            },
        )
        .collect();
    writeln!(out, "\nManifest")?;
    writeln!(
        out,
        "{}",
        details(&[
            ("Rules as of", m.rules_as_of.clone()),
            ("Reports", m.reports.to_string()),
            ("Report set SHA-256", m.report_set_hash.clone()),
            ("Replayed from the stream", m.replayed_messages.to_string()),
            ("Missing from the stream", format!("{} (priced from the ingest store)", m.missing_from_stream)),
            ("Held reports", m.held_reports.to_string()),
            ("Rule versions", rules.join("; ")),
            ("FX rates", rates.join("; ")),
        ])
    )
}

// ---------------------------------------------------------------------------------------------
// replay

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The period, YYYY-MM.
    pub period: String,
    /// Why (kept on the preview run and in the audit log).
    #[arg(long, default_value = "replay of the period's report subject")]
    pub reason: String,
}

/// ingest.proto has no replay RPC: the replay is the ledger's rerun PREVIEW, which reads the
/// period's report subject back and reconciles it against the ingest store; this prints its
/// manifest's counts and issues nothing.
pub async fn replay(ctx: &Ctx, args: &ReplayArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let period = period(&args.period)?;
    let mut ledger = ctx.ledger().await?;
    let bar = spinner(format!("replaying the report subject of {period}"));
    let response = ledger
        .rerun_period(RerunPeriodRequest {
            period: period.clone(),
            reason: args.reason.clone(),
            mode: RerunMode::Preview as i32,
            run_id: 0,
        })
        .await
        .rpc(&ctx.ledger, "RerunPeriod");
    bar.finish_and_clear();
    let manifest = response?.manifest.unwrap_or_default();
    ctx.emit(out, &manifest, |out| {
        writeln!(
            out,
            "{period}: {} messages replayed from the report subject; {} stored reports were missing from the \
             stream (priced from the ingest store); {} reports in the set, {} held.",
            manifest.replayed_messages, manifest.missing_from_stream, manifest.reports, manifest.held_reports
        )?;
        writeln!(
            out,
            "report set hash {}; preview run {}. Nothing was issued: `radfin rerun {period} --preview --reason ...` \
             shows the differences.",
            table::or_dash(&manifest.report_set_hash),
            manifest.run_id
        )
    })
}

// ---------------------------------------------------------------------------------------------
// periods, summary, runs

pub async fn list(ctx: &Ctx, out: &mut dyn Write) -> Result<(), CliError> {
    let response = ctx.ledger().await?.list_periods(ListPeriodsRequest {}).await.rpc(&ctx.ledger, "ListPeriods")?;
    ctx.emit(out, &response, |out| {
        if response.periods.is_empty() {
            return writeln!(out, "no periods yet");
        }
        let mut t = table::with_numeric(
            &["Period", "State", "Current run", "Close run", "Closed at", "Closed by", "Held"],
            &[2, 3, 6],
        );
        for p in &response.periods {
            t.add_row(vec![
                p.period.clone(),
                period_state(p.state).unwrap_or("—").to_owned(),
                p.current_run_id.to_string(),
                if p.close_run_id == 0 { "—".to_owned() } else { p.close_run_id.to_string() },
                table::or_dash(&p.closed_at),
                table::or_dash(&p.closed_by),
                p.held_reports.to_string(),
            ]);
        }
        writeln!(out, "{t}")
    })
}

#[derive(clap::Args, Debug)]
pub struct SummaryArgs {
    /// The period, YYYY-MM.
    pub period: String,
}

pub async fn summary(ctx: &Ctx, args: &SummaryArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let period = period(&args.period)?;
    let s = ctx
        .ledger()
        .await?
        .summarize_period(SummarizePeriodRequest { period: period.clone() })
        .await
        .rpc(&ctx.ledger, "SummarizePeriod")?;
    ctx.emit(out, &s, |out| {
        writeln!(out, "{period}, current view (revenue before tax; INR unless marked)")?;
        let mut t = table::new(
            &["Client", "Reports", "Revenue (contract)", "Revenue INR", "COGS INR", "Margin INR", "Margin %"],
            1,
        );
        for c in &s.clients {
            t.add_row(vec![
                c.client_id.clone(),
                c.reports.to_string(),
                table::money(&c.revenue, &c.currency),
                grouped(&c.revenue_inr),
                grouped(&c.cogs_inr),
                grouped(&c.margin_inr),
                margin_pct(&c.margin_inr, &c.revenue_inr),
            ]);
        }
        t.add_row(vec![
            "Total".to_owned(),
            s.reports.to_string(),
            String::new(),
            grouped(&s.revenue_inr),
            grouped(&s.cogs_inr),
            grouped(&s.margin_inr),
            margin_pct(&s.margin_inr, &s.revenue_inr),
        ]);
        writeln!(out, "{t}")
    })
}

/// Margin as a percentage of revenue, in decimals (no floats), `—` when there is no revenue.
fn margin_pct(margin: &str, revenue: &str) -> String {
    let (Ok(margin), Ok(revenue)) = (margin.parse::<Decimal>(), revenue.parse::<Decimal>()) else {
        return "—".to_owned();
    };
    table::pct(
        (!revenue.is_zero())
            .then(|| radfin_domain::rounding::round_half_away(margin * Decimal::ONE_HUNDRED / revenue, 2)),
    )
}

#[derive(clap::Args, Debug)]
pub struct RunsArgs {
    /// Only this period (YYYY-MM).
    #[arg(long)]
    pub period: Option<String>,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

pub async fn runs(ctx: &Ctx, args: &RunsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let period = period_filter(args.period.as_deref())?;
    let response = ctx
        .ledger()
        .await?
        .list_runs(ListRunsRequest { period, limit: args.limit })
        .await
        .rpc(&ctx.ledger, "ListRuns")?;
    ctx.emit(out, &response, |out| {
        if response.runs.is_empty() {
            return writeln!(out, "no runs");
        }
        let mut t = table::with_numeric(&["Run", "Period", "Kind", "Rules as of", "Created at", "By", "Reason"], &[0]);
        for r in &response.runs {
            t.add_row(vec![
                r.run_id.to_string(),
                r.period.clone(),
                r.kind.clone(),
                table::or_dash(&r.rules_as_of),
                r.created_at.clone(),
                table::or_dash(&r.created_by),
                table::or_dash(&r.reason),
            ]);
        }
        writeln!(out, "{t}")
    })
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use radfin_proto::ledger::v1::{
        ClientDifference, CreditNote, FxRateUsed, Invoice, PayoutStatement, ProviderDifference, RuleVersionsUsed,
    };

    use super::*;

    fn s(text: &str) -> String {
        text.to_owned()
    }

    fn effects(difference: &str, price: &str, volume: &str, fx: &str) -> Option<Effects> {
        Some(Effects { difference: s(difference), price: s(price), volume: s(volume), fx: s(fx) })
    }

    #[test]
    fn a_rerun_preview() {
        let response = RerunPeriodResponse {
            manifest: Some(RerunManifest {
                run_id: 31,
                period: s("2026-10"),
                compared_run_id: 30,
                rules_as_of: s("2026-11-12T10:00:00Z"),
                rule_versions: vec![
                    RuleVersionsUsed { client_id: String::new(), versions: vec![1] },
                    RuleVersionsUsed { client_id: s("HOSP-001"), versions: vec![2] },
                ],
                fx_rates: vec![
                    FxRateUsed {
                        currency: s("USD"),
                        rate_date: s("2026-10-01"),
                        inr_per_unit: s("83.1"),
                        source: s("ECB"),
                    },
                    FxRateUsed {
                        currency: s("USD"),
                        rate_date: s("2026-10-31"),
                        inr_per_unit: s("83.4"),
                        source: s("ECB"),
                    },
                ],
                report_set_hash: s("9f2c…e1"),
                reports: 20000,
                replayed_messages: 20000,
                missing_from_stream: 0,
                held_reports: 3,
            }),
            mode: RerunMode::Preview as i32,
            applied: false,
            already_applied: false,
            clients: vec![ClientDifference {
                client_id: s("HOSP-001"),
                currency: s("USD"),
                billed: s("152340.00"),
                rerun: s("140112.00"),
                contract: effects("-12228.00", "-12228.00", "0.00", "0.00"),
                billed_inr: s("12694372.20"),
                rerun_inr: s("11675532.96"),
                inr: effects("-1018839.24", "-1018839.24", "0.00", "0.00"),
            }],
            providers: vec![ProviderDifference {
                provider_id: s("RAD-001"),
                paid: s("410000.00"),
                rerun: s("410000.00"),
                effects: effects("0.00", "0.00", "0.00", "0.00"),
            }],
            credit_notes: vec![CreditNote {
                client_id: s("HOSP-001"),
                period: s("2026-10"),
                corrects_invoice_number: s("INV/26-27/000001"),
                currency: s("USD"),
                taxable_value: s("12228.00"),
                tax_total: s("0.00"),
                total: s("12228.00"),
                reason: s("Nov rates"),
                ..CreditNote::default()
            }],
            invoices: Vec::<Invoice>::new(),
            payout_adjustments: Vec::<PayoutStatement>::new(),
        };
        let mut out = Vec::new();
        print_rerun(&mut out, "2026-10", "Nov rates", &response).unwrap_or_default();
        expect![[r#"
            Rerun preview of 2026-10 (run 31, compared with run 30): nothing issued.

            Manifest
              Rules as of               2026-11-12T10:00:00Z
              Reports                   20000
              Report set SHA-256        9f2c…e1
              Replayed from the stream  20000
              Missing from the stream   0 (priced from the ingest store)
              Held reports              3
              Rule versions             provider v1; HOSP-001 v2
              FX rates                  USD 2 rates (2026-10-01 – 2026-10-31)

            Client differences (contract currency, before tax; difference = price + volume + FX)
            ┌──────────┬──────────┬────────────┬────────────┬────────────┬────────────┬────────┬──────┐
            │ Client   ┆ Currency ┆     Billed ┆      Rerun ┆ Difference ┆      Price ┆ Volume ┆   FX │
            ╞══════════╪══════════╪════════════╪════════════╪════════════╪════════════╪════════╪══════╡
            │ HOSP-001 ┆ USD      ┆ 152,340.00 ┆ 140,112.00 ┆ -12,228.00 ┆ -12,228.00 ┆   0.00 ┆ 0.00 │
            └──────────┴──────────┴────────────┴────────────┴────────────┴────────────┴────────┴──────┘

            Client differences (INR)
            ┌──────────┬───────────────┬───────────────┬───────────────┬───────────────┬────────┬──────┐
            │ Client   ┆    Billed INR ┆     Rerun INR ┆    Difference ┆         Price ┆ Volume ┆   FX │
            ╞══════════╪═══════════════╪═══════════════╪═══════════════╪═══════════════╪════════╪══════╡
            │ HOSP-001 ┆ 12,694,372.20 ┆ 11,675,532.96 ┆ -1,018,839.24 ┆ -1,018,839.24 ┆   0.00 ┆ 0.00 │
            └──────────┴───────────────┴───────────────┴───────────────┴───────────────┴────────┴──────┘

            Provider differences (INR)
            ┌──────────┬────────────┬────────────┬────────────┬───────┬────────┐
            │ Provider ┆       Paid ┆      Rerun ┆ Difference ┆ Price ┆ Volume │
            ╞══════════╪════════════╪════════════╪════════════╪═══════╪════════╡
            │ RAD-001  ┆ 410,000.00 ┆ 410,000.00 ┆       0.00 ┆  0.00 ┆   0.00 │
            └──────────┴────────────┴────────────┴────────────┴───────┴────────┘

            Credit notes to issue on apply
            ┌────────────┬──────────┬─────────┬──────────────────┬────────┬─────┬───────────────┬──────┬───────────┬───────────┐
            │ Number     ┆ Client   ┆ Period  ┆ Corrects         ┆ Issued ┆ Cur ┆ Taxable value ┆  Tax ┆     Total ┆ Reason    │
            ╞════════════╪══════════╪═════════╪══════════════════╪════════╪═════╪═══════════════╪══════╪═══════════╪═══════════╡
            │ (on apply) ┆ HOSP-001 ┆ 2026-10 ┆ INV/26-27/000001 ┆ —      ┆ USD ┆     12,228.00 ┆ 0.00 ┆ 12,228.00 ┆ Nov rates │
            └────────────┴──────────┴─────────┴──────────────────┴────────┴─────┴───────────────┴──────┴───────────┴───────────┘

            Supplementary invoices to issue on apply: none

            Payout adjustments to issue on apply: none

            Apply exactly this preview: radfin rerun 2026-10 --reason "Nov rates" --apply --run 31
        "#]].assert_eq(&String::from_utf8_lossy(&out));
    }

    #[test]
    fn margin_is_computed_in_decimals() {
        assert_eq!(super::margin_pct("25.00", "100.00"), "25.00%");
        assert_eq!(super::margin_pct("1", "3"), "33.33%");
        assert_eq!(super::margin_pct("0.00", "0.00"), "—");
        assert_eq!(super::margin_pct("", "1"), "—");
    }
}
