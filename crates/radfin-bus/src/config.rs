//! Bus configuration and the names (streams, subjects, message ids) derived from it.

use std::fmt;
use std::time::Duration;

use radfin_domain::period::Period;

use crate::error::BusError;

/// Longest accepted prefix. Stream names end up as file names on the server; this leaves room.
const MAX_PREFIX_LEN: usize = 32;

/// How a service reaches NATS and what its streams and consumers look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// NATS server URL(s), comma separated, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Prefix of every stream and subject: lowercase ASCII letters, digits, `-` and `_`,
    /// starting with a letter, at most 32 characters. `radfin` gives the stream
    /// `RADFIN_REPORTS` with subjects `radfin.reports.<YYYY-MM>`.
    pub prefix: String,
    /// How many times a consumer delivers a message before giving up on it (at least 1).
    /// Consumers dead-letter a message on its last attempt ([`crate::Delivery::is_last_attempt`]).
    pub max_deliver: i64,
    /// How long a delivered message may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// How long a stream remembers a `Nats-Msg-Id` to drop a duplicate publish.
    pub duplicate_window: Duration,
    /// Name the connection shows in the server's monitoring (`connz`): the service's name.
    pub connection_name: String,
    /// How many times [`crate::Bus::connect`] tries to reach the server before it gives up
    /// (at least 1). Once connected, the client reconnects on its own without limit.
    pub connect_attempts: u32,
    /// Replicas of each stream: 1 on a single server, 3 on the production cluster.
    pub replicas: usize,
    /// How long the report and priced streams keep a message; zero (the default) keeps every
    /// message: the streams are the replay log operators rerun months from, so a limit must
    /// outlast the oldest month that may still be rerun.
    pub max_age: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "radfin".to_owned(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(10 * 60),
            connection_name: "radfin".to_owned(),
            connect_attempts: 5,
            replicas: 1,
            max_age: Duration::ZERO,
        }
    }
}

impl BusConfig {
    /// The servers of [`BusConfig::url`], one per comma-separated entry: the client connects to
    /// whichever answers first and, once connected, also learns the rest of the cluster.
    pub fn servers(&self) -> Vec<&str> {
        self.url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }

    /// Checks every field; the error names each bad one.
    pub fn validate(&self) -> Result<(), BusError> {
        let mut problems = Vec::new();
        if self.url.trim().is_empty() {
            problems.push("url must not be empty".to_owned());
        }
        if let Err(problem) = check_prefix(&self.prefix) {
            problems.push(problem);
        }
        if self.max_deliver < 1 {
            problems.push(format!("max_deliver must be at least 1, not {}", self.max_deliver));
        }
        if self.ack_wait.is_zero() {
            problems.push("ack_wait must be positive".to_owned());
        }
        if self.duplicate_window.is_zero() {
            problems.push("duplicate_window must be positive".to_owned());
        }
        if self.connection_name.trim().is_empty() {
            problems.push("connection_name must not be empty".to_owned());
        }
        if self.connect_attempts == 0 {
            problems.push("connect_attempts must be at least 1".to_owned());
        }
        if !(1..=5).contains(&self.replicas) {
            problems.push(format!("replicas must be between 1 and 5, not {}", self.replicas));
        }
        if problems.is_empty() { Ok(()) } else { Err(BusError::InvalidConfig(problems.join("; "))) }
    }
}

/// A stream whose subjects are partitioned by billing period, so one period can be replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeriodStream {
    /// Accepted report events: `<PREFIX>_REPORTS`, `<prefix>.reports.<YYYY-MM>`.
    Reports,
    /// Priced reports: `<PREFIX>_PRICED`, `<prefix>.priced.<YYYY-MM>`.
    Priced,
}

impl PeriodStream {
    fn token(self) -> &'static str {
        match self {
            Self::Reports => "reports",
            Self::Priced => "priced",
        }
    }
}

/// Stream and subject names derived from a validated prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    reports_stream: String,
    priced_stream: String,
    dlq_stream: String,
}

impl Names {
    /// Names for `prefix`, which must be lowercase ASCII letters, digits, `-` and `_`, start
    /// with a letter and be at most 32 characters, so that it is both a subject token and part
    /// of a stream name, and two prefixes never map to the same stream.
    pub fn new(prefix: &str) -> Result<Self, BusError> {
        check_prefix(prefix).map_err(BusError::InvalidConfig)?;
        let upper = prefix.to_ascii_uppercase();
        Ok(Self {
            prefix: prefix.to_owned(),
            reports_stream: format!("{upper}_REPORTS"),
            priced_stream: format!("{upper}_PRICED"),
            dlq_stream: format!("{upper}_DLQ"),
        })
    }

    /// The prefix these names derive from.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<PREFIX>_REPORTS`.
    pub fn reports_stream(&self) -> &str {
        &self.reports_stream
    }

    /// `<PREFIX>_PRICED`.
    pub fn priced_stream(&self) -> &str {
        &self.priced_stream
    }

    /// `<PREFIX>_DLQ`.
    pub fn dlq_stream(&self) -> &str {
        &self.dlq_stream
    }

    /// The name of a period-partitioned stream.
    pub fn stream(&self, stream: PeriodStream) -> &str {
        match stream {
            PeriodStream::Reports => &self.reports_stream,
            PeriodStream::Priced => &self.priced_stream,
        }
    }

    /// `<prefix>.reports.<YYYY-MM>`: where a report event of `period` is published.
    pub fn report_subject(&self, period: Period) -> String {
        self.period_subject(PeriodStream::Reports, period)
    }

