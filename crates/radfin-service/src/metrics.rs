//! Prometheus metrics: every service serves `GET /metrics` (text exposition format) on its own
//! listener (`RADFIN_METRICS_LISTEN`, by default 127.0.0.1:9101 ingest, 9102 pricing, 9103
//! ledger, 9104 reporting), a supervised task like the others.
//!
//! Metrics are recorded through the `metrics` facade (the code that records them, in this crate,
//! `radfin-db` and the services, needs no handle) into one Prometheus recorder per process,
//! installed by the first service that starts ([`install`]; idempotent). One process, one
//! registry: in production a process runs one service and Prometheus's scrape adds `job` and
//! `instance`; where several services run in one process (the integration harness), each
//! endpoint renders the same registry, and series that two services would otherwise write alike
//! are told apart by their own labels: `service` on the pool gauges, `consumer` on the
//! consumers', the gRPC `method` (which names its service), the database `operation`.
//!
//! The names, labels and meaning of every series are in ARCHITECTURE.md ("Metrics").

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower::{Layer, Service};

use crate::shutdown::Shutdown;
use crate::supervise::Supervisor;

/// The variable naming a service's metrics listen address.
pub const LISTEN_ENV: &str = "RADFIN_METRICS_LISTEN";

/// How often gauges read from elsewhere (the pool, the database, the broker) are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets (seconds) of every `*_seconds` histogram: a millisecond to a minute.
pub const LATENCY_BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0];

/// Buckets (messages or reports) of the batch size histograms.
pub const SIZE_BUCKETS: [f64; 13] =
    [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0];

/// gRPC calls by method and status code.
pub const GRPC_REQUESTS: &str = "radfin_grpc_requests_total";
/// gRPC call durations by method: to the status (the trailers of a streaming call).
pub const GRPC_DURATION: &str = "radfin_grpc_request_duration_seconds";
/// Messages per batch a consumer fetched.
pub const CONSUMER_BATCH_SIZE: &str = "radfin_consumer_batch_size";
/// How long a consumer took to settle a batch (handled and acked, or dead-lettered).
pub const CONSUMER_BATCH_DURATION: &str = "radfin_consumer_batch_duration_seconds";
/// Messages a consumer handled and acked.
pub const CONSUMER_ACKED: &str = "radfin_consumer_acked_total";
/// Deliveries that were not a message's first (`delivered > 1`).
pub const CONSUMER_REDELIVERIES: &str = "radfin_consumer_redeliveries_total";
/// Messages of the stream not yet delivered to the consumer (JetStream `num_pending`).
pub const CONSUMER_LAG: &str = "radfin_consumer_lag";
/// Messages delivered to the consumer and not yet acknowledged (`num_ack_pending`).
pub const CONSUMER_ACK_PENDING: &str = "radfin_consumer_ack_pending";
/// Messages dead-lettered, by consumer and reason kind (`undecodable`, `permanent`).
pub const DEAD_LETTERS: &str = "radfin_dead_letters_total";

/// Histograms with [`SIZE_BUCKETS`].
const SIZE_HISTOGRAMS: [&str; 2] = [CONSUMER_BATCH_SIZE, "radfin_outbox_relay_batch_size"];

