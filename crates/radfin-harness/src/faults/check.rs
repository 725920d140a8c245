//! The fault suite's checker, without I/O: every acknowledged report classified as booked once,
//! missing, duplicated or misstated in the live ledger, and every client-month's live total as
//! equal to the engine's or not.
//!
//! How the live ledger stores a report (migration `2026-12-01-000008_live_view`): per live run
//! (one per period), per report and side, the first STUDY entry is a `BOOKING` and every later one
//! an `ADJUSTMENT` of it (a tier change, a revision, a cancellation, a move to another period).
//! Their sum is the report's current study line (revenue, contract currency) and COGS (INR). So a
//! report booked twice shows as a second `BOOKING` of one side in one period, or as a side summing
//! to more than the engine's price of the report; a lost report as nothing at all (no entry, and
//! no ledger fact for its acknowledged revision).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use rust_decimal::Decimal;

/// How many offenders a [`Verdict`] names.
pub const FIRST_OFFENDERS: usize = 5;

/// A report revision ingest acknowledged (`ACCEPTED` or `DUPLICATE`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ack {
    pub report_id: String,
    pub revision: u32,
}

/// What the engine prices the stored current revision of a report at (`PricedReport`): zero on
/// both sides for a cancelled one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub revision: u32,
    pub billable: bool,
    /// INR.
    pub cogs: Decimal,
    /// The study line, in the client's contract currency.
    pub study_line: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Cogs,
    Revenue,
}

/// A STUDY entry of a live run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudyEntry {
    pub period: String,
    pub report_id: String,
    pub revision: u32,
    pub side: Side,
    /// `BOOKING` (else `ADJUSTMENT`).
    pub booking: bool,
    /// Signed; COGS in INR, revenue in the contract currency.
    pub amount: Decimal,
}

/// What became of an acknowledged report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Its entries sum to the engine's price of its current revision, with one booking per side.
    Once,
    /// The ledger holds nothing for it: no entry (or only entries netting to zero while it is
    /// billable) and, for a cancelled report, no ledger fact for its acknowledged revision.
    Missing,
    /// Booked more than once: a second `BOOKING` of a side in a period, or a side summing to more
    /// than the engine's price.
    Duplicated,
    /// Booked once, at another amount than the engine's (less than its price, but not nothing).
    Misstated,
}

/// One acknowledged report's classification and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub report_id: String,
    pub class: Class,
    pub why: String,
}

/// Classifies every report of `acks` (by its highest acknowledged revision). `expected` is the
/// engine's price of each report's stored current revision (a report the engine did not price,
/// e.g. held for reference data, is absent); `entries` the live runs' STUDY entries of these
/// reports; `facts` the report revisions the ledger recorded a fact for.
pub fn classify(
    acks: &[Ack],
    expected: &BTreeMap<String, Expected>,
    entries: &[StudyEntry],
    facts: &BTreeSet<(String, u32)>,
) -> Vec<Classified> {
    let mut current: BTreeMap<&str, u32> = BTreeMap::new();
    for a in acks {
        let r = current.entry(a.report_id.as_str()).or_insert(a.revision);
        *r = (*r).max(a.revision);
    }
    let mut of_report: BTreeMap<&str, Vec<&StudyEntry>> = BTreeMap::new();
    for e in entries {
        of_report.entry(e.report_id.as_str()).or_default().push(e);
    }
    current
        .into_iter()
        .map(|(report_id, acked)| {
            let entries = of_report.get(report_id).map(Vec::as_slice).unwrap_or_default();
            let (class, why) = classify_one(acked, expected.get(report_id), entries, |revision| {
                facts.contains(&(report_id.to_owned(), revision))
            });
            Classified { report_id: report_id.to_owned(), class, why }
        })
        .collect()
}

fn classify_one(
    acked: u32,
    expected: Option<&Expected>,
    entries: &[&StudyEntry],
    has_fact: impl Fn(u32) -> bool,
) -> (Class, String) {
    let mut bookings: BTreeMap<(&str, Side), usize> = BTreeMap::new();
    let (mut cogs, mut revenue) = (Decimal::ZERO, Decimal::ZERO);
    for e in entries {
        if e.booking {
            *bookings.entry((e.period.as_str(), e.side)).or_default() += 1;
        }
        match e.side {
            Side::Cogs => cogs += e.amount,
            Side::Revenue => revenue += e.amount,
        }
    }
    if let Some(((period, side), n)) = bookings.iter().find(|(_, n)| **n > 1) {
        return (Class::Duplicated, format!("{n} BOOKING entries of {side:?} in {period}"));
    }
    let billable = expected.is_some_and(|e| e.billable);
    let (want_cogs, want_revenue) = match expected {
        Some(e) if e.billable => (e.cogs, e.study_line),
        _ => (Decimal::ZERO, Decimal::ZERO),
    };
    let booked = format!("booked COGS {cogs}, revenue {revenue}; engine COGS {want_cogs}, revenue {want_revenue}");
    if cogs > want_cogs || revenue > want_revenue {
        return (Class::Duplicated, booked);
    }
    // The revision the ledger must have seen: the acknowledged one, or a later stored one.
    let revision = expected.map_or(acked, |e| e.revision.max(acked));
    let seen = (acked..=revision).any(&has_fact);
    let nothing = cogs.is_zero() && revenue.is_zero();
    if nothing && (!seen || billable && !(want_cogs.is_zero() && want_revenue.is_zero())) {
        let fact = if seen { "a fact but no booking" } else { "no fact" };
        return (Class::Missing, format!("revision {revision}: {fact}; {booked}"));
    }
    if cogs == want_cogs && revenue == want_revenue && seen {
        return (Class::Once, String::new());
    }
    (Class::Misstated, format!("revision {revision}: {booked}"))
}

