//! Supervision of a service's background tasks (bus consumers, the outbox relay, retry loops,
//! feeds) together with its gRPC server, so that a task that dies is never left dead behind a
//! health check that says SERVING.
//!
//! When a supervised task fails (returns an error, panics, or ends while no shutdown was
//! requested), the whole server reports NOT_SERVING at once, the gRPC server stops taking calls
//! and drains, the other tasks are told to stop and are joined, each step with a deadline, and
//! [`Supervisor::serve`] returns the failure, so the binary exits non-zero and is restarted.
//!
//! On a requested shutdown the order is the same: the gRPC server drains first (what its calls
//! committed is still relayed and consumed), then the tasks stop and are joined. Tasks stop on
//! one of two signals: [`Supervisor::draining`], requested as soon as the service begins to
//! drain (for schedules and other work that should not start anew), or
//! [`Supervisor::shutdown`], requested once the gRPC server has drained (for what must outlive
//! the last calls: the relay, the consumers). A task that returns `Ok` once either was
//! requested has ended normally.
//!
//! ```no_run
//! # async fn example(listener: tokio::net::TcpListener, routes: tonic::service::Routes) -> anyhow::Result<()> {
//! use radfin_service::supervise::Supervisor;
//!
//! let mut supervisor = Supervisor::new();
//! let mut stop = supervisor.shutdown();
//! supervisor.spawn("relay", async move {
//!     stop.requested().await;
//!     Ok(())
//! });
//! let auth = radfin_service::auth::Auth::disabled();
//! supervisor.serve(listener, routes, &["radfin.ingest.v1.IngestService"], auth, radfin_service::shutdown::signal()).await
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::auth::Auth;
use crate::grpc;
use crate::shutdown::{self, Shutdown, Trigger};
use crate::tls::ServerTls;

/// How long in-flight gRPC calls may take to finish once draining began, and then again how long
/// the tasks may take to stop: together within Kubernetes' default 30 s grace period.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(12);