/// The process's recorder, installed once.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the same handle) and
/// describes the series. Metrics recorded before it are lost, so services call it first.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        let size_matchers = SIZE_HISTOGRAMS.iter().map(|name| Matcher::Full((*name).to_owned()));
        for (matcher, buckets) in std::iter::once((Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS[..]))
            .chain(size_matchers.map(|m| (m, &SIZE_BUCKETS[..])))
        {
            builder = match builder.set_buckets_for_metric(matcher, buckets) {
                Ok(builder) => builder,
                // Only empty buckets are refused; ours are constants.
                Err(e) => unreachable!("histogram buckets: {e}"),
            };
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will show nothing");
        }
        describe();
        // Histograms are drained into their buckets by upkeep; without it they grow unbounded.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".to_owned()).spawn(move || {
            loop {
                std::thread::sleep(SAMPLE_INTERVAL);
                upkeep.run_upkeep();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

/// The HELP text of every series (Prometheus shows it; it does not create the series).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(GRPC_REQUESTS, "gRPC calls answered, by method and status code");
    describe_histogram!(GRPC_DURATION, metrics::Unit::Seconds, "gRPC call durations, by method");
    describe_histogram!(CONSUMER_BATCH_SIZE, "Messages per fetched batch, by consumer");
    describe_histogram!(
        CONSUMER_BATCH_DURATION,
        metrics::Unit::Seconds,
        "Time to settle a fetched batch (handled and acked, or dead-lettered), by consumer"
    );
    describe_counter!(CONSUMER_ACKED, "Messages handled and acknowledged, by consumer");
    describe_counter!(CONSUMER_REDELIVERIES, "Deliveries that were not a message's first, by consumer");
    describe_gauge!(CONSUMER_LAG, "Messages of the stream not yet delivered to the consumer (num_pending)");
    describe_gauge!(CONSUMER_ACK_PENDING, "Messages delivered to the consumer and not yet acknowledged");
    describe_counter!(DEAD_LETTERS, "Messages dead-lettered, by consumer and reason (undecodable, permanent)");
    describe_gauge!("radfin_db_pool_max", "Most connections the service's pool opens");
    describe_gauge!("radfin_db_pool_size", "Connections the service's pool holds open");
    describe_gauge!("radfin_db_pool_available", "Idle connections of the service's pool");
    describe_gauge!("radfin_db_pool_waiting", "Callers waiting for a connection of the service's pool");
    describe_histogram!(
        "radfin_db_operation_duration_seconds",
        metrics::Unit::Seconds,
        "Database operations (transactions, queries) by operation and outcome"
    );
    describe_counter!("radfin_db_transaction_retries_total", "Serialization failures retried, by operation");
    describe_gauge!("radfin_outbox_depth", "Stored reports not yet published to the bus (ingest)");
    describe_gauge!("radfin_outbox_oldest_age_seconds", "Age of the oldest outbox entry, 0 when empty (ingest)");
    describe_counter!("radfin_outbox_published_total", "Reports the relay published from the outbox (ingest)");
    describe_histogram!("radfin_outbox_relay_batch_size", "Reports per relay publish (ingest)");
    describe_counter!("radfin_reconciler_passes_total", "Reconciler passes, by outcome (ok, failed, deferred)");
    describe_counter!(
        "radfin_reconciler_findings_total",
        "Stored reports the reconciler found missing from the ledger"
    );
    describe_counter!("radfin_reconciler_republished_total", "Reports the reconciler republished");
    describe_gauge!("radfin_held_reports", "Report revisions currently held, by reason (pricing)");
}

/// Where a service serves `/metrics`.
#[derive(Clone, Debug)]
pub enum Listen {
    /// Bind this address when the service starts.
    Addr(SocketAddr),
    /// A socket bound already (tests bind port 0 and read the port first).
    Bound(Arc<std::net::TcpListener>),
}

impl Listen {
    /// [`LISTEN_ENV`], by default 127.0.0.1:`port`.
    pub fn from_env(port: u16) -> anyhow::Result<Self> {
        Ok(Self::Addr(crate::config::listen(LISTEN_ENV, port)?))
    }

    /// An ephemeral port on the loopback interface (the default of tests' configurations).
    pub fn ephemeral() -> Self {
        Self::Addr(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// A listener bound by the caller (a tokio one is turned into a std one with `into_std`).
    pub fn bound(listener: std::net::TcpListener) -> Self {
        Self::Bound(Arc::new(listener))
    }

    /// The listener to serve on.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        match self {
            Self::Addr(addr) => crate::grpc::bind(*addr).await,
            Self::Bound(listener) => {
                let listener = listener.try_clone().context("metrics listener")?;
                listener.set_nonblocking(true).context("metrics listener")?;
                TcpListener::from_std(listener).context("metrics listener")
            }
        }
    }
}

