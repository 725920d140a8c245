//! The FX feed against a real HTTP server on 127.0.0.1 (wiremock).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use radfin_domain::fx::FxRate;
use radfin_domain::money::Currency;
use radfin_pricing::fx_feed::{FeedError, FeedFormat, FxFeed, run_schedule};
use reqwest::Url;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::mpsc;
use wiremock::matchers::{headers, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The ECB's daily file as it looks, shared with the parser's unit tests.
const DAILY: &str = include_str!("../fixtures/eurofxref-daily.xml");

const HIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<Cube>
		<Cube time="2026-01-06"><Cube currency="USD" rate="1.0790"/><Cube currency="INR" rate="90.1234"/></Cube>
		<Cube time="2026-01-05"><Cube currency="USD" rate="1.0823"/></Cube>
		<Cube time="2026-01-02"><Cube currency="USD" rate="1.0951"/><Cube currency="INR" rate="88.9"/></Cube>
	</Cube>
</gesmes:Envelope>
"#;

/// How long a test waits for something that should happen at once.
const DEADLINE: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    // Never a proxy from the environment: the server is on this machine.
    reqwest::Client::builder().no_proxy().build().expect("an http client")
}

fn feed(server: &MockServer, route: &str, format: FeedFormat) -> FxFeed {
    let url: Url = format!("{}{route}", server.uri()).parse().expect("a url");
    FxFeed::new(url, format, "ECB")
}

fn rate(date: &str, currency: Currency, inr_per_unit: Decimal) -> FxRate {
    let rate_date: NaiveDate = date.parse().expect("a date");
    FxRate { rate_date, currency, inr_per_unit, source: "ECB".to_owned() }
}

async fn serve(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("GET")).and(path(route)).respond_with(response).mount(server).await;
}

