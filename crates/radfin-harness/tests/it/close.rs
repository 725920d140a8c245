//! A month's life after the live view (spec §6): close, a late report held, a retroactive price
//! change rerun (preview, apply, apply again), credit notes and the client's statement.

use std::collections::BTreeMap;

use radfin_proto::ingest::v1::SubmitBatchRequest;
use radfin_proto::ledger::v1 as ledger;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use rust_decimal::Decimal;
use tonic::Code;
use tonic::transport::Channel;

use super::*;

const PERIOD: &str = "2026-10";

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// `n` reports of a client in October 2026, spread over the month, alternating modalities.
fn month(prefix: &str, client_id: &str, n: u32) -> Vec<ReportEvent> {
    (0..n)
        .map(|i| {
            let mut r = night_mri(&format!("{prefix}-{i:03}"), client_id);
            r.modality = [Modality::Mri, Modality::Ct, Modality::Xray][i as usize % 3] as i32;
            r.provider_id = if i % 2 == 0 { "RAD-007" } else { "RAD-001" }.into();
            r.finalized_at = format!("2026-10-{:02}T{:02}:15:00Z", 1 + i % 28, 3 + i % 12);
            r.priority = if i % 5 == 0 { Priority::Stat } else { Priority::Routine } as i32;
            r
        })
        .collect()
}

async fn summary(l: &mut LedgerServiceClient<Channel>) -> ledger::SummarizePeriodResponse {
    l.summarize_period(ledger::SummarizePeriodRequest { period: PERIOD.into() }).await.unwrap().into_inner()
}

/// Waits until the live view holds `reports` billable reports and equals the engine's price.
async fn settled(stack: &Stack, reports: u64) {
    let l = stack.ledger_client().await.unwrap();
    eventually("the live view to settle", || {
        let mut l = l.clone();
        async move {
            (summary(&mut l).await.reports == reports
                && radfin_harness::live_view_differences(stack, PERIOD.parse().unwrap()).await.unwrap().is_empty()
                && radfin_harness::margin_summary_differences(stack, PERIOD.parse().unwrap()).await.unwrap().is_empty())
            .then_some(())
        }
    })
    .await;
}

