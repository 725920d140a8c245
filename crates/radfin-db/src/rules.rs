//! Pricing rule versions (`provider_pricing_rules`, `client_pricing_rules`): immutable JSON
//! documents, numbered per history (1, 2, …), with a valid time (`effective_from`) and a
//! transaction time (`recorded_at`, set by the database).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use radfin_domain::rules::{ClientRules, ProviderRules, RuleVersion};
use radfin_domain::{Catalog, ClientId};

use crate::StorageError;
use crate::convert::{decode, u32_from_db};
use crate::schema::{client_pricing_rules, provider_pricing_rules};

/// Advisory lock classes of rule numbering (the second key is `hashtext(client_id)` for a
/// client's history).
const PROVIDER_RULES_LOCK: i32 = 0x7266_7072; // "rfpr"
const CLIENT_RULES_LOCK: i32 = 0x7266_6372; // "rfcr"

/// A stored rule version, as listed to operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRule {
    /// The client of a client rule document; `None` for provider rules.
    pub client_id: Option<ClientId>,
    pub version: u32,
    pub effective_from: NaiveDate,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
    /// The document exactly as it was submitted.
    pub document: String,
}

/// Records a provider rule document as the next version (max + 1, numbered under an advisory
/// lock inside a transaction, so concurrent recorders get distinct numbers). The caller has
/// validated the document with `ProviderRules::parse`; nothing is checked here.
pub async fn insert_provider_rules(
    conn: &mut AsyncPgConnection,
    effective_from: NaiveDate,
    document: &str,
    recorded_by: &str,
) -> Result<u32, StorageError> {
    conn.transaction(async |conn| {
        lock_numbering(conn, None).await?;
        let latest: Option<i32> =
            provider_pricing_rules::table.select(max(provider_pricing_rules::version)).first(conn).await?;
        let version = next_version(latest)?;
        diesel::insert_into(provider_pricing_rules::table)
            .values((
                provider_pricing_rules::version.eq(version),
                provider_pricing_rules::effective_from.eq(effective_from),
                provider_pricing_rules::recorded_by.eq(recorded_by),
                provider_pricing_rules::document.eq(document),
            ))
            .execute(conn)
            .await?;
        u32_from_db("provider_pricing_rules.version", version)
    })
    .await
}

/// Records a client's rule document as the client's next version. The caller has validated
/// the document with `ClientRules::parse` (and that it names `client_id`, which the table checks).
pub async fn insert_client_rules(
    conn: &mut AsyncPgConnection,
    client_id: &ClientId,
    effective_from: NaiveDate,
    document: &str,
    recorded_by: &str,
) -> Result<u32, StorageError> {
    conn.transaction(async |conn| {
        lock_numbering(conn, Some(client_id)).await?;
        let latest: Option<i32> = client_pricing_rules::table
            .filter(client_pricing_rules::client_id.eq(client_id.as_str()))
            .select(max(client_pricing_rules::version))
            .first(conn)
            .await?;
        let version = next_version(latest)?;
        diesel::insert_into(client_pricing_rules::table)
            .values((
                client_pricing_rules::client_id.eq(client_id.as_str()),
                client_pricing_rules::version.eq(version),
                client_pricing_rules::effective_from.eq(effective_from),
                client_pricing_rules::recorded_by.eq(recorded_by),
                client_pricing_rules::document.eq(document),
            ))
            .execute(conn)
            .await?;
        u32_from_db("client_pricing_rules.version", version)
    })
    .await
}

/// Serializes numbering within one history until the transaction ends. Under READ COMMITTED
/// the `max(version)` read after the lock sees the previous holder's row; under SERIALIZABLE a
/// concurrent recorder fails with a serialization failure (or the primary key) instead.
async fn lock_numbering(conn: &mut AsyncPgConnection, client_id: Option<&ClientId>) -> Result<(), StorageError> {
    let (class, key) = match client_id {
        None => (PROVIDER_RULES_LOCK, ""),
        Some(id) => (CLIENT_RULES_LOCK, id.as_str()),
    };
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<Integer, _>(class)
        .bind::<Text, _>(key)
        .execute(conn)
        .await?;
    Ok(())
}

fn next_version(latest: Option<i32>) -> Result<i32, StorageError> {
    latest.unwrap_or(0).checked_add(1).ok_or_else(|| StorageError::OutOfRange("rule versions are exhausted".to_owned()))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = provider_pricing_rules, check_for_backend(diesel::pg::Pg))]
