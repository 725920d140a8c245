//! Reports per second through the whole pipeline, and what PostgreSQL and JetStream alone do on
//! the same machine.
//!
//! 1. Baselines: rows/s of `COPY … FROM STDIN BINARY` of ledger-shaped rows into a logged table of
//!    the benchmark's own database (`RADFIN_BENCH_COPY_ROWS`, default 1,000,000), and msgs/s of
//!    acknowledged JetStream publishes of 200-byte messages to a file-backed stream of its own,
//!    pipelined as radfin publishes (`RADFIN_BENCH_PUBLISH_MSGS`, default 200,000).
//! 2. End to end, for each size of `RADFIN_BENCH_REPORTS` (default `100000,1000000`): a generated
//!    month (200 clients on every contract type and currency, 500 radiologists) submitted to
//!    ingest in batches over gRPC, committed to PostgreSQL, published on NATS, priced, published
//!    again and appended to the ledger, until the ledger holds every current final report; then
//!    the ledger's live totals are checked against the engine's ([`check_live_totals`]). Each size
//!    runs the services in-process on a private database and bus prefix. Where the time went: each
//!    stage's busy time, the sum of the durations the services record in their own histograms
//!    ([`STAGES`], read from `/metrics` before and after the run).
//!
//! The results are printed at the end as a markdown table, also written to
//! `$RADFIN_BENCH_OUT/pipeline.md` (default `target/bench/pipeline.md`). `cargo xtask bench`
//! runs it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use radfin_bus::{BusConfig, MAX_IN_FLIGHT, headers};
use radfin_db::testing::TestDb;
use radfin_domain::{Period, PeriodPricing, PricingRun, ReportStatus};
use radfin_harness::{Stack, nats_url, unique_prefix};
use radfin_proto::ingest::v1::{ReportEvent, SubmitBatchRequest};
use radfin_proto::ledger::v1::{ClosePeriodRequest, RerunMode, RerunPeriodRequest};
use radfin_proto::pricing::v1 as pricing;
use radfin_testkit::{GeneratedMonth, MonthSpec, client_rules_document, generate_month};
use rust_decimal::Decimal;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

const CLIENTS: usize = 200;
const PROVIDERS: usize = 500;
const DEFAULT_REPORTS: &str = "100000,1000000";
const DEFAULT_COPY_ROWS: usize = 1_000_000;
const DEFAULT_PUBLISH_MSGS: usize = 200_000;
/// Report events per `SubmitBatch` call.
const SUBMIT_BATCH: usize = 2_000;
/// How long the ledger may take to hold a month's reports before the run counts as failed.
const LEDGER_DEADLINE: Duration = Duration::from_secs(1800);
/// The JetStream baseline's payload: about the size of one of radfin's bus messages.
static PUBLISH_PAYLOAD: [u8; 200] = [b'x'; 200];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The services' own logs (batch sizes and timings) when RUST_LOG is set.
    let _telemetry =
        std::env::var("RUST_LOG").is_ok().then(|| radfin_service::telemetry::init("pipeline-bench")).transpose()?;
    let sizes = env_sizes("RADFIN_BENCH_REPORTS", DEFAULT_REPORTS)?;
    let copy_rows = env_count("RADFIN_BENCH_COPY_ROWS", DEFAULT_COPY_ROWS)?;
    let publish_msgs = env_count("RADFIN_BENCH_PUBLISH_MSGS", DEFAULT_PUBLISH_MSGS)?;

    let copy = copy_baseline(copy_rows).await.context("PostgreSQL COPY baseline")?;
    println!(
        "baseline/copy: {} rows in {:.2?}: {} rows/s",
        thousands(copy.count),
        copy.elapsed,
        thousands(copy.rate())
    );
    let publish = publish_baseline(publish_msgs).await.context("JetStream publish baseline")?;
    println!(
        "baseline/publish: {} messages in {:.2?}: {} msgs/s",
        thousands(publish.count),
        publish.elapsed,
        thousands(publish.rate())
    );

    let mut runs = Vec::with_capacity(sizes.len());
    for &reports in &sizes {
        let run = pipeline(reports).await;
        match &run {
            Ok(r) => println!(
                "pipeline/{} report events ({} current final reports): ingested in {:.2?}, in the ledger after {:.2?}: {} reports/s end to end; {}; close {:.2?} ({} invoices, {} statements), rerun preview {:.2?}, apply {:.2?} ({} documents)",
                thousands(reports),
                thousands(r.in_ledger.count),
                r.ingested,
                r.in_ledger.elapsed,
                thousands(r.in_ledger.rate()),
                r.live_totals,
                r.month_end.close,
                r.month_end.invoices,
                r.month_end.statements,
                r.month_end.rerun_preview,
                r.month_end.rerun_apply,
                r.month_end.corrections,
            ),
            Err(e) => eprintln!("pipeline/{reports} report events failed: {e:#}"),
        }
        runs.push((reports, run));
    }

    let table = table(&copy, &publish, &runs);
    println!("\n{table}");
    let out = out_dir();
    std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("pipeline.md"), &table))
        .with_context(|| format!("cannot write {}", out.join("pipeline.md").display()))?;
    let failed = runs.iter().filter(|(_, r)| r.is_err()).count();
    anyhow::ensure!(failed == 0, "{failed} of {} pipeline runs failed", runs.len());
    Ok(())
}

