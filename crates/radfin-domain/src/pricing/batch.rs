//! [`PricingRun::price`] for a whole month, arranged for memory traffic: one sequential pass over
//! the events gathers what pricing needs (and finds repeated report ids with a bitmap, so only
//! the few repeated ones go through an exact map), the kept events are grouped by client, and the
//! catalog is consulted once per client, provider, rule version or day rather than per report.
//! The results are exactly those of pricing report by report; only the bookkeeping differs.

use std::borrow::Borrow;
use std::hash::BuildHasher;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::cogs::cogs_from_base;
use super::memo::Memo;
use super::revenue::{Study, price_client_period};
use super::{
    ClientInvoiceDraft, HeldReport, HoldReason, PeriodPricing, PricedReport, PricingError, PricingRun,
    ProviderPayoutDraft, held_report,
};
use crate::catalog::Catalog;
use crate::ids::{ClientId, ProviderId, ReportId};
use crate::money::Money;
use crate::party::{ClientProfile, Grade, ProviderProfile, Versions};
use crate::report::{MAX_BODY_REGIONS, Modality, Priority, ReportEvent, ReportStatus};
use crate::rules::{ClientRules, Contract, ProviderRules, RuleHistory, RuleVersion};

/// A provider's per-modality base fee overrides.
type Overrides = [Option<Decimal>; Modality::ALL.len()];

/// A kept event with what pricing needs, gathered in the sequential pass so that pricing, which
/// visits the events in another order, does not go back to them.
struct Row<'a> {
    report: &'a ReportEvent,
    /// A clone of the report's id, taken while the event was at hand; moved into the result.
    report_id: Option<ReportId>,
    /// `finalized_at` in nanoseconds: the first key of billing order.
    instant: i64,
    finalized_at: DateTime<Utc>,
    local: NaiveDateTime,
    provider: u32,
    revision: u32,
    modality: Modality,
    body_regions: u8,
    priority: Priority,
    status: ReportStatus,
}

/// A row whose parties and rules are known.
struct Resolved<'a> {
    row: Row<'a>,
    profile: &'a ProviderProfile,
    /// None for a cancelled report, which needs no rules.
    rules: Option<ResolvedRules<'a>>,
}

#[derive(Clone, Copy)]
struct ResolvedRules<'a> {
    provider: &'a RuleVersion<ProviderRules>,
    client: &'a RuleVersion<ClientRules>,
    /// The provider's base fee overrides in `provider`.
    overrides: Option<&'a Overrides>,
}

/// Dense numbers for ids, in order of first appearance. Equal ids get the same number whatever
/// allocation they live in; a small cache keyed by the id's address skips hashing for the
/// (usual) case of many events sharing one allocation.
struct Slots<'a, T> {
    map: FxHashMap<&'a str, u32>,
    ids: Vec<&'a T>,
    /// (address, length, slot) by address bits. The same address and length is the same text.
    recent: Vec<(usize, usize, u32)>,
}

const RECENT: usize = 1024;

impl<'a, T: Borrow<str>> Slots<'a, T> {
    fn new() -> Self {
        Self { map: FxHashMap::default(), ids: Vec::new(), recent: vec![(0, 0, 0); RECENT] }
    }

    fn slot(&mut self, id: &'a T) -> u32 {
        let text: &'a str = id.borrow();
        let address = text.as_ptr() as usize;
        let cached = &mut self.recent[(address >> 4) % RECENT];
        if cached.0 == address && cached.1 == text.len() {
            return cached.2;
        }
        let next = self.ids.len() as u32;
        let ids = &mut self.ids;
        let slot = *self.map.entry(text).or_insert_with(|| {
            ids.push(id);
            next
        });
        *cached = (address, text.len(), slot);
        slot
    }

    fn get(&self, text: &str) -> Option<u32> {
        self.map.get(text).copied()
    }
}

/// Something looked up by a report's local date: computed once per day of the period.
struct ByDay<T> {
    first: NaiveDate,
    days: Vec<T>,
}

impl<T: Copy> ByDay<T> {
    fn new(run: &PricingRun, f: impl FnMut(NaiveDate) -> T) -> Self {
        let first = run.period.first_day();
        Self { first, days: run.period.days().map(f).collect() }
    }

