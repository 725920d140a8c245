//! Revenue (spec §4.2): a client's period priced as a whole, because tiers, retainers and
//! minimums depend on every billable study of the month.

use rust_decimal::Decimal;
use serde::Serialize;

use super::memo::Memo;
use crate::allocation::allocate_equally;
use crate::ids::ClientId;
use crate::money::Currency;
use crate::report::{MAX_BODY_REGIONS, Modality, Priority};
use crate::rules::{ClientRules, Contract, RuleVersion, TierMode, TierScope};
use crate::tax::TaxTreatment;

/// What an invoice line bills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceLineKind {
    /// Studies of one modality priced in one tier (1-based) at one unit price.
    Studies {
        modality: Modality,
        tier: u32,
        unit_price: Decimal,
    },
    /// Studies covered by the retainer fee, priced at 0.
    IncludedStudies {
        modality: Modality,
    },
    RetainerFee,
    MinimumShortfall,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceLine {
    pub kind: InvoiceLineKind,
    pub quantity: u32,
    /// Sum of the line's rounded study amounts (or the fee itself), in the invoice currency.
    pub amount: Decimal,
}

/// A client's priced period: what its invoice will say before tax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientInvoiceDraft {
    pub client_id: ClientId,
    pub currency: Currency,
    pub tax_treatment: TaxTreatment,
    /// The rule version in force on the period's last day, which sets the contract.
    pub contract_rule_version: u32,
    /// Every client rule version that priced something on the invoice, ascending.
    pub rule_versions: Vec<u32>,
    pub billable_reports: u32,
    pub lines: Vec<InvoiceLine>,
    pub taxable_value: Decimal,
}

/// A billable study, in billing order, with the rule version in force on its date.
pub(crate) struct Study<'a> {
    pub modality: Modality,
    pub body_regions: u8,
    pub priority: Priority,
    pub rules: &'a RuleVersion<ClientRules>,
}

