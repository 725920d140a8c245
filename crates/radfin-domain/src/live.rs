//! The live view of an open client-month (spec §6), kept exact as reports arrive.
//!
//! A [`LiveBook`] holds what a client-month's ledger must say: each current report's own study
//! line and COGS, and the client-level line (retainer fee or minimum-commitment shortfall) as a
//! line of its own. It is told what changed — a report priced ([`StudyFact`]), a report gone
//! (cancelled, held, superseded, moved away) or new contract [`Terms`] — and answers with the
//! signed [`Posting`]s that bring what is booked to what the engine would price for the reports
//! it holds. Work per change is bounded by the number of tier boundaries (times a logarithm),
//! never by the size of the month: inserting a study shifts the position of later studies by
//! one, which changes the price of at most the studies sitting on a boundary; only a volume
//! tier crossing reprices a whole scope, as it must.
//!
//! The book's targets equal [`crate::PricingRun::price`] for the same reports: each report's
//! [`crate::PricedReport::study_line`] and the invoice's client-level line (property-tested).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use indexset::BTreeSet;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::fx::AppliedRate;
use crate::ids::{ProviderId, ReportId};
use crate::money::Currency;
use crate::party::Grade;
use crate::report::{Modality, ReportStatus};
use crate::rules::{Contract, TierMode, TierScope};

/// A client-month's contract: the client rules in force on the period's last day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    pub currency: Currency,
    pub contract: Contract,
    pub tier_mode: TierMode,
    pub tier_scope: TierScope,
    pub rule_version: u32,
    /// A client profile is in force on the period's last day: a retainer or minimum is billed
    /// even in a month without billable reports.
    pub standing: bool,
    /// The rate for the period's last day, converting a client-level line in a month without
    /// billable reports (otherwise the latest billable report's rate is used).
    pub fallback_rate: Option<AppliedRate>,
}

impl Terms {
    /// What decides every study's position and price (not the fallback rate).
    fn structure(&self) -> (Currency, &Contract, TierMode, TierScope) {
        (self.currency, &self.contract, self.tier_mode, self.tier_scope)
    }
}

/// A report's revenue at each tier of its own rule version: what its study line is, wherever
/// in the month it falls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Card {
    pub rule_version: u32,
    /// `up_to` of each tier, ascending; the last is unbounded.
    pub tiers: Arc<[Option<u32>]>,
    /// The rounded study line at each tier, in the contract currency.
    pub amounts: Arc<[Decimal]>,
}

impl Card {
    fn tier_for(&self, position: u32) -> usize {
        self.tiers.iter().position(|up_to| up_to.is_none_or(|u| position <= u)).unwrap_or(self.tiers.len() - 1)
    }

    fn bounds(&self) -> impl Iterator<Item = u32> + '_ {
        self.tiers.iter().filter_map(|t| *t)
    }
}

/// A priced current revision of a report of the client-month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StudyFact {
    pub report_id: ReportId,
    pub revision: u32,
    pub provider_id: ProviderId,
    pub modality: Modality,
    pub grade: Grade,
    pub status: ReportStatus,
    pub finalized_at: DateTime<Utc>,
    pub local_date: NaiveDate,
    /// INR; zero for a cancelled report.
    pub cogs: Decimal,
    pub cogs_rule_version: Option<u32>,
    /// Present for a billable (FINAL) report.
    pub card: Option<Card>,
    /// The rate of the report's date; None for an INR contract.
    pub fx: Option<AppliedRate>,
}

/// What pricing tells the ledger about a client-month (the `LiveFact` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveFact {
    pub period: crate::period::Period,
    pub client_id: crate::ids::ClientId,
    pub run_id: u64,
    /// When the reference data used was read: of two facts for one report revision (or one
    /// contract), the later wins.
    pub priced_at: DateTime<Utc>,
    /// The client-month's contract; None when the client has no rules.
    pub terms: Option<Terms>,
    pub kind: FactKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactKind {
    /// The report revision is priced.
    Priced(StudyFact),
    /// The report revision cannot be priced yet; it counts nothing.
    Held { report_id: ReportId, revision: u32, reason: String },
    /// Only the contract (a standing charge without reports).
    Contract,
}

