//! Races of issue 10: a month's close racing submissions dated in it (case 7), and a rerun applied
//! twice, one call after the other and by two callers at once (case 8). Both read what they check
//! straight from the tables, with the database owner's connection, as the checker does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Datelike;
use radfin_db::held::{HeldFilter, HeldStatus};
use radfin_domain::Period;
use radfin_proto::common::v1::{Modality, Priority};
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest, SubmitOutcome};
use radfin_proto::ledger::v1 as ledger;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::pricing::v1 as pricing;
use rust_decimal::Decimal;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::cases::{on_stack, pause};
use super::check::{self, Ack, CaseResult, Side, StudyEntry, Verdict};
use crate::{Stack, client_months, engine_pricing, engine_pricing_of, fixtures};

/// Case 7: closes, each of its own month, each racing one submission.
pub const CLOSE_TRIALS: usize = 200;
/// Case 7: the reports of one trial's submission (one batch, dated across its month).
pub const REPORTS_PER_TRIAL: usize = 4;
/// Case 7: trials run at once.
const CONCURRENT_TRIALS: usize = 10;
/// How often a refused call is tried again before the case gives up on it.
const ATTEMPTS: u32 = 5;

/// A connection as the database owner (the tables as they are, not through the code under test).
pub(super) async fn owner(stack: &Stack) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio_postgres::connect(stack.db.url(), tokio_postgres::NoTls).await.context("the owner's connection")?;
    // Ends when the client is dropped.
    tokio::spawn(connection);
    Ok(client)
}

/// Submits `reports` in one batch, trying a refused call again (a batch is atomic and
/// idempotent); the acknowledged revisions and how many calls were tried again.
pub(super) async fn submit(
    ingest: &mut IngestServiceClient<Channel>,
    reports: Vec<ReportEvent>,
) -> anyhow::Result<(Vec<Ack>, usize)> {
    let mut attempt = 1;
    let response = loop {
        match ingest.submit_batch(SubmitBatchRequest { reports: reports.clone() }).await {
            Ok(r) => break r.into_inner(),
            Err(status) if attempt < ATTEMPTS => {
                attempt += 1;
                pause(attempt, &status).await;
            }
            Err(status) => anyhow::bail!("a batch failed {ATTEMPTS} times: {status}"),
        }
    };
    let acks = response
        .results
        .iter()
        .zip(&reports)
        .filter(|(r, _)| r.outcome == SubmitOutcome::Accepted as i32 || r.outcome == SubmitOutcome::Duplicate as i32)
        .map(|(_, e)| Ack { report_id: e.report_id.clone(), revision: e.revision })
        .collect();
    Ok((acks, attempt as usize - 1))
}

/// The STUDY entries `runs` hold for `report_ids`, and the report revisions with any entry in
/// them: what [`check::classify`] reads of a close or rerun run (which books each report once,
/// as a `BOOKING` per side, with no ledger fact).
async fn run_ledger(
    db: &tokio_postgres::Client,
    runs: &[i64],
    report_ids: &[String],
) -> anyhow::Result<(Vec<StudyEntry>, BTreeSet<(String, u32)>)> {
    let rows = db
        .query(
            "SELECT period, report_id, revision, side, entry_kind = 'BOOKING', amount, line = 'STUDY' \
             FROM ledger_entries WHERE run_id = ANY($1) AND report_id = ANY($2)",
            &[&runs, &report_ids],
        )
        .await
        .context("reading the runs' entries")?;
    let (mut entries, mut booked) = (Vec::new(), BTreeSet::new());
    for row in rows {
        let report_id: String = row.try_get(1)?;
        let revision = u32::try_from(row.try_get::<_, i64>(2)?)?;
        booked.insert((report_id.clone(), revision));
        if row.try_get(6)? {
            let side: String = row.try_get(3)?;
            entries.push(StudyEntry {
                period: row.try_get(0)?,
                report_id,
                revision,
                side: if side == "COGS" { Side::Cogs } else { Side::Revenue },
                booking: row.try_get(4)?,
                amount: row.try_get::<_, Decimal>(5)?,
            });
        }
    }
    Ok((entries, booked))
}