struct ProviderRuleRow {
    version: i32,
    effective_from: NaiveDate,
    recorded_at: DateTime<Utc>,
    recorded_by: String,
    document: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = client_pricing_rules, check_for_backend(diesel::pg::Pg))]
struct ClientRuleRow {
    client_id: String,
    version: i32,
    effective_from: NaiveDate,
    recorded_at: DateTime<Utc>,
    recorded_by: String,
    document: String,
}

impl TryFrom<ProviderRuleRow> for StoredRule {
    type Error = StorageError;

    fn try_from(row: ProviderRuleRow) -> Result<Self, StorageError> {
        Ok(StoredRule {
            client_id: None,
            version: u32_from_db("provider_pricing_rules.version", row.version)?,
            effective_from: row.effective_from,
            recorded_at: row.recorded_at,
            recorded_by: row.recorded_by,
            document: row.document,
        })
    }
}

impl TryFrom<ClientRuleRow> for StoredRule {
    type Error = StorageError;

    fn try_from(row: ClientRuleRow) -> Result<Self, StorageError> {
        Ok(StoredRule {
            client_id: Some(decode("client_pricing_rules.client_id", &row.client_id, ClientId::parse)?),
            version: u32_from_db("client_pricing_rules.version", row.version)?,
            effective_from: row.effective_from,
            recorded_at: row.recorded_at,
            recorded_by: row.recorded_by,
            document: row.document,
        })
    }
}

/// Every provider rule version, oldest first.
pub async fn list_provider_rules(conn: &mut AsyncPgConnection) -> Result<Vec<StoredRule>, StorageError> {
    let rows: Vec<ProviderRuleRow> = provider_pricing_rules::table
        .order(provider_pricing_rules::version.asc())
        .select(ProviderRuleRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter().map(StoredRule::try_from).collect()
}

/// The rule versions of one client (or of every client), by client and version.
pub async fn list_client_rules(
    conn: &mut AsyncPgConnection,
    client_id: Option<&ClientId>,
) -> Result<Vec<StoredRule>, StorageError> {
    let mut query = client_pricing_rules::table
        .order((client_pricing_rules::client_id.asc(), client_pricing_rules::version.asc()))
        .select(ClientRuleRow::as_select())
        .into_boxed();
    if let Some(id) = client_id {
        query = query.filter(client_pricing_rules::client_id.eq(id.as_str()));
    }
    let rows: Vec<ClientRuleRow> = query.load(conn).await?;
    rows.into_iter().map(StoredRule::try_from).collect()
}

/// Adds every rule version to `catalog`, parsed with the domain's parsers. A stored document
/// that no longer parses (the parser became stricter, say) is [`StorageError::Corrupt`] naming
/// the table and version: pricing must not silently skip rules.
pub async fn load_into(conn: &mut AsyncPgConnection, catalog: &mut Catalog) -> Result<(), StorageError> {
    for rule in list_provider_rules(conn).await? {
        let rules = ProviderRules::parse(&rule.document).map_err(|e| {
            StorageError::corrupt(format_args!("provider_pricing_rules version {} no longer parses: {e}", rule.version))
        })?;
        catalog.add_provider_rules(RuleVersion {
            version: rule.version,
            effective_from: rule.effective_from,
            recorded_at: rule.recorded_at,
            rules: Arc::new(rules),
        });
    }
    for rule in list_client_rules(conn, None).await? {
        let client = rule.client_id.as_ref().map(ToString::to_string).unwrap_or_default();
        let rules = ClientRules::parse(&rule.document).map_err(|e| {
            StorageError::corrupt(format_args!(
                "client_pricing_rules client {client} version {} no longer parses: {e}",
                rule.version
            ))
        })?;
        if rule.client_id.as_ref() != Some(&rules.client_id) {
            return Err(StorageError::corrupt(format_args!(
                "client_pricing_rules client {client} version {} names client {}",
                rule.version, rules.client_id
            )));
        }
        catalog.add_client_rules(RuleVersion {
            version: rule.version,
            effective_from: rule.effective_from,
            recorded_at: rule.recorded_at,
            rules: Arc::new(rules),
        });
    }
    Ok(())
}

/// The version of the reference data pricing reads: the reference clock, which stamps every
/// party, rule version and FX rate as it is inserted, one transaction at a time in commit order
/// (migration `000013_reference_clock`); read before the data, it covers every change the data
/// read after it holds, and no change it does not.
pub async fn reference_version(conn: &mut AsyncPgConnection) -> Result<chrono::DateTime<chrono::Utc>, StorageError> {
    use crate::schema::reference_clock::dsl as clock;
    Ok(clock::reference_clock.select(clock::at).first(conn).await?)
}
