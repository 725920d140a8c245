//! The FX feed (spec §4.3): reference rates fetched over HTTP and turned into [`FxRate`]s,
//! INR per unit of each currency radfin bills in.
//!
//! Two formats are understood, chosen per feed by [`FeedFormat`]:
//!
//! # ECB XML ([`FeedFormat::EcbXml`])
//!
//! The European Central Bank's `eurofxref-daily.xml` (one day) and `eurofxref-hist.xml` (every
//! day since 1999), parsed namespace-aware, so the prefixes a document picks do not matter:
//!
//! ```xml
//! <gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
//!                  xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
//!   <gesmes:subject>Reference rates</gesmes:subject>
//!   <Cube>
//!     <Cube time="2026-01-05">
//!       <Cube currency="USD" rate="1.0823"/>
//!       <Cube currency="INR" rate="89.5"/>
//!     </Cube>
//!   </Cube>
//! </gesmes:Envelope>
//! ```
//!
//! Elements of the `gesmes` namespace other than the envelope are skipped; any other element
//! that does not fit this shape is an error.
//!
//! # JSON ([`FeedFormat::Json`])
//!
//! One object whose `base` says how its rates are quoted. Rates and dates are **strings**
//! (`"83.123456"`, `"2026-01-05"`); a JSON number where a rate belongs is refused, so no rate ever
//! passes through a binary float. Unknown fields are refused too.
//!
//! `"base": "INR"`, rates already in INR per unit, any number of days:
//!
//! ```json
//! {"base": "INR",
//!  "rates": [{"date": "2026-01-05", "currency": "USD", "inr_per_unit": "83.123456"},
//!            {"date": "2026-01-05", "currency": "GBP", "inr_per_unit": "105.84"}]}
//! ```
//!
//! `"base": "EUR"`, one day of rates per 1 EUR, exactly like one ECB day (INR must be among them):
//!
//! ```json
//! {"base": "EUR", "date": "2026-01-05", "rates": {"INR": "89.5", "USD": "1.0823"}}
//! ```
//!
//! # What comes out
//!
//! - Rates quoted per 1 EUR become INR per unit of X = rate(INR) / rate(X), through
//!   [`inr_per_unit_from_eur_quotes`] (6 decimals, half away from zero). EUR itself is not listed
//!   in such quotes; INR per EUR is rate(INR).
//! - Every INR per unit of a billable currency, given or derived, is within [`limits::FX_RATE`]
//!   (at most 4 integer digits and 6 decimal places); every other rate the feed writes (a quote
//!   per 1 EUR, a row for a currency radfin does not bill in) within [`limits::FX_QUOTE`]. Both
//!   are counted as written, and a rate beyond them is refused with the limit it breaks.
//! - A EUR-quoted day without an INR rate yields no rates: it is skipped, and the other days still
//!   count (the ECB's history begins years before its first INR quote; a feed that drops INR for a
//!   day must not stop the rest from loading). One `tracing` warning per parse reports the skipped
//!   days (fields `days`, `first`, `last`).
//! - Only currencies radfin can bill in are returned: a well-formed code that
//!   [`Currency::parse`] refuses (`XDR`, an unknown code) is skipped; INR, the base, is never
//!   returned. Every rate carries the `source` the caller gave.
//! - Rates come out sorted by date, then currency code.
//! - Anything malformed (XML or JSON syntax, a wrong root or namespace, a missing attribute, a bad
//!   date, currency code or rate, a non-positive rate or one out of bounds, a currency or day
//!   listed twice, a feed with no day at all) is a [`FeedError`] naming what is wrong and where;
//!   nothing partial is returned.
//! - A feed may not call itself [`MANUAL_SOURCE`]: that source marks rates put by hand, which
//!   supersede every feed's.
//!
//! [`run_schedule`] fetches a feed now and then every interval until shutdown.

mod ecb;
mod json;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use radfin_domain::fx::{FxRate, MANUAL_SOURCE, inr_per_unit_from_eur_quotes};
use radfin_domain::limits::{self, DecimalLimit, LimitError};
use radfin_domain::money::Currency;
use radfin_service::shutdown::Shutdown;
use reqwest::{StatusCode, Url};
use rust_decimal::Decimal;

pub use ecb::parse_ecb_xml;
pub use json::parse_json;

/// How long a fetch may take, from connecting to the last byte of the body, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest body a fetch accepts, unless configured. The ECB's full history is about 7 MiB;
/// this leaves room for years of growth while keeping a misbehaving server from exhausting memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The format of a feed's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedFormat {
    /// The ECB's `eurofxref` XML (daily or history), rates per 1 EUR.
    EcbXml,
    /// radfin's JSON format (see the module documentation).
    Json,
}

