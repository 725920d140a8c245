//! Prices reports as they arrive and tells the ledger what became of each (spec §6): priced
//! (its COGS and its study line at every tier — the ledger's live book places it in the month),
//! held with its reason, or superseded by a higher revision (nothing to say: that revision's own
//! event speaks). The work per report is bounded: one report is read and priced, never its month.
//!
//! Each fact carries its client-month's contract, and for every period it prices, pricing also
//! states the contract of every client with a standing charge (retainer, minimum), so a month
//! without reports still bills it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::Utc;
use radfin_bus::{Bus, Outgoing};
use radfin_db::held::{HeldFilter, HeldStatus, NewHold};
use radfin_db::{Pool, StorageError};
use radfin_domain::live::{FactKind, LiveFact, StudyFact, Terms};
use radfin_domain::rules::Contract;
use radfin_domain::{BusinessCalendar, ClientId, Currency, Period, PricingRun, ProviderId, ReportEvent, ReportId};
use tokio::sync::Mutex;

use crate::reference::{Reference, ReferenceCache};

/// A report revision to price.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub period: Period,
    pub report_id: ReportId,
    pub revision: u32,
}

/// A report event that names a revision the store does not have: ingest stores a report before
/// publishing it, so this is never a matter of waiting.
#[derive(Debug, thiserror::Error)]
#[error("report {report_id} revision {revision} is not stored (highest stored: {stored:?})")]
pub struct NotStored {
    pub report_id: ReportId,
    pub revision: u32,
    pub stored: Option<u32>,
}

pub struct Pricer {
    pub pool: Pool,
    pub bus: Bus,
    pub calendar: BusinessCalendar,
    pub reference: std::sync::Arc<ReferenceCache>,
    /// Periods whose standing contracts were stated, with the reference data they were stated
    /// from (stated again when it changes).
    pub stated: Mutex<HashMap<Period, chrono::DateTime<Utc>>>,
}

/// How many of each outcome a settle produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub priced: usize,
    pub held: usize,
    pub superseded: usize,
    pub contracts: usize,
}

impl Pricer {
    pub fn new(pool: Pool, bus: Bus, calendar: BusinessCalendar, reference: std::sync::Arc<ReferenceCache>) -> Self {
        Self { pool, bus, calendar, reference, stated: Mutex::new(HashMap::new()) }
    }

