//! Provider rules (spec §4.1): what the platform pays a radiologist for a report (COGS).

use chrono::NaiveTime;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::check::{Checker, Range, RuleErrors, child, index};
use super::{UpliftTable, modality_map, region_factors};
use crate::ids::ProviderId;
use crate::limits::MAX_REPORT_AMOUNT;
use crate::money::Currency;
use crate::party::Grade;
use crate::report::{MAX_BODY_REGIONS, Modality, Priority};
use crate::rounding::round_half_away;

/// A `[start, end)` window of local wall-clock time; it may cross midnight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NightWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl NightWindow {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end { self.start <= t && t < self.end } else { t >= self.start || t < self.end }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SeniorityBand {
    pub min_years: u32,
    pub multiplier: Decimal,
}

/// A validated provider rule document.
#[derive(Clone, PartialEq, Debug)]
pub struct ProviderRules {
    pub currency: Currency,
    /// Indexed by [`Modality::index`].
    pub base_fee: [Decimal; Modality::ALL.len()],
    pub additional_region_pct: Decimal,
    /// Indexed by [`Grade::index`].
    pub grade_multiplier: [Decimal; Grade::ALL.len()],
    /// Ascending `min_years`, the first being 0.
    pub seniority: Vec<SeniorityBand>,
    pub uplift_pct: UpliftTable,
    pub night_uplift_pct: Decimal,
    pub night_window: Option<NightWindow>,
    /// Per-provider base fees that replace the general ones.
    pub overrides: FxHashMap<ProviderId, [Option<Decimal>; Modality::ALL.len()]>,
    region_factor: [Decimal; MAX_BODY_REGIONS as usize],
    /// `1 + (uplift[priority] + uplift[NIGHT if night]) / 100`, indexed `[priority][night]`.
    uplift_factor: [[Decimal; 2]; Priority::ALL.len()],
}

const FIELDS: &[&str] = &[
    "currency",
    "base_fee",
    "additional_region_pct",
    "grade_multiplier",
    "seniority_multiplier",
    "uplift_pct",
    "night_window",
    "provider_overrides",
];

impl ProviderRules {
    /// Parses and validates a provider rule document, listing every problem.
    pub fn parse(text: &str) -> Result<Self, RuleErrors> {
        let mut c = Checker::default();
        let rules = c.parse(text).and_then(|doc| parse_doc(&mut c, &doc));
        c.finish(rules)
    }

    /// The base fee for a provider and modality, the provider's override first.
    pub fn base_fee(&self, provider: &ProviderId, modality: Modality) -> Decimal {
        self.overrides.get(provider).and_then(|o| o[modality.index()]).unwrap_or(self.base_fee[modality.index()])
    }

    /// The multiplier of the band with the largest `min_years` not above `years`.
    pub fn seniority_multiplier(&self, years: u32) -> Decimal {
        let n = self.seniority.partition_point(|b| b.min_years <= years);
        // The first band starts at 0 years, so n ≥ 1.
        self.seniority[n.saturating_sub(1)].multiplier
    }

    pub fn is_night(&self, local_time: NaiveTime) -> bool {
        self.night_window.is_some_and(|w| w.contains(local_time))
    }

    /// `1 + additional_region_pct/100 × (body_regions − 1)` for 1..=10 regions.
    pub fn region_factor(&self, body_regions: u8) -> Decimal {
        self.region_factor[usize::from(body_regions.clamp(1, MAX_BODY_REGIONS)) - 1]
    }

    pub fn uplift_factor(&self, priority: Priority, night: bool) -> Decimal {
        self.uplift_factor[priority.index()][usize::from(night)]
    }
}

