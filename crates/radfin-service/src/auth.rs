//! Authentication and authorization of every gRPC call: bearer tokens with roles, checked per
//! method in one tower layer ([`AuthLayer`]) that every service's server runs
//! ([`crate::grpc::serve`], [`crate::supervise::Supervisor::serve`]).
//!
//! - Tokens live in a JSON file named by `RADFIN_AUTH_TOKENS_FILE`, hashed ([`store`]); the file
//!   is polled every [`RELOAD_INTERVAL`] and a valid new version replaces the old one without a
//!   restart (an invalid one is logged and the previous tokens stay).
//! - [`policy::POLICY`] maps each method to the [`Role`] it needs; a method not there needs
//!   `admin`. Health checking and reflection need no token.
//! - A call without a valid token is UNAUTHENTICATED; one whose role may not call the method is
//!   PERMISSION_DENIED. A denied attempt on a privileged method (one that needs `ingest`,
//!   `finance` or `admin`) is written to the audit log.
//! - An allowed call carries its [`Principal`] in the request's extensions: a handler reads it
//!   with [`principal`] (and audits what it does with it).
//!
//! Without `RADFIN_AUTH_TOKENS_FILE` authentication is disabled: every caller is the admin
//! `anonymous` (tests and the local demo).

mod layer;
pub mod policy;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use radfin_db::audit::{AuditOutcome, AuditRecord};

pub use layer::{AuthLayer, AuthService};
pub use policy::{Requirement, Role};
pub use store::{TokenInfo, TokenStore, sha256_hex};

/// The environment variable naming the token file.
pub const TOKENS_FILE_ENV: &str = "RADFIN_AUTH_TOKENS_FILE";

/// How often the token file is checked for changes (its modification time and length).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// How long a denial may wait for its audit row to be written before it is answered anyway.
pub const AUDIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Who is calling: the token's name and role (`anonymous`, admin, when authentication is disabled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The caller when authentication is disabled.
    pub fn anonymous() -> Principal {
        Principal { name: "anonymous".to_owned(), role: Role::Admin }
    }
}

/// The caller of a gRPC request, as the auth layer established it; `anonymous` (admin) when the
/// request carries none (authentication disabled).
pub fn principal<T>(request: &tonic::Request<T>) -> Principal {
    request.extensions().get::<Principal>().cloned().unwrap_or_else(Principal::anonymous)
}

/// A refused call: the gRPC status to answer with and what to audit.
#[derive(Debug)]
pub struct Denial {
    /// The full method path.
    pub path: String,
    /// The role the method needs.
    pub needs: Role,
    /// The token's name and role, when the token is known.
    pub caller: Option<(String, Role)>,
    /// UNAUTHENTICATED or PERMISSION_DENIED.
    pub status: tonic::Status,
}

impl Denial {
    /// Whether the attempt is audited: on a method that needs more than `viewer`.
    pub fn is_audited(&self) -> bool {
        self.needs.is_privileged()
    }

    /// The audit row of this attempt.
    pub fn audit_record(&self) -> AuditRecord {
        let (actor, role) = match &self.caller {
            Some((name, role)) => (name.clone(), role.as_str().to_owned()),
            None => ("unauthenticated".to_owned(), String::new()),
        };
        AuditRecord {
            actor,
            role,
            action: policy::method_name(&self.path).to_owned(),
            target: String::new(),
            reason: None,
            outcome: AuditOutcome::Denied,
            details: serde_json::json!({
                "method": self.path,
                "needs": self.needs.as_str(),
                "code": code_name(self.status.code()),
                "message": self.status.message(),
            }),
        }
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        _ => "OTHER",
    }
}

/// Authentication and authorization as configured: disabled, or enforcing the tokens of a file.
/// Cheap to clone; the clones share the tokens.
#[derive(Clone)]
pub struct Auth {
    tokens: Option<Arc<Tokens>>,
    /// Where denied attempts are audited.
    audit: Option<radfin_db::Pool>,
}

/// The current tokens of a file, replaced whole on reload.
struct Tokens {
    path: PathBuf,
    current: RwLock<Arc<TokenStore>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tokens {
            None => f.write_str("Auth(disabled)"),
            Some(tokens) => f
                .debug_struct("Auth")
                .field("file", &tokens.path)
                .field("tokens", &tokens.store().len())
                .field("audit", &self.audit.is_some())
                .finish(),
        }
    }
}

