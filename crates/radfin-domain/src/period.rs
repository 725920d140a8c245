//! Periods (calendar months in the business time zone) and financial years (1 April – 31 March).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A billing period: one calendar month, `YYYY-MM`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    month: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a period: expected YYYY-MM with a month 01–12")]
pub struct PeriodParseError(pub String);

impl Period {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=12).contains(&month) && (1..=9999).contains(&year)).then_some(Self { year, month })
    }

    pub fn of_date(date: NaiveDate) -> Self {
        Self { year: date.year(), month: date.month() }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a period is a valid month")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("a month has a last day")
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self { year: self.year - 1, month: 12 }
        } else {
            Self { year: self.year, month: self.month - 1 }
        }
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        date.year() == self.year && date.month() == self.month
    }

    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        self.first_day().iter_days().take_while(move |d| self.contains(*d))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl fmt::Debug for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Period {
    type Err = PeriodParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodParseError(s.to_owned());
        let bytes = s.as_bytes();
        if bytes.len() != 7 || bytes[4] != b'-' || !s[..4].bytes().chain(s[5..].bytes()).all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let year = s[..4].parse().map_err(|_| err())?;
        let month = s[5..].parse().map_err(|_| err())?;
        Self::new(year, month).ok_or_else(err)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A financial year, 1 April to 31 March, labelled by its starting year: `2025-26`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FinancialYear {
    start_year: i32,
}

impl FinancialYear {
    pub fn of(date: NaiveDate) -> Self {
        let start_year = if date.month() >= 4 { date.year() } else { date.year() - 1 };
        Self { start_year }
    }

    pub fn start_year(self) -> i32 {
        self.start_year
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year, 4, 1).expect("1 April exists")
    }

    pub fn last_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year + 1, 3, 31).expect("31 March exists")
    }

    /// `25-26`, the form used inside document numbers.
    pub fn short_label(self) -> String {
        format!("{:02}-{:02}", self.start_year.rem_euclid(100), (self.start_year + 1).rem_euclid(100))
    }
}

impl fmt::Display for FinancialYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.start_year, (self.start_year + 1).rem_euclid(100))
    }
}

/// The business time zone: where periods, report dates and night windows are reckoned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BusinessCalendar {
    tz: Tz,
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        Self { tz: chrono_tz::Asia::Kolkata }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IANA time zone")]
pub struct UnknownTimeZone(pub String);

impl BusinessCalendar {
    pub fn new(tz: Tz) -> Self {
        Self { tz }
    }

    /// A calendar for an IANA zone name such as `Asia/Kolkata`.
    pub fn named(name: &str) -> Result<Self, UnknownTimeZone> {
        name.parse::<Tz>().map(Self::new).map_err(|_| UnknownTimeZone(name.to_owned()))
    }

    pub fn time_zone(self) -> Tz {
        self.tz
    }

    /// The wall-clock date and time of an instant in the business time zone.
    pub fn local(self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.tz).naive_local()
    }

    pub fn local_date(self, instant: DateTime<Utc>) -> NaiveDate {
        self.local(instant).date()
    }

    pub fn period_of(self, instant: DateTime<Utc>) -> Period {
        Period::of_date(self.local_date(instant))
    }

    /// The first instant of a local date (midnight, or the first valid time after a gap).
    pub fn start_of_day(self, date: NaiveDate) -> DateTime<Utc> {
        let mut time = date.and_time(NaiveTime::MIN);
        loop {
            match self.tz.from_local_datetime(&time).earliest() {
                Some(t) => return t.with_timezone(&Utc),
                None => time += chrono::Duration::minutes(15),
            }
        }
    }

    /// The instants of a period: `[start, end)`.
    pub fn period_bounds(self, period: Period) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.start_of_day(period.first_day()), self.start_of_day(period.next().first_day()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_report_belongs_to_the_local_month() {
        let cal = BusinessCalendar::default();
        assert_eq!(cal.period_of(utc("2026-01-31T20:00:00Z")).to_string(), "2026-02");
        assert_eq!(cal.period_of(utc("2026-01-31T18:29:59Z")).to_string(), "2026-01");
        assert_eq!(cal.period_of(utc("2026-01-31T18:30:00Z")).to_string(), "2026-02");
        let utc_cal = BusinessCalendar::named("UTC").unwrap();
        assert_eq!(utc_cal.period_of(utc("2026-01-31T20:00:00Z")).to_string(), "2026-01");
        assert!(BusinessCalendar::named("Mars/Olympus").is_err());
    }

    #[test]
    fn period_bounds_are_local_midnights() {
        let cal = BusinessCalendar::default();
        let (start, end) = cal.period_bounds("2026-02".parse().unwrap());
        assert_eq!(start, utc("2026-01-31T18:30:00Z"));
        assert_eq!(end, utc("2026-02-28T18:30:00Z"));
    }

    #[test]
    fn periods_parse_strictly() {
        assert_eq!("2026-12".parse::<Period>().unwrap().next().to_string(), "2027-01");
        assert_eq!("2026-01".parse::<Period>().unwrap().previous().to_string(), "2025-12");
        for bad in ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", "2026-01-01", "abcd-ef"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        let p: Period = "2024-02".parse().unwrap();
        assert_eq!(p.last_day(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(p.days().count(), 29);
    }

    #[test]
    fn financial_years_run_april_to_march() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(FinancialYear::of(d(2026, 3, 31)).to_string(), "2025-26");
        assert_eq!(FinancialYear::of(d(2026, 4, 1)).to_string(), "2026-27");
        assert_eq!(FinancialYear::of(d(2026, 1, 15)).short_label(), "25-26");
        assert_eq!(FinancialYear::of(d(2099, 6, 1)).short_label(), "99-00");
    }
}