impl LiveFact {
    /// The report the fact is about (None for a contract fact).
    pub fn report(&self) -> Option<(&ReportId, u32)> {
        match &self.kind {
            FactKind::Priced(f) => Some((&f.report_id, f.revision)),
            FactKind::Held { report_id, revision, .. } => Some((report_id, *revision)),
            FactKind::Contract => None,
        }
    }

    pub fn outcome(&self) -> &'static str {
        match self.kind {
            FactKind::Priced(_) => "PRICED",
            FactKind::Held { .. } => "HELD",
            FactKind::Contract => "CONTRACT",
        }
    }
}

/// Why an amount was posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A report's first booking, or a client-level line's.
    New,
    /// Another report moved this one across a tier boundary (graduated), into or out of the
    /// retainer's included studies.
    Tier,
    /// The scope's count crossed a volume tier.
    VolumeTier,
    /// A higher revision replaced the booked one.
    Revision,
    Cancelled,
    /// A higher revision moved the report to another period or client.
    Moved,
    /// The current revision cannot be priced (held): it counts nothing until released.
    Held,
    /// Same revision priced again with changed rules, parties or rates.
    Rules,
    /// The client-level line's rate changed (the month's latest report date moved).
    Fx,
    /// The minimum-commitment shortfall changed with the study lines.
    Shortfall,
    /// The contract changed (rules in force at the end of the period).
    Contract,
    /// What was booked differed from what the facts say (found on rebuilding the book).
    Reconcile,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "NEW",
            Reason::Tier => "TIER",
            Reason::VolumeTier => "VOLUME_TIER",
            Reason::Revision => "REVISION",
            Reason::Cancelled => "CANCELLED",
            Reason::Moved => "MOVED",
            Reason::Held => "HELD",
            Reason::Rules => "RULES",
            Reason::Fx => "FX",
            Reason::Shortfall => "SHORTFALL",
            Reason::Contract => "CONTRACT",
            Reason::Reconcile => "RECONCILE",
        }
    }
}

/// A client-level line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientLine {
    RetainerFee,
    MinimumShortfall,
}

impl ClientLine {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientLine::RetainerFee => "RETAINER_FEE",
            ClientLine::MinimumShortfall => "MINIMUM_SHORTFALL",
        }
    }
}

/// The side of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Cogs,
    Revenue,
}

/// What a posting books: one side of a report, or a client-level line (revenue only).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum LineRef {
    Study(ReportId, Side),
    Client(ClientLine),
}

impl LineRef {
    pub fn side(&self) -> Side {
        match self {
            LineRef::Study(_, side) => *side,
            LineRef::Client(_) => Side::Revenue,
        }
    }
}

/// The report a study line belongs to, as booked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ReportDims {
    pub revision: u32,
    pub provider_id: ProviderId,
    pub modality: Modality,
    pub grade: Grade,
    pub status: ReportStatus,
}

/// Everything an amount is booked with besides the amount: a booked part is reversed and booked
/// anew, never adjusted in place, when any of it changes (so sums by modality, grade, provider,
/// revision or rate stay right).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dims {
    /// None for a client-level line.
    pub report: Option<ReportDims>,
    pub currency: Currency,
    pub rule_version: Option<u32>,
    /// None when `currency` is INR.
    pub fx: Option<AppliedRate>,
}

/// An amount booked on a line with its dimensions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Part {
    pub dims: Dims,
    pub amount: Decimal,
    pub amount_inr: Decimal,
}

/// A signed amount to append to the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Posting {
    pub line: LineRef,
    pub part: Part,
    pub reason: Reason,
}