/// `count` things done in `elapsed`.
struct Rate {
    count: usize,
    elapsed: Duration,
}

impl Rate {
    /// Per second, rounded down.
    fn rate(&self) -> u128 {
        self.count as u128 * 1_000_000_000 / self.elapsed.as_nanos().max(1)
    }
}

/// One end-to-end run.
struct PipelineRun {
    /// Each of [`STAGES`]: how many calls, batches or transactions, and their summed durations.
    stages: Vec<(u64, Duration)>,
    ingested: Duration,
    /// Current final reports in the ledger, and the time from the first submit until they were.
    in_ledger: Rate,
    /// What [`check_live_totals`] found equal.
    live_totals: String,
    month_end: MonthEnd,
}

/// Close and rerun of the month ([`month_end`]).
struct MonthEnd {
    close: Duration,
    invoices: usize,
    statements: usize,
    rerun_preview: Duration,
    rerun_apply: Duration,
    /// Credit notes, supplementary invoices and payout adjustments the rerun issued.
    corrections: usize,
}

/// The PostgreSQL baseline: `COPY … FROM STDIN BINARY` of `rows` ledger-shaped rows (two per
/// report, COGS in INR and revenue in the client's currency with its FX fields) over one
/// connection into a logged table with `ledger_entries`' columns, types and primary key, but none
/// of its other indexes, checks, foreign keys, partitions or append-only triggers: the cost of
/// getting the ledger's rows into PostgreSQL at all. The time includes making the rows.
async fn copy_baseline(rows: usize) -> anyhow::Result<Rate> {
    const TABLE: &str = "CREATE TABLE copy_baseline (
        id           bigserial     PRIMARY KEY,
        period       text          NOT NULL,
        run_id       bigint        NOT NULL,
        report_id    text          NULL,
        revision     bigint        NULL,
        side         text          NOT NULL,
        client_id    text          NOT NULL,
        provider_id  text          NULL,
        modality     text          NOT NULL,
        grade        text          NOT NULL,
        status       text          NULL,
        currency     char(3)       NOT NULL,
        amount       numeric(20,4) NOT NULL,
        fx_rate      numeric(24,6) NULL,
        fx_rate_date date          NULL,
        fx_source    text          NULL,
        amount_inr   numeric(20,4) NOT NULL,
        rule_version integer       NULL,
        line         text          NOT NULL,
        entry_kind   text          NOT NULL,
        adjusts_id   bigint        NULL,
        reason       text          NULL,
        book_version bigint        NULL,
        line_no      integer       NULL,
        created_at   timestamptz   NOT NULL DEFAULT now()
    )";
    const COPY: &str = "COPY copy_baseline (period, run_id, report_id, revision, side, client_id, provider_id, \
        modality, grade, status, currency, amount, fx_rate, fx_rate_date, fx_source, amount_inr, rule_version, line, \
        entry_kind, adjusts_id, reason, book_version, line_no) FROM STDIN BINARY";
    const TYPES: [Type; 23] = [
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::BPCHAR,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::DATE,
        Type::TEXT,
        Type::NUMERIC,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::INT4,
    ];
    const MODALITIES: [&str; 7] = ["XRAY", "CT", "MRI", "USG", "MAMMO", "PET_CT", "NM"];
    const GRADES: [&str; 3] = ["JUNIOR", "SENIOR", "CONSULTANT"];
    const CURRENCIES: [(&str, i64); 5] =
        [("INR", 10_000), ("USD", 843_512), ("EUR", 912_044), ("GBP", 1_071_380), ("AED", 229_675)];

    let db = TestDb::create().await.context("the baseline's database")?;
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls).await?;
    let connection = tokio::spawn(connection);
    client.batch_execute(TABLE).await?;

    let clients: Vec<String> = (1..=CLIENTS).map(|i| format!("HOSP-{i:03}")).collect();
    let providers: Vec<String> = (1..=PROVIDERS).map(|i| format!("RAD-{i:04}")).collect();
    let rate_date = chrono::NaiveDate::from_ymd_opt(2026, 10, 14).context("a date")?;
    let started = Instant::now();
    let sink = client.copy_in(COPY).await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &TYPES));
    for i in 0..rows {
        let report = i / 2;
        let cogs = i % 2 == 0;
        let (currency, inr_per_unit) = if cogs { CURRENCIES[0] } else { CURRENCIES[report % CLIENTS % 5] };
        let amount = Decimal::new(40_000 + (report % 997) as i64 * 50, 2);
        let fx_rate = (currency != "INR").then(|| Decimal::new(inr_per_unit, 4));
        let amount_inr = fx_rate.map_or(amount, |r| (amount * r).round_dp(4));
        let report_id = format!("RPT-{report:09}");
        let row: [&(dyn ToSql + Sync); 23] = [
            &"2026-10",
            &1_i64,
            &report_id,
            &1_i64,
            &if cogs { "COGS" } else { "REVENUE" },
            &clients[report % CLIENTS],
            &providers[report % PROVIDERS],
            &MODALITIES[report % MODALITIES.len()],
            &GRADES[report % GRADES.len()],
            &"FINAL",
            &currency,
            &amount,
            &fx_rate,
            &fx_rate.map(|_| rate_date),
            &fx_rate.map(|_| "ECB"),
            &amount_inr,
            &Some(1_i32),
            &"STUDY",
            &"BOOKING",
            &None::<i64>,
            &None::<&str>,
            &Some((report / 1_000 + 1) as i64),
            &Some((i % 2_000 + 1) as i32),
        ];
        writer.as_mut().write(&row).await?;
    }
    let written = writer.finish().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(written == rows as u64, "COPY wrote {written} rows, not {rows}");
    drop(client);
    connection.await??;
    Ok(Rate { count: rows, elapsed })
}

