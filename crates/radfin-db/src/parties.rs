//! Party versions (`providers`, `clients`), append-only. Of several rows with the same
//! (id, `effective_from`), the latest recorded is the one in force.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, Date, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_domain::{Catalog, ClientId, Currency, ProviderId};

use crate::StorageError;
use crate::convert::decode;
use crate::schema::{clients, providers};

/// Records a provider profile version. A version identical to the one in force for its
/// (`provider_id`, `effective_from`) is not recorded again; returns whether a row was added.
pub async fn insert_provider(
    conn: &mut AsyncPgConnection,
    profile: &ProviderProfile,
    recorded_by: &str,
) -> Result<bool, StorageError> {
    Ok(insert_providers(conn, std::slice::from_ref(profile), recorded_by).await? == 1)
}

/// Records provider profile versions with one statement; versions identical to the one in
/// force for their (`provider_id`, `effective_from`) are skipped. Returns the rows added.
pub async fn insert_providers(
    conn: &mut AsyncPgConnection,
    profiles: &[ProviderProfile],
    recorded_by: &str,
) -> Result<usize, StorageError> {
    let profiles = without_repeats(profiles);
    if profiles.is_empty() {
        return Ok(0);
    }
    let added = diesel::sql_query(
        "INSERT INTO providers (provider_id, name, grade, practicing_since, pan, effective_from, recorded_by)
         SELECT v.provider_id, v.name, v.grade, v.practicing_since, v.pan, v.effective_from, $7
         FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::date[]) WITH ORDINALITY
              AS v(provider_id, name, grade, practicing_since, pan, effective_from, ord)
         WHERE NOT EXISTS (
             SELECT 1 FROM (
                 SELECT p.name, p.grade, p.practicing_since, p.pan FROM providers p
                 WHERE p.provider_id = v.provider_id AND p.effective_from = v.effective_from
                 ORDER BY p.recorded_at DESC, p.id DESC LIMIT 1
             ) latest
             WHERE latest.name = v.name AND latest.grade = v.grade
               AND latest.practicing_since = v.practicing_since AND latest.pan IS NOT DISTINCT FROM v.pan
         )
         ORDER BY v.ord",
    )
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.provider_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.grade.as_str()).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(profiles.iter().map(|p| p.practicing_since).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(profiles.iter().map(|p| p.pan.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(profiles.iter().map(|p| p.effective_from).collect::<Vec<_>>())
    .bind::<Text, _>(recorded_by)
    .execute(conn)
    .await?;
    Ok(added)
}

/// Records a client profile version, unless identical to the one in force for its
/// (`client_id`, `effective_from`); returns whether a row was added.
pub async fn insert_client(
    conn: &mut AsyncPgConnection,
    profile: &ClientProfile,
    recorded_by: &str,
) -> Result<bool, StorageError> {
    Ok(insert_clients(conn, std::slice::from_ref(profile), recorded_by).await? == 1)
}

/// Records client profile versions with one statement, skipping versions identical to the one
/// in force for their (`client_id`, `effective_from`). Returns the rows added.
pub async fn insert_clients(
    conn: &mut AsyncPgConnection,
    profiles: &[ClientProfile],
    recorded_by: &str,
) -> Result<usize, StorageError> {
    let profiles = without_repeats(profiles);
    if profiles.is_empty() {
        return Ok(0);
    }
    let added = diesel::sql_query(
        "INSERT INTO clients (client_id, name, country, state_code, gstin, currency, effective_from, recorded_by)
         SELECT v.client_id, v.name, v.country, v.state_code, v.gstin, v.currency, v.effective_from, $8
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[]) WITH ORDINALITY
              AS v(client_id, name, country, state_code, gstin, currency, effective_from, ord)
         WHERE NOT EXISTS (
             SELECT 1 FROM (
                 SELECT c.name, c.country, c.state_code, c.gstin, c.currency FROM clients c
                 WHERE c.client_id = v.client_id AND c.effective_from = v.effective_from
                 ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1
             ) latest
             WHERE latest.name = v.name AND latest.country = v.country
               AND latest.state_code IS NOT DISTINCT FROM v.state_code
               AND latest.gstin IS NOT DISTINCT FROM v.gstin AND latest.currency = v.currency
         )
         ORDER BY v.ord",
    )
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.client_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.country.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(profiles.iter().map(|p| p.state_code.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(profiles.iter().map(|p| p.gstin.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(profiles.iter().map(|p| p.currency.code()).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(profiles.iter().map(|p| p.effective_from).collect::<Vec<_>>())
    .bind::<Text, _>(recorded_by)
    .execute(conn)
    .await?;
    Ok(added)
}

/// The profiles without exact repeats (the statement does not see its own rows, so a repeat
/// within one batch would be recorded twice).
fn without_repeats<T: PartialEq>(profiles: &[T]) -> Vec<&T> {
    let mut unique: Vec<&T> = Vec::with_capacity(profiles.len());
    for p in profiles {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    unique
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = providers, check_for_backend(diesel::pg::Pg))]
struct ProviderRow {
    provider_id: String,
    name: String,
    grade: String,
    practicing_since: NaiveDate,
    pan: Option<String>,
    effective_from: NaiveDate,
}

impl TryFrom<ProviderRow> for ProviderProfile {
    type Error = StorageError;

    fn try_from(row: ProviderRow) -> Result<Self, StorageError> {
        Ok(ProviderProfile {
            provider_id: decode("providers.provider_id", &row.provider_id, ProviderId::parse)?,
            name: row.name,
            grade: decode("providers.grade", &row.grade, str::parse)?,
            practicing_since: row.practicing_since,
            pan: row.pan,
            effective_from: row.effective_from,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = clients, check_for_backend(diesel::pg::Pg))]
struct ClientRow {
    client_id: String,
    name: String,
    country: String,
    state_code: Option<String>,
    gstin: Option<String>,
    currency: String,
    effective_from: NaiveDate,
}

impl TryFrom<ClientRow> for ClientProfile {
    type Error = StorageError;

    fn try_from(row: ClientRow) -> Result<Self, StorageError> {
        Ok(ClientProfile {
            client_id: decode("clients.client_id", &row.client_id, ClientId::parse)?,
            name: row.name,
            country: row.country,
            state_code: row.state_code,
            gstin: row.gstin,
            currency: decode("clients.currency", &row.currency, Currency::parse)?,
            effective_from: row.effective_from,
        })
    }
}

/// The provider versions in force per (`provider_id`, `effective_from`), by id and date.
pub async fn providers(conn: &mut AsyncPgConnection) -> Result<Vec<ProviderProfile>, StorageError> {
    let rows: Vec<ProviderRow> = providers::table
        .distinct_on((providers::provider_id, providers::effective_from))
        .order((
            providers::provider_id.asc(),
            providers::effective_from.asc(),
            providers::recorded_at.desc(),
            providers::id.desc(),
        ))
        .select(ProviderRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter().map(ProviderProfile::try_from).collect()
}

/// The client versions in force per (`client_id`, `effective_from`), by id and date.
pub async fn clients(conn: &mut AsyncPgConnection) -> Result<Vec<ClientProfile>, StorageError> {
    let rows: Vec<ClientRow> = clients::table
        .distinct_on((clients::client_id, clients::effective_from))
        .order((
            clients::client_id.asc(),
            clients::effective_from.asc(),
            clients::recorded_at.desc(),
            clients::id.desc(),
        ))
        .select(ClientRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter().map(ClientProfile::try_from).collect()
}

/// Adds every party version in force to `catalog`.
pub async fn load_into(conn: &mut AsyncPgConnection, catalog: &mut Catalog) -> Result<(), StorageError> {
    providers(conn).await?.into_iter().for_each(|p| catalog.add_provider(p));
    clients(conn).await?.into_iter().for_each(|c| catalog.add_client(c));
    Ok(())
}