/// Sums of what a book holds (booked, after its postings are appended).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BookTotals {
    /// Contract currency: study lines plus the client-level line.
    pub revenue: Decimal,
    pub revenue_inr: Decimal,
    pub cogs_inr: Decimal,
    pub client_level: Decimal,
    /// Reports whose current revision is billable (FINAL and priced).
    pub billable: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BookError {
    #[error("amount overflow in the book")]
    Overflow,
    #[error("{0} carries no FX rate")]
    MissingRate(String),
}

/// Billing order: (`finalized_at`, `report_id`).
type Key = (i64, ReportId);

fn key_of(f: &StudyFact) -> Key {
    (f.finalized_at.timestamp_nanos_opt().unwrap_or(i64::MAX), f.report_id.clone())
}

/// One client-month's live book.
#[derive(Clone, Debug, Default)]
pub struct LiveBook {
    terms: Option<Terms>,
    facts: FxHashMap<ReportId, StudyFact>,
    /// Billable studies in billing order.
    order: BTreeSet<Key>,
    /// Per scope (one for ALL_MODALITIES, one per modality otherwise), the billable studies
    /// beyond the retainer's included ones, in billing order.
    excess: Vec<BTreeSet<Key>>,
    /// How many billable cards use each finite tier bound.
    bounds: BTreeMap<u32, usize>,
    /// What the ledger holds per line.
    booked: FxHashMap<LineRef, Vec<Part>>,
    /// Lines to bring to their target at the next settle, with the reason when known.
    dirty: FxHashMap<LineRef, Reason>,
    /// Σ of the study lines' targets (contract currency), kept as studies change.
    study_sum: Decimal,
    /// Target study line of each billable report (contract currency).
    study_line: FxHashMap<ReportId, Decimal>,
}

