//! radfin-bus against a real NATS JetStream server (`RADFIN_TEST_NATS_URL`, else
//! `RADFIN_NATS_URL`, else `nats://127.0.0.1:4222`). Every test has its own prefix, hence its own streams, so tests run
//! in parallel; each deletes its streams at the end (best effort).

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::stream::StorageType;
use futures::TryStreamExt as _;
use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use radfin_bus::{
    Bus, BusConfig, BusError, Consumer, Delivery, PeriodStream, StoredMessage, headers, priced_msg_id, report_msg_id,
};
use radfin_domain::Period;
use radfin_proto::common::v1::{Modality, Priority, ReportStatus};
use radfin_proto::ingest::v1::ReportEvent;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// How long a test waits for an effect before it fails.
const DEADLINE: Duration = Duration::from_secs(15);
/// How long one pull waits for messages while polling.
const POLL: Duration = Duration::from_millis(250);

fn nats_url() -> String {
    radfin_bus::testing::nats_url()
}

/// A prefix no other test (or test run) uses.
fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos();
    format!("t{}x{}x{}", std::process::id(), nanos % 1_000_000_000_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn test_config() -> BusConfig {
    BusConfig {
        url: nats_url(),
        prefix: unique_prefix(),
        connection_name: "radfin-bus-tests".to_owned(),
        max_deliver: 3,
        ..BusConfig::default()
    }
}

/// A connected bus with its streams.
async fn bus_with(config: BusConfig) -> Bus {
    let bus = Bus::connect(&config).await.expect("nats with jetstream must be running (RADFIN_NATS_URL)");
    bus.ensure_streams().await.expect("streams");
    bus
}

async fn bus() -> Bus {
    bus_with(test_config()).await
}

/// Deletes the bus's streams (and with them their consumers); failures are ignored.
async fn teardown(bus: &Bus) {
    let names = bus.names();
    for stream in [names.reports_stream(), names.priced_stream(), names.dlq_stream()] {
        let _ = bus.jetstream().delete_stream(stream).await;
    }
}

/// A W3C trace-context propagator (process-wide, set once) and, for the calling thread, a
/// subscriber that turns tracing spans into OpenTelemetry spans. `#[tokio::test]` runs the
/// test on this thread.
fn telemetry() -> tracing::subscriber::DefaultGuard {
    static PROPAGATOR: Once = Once::new();
    PROPAGATOR.call_once(|| {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    });
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("radfin-bus-tests")));
    tracing::subscriber::set_default(subscriber)
}

fn period(s: &str) -> Period {
    s.parse().expect("a valid period")
}

fn report(report_id: &str, revision: u32, finalized_at: &str) -> ReportEvent {
    ReportEvent {
        report_id: report_id.to_owned(),
        revision,
        client_id: "HOSP-001".to_owned(),
        provider_id: "RAD-007".to_owned(),
        modality: Modality::Mri as i32,
        body_regions: 2,
        priority: Priority::Stat as i32,
        finalized_at: finalized_at.to_owned(),
        status: ReportStatus::Final as i32,
    }
}

/// Publishes a report event to its period's subject under its ingest message id.
async fn publish_report(bus: &Bus, period_: Period, event: &ReportEvent) -> radfin_bus::PublishAck {
    let subject = bus.names().report_subject(period_);
    bus.publish(&subject, &report_msg_id(&event.report_id, event.revision), event).await.expect("publish")
}

/// Pulls until `n` deliveries arrived, failing after [`DEADLINE`].
async fn fetch_exactly(consumer: &Consumer, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + DEADLINE;
    let mut deliveries = Vec::new();
    while deliveries.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} messages arrived in time", deliveries.len());
        deliveries.extend(consumer.fetch(n - deliveries.len(), POLL).await.expect("fetch"));
    }
    assert_eq!(deliveries.len(), n, "more messages than asked for");
    deliveries
}