/// Installs the recorder, then, supervised: serves `/metrics` on `listen` until the
/// supervisor's shutdown (so it can be scraped while the service drains) and samples `pool`'s
/// gauges (labelled `service`). Returns the address served.
pub async fn spawn(
    supervisor: &mut Supervisor,
    service: &'static str,
    listen: &Listen,
    pool: &radfin_db::Pool,
) -> anyhow::Result<SocketAddr> {
    install();
    let listener = listen.bind().await?;
    let addr = listener.local_addr().context("metrics listener address")?;
    tracing::info!(%addr, "metrics serving");
    supervisor.spawn("metrics", serve(listener, supervisor.shutdown()));
    let pool = pool.clone();
    supervisor.spawn(
        "pool metrics",
        sample_every(supervisor.shutdown(), move || {
            let status = pool.status();
            for (gauge, value) in [
                ("radfin_db_pool_max", status.max_size),
                ("radfin_db_pool_size", status.size),
                ("radfin_db_pool_available", status.available),
                ("radfin_db_pool_waiting", status.waiting),
            ] {
                metrics::gauge!(gauge, "service" => service).set(value as f64);
            }
            std::future::ready(())
        }),
    );
    Ok(addr)
}

/// Serves `GET /metrics` (the process's registry, text exposition format 0.0.4) on `listener`
/// until `shutdown`.
pub async fn serve(listener: TcpListener, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let handle = install().clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()) }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
        .context("metrics http server")
}

/// Runs `sample` now and then every [`SAMPLE_INTERVAL`] until `shutdown`: a supervised task
/// that sets gauges from what it reads (a failed read should be logged, not returned).
pub async fn sample_every<F, Fut>(mut shutdown: Shutdown, mut sample: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.requested() => return Ok(()),
        }
        tokio::select! {
            () = sample() => {}
            () = shutdown.requested() => return Ok(()),
        }
    }
}

/// The gRPC methods anyone may call (besides those of [`crate::auth::policy::POLICY`]).
const PUBLIC_METHODS: [&str; 4] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The `method` label of a call's path: the path without its leading `/` for a method radfin
/// serves, `other` for anything else (so a client cannot make up series).
pub fn method_label(path: &str) -> &'static str {
    crate::auth::policy::POLICY
        .iter()
        .map(|(method, _)| *method)
        .chain(PUBLIC_METHODS)
        .find(|method| *method == path)
        .map_or("other", |method| method.strip_prefix('/').unwrap_or(method))
}

/// The names of the gRPC status codes, by number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of a gRPC status code, as the `code` label shows it.
pub fn code_name(code: i32) -> &'static str {
    usize::try_from(code).ok().and_then(|i| CODE_NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

/// The code of a `grpc-status` header or trailer, when there is one.
fn grpc_status(headers: &http::HeaderMap) -> Option<&'static str> {
    let value = headers.get("grpc-status")?;
    Some(value.to_str().ok().and_then(|v| v.parse().ok()).map_or("UNKNOWN", code_name))
}

/// The gRPC code of a response that is not HTTP 200 (gRPC's HTTP-to-gRPC mapping).
fn http_code(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INTERNAL",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "UNIMPLEMENTED",
        429 | 502 | 503 | 504 => "UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

/// Wraps a gRPC server's services in [`GrpcMetrics`] (metrics and the server span of each call):
/// put outermost, so that calls refused by the layers within (authentication) are counted and
/// traced too.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner }
    }
}

