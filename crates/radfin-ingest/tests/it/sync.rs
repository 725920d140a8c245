//! The rolling-window sync: a source table in a database of its own, read into ingest's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use radfin_db::reports::NewReport;
use radfin_db::sync_runs::{SyncOutcome, SyncRun, SyncTrigger};
use radfin_db::testing::TestDb;
use radfin_domain::{BusinessCalendar, RawReport};
use radfin_ingest::{SyncSource, SyncWindow, Syncer};
use radfin_proto::ingest::v1 as proto;
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_service::config::Common;
use tokio::sync::Notify;

use crate::{bus, count, db, delete_streams, exec};

const SOURCE_TABLE: &str = "CREATE SCHEMA his;
    CREATE TABLE his.finalized_reports (
        report_id text, revision integer, client_id text, provider_id text, modality text,
        body_regions integer, priority text, finalized_at timestamptz, status text)";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

/// November 2026 in Kolkata.
fn november() -> SyncWindow {
    SyncWindow::new(at("2026-10-31T18:30:00Z"), at("2026-11-30T18:30:00Z")).unwrap()
}

fn row(report_id: &str, revision: u32, body_regions: u32, day: u32, status: &str) -> String {
    format!(
        "('{report_id}', {revision}, 'HOSP-001', 'RAD-007', 'MRI', {body_regions}, 'STAT', \
         '2026-11-{day:02}T10:00:00Z', '{status}')"
    )
}

fn report(report_id: &str, revision: u32, body_regions: u64, day: u32) -> NewReport {
    let raw = RawReport {
        report_id: report_id.into(),
        revision: revision.into(),
        client_id: "HOSP-001".into(),
        provider_id: "RAD-007".into(),
        modality: "MRI".into(),
        body_regions,
        priority: "STAT".into(),
        finalized_at: format!("2026-11-{day:02}T10:00:00Z"),
        status: "FINAL".into(),
    };
    let event = raw.validate(Utc::now()).unwrap();
    let period = BusinessCalendar::default().period_of(event.finalized_at);
    NewReport::new(event, period)
}

fn syncer(pool: radfin_db::Pool, source: &TestDb, table: &str) -> Syncer {
    let (_stop, draining) = radfin_service::shutdown::channel();
    // The trigger is dropped: nothing fires it (a dropped trigger is not a fired one).
    Syncer::new(
        pool,
        BusinessCalendar::default(),
        SyncSource::new(source.url(), table.parse().unwrap()).unwrap(),
        Duration::from_secs(3600),
        Arc::new(Notify::new()),
        draining,
    )
}

async fn ingest_pool(db: &TestDb) -> radfin_db::Pool {
    radfin_db::pool(&db.url_as("radfin_ingest"), 2).await.unwrap()
}

