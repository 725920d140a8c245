//! The ledger service binary: [`radfin_ledger::run_from_env`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    radfin_ledger::run_from_env().await
}
