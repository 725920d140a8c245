//! The `radfin` binary against the real services (in one process, `radfin_harness::Stack`, on a
//! private database and bus prefix): reference data from `samples/`, a file of reports, the reads,
//! and the exit codes scripts rely on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use radfin_harness::Stack;
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `radfin args…` against the stack, from the workspace root, without the caller's token
/// or config file.
async fn radfin(stack: &Stack, args: &[&str]) -> Run {
    radfin_with(stack, args, &[]).await
}

/// Like [`radfin`], with environment variables set (`RADFIN_TOKEN`, `RADFIN_CONFIG`).
async fn radfin_with(stack: &Stack, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_radfin"));
    command
        .args(args)
        .current_dir(workspace())
        .env("RADFIN_INGEST_URL", format!("http://{}", stack.ingest))
        .env("RADFIN_PRICING_URL", format!("http://{}", stack.pricing))
        .env("RADFIN_LEDGER_URL", format!("http://{}", stack.ledger))
        .env("RADFIN_CONFIG", "/nonexistent/radfin/config.toml")
        .env_remove("RADFIN_TOKEN")
        .envs(env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!("$ radfin {}\n→ {}\n{}{}", args.join(" "), run.code, run.stdout, run.stderr);
    run
}

async fn ok(stack: &Stack, args: &[&str]) -> Run {
    let run = radfin(stack, args).await;
    assert_eq!(run.code, 0, "radfin {args:?}: {}", run.stderr);
    run
}

/// Runs `args` until `check` accepts its JSON, for at most 30 s.
async fn eventually(stack: &Stack, args: &[&str], check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = ok(stack, args).await.json();
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "radfin {args:?} never satisfied the check: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn report(id: &str, client: &str, modality: &str) -> Value {
    json!({
        "report_id": id, "revision": 1, "client_id": client, "provider_id": "RAD-001",
        "modality": modality, "body_regions": 1, "priority": "ROUTINE",
        "finalized_at": "2026-11-10T10:00:00Z", "status": "FINAL"
    })
}

fn json_lines(reports: &[Value]) -> String {
    reports.iter().map(|r| format!("{r}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_services() {
    let stack = Stack::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("radfin-cli-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Reference data from samples/.
    let parties: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("samples/parties.json")).unwrap()).unwrap();
    let (providers, clients) =
        (parties["providers"].as_array().unwrap().len(), parties["clients"].as_array().unwrap().len());
    let put = ok(&stack, &["parties", "put", "samples/parties.json", "--output", "json"]).await.json();
    assert_eq!(put, json!({"providers": providers, "clients": clients}), "{put}");
    let versions: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("samples/rules/versions.json")).unwrap())
            .unwrap();
    for v in versions["provider"].as_array().unwrap() {
        let file = format!("samples/rules/{}", v["file"].as_str().unwrap());
        let from = v["effective_from"].as_str().unwrap();
        ok(&stack, &["rules", "put", "provider", &file, "--effective-from", from]).await;
    }
    for v in versions["clients"].as_array().unwrap() {
        let file = format!("samples/rules/{}", v["file"].as_str().unwrap());
        let client: Value = serde_json::from_str(&std::fs::read_to_string(workspace().join(&file)).unwrap()).unwrap();
        let client = client["client_id"].as_str().unwrap();
        let from = v["effective_from"].as_str().unwrap();
        ok(&stack, &["rules", "put", client, &file, "--effective-from", from]).await;
    }
    let fx =
        ok(&stack, &["fx", "put", "--file", "samples/fx-rates.json", "--reason", "sample rates", "--output", "json"])
            .await
            .json();
    assert_eq!(fx["rates"], fx["inserted"]);
    assert_eq!(fx["unchanged"], json!(0));

    let rules = ok(&stack, &["rules", "list", "--output", "json"]).await.json();
    assert_eq!(rules["provider"].as_array().map(Vec::len), Some(1));
    assert_eq!(rules["clients"]["HOSP-001"].as_array().map(Vec::len), Some(2));
    let latest = ok(&stack, &["rules", "get", "HOSP-001", "--output", "json"]).await.json();
    assert_eq!((latest["version"].clone(), latest["effective_from"].clone()), (json!(2), json!("2026-10-01")));
    let parties = ok(&stack, &["parties", "--output", "json"]).await.json();
    assert_eq!(parties["providers"].as_array().map(Vec::len), Some(providers));
    assert_eq!(parties["providers"][0]["grade"].as_str().map(str::len).map(|n| n > 0), Some(true));
    let usd = ok(&stack, &["fx", "list", "--currency", "USD", "--from", "2026-11-01", "--output", "json"]).await.json();
    assert!(usd["rates"].as_array().is_some_and(|r| !r.is_empty() && r.iter().all(|x| x["currency"] == "USD")));
    // This stack's pricing has no feed: `fx fetch` is refused (exit 4) and says what to do.
    let no_feed = radfin(&stack, &["fx", "fetch", "--reason", "the ECB published late"]).await;
    assert_eq!(no_feed.code, 4, "{}", no_feed.stderr);
    assert!(no_feed.stderr.contains("RADFIN_FX_URL"), "{}", no_feed.stderr);
    let table = ok(&stack, &["parties"]).await;
    assert!(table.stdout.contains("HOSP-002") && table.stdout.contains("RAD-001"));

    // A file of reports: three for a known client, one for an unknown one (held).
    let mut reports = vec![
        report("CLI-1", "HOSP-002", "MRI"),
        report("CLI-2", "HOSP-002", "CT"),
        report("CLI-3", "HOSP-002", "XRAY"),
        report("CLI-4", "HOSP-999", "CT"),
    ];
    let file = dir.join("reports.jsonl");
    std::fs::write(&file, json_lines(&reports)).unwrap();
    let file_arg = file.to_str().unwrap();
    let summary = ok(&stack, &["submit", file_arg, "--batch", "3", "--output", "json"]).await.json();
    assert_eq!(
        (
            summary["reports"].clone(),
            summary["accepted"].clone(),
            summary["unchanged"].clone(),
            summary["rejected"].clone()
        ),
        (json!(4), json!(4), json!(0), json!(0)),
        "{summary}"
    );
    assert_eq!(summary["batches"], json!(2));
    assert_eq!(summary["periods"], json!({"2026-11": 4}));

    // Again, with an invalid report and a conflicting revision: the stored ones are unchanged,
    // the bad ones rejected with their reasons, exit 4.
    reports.push(report("CLI-5", "HOSP-002", "PET"));
    let mut conflicting = report("CLI-1", "HOSP-002", "CT");
    conflicting["body_regions"] = json!(2);
    reports.push(conflicting);
    std::fs::write(&file, json_lines(&reports)).unwrap();
    let again = radfin(&stack, &["submit", file_arg, "--output", "json"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    let again = again.json();
    assert_eq!(
        (again["accepted"].clone(), again["unchanged"].clone(), again["rejected"].clone()),
        (json!(0), json!(4), json!(2))
    );
    let rejections = again["rejections"].as_array().unwrap();
    assert_eq!(rejections[0]["position"], json!(5));
    assert!(rejections[0]["reasons"][0].as_str().is_some_and(|r| r.starts_with("modality")), "{again}");
    assert_eq!((rejections[1]["position"].clone(), rejections[1]["report_id"].clone()), (json!(6), json!("CLI-1")));

    // CSV, in a table.
    let csv = dir.join("reports.csv");
    std::fs::write(
        &csv,
        "report_id,revision,client_id,provider_id,modality,body_regions,priority,finalized_at,status\n\
         CLI-6,1,HOSP-003,RAD-002,USG,1,URGENT,2026-11-11T10:00:00Z,FINAL\n",
    )
    .unwrap();
    let run = ok(&stack, &["submit", csv.to_str().unwrap()]).await;
    assert!(run.stdout.contains("1 accepted, 0 unchanged (already stored), 0 rejected"), "{}", run.stdout);

    // Held: the unknown client's report.
    let held = eventually(&stack, &["held", "--period", "2026-11", "--output", "json"], |v| {
        v["reports"].as_array().is_some_and(|r| r.iter().any(|h| h["report_id"] == "CLI-4"))
    })
    .await;
    let cli4 = held["reports"].as_array().unwrap().iter().find(|h| h["report_id"] == "CLI-4").cloned().unwrap();
    assert_eq!(cli4["status"], json!("UNKNOWN_PARTY"));
    let table = ok(&stack, &["held"]).await;
    assert!(table.stdout.contains("CLI-4") && table.stdout.contains("UNKNOWN_PARTY"), "{}", table.stdout);

    // The ledger: the period and its live run, and the current view.
    let periods = eventually(&stack, &["periods", "--output", "json"], |v| {
        v["periods"].as_array().is_some_and(|p| p.iter().any(|p| p["period"] == "2026-11"))
    })
    .await;
    let nov = periods["periods"].as_array().unwrap().iter().find(|p| p["period"] == "2026-11").cloned().unwrap();
    assert_eq!(nov["state"], json!("OPEN"));
    let runs = ok(&stack, &["runs", "--period", "2026-11", "--output", "json"]).await.json();
    assert!(runs["runs"].as_array().is_some_and(|r| r.iter().any(|r| r["kind"] == "LIVE")), "{runs}");
    ok(&stack, &["runs"]).await;
    let summary = eventually(&stack, &["summary", "2026-11", "--output", "json"], |v| v["reports"] == json!(4)).await;
    let reports_of = |client: &str| {
        summary["clients"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["client_id"] == client))
            .map(|c| c["reports"].clone())
    };
    assert_eq!((reports_of("HOSP-002"), reports_of("HOSP-003")), (Some(json!(3)), Some(json!(1))));
    let table = ok(&stack, &["summary", "2026-11"]).await;
    assert!(table.stdout.contains("Total"), "{}", table.stdout);

    // Exit codes: not found, a malformed period (refused before sending), an unreachable service.
    let missing = radfin(&stack, &["invoices", "show", "INV/99-00/999999"]).await;
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("not found") && missing.stderr.contains("radfin invoices list"),
        "{}",
        missing.stderr
    );
    for args in [&["summary", "2026-13"][..], &["held", "--period", "11-2026"], &["close", "2026/11"]] {
        let bad = radfin(&stack, args).await;
        assert_eq!(bad.code, 4, "{args:?}: {}", bad.stderr);
        assert!(bad.stderr.contains("invalid period"), "{}", bad.stderr);
    }
    let down = radfin(&stack, &["periods", "--ledger", "http://127.0.0.1:1"]).await;
    assert_eq!(down.code, 6, "{}", down.stderr);
    assert!(down.stderr.contains("ledger at http://127.0.0.1:1 is unreachable"), "{}", down.stderr);
    let usage = radfin(&stack, &["rerun", "2026-11", "--reason", "r"]).await;
    assert_eq!(usage.code, 2);

    std::fs::remove_dir_all(&dir).ok();
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_the_environment_or_the_config_file_and_refusals_exit_5() {
    let dir = std::env::temp_dir().join(format!("radfin-cli-tokens-{}", radfin_harness::unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.json");
    let entry = |name: &str, role: &str| json!({"name": name, "role": role, "sha256": radfin_service::auth::sha256_hex(&format!("secret-{name}"))});
    std::fs::write(
        &tokens,
        json!({"tokens": [entry("cli-viewer", "viewer"), entry("cli-finance", "finance")]}).to_string(),
    )
    .unwrap();
    let stack = Stack::start_with_tokens(tokens).await.unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, "token = \"secret-cli-finance\"\n").unwrap();
    let config = config.to_str().unwrap();

    // No token, a wrong one: unauthenticated.
    let none = radfin(&stack, &["periods"]).await;
    assert_eq!(none.code, 5, "{}", none.stderr);
    assert!(none.stderr.contains("set RADFIN_TOKEN"), "{}", none.stderr);
    let wrong = radfin_with(&stack, &["periods"], &[("RADFIN_TOKEN", "not-a-token")]).await;
    assert_eq!(wrong.code, 5, "{}", wrong.stderr);

    // The viewer reads but may not close.
    let viewer = [("RADFIN_TOKEN", "secret-cli-viewer")];
    assert_eq!(radfin_with(&stack, &["periods"], &viewer).await.code, 0);
    let denied = radfin_with(&stack, &["close", "2001-01"], &viewer).await;
    assert_eq!(denied.code, 5, "{}", denied.stderr);
    assert!(denied.stderr.contains("permission denied") && denied.stderr.contains("finance"), "{}", denied.stderr);

    // The config file's token (finance may read the audit log); RADFIN_TOKEN wins over it.
    let from_file =
        radfin_with(&stack, &["audit", "--limit", "5", "--output", "json"], &[("RADFIN_CONFIG", config)]).await;
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    assert!(from_file.json()["events"].as_array().is_some_and(|e| !e.is_empty()));
    let env_wins = radfin_with(
        &stack,
        &["audit", "--limit", "5"],
        &[("RADFIN_CONFIG", config), ("RADFIN_TOKEN", "secret-cli-viewer")],
    )
    .await;
    assert_eq!(env_wins.code, 5, "{}", env_wins.stderr);

    // The audit log's hash chain: intact, then broken by its owner, the altered row named.
    let finance = [("RADFIN_TOKEN", "secret-cli-finance")];
    let intact = radfin_with(&stack, &["audit", "verify", "--output", "json"], &finance).await;
    assert_eq!(intact.code, 0, "{}", intact.stderr);
    let intact = intact.json();
    assert_eq!(intact["intact"], true, "{intact}");
    let anchor = intact["last"].as_str().unwrap().to_owned();
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "UPDATE audit_log SET reason = 'rewritten by its owner' WHERE seq = 1",
        "ALTER TABLE audit_log ENABLE TRIGGER USER",
    ] {
        stack.db.execute(sql).await.unwrap();
    }
    let broken = radfin_with(&stack, &["audit", "verify", "--anchor", &anchor], &finance).await;
    assert_eq!(broken.code, 7, "{}\n{}", broken.stdout, broken.stderr);
    assert!(broken.stdout.contains("ALTERED") && broken.stdout.contains("row seq 1 "), "{}", broken.stdout);
    assert!(broken.stderr.contains("hash chain is broken"), "{}", broken.stderr);

    std::fs::remove_dir_all(&dir).ok();
    stack.stop().await.unwrap();
}
