//! The reporting service binary: configuration from the environment, then [`radfin_reporting::run`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-reporting")?;
    let config = radfin_reporting::Config::from_env()?;
    radfin_reporting::run(config, radfin_service::shutdown::signal()).await
}
