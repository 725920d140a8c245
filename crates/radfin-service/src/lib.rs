//! What every radfin service shares: configuration from the environment, telemetry (structured
//! logs, OpenTelemetry traces exported over OTLP when configured), a gRPC server with health
//! checking, reflection, TLS or mutual TLS ([`tls`]) and bearer-token roles checked per method, the consuming loop (retrying outages in process, isolating bad
//! messages), Prometheus metrics served over HTTP, supervision of background tasks, and graceful shutdown.

pub mod auth;
pub mod config;
pub mod consume;
pub mod error;
pub mod grpc;
pub mod metrics;
mod reflection;
pub mod shutdown;
pub mod supervise;
pub mod telemetry;
pub mod tls;