/// Traces each call: a server span named by the method (`otel.name`, `rpc.service`,
/// `rpc.method`) continuing the caller's W3C trace context (`traceparent`, `tracestate` of the
/// request metadata), with the call's code (`rpc.grpc.status_code`) and the server's failures
/// marked as errors; the handler runs within it, so its logs, database operations and
/// publishes are part of the caller's trace.
///
/// Counts each call in [`GRPC_REQUESTS`] by method and code and records its duration in
/// [`GRPC_DURATION`]. The code is the `grpc-status` of the response headers (an error answered
/// at once, "trailers-only"), else of the trailers, when the body ends (a unary call's success,
/// or the end of a stream); a 200 response that ends without one is OK, and one dropped before
/// its end (the client went away) is CANCELLED.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body + Unpin,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = method_label(request.uri().path());
        let span = server_span(method, &request);
        let call = Call { method, started: Instant::now(), span: span.clone() };
        let response = span.in_scope(|| self.inner.call(request));
        let response = tracing::Instrument::instrument(response, span);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let pending = match grpc_status(&parts.headers) {
                        Some(code) => {
                            call.finish(code);
                            None
                        }
                        None if parts.status != http::StatusCode::OK => {
                            call.finish(http_code(parts.status));
                            None
                        }
                        None => Some(call),
                    };
                    Ok(http::Response::from_parts(parts, MeteredBody { inner: body, call: pending }))
                }
                Err(e) => {
                    call.finish("UNKNOWN");
                    Err(e)
                }
            }
        })
    }
}

/// The server span of a call to `method` ([`method_label`]): named by the method, a child of
/// the W3C trace context of the request's metadata (a new trace without one), its gRPC code
/// recorded when the call ends ([`Call::finish`]).
fn server_span<B>(method: &'static str, request: &http::Request<B>) -> tracing::Span {
    let (service, name) = method.split_once('/').unwrap_or(("other", method));
    let span = tracing::info_span!(
        "grpc",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = name,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = crate::telemetry::extract(request.headers());
    if let Err(e) = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent) {
        tracing::trace!(error = %e, "no trace context to continue");
    }
    span
}

/// Codes a server span reports as errors (OpenTelemetry's RPC conventions): the server's
/// failures, not the caller's mistakes.
const SERVER_ERROR_CODES: [&str; 6] =
    ["UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"];

/// A call being answered.
#[derive(Debug)]
struct Call {
    method: &'static str,
    started: Instant,
    /// The call's server span; it ends when the call is recorded (and dropped).
    span: tracing::Span,
}

impl Call {
    fn finish(self, code: &'static str) {
        metrics::counter!(GRPC_REQUESTS, "method" => self.method, "code" => code).increment(1);
        metrics::histogram!(GRPC_DURATION, "method" => self.method).record(self.started.elapsed().as_secs_f64());
        let number = CODE_NAMES.iter().position(|name| *name == code).unwrap_or(2);
        self.span.record("rpc.grpc.status_code", number as u64);
        if SERVER_ERROR_CODES.contains(&code) {
            self.span.record("otel.status_code", "error");
        }
    }
}

/// A response body that records its call when its trailers come, it ends, or it is dropped.
#[derive(Debug)]
pub struct MeteredBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: http_body::Body + Unpin> http_body::Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(|t| grpc_status(t).unwrap_or("OK")),
            Poll::Ready(Some(Err(_))) => Some("UNKNOWN"),
            Poll::Ready(None) => Some("OK"),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish("CANCELLED");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_radfin_serves_are_labelled_and_others_are_not() {
        assert_eq!(
            method_label("/radfin.ingest.v1.IngestService/SubmitBatch"),
            "radfin.ingest.v1.IngestService/SubmitBatch"
        );
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "grpc.health.v1.Health/Check");
        assert_eq!(method_label("/radfin.ingest.v1.IngestService/Made-up"), "other");
        assert_eq!(method_label("/grpc.health.v1.Health/"), "other");
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
        assert_eq!(http_code(http::StatusCode::SERVICE_UNAVAILABLE), "UNAVAILABLE");
    }

    #[test]
    fn installing_twice_keeps_one_recorder() {
        let first: *const PrometheusHandle = install();
        let second: *const PrometheusHandle = install();
        assert_eq!(first, second);
        metrics::counter!(GRPC_REQUESTS, "method" => "test/Method", "code" => "OK").increment(2);
        let text = install().render();
        assert!(text.contains(r#"radfin_grpc_requests_total{method="test/Method",code="OK"} 2"#), "{text}");
    }
}
