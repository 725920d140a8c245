//! What pricing needs: rule versions, parties (providers and clients), FX rates.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget};
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_proto::pricing::v1::{
    Client, FetchFxRatesRequest, GetRuleVersionRequest, ListClientsRequest, ListFxRatesRequest, ListProvidersRequest,
    ListRuleVersionsRequest, Provider, PutClientRequest, PutClientRulesRequest, PutFxRateRequest, PutProviderRequest,
    PutProviderRulesRequest, RuleVersion,
};
use serde::Deserialize;

use super::json::grade;
use super::{CliError, Ctx, Rpc, exit, positive_decimal, read_input, required, spinner};
use crate::table::{self, or_dash};

// ---------------------------------------------------------------------------------------------
// rules

/// Whose rules: `provider` (the provider rules, spec §4.1) or a client id (spec §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Provider,
    Client(String),
}

impl Target {
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "provider" | "providers" => Self::Provider,
            id => Self::Client(id.to_owned()),
        }
    }

    /// The `client_id` of the requests: empty for the provider rules.
    fn client_id(&self) -> String {
        match self {
            Self::Provider => String::new(),
            Self::Client(id) => id.clone(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Provider => f.write_str("the provider rules"),
            Self::Client(id) => write!(f, "{id}'s rules"),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum RulesCommand {
    /// Add a rule version from a JSON document; an invalid one is refused with every problem.
    Put {
        /// `provider`, or the client id the document is for.
        target: String,
        /// The rule document (JSON; `-` reads standard input).
        file: PathBuf,
        /// The first report date the version prices, YYYY-MM-DD [default: today, in the business
        /// time zone]
        #[arg(long, value_name = "DATE")]
        effective_from: Option<String>,
    },
    /// One version's document.
    Get {
        /// `provider`, or a client id.
        target: String,
        /// The version [default: the latest recorded]
        version: Option<u32>,
    },
    /// The versions of the provider rules or of one client's rules [default: all of them].
    List {
        /// `provider`, or a client id.
        target: Option<String>,
    },
}

/// The version `rules put` recorded: `PutProviderRulesResponse` or `PutClientRulesResponse`,
/// whose fields are the same.
pub struct RulesPut {
    pub version: u32,
    /// RFC 3339: when pricing recorded the version.
    pub recorded_at: String,
}

/// Every rule version pricing holds (`rules list` without a target).
pub struct AllRuleVersions {
    pub provider: Vec<RuleVersion>,
    pub clients: BTreeMap<String, Vec<RuleVersion>>,
}

fn date_arg(flag: &str, text: &str) -> Result<String, CliError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| CliError::invalid(format!("{flag} {text:?}: must be a date YYYY-MM-DD such as 2026-01-01")))
}

fn today() -> String {
    radfin_domain::BusinessCalendar::default().local_date(chrono::Utc::now()).format("%Y-%m-%d").to_string()
}

pub async fn rules(ctx: &Ctx, cmd: RulesCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let mut pricing = ctx.pricing().await?;
    match cmd {
        RulesCommand::Put { target, file, effective_from } => {
            let target = Target::parse(&target);
            let effective_from = match effective_from {
                Some(d) => date_arg("--effective-from", &d)?,
                None => today(),
            };
            let document = read_input(&file)?;
            let response = match &target {
                Target::Provider => pricing
                    .put_provider_rules(PutProviderRulesRequest { effective_from: effective_from.clone(), document })
                    .await
                    .rpc(&ctx.pricing, "PutProviderRules")
                    .map(|r| RulesPut { version: r.version, recorded_at: r.recorded_at }),
                Target::Client(id) => pricing
                    .put_client_rules(PutClientRulesRequest {
                        client_id: id.clone(),
                        effective_from: effective_from.clone(),
                        document,
                    })
                    .await
                    .rpc(&ctx.pricing, "PutClientRules")
                    .map(|r| RulesPut { version: r.version, recorded_at: r.recorded_at }),
            }
            .map_err(|e| CliError { message: format!("{}: {}", file.display(), e.message), ..e })?;
            ctx.emit(out, &response, |out| {
                writeln!(
                    out,
                    "{target}: version {} recorded at {}, in force from {effective_from}",
                    response.version, response.recorded_at
                )
            })
        }
        RulesCommand::Get { target, version } => {
            let target = Target::parse(&target);
            let version = match version {
                Some(v) => v,
                None => pricing
                    .list_rule_versions(ListRuleVersionsRequest { client_id: target.client_id() })
                    .await
                    .rpc(&ctx.pricing, "ListRuleVersions")?
                    .versions
                    .iter()
                    .map(|v| v.version)
                    .max()
                    .ok_or_else(|| CliError::new(exit::NOT_FOUND, format!("not found: no versions of {target}")))?,
            };
            let v = pricing
                .get_rule_version(GetRuleVersionRequest { client_id: target.client_id(), version })
                .await
                .rpc(&ctx.pricing, "GetRuleVersion")
                .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin rules list` lists the versions"))?;
            let v = required(v.rule_version, "GetRuleVersion", "rule_version")?;
            ctx.emit(out, &v, |out| {
                writeln!(
                    out,
                    "{target}, version {}: in force from {}, recorded at {} by {}",
                    v.version,
                    v.effective_from,
                    v.recorded_at,
                    or_dash(&v.recorded_by)
                )?;
                writeln!(out, "{}", v.document.trim_end())
            })
        }
        RulesCommand::List { target: Some(target) } => {
            let target = Target::parse(&target);
            let response = pricing
                .list_rule_versions(ListRuleVersionsRequest { client_id: target.client_id() })
                .await
                .rpc(&ctx.pricing, "ListRuleVersions")?;
            let label = match &target {
                Target::Provider => "provider".to_owned(),
                Target::Client(id) => id.clone(),
            };
            ctx.emit(out, &response, |out| {
                if response.versions.is_empty() {
                    return writeln!(out, "no versions of {target}");
                }
                writeln!(out, "{}", versions_table([(label.as_str(), response.versions.as_slice())]))
            })
        }
        RulesCommand::List { target: None } => {
            let provider = pricing
                .list_rule_versions(ListRuleVersionsRequest { client_id: String::new() })
                .await
                .rpc(&ctx.pricing, "ListRuleVersions")?
                .versions;
            let ids: BTreeSet<String> = pricing
                .list_clients(ListClientsRequest {})
                .await
                .rpc(&ctx.pricing, "ListClients")?
                .clients
                .into_iter()
                .map(|c| c.client_id)
                .collect();
            let mut clients = BTreeMap::new();
            for id in ids {
                let versions = pricing
                    .list_rule_versions(ListRuleVersionsRequest { client_id: id.clone() })
                    .await
                    .rpc(&ctx.pricing, "ListRuleVersions")?
                    .versions;
                clients.insert(id, versions);
            }
            let all = AllRuleVersions { provider, clients };
            ctx.emit(out, &all, |out| {
                let rows = std::iter::once(("provider", all.provider.as_slice()))
                    .chain(all.clients.iter().map(|(id, v)| (id.as_str(), v.as_slice())));
                writeln!(out, "{}", versions_table(rows))
            })
        }
    }
}

fn versions_table<'a>(rows: impl IntoIterator<Item = (&'a str, &'a [RuleVersion])>) -> comfy_table::Table {
    let mut t = table::with_numeric(&["Rules", "Version", "In force from", "Recorded at", "Recorded by"], &[1]);
    for (target, versions) in rows {
        if versions.is_empty() {
            t.add_row(vec![target.to_owned(), "—".to_owned(), String::new(), String::new(), String::new()]);
        }
        for v in versions {
            t.add_row(vec![
                target.to_owned(),
                v.version.to_string(),
                v.effective_from.clone(),
                v.recorded_at.clone(),
                or_dash(&v.recorded_by),
            ]);
        }
    }
    t
}

// ---------------------------------------------------------------------------------------------
// parties

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PartiesArgs {
    #[command(subcommand)]
    pub command: Option<PartiesCommand>,
}

#[derive(clap::Subcommand, Debug)]
pub enum PartiesCommand {
    /// Every version of every provider and client profile (the default).
    List,
    /// Add profile versions from a JSON file {"providers": [...], "clients": [...]} (the format of
    /// samples/parties.json); putting a version already recorded changes nothing.
    Put {
        /// The file (`-` reads standard input).
        file: PathBuf,
    },
}

/// `parties`: both lists.
pub struct Parties {
    pub providers: Vec<Provider>,
    pub clients: Vec<Client>,
}

/// What `parties put` put.
pub struct PartiesPut {
    pub providers: u64,
    pub clients: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartiesFile {
    #[serde(default)]
    providers: Vec<ProviderProfile>,
    #[serde(default)]
    clients: Vec<ClientProfile>,
}

pub async fn parties(ctx: &Ctx, args: PartiesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match args.command.unwrap_or(PartiesCommand::List) {
        PartiesCommand::List => {
            let mut pricing = ctx.pricing().await?;
            let providers =
                pricing.list_providers(ListProvidersRequest {}).await.rpc(&ctx.pricing, "ListProviders")?.providers;
            let clients = pricing.list_clients(ListClientsRequest {}).await.rpc(&ctx.pricing, "ListClients")?.clients;
            let parties = Parties { providers, clients };
            ctx.emit(out, &parties, |out| {
                writeln!(out, "Providers")?;
                let mut t = table::new(&["Provider", "Name", "Grade", "Practicing since", "PAN", "In force from"], 6);
                for p in &parties.providers {
                    t.add_row(vec![
                        p.provider_id.clone(),
                        p.name.clone(),
                        grade(p.grade).unwrap_or("—").to_owned(),
                        p.practicing_since.clone(),
                        or_dash(&p.pan),
                        p.effective_from.clone(),
                    ]);
                }
                writeln!(out, "{t}")?;
                writeln!(out, "\nClients")?;
                let mut t =
                    table::new(&["Client", "Name", "Country", "State", "GSTIN", "Currency", "In force from"], 7);
                for c in &parties.clients {
                    t.add_row(vec![
                        c.client_id.clone(),
                        c.name.clone(),
                        c.country.clone(),
                        or_dash(&c.state_code),
                        or_dash(&c.gstin),
                        c.currency.clone(),
                        c.effective_from.clone(),
                    ]);
                }
                writeln!(out, "{t}")
            })
        }
        PartiesCommand::Put { file } => {
            let text = read_input(&file)?;
            let parsed: PartiesFile =
                serde_json::from_str(&text).map_err(|e| CliError::invalid(format!("{}: {e}", file.display())))?;
            let mut pricing = ctx.pricing().await?;
            for p in &parsed.providers {
                pricing
                    .put_provider(PutProviderRequest { provider: Some(p.into()) })
                    .await
                    .rpc(&ctx.pricing, "PutProvider")
                    .map_err(|e| CliError { message: format!("provider {}: {}", p.provider_id, e.message), ..e })?;
            }
            for c in &parsed.clients {
                pricing
                    .put_client(PutClientRequest { client: Some(c.into()) })
                    .await
                    .rpc(&ctx.pricing, "PutClient")
                    .map_err(|e| CliError { message: format!("client {}: {}", c.client_id, e.message), ..e })?;
            }
            let put = PartiesPut { providers: parsed.providers.len() as u64, clients: parsed.clients.len() as u64 };
            ctx.emit(out, &put, |out| {
                writeln!(out, "put {} provider and {} client profile versions", put.providers, put.clients)
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fx

#[derive(clap::Subcommand, Debug)]
pub enum FxCommand {
    /// Record a rate by hand (source MANUAL, audited with the reason): one rate, or every rate of
    /// a file [{"rate_date", "currency", "inr_per_unit"}...] (the format of samples/fx-rates.json).
    Put {
        /// ISO 4217 code, e.g. USD.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        currency: Option<String>,
        /// The rate's date, YYYY-MM-DD.
        #[arg(required_unless_present = "file")]
        date: Option<String>,
        /// INR per unit, a decimal such as 83.125.
        #[arg(required_unless_present = "file")]
        rate: Option<String>,
        /// Put every rate of this file instead.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Why the rate is put by hand (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Fetch pricing's FX feed (RADFIN_FX_URL) now instead of at its next scheduled fetch; the
    /// rates not stored yet are stored and reports waiting for them are priced (role finance).
    Fetch {
        /// Why the feed is fetched out of its schedule (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stored rates, with the one in effect for each date and currency marked.
    List {
        /// Only this currency.
        #[arg(long)]
        currency: Option<String>,
        /// From this date, YYYY-MM-DD, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// To this date, YYYY-MM-DD, inclusive.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Deserialize)]
struct FileRate {
    rate_date: String,
    currency: String,
    inr_per_unit: String,
}

/// What `fx put --file` did.
pub struct FxPut {
    pub rates: u64,
    pub inserted: u64,
    pub unchanged: u64,
}

pub async fn fx(ctx: &Ctx, cmd: FxCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        FxCommand::Put { currency, date, rate, file, reason } => {
            if reason.trim().is_empty() {
                return Err(CliError::invalid("--reason must say why the rate is put by hand"));
            }
            let rates: Vec<FileRate> = match (&file, currency, date, rate) {
                (Some(file), ..) => serde_json::from_str(&read_input(file)?)
                    .map_err(|e| CliError::invalid(format!("{}: {e}", file.display())))?,
                (None, Some(currency), Some(date), Some(rate)) => vec![FileRate {
                    rate_date: date_arg("date", &date)?,
                    currency: currency.trim().to_ascii_uppercase(),
                    inr_per_unit: positive_decimal("rate", &rate)?,
                }],
                _ => return Err(CliError::new(exit::USAGE, "give CURRENCY DATE RATE, or --file")),
            };
            let mut pricing = ctx.pricing().await?;
            let bar = ProgressBar::with_draw_target(Some(rates.len() as u64), ProgressDrawTarget::stderr());
            let mut done = FxPut { rates: rates.len() as u64, inserted: 0, unchanged: 0 };
            let mut last = None;
            for r in rates {
                let what = format!("{} {}", r.currency, r.rate_date);
                let response = pricing
                    .put_fx_rate(PutFxRateRequest {
                        rate_date: r.rate_date,
                        currency: r.currency,
                        inr_per_unit: r.inr_per_unit,
                        reason: reason.clone(),
                    })
                    .await
                    .rpc(&ctx.pricing, "PutFxRate")
                    .map_err(|e| {
                        bar.abandon();
                        CliError { message: format!("{what}: {}", e.message), ..e }
                    })?;
                if response.inserted {
                    done.inserted += 1;
                } else {
                    done.unchanged += 1;
                }
                bar.inc(1);
                last = Some((what, response));
            }
            bar.finish_and_clear();
            match (file, last) {
                (None, Some((what, response))) => ctx.emit(out, &response, |out| {
                    if response.inserted {
                        writeln!(out, "{what}: rate recorded (MANUAL); reports waiting for it are priced")
                    } else {
                        writeln!(out, "{what}: this rate put by hand is already in effect; nothing recorded")
                    }
                }),
                _ => ctx.emit(out, &done, |out| {
                    writeln!(
                        out,
                        "{} rates put: {} recorded, {} already in effect (unchanged)",
                        done.rates, done.inserted, done.unchanged
                    )
                }),
            }
        }
        FxCommand::Fetch { reason } => {
            let bar = spinner("fetching the FX feed".to_owned());
            let response = ctx
                .pricing()
                .await?
                .fetch_fx_rates(FetchFxRatesRequest { reason: reason.unwrap_or_default() })
                .await
                .rpc(&ctx.pricing, "FetchFxRates");
            bar.finish_and_clear();
            let response = response?;
            ctx.emit(out, &response, |out| {
                writeln!(
                    out,
                    "{} feed {}: {} rates fetched, {} new",
                    response.source, response.url, response.fetched, response.stored
                )?;
                if !response.earliest_rate_date.is_empty() {
                    writeln!(out, "rate dates {} to {}", response.earliest_rate_date, response.latest_rate_date)?;
                }
                if response.stored > 0 {
                    writeln!(out, "reports waiting for these rates are priced")?;
                }
                Ok(())
            })
        }
        FxCommand::List { currency, from, to } => {
            let request = ListFxRatesRequest {
                currency: currency.unwrap_or_default().trim().to_ascii_uppercase(),
                from: from.map(|d| date_arg("--from", &d)).transpose()?.unwrap_or_default(),
                to: to.map(|d| date_arg("--to", &d)).transpose()?.unwrap_or_default(),
            };
            let response = ctx.pricing().await?.list_fx_rates(request).await.rpc(&ctx.pricing, "ListFxRates")?;
            ctx.emit(out, &response, |out| {
                if response.rates.is_empty() {
                    return writeln!(out, "no FX rates");
                }
                let mut t = table::with_numeric(
                    &["Date", "Currency", "INR per unit", "Source", "Fetched at", "In effect"],
                    &[2],
                );
                for r in &response.rates {
                    t.add_row(vec![
                        r.rate_date.clone(),
                        r.currency.clone(),
                        r.inr_per_unit.clone(),
                        r.source.clone(),
                        r.fetched_at.clone(),
                        if r.in_effect { "✓".to_owned() } else { String::new() },
                    ]);
                }
                writeln!(out, "{t}")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_the_provider_rules_or_a_client() {
        assert_eq!(Target::parse("provider"), Target::Provider);
        assert_eq!(Target::parse("HOSP-001"), Target::Client("HOSP-001".to_owned()));
        assert_eq!(Target::Provider.client_id(), "");
        assert_eq!(Target::parse("HOSP-001").client_id(), "HOSP-001");
    }

    #[test]
    fn the_sample_files_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
        let parties: PartiesFile =
            serde_json::from_str(&std::fs::read_to_string(dir.join("parties.json")).unwrap_or_default())
                .unwrap_or(PartiesFile { providers: Vec::new(), clients: Vec::new() });
        assert!(!parties.providers.is_empty() && !parties.clients.is_empty());
        let rates: Vec<FileRate> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("fx-rates.json")).unwrap_or_default())
                .unwrap_or_default();
        assert!(!rates.is_empty());
        assert!(rates.iter().all(|r| positive_decimal("rate", &r.inr_per_unit).is_ok()));
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(date_arg("--from", "2026-01-31").ok().as_deref(), Some("2026-01-31"));
        assert_eq!(date_arg("--from", "2026-02-30").map_err(|e| e.code).err(), Some(exit::REFUSED));
    }
}