fn sum(values: impl IntoIterator<Item = String>) -> Decimal {
    values.into_iter().map(|v| dec(&v)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_is_closed_corrected_by_a_rerun_and_credited_with_every_sum_equal_to_the_ledger() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let mut p = stack.pricing_client().await.unwrap();
    for day in 1..=31 {
        p.put_fx_rate(pricing::PutFxRateRequest {
            rate_date: format!("2026-10-{day:02}"),
            currency: "USD".into(),
            inr_per_unit: format!("83.{:06}", 100_000 + day * 1_717),
            reason: "test rates".into(),
        })
        .await
        .unwrap();
    }
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut reports = month("INR", "HOSP-INR", 30);
    reports.extend(month("USD", "HOSP-USD", 21));
    // One USD report is cancelled by a later revision: it earns and costs nothing.
    let mut cancelled = reports.last().unwrap().clone();
    cancelled.revision = 2;
    cancelled.status = ReportStatus::Cancelled as i32;
    reports.push(cancelled);
    ingest.submit_batch(SubmitBatchRequest { reports: reports.clone() }).await.unwrap();
    settled(&stack, 50).await;
    let live = summary(&mut stack.ledger_client().await.unwrap()).await;

    // Close: one invoice per client, one statement per provider, numbered gaplessly; their sums
    // are the close run's, which equal the live view's.
    let mut l = stack.ledger_client().await.unwrap();
    let close = |reason: &str| ledger::ClosePeriodRequest { period: PERIOD.into(), reason: reason.into() };
    let closed = l.close_period(close("month end")).await.unwrap().into_inner();
    assert!(closed.closed_now);
    assert_eq!(closed.period.as_ref().unwrap().state, ledger::PeriodState::Closed as i32);
    assert_eq!((closed.reports, &closed.revenue_inr, &closed.cogs_inr), (50, &live.revenue_inr, &live.cogs_inr));
    let numbers: Vec<&str> = closed.invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, ["INV/26-27/000001", "INV/26-27/000002"]);
    assert_eq!(sum(closed.invoices.iter().map(|i| i.taxable_value_inr.clone())), dec(&live.revenue_inr));
    for inv in &closed.invoices {
        let c = live.clients.iter().find(|c| c.client_id == inv.client_id).unwrap();
        assert_eq!(dec(&inv.taxable_value), dec(&c.revenue), "{}", inv.client_id);
        assert_eq!(dec(&inv.total), dec(&inv.taxable_value) + dec(&inv.tax_total));
        assert_eq!(sum(inv.lines.iter().map(|l| l.amount.clone())), dec(&inv.taxable_value));
    }
    let inr = closed.invoices.iter().find(|i| i.client_id == "HOSP-INR").unwrap();
    // HOSP-INR is in Karnataka, the supplier's state: CGST + SGST at 9% each.
    assert_eq!(inr.taxes.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>(), ["CGST", "SGST"]);
    let usd = closed.invoices.iter().find(|i| i.client_id == "HOSP-USD").unwrap();
    assert_eq!(usd.tax_treatment, "EXPORT_LUT");
    assert!(usd.endorsement.contains("Letter of Undertaking"));
    assert_eq!(sum(closed.payout_statements.iter().map(|s| s.gross.clone())), dec(&live.cogs_inr));
    for s in &closed.payout_statements {
        assert_eq!(dec(&s.net_payable), dec(&s.gross) - dec(&s.tds_amount));
    }
    let no_differences: Vec<String> = Vec::new();
    assert_eq!(
        radfin_harness::margin_summary_differences(&stack, PERIOD.parse().unwrap()).await.unwrap(),
        no_differences
    );
    // Closing again returns the same documents.
    let again = l.close_period(close("again")).await.unwrap().into_inner();
    assert!(!again.closed_now);
    assert_eq!((&again.invoices, &again.payout_statements), (&closed.invoices, &closed.payout_statements));

    // A report for the closed month is stored and held, not booked.
    let late = month("LATE", "HOSP-USD", 1).remove(0);
    ingest.submit_batch(SubmitBatchRequest { reports: vec![late.clone()] }).await.unwrap();
    eventually("the late report to be held", || {
        let mut p = p.clone();
        let late = late.clone();
        async move {
            let held = p
                .list_held_reports(pricing::ListHeldReportsRequest {
                    status: "HELD_CLOSED_PERIOD".into(),
                    period: PERIOD.into(),
                })
                .await
                .unwrap()
                .into_inner();
            held.reports.iter().any(|h| h.report_id == late.report_id).then_some(())
        }
    })
    .await;
    assert_eq!(summary(&mut l).await.revenue_inr, live.revenue_inr, "nothing dated in a closed month changes");

    // A lower January-style rate for HOSP-INR, recorded now for the whole year: the rerun
    // credits HOSP-INR and invoices HOSP-USD's late report.
    let lower = client_rules("HOSP-INR", "INR").replace("4000.00", "3000.00").replace("2000.00", "1500.00");
    p.put_client_rules(pricing::PutClientRulesRequest {
        client_id: "HOSP-INR".into(),
        effective_from: "2025-01-01".into(),
        document: lower,
    })
    .await
    .unwrap();
    let rerun = |mode: ledger::RerunMode, run_id: u64| ledger::RerunPeriodRequest {
        period: PERIOD.into(),
        reason: "renegotiated INR prices".into(),
        mode: mode as i32,
        run_id,
    };
    let refused = l
        .rerun_period(ledger::RerunPeriodRequest { reason: String::new(), ..rerun(ledger::RerunMode::Preview, 0) })
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument, "a rerun needs a reason");
    let preview = l.rerun_period(rerun(ledger::RerunMode::Preview, 0)).await.unwrap().into_inner();
    assert!(!preview.applied);
    let manifest = preview.manifest.clone().unwrap();
    assert_eq!((manifest.reports, manifest.report_set_hash.len()), (52, 64));
    assert!(preview.credit_notes.iter().all(|c| c.number.is_empty()));
    let by_client: BTreeMap<&str, &ledger::ClientDifference> =
        preview.clients.iter().map(|d| (d.client_id.as_str(), d)).collect();
    let inr_diff = by_client["HOSP-INR"];
    let usd_diff = by_client["HOSP-USD"];
    for d in &preview.clients {
        for e in [d.contract.as_ref().unwrap(), d.inr.as_ref().unwrap()] {
            assert_eq!(dec(&e.price) + dec(&e.volume) + dec(&e.fx), dec(&e.difference), "{}", d.client_id);
        }
        assert_eq!(dec(&d.rerun) - dec(&d.billed), dec(&d.contract.as_ref().unwrap().difference));
    }
    assert!(dec(&inr_diff.contract.as_ref().unwrap().price) < Decimal::ZERO);
    assert!(dec(&usd_diff.contract.as_ref().unwrap().volume) > Decimal::ZERO);
    assert_eq!(preview.credit_notes.len(), 1);
    assert_eq!(preview.invoices.len(), 1);
    assert_eq!(dec(&preview.credit_notes[0].taxable_value), -dec(&inr_diff.contract.as_ref().unwrap().difference));
    assert_eq!(dec(&preview.invoices[0].taxable_value), dec(&usd_diff.contract.as_ref().unwrap().difference));
    assert_eq!(preview.invoices[0].kind, "SUPPLEMENTARY");

    // Apply exactly the previewed run: the documents are the preview's, numbered; the originals
    // are unchanged; a second apply issues nothing.
    let before: Vec<ledger::Invoice> = closed.invoices.clone();
    let applied = l.rerun_period(rerun(ledger::RerunMode::Apply, manifest.run_id)).await.unwrap().into_inner();
    assert!(applied.applied && !applied.already_applied);
    assert_eq!(applied.credit_notes.len(), 1);
    assert_eq!(applied.credit_notes[0].number, "CRN/26-27/000001");
    assert_eq!(applied.credit_notes[0].taxable_value, preview.credit_notes[0].taxable_value);
    assert_eq!(applied.invoices[0].number, "SUP/26-27/000001");
    assert_eq!(applied.invoices[0].taxable_value, preview.invoices[0].taxable_value);
    assert_eq!(applied.invoices[0].corrects_invoice_number, usd.number);
    let supplier = radfin_pdf::Supplier {
        name: "radfin".into(),
        address: "Bengaluru".into(),
        gstin: None,
        state_code: "29".into(),
        pan: None,
    };
    let pdf =
        |invoice: &ledger::Invoice| radfin_pdf::invoice_pdf(invoice, &supplier, &radfin_pdf::Party::default()).unwrap();
    for original in &before {
        let now = l
            .get_invoice(ledger::GetInvoiceRequest { number: original.number.clone() })
            .await
            .unwrap()
            .into_inner()
            .invoice
            .expect("the invoice");
        assert!(pdf(&now) == pdf(original), "{}: the document is byte-identical", original.number);
        assert_eq!(
            ledger::Invoice { credited: String::new(), remaining: String::new(), ..now },
            ledger::Invoice { credited: String::new(), remaining: String::new(), ..original.clone() }
        );
    }
    assert_eq!(
        radfin_harness::margin_summary_differences(&stack, PERIOD.parse().unwrap()).await.unwrap(),
        no_differences
    );
    // The late report is in the period's current view now: no longer held.
    let held = p
        .list_held_reports(pricing::ListHeldReportsRequest {
            status: "HELD_CLOSED_PERIOD".into(),
            period: PERIOD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(held.reports.is_empty(), "{:?}", held.reports);
    let twice = l.rerun_period(rerun(ledger::RerunMode::Apply, manifest.run_id)).await.unwrap().into_inner();
    assert!(twice.already_applied);
    let all = l.list_invoices(ledger::ListInvoicesRequest::default()).await.unwrap().into_inner().invoices;
    assert_eq!(all.len(), 3, "a second apply issues nothing");
    // The period's current view is now the rerun.
    let current = summary(&mut l).await;
    let c = current.clients.iter().find(|c| c.client_id == "HOSP-INR").unwrap();
    assert_eq!(dec(&c.revenue), dec(&inr_diff.rerun));

    // A credit note by hand, idempotent by request id, never more than remains.
    let credit = |amount: &str, request_id: &str| ledger::IssueCreditNoteRequest {
        invoice_number: usd.number.clone(),
        reason: "goodwill".into(),
        lines: vec![ledger::CreditNoteLine {
            description: "service credit".into(),
            amount: amount.into(),
            ..Default::default()
        }],
        request_id: request_id.into(),
    };
    let note = l.issue_credit_note(credit("1.00", "goodwill-1")).await.unwrap().into_inner().credit_note.unwrap();
    assert_eq!(note.number, "CRN/26-27/000002");
    let same = l.issue_credit_note(credit("1.00", "goodwill-1")).await.unwrap().into_inner().credit_note.unwrap();
    assert_eq!(same, note);
    let too_much = l.issue_credit_note(credit(&usd.taxable_value, "goodwill-2")).await.unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition, "{too_much:?}");
    assert!(too_much.message().contains("exceeds what remains"), "{}", too_much.message());
    // Concurrent credit notes: numbers stay gapless and consecutive.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let mut l = l.clone();
            let request = credit("0.50", &format!("concurrent-{i}"));
            tokio::spawn(
                async move { l.issue_credit_note(request).await.unwrap().into_inner().credit_note.unwrap().number },
            )
        })
        .collect();
    let mut numbers = Vec::new();
    for h in handles {
        numbers.push(h.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (3..9).map(|n| format!("CRN/26-27/{n:06}")).collect::<Vec<_>>());

    // The client's statement: Σ invoices − Σ credit notes = total due.
    let account = l
        .get_client_statement(ledger::GetClientStatementRequest { client_id: "HOSP-USD".into() })
        .await
        .unwrap()
        .into_inner()
        .statement
        .expect("the statement");
    let invoiced: Decimal = all.iter().filter(|i| i.client_id == "HOSP-USD").map(|i| dec(&i.total)).sum();
    let credited: Decimal = dec("1.00") + dec("3.00");
    let usd_balance = account.balances.iter().find(|b| b.currency == "USD").unwrap();
    assert_eq!(dec(&usd_balance.invoiced), invoiced);
    assert_eq!(dec(&usd_balance.credited), credited);
    assert_eq!(dec(&usd_balance.total_due), invoiced - credited);

    // Every privileged action left an audit row.
    let audit = l.list_audit_events(ledger::ListAuditEventsRequest { limit: 100 }).await.unwrap().into_inner();
    let actions: Vec<&str> = audit.events.iter().map(|e| e.action.as_str()).collect();
    for action in ["ClosePeriod", "RerunPeriod PREVIEW", "RerunPeriod APPLY", "IssueCreditNote"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(audit.events.iter().any(|e| e.outcome == "FAILED" && e.action == "IssueCreditNote"));

    dashboard_serves_the_documents_as_pdf(&stack, &all).await;
    stack.stop().await.unwrap();
}

/// The dashboard lists the period's documents, each with its PDF, and the PDF it serves is the
/// one `radfin invoices pdf` renders from the ledger's invoice (the same bytes).
async fn dashboard_serves_the_documents_as_pdf(stack: &Stack, invoices: &[ledger::Invoice]) {
    let mut l = stack.ledger_client().await.unwrap();
    let mut p = stack.pricing_client().await.unwrap();
    let notes = l.list_credit_notes(ledger::ListCreditNotesRequest::default()).await.unwrap().into_inner().credit_notes;
    let statements =
        l.list_payout_statements(ledger::ListPayoutStatementsRequest::default()).await.unwrap().into_inner().statements;
    let http = reqwest::Client::new();
    let base = format!("http://{}", stack.reporting_http);
    let get = |path: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http.get(format!("{base}{path}")).send().await.unwrap();
            let status = response.status();
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            (status, content_type.unwrap_or_default(), response.bytes().await.unwrap().to_vec())
        }
    };
    let (status, _, body) = get(format!("/api/documents?from={PERIOD}&to={PERIOD}")).await;
    assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
    let table: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut listed: Vec<&str> =
        table["rows"].as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap()).collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = invoices
        .iter()
        .map(|i| i.number.as_str())
        .chain(notes.iter().map(|n| n.number.as_str()))
        .chain(statements.iter().map(|s| s.number.as_str()))
        .collect();
    expected.sort_unstable();
    assert_eq!(listed, expected, "the dashboard lists every document of the period");

    let supplier = radfin_pdf::Supplier { name: "radfin".into(), state_code: "29".into(), ..Default::default() };
    let invoice = &invoices[0];
    let clients = p
        .get_client(pricing::GetClientRequest { client_id: invoice.client_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .clients;
    let rendered =
        radfin_pdf::invoice_pdf(invoice, &supplier, &radfin_pdf::client_party(&clients, &invoice.issue_date)).unwrap();
    let (status, content_type, pdf) = get(format!("/documents/pdf?number={}", invoice.number)).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(content_type, "application/pdf");
    assert!(pdf == rendered, "the dashboard's PDF of {} is the CLI's", invoice.number);
    for number in [&notes[0].number, &statements[0].number] {
        let (status, content_type, pdf) = get(format!("/documents/pdf?number={number}")).await;
        assert!(
            status.is_success() && content_type == "application/pdf" && pdf.starts_with(b"%PDF-"),
            "{number}: {status}"
        );
    }
    let (status, _, body) = get("/documents/pdf?number=INV/26-27/999999".to_owned()).await;
    assert_eq!(status.as_u16(), 404, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_that_has_not_ended_cannot_be_closed() {
    let stack = Stack::start().await.unwrap();
    let mut l = stack.ledger_client().await.unwrap();
    let next_month = chrono::Utc::now().date_naive() + chrono::Days::new(40);
    let period = radfin_domain::Period::of_date(next_month).to_string();
    let err = l.close_period(ledger::ClosePeriodRequest { period, reason: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("has not ended"), "{}", err.message());
    let err = l
        .close_period(ledger::ClosePeriodRequest { period: "2026-13".into(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    stack.stop().await.unwrap();
}

/// A period's LIVE run summed per client, straight from the database.
async fn live_entries(stack: &Stack, period: &str) -> Vec<radfin_db::ledger::ClientTotalsRow> {
    let mut conn = stack.db.pool().get().await.unwrap();
    radfin_db::ledger::summarize_run(&mut conn, period.parse().unwrap(), None).await.unwrap()
}

/// 200 closes of different months, each racing with a submission of reports dated in it: no
/// live entry of a month commits after its close; every stored report is either in the close or
/// held for a rerun; invoice and statement numbers stay gapless and consecutive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_racing_with_submissions_lose_nothing_and_number_gaplessly() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let stack = Stack::start().await.unwrap();
    radfin_harness::fixtures::setup_since_2000(&stack).await.unwrap();
    let periods: Vec<radfin_domain::Period> =
        std::iter::successors(Some("2005-01".parse().unwrap()), |p: &radfin_domain::Period| Some(p.next()))
            .take(200)
            .collect();
    let mut frozen: BTreeMap<String, (Vec<radfin_db::ledger::ClientTotalsRow>, u64)> = BTreeMap::new();
    let mut numbers: Vec<String> = Vec::new();
    for chunk in periods.chunks(10) {
        let trials = chunk.iter().enumerate().map(|(i, period)| {
            let stack = &stack;
            async move {
                let mut ingest = stack.ingest_client().await.unwrap();
                let mut l = stack.ledger_client().await.unwrap();
                let reports: Vec<ReportEvent> = (0..4)
                    .map(|k| {
                        let mut r = night_mri(&format!("R-{period}-{k}"), "HOSP-INR");
                        r.finalized_at = format!("{}-{:02}T06:00:00Z", period, 3 + k * 5);
                        r
                    })
                    .collect();
                let submit = async {
                    tokio::time::sleep(std::time::Duration::from_millis((i as u64 * 7) % 40)).await;
                    ingest.submit_batch(SubmitBatchRequest { reports }).await.unwrap();
                };
                let close = async {
                    tokio::time::sleep(std::time::Duration::from_millis((i as u64 * 13) % 40)).await;
                    let closed = l
                        .close_period(ledger::ClosePeriodRequest { period: period.to_string(), reason: "race".into() })
                        .await
                        .unwrap()
                        .into_inner();
                    (live_entries(stack, &period.to_string()).await, closed)
                };
                let ((live, closed), ()) = tokio::join!(close, submit);
                (period.to_string(), live, closed)
            }
        });
        for (period, live, closed) in futures::future::join_all(trials).await {
            numbers.extend(closed.invoices.iter().map(|i| i.number.clone()));
            numbers.extend(closed.payout_statements.iter().map(|s| s.number.clone()));
            frozen.insert(period, (live, closed.period.unwrap().close_run_id));
        }
    }
    // Every stored report of each month is in its close or held for a rerun.
    let mut conn = stack.db.pool().get().await.unwrap();
    for (period, (_, close_run)) in &frozen {
        let p: radfin_domain::Period = period.parse().unwrap();
        let stored = radfin_db::reports::current_of_period(&mut conn, p).await.unwrap();
        assert_eq!(stored.len(), 4, "{period}: the submission was stored");
        let ids: Vec<(&str, u32)> = stored.iter().map(|r| (r.report_id.as_str(), r.revision)).collect();
        let booked = radfin_db::ledger::booked_in_run(&mut conn, p, *close_run as i64, &ids).await.unwrap();
        let missing: Vec<&str> =
            ids.iter().filter(|(id, rev)| !booked.contains(&(id.to_string(), *rev))).map(|(id, _)| *id).collect();
        if !missing.is_empty() {
            eventually(&format!("{period}: {missing:?} held for a rerun"), || async {
                let mut conn = stack.db.pool().get().await.unwrap();
                let filter = radfin_db::held::HeldFilter {
                    status: Some(radfin_db::held::HeldStatus::HeldClosedPeriod),
                    period: Some(p),
                    ..Default::default()
                };
                let held = radfin_db::held::current(&mut conn, &filter).await.unwrap();
                missing.iter().all(|m| held.iter().any(|h| h.report_id.as_str() == *m)).then_some(())
            })
            .await;
        }
    }
    // Let the pipeline drain, then check that no live entry of a closed month came after its close.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for (period, (live, _)) in &frozen {
        assert_eq!(live_entries(&stack, period).await, *live, "{period}: a live entry committed after the close");
    }
    for prefix in ["INV/", "PAY/"] {
        let mut n: Vec<u32> = numbers
            .iter()
            .filter(|s| s.starts_with(prefix))
            .map(|s| s.rsplit('/').next().unwrap().parse().unwrap())
            .collect();
        n.sort_unstable();
        assert_eq!(n, (1..=n.len() as u32).collect::<Vec<_>>(), "{prefix} numbers are gapless");
    }
    stack.stop().await.unwrap();
}
