//! Traces across every hop: a trace started by a gRPC call to ingest goes on through ingest's
//! database write and publish, pricing's consume and publish, to the ledger's consume and its
//! database write, all with the caller's trace id; and a client channel sends the caller's trace
//! context. Spans are collected by an in-memory exporter; a test target of its own, since it
//! installs the process's global subscriber and tracer provider.

use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use radfin_harness::{Stack, eventually};
use radfin_proto::common::v1::{Grade, Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::{ReportEvent, SubmitReportRequest};
use radfin_proto::ledger::v1::ListReportEntriesRequest;
use radfin_proto::pricing::v1 as pricing;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const PROVIDER_RULES: &str = include_str!("../../../samples/rules/provider.json");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// RAD-007, the sample provider rules, and client HOSP-INR with per-study INR prices.
async fn setup(stack: &Stack) {
    let mut p = stack.pricing_client().await.unwrap();
    let provider = pricing::Provider {
        provider_id: "RAD-007".into(),
        name: "Dr RAD-007".into(),
        grade: Grade::Consultant as i32,
        practicing_since: "2014-01-01".into(),
        pan: "ABCDE1234F".into(),
        effective_from: "2025-01-01".into(),
    };
    p.put_provider(pricing::PutProviderRequest { provider: Some(provider) }).await.unwrap();
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2025-01-01".into(),
        document: PROVIDER_RULES.into(),
    })
    .await
    .unwrap();
    let client = pricing::Client {
        client_id: "HOSP-INR".into(),
        name: "HOSP-INR Hospital".into(),
        country: "IN".into(),
        state_code: "29".into(),
        gstin: String::new(),
        currency: "INR".into(),
        effective_from: "2025-01-01".into(),
    };
    p.put_client(pricing::PutClientRequest { client: Some(client) }).await.unwrap();
    let rules = serde_json::json!({
        "client_id": "HOSP-INR",
        "currency": "INR",
        "contract": {"type": "PER_STUDY"},
        "tier_mode": "GRADUATED",
        "tier_scope": "ALL_MODALITIES",
        "tiers": [{"up_to": null}],
        "unit_prices": {"XRAY": ["500.00"], "MRI": ["4000.00"], "CT": ["2000.00"]},
        "tax": {"treatment": "TAXABLE"}
    });
    p.put_client_rules(pricing::PutClientRulesRequest {
        client_id: "HOSP-INR".into(),
        effective_from: "2025-01-01".into(),
        document: rules.to_string(),
    })
    .await
    .unwrap();
}

