//! A walker over a JSON document that records every problem with its JSON path, so an invalid
//! rule document is rejected with all its problems at once.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::limits::{self, DecimalLimit};

/// One problem in a rule document.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RuleProblem {
    /// JSON path of the offending value, `$` being the document: `$.tiers[2].up_to`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem of a rejected rule document.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleProblem>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "invalid rule document: {}", parts.join("; "))
    }
}

impl RuleErrors {
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|p| p.path.as_str())
    }
}

/// Bounds on a decimal value: its digits ([`DecimalLimit`], checked first) and its range.
#[derive(Clone, Copy)]
pub(crate) struct Range {
    pub limit: DecimalLimit,
    pub min: Decimal,
    pub min_inclusive: bool,
    /// `None`: no bound besides the digits.
    pub max: Option<Decimal>,
}

impl Range {
    /// An amount of money, 0 or more.
    pub const MONEY: Range = Range { limit: limits::MONEY, min: Decimal::ZERO, min_inclusive: true, max: None };
    pub const PERCENT: Range =
        Range { limit: limits::PERCENT, min: Decimal::ZERO, min_inclusive: true, max: Some(limits::MAX_PERCENT) };
    pub const MULTIPLIER: Range = Range {
        limit: limits::MULTIPLIER,
        min: Decimal::ZERO,
        min_inclusive: false,
        max: Some(limits::MAX_MULTIPLIER),
    };
}

#[derive(Default)]
pub(crate) struct Checker {
    problems: Vec<RuleProblem>,
}

pub(crate) fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl Checker {
    pub fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(RuleProblem { path: path.into(), message: message.into() });
    }

    pub fn finish<T>(self, value: Option<T>) -> Result<T, RuleErrors> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(RuleErrors(self.problems)),
        }
    }

    /// Parses the text as JSON; a syntax error is the only problem reported.
    pub fn parse(&mut self, text: &str) -> Option<Value> {
        serde_json::from_str(text).map_err(|e| self.problem("$", format!("not valid JSON: {e}"))).ok()
    }

    /// An object whose keys must all be in `allowed`.
    pub fn object<'v>(&mut self, value: &'v Value, path: &str, allowed: &[&str]) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.problem(path, format!("must be an object, got {}", kind(value)));
            return None;
        };
        for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.problem(child(path, key), format!("unknown field; expected one of {}", allowed.join(", ")));
        }
        Some(map)
    }

    /// An object with any keys.
    pub fn map<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        let map = value.as_object();
        if map.is_none() {
            self.problem(path, format!("must be an object, got {}", kind(value)));
        }
        map
    }

    pub fn required<'v>(&mut self, map: &'v Map<String, Value>, path: &str, key: &str) -> Option<&'v Value> {
        let v = map.get(key);
        if v.is_none() {
            self.problem(child(path, key), "is required");
        }
        v
    }

    pub fn array<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Vec<Value>> {
        let a = value.as_array();
        if a.is_none() {
            self.problem(path, format!("must be an array, got {}", kind(value)));
        }
        a
    }

    pub fn string<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v str> {
        let s = value.as_str();
        if s.is_none() {
            self.problem(path, format!("must be a string, got {}", kind(value)));
        }
        s
    }

    /// A string parsed with `FromStr`, whose error message is reported as is.
    pub fn parsed<T: FromStr>(&mut self, value: &Value, path: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let s = self.string(value, path)?;
        s.parse().map_err(|e: T::Err| self.problem(path, e.to_string())).ok()
    }

    /// A decimal written as a JSON string (`"120.00"`), never a JSON number: numbers would
    /// pass through binary floating point in most producers.
    pub fn decimal(&mut self, value: &Value, path: &str, range: Range) -> Option<Decimal> {
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => {
                self.problem(path, format!("must be a decimal string such as \"{n}\", not a JSON number"));
                return None;
            }
            other => {
                self.problem(path, format!("must be a decimal string, got {}", kind(other)));
                return None;
            }
        };
        let d = range.limit.parse(text).map_err(|e| self.problem(path, e.to_string())).ok()?;
        let above_min = if range.min_inclusive { d >= range.min } else { d > range.min };
        if !above_min || range.max.is_some_and(|max| d > max) {
            let lower = if range.min_inclusive { "at least" } else { "greater than" };
            let upper = range.max.map(|max| format!(" and at most {max}")).unwrap_or_default();
            self.problem(path, format!("must be {lower} {}{upper}, got {text}", range.min));
            return None;
        }
        Some(d)
    }

    /// A whole number in `[min, max]`.
    pub fn integer(&mut self, value: &Value, path: &str, min: u64, max: u64) -> Option<u64> {
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problem(path, format!("must be a whole number from {min} to {max}, got {value}"));
                None
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
