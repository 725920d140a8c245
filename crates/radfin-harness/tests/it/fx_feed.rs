//! The pricing service fetches reference rates from an ECB-format feed (a real HTTP server on
//! 127.0.0.1) and prices a foreign-currency report with them.

use radfin_proto::ingest::v1::SubmitReportRequest;
use radfin_proto::ledger::v1::Side;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const ECB_DAILY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time="2026-10-09">
      <Cube currency="USD" rate="1.1600"/>
      <Cube currency="JPY" rate="171.25"/>
      <Cube currency="GBP" rate="0.8650"/>
      <Cube currency="INR" rate="97.0000"/>
    </Cube>
  </Cube>
</gesmes:Envelope>"#;

/// A feed on 127.0.0.1 serving [`ECB_DAILY`], and a stack whose pricing fetches it.
async fn stack_with_feed() -> (MockServer, Stack) {
    let feed = MockServer::start().await;
    serve(&feed, ECB_DAILY.to_owned()).await;
    let url = format!("{}/eurofxref-daily.xml", feed.uri()).parse().unwrap();
    (feed, Stack::start_with(|c| c.fx_url = Some(url)).await.unwrap())
}

/// The feed answers `body` from now on.
async fn serve(feed: &MockServer, body: String) {
    feed.reset().await;
    Mock::given(method("GET"))
        .and(path("/eurofxref-daily.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(feed)
        .await;
}

#[tokio::test]
async fn rates_fetched_from_an_ecb_feed_price_foreign_currency_revenue() {
    let (_feed, stack) = stack_with_feed().await;
    setup(&stack).await;
    let mut ingest = stack.ingest_client().await.unwrap();
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-ECB", "HOSP-USD")) }).await.unwrap();

    let e = wait_entries(&stack, "RPT-ECB", 2).await;
    let revenue = e.iter().find(|x| x.side == Side::Revenue as i32).unwrap();
    // INR per USD = 97.0000 / 1.1600 = 83.620689655… → 83.620690; 66.00 USD × 83.620690 = 5518.96554 → 5518.97
    assert_eq!(
        (
            revenue.fx_rate.as_str(),
            revenue.fx_rate_date.as_str(),
            revenue.fx_source.as_str(),
            revenue.amount_inr.as_str()
        ),
        ("83.620690", "2026-10-09", "ECB", "5518.97")
    );
    let mut p = stack.pricing_client().await.unwrap();
    let rates = p
        .list_fx_rates(radfin_proto::pricing::v1::ListFxRatesRequest { currency: "GBP".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .rates;
    // 97.0000 / 0.8650 = 112.138728…
    assert_eq!(rates.len(), 1);
    assert_eq!((rates[0].inr_per_unit.as_str(), rates[0].source.as_str()), ("112.138728", "ECB"));
    stack.stop().await.unwrap();
}

/// `FetchFxRates` (`radfin fx fetch`): the feed fetched now rather than at its next scheduled
/// fetch; new rates stored once, the call audited, and a feed that fails refused with its cause.
#[tokio::test]
async fn the_feed_fetched_on_demand_stores_its_new_rates_once_and_is_audited() {
    use radfin_proto::pricing::v1::{FetchFxRatesRequest, ListFxRatesRequest};
    // The schedule fetches once at start, then not again within the test (hourly).
    let (feed, stack) = stack_with_feed().await;
    let mut p = stack.pricing_client().await.unwrap();
    let gbp = |date: &'static str| ListFxRatesRequest { currency: "GBP".into(), from: date.into(), to: date.into() };
    eventually("the scheduled fetch", || {
        let mut p = p.clone();
        async move { (!p.list_fx_rates(gbp("2026-10-09")).await.ok()?.into_inner().rates.is_empty()).then_some(()) }
    })
    .await;

    // The feed publishes the next day; the operator does not wait for the schedule.
    serve(&feed, ECB_DAILY.replace("2026-10-09", "2026-10-12")).await;
    let reason = FetchFxRatesRequest { reason: "the ECB published after the hourly fetch".into() };
    let first = p.fetch_fx_rates(reason.clone()).await.unwrap().into_inner();
    // USD, JPY, GBP and EUR itself, each in INR; INR is the base.
    assert_eq!(
        (
            first.source.as_str(),
            first.fetched,
            first.stored,
            first.earliest_rate_date.as_str(),
            first.latest_rate_date.as_str()
        ),
        ("ECB", 4, 4, "2026-10-12", "2026-10-12")
    );
    assert!(first.url.ends_with("/eurofxref-daily.xml"), "{}", first.url);
    let rates = p.list_fx_rates(gbp("2026-10-12")).await.unwrap().into_inner().rates;
    assert_eq!((rates.len(), rates[0].inr_per_unit.as_str(), rates[0].source.as_str()), (1, "112.138728", "ECB"));
    let again = p.fetch_fx_rates(FetchFxRatesRequest::default()).await.unwrap().into_inner();
    assert_eq!((again.fetched, again.stored), (4, 0), "the same answer stores nothing twice");

    // A feed answering with an error is refused, names its cause, and the attempt is audited.
    feed.reset().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&feed).await;
    let refused = p.fetch_fx_rates(reason.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("503"), "{}", refused.message());

    let mut l = stack.ledger_client().await.unwrap();
    let audit = l
        .list_audit_events(radfin_proto::ledger::v1::ListAuditEventsRequest { limit: 20 })
        .await
        .unwrap()
        .into_inner()
        .events;
    let fetches: Vec<(&str, &str)> =
        audit.iter().filter(|e| e.action == "FetchFxRates").map(|e| (e.outcome.as_str(), e.reason.as_str())).collect();
    assert_eq!(
        fetches,
        [
            ("FAILED", "the ECB published after the hourly fetch"),
            ("ALLOWED", ""),
            ("ALLOWED", "the ECB published after the hourly fetch")
        ],
        "newest first"
    );
    assert!(audit.iter().all(|e| e.action != "FetchFxRates" || e.target.starts_with("ECB feed http://127.0.0.1:")));
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn fetching_without_a_configured_feed_says_how_to_put_rates_instead() {
    let stack = Stack::start().await.unwrap();
    let mut p = stack.pricing_client().await.unwrap();
    let refused = p.fetch_fx_rates(radfin_proto::pricing::v1::FetchFxRatesRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("RADFIN_FX_URL") && refused.message().contains("radfin fx put"),
        "{}",
        refused.message()
    );
    stack.stop().await.unwrap();
}