fn parse_doc(c: &mut Checker, doc: &Value) -> Option<ProviderRules> {
    let root = c.object(doc, "$", FIELDS)?;
    let currency = c.required(root, "$", "currency").and_then(|v| c.parsed::<Currency>(v, "$.currency"));
    if currency.is_some_and(|cur| cur != Currency::INR) {
        c.problem("$.currency", "provider payouts are made in INR; the document must say \"INR\"");
    }
    let base_fee = c.required(root, "$", "base_fee").and_then(|v| {
        let fees = modality_map(c, v, "$.base_fee", |c, v, p| c.decimal(v, p, Range::MONEY))?;
        let mut all = [Decimal::ZERO; Modality::ALL.len()];
        let mut complete = true;
        for m in Modality::ALL {
            match fees[m.index()] {
                Some(fee) => all[m.index()] = fee,
                None => {
                    c.problem(child("$.base_fee", m.as_str()), "is required: every modality needs a base fee");
                    complete = false;
                }
            }
        }
        complete.then_some(all)
    });
    let additional_region_pct = match root.get("additional_region_pct") {
        Some(v) => c.decimal(v, "$.additional_region_pct", Range::PERCENT),
        None => Some(Decimal::ZERO),
    };
    let grade_multiplier = c.required(root, "$", "grade_multiplier").and_then(|v| parse_grades(c, v));
    let seniority = c.required(root, "$", "seniority_multiplier").and_then(|v| parse_seniority(c, v));
    let (uplift_pct, night_uplift_pct) = match root.get("uplift_pct") {
        Some(v) => parse_uplifts(c, v),
        None => (Some(UpliftTable::default()), Some(Decimal::ZERO)),
    };
    let night_window = match root.get("night_window") {
        Some(v) => parse_night_window(c, v).map(Some),
        None => Some(None),
    };
    if night_uplift_pct.is_some_and(|n| !n.is_zero()) && root.get("night_window").is_none() {
        c.problem("$.night_window", "is required when uplift_pct.NIGHT is set");
    }
    let overrides = match root.get("provider_overrides") {
        Some(v) => parse_overrides(c, v),
        None => Some(FxHashMap::default()),
    };

    let (uplift_pct, night_uplift_pct, additional_region_pct) =
        (uplift_pct?, night_uplift_pct?, additional_region_pct?);
    let uplift_factor = std::array::from_fn(|i| {
        let p = Priority::ALL[i];
        let base = uplift_pct.pct(p);
        [0, 1].map(|night| {
            let night_pct = if night == 1 { night_uplift_pct } else { Decimal::ZERO };
            Decimal::ONE + (base + night_pct) / Decimal::ONE_HUNDRED
        })
    });
    let rules = ProviderRules {
        currency: currency?,
        base_fee: base_fee?,
        additional_region_pct,
        grade_multiplier: grade_multiplier?,
        seniority: seniority?,
        uplift_pct,
        night_uplift_pct,
        night_window: night_window?,
        overrides: overrides?,
        region_factor: region_factors(additional_region_pct),
        uplift_factor,
    };
    within_report_bound(c, &rules).then_some(rules)
}

/// Checks that no report can cost more than [`MAX_REPORT_AMOUNT`]: the largest base fee
/// (overrides included) with 10 body regions, the largest grade and seniority multipliers and the
/// largest uplift (night included). Reported at the largest fee.
fn within_report_bound(c: &mut Checker, rules: &ProviderRules) -> bool {
    let general = Modality::ALL.iter().map(|m| (child("$.base_fee", m.as_str()), rules.base_fee[m.index()]));
    let mut overridden: Vec<(String, Decimal)> = rules
        .overrides
        .iter()
        .flat_map(|(id, fees)| {
            Modality::ALL.iter().filter_map(move |m| {
                let path = child(&child(&child("$.provider_overrides", id.as_str()), "base_fee"), m.as_str());
                fees[m.index()].map(|fee| (path, fee))
            })
        })
        .collect();
    // The map has no order; the first path of the largest fee is reported.
    overridden.sort();
    let largest = general.chain(overridden).fold(None, |best: Option<(String, Decimal)>, (path, fee)| match best {
        Some((_, top)) if top >= fee => best,
        _ => Some((path, fee)),
    });
    let Some((path, fee)) = largest else { return true };
    let factor = rules.region_factor.last().copied().unwrap_or(Decimal::ONE)
        * rules.grade_multiplier.iter().copied().max().unwrap_or(Decimal::ONE)
        * rules.seniority.iter().map(|b| b.multiplier).max().unwrap_or(Decimal::ONE)
        * rules.uplift_factor.iter().flatten().copied().max().unwrap_or(Decimal::ONE);
    let most = fee * factor;
    if most <= MAX_REPORT_AMOUNT {
        return true;
    }
    c.problem(
        path,
        format!(
            "\"{fee}\" can cost one report up to {} {} (with {MAX_BODY_REGIONS} body regions, the largest grade and \
             seniority multipliers and the largest uplift); at most {MAX_REPORT_AMOUNT} is allowed",
            round_half_away(most, 4),
            rules.currency,
        ),
    );
    false
}

