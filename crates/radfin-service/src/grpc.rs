//! The gRPC server of a service: its own services plus gRPC health checking and server
//! reflection (v1 and v1alpha), so a stock client (`grpcurl`, `buf curl`, Python `grpcio`) can
//! list and call it without the `.proto` files at hand (each port lists its own services, and a
//! file comes with its transitive dependencies, as the protocol says). Every call goes through the
//! [`crate::auth`] layer: bearer tokens, the role each method needs. Configured so, the server
//! speaks TLS or mutual TLS ([`crate::tls`]).

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthReporter;

use crate::auth::Auth;
use crate::reflection::Reflection;
use crate::tls::ServerTls;

/// Binds a service's listen address, naming it in the error.
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("bind {addr}"))
}

/// Serves `routes` on `listener` until `shutdown` resolves, then stops accepting, reports
/// NOT_SERVING, and waits for in-flight calls to finish. `names` are the fully qualified
/// service names reported as SERVING by the health service, and the only ones reflection lists
/// besides health and reflection. `auth` checks every call ([`crate::config::Common::auth`], or
/// [`Auth::disabled`]); with `tls` the server speaks TLS, or mutual TLS ([`crate::tls`]).
///
/// A service with background tasks serves through [`crate::supervise::Supervisor::serve`]
/// instead, which also stops serving when one of them fails.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    names: &[&str],
    auth: Auth,
    tls: Option<&ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    serve_with_health(listener, routes, names, auth, tls, health, health_service, shutdown).await
}

/// [`serve`] with a health reporter made by the caller, who may report NOT_SERVING before
/// `shutdown` resolves.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_with_health(
    listener: TcpListener,
    routes: Routes,
    names: &[&str],
    auth: Auth,
    tls: Option<&ServerTls>,
    health: HealthReporter,
    health_service: HealthServer<impl tonic_health::pb::health_server::Health>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let server = crate::tls::server_builder(tls)?;
    let reflection = Reflection::new(names).context("reflection")?;
    set_status(&health, names, ServingStatus::Serving).await;
    let routes = routes.add_service(health_service).add_service(reflection.v1()).add_service(reflection.v1alpha());

    let addr = listener.local_addr().context("listener address")?;
    let tls = match tls {
        None => "off",
        Some(tls) if tls.is_mutual() => "mutual",
        Some(_) => "on",
    };
    tracing::info!(%addr, services = ?names, authentication = auth.is_enabled(), tls, "grpc serving");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let drain = async move {
        shutdown.await;
        // The whole server ("") and each service stop reporting SERVING before the drain.
        health.set_service_status("", ServingStatus::NotServing).await;
        for name in &names {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
    };
    server
        .layer(crate::metrics::GrpcMetricsLayer)
        .layer(auth.layer())
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), drain)
        .await
        .context("grpc server")
}

/// Reports `status` for the whole server ("") and each of `names`.
pub(crate) async fn set_status(health: &HealthReporter, names: &[&str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in names {
        health.set_service_status(*name, status).await;
    }
}