/// Asserts that the consumer has nothing (more) to deliver.
async fn assert_nothing_pending(consumer: &Consumer) {
    let extra = consumer.fetch(10, POLL).await.expect("fetch");
    assert!(extra.is_empty(), "unexpected deliveries: {extra:?}");
}

#[tokio::test]
async fn ensure_streams_is_idempotent() {
    let config = test_config();
    let bus = bus_with(config.clone()).await;
    let names = bus.names().clone();
    let event = report("R-1", 1, "2026-01-10T10:00:00Z");
    publish_report(&bus, period("2026-01"), &event).await;

    // Again on the same connection, and from another "replica".
    bus.ensure_streams().await.expect("second ensure_streams");
    let other = Bus::connect(&config).await.expect("connect");
    other.ensure_streams().await.expect("ensure_streams from another connection");

    for (stream, subjects) in [
        (names.reports_stream(), names.stream_subjects(PeriodStream::Reports)),
        (names.priced_stream(), names.stream_subjects(PeriodStream::Priced)),
        (names.dlq_stream(), names.dlq_subjects()),
    ] {
        let mut handle = bus.jetstream().get_stream(stream).await.expect("stream exists");
        let info = handle.info().await.expect("stream info");
        assert_eq!(info.config.storage, StorageType::File, "{stream}");
        assert_eq!(info.config.duplicate_window, config.duplicate_window, "{stream}");
        assert_eq!(info.config.subjects, vec![subjects], "{stream}");
    }
    // Updating a stream keeps what it stored.
    let mut reports = bus.jetstream().get_stream(names.reports_stream()).await.expect("reports stream");
    assert_eq!(reports.info().await.expect("info").state.messages, 1);

    teardown(&bus).await;
}

#[tokio::test]
async fn publish_and_fetch_round_trip_with_headers_and_trace_context() {
    let _telemetry = telemetry();
    let bus = bus().await;
    let jan = period("2026-01");
    let event = report("R-100", 2, "2026-01-15T08:30:00Z");

    let span = tracing::info_span!("ingest report");
    let trace_id = span.context().span().span_context().trace_id();
    assert_ne!(trace_id, TraceId::INVALID, "the test span must be an OpenTelemetry span");
    let subject = bus.names().report_subject(jan);
    let ack = bus.publish(&subject, &report_msg_id("R-100", 2), &event).instrument(span).await.expect("publish");
    assert_eq!(ack.stream, bus.names().reports_stream());
    assert!(!ack.duplicate);

    let consumer = bus.durable_consumer(bus.names().reports_stream(), "pricing", None).await.expect("consumer");
    let [delivery] = <[Delivery; 1]>::try_from(fetch_exactly(&consumer, 1).await).expect("one delivery");
    assert_eq!(delivery.subject(), format!("{}.reports.2026-01", bus.names().prefix()));
    assert_eq!(delivery.stream(), bus.names().reports_stream());
    assert_eq!(delivery.stream_sequence(), ack.sequence);
    assert_eq!(delivery.delivered(), 1);
    assert!(!delivery.is_last_attempt(consumer.max_deliver()));
    assert_eq!(delivery.decode::<ReportEvent>().expect("decode"), event);
    assert_eq!(delivery.msg_id(), Some("R-100:2"));
    assert_eq!(delivery.header(headers::CONTENT_TYPE), Some(headers::PROTOBUF));
    let traceparent = delivery.header("traceparent").expect("traceparent header");
    assert!(traceparent.contains(&trace_id.to_string()), "{traceparent} is not in trace {trace_id}");

    // A consumer's span continues the publisher's trace.
    let parent = delivery.parent_context();
    assert_eq!(parent.span().span_context().trace_id(), trace_id);
    assert!(parent.span().span_context().is_remote());
    let consume = tracing::info_span!("price report");
    consume.set_parent(parent).expect("set parent");
    assert_eq!(consume.context().span().span_context().trace_id(), trace_id);

    delivery.ack().await.expect("ack");
    assert_nothing_pending(&consumer).await;
    teardown(&bus).await;
}