impl FeedFormat {
    /// The media type sent in the `Accept` header.
    fn media_type(self) -> &'static str {
        match self {
            FeedFormat::EcbXml => "application/xml, text/xml",
            FeedFormat::Json => "application/json",
        }
    }
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedFormat::EcbXml => "ecb-xml",
            FeedFormat::Json => "json",
        })
    }
}

/// The format's name as configured: `ecb-xml` or `json`.
impl FromStr for FeedFormat {
    type Err = UnknownFeedFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ecb-xml" => Ok(FeedFormat::EcbXml),
            "json" => Ok(FeedFormat::Json),
            other => Err(UnknownFeedFormat(other.to_owned())),
        }
    }
}

/// A feed format name that is neither `ecb-xml` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fx feed format '{0}', expected 'ecb-xml' or 'json'")]
pub struct UnknownFeedFormat(pub String);

/// A place in a feed, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A byte offset into the body, where no day is known yet.
    Byte(u64),
    /// One day of the feed.
    Day(NaiveDate),
    /// One currency on one day.
    Quote(NaiveDate, String),
    /// A row of an INR-based JSON feed, counted from 0, where its date is not known.
    Row(usize),
    /// A top-level field of a JSON feed.
    Field(&'static str),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Byte(at) => write!(f, "byte {at}"),
            Location::Day(date) => write!(f, "day {date}"),
            Location::Quote(date, currency) => write!(f, "day {date}, currency {currency}"),
            Location::Row(i) => write!(f, "row {i}"),
            Location::Field(name) => write!(f, "field '{name}'"),
        }
    }
}

/// Why a feed yielded no rates. Messages do not repeat their `source`; print the chain.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("request to {url} failed")]
    Request {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("no complete response from {url} within {after:?}")]
    Timeout { url: Url, after: Duration },
    #[error("{url} answered with http status {status}")]
    Status { url: Url, status: StatusCode },
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge { url: Url, limit: usize },
    #[error("malformed xml at byte {position}")]
    Xml {
        position: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("malformed json feed")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("root element is {found}, expected Envelope in namespace {}", ecb::GESMES_NS)]
    WrongRoot { found: String },
    #[error("unexpected element {element} at byte {position}")]
    Unexpected { element: String, position: u64 },
    #[error("document ends inside an element at byte {position}")]
    Truncated { position: u64 },
    #[error("missing attribute '{attribute}' at {at}")]
    MissingAttribute { attribute: &'static str, at: Location },
    #[error("invalid date '{value}' at {at}, expected YYYY-MM-DD")]
    InvalidDate { value: String, at: Location },
    #[error("invalid currency code '{value}' at {at}, expected three upper-case letters")]
    InvalidCurrency { value: String, at: Location },
    #[error("invalid rate '{value}' at {at}, expected a plain decimal such as 1.0823")]
    InvalidRate { value: String, at: Location },
    #[error("rate at {at}: {error}")]
    RateOutOfBounds { at: Location, error: LimitError },
    #[error("inr per unit derived at {at}: {error}")]
    DerivedOutOfBounds { at: Location, error: LimitError },
    #[error("rate {value} at {at} is not positive")]
    NotPositive { value: Decimal, at: Location },
    #[error("{at} is listed twice")]
    Duplicate { at: Location },
    #[error("the base currency {currency} is listed among its own rates at {at}")]
    BaseListed { currency: Currency, at: Location },
    #[error("inr per unit at {at} is out of range")]
    OutOfRange { at: Location },
    #[error("the feed lists no rates")]
    NoRates,
    #[error("a feed's source may not be {MANUAL_SOURCE:?}: it marks rates put by hand")]
    ReservedSource,
    #[error("parsing the feed was cancelled because the runtime is shutting down")]
    Cancelled,
}

impl FeedError {
    /// Whether the same request may succeed later: transport failures, timeouts, 5xx and 429.
    /// A body that does not parse will not fix itself (though the next scheduled fetch tries anyway).
    pub fn is_retryable(&self) -> bool {
        match self {
            FeedError::Request { .. } | FeedError::Timeout { .. } => true,
            FeedError::Status { status, .. } => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            _ => false,
        }
    }
}

/// A configured feed with the HTTP client that fetches it: what the schedule and an on-demand
/// fetch (`FetchFxRates`) share.
#[derive(Clone, Debug)]
pub struct FeedClient {
    pub feed: FxFeed,
    pub client: reqwest::Client,
}

