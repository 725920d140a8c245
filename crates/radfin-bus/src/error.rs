//! The bus's one error type.

use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind, PublishError, PublishErrorKind};
use async_nats::jetstream::stream::{
    ConsumerError, ConsumerErrorKind, DeleteMessageError, DeleteMessageErrorKind, RawMessageError, RawMessageErrorKind,
};
use async_nats::{ConnectError, ConnectErrorKind};

/// What can go wrong on the bus. [`BusError::is_retryable`] tells a transient failure (the
/// server is unreachable, slow or failing over) from one that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The configuration is unusable; the message names every bad field.
    #[error("invalid bus configuration: {0}")]
    InvalidConfig(String),

    /// An argument is unusable (a message id with a line break, a consumer name with a dot…).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// What the argument was.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// The server could not be reached, even after retries.
    #[error("cannot connect to nats at {url} after {attempts} attempt(s): {source}")]
    Connect {
        /// The configured URL, without credentials.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: ConnectError,
    },

    /// A stream could not be created or updated.
    #[error("cannot create or update stream {stream}: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// The server's or the client's error.
        #[source]
        source: CreateStreamError,
    },

    /// A consumer could not be created.
    #[error("cannot create consumer {consumer} on stream {stream}: {source}")]
    Consumer {
        /// The stream.
        stream: String,
        /// The consumer (durable name, or what it was for when ephemeral).
        consumer: String,
        /// The server's or the client's error.
        #[source]
        source: ConsumerError,
    },

    /// A publish was not acknowledged by JetStream: it may or may not be stored.
    #[error("publish to {subject} was not acknowledged: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: PublishError,
    },

    /// Pulling a batch from a consumer failed.
    #[error("fetch from consumer {consumer} on stream {stream} failed: {source}")]
    Fetch {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },

    /// A consumer's state could not be read from the server.
    #[error("cannot read the state of consumer {consumer} on stream {stream}: {source}")]
    ConsumerInfo {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },

    /// The server no longer has the consumer (an operator deleted it, or its stream): pulling
    /// from it cannot succeed again until it is created anew, as a service does when it starts.
    #[error("consumer {consumer} on stream {stream} no longer exists on the server")]
    ConsumerGone {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
    },

    /// An ack or nak was not confirmed; the message will be delivered again after `ack_wait`.
    #[error("{action} of message {sequence} of stream {stream} failed: {source}")]
    Ack {
        /// `ack`, `nak` or `in-progress ack`.
        action: &'static str,
        /// The stream.
        stream: String,
        /// The message's stream sequence.
        sequence: u64,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },

    /// A replay stopped before it caught up.
    #[error("replay of {subject} failed: {source}")]
    Replay {
        /// The period subject being replayed.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },

    /// A delivered message carries no JetStream metadata (not a consumer delivery).
    #[error("message on {subject} is not a jetstream delivery: {source}")]
    NotJetStream {
        /// The message's subject.
        subject: String,
        /// Why its reply subject could not be parsed.
        #[source]
        source: async_nats::Error,
    },

    /// A payload is not the expected protobuf message.
    #[error("cannot decode the protobuf payload on {subject}: {source}")]
    Decode {
        /// The message's subject.
        subject: String,
        /// prost's error.
        #[source]
        source: prost::DecodeError,
    },

    /// The dead-letter stream holds no message with this sequence (never dead-lettered, or
    /// redriven already).
    #[error("no dead letter {seq}: it was never dead-lettered, or was redriven already")]
    DeadLetterNotFound {
        /// The sequence asked for.
        seq: u64,
    },

    /// A message of the dead-letter stream could not be read.
    #[error("cannot read the dead letters of stream {stream}: {source}")]
    DeadLetterRead {
        /// The dead-letter stream.
        stream: String,
        /// The server's or the client's error.
        #[source]
        source: RawMessageError,
    },

    /// A redriven dead letter could not be deleted from the dead-letter stream (it was
    /// republished: a retry republishes it as a duplicate, which the stream drops, and deletes it).
    #[error("cannot delete dead letter {seq} from stream {stream}: {source}")]
    DeadLetterDelete {
        /// The dead-letter stream.
        stream: String,
        /// The dead letter's sequence.
        seq: u64,
        /// The server's or the client's error.
        #[source]
        source: DeleteMessageError,
    },
}