#[tokio::test]
async fn the_same_msg_id_is_stored_once() {
    let bus = bus().await;
    let jan = period("2026-01");
    let subject = bus.names().report_subject(jan);
    let event = report("R-7", 1, "2026-01-03T12:00:00Z");

    let first = bus.publish(&subject, &report_msg_id("R-7", 1), &event).await.expect("first publish");
    let again = bus.publish(&subject, &report_msg_id("R-7", 1), &event).await.expect("second publish");
    assert!(!first.duplicate);
    assert!(again.duplicate, "the second publish must be flagged as a duplicate");
    assert_eq!(again.sequence, first.sequence);
    // Same content, another id (the next revision): stored.
    let revised = bus.publish(&subject, &report_msg_id("R-7", 2), &event).await.expect("revision publish");
    assert!(!revised.duplicate);
    assert_eq!(revised.sequence, first.sequence + 1);

    let mut stream = bus.jetstream().get_stream(bus.names().reports_stream()).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 2);

    // Message ids that cannot be headers are refused before anything is sent.
    for bad in ["", "R-7:1\r\nNats-Expected-Stream: X"] {
        let err = bus.publish(&subject, bad, &event).await.expect_err("invalid message id");
        assert!(matches!(err, BusError::InvalidArgument { .. }), "{err}");
        assert!(!err.is_retryable());
    }
    teardown(&bus).await;
}

#[tokio::test]
async fn a_message_failing_until_max_deliver_is_dead_lettered_with_its_reason() {
    let bus = bus().await;
    let names = bus.names().clone();
    let jan = period("2026-01");
    let event = report("R-404", 1, "2026-01-20T23:00:00Z");
    let published = publish_report(&bus, jan, &event).await;
    let consumer = bus.durable_consumer(names.reports_stream(), "pricing", None).await.expect("consumer");
    assert_eq!(consumer.max_deliver(), 3);

    // Fail every attempt; on the last one, dead-letter instead of losing the reason.
    let reason = "unknown provider RAD-404\r\nsecond line";
    let deadline = Instant::now() + DEADLINE;
    let mut attempts = 0;
    let dead = 'poll: loop {
        assert!(Instant::now() < deadline, "the message was not delivered {} times in time", consumer.max_deliver());
        for delivery in consumer.fetch(1, POLL).await.expect("fetch") {
            attempts += 1;
            assert_eq!(delivery.delivered(), attempts);
            if delivery.is_last_attempt(consumer.max_deliver()) {
                break 'poll delivery.dead_letter(&bus, reason).await.expect("dead letter");
            }
            delivery.nak(None).await.expect("nak");
        }
    };
    assert_eq!(attempts, 3);
    assert_eq!(dead.stream, names.dlq_stream());
    assert!(!dead.duplicate);

    // The original is acked: nothing left for the consumer, nothing awaiting an ack.
    assert_nothing_pending(&consumer).await;
    let stream = bus.jetstream().get_stream(names.reports_stream()).await.expect("stream");
    let info = stream.consumer_info("pricing").await.expect("consumer info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, published.sequence);

    // The dead letter: the original payload and headers, and why.
    let dlq = bus.durable_consumer(names.dlq_stream(), "dlq-audit", None).await.expect("dlq consumer");
    let [letter] = <[Delivery; 1]>::try_from(fetch_exactly(&dlq, 1).await).expect("one dead letter");
    assert_eq!(letter.subject(), names.dlq_subject(names.reports_stream()));
    assert_eq!(letter.subject(), format!("{}.dlq.{}", names.prefix(), names.reports_stream().to_lowercase()));
    assert_eq!(letter.decode::<ReportEvent>().expect("decode"), event);
    assert_eq!(letter.header(headers::DLQ_REASON), Some("unknown provider RAD-404  second line"));
    assert_eq!(letter.header(headers::ORIGINAL_SUBJECT), Some(names.report_subject(jan).as_str()));
    assert_eq!(letter.header(headers::DELIVERED), Some("3"));
    assert_eq!(letter.header(headers::ORIGINAL_STREAM), Some(names.reports_stream()));
    assert_eq!(letter.header(headers::ORIGINAL_SEQUENCE), Some(published.sequence.to_string().as_str()));
    assert_eq!(letter.header(headers::ORIGINAL_MSG_ID), Some("R-404:1"));
    assert_eq!(letter.header(headers::CONSUMER), Some("pricing"));
    assert_eq!(letter.header(headers::CONTENT_TYPE), Some(headers::PROTOBUF));
    letter.ack().await.expect("ack dead letter");
    assert_nothing_pending(&dlq).await;

    teardown(&bus).await;
}