impl FeedClient {
    pub fn new(feed: FxFeed) -> Result<Self, reqwest::Error> {
        Ok(Self { feed, client: reqwest::Client::builder().build()? })
    }

    pub async fn fetch(&self) -> Result<Vec<FxRate>, FeedError> {
        self.feed.fetch(&self.client).await
    }
}

/// One configured feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FxFeed {
    pub url: Url,
    pub format: FeedFormat,
    /// Recorded on every rate, e.g. `ECB`.
    pub source: String,
    /// Limit on the whole exchange: connecting, the response head and the body.
    pub timeout: Duration,
    /// Larger bodies are refused.
    pub max_body_bytes: usize,
}

impl FxFeed {
    /// A feed with [`DEFAULT_TIMEOUT`] and [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(url: Url, format: FeedFormat, source: impl Into<String>) -> Self {
        Self { url, format, source: source.into(), timeout: DEFAULT_TIMEOUT, max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }

    /// GETs the feed and parses its body. Fails on a transport error, a non-2xx status, a body over
    /// [`FxFeed::max_body_bytes`], an exchange longer than [`FxFeed::timeout`], or a body that does
    /// not parse.
    ///
    /// The body is parsed on tokio's blocking pool: the ECB's history is megabytes of XML, too
    /// much work to do on an async worker thread.
    pub async fn fetch(&self, client: &reqwest::Client) -> Result<Vec<FxRate>, FeedError> {
        let body = match tokio::time::timeout(self.timeout, self.download(client)).await {
            Ok(body) => body?,
            Err(_elapsed) => return Err(self.timed_out()),
        };
        let (format, source) = (self.format, self.source.clone());
        match tokio::task::spawn_blocking(move || parse_body(format, &body, &source)).await {
            Ok(parsed) => parsed,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_cancelled) => Err(FeedError::Cancelled),
            },
        }
    }

    /// Parses a body in this feed's format with this feed's source.
    pub fn parse(&self, body: &[u8]) -> Result<Vec<FxRate>, FeedError> {
        parse_body(self.format, body, &self.source)
    }

    async fn download(&self, client: &reqwest::Client) -> Result<Vec<u8>, FeedError> {
        let mut response = client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, self.format.media_type())
            .send()
            .await
            .map_err(|e| self.request_failed(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FeedError::Status { url: self.url.clone(), status });
        }
        let too_large = || FeedError::TooLarge { url: self.url.clone(), limit: self.max_body_bytes };
        let limit = u64::try_from(self.max_body_bytes).unwrap_or(u64::MAX);
        if response.content_length().is_some_and(|declared| declared > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_failed(e))? {
            if chunk.len() > self.max_body_bytes - body.len() {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn request_failed(&self, e: reqwest::Error) -> FeedError {
        if e.is_timeout() {
            self.timed_out()
        } else {
            FeedError::Request { url: self.url.clone(), source: e.without_url() }
        }
    }

    fn timed_out(&self) -> FeedError {
        FeedError::Timeout { url: self.url.clone(), after: self.timeout }
    }
}

/// Parses a body in `format`.
fn parse_body(format: FeedFormat, body: &[u8], source: &str) -> Result<Vec<FxRate>, FeedError> {
    match format {
        FeedFormat::EcbXml => parse_ecb_xml(body, source),
        FeedFormat::Json => parse_json(body, source),
    }
}

/// Fetches `feed` at once and then every `interval`, handing each successful batch to `sink`,
/// until `shutdown` is requested. A failed fetch is logged (fields `source`, `url`, `retryable`,
/// `error` with its causes) and the schedule goes on; the next attempt is at the next tick.
///
/// Shutdown interrupts a wait or a fetch in progress at once; a `sink` call in progress is
/// awaited, so a batch is never half-handed over. Ticks missed while a fetch or the sink was slow
/// are not made up in a burst: the next one is an `interval` later.
///
/// # Panics
///
/// If `interval` is zero.
pub async fn run_schedule<F, Fut>(
    feed: &FxFeed,
    client: &reqwest::Client,
    interval: Duration,
    mut sink: F,
    mut shutdown: Shutdown,
) where
    F: FnMut(Vec<FxRate>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let fetched = tokio::select! {
            biased;
            () = shutdown.requested() => break,
            fetched = async {
                ticks.tick().await;
                feed.fetch(client).await
            } => fetched,
        };
        match fetched {
            Ok(rates) => {
                tracing::info!(source = %feed.source, url = %feed.url, rates = rates.len(), "fetched fx rates");
                sink(rates).await;
            }
            Err(e) => tracing::warn!(
                source = %feed.source,
                url = %feed.url,
                retryable = e.is_retryable(),
                error = %ErrorChain(&e),
                "fx feed fetch failed; trying again at the next interval"
            ),
        }
    }
    tracing::info!(source = %feed.source, url = %feed.url, "fx feed schedule stopped");
}

