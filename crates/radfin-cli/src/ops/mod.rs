//! The operator commands: thin gRPC clients of ingest, pricing and ledger.
//!
//! What every command shares lives here: the global options (service URLs, output format), the
//! token and config file, the connections, one mapping from a gRPC status to an exit code and a
//! message that says what to do, and the output switch (a table for people, the response message
//! as JSON for scripts, see [`json`]). Each area's commands are in their own file.

mod audit;
mod dead_letters;
mod documents;
pub mod json;
mod periods;
mod reference;
mod reports;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::pricing::v1::pricing_service_client::PricingServiceClient;
use radfin_service::tls::ClientTls;
use serde::Deserialize;
use tonic::Code;

use self::json::ToJson;
use crate::connect::{self, AuthChannel, Bearer};

/// What `radfin --help` says about exit codes, the token and the config file.
pub const LONG_ABOUT: &str = "\
radfin operator command line: submit and sync reports, manage parties, rules and FX rates, close \
and rerun months, read invoices, payout statements, client accounts, runs and the audit log, and \
list and redrive dead letters. \
Each command is a thin gRPC client of the services (ingest, pricing, ledger).

Connection: --ingest/--pricing/--ledger (or RADFIN_INGEST_URL, RADFIN_PRICING_URL, \
RADFIN_LEDGER_URL, or `ingest`/`pricing`/`ledger` in the config file), default \
http://127.0.0.1:7051, :7052, :7053. The bearer token is RADFIN_TOKEN, else `token` in the config \
file: RADFIN_CONFIG, else $XDG_CONFIG_HOME/radfin/config.toml, else ~/.config/radfin/config.toml. \
An https:// URL is TLS: RADFIN_TLS_CA trusts that CA (else the system's roots), and \
RADFIN_TLS_CLIENT_CERT with RADFIN_TLS_CLIENT_KEY is the client certificate mutual TLS asks for.

Output: tables for people; --output json prints the response as JSON, or the one thing it \
wraps (the invoice, statement, credit note, rule version or sync run), with field names as in the \
.proto files, enumerations by name without their prefix, money as decimal strings.

Exit codes:
  0  ok
  1  anything else (an unexpected error)
  2  usage error (bad command line, unreadable config file)
  3  not found (no such invoice, statement, rule version, party)
  4  invalid argument or failed precondition: refused by the service, or by radfin before \
sending (malformed period, amount or file); also `submit` when any report was rejected
  5  unauthenticated or permission denied: set RADFIN_TOKEN to a token with the role needed
  6  unavailable or deadline exceeded: the service is unreachable or busy, retry later
  7  `audit verify` found the audit log's hash chain broken (rows altered, inserted or removed)";

/// The exit codes scripts can rely on (documented in [`LONG_ABOUT`]).
pub mod exit {
    pub const OK: u8 = 0;
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const DENIED: u8 = 5;
    pub const UNAVAILABLE: u8 = 6;
    /// `audit verify` found the audit log's hash chain broken.
    pub const TAMPERED: u8 = 7;
}

/// The exit code of a gRPC status: the one place statuses become exit codes.
pub fn exit_code(code: Code) -> u8 {
    match code {
        Code::Ok => exit::OK,
        Code::NotFound => exit::NOT_FOUND,
        Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists | Code::OutOfRange => exit::REFUSED,
        Code::Unauthenticated | Code::PermissionDenied => exit::DENIED,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => exit::UNAVAILABLE,
        Code::Cancelled | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => exit::OTHER,
    }
}

/// A failed command: the exit code and one line saying what went wrong and what to do.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// Refused before anything was sent: a malformed argument or input file.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(exit::REFUSED, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(exit::OTHER, message)
    }

    /// Adds what to do when the error has `code` (e.g. how to list what was not found).
    pub fn hint(mut self, code: u8, hint: &str) -> Self {
        if self.code == code {
            self.message = format!("{} ({hint})", self.message);
        }
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        Self::other(format!("cannot write the output: {e}"))
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        Self::other(format!("cannot write JSON: {e}"))
    }
}

/// A service the CLI talks to, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub service: &'static str,
    pub url: String,
}