/// A month's LIVE entries: how many, the last id, and their sum per side.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LiveEntries {
    entries: i64,
    last_id: i64,
    cogs: Decimal,
    revenue: Decimal,
}

async fn live_entries(db: &tokio_postgres::Client, period: Period) -> anyhow::Result<LiveEntries> {
    let row = db
        .query_one(
            "SELECT count(*), coalesce(max(e.id), 0), \
               coalesce(sum(e.amount) FILTER (WHERE e.side = 'COGS'), 0), \
               coalesce(sum(e.amount) FILTER (WHERE e.side <> 'COGS'), 0) \
             FROM ledger_entries e JOIN pricing_runs r ON r.run_id = e.run_id \
             WHERE r.kind = 'LIVE' AND e.period = $1",
            &[&period.to_string()],
        )
        .await
        .context("reading a month's live entries")?;
    Ok(LiveEntries {
        entries: row.try_get(0)?,
        last_id: row.try_get(1)?,
        cogs: row.try_get(2)?,
        revenue: row.try_get(3)?,
    })
}

/// One trial of case 7: its month, what ingest acknowledged, the close's run and the month's
/// LIVE entries as the close returned them.
struct Trial {
    period: Period,
    acks: Vec<Ack>,
    close_run: i64,
    at_close: LiveEntries,
    retried: usize,
}

/// Submits [`REPORTS_PER_TRIAL`] reports of `period` while closing it, each call after a short
/// delay of its own (so either may win), and reads the month's LIVE entries as soon as the close
/// returns.
async fn close_trial(
    i: usize,
    period: Period,
    mut ingest: IngestServiceClient<Channel>,
    mut ledger: LedgerServiceClient<Channel>,
    db: std::sync::Arc<tokio_postgres::Client>,
) -> anyhow::Result<Trial> {
    let reports: Vec<ReportEvent> = (0..REPORTS_PER_TRIAL)
        .map(|k| {
            let mut r = fixtures::night_mri(&format!("R-{period}-{k}"), "HOSP-INR");
            r.finalized_at = format!("{period}-{:02}T06:00:00Z", 3 + k * 5);
            r
        })
        .collect();
    let submitted = async {
        // Every other trial gives the close a head start, so that both orders happen.
        tokio::time::sleep(Duration::from_millis((i as u64 * 7) % 40 + 20 * (i as u64 % 2))).await;
        submit(&mut ingest, reports).await
    };
    let closed = async {
        tokio::time::sleep(Duration::from_millis((i as u64 * 13) % 40)).await;
        let mut attempt = 1;
        let closed = loop {
            let request = ledger::ClosePeriodRequest { period: period.to_string(), reason: "race".into() };
            match ledger.close_period(request).await {
                Ok(r) => break r.into_inner(),
                Err(status) if attempt < ATTEMPTS => {
                    attempt += 1;
                    pause(attempt, &status).await;
                }
                Err(status) => anyhow::bail!("closing {period} failed {ATTEMPTS} times: {status}"),
            }
        };
        let at_close = live_entries(&db, period).await?;
        anyhow::Ok((closed, at_close, attempt as usize - 1))
    };
    let (submitted, closed) = tokio::join!(submitted, closed);
    let (acks, retried) = submitted.with_context(|| format!("submitting to {period}"))?;
    let (closed, at_close, close_retried) = closed?;
    let status = closed.period.with_context(|| format!("closing {period} returned no period"))?;
    anyhow::ensure!(status.state == ledger::PeriodState::Closed as i32, "{period} is not closed after ClosePeriod");
    Ok(Trial {
        period,
        acks,
        close_run: i64::try_from(status.close_run_id)?,
        at_close,
        retried: retried + close_retried,
    })
}

