//! Durable pull consumers and the messages they deliver.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt as _;

use crate::bus::{Bus, PublishAck};
use crate::error::BusError;
use crate::headers;

/// A durable pull consumer (see [`Bus::durable_consumer`]).
pub struct Consumer {
    inner: PullConsumer,
    stream: String,
    name: String,
    max_deliver: i64,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.stream)
            .field("name", &self.name)
            .field("max_deliver", &self.max_deliver)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    pub(crate) fn new(inner: PullConsumer, stream: String, name: String, max_deliver: i64) -> Self {
        Self { inner, stream, name, max_deliver }
    }

    /// The stream it consumes.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Its durable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times it delivers a message at most; pass it to [`Delivery::is_last_attempt`].
    pub fn max_deliver(&self) -> i64 {
        self.max_deliver
    }

    /// How long a delivered message may stay unacknowledged before it is delivered again; a
    /// consumer holding messages longer sends [`Delivery::in_progress`] more often than this.
    pub fn ack_wait(&self) -> Duration {
        self.inner.cached_info().config.ack_wait
    }

    /// Its backlog as the server counts it now: one request to the server (for metrics, not
    /// for every message). [`BusError::ConsumerGone`] when the server no longer has it.
    pub async fn backlog(&self) -> Result<Backlog, BusError> {
        use async_nats::jetstream::context::ConsumerInfoErrorKind;
        let info = self.inner.get_info().await.map_err(|source| match source.kind() {
            ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound => {
                BusError::ConsumerGone { stream: self.stream.clone(), consumer: self.name.clone() }
            }
            _ => BusError::ConsumerInfo {
                stream: self.stream.clone(),
                consumer: self.name.clone(),
                source: source.into(),
            },
        })?;
        Ok(Backlog {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
            redelivered: info.num_redelivered as u64,
        })
    }

    /// Pulls up to `max_messages` messages, waiting at most `expires` for the first one to be
    /// available; returns as soon as what is available has been delivered, so a batch may be
    /// shorter than asked, or empty when nothing came within `expires`.
    ///
    /// Every delivery must be acked, nak'ed or dead-lettered; one left alone is delivered again
    /// after `ack_wait`.
    pub async fn fetch(&self, max_messages: usize, expires: Duration) -> Result<Vec<Delivery>, BusError> {
        if max_messages == 0 {
            return Ok(Vec::new());
        }
        let fetch_error = |source: async_nats::Error| BusError::Fetch {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
            source,
        };
        let mut batch = self
            .inner
            .fetch()
            .max_messages(max_messages)
            .expires(expires)
            .messages()
            .await
            .map_err(|source| fetch_error(source.into()))?;
        let mut deliveries = Vec::with_capacity(max_messages);
        while let Some(item) = batch.next().await {
            match item {
                Ok(message) => deliveries.push(Delivery::new(message)?),
                Err(source) if deliveries.is_empty() => return Err(fetch_error(source)),
                Err(source) => {
                    // The pull ended early (the server's status, a dropped subscription); what
                    // arrived is still good, the rest comes with the next fetch.
                    tracing::warn!(stream = %self.stream, consumer = %self.name, error = %source, "fetch ended early");
                    break;
                }
            }
        }
        Ok(deliveries)
    }
}

/// How far behind a consumer is, as the server counts it ([`Consumer::backlog`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Messages of its stream not yet delivered to it (`num_pending`): its lag.
    pub pending: u64,
    /// Messages delivered and not yet acknowledged (`num_ack_pending`).
    pub ack_pending: u64,
    /// Messages delivered more than once and not yet acknowledged (`num_redelivered`).
    pub redelivered: u64,
}

