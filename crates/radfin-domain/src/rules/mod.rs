//! Pricing rules (spec §4): immutable JSON documents, validated with every problem named by its
//! JSON path, and stored as bitemporal versions.

mod check;
mod client;
mod provider;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

pub use check::{RuleErrors, RuleProblem};
pub use client::{ClientRules, Contract, TierMode, TierScope};
pub use provider::{NightWindow, ProviderRules, SeniorityBand};

use check::{Checker, Range, child};

use crate::report::{MAX_BODY_REGIONS, Modality, Priority};

/// Uplift percentages by priority (absent priorities have none).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct UpliftTable([Decimal; Priority::ALL.len()]);

impl UpliftTable {
    pub fn pct(&self, priority: Priority) -> Decimal {
        self.0[priority.index()]
    }

    fn parse_priorities(c: &mut Checker, map: &Map<String, Value>, path: &str) -> Option<Self> {
        let mut table = Self::default();
        let mut ok = true;
        for p in Priority::ALL {
            if let Some(v) = map.get(p.as_str()) {
                match c.decimal(v, &child(path, p.as_str()), Range::PERCENT) {
                    Some(pct) => table.0[p.index()] = pct,
                    None => ok = false,
                }
            }
        }
        ok.then_some(table)
    }

    /// `1 + uplift/100` per priority.
    fn factors(&self) -> [Decimal; Priority::ALL.len()] {
        self.0.map(|pct| Decimal::ONE + pct / Decimal::ONE_HUNDRED)
    }
}

/// An object keyed by modality names, each value checked by `f`.
fn modality_map<T>(
    c: &mut Checker,
    v: &Value,
    path: &str,
    mut f: impl FnMut(&mut Checker, &Value, &str) -> Option<T>,
) -> Option<[Option<T>; Modality::ALL.len()]> {
    let names: Vec<&str> = Modality::ALL.iter().map(|m| m.as_str()).collect();
    let map = c.object(v, path, &names)?;
    let mut out = [const { None }; Modality::ALL.len()];
    let mut ok = true;
    for m in Modality::ALL {
        if let Some(v) = map.get(m.as_str()) {
            out[m.index()] = f(c, v, &child(path, m.as_str()));
            ok &= out[m.index()].is_some();
        }
    }
    ok.then_some(out)
}

/// `1 + pct/100 × (regions − 1)` for 1..=10 body regions.
fn region_factors(pct: Decimal) -> [Decimal; MAX_BODY_REGIONS as usize] {
    std::array::from_fn(|i| Decimal::ONE + pct / Decimal::ONE_HUNDRED * Decimal::from(i))
}

/// One immutable version of a rule document.
#[derive(Clone, Debug)]
pub struct RuleVersion<T> {
    /// Sequence number of the version within its history, from 1.
    pub version: u32,
    /// Valid time: the first report date the version prices.
    pub effective_from: NaiveDate,
    /// Transaction time: when radfin learned of the version.
    pub recorded_at: DateTime<Utc>,
    pub rules: Arc<T>,
}

/// Every version of one rule document (the provider rules, or one client's rules).
#[derive(Clone, Debug)]
pub struct RuleHistory<T> {
    /// Ordered by (`effective_from`, `recorded_at`).
    versions: Vec<RuleVersion<T>>,
}

impl<T> Default for RuleHistory<T> {
    fn default() -> Self {
        Self { versions: Vec::new() }
    }
}

impl<T> RuleHistory<T> {
    pub fn push(&mut self, version: RuleVersion<T>) {
        let key = (version.effective_from, version.recorded_at);
        let at = self.versions.partition_point(|v| (v.effective_from, v.recorded_at) <= key);
        self.versions.insert(at, version);
    }

    /// The version that prices a report dated `date` in a run that sees the rules as they were
    /// recorded at `rules_as_of`: the latest `effective_from` on or before `date` among versions
    /// recorded by then (for equal `effective_from`, the later recording corrects the earlier).
    pub fn select(&self, date: NaiveDate, rules_as_of: DateTime<Utc>) -> Option<&RuleVersion<T>> {
        let n = self.versions.partition_point(|v| v.effective_from <= date);
        self.versions[..n].iter().rev().find(|v| v.recorded_at <= rules_as_of)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RuleVersion<T>> {
        self.versions.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

impl<T> FromIterator<RuleVersion<T>> for RuleHistory<T> {
    fn from_iter<I: IntoIterator<Item = RuleVersion<T>>>(iter: I) -> Self {
        let mut h = Self::default();
        iter.into_iter().for_each(|v| h.push(v));
        h
    }
}

#[cfg(test)]
pub(crate) mod tests;