fn mri(report_id: &str) -> ReportEvent {
    ReportEvent {
        report_id: report_id.into(),
        revision: 1,
        client_id: "HOSP-INR".into(),
        provider_id: "RAD-007".into(),
        modality: Modality::Mri as i32,
        body_regions: 1,
        priority: Priority::Routine as i32,
        finalized_at: "2026-10-10T08:00:00Z".into(),
        status: ReportStatus::Final as i32,
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

fn describe(spans: &[SpanData]) -> String {
    spans
        .iter()
        .map(|s| format!("{} {:?} {} parent {}", s.name, s.span_kind, s.span_context.span_id(), s.parent_span_id))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_is_traced_to_the_ledgers_database_write() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let _telemetry = radfin_service::telemetry::init_with_provider("radfin-harness", provider).unwrap();

    let stack = Stack::start().await.unwrap();
    setup(&stack).await;

    // A caller in trace TRACE_ID submits a report.
    let mut ingest = stack.ingest_client().await.unwrap();
    let mut request = tonic::Request::new(SubmitReportRequest { report: Some(mri("RPT-TRACED")) });
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01");
    request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    ingest.submit_report(request).await.unwrap();

    let ledger = stack.ledger_client().await.unwrap();
    eventually("the ledger's entries of RPT-TRACED", || {
        let mut ledger = ledger.clone();
        async move {
            let request = ListReportEntriesRequest { report_id: "RPT-TRACED".into() };
            let entries = ledger.list_report_entries(request).await.unwrap().into_inner().entries;
            (!entries.is_empty()).then_some(())
        }
    })
    .await;

    // The ledger's database write of the priced report is in the caller's trace.
    let traced = |exporter: &InMemorySpanExporter| -> Vec<SpanData> {
        let spans = exporter.get_finished_spans().unwrap();
        spans.into_iter().filter(|s| s.span_context.trace_id().to_string() == TRACE_ID).collect()
    };
    let spans = eventually("the ledger's database write in the caller's trace", || {
        let spans = traced(&exporter);
        let booked = spans.iter().any(|s| s.name == "book_live_facts");
        std::future::ready(booked.then_some(spans))
    })
    .await;
    let all = describe(&spans);
    let named = |name: &str| -> Vec<&SpanData> { spans.iter().filter(|s| s.name == name).collect() };

    // gRPC in: the server span is the caller's span's child.
    let server = named("radfin.ingest.v1.IngestService/SubmitReport");
    let [server] = server.as_slice() else { panic!("one server span of SubmitReport:\n{all}") };
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.parent_span_id.to_string(), CALLER_SPAN_ID);
    assert!(server.parent_span_is_remote);
    assert_eq!(attribute(server, "rpc.grpc.status_code").as_deref(), Some("0"), "{all}");

    // Ingest's database write, within the call.
    let stored = named("store_reports");
    let [stored] = stored.as_slice() else { panic!("one store_reports span:\n{all}") };
    assert_eq!(stored.parent_span_id, server.span_context.span_id());
    assert_eq!(stored.span_kind, SpanKind::Client);
    assert_eq!(attribute(stored, "db.operation.name").as_deref(), Some("store_reports"));

    // NATS publish (ingest's relay, pricing) and consume (pricing, ledger).
    let publishes = named("bus.publish");
    assert!(publishes.len() >= 2, "ingest's and pricing's publishes:\n{all}");
    assert!(publishes.iter().all(|s| s.span_kind == SpanKind::Producer));
    let consume = |consumer: &str| -> Vec<&SpanData> {
        let found = named(&format!("{consumer} process"));
        assert!(!found.is_empty(), "{consumer} consumes in the trace:\n{all}");
        for span in &found {
            assert_eq!(span.span_kind, SpanKind::Consumer);
            assert!(
                publishes.iter().any(|p| p.span_context.span_id() == span.parent_span_id),
                "{consumer} consumes a message published in the trace:\n{all}"
            );
        }
        found
    };
    let priced = consume("pricing");
    let booked = consume("ledger");
    assert!(
        publishes.iter().any(|p| priced.iter().any(|c| p.parent_span_id == c.span_context.span_id())),
        "pricing publishes its facts while consuming:\n{all}"
    );

    // The ledger's database writes, within its consume spans.
    let books = named("book_live_facts");
    for book in books {
        assert!(booked.iter().any(|c| book.parent_span_id == c.span_context.span_id()), "{all}");
        assert_eq!(book.span_kind, SpanKind::Client);
        assert_eq!(attribute(book, "db.system.name").as_deref(), Some("postgresql"));
    }

    // gRPC out: a client channel sends the caller's span's context.
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", stack.ingest)).unwrap().connect().await.unwrap();
    let mut client = IngestServiceClient::new(radfin_service::telemetry::traced(channel));
    let caller = tracing::info_span!("caller");
    let caller_context = caller.context().span().span_context().clone();
    client
        .submit_report(SubmitReportRequest { report: Some(mri("RPT-CLIENT")) })
        .instrument(caller.clone())
        .await
        .unwrap();
    drop(caller);
    let server = eventually("the server span of the client's call", || {
        let spans = exporter.get_finished_spans().unwrap();
        let server = spans.into_iter().find(|s| {
            s.name == "radfin.ingest.v1.IngestService/SubmitReport"
                && s.span_context.trace_id() == caller_context.trace_id()
        });
        std::future::ready(server)
    })
    .await;
    assert_eq!(server.parent_span_id, caller_context.span_id());

    stack.stop().await.unwrap();
}