impl Tokens {
    fn store(&self) -> Arc<TokenStore> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn replace(&self, store: TokenStore) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(store);
    }
}

impl Auth {
    /// No authentication: every caller is the admin `anonymous`.
    pub fn disabled() -> Auth {
        Auth { tokens: None, audit: None }
    }

    /// As configured (`RADFIN_AUTH_TOKENS_FILE`, see [`crate::config::Common`]): the tokens of
    /// `file`, denied attempts audited in `audit`; or, without a file, disabled, with a warning.
    /// Must be called within a Tokio runtime.
    pub fn from_config(file: Option<&Path>, audit: radfin_db::Pool) -> anyhow::Result<Auth> {
        match file {
            Some(path) => Ok(Auth::load(path)?.with_audit(audit)),
            None => {
                tracing::warn!(
                    "authentication disabled: {TOKENS_FILE_ENV} is not set; every caller is treated as admin `anonymous`"
                );
                Ok(Auth::disabled())
            }
        }
    }

    /// Enforces the tokens of the file at `path`, which must be valid now; it is reloaded when
    /// it changes (checked every [`RELOAD_INTERVAL`] while any clone of this `Auth` lives). Must
    /// be called within a Tokio runtime.
    pub fn load(path: &Path) -> anyhow::Result<Auth> {
        Auth::load_polling(path, RELOAD_INTERVAL)
    }

    fn load_polling(path: &Path, interval: Duration) -> anyhow::Result<Auth> {
        let runtime = tokio::runtime::Handle::try_current().context("the token file is watched by a Tokio task")?;
        let stamp = stamp(path);
        let store = TokenStore::read(path)?;
        tracing::info!(file = %path.display(), tokens = store.len(), "authentication enabled");
        if store.is_empty() {
            tracing::warn!(file = %path.display(), "the token file has no tokens: every call but health and reflection is refused");
        }
        let tokens = Arc::new(Tokens { path: path.to_owned(), current: RwLock::new(Arc::new(store)) });
        runtime.spawn(watch(Arc::downgrade(&tokens), stamp.ok(), interval));
        Ok(Auth { tokens: Some(tokens), audit: None })
    }

    /// Denied attempts are written to the audit log of `pool`.
    pub fn with_audit(mut self, pool: radfin_db::Pool) -> Auth {
        self.audit = Some(pool);
        self
    }

    pub fn is_enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// The tower layer that enforces this on every call of a server.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }

    /// Who may call the method at `path` with these request headers, at `now`: `Ok(Some)` with
    /// the caller, `Ok(None)` for a method that needs no token, or the denial.
    pub fn check(&self, path: &str, headers: &HeaderMap, now: DateTime<Utc>) -> Result<Option<Principal>, Denial> {
        let needs = match policy::requirement(path) {
            Requirement::Public => return Ok(None),
            Requirement::Role(role) => role,
        };
        let Some(tokens) = &self.tokens else {
            return Ok(Some(Principal::anonymous()));
        };
        let deny = |caller: Option<(String, Role)>, status| Denial { path: path.to_owned(), needs, caller, status };
        let token = bearer(headers).map_err(|message| deny(None, tonic::Status::unauthenticated(message)))?;
        let store = tokens.store();
        let Some(info) = store.lookup(token) else {
            return Err(deny(None, tonic::Status::unauthenticated("unknown token")));
        };
        let caller = Some((info.name.clone(), info.role));
        if let Some(at) = info.expires_at.filter(|_| info.is_expired(now)) {
            let message =
                format!("token {} expired at {}", info.name, at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            return Err(deny(caller, tonic::Status::unauthenticated(message)));
        }
        if !info.role.may(needs) {
            let message =
                format!("{} needs role {needs}; token {} has role {}", policy::method_name(path), info.name, info.role);
            return Err(deny(caller, tonic::Status::permission_denied(message)));
        }
        Ok(Some(Principal { name: info.name.clone(), role: info.role }))
    }

    /// Logs a denial and, for a privileged method, writes its audit row, waiting at most
    /// [`AUDIT_TIMEOUT`] (a failure is logged; the call is denied all the same).
    pub async fn record_denial(&self, denial: &Denial) {
        let record = denial.audit_record();
        tracing::info!(
            method = %denial.path,
            actor = %record.actor,
            code = code_name(denial.status.code()),
            detail = denial.status.message(),
            "call denied"
        );
        if !denial.is_audited() {
            return;
        }
        let Some(pool) = &self.audit else {
            return;
        };
        let write = async {
            let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("no database connection: {e}"))?;
            radfin_db::audit::record(&mut conn, &record).await.map_err(anyhow::Error::from)
        };
        match tokio::time::timeout(AUDIT_TIMEOUT, write).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), method = %denial.path, "cannot audit a denied call")
            }
            Err(_) => tracing::error!(
                method = %denial.path,
                timeout_ms = AUDIT_TIMEOUT.as_millis(),
                "cannot audit a denied call: timed out"
            ),
        }
    }
}

