//! The ingest service binary: [`radfin_ingest::run_from_env`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    radfin_ingest::run_from_env().await
}
