//! `Supervisor::serve`: a task that fails takes the health check and the service down with it.

use std::net::SocketAddr;

use radfin_service::auth::Auth;
use radfin_service::supervise::Supervisor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::*;

const SERVICE: &str = "radfin.test.v1.TestService";

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

async fn health(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = eventually("the server to accept connections", || async {
        Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.ok()
    })
    .await;
    HealthClient::new(channel)
}

fn status(response: &HealthCheckResponse) -> ServingStatus {
    ServingStatus::try_from(response.status).expect("a known status")
}

/// Two tasks that stop when the supervisor tells them to: one when draining begins, one once
/// the server has drained.
fn well_behaved(supervisor: &mut Supervisor) {
    let mut stop = supervisor.shutdown();
    supervisor.spawn("well-behaved", async move {
        stop.requested().await;
        Ok(())
    });
    let mut draining = supervisor.draining();
    supervisor.spawn("schedule", async move {
        draining.requested().await;
        Ok(())
    });
}

#[tokio::test]
async fn a_failing_task_turns_health_not_serving_and_serve_returns_its_error() {
    logs();
    let (listener, addr) = listener().await;
    let mut supervisor = Supervisor::new().with_drain_deadline(Duration::from_secs(2));
    well_behaved(&mut supervisor);
    let (fail, failed) = oneshot::channel::<()>();
    supervisor.spawn("consumer", async move {
        let _ = failed.await;
        anyhow::bail!("the stream is gone")
    });
    let serving = tokio::spawn(async move {
        supervisor
            .serve(listener, tonic::service::Routes::default(), &[SERVICE], Auth::disabled(), std::future::pending())
            .await
    });

    let mut client = health(addr).await;
    for service in ["", SERVICE] {
        let checked = client.check(HealthCheckRequest { service: service.into() }).await.expect("check");
        assert_eq!(status(checked.get_ref()), ServingStatus::Serving, "{service:?}");
    }
    // Watching the whole server's status (an in-flight call the drain waits for).
    let mut watch = client.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    let first = watch.message().await.expect("watch").expect("a status");
    assert_eq!(status(&first), ServingStatus::Serving);

    fail.send(()).expect("the task is waiting");
    let next = watch.message().await.expect("watch").expect("a status");
    assert_eq!(status(&next), ServingStatus::NotServing);
    drop((watch, client));

    let error = tokio::time::timeout(DEADLINE, serving)
        .await
        .expect("serve returns")
        .expect("serve task")
        .expect_err("a failed task fails the service");
    let message = format!("{error:#}");
    assert!(message.contains("consumer failed: the stream is gone"), "{message}");
    assert!(!message.contains("did not stop"), "the other tasks stopped when told: {message}");
    assert!(!message.contains("schedule"), "a task told to stop ended normally: {message}");
}

#[tokio::test]
async fn a_panicking_task_fails_the_service() {
    logs();
    let (listener, _) = listener().await;
    let mut supervisor = Supervisor::new().with_drain_deadline(Duration::from_secs(2));
    well_behaved(&mut supervisor);
    supervisor.spawn("relay", async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        panic!("outbox row without a report");
    });
    let served = tokio::time::timeout(
        DEADLINE,
        supervisor.serve(
            listener,
            tonic::service::Routes::default(),
            &[SERVICE],
            Auth::disabled(),
            std::future::pending(),
        ),
    )
    .await
    .expect("serve returns");
    let message = format!("{:#}", served.expect_err("a panic fails the service"));
    assert!(message.contains("relay panicked: outbox row without a report"), "{message}");
}

#[tokio::test]
async fn a_task_ending_unasked_fails_the_service() {
    logs();
    let (listener, _) = listener().await;
    let mut supervisor = Supervisor::new().with_drain_deadline(Duration::from_secs(2));
    supervisor.spawn("feed", async { Ok(()) });
    let served = tokio::time::timeout(
        DEADLINE,
        supervisor.serve(
            listener,
            tonic::service::Routes::default(),
            &[SERVICE],
            Auth::disabled(),
            std::future::pending(),
        ),
    )
    .await
    .expect("serve returns");
    let message = format!("{:#}", served.expect_err("a task may not just stop"));
    assert!(message.contains("feed ended while no shutdown was requested"), "{message}");
}

#[tokio::test]
async fn a_requested_shutdown_drains_then_stops_the_tasks_and_serve_succeeds() {
    logs();
    let (listener, addr) = listener().await;
    let mut supervisor = Supervisor::new().with_drain_deadline(Duration::from_secs(2));
    well_behaved(&mut supervisor);
    let (shutdown, requested) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let requested = async move {
            let _ = requested.await;
        };
        supervisor.serve(listener, tonic::service::Routes::default(), &[SERVICE], Auth::disabled(), requested).await
    });
    let mut client = health(addr).await;
    let checked = client.check(HealthCheckRequest { service: String::new() }).await.expect("check");
    assert_eq!(status(checked.get_ref()), ServingStatus::Serving);
    drop(client);

    shutdown.send(()).expect("serving");
    tokio::time::timeout(DEADLINE, serving)
        .await
        .expect("serve returns")
        .expect("serve task")
        .expect("a requested shutdown is not a failure");
}

#[tokio::test]
async fn a_task_that_does_not_stop_in_time_is_aborted_and_reported() {
    logs();
    let (listener, _) = listener().await;
    let mut supervisor = Supervisor::new().with_drain_deadline(Duration::from_millis(300));
    supervisor.spawn("stuck", std::future::pending());
    let served = tokio::time::timeout(
        DEADLINE,
        supervisor.serve(listener, tonic::service::Routes::default(), &[SERVICE], Auth::disabled(), async {}),
    )
    .await
    .expect("serve returns");
    let message = format!("{:#}", served.expect_err("a stuck task is a failure"));
    assert!(message.contains("stuck did not stop within"), "{message}");
}