fn parse_grades(c: &mut Checker, v: &Value) -> Option<[Decimal; Grade::ALL.len()]> {
    let names: Vec<&str> = Grade::ALL.iter().map(|g| g.as_str()).collect();
    let map = c.object(v, "$.grade_multiplier", &names)?;
    let mut out = [Decimal::ONE; Grade::ALL.len()];
    let mut ok = true;
    for g in Grade::ALL {
        let path = child("$.grade_multiplier", g.as_str());
        match map.get(g.as_str()) {
            Some(v) => match c.decimal(v, &path, Range::MULTIPLIER) {
                Some(m) => out[g.index()] = m,
                None => ok = false,
            },
            None => {
                c.problem(path, "is required: every grade needs a multiplier");
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn parse_seniority(c: &mut Checker, v: &Value) -> Option<Vec<SeniorityBand>> {
    let path = "$.seniority_multiplier";
    let items = c.array(v, path)?;
    if items.is_empty() {
        c.problem(path, "must have at least one band, starting at min_years 0");
        return None;
    }
    let mut bands = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(obj) = c.object(item, &p, &["min_years", "multiplier"]) else {
            ok = false;
            continue;
        };
        let min_years = c.required(obj, &p, "min_years").and_then(|v| c.integer(v, &child(&p, "min_years"), 0, 80));
        let multiplier =
            c.required(obj, &p, "multiplier").and_then(|v| c.decimal(v, &child(&p, "multiplier"), Range::MULTIPLIER));
        match (min_years, multiplier) {
            (Some(y), Some(m)) => {
                let y = u32::try_from(y).unwrap_or(u32::MAX);
                if let Some(prev) = bands.last().map(|b: &SeniorityBand| b.min_years)
                    && y <= prev
                {
                    c.problem(child(&p, "min_years"), format!("must be greater than the previous band's {prev}"));
                    ok = false;
                }
                if i == 0 && y != 0 {
                    c.problem(child(&p, "min_years"), "the first band must start at 0 so every provider has one");
                    ok = false;
                }
                bands.push(SeniorityBand { min_years: y, multiplier: m });
            }
            _ => ok = false,
        }
    }
    ok.then_some(bands)
}

fn parse_uplifts(c: &mut Checker, v: &Value) -> (Option<UpliftTable>, Option<Decimal>) {
    let path = "$.uplift_pct";
    let Some(map) = c.object(v, path, &["ROUTINE", "URGENT", "STAT", "NIGHT"]) else {
        return (None, None);
    };
    let night = match map.get("NIGHT") {
        Some(v) => c.decimal(v, &child(path, "NIGHT"), Range::PERCENT),
        None => Some(Decimal::ZERO),
    };
    (UpliftTable::parse_priorities(c, map, path), night)
}

fn parse_night_window(c: &mut Checker, v: &Value) -> Option<NightWindow> {
    let path = "$.night_window";
    let obj = c.object(v, path, &["start", "end"])?;
    let mut time = |key: &str| {
        let p = child(path, key);
        let s = c.required(obj, path, key).and_then(|v| c.string(v, &p))?;
        let t = NaiveTime::parse_from_str(s, "%H:%M").ok().filter(|_| s.len() == 5);
        if t.is_none() {
            c.problem(p, format!("must be a time HH:MM from 00:00 to 23:59, got {s:?}"));
        }
        t
    };
    let (start, end) = (time("start"), time("end"));
    let (start, end) = (start?, end?);
    if start == end {
        c.problem(path, "start and end must differ");
        return None;
    }
    Some(NightWindow { start, end })
}

type FeeOverrides = [Option<Decimal>; Modality::ALL.len()];

fn parse_overrides(c: &mut Checker, v: &Value) -> Option<FxHashMap<ProviderId, FeeOverrides>> {
    let path = "$.provider_overrides";
    let map = c.map(v, path)?;
    let mut out = FxHashMap::default();
    let mut ok = true;
    for (id, body) in map {
        let p = child(path, id);
        let provider = ProviderId::parse(id).map_err(|e| c.problem(&p, format!("not a provider id: {e}"))).ok();
        let fees = c.object(body, &p, &["base_fee"]).and_then(|o| {
            let fees = c.required(o, &p, "base_fee")?;
            modality_map(c, fees, &child(&p, "base_fee"), |c, v, p| c.decimal(v, p, Range::MONEY))
        });
        match (provider, fees) {
            (Some(provider), Some(fees)) => {
                out.insert(provider, fees);
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
