//! The ledger service binary: configuration from the environment, then [`radfin_ledger::run`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = radfin_service::telemetry::init("radfin-ledger")?;
    let config = radfin_ledger::Config::from_env()?;
    radfin_ledger::run(config, radfin_service::shutdown::signal()).await
}