    /// `<prefix>.priced.<YYYY-MM>`: where a priced report of `period` is published.
    pub fn priced_subject(&self, period: Period) -> String {
        self.period_subject(PeriodStream::Priced, period)
    }

    /// The subject of `period` in a period-partitioned stream.
    pub fn period_subject(&self, stream: PeriodStream, period: Period) -> String {
        format!("{}.{}.{period}", self.prefix, stream.token())
    }

    /// The subjects a period-partitioned stream captures: `<prefix>.<reports|priced>.*`.
    pub fn stream_subjects(&self, stream: PeriodStream) -> String {
        format!("{}.{}.*", self.prefix, stream.token())
    }

    /// `<prefix>.dlq.<source stream, lowercased>`: where messages given up on by a consumer of
    /// `source_stream` are dead-lettered.
    pub fn dlq_subject(&self, source_stream: &str) -> String {
        format!("{}.dlq.{}", self.prefix, source_stream.to_ascii_lowercase())
    }

    /// The subjects the dead-letter stream captures: `<prefix>.dlq.*`.
    pub fn dlq_subjects(&self) -> String {
        format!("{}.dlq.*", self.prefix)
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    let well_formed = prefix.len() <= MAX_PREFIX_LEN
        && prefix.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "prefix '{prefix}' must be 1 to {MAX_PREFIX_LEN} characters of lowercase ASCII letters, digits, \
             '-' and '_', starting with a letter"
        ))
    }
}

/// Whether `name` can name a consumer: 1 to 64 ASCII letters, digits, `-` and `_` (it becomes a
/// token of JetStream API subjects).
pub(crate) fn check_consumer_name(name: &str) -> Result<(), BusError> {
    let ok =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidArgument {
            what: "consumer name",
            reason: format!("'{name}' must be 1 to 64 ASCII letters, digits, '-' and '_'"),
        })
    }
}

/// The `Nats-Msg-Id` of a report event: `<report_id>:<revision>`, the ingest idempotency key.
pub fn report_msg_id(report_id: &str, revision: u32) -> String {
    format!("{report_id}:{revision}")
}

/// The `Nats-Msg-Id` of a priced report: `<report_id>:<revision>:<run_id>`, one per pricing run.
pub fn priced_msg_id(report_id: &str, revision: u32, run_id: impl fmt::Display) -> String {
    format!("{report_id}:{revision}:{run_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(s: &str) -> Period {
        s.parse().expect("a valid period")
    }

    #[test]
    fn a_url_list_names_every_server_of_a_cluster() {
        let config = BusConfig { url: " nats://127.0.0.1:4222, nats://127.0.0.1:4223,".into(), ..Default::default() };
        assert_eq!(config.servers(), ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
    }

    #[test]
    fn names_derive_from_the_prefix() {
        let names = Names::new("radfin").unwrap();
        assert_eq!(names.reports_stream(), "RADFIN_REPORTS");
        assert_eq!(names.priced_stream(), "RADFIN_PRICED");
        assert_eq!(names.dlq_stream(), "RADFIN_DLQ");
        assert_eq!(names.stream(PeriodStream::Priced), "RADFIN_PRICED");
        assert_eq!(names.report_subject(period("2026-01")), "radfin.reports.2026-01");
        assert_eq!(names.priced_subject(period("2026-12")), "radfin.priced.2026-12");
        assert_eq!(names.stream_subjects(PeriodStream::Reports), "radfin.reports.*");
        assert_eq!(names.dlq_subject("RADFIN_REPORTS"), "radfin.dlq.radfin_reports");
        assert_eq!(names.dlq_subjects(), "radfin.dlq.*");

        let names = Names::new("t-1_x").unwrap();
        assert_eq!(names.reports_stream(), "T-1_X_REPORTS");
        assert_eq!(names.report_subject(period("2026-02")), "t-1_x.reports.2026-02");
    }

    #[test]
    fn prefixes_must_be_a_subject_token_and_a_stream_name_part() {
        for bad in ["", "Radfin", "1radfin", "rad.fin", "rad fin", "rad*", "rad>", "rad/fin", "räd", &"a".repeat(33)] {
            let err = Names::new(bad).unwrap_err();
            assert!(matches!(err, BusError::InvalidConfig(_)), "{bad}");
            assert!(!err.is_retryable());
        }
        assert!(Names::new(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn config_validation_names_every_bad_field() {
        assert!(BusConfig::default().validate().is_ok());
        let config = BusConfig {
            prefix: "Bad.Prefix".to_owned(),
            max_deliver: -1,
            ack_wait: Duration::ZERO,
            connect_attempts: 0,
            replicas: 0,
            ..BusConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        for field in ["prefix", "max_deliver", "ack_wait", "connect_attempts", "replicas"] {
            assert!(message.contains(field), "{field} missing from: {message}");
        }
        assert!(!message.contains("duplicate_window"), "{message}");
    }

    #[test]
    fn message_ids() {
        assert_eq!(report_msg_id("R-1", 2), "R-1:2");
        assert_eq!(priced_msg_id("R-1", 2, "run-7"), "R-1:2:run-7");
        assert_eq!(priced_msg_id("R-1", 2, 7), "R-1:2:7");
    }

    #[test]
    fn consumer_names() {
        assert!(check_consumer_name("pricing-reports_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"a".repeat(65)] {
            assert!(check_consumer_name(bad).is_err(), "{bad}");
        }
    }
}
