//! Roles (spec §8): every service checks the caller's bearer token per method; each denied
//! privileged attempt is audited, and so is each allowed one, with the token's name and role.

use radfin_proto::ledger::v1 as ledger;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::*;

type Intercept = Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send + Sync>;
type Authorized = InterceptedService<Channel, Intercept>;

async fn ledger_as(stack: &Stack, token: &str) -> LedgerServiceClient<Authorized> {
    let channel = Channel::from_shared(format!("http://{}", stack.ledger)).unwrap().connect().await.unwrap();
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let intercept: Intercept = Box::new(move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", header.clone());
        Ok(request)
    });
    LedgerServiceClient::new(InterceptedService::new(channel, intercept))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_cannot_rerun_viewer_cannot_close_and_a_bad_token_is_refused_each_audited() {
    let dir = std::env::temp_dir().join(format!("radfin-roles-{}", radfin_harness::unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.json");
    let entry = |name: &str, role: &str| json!({"name": name, "role": role, "sha256": radfin_service::auth::sha256_hex(&format!("secret-{name}"))});
    let file = json!({"tokens": [entry("ops-viewer", "viewer"), entry("ops-finance", "finance"), entry("ops-admin", "admin")]});
    std::fs::write(&tokens, file.to_string()).unwrap();
    let stack = Stack::start_with_tokens(tokens).await.unwrap();

    let close = ledger::ClosePeriodRequest { period: "2001-01".into(), reason: "year-end".into() };
    let rerun = ledger::RerunPeriodRequest {
        period: "2001-01".into(),
        reason: "retroactive rate".into(),
        mode: ledger::RerunMode::Preview as i32,
        run_id: 0,
    };
    let denied = ledger_as(&stack, "secret-ops-viewer").await.close_period(close.clone()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("needs role finance"), "{}", denied.message());
    let denied = ledger_as(&stack, "secret-ops-finance").await.rerun_period(rerun.clone()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("needs role admin"), "{}", denied.message());
    let refused = ledger_as(&stack, "not-a-token").await.close_period(close.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let anonymous = stack.ledger_client().await.unwrap().list_periods(ledger::ListPeriodsRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "no token at all");

    // Allowed: the viewer reads, finance closes, admin reruns.
    ledger_as(&stack, "secret-ops-viewer").await.list_periods(ledger::ListPeriodsRequest {}).await.unwrap();
    ledger_as(&stack, "secret-ops-finance").await.close_period(close).await.unwrap();
    ledger_as(&stack, "secret-ops-admin").await.rerun_period(rerun).await.unwrap();

    let audit = ledger_as(&stack, "secret-ops-finance")
        .await
        .list_audit_events(ledger::ListAuditEventsRequest { limit: 50 })
        .await
        .unwrap()
        .into_inner()
        .events;
    let rows: Vec<(&str, &str, &str, &str)> =
        audit.iter().map(|e| (e.actor.as_str(), e.role.as_str(), e.action.as_str(), e.outcome.as_str())).collect();
    for expected in [
        ("ops-viewer", "viewer", "ClosePeriod", "DENIED"),
        ("ops-finance", "finance", "RerunPeriod", "DENIED"),
        ("ops-finance", "finance", "ClosePeriod", "ALLOWED"),
        ("ops-admin", "admin", "RerunPeriod PREVIEW", "ALLOWED"),
    ] {
        assert!(rows.contains(&expected), "{expected:?} in {rows:?}");
    }
    // The viewer's attempt and the bad token's.
    assert_eq!(rows.iter().filter(|r| r.2 == "ClosePeriod" && r.3 == "DENIED").count(), 2, "{rows:?}");
    stack.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
