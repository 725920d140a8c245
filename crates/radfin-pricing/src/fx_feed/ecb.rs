//! The ECB's `eurofxref` XML: `Envelope` › `Cube` › `Cube time` › `Cube currency rate`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use radfin_domain::fx::FxRate;
use radfin_domain::limits;
use radfin_domain::money::Currency;
use rust_decimal::Decimal;

use super::{FeedError, Location, Parsed, check_code, check_source, parse_date, parse_rate};

/// The namespace of the envelope (`gesmes:` in the ECB's files).
pub(super) const GESMES_NS: &str = "http://www.gesmes.org/xml/2002-08-01";
/// The namespace of the `Cube` elements (the default namespace in the ECB's files).
pub(super) const EUROFXREF_NS: &str = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref";

/// Parses an ECB `eurofxref-daily.xml` or `eurofxref-hist.xml` body into INR per unit of each
/// billable currency on each day, with `source` on every rate. See the [module
/// documentation](super) for the rules.
pub fn parse_ecb_xml(body: &[u8], source: &str) -> Result<Vec<FxRate>, FeedError> {
    check_source(source)?;
    parse(body, source).map(|parsed| parsed.finish(source))
}

/// The namespace an element is in.
enum Space {
    Gesmes,
    Eurofxref,
    Other(String),
    None,
    /// A prefix without a declaration in scope.
    Undeclared(String),
}

impl Space {
    fn of(resolved: &ResolveResult<'_>) -> Self {
        match resolved {
            ResolveResult::Bound(ns) if ns.as_ref() == GESMES_NS.as_bytes() => Space::Gesmes,
            ResolveResult::Bound(ns) if ns.as_ref() == EUROFXREF_NS.as_bytes() => Space::Eurofxref,
            ResolveResult::Bound(ns) => Space::Other(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            ResolveResult::Unbound => Space::None,
            ResolveResult::Unknown(prefix) => Space::Undeclared(String::from_utf8_lossy(prefix).into_owned()),
        }
    }

    /// An element's name for messages, in Clark notation: `{namespace}local`.
    fn describe(&self, local: &[u8]) -> String {
        let local = String::from_utf8_lossy(local);
        match self {
            Space::Gesmes => format!("{{{GESMES_NS}}}{local}"),
            Space::Eurofxref => format!("{{{EUROFXREF_NS}}}{local}"),
            Space::Other(ns) => format!("{{{ns}}}{local}"),
            Space::None => format!("{local} (in no namespace)"),
            Space::Undeclared(prefix) => format!("{prefix}:{local} (undeclared prefix)"),
        }
    }
}

/// An open element.
enum Frame {
    Envelope,
    /// The `Cube` holding the days.
    Days,
    /// A `Cube time=…`.
    Day,
    /// A `Cube currency=… rate=…`.
    Quote,
    /// A `gesmes` element other than the envelope (subject, sender), and all it contains.
    Skipped,
}

/// The day being read.
struct OpenDay {
    date: NaiveDate,
    quotes: Vec<(String, Decimal)>,
}

struct EcbParser<'s> {
    source: &'s str,
    stack: Vec<Frame>,
    root_seen: bool,
    day: Option<OpenDay>,
    dates: BTreeSet<NaiveDate>,
    parsed: Parsed,
}

/// Parses a body, keeping the days without INR apart for the caller.
pub(super) fn parse(body: &[u8], source: &str) -> Result<Parsed, FeedError> {
    let mut reader = NsReader::from_reader(body);
    let mut parser = EcbParser {
        source,
        stack: Vec::new(),
        root_seen: false,
        day: None,
        dates: BTreeSet::new(),
        parsed: Parsed::default(),
    };
    loop {
        let position = reader.buffer_position();
        let (space, event) = match reader.read_resolved_event() {
            Ok((resolved, event)) => (Space::of(&resolved), event),
            Err(source) => return Err(FeedError::Xml { position: reader.error_position(), source }),
        };
        match event {
            Event::Start(e) => {
                let frame = parser.open(&e, &space, &reader, position)?;
                parser.stack.push(frame);
            }
            Event::Empty(e) => {
                let frame = parser.open(&e, &space, &reader, position)?;
                parser.close(frame)?;
            }
            Event::End(_) => {
                // The reader checks that end tags match their start tags, so there is a frame.
                if let Some(frame) = parser.stack.pop() {
                    parser.close(frame)?;
                }
            }
            Event::Eof => break,
            // Text (whitespace between elements, the envelope's subject), comments, the XML
            // declaration, processing instructions: nothing to read.
            _ => {}
        }
    }
    if !parser.stack.is_empty() {
        return Err(FeedError::Truncated { position: reader.buffer_position() });
    }
    if !parser.root_seen {
        return Err(FeedError::WrongRoot { found: "absent".to_owned() });
    }
    if parser.dates.is_empty() {
        return Err(FeedError::NoRates);
    }
    Ok(parser.parsed)
}

