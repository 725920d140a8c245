//! Replaying one period of a stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::Consumer as JsConsumer;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::{self};
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt as _};

use crate::consumer::decode;
use crate::error::BusError;
use crate::headers;

/// The messages of one period, oldest first (see [`crate::Bus::replay`]). A [`Stream`] of
/// [`StoredMessage`]s that ends when it has caught up, or after its first error.
pub struct Replay {
    subject: String,
    expected: u64,
    messages: BoxStream<'static, Result<StoredMessage, BusError>>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("subject", &self.subject)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Replay {
    pub(crate) async fn start(consumer: JsConsumer<OrderedConfig>, subject: String) -> Result<Self, BusError> {
        let expected = consumer.cached_info().num_pending;
        if expected == 0 {
            return Ok(Self { subject, expected, messages: stream::empty().boxed() });
        }
        let ordered = consumer
            .messages()
            .await
            .map_err(|source| BusError::Replay { subject: subject.clone(), source: source.into() })?;
        let messages = stream::unfold(Some((ordered, subject.clone())), next).boxed();
        Ok(Self { subject, expected, messages })
    }

    /// The subject being replayed (`<prefix>.<reports|priced>.<YYYY-MM>`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// How many messages the period held when the replay started, for progress reporting.
    /// Messages published to the period during the replay are delivered too.
    pub fn expected(&self) -> u64 {
        self.expected
    }
}

type ReplayState = Option<(Ordered, String)>;

/// The next message, and the state for the one after: `None` once caught up or failed.
async fn next(state: ReplayState) -> Option<(Result<StoredMessage, BusError>, ReplayState)> {
    let (mut ordered, subject) = state?;
    match ordered.next().await? {
        Ok(message) => match StoredMessage::new(message) {
            Ok((stored, 0)) => Some((Ok(stored), None)),
            Ok((stored, _)) => Some((Ok(stored), Some((ordered, subject)))),
            Err(err) => Some((Err(err), None)),
        },
        Err(source) => Some((Err(BusError::Replay { subject, source: source.into() }), None)),
    }
}

impl Stream for Replay {
    type Item = Result<StoredMessage, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.messages.poll_next_unpin(cx)
    }
}

/// A message read back from a stream by a replay. Nothing to acknowledge.
pub struct StoredMessage {
    subject: String,
    stream_sequence: u64,
    headers: Option<HeaderMap>,
    payload: prost::bytes::Bytes,
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("subject", &self.subject)
            .field("stream_sequence", &self.stream_sequence)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl StoredMessage {
    /// The message, and how many messages of the replayed subject are still to come.
    fn new(message: jetstream::Message) -> Result<(Self, u64), BusError> {
        let (stream_sequence, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(source) => return Err(BusError::NotJetStream { subject: message.subject.to_string(), source }),
        };
        let message = message.message;
        let stored = Self {
            subject: message.subject.to_string(),
            stream_sequence,
            headers: message.headers,
            payload: message.payload,
        };
        Ok((stored, pending))
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Its sequence in the stream.
    pub fn stream_sequence(&self) -> u64 {
        self.stream_sequence
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Its headers, if it has any.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(self.headers(), name)
    }

    /// Its `Nats-Msg-Id`, if it was published with one.
    pub fn msg_id(&self) -> Option<&str> {
        self.header(headers::MSG_ID)
    }

    /// The payload decoded as `M`.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, BusError> {
        decode(&self.subject, &self.payload)
    }

    /// The original publisher's trace context (a replay is a new trace; link to it rather than
    /// parent to it).
    pub fn parent_context(&self) -> opentelemetry::Context {
        headers::extract_context(self.headers())
    }
}
