//! Client rules (spec §4.2): what the platform charges a hospital (revenue).

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::check::{Checker, Range, RuleErrors, child, index};
use super::{UpliftTable, modality_map, region_factors};
use crate::ids::ClientId;
use crate::limits::MAX_REPORT_AMOUNT;
use crate::money::Currency;
use crate::report::{MAX_BODY_REGIONS, Modality, Priority, named_enum};
use crate::rounding::round_half_away;
use crate::tax::TaxTreatment;

named_enum!(
    /// GRADUATED prices the k-th study at the tier containing k; VOLUME prices every study at the
    /// tier containing the scope's total count.
    TierMode { Graduated = "GRADUATED", Volume = "VOLUME" }
);
named_enum!(
    /// Whether studies are counted across all modalities or per modality.
    TierScope { AllModalities = "ALL_MODALITIES", PerModality = "PER_MODALITY" }
);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Contract {
    PerStudy,
    /// A shortfall line tops the study lines up to `monthly_minimum`.
    MinimumCommitment {
        monthly_minimum: Decimal,
    },
    /// `monthly_fee` covers the first `included_studies` billable studies of the month.
    Retainer {
        monthly_fee: Decimal,
        included_studies: u32,
    },
}

/// A validated client rule document.
#[derive(Clone, PartialEq, Debug)]
pub struct ClientRules {
    pub client_id: ClientId,
    pub currency: Currency,
    pub contract: Contract,
    pub tier_mode: TierMode,
    pub tier_scope: TierScope,
    /// `up_to` of each tier, ascending; only the last is unbounded (`None`).
    pub tiers: Vec<Option<u32>>,
    /// Indexed by [`Modality::index`]; one price per tier. A modality without prices cannot be billed.
    pub unit_prices: [Option<Vec<Decimal>>; Modality::ALL.len()],
    pub additional_region_pct: Decimal,
    pub uplift_pct: UpliftTable,
    pub tax: TaxTreatment,
    region_factor: [Decimal; MAX_BODY_REGIONS as usize],
    uplift_factor: [Decimal; Priority::ALL.len()],
}

const FIELDS: &[&str] = &[
    "client_id",
    "currency",
    "contract",
    "tier_mode",
    "tier_scope",
    "tiers",
    "unit_prices",
    "additional_region_pct",
    "uplift_pct",
    "tax",
];

impl ClientRules {
    /// Parses and validates a client rule document, listing every problem.
    pub fn parse(text: &str) -> Result<Self, RuleErrors> {
        let mut c = Checker::default();
        let rules = c.parse(text).and_then(|doc| parse_doc(&mut c, &doc));
        c.finish(rules)
    }

    /// The 0-based tier that contains the `count`-th study (count ≥ 1).
    pub fn tier_for(&self, count: u32) -> usize {
        self.tiers.iter().position(|up_to| up_to.is_none_or(|u| count <= u)).unwrap_or(self.tiers.len() - 1)
    }

    pub fn prices(&self, modality: Modality) -> Option<&[Decimal]> {
        self.unit_prices[modality.index()].as_deref()
    }

    /// `unit_price × (1 + additional_region_pct/100 × (regions − 1)) × (1 + uplift[priority]/100)`,
    /// before rounding; `None` when the modality has no price.
    pub fn study_amount(
        &self,
        modality: Modality,
        tier: usize,
        body_regions: u8,
        priority: Priority,
    ) -> Option<Decimal> {
        let unit = *self.prices(modality)?.get(tier)?;
        let regions = usize::from(body_regions.clamp(1, MAX_BODY_REGIONS)) - 1;
        Some(unit * self.region_factor[regions] * self.uplift_factor[priority.index()])
    }
}

