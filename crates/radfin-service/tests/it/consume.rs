//! `consume::run` with real JetStream consumers: outages are waited out in process, permanent
//! failures are isolated to the messages that cause them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use radfin_bus::{BusError, Consumer, Delivery, headers};
use radfin_db::StorageError;
use radfin_proto::ingest::v1::ReportEvent;
use radfin_service::consume::{self, Batching};

use super::*;

const CONSUMER: &str = "svc";

/// Small batches' worth of waiting, fast retries.
const BATCHING: Batching =
    Batching { max: 100, wait: Duration::from_millis(300), retry_delay: Duration::from_millis(50) };

/// A report id and the delivery it came with.
fn decode(d: &Delivery) -> Result<(String, i64), String> {
    let event: ReportEvent = d.decode().map_err(|e| e.to_string())?;
    if event.report_id.contains("GARBLED") {
        return Err(format!("cannot read report {}", event.report_id));
    }
    Ok((event.report_id, d.delivered()))
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

/// Waits until the consumer has nothing left to deliver or to be acked.
async fn drained(bus: &Bus, consumer: &str) {
    eventually("every message acknowledged", || async {
        let stream = bus.jetstream().get_stream(bus.names().reports_stream()).await.expect("stream");
        let info = stream.consumer_info(consumer).await.expect("consumer info");
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
}

async fn dead_letters(bus: &Bus) -> u64 {
    let mut dlq = bus.jetstream().get_stream(bus.names().dlq_stream()).await.expect("dlq stream");
    dlq.info().await.expect("dlq info").state.messages
}

/// The dead letters, by original report id, with their reason.
async fn read_dead_letters(bus: &Bus, n: usize) -> BTreeMap<String, (String, String)> {
    let audit = bus.durable_consumer(bus.names().dlq_stream(), "dlq-audit", None).await.expect("dlq consumer");
    let mut letters = BTreeMap::new();
    let deadline = Instant::now() + DEADLINE;
    while letters.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} dead letters arrived", letters.len());
        for letter in audit.fetch(n, Duration::from_millis(250)).await.expect("fetch dead letters") {
            let event: ReportEvent = letter.decode().expect("a dead letter keeps its payload");
            let reason = letter.header(headers::DLQ_REASON).unwrap_or_default().to_owned();
            let delivered = letter.header(headers::DELIVERED).unwrap_or_default().to_owned();
            letters.insert(event.report_id, (reason, delivered));
            letter.ack().await.expect("ack dead letter");
        }
    }
    letters
}

async fn consumer(bus: &Bus) -> Consumer {
    bus.durable_consumer(bus.names().reports_stream(), CONSUMER, None).await.expect("consumer")
}

/// What a handler saw: every call, and what it handled successfully with its delivery count.
#[derive(Default)]
struct Seen {
    calls: usize,
    handled: Vec<(String, i64)>,
}

#[tokio::test]
async fn an_outage_longer_than_the_deliveries_allow_is_waited_out_and_nothing_is_dead_lettered() {
    logs();
    // Two deliveries at most, redelivered after 1 s without an ack: a 4 s outage outlasts both
    // max_deliver × retry_delay and several ack_waits.
    let bus = bus(2, Duration::from_secs(1)).await;
    let ids = ids("OUT", 30);
    publish(&bus, &ids).await;
    let consumer = consumer(&bus).await;

    let outage_ends = Instant::now() + Duration::from_secs(4);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (stop, stopped) = radfin_service::shutdown::channel();
    let running = {
        let (bus, seen) = (bus.clone(), seen.clone());
        tokio::spawn(async move {
            consume::run("test", &bus, &consumer, BATCHING, stopped, decode, |batch: Vec<(String, i64)>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().expect("lock");
                    seen.calls += 1;
                    if Instant::now() < outage_ends {
                        // Each way an outage shows: the database, the broker, the handler's own word.
                        return Err(match seen.calls % 3 {
                            0 => anyhow::Error::new(StorageError::Retryable { message: "connection lost".into() }),
                            1 => anyhow::Error::new(BusError::Ack {
                                action: "ack",
                                stream: "S".into(),
                                sequence: 1,
                                source: "broker unreachable".into(),
                            })
                            .context("publishing priced reports"),
                            _ => consume::transient(anyhow::anyhow!("client month booked concurrently")),
                        });
                    }
                    seen.handled.extend(batch);
                    Ok(())
                }
            })
            .await
        })
    };

    let handled = eventually("every message handled once the outage is over", || async {
        let seen = seen.lock().expect("lock");
        (seen.handled.len() >= ids.len()).then(|| seen.handled.clone())
    })
    .await;
    drained(&bus, CONSUMER).await;
    let mut handled_ids: Vec<&str> = handled.iter().map(|(id, _)| id.as_str()).collect();
    handled_ids.sort_unstable();
    assert_eq!(handled_ids, ids.iter().map(String::as_str).collect::<Vec<_>>(), "each message handled once");
    // Kept in hand and in progress: never delivered again, so the delivery count never ran out.
    assert!(handled.iter().all(|(_, delivered)| *delivered == 1), "{handled:?}");
    assert!(seen.lock().expect("lock").calls > 3, "the handler was retried");
    assert_eq!(dead_letters(&bus).await, 0);

    stop.fire();
    running.await.expect("consumer task").expect("consumer stops cleanly");
    teardown(&bus).await;
}