/// A service's background tasks and the signal they stop on.
pub struct Supervisor {
    tasks: JoinSet<anyhow::Result<()>>,
    names: HashMap<tokio::task::Id, &'static str>,
    drain: Trigger,
    draining: Shutdown,
    stop: Trigger,
    stopped: Shutdown,
    drain_deadline: Duration,
    tls: Option<ServerTls>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tasks: Vec<&str> = self.names.values().copied().collect();
        tasks.sort_unstable();
        f.debug_struct("Supervisor")
            .field("tasks", &tasks)
            .field("drain_deadline", &self.drain_deadline)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        let (drain, draining) = shutdown::channel();
        let (stop, stopped) = shutdown::channel();
        Self {
            tasks: JoinSet::new(),
            names: HashMap::new(),
            drain,
            draining,
            stop,
            stopped,
            drain_deadline: DRAIN_DEADLINE,
            tls: None,
        }
    }

    /// Another deadline for each of the two drains (gRPC calls, then tasks) than [`DRAIN_DEADLINE`].
    pub fn with_drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// Serves TLS, or mutual TLS, with `tls` ([`crate::config::Common::tls`]'s `server`, set by
    /// `RADFIN_TLS_CERT` and its siblings); `None`, the default, serves plaintext.
    pub fn with_tls(mut self, tls: Option<ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    /// The signal the supervised tasks stop on: requested once the gRPC server has drained.
    pub fn shutdown(&self) -> Shutdown {
        self.stopped.clone()
    }

    /// Requested as soon as the service begins to drain (shutdown requested, or a task failed),
    /// before the gRPC server has finished its calls: for work that should stop first.
    pub fn draining(&self) -> Shutdown {
        self.draining.clone()
    }

    /// Runs `task` under supervision, `name` naming it in logs and errors. It should stop and
    /// return `Ok` when [`Supervisor::shutdown`] is requested, and return `Err` when it cannot
    /// go on.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Serves `routes` (with health and reflection, every call checked by `auth`, TLS as
    /// [`Supervisor::with_tls`] set, as [`grpc::serve`]) on `listener` until `shutdown` resolves or a supervised task fails, then
    /// drains the server and stops the tasks. `Err` when a task failed, did not stop in time, or
    /// the server failed.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        routes: Routes,
        names: &[&str],
        auth: Auth,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let tls = self.tls.take();
        let server =
            grpc::serve_with_health(listener, routes, names, auth, tls.as_ref(), health.clone(), health_service, {
                let mut draining = self.draining.clone();
                async move { draining.requested().await }
            });
        tokio::pin!(server, shutdown);

        let mut failures: Vec<String> = Vec::new();
        let mut drain_by: Option<Instant> = None;
        let mut shutdown_seen = false;
        let served = loop {
            tokio::select! {
                served = &mut server => break Some(served),
                () = &mut shutdown, if !shutdown_seen => {
                    shutdown_seen = true;
                    self.drain.fire();
                    drain_by.get_or_insert_with(|| Instant::now() + self.drain_deadline);
                }
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    // Once draining, a task may end because it was told to.
                    if let Some(failure) = self.failure(joined, drain_by.is_some()) {
                        tracing::error!(
                            error = %failure,
                            "a supervised task failed; reporting NOT_SERVING and shutting down"
                        );
                        failures.push(failure);
                        grpc::set_status(&health, names, ServingStatus::NotServing).await;
                        self.drain.fire();
                        drain_by.get_or_insert_with(|| Instant::now() + self.drain_deadline);
                    }
                }
                () = sleep_until(drain_by) => {
                    tracing::warn!(
                        deadline_ms = self.drain_deadline.as_millis(),
                        "in-flight calls did not finish within the drain deadline; dropping them"
                    );
                    break None;
                }
            }
        };
        // Calls are over (what they committed is still relayed and consumed): stop the tasks.
        self.stop.fire();
        let stop_by = Instant::now() + self.drain_deadline;
        loop {
            tokio::select! {
                joined = self.tasks.join_next_with_id() => match joined {
                    None => break,
                    Some(joined) => {
                        if let Some(failure) = self.failure(joined, true) {
                            tracing::error!(error = %failure, "a supervised task failed while stopping");
                            failures.push(failure);
                        }
                    }
                },
                () = tokio::time::sleep_until(stop_by) => {
                    let mut late: Vec<&str> = self.names.values().copied().collect();
                    late.sort_unstable();
                    let failure = format!("{} did not stop within {:?}", late.join(", "), self.drain_deadline);
                    tracing::error!(error = %failure, "aborting the tasks that did not stop");
                    failures.push(failure);
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        if !failures.is_empty() {
            if let Some(Err(e)) = served {
                failures.push(format!("{e:#}"));
            }
            anyhow::bail!("service stopped after a failure: {}", failures.join("; "));
        }
        served.unwrap_or(Ok(()))
    }

    /// What went wrong with a task that ended, if anything; `stopping` when it was told to stop.
    fn failure(
        &mut self,
        joined: Result<(tokio::task::Id, anyhow::Result<()>), JoinError>,
        stopping: bool,
    ) -> Option<String> {
        let (id, result) = match joined {
            Ok((id, result)) => (id, Ok(result)),
            Err(e) => (e.id(), Err(e)),
        };
        let name = self.names.remove(&id).unwrap_or("task");
        match result {
            Ok(Ok(())) if stopping => {
                tracing::debug!(task = name, "task stopped");
                None
            }
            Ok(Ok(())) => Some(format!("{name} ended while no shutdown was requested")),
            Ok(Err(e)) => Some(format!("{name} failed: {e:#}")),
            Err(e) if e.is_panic() => Some(format!("{name} panicked: {}", panic_message(e.into_panic()))),
            Err(_) => Some(format!("{name} was cancelled")),
        }
    }
}

/// Resolves at `deadline`, never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "(no message)".to_owned(), |m| (*m).to_owned()),
    }
}
