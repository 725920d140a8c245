//! The ingest service binary: configuration from the environment, then [`radfin_ingest::run`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-ingest")?;
    let config = radfin_ingest::Config::from_env()?;
    radfin_ingest::run(config, radfin_service::shutdown::signal()).await
}