impl LiveBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn terms(&self) -> Option<&Terms> {
        self.terms.as_ref()
    }

    /// Sets the contract. A change of structure reprices the whole month (rare: a rule change).
    pub fn set_terms(&mut self, terms: Terms) {
        if self.terms.as_ref() == Some(&terms) {
            return;
        }
        let restructure = self.terms.as_ref().map(Terms::structure) != Some(terms.structure());
        self.terms = Some(terms);
        if restructure {
            self.reindex(Reason::Contract);
        }
        self.dirty.entry(LineRef::Client(ClientLine::RetainerFee)).or_insert(Reason::Contract);
        self.dirty.entry(LineRef::Client(ClientLine::MinimumShortfall)).or_insert(Reason::Contract);
    }

    /// Makes `fact` the report's current revision in this month (a new report, a higher
    /// revision, or the same revision priced again).
    pub fn upsert(&mut self, fact: StudyFact) {
        let reason = match self.facts.get(&fact.report_id) {
            None => Reason::New,
            Some(old) if *old == fact => return,
            Some(old) if old.revision != fact.revision => {
                if fact.status == ReportStatus::Cancelled {
                    Reason::Cancelled
                } else {
                    Reason::Revision
                }
            }
            Some(_) => Reason::Rules,
        };
        self.remove_fact(&fact.report_id);
        self.mark_report(&fact.report_id, reason);
        let billable = fact.card.is_some() && fact.status == ReportStatus::Final;
        let id = fact.report_id.clone();
        self.facts.insert(id.clone(), fact);
        if billable {
            self.insert_billable(&id);
        }
    }

    /// The report no longer counts in this month (cancelled without a price, held, superseded
    /// by a revision elsewhere).
    pub fn remove(&mut self, report_id: &ReportId, reason: Reason) {
        if self.facts.contains_key(report_id) {
            self.remove_fact(report_id);
        }
        // Even without a fact, something may be booked (a rebuilt book); settle brings it to 0.
        self.mark_report(report_id, reason);
    }

    /// Records what the ledger already holds for a line (rebuilding a book from the ledger).
    pub fn set_booked(&mut self, line: LineRef, parts: Vec<Part>) {
        self.dirty.entry(line.clone()).or_insert(Reason::Reconcile);
        self.booked.insert(line, parts);
    }

    /// Brings every changed line to its target; the postings to append, in a stable order.
    /// Once they are durable the book holds them as booked.
    pub fn settle(&mut self) -> Result<Vec<Posting>, BookError> {
        let mut dirty: Vec<(LineRef, Reason)> = self.dirty.drain().collect();
        dirty.sort_by(|a, b| a.0.cmp(&b.0));
        let mut postings = Vec::new();
        for (line, reason) in dirty {
            let target = self.target(&line)?;
            let booked = self.booked.remove(&line).unwrap_or_default();
            let mut kept: Option<Part> = None;
            for part in booked {
                match &target {
                    Some(t) if t.dims == part.dims && kept.is_none() => kept = Some(part),
                    _ if part.amount.is_zero() && part.amount_inr.is_zero() => {}
                    _ => postings.push(Posting {
                        line: line.clone(),
                        part: Part { dims: part.dims, amount: -part.amount, amount_inr: -part.amount_inr },
                        reason,
                    }),
                }
            }
            if let Some(t) = &target {
                let (amount, inr) = kept.as_ref().map_or((Decimal::ZERO, Decimal::ZERO), |k| (k.amount, k.amount_inr));
                let delta = Part {
                    dims: t.dims.clone(),
                    amount: t.amount.checked_sub(amount).ok_or(BookError::Overflow)?,
                    amount_inr: t.amount_inr.checked_sub(inr).ok_or(BookError::Overflow)?,
                };
                if !delta.amount.is_zero() || !delta.amount_inr.is_zero() {
                    postings.push(Posting { line: line.clone(), part: delta, reason });
                }
                if !t.amount.is_zero() || !t.amount_inr.is_zero() {
                    self.booked.insert(line, vec![t.clone()]);
                }
            }
        }
        Ok(postings)
    }

    /// What is booked on a line: its live parts (at most one once settled).
    pub fn booked(&self, line: &LineRef) -> &[Part] {
        self.booked.get(line).map_or(&[], Vec::as_slice)
    }

    /// What is booked, summed.
    pub fn totals(&self) -> BookTotals {
        let mut t = BookTotals { billable: self.order.len(), ..BookTotals::default() };
        for (line, parts) in &self.booked {
            for p in parts {
                match line.side() {
                    Side::Cogs => t.cogs_inr += p.amount_inr,
                    Side::Revenue => {
                        t.revenue += p.amount;
                        t.revenue_inr += p.amount_inr;
                        if matches!(line, LineRef::Client(_)) {
                            t.client_level += p.amount;
                        }
                    }
                }
            }
        }
        t
    }

    fn mark_report(&mut self, report_id: &ReportId, reason: Reason) {
        for side in [Side::Cogs, Side::Revenue] {
            self.dirty.insert(LineRef::Study(report_id.clone(), side), reason);
        }
        self.mark_client_level();
    }

    fn mark_client_level(&mut self) {
        let reason = match self.terms.as_ref().map(|t| &t.contract) {
            Some(Contract::MinimumCommitment { .. }) => Reason::Shortfall,
            _ => Reason::Fx,
        };
        for line in [ClientLine::RetainerFee, ClientLine::MinimumShortfall] {
            self.dirty.entry(LineRef::Client(line)).or_insert(reason);
        }
    }

    fn mark_price(&mut self, key: &Key) {
        let reason = if self.terms.as_ref().is_some_and(|t| t.tier_mode == TierMode::Volume) {
            Reason::VolumeTier
        } else {
            Reason::Tier
        };
        self.dirty.entry(LineRef::Study(key.1.clone(), Side::Revenue)).or_insert(reason);
    }

    fn included(&self) -> usize {
        match self.terms.as_ref().map(|t| &t.contract) {
            Some(Contract::Retainer { included_studies, .. }) => *included_studies as usize,
            _ => 0,
        }
    }

    fn scope_of(&self, modality: Modality) -> usize {
        match self.terms.as_ref().map(|t| t.tier_scope) {
            Some(TierScope::PerModality) => modality.index(),
            _ => 0,
        }
    }

    /// The scope of a billable report the book holds.
    fn scope_of_key(&self, key: &Key) -> usize {
        self.facts.get(&key.1).map_or(0, |f| self.scope_of(f.modality))
    }

    /// Rebuilds the order structures from the facts and marks every line (terms changed).
    fn reindex(&mut self, reason: Reason) {
        self.order = BTreeSet::new();
        self.excess = Vec::new();
        self.bounds.clear();
        self.study_sum = Decimal::ZERO;
        self.study_line.clear();
        let billable: Vec<ReportId> = self
            .facts
            .values()
            .filter(|f| f.card.is_some() && f.status == ReportStatus::Final)
            .map(|f| f.report_id.clone())
            .collect();
        for id in &billable {
            self.insert_billable(id);
        }
        let ids: Vec<ReportId> = self.facts.keys().cloned().collect();
        for id in ids {
            for side in [Side::Cogs, Side::Revenue] {
                self.dirty.insert(LineRef::Study(id.clone(), side), reason);
            }
        }
        let booked: Vec<LineRef> = self.booked.keys().cloned().collect();
        for line in booked {
            self.dirty.entry(line).or_insert(reason);
        }
    }

    fn excess_mut(&mut self, scope: usize) -> &mut BTreeSet<Key> {
        if self.excess.len() <= scope {
            self.excess.resize_with(scope + 1, BTreeSet::new);
        }
        &mut self.excess[scope]
    }

    /// Enters a billable report (its fact already in `facts`) into the order structures.
    fn insert_billable(&mut self, id: &ReportId) {
        let Some(fact) = self.facts.get(id) else { return };
        let key = key_of(fact);
        if let Some(card) = &fact.card {
            for b in card.bounds() {
                *self.bounds.entry(b).or_default() += 1;
            }
        }
        self.order.insert(key.clone());
        // The study's target is computed at settle; it is dirty already (mark_report).
        let included = self.included();
        let rank = self.order.rank(&key);
        if rank < included {
            // It is included: the study it pushed past the included ones (if any) is now excess.
            if let Some(pushed) = self.order.get_index(included).cloned() {
                self.mark_price(&pushed);
                self.excess_insert(pushed);
            }
        } else {
            self.excess_insert(key);
        }
        self.mark_client_level();
    }

    /// Takes a report out of the book (and out of the order structures if billable).
    fn remove_fact(&mut self, report_id: &ReportId) {
        let Some(fact) = self.facts.get(report_id) else { return };
        if let Some(line) = self.study_line.remove(report_id) {
            self.study_sum -= line;
        }
        if fact.card.is_none() || fact.status != ReportStatus::Final {
            self.facts.remove(report_id);
            return;
        }
        let key = key_of(fact);
        let bounds: Vec<u32> = fact.card.iter().flat_map(|c| c.bounds()).collect();
        for b in bounds {
            if let Some(n) = self.bounds.get_mut(&b) {
                *n -= 1;
                if *n == 0 {
                    self.bounds.remove(&b);
                }
            }
        }
        let included = self.included();
        let rank = self.order.rank(&key);
        if rank < included {
            // The first excess study (if any) becomes included.
            if let Some(pulled) = self.order.get_index(included).cloned() {
                self.mark_price(&pulled);
                self.excess_remove(&pulled);
            }
        } else {
            self.excess_remove(&key);
        }
        self.order.remove(&key);
        self.facts.remove(report_id);
        self.mark_client_level();
    }

    fn excess_insert(&mut self, key: Key) {
        let scope = self.scope_of_key(&key);
        let set = self.excess_mut(scope);
        let before = set.len();
        set.insert(key.clone());
        let position = set.rank(&key) + 1;
        self.mark_shifted(scope, position, before, before + 1);
    }

    fn excess_remove(&mut self, key: &Key) {
        let scope = self.scope_of_key(key);
        let set = self.excess_mut(scope);
        let before = set.len();
        let position = set.rank(key) + 1;
        set.remove(key);
        self.mark_shifted(scope, position, before, before - 1);
    }

    /// A study entered or left `scope`'s excess at `position` (1-based): marks the studies whose
    /// tier may have changed.
    fn mark_shifted(&mut self, scope: usize, position: usize, before: usize, after: usize) {
        let volume = self.terms.as_ref().is_some_and(|t| t.tier_mode == TierMode::Volume);
        let (lo, hi) = (before.min(after), before.max(after));
        let mut marks: Vec<Key> = Vec::new();
        let set = &self.excess[scope];
        if volume {
            // The count moved from `before` to `after`: a bound b with lo ≤ b < hi was crossed.
            if self.bounds.range(lo as u32..hi as u32).next().is_some() {
                marks.extend(set.iter().cloned());
            }
        } else {
            // Studies at a bound and just past it change tier when everything after
            // `position` shifts by one.
            for &b in self.bounds.keys() {
                let b = b as usize;
                if b + 1 < position {
                    continue;
                }
                for p in [b, b + 1] {
                    if p >= 1
                        && let Some(k) = set.get_index(p - 1)
                    {
                        marks.push(k.clone());
                    }
                }
            }
        }
        for k in &marks {
            self.mark_price(k);
        }
    }

    /// The line's target part (None: nothing should be booked).
    fn target(&mut self, line: &LineRef) -> Result<Option<Part>, BookError> {
        match line {
            LineRef::Study(id, side) => self.study_target(id, *side),
            LineRef::Client(kind) => self.client_target(*kind),
        }
    }

    fn study_target(&mut self, id: &ReportId, side: Side) -> Result<Option<Part>, BookError> {
        let Some(fact) = self.facts.get(id) else { return Ok(None) };
        let dims = |currency, rule_version, fx: Option<AppliedRate>| Dims {
            report: Some(ReportDims {
                revision: fact.revision,
                provider_id: fact.provider_id.clone(),
                modality: fact.modality,
                grade: fact.grade,
                status: fact.status,
            }),
            currency,
            rule_version,
            fx,
        };
        match side {
            Side::Cogs => {
                if fact.cogs.is_zero() {
                    return Ok(None);
                }
                let d = dims(Currency::INR, fact.cogs_rule_version, None);
                Ok(Some(Part { dims: d, amount: fact.cogs, amount_inr: fact.cogs }))
            }
            Side::Revenue => {
                let (Some(card), Some(terms)) = (&fact.card, &self.terms) else { return Ok(None) };
                if fact.status != ReportStatus::Final {
                    return Ok(None);
                }
                let amount = self.study_amount(fact, card);
                let currency = terms.currency;
                let d = dims(currency, Some(card.rule_version), fact.fx.clone());
                let part = convert(d, amount)?;
                let old = self.study_line.insert(id.clone(), amount).unwrap_or_default();
                self.study_sum =
                    self.study_sum.checked_sub(old).and_then(|s| s.checked_add(amount)).ok_or(BookError::Overflow)?;
                Ok((!amount.is_zero()).then_some(part))
            }
        }
    }

    /// The study line of a billable report at its current position.
    fn study_amount(&self, fact: &StudyFact, card: &Card) -> Decimal {
        let key = key_of(fact);
        if self.order.rank(&key) < self.included() {
            return Decimal::ZERO;
        }
        let Some(set) = self.excess.get(self.scope_of(fact.modality)) else { return Decimal::ZERO };
        let volume = self.terms.as_ref().is_some_and(|t| t.tier_mode == TierMode::Volume);
        let position = if volume { set.len() } else { set.rank(&key) + 1 };
        card.amounts[card.tier_for(u32::try_from(position).unwrap_or(u32::MAX))]
    }

    fn client_target(&mut self, kind: ClientLine) -> Result<Option<Part>, BookError> {
        // Study lines sort before client-level lines in `settle`, so `study_sum` is current.
        let Some(terms) = &self.terms else { return Ok(None) };
        if self.order.is_empty() && !terms.standing {
            return Ok(None);
        }
        let amount = match (&terms.contract, kind) {
            (Contract::Retainer { monthly_fee, .. }, ClientLine::RetainerFee) => *monthly_fee,
            (Contract::MinimumCommitment { monthly_minimum }, ClientLine::MinimumShortfall)
                if self.study_sum < *monthly_minimum =>
            {
                *monthly_minimum - self.study_sum
            }
            _ => return Ok(None),
        };
        if amount.is_zero() {
            return Ok(None);
        }
        // Converted at the rate of the month's latest billable report date (spec §6).
        let fx = match self.order.last().and_then(|k| self.facts.get(&k.1)) {
            Some(latest) => latest.fx.clone(),
            None => terms.fallback_rate.clone(),
        };
        if terms.currency != Currency::INR && fx.is_none() {
            // No rate to state it in INR yet: nothing booked until one arrives.
            return Ok(None);
        }
        let dims = Dims { report: None, currency: terms.currency, rule_version: Some(terms.rule_version), fx };
        convert(dims, amount).map(Some)
    }
}