/// The token of an `authorization: Bearer <token>` header, or why there is none.
fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err("missing bearer token");
    };
    const MALFORMED: &str = "malformed authorization header: expected `Bearer <token>`";
    if values.next().is_some() {
        return Err("malformed authorization: more than one authorization header");
    }
    let value = value.to_str().map_err(|_| MALFORMED)?;
    let (scheme, token) = value.split_once(' ').ok_or(MALFORMED)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(char::is_whitespace) {
        return Err(MALFORMED);
    }
    Ok(token)
}

/// What tells a changed file: its modification time and length.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified()?, meta.len()))
}

/// Reloads the token file whenever its stamp changes, until the tokens are no longer used.
async fn watch(tokens: Weak<Tokens>, mut seen: Option<Stamp>, interval: Duration) {
    let mut unreadable = false;
    loop {
        tokio::time::sleep(interval).await;
        let Some(tokens) = tokens.upgrade() else {
            return;
        };
        let path = &tokens.path;
        let now = match stamp(path) {
            Ok(now) => now,
            Err(e) => {
                if !unreadable {
                    tracing::error!(file = %path.display(), error = %e, "cannot read the token file; keeping the tokens loaded");
                }
                unreadable = true;
                seen = None;
                continue;
            }
        };
        unreadable = false;
        if seen == Some(now) {
            continue;
        }
        seen = Some(now);
        match TokenStore::read(path) {
            Ok(store) => {
                tracing::info!(file = %path.display(), tokens = store.len(), "token file reloaded");
                tokens.replace(store);
            }
            Err(e) => tracing::error!(
                file = %path.display(),
                error = %format!("{e:#}"),
                "the changed token file is invalid; keeping the tokens loaded before"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const CLOSE: &str = "/radfin.ledger.v1.LedgerService/ClosePeriod";
    const SUBMIT: &str = "/radfin.ingest.v1.IngestService/SubmitReport";
    const LIST_RUNS: &str = "/radfin.ledger.v1.LedgerService/ListRuns";
    const RERUN: &str = "/radfin.ledger.v1.LedgerService/RerunPeriod";
    const HEALTH: &str = "/grpc.health.v1.Health/Check";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").expect("time").with_timezone(&Utc)
    }

    fn auth() -> Auth {
        let json = format!(
            r#"{{"tokens":[
                {{"name":"ops-admin","role":"admin","sha256":"{}"}},
                {{"name":"ops-alice","role":"finance","sha256":"{}"}},
                {{"name":"ops-bob","role":"viewer","sha256":"{}"}},
                {{"name":"his-feed","role":"ingest","sha256":"{}"}},
                {{"name":"ops-old","role":"admin","sha256":"{}","expires_at":"2026-11-30T18:30:00Z"}}
            ]}}"#,
            sha256_hex("admin-t"),
            sha256_hex("alice-t"),
            sha256_hex("bob-t"),
            sha256_hex("feed-t"),
            sha256_hex("old-t"),
        );
        let store = TokenStore::parse(&json).expect("valid");
        let tokens = Tokens { path: PathBuf::from("test.json"), current: RwLock::new(Arc::new(store)) };
        Auth { tokens: Some(Arc::new(tokens)), audit: None }
    }

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        }
        headers
    }

    fn check(path: &str, authorization: Option<&str>) -> Result<Option<Principal>, Denial> {
        auth().check(path, &headers(authorization), now())
    }

    fn denied(path: &str, authorization: Option<&str>) -> Denial {
        check(path, authorization).expect_err("must be denied")
    }

    fn allowed(path: &str, authorization: Option<&str>) -> Principal {
        match check(path, authorization) {
            Ok(Some(principal)) => principal,
            Ok(None) => panic!("{path}: public"),
            Err(denial) => panic!("{path}: denied: {}", denial.status.message()),
        }
    }

    #[test]
    fn a_missing_malformed_or_unknown_token_is_unauthenticated() {
        for (authorization, message) in [
            (None, "missing bearer token"),
            (Some("alice-t"), "malformed authorization header"),
            (Some("Basic alice-t"), "malformed authorization header"),
            (Some("Bearer "), "malformed authorization header"),
            (Some("Bearer alice-t extra"), "malformed authorization header"),
            (Some("Bearer nobody-t"), "unknown token"),
        ] {
            let denial = denied(CLOSE, authorization);
            assert_eq!(denial.status.code(), tonic::Code::Unauthenticated, "{authorization:?}");
            assert!(denial.status.message().starts_with(message), "{authorization:?}: {}", denial.status.message());
            assert_eq!(denial.caller, None);
        }
        // The scheme is case-insensitive.
        assert_eq!(allowed(CLOSE, Some("bearer alice-t")).name, "ops-alice");
    }

    #[test]
    fn an_expired_token_is_unauthenticated_with_its_expiry() {
        let denial = denied(LIST_RUNS, Some("Bearer old-t"));
        assert_eq!(denial.status.code(), tonic::Code::Unauthenticated);
        assert_eq!(denial.status.message(), "token ops-old expired at 2026-11-30T18:30:00Z");
        assert_eq!(denial.caller, Some(("ops-old".to_owned(), Role::Admin)));
        // Valid a second before.
        let before = DateTime::parse_from_rfc3339("2026-11-30T18:29:59Z").expect("time").with_timezone(&Utc);
        assert!(auth().check(LIST_RUNS, &headers(Some("Bearer old-t")), before).is_ok());
    }

    #[test]
    fn a_role_below_the_method_is_permission_denied_naming_both() {
        let denial = denied(CLOSE, Some("Bearer bob-t"));
        assert_eq!(denial.status.code(), tonic::Code::PermissionDenied);
        assert_eq!(denial.status.message(), "ClosePeriod needs role finance; token ops-bob has role viewer");
        assert_eq!(denial.needs, Role::Finance);
        assert!(denial.is_audited());

        let denial = denied(RERUN, Some("Bearer alice-t"));
        assert_eq!(denial.status.message(), "RerunPeriod needs role admin; token ops-alice has role finance");
        // ingest does not imply viewer, and finance cannot submit.
        let denial = denied(LIST_RUNS, Some("Bearer feed-t"));
        assert_eq!(denial.status.message(), "ListRuns needs role viewer; token his-feed has role ingest");
        assert!(!denial.is_audited(), "a refused read is not audited");
        let denial = denied(SUBMIT, Some("Bearer alice-t"));
        assert_eq!(denial.status.message(), "SubmitReport needs role ingest; token ops-alice has role finance");
        // An unknown method needs admin.
        let denial = denied("/radfin.ledger.v1.LedgerService/DropTables", Some("Bearer alice-t"));
        assert_eq!(denial.status.message(), "DropTables needs role admin; token ops-alice has role finance");
    }

    #[test]
    fn allowed_calls_carry_their_principal() {
        assert_eq!(allowed(CLOSE, Some("Bearer alice-t")), Principal { name: "ops-alice".into(), role: Role::Finance });
        assert_eq!(allowed(LIST_RUNS, Some("Bearer alice-t")).role, Role::Finance);
        assert_eq!(allowed(LIST_RUNS, Some("Bearer bob-t")).role, Role::Viewer);
        assert_eq!(allowed(SUBMIT, Some("Bearer feed-t")).name, "his-feed");
        assert_eq!(allowed(SUBMIT, Some("Bearer admin-t")).name, "ops-admin");
        assert_eq!(allowed(RERUN, Some("Bearer admin-t")).role, Role::Admin);
        assert_eq!(allowed("/radfin.x.v1.X/Anything", Some("Bearer admin-t")).role, Role::Admin);
    }

    #[test]
    fn health_and_reflection_need_no_token() {
        assert_eq!(check(HEALTH, None).expect("public"), None);
        assert_eq!(check(HEALTH, Some("Bearer nobody-t")).expect("public"), None);
        assert_eq!(check("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", None).expect("public"), None);
    }

    #[test]
    fn disabled_auth_lets_everyone_in_as_anonymous_admin() {
        let disabled = Auth::disabled();
        assert!(!disabled.is_enabled());
        let principal = disabled.check(RERUN, &HeaderMap::new(), now()).expect("allowed").expect("a principal");
        assert_eq!(principal, Principal { name: "anonymous".into(), role: Role::Admin });
        assert_eq!(principal, super::principal(&tonic::Request::new(())));
    }

    #[test]
    fn a_denial_audit_record_names_the_actor_method_and_message() {
        let record = denied(CLOSE, Some("Bearer bob-t")).audit_record();
        assert_eq!((record.actor.as_str(), record.role.as_str()), ("ops-bob", "viewer"));
        assert_eq!(
            (record.action.as_str(), record.target.as_str(), record.outcome),
            ("ClosePeriod", "", AuditOutcome::Denied)
        );
        assert_eq!(record.details["message"], "ClosePeriod needs role finance; token ops-bob has role viewer");
        assert_eq!(record.details["code"], "PERMISSION_DENIED");
        assert_eq!(record.details["method"], CLOSE);
        let record = denied(CLOSE, None).audit_record();
        assert_eq!((record.actor.as_str(), record.role.as_str()), ("unauthenticated", ""));
    }

    #[tokio::test]
    async fn the_file_is_reloaded_when_it_changes_and_an_invalid_one_is_ignored() {
        let dir = std::env::temp_dir().join(format!("radfin-auth-unit-{}-{}", std::process::id(), now_nanos()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tokens.json");
        let write = |entries: &[(&str, &str, &str)]| {
            let entries: Vec<String> = entries
                .iter()
                .map(|(name, role, token)| {
                    format!(r#"{{"name":"{name}","role":"{role}","sha256":"{}"}}"#, sha256_hex(token))
                })
                .collect();
            std::fs::write(&path, format!(r#"{{"tokens":[{}]}}"#, entries.join(","))).expect("write");
        };
        write(&[("ops-alice", "finance", "alice-t")]);
        let auth = Auth::load_polling(&path, Duration::from_millis(20)).expect("valid file");
        let alice = headers(Some("Bearer alice-t"));
        let bob = headers(Some("Bearer bob-t"));
        assert!(auth.check(CLOSE, &alice, now()).is_ok());
        assert!(auth.check(CLOSE, &bob, now()).is_err());

        write(&[("ops-alice", "finance", "alice-t"), ("ops-bob", "finance", "bob-t")]);
        eventually(|| auth.check(CLOSE, &bob, now()).is_ok()).await;

        // An invalid version is ignored: the previous tokens stay.
        std::fs::write(&path, r#"{"tokens":[{"name":"x","role":"root","sha256":"00"}]}"#).expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(auth.check(CLOSE, &alice, now()).is_ok());
        assert!(auth.check(CLOSE, &bob, now()).is_ok());

        // A valid one again is taken; a token removed from it is unknown at once.
        write(&[("ops-bob", "viewer", "bob-t")]);
        eventually(|| auth.check(CLOSE, &alice, now()).is_err()).await;
        let denial = auth.check(CLOSE, &bob, now()).expect_err("viewer");
        assert_eq!(denial.status.code(), tonic::Code::PermissionDenied);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_invalid_file_at_startup_is_an_error() {
        let dir = std::env::temp_dir().join(format!("radfin-auth-unit-{}-{}", std::process::id(), now_nanos()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tokens.json");
        std::fs::write(&path, r#"{"tokens":[{"name":"ops-x","role":"root","sha256":"00"}]}"#).expect("write");
        let e = format!("{:#}", Auth::load(&path).expect_err("invalid"));
        assert!(e.contains("tokens[0] (ops-x): unknown role \"root\""), "{e}");
        let e = format!("{:#}", Auth::load(&dir.join("missing.json")).expect_err("missing"));
        assert!(e.contains("cannot read"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn now_nanos() -> u128 {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    }

    async fn eventually(mut condition: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(tokio::time::Instant::now() < deadline, "not within 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