impl Endpoint {
    /// The error of a failed call of `method` on this service, with what to do about it.
    pub fn status_error(&self, method: &str, status: &tonic::Status) -> CliError {
        let (service, url) = (self.service, &self.url);
        let detail = status.message().trim();
        let detail = if detail.is_empty() { status.code().description() } else { detail };
        let message = match status.code() {
            Code::Unavailable => {
                format!("{service} at {url} is unavailable ({detail}): is it running? (`cargo xtask up`); retry later")
            }
            Code::DeadlineExceeded => format!("{service} at {url} did not answer {method} in time: retry later"),
            Code::ResourceExhausted | Code::Aborted => format!("{service} is busy ({method}: {detail}): retry later"),
            Code::Unauthenticated => format!(
                "{service} refused {method}: {detail}; set RADFIN_TOKEN (or `token` in ~/.config/radfin/config.toml) \
                 to a valid token"
            ),
            Code::PermissionDenied => {
                let what = if detail.contains(method) { detail.to_owned() } else { format!("{method}: {detail}") };
                format!("permission denied: {what}; set RADFIN_TOKEN to a token with the role it needs")
            }
            Code::NotFound => format!("not found: {detail}"),
            Code::InvalidArgument | Code::OutOfRange => format!("{method} refused: {detail}"),
            Code::FailedPrecondition | Code::AlreadyExists => format!("{method} refused: {detail}"),
            Code::Unimplemented => {
                format!("{service} at {url} does not implement {method}: upgrade the service to this CLI's version")
            }
            code => format!("{service} failed {method}: {code:?}: {detail}"),
        };
        CliError::new(exit_code(status.code()), message)
    }
}

/// `result.rpc(&endpoint, "Method")`: the response's message, or the call's [`CliError`].
pub trait Rpc<T> {
    fn rpc(self, endpoint: &Endpoint, method: &str) -> Result<T, CliError>;
}

impl<T> Rpc<T> for Result<tonic::Response<T>, tonic::Status> {
    fn rpc(self, endpoint: &Endpoint, method: &str) -> Result<T, CliError> {
        self.map(tonic::Response::into_inner).map_err(|s| endpoint.status_error(method, &s))
    }
}

/// The message a response wraps (`GetInvoiceResponse.invoice`, ...), which the service always
/// sets: its absence is an error naming the method and the field.
pub fn required<T>(value: Option<T>, method: &str, field: &str) -> Result<T, CliError> {
    value.ok_or_else(|| CliError::other(format!("{method} returned no {field}")))
}

// ---------------------------------------------------------------------------------------------
// Options and configuration

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Tables for people.
    Table,
    /// The response message as JSON, for scripts.
    Json,
}

/// Options of every operator command (also accepted after the subcommand).
///
/// The URL options share their ids with `radfin demo`'s own, so clap does not propagate these to
/// it (demo keeps its options and defaults).
#[derive(clap::Args, Clone, Debug)]
pub struct Global {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Ingest service URL [default: http://127.0.0.1:7051]
    #[arg(long, global = true, env = "RADFIN_INGEST_URL", value_name = "URL")]
    pub ingest: Option<String>,
    /// Pricing service URL [default: http://127.0.0.1:7052]
    #[arg(long, global = true, env = "RADFIN_PRICING_URL", value_name = "URL")]
    pub pricing: Option<String>,
    /// Ledger service URL [default: http://127.0.0.1:7053]
    #[arg(long, global = true, env = "RADFIN_LEDGER_URL", value_name = "URL")]
    pub ledger: Option<String>,
}

pub const DEFAULT_INGEST_URL: &str = "http://127.0.0.1:7051";
pub const DEFAULT_PRICING_URL: &str = "http://127.0.0.1:7052";
pub const DEFAULT_LEDGER_URL: &str = "http://127.0.0.1:7053";

/// `~/.config/radfin/config.toml`: every key optional.
#[derive(Deserialize, Default, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub token: Option<String>,
    pub ingest: Option<String>,
    pub pricing: Option<String>,
    pub ledger: Option<String>,
}

impl ConfigFile {
    /// RADFIN_CONFIG, else `$XDG_CONFIG_HOME/radfin/config.toml`, else `~/.config/radfin/config.toml`.
    pub fn path() -> Option<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        var("RADFIN_CONFIG")
            .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("radfin/config.toml")))
            .or_else(|| var("HOME").map(|h| h.join(".config/radfin/config.toml")))
    }

    /// The file at `path`; none there is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .map_err(|e| CliError::new(exit::USAGE, format!("{}: {e}: fix or remove it", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::new(exit::USAGE, format!("cannot read {}: {e}", path.display()))),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }
}

/// What a command needs: where the services are, the token, and how to print.
pub struct Ctx {
    pub output: Output,
    pub ingest: Endpoint,
    pub pricing: Endpoint,
    pub ledger: Endpoint,
    bearer: Bearer,
    /// For `https://` URLs (`RADFIN_TLS_CA`, `RADFIN_TLS_CLIENT_CERT`, `RADFIN_TLS_CLIENT_KEY`).
    tls: ClientTls,
}

