//! Prices reports as they arrive and settles what happened to each: priced (published to the
//! bus for the ledger), held with its reason, or superseded by a higher revision.
//!
//! Revenue depends on the client's whole month, so a report is priced by pricing its client's
//! period as currently stored (the engine's `PricingRun::price`) in the period's live run, and
//! taking that report's share. Live revenue is provisional: the period's close prices it again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Utc;
use radfin_bus::{Bus, Outgoing};
use radfin_db::held::{HeldFilter, HeldStatus, NewHold};
use radfin_db::{Pool, StorageError};
use radfin_domain::{BusinessCalendar, ClientId, Period, PricingRun, ProviderId, ReportId};
use radfin_proto::PricedInRun;

use crate::reference::ReferenceCache;

/// A report revision to price.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub period: Period,
    pub report_id: ReportId,
    pub revision: u32,
}

/// What became of a target.
#[derive(Debug)]
pub enum Outcome {
    Priced(Box<PricedInRun>),
    Held {
        status: HeldStatus,
        reason: String,
    },
    /// A higher revision of the report is stored; it is priced when its own event arrives.
    Superseded,
}

pub struct Pricer {
    pub pool: Pool,
    pub bus: Bus,
    pub calendar: BusinessCalendar,
    pub reference: std::sync::Arc<ReferenceCache>,
}

/// How many of each outcome a settle produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub priced: usize,
    pub held: usize,
    pub superseded: usize,
}

impl Pricer {
    /// Prices `targets` and records the result: priced reports are published (awaiting the
    /// broker's acks), new holds and releases are written. Returns once everything is durable,
    /// so the caller may then acknowledge the events it consumed.
    pub async fn settle(&self, targets: &[Target]) -> anyhow::Result<Settled> {
        let outcomes = self.price(targets).await?;
        let mut settled = Settled::default();
        let periods: BTreeSet<Period> = targets.iter().map(|t| t.period).collect();
        let mut conn = self.pool.get().await?;
        let mut currently_held: HashMap<(ReportId, u32), HeldStatus> = HashMap::new();
        for period in &periods {
            let filter = HeldFilter { period: Some(*period), ..HeldFilter::default() };
            for h in radfin_db::held::current(&mut conn, &filter).await? {
                currently_held.insert((h.report_id, h.revision), h.status);
            }
        }
        drop(conn);

        let mut outgoing = Vec::new();
        let mut holds = Vec::new();
        let mut releases = Vec::new();
        for (target, outcome) in targets.iter().zip(outcomes) {
            let key = (target.report_id.clone(), target.revision);
            let held_as = currently_held.get(&key).copied();
            match outcome {
                Outcome::Priced(priced) => {
                    outgoing.push(Outgoing {
                        subject: self.bus.names().priced_subject(priced.period),
                        msg_id: radfin_bus::priced_msg_id(target.report_id.as_str(), target.revision, priced.run_id),
                        message: radfin_proto::pricing::v1::PricedReport::from(priced.as_ref()),
                    });
                    if held_as.is_some() {
                        releases.push(key);
                    }
                    settled.priced += 1;
                }
                Outcome::Held { status, reason } => {
                    if held_as != Some(status) {
                        holds.push(NewHold {
                            report_id: target.report_id.clone(),
                            revision: target.revision,
                            client_id: target.client_id.clone(),
                            provider_id: target.provider_id.clone(),
                            period: target.period,
                            status,
                            reason,
                        });
                    }
                    settled.held += 1;
                }
                Outcome::Superseded => {
                    if held_as.is_some() {
                        releases.push(key);
                    }
                    settled.superseded += 1;
                }
            }
        }
        self.bus.publish_all(&outgoing).await?;
        if !holds.is_empty() || !releases.is_empty() {
            let mut conn = self.pool.get().await?;
            radfin_db::held::release(&mut conn, &releases).await?;
            radfin_db::held::hold(&mut conn, &holds).await?;
        }
        Ok(settled)
    }

    /// Prices each target within its client's period as stored now.
    pub async fn price(&self, targets: &[Target]) -> anyhow::Result<Vec<Outcome>> {
        let reference = self.reference.get().await?;
        let mut groups: BTreeMap<(&ClientId, Period), Vec<usize>> = BTreeMap::new();
        for (i, t) in targets.iter().enumerate() {
            groups.entry((&t.client_id, t.period)).or_default().push(i);
        }
        let mut outcomes: Vec<Option<Outcome>> = targets.iter().map(|_| None).collect();
        let mut conn = self.pool.get().await?;
        for ((client_id, period), members) in groups {
            let reports = radfin_db::reports::current_of_client_period(&mut conn, client_id, period).await?;
            let run_id = live_run(&mut conn, period).await?;
            let run = PricingRun { calendar: self.calendar, period, rules_as_of: Utc::now() };
            let priced = run.price(&reference.catalog, &reports)?;
            let by_id: HashMap<&str, usize> =
                priced.reports.iter().enumerate().map(|(i, p)| (p.report_id.as_str(), i)).collect();
            let held: HashMap<&str, usize> =
                priced.held.iter().enumerate().map(|(i, h)| (h.report_id.as_str(), i)).collect();
            for i in members {
                let t = &targets[i];
                let outcome = if let Some(&p) = by_id.get(t.report_id.as_str()) {
                    let p = &priced.reports[p];
                    if p.revision != t.revision {
                        Outcome::Superseded
                    } else {
                        match reference.fx.to_inr(p.revenue, p.local_date) {
                            Ok(revenue_inr) => Outcome::Priced(Box::new(PricedInRun {
                                period,
                                run_id,
                                report: p.clone(),
                                revenue_inr,
                            })),
                            Err(e) => Outcome::Held { status: HeldStatus::AwaitingFx, reason: e.to_string() },
                        }
                    }
                } else if let Some(&h) = held.get(t.report_id.as_str()) {
                    let h = &priced.held[h];
                    if h.revision != t.revision {
                        Outcome::Superseded
                    } else {
                        Outcome::Held { status: HeldStatus::of_reason(&h.reason), reason: h.reason.to_string() }
                    }
                } else {
                    // Ingest stores a report before publishing it, so a report missing from its
                    // client's month has a higher revision that moved it to another client or
                    // period, where that revision is priced.
                    tracing::debug!(report_id = %t.report_id, revision = t.revision, "superseded by a revision elsewhere");
                    Outcome::Superseded
                };
                outcomes[i] = Some(outcome);
            }
        }
        Ok(outcomes.into_iter().map(|o| o.expect("every target belongs to a group")).collect())
    }
}

async fn live_run(conn: &mut radfin_db::AsyncPgConnection, period: Period) -> Result<u64, StorageError> {
    radfin_db::runs::live_run(conn, period).await.map(|id| u64::try_from(id).unwrap_or_default())
}
