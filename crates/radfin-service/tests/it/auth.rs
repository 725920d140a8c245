//! The auth layer in front of a real server (`Supervisor::serve`, as every service serves):
//! bearer tokens, the role each method needs, denials as gRPC statuses and in the audit log,
//! the principal handed to handlers, and the token file reloaded while serving.
//!
//! The server is a stub of the ingest service (its methods need `ingest`, `finance` and
//! `viewer`) whose answers name the caller it was given.

use std::net::SocketAddr;
use std::path::PathBuf;

use radfin_db::audit::AuditOutcome;
use radfin_db::testing::TestDb;
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ingest::v1::ingest_service_server::{IngestService, IngestServiceServer, SERVICE_NAME};
use radfin_proto::ingest::v1::{
    GetReconcilerStatusRequest, GetReconcilerStatusResponse, ListDeadLettersRequest, ListDeadLettersResponse,
    ListSyncRunsRequest, ListSyncRunsResponse, RedriveDeadLetterRequest, RedriveDeadLetterResponse, SubmitBatchRequest,
    SubmitBatchResponse, SubmitReportRequest, SubmitReportResponse, SubmitStreamRequest, SubmitStreamResponse,
    SyncNowRequest, SyncNowResponse, SyncRun,
};
use radfin_service::auth::{self, Auth, sha256_hex};
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::*;

/// Answers every call with the caller it was handed, `"<name> <role>"`.
struct Stub;

fn caller<T>(request: &Request<T>) -> String {
    let principal = auth::principal(request);
    format!("{} {}", principal.name, principal.role)
}

#[tonic::async_trait]
impl IngestService for Stub {
    async fn submit_report(
        &self,
        request: Request<SubmitReportRequest>,
    ) -> Result<Response<SubmitReportResponse>, Status> {
        Ok(Response::new(SubmitReportResponse { period: caller(&request), ..Default::default() }))
    }

    async fn submit_batch(&self, _: Request<SubmitBatchRequest>) -> Result<Response<SubmitBatchResponse>, Status> {
        Ok(Response::new(SubmitBatchResponse::default()))
    }

    async fn submit_stream(
        &self,
        _: Request<Streaming<SubmitStreamRequest>>,
    ) -> Result<Response<SubmitStreamResponse>, Status> {
        Ok(Response::new(SubmitStreamResponse::default()))
    }

    async fn sync_now(&self, request: Request<SyncNowRequest>) -> Result<Response<SyncNowResponse>, Status> {
        Ok(Response::new(SyncNowResponse { run: Some(SyncRun { source: caller(&request), ..Default::default() }) }))
    }

    async fn list_sync_runs(
        &self,
        request: Request<ListSyncRunsRequest>,
    ) -> Result<Response<ListSyncRunsResponse>, Status> {
        Ok(Response::new(ListSyncRunsResponse {
            runs: vec![SyncRun { source: caller(&request), ..Default::default() }],
        }))
    }

    async fn get_reconciler_status(
        &self,
        _: Request<GetReconcilerStatusRequest>,
    ) -> Result<Response<GetReconcilerStatusResponse>, Status> {
        Ok(Response::new(GetReconcilerStatusResponse::default()))
    }

    async fn list_dead_letters(
        &self,
        _: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        Ok(Response::new(ListDeadLettersResponse::default()))
    }

    async fn redrive_dead_letter(
        &self,
        request: Request<RedriveDeadLetterRequest>,
    ) -> Result<Response<RedriveDeadLetterResponse>, Status> {
        Ok(Response::new(RedriveDeadLetterResponse { subject: caller(&request), ..Default::default() }))
    }
}

/// The stub served behind `auth`; stops when the sender is dropped.
struct Served {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    _task: JoinHandle<anyhow::Result<()>>,
}

async fn serve(auth: Auth) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let routes = tonic::service::Routes::new(IngestServiceServer::new(Stub));
    let task = tokio::spawn(async move {
        Supervisor::new()
            .serve(listener, routes, &[SERVICE_NAME], auth, async {
                let _ = stopped.await;
            })
            .await
    });
    Served { addr, _stop: stop, _task: task }
}