impl Ctx {
    /// Flags and environment first (clap has read both), then the config file, then defaults.
    pub fn new(global: &Global) -> Result<Self, CliError> {
        let config = match ConfigFile::path() {
            Some(path) => ConfigFile::load(&path)?,
            None => ConfigFile::default(),
        };
        let from_env = std::env::var(connect::TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty());
        let bearer = match config.token {
            Some(token) if !from_env => Bearer::new(token.trim())
                .map_err(|e| CliError::new(exit::USAGE, format!("`token` in the config file: {e:#}")))?,
            _ => Bearer::from_env().map_err(|e| CliError::new(exit::USAGE, format!("{e:#}")))?,
        };
        let url = |flag: &Option<String>, file: Option<String>, default: &str| {
            flag.clone().or(file).unwrap_or_else(|| default.to_owned())
        };
        Ok(Self {
            output: global.output,
            ingest: Endpoint { service: "ingest", url: url(&global.ingest, config.ingest, DEFAULT_INGEST_URL) },
            pricing: Endpoint { service: "pricing", url: url(&global.pricing, config.pricing, DEFAULT_PRICING_URL) },
            ledger: Endpoint { service: "ledger", url: url(&global.ledger, config.ledger, DEFAULT_LEDGER_URL) },
            bearer,
            tls: ClientTls::from_env().map_err(|e| CliError::new(exit::USAGE, format!("{e:#}")))?,
        })
    }

    async fn channel(&self, endpoint: &Endpoint) -> Result<AuthChannel, CliError> {
        let url = &endpoint.url;
        let channel = self
            .tls
            .endpoint(url)
            .map_err(|e| CliError::invalid(format!("--{} {url:?}: {e:#}", endpoint.service)))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| {
                CliError::new(
                    exit::UNAVAILABLE,
                    format!(
                        "{} at {url} is unreachable ({}): is it running? (`cargo xtask up`)",
                        endpoint.service,
                        error_chain(&e)
                    ),
                )
            })?;
        Ok(connect::authorized(channel, self.bearer.clone()))
    }

    pub async fn ingest(&self) -> Result<IngestServiceClient<AuthChannel>, CliError> {
        Ok(IngestServiceClient::new(self.channel(&self.ingest).await?).max_decoding_message_size(MAX_MESSAGE))
    }

    pub async fn pricing(&self) -> Result<PricingServiceClient<AuthChannel>, CliError> {
        Ok(PricingServiceClient::new(self.channel(&self.pricing).await?).max_decoding_message_size(MAX_MESSAGE))
    }

    pub async fn ledger(&self) -> Result<LedgerServiceClient<AuthChannel>, CliError> {
        Ok(LedgerServiceClient::new(self.channel(&self.ledger).await?).max_decoding_message_size(MAX_MESSAGE))
    }

    /// Prints `value`: as JSON, or as `table` prints it.
    pub fn emit<T: ToJson + ?Sized>(
        &self,
        out: &mut dyn Write,
        value: &T,
        table: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), CliError> {
        match self.output {
            Output::Json => {
                serde_json::to_writer_pretty(&mut *out, &value.to_json())?;
                writeln!(out)?;
            }
            Output::Table => table(out)?,
        }
        Ok(())
    }
}

/// Responses can be large (a month's invoices, a sync run's rejected rows).
const MAX_MESSAGE: usize = 64 << 20;

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Helpers for commands

/// A period argument, checked before anything is sent.
pub fn period(text: &str) -> Result<String, CliError> {
    radfin_domain::Period::from_str(text.trim())
        .map(|p| p.to_string())
        .map_err(|e| CliError::invalid(format!("invalid period {text:?}: {e}")))
}

/// An optional period filter.
pub fn period_filter(text: Option<&str>) -> Result<String, CliError> {
    text.map_or(Ok(String::new()), period)
}

/// A positive decimal as the user wrote it (digits and one point: no sign, exponent or
/// separators), passed on unchanged: money is never parsed into a float.
pub fn positive_decimal(flag: &str, text: &str) -> Result<String, CliError> {
    let text = text.trim();
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match rust_decimal::Decimal::from_str_exact(text) {
        Ok(d) if plain && d > rust_decimal::Decimal::ZERO => Ok(text.to_owned()),
        _ => Err(CliError::invalid(format!("{flag} {text:?}: must be a positive decimal such as 1250.00"))),
    }
}