async fn stored(conn: &mut AsyncPgConnection) -> Vec<(String, i64, i64)> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        report_id: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        revision: i64,
        #[diesel(sql_type = diesel::sql_types::SmallInt)]
        body_regions: i16,
    }
    use diesel_async::RunQueryDsl;
    let rows: Vec<Row> =
        diesel::sql_query("SELECT report_id, revision, body_regions FROM reports ORDER BY report_id, revision")
            .load(conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| (r.report_id, r.revision, i64::from(r.body_regions))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_stores_exactly_the_valid_rows_and_counts_each() {
    let (db, source) = (db().await, db().await);
    let mut admin = db.pool().get().await.unwrap();
    radfin_db::reports::insert_batch(
        &mut admin,
        &[report("RPT-SAME", 1, 2, 4), report("RPT-CHG", 1, 2, 5), report("RPT-CONF", 1, 2, 6)],
    )
    .await
    .unwrap();

    let mut src = source.pool().get().await.unwrap();
    exec(&mut src, SOURCE_TABLE).await;
    let rows = [
        row("RPT-NEW", 1, 2, 2, "FINAL"),
        row("RPT-CAN", 1, 2, 3, "CANCELLED"),
        row("RPT-SAME", 1, 2, 4, "FINAL"),
        row("RPT-CHG", 2, 3, 5, "FINAL"),
        // Revision 1 is stored with 2 regions.
        row("RPT-CONF", 1, 3, 6, "FINAL"),
        "('RPT-BAD', 1, 'HOSP-001', 'RAD-007', 'PET', 12, 'STAT', '2026-11-07T10:00:00Z', 'FINAL')".to_owned(),
        "('RPT-NULL', 1, NULL, 'RAD-007', 'MRI', 1, 'STAT', '2026-11-08T10:00:00Z', 'FINAL')".to_owned(),
        row("RPT-TWO", 1, 1, 9, "FINAL"),
        row("RPT-TWO", 2, 2, 10, "FINAL"),
        row("RPT-ZERO", 0, 1, 11, "FINAL"),
        // 23:30 on 31 October in Kolkata: not November's.
        "('RPT-OCT', 1, 'HOSP-001', 'RAD-007', 'MRI', 1, 'STAT', '2026-10-31T18:00:00Z', 'FINAL')".to_owned(),
        // No finalized_at: in no window.
        "('RPT-NOTIME', 1, 'HOSP-001', 'RAD-007', 'MRI', 1, 'STAT', NULL, 'FINAL')".to_owned(),
    ];
    exec(&mut src, &format!("INSERT INTO his.finalized_reports VALUES {}", rows.join(", "))).await;

    let syncer = syncer(ingest_pool(&db).await, &source, "his.finalized_reports");
    let run = syncer.run(SyncTrigger::OnDemand, Some(november())).await.unwrap();
    let c = run.run.counts;
    assert_eq!(run.run.outcome, SyncOutcome::Succeeded);
    assert_eq!((c.read, c.new, c.changed, c.unchanged, c.rejected), (10, 3, 2, 1, 4), "{run:#?}");

    let rejected: Vec<(u64, Option<&str>, Vec<&str>)> = run
        .run
        .rejected
        .iter()
        .map(|r| (r.row, r.report_id.as_deref(), r.reasons.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(rejected.len(), 4);
    assert_eq!(
        rejected[0],
        (
            5,
            Some("RPT-CONF"),
            vec![
                "revision 1 of report RPT-CONF is already stored with different content; send a higher revision to correct it"
            ]
        )
    );
    assert_eq!((rejected[1].0, rejected[1].1), (6, Some("RPT-BAD")));
    assert_eq!(rejected[1].2.len(), 2);
    assert!(rejected[1].2[0].starts_with("modality: must be one of"), "{:?}", rejected[1].2);
    assert!(rejected[1].2[1].starts_with("body_regions: must be between 1 and 10"), "{:?}", rejected[1].2);
    assert_eq!(rejected[2], (7, Some("RPT-NULL"), vec!["client_id: is NULL"]));
    assert_eq!(rejected[3], (10, Some("RPT-ZERO"), vec!["revision: must be at least 1"]));
    assert_eq!(run.run.rejected[3].revision.as_deref(), Some("0"));

    // Exactly the valid rows are stored; the conflicting revision is untouched.
    let expected: Vec<(String, i64, i64)> = [
        ("RPT-CAN", 1, 2),
        ("RPT-CHG", 1, 2),
        ("RPT-CHG", 2, 3),
        ("RPT-CONF", 1, 2),
        ("RPT-NEW", 1, 2),
        ("RPT-SAME", 1, 2),
        ("RPT-TWO", 1, 1),
        ("RPT-TWO", 2, 2),
    ]
    .iter()
    .map(|(id, rev, regions)| ((*id).to_owned(), *rev, *regions))
    .collect();
    assert_eq!(stored(&mut admin).await, expected);
    // Queued for the relay like submissions: the 3 stored before and the 5 new.
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM report_outbox").await, 8);
    assert_eq!(
        count(&mut admin, "SELECT count(*) AS n FROM reports WHERE report_id = 'RPT-CAN' AND status = 'CANCELLED'")
            .await,
        1
    );

    // Recorded, and listed newest first.
    let again = syncer.run(SyncTrigger::Schedule, Some(november())).await.unwrap();
    let c = again.run.counts;
    assert_eq!((c.read, c.new, c.changed, c.unchanged, c.rejected), (10, 0, 0, 6, 4), "{again:#?}");
    let mut conn = db.connect_as("radfin_ingest").await.unwrap();
    let listed = radfin_db::sync_runs::list(&mut conn, 10).await.unwrap();
    assert_eq!(listed, [again.clone(), run.clone()]);
    let recorded = &listed[1].run;
    assert_eq!((recorded.window_start, recorded.window_end), (november().start, november().end));
    assert_eq!(recorded.source, format!("postgres://127.0.0.1:5432/{}", source.name()));
    assert_eq!((recorded.source_table.as_str(), recorded.trigger), ("his.finalized_reports", SyncTrigger::OnDemand));
    assert!(recorded.finished_at >= recorded.started_at);
    assert_eq!(radfin_db::sync_runs::last_started_at(&mut conn).await.unwrap(), Some(again.run.started_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_reads_in_pages_and_a_failed_one_is_recorded() {
    let (db, source) = (db().await, db().await);
    let mut src = source.pool().get().await.unwrap();
    exec(&mut src, SOURCE_TABLE).await;
    // 2,500 reports (three pages), one of them invalid, one given twice with other content in
    // the second page.
    exec(
        &mut src,
        "INSERT INTO his.finalized_reports
         SELECT 'RPT-' || i, 1, 'HOSP-001', 'RAD-007', CASE WHEN i = 1700 THEN 'XX' ELSE 'CT' END, 1, 'ROUTINE',
                timestamptz '2026-11-02T00:00:00Z' + i * interval '1 minute', 'FINAL'
         FROM generate_series(1, 2500) AS i;
         INSERT INTO his.finalized_reports VALUES
             ('RPT-1200', 1, 'HOSP-001', 'RAD-007', 'CT', 2, 'ROUTINE', '2026-11-02T20:00:30Z', 'FINAL')",
    )
    .await;
    let pool = ingest_pool(&db).await;
    let syncer = syncer(pool.clone(), &source, "his.finalized_reports");
    let run = syncer.run(SyncTrigger::OnDemand, Some(november())).await.unwrap();
    let c = run.run.counts;
    assert_eq!((c.read, c.new, c.changed, c.unchanged, c.rejected), (2501, 2499, 0, 0, 2), "{run:#?}");
    assert_eq!(
        run.run.rejected.iter().map(|r| r.report_id.as_deref().unwrap()).collect::<Vec<_>>(),
        ["RPT-1200", "RPT-1700"]
    );
    let mut admin = db.pool().get().await.unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM reports").await, 2499);
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM reports WHERE body_regions <> 1").await, 0);

    // A source that cannot be read: the run is recorded as failed, with the reason.
    let missing = self::syncer(pool, &source, "his.no_such_view");
    let failed = missing.run(SyncTrigger::Schedule, Some(november())).await.unwrap();
    match &failed.run.outcome {
        SyncOutcome::Failed { error } => assert!(error.contains("does not exist"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(failed.run.counts.read, 0);
    let mut conn = db.connect_as("radfin_ingest").await.unwrap();
    let listed: Vec<SyncRun> = radfin_db::sync_runs::list(&mut conn, 1).await.unwrap();
    assert_eq!(listed, [failed]);
}

async fn client(addr: std::net::SocketAddr) -> IngestServiceClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(channel) = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await {
            return IngestServiceClient::new(channel);
        }
        assert!(Instant::now() < deadline, "ingest did not start serving");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list_runs(
    ingest: &mut IngestServiceClient<tonic::transport::Channel>,
    with_rejected_rows: bool,
) -> Vec<proto::SyncRun> {
    ingest.list_sync_runs(proto::ListSyncRunsRequest { limit: 0, with_rejected_rows }).await.unwrap().into_inner().runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_syncs_on_its_schedule_and_on_demand() {
    let (db, source) = (db().await, db().await);
    let mut src = source.pool().get().await.unwrap();
    exec(&mut src, SOURCE_TABLE).await;
    let bus = bus().await;
    let mut config = radfin_ingest::Config::with_common(Common {
        database_url: db.url_as("radfin_ingest"),
        bus: bus.config().clone(),
        business_tz: "Asia/Kolkata".to_owned(),
        auth_tokens_file: None,
        tls: Default::default(),
    });
    config.sync_source = Some(SyncSource::new(source.url(), "his.finalized_reports".parse().unwrap()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = radfin_service::shutdown::channel();
    let service = tokio::spawn(async move {
        radfin_ingest::serve_with(&config, listener, async move { stopped.requested().await }).await
    });
    let mut ingest = client(addr).await;

    // Nothing recorded yet: the schedule runs at once (over an empty source).
    let deadline = Instant::now() + Duration::from_secs(30);
    let scheduled = loop {
        if let Some(run) = list_runs(&mut ingest, false).await.pop() {
            break run;
        }
        assert!(Instant::now() < deadline, "no scheduled run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (scheduled.trigger, scheduled.outcome, scheduled.read),
        (proto::SyncTrigger::Schedule as i32, proto::SyncOutcome::Succeeded as i32, 0)
    );

    // Two reports of the open month, one invalid.
    exec(
        &mut src,
        "INSERT INTO his.finalized_reports VALUES
           ('RPT-LIVE', 1, 'HOSP-001', 'RAD-007', 'XRAY', 1, 'ROUTINE', now() - interval '1 minute', 'FINAL'),
           ('RPT-BAD', 1, 'HOSP-001', 'RAD-007', 'XRAY', 0, 'ROUTINE', now() - interval '1 minute', 'FINAL')",
    )
    .await;
    let run = ingest.sync_now(proto::SyncNowRequest::default()).await.unwrap().into_inner().run.expect("the run");
    assert_eq!(
        (run.trigger, run.outcome, run.read, run.new, run.changed, run.unchanged, run.rejected),
        (proto::SyncTrigger::OnDemand as i32, proto::SyncOutcome::Succeeded as i32, 2, 1, 0, 0, 1),
        "{run:#?}"
    );
    assert_eq!(run.rejected_rows.len(), 1);
    assert_eq!(run.rejected_rows[0].report_id, "RPT-BAD");
    assert!(run.rejected_rows[0].reasons[0].starts_with("body_regions:"), "{:?}", run.rejected_rows);
    assert_eq!(run.source_table, "his.finalized_reports");

    // A named window in the past: nothing there.
    let past = ingest
        .sync_now(proto::SyncNowRequest {
            window_start: "2020-01-01T00:00:00+05:30".into(),
            window_end: "2020-02-01T00:00:00+05:30".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .expect("the run");
    assert_eq!((past.read, past.window_start.as_str()), (0, "2019-12-31T18:30:00Z"));
    for (start, end, field) in [("yesterday", "", "window_start"), ("", "2020-01-01T00:00:00Z", "window_start")] {
        let err = ingest
            .sync_now(proto::SyncNowRequest { window_start: start.into(), window_end: end.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with(field), "{}", err.message());
    }
    let err = ingest
        .sync_now(proto::SyncNowRequest {
            window_start: "2020-02-01T00:00:00Z".into(),
            window_end: "2020-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // Newest first; rejected rows only when asked for.
    let runs = list_runs(&mut ingest, false).await;
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [past.id, run.id, scheduled.id]);
    assert!(runs[1].rejected_rows.is_empty() && runs[1].rejected == 1);
    assert_eq!(list_runs(&mut ingest, true).await[1], run);

    // The reconciler reports itself.
    let status = ingest
        .get_reconciler_status(proto::GetReconcilerStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .status
        .expect("the status");
    assert_eq!((status.interval_secs, status.grace_secs), (60, 120));

    stop.fire();
    service.await.unwrap().unwrap();
    // The relay published the synced report before stopping.
    let mut admin = db.pool().get().await.unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM report_outbox").await, 0);
    delete_streams(&bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_needs_a_source() {
    let db = db().await;
    let bus = bus().await;
    let config = radfin_ingest::Config::with_common(Common {
        database_url: db.url_as("radfin_ingest"),
        bus: bus.config().clone(),
        business_tz: "Asia/Kolkata".to_owned(),
        auth_tokens_file: None,
        tls: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = radfin_service::shutdown::channel();
    let service = tokio::spawn(async move {
        radfin_ingest::serve_with(&config, listener, async move { stopped.requested().await }).await
    });
    let mut ingest = client(addr).await;
    let err = ingest.sync_now(proto::SyncNowRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(list_runs(&mut ingest, false).await.is_empty());
    stop.fire();
    service.await.unwrap().unwrap();
    delete_streams(&bus).await;
}
