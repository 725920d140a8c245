//! Dead letters for operators: list the dead-letter stream, and redrive a dead letter to the
//! subject it came from.
//!
//! Both read the stream by sequence with JetStream's message get (`STREAM.MSG.GET`, answered by
//! the stream's leader; nats-server 2.9 supports it without `allow_direct`), so no consumer is
//! created and nothing is acknowledged: listing is a read.

use std::time::SystemTime;

use async_nats::HeaderMap;
use async_nats::jetstream::stream::{DeleteMessageError, DeleteMessageErrorKind, RawMessageErrorKind, Stream};

use crate::bus::Bus;
use crate::error::BusError;
use crate::headers;

/// JetStream's "no message found" error code.
const NO_MESSAGE_FOUND: u64 = 10037;

/// One message in the dead-letter stream, as [`crate::Delivery::dead_letter`] wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream: what [`Bus::redrive`] takes.
    pub seq: u64,
    /// When it was dead-lettered.
    pub published_at: SystemTime,
    /// The subject the message was originally published to (empty when the header is missing).
    pub original_subject: String,
    /// The stream the message came from.
    pub original_stream: String,
    /// Its sequence in that stream (0 when unknown).
    pub original_sequence: u64,
    /// The consumer that gave up on it.
    pub consumer: String,
    /// Why.
    pub reason: String,
    /// How many times it had been delivered (0 when unknown).
    pub delivered: u64,
    /// The original `Nats-Msg-Id`, if it had one.
    pub msg_id: Option<String>,
    /// The payload's size in bytes.
    pub payload_len: usize,
}

/// A dead letter republished by [`Bus::redrive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redriven {
    /// Its sequence in the dead-letter stream (now deleted from it).
    pub seq: u64,
    /// Where it was republished: its original subject.
    pub subject: String,
    /// The stream that stored it.
    pub stream: String,
    /// Its new sequence in that stream.
    pub stream_sequence: u64,
    /// Whether the stream already held this redrive (`redrive:<seq>`) within its duplicate
    /// window, so this one stored nothing again.
    pub duplicate: bool,
}

/// The headers [`crate::Delivery::dead_letter`] adds, which a redrive leaves out.
const DEAD_LETTER_HEADERS: [&str; 7] = [
    headers::DLQ_REASON,
    headers::ORIGINAL_SUBJECT,
    headers::DELIVERED,
    headers::ORIGINAL_STREAM,
    headers::ORIGINAL_SEQUENCE,
    headers::ORIGINAL_MSG_ID,
    headers::CONSUMER,
];

/// The `Nats-Msg-Id` of the redrive of dead letter `seq`: a repeated redrive within the target
/// stream's duplicate window is dropped.
pub fn redrive_msg_id(seq: u64) -> String {
    format!("redrive:{seq}")
}

impl Bus {
    /// Up to `limit` dead letters with a sequence above `after_seq`, oldest first. Page with the
    /// last one's `seq` as the next `after_seq`; an empty answer means there are no more.
    pub async fn dead_letters(&self, after_seq: u64, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let stream = self.dlq_stream().await?;
        let filter = self.names().dlq_subjects();
        let mut letters = Vec::new();
        let mut next = after_seq.saturating_add(1);
        while letters.len() < limit && next != u64::MAX {
            let message = stream.raw_message_builder().sequence(next).next_by_subject(filter.clone()).send().await;
            let message = match message {
                Ok(message) => message,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(source) => return Err(self.read_error(source)),
            };
            next = message.sequence.saturating_add(1);
            letters.push(dead_letter(message.sequence, message.time.into(), &message.headers, message.payload.len()));
        }
        Ok(letters)
    }

