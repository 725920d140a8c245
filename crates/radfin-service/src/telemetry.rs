//! Structured logs and traces. Logs go to stderr (JSON when `RADFIN_LOG_FORMAT=json`, each line
//! with the `trace_id` of its span), filtered by `RUST_LOG` (default `info`). Traces are exported
//! over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without it spans are still made
//! (so logs carry trace ids and the caller's trace context is passed on) but go nowhere.
//!
//! W3C trace context (`traceparent`, `tracestate`) is propagated across every hop: the gRPC
//! server layer ([`crate::metrics::GrpcMetricsLayer`]) continues the caller's trace, clients
//! inject the current span's context ([`TraceContext`]), the bus writes it into NATS headers and
//! the consuming loop ([`crate::consume`]) continues it, and database operations
//! (`radfin_db::timed`) are spans of their own.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::sync::{Arc, OnceLock};
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

use tracing::Subscriber;
use tracing::dispatcher::{Dispatch, WeakDispatch};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// The variable naming the OTLP/gRPC collector; unset, nothing is exported.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Flushes pending spans when dropped.
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}

/// Sets up logging and tracing for `service`. Call once, first thing in `main`.
pub fn init(service: &'static str) -> anyhow::Result<Guard> {
    if std::env::var_os(OTLP_ENDPOINT_ENV).is_some_and(|v| !v.is_empty()) {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        install(service, provider.clone())?;
        Ok(Guard(Some(provider)))
    } else {
        // Spans without an exporter: trace ids for the logs and the caller's context passed on.
        install(service, SdkTracerProvider::builder().build())?;
        Ok(Guard(None))
    }
}

/// [`init`] with spans going to `provider`'s exporters (tests use an in-memory exporter); the
/// guard shuts it down (flushing it) when dropped.
pub fn init_with_provider(service: &'static str, provider: SdkTracerProvider) -> anyhow::Result<Guard> {
    install(service, provider.clone())?;
    Ok(Guard(Some(provider)))
}

fn install(service: &'static str, provider: SdkTracerProvider) -> anyhow::Result<()> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let json = std::env::var("RADFIN_LOG_FORMAT").is_ok_and(|v| v == "json");
    tracing::dispatcher::set_global_default(dispatch(json, provider.tracer(service), std::io::stderr))?;
    opentelemetry::global::set_tracer_provider(provider);
    Ok(())
}

/// Logs to `writer` (JSON or plain) filtered by `RUST_LOG`, and spans to `tracer`.
fn dispatch<W>(json: bool, tracer: SdkTracer, writer: W) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_target(false);
    let this = Arc::new(OnceLock::new());
    let fmt = if json {
        let format = tracing_subscriber::fmt::format().json().with_target(false);
        fmt.json().event_format(WithTraceId { format, dispatch: this.clone() }).boxed()
    } else {
        fmt.compact().fmt_fields(PlainFields).boxed()
    };
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(filter).with(fmt).with(otel));
    // Weak: the dispatch owns the formatter that holds it.
    let _ = this.set(dispatch.downgrade());
    dispatch
}

/// The fields of plain log lines and their spans, as `name=value` (the message as is), without
/// those of OpenTelemetry's conventions (`otel.*`, `rpc.*`, `db.*`, `messaging.*`): they are for
/// traces, and would drown the line.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> std::fmt::Result {
        write_plain(&mut writer, fields)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        let mut added = String::new();
        write_plain(&mut added, fields)?;
        if !added.is_empty() {
            if !current.fields.is_empty() {
                current.fields.push(' ');
            }
            current.fields.push_str(&added);
        }
        Ok(())
    }
}

fn write_plain(writer: &mut dyn std::fmt::Write, fields: impl RecordFields) -> std::fmt::Result {
    let mut visitor = PlainVisitor { writer, result: Ok(()), empty: true };
    fields.record(&mut visitor);
    visitor.result
}