/// A spinner on stderr while a long call runs (hidden when stderr is not a terminal).
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Reads a file argument (`-` is standard input).
pub fn read_input(path: &Path) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        return io::read_to_string(io::stdin())
            .map_err(|e| CliError::invalid(format!("cannot read standard input: {e}")));
    }
    std::fs::read_to_string(path).map_err(|e| CliError::invalid(format!("cannot read {}: {e}", path.display())))
}

// ---------------------------------------------------------------------------------------------
// The commands

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Submit a file of reports (JSON array, JSON lines or CSV with a header) to ingest.
    Submit(reports::SubmitArgs),
    /// Run the rolling-window sync from the configured source now; `sync list` shows past runs.
    Sync(reports::SyncArgs),
    /// The recorded sync runs (same as `sync list`).
    SyncRuns(reports::SyncListArgs),
    /// Reports pricing cannot price yet, with the reason.
    Held(reports::HeldArgs),
    /// Close a period: invoices, payout statements and their numbers (role finance).
    Close(periods::CloseArgs),
    /// Reprice a closed period with the current rules: preview the differences and documents, or
    /// apply them (role admin).
    Rerun(periods::RerunArgs),
    /// Replay a period's report subject and reconcile it against the ingest store (a rerun
    /// preview; prints what was read back and what the stream had lost).
    Replay(periods::ReplayArgs),
    /// Every period the ledger knows, with its state.
    Periods,
    /// A period's current view per client: reports, revenue, COGS, margin.
    Summary(periods::SummaryArgs),
    /// Pricing runs (LIVE, CLOSE, RERUN), newest first.
    Runs(periods::RunsArgs),
    /// Rule versions: put, get, list.
    #[command(subcommand)]
    Rules(reference::RulesCommand),
    /// Providers and clients (every profile version); `parties put FILE` adds versions.
    Parties(reference::PartiesArgs),
    /// FX rates: put by hand, list, fetch the feed now.
    #[command(subcommand)]
    Fx(reference::FxCommand),
    /// Invoices: list, show, pdf.
    #[command(subcommand)]
    Invoices(documents::InvoicesCommand),
    /// Payout statements: list, show, pdf.
    #[command(subcommand)]
    Statements(documents::StatementsCommand),
    /// A client's account: invoices and credit notes with running balances, and the total due.
    Account(documents::AccountArgs),
    /// Issue a credit note against an invoice (role finance).
    CreditNote(documents::CreditNoteArgs),
    /// Credit notes, filtered by period, client or invoice; `credit-notes pdf NUMBER` renders one.
    CreditNotes(documents::CreditNotesArgs),
    /// The audit log, newest first; `audit verify` checks its hash chain (role finance).
    Audit(audit::AuditArgs),
    /// Messages a consumer gave up on, oldest first, with why; `dead-letters redrive SEQ --reason
    /// TEXT` republishes one to the subject it came from (role finance).
    DeadLetters(dead_letters::DeadLettersArgs),
}

/// Runs an operator command; the error carries the exit code.
pub async fn run(command: Command, global: &Global, out: &mut dyn Write) -> Result<(), CliError> {
    let ctx = Ctx::new(global)?;
    match command {
        Command::Submit(args) => reports::submit(&ctx, &args, out).await,
        Command::Sync(args) => reports::sync(&ctx, &args, out).await,
        Command::SyncRuns(args) => reports::sync_list(&ctx, &args, out).await,
        Command::Held(args) => reports::held(&ctx, &args, out).await,
        Command::Close(args) => periods::close(&ctx, &args, out).await,
        Command::Rerun(args) => periods::rerun(&ctx, &args, out).await,
        Command::Replay(args) => periods::replay(&ctx, &args, out).await,
        Command::Periods => periods::list(&ctx, out).await,
        Command::Summary(args) => periods::summary(&ctx, &args, out).await,
        Command::Runs(args) => periods::runs(&ctx, &args, out).await,
        Command::Rules(cmd) => reference::rules(&ctx, cmd, out).await,
        Command::Parties(args) => reference::parties(&ctx, args, out).await,
        Command::Fx(cmd) => reference::fx(&ctx, cmd, out).await,
        Command::Invoices(cmd) => documents::invoices(&ctx, cmd, out).await,
        Command::Statements(cmd) => documents::statements(&ctx, cmd, out).await,
        Command::Account(args) => documents::account(&ctx, &args, out).await,
        Command::CreditNote(args) => documents::credit_note(&ctx, &args, out).await,
        Command::CreditNotes(args) => documents::credit_notes(&ctx, &args, out).await,
        Command::Audit(args) => audit::audit(&ctx, &args, out).await,
        Command::DeadLetters(args) => dead_letters::dead_letters(&ctx, &args, out).await,
    }
}

#[cfg(test)]
mod tests;