impl BusError {
    /// Whether the same operation may succeed later: the server was unreachable, slow, or
    /// without a stream leader for a moment. A `false` means a bug or bad input, which retrying
    /// does not fix (dead-letter the message, fix the configuration).
    ///
    /// A publish that found no stream (`no responders`) counts as retryable: in a cluster that
    /// is what a publish sees while the stream's leader is being elected.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidConfig(_)
            | Self::InvalidArgument { .. }
            | Self::NotJetStream { .. }
            | Self::Decode { .. }
            | Self::ConsumerGone { .. }
            | Self::DeadLetterNotFound { .. } => false,
            Self::DeadLetterRead { source, .. } => match source.kind() {
                RawMessageErrorKind::Other => true,
                RawMessageErrorKind::JetStream(e) => server_unavailable(&e),
                _ => false,
            },
            Self::DeadLetterDelete { source, .. } => match source.kind() {
                DeleteMessageErrorKind::Request | DeleteMessageErrorKind::TimedOut => true,
                DeleteMessageErrorKind::JetStream(e) => server_unavailable(&e),
            },
            Self::Connect { source, .. } => matches!(
                source.kind(),
                ConnectErrorKind::TimedOut
                    | ConnectErrorKind::Io
                    | ConnectErrorKind::Dns
                    | ConnectErrorKind::MaxReconnects
            ),
            Self::Stream { source, .. } => match source.kind() {
                CreateStreamErrorKind::TimedOut
                | CreateStreamErrorKind::JetStreamUnavailable
                | CreateStreamErrorKind::Response => true,
                CreateStreamErrorKind::JetStream(e) => server_unavailable(&e),
                _ => false,
            },
            Self::Consumer { source, .. } => match source.kind() {
                ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request => true,
                ConsumerErrorKind::JetStream(e) => server_unavailable(&e),
                _ => false,
            },
            Self::Publish { source, .. } => match source.kind() {
                PublishErrorKind::TimedOut
                | PublishErrorKind::BrokenPipe
                | PublishErrorKind::MaxAckPending
                | PublishErrorKind::StreamNotFound => true,
                // The server's refusal: retryable when it says it is unavailable (no quorum,
                // storage or resources exhausted for now), not when it refuses the message.
                PublishErrorKind::Other => std::error::Error::source(source)
                    .and_then(|cause| cause.downcast_ref::<async_nats::jetstream::Error>())
                    .is_some_and(server_unavailable),
                _ => false,
            },
            Self::Fetch { .. } | Self::ConsumerInfo { .. } | Self::Ack { .. } | Self::Replay { .. } => true,
        }
    }
}

/// A JetStream API error with a 5xx code (503: no quorum, no leader, resources or storage
/// exhausted for now) says "not now", not "never".
fn server_unavailable(error: &async_nats::jetstream::Error) -> bool {
    error.code() >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_cause() {
        let timed_out = BusError::Publish {
            subject: "radfin.reports.2026-01".to_owned(),
            source: PublishError::new(PublishErrorKind::TimedOut),
        };
        assert!(timed_out.is_retryable());
        let too_big = BusError::Publish {
            subject: "radfin.reports.2026-01".to_owned(),
            source: PublishError::new(PublishErrorKind::MaxPayloadExceeded),
        };
        assert!(!too_big.is_retryable());
        let auth = BusError::Connect {
            url: "nats://127.0.0.1:4222".to_owned(),
            attempts: 1,
            source: ConnectError::new(ConnectErrorKind::AuthorizationViolation),
        };
        assert!(!auth.is_retryable());
        let down = BusError::Connect {
            url: "nats://127.0.0.1:4222".to_owned(),
            attempts: 5,
            source: ConnectError::new(ConnectErrorKind::Io),
        };
        assert!(down.is_retryable());
        assert!(down.to_string().starts_with("cannot connect to nats at nats://127.0.0.1:4222 after 5 attempt(s)"));
    }
}
