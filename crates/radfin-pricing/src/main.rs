//! The pricing service binary: configuration from the environment, then [`radfin_pricing::run`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-pricing")?;
    let config = radfin_pricing::Config::from_env()?;
    radfin_pricing::run(config, radfin_service::shutdown::signal()).await
}
