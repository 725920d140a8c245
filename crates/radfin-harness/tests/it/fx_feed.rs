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

#[tokio::test]
async fn rates_fetched_from_an_ecb_feed_price_foreign_currency_revenue() {
    let feed = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/eurofxref-daily.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ECB_DAILY))
        .mount(&feed)
        .await;
    let url = format!("{}/eurofxref-daily.xml", feed.uri()).parse().unwrap();
    let stack = Stack::start_with(|c| c.fx_url = Some(url)).await.unwrap();
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
