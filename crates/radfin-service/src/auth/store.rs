//! The token store: bearer tokens, stored hashed (SHA-256), each with a name, a role and an
//! optional expiry, read from a JSON file and validated strictly.
//!
//! ```json
//! {"tokens": [
//!   {"name": "ops-alice", "role": "finance", "sha256": "<64 lowercase hex digits>", "expires_at": "2027-01-01T00:00:00Z"}
//! ]}
//! ```

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::policy::Role;

/// SHA-256 of a token.
pub type TokenDigest = [u8; 32];

/// The SHA-256 of `token`.
pub fn digest(token: &str) -> TokenDigest {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(token.as_bytes()));
    out
}

/// The SHA-256 of `token` as 64 lowercase hex digits: what the token file stores.
pub fn sha256_hex(token: &str) -> String {
    use std::fmt::Write;
    digest(token).iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// One known token (its plaintext is never kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The valid tokens, by digest.
#[derive(Clone, Debug, Default)]
pub struct TokenStore {
    by_digest: HashMap<TokenDigest, TokenInfo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    tokens: Vec<EntryDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    name: String,
    role: String,
    sha256: String,
    #[serde(default)]
    expires_at: Option<String>,
}

impl TokenStore {
    /// Parses and validates a token file's content. Every problem is reported, each naming its
    /// entry (`tokens[1] (ops-bob): ...`): an empty name, an unknown role, a digest that is not 64
    /// lowercase hex digits, an expiry that is not RFC 3339, a name or a token listed twice.
    pub fn parse(json: &str) -> anyhow::Result<TokenStore> {
        let doc: FileDoc = serde_json::from_str(json).context("not a token file")?;
        let mut problems = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut digests: HashMap<TokenDigest, usize> = HashMap::new();
        let mut by_digest = HashMap::with_capacity(doc.tokens.len());
        for (i, entry) in doc.tokens.iter().enumerate() {
            let at =
                if entry.name.is_empty() { format!("tokens[{i}]") } else { format!("tokens[{i}] ({})", entry.name) };
            let mut problem = |what: String| problems.push(format!("{at}: {what}"));
            if entry.name.trim().is_empty()
                || entry.name.trim() != entry.name
                || entry.name.chars().any(char::is_control)
            {
                problem(format!(
                    "name {:?} must be non-empty, without surrounding spaces or control characters",
                    entry.name
                ));
            } else if let Some(first) = names.insert(&entry.name, i) {
                problem(format!("duplicate name (also tokens[{first}])"));
            }
            let role = entry.role.parse::<Role>().map_err(&mut problem).ok();
            let digest = parse_digest(&entry.sha256).map_err(&mut problem).ok();
            if let Some(digest) = digest
                && let Some(first) = digests.insert(digest, i)
            {
                problem(format!("same token as tokens[{first}] ({})", doc.tokens[first].name));
            }
            let expires_at = match &entry.expires_at {
                None => Some(None),
                Some(at) => match DateTime::parse_from_rfc3339(at) {
                    Ok(at) => Some(Some(at.with_timezone(&Utc))),
                    Err(e) => {
                        problem(format!("expires_at {at:?} is not an RFC 3339 time: {e}"));
                        None
                    }
                },
            };
            if let (Some(role), Some(digest), Some(expires_at)) = (role, digest, expires_at) {
                by_digest.entry(digest).or_insert(TokenInfo { name: entry.name.clone(), role, expires_at });
            }
        }
        if !problems.is_empty() {
            bail!("invalid token file: {}", problems.join("; "));
        }
        Ok(TokenStore { by_digest })
    }

    /// Reads and validates the token file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<TokenStore> {
        let json = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        TokenStore::parse(&json).with_context(|| path.display().to_string())
    }

    /// The token whose plaintext is `token`, if known (expired or not). Looked up by digest, so
    /// the comparison is of digests, never of the secret itself.
    pub fn lookup(&self, token: &str) -> Option<&TokenInfo> {
        self.by_digest.get(&digest(token))
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

fn parse_digest(hex: &str) -> Result<TokenDigest, String> {
    let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(format!(
            "sha256 must be 64 lowercase hex digits (the SHA-256 of the token), got {} characters{}",
            hex.len(),
            if hex.len() == 64 { " with a non-hex or uppercase digit" } else { "" }
        ));
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let nibble = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
        *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, role: &str, token: &str) -> String {
        format!(r#"{{"name":"{name}","role":"{role}","sha256":"{}"}}"#, sha256_hex(token))
    }

    fn file(entries: &[String]) -> String {
        format!(r#"{{"tokens":[{}]}}"#, entries.join(","))
    }

    fn error(json: &str) -> String {
        format!("{:#}", TokenStore::parse(json).expect_err("must be rejected"))
    }

    #[test]
    fn sha256_of_a_known_value() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn parses_a_valid_file_and_looks_tokens_up_by_digest() {
        let json = format!(
            r#"{{"tokens":[{},{{"name":"ops-bob","role":"viewer","sha256":"{}","expires_at":"2027-01-01T05:30:00+05:30"}}]}}"#,
            entry("ops-alice", "finance", "alice-secret"),
            sha256_hex("bob-secret"),
        );
        let store = TokenStore::parse(&json).expect("valid");
        assert_eq!(store.len(), 2);
        let alice = store.lookup("alice-secret").expect("alice");
        assert_eq!((alice.name.as_str(), alice.role, alice.expires_at), ("ops-alice", Role::Finance, None));
        let bob = store.lookup("bob-secret").expect("bob");
        assert_eq!(bob.role, Role::Viewer);
        assert_eq!(bob.expires_at.map(|t| t.to_rfc3339()), Some("2027-01-01T00:00:00+00:00".to_owned()));
        assert!(store.lookup("carol-secret").is_none());
        // The digest is not a token.
        assert!(store.lookup(&sha256_hex("alice-secret")).is_none());
        assert!(TokenStore::parse(r#"{"tokens":[]}"#).expect("empty is valid").is_empty());
    }

    #[test]
    fn expiry_is_exclusive_of_the_instant() {
        let at = DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").expect("time").with_timezone(&Utc);
        let token = TokenInfo { name: "x".into(), role: Role::Viewer, expires_at: Some(at) };
        assert!(!token.is_expired(at - chrono::Duration::seconds(1)));
        assert!(token.is_expired(at));
        assert!(!TokenInfo { expires_at: None, ..token }.is_expired(at));
    }

    #[test]
    fn an_unknown_role_names_the_entry() {
        let e = error(&file(&[entry("ops-alice", "finance", "a"), entry("ops-root", "root", "b")]));
        assert!(e.contains("tokens[1] (ops-root): unknown role \"root\""), "{e}");
    }

    #[test]
    fn a_bad_digest_names_the_entry() {
        let short = r#"{"tokens":[{"name":"ops-x","role":"viewer","sha256":"abc"}]}"#;
        assert!(error(short).contains("tokens[0] (ops-x): sha256 must be 64 lowercase hex digits"), "{}", error(short));
        let upper = file(&[entry("ops-y", "viewer", "y").replace(&sha256_hex("y"), &sha256_hex("y").to_uppercase())]);
        assert!(
            error(&upper).contains("tokens[0] (ops-y): sha256 must be 64 lowercase hex digits"),
            "{}",
            error(&upper)
        );
        let non_hex = format!(r#"{{"tokens":[{{"name":"ops-z","role":"viewer","sha256":"{}"}}]}}"#, "g".repeat(64));
        assert!(error(&non_hex).contains("tokens[0] (ops-z): sha256"), "{}", error(&non_hex));
    }

    #[test]
    fn duplicate_names_and_tokens_are_rejected() {
        let e = error(&file(&[entry("ops-alice", "finance", "a"), entry("ops-alice", "viewer", "b")]));
        assert!(e.contains("tokens[1] (ops-alice): duplicate name (also tokens[0])"), "{e}");
        let e = error(&file(&[entry("ops-alice", "finance", "same"), entry("ops-bob", "admin", "same")]));
        assert!(e.contains("tokens[1] (ops-bob): same token as tokens[0] (ops-alice)"), "{e}");
    }

    #[test]
    fn bad_names_expiries_and_shapes_are_rejected() {
        let e = error(&file(&[entry("", "viewer", "a")]));
        assert!(e.contains("tokens[0]: name \"\" must be non-empty"), "{e}");
        let e = error(&file(&[entry(" ops", "viewer", "a")]));
        assert!(e.contains("tokens[0] ( ops): name"), "{e}");
        let expiry = format!(
            r#"{{"tokens":[{{"name":"ops-x","role":"viewer","sha256":"{}","expires_at":"2027-01-01"}}]}}"#,
            sha256_hex("x")
        );
        let e = error(&expiry);
        assert!(e.contains("tokens[0] (ops-x): expires_at \"2027-01-01\" is not an RFC 3339 time"), "{e}");
        // Unknown fields (a typo of expires_at, a plaintext token) and missing ones.
        let e = error(&format!(
            r#"{{"tokens":[{{"name":"a","role":"viewer","sha256":"{}","expires":"x"}}]}}"#,
            sha256_hex("a")
        ));
        assert!(e.contains("unknown field `expires`"), "{e}");
        let e = error(r#"{"tokens":[{"name":"a","role":"viewer","token":"plaintext"}]}"#);
        assert!(e.contains("unknown field `token`"), "{e}");
        assert!(error(r#"{"tokenz":[]}"#).contains("not a token file"));
        assert!(error("").contains("not a token file"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = error(&file(&[entry("a", "root", "a"), entry("b", "viewer", "b").replace(&sha256_hex("b"), "00")]));
        assert!(e.contains("tokens[0] (a): unknown role") && e.contains("tokens[1] (b): sha256"), "{e}");
    }
}