    /// The value for `date`; dates outside the period (which a time zone's odd transitions could
    /// give) are computed afresh.
    fn get(&self, date: NaiveDate, f: impl FnOnce(NaiveDate) -> T) -> T {
        if date.year() == self.first.year()
            && date.month() == self.first.month()
            && let Some(v) = self.days.get(date.day0() as usize)
        {
            return *v;
        }
        f(date)
    }
}

/// What pricing needs of the providers, by slot, and of the provider rules, by day.
struct ProviderLookup<'a> {
    ids: Vec<&'a ProviderId>,
    versions: Vec<Option<&'a Versions<ProviderProfile>>>,
    history: &'a RuleHistory<ProviderRules>,
    rules_by_day: ByDay<Option<&'a RuleVersion<ProviderRules>>>,
    overrides: OverrideTable<'a>,
}

/// Providers' overrides by slot, for each provider rule version the period uses.
struct OverrideTable<'a> {
    tables: Vec<(*const ProviderRules, Vec<Option<&'a Overrides>>)>,
}

impl<'a> OverrideTable<'a> {
    fn get(&self, rules: &'a ProviderRules, slot: u32, id: &ProviderId) -> Option<&'a Overrides> {
        if rules.overrides.is_empty() {
            return None;
        }
        match self.tables.iter().find(|(p, _)| std::ptr::eq(*p, rules)) {
            Some((_, by_slot)) => by_slot[slot as usize],
            None => rules.overrides.get(id),
        }
    }
}

impl PricingRun {
    pub(super) fn price_month(
        &self,
        catalog: &Catalog,
        reports: &[ReportEvent],
    ) -> Result<PeriodPricing, PricingError> {
        let n = reports.len();
        let (start, end) = self.calendar.period_bounds(self.period);

        // Pass 1: period check, client slots, and report ids seen more than once (by a bitmap of
        // hashed ids: an id whose bit is set only once is certainly unique).
        let bits_log = (n.max(1) * 16).next_power_of_two().trailing_zeros().clamp(10, 32);
        let words = 1usize << (bits_log - 6);
        let mut seen = vec![0u64; words];
        let mut twice = vec![0u64; words];
        let mut any_twice = false;
        let mut all_in_period = true;
        let mut bit_of: Vec<u32> = Vec::with_capacity(n);
        let mut client_of: Vec<u32> = Vec::with_capacity(n);
        let mut clients: Slots<'_, ClientId> = Slots::new();
        for r in reports {
            all_in_period &= (start..end).contains(&r.finalized_at);
            let hash = FxBuildHasher.hash_one(r.report_id.as_str()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let bit = (hash >> (64 - bits_log)) as usize;
            let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
            if seen[word] & mask != 0 {
                twice[word] |= mask;
                any_twice = true;
            }
            seen[word] |= mask;
            bit_of.push(bit as u32);
            client_of.push(clients.slot(&r.client_id));
        }
        drop(seen);
        let keep = if !all_in_period {
            // The per-event scan names the first problem in input order.
            self.current_revisions(reports)?
        } else if any_twice {
            let mut keep = vec![true; n];
            let mut slots: FxHashMap<&str, usize> = FxHashMap::default();
            for (i, r) in reports.iter().enumerate() {
                let bit = bit_of[i] as usize;
                if twice[bit >> 6] & (1u64 << (bit & 63)) == 0 {
                    continue;
                }
                keep[i] = false;
                let slot = slots.entry(r.report_id.as_str()).or_insert(i);
                let kept = &reports[*slot];
                if *slot == i || r.revision > kept.revision {
                    keep[*slot] = false;
                    keep[i] = true;
                    *slot = i;
                } else if r.revision == kept.revision && kept != r {
                    self.current_revisions(reports)?;
                }
            }
            keep
        } else {
            vec![true; n]
        };
        drop(bit_of);
        drop(twice);

        // Pass 2: the kept events, grouped by client, with their local time and provider slot.
        let mut counts = vec![0usize; clients.ids.len()];
        for (&c, _) in client_of.iter().zip(&keep).filter(|(_, k)| **k) {
            counts[c as usize] += 1;
        }
        let mut providers: Slots<'_, ProviderId> = Slots::new();
        let mut grouped: Vec<Vec<Option<Row<'_>>>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
        for ((r, &c), _) in reports.iter().zip(&client_of).zip(&keep).filter(|(_, k)| **k) {
            grouped[c as usize].push(Some(Row {
                report: r,
                report_id: Some(r.report_id.clone()),
                instant: r.finalized_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
                finalized_at: r.finalized_at,
                local: self.calendar.local(r.finalized_at),
                provider: providers.slot(&r.provider_id),
                revision: r.revision,
                modality: r.modality,
                body_regions: r.body_regions,
                priority: r.priority,
                status: r.status,
            }));
        }
        drop(client_of);
        drop(keep);

        // What does not depend on the client: provider rules by day, profiles and overrides by slot.
        let history = catalog.provider_rules();
        let rules_by_day = ByDay::new(self, |d| history.select(d, self.rules_as_of));
        let mut overrides = OverrideTable { tables: Vec::new() };
        for v in rules_by_day.days.iter().flatten() {
            let rules: &ProviderRules = &v.rules;
            if !rules.overrides.is_empty() && !overrides.tables.iter().any(|(p, _)| std::ptr::eq(*p, rules)) {
                let by_slot = providers.ids.iter().map(|id| rules.overrides.get(*id)).collect();
                overrides.tables.push((rules, by_slot));
            }
        }
        let lookup = ProviderLookup {
            versions: providers.ids.iter().map(|id| catalog.provider(id)).collect(),
            ids: providers.ids,
            history,
            rules_by_day,
            overrides,
        };

        // Clients in id order: those with rules, and those with events but none.
        let mut order: Vec<(&ClientId, Option<u32>)> =
            catalog.clients_with_rules().into_iter().map(|id| (id, clients.get(id.as_str()))).collect();
        for (slot, id) in clients.ids.iter().enumerate() {
            if catalog.client_rules(id).is_none() {
                order.push((id, Some(slot as u32)));
            }
        }
        order.sort_by(|a, b| a.0.cmp(b.0));

        let mut out = Output {
            held: Vec::new(),
            priced: Vec::with_capacity(n),
            invoices: Vec::new(),
            payouts: vec![(0, Decimal::ZERO); lookup.ids.len()],
            versions: Vec::new(),
            cogs_memo: CogsMemo::default(),
        };
        let mut resolved = Vec::new();
        let mut keys = Vec::new();
        let mut no_rows = Vec::new();
        for (client_id, slot) in order {
            let rows = match slot {
                Some(s) => &mut grouped[s as usize],
                None => &mut no_rows,
            };
            let client = ClientContext::new(self, catalog, client_id);
            // Billing order: (finalized_at, report_id), sorting keys rather than the rows. The
            // rows are resolved in that order, so what follows reads them sequentially.
            keys.clear();
            keys.extend(rows.iter().enumerate().filter_map(|(i, r)| Some((r.as_ref()?.instant, i as u32))));
            keys.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| {
                    let id = |k: &(i64, u32)| rows[k.1 as usize].as_ref().and_then(|r| r.report_id.as_ref());
                    id(a).cmp(&id(b))
                })
            });
            resolved.clear();
            for row in keys.iter().filter_map(|k| rows[k.1 as usize].take()) {
                let found = self.resolve_row(&row, &client, &lookup);
                match found {
                    Ok((profile, rules)) => resolved.push(Resolved { row, profile, rules }),
                    Err(reason) => out.held.push(held_report(row.report, reason)),
                }
            }
            rows.clear();
            rows.shrink_to_fit();
            self.price_client_rows(&client, &mut resolved, &lookup.ids, &mut out);
        }
        out.held.sort_by(|a, b| a.report_id.cmp(&b.report_id));

