//! Header names the bus writes, and W3C trace context carried in headers.

use std::str::FromStr;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// JetStream's deduplication key: a second publish with the same id within the stream's
/// duplicate window is acknowledged as a duplicate and not stored.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The payload's media type.
pub const CONTENT_TYPE: &str = "Content-Type";
/// The media type of every payload the bus publishes: a protobuf message.
pub const PROTOBUF: &str = "application/protobuf";
/// On a dead letter: why the consumer gave up.
pub const DLQ_REASON: &str = "Radfin-Dlq-Reason";
/// On a dead letter: the subject the message was originally published to.
pub const ORIGINAL_SUBJECT: &str = "Radfin-Original-Subject";
/// On a dead letter: how many times the message had been delivered.
pub const DELIVERED: &str = "Radfin-Delivered";
/// On a dead letter: the stream the message came from.
pub const ORIGINAL_STREAM: &str = "Radfin-Original-Stream";
/// On a dead letter: the message's sequence in its original stream.
pub const ORIGINAL_SEQUENCE: &str = "Radfin-Original-Sequence";
/// On a dead letter: the original `Nats-Msg-Id`, if it had one.
pub const ORIGINAL_MSG_ID: &str = "Radfin-Original-Msg-Id";
/// On a dead letter: the consumer that gave up on the message.
pub const CONSUMER: &str = "Radfin-Consumer";

/// Longest reason kept on a dead letter, in bytes; headers count against the server's
/// `max_payload`.
const MAX_REASON_LEN: usize = 1024;

/// A header value from any text: line breaks (which would end the header) become spaces.
pub(crate) fn value(text: &str) -> HeaderValue {
    let clean: String = text.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
    HeaderValue::from(clean)
}

/// A dead-letter reason as a header value: one line, at most [`MAX_REASON_LEN`] bytes.
pub(crate) fn reason_value(reason: &str) -> HeaderValue {
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    value(&reason[..end])
}

/// The first value of header `name`, if present (and `name` is a valid header name).
pub(crate) fn get<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    let name = HeaderName::from_str(name).ok()?;
    headers?.get(name).map(HeaderValue::as_str)
}

/// Writes the current tracing span's OpenTelemetry context (`traceparent`, `tracestate`)
/// with the globally configured propagator. Without a propagator or an OpenTelemetry layer,
/// writes nothing.
pub(crate) fn inject_current_context(headers: &mut HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// The OpenTelemetry context in `headers` (the publisher's span), for
/// `span.set_parent(...)`; an empty context when there is none.
pub(crate) fn extract_context(headers: Option<&HeaderMap>) -> opentelemetry::Context {
    match headers {
        Some(headers) => {
            opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
        }
        None => opentelemetry::Context::new(),
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // A propagator only writes valid names and values; anything else is dropped rather
        // than allowed to panic inside async-nats.
        if let (Ok(name), Ok(value)) = (HeaderName::from_str(key), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        get(Some(self.0), key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_single_lines() {
        assert_eq!(value("a\r\nb\nc").as_str(), "a  b c");
        let long = "é".repeat(MAX_REASON_LEN);
        let reason = reason_value(&long);
        assert!(reason.as_str().len() <= MAX_REASON_LEN);
        assert!(reason.as_str().chars().all(|c| c == 'é'));
    }

    #[test]
    fn lookups_tolerate_bad_names() {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, "R-1:1");
        assert_eq!(get(Some(&headers), MSG_ID), Some("R-1:1"));
        assert_eq!(get(Some(&headers), "bad:name"), None);
        assert_eq!(get(None, MSG_ID), None);
    }
}