/// Adds `authorization: Bearer <token>` when there is a token.
#[derive(Clone)]
struct Bearer(Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            let value = format!("Bearer {token}").parse().map_err(|_| Status::internal("bad token"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

type Client = IngestServiceClient<InterceptedService<Channel, Bearer>>;

async fn channel(addr: SocketAddr) -> Channel {
    eventually("the server to accept connections", || async {
        Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.ok()
    })
    .await
}

async fn client(addr: SocketAddr, token: Option<&str>) -> Client {
    IngestServiceClient::with_interceptor(channel(addr).await, Bearer(token.map(str::to_owned)))
}

/// A token file in a directory of its own under the system's temporary directory.
struct TokenFile {
    dir: PathBuf,
}

impl TokenFile {
    fn new() -> TokenFile {
        let dir = std::env::temp_dir().join(format!("radfin-auth-it-{}", unique_prefix()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TokenFile { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("tokens.json")
    }

    /// Writes `(name, role, token, expires_at)` entries, hashed.
    fn write(&self, entries: &[(&str, &str, &str, Option<&str>)]) {
        let tokens: Vec<serde_json::Value> = entries
            .iter()
            .map(|(name, role, token, expires_at)| {
                let mut entry = serde_json::json!({"name": name, "role": role, "sha256": sha256_hex(token)});
                if let Some(at) = expires_at {
                    entry["expires_at"] = serde_json::json!(at);
                }
                entry
            })
            .collect();
        let json = serde_json::json!({ "tokens": tokens }).to_string();
        // Written aside and renamed, as an operator's tooling should: never half a file.
        let aside = self.dir.join("tokens.json.new");
        std::fs::write(&aside, json).expect("write the token file");
        std::fs::rename(&aside, self.path()).expect("rename the token file");
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    match result {
        Ok(answer) => panic!("expected {code:?} \"{message}\", got {answer:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(status.message(), message, "{status:?}");
        }
    }
}

fn report() -> SubmitReportRequest {
    SubmitReportRequest::default()
}

#[tokio::test]
async fn roles_are_enforced_per_method_and_privileged_denials_are_audited() {
    logs();
    let db = TestDb::create().await.expect("a test database (RADFIN_TEST_DATABASE_URL)");
    // The layer audits with the service's own role. (The pricing role: `audit::record` returns
    // the new id, which needs SELECT on audit_log, and the ingest role has INSERT only.)
    let audit = radfin_db::pool(&db.url_as("radfin_pricing"), 2).await.expect("pool");
    let file = TokenFile::new();
    file.write(&[
        ("ops-alice", "finance", "alice-token", Some("2999-01-01T00:00:00Z")),
        ("ops-bob", "viewer", "bob-token", None),
        ("his-feed", "ingest", "feed-token", None),
        ("ops-old", "admin", "old-token", Some("2020-01-01T00:00:00Z")),
    ]);
    let served = serve(Auth::from_config(Some(&file.path()), audit).expect("a valid token file")).await;
    let addr = served.addr;

    // Health checking needs no token.
    let health = HealthClient::new(channel(addr).await)
        .check(HealthCheckRequest { service: SERVICE_NAME.to_owned() })
        .await
        .expect("health without a token");
    assert_eq!(health.into_inner().status, 1, "SERVING");

    // No token, an unknown one, an expired one: UNAUTHENTICATED, saying which.
    let mut anonymous = client(addr, None).await;
    assert_status(anonymous.sync_now(SyncNowRequest::default()).await, Code::Unauthenticated, "missing bearer token");
    assert_status(
        anonymous.list_sync_runs(ListSyncRunsRequest::default()).await,
        Code::Unauthenticated,
        "missing bearer token",
    );
    let mut unknown = client(addr, Some("guessed-token")).await;
    assert_status(unknown.sync_now(SyncNowRequest::default()).await, Code::Unauthenticated, "unknown token");
    let mut old = client(addr, Some("old-token")).await;
    assert_status(
        old.sync_now(SyncNowRequest::default()).await,
        Code::Unauthenticated,
        "token ops-old expired at 2020-01-01T00:00:00Z",
    );

    // A viewer reads, but may not sync (finance).
    let mut bob = client(addr, Some("bob-token")).await;
    let runs = bob.list_sync_runs(ListSyncRunsRequest::default()).await.expect("a viewer reads").into_inner();
    assert_eq!(runs.runs[0].source, "ops-bob viewer", "the handler got the caller");
    assert_status(
        bob.sync_now(SyncNowRequest::default()).await,
        Code::PermissionDenied,
        "SyncNow needs role finance; token ops-bob has role viewer",
    );

    // Finance syncs and reads, but does not submit.
    let mut alice = client(addr, Some("alice-token")).await;
    let run = alice.sync_now(SyncNowRequest::default()).await.expect("finance syncs").into_inner().run.expect("a run");
    assert_eq!(run.source, "ops-alice finance");
    let runs = alice.list_sync_runs(ListSyncRunsRequest::default()).await.expect("finance reads").into_inner();
    assert_eq!(runs.runs[0].source, "ops-alice finance");
    assert_status(
        alice.submit_report(report()).await,
        Code::PermissionDenied,
        "SubmitReport needs role ingest; token ops-alice has role finance",
    );

    // An ingest token submits and does nothing else, not even read.
    let mut feed = client(addr, Some("feed-token")).await;
    let submitted = feed.submit_report(report()).await.expect("ingest submits").into_inner();
    assert_eq!(submitted.period, "his-feed ingest");
    assert_status(
        feed.list_sync_runs(ListSyncRunsRequest::default()).await,
        Code::PermissionDenied,
        "ListSyncRuns needs role viewer; token his-feed has role ingest",
    );

    // Every denied attempt on a privileged method (SyncNow: finance, SubmitReport: ingest) is in
    // the audit log, by then (the denial waits for its row); refused reads and allowed calls are
    // not written by the layer.
    let mut conn = db.pool().get().await.expect("connection");
    let rows = radfin_db::audit::recent(&mut conn, 100).await.expect("audit rows");
    let mut got: Vec<(String, String, String, String, &str, String)> = rows
        .into_iter()
        .map(|row| {
            let r = row.record;
            let message = r.details["message"].as_str().unwrap_or_default().to_owned();
            (r.actor, r.role, r.action, r.target, r.outcome.as_str(), message)
        })
        .collect();
    got.sort();
    let row = |actor: &str, role: &str, action: &str, message: &str| {
        (
            actor.to_owned(),
            role.to_owned(),
            action.to_owned(),
            String::new(),
            AuditOutcome::Denied.as_str(),
            message.to_owned(),
        )
    };
    let mut expected = vec![
        row("unauthenticated", "", "SyncNow", "missing bearer token"),
        row("unauthenticated", "", "SyncNow", "unknown token"),
        row("ops-old", "admin", "SyncNow", "token ops-old expired at 2020-01-01T00:00:00Z"),
        row("ops-bob", "viewer", "SyncNow", "SyncNow needs role finance; token ops-bob has role viewer"),
        row("ops-alice", "finance", "SubmitReport", "SubmitReport needs role ingest; token ops-alice has role finance"),
    ];
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_token_added_to_the_file_works_within_seconds_without_a_restart() {
    logs();
    let file = TokenFile::new();
    file.write(&[("ops-alice", "finance", "alice-token", None)]);
    let served = serve(Auth::load(&file.path()).expect("a valid token file")).await;
    let mut carol = client(served.addr, Some("carol-token")).await;
    assert_status(carol.list_sync_runs(ListSyncRunsRequest::default()).await, Code::Unauthenticated, "unknown token");

    let added = Instant::now();
    file.write(&[("ops-alice", "finance", "alice-token", None), ("ops-carol", "viewer", "carol-token", None)]);
    let runs = loop {
        match carol.list_sync_runs(ListSyncRunsRequest::default()).await {
            Ok(runs) => break runs.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                assert!(added.elapsed() < Duration::from_secs(5), "the new token was not taken within 5 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(runs.runs[0].source, "ops-carol viewer");
    // Her role is the file's: a viewer may not sync.
    assert_status(
        carol.sync_now(SyncNowRequest::default()).await,
        Code::PermissionDenied,
        "SyncNow needs role finance; token ops-carol has role viewer",
    );

    // An invalid version is ignored (and logged): the tokens loaded before stay.
    std::fs::write(file.path(), r#"{"tokens":[{"name":"x","role":"superuser","sha256":"00"}]}"#).expect("write");
    tokio::time::sleep(auth::RELOAD_INTERVAL * 2).await;
    carol.list_sync_runs(ListSyncRunsRequest::default()).await.expect("the previous tokens stay");
}

#[tokio::test]
async fn without_a_token_file_every_caller_is_the_anonymous_admin() {
    logs();
    let served = serve(Auth::disabled()).await;
    let mut anyone = client(served.addr, None).await;
    let run =
        anyone.sync_now(SyncNowRequest::default()).await.expect("no authentication").into_inner().run.expect("a run");
    assert_eq!(run.source, "anonymous admin");
    let submitted = anyone.submit_report(report()).await.expect("no authentication").into_inner();
    assert_eq!(submitted.period, "anonymous admin");
    // A token, even an unknown one, changes nothing.
    let mut guessing = client(served.addr, Some("guessed")).await;
    guessing.sync_now(SyncNowRequest::default()).await.expect("no authentication");
}
