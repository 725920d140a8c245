//! radfin's message bus: NATS JetStream streams, durable pull consumers, dead letters and
//! period replays, with protobuf payloads and W3C trace context in message headers.
//!
//! Three streams per deployment, named from a prefix ([`Names`]):
//!
//! | stream              | subjects                          | carries                                   |
//! | ------------------- | --------------------------------- | ----------------------------------------- |
//! | `<PREFIX>_REPORTS`  | `<prefix>.reports.<YYYY-MM>`      | accepted report events (`ReportEvent`)     |
//! | `<PREFIX>_PRICED`   | `<prefix>.priced.<YYYY-MM>`       | priced reports (`PricedReport`)            |
//! | `<PREFIX>_DLQ`      | `<prefix>.dlq.<source stream>`    | messages a consumer gave up on, with why   |
//!
//! Operators list the dead letters ([`Bus::dead_letters`]) and redrive one to the subject it
//! came from ([`Bus::redrive`]).
//!
//! Report and priced subjects are partitioned by billing period, so one month can be replayed
//! ([`Bus::replay`]) without reading the others.
//!
//! Delivery is at least once: a publish is done only when JetStream acknowledged it
//! ([`Bus::publish`]), `Nats-Msg-Id` deduplicates retries within the stream's duplicate window,
//! and consumers ack explicitly ([`Delivery::ack`]) after their writes committed. Everything
//! downstream must therefore be idempotent; the bus does not pretend to be exactly once.
//!
//! JetStream is the transport and the replay log, not the system of record (nats-server 2.9
//! acknowledges a publish before it reaches disk): ingest commits a report to Postgres before
//! it acknowledges it. The crate uses only features of nats-server 2.9 (one filter subject per
//! consumer, no subject transforms, no consumer metadata).

#![warn(missing_docs)]

mod bus;
mod config;
mod consumer;
mod dead_letters;
mod error;
pub mod headers;
mod replay;
#[cfg(feature = "testing")]
pub mod testing;

pub use async_nats::HeaderMap;
pub use bus::{Bus, MAX_IN_FLIGHT, Outgoing, PublishAck};
pub use config::{BusConfig, Names, PeriodStream, priced_msg_id, report_msg_id};
pub use consumer::{Backlog, Consumer, Delivery};
pub use dead_letters::{DeadLetter, Redriven, redrive_msg_id};
pub use error::BusError;
pub use replay::{Replay, StoredMessage};
