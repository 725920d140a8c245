//! Reads a directory of parties, rule versions and FX rates: the formats the pricing service
//! accepts, kept as files for offline pricing and the demo.
//!
//! ```text
//! parties.json            {"providers": [ProviderProfile…], "clients": [ClientProfile…]}
//! rules/versions.json     {"provider": [Version…], "clients": [Version…]}, Version = {file, effective_from, recorded_at}
//! rules/<file>            one rule document per version (spec §4.1, §4.2)
//! fx-rates.json           [{"rate_date", "currency", "inr_per_unit", "source"}…]
//! demo.json               {"traffic_weights": {"<client_id>": weight…}} (demo traffic only)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use radfin_domain::fx::{FxRate, FxTable};
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_domain::rules::{ClientRules, ProviderRules, RuleErrors, RuleVersion};
use radfin_domain::{Catalog, ClientId};
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Deserialize)]
struct Parties {
    providers: Vec<ProviderProfile>,
    clients: Vec<ClientProfile>,
}

#[derive(Deserialize)]
struct VersionFile {
    file: PathBuf,
    effective_from: NaiveDate,
    recorded_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Versions {
    provider: Vec<VersionFile>,
    clients: Vec<VersionFile>,
}

#[derive(Deserialize)]
pub struct Demo {
    pub traffic_weights: BTreeMap<ClientId, u32>,
}

/// A rule document as filed, for putting it through the pricing service.
pub struct RuleFile {
    pub effective_from: NaiveDate,
    pub document: String,
}

#[derive(Default)]
pub struct RuleFiles {
    pub provider: Vec<RuleFile>,
    pub clients: Vec<(ClientId, RuleFile)>,
}

pub struct Samples {
    pub catalog: Catalog,
    pub rule_files: RuleFiles,
    pub rates: Vec<FxRate>,
    pub providers: Vec<ProviderProfile>,
    pub clients: Vec<ClientProfile>,
    pub fx: FxTable,
    pub demo: Demo,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

fn rule_version<T>(
    dir: &Path,
    number: u32,
    v: &VersionFile,
    parse: impl Fn(&str) -> Result<T, RuleErrors>,
) -> anyhow::Result<(RuleVersion<T>, RuleFile)> {
    let path = dir.join(&v.file);
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let rules = parse(&text).with_context(|| format!("{} is rejected", path.display()))?;
    let version = RuleVersion {
        version: number,
        effective_from: v.effective_from,
        recorded_at: v.recorded_at,
        rules: Arc::new(rules),
    };
    Ok((version, RuleFile { effective_from: v.effective_from, document: text }))
}

pub fn load(dir: &Path, max_rate_age_days: u32) -> anyhow::Result<Samples> {
    let parties: Parties = read_json(&dir.join("parties.json"))?;
    let versions: Versions = read_json(&dir.join("rules/versions.json"))?;
    let rates: Vec<FxRate> = read_json(&dir.join("fx-rates.json"))?;
    let demo: Demo = read_json(&dir.join("demo.json"))?;

    let mut catalog = Catalog::default();
    parties.providers.iter().cloned().for_each(|p| catalog.add_provider(p));
    parties.clients.iter().cloned().for_each(|c| catalog.add_client(c));

    let rules_dir = dir.join("rules");
    let mut rule_files = RuleFiles::default();
    for (i, v) in versions.provider.iter().enumerate() {
        let (version, file) = rule_version(&rules_dir, i as u32 + 1, v, ProviderRules::parse)?;
        catalog.add_provider_rules(version);
        rule_files.provider.push(file);
    }
    // Versions are numbered per client, in the order the manifest lists them.
    let mut numbers: BTreeMap<String, u32> = BTreeMap::new();
    for v in &versions.clients {
        let (parsed, file) = rule_version(&rules_dir, 0, v, ClientRules::parse)?;
        let number = numbers.entry(parsed.rules.client_id.to_string()).or_default();
        *number += 1;
        rule_files.clients.push((parsed.rules.client_id.clone(), file));
        catalog.add_client_rules(RuleVersion { version: *number, ..parsed });
    }

    let mut fx = FxTable::new(max_rate_age_days);
    for rate in rates.iter().cloned() {
        let what = format!("{} rate of {}", rate.currency, rate.rate_date);
        fx.add(rate).with_context(|| format!("fx-rates.json: {what} is rejected"))?;
    }
    if let Some(unknown) = demo.traffic_weights.keys().find(|id| catalog.client(id).is_none()) {
        bail!("demo.json: traffic weight for unknown client {unknown}");
    }
    Ok(Samples { catalog, rule_files, rates, providers: parties.providers, clients: parties.clients, fx, demo })
}