fn parse_doc(c: &mut Checker, doc: &Value) -> Option<ClientRules> {
    let root = c.object(doc, "$", FIELDS)?;
    let client_id = c.required(root, "$", "client_id").and_then(|v| {
        let s = c.string(v, "$.client_id")?;
        ClientId::parse(s).map_err(|e| c.problem("$.client_id", format!("not a client id: {e}"))).ok()
    });
    let currency = c.required(root, "$", "currency").and_then(|v| c.parsed::<Currency>(v, "$.currency"));
    let contract = c.required(root, "$", "contract").and_then(|v| parse_contract(c, v, currency));
    let tier_mode = c.required(root, "$", "tier_mode").and_then(|v| c.parsed::<TierMode>(v, "$.tier_mode"));
    let tier_scope = c.required(root, "$", "tier_scope").and_then(|v| c.parsed::<TierScope>(v, "$.tier_scope"));
    let tiers = c.required(root, "$", "tiers").and_then(|v| parse_tiers(c, v));
    // Prices are checked against the number of tiers given, even when a tier itself is invalid.
    let tier_count = root.get("tiers").and_then(Value::as_array).map(Vec::len);
    let unit_prices = c.required(root, "$", "unit_prices").and_then(|v| parse_unit_prices(c, v, tier_count));
    let additional_region_pct = match root.get("additional_region_pct") {
        Some(v) => c.decimal(v, "$.additional_region_pct", Range::PERCENT),
        None => Some(Decimal::ZERO),
    };
    let uplift_pct = match root.get("uplift_pct") {
        Some(v) => parse_uplifts(c, v),
        None => Some(UpliftTable::default()),
    };
    let tax = c.required(root, "$", "tax").and_then(|v| {
        let obj = c.object(v, "$.tax", &["treatment"])?;
        let t = c.required(obj, "$.tax", "treatment")?;
        c.parsed::<TaxTreatment>(t, "$.tax.treatment")
    });

    let (additional_region_pct, uplift_pct) = (additional_region_pct?, uplift_pct?);
    let rules = ClientRules {
        client_id: client_id?,
        currency: currency?,
        contract: contract?,
        tier_mode: tier_mode?,
        tier_scope: tier_scope?,
        tiers: tiers?,
        unit_prices: unit_prices?,
        additional_region_pct,
        uplift_pct,
        tax: tax?,
        region_factor: region_factors(additional_region_pct),
        uplift_factor: uplift_pct.factors(),
    };
    within_report_bound(c, &rules).then_some(rules)
}

/// Checks that no report can be charged more than [`MAX_REPORT_AMOUNT`]: the largest unit price
/// with 10 body regions and the largest uplift, plus the monthly fee or minimum a report may
/// carry (all of it when it is the month's only report). Reported at the largest price.
fn within_report_bound(c: &mut Checker, rules: &ClientRules) -> bool {
    let largest = Modality::ALL
        .iter()
        .filter_map(|m| rules.prices(*m).map(|prices| (m, prices)))
        .flat_map(|(m, prices)| prices.iter().enumerate().map(move |(i, price)| (*m, i, *price)))
        .fold(None, |best: Option<(Modality, usize, Decimal)>, (m, i, price)| match best {
            Some((_, _, top)) if top >= price => best,
            _ => Some((m, i, price)),
        });
    let Some((modality, tier, price)) = largest else { return true };
    let region = rules.region_factor.last().copied().unwrap_or(Decimal::ONE);
    let uplift = rules.uplift_factor.iter().copied().max().unwrap_or(Decimal::ONE);
    let (line, plus) = match rules.contract {
        Contract::PerStudy => (Decimal::ZERO, String::new()),
        Contract::MinimumCommitment { monthly_minimum } => {
            (monthly_minimum, format!(", plus the monthly minimum {monthly_minimum}"))
        }
        Contract::Retainer { monthly_fee, .. } => (monthly_fee, format!(", plus the monthly fee {monthly_fee}")),
    };
    let most = price * region * uplift + line;
    if most <= MAX_REPORT_AMOUNT {
        return true;
    }
    c.problem(
        index(&child("$.unit_prices", modality.as_str()), tier),
        format!(
            "\"{price}\" can charge one report up to {} {} (with {MAX_BODY_REGIONS} body regions and the largest \
             uplift{plus}); at most {MAX_REPORT_AMOUNT} is allowed",
            round_half_away(most, 4),
            rules.currency,
        ),
    );
    false
}

fn parse_uplifts(c: &mut Checker, v: &Value) -> Option<UpliftTable> {
    let path = "$.uplift_pct";
    let map = c.map(v, path)?;
    if map.contains_key("NIGHT") {
        c.problem(child(path, "NIGHT"), "client uplifts apply by priority only (ROUTINE, URGENT, STAT)");
    }
    let allowed = ["ROUTINE", "URGENT", "STAT", "NIGHT"];
    c.object(v, path, &allowed)?;
    UpliftTable::parse_priorities(c, map, path).filter(|_| !map.contains_key("NIGHT"))
}

