use prost::Message as _;
use radfin_domain::{Grade, Modality, Priority, ReportStatus};
use rust_decimal_macros::dec;

use super::*;

fn now() -> DateTime<Utc> {
    "2026-02-10T12:00:00Z".parse().unwrap()
}

fn event() -> ReportEvent {
    ReportEvent {
        report_id: ReportId::parse("RPT-1").unwrap(),
        revision: 3,
        client_id: ClientId::parse("HOSP-001").unwrap(),
        provider_id: ProviderId::parse("RAD-007").unwrap(),
        modality: Modality::Mri,
        body_regions: 2,
        priority: Priority::Stat,
        finalized_at: "2026-01-31T20:00:00Z".parse().unwrap(),
        status: ReportStatus::Final,
    }
}

fn period() -> Period {
    "2026-02".parse().unwrap()
}

/// Through the wire format and back, as a peer would see it.
fn over_the_wire<M: prost::Message + Default>(msg: &M) -> M {
    M::decode(msg.encode_to_vec().as_slice()).unwrap()
}

fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors.fields().collect()
}

// --- enumerations ----------------------------------------------------------------------------

/// Every domain value maps to its own protobuf value and back; every protobuf value but
/// UNSPECIFIED is some domain value.
fn check_mirror<D, P>(all: &[D])
where
    D: Mirrored + Copy + PartialEq + std::fmt::Debug + std::fmt::Display,
    P: From<D> + Into<i32> + Copy + PartialEq + std::fmt::Debug,
    P: TryFrom<i32>,
{
    let mut seen = Vec::new();
    for &d in all {
        let p = P::from(d);
        let value: i32 = p.into();
        assert_ne!(value, 0, "{d} maps to UNSPECIFIED");
        assert!(!seen.contains(&value), "{d} shares value {value}");
        seen.push(value);
        assert_eq!(D::domain_name(value), d.to_string());
        assert_eq!(D::from_proto("f", value), Ok(d));
    }
    // Every protobuf value other than UNSPECIFIED is some domain value.
    let known = (0..=64).filter(|v| P::try_from(*v).is_ok()).count();
    assert_eq!(known, all.len() + 1);
}

#[test]
fn enum_names_follow_the_domain() {
    check_mirror::<Modality, common::Modality>(Modality::ALL);
    check_mirror::<Priority, common::Priority>(Priority::ALL);
    check_mirror::<ReportStatus, common::ReportStatus>(ReportStatus::ALL);
    check_mirror::<Grade, common::Grade>(Grade::ALL);

    // The protobuf names are the domain names with the enum's prefix (buf style).
    for &m in Modality::ALL {
        assert_eq!(common::Modality::from(m).as_str_name(), format!("MODALITY_{m}"));
    }
    for &p in Priority::ALL {
        assert_eq!(common::Priority::from(p).as_str_name(), format!("PRIORITY_{p}"));
    }
    for &s in ReportStatus::ALL {
        assert_eq!(common::ReportStatus::from(s).as_str_name(), format!("REPORT_STATUS_{s}"));
    }
    for &g in Grade::ALL {
        assert_eq!(common::Grade::from(g).as_str_name(), format!("GRADE_{g}"));
    }
}

#[test]
fn unspecified_and_unknown_values_are_no_domain_name() {
    assert_eq!(Modality::domain_name(0), "MODALITY_UNSPECIFIED");
    assert_eq!(Grade::domain_name(99), "unknown value 99");
    assert_eq!(Priority::domain_name(-1), "unknown value -1");
    let err = ReportStatus::from_proto("status", 0).unwrap_err();
    assert_eq!(err.field(), "status");
    assert!(err.to_string().contains("must be one of FINAL, CANCELLED, got \"REPORT_STATUS_UNSPECIFIED\""), "{err}");
}

// --- report events ---------------------------------------------------------------------------

