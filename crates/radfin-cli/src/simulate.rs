//! `radfin simulate`: offline pricing of a generated month.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use radfin_domain::margin::{MarginTotals, value};
use radfin_domain::rules::Contract;
use radfin_domain::tax::{GstConfig, invoice_tax};
use radfin_domain::{BusinessCalendar, ClientId, Currency, Period, PricingRun, ProviderId};
use radfin_testkit::{ReportMix, generate_reports};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::samples::{self, Samples};
use crate::table::{self, inr, pct};

#[derive(clap::Args)]
pub struct Args {
    /// Directory with parties.json, rules/ and fx-rates.json.
    #[arg(long, default_value = "samples")]
    samples: PathBuf,
    /// The month to price, YYYY-MM (business time zone).
    #[arg(long)]
    period: Period,
    /// Report events to generate.
    #[arg(long, default_value_t = 20_000)]
    reports: usize,
    /// Seed of the generator: the same seed gives the same month.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// See only rule versions recorded by this instant (default: now), e.g. to compare the
    /// month as billed with a rerun under rules negotiated later.
    #[arg(long)]
    rules_as_of: Option<DateTime<Utc>>,
    /// IANA time zone periods are reckoned in.
    #[arg(long, env = "RADFIN_BUSINESS_TZ", default_value = "Asia/Kolkata")]
    business_tz: String,
    /// GST state code of the supplier (CGST+SGST within it, IGST across states).
    #[arg(long, env = "RADFIN_SUPPLIER_STATE", default_value = "29")]
    supplier_state: String,
    /// Oldest FX rate a report may use, in days.
    #[arg(long, env = "RADFIN_FX_MAX_AGE_DAYS", default_value_t = radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS)]
    fx_max_age_days: u32,
    /// Rows of the payout table.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

pub fn run(args: &Args, out: &mut impl Write) -> anyhow::Result<()> {
    let calendar = BusinessCalendar::named(&args.business_tz)?;
    let Samples { catalog, providers, clients, fx, demo, .. } = samples::load(&args.samples, args.fx_max_age_days)
        .with_context(|| format!("cannot load {}", args.samples.display()))?;

    let weights: Vec<(ClientId, u32)> = demo.traffic_weights.iter().map(|(id, w)| (id.clone(), *w)).collect();
    let provider_ids: Vec<ProviderId> = providers.iter().map(|p| p.provider_id.clone()).collect();
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let events =
        generate_reports(&mut rng, calendar, args.period, &weights, &provider_ids, args.reports, &ReportMix::default());

    let rules_as_of = args.rules_as_of.unwrap_or_else(Utc::now);
    let run = PricingRun { calendar, period: args.period, rules_as_of };
    let priced = run.price(&catalog, &events)?;
    let valued = value(&priced, &fx);

    writeln!(
        out,
        "radfin: {} priced offline in {}, with the rules recorded by {}",
        args.period,
        calendar.time_zone(),
        rules_as_of.format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(
        out,
        "{} report events generated (seed {}, {} corrected revisions): {} reports priced, {} held, {} awaiting FX\n",
        events.len(),
        args.seed,
        events.iter().filter(|e| e.revision > 1).count(),
        priced.reports.len(),
        priced.held.len(),
        valued.awaiting_fx.len(),
    )?;

    let names: BTreeMap<&ClientId, &str> = clients.iter().map(|c| (&c.client_id, c.name.as_str())).collect();
    let states: BTreeMap<&ClientId, Option<&str>> =
        clients.iter().map(|c| (&c.client_id, c.state_code.as_deref())).collect();
    let by_client = valued.summary.by_client();
    let gst = GstConfig::new(args.supplier_state.clone());

    writeln!(out, "Client invoices")?;
    let mut t = table::new(
        &[
            "Client",
            "Name",
            "Contract",
            "Cur",
            "Reports",
            "Taxable value",
            "Tax",
            "Invoice total",
            "Revenue INR",
            "Rules",
        ],
        4,
    );
    for inv in &priced.invoices {
        let contract = catalog
            .client_rules(&inv.client_id)
            .and_then(|h| h.iter().find(|v| v.version == inv.contract_rule_version))
            .map_or("?", |v| match v.rules.contract {
                Contract::PerStudy => "PER_STUDY",
                Contract::MinimumCommitment { .. } => "MINIMUM_COMMITMENT",
                Contract::Retainer { .. } => "RETAINER",
            });
        let state = states.get(&inv.client_id).copied().flatten();
        let tax = invoice_tax(inv.taxable_value, inv.currency, inv.tax_treatment, state, &gst);
        let tax_label = if tax.lines.is_empty() {
            inv.tax_treatment.to_string()
        } else {
            tax.lines
                .iter()
                .map(|l| format!("{} {}", l.kind, table::amount(l.amount, inv.currency)))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let versions: Vec<String> = inv.rule_versions.iter().map(|v| format!("v{v}")).collect();
        t.add_row(vec![
            inv.client_id.to_string(),
            names.get(&inv.client_id).copied().unwrap_or("").to_owned(),
            contract.to_owned(),
            inv.currency.to_string(),
            inv.billable_reports.to_string(),
            table::amount(inv.taxable_value, inv.currency),
            tax_label,
            table::amount(inv.taxable_value + tax.total(), inv.currency),
            by_client.get(&inv.client_id).map_or_else(|| "awaiting FX".to_owned(), |m| inr(m.revenue_inr)),
            versions.join(","),
        ]);
    }
    writeln!(out, "{t}\n")?;

    let mut payouts: Vec<_> = priced.payouts.iter().collect();
    payouts.sort_by(|a, b| b.gross.cmp(&a.gross).then(a.provider_id.cmp(&b.provider_id)));
    let profile: BTreeMap<&ProviderId, _> = providers.iter().map(|p| (&p.provider_id, p)).collect();
    writeln!(out, "Provider payouts, gross before TDS (top {} of {})", args.top.min(payouts.len()), payouts.len())?;
    let mut t = table::new(&["Provider", "Name", "Grade", "Reports", "Gross INR"], 3);
    for p in payouts.iter().take(args.top) {
        let (name, grade) =
            profile.get(&p.provider_id).map_or(("", String::new()), |x| (x.name.as_str(), x.grade.to_string()));
        t.add_row(vec![p.provider_id.to_string(), name.to_owned(), grade, p.reports.to_string(), inr(p.gross)]);
    }
    let gross: rust_decimal::Decimal = payouts.iter().map(|p| p.gross).sum();
    let reports: u32 = payouts.iter().map(|p| p.reports).sum();
    t.add_row(vec!["All providers".to_owned(), String::new(), String::new(), reports.to_string(), inr(gross)]);
    writeln!(out, "{t}\n")?;

    writeln!(out, "Margin by client (INR; tax excluded)")?;
    let mut t = table::new(&["Client", "Reports", "Revenue", "COGS", "Margin", "Margin %"], 1);
    for (client, m) in &by_client {
        t.add_row(margin_row(client.to_string(), m));
    }
    t.add_row(margin_row("Total".to_owned(), &valued.summary.total()));
    writeln!(out, "{t}\n")?;

    writeln!(out, "Margin by modality (INR)")?;
    let mut by_modality: BTreeMap<String, MarginTotals> = BTreeMap::new();
    for (key, totals) in &valued.summary.rows {
        let label = key.modality.map_or_else(|| "NONE (standing charges)".to_owned(), |m| m.to_string());
        let entry = by_modality.entry(label).or_default();
        entry.reports += totals.reports;
        entry.revenue_inr += totals.revenue_inr;
        entry.cogs_inr += totals.cogs_inr;
    }
    let mut t = table::new(&["Modality", "Reports", "Revenue", "COGS", "Margin", "Margin %"], 1);
    for (modality, m) in &by_modality {
        t.add_row(margin_row(modality.clone(), m));
    }
    writeln!(out, "{t}\n")?;

    if !priced.held.is_empty() || !valued.awaiting_fx.is_empty() {
        writeln!(out, "Reports not yet in the margins")?;
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for h in &priced.held {
            *counts.entry((h.reason.status().to_owned(), format!("{}: {}", h.client_id, h.reason))).or_default() += 1;
        }
        for (_, e) in &valued.awaiting_fx {
            *counts.entry(("AWAITING_FX".to_owned(), e.to_string())).or_default() += 1;
        }
        let mut t = table::new(&["Status", "Reason", "Reports"], 2);
        for ((status, reason), n) in counts {
            t.add_row(vec![status, reason, n.to_string()]);
        }
        writeln!(out, "{t}")?;
    }
    if priced.invoices.iter().any(|i| i.currency != Currency::INR) {
        writeln!(
            out,
            "Foreign-currency revenue is converted per report at the rate of its local date (at most {} days old).",
            args.fx_max_age_days
        )?;
    }
    Ok(())
}

fn margin_row(label: String, m: &MarginTotals) -> Vec<String> {
    vec![label, m.reports.to_string(), inr(m.revenue_inr), inr(m.cogs_inr), inr(m.margin_inr()), pct(m.margin_pct())]
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use expect_test::expect_file;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::Args,
    }

    #[test]
    fn a_sample_month_prints_the_same_invoices_payouts_and_margins() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples");
        let cli = Cli::parse_from([
            "radfin",
            "--samples",
            samples,
            "--period",
            "2026-10",
            "--reports",
            "3000",
            "--seed",
            "11",
            "--rules-as-of",
            "2026-11-20T00:00:00Z",
            "--business-tz",
            "Asia/Kolkata",
            "--supplier-state",
            "29",
            "--fx-max-age-days",
            "7",
        ]);
        let mut out = Vec::new();
        super::run(&cli.args, &mut out).unwrap();
        expect_file!["snapshots/simulate_2026_10.txt"].assert_eq(&String::from_utf8(out).unwrap());
    }

    #[test]
    fn rules_recorded_after_the_month_are_invisible_to_a_run_as_of_its_end() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples");
        let parse = |as_of: &str| {
            Cli::parse_from([
                "radfin",
                "--samples",
                samples,
                "--period",
                "2026-10",
                "--reports",
                "500",
                "--rules-as-of",
                as_of,
            ])
        };
        let mut billed = Vec::new();
        super::run(&parse("2026-10-31T18:30:00Z").args, &mut billed).unwrap();
        let mut rerun = Vec::new();
        super::run(&parse("2026-11-20T00:00:00Z").args, &mut rerun).unwrap();
        let row = |out: &[u8]| {
            String::from_utf8_lossy(out).lines().find(|l| l.contains("HOSP-001 ┆ Nairobi")).unwrap().to_owned()
        };
        assert!(row(&billed).ends_with("v1 │"), "{}", row(&billed));
        assert!(row(&rerun).ends_with("v2 │"), "{}", row(&rerun));
    }
}
