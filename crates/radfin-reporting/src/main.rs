//! The reporting service binary: [`radfin_reporting::run_from_env`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    radfin_reporting::run_from_env().await
}
