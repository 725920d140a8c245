//! Reading typed configuration from the environment (12-factor). Each service keeps one typed,
//! validated config struct built with these helpers; a bad value is an error naming the variable.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;

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
    /// NATS URL (`RADFIN_NATS_URL`).
    pub nats_url: String,
    /// Prefix of subjects and stream names (`RADFIN_BUS_PREFIX`): isolates environments.
    pub bus_prefix: String,
    /// IANA time zone of periods (`RADFIN_BUSINESS_TZ`).
    pub business_tz: String,
    /// The bearer tokens and their roles (`RADFIN_AUTH_TOKENS_FILE`, see [`crate::auth`]);
    /// `None` disables authentication (every caller is admin `anonymous`).
    pub auth_tokens_file: Option<PathBuf>,
}

impl Common {
    /// The database pool (`pool_size` connections) and the bus, its streams ensured: what every
    /// service starts with.
    pub async fn connect(&self, pool_size: usize) -> anyhow::Result<(radfin_db::Pool, radfin_bus::Bus)> {
        let pool = radfin_db::pool(&self.database_url, pool_size).await.context("database")?;
        let config = radfin_bus::BusConfig {
            url: self.nats_url.clone(),
            prefix: self.bus_prefix.clone(),
            ..radfin_bus::BusConfig::default()
        };
        let bus = radfin_bus::Bus::connect(&config).await.context("nats")?;
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
            nats_url: var_or("RADFIN_NATS_URL", "nats://127.0.0.1:4222"),
            bus_prefix: var_or("RADFIN_BUS_PREFIX", "radfin"),
            business_tz: var_or("RADFIN_BUSINESS_TZ", "Asia/Kolkata"),
            auth_tokens_file: std::env::var_os(crate::auth::TOKENS_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        })
    }
}