        let mut paid: Vec<(&ProviderId, (u32, Decimal))> =
            lookup.ids.iter().copied().zip(out.payouts).filter(|(_, (count, _))| *count > 0).collect();
        paid.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.versions.sort_unstable();
        Ok(PeriodPricing {
            period: self.period,
            rules_as_of: self.rules_as_of,
            reports: out.priced,
            held: out.held,
            invoices: out.invoices,
            payouts: paid
                .into_iter()
                .map(|(id, (reports, gross))| ProviderPayoutDraft { provider_id: id.clone(), reports, gross })
                .collect(),
            provider_rule_versions: out.versions,
        })
    }

    /// [`PricingRun::resolve`] for a gathered row, with the catalog lookups cached.
    fn resolve_row<'a>(
        &self,
        row: &Row<'a>,
        client: &ClientContext<'a>,
        providers: &ProviderLookup<'a>,
    ) -> Result<(&'a ProviderProfile, Option<ResolvedRules<'a>>), HoldReason> {
        let date = row.local.date();
        client.profile.get(date, |d| client.versions.and_then(|v| v.in_force(d))).ok_or(HoldReason::UnknownClient)?;
        let slot = row.provider as usize;
        let profile = providers.versions[slot].and_then(|v| v.in_force(date)).ok_or(HoldReason::UnknownProvider)?;
        if row.status == ReportStatus::Cancelled {
            return Ok((profile, None));
        }
        let provider_rules = providers
            .rules_by_day
            .get(date, |d| providers.history.select(d, self.rules_as_of))
            .ok_or(HoldReason::NoProviderRule)?;
        let client_rules = client
            .rules
            .get(date, |d| client.history.and_then(|h| h.select(d, self.rules_as_of)))
            .ok_or(HoldReason::NoClientRule)?;
        if client_rules.rules.prices(row.modality).is_none() {
            return Err(HoldReason::NoUnitPrice { modality: row.modality });
        }
        let overrides = providers.overrides.get(&provider_rules.rules, row.provider, providers.ids[slot]);
        Ok((profile, Some(ResolvedRules { provider: provider_rules, client: client_rules, overrides })))
    }

    /// Prices one client's resolved rows: COGS of each, then the invoice over its billable ones.
    fn price_client_rows<'a>(
        &self,
        client: &ClientContext<'a>,
        resolved: &mut Vec<Resolved<'a>>,
        provider_ids: &[&ProviderId],
        out: &mut Output,
    ) {
        let Some(contract) = client.contract else {
            // No rules by the end of the period: final reports were held already, cancelled
            // ones (which need no rules) have no contract currency to be stated in.
            out.held.extend(resolved.iter().map(|r| held_report(r.row.report, HoldReason::NoClientRule)));
            return;
        };
        // A report priced by rules in another currency than the contract cannot share its invoice.
        resolved.retain(|r| match r.rules {
            Some(rules) if rules.client.rules.currency != contract.rules.currency => {
                let reason = HoldReason::CurrencyChanged {
                    report_rules: rules.client.rules.currency,
                    contract: contract.rules.currency,
                };
                out.held.push(held_report(r.row.report, reason));
                false
            }
            _ => true,
        });
        let studies: Vec<Study<'_>> = resolved
            .iter()
            .filter_map(|r| {
                let rules = r.rules?;
                Some(Study {
                    modality: r.row.modality,
                    body_regions: r.row.body_regions,
                    priority: r.row.priority,
                    rules: rules.client,
                })
            })
            .collect();
        let (draft, study_revenue) = price_client_period(client.id, contract, &studies);
        let currency = draft.currency;
        // A contract with a monthly fee or minimum bills even a month without studies.
        let standing_charge =
            client.in_force_at_end.is_some() && !matches!(contract.rules.contract, Contract::PerStudy);
        if !studies.is_empty() || standing_charge {
            out.invoices.push(draft);
        }

        let mut study_revenue = study_revenue.lines.into_iter().zip(study_revenue.shares);
        for r in resolved.iter_mut() {
            let row = &mut r.row;
            let (cogs, cogs_rule_version, (study_line, share), revenue_rule_version) = match r.rules {
                Some(rules) => {
                    let provider_rules: &ProviderRules = &rules.provider.rules;
                    let cogs = match rules.overrides.and_then(|o| o[row.modality.index()]) {
                        Some(base) => {
                            cogs_from_base(base, row.body_regions, row.priority, row.local, r.profile, provider_rules).0
                        }
                        None => out.cogs_memo.cogs(provider_rules, row, r.profile),
                    };
                    let revenue = study_revenue.next().expect("one revenue per billable study");
                    (cogs, Some(rules.provider.version), revenue, Some(rules.client.version))
                }
                None => (Decimal::ZERO, None, (Decimal::ZERO, Decimal::ZERO), None),
            };
            if let Some(v) = cogs_rule_version
                && !out.versions.contains(&v)
            {
                out.versions.push(v);
            }
            if row.status == ReportStatus::Final {
                let paid = &mut out.payouts[row.provider as usize];
                paid.0 += 1;
                paid.1 += cogs;
            }
            let report_id = row.report_id.take().unwrap_or_else(|| row.report.report_id.clone());
            out.priced.push(PricedReport {
                report_id,
                revision: row.revision,
                client_id: client.id.clone(),
                provider_id: provider_ids[row.provider as usize].clone(),
                modality: row.modality,
                grade: r.profile.grade,
                status: row.status,
                finalized_at: row.finalized_at,
                local_date: row.local.date(),
                cogs,
                cogs_rule_version,
                revenue: Money::new(study_line + share, currency),
                study_line,
                revenue_rule_version,
            });
        }
    }
}