impl EcbParser<'_> {
    /// Checks an element where it stands and returns its frame.
    fn open(
        &mut self,
        e: &BytesStart<'_>,
        space: &Space,
        reader: &NsReader<&[u8]>,
        position: u64,
    ) -> Result<Frame, FeedError> {
        let local = e.local_name();
        let local = local.as_ref();
        let cube = matches!(space, Space::Eurofxref) && local == b"Cube";
        let frame = match self.stack.last() {
            None if self.root_seen => {
                return Err(FeedError::Unexpected { element: space.describe(local), position });
            }
            None if matches!(space, Space::Gesmes) && local == b"Envelope" => {
                self.root_seen = true;
                Frame::Envelope
            }
            None => return Err(FeedError::WrongRoot { found: space.describe(local) }),
            Some(Frame::Skipped) => Frame::Skipped,
            Some(Frame::Envelope | Frame::Days | Frame::Day) if matches!(space, Space::Gesmes) => Frame::Skipped,
            Some(Frame::Envelope) if cube => Frame::Days,
            Some(Frame::Days) if cube => {
                self.open_day(e, reader, position)?;
                Frame::Day
            }
            Some(Frame::Day) if cube => {
                self.add_quote(e, reader, position)?;
                Frame::Quote
            }
            Some(_) => return Err(FeedError::Unexpected { element: space.describe(local), position }),
        };
        Ok(frame)
    }

    fn close(&mut self, frame: Frame) -> Result<(), FeedError> {
        if let Frame::Day = frame
            && let Some(day) = self.day.take()
        {
            self.parsed.add_eur_day(day.date, &day.quotes, self.source)?;
        }
        Ok(())
    }

    fn open_day(&mut self, e: &BytesStart<'_>, reader: &NsReader<&[u8]>, position: u64) -> Result<(), FeedError> {
        let at = || Location::Byte(position);
        let time = attribute(e, b"time", reader, position)?
            .ok_or_else(|| FeedError::MissingAttribute { attribute: "time", at: at() })?;
        let date = parse_date(&time, at)?;
        if !self.dates.insert(date) {
            return Err(FeedError::Duplicate { at: Location::Day(date) });
        }
        self.day = Some(OpenDay { date, quotes: Vec::new() });
        Ok(())
    }

    fn add_quote(&mut self, e: &BytesStart<'_>, reader: &NsReader<&[u8]>, position: u64) -> Result<(), FeedError> {
        let Some(day) = self.day.as_mut() else {
            // A quote is only opened inside a day frame, which always has its open day.
            return Err(FeedError::Unexpected { element: "Cube".to_owned(), position });
        };
        let date = day.date;
        let currency = attribute(e, b"currency", reader, position)?
            .ok_or(FeedError::MissingAttribute { attribute: "currency", at: Location::Day(date) })?;
        check_code(&currency, || Location::Day(date))?;
        let at = || Location::Quote(date, currency.clone());
        let rate = attribute(e, b"rate", reader, position)?
            .ok_or_else(|| FeedError::MissingAttribute { attribute: "rate", at: at() })?;
        if currency == Currency::EUR.code() {
            return Err(FeedError::BaseListed { currency: Currency::EUR, at: at() });
        }
        if day.quotes.iter().any(|(code, _)| *code == currency) {
            return Err(FeedError::Duplicate { at: at() });
        }
        let rate = parse_rate(&rate, limits::FX_QUOTE, at)?;
        day.quotes.push((currency, rate));
        Ok(())
    }
}

/// The unescaped value of an unprefixed attribute (which, by the namespaces rules, is in no
/// namespace: the ECB's `time`, `currency` and `rate`).
fn attribute(
    e: &BytesStart<'_>,
    name: &[u8],
    reader: &NsReader<&[u8]>,
    position: u64,
) -> Result<Option<String>, FeedError> {
    let xml = |source: quick_xml::Error| FeedError::Xml { position, source };
    let mut found = None;
    // Reads every attribute, so that a malformed or repeated one is an error.
    for attr in e.attributes() {
        let attr = attr.map_err(|e| xml(e.into()))?;
        if attr.key.as_ref() == name {
            found = Some(attr.decode_and_unescape_value(reader.decoder()).map_err(xml)?.into_owned());
        }
    }
    Ok(found)
}