/// Waits until the server has received at least `n` requests.
async fn requests_at_least(server: &MockServer, n: usize) {
    let start = Instant::now();
    loop {
        let seen = server.received_requests().await.map_or(0, |r| r.len());
        if seen >= n {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "the server saw {seen} requests, expected {n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn fetches_the_ecb_daily_file() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stats/eurofxref/eurofxref-daily.xml"))
        .and(headers("accept", vec!["application/xml", "text/xml"]))
        .respond_with(ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml"))
        .expect(1)
        .mount(&server)
        .await;
    let rates =
        feed(&server, "/stats/eurofxref/eurofxref-daily.xml", FeedFormat::EcbXml).fetch(&client()).await.unwrap();
    assert_eq!(
        rates,
        vec![
            // 89.5 / 3.9745 = 22.5185557… → 22.518556
            rate("2026-01-05", Currency::AED, dec!(22.518556)),
            rate("2026-01-05", Currency::EUR, dec!(89.5)),
            // 89.5 / 0.8456 = 105.8420056… → 105.842006
            rate("2026-01-05", Currency::GBP, dec!(105.842006)),
            // 89.5 / 162.50 = 0.5507692… → 0.550769
            rate("2026-01-05", Currency::JPY, dec!(0.550769)),
            // 89.5 / 1.0823 = 82.6942622… → 82.694262
            rate("2026-01-05", Currency::USD, dec!(82.694262)),
        ]
    );
}

#[tokio::test]
async fn fetches_every_day_of_the_ecb_history() {
    let server = MockServer::start().await;
    serve(&server, "/hist.xml", ResponseTemplate::new(200).set_body_raw(HIST, "text/xml")).await;
    let rates = feed(&server, "/hist.xml", FeedFormat::EcbXml).fetch(&client()).await.unwrap();
    assert_eq!(
        rates,
        vec![
            rate("2026-01-02", Currency::EUR, dec!(88.9)),
            // 88.9 / 1.0951 = 81.1798009… → 81.179801
            rate("2026-01-02", Currency::USD, dec!(81.179801)),
            // 2026-01-05 has no INR: skipped
            rate("2026-01-06", Currency::EUR, dec!(90.1234)),
            // 90.1234 / 1.0790 = 83.5249304… → 83.524930
            rate("2026-01-06", Currency::USD, dec!(83.524930)),
        ]
    );
}

#[tokio::test]
async fn fetches_json_in_both_bases() {
    let server = MockServer::start().await;
    let inr = r#"{"base": "INR", "rates": [{"date": "2026-01-05", "currency": "USD", "inr_per_unit": "83.123456"}]}"#;
    let eur = r#"{"base": "EUR", "date": "2026-01-05", "rates": {"INR": "89.5", "USD": "1.0823"}}"#;
    serve(&server, "/inr.json", ResponseTemplate::new(200).set_body_raw(inr, "application/json")).await;
    serve(&server, "/eur.json", ResponseTemplate::new(200).set_body_raw(eur, "application/json")).await;

    let rates = feed(&server, "/inr.json", FeedFormat::Json).fetch(&client()).await.unwrap();
    assert_eq!(rates, vec![rate("2026-01-05", Currency::USD, dec!(83.123456))]);

    let rates = feed(&server, "/eur.json", FeedFormat::Json).fetch(&client()).await.unwrap();
    // EUR: 89.5 itself; USD: 89.5 / 1.0823 = 82.6942622… → 82.694262
    assert_eq!(
        rates,
        vec![rate("2026-01-05", Currency::EUR, dec!(89.5)), rate("2026-01-05", Currency::USD, dec!(82.694262))]
    );
}

#[tokio::test]
async fn a_server_error_is_a_retryable_status_error() {
    let server = MockServer::start().await;
    serve(&server, "/daily.xml", ResponseTemplate::new(500).set_body_string(DAILY)).await;
    let e = feed(&server, "/daily.xml", FeedFormat::EcbXml).fetch(&client()).await.unwrap_err();
    assert!(matches!(&e, FeedError::Status { status, .. } if status.as_u16() == 500), "{e:?}");
    assert!(e.is_retryable());
    assert!(e.to_string().ends_with("/daily.xml answered with http status 500 Internal Server Error"), "{e}");

    let e = feed(&server, "/missing.xml", FeedFormat::EcbXml).fetch(&client()).await.unwrap_err();
    assert!(matches!(&e, FeedError::Status { status, .. } if status.as_u16() == 404), "{e:?}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml").set_delay(Duration::from_secs(30));
    serve(&server, "/daily.xml", slow).await;
    let mut feed = feed(&server, "/daily.xml", FeedFormat::EcbXml);
    feed.timeout = Duration::from_millis(200);
    let start = Instant::now();
    let e = feed.fetch(&client()).await.unwrap_err();
    assert!(matches!(e, FeedError::Timeout { after, .. } if after == Duration::from_millis(200)), "{e:?}");
    assert!(start.elapsed() < DEADLINE, "took {:?}", start.elapsed());
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let server = MockServer::start().await;
    serve(&server, "/daily.xml", ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml")).await;
    let mut feed = feed(&server, "/daily.xml", FeedFormat::EcbXml);
    feed.max_body_bytes = DAILY.len() - 1;
    let e = feed.fetch(&client()).await.unwrap_err();
    assert!(matches!(e, FeedError::TooLarge { limit, .. } if limit == DAILY.len() - 1), "{e:?}");
    feed.max_body_bytes = DAILY.len();
    assert_eq!(feed.fetch(&client()).await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_malformed_body_is_a_parse_error() {
    let server = MockServer::start().await;
    let html = "<html><body>down for maintenance</body></html>";
    serve(&server, "/daily.xml", ResponseTemplate::new(200).set_body_raw(html, "text/html")).await;
    let e = feed(&server, "/daily.xml", FeedFormat::EcbXml).fetch(&client()).await.unwrap_err();
    assert!(matches!(e, FeedError::WrongRoot { .. }), "{e:?}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_refused_connection_is_a_request_error() {
    // A port that was free a moment ago and has no listener now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url: Url = format!("http://127.0.0.1:{port}/daily.xml").parse().unwrap();
    let e = FxFeed::new(url, FeedFormat::EcbXml, "ECB").fetch(&client()).await.unwrap_err();
    assert!(matches!(e, FeedError::Request { .. }), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn the_schedule_fetches_at_once_then_every_interval_until_shutdown() {
    let server = MockServer::start().await;
    serve(&server, "/daily.xml", ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml")).await;
    let feed = feed(&server, "/daily.xml", FeedFormat::EcbXml);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (trigger, shutdown) = radfin_service::shutdown::channel();
    let schedule = tokio::spawn(async move {
        let sink = |rates: Vec<FxRate>| {
            let _ = tx.send(rates);
            std::future::ready(())
        };
        run_schedule(&feed, &client(), Duration::from_millis(50), sink, shutdown).await;
    });
    for _ in 0..3 {
        let batch = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("a batch in time").expect("a batch");
        assert_eq!(batch.len(), 5);
    }
    trigger.fire();
    tokio::time::timeout(DEADLINE, schedule).await.expect("the schedule stops").unwrap();
}

#[tokio::test]
async fn the_schedule_goes_on_after_failures() {
    let server = MockServer::start().await;
    // The first two requests fail, later ones succeed.
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).up_to_n_times(2).mount(&server).await;
    serve(&server, "/daily.xml", ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml")).await;
    let feed = feed(&server, "/daily.xml", FeedFormat::EcbXml);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (trigger, shutdown) = radfin_service::shutdown::channel();
    let schedule = tokio::spawn(async move {
        let sink = |rates: Vec<FxRate>| {
            let _ = tx.send(rates);
            std::future::ready(())
        };
        run_schedule(&feed, &client(), Duration::from_millis(20), sink, shutdown).await;
    });
    let batch = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("a batch in time").expect("a batch");
    assert_eq!(batch.len(), 5);
    let requests = server.received_requests().await.map_or(0, |r| r.len());
    assert!(requests >= 3, "{requests} requests");
    trigger.fire();
    tokio::time::timeout(DEADLINE, schedule).await.expect("the schedule stops").unwrap();
}

#[tokio::test]
async fn shutdown_interrupts_a_fetch_in_progress() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml").set_delay(Duration::from_secs(60));
    serve(&server, "/daily.xml", slow).await;
    let mut feed = feed(&server, "/daily.xml", FeedFormat::EcbXml);
    feed.timeout = Duration::from_secs(120);
    let (trigger, shutdown) = radfin_service::shutdown::channel();
    let schedule = tokio::spawn(async move {
        let sink = |_: Vec<FxRate>| -> std::future::Ready<()> { panic!("no batch expected") };
        run_schedule(&feed, &client(), Duration::from_secs(3600), sink, shutdown).await;
    });
    requests_at_least(&server, 1).await;
    let start = Instant::now();
    trigger.fire();
    tokio::time::timeout(Duration::from_secs(5), schedule).await.expect("the schedule stops").unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_schedule_started_after_shutdown_does_nothing() {
    let server = MockServer::start().await;
    serve(&server, "/daily.xml", ResponseTemplate::new(200).set_body_raw(DAILY, "text/xml")).await;
    let feed = feed(&server, "/daily.xml", FeedFormat::EcbXml);
    let (trigger, shutdown) = radfin_service::shutdown::channel();
    trigger.fire();
    let sink = |_: Vec<FxRate>| -> std::future::Ready<()> { panic!("no batch expected") };
    tokio::time::timeout(DEADLINE, run_schedule(&feed, &client(), Duration::from_millis(10), sink, shutdown))
        .await
        .expect("the schedule stops");
    assert_eq!(server.received_requests().await.map_or(0, |r| r.len()), 0);
}
