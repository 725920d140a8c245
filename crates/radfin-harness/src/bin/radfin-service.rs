//! One of radfin's services as a process of its own, through the same entry point as its binary
//! (`radfin_<service>::run_from_env`): `radfin-service ingest|pricing|ledger|reporting`, configured
//! by the environment. The fault suite's process cases (`radfin_harness::procs`) start, kill and
//! restart it; cargo builds it for the harness's tests, so they never run a stale service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = std::env::args().nth(1).unwrap_or_default();
    match service.as_str() {
        "ingest" => radfin_ingest::run_from_env().await,
        "pricing" => radfin_pricing::run_from_env().await,
        "ledger" => radfin_ledger::run_from_env().await,
        "reporting" => radfin_reporting::run_from_env().await,
        other => anyhow::bail!("usage: radfin-service ingest|pricing|ledger|reporting (not {other:?})"),
    }
}
