//! The connection, the streams, and publishing.

use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, OrderedConfig};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::{ConnectErrorKind, ConnectOptions, HeaderMap, jetstream};
use prost::bytes::Bytes;
use radfin_domain::period::Period;

use crate::config::{BusConfig, Names, PeriodStream, check_consumer_name};
use crate::consumer::Consumer;
use crate::error::BusError;
use crate::headers;
use crate::replay::Replay;

/// First pause between connection attempts; it doubles up to [`MAX_CONNECT_BACKOFF`].
const INITIAL_CONNECT_BACKOFF: Duration = Duration::from_millis(250);
/// Longest pause between connection attempts.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(5);

/// JetStream's acknowledgement of a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishAck {
    /// The stream that stored the message.
    pub stream: String,
    /// Its sequence in the stream (for a duplicate, the sequence of the message stored first).
    pub sequence: u64,
    /// Whether the `Nats-Msg-Id` was already stored within the duplicate window, so this
    /// publish stored nothing.
    pub duplicate: bool,
}

/// A connection to NATS JetStream with radfin's stream layout. Cheap to clone; clones share
/// the connection.
#[derive(Clone, Debug)]
pub struct Bus {
    jetstream: jetstream::Context,
    names: Names,
    config: BusConfig,
}

/// Messages a durable consumer may have delivered and not yet acknowledged (JetStream's default
/// is 1000, less than a pricing batch).
pub const MAX_ACK_PENDING: i64 = 20_000;

/// Publishes awaiting their acknowledgement at the same time in [`Bus::publish_all`].
pub const MAX_IN_FLIGHT: usize = 256;

/// A message to publish with [`Bus::publish_all`].
#[derive(Clone, Debug)]
pub struct Outgoing<M> {
    /// Where to publish, e.g. [`Names::report_subject`](crate::Names::report_subject).
    pub subject: String,
    /// The `Nats-Msg-Id` the stream deduplicates on.
    pub msg_id: String,
    /// The protobuf payload.
    pub message: M,
}