#[tokio::test]
async fn replay_returns_exactly_the_period_s_messages() {
    let bus = bus().await;
    let (jan, feb) = (period("2026-01"), period("2026-02"));
    // Interleaved, as live traffic around a month end would be.
    let jan_ids = ["J-1", "J-2", "J-3"];
    let feb_ids = ["F-1", "F-2"];
    publish_report(&bus, jan, &report(jan_ids[0], 1, "2026-01-30T10:00:00Z")).await;
    publish_report(&bus, feb, &report(feb_ids[0], 1, "2026-02-01T01:00:00Z")).await;
    publish_report(&bus, jan, &report(jan_ids[1], 1, "2026-01-31T10:00:00Z")).await;
    publish_report(&bus, feb, &report(feb_ids[1], 1, "2026-02-02T01:00:00Z")).await;
    publish_report(&bus, jan, &report(jan_ids[2], 1, "2026-01-31T17:00:00Z")).await;
    // Priced messages of January live in another stream and are not part of a reports replay.
    let priced_subject = bus.names().priced_subject(jan);
    bus.publish(&priced_subject, &priced_msg_id("J-1", 1, "run-1"), &report("J-1", 1, "2026-01-30T10:00:00Z"))
        .await
        .expect("publish priced");

    let replay = bus.replay(PeriodStream::Reports, jan).await.expect("replay");
    assert_eq!(replay.expected(), 3);
    assert_eq!(replay.subject(), bus.names().report_subject(jan));
    let messages: Vec<StoredMessage> = tokio::time::timeout(DEADLINE, replay.try_collect())
        .await
        .expect("the replay ends once caught up")
        .expect("replay");
    let ids: Vec<String> = messages.iter().map(|m| m.decode::<ReportEvent>().expect("decode").report_id).collect();
    assert_eq!(ids, jan_ids);
    assert!(messages.iter().all(|m| m.subject() == bus.names().report_subject(jan)));
    assert!(messages.windows(2).all(|w| w[0].stream_sequence() < w[1].stream_sequence()));
    assert_eq!(messages[0].msg_id(), Some("J-1:1"));

    let feb_replay = bus.replay(PeriodStream::Reports, feb).await.expect("replay");
    let feb_messages: Vec<StoredMessage> =
        tokio::time::timeout(DEADLINE, feb_replay.try_collect()).await.expect("ends").expect("replay");
    assert_eq!(feb_messages.len(), 2);

    let priced = bus.replay(PeriodStream::Priced, jan).await.expect("replay");
    let priced: Vec<StoredMessage> =
        tokio::time::timeout(DEADLINE, priced.try_collect()).await.expect("ends").expect("replay");
    assert_eq!(priced.len(), 1);
    assert_eq!(priced[0].msg_id(), Some("J-1:1:run-1"));

    // A period with nothing stored ends at once.
    let empty = bus.replay(PeriodStream::Reports, period("2026-03")).await.expect("replay");
    assert_eq!(empty.expected(), 0);
    let none: Vec<StoredMessage> =
        tokio::time::timeout(DEADLINE, empty.try_collect()).await.expect("ends").expect("replay");
    assert!(none.is_empty());

    teardown(&bus).await;
}