/// The JetStream baseline: `messages` publishes of 200 bytes with a `Nats-Msg-Id` and a content
/// type (as [`radfin_bus::Bus::publish`] sends them), to a stream of its own configured like
/// radfin's (file storage, limits retention, radfin's duplicate window, one replica), with every
/// acknowledgement awaited, [`MAX_IN_FLIGHT`] at a time (as [`radfin_bus::Bus::publish_all`]).
/// The stream is deleted afterwards.
async fn publish_baseline(messages: usize) -> anyhow::Result<Rate> {
    let nats = async_nats::connect(nats_url()).await?;
    let js = jetstream::new(nats);
    let prefix = unique_prefix();
    let name = format!("{}_BASELINE", prefix.to_uppercase());
    let subject = format!("{prefix}.baseline");
    js.create_stream(stream::Config {
        name: name.clone(),
        description: Some("radfin pipeline benchmark: publish baseline".to_owned()),
        subjects: vec![subject.clone()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: BusConfig::default().duplicate_window,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .with_context(|| format!("create stream {name}"))?;

    let publish = async {
        let started = Instant::now();
        for first in (0..messages).step_by(MAX_IN_FLIGHT) {
            let chunk = (first..messages.min(first + MAX_IN_FLIGHT)).map(|i| {
                let js = &js;
                let subject = subject.clone();
                async move {
                    let mut h = async_nats::HeaderMap::new();
                    h.insert(headers::MSG_ID, format!("baseline:{i}").as_str());
                    h.insert(headers::CONTENT_TYPE, headers::PROTOBUF);
                    js.publish_with_headers(subject, h, PUBLISH_PAYLOAD.as_slice().into()).await?.await?;
                    anyhow::Ok(())
                }
            });
            futures::future::try_join_all(chunk).await?;
        }
        anyhow::Ok(started.elapsed())
    };
    let published = publish.await;
    let deleted = js.delete_stream(&name).await.with_context(|| format!("delete stream {name}"));
    let elapsed = published?;
    deleted?;
    Ok(Rate { count: messages, elapsed })
}

/// One end-to-end run of `reports` report events on services of its own, stopped afterwards
/// whatever happened.
async fn pipeline(reports: usize) -> anyhow::Result<PipelineRun> {
    let spec = MonthSpec { period: "2026-10".parse()?, clients: CLIENTS, providers: PROVIDERS, reports, seed: 42 };
    let month = generate_month(&spec);
    let stack = Stack::start().await?;
    let run = drive(&stack, &month).await;
    let stopped = stack.stop().await.context("stopping the services");
    let run = run?;
    stopped?;
    Ok(run)
}

async fn drive(stack: &Stack, month: &GeneratedMonth) -> anyhow::Result<PipelineRun> {
    radfin_harness::put_month_reference_data(stack, month).await?;

    // What the ledger must end up with: every current final report.
    let offline = PricingRun { calendar: month.calendar, period: month.period, rules_as_of: chrono::Utc::now() }
        .price(&month.catalog, &month.reports)?;
    let expected = offline.reports.iter().filter(|r| r.status == ReportStatus::Final).count() as u64;

    let mut ingest = stack.ingest_client().await?;
    let before = stage_totals(stack).await?;
    let started = Instant::now();
    for chunk in month.reports.chunks(SUBMIT_BATCH) {
        let reports = chunk.iter().map(ReportEvent::from).collect();
        ingest.submit_batch(SubmitBatchRequest { reports }).await?;
    }
    let ingested = started.elapsed();
    loop {
        // The margin summary's report count: kept by the ledger in the transactions that write
        // the entries, so it is the ledger's, and a read of a few thousand rows where summing
        // the entries would take a core away from the pipeline as the month grows.
        let mut conn = stack.db.pool().get().await?;
        let rows = radfin_db::margin::rows(&mut conn, Some(month.period), Some(month.period), None).await?;
        drop(conn);
        let reports = rows.iter().map(|r| u64::try_from(r.reports).unwrap_or_default()).sum::<u64>();
        if reports >= expected {
            break;
        }
        anyhow::ensure!(started.elapsed() < LEDGER_DEADLINE, "only {reports} of {expected} reports reached the ledger");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    let after = stage_totals(stack).await?;
    let stages = after.iter().zip(&before).map(|(a, b)| (a.0 - b.0, a.1.saturating_sub(b.1))).collect();
    let live_totals = check_live_totals(stack, month.period, &offline).await?;
    let month_end = month_end(stack, month).await?;
    Ok(PipelineRun { stages, ingested, in_ledger: Rate { count: expected as usize, elapsed }, live_totals, month_end })
}

/// The pipeline's stages as the services time them: (stage, histogram, a label its series must
/// carry). Stages overlap in time; one whose busy time nears the run's is what holds it back.
const STAGES: [(&str, &str, &str); 7] = [
    ("ingest: `SubmitBatch` calls", "radfin_grpc_request_duration_seconds", "SubmitBatch"),
    (
        "ingest: store transactions (in the calls)",
        "radfin_db_operation_duration_seconds",
        "operation=\"store_reports\"",
    ),
    ("ingest relay: outbox reads and deletes", "radfin_db_operation_duration_seconds", "operation=\"outbox_"),
    ("pricing: batches, handled and acked", "radfin_consumer_batch_duration_seconds", "consumer=\"pricing\""),
    (
        "pricing: latest revisions read (in the batches)",
        "radfin_db_operation_duration_seconds",
        "operation=\"latest_reports\"",
    ),
    ("ledger: batches, booked and acked", "radfin_consumer_batch_duration_seconds", "consumer=\"ledger\""),
    (
        "ledger: booking transactions (in the batches)",
        "radfin_db_operation_duration_seconds",
        "operation=\"book_live_facts\"",
    ),
];

/// Each of [`STAGES`]' `_count` and `_sum` so far, from the services' `/metrics` (one registry,
/// shared by the services in this process).
async fn stage_totals(stack: &Stack) -> anyhow::Result<Vec<(u64, Duration)>> {
    let text =
        reqwest::get(format!("http://{}/metrics", stack.metrics.ingest)).await?.error_for_status()?.text().await?;
    // Each matching series' value, summed as `T` (a histogram has one series per label set).
    fn total<T: std::iter::Sum<T>>(
        text: &str,
        series: &str,
        label: &str,
        value: impl Fn(f64) -> T,
    ) -> anyhow::Result<T> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{series}{{")) && l.contains(label))
            .map(|line| {
                let v = line.rsplit(' ').next().unwrap_or_default();
                Ok(value(v.parse::<f64>().with_context(|| format!("metrics line {line:?}"))?))
            })
            .sum()
    }
    STAGES
        .iter()
        .map(|(_, name, label)| {
            let count = total(&text, &format!("{name}_count"), label, |v| v as u64)?;
            let busy = total(&text, &format!("{name}_sum"), label, Duration::from_secs_f64)?;
            Ok((count, busy))
        })
        .collect()
}

/// The month's end once the pipeline settled: the close, then a retroactive rule change for one
/// client rerun (previewed, then the previewed run applied).
async fn month_end(stack: &Stack, month: &GeneratedMonth) -> anyhow::Result<MonthEnd> {
    let mut ledger = stack.ledger_client().await?;
    let started = Instant::now();
    let closed = ledger
        .close_period(ClosePeriodRequest { period: month.period.to_string(), reason: "benchmark".into() })
        .await?
        .into_inner();
    let close = started.elapsed();
    anyhow::ensure!(closed.closed_now, "the period was already closed");

    // Client 0 is repriced with another client's rule shape, recorded now for the whole year.
    let c = &month.clients[0];
    let mut p = stack.pricing_client().await?;
    p.put_client_rules(pricing::PutClientRulesRequest {
        client_id: c.client_id.to_string(),
        effective_from: "2020-01-01".into(),
        document: client_rules_document(1, &c.client_id, c.currency).to_string(),
    })
    .await?;
    let request = |mode: RerunMode, run_id: u64| RerunPeriodRequest {
        period: month.period.to_string(),
        reason: "benchmark: retroactive rule change".into(),
        mode: mode as i32,
        run_id,
    };
    let started = Instant::now();
    let preview = ledger.rerun_period(request(RerunMode::Preview, 0)).await?.into_inner();
    let rerun_preview = started.elapsed();
    let run_id = preview.manifest.as_ref().map_or(0, |m| m.run_id);
    let started = Instant::now();
    let applied = ledger.rerun_period(request(RerunMode::Apply, run_id)).await?.into_inner();
    let rerun_apply = started.elapsed();
    anyhow::ensure!(applied.applied && !applied.already_applied, "the rerun was not applied");
    Ok(MonthEnd {
        close,
        invoices: closed.invoices.len(),
        statements: closed.payout_statements.len(),
        rerun_preview,
        rerun_apply,
        corrections: applied.credit_notes.len() + applied.invoices.len() + applied.payout_adjustments.len(),
    })
}

/// Whether the ledger's live totals of `period` equal the engine's price of the stored month,
/// per client: revenue in the contract currency and in INR (spec §6), COGS and billable reports
/// (`radfin_harness::live_view_differences`). Returns what was found equal, for the table.
async fn check_live_totals(stack: &Stack, period: Period, engine: &PeriodPricing) -> anyhow::Result<String> {
    // Every report is booked by now; what may still be in flight is a last batch's facts.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut differences = radfin_harness::live_view_differences(stack, period).await?;
    while !differences.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        differences = radfin_harness::live_view_differences(stack, period).await?;
    }
    anyhow::ensure!(differences.is_empty(), "the live view differs from the engine:\n{}", differences.join("\n"));
    let revenue: Decimal = engine.invoices.iter().map(|i| i.taxable_value).sum();
    Ok(format!(
        "equal for {} clients (revenue in contract currencies Σ {revenue}, and INR, COGS)",
        engine.invoices.len()
    ))
}

/// The results as markdown.
fn table(copy: &Rate, publish: &Rate, runs: &[(usize, anyhow::Result<PipelineRun>)]) -> String {
    let mut t = String::new();
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let _ = writeln!(t, "| baseline on this machine | count | time | rate |");
    let _ = writeln!(t, "| --- | ---: | ---: | ---: |");
    let _ = writeln!(
        t,
        "| PostgreSQL `COPY … FROM STDIN BINARY`, one connection, ledger-shaped rows into a logged table (`ledger_entries`' columns and primary key only) | {} rows | {} | {} rows/s |",
        thousands(copy.count),
        secs(copy.elapsed),
        thousands(copy.rate())
    );
    let _ = writeln!(
        t,
        "| JetStream publish, 200-byte messages with `Nats-Msg-Id`, file storage, every ack awaited, {MAX_IN_FLIGHT} in flight | {} msgs | {} | {} msgs/s |",
        thousands(publish.count),
        secs(publish.elapsed),
        thousands(publish.rate())
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| end to end, {CLIENTS} clients, {PROVIDERS} radiologists: report events | current final reports | ingested after | in the ledger after | reports/s | ÷ (COPY rows/s ÷ 2) | ÷ (publish msgs/s ÷ 2) | live totals |"
    );
    let _ = writeln!(t, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    // A report makes two ledger rows and crosses JetStream twice (reports, priced).
    let copy_per_report = copy.rate() / 2;
    let publish_per_report = publish.rate() / 2;
    for (reports, run) in runs {
        match run {
            Ok(r) => {
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    thousands(*reports),
                    thousands(r.in_ledger.count),
                    secs(r.ingested),
                    secs(r.in_ledger.elapsed),
                    thousands(r.in_ledger.rate()),
                    ratio(r.in_ledger.rate(), copy_per_report),
                    ratio(r.in_ledger.rate(), publish_per_report),
                    r.live_totals
                );
            }
            Err(e) => {
                let why = format!("{e:#}").replace('|', "\\|").replace('\n', " ");
                let _ = writeln!(t, "| {} | failed: {why} | | | | | | |", thousands(*reports));
            }
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| month end: report events | close (target ≤ 10 s at 1,000,000) | documents | rerun preview | rerun apply (together target ≤ 30 s) | corrections issued |"
    );
    let _ = writeln!(t, "| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (reports, run) in runs {
        if let Ok(r) = run {
            let m = &r.month_end;
            let _ = writeln!(
                t,
                "| {} | {} | {} invoices, {} payout statements | {} | {} | {} |",
                thousands(*reports),
                secs(m.close),
                m.invoices,
                m.statements,
                secs(m.rerun_preview),
                secs(m.rerun_apply),
                m.corrections
            );
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| where the time went: report events | stage | calls, batches or transactions | busy (summed durations) | ÷ the run's time |"
    );
    let _ = writeln!(t, "| ---: | --- | ---: | ---: | ---: |");
    for (reports, run) in runs {
        if let Ok(r) = run {
            for ((stage, _, _), (count, busy)) in STAGES.iter().zip(&r.stages) {
                let _ = writeln!(
                    t,
                    "| {} | {stage} | {} | {} | {} |",
                    thousands(*reports),
                    thousands(count),
                    secs(*busy),
                    ratio(busy.as_nanos(), r.in_ledger.elapsed.as_nanos())
                );
            }
        }
    }
    let measured: Vec<(usize, u128)> =
        runs.iter().filter_map(|(n, r)| r.as_ref().ok().map(|r| (*n, r.in_ledger.rate()))).collect();
    let smallest = measured.iter().min_by_key(|(n, _)| *n);
    let largest = measured.iter().max_by_key(|(n, _)| *n);
    let _ = writeln!(t);
    match (smallest, largest) {
        (Some(&(small, small_rate)), Some(&(large, large_rate))) if large > small => {
            let _ = writeln!(
                t,
                "Reports/s at {} report events ÷ at {}: **{}** (target ≥ 1: cost linear in the month's size).",
                thousands(large),
                thousands(small),
                ratio(large_rate, small_rate)
            );
        }
        _ => {
            let _ = writeln!(t, "Reports/s at the largest size ÷ at the smallest: needs two sizes that ran.");
        }
    }
    t
}

/// `RADFIN_BENCH_REPORTS`-like: comma-separated sizes.
fn env_sizes(name: &str, default: &str) -> anyhow::Result<Vec<usize>> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let sizes = value
        .split(',')
        .map(|s| s.trim().replace('_', "").parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<Vec<_>>>()
        .with_context(|| format!("{name}={value:?}: expected positive sizes separated by commas"))?;
    Ok(sizes)
}

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("{name}={value:?}: expected a positive count")),
        Err(_) => Ok(default),
    }
}

/// Where the tables go: `RADFIN_BENCH_OUT`, or the workspace's `target/bench`.
fn out_dir() -> PathBuf {
    std::env::var_os("RADFIN_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"))
}

/// `a ÷ b` with three decimals.
fn ratio(a: u128, b: u128) -> String {
    let thousandths = (a * 1000 + b / 2) / b.max(1);
    format!("{}.{:03}", thousandths / 1000, thousandths % 1000)
}

/// `1234567` → `1,234,567`.
fn thousands(n: impl ToString) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