/// One client-month: whether its live totals equal the engine's, and the difference if not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMonth {
    pub period: String,
    pub client_id: String,
    /// `None` when equal.
    pub difference: Option<String>,
}

/// The checker's summary: counts, and the first few offenders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Acknowledged report revisions (distinct), and the distinct reports among them.
    pub acknowledged: usize,
    pub reports: usize,
    pub once: usize,
    pub missing: usize,
    pub duplicated: usize,
    pub misstated: usize,
    pub client_months: usize,
    pub client_months_equal: usize,
    /// The first [`FIRST_OFFENDERS`] reports not booked once and client-months not equal.
    pub offenders: Vec<String>,
}

impl Verdict {
    pub fn new(acks: &[Ack], classified: &[Classified], months: &[ClientMonth]) -> Self {
        let distinct: BTreeSet<&Ack> = acks.iter().collect();
        let count = |c: Class| classified.iter().filter(|r| r.class == c).count();
        let mut offenders: Vec<String> = classified
            .iter()
            .filter(|r| r.class != Class::Once)
            .take(FIRST_OFFENDERS)
            .map(|r| format!("{} {:?}: {}", r.report_id, r.class, r.why))
            .collect();
        offenders.extend(
            months.iter().filter_map(|m| m.difference.as_ref().map(|d| format!("{} {}: {d}", m.period, m.client_id))),
        );
        offenders.truncate(2 * FIRST_OFFENDERS);
        Self {
            acknowledged: distinct.len(),
            reports: classified.len(),
            once: count(Class::Once),
            missing: count(Class::Missing),
            duplicated: count(Class::Duplicated),
            misstated: count(Class::Misstated),
            client_months: months.len(),
            client_months_equal: months.iter().filter(|m| m.difference.is_none()).count(),
            offenders,
        }
    }

    /// Nothing lost, nothing doubled, nothing misstated, every client-month equal to the engine.
    pub fn passed(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.misstated == 0
            && self.once == self.reports
            && self.client_months_equal == self.client_months
    }
}

/// A fault case's outcome: what was done and what the checker found.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub case: String,
    pub done: String,
    pub verdict: Verdict,
    /// A failed expectation of the case itself (beyond the checker's), if any.
    pub failure: Option<String>,
    pub elapsed: Duration,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.verdict.passed()
    }

    /// Its row of [`table`].
    pub fn row(&self) -> String {
        let v = &self.verdict;
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        format!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {:.1} |",
            cell(&self.case),
            cell(&self.done),
            v.acknowledged,
            v.missing,
            v.duplicated + v.misstated,
            v.client_months_equal,
            v.client_months,
            if self.passed() { "pass" } else { "FAIL" },
            self.elapsed.as_secs_f64()
        )
    }

    /// Why it failed: the case's own failure and the checker's offenders.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.failure {
            let _ = writeln!(out, "{}: {f}", self.case);
        }
        let v = &self.verdict;
        if !v.passed() {
            let _ = writeln!(
                out,
                "{}: {} reports: {} once, {} missing, {} duplicated, {} misstated; client-months equal {} / {}",
                self.case,
                v.reports,
                v.once,
                v.missing,
                v.duplicated,
                v.misstated,
                v.client_months_equal,
                v.client_months
            );
        }
        for o in &v.offenders {
            let _ = writeln!(out, "  {o}");
        }
        out
    }
}

