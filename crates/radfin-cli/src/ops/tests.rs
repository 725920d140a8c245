//! Argument parsing, exit codes, errors and configuration of the operator commands.

use clap::{CommandFactory, Parser};
use tonic::{Code, Status};

use super::*;
use crate::Cli;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("radfin").chain(args.iter().copied()))
}

fn ops(args: &[&str]) -> Command {
    match parse(args) {
        Ok(Cli { command: crate::Command::Ops(c), .. }) => c,
        Ok(_) => panic!("{args:?} is not an operator command"),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn usage_error(args: &[&str]) -> clap::error::ErrorKind {
    match parse(args) {
        Ok(_) => panic!("{args:?} parsed"),
        Err(e) => {
            assert_eq!(e.exit_code(), i32::from(exit::USAGE), "{args:?}");
            e.kind()
        }
    }
}

#[test]
fn the_command_line_is_consistent() {
    // Panics on conflicting names, among them demo's own --ingest/--pricing/--ledger.
    Cli::command().debug_assert();
}

#[test]
fn the_long_help_documents_the_exit_codes() {
    let help = Cli::command().render_long_help().to_string();
    for line in
        ["0  ok", "2  usage error", "3  not found", "4  invalid argument", "5  unauthenticated", "6  unavailable"]
    {
        assert!(help.contains(line), "{line:?} missing from --help");
    }
    assert!(help.contains("RADFIN_TOKEN"));
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let cli = parse(&["--output", "json", "periods"]).map_err(|e| e.to_string());
    assert!(cli.as_ref().is_ok_and(|c| c.global.output == Output::Json), "{:?}", cli.err());
    let cli = parse(&["invoices", "list", "--output", "json", "--ledger", "http://h:1"]).map_err(|e| e.to_string());
    assert!(
        cli.as_ref().is_ok_and(|c| c.global.output == Output::Json && c.global.ledger.as_deref() == Some("http://h:1"))
    );
    assert_eq!(usage_error(&["periods", "--output", "yaml"]), clap::error::ErrorKind::InvalidValue);
}

#[test]
fn demo_keeps_its_own_service_options() {
    let cli = parse(&["demo", "--period", "2026-01", "--ingest", "http://x:1"]);
    assert!(matches!(cli, Ok(Cli { command: crate::Command::Demo(_), .. })));
}

#[test]
fn submit_and_sync() {
    match ops(&["submit", "reports.jsonl", "--batch", "50"]) {
        Command::Submit(a) => {
            assert_eq!(a.file, std::path::PathBuf::from("reports.jsonl"));
            assert_eq!(a.batch, 50);
            assert_eq!(a.format, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(ops(&["submit", "-", "--format", "csv"]), Command::Submit(a) if a.format == Some(reports::Format::Csv))
    );
    assert_eq!(usage_error(&["submit", "x.json", "--batch", "0"]), clap::error::ErrorKind::ValueValidation);
    assert_eq!(usage_error(&["submit"]), clap::error::ErrorKind::MissingRequiredArgument);

    assert!(matches!(ops(&["sync"]), Command::Sync(reports::SyncArgs { command: None, from: None, to: None })));
    assert!(matches!(
        ops(&["sync", "--from", "2026-01-01T00:00:00Z"]),
        Command::Sync(reports::SyncArgs { command: None, from: Some(_), .. })
    ));
    assert!(matches!(
        ops(&["sync", "list", "--limit", "5", "--rejected"]),
        Command::Sync(reports::SyncArgs { command: Some(reports::SyncCommand::List(l)), .. }) if l.limit == 5 && l.rejected
    ));
    assert!(matches!(ops(&["sync-runs"]), Command::SyncRuns(l) if l.limit == 20 && !l.rejected));
}

#[test]
fn close_rerun_and_replay() {
    assert!(
        matches!(ops(&["close", "2026-01", "--reason", "month end"]), Command::Close(a) if a.period == "2026-01" && a.reason == "month end")
    );
    assert!(matches!(
        ops(&["rerun", "2026-01", "--reason", "Feb rate", "--preview"]),
        Command::Rerun(a) if a.preview && !a.apply && a.run.is_none()
    ));
    assert!(matches!(
        ops(&["rerun", "2026-01", "--reason", "Feb rate", "--apply", "--run", "12"]),
        Command::Rerun(a) if a.apply && a.run == Some(12)
    ));
    // One mode, required; a reason, required; --run only with --apply.
    assert_eq!(usage_error(&["rerun", "2026-01", "--reason", "r"]), clap::error::ErrorKind::MissingRequiredArgument);
    assert_eq!(
        usage_error(&["rerun", "2026-01", "--reason", "r", "--preview", "--apply"]),
        clap::error::ErrorKind::ArgumentConflict
    );
    assert_eq!(usage_error(&["rerun", "2026-01", "--preview"]), clap::error::ErrorKind::MissingRequiredArgument);
    assert_eq!(
        usage_error(&["rerun", "2026-01", "--reason", "r", "--preview", "--run", "3"]),
        clap::error::ErrorKind::ArgumentConflict
    );
    assert!(matches!(ops(&["replay", "2026-01"]), Command::Replay(a) if a.period == "2026-01" && !a.reason.is_empty()));
}

#[test]
fn reference_data() {
    assert!(matches!(
        ops(&["rules", "put", "provider", "samples/rules/provider.json", "--effective-from", "2025-04-01"]),
        Command::Rules(reference::RulesCommand::Put { target, effective_from: Some(d), .. }) if target == "provider" && d == "2025-04-01"
    ));
    assert!(matches!(
        ops(&["rules", "get", "HOSP-001"]),
        Command::Rules(reference::RulesCommand::Get { version: None, .. })
    ));
    assert!(matches!(
        ops(&["rules", "get", "HOSP-001", "2"]),
        Command::Rules(reference::RulesCommand::Get { version: Some(2), .. })
    ));
    assert!(matches!(ops(&["rules", "list"]), Command::Rules(reference::RulesCommand::List { target: None })));
    assert!(matches!(ops(&["parties"]), Command::Parties(reference::PartiesArgs { command: None })));
    assert!(matches!(
        ops(&["parties", "put", "samples/parties.json"]),
        Command::Parties(reference::PartiesArgs { command: Some(reference::PartiesCommand::Put { .. }) })
    ));
    assert!(matches!(
        ops(&["fx", "put", "USD", "2026-01-02", "83.125", "--reason", "feed down"]),
        Command::Fx(reference::FxCommand::Put { currency: Some(_), date: Some(_), rate: Some(r), file: None, .. }) if r == "83.125"
    ));
    assert!(matches!(
        ops(&["fx", "put", "--file", "samples/fx-rates.json", "--reason", "samples"]),
        Command::Fx(reference::FxCommand::Put { currency: None, file: Some(_), .. })
    ));
    assert_eq!(usage_error(&["fx", "put", "USD", "--reason", "r"]), clap::error::ErrorKind::MissingRequiredArgument);
    assert_eq!(
        usage_error(&["fx", "put", "USD", "2026-01-02", "83.1"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    assert!(matches!(ops(&["fx", "fetch"]), Command::Fx(reference::FxCommand::Fetch { reason: None })));
    assert!(matches!(
        ops(&["fx", "fetch", "--reason", "the ECB published late"]),
        Command::Fx(reference::FxCommand::Fetch { reason: Some(_) })
    ));
    assert!(matches!(ops(&["fx", "list", "--currency", "usd"]), Command::Fx(reference::FxCommand::List { .. })));
}

#[test]
fn documents_and_reads() {
    assert!(matches!(
        ops(&["invoices", "list", "--period", "2026-01", "--client", "HOSP-001"]),
        Command::Invoices(documents::InvoicesCommand::List { period: Some(_), client: Some(_) })
    ));
    assert!(matches!(
        ops(&["invoices", "show", "INV/25-26/000001"]),
        Command::Invoices(documents::InvoicesCommand::Show { number }) if number == "INV/25-26/000001"
    ));
    assert!(matches!(ops(&["statements", "list"]), Command::Statements(documents::StatementsCommand::List { .. })));
    assert!(matches!(
        ops(&["statements", "show", "PAY/25-26/000001"]),
        Command::Statements(documents::StatementsCommand::Show { .. })
    ));
    assert!(matches!(ops(&["account", "HOSP-001"]), Command::Account(a) if a.client == "HOSP-001"));
    assert!(
        matches!(ops(&["credit-notes", "--invoice", "INV/25-26/000001"]), Command::CreditNotes(a) if a.invoice.is_some())
    );
    assert!(matches!(ops(&["runs", "--period", "2026-01"]), Command::Runs(a) if a.limit == 50));
    assert!(matches!(ops(&["audit", "--limit", "10"]), Command::Audit(a) if a.limit == 10));
    assert!(matches!(
        ops(&["dead-letters", "--after", "40", "--limit", "20"]),
        Command::DeadLetters(a) if a.after == 40 && a.limit == 20 && a.command.is_none()
    ));
    assert!(matches!(ops(&["dead-letters"]), Command::DeadLetters(a) if a.after == 0 && a.limit == 100));
    assert!(matches!(
        ops(&["dead-letters", "redrive", "41", "--reason", "client added"]),
        Command::DeadLetters(dead_letters::DeadLettersArgs {
            command: Some(dead_letters::DeadLettersCommand::Redrive(r)), ..
        }) if r.seq == 41 && r.reason == "client added"
    ));
    assert_eq!(usage_error(&["dead-letters", "redrive", "41"]), clap::error::ErrorKind::MissingRequiredArgument);
    assert_eq!(usage_error(&["dead-letters", "--limit", "0"]), clap::error::ErrorKind::ValueValidation);
    assert!(matches!(ops(&["periods"]), Command::Periods));
    assert!(matches!(ops(&["summary", "2026-01"]), Command::Summary(_)));
    assert!(
        matches!(ops(&["held", "--period", "2026-01"]), Command::Held(a) if a.period.as_deref() == Some("2026-01"))
    );
    assert_eq!(
        usage_error(&["credit-note", "INV/25-26/000001", "--amount", "10"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn a_credit_note_request_has_one_line_with_the_amount_as_written() {
    let Command::CreditNote(args) = ops(&[
        "credit-note",
        "INV/25-26/000001",
        "--reason",
        "duplicate study",
        "--amount",
        "1250.50",
        "--modality",
        "mri",
        "--quantity",
        "2",
        "--request-id",
        "crn-1",
    ]) else {
        panic!("not credit-note")
    };
    let request = documents::credit_note_request(&args).map_err(|e| e.message);
    let request = request.as_ref();
    assert_eq!(request.map(|r| r.invoice_number.as_str()), Ok("INV/25-26/000001"));
    assert_eq!(request.map(|r| r.request_id.as_str()), Ok("crn-1"));
    let line = request.ok().and_then(|r| r.lines.first()).cloned().unwrap_or_default();
    assert_eq!(line.amount, "1250.50");
    assert_eq!(line.description, "duplicate study");
    assert_eq!(line.modality, radfin_proto::common::v1::Modality::Mri as i32);
    assert_eq!(line.quantity, 2);

    for bad in ["-5", "0", "1e3", "1,000.00", "ten", ""] {
        let Command::CreditNote(args) = ops(&["credit-note", "INV/1", "--reason", "r", "--amount", bad]) else {
            panic!("not credit-note")
        };
        assert_eq!(documents::credit_note_request(&args).map_err(|e| e.code).err(), Some(exit::REFUSED), "{bad}");
    }
    let Command::CreditNote(args) =
        ops(&["credit-note", "INV/1", "--reason", "r", "--amount", "1", "--modality", "PET"])
    else {
        panic!("not credit-note")
    };
    assert_eq!(documents::credit_note_request(&args).map_err(|e| e.code).err(), Some(exit::REFUSED));
}

#[test]
fn grpc_codes_map_to_documented_exit_codes() {
    let expected = [
        (Code::Ok, 0),
        (Code::Cancelled, 1),
        (Code::Unknown, 1),
        (Code::InvalidArgument, 4),
        (Code::DeadlineExceeded, 6),
        (Code::NotFound, 3),
        (Code::AlreadyExists, 4),
        (Code::PermissionDenied, 5),
        (Code::ResourceExhausted, 6),
        (Code::FailedPrecondition, 4),
        (Code::Aborted, 6),
        (Code::OutOfRange, 4),
        (Code::Unimplemented, 1),
        (Code::Internal, 1),
        (Code::Unavailable, 6),
        (Code::DataLoss, 1),
        (Code::Unauthenticated, 5),
    ];
    for (code, exit) in expected {
        assert_eq!(exit_code(code), exit, "{code:?}");
    }
}

#[test]
fn errors_say_what_to_do() {
    let ledger = Endpoint { service: "ledger", url: "http://127.0.0.1:7053".to_owned() };
    let e = ledger.status_error("ClosePeriod", &Status::permission_denied("ClosePeriod needs role finance"));
    assert_eq!(e.code, exit::DENIED);
    assert!(e.message.contains("needs role finance") && e.message.contains("RADFIN_TOKEN"), "{}", e.message);

    let e = ledger.status_error("ListPeriods", &Status::unavailable("tcp connect error"));
    assert_eq!(e.code, exit::UNAVAILABLE);
    assert!(
        e.message.contains("ledger at http://127.0.0.1:7053") && e.message.contains("cargo xtask up"),
        "{}",
        e.message
    );

    let e = ledger.status_error("ListRuns", &Status::unauthenticated("no token"));
    assert_eq!(e.code, exit::DENIED);
    assert!(e.message.contains("set RADFIN_TOKEN"));

    let e = ledger
        .status_error("GetInvoice", &Status::not_found("no invoice INV/99-00/999999"))
        .hint(exit::NOT_FOUND, "`radfin invoices list` lists the invoices");
    assert_eq!(
        (e.code, e.message.as_str()),
        (exit::NOT_FOUND, "not found: no invoice INV/99-00/999999 (`radfin invoices list` lists the invoices)")
    );

    let e = ledger.status_error("RerunPeriod", &Status::unimplemented(""));
    assert_eq!(e.code, exit::OTHER);
    assert!(e.message.contains("does not implement RerunPeriod"));

    // A hint for another code is not added.
    let e = ledger.status_error("X", &Status::invalid_argument("period: bad")).hint(exit::NOT_FOUND, "nope");
    assert_eq!((e.code, e.message.as_str()), (exit::REFUSED, "X refused: period: bad"));
}

#[test]
fn periods_are_checked_before_sending() {
    assert_eq!(period("2026-01").map_err(|e| e.message), Ok("2026-01".to_owned()));
    for bad in ["2026-13", "2026-1", "Jan", ""] {
        assert_eq!(period(bad).map_err(|e| e.code).err(), Some(exit::REFUSED), "{bad}");
    }
    assert_eq!(period_filter(None).map_err(|e| e.code), Ok(String::new()));
}

#[test]
fn the_config_file_has_a_token_and_urls() {
    let c = ConfigFile::parse("token = \"abc\"\nledger = \"http://ledger:7053\"\n");
    assert_eq!(
        c,
        Ok(ConfigFile {
            token: Some("abc".to_owned()),
            ledger: Some("http://ledger:7053".to_owned()),
            ..ConfigFile::default()
        })
    );
    assert_eq!(ConfigFile::parse(""), Ok(ConfigFile::default()));
    assert!(ConfigFile::parse("tokn = \"abc\"").is_err());
    assert!(ConfigFile::parse("token = 3").is_err());
    let missing = ConfigFile::load(Path::new("/nonexistent/radfin/config.toml")).map_err(|e| e.code);
    assert_eq!(missing, Ok(ConfigFile::default()));
}