impl Bus {
    /// Connects to `config.url`, trying up to `config.connect_attempts` times with a growing
    /// pause while the server is unreachable. Once connected, the client reconnects by itself.
    /// Does not create streams: see [`Bus::ensure_streams`].
    pub async fn connect(config: &BusConfig) -> Result<Self, BusError> {
        config.validate()?;
        let names = Names::new(&config.prefix)?;
        let url = redact(&config.url);
        let mut backoff = INITIAL_CONNECT_BACKOFF;
        let mut attempt = 1;
        let client = loop {
            let options = ConnectOptions::new().name(&config.connection_name).max_reconnects(None);
            match options.connect(config.servers()).await {
                Ok(client) => break client,
                Err(source) if attempt < config.connect_attempts && retry_connect(source.kind()) => {
                    tracing::warn!(url = %url, attempt, error = %source, "cannot connect to nats, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
                    attempt += 1;
                }
                Err(source) => return Err(BusError::Connect { url, attempts: attempt, source }),
            }
        };
        tracing::info!(url = %url, prefix = %names.prefix(), "connected to nats");
        Ok(Self { jetstream: jetstream::new(client), names, config: config.clone() })
    }

    /// The stream and subject names of this bus.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The configuration the bus was connected with.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// The underlying JetStream context, for what this crate does not wrap (stream info,
    /// administration, test teardown).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Creates the reports, priced and dead-letter streams, or updates them to the current
    /// configuration: file storage, the configured retention ([`BusConfig::max_age`]; by
    /// default unlimited: they are the replay log), duplicate window and replicas. Idempotent; safe to run from every replica at
    /// start-up.
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        let streams = [
            (
                self.names.reports_stream(),
                self.names.stream_subjects(PeriodStream::Reports),
                "radfin report events by period",
            ),
            (
                self.names.priced_stream(),
                self.names.stream_subjects(PeriodStream::Priced),
                "radfin priced reports by period",
            ),
            (self.names.dlq_stream(), self.names.dlq_subjects(), "radfin dead letters by source stream"),
        ];
        for (name, subjects, description) in streams {
            let config = stream::Config {
                name: name.to_owned(),
                description: Some(description.to_owned()),
                subjects: vec![subjects],
                storage: StorageType::File,
                retention: RetentionPolicy::Limits,
                discard: DiscardPolicy::Old,
                duplicate_window: self.config.duplicate_window,
                num_replicas: self.config.replicas,
                max_age: self.config.max_age,
                ..Default::default()
            };
            // Get or create, and update only when the settings differ: services start together,
            // and concurrent updates of one stream crash nats-server 2.9 (a nil dereference in
            // `updateWithAdvisory`), while concurrent identical creates are harmless.
            // Two services creating the same stream at once can make nats-server 2.9 answer the
            // loser with "subjects overlap with an existing stream" (10065): the stream exists
            // by then, so asking again finds it.
            let mut attempt = 0;
            let existing = loop {
                attempt += 1;
                match self.jetstream.get_or_create_stream(config.clone()).await {
                    Ok(stream) => break stream,
                    Err(source) if attempt < 5 => {
                        tracing::debug!(stream = name, error = %source, attempt, "stream not ensured yet; asking again");
                        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                    }
                    Err(source) => return Err(BusError::Stream { stream: name.to_owned(), source }),
                }
            };
            let current = &existing.cached_info().config;
            let differs = current.subjects != config.subjects
                || current.duplicate_window != config.duplicate_window
                || current.num_replicas != config.num_replicas
                || current.max_age != config.max_age
                || current.description != config.description;
            if differs {
                self.jetstream
                    .update_stream(&config)
                    .await
                    .map_err(|source| BusError::Stream { stream: name.to_owned(), source })?;
                tracing::info!(stream = name, "stream settings updated");
            }
            tracing::debug!(stream = name, "stream ensured");
        }
        Ok(())
    }

