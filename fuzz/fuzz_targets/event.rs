//! A report event off the bus: arbitrary bytes decoded as `radfin.ingest.v1.ReportEvent` (prost,
//! as `Delivery::decode` does), then validated as pricing does (`report_from_proto`, i.e.
//! `RawReport::validate`). Nothing may panic; a decoded message re-encodes to the same message;
//! a refusal names at least one field; an event that validates survives the round trip to the
//! wire and back unchanged.

#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use radfin_proto::ingest::v1::ReportEvent;
use radfin_proto::report_from_proto;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = ReportEvent::decode(data) else { return };
    let reencoded = ReportEvent::decode(msg.encode_to_vec().as_slice()).expect("a re-encoded event decodes");
    assert_eq!(reencoded, msg);

    // A fixed clock, so that a finding replays: the spec's example month.
    let now: DateTime<Utc> = DateTime::from_timestamp(1_770_724_800, 0).expect("2026-02-10T12:00:00Z");
    match report_from_proto(&msg, now) {
        Ok(event) => {
            let wire = ReportEvent::from(&event);
            let again = report_from_proto(&wire, now).unwrap_or_else(|e| panic!("{wire:?} does not validate: {e}"));
            assert_eq!(again, event);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused event names no problem");
            let _ = errors.to_string();
        }
    }
});