#[test]
fn report_events_round_trip() {
    // Every modality, priority and status at least once.
    for (i, &modality) in Modality::ALL.iter().enumerate() {
        let mut e = event();
        e.modality = modality;
        e.priority = Priority::ALL[i % Priority::ALL.len()];
        e.status = ReportStatus::ALL[i % ReportStatus::ALL.len()];
        e.body_regions = u8::try_from(i + 1).unwrap();
        let msg = over_the_wire(&ingest::ReportEvent::from(&e));
        assert_eq!(report_from_proto(&msg, now()), Ok(e));
    }

    let msg = ingest::ReportEvent::from(&event());
    assert_eq!(msg.modality, common::Modality::Mri as i32);
    assert_eq!(msg.priority, common::Priority::Stat as i32);
    assert_eq!(msg.status, common::ReportStatus::Final as i32);
    assert_eq!(msg.finalized_at, "2026-01-31T20:00:00Z");
    assert_eq!(RawReport::from(&msg), RawReport::from(&event()));
}

#[test]
fn an_empty_message_names_every_field() {
    let err = report_from_proto(&ingest::ReportEvent::default(), now()).unwrap_err();
    assert_eq!(
        fields(&err),
        [
            "report_id",
            "revision",
            "client_id",
            "provider_id",
            "modality",
            "body_regions",
            "priority",
            "finalized_at",
            "status"
        ]
    );
}

#[test]
fn an_unspecified_or_unknown_enum_names_its_field() {
    let mut msg = ingest::ReportEvent::from(&event());
    msg.modality = common::Modality::Unspecified as i32;
    let err = report_from_proto(&msg, now()).unwrap_err();
    assert_eq!(fields(&err), ["modality"]);
    assert!(err.to_string().contains("MODALITY_UNSPECIFIED"), "{err}");

    // A value from a newer .proto than this build knows.
    let mut msg = ingest::ReportEvent::from(&event());
    msg.priority = 42;
    msg.status = -7;
    let err = report_from_proto(&msg, now()).unwrap_err();
    assert_eq!(fields(&err), ["priority", "status"]);
    assert!(err.to_string().contains("unknown value 42"), "{err}");
}

#[test]
fn the_domain_rules_apply_unchanged() {
    let mut msg = ingest::ReportEvent::from(&event());
    msg.body_regions = 11;
    msg.finalized_at = "2026-02-10T12:05:01Z".into();
    msg.report_id = "RPT 1".into();
    let err = report_from_proto(&msg, now()).unwrap_err();
    assert_eq!(fields(&err), ["report_id", "body_regions", "finalized_at"]);

    // An offset other than Z is accepted and normalized to UTC.
    let mut msg = ingest::ReportEvent::from(&event());
    msg.finalized_at = "2026-02-01T01:30:00+05:30".into();
    assert_eq!(report_from_proto(&msg, now()), Ok(event()));
}

#[test]
fn a_rejected_report_is_an_invalid_argument_naming_the_field() {
    let mut msg = ingest::ReportEvent::from(&event());
    msg.modality = 0;
    let status = to_status(&report_from_proto(&msg, now()).unwrap_err());
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("modality: "), "{status:?}");

    let status = tonic::Status::from(ConvertError::Missing { field: "cogs" });
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "cogs: is required");
}

// --- live facts ------------------------------------------------------------------------------

fn study() -> StudyFact {
    StudyFact {
        report_id: ReportId::parse("RPT-1").unwrap(),
        revision: 3,
        provider_id: ProviderId::parse("RAD-007").unwrap(),
        modality: Modality::PetCt,
        grade: Grade::Consultant,
        status: ReportStatus::Final,
        finalized_at: "2026-01-31T20:00:00.25Z".parse().unwrap(),
        local_date: "2026-02-01".parse().unwrap(),
        cogs: dec!(1134.00),
        cogs_rule_version: Some(4),
        card: Some(Card {
            rule_version: 2,
            tiers: vec![Some(100), Some(500), None].into(),
            amounts: vec![dec!(45.07), dec!(40.00), dec!(35.125)].into(),
        }),
        fx: Some(AppliedRate {
            inr_per_unit: dec!(83.123457),
            rate_date: "2026-01-30".parse().unwrap(),
            source: "ECB".into(),
        }),
    }
}

fn fact(kind: FactKind) -> LiveFact {
    LiveFact {
        period: period(),
        client_id: ClientId::parse("HOSP-001").unwrap(),
        run_id: 7,
        priced_at: "2026-02-10T12:00:00.123456Z".parse().unwrap(),
        terms: Some(Terms {
            currency: Currency::USD,
            contract: Contract::Retainer { monthly_fee: dec!(1500.00), included_studies: 40 },
            tier_mode: radfin_domain::rules::TierMode::Volume,
            tier_scope: radfin_domain::rules::TierScope::PerModality,
            rule_version: 2,
            standing: true,
            fallback_rate: Some(AppliedRate {
                inr_per_unit: dec!(84),
                rate_date: "2026-02-27".parse().unwrap(),
                source: "MANUAL".into(),
            }),
        }),
        kind,
    }
}