struct PlainVisitor<'a> {
    writer: &'a mut dyn std::fmt::Write,
    result: std::fmt::Result,
    empty: bool,
}

impl tracing::field::Visit for PlainVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || ["otel.", "rpc.", "db.", "messaging."].iter().any(|p| name.starts_with(p)) {
            return;
        }
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else {
            write!(self.writer, "{separator}{name}={value:?}")
        };
    }
}

/// A JSON event format with `"trace_id"` added to each line logged within a traced span.
struct WithTraceId<F> {
    format: F,
    /// The dispatch the format is part of, to look up the OpenTelemetry context of the event's
    /// span (the current dispatcher is not reachable while an event is being dispatched).
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
        let trace_id = ctx
            .parent_span()
            .zip(dispatch)
            .and_then(|(span, dispatch)| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch));
        let trace_id = trace_id.and_then(|cx| {
            let span_context = cx.span().span_context().clone();
            span_context.is_valid().then(|| span_context.trace_id())
        });
        let Some(trace_id) = trace_id else {
            return self.format.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.format.format_event(ctx, Writer::new(&mut line), event)?;
        // One JSON object per line: the field goes in before its closing brace.
        match line.trim_end().strip_suffix('}') {
            Some(open) => writeln!(writer, "{open},\"trace_id\":\"{trace_id}\"}}"),
            None => writer.write_str(&line),
        }
    }
}

/// The OpenTelemetry context of W3C trace context headers (`traceparent`, `tracestate`) of a
/// request, with the global propagator; an empty context when there is none.
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HttpHeaders(headers)))
}

/// Writes the current span's trace context into gRPC request metadata, with the global
/// propagator (nothing outside a trace).
pub fn inject_current(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Metadata(metadata));
    });
}

/// A client interceptor that sends the current span's trace context with every call:
/// `Client::with_interceptor(channel, TraceContext)`, or called from another interceptor.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContext;

impl tonic::service::Interceptor for TraceContext {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current(request.metadata_mut());
        Ok(request)
    }
}

/// A channel whose calls carry the caller's trace context ([`TraceContext`]).
pub type TracedChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, TraceContext>;

/// `channel` sending the caller's trace context with every call.
pub fn traced(channel: tonic::transport::Channel) -> TracedChannel {
    tonic::service::interceptor::InterceptedService::new(channel, TraceContext)
}

struct HttpHeaders<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (MetadataKey::<Ascii>::from_bytes(key.as_bytes()), MetadataValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_round_trips_through_metadata_and_headers() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        let context = extract(&headers);
        assert_eq!(context.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");

        let mut metadata = MetadataMap::new();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut Metadata(&mut metadata)));
        assert_eq!(metadata.get("traceparent").and_then(|v| v.to_str().ok()), Some(traceparent));

        // Outside any trace, nothing is written.
        let mut empty = MetadataMap::new();
        inject_current(&mut empty);
        assert!(empty.is_empty());
    }

    /// What `subscriber` logs of one event in a span continuing `traceparent`.
    fn log_line(json: bool) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        tracing::dispatcher::with_default(&dispatch(json, tracer, move || writer.clone()), || {
            let mut headers = http::HeaderMap::new();
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            headers.insert("traceparent", traceparent.parse().unwrap());
            let span = tracing::info_span!("grpc", otel.kind = "server", rpc.method = "SubmitReport", consumer = "x");
            span.set_parent(extract(&headers)).unwrap();
            span.in_scope(|| tracing::info!(accepted = 1, "reports stored"));
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_logs_carry_the_trace_id_and_plain_logs_stay_short() {
        let json = log_line(true);
        let line: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{json}");
        assert_eq!(line["fields"]["message"], "reports stored", "{json}");

        let plain = log_line(false);
        assert!(plain.contains("reports stored accepted=1") && plain.contains("consumer=\"x\""), "{plain}");
        assert!(!plain.contains("otel.") && !plain.contains("rpc."), "{plain}");
    }
}