    /// Republishes dead letter `seq` to its original subject, with its original headers (content
    /// type, trace context) and `Nats-Msg-Id: redrive:<seq>`, waits for the acknowledgement, then
    /// deletes it from the dead-letter stream. [`BusError::DeadLetterNotFound`] when the stream
    /// does not hold `seq` (never dead-lettered, or redriven already).
    ///
    /// The consumers are idempotent, so a message processed again books nothing twice.
    pub async fn redrive(&self, seq: u64) -> Result<Redriven, BusError> {
        let stream = self.dlq_stream().await?;
        let message = match stream.get_raw_message(seq).await {
            Ok(message) => message,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
                return Err(BusError::DeadLetterNotFound { seq });
            }
            Err(source) => return Err(self.read_error(source)),
        };
        let subject = headers::get(Some(&message.headers), headers::ORIGINAL_SUBJECT)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| BusError::InvalidArgument {
                what: "dead letter",
                reason: format!("dead letter {seq} has no {} header", headers::ORIGINAL_SUBJECT),
            })?;
        let mut republished = HeaderMap::new();
        for (name, values) in message.headers.iter() {
            let name_str: &str = name.as_ref();
            let jetstream_header = name_str.get(..5).is_some_and(|start| start.eq_ignore_ascii_case("nats-"));
            if jetstream_header || DEAD_LETTER_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name_str)) {
                continue;
            }
            for value in values {
                republished.append(name.clone(), value.clone());
            }
        }
        republished.insert(headers::MSG_ID, headers::value(&redrive_msg_id(seq)));
        let ack = self.publish_raw(&subject, republished, message.payload.clone()).await?;
        match stream.delete_message(seq).await {
            Ok(_) => {}
            // Deleted meanwhile by a concurrent redrive of the same dead letter: its republish
            // and this one are the same message to the stream.
            Err(e) if already_deleted(&e) => {}
            Err(source) => {
                return Err(BusError::DeadLetterDelete { stream: self.names().dlq_stream().to_owned(), seq, source });
            }
        }
        tracing::info!(
            seq,
            subject = %subject,
            stream = %ack.stream,
            sequence = ack.sequence,
            duplicate = ack.duplicate,
            "dead letter redriven"
        );
        Ok(Redriven { seq, subject, stream: ack.stream, stream_sequence: ack.sequence, duplicate: ack.duplicate })
    }

    async fn dlq_stream(&self) -> Result<Stream<()>, BusError> {
        let name = self.names().dlq_stream();
        self.jetstream()
            .get_stream_no_info(name)
            .await
            .map_err(|e| BusError::InvalidArgument { what: "stream name", reason: format!("{name}: {e}") })
    }

    fn read_error(&self, source: async_nats::jetstream::stream::RawMessageError) -> BusError {
        BusError::DeadLetterRead { stream: self.names().dlq_stream().to_owned(), source }
    }
}

/// Whether a delete failed because the message is not (any longer) in the stream.
fn already_deleted(error: &DeleteMessageError) -> bool {
    matches!(error.kind(), DeleteMessageErrorKind::JetStream(e) if e.error_code().0 == NO_MESSAGE_FOUND)
}

/// A stored dead letter from its headers.
fn dead_letter(seq: u64, published_at: SystemTime, map: &HeaderMap, payload_len: usize) -> DeadLetter {
    let text = |name| headers::get(Some(map), name).unwrap_or_default().to_owned();
    let number = |name| headers::get(Some(map), name).and_then(|v| v.trim().parse().ok()).unwrap_or_default();
    DeadLetter {
        seq,
        published_at,
        original_subject: text(headers::ORIGINAL_SUBJECT),
        original_stream: text(headers::ORIGINAL_STREAM),
        original_sequence: number(headers::ORIGINAL_SEQUENCE),
        consumer: text(headers::CONSUMER),
        reason: text(headers::DLQ_REASON),
        delivered: number(headers::DELIVERED),
        msg_id: headers::get(Some(map), headers::ORIGINAL_MSG_ID).map(str::to_owned),
        payload_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_is_read_from_its_headers() {
        let mut map = HeaderMap::new();
        map.insert(headers::DLQ_REASON, "undecodable");
        map.insert(headers::ORIGINAL_SUBJECT, "radfin.reports.2026-01");
        map.insert(headers::ORIGINAL_STREAM, "RADFIN_REPORTS");
        map.insert(headers::ORIGINAL_SEQUENCE, "42");
        map.insert(headers::CONSUMER, "pricing");
        map.insert(headers::DELIVERED, "5");
        let at = SystemTime::UNIX_EPOCH;
        let letter = dead_letter(7, at, &map, 3);
        assert_eq!(
            letter,
            DeadLetter {
                seq: 7,
                published_at: at,
                original_subject: "radfin.reports.2026-01".to_owned(),
                original_stream: "RADFIN_REPORTS".to_owned(),
                original_sequence: 42,
                consumer: "pricing".to_owned(),
                reason: "undecodable".to_owned(),
                delivered: 5,
                msg_id: None,
                payload_len: 3,
            }
        );
        map.insert(headers::ORIGINAL_MSG_ID, "R-1:1");
        map.insert(headers::DELIVERED, "many");
        let letter = dead_letter(8, at, &map, 0);
        assert_eq!(letter.msg_id.as_deref(), Some("R-1:1"));
        assert_eq!(letter.delivered, 0);
        assert_eq!(redrive_msg_id(8), "redrive:8");
    }
}