/// One delivery of a stored message to a consumer.
pub struct Delivery {
    message: jetstream::Message,
    stream: String,
    consumer: String,
    stream_sequence: u64,
    delivered: i64,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject())
            .field("stream", &self.stream)
            .field("consumer", &self.consumer)
            .field("stream_sequence", &self.stream_sequence)
            .field("delivered", &self.delivered)
            .field("payload_len", &self.message.payload.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    fn new(message: jetstream::Message) -> Result<Self, BusError> {
        let info =
            message.info().map_err(|source| BusError::NotJetStream { subject: message.subject.to_string(), source })?;
        let (stream, consumer) = (info.stream.to_owned(), info.consumer.to_owned());
        let (stream_sequence, delivered) = (info.stream_sequence, info.delivered);
        Ok(Self { message, stream, consumer, stream_sequence, delivered })
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// The stream it is stored in.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Its sequence in the stream.
    pub fn stream_sequence(&self) -> u64 {
        self.stream_sequence
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// Its headers, if it has any.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.message.headers.as_ref()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(self.headers(), name)
    }

    /// Its `Nats-Msg-Id`, if it was published with one.
    pub fn msg_id(&self) -> Option<&str> {
        self.header(headers::MSG_ID)
    }

    /// How many times it has been delivered to this consumer, this delivery included (1 the
    /// first time).
    pub fn delivered(&self) -> i64 {
        self.delivered
    }

    /// Whether this is the last delivery the consumer will make (`delivered ≥ max_deliver`):
    /// a message that still fails now should be dead-lettered with its reason, not nak'ed.
    pub fn is_last_attempt(&self, max_deliver: i64) -> bool {
        self.delivered >= max_deliver
    }

    /// The payload decoded as `M`.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, BusError> {
        decode(self.subject(), &self.message.payload)
    }

    /// The publisher's trace context, for `span.set_parent(delivery.parent_context())`
    /// (`tracing_opentelemetry::OpenTelemetrySpanExt`); empty when the publisher sent none.
    pub fn parent_context(&self) -> opentelemetry::Context {
        headers::extract_context(self.headers())
    }

    /// Acknowledges the message and waits for the server to confirm, so that once this returns
    /// `Ok` the message will not be delivered to this consumer again. Ack only after the work
    /// it triggered has committed.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message.double_ack().await.map_err(|source| self.ack_error("ack", source))
    }

    /// Acknowledges the message without waiting for the server's confirmation. For consumers
    /// whose effects are idempotent: should the ack be lost, the message is delivered again
    /// after `ack_wait` and changes nothing. Much cheaper than [`Delivery::ack`] for batches.
    pub async fn ack_unconfirmed(&self) -> Result<(), BusError> {
        self.message.ack().await.map_err(|source| self.ack_error("ack", source))
    }

    /// Tells the server the message is still being worked on, which restarts its `ack_wait`
    /// without counting a delivery: a consumer that waits out an outage with the message in
    /// hand sends this more often than `ack_wait`, so the message is not delivered again
    /// meanwhile. Does not wait for the server.
    pub async fn in_progress(&self) -> Result<(), BusError> {
        self.message.ack_with(AckKind::Progress).await.map_err(|source| self.ack_error("in-progress ack", source))
    }

    /// Gives the message back for redelivery, after `delay` (or at once with `None`), without
    /// waiting for the server. On its last attempt ([`Delivery::is_last_attempt`]) dead-letter
    /// it instead: a nak'ed last attempt is never delivered again and its reason is lost.
    pub async fn nak(&self, delay: Option<Duration>) -> Result<(), BusError> {
        self.message.ack_with(AckKind::Nak(delay)).await.map_err(|source| self.ack_error("nak", source))
    }

    /// Gives up on the message: publishes its payload and headers to the dead-letter subject
    /// of its stream (`<prefix>.dlq.<stream, lowercased>`) with `Radfin-Dlq-Reason`,
    /// `Radfin-Original-Subject`, `Radfin-Delivered` (and the original stream, sequence,
    /// message id and consumer), waits for that publish to be acknowledged, then acks the
    /// original so it is not delivered again.
    ///
    /// Dead-lettering the same delivery twice (a retry after a failed ack) stores one dead
    /// letter: its `Nats-Msg-Id` is derived from the stream, consumer and sequence.
    pub async fn dead_letter(&self, bus: &Bus, reason: &str) -> Result<PublishAck, BusError> {
        let mut dead = HeaderMap::new();
        if let Some(original) = self.headers() {
            for (name, values) in original.iter() {
                // JetStream's own headers (Nats-Msg-Id, Nats-Expected-…) would act on the DLQ.
                let name_str: &str = name.as_ref();
                if name_str.get(..5).is_some_and(|start| start.eq_ignore_ascii_case("nats-")) {
                    continue;
                }
                for value in values {
                    dead.append(name.clone(), value.clone());
                }
            }
        }
        dead.insert(headers::DLQ_REASON, headers::reason_value(reason));
        dead.insert(headers::ORIGINAL_SUBJECT, headers::value(self.subject()));
        dead.insert(headers::DELIVERED, self.delivered.to_string());
        dead.insert(headers::ORIGINAL_STREAM, headers::value(&self.stream));
        dead.insert(headers::ORIGINAL_SEQUENCE, self.stream_sequence.to_string());
        dead.insert(headers::CONSUMER, headers::value(&self.consumer));
        if let Some(msg_id) = self.msg_id() {
            dead.insert(headers::ORIGINAL_MSG_ID, headers::value(msg_id));
        }
        dead.insert(
            headers::MSG_ID,
            headers::value(&format!("dlq:{}:{}:{}", self.stream, self.consumer, self.stream_sequence)),
        );
        let subject = bus.names().dlq_subject(&self.stream);
        let ack = bus.publish_raw(&subject, dead, self.message.payload.clone()).await?;
        self.ack().await?;
        tracing::warn!(
            stream = %self.stream,
            consumer = %self.consumer,
            sequence = self.stream_sequence,
            subject = %self.subject(),
            delivered = self.delivered,
            reason,
            "message dead-lettered"
        );
        Ok(ack)
    }

    fn ack_error(&self, action: &'static str, source: async_nats::Error) -> BusError {
        BusError::Ack { action, stream: self.stream.clone(), sequence: self.stream_sequence, source }
    }
}

/// `payload` decoded as `M`; shared by deliveries and replayed messages.
pub(crate) fn decode<M: prost::Message + Default>(subject: &str, payload: &[u8]) -> Result<M, BusError> {
    M::decode(payload).map_err(|source| BusError::Decode { subject: subject.to_owned(), source })
}