    /// Publishes `message` (protobuf) to `subject` with `Nats-Msg-Id: msg_id`, a content type
    /// and the current span's trace context, and waits for JetStream's acknowledgement: when
    /// this returns `Ok`, the stream has the message. A publish whose id the stream already
    /// holds within its duplicate window stores nothing and returns `duplicate: true`.
    #[tracing::instrument(
        name = "bus.publish",
        skip_all,
        fields(otel.kind = "producer", messaging.destination.name = %subject, messaging.message.id = %msg_id)
    )]
    pub async fn publish<M: prost::Message>(
        &self,
        subject: &str,
        msg_id: &str,
        message: &M,
    ) -> Result<PublishAck, BusError> {
        if msg_id.is_empty() {
            return Err(BusError::InvalidArgument { what: "message id", reason: "must not be empty".to_owned() });
        }
        let msg_id: async_nats::HeaderValue = msg_id.parse().map_err(|_| BusError::InvalidArgument {
            what: "message id",
            reason: format!("{msg_id:?} must not contain line breaks"),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(headers::MSG_ID, msg_id);
        headers.insert(headers::CONTENT_TYPE, headers::PROTOBUF);
        headers::inject_current_context(&mut headers);
        self.publish_raw(subject, headers, message.encode_to_vec().into()).await
    }

    /// Publishes every message as [`Bus::publish`] does, up to [`MAX_IN_FLIGHT`] at a time
    /// (pipelined rather than one round trip each), returns once all are acknowledged,
    /// or with the first failure (messages before it may be stored: publishing is idempotent by
    /// message id, so the caller simply publishes them all again).
    pub async fn publish_all<M: prost::Message>(&self, messages: &[Outgoing<M>]) -> Result<Vec<PublishAck>, BusError> {
        let mut acks = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(MAX_IN_FLIGHT) {
            let publishes: Vec<_> = chunk.iter().map(|m| self.publish(&m.subject, &m.msg_id, &m.message)).collect();
            acks.extend(futures::future::try_join_all(publishes).await?);
        }
        Ok(acks)
    }

    /// Publishes as is and waits for the acknowledgement.
    pub(crate) async fn publish_raw(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PublishAck, BusError> {
        let publish_error = |source| BusError::Publish { subject: subject.to_owned(), source };
        let ack = self
            .jetstream
            .publish_with_headers(subject.to_owned(), headers, payload)
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        if ack.duplicate {
            tracing::debug!(subject, stream = %ack.stream, sequence = ack.sequence, "duplicate publish, not stored again");
        }
        Ok(PublishAck { stream: ack.stream, sequence: ack.sequence, duplicate: ack.duplicate })
    }

    /// Creates (or, if it exists, binds to) the durable pull consumer `durable_name` on
    /// `stream`: explicit acks, at most `max_deliver` deliveries of a message, redelivery after
    /// `ack_wait` without an ack, starting from the first stored message. `filter_subject`
    /// narrows it to one subject or wildcard (nats-server 2.9 allows one per consumer).
    ///
    /// Replicas of a service share a durable consumer by using the same name; its position
    /// survives restarts.
    pub async fn durable_consumer(
        &self,
        stream: &str,
        durable_name: &str,
        filter_subject: Option<String>,
    ) -> Result<Consumer, BusError> {
        check_consumer_name(durable_name)?;
        let config = pull::Config {
            durable_name: Some(durable_name.to_owned()),
            description: filter_subject.as_ref().map(|filter| format!("radfin consumer of {filter}")),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_deliver: self.config.max_deliver,
            // Above any batch a consumer fetches, so a fetch is never cut short by unacked ones.
            max_ack_pending: MAX_ACK_PENDING,
            filter_subject: filter_subject.unwrap_or_default(),
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        };
        let consumer = self.jetstream.create_consumer_on_stream(config, stream).await.map_err(|source| {
            BusError::Consumer { stream: stream.to_owned(), consumer: durable_name.to_owned(), source }
        })?;
        Ok(Consumer::new(consumer, stream.to_owned(), durable_name.to_owned(), self.config.max_deliver))
    }

    /// Every message stored for `period` in `stream`, oldest first, through an ephemeral
    /// ordered consumer; the stream ends once it has caught up (no message of the period left
    /// to deliver). Nothing is acknowledged and no durable consumer moves: a replay is a read.
    ///
    /// Operators replay a period for a rerun after reconciling the stream against the database,
    /// which stays the system of record.
    pub async fn replay(&self, stream: PeriodStream, period: Period) -> Result<Replay, BusError> {
        let stream_name = self.names.stream(stream);
        let subject = self.names.period_subject(stream, period);
        let config = OrderedConfig {
            description: Some(format!("radfin replay of {subject}")),
            filter_subject: subject.clone(),
            deliver_policy: DeliverPolicy::All,
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        };
        let consumer = self.jetstream.create_consumer_on_stream(config, stream_name).await.map_err(|source| {
            BusError::Consumer { stream: stream_name.to_owned(), consumer: format!("replay of {subject}"), source }
        })?;
        Replay::start(consumer, subject).await
    }
}

/// Whether a failed first connection may succeed on another attempt.
fn retry_connect(kind: ConnectErrorKind) -> bool {
    matches!(kind, ConnectErrorKind::TimedOut | ConnectErrorKind::Io | ConnectErrorKind::Dns)
}

/// `url` without a password or token (`nats://user:secret@host` → `nats://***@host`), for logs
/// and errors.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|server| match (server.find("://"), server.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &server[..scheme + 3], &server[at..]),
            (None, Some(at)) => format!("***{}", &server[at..]),
            _ => server.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact("nats://user:secret@nats:4222"), "nats://***@nats:4222");
        assert_eq!(redact("token@nats:4222,nats://a:b@other:4222"), "***@nats:4222,nats://***@other:4222");
    }
}
