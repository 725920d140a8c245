//! Bearer tokens of the local stack, one per role: `target/radfin/dev-tokens.json` (SHA-256
//! only, what the services read through `RADFIN_AUTH_TOKENS_FILE`) and `dev-tokens.txt` beside
//! it (`role token` per line, readable by the owner only).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::infra;

const ROLES: [&str; 4] = ["ingest", "viewer", "finance", "admin"];

/// Where the token files are.
pub struct DevTokens {
    /// Hashed: for the services.
    pub json: PathBuf,
    /// In plaintext: for clients.
    pub txt: PathBuf,
}

impl DevTokens {
    pub fn new(root: &Path) -> DevTokens {
        let dir = infra::target_dir(root).join("radfin");
        DevTokens { json: dir.join("dev-tokens.json"), txt: dir.join("dev-tokens.txt") }
    }

    /// Creates both files with a new random token per role unless both exist already.
    /// Returns whether it created them.
    pub fn ensure(&self) -> anyhow::Result<bool> {
        if self.json.is_file() && self.txt.is_file() {
            return Ok(false);
        }
        let dir = self.json.parent().context("token file directory")?;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut entries = Vec::new();
        let mut plaintext = String::new();
        for role in ROLES {
            let token = random_token()?;
            entries.push(format!(
                r#"    {{"name": "dev-{role}", "role": "{role}", "sha256": "{}"}}"#,
                hex(&Sha256::digest(token.as_bytes()))
            ));
            plaintext.push_str(&format!("{role} {token}\n"));
        }
        let json = format!("{{\"tokens\": [\n{}\n]}}\n", entries.join(",\n"));
        write_private(&self.json, &json)?;
        write_private(&self.txt, &plaintext)?;
        Ok(true)
    }

    /// The plaintext token of `role`.
    pub fn token(&self, role: &str) -> anyhow::Result<String> {
        let text = fs::read_to_string(&self.txt).with_context(|| format!("cannot read {}", self.txt.display()))?;
        for line in text.lines() {
            if let Some((r, token)) = line.split_once(' ')
                && r == role
            {
                return Ok(token.trim().to_owned());
            }
        }
        bail!("{} has no {role} token (delete it and dev-tokens.json to make new ones)", self.txt.display())
    }
}

/// 32 random bytes from the operating system, as 64 hex digits.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).context("no randomness from the operating system")?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `content` to `path` with mode 0600, through a file beside it renamed into place.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let aside = path.with_extension("new");
    let _ = fs::remove_file(&aside);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .with_context(|| format!("cannot create {}", aside.display()))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", aside.display()))?;
    fs::rename(&aside, path).with_context(|| format!("cannot rename {} to {}", aside.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn makes_one_hashed_token_per_role_once() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let root = std::env::temp_dir().join(format!("radfin-xtask-tokens-{}-{nanos}", std::process::id()));
        let dir = root.join("radfin");
        let tokens = DevTokens { json: dir.join("dev-tokens.json"), txt: dir.join("dev-tokens.txt") };
        assert!(tokens.ensure().expect("created"));

        let txt = fs::read_to_string(&tokens.txt).expect("txt");
        let json = fs::read_to_string(&tokens.json).expect("json");
        assert_eq!(fs::metadata(&tokens.txt).expect("txt").permissions().mode() & 0o777, 0o600);
        let mut seen = Vec::new();
        for role in ROLES {
            let token = tokens.token(role).expect("a token per role");
            assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
            assert!(!json.contains(&token), "the json holds digests only");
            let entry = format!(
                r#"{{"name": "dev-{role}", "role": "{role}", "sha256": "{}"}}"#,
                hex(&Sha256::digest(token.as_bytes()))
            );
            assert!(json.contains(&entry), "{json}");
            seen.push(token);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), ROLES.len(), "distinct tokens");
        assert_eq!(txt.lines().count(), ROLES.len());

        // Kept as they are once made.
        assert!(!tokens.ensure().expect("kept"));
        assert_eq!(fs::read_to_string(&tokens.txt).expect("txt"), txt);
        let _ = fs::remove_dir_all(&root);
    }
}