fn round_trip(f: &LiveFact) -> Result<LiveFact, ConvertError> {
    LiveFact::try_from(&over_the_wire(&pricing::LiveFact::from(f)))
}

#[test]
fn live_facts_round_trip_exactly() {
    for f in [
        fact(FactKind::Priced(study())),
        fact(FactKind::Priced(StudyFact { status: ReportStatus::Cancelled, card: None, cogs: dec!(0), ..study() })),
        fact(FactKind::Held {
            report_id: ReportId::parse("R-9").unwrap(),
            revision: 2,
            reason: "NO_RULE: none".into(),
        }),
        LiveFact { terms: None, ..fact(FactKind::Contract) },
    ] {
        assert_eq!(round_trip(&f).unwrap(), f);
    }
}

#[test]
fn a_bad_live_fact_names_its_field() {
    let good = pricing::LiveFact::from(&fact(FactKind::Priced(study())));
    type Spoil = fn(&mut pricing::LiveFact);
    let cases: [(&str, Spoil); 7] = [
        ("period", |m| m.period = "2026-13".into()),
        ("report_id", |m| m.report_id = "bad id".into()),
        ("revision", |m| m.revision = 0),
        ("study", |m| m.study = None),
        ("study.cogs", |m| m.study.as_mut().unwrap().cogs = "1.0e3".into()),
        ("study.card", |m| m.study.as_mut().unwrap().card.as_mut().unwrap().amounts.pop().map(drop).unwrap_or(())),
        ("study.local_date", |m| m.study.as_mut().unwrap().local_date = "2026-03-01".into()),
    ];
    for (field, spoil) in cases {
        let mut msg = good.clone();
        spoil(&mut msg);
        let err = LiveFact::try_from(&msg).unwrap_err();
        assert_eq!(err.field(), field, "{err}");
    }
}

// --- money -----------------------------------------------------------------------------------

#[test]
fn money_round_trips() {
    for money in [
        Money::new(dec!(1234.5), Currency::INR),
        Money::new(dec!(-0.01), Currency::GBP),
        Money::new(dec!(4500), Currency::JPY),
    ] {
        let msg = over_the_wire(&common::Money::from(money));
        assert_eq!(Money::try_from(&msg), Ok(money));
    }
    assert_eq!(common::Money::from(Money::new(dec!(1234.5), Currency::INR)).amount, "1234.50");
    let bad = common::Money { amount: "12.5".into(), currency: "ABC".into() };
    assert_eq!(Money::try_from(&bad).unwrap_err().field(), "currency");
    let bad = common::Money { amount: "NaN".into(), currency: "INR".into() };
    assert_eq!(Money::try_from(&bad).unwrap_err().field(), "amount");
}

#[test]
fn the_descriptor_set_holds_every_file() {
    let fds = prost_types_free_names(crate::FILE_DESCRIPTOR_SET);
    for name in [
        "radfin/common/v1/enums.proto",
        "radfin/common/v1/money.proto",
        "radfin/ingest/v1/report.proto",
        "radfin/pricing/v1/priced.proto",
        "radfin/pricing/v1/pricing.proto",
        "radfin/ingest/v1/ingest.proto",
        "radfin/ledger/v1/ledger.proto",
    ] {
        assert!(fds.contains(&name.to_owned()), "{name} missing: {fds:?}");
    }
}

/// The `name` of each `FileDescriptorProto` in an encoded `FileDescriptorSet`, decoded with
/// just enough of the schema (field 1 of the set, field 1 of each file) to avoid a dependency
/// on prost-types.
fn prost_types_free_names(bytes: &[u8]) -> Vec<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct File {
        #[prost(string, tag = "1")]
        name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Set {
        #[prost(message, repeated, tag = "1")]
        file: Vec<File>,
    }
    Set::decode(bytes).unwrap().file.into_iter().map(|f| f.name).collect()
}