    /// Prices `targets` and records the result: facts are published (awaiting the broker's
    /// acks), new holds and releases are written. Returns once everything is durable, so the
    /// caller may then acknowledge the events it consumed.
    pub async fn settle(&self, targets: &[Target]) -> anyhow::Result<Settled> {
        let reference = self.reference.get().await?;
        let mut settled = Settled::default();
        let ids: Vec<&str> =
            targets.iter().map(|t| t.report_id.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
        let mut conn = self.pool.get().await.map_err(StorageError::from)?;
        let latest: HashMap<ReportId, ReportEvent> =
            radfin_db::timed("latest_reports", radfin_db::reports::latest_of(&mut conn, &ids))
                .await?
                .into_iter()
                .map(|e| (e.report_id.clone(), e))
                .collect();
        // The current revision of each target's report, once.
        let mut current: BTreeMap<(Period, ClientId), Vec<ReportEvent>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for t in targets {
            let stored = latest.get(&t.report_id);
            match stored {
                Some(e) if e.revision > t.revision => settled.superseded += 1,
                Some(e) if e.revision == t.revision => {
                    if seen.insert(&e.report_id) {
                        current
                            .entry((self.calendar.period_of(e.finalized_at), e.client_id.clone()))
                            .or_default()
                            .push(e.clone());
                    }
                }
                _ => {
                    return Err(NotStored {
                        report_id: t.report_id.clone(),
                        revision: t.revision,
                        stored: stored.map(|e| e.revision),
                    }
                    .into());
                }
            }
        }
        let periods: BTreeSet<Period> = current.keys().map(|(p, _)| *p).collect();
        let mut runs = HashMap::new();
        for period in &periods {
            runs.insert(*period, radfin_db::runs::live_run(&mut conn, *period).await?);
        }
        let mut currently_held: HashMap<(ReportId, u32), HeldStatus> = HashMap::new();
        for period in &periods {
            let filter = HeldFilter { period: Some(*period), ..HeldFilter::default() };
            for h in radfin_db::held::current(&mut conn, &filter).await? {
                currently_held.insert((h.report_id, h.revision), h.status);
            }
        }
        drop(conn);

        let now = Utc::now();
        let mut facts = Vec::new();
        let mut holds = Vec::new();
        let mut releases = Vec::new();
        for ((period, client_id), events) in &current {
            let run = PricingRun { calendar: self.calendar, period: *period, rules_as_of: now };
            let terms = self.terms(&run, &reference, client_id);
            let run_id = u64::try_from(runs[period]).unwrap_or_default();
            for e in events {
                let fact = |kind| LiveFact {
                    period: *period,
                    client_id: client_id.clone(),
                    run_id,
                    priced_at: reference.loaded_at,
                    terms: terms.clone(),
                    kind,
                };
                let held_as = currently_held.get(&(e.report_id.clone(), e.revision)).copied();
                match self.study(&run, &reference, terms.as_ref(), e) {
                    Ok(study) => {
                        facts.push(fact(FactKind::Priced(study)));
                        if held_as.is_some() {
                            releases.push((e.report_id.clone(), e.revision));
                        }
                        settled.priced += 1;
                    }
                    Err((status, reason)) => {
                        if held_as != Some(status) {
                            holds.push(NewHold {
                                report_id: e.report_id.clone(),
                                revision: e.revision,
                                client_id: e.client_id.clone(),
                                provider_id: e.provider_id.clone(),
                                period: *period,
                                status,
                                reason: reason.clone(),
                            });
                        }
                        let reason = format!("{}: {reason}", status.as_str());
                        facts.push(fact(FactKind::Held {
                            report_id: e.report_id.clone(),
                            revision: e.revision,
                            reason,
                        }));
                        settled.held += 1;
                    }
                }
            }
        }
        let stating = self.standing_contracts(&reference, &periods, &runs, &mut facts).await;
        settled.contracts = facts.iter().filter(|f| matches!(f.kind, FactKind::Contract)).count();

        let outgoing: Vec<Outgoing<radfin_proto::pricing::v1::LiveFact>> = facts
            .iter()
            .map(|f| Outgoing {
                subject: self.bus.names().priced_subject(f.period),
                msg_id: fact_msg_id(f),
                message: radfin_proto::pricing::v1::LiveFact::from(f),
            })
            .collect();
        self.bus.publish_all(&outgoing).await?;
        // Only once published: a failed batch states them again when it is redelivered.
        self.stated.lock().await.extend(stating.into_iter().map(|p| (p, reference.loaded_at)));
        if !holds.is_empty() || !releases.is_empty() {
            let mut conn = self.pool.get().await.map_err(StorageError::from)?;
            radfin_db::timed("write_holds", async {
                radfin_db::held::release(&mut conn, &releases).await?;
                radfin_db::held::hold(&mut conn, &holds).await
            })
            .await?;
        }
        Ok(settled)
    }

    /// The client-month's contract with its fallback rate (the rate of the period's last day).
    fn terms(&self, run: &PricingRun, reference: &Reference, client_id: &ClientId) -> Option<Terms> {
        let mut terms = run.terms(&reference.catalog, client_id)?;
        if terms.currency != Currency::INR {
            terms.fallback_rate = reference.fx.rate_on(terms.currency, run.period.last_day()).ok().cloned();
        }
        Some(terms)
    }

    /// One report priced for the live view, or the hold it is put under.
    fn study(
        &self,
        run: &PricingRun,
        reference: &Reference,
        terms: Option<&Terms>,
        e: &ReportEvent,
    ) -> Result<StudyFact, (HeldStatus, String)> {
        let quote = run
            .quote(&reference.catalog, terms, e)
            .map_err(|reason| (HeldStatus::of_reason(&reason), reason.to_string()))?;
        let fx = match terms {
            Some(t) if t.currency != Currency::INR && quote.card.is_some() => Some(
                reference
                    .fx
                    .rate_on(t.currency, quote.local_date)
                    .map_err(|err| (HeldStatus::AwaitingFx, err.to_string()))?
                    .clone(),
            ),
            _ => None,
        };
        Ok(StudyFact {
            report_id: e.report_id.clone(),
            revision: e.revision,
            provider_id: e.provider_id.clone(),
            modality: e.modality,
            grade: quote.grade,
            status: e.status,
            finalized_at: e.finalized_at,
            local_date: quote.local_date,
            cogs: quote.cogs,
            cogs_rule_version: quote.cogs_rule_version,
            card: quote.card,
            fx,
        })
    }

    /// States the contract of every client with a standing charge for each period not stated
    /// yet with this reference data. Returns the periods stated.
    async fn standing_contracts(
        &self,
        reference: &Reference,
        periods: &BTreeSet<Period>,
        runs: &HashMap<Period, i64>,
        facts: &mut Vec<LiveFact>,
    ) -> Vec<Period> {
        let stated = self.stated.lock().await;
        let mut stating = Vec::new();
        for period in periods {
            if stated.get(period) == Some(&reference.loaded_at) {
                continue;
            }
            let run = PricingRun { calendar: self.calendar, period: *period, rules_as_of: Utc::now() };
            for client_id in reference.catalog.clients_with_rules() {
                let Some(terms) = self.terms(&run, reference, client_id) else { continue };
                if !terms.standing || matches!(terms.contract, Contract::PerStudy) {
                    continue;
                }
                facts.push(LiveFact {
                    period: *period,
                    client_id: client_id.clone(),
                    run_id: u64::try_from(runs[period]).unwrap_or_default(),
                    priced_at: reference.loaded_at,
                    terms: Some(terms),
                    kind: FactKind::Contract,
                });
            }
            stating.push(*period);
        }
        stating
    }
}

/// `Nats-Msg-Id` of a fact: the same fact published twice is stored once.
fn fact_msg_id(f: &LiveFact) -> String {
    let at = f.priced_at.timestamp_nanos_opt().unwrap_or_default();
    match f.report() {
        Some((id, revision)) => format!("live:{id}:{revision}:{at}"),
        None => format!("contract:{}:{}:{at}", f.client_id, f.period),
    }
}