#[tokio::test]
async fn a_message_reported_in_progress_is_not_delivered_again_after_ack_wait() {
    let bus = bus_with(BusConfig { ack_wait: Duration::from_millis(600), ..test_config() }).await;
    publish_report(&bus, period("2026-01"), &report("P-1", 1, "2026-01-05T09:00:00Z")).await;
    let consumer = bus.durable_consumer(bus.names().reports_stream(), "ledger", None).await.expect("consumer");
    assert_eq!(consumer.ack_wait(), Duration::from_millis(600));
    let [held] = <[Delivery; 1]>::try_from(fetch_exactly(&consumer, 1).await).expect("one delivery");

    // Held for three ack_waits, reported in progress every third of one: never redelivered.
    let until = Instant::now() + Duration::from_millis(1800);
    while Instant::now() < until {
        held.in_progress().await.expect("in progress");
        let again = consumer.fetch(1, Duration::from_millis(200)).await.expect("fetch");
        assert!(again.is_empty(), "delivered again while in progress: {again:?}");
    }
    held.ack().await.expect("ack");
    assert_nothing_pending(&consumer).await;
    let info = bus.jetstream().get_stream(bus.names().reports_stream()).await.expect("stream");
    assert_eq!(info.consumer_info("ledger").await.expect("consumer info").num_redelivered, 0);

    teardown(&bus).await;
}

#[tokio::test]
async fn a_durable_consumer_resumes_where_it_left_off() {
    let bus = bus().await;
    let jan = period("2026-01");
    for id in ["A-1", "A-2", "A-3"] {
        publish_report(&bus, jan, &report(id, 1, "2026-01-05T09:00:00Z")).await;
    }
    let stream = bus.names().reports_stream().to_owned();
    let filter = Some(bus.names().stream_subjects(PeriodStream::Reports));

    let first = bus.durable_consumer(&stream, "ledger", filter.clone()).await.expect("consumer");
    let deliveries = fetch_exactly(&first, 2).await;
    let ids: Vec<_> = deliveries.iter().map(|d| d.msg_id().map(str::to_owned)).collect();
    assert_eq!(ids, [Some("A-1:1".to_owned()), Some("A-2:1".to_owned())]);
    for delivery in &deliveries {
        delivery.ack().await.expect("ack");
    }
    drop(first);

    // A restarted service binds to the same durable consumer.
    let again = bus.durable_consumer(&stream, "ledger", filter).await.expect("consumer again");
    let [next] = <[Delivery; 1]>::try_from(fetch_exactly(&again, 1).await).expect("one delivery");
    assert_eq!(next.msg_id(), Some("A-3:1"));
    assert_eq!(next.delivered(), 1, "the third message was never delivered before");
    next.ack().await.expect("ack");
    assert_nothing_pending(&again).await;

    teardown(&bus).await;
}

#[tokio::test]
async fn connecting_gives_up_after_the_configured_attempts() {
    let config = BusConfig {
        url: "nats://127.0.0.1:1".to_owned(),
        prefix: unique_prefix(),
        connect_attempts: 2,
        ..BusConfig::default()
    };
    let err = Bus::connect(&config).await.expect_err("nothing listens on port 1");
    assert!(matches!(err, BusError::Connect { attempts: 2, .. }), "{err}");
    assert!(err.is_retryable());

    let bad = BusConfig { prefix: "Not.A.Token".to_owned(), ..config };
    let err = Bus::connect(&bad).await.expect_err("invalid prefix");
    assert!(matches!(err, BusError::InvalidConfig(_)), "{err}");
}

#[tokio::test]
async fn publishing_without_streams_fails() {
    let bus = Bus::connect(&test_config()).await.expect("connect");
    let subject = bus.names().report_subject(period("2026-01"));
    let err = bus.publish(&subject, "R-1:1", &report("R-1", 1, "2026-01-05T09:00:00Z")).await.expect_err("no stream");
    assert!(matches!(err, BusError::Publish { .. }), "{err}");

    let err = bus.durable_consumer(bus.names().reports_stream(), "bad.name", None).await.expect_err("bad name");
    assert!(matches!(err, BusError::InvalidArgument { .. }), "{err}");
}

