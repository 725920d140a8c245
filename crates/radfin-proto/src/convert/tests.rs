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

fn priced() -> PricedReport {
    PricedReport {
        report_id: ReportId::parse("RPT-1").unwrap(),
        revision: 3,
        client_id: ClientId::parse("HOSP-001").unwrap(),
        provider_id: ProviderId::parse("RAD-007").unwrap(),
        modality: Modality::PetCt,
        grade: Grade::Consultant,
        status: ReportStatus::Final,
        finalized_at: "2026-01-31T20:00:00.25Z".parse().unwrap(),
        local_date: "2026-02-01".parse().unwrap(),
        cogs: dec!(1134.00),
        cogs_rule_version: Some(4),
        revenue: Money::new(dec!(45.07), Currency::USD),
        revenue_rule_version: Some(2),
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

// --- priced reports --------------------------------------------------------------------------

fn back(msg: &pricing::PricedReport) -> Result<PricedInRun, ConvertError> {
    PricedInRun::try_from(&over_the_wire(msg))
}

/// A priced report of period 2026-02 in run 7, its revenue converted at 83.123456 INR per unit.
fn in_run(p: &PricedReport) -> PricedInRun {
    let rate = (p.revenue.currency != Currency::INR).then(|| AppliedRate {
        inr_per_unit: dec!(83.123456),
        rate_date: "2026-01-30".parse().unwrap(),
        source: Arc::from("ECB"),
    });
    let amount_inr = rate.as_ref().map_or(p.revenue.amount, |r| Currency::INR.round(p.revenue.amount * r.inr_per_unit));
    PricedInRun { period: period(), run_id: 7, report: p.clone(), revenue_inr: InrAmount { amount_inr, rate } }
}

fn msg_of(p: &PricedReport) -> pricing::PricedReport {
    pricing::PricedReport::from(&in_run(p))
}

#[test]
fn priced_reports_round_trip() {
    let p = priced();
    let msg = msg_of(&p);
    assert_eq!(msg.period, "2026-02");
    assert_eq!(msg.local_date, "2026-02-01");
    assert_eq!(msg.finalized_at, "2026-01-31T20:00:00.250Z");
    assert_eq!(msg.modality, common::Modality::PetCt as i32);
    assert_eq!(msg.grade, common::Grade::Consultant as i32);
    let cogs = msg.cogs.as_ref().unwrap();
    assert_eq!((cogs.amount_inr.as_str(), cogs.rule_version), ("1134.00", Some(4)));
    let revenue = msg.revenue.as_ref().unwrap();
    assert_eq!((revenue.amount.as_str(), revenue.currency.as_str()), ("45.07", "USD"));
    assert_eq!(revenue.rule_version, Some(2));

    assert_eq!(msg.run_id, 7);
    assert_eq!(revenue.amount_inr, "3746.37");
    let fx = revenue.fx.as_ref().unwrap();
    assert_eq!(
        (fx.inr_per_unit.as_str(), fx.rate_date.as_str(), fx.source.as_str()),
        ("83.123456", "2026-01-30", "ECB")
    );
    let expected = in_run(&p);
    assert_eq!(back(&msg), Ok(expected.clone()));
    assert_eq!(pricing::PricedReport::from(&expected), msg);
}

#[test]
fn every_grade_and_status_round_trips() {
    for &grade in Grade::ALL {
        for &status in ReportStatus::ALL {
            let mut p = priced();
            p.grade = grade;
            p.status = status;
            let msg = msg_of(&p);
            assert_eq!(back(&msg).unwrap().report, p);
        }
    }
}

#[test]
fn a_cancelled_report_keeps_zero_amounts_and_no_versions() {
    let mut p = priced();
    p.status = ReportStatus::Cancelled;
    p.cogs = Decimal::ZERO;
    p.cogs_rule_version = None;
    p.revenue = Money::zero(Currency::JPY);
    p.revenue_rule_version = None;
    let msg = msg_of(&p);
    let (cogs, revenue) = (msg.cogs.as_ref().unwrap(), msg.revenue.as_ref().unwrap());
    assert_eq!((cogs.amount_inr.as_str(), cogs.rule_version), ("0.00", None));
    assert_eq!((revenue.amount.as_str(), revenue.currency.as_str()), ("0", "JPY"));
    assert_eq!(back(&msg).unwrap().report, p);
}

#[test]
fn amounts_are_exact_and_never_lose_digits() {
    // More digits than the currency's minor unit stay as they are; text is the exact amount.
    let mut p = priced();
    p.cogs = dec!(0.125);
    p.revenue = Money::new(dec!(-12345678901234567890.12345678), Currency::EUR);
    let msg = msg_of(&p);
    assert_eq!(msg.cogs.as_ref().unwrap().amount_inr, "0.125");
    assert_eq!(msg.revenue.as_ref().unwrap().amount, "-12345678901234567890.12345678");
    let report = back(&msg).unwrap().report;
    assert_eq!(report.cogs.to_string(), "0.125");
    assert_eq!(report.revenue, p.revenue);
}

#[test]
fn a_bad_priced_report_names_its_field() {
    let good = msg_of(&priced());
    type Spoil = fn(&mut pricing::PricedReport);
    let cases: [(&str, Spoil); 19] = [
        ("report_id", |m| m.report_id.clear()),
        ("revision", |m| m.revision = 0),
        ("period", |m| m.period = "2026-13".into()),
        ("client_id", |m| m.client_id = "HOSP 1".into()),
        ("provider_id", |m| m.provider_id = "x".repeat(65)),
        ("modality", |m| m.modality = 0),
        ("grade", |m| m.grade = 17),
        ("status", |m| m.status = 0),
        ("finalized_at", |m| m.finalized_at = "2026-01-31 20:00".into()),
        ("local_date", |m| m.local_date = "01/02/2026".into()),
        ("local_date", |m| m.local_date = "2026-03-01".into()),
        ("cogs", |m| m.cogs = None),
        ("revenue", |m| m.revenue = None),
        ("cogs.amount_inr", |m| m.cogs.as_mut().unwrap().amount_inr = "1,134.00".into()),
        ("cogs.amount_inr", |m| m.cogs.as_mut().unwrap().amount_inr = String::new()),
        ("revenue.amount", |m| m.revenue.as_mut().unwrap().amount = "4.5e1".into()),
        (
            "revenue.amount",
            // 29 decimal places: more than a Decimal holds, refused rather than rounded.
            |m| m.revenue.as_mut().unwrap().amount = "0.00000000000000000000000000001".into(),
        ),
        ("revenue.currency", |m| m.revenue.as_mut().unwrap().currency = "usd".into()),
        ("revenue.currency", |m| m.revenue.as_mut().unwrap().currency = "XAU".into()),
    ];
    for (field, spoil) in cases {
        let mut msg = good.clone();
        spoil(&mut msg);
        let err = back(&msg).unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().starts_with(&format!("{field}: ")), "{err}");
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