/// An amount billed as a line of its own: non-negative and in the currency's minor units.
fn line_amount(
    c: &mut Checker,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    currency: Option<Currency>,
) -> Option<Decimal> {
    let p = child(path, key);
    let amount = c.required(obj, path, key).and_then(|v| c.decimal(v, &p, Range::MONEY))?;
    if let Some(cur) = currency
        && amount.scale() > cur.minor_units()
        && cur.round(amount) != amount
    {
        c.problem(p, format!("must be a whole number of {cur} minor units ({} decimals)", cur.minor_units()));
        return None;
    }
    Some(amount)
}

fn parse_contract(c: &mut Checker, v: &Value, currency: Option<Currency>) -> Option<Contract> {
    let path = "$.contract";
    let obj = c.map(v, path)?;
    let kind = c.required(obj, path, "type").and_then(|t| c.string(t, &child(path, "type")))?;
    match kind {
        "PER_STUDY" => {
            c.object(v, path, &["type"])?;
            Some(Contract::PerStudy)
        }
        "MINIMUM_COMMITMENT" => {
            c.object(v, path, &["type", "monthly_minimum"])?;
            let monthly_minimum = line_amount(c, obj, path, "monthly_minimum", currency)?;
            if monthly_minimum.is_zero() {
                c.problem(child(path, "monthly_minimum"), "must be greater than 0");
                return None;
            }
            Some(Contract::MinimumCommitment { monthly_minimum })
        }
        "RETAINER" => {
            c.object(v, path, &["type", "monthly_fee", "included_studies"])?;
            let monthly_fee = line_amount(c, obj, path, "monthly_fee", currency);
            let included = c
                .required(obj, path, "included_studies")
                .and_then(|n| c.integer(n, &child(path, "included_studies"), 0, u64::from(u32::MAX)));
            Some(Contract::Retainer { monthly_fee: monthly_fee?, included_studies: u32::try_from(included?).ok()? })
        }
        other => {
            c.problem(
                child(path, "type"),
                format!("must be one of PER_STUDY, MINIMUM_COMMITMENT, RETAINER, got {other:?}"),
            );
            None
        }
    }
}

fn parse_tiers(c: &mut Checker, v: &Value) -> Option<Vec<Option<u32>>> {
    let path = "$.tiers";
    let items = c.array(v, path)?;
    if items.is_empty() {
        c.problem(path, "must have at least one tier");
        return None;
    }
    let mut tiers = Vec::with_capacity(items.len());
    let mut ok = true;
    let last = items.len() - 1;
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(obj) = c.object(item, &p, &["up_to"]) else {
            ok = false;
            continue;
        };
        let up_path = child(&p, "up_to");
        let Some(up_to) = c.required(obj, &p, "up_to") else {
            ok = false;
            continue;
        };
        if up_to.is_null() {
            if i != last {
                c.problem(up_path, "only the last tier may be unbounded (null)");
                ok = false;
            }
            tiers.push(None);
            continue;
        }
        let Some(n) = c.integer(up_to, &up_path, 1, u64::from(u32::MAX)) else {
            ok = false;
            continue;
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if i == last {
            c.problem(up_path.clone(), "the last tier must be unbounded (null) so every study has a price");
            ok = false;
        }
        if let Some(Some(prev)) = tiers.last()
            && n <= *prev
        {
            c.problem(up_path, format!("must be greater than the previous tier's {prev}"));
            ok = false;
        }
        tiers.push(Some(n));
    }
    ok.then_some(tiers)
}

fn parse_unit_prices(
    c: &mut Checker,
    v: &Value,
    tier_count: Option<usize>,
) -> Option<[Option<Vec<Decimal>>; Modality::ALL.len()]> {
    let path = "$.unit_prices";
    let prices = modality_map(c, v, path, |c, v, p| {
        let items = c.array(v, p)?;
        if let Some(n) = tier_count
            && items.len() != n
        {
            c.problem(p, format!("must have one price per tier ({n}), got {}", items.len()));
            return None;
        }
        let parsed: Vec<Option<Decimal>> =
            items.iter().enumerate().map(|(i, x)| c.decimal(x, &index(p, i), Range::MONEY)).collect();
        parsed.into_iter().collect()
    })?;
    if prices.iter().all(Option::is_none) {
        c.problem(path, "must price at least one modality");
        return None;
    }
    Some(prices)
}