/// What the month's pricing collects.
struct Output {
    held: Vec<HeldReport>,
    priced: Vec<PricedReport>,
    invoices: Vec<ClientInvoiceDraft>,
    /// (final reports, gross) by provider slot.
    payouts: Vec<(u32, Decimal)>,
    /// Provider rule versions used, distinct.
    versions: Vec<u32>,
    cogs_memo: CogsMemo,
}

/// COGS amounts at a rule version's general base fees (no provider override), by everything
/// they depend on: each distinct amount is computed once, exactly as for a single report.
#[derive(Default)]
struct CogsMemo(Memo<ProviderRules>);

/// Seniority bands up to which a rule version's amounts are memoized.
const MEMO_BANDS: usize = 16;
const REGIONS: usize = MAX_BODY_REGIONS as usize;

impl CogsMemo {
    fn cogs(&mut self, rules: &ProviderRules, row: &Row<'_>, profile: &ProviderProfile) -> Decimal {
        let modality = row.modality.index();
        let compute = || {
            let base = rules.base_fee[modality];
            cogs_from_base(base, row.body_regions, row.priority, row.local, profile, rules).0
        };
        let bands = rules.seniority.len();
        if bands > MEMO_BANDS {
            return compute();
        }
        let size = Modality::ALL.len() * REGIONS * Grade::ALL.len() * bands * Priority::ALL.len() * 2;
        // What `cogs_from_base` reads: the regions through their clamped factor, the night
        // window through the local time, the seniority band through the years of practice.
        let regions = usize::from(row.body_regions.clamp(1, MAX_BODY_REGIONS)) - 1;
        let night = rules.is_night(row.local.time());
        let years = profile.years_of_practice(row.local.date());
        let band = rules.seniority.partition_point(|b| b.min_years <= years).saturating_sub(1);
        let index = ((((modality * REGIONS + regions) * Grade::ALL.len() + profile.grade.index()) * bands + band)
            * Priority::ALL.len()
            + row.priority.index())
            * 2
            + usize::from(night);
        self.0.get_or(rules, size, index, compute)
    }
}

/// A client's catalog entries, looked up once.
struct ClientContext<'a> {
    id: &'a ClientId,
    versions: Option<&'a Versions<ClientProfile>>,
    history: Option<&'a RuleHistory<ClientRules>>,
    profile: ByDay<Option<&'a ClientProfile>>,
    rules: ByDay<Option<&'a RuleVersion<ClientRules>>>,
    /// The rules in force on the period's last day, which set the contract.
    contract: Option<&'a RuleVersion<ClientRules>>,
    in_force_at_end: Option<&'a ClientProfile>,
}

impl<'a> ClientContext<'a> {
    fn new(run: &PricingRun, catalog: &'a Catalog, id: &'a ClientId) -> Self {
        let versions = catalog.client(id);
        let history = catalog.client_rules(id);
        let last_day = run.period.last_day();
        Self {
            id,
            versions,
            history,
            profile: ByDay::new(run, |d| versions.and_then(|v| v.in_force(d))),
            rules: ByDay::new(run, |d| history.and_then(|h| h.select(d, run.rules_as_of))),
            contract: history.and_then(|h| h.select(last_day, run.rules_as_of)),
            in_force_at_end: versions.and_then(|v| v.in_force(last_day)),
        }
    }
}