#[tokio::test]
async fn only_the_message_failing_on_its_own_is_dead_lettered_and_the_rest_of_its_batch_is_handled() {
    logs();
    let bus = bus(5, Duration::from_secs(30)).await;
    let mut all = ids("OK", 10);
    all.insert(3, "BAD-POISON".to_owned());
    all.insert(7, "BAD-GARBLED".to_owned());
    publish(&bus, &all).await;
    let consumer = consumer(&bus).await;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let (stop, stopped) = radfin_service::shutdown::channel();
    let running = {
        let (bus, seen) = (bus.clone(), seen.clone());
        tokio::spawn(async move {
            consume::run("test", &bus, &consumer, BATCHING, stopped, decode, |batch: Vec<(String, i64)>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().expect("lock");
                    seen.calls += 1;
                    if batch.iter().any(|(id, _)| id == "BAD-POISON") {
                        anyhow::bail!("no rule prices BAD-POISON");
                    }
                    seen.handled.extend(batch);
                    Ok(())
                }
            })
            .await
        })
    };

    let letters = read_dead_letters(&bus, 2).await;
    drained(&bus, CONSUMER).await;
    let (reason, delivered) = &letters["BAD-POISON"];
    assert_eq!((reason.as_str(), delivered.as_str()), ("no rule prices BAD-POISON", "1"), "dead-lettered at once");
    assert_eq!(letters["BAD-GARBLED"].0, "cannot read report BAD-GARBLED");

    let mut handled = seen.lock().expect("lock").handled.clone();
    assert!(handled.iter().all(|(_, delivered)| *delivered == 1), "{handled:?}");
    handled.sort_unstable();
    let handled: Vec<String> = handled.into_iter().map(|(id, _)| id).collect();
    assert_eq!(handled, ids("OK", 10), "each good message once");
    assert_eq!(dead_letters(&bus).await, 2);

    stop.fire();
    running.await.expect("consumer task").expect("consumer stops cleanly");
    teardown(&bus).await;
}

#[tokio::test]
async fn a_shutdown_while_waiting_out_an_outage_leaves_the_messages_for_redelivery() {
    logs();
    let bus = bus(2, Duration::from_secs(30)).await;
    let ids = ids("WAIT", 5);
    publish(&bus, &ids).await;
    let consumer = consumer(&bus).await;

    let (failed, mut failed_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = radfin_service::shutdown::channel();
    let slow = Batching { retry_delay: Duration::from_secs(60), ..BATCHING };
    let running = {
        let bus = bus.clone();
        tokio::spawn(async move {
            consume::run("test", &bus, &consumer, slow, stopped, decode, |_batch: Vec<(String, i64)>| {
                let failed = failed.clone();
                async move {
                    let _ = failed.send(());
                    Err(anyhow::Error::new(StorageError::Retryable { message: "database restarting".into() }))
                }
            })
            .await
        })
    };
    failed_rx.recv().await.expect("the handler ran");
    stop.fire();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("a shutdown does not wait for the retry")
        .expect("consumer task")
        .expect("consumer stops cleanly");

    let stream = bus.jetstream().get_stream(bus.names().reports_stream()).await.expect("stream");
    let info = stream.consumer_info(CONSUMER).await.expect("consumer info");
    assert_eq!(info.num_ack_pending, ids.len(), "left unacknowledged, neither nak'ed nor dead-lettered");
    assert_eq!(dead_letters(&bus).await, 0);
    teardown(&bus).await;
}