/// Prices a client's billable studies (already in billing order) under the contract of
/// `contract_rules`. Returns the invoice draft and each study's line and share of the
/// client-level lines (allocated over the studies), together summing exactly to the taxable value.
pub(crate) fn price_client_period(
    client_id: &ClientId,
    contract_rules: &RuleVersion<ClientRules>,
    studies: &[Study<'_>],
) -> (ClientInvoiceDraft, StudyRevenue) {
    let structure = &*contract_rules.rules;
    let currency = structure.currency;
    let included = match structure.contract {
        Contract::Retainer { included_studies, .. } => included_studies as usize,
        _ => 0,
    };
    let scope_of = |m: Modality| match structure.tier_scope {
        TierScope::AllModalities => 0,
        TierScope::PerModality => m.index(),
    };
    let mut volume = [0u32; Modality::ALL.len()];
    if structure.tier_mode == TierMode::Volume {
        for s in studies.iter().skip(included) {
            volume[scope_of(s.modality)] += 1;
        }
    }

    let mut lines = LineBook::default();
    let mut counts = [0u32; Modality::ALL.len()];
    let mut revenue = Vec::with_capacity(studies.len());
    let mut study_sum = Decimal::ZERO;
    let mut versions = vec![contract_rules.version];
    let mut amounts = AmountMemo::default();
    for (i, s) in studies.iter().enumerate() {
        if versions.last() != Some(&s.rules.version) {
            versions.push(s.rules.version);
        }
        if i < included {
            let kind = InvoiceLineKind::IncludedStudies { modality: s.modality };
            lines.add(LineKey::Included(s.modality), || kind, Decimal::ZERO);
            revenue.push(Decimal::ZERO);
            continue;
        }
        let scope = scope_of(s.modality);
        counts[scope] += 1;
        let position = match structure.tier_mode {
            TierMode::Graduated => counts[scope],
            TierMode::Volume => volume[scope],
        };
        let rules = &*s.rules.rules;
        let tier = rules.tier_for(position);
        // The engine holds back studies whose modality has no price, so both lookups succeed.
        let unit_price = rules.prices(s.modality).map_or(Decimal::ZERO, |p| p[tier]);
        let amount = amounts.amount(rules, s, tier, || {
            currency.round(rules.study_amount(s.modality, tier, s.body_regions, s.priority).unwrap_or_default())
        });
        let key = LineKey::Studies { version: s.rules.version, modality: s.modality, tier };
        lines.add(key, || InvoiceLineKind::Studies { modality: s.modality, tier: tier as u32 + 1, unit_price }, amount);
        revenue.push(amount);
        study_sum += amount;
    }

    let client_level = match structure.contract {
        Contract::PerStudy => Decimal::ZERO,
        Contract::Retainer { monthly_fee, .. } => {
            lines.add(LineKey::Fee, || InvoiceLineKind::RetainerFee, monthly_fee);
            monthly_fee
        }
        Contract::MinimumCommitment { monthly_minimum } if study_sum < monthly_minimum => {
            let shortfall = monthly_minimum - study_sum;
            lines.add(LineKey::Fee, || InvoiceLineKind::MinimumShortfall, shortfall);
            shortfall
        }
        Contract::MinimumCommitment { .. } => Decimal::ZERO,
    };
    let shares = if !client_level.is_zero() && !studies.is_empty() {
        allocate_equally(client_level, studies.len(), currency)
            .expect("client-level amounts are validated to be in minor units and there are studies")
    } else {
        vec![Decimal::ZERO; studies.len()]
    };

    versions.sort_unstable();
    versions.dedup();
    let draft = ClientInvoiceDraft {
        client_id: client_id.clone(),
        currency,
        tax_treatment: structure.tax,
        contract_rule_version: contract_rules.version,
        rule_versions: versions,
        billable_reports: studies.len() as u32,
        lines: lines.finish(),
        taxable_value: study_sum + client_level,
    };
    (draft, StudyRevenue { lines: revenue, shares })
}

/// Rounded study amounts of one client-period by what they depend on (rule version, modality,
/// tier, clamped body regions, priority): each distinct amount is computed once.
#[derive(Default)]
struct AmountMemo(Memo<ClientRules>);

/// Tiers up to which a rule version's amounts are memoized.
const MEMO_TIERS: usize = 16;
const REGIONS: usize = MAX_BODY_REGIONS as usize;

impl AmountMemo {
    fn amount(
        &mut self,
        rules: &ClientRules,
        s: &Study<'_>,
        tier: usize,
        compute: impl FnOnce() -> Decimal,
    ) -> Decimal {
        let tiers = rules.tiers.len();
        if tiers > MEMO_TIERS || tier >= tiers {
            return compute();
        }
        let size = Modality::ALL.len() * tiers * REGIONS * Priority::ALL.len();
        let regions = usize::from(s.body_regions.clamp(1, MAX_BODY_REGIONS)) - 1;
        let index =
            ((s.modality.index() * tiers + tier) * REGIONS + regions) * Priority::ALL.len() + s.priority.index();
        self.0.get_or(rules, size, index, compute)
    }
}

/// Each study's own line and its share of the client-level lines, in billing order.
pub(crate) struct StudyRevenue {
    pub lines: Vec<Decimal>,
    pub shares: Vec<Decimal>,
}

/// What makes two studies share an invoice line: cheap to compare, unlike the line's kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKey {
    Studies {
        version: u32,
        modality: Modality,
        tier: usize,
    },
    Included(Modality),
    /// The one client-level line (retainer fee or shortfall).
    Fee,
}

/// Invoice lines; few distinct per invoice, so a vector is enough.
#[derive(Default)]
struct LineBook(Vec<(LineKey, InvoiceLine)>);

impl LineBook {
    fn add(&mut self, key: LineKey, kind: impl FnOnce() -> InvoiceLineKind, amount: Decimal) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, line)) => {
                line.quantity += 1;
                line.amount += amount;
            }
            None => self.0.push((key, InvoiceLine { kind: kind(), quantity: 1, amount })),
        }
    }

    /// The lines in a stable order; equal kinds from different rule versions merge.
    fn finish(self) -> Vec<InvoiceLine> {
        let mut all: Vec<InvoiceLine> = self.0.into_iter().map(|(_, line)| line).collect();
        all.sort_by_key(|l| l.kind);
        let mut lines: Vec<InvoiceLine> = Vec::with_capacity(all.len());
        for line in all {
            match lines.last_mut() {
                Some(last) if last.kind == line.kind => {
                    last.quantity += line.quantity;
                    last.amount += line.amount;
                }
                _ => lines.push(line),
            }
        }
        lines
    }
}
