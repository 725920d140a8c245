//! The pricing service binary: [`radfin_pricing::run_from_env`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    radfin_pricing::run_from_env().await
}