/// A client-month as the live view must show it once settled, from the engine's pricing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineView {
    pub client_id: crate::ids::ClientId,
    pub currency: Currency,
    /// The invoice's taxable value.
    pub revenue: Decimal,
    /// Study lines at their reports' rates, the client-level line at the rate of the month's
    /// latest billable report date (the period's last day without one) — spec §6.
    pub revenue_inr: Decimal,
    pub cogs_inr: Decimal,
    pub billable: usize,
}

/// What the live ledger of a priced month must hold per client (the invoices of
/// [`crate::PricingRun::price`], valued in INR as spec §6 defines it).
pub fn engine_view(
    pricing: &crate::pricing::PeriodPricing,
    fx: &crate::fx::FxTable,
) -> Result<Vec<EngineView>, crate::fx::FxError> {
    use crate::money::Money;
    let mut views = Vec::with_capacity(pricing.invoices.len());
    for inv in &pricing.invoices {
        let reports: Vec<&crate::pricing::PricedReport> =
            pricing.reports.iter().filter(|r| r.client_id == inv.client_id).collect();
        let mut revenue_inr = Decimal::ZERO;
        let (mut cogs_inr, mut billable) = (Decimal::ZERO, 0);
        for r in reports.iter().filter(|r| r.status == ReportStatus::Final) {
            revenue_inr += fx.to_inr(Money::new(r.study_line, inv.currency), r.local_date)?.amount_inr;
            cogs_inr += r.cogs;
            billable += 1;
        }
        let client_level: Decimal = inv
            .lines
            .iter()
            .filter(|l| {
                matches!(
                    l.kind,
                    crate::pricing::InvoiceLineKind::RetainerFee | crate::pricing::InvoiceLineKind::MinimumShortfall
                )
            })
            .map(|l| l.amount)
            .sum();
        if !client_level.is_zero() {
            let latest = reports
                .iter()
                .filter(|r| r.status == ReportStatus::Final)
                .max_by(|a, b| (a.finalized_at, &a.report_id).cmp(&(b.finalized_at, &b.report_id)));
            let date = latest.map_or(pricing.period.last_day(), |r| r.local_date);
            revenue_inr += fx.to_inr(Money::new(client_level, inv.currency), date)?.amount_inr;
        }
        views.push(EngineView {
            client_id: inv.client_id.clone(),
            currency: inv.currency,
            revenue: inv.taxable_value,
            revenue_inr,
            cogs_inr,
            billable,
        });
    }
    Ok(views)
}

/// `amount` with its INR value: `round(amount × rate)`, or itself in INR.
fn convert(dims: Dims, amount: Decimal) -> Result<Part, BookError> {
    let amount_inr = match &dims.fx {
        _ if dims.currency == Currency::INR => amount,
        Some(rate) => Currency::INR.round(amount.checked_mul(rate.inr_per_unit).ok_or(BookError::Overflow)?),
        None => return Err(BookError::MissingRate(format!("a {} line", dims.currency))),
    };
    Ok(Part { dims, amount, amount_inr })
}

#[cfg(test)]
mod tests;
