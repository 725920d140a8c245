//! A stock gRPC client, not radfin's own code, lists and calls the services through server
//! reflection: Python `grpcio` + `grpcio-reflection` (`cargo xtask test` installs them into a
//! virtual environment and sets `RADFIN_TEST_PYTHON`).

use super::*;

#[tokio::test]
async fn a_stock_grpc_client_lists_and_calls_every_service_through_reflection() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let python = std::env::var("RADFIN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reflection.py");
    for (addr, service, method, expect) in [
        (stack.ingest, "radfin.ingest.v1.IngestService", "", "radfin.ingest.v1.IngestService"),
        (stack.pricing, "radfin.pricing.v1.PricingService", "ListProviders", "RAD-007"),
        (stack.ledger, "radfin.ledger.v1.LedgerService", "SummarizePeriod", "\"reports\""),
        (stack.reporting, "radfin.reporting.v1.ReportingService", "Summarize", "\"marginPct\""),
    ] {
        let out = tokio::process::Command::new(&python)
            .args([script, &addr.to_string(), service, method])
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{python} {script} failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("grpc.health.v1.Health"), "{stdout}");
        assert!(stdout.contains(expect), "{stdout}");
    }
    stack.stop().await.unwrap();
}
