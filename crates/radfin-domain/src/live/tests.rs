use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;

use super::*;
use crate::catalog::Catalog;
use crate::fx::{FxRate, FxTable};
use crate::ids::ClientId;
use crate::party::{ClientProfile, ProviderProfile};
use crate::period::BusinessCalendar;
use crate::pricing::{PricingRun, Quote};
use crate::report::{Priority, ReportEvent};
use crate::rules::tests::SPEC_PROVIDER_RULES;
use crate::rules::{ClientRules, ProviderRules, RuleVersion};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const PERIOD: &str = "2026-02";

fn recorded() -> DateTime<Utc> {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

/// Twelve clients: every contract type × tier mode × tier scope, half of them billing in USD;
/// small tiers so a few dozen reports cross them. HOSP-00 gets a second rule version from the
/// 15th with other tiers, so one month mixes cards.
fn catalog() -> Catalog {
    let mut c = Catalog::default();
    for (i, grade) in [Grade::Junior, Grade::Senior, Grade::Consultant].into_iter().enumerate() {
        c.add_provider(ProviderProfile {
            provider_id: ProviderId::parse(&format!("RAD-{i}")).unwrap(),
            name: format!("Dr {i}"),
            grade,
            practicing_since: d("2015-06-01"),
            pan: None,
            effective_from: d("2020-01-01"),
        });
    }
    c.add_provider_rules(RuleVersion {
        version: 1,
        effective_from: d("2020-01-01"),
        recorded_at: recorded(),
        rules: Arc::new(ProviderRules::parse(SPEC_PROVIDER_RULES).unwrap()),
    });
    for i in 0..12 {
        let id = format!("HOSP-{i:02}");
        let currency = if i % 2 == 0 { Currency::INR } else { Currency::USD };
        c.add_client(ClientProfile {
            client_id: ClientId::parse(&id).unwrap(),
            name: id.clone(),
            country: "IN".into(),
            state_code: Some("29".into()),
            gstin: None,
            currency,
            effective_from: d("2020-01-01"),
        });
        let contract = match i % 3 {
            0 => json!({"type": "PER_STUDY"}),
            1 => json!({"type": "MINIMUM_COMMITMENT", "monthly_minimum": "2500.00"}),
            _ => json!({"type": "RETAINER", "monthly_fee": "700.00", "included_studies": 3}),
        };
        let doc = |tiers: serde_json::Value| {
            json!({
                "client_id": id,
                "currency": currency.code(),
                "contract": contract,
                "tier_mode": if (i / 3) % 2 == 0 { "GRADUATED" } else { "VOLUME" },
                "tier_scope": if (i / 6) == 0 { "ALL_MODALITIES" } else { "PER_MODALITY" },
                "tiers": tiers,
                "unit_prices": {"XRAY": ["50.00", "40.00", "30.00"], "CT": ["210.00", "180.55", "150.10"],
                                "MRI": ["333.33", "300.01", "250.00"]},
                "additional_region_pct": "12.5",
                "uplift_pct": {"STAT": "20", "URGENT": "7.5"},
                "tax": {"treatment": "TAXABLE"}
            })
            .to_string()
        };
        let version = |v, from: &str, tiers| RuleVersion {
            version: v,
            effective_from: d(from),
            recorded_at: recorded(),
            rules: Arc::new(ClientRules::parse(&doc(tiers)).unwrap()),
        };
        c.add_client_rules(version(1, "2020-01-01", json!([{"up_to": 3}, {"up_to": 7}, {"up_to": null}])));
        if i == 0 {
            c.add_client_rules(version(2, "2026-02-15", json!([{"up_to": 2}, {"up_to": 5}, {"up_to": null}])));
        }
    }
    c
}

fn fx() -> FxTable {
    let mut t = FxTable::default();
    let mut day = d("2026-01-20");
    let mut rate = dec!(83.100000);
    while day <= d("2026-03-01") {
        t.add(FxRate { rate_date: day, currency: Currency::USD, inr_per_unit: rate, source: "ECB".into() }).unwrap();
        rate += dec!(0.013717);
        day += Duration::days(1);
    }
    t
}

fn run() -> PricingRun {
    PricingRun { calendar: BusinessCalendar::default(), period: PERIOD.parse().unwrap(), rules_as_of: Utc::now() }
}

fn terms_of(run: &PricingRun, cat: &Catalog, fx: &FxTable, client: &ClientId) -> Option<Terms> {
    let mut terms = run.terms(cat, client)?;
    if terms.currency != Currency::INR {
        terms.fallback_rate = fx.rate_on(terms.currency, run.period.last_day()).ok().cloned();
    }
    Some(terms)
}

/// What pricing and the ledger do with one arriving event, reduced to the domain: find the
/// report's book, quote it, upsert or remove.
struct Pipeline {
    run: PricingRun,
    catalog: Catalog,
    fx: FxTable,
    books: BTreeMap<ClientId, LiveBook>,
    /// The highest revision seen per report and the client it lives in.
    current: BTreeMap<ReportId, (u32, ClientId)>,
    ledger: Vec<(ClientId, Posting)>,
}

impl Pipeline {
    fn new() -> Self {
        let (run, catalog, fx) = (run(), catalog(), fx());
        let mut books = BTreeMap::new();
        for client in catalog.clients_with_rules() {
            let mut book = LiveBook::new();
            book.set_terms(terms_of(&run, &catalog, &fx, client).unwrap());
            books.insert(client.clone(), book);
        }
        Self { run, catalog, fx, books, current: BTreeMap::new(), ledger: Vec::new() }
    }

    fn arrive(&mut self, e: &ReportEvent) {
        if let Some((rev, _)) = self.current.get(&e.report_id)
            && *rev >= e.revision
        {
            return;
        }
        if let Some((_, old_client)) = self.current.insert(e.report_id.clone(), (e.revision, e.client_id.clone()))
            && old_client != e.client_id
        {
            self.books.get_mut(&old_client).unwrap().remove(&e.report_id, Reason::Moved);
        }
        let book = self.books.entry(e.client_id.clone()).or_default();
        let quote: Result<Quote, _> = self.run.quote(&self.catalog, book.terms(), e);
        match quote {
            Ok(q) => {
                let fx = match book.terms() {
                    Some(t) if t.currency != Currency::INR => {
                        Some(self.fx.rate_on(t.currency, q.local_date).unwrap().clone())
                    }
                    _ => None,
                };
                book.upsert(StudyFact {
                    report_id: e.report_id.clone(),
                    revision: e.revision,
                    provider_id: e.provider_id.clone(),
                    modality: e.modality,
                    grade: q.grade,
                    status: e.status,
                    finalized_at: e.finalized_at,
                    local_date: q.local_date,
                    cogs: q.cogs,
                    cogs_rule_version: q.cogs_rule_version,
                    card: q.card,
                    fx,
                });
            }
            Err(_) => book.remove(&e.report_id, Reason::Held),
        }
    }

    fn settle(&mut self) {
        for (client, book) in &mut self.books {
            for p in book.settle().unwrap() {
                self.ledger.push((client.clone(), p));
            }
        }
    }
}

/// The engine's view of the final stored month, compared with the ledger the books wrote.
fn check(p: &Pipeline, stored: &[ReportEvent]) -> Result<(), TestCaseError> {
    let priced = p.run.price(&p.catalog, stored).unwrap();
    // Per report and side: entries sum to the current study line / COGS.
    let mut per_line: BTreeMap<(ClientId, LineRef), (Decimal, Decimal)> = BTreeMap::new();
    for (client, posting) in &p.ledger {
        let e = per_line.entry((client.clone(), posting.line.clone())).or_default();
        e.0 += posting.part.amount;
        e.1 += posting.part.amount_inr;
    }
    let get = |client: &ClientId, line: LineRef| per_line.get(&(client.clone(), line)).copied().unwrap_or_default();
    for r in &priced.reports {
        let (rev, rev_inr) = get(&r.client_id, LineRef::Study(r.report_id.clone(), Side::Revenue));
        prop_assert_eq!(rev, r.study_line, "study line of {}", r.report_id);
        let expected_inr =
            p.fx.to_inr(crate::money::Money::new(r.study_line, r.revenue.currency), r.local_date).unwrap();
        prop_assert_eq!(rev_inr, expected_inr.amount_inr, "study line INR of {}", r.report_id);
        let (cogs, _) = get(&r.client_id, LineRef::Study(r.report_id.clone(), Side::Cogs));
        prop_assert_eq!(cogs, r.cogs, "cogs of {}", r.report_id);
    }
    // Reports not priced (held, superseded elsewhere) have nothing booked anywhere else.
    let priced_ids: std::collections::BTreeSet<(&ClientId, &ReportId)> =
        priced.reports.iter().map(|r| (&r.client_id, &r.report_id)).collect();
    for ((client, line), (amount, inr)) in &per_line {
        if let LineRef::Study(id, _) = line
            && !priced_ids.contains(&(client, id))
        {
            prop_assert!(amount.is_zero() && inr.is_zero(), "{} left booked in {}", id, client);
        }
    }
    // Per client: the month's revenue equals the invoice's taxable value, in contract currency and
    // in INR as §6 defines it.
    for inv in &priced.invoices {
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
        let booked: Decimal = per_line
            .iter()
            .filter(|((c, l), _)| *c == inv.client_id && l.side() == Side::Revenue)
            .map(|(_, v)| v.0)
            .sum();
        prop_assert_eq!(booked, inv.taxable_value, "revenue of {}", inv.client_id);
        let (fee, fee_inr) = [ClientLine::RetainerFee, ClientLine::MinimumShortfall]
            .into_iter()
            .map(|k| get(&inv.client_id, LineRef::Client(k)))
            .fold((Decimal::ZERO, Decimal::ZERO), |a, b| (a.0 + b.0, a.1 + b.1));
        prop_assert_eq!(fee, client_level, "client-level line of {}", inv.client_id);
        let latest = priced
            .reports
            .iter()
            .filter(|r| r.client_id == inv.client_id && r.status == ReportStatus::Final)
            .max_by(|a, b| (a.finalized_at, &a.report_id).cmp(&(b.finalized_at, &b.report_id)));
        let date = latest.map_or(p.run.period.last_day(), |r| r.local_date);
        let expected = p.fx.to_inr(crate::money::Money::new(client_level, inv.currency), date).unwrap();
        prop_assert_eq!(fee_inr, expected.amount_inr, "client-level INR of {}", inv.client_id);
    }
    // Clients without an invoice have nothing booked.
    let invoiced: std::collections::BTreeSet<&ClientId> = priced.invoices.iter().map(|i| &i.client_id).collect();
    for ((client, _), (amount, inr)) in &per_line {
        if !invoiced.contains(client) {
            prop_assert!(amount.is_zero() && inr.is_zero(), "{} has entries but no invoice", client);
        }
    }
    Ok(())
}

fn at(period_second: i64) -> DateTime<Utc> {
    // 2026-02 in Asia/Kolkata: 2026-01-31T18:30Z .. 2026-02-28T18:30Z.
    "2026-01-31T18:30:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(period_second)
}

const MONTH_SECONDS: i64 = 28 * 86_400;

prop_compose! {
    fn arb_event(n_reports: usize)(
        report in 0..n_reports,
        revision in 1u32..4,
        client in 0usize..12,
        provider in 0usize..3,
        modality in prop::sample::select(vec![Modality::Xray, Modality::Ct, Modality::Mri]),
        regions in 1u8..4,
        priority in prop::sample::select(Priority::ALL.to_vec()),
        second in 0..MONTH_SECONDS,
        cancelled in prop::bool::weighted(0.1),
    ) -> ReportEvent {
        ReportEvent {
            report_id: ReportId::parse(&format!("R{report:03}")).unwrap(),
            revision,
            client_id: ClientId::parse(&format!("HOSP-{client:02}")).unwrap(),
            provider_id: ProviderId::parse(&format!("RAD-{provider}")).unwrap(),
            modality,
            body_regions: regions,
            priority,
            finalized_at: at(second),
            status: if cancelled { ReportStatus::Cancelled } else { ReportStatus::Final },
        }
    }
}

/// Events with unique (report, revision); arrival order, repeats and batch sizes at random.
fn arb_arrivals() -> impl Strategy<Value = (Vec<ReportEvent>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(arb_event(60), 1..160).prop_flat_map(|mut events| {
        let mut seen = std::collections::BTreeSet::new();
        events.retain(|e| seen.insert((e.report_id.clone(), e.revision)));
        let n = events.len();
        let order = prop::collection::vec(0..n, n..n * 2);
        let batches = prop::collection::vec(1usize..20, 1..40);
        (Just(events), order, batches)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever the order, repeats and batching, the ledger a book writes equals the engine's
    /// price of the stored month: per report, per client, in contract currency and in INR.
    #[test]
    fn the_live_view_equals_the_engine((events, order, batches) in arb_arrivals()) {
        let mut p = Pipeline::new();
        // Every event arrives at least once (in index order first, shuffled by `order` after).
        let mut arrivals: Vec<&ReportEvent> = order.iter().map(|&i| &events[i]).collect();
        arrivals.extend(events.iter());
        arrivals.rotate_left(order.len() / 2);
        let mut sizes = batches.iter().cycle();
        let mut i = 0;
        while i < arrivals.len() {
            let n = *sizes.next().unwrap();
            for e in &arrivals[i..(i + n).min(arrivals.len())] {
                p.arrive(e);
            }
            p.settle();
            i += n;
        }
        // The stored month: the highest revision of each report.
        let mut stored: BTreeMap<&ReportId, &ReportEvent> = BTreeMap::new();
        for e in &events {
            if stored.get(&e.report_id).is_none_or(|s| s.revision < e.revision) {
                stored.insert(&e.report_id, e);
            }
        }
        let stored: Vec<ReportEvent> = stored.into_values().cloned().collect();
        check(&p, &stored)?;
        // Booking never goes negative per line and bookings are non-negative.
        for book in p.books.values() {
            let t = book.totals();
            prop_assert!(t.revenue >= Decimal::ZERO && t.cogs_inr >= Decimal::ZERO);
        }
    }
}

#[test]
fn graduated_boundary_moves_one_study_per_tier() {
    let mut p = Pipeline::new();
    // HOSP-00: graduated, all modalities, INR, tiers 1-3 / 4-7 / 8+ (v1) until the 15th.
    let ev = |n: usize, second: i64| ReportEvent {
        report_id: ReportId::parse(&format!("G{n:02}")).unwrap(),
        revision: 1,
        client_id: ClientId::parse("HOSP-00").unwrap(),
        provider_id: ProviderId::parse("RAD-1").unwrap(),
        modality: Modality::Xray,
        body_regions: 1,
        priority: Priority::Routine,
        finalized_at: at(second),
        status: ReportStatus::Final,
    };
    for n in 0..8 {
        p.arrive(&ev(n, 1000 + n as i64 * 10));
    }
    p.settle();
    let before = p.ledger.len();
    // An earlier-dated arrival shifts every study by one: G02 (3rd → 4th) and G06 (7th → 8th)
    // change tier; nothing else is touched.
    p.arrive(&ev(99, 1));
    p.settle();
    let adjusted: Vec<(String, Decimal, Reason)> = p.ledger[before..]
        .iter()
        .filter(|(_, x)| x.line.side() == Side::Revenue)
        .filter_map(|(_, x)| match &x.line {
            LineRef::Study(id, _) => Some((id.to_string(), x.part.amount, x.reason)),
            LineRef::Client(_) => None,
        })
        .collect();
    assert_eq!(
        adjusted,
        vec![
            ("G02".into(), dec!(-10.00), Reason::Tier),
            ("G06".into(), dec!(-10.00), Reason::Tier),
            ("G99".into(), dec!(50.00), Reason::New),
        ]
    );
}