/// The results as a markdown table.
pub fn table(results: &[CaseResult]) -> String {
    let mut t = String::from(
        "| case | what was done | report revisions acknowledged | missing | duplicated (or misstated) | client-months equal / total | result | seconds |\n\
         | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |\n",
    );
    for r in results {
        t.push_str(&r.row());
        t.push('\n');
    }
    t
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn ack(id: &str, revision: u32) -> Ack {
        Ack { report_id: id.into(), revision }
    }

    fn entry(id: &str, revision: u32, side: Side, booking: bool, amount: Decimal) -> StudyEntry {
        StudyEntry { period: "2026-10".into(), report_id: id.into(), revision, side, booking, amount }
    }

    fn priced(revision: u32, cogs: Decimal, study_line: Decimal) -> Expected {
        Expected { revision, billable: true, cogs, study_line }
    }

    fn class_of(
        acks: &[Ack],
        expected: &[(&str, Expected)],
        entries: &[StudyEntry],
        facts: &[(&str, u32)],
    ) -> Vec<Class> {
        let expected = expected.iter().map(|(id, e)| ((*id).to_owned(), e.clone())).collect();
        let facts = facts.iter().map(|(id, r)| ((*id).to_owned(), *r)).collect();
        classify(acks, &expected, entries, &facts).into_iter().map(|c| c.class).collect()
    }

    #[test]
    fn a_report_booked_once_at_the_engines_price_is_present_once() {
        let entries = [
            entry("A", 1, Side::Cogs, true, dec!(100)),
            entry("A", 1, Side::Revenue, true, dec!(500)),
            // A tier change later: the booking adjusted down, still one booking.
            entry("A", 1, Side::Revenue, false, dec!(-100)),
        ];
        let got =
            class_of(&[ack("A", 1), ack("A", 1)], &[("A", priced(1, dec!(100), dec!(400)))], &entries, &[("A", 1)]);
        assert_eq!(got, [Class::Once]);
    }

    #[test]
    fn a_second_booking_or_an_excess_is_a_duplicate() {
        let twice = [
            entry("A", 1, Side::Cogs, true, dec!(100)),
            entry("A", 1, Side::Cogs, true, dec!(0)),
            entry("A", 1, Side::Revenue, true, dec!(400)),
        ];
        let e = [("A", priced(1, dec!(100), dec!(400)))];
        assert_eq!(class_of(&[ack("A", 1)], &e, &twice, &[("A", 1)]), [Class::Duplicated]);
        let excess = [entry("A", 1, Side::Cogs, true, dec!(100)), entry("A", 1, Side::Revenue, true, dec!(800))];
        assert_eq!(class_of(&[ack("A", 1)], &e, &excess, &[("A", 1)]), [Class::Duplicated]);
    }

    #[test]
    fn nothing_booked_is_missing_and_too_little_is_misstated() {
        let e = [("A", priced(1, dec!(100), dec!(400))), ("B", priced(1, dec!(100), dec!(400)))];
        let entries = [entry("B", 1, Side::Cogs, true, dec!(100)), entry("B", 1, Side::Revenue, true, dec!(300))];
        assert_eq!(
            class_of(&[ack("A", 1), ack("B", 1)], &e, &entries, &[("B", 1)]),
            [Class::Missing, Class::Misstated]
        );
        // Held by the ledger (a fact, no booking) while the engine bills it: missing too.
        assert_eq!(class_of(&[ack("A", 1)], &e, &[], &[("A", 1)]), [Class::Missing]);
        // Not priced by the engine either (say, an unknown party): missing until the ledger saw it.
        assert_eq!(class_of(&[ack("C", 1)], &[], &[], &[]), [Class::Missing]);
        assert_eq!(class_of(&[ack("C", 1)], &[], &[], &[("C", 1)]), [Class::Once]);
    }

    #[test]
    fn a_cancelled_report_is_present_once_when_the_ledger_saw_it_and_nets_to_zero() {
        let cancelled = Expected { revision: 2, billable: false, cogs: dec!(100), study_line: dec!(400) };
        let entries = [
            entry("A", 1, Side::Cogs, true, dec!(100)),
            entry("A", 2, Side::Cogs, false, dec!(-100)),
            entry("A", 1, Side::Revenue, true, dec!(400)),
            entry("A", 2, Side::Revenue, false, dec!(-400)),
        ];
        let acks = [ack("A", 1), ack("A", 2)];
        assert_eq!(class_of(&acks, &[("A", cancelled.clone())], &entries, &[("A", 1), ("A", 2)]), [Class::Once]);
        assert_eq!(class_of(&acks, &[("A", cancelled.clone())], &entries[..1], &[("A", 1)]), [Class::Duplicated]);
        assert_eq!(class_of(&acks, &[("A", cancelled)], &[], &[]), [Class::Missing]);
    }

    #[test]
    fn the_verdict_counts_and_names_the_first_offenders() {
        let acks: Vec<Ack> = (0..10).map(|i| ack(&format!("R{i}"), 1)).collect();
        let classified: Vec<Classified> = (0..10)
            .map(|i| Classified {
                report_id: format!("R{i}"),
                class: if i < 7 { Class::Missing } else { Class::Once },
                why: "no fact".into(),
            })
            .collect();
        let months = [
            ClientMonth { period: "2026-10".into(), client_id: "H1".into(), difference: None },
            ClientMonth { period: "2026-10".into(), client_id: "H2".into(), difference: Some("off by 1".into()) },
        ];
        let v = Verdict::new(&acks, &classified, &months);
        assert_eq!((v.acknowledged, v.reports, v.once, v.missing), (10, 10, 3, 7));
        assert_eq!((v.client_months, v.client_months_equal), (2, 1));
        assert_eq!(v.offenders.len(), FIRST_OFFENDERS + 1);
        assert!(v.offenders[0].starts_with("R0 Missing") && v.offenders[5].contains("H2"), "{:?}", v.offenders);
        assert!(!v.passed());
        let row = CaseResult {
            case: "1".into(),
            done: "x".into(),
            verdict: v,
            failure: None,
            elapsed: Duration::from_millis(1500),
        }
        .row();
        assert_eq!(row, "| 1 | x | 10 | 7 | 0 | 1 / 2 | FAIL | 1.5 |");
    }
}
