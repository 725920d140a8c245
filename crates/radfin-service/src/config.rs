//! Reading typed configuration from the environment (12-factor). Each service keeps one typed,
//! validated config struct built with these helpers; a bad value is an error naming the variable.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow};

/// The variable's value, or `default` when it is unset or empty.
pub fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// The variable parsed as `T`, or `default` when it is unset or empty.
pub fn parse_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| anyhow!("{name}={v:?} is invalid: {e}")),
    }
}

/// A gRPC listen address from `name`, by default 127.0.0.1:`port`.
pub fn listen(name: &str, port: u16) -> anyhow::Result<std::net::SocketAddr> {
    parse_or(name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A variable that must be set.
pub fn required(name: &str) -> anyhow::Result<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).with_context(|| format!("{name} must be set"))
}

/// Settings every service has.
#[derive(Clone, Debug)]
pub struct Common {
    /// PostgreSQL URL, connecting as the service's own role (`RADFIN_DATABASE_URL`).
    pub database_url: String,
    /// NATS and JetStream: the URL (`RADFIN_NATS_URL`), the prefix of subjects and stream names
    /// (`RADFIN_BUS_PREFIX`, isolating environments), stream replicas
    /// (`RADFIN_NATS_REPLICAS`, 3 on a production cluster), deliveries per message
    /// (`RADFIN_NATS_MAX_DELIVER`), the acknowledgement deadline (`RADFIN_NATS_ACK_WAIT_SECS`)
    /// and retention (`RADFIN_NATS_MAX_AGE_DAYS`, 0: keep every message), validated.
    pub bus: radfin_bus::BusConfig,
    /// IANA time zone of periods (`RADFIN_BUSINESS_TZ`).
    pub business_tz: String,
    /// The bearer tokens and their roles (`RADFIN_AUTH_TOKENS_FILE`, see [`crate::auth`]);
    /// `None` disables authentication (every caller is admin `anonymous`).
    pub auth_tokens_file: Option<PathBuf>,
    /// TLS of the gRPC server and of the clients of other services (`RADFIN_TLS_*`, see
    /// [`crate::tls`]); the default is plaintext.
    pub tls: crate::tls::Tls,
}

impl Common {
    /// The database pool (`pool_size` connections) and the bus, its streams ensured: what every
    /// service starts with.
    pub async fn connect(&self, pool_size: usize) -> anyhow::Result<(radfin_db::Pool, radfin_bus::Bus)> {
        let pool = radfin_db::pool(&self.database_url, pool_size).await.context("database")?;
        let bus = radfin_bus::Bus::connect(&self.bus).await.context("nats")?;
        bus.ensure_streams().await.context("streams")?;
        Ok((pool, bus))
    }

    /// Authentication as configured, denied attempts audited in `pool`'s database: what a
    /// service passes to [`crate::supervise::Supervisor::serve`]. `Err` when the token file is
    /// invalid.
    pub fn auth(&self, pool: &radfin_db::Pool) -> anyhow::Result<crate::auth::Auth> {
        crate::auth::Auth::from_config(self.auth_tokens_file.as_deref(), pool.clone())
    }

    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            database_url: required("RADFIN_DATABASE_URL")?,
            bus: bus_from_env()?,
            business_tz: var_or("RADFIN_BUSINESS_TZ", "Asia/Kolkata"),
            auth_tokens_file: std::env::var_os(crate::auth::TOKENS_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            tls: crate::tls::Tls::from_env()?,
        })
    }
}

/// The bus settings of [`Common::bus`] from the environment, validated.
fn bus_from_env() -> anyhow::Result<radfin_bus::BusConfig> {
    let defaults = radfin_bus::BusConfig::default();
    let secs = |name: &str, default: Duration| parse_or(name, default.as_secs()).map(Duration::from_secs);
    let config = radfin_bus::BusConfig {
        url: var_or("RADFIN_NATS_URL", &defaults.url),
        prefix: var_or("RADFIN_BUS_PREFIX", &defaults.prefix),
        replicas: parse_or("RADFIN_NATS_REPLICAS", defaults.replicas)?,
        max_deliver: parse_or("RADFIN_NATS_MAX_DELIVER", defaults.max_deliver)?,
        ack_wait: secs("RADFIN_NATS_ACK_WAIT_SECS", defaults.ack_wait)?,
        max_age: Duration::from_secs(24 * 3600 * parse_or::<u64>("RADFIN_NATS_MAX_AGE_DAYS", 0)?),
        ..defaults
    };
    config.validate().context("RADFIN_NATS_* / RADFIN_BUS_PREFIX")?;
    Ok(config)
}
