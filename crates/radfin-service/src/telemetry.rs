//! Structured logs and traces. Logs go to stderr (JSON when `RADFIN_LOG_FORMAT=json`), filtered
//! by `RUST_LOG` (default `info`). Traces are exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C trace context is propagated across gRPC and NATS.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("RADFIN_LOG_FORMAT").is_ok_and(|v| v == "json");
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let fmt = if json { fmt.json().boxed() } else { fmt.compact().boxed() };

    let provider = if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok() {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
        Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
    } else {
        None
    };
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    Ok(Guard(provider))
}