/// Case 7: `trials` closes, each of its own month (from January 2005 on, [`CONCURRENT_TRIALS`] at
/// a time), each racing a submission of [`REPORTS_PER_TRIAL`] reports dated in that month. Every
/// acknowledged report must end up either booked by the close (then at the engine's price of
/// what the close saw, once: the checker over the close runs, and each closed month's totals
/// equal to the engine's over those reports) or, having come too late, held
/// `HELD_CLOSED_PERIOD`: none lost. And no LIVE entry dated in a closed month may commit after its
/// close: the month's LIVE entries read when the close returned are still all of them once the
/// pipeline has settled, and every LIVE entry there is of a report the close booked (an entry of
/// a report the close did not see can only have committed after it).
pub async fn close_races(trials: usize, patience: Duration) -> CaseResult {
    let case = "7. close racing submissions";
    let done = format!(
        "{trials} closes of different months, each racing a submission of {REPORTS_PER_TRIAL} reports dated in it"
    );
    on_stack(case, &done, async |stack| {
        fixtures::setup_since_2000(stack).await?;
        let first = Period::new(2005, 1).context("January 2005 is a period")?;
        let periods: Vec<Period> = std::iter::successors(Some(first), |p| Some(p.next())).take(trials).collect();
        let db = std::sync::Arc::new(owner(stack).await?);
        let mut done_trials = Vec::new();
        for (c, chunk) in periods.chunks(CONCURRENT_TRIALS).enumerate() {
            let mut running = JoinSet::new();
            for (k, &period) in chunk.iter().enumerate() {
                let (ingest, ledger) = (stack.ingest_client().await?, stack.ledger_client().await?);
                running.spawn(close_trial(c * CONCURRENT_TRIALS + k, period, ingest, ledger, db.clone()));
            }
            while let Some(joined) = running.join_next().await {
                done_trials.push(joined??);
            }
        }
        done_trials.sort_by_key(|t| t.period);

        // Wait until every acknowledged report is booked by its month's close or held for a rerun.
        let deadline = Instant::now() + patience;
        let (booked, held) = loop {
            let (booked, held) = closed_fates(stack, &db, &done_trials).await?;
            let pending =
                done_trials.iter().flat_map(|t| &t.acks).filter(|a| !booked.contains(a) && !held.contains(a)).count();
            if pending == 0 || Instant::now() >= deadline {
                break (booked, held);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        // Let anything still in flight land, then look for LIVE entries committed after a close.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut problems = Vec::new();
        let mut late_entries = 0;
        for t in &done_trials {
            let now = live_entries(&db, t.period).await?;
            if now != t.at_close {
                late_entries += (now.entries - t.at_close.entries).max(1);
                problems.push(format!("{}: LIVE entries {:?} at the close, {now:?} now", t.period, t.at_close));
            }
        }
        let months: Vec<String> = done_trials.iter().map(|t| t.period.to_string()).collect();
        let rows = db
            .query(
                "SELECT DISTINCT e.report_id, e.revision FROM ledger_entries e \
                 JOIN pricing_runs r ON r.run_id = e.run_id \
                 WHERE r.kind = 'LIVE' AND e.period = ANY($1) AND e.report_id IS NOT NULL",
                &[&months],
            )
            .await?;
        for row in rows {
            let ack = Ack { report_id: row.try_get(0)?, revision: u32::try_from(row.try_get::<_, i64>(1)?)? };
            if !booked.contains(&ack) {
                late_entries += 1;
                problems.push(format!("{ack:?} has a LIVE entry but is not in its month's close"));
            }
        }

        // The checker over the closes: what each close booked, against the engine's price of the
        // reports it booked; the late ones are held, and counted apart.
        let all: Vec<&Ack> = done_trials.iter().flat_map(|t| &t.acks).collect();
        let held_late: BTreeSet<&Ack> = all.iter().copied().filter(|a| held.contains(a) && !booked.contains(a)).collect();
        let acks: Vec<Ack> = all.iter().copied().filter(|a| !held_late.contains(a)).cloned().collect();
        let ids: Vec<String> = acks.iter().map(|a| a.report_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let runs: Vec<i64> = done_trials.iter().map(|t| t.close_run).collect();
        let (entries, in_runs) = run_ledger(&db, &runs, &ids).await?;
        let mut expected = BTreeMap::new();
        let mut client_months_all = Vec::new();
        for t in &done_trials {
            let keep = |r: &radfin_domain::ReportEvent| in_runs.contains(&(r.report_id.to_string(), r.revision));
            let (pricing, fx) = engine_pricing_of(stack, t.period, keep).await?;
            expected.extend(expected_of(&pricing));
            client_months_all.extend(client_months(stack, &pricing, &fx).await?);
        }
        let classified = check::classify(&acks, &expected, &entries, &in_runs);
        let verdict = Verdict::new(&acks, &classified, &client_months_all);
        let booked_count = all.iter().filter(|a| booked.contains(**a)).count();
        problems.truncate(5);
        let retried: usize = done_trials.iter().map(|t| t.retried).sum();
        Ok(CaseResult {
            case: case.into(),
            done: format!(
                "{trials} closes of different months, {CONCURRENT_TRIALS} at a time, each racing a submission of \
                 {REPORTS_PER_TRIAL} reports dated in it: {} acknowledged, {booked_count} booked before the close \
                 (in it), {} held HELD_CLOSED_PERIOD, {} missing; LIVE entries committed after a close: {late_entries}; \
                 calls retried: {retried}",
                all.len(),
                held_late.len(),
                verdict.missing,
            ),
            verdict,
            failure: (!problems.is_empty()).then(|| problems.join("; ")),
            elapsed: Duration::ZERO,
        })
    })
    .await
}

/// Of the trials' acknowledged reports: those their month's close booked, and those held
/// `HELD_CLOSED_PERIOD` in their month.
async fn closed_fates(
    stack: &Stack,
    db: &tokio_postgres::Client,
    trials: &[Trial],
) -> anyhow::Result<(BTreeSet<Ack>, BTreeSet<Ack>)> {
    let ids: Vec<String> = trials.iter().flat_map(|t| t.acks.iter().map(|a| a.report_id.clone())).collect();
    let runs: Vec<i64> = trials.iter().map(|t| t.close_run).collect();
    let (_, booked) = run_ledger(db, &runs, &ids).await?;
    let booked = booked.into_iter().map(|(report_id, revision)| Ack { report_id, revision }).collect();
    let mut conn = stack.db.pool().get().await?;
    let filter = HeldFilter { status: Some(HeldStatus::HeldClosedPeriod), ..Default::default() };
    let held = radfin_db::held::current(&mut conn, &filter)
        .await?
        .into_iter()
        .map(|h| Ack { report_id: h.report_id.to_string(), revision: h.revision })
        .collect();
    Ok((booked, held))
}

/// The engine's price of each report of `pricing`, as the checker wants it.
fn expected_of(pricing: &radfin_domain::PeriodPricing) -> impl Iterator<Item = (String, check::Expected)> + '_ {
    pricing.reports.iter().map(|r| {
        (
            r.report_id.to_string(),
            check::Expected {
                revision: r.revision,
                billable: r.status == radfin_domain::ReportStatus::Final,
                cogs: r.cogs,
                study_line: r.study_line,
            },
        )
    })
}

/// `n` reports of `period` for HOSP-INR and HOSP-USD in turn, spread over the month, in three
/// modalities, read by both radiologists.
fn reports_of(prefix: &str, period: Period, n: usize) -> Vec<ReportEvent> {
    (0..n)
        .map(|i| {
            let client = if i % 3 == 2 { "HOSP-USD" } else { "HOSP-INR" };
            let mut r = fixtures::night_mri(&format!("{prefix}-{period}-{i:03}"), client);
            r.modality = [Modality::Mri, Modality::Ct, Modality::Xray][i % 3] as i32;
            r.provider_id = if i % 2 == 0 { "RAD-007" } else { "RAD-001" }.into();
            r.finalized_at = format!("{period}-{:02}T{:02}:15:00Z", 1 + i % 28, 3 + i % 12);
            r.priority = if i % 5 == 0 { Priority::Stat } else { Priority::Routine } as i32;
            r
        })
        .collect()
}

/// The documents of the closes, as stored and as rendered: every row of the invoices, invoice
/// lines, payout statements and statement lines of `close_runs` (as JSON text, in id order), and
/// each invoice's and statement's PDF as the ledger serves it now.
async fn originals(
    stack: &Stack,
    db: &tokio_postgres::Client,
    close_runs: &[i64],
) -> anyhow::Result<(String, BTreeMap<String, Vec<u8>>)> {
    let rows: String = db
        .query_one(
            "SELECT coalesce(string_agg(x, E'\\n' ORDER BY k, id, n), '') FROM ( \
               SELECT 1 AS k, i.id, 0 AS n, row_to_json(i)::text AS x FROM finance_invoices i WHERE i.run_id = ANY($1) \
               UNION ALL SELECT 2, l.invoice_id, l.line_no, row_to_json(l)::text FROM finance_invoice_lines l \
                 JOIN finance_invoices i ON i.id = l.invoice_id WHERE i.run_id = ANY($1) \
               UNION ALL SELECT 3, s.id, 0, row_to_json(s)::text FROM payout_statements s WHERE s.run_id = ANY($1) \
               UNION ALL SELECT 4, l.statement_id, l.line_no, row_to_json(l)::text FROM payout_statement_lines l \
                 JOIN payout_statements s ON s.id = l.statement_id WHERE s.run_id = ANY($1)) t",
            &[&close_runs],
        )
        .await
        .context("reading the closes' documents")?
        .try_get(0)?;
    let numbers = db
        .query(
            "SELECT invoice_number, true FROM finance_invoices WHERE run_id = ANY($1) \
             UNION ALL SELECT statement_number, false FROM payout_statements WHERE run_id = ANY($1)",
            &[&close_runs],
        )
        .await?;
    let supplier = radfin_pdf::Supplier { name: "radfin".into(), state_code: "29".into(), ..Default::default() };
    let party = radfin_pdf::Party::default();
    let mut l = stack.ledger_client().await?;
    let mut pdfs = BTreeMap::new();
    for row in numbers {
        let (number, invoice): (String, bool) = (row.try_get(0)?, row.try_get(1)?);
        let pdf = if invoice {
            let request = ledger::GetInvoiceRequest { number: number.clone() };
            let invoice = l.get_invoice(request).await?.into_inner().invoice.context("GetInvoice: no invoice")?;
            radfin_pdf::invoice_pdf(&invoice, &supplier, &party)?
        } else {
            let request = ledger::GetPayoutStatementRequest { number: number.clone() };
            let statement =
                l.get_payout_statement(request).await?.into_inner().statement.context("no payout statement")?;
            radfin_pdf::payout_statement_pdf(&statement, &supplier, &party)?
        };
        pdfs.insert(number, pdf);
    }
    Ok((rows, pdfs))
}

/// How many invoices, credit notes and payout statements are stored, in all and issued by `run`.
async fn documents(db: &tokio_postgres::Client, run: i64) -> anyhow::Result<[i64; 6]> {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM finance_invoices), (SELECT count(*) FROM finance_credit_notes), \
               (SELECT count(*) FROM payout_statements), \
               (SELECT count(*) FROM finance_invoices WHERE run_id = $1), \
               (SELECT count(*) FROM finance_credit_notes WHERE run_id = $1), \
               (SELECT count(*) FROM payout_statements WHERE run_id = $1)",
            &[&run],
        )
        .await
        .context("counting the documents")?;
    Ok([row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(5)?])
}