/// Displays an error with its causes: `a: b: c`.
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// What a parser found: the rates, and the EUR-quoted days skipped for want of an INR rate.
#[derive(Debug, Default)]
struct Parsed {
    rates: Vec<FxRate>,
    days_without_inr: Vec<NaiveDate>,
}

impl Parsed {
    /// Sorts the rates, logs the skipped days, and returns the rates.
    fn finish(mut self, source: &str) -> Vec<FxRate> {
        // One line for them all: the ECB's history has years of days from before it quoted INR.
        if let (Some(first), Some(last)) = (self.days_without_inr.iter().min(), self.days_without_inr.iter().max()) {
            tracing::warn!(
                source,
                days = self.days_without_inr.len(),
                %first,
                %last,
                "fx feed days without an INR rate skipped"
            );
        }
        self.rates.sort_by(|a, b| (a.rate_date, a.currency.code()).cmp(&(b.rate_date, b.currency.code())));
        self.rates
    }

    /// Adds one day quoted per 1 EUR (validated quotes, each currency once, EUR not among them).
    fn add_eur_day(&mut self, date: NaiveDate, quotes: &[(String, Decimal)], source: &str) -> Result<(), FeedError> {
        let Some(inr_per_eur) = quotes.iter().find(|(code, _)| code == "INR").map(|(_, rate)| *rate) else {
            self.days_without_inr.push(date);
            return Ok(());
        };
        let eur = std::iter::once(("EUR", Decimal::ONE));
        for (code, x_per_eur) in eur.chain(quotes.iter().map(|(code, rate)| (code.as_str(), *rate))) {
            let Some(currency) = billable(code) else { continue };
            let at = || Location::Quote(date, code.to_owned());
            let inr_per_unit = inr_per_unit_from_eur_quotes(inr_per_eur, x_per_eur)
                .filter(|r| *r > Decimal::ZERO)
                .ok_or_else(|| FeedError::OutOfRange { at: at() })?;
            limits::FX_RATE.check(inr_per_unit).map_err(|error| FeedError::DerivedOutOfBounds { at: at(), error })?;
            self.rates.push(FxRate { rate_date: date, currency, inr_per_unit, source: source.to_owned() });
        }
        Ok(())
    }
}

/// The currency for a well-formed code if radfin bills in it and it is not INR.
fn billable(code: &str) -> Option<Currency> {
    match Currency::parse(code) {
        Ok(Currency::INR) => None,
        Ok(currency) => Some(currency),
        Err(e) => {
            tracing::debug!(currency = code, error = %e, "fx feed currency skipped");
            None
        }
    }
}

/// Checks that a currency code is three upper-case ASCII letters.
fn check_code(value: &str, at: impl FnOnce() -> Location) -> Result<(), FeedError> {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(FeedError::InvalidCurrency { value: value.to_owned(), at: at() })
    }
}

/// Parses a `YYYY-MM-DD` date.
fn parse_date(value: &str, at: impl FnOnce() -> Location) -> Result<NaiveDate, FeedError> {
    let well_formed = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    well_formed
        .then(|| value.parse::<NaiveDate>().ok())
        .flatten()
        .ok_or_else(|| FeedError::InvalidDate { value: value.to_owned(), at: at() })
}

/// Parses a positive rate written as a plain decimal (`89.5`, `0.8456`, `162`): digits, at most
/// one point with digits on both sides, an optional leading minus (so that a negative rate is
/// reported as not positive). No exponent, sign `+`, separators or blanks. Exact, and within
/// `limit`: a rate with more digits is refused with the limit it breaks, never rounded.
fn parse_rate(value: &str, limit: DecimalLimit, at: impl Fn() -> Location) -> Result<Decimal, FeedError> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "1"));
    let plain = [int, frac].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !plain {
        return Err(FeedError::InvalidRate { value: value.to_owned(), at: at() });
    }
    match limit.parse(value) {
        Err(error) => Err(FeedError::RateOutOfBounds { at: at(), error }),
        Ok(rate) if rate <= Decimal::ZERO => Err(FeedError::NotPositive { value: rate, at: at() }),
        Ok(rate) => Ok(rate),
    }
}

/// Refuses [`MANUAL_SOURCE`] as a feed's source.
fn check_source(source: &str) -> Result<(), FeedError> {
    if radfin_domain::fx::is_manual(source) { Err(FeedError::ReservedSource) } else { Ok(()) }
}
