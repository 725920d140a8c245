//! Nothing acknowledged goes missing (spec §6): a report the broker acknowledged and then lost
//! is found by ingest's reconciler, republished, and reaches the ledger.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use radfin_bus::{Bus, BusConfig};
use radfin_db::testing::TestDb;
use radfin_harness::{nats_url, unique_prefix};
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::{GetReconcilerStatusRequest, ReconcilerStatus, SubmitReportRequest};
use radfin_proto::ledger::v1::ListReportEntriesRequest;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::pricing::v1::pricing_service_client::PricingServiceClient;
use radfin_service::config::Common;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use super::*;

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A channel to `addr`, once it accepts connections.
async fn channel(addr: SocketAddr) -> Channel {
    eventually(&format!("{addr} accepting"), || async {
        Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.ok()
    })
    .await
}

async fn reconciler_status(ingest: &mut IngestServiceClient<Channel>) -> ReconcilerStatus {
    ingest.get_reconciler_status(GetReconcilerStatusRequest {}).await.unwrap().into_inner().status.expect("the status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_the_broker_lost_is_republished_by_the_reconciler_and_reaches_the_ledger() {
    let db = TestDb::create().await.unwrap();
    let prefix = unique_prefix();
    let common = |role: &str| Common {
        database_url: db.url_as(role),
        bus: BusConfig { url: nats_url(), prefix: prefix.clone(), ..BusConfig::default() },
        business_tz: "Asia/Kolkata".to_owned(),
        auth_tokens_file: None,
        tls: Default::default(),
    };
    let (stop, stopped) = radfin_service::shutdown::channel();
    let until = |mut s: radfin_service::shutdown::Shutdown| async move { s.requested().await };

    // Ingest alone: nothing consumes the reports stream yet. It reconciles every second, with a
    // grace time of 10 s (long enough to purge the stream first on a loaded machine).
    let mut ingest_config = radfin_ingest::Config::with_common(common("radfin_ingest"));
    ingest_config.reconcile_interval = Duration::from_secs(1);
    ingest_config.reconcile_grace = Duration::from_secs(10);
    let (ingest_l, ingest_addr) = listener().await;
    let mut tasks = vec![tokio::spawn({
        let s = until(stopped.clone());
        async move { radfin_ingest::serve_with(&ingest_config, ingest_l, s).await }
    })];
    let mut ingest = IngestServiceClient::new(channel(ingest_addr).await);

    // Stored and acknowledged, published by the relay (it has left the outbox) ...
    ingest.submit_report(SubmitReportRequest { report: Some(night_mri("RPT-LOST", "HOSP-INR")) }).await.unwrap();
    let submitted = Instant::now();
    eventually("the relay to publish RPT-LOST", || async {
        let mut conn = db.pool().get().await.unwrap();
        radfin_db::reports::pending_outbox(&mut conn, 0, 10).await.unwrap().is_empty().then_some(())
    })
    .await;
    // ... and lost by the broker.
    let bus =
        Bus::connect(&BusConfig { url: nats_url(), prefix: prefix.clone(), ..BusConfig::default() }).await.unwrap();
    let mut reports = bus.jetstream().get_stream(bus.names().reports_stream()).await.unwrap();
    assert_eq!(reports.info().await.unwrap().state.messages, 1, "the relay published RPT-LOST once");
    reports.purge().await.unwrap();
    assert!(submitted.elapsed() < Duration::from_secs(10), "purged within the grace time, before any republish");
    assert_eq!(reports.info().await.unwrap().state.messages, 0);

    // Pricing and the ledger start on an empty reports stream.
    let mut pricing_config = radfin_pricing::Config::with_common(common("radfin_pricing"));
    pricing_config.reference_ttl = Duration::ZERO;
    let ledger_common = common("radfin_ledger");
    let (pricing_l, pricing_addr) = listener().await;
    let (ledger_l, ledger_addr) = listener().await;
    tasks.push(tokio::spawn({
        let s = until(stopped.clone());
        async move { radfin_pricing::serve(&pricing_config, pricing_l, s).await }
    }));
    tasks.push(tokio::spawn({
        let s = until(stopped.clone());
        async move { radfin_ledger::serve(&radfin_ledger::Config::with_common(ledger_common), ledger_l, s).await }
    }));
    // Reference data straight into the database: a put through pricing's API would make pricing
    // reprice the open months from the stored reports, which would find RPT-LOST on its own.
    {
        use radfin_domain::party::{ClientProfile, ProviderProfile};
        let date = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let mut conn = db.pool().get().await.unwrap();
        let provider = ProviderProfile {
            provider_id: radfin_domain::ProviderId::parse("RAD-007").unwrap(),
            name: "Dr RAD-007".into(),
            grade: radfin_domain::Grade::Consultant,
            practicing_since: date("2014-01-01"),
            pan: Some("ABCDE1234F".into()),
            effective_from: date("2025-01-01"),
        };
        radfin_db::parties::insert_provider(&mut conn, &provider, "test").await.unwrap();
        radfin_db::rules::insert_provider_rules(&mut conn, date("2025-01-01"), PROVIDER_RULES, "test").await.unwrap();
        let hosp = radfin_domain::ClientId::parse("HOSP-INR").unwrap();
        let client = ClientProfile {
            client_id: hosp.clone(),
            name: "HOSP-INR Hospital".into(),
            country: "IN".into(),
            state_code: Some("29".into()),
            gstin: None,
            currency: radfin_domain::Currency::INR,
            effective_from: date("2025-01-01"),
        };
        radfin_db::parties::insert_client(&mut conn, &client, "test").await.unwrap();
        radfin_db::rules::insert_client_rules(
            &mut conn,
            &hosp,
            date("2025-01-01"),
            &client_rules("HOSP-INR", "INR"),
            "test",
        )
        .await
        .unwrap();
    }
    let _pricing = PricingServiceClient::new(channel(pricing_addr).await);

    // The reconciler finds it missing from the ledger and republishes it; it is priced and booked.
    let ledger = LedgerServiceClient::new(channel(ledger_addr).await);
    let entries = radfin_harness::eventually_within("RPT-LOST in the ledger", Duration::from_secs(120), || {
        let mut ledger = ledger.clone();
        async move {
            let e = ledger
                .list_report_entries(ListReportEntriesRequest { report_id: "RPT-LOST".into() })
                .await
                .unwrap()
                .into_inner()
                .entries;
            (e.len() >= 2).then_some(e)
        }
    })
    .await;
    assert!(entries.iter().all(|e| e.report_id == "RPT-LOST" && e.revision == 1));
    let status = reconciler_status(&mut ingest).await;
    assert!(status.found_total >= 1 && status.republished_total >= 1, "{status:?}");
    assert_eq!((status.interval_secs, status.grace_secs), (1, 10));

    // Once the ledger has recorded it, a pass finds nothing missing.
    eventually("a pass that finds nothing missing", || {
        let mut ingest = ingest.clone();
        async move {
            let status = reconciler_status(&mut ingest).await;
            (status.last_pass_found == 0 && status.last_error.is_empty() && status.found_total >= 1).then_some(())
        }
    })
    .await;
    let settled = reconciler_status(&mut ingest).await;
    let later = eventually("two more passes", || {
        let mut ingest = ingest.clone();
        async move {
            let status = reconciler_status(&mut ingest).await;
            (status.passes >= settled.passes + 2).then_some(status)
        }
    })
    .await;
    assert_eq!(later.republished_total, settled.republished_total, "nothing republished once the ledger has it");

    stop.fire();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let names = bus.names();
    for stream in [names.reports_stream(), names.priced_stream(), names.dlq_stream()] {
        bus.jetstream().delete_stream(stream).await.unwrap();
    }
}