/// The documents an APPLY response says it issued: invoices, credit notes, payout adjustments.
fn issued(r: &ledger::RerunPeriodResponse) -> [i64; 3] {
    [r.invoices.len(), r.credit_notes.len(), r.payout_adjustments.len()].map(|n| n as i64)
}

/// Case 8: two months (September and October 2026, `reports` reports each for an INR and a USD
/// client) are priced live (the checker must pass), closed, and then repriced at a lower INR rate
/// recorded for the whole year, with one late report added to each month after its close. The
/// September rerun is previewed and applied twice, one call after the other; the October rerun
/// is previewed and applied by two callers at once. In both, exactly one APPLY issues documents
/// and the other answers `already_applied` and issues nothing (the stored invoices, credit notes
/// and payout statements are counted before and after); the documents of each rerun are stored
/// once (as many, under its run, as its APPLY said it issued); the closes' documents are
/// byte-identical before and after (every stored row, and the PDF rendered from the ledger's
/// answer); and the checker finds every report booked once by the reruns at the engine's price
/// under the new rates, each month equal to the engine's.
pub async fn rerun_applied_twice(reports: usize, patience: Duration) -> CaseResult {
    let case = "8. rerun applied twice";
    let done =
        format!("2 closed months of {reports} reports repriced: one rerun applied twice, one by two callers at once");
    on_stack(case, &done, async |stack| {
        fixtures::setup(stack).await?;
        let months = [Period::new(2026, 9).context("a period")?, Period::new(2026, 10).context("a period")?];
        let mut p = stack.pricing_client().await?;
        for period in months {
            let mut day = period.first_day();
            while day <= period.last_day() {
                let n = day.day();
                p.put_fx_rate(pricing::PutFxRateRequest {
                    rate_date: day.format("%Y-%m-%d").to_string(),
                    currency: "USD".into(),
                    inr_per_unit: format!("83.{:06}", 100_000 + n * 1_717),
                    reason: "fault suite rates".into(),
                })
                .await?;
                day = day.succ_opt().context("a next day")?;
            }
        }
        let mut ingest = stack.ingest_client().await?;
        let mut acks = Vec::new();
        for period in months {
            acks.extend(submit(&mut ingest, reports_of("RR", period, reports)).await?.0);
        }
        let live = super::settle(stack, &months, &acks, patience).await?;
        if !live.passed() {
            return Ok(CaseResult {
                case: case.into(),
                done: "the live ledger did not settle before the close".into(),
                verdict: live,
                failure: None,
                elapsed: Duration::ZERO,
            });
        }

        let mut l = stack.ledger_client().await?;
        let mut close_runs = Vec::new();
        for period in months {
            let request = ledger::ClosePeriodRequest { period: period.to_string(), reason: "month end".into() };
            let closed = l.close_period(request).await?.into_inner();
            close_runs.push(i64::try_from(closed.period.context("no period")?.close_run_id)?);
        }
        let db = owner(stack).await?;
        let (rows_before, pdfs_before) = originals(stack, &db, &close_runs).await?;
        // A late report in each month (held, priced by the rerun), and a lower INR rate for the year.
        for period in months {
            let mut late = fixtures::night_mri(&format!("LATE-{period}"), "HOSP-USD");
            late.finalized_at = format!("{period}-15T06:00:00Z");
            acks.extend(submit(&mut ingest, vec![late]).await?.0);
        }
        let lower =
            fixtures::client_rules("HOSP-INR", "INR").replace("4000.00", "3000.00").replace("2000.00", "1500.00");
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: "HOSP-INR".into(),
            effective_from: "2025-01-01".into(),
            document: lower,
        })
        .await?;
        let rerun = |period: Period, mode: ledger::RerunMode, run_id: u64| ledger::RerunPeriodRequest {
            period: period.to_string(),
            reason: "renegotiated INR prices".into(),
            mode: mode as i32,
            run_id,
        };
        let mut problems = Vec::new();
        let mut rerun_runs = Vec::new();

        // September: applied twice, one call after the other.
        let preview = l.rerun_period(rerun(months[0], ledger::RerunMode::Preview, 0)).await?.into_inner();
        let run_id = preview.manifest.as_ref().context("no manifest")?.run_id;
        rerun_runs.push(i64::try_from(run_id)?);
        let first = l.rerun_period(rerun(months[0], ledger::RerunMode::Apply, run_id)).await?.into_inner();
        let after_first = documents(&db, rerun_runs[0]).await?;
        let second = l.rerun_period(rerun(months[0], ledger::RerunMode::Apply, run_id)).await?.into_inner();
        let after_second = documents(&db, rerun_runs[0]).await?;
        if !first.applied || first.already_applied {
            problems
                .push(format!("the first APPLY: applied {}, already_applied {}", first.applied, first.already_applied));
        }
        if !second.applied || !second.already_applied {
            problems.push(format!(
                "the second APPLY: applied {}, already_applied {}",
                second.applied, second.already_applied
            ));
        }
        if after_second != after_first {
            problems.push(format!("the second APPLY changed the documents: {after_first:?} → {after_second:?}"));
        }
        if after_first[3..] != issued(&first) {
            problems.push(format!(
                "September's rerun stored {:?}, its APPLY issued {:?}",
                &after_first[3..],
                issued(&first)
            ));
        }
        let sequential = issued(&first).iter().sum::<i64>();

        // October: two callers at once, each on its own channel.
        let preview = l.rerun_period(rerun(months[1], ledger::RerunMode::Preview, 0)).await?.into_inner();
        let run_id = preview.manifest.as_ref().context("no manifest")?.run_id;
        rerun_runs.push(i64::try_from(run_id)?);
        let before = documents(&db, rerun_runs[1]).await?;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let mut callers = JoinSet::new();
        for _ in 0..2 {
            let mut l = stack.ledger_client().await?;
            let (start, request) = (start.clone(), rerun(months[1], ledger::RerunMode::Apply, run_id));
            callers.spawn(async move {
                start.wait().await;
                l.rerun_period(request).await.map(tonic::Response::into_inner)
            });
        }
        let mut answers = Vec::new();
        while let Some(joined) = callers.join_next().await {
            answers.push(joined?.map_err(|s| anyhow::anyhow!("a concurrent APPLY failed: {s}"))?);
        }
        let after = documents(&db, rerun_runs[1]).await?;
        let winners: Vec<&ledger::RerunPeriodResponse> =
            answers.iter().filter(|a| a.applied && !a.already_applied).collect();
        let others = answers.iter().filter(|a| a.applied && a.already_applied).count();
        let concurrent = match winners.as_slice() {
            [winner] if others == 1 => {
                let issued = issued(winner);
                let grew = [after[0] - before[0], after[1] - before[1], after[2] - before[2]];
                if grew != issued || after[3..] != issued {
                    problems
                        .push(format!("October's APPLY issued {issued:?}, the tables grew by {grew:?} ({after:?})"));
                }
                issued.iter().sum::<i64>()
            }
            _ => {
                problems.push(format!(
                    "of two concurrent APPLY calls, {} issued and {others} said already_applied",
                    winners.len()
                ));
                0
            }
        };
        if sequential == 0 || concurrent == 0 {
            problems.push(format!("a rerun issued nothing ({sequential} and {concurrent} documents)"));
        }

        let (rows_after, pdfs_after) = originals(stack, &db, &close_runs).await?;
        let identical = rows_after == rows_before && pdfs_after == pdfs_before;
        if !identical {
            let changed: Vec<&String> =
                pdfs_before.iter().filter(|(n, pdf)| pdfs_after.get(*n) != Some(*pdf)).map(|(n, _)| n).collect();
            problems.push(format!(
                "the closes' documents changed: stored rows {}, PDFs of {changed:?}",
                if rows_after == rows_before { "equal" } else { "DIFFER" }
            ));
        }

        // The checker over the reruns: every report booked once at the engine's price under the
        // new rates, and each month's current view (the rerun) equal to the engine's.
        let ids: Vec<String> = acks.iter().map(|a| a.report_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let (entries, in_runs) = run_ledger(&db, &rerun_runs, &ids).await?;
        let (mut expected, mut months_checked) = (BTreeMap::new(), Vec::new());
        for period in months {
            let (pricing, fx) = engine_pricing(stack, period).await?;
            expected.extend(expected_of(&pricing));
            months_checked.extend(client_months(stack, &pricing, &fx).await?);
        }
        let classified = check::classify(&acks, &expected, &entries, &in_runs);
        let verdict = Verdict::new(&acks, &classified, &months_checked);
        Ok(CaseResult {
            case: case.into(),
            done: format!(
                "2 closed months of {reports} reports (+1 late each) repriced at a lower INR rate: September's rerun \
                 applied twice in turn ({sequential} documents, then already_applied, nothing issued), October's by 2 \
                 callers at once ({concurrent} documents once, the other already_applied); {} original documents \
                 {}",
                pdfs_before.len(),
                if identical { "byte-identical (stored rows and PDFs)" } else { "CHANGED" }
            ),
            verdict,
            failure: (!problems.is_empty()).then(|| problems.join("; ")),
            elapsed: Duration::ZERO,
        })
    })
    .await
}