#[tokio::test]
async fn dead_letters_are_listed_in_pages_and_redriven_to_their_original_subject() {
    let bus = bus().await;
    let names = bus.names().clone();
    let jan = period("2026-01");
    let events: Vec<ReportEvent> =
        (1..=3).map(|i| report(&format!("R-DL{i}"), 1, &format!("2026-01-1{i}T10:00:00Z"))).collect();
    let mut published = Vec::new();
    for event in &events {
        published.push(publish_report(&bus, jan, event).await);
    }
    let consumer = bus.durable_consumer(names.reports_stream(), "pricing", None).await.expect("consumer");
    for (i, delivery) in fetch_exactly(&consumer, 3).await.into_iter().enumerate() {
        delivery.dead_letter(&bus, &format!("bad report {i}")).await.expect("dead letter");
    }
    assert_nothing_pending(&consumer).await;

    // Pages in sequence order; an empty page at the end.
    let first = bus.dead_letters(0, 2).await.expect("first page");
    assert_eq!(first.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);
    let second = bus.dead_letters(2, 2).await.expect("second page");
    assert_eq!(second.iter().map(|l| l.seq).collect::<Vec<_>>(), [3]);
    assert!(bus.dead_letters(3, 10).await.expect("past the end").is_empty());
    assert!(bus.dead_letters(0, 0).await.expect("no room").is_empty());
    let letter = &first[1];
    assert_eq!(letter.original_subject, names.report_subject(jan));
    assert_eq!(letter.original_stream, names.reports_stream());
    assert_eq!(letter.original_sequence, published[1].sequence);
    assert_eq!(letter.consumer, "pricing");
    assert_eq!(letter.reason, "bad report 1");
    assert_eq!(letter.delivered, 1);
    assert_eq!(letter.msg_id.as_deref(), Some("R-DL2:1"));
    assert_eq!(letter.payload_len, prost::Message::encoded_len(&events[1]));
    let age = std::time::SystemTime::now().duration_since(letter.published_at).unwrap_or_default();
    assert!(age < Duration::from_secs(60), "{age:?}");

    // A redrive republishes the payload and its own headers to the original subject, under a
    // message id of its own, and removes the dead letter.
    let redriven = bus.redrive(2).await.expect("redrive");
    assert_eq!(redriven.seq, 2);
    assert_eq!(redriven.subject, names.report_subject(jan));
    assert_eq!(redriven.stream, names.reports_stream());
    assert_eq!(redriven.stream_sequence, published[2].sequence + 1);
    assert!(!redriven.duplicate);
    let [again] = <[Delivery; 1]>::try_from(fetch_exactly(&consumer, 1).await).expect("one redelivery");
    assert_eq!(again.decode::<ReportEvent>().expect("decode"), events[1]);
    assert_eq!(again.msg_id(), Some("redrive:2"));
    assert_eq!(again.header(headers::CONTENT_TYPE), Some(headers::PROTOBUF));
    for dead_letter_header in [headers::DLQ_REASON, headers::ORIGINAL_SUBJECT, headers::CONSUMER, headers::DELIVERED] {
        assert_eq!(again.header(dead_letter_header), None, "{dead_letter_header}");
    }
    again.ack().await.expect("ack");

    // Gone from the dead letters; a second redrive finds nothing.
    let left = bus.dead_letters(0, 10).await.expect("list");
    assert_eq!(left.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 3]);
    let err = bus.redrive(2).await.expect_err("redriven already");
    assert!(matches!(err, BusError::DeadLetterNotFound { seq: 2 }), "{err}");
    assert!(!err.is_retryable());
    assert!(matches!(bus.redrive(99).await, Err(BusError::DeadLetterNotFound { seq: 99 })));
    assert_nothing_pending(&consumer).await;

    teardown(&bus).await;
}
