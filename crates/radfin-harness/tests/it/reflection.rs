//! A stock gRPC client, not radfin's own code, lists and calls the services through server
//! reflection: Python `grpcio` + `grpcio-reflection` (`cargo xtask test` installs them into a
//! virtual environment and sets `RADFIN_TEST_PYTHON`). Strictly (`tests/reflection.py`): each
//! port lists exactly its own service, health and reflection, on v1 and v1alpha; a descriptor
//! pool fed with one `file_containing_symbol` answer and nothing else finds the service (the
//! file comes with its transitive dependencies); an unknown symbol is an `error_response` on a
//! stream that goes on.

use super::*;

#[tokio::test]
async fn a_stock_grpc_client_lists_and_calls_every_service_through_reflection() {
    let stack = Stack::start().await.unwrap();
    setup(&stack).await;
    let python = python();
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

/// `RADFIN_TEST_PYTHON`, else the virtual environment `cargo xtask test` makes
/// (`target/radfin-dev/py`), else `python3`; it must have `grpcio` and `grpcio-reflection`.
fn python() -> String {
    let venv = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), Into::into)
        .join("radfin-dev/py/bin/python");
    let python = std::env::var("RADFIN_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| if venv.exists() { venv.to_string_lossy().into_owned() } else { "python3".to_owned() });
    let ready = std::process::Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection"])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        ready,
        "{python} has no grpcio and grpcio-reflection: run `cargo xtask test` (it makes target/radfin-dev/py), \
         or set RADFIN_TEST_PYTHON to a python that has them"
    );
    python
}
