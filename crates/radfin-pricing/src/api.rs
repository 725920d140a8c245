//! The pricing service's gRPC API: parties, rule versions and FX rates (validated, audited,
//! immutable once accepted), and the reports pricing holds back.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{NaiveDate, SecondsFormat};
use radfin_db::audit::{AuditOutcome, AuditRecord};
use radfin_db::fx::ManualPut;
use radfin_db::held::{HeldFilter, HeldStatus};
use radfin_db::{Pool, StorageError};
use radfin_domain::limits;
use radfin_domain::party::{ClientProfile, Grade, ProviderProfile};
use radfin_domain::rules::{ClientRules, ProviderRules};
use radfin_domain::{ClientId, Currency, Period, ProviderId};
use radfin_proto::common::v1 as common;
use radfin_proto::pricing::v1 as pb;
use radfin_proto::pricing::v1::pricing_service_server::PricingService;
use radfin_service::auth::Principal;
use radfin_service::error::to_status;
use rust_decimal::Decimal;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::fx_feed::{ErrorChain, FeedClient};
use crate::reference::{EARLIEST_RATE, LATEST_RATE, ReferenceCache};

pub struct PricingApi {
    pub pool: Pool,
    pub reference: Arc<ReferenceCache>,
    /// Wakes the retry of held reports after a change that may release some.
    pub changed: Arc<Notify>,
    /// The FX feed, when one is configured (`RADFIN_FX_URL`).
    pub feed: Option<Arc<FeedClient>>,
}

/// Who made the call, as the auth layer established it (`anonymous` without authentication).
fn actor<T>(request: &Request<T>) -> Principal {
    radfin_service::auth::principal(request)
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

fn date(field: &str, s: &str) -> Result<NaiveDate, Status> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| invalid(field, format!("must be a date YYYY-MM-DD, got {s:?}")))
}

fn optional(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl PricingApi {
    /// Records an accepted change in the audit log and wakes the retry of held reports.
    async fn changed(&self, conn: &mut radfin_db::AsyncPgConnection, record: AuditRecord) -> Result<(), Status> {
        radfin_db::audit::record(conn, &record).await.map_err(|e| to_status(&e))?;
        self.reference.invalidate().await;
        self.changed.notify_one();
        Ok(())
    }

    /// The reference data as stored right now.
    async fn fresh(&self) -> Result<std::sync::Arc<crate::reference::Reference>, Status> {
        self.reference.invalidate().await;
        self.reference.get().await.map_err(|e| to_status(&e))
    }

    /// The version already recorded with this effective date and document, if any: putting
    /// the same version again is a no-op.
    fn same_version(
        rows: &[radfin_db::rules::StoredRule],
        effective_from: NaiveDate,
        document: &str,
    ) -> Option<RecordedVersion> {
        rows.iter()
            .rev()
            .find(|r| r.effective_from == effective_from)
            .filter(|r| r.document == document)
            .map(RecordedVersion::of)
    }

    /// Every version of the provider rules (`client_id` empty) or of one client's rules.
    async fn rule_versions(&self, client_id: &str) -> Result<Vec<radfin_db::rules::StoredRule>, Status> {
        let mut conn = self.conn().await?;
        if client_id.is_empty() {
            radfin_db::rules::list_provider_rules(&mut conn).await
        } else {
            let client_id = ClientId::parse(client_id).map_err(|e| invalid("client_id", e))?;
            radfin_db::rules::list_client_rules(&mut conn, Some(&client_id)).await
        }
        .map_err(|e| to_status(&e))
    }

    fn recorded(rows: &[radfin_db::rules::StoredRule], version: u32) -> Result<RecordedVersion, Status> {
        rows.iter()
            .find(|r| r.version == version)
            .map(RecordedVersion::of)
            .ok_or_else(|| Status::internal(format!("rule version {version} was recorded but cannot be read back")))
    }

    async fn conn(&self) -> Result<radfin_db::PooledConnection, Status> {
        self.pool.get().await.map_err(|e| to_status(&StorageError::from(e)))
    }
}

/// A rule version as `PutProviderRules` and `PutClientRules` answer it: its number and when it
/// was recorded.
struct RecordedVersion {
    version: u32,
    recorded_at: String,
}

impl RecordedVersion {
    fn of(row: &radfin_db::rules::StoredRule) -> Self {
        Self { version: row.version, recorded_at: row.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true) }
    }
}

impl From<RecordedVersion> for pb::PutProviderRulesResponse {
    fn from(r: RecordedVersion) -> Self {
        Self { version: r.version, recorded_at: r.recorded_at }
    }
}

impl From<RecordedVersion> for pb::PutClientRulesResponse {
    fn from(r: RecordedVersion) -> Self {
        Self { version: r.version, recorded_at: r.recorded_at }
    }
}

fn audit(
    actor: &Principal,
    action: &str,
    target: String,
    reason: Option<String>,
    details: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        actor: actor.name.clone(),
        role: actor.role.as_str().to_owned(),
        action: action.to_owned(),
        target,
        reason,
        outcome: AuditOutcome::Allowed,
        details,
    }
}

fn rule_version(r: &radfin_db::rules::StoredRule) -> pb::RuleVersion {
    pb::RuleVersion {
        version: r.version,
        effective_from: date_text(r.effective_from),
        recorded_at: r.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        recorded_by: r.recorded_by.clone(),
        document: r.document.clone(),
    }
}

fn provider_from(p: &pb::Provider) -> Result<ProviderProfile, Status> {
    let provider_id = ProviderId::parse(&p.provider_id).map_err(|e| invalid("provider.provider_id", e))?;
    if p.name.trim().is_empty() {
        return Err(invalid("provider.name", "must not be empty"));
    }
    let grade = common::Grade::try_from(p.grade)
        .ok()
        .and_then(|g| Grade::from_str(g.as_str_name().trim_start_matches("GRADE_")).ok())
        .ok_or_else(|| invalid("provider.grade", format!("must be one of {}", Grade::expected())))?;
    let pan = optional(&p.pan);
    if let Some(pan) = &pan
        && !is_pan(pan)
    {
        return Err(invalid("provider.pan", "must be a PAN like ABCDE1234F"));
    }
    Ok(ProviderProfile {
        provider_id,
        name: p.name.trim().to_owned(),
        grade,
        practicing_since: date("provider.practicing_since", &p.practicing_since)?,
        pan,
        effective_from: date("provider.effective_from", &p.effective_from)?,
    })
}

/// Five letters, four digits, one letter.
fn is_pan(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[..5].iter().all(u8::is_ascii_uppercase)
        && b[5..9].iter().all(u8::is_ascii_digit)
        && b[9].is_ascii_uppercase()
}

/// A rate put by hand, validated: its date, currency (not INR) and INR per unit (positive, within
/// [`limits::FX_RATE`]), and the reason, which is required.
#[derive(Debug, PartialEq, Eq)]
struct ManualRate {
    rate_date: NaiveDate,
    currency: Currency,
    inr_per_unit: Decimal,
    reason: String,
}

fn manual_rate_from(msg: &pb::PutFxRateRequest) -> Result<ManualRate, Status> {
    let rate_date = date("rate_date", &msg.rate_date)?;
    let currency = Currency::parse(&msg.currency).map_err(|e| invalid("currency", e))?;
    if currency == Currency::INR {
        return Err(invalid("currency", "INR is the base currency and has no rate"));
    }
    let inr_per_unit = limits::FX_RATE.parse(&msg.inr_per_unit).map_err(|e| invalid("inr_per_unit", e))?;
    if inr_per_unit <= Decimal::ZERO {
        return Err(invalid("inr_per_unit", format!("must be positive, got {}", msg.inr_per_unit)));
    }
    let reason = msg.reason.trim();
    if reason.is_empty() {
        return Err(invalid("reason", "is required for a rate put by hand"));
    }
    Ok(ManualRate { rate_date, currency, inr_per_unit, reason: reason.to_owned() })
}

/// The audit row of a manual put: who, what (`PutFxRate` on `USD 2026-01-05`), why, how it ended,
/// and the rate it superseded.
fn manual_put_audit(actor: &Principal, rate: &ManualRate, put: &ManualPut) -> AuditRecord {
    let (outcome, result, other) = match put {
        ManualPut::Recorded { superseded } => (AuditOutcome::Allowed, "recorded", superseded.as_ref()),
        ManualPut::AlreadyInEffect => (AuditOutcome::Allowed, "already in effect", None),
        ManualPut::Superseded { by } => (AuditOutcome::Failed, "superseded by a later manual rate", Some(by)),
    };
    let other = other.map(|r| {
        serde_json::json!({
            "inr_per_unit": r.rate.inr_per_unit.to_string(),
            "source": r.rate.source,
            "fetched_at": r.fetched_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        })
    });
    let key = if matches!(put, ManualPut::Superseded { .. }) { "in_effect" } else { "supersedes" };
    let mut details = serde_json::json!({
        "rate_date": date_text(rate.rate_date),
        "currency": rate.currency.code(),
        "inr_per_unit": rate.inr_per_unit.to_string(),
        "result": result,
        "inserted": matches!(put, ManualPut::Recorded { .. }),
    });
    if let (Some(other), Some(map)) = (other, details.as_object_mut()) {
        map.insert(key.to_owned(), other);
    }
    AuditRecord {
        actor: actor.name.clone(),
        role: actor.role.as_str().to_owned(),
        action: "PutFxRate".to_owned(),
        target: format!("{} {}", rate.currency, date_text(rate.rate_date)),
        reason: Some(rate.reason.clone()),
        outcome,
        details,
    }
}

/// The audit row of an on-demand fetch of the FX feed.
fn fetch_audit(
    actor: &Principal,
    feed: &FeedClient,
    reason: Option<&str>,
    outcome: AuditOutcome,
    details: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        actor: actor.name.clone(),
        role: actor.role.as_str().to_owned(),
        action: "FetchFxRates".to_owned(),
        target: format!("{} feed {}", feed.feed.source, feed.feed.url),
        reason: reason.map(str::to_owned),
        outcome,
        details,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn client_from(c: &pb::Client) -> Result<ClientProfile, Status> {
    let client_id = ClientId::parse(&c.client_id).map_err(|e| invalid("client.client_id", e))?;
    if c.name.trim().is_empty() {
        return Err(invalid("client.name", "must not be empty"));
    }
    if c.country.len() != 2 || !c.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("client.country", "must be an ISO 3166-1 alpha-2 code such as IN"));
    }
    let state_code = optional(&c.state_code);
    if let Some(s) = &state_code
        && (s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid("client.state_code", "must be a two-digit GST state code such as 29"));
    }
    let currency = Currency::parse(&c.currency).map_err(|e| invalid("client.currency", e))?;
    Ok(ClientProfile {
        client_id,
        name: c.name.trim().to_owned(),
        country: c.country.clone(),
        state_code,
        gstin: optional(&c.gstin),
        currency,
        effective_from: date("client.effective_from", &c.effective_from)?,
    })
}

#[tonic::async_trait]
impl PricingService for PricingApi {
    async fn put_provider(
        &self,
        request: Request<pb::PutProviderRequest>,
    ) -> Result<Response<pb::PutProviderResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner().provider.ok_or_else(|| invalid("provider", "is required"))?;
        let profile = provider_from(&msg)?;
        let known = self.fresh().await?;
        let unchanged = known
            .catalog
            .provider(&profile.provider_id)
            .and_then(|v| v.iter().filter(|p| p.effective_from == profile.effective_from).last())
            .is_some_and(|p| *p == profile);
        let mut conn = self.conn().await?;
        if !unchanged {
            radfin_db::parties::insert_provider(&mut conn, &profile, &actor.name).await.map_err(|e| to_status(&e))?;
        }
        let details = serde_json::json!({"effective_from": date_text(profile.effective_from), "grade": profile.grade.as_str(), "unchanged": unchanged});
        self.changed(&mut conn, audit(&actor, "PutProvider", profile.provider_id.to_string(), None, details)).await?;
        Ok(Response::new(pb::PutProviderResponse {}))
    }

    async fn list_providers(
        &self,
        _: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let reference = self.reference.get().await.map_err(|e| to_status(&e))?;
        let providers = reference.catalog.providers().flat_map(|v| v.iter().map(pb::Provider::from)).collect();
        Ok(Response::new(pb::ListProvidersResponse { providers }))
    }

    async fn get_provider(
        &self,
        request: Request<pb::GetProviderRequest>,
    ) -> Result<Response<pb::GetProviderResponse>, Status> {
        let id = ProviderId::parse(&request.into_inner().provider_id).map_err(|e| invalid("provider_id", e))?;
        let reference = self.fresh().await?;
        let versions = reference.catalog.provider(&id).ok_or_else(|| Status::not_found(format!("no provider {id}")))?;
        Ok(Response::new(pb::GetProviderResponse { providers: versions.iter().map(pb::Provider::from).collect() }))
    }

    async fn put_client(
        &self,
        request: Request<pb::PutClientRequest>,
    ) -> Result<Response<pb::PutClientResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner().client.ok_or_else(|| invalid("client", "is required"))?;
        let profile = client_from(&msg)?;
        let known = self.fresh().await?;
        let unchanged = known
            .catalog
            .client(&profile.client_id)
            .and_then(|v| v.iter().filter(|c| c.effective_from == profile.effective_from).last())
            .is_some_and(|c| *c == profile);
        let mut conn = self.conn().await?;
        if !unchanged {
            radfin_db::parties::insert_client(&mut conn, &profile, &actor.name).await.map_err(|e| to_status(&e))?;
        }
        let details = serde_json::json!({"effective_from": date_text(profile.effective_from), "currency": profile.currency.code(), "unchanged": unchanged});
        self.changed(&mut conn, audit(&actor, "PutClient", profile.client_id.to_string(), None, details)).await?;
        Ok(Response::new(pb::PutClientResponse {}))
    }

    async fn list_clients(
        &self,
        _: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        let reference = self.reference.get().await.map_err(|e| to_status(&e))?;
        let clients = reference.catalog.clients().flat_map(|v| v.iter().map(pb::Client::from)).collect();
        Ok(Response::new(pb::ListClientsResponse { clients }))
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::GetClientResponse>, Status> {
        let id = ClientId::parse(&request.into_inner().client_id).map_err(|e| invalid("client_id", e))?;
        let reference = self.fresh().await?;
        let versions = reference.catalog.client(&id).ok_or_else(|| Status::not_found(format!("no client {id}")))?;
        Ok(Response::new(pb::GetClientResponse { clients: versions.iter().map(pb::Client::from).collect() }))
    }

    async fn put_provider_rules(
        &self,
        request: Request<pb::PutProviderRulesRequest>,
    ) -> Result<Response<pb::PutProviderRulesResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner();
        let effective_from = date("effective_from", &msg.effective_from)?;
        ProviderRules::parse(&msg.document).map_err(|e| invalid("document", e))?;
        let mut conn = self.conn().await?;
        let existing = radfin_db::rules::list_provider_rules(&mut conn).await.map_err(|e| to_status(&e))?;
        if let Some(same) = Self::same_version(&existing, effective_from, &msg.document) {
            return Ok(Response::new(same.into()));
        }
        let version = radfin_db::rules::insert_provider_rules(&mut conn, effective_from, &msg.document, &actor.name)
            .await
            .map_err(|e| to_status(&e))?;
        let recorded = radfin_db::rules::list_provider_rules(&mut conn).await.map_err(|e| to_status(&e))?;
        let response = Self::recorded(&recorded, version)?;
        let details = serde_json::json!({"version": version, "effective_from": date_text(effective_from)});
        self.changed(&mut conn, audit(&actor, "PutProviderRules", "provider_pricing_rules".into(), None, details))
            .await?;
        Ok(Response::new(response.into()))
    }

    async fn put_client_rules(
        &self,
        request: Request<pb::PutClientRulesRequest>,
    ) -> Result<Response<pb::PutClientRulesResponse>, Status> {
        let actor = actor(&request);
        let msg = request.into_inner();
        let client_id = ClientId::parse(&msg.client_id).map_err(|e| invalid("client_id", e))?;
        let effective_from = date("effective_from", &msg.effective_from)?;
        let rules = ClientRules::parse(&msg.document).map_err(|e| invalid("document", e))?;
        if rules.client_id != client_id {
            return Err(invalid(
                "document",
                format!("$.client_id is {}, the request is for {client_id}", rules.client_id),
            ));
        }
        let mut conn = self.conn().await?;
        let existing =
            radfin_db::rules::list_client_rules(&mut conn, Some(&client_id)).await.map_err(|e| to_status(&e))?;
        if let Some(same) = Self::same_version(&existing, effective_from, &msg.document) {
            return Ok(Response::new(same.into()));
        }
        let version =
            radfin_db::rules::insert_client_rules(&mut conn, &client_id, effective_from, &msg.document, &actor.name)
                .await
                .map_err(|e| to_status(&e))?;
        let recorded =
            radfin_db::rules::list_client_rules(&mut conn, Some(&client_id)).await.map_err(|e| to_status(&e))?;
        let response = Self::recorded(&recorded, version)?;
        let details = serde_json::json!({"version": version, "effective_from": date_text(effective_from)});
        self.changed(&mut conn, audit(&actor, "PutClientRules", client_id.to_string(), None, details)).await?;
        Ok(Response::new(response.into()))
    }

    async fn list_rule_versions(
        &self,
        request: Request<pb::ListRuleVersionsRequest>,
    ) -> Result<Response<pb::ListRuleVersionsResponse>, Status> {
        let versions = self.rule_versions(&request.into_inner().client_id).await?.iter().map(rule_version).collect();
        Ok(Response::new(pb::ListRuleVersionsResponse { versions }))
    }

    async fn get_rule_version(
        &self,
        request: Request<pb::GetRuleVersionRequest>,
    ) -> Result<Response<pb::GetRuleVersionResponse>, Status> {
        let msg = request.into_inner();
        let rows = self.rule_versions(&msg.client_id).await?;
        let row = rows.iter().find(|r| r.version == msg.version).ok_or_else(|| {
            let of = if msg.client_id.is_empty() {
                "the provider rules".to_owned()
            } else {
                format!("{}'s rules", msg.client_id)
            };
            Status::not_found(format!("no version {} of {of}", msg.version))
        })?;
        Ok(Response::new(pb::GetRuleVersionResponse { rule_version: Some(rule_version(row)) }))
    }

    async fn put_fx_rate(
        &self,
        request: Request<pb::PutFxRateRequest>,
    ) -> Result<Response<pb::PutFxRateResponse>, Status> {
        let actor = actor(&request);
        let rate = manual_rate_from(request.get_ref())?;
        // The rate and its audit row are recorded together, or neither is; concurrent puts for
        // one date and currency are decided one after the other.
        let put = radfin_db::named_transaction_with_retry(
            &self.pool,
            "put_fx_rate",
            radfin_db::DEFAULT_TRANSACTION_ATTEMPTS,
            async |conn| {
                let put = radfin_db::fx::put_manual(conn, rate.rate_date, rate.currency, rate.inr_per_unit).await?;
                radfin_db::audit::record(conn, &manual_put_audit(&actor, &rate, &put)).await?;
                Ok(put)
            },
        )
        .await
        .map_err(|e| to_status(&e))?;
        match put {
            ManualPut::Recorded { .. } => {
                self.reference.invalidate().await;
                self.changed.notify_one();
                Ok(Response::new(pb::PutFxRateResponse { inserted: true }))
            }
            ManualPut::AlreadyInEffect => Ok(Response::new(pb::PutFxRateResponse { inserted: false })),
            ManualPut::Superseded { by } => Err(Status::failed_precondition(format!(
                "inr_per_unit: {} {} was put by hand as {} before and superseded by {} put at {}; a value is \
                 recorded once per date and currency, so put another",
                rate.currency,
                date_text(rate.rate_date),
                rate.inr_per_unit,
                by.rate.inr_per_unit,
                by.fetched_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            ))),
        }
    }

    async fn fetch_fx_rates(
        &self,
        request: Request<pb::FetchFxRatesRequest>,
    ) -> Result<Response<pb::FetchFxRatesResponse>, Status> {
        let actor = actor(&request);
        let reason = optional(request.get_ref().reason.trim());
        let Some(feed) = &self.feed else {
            return Err(Status::failed_precondition(
                "pricing has no FX feed configured (set RADFIN_FX_URL on the pricing service); put rates by hand \
                 with PutFxRate (`radfin fx put`)",
            ));
        };
        let rates = match feed.fetch().await {
            Ok(rates) => rates,
            Err(e) => {
                let message = format!("fetching the {} FX feed: {}", feed.feed.source, ErrorChain(&e));
                let details = serde_json::json!({ "error": message, "retryable": e.is_retryable() });
                let mut conn = self.conn().await?;
                radfin_db::audit::record(
                    &mut conn,
                    &fetch_audit(&actor, feed, reason.as_deref(), AuditOutcome::Failed, details),
                )
                .await
                .map_err(|e| to_status(&e))?;
                return Err(if e.is_retryable() {
                    Status::unavailable(format!("{message}; try again later"))
                } else {
                    Status::failed_precondition(message)
                });
            }
        };
        let (earliest, latest) = (rates.iter().map(|r| r.rate_date).min(), rates.iter().map(|r| r.rate_date).max());
        // The new rates and the audit row are recorded together, or neither is.
        let stored = radfin_db::named_transaction_with_retry(
            &self.pool,
            "fetch_fx_rates",
            radfin_db::DEFAULT_TRANSACTION_ATTEMPTS,
            async |conn| {
                let stored = radfin_db::fx::insert_rates(conn, &rates).await?;
                let details = serde_json::json!({
                    "fetched": rates.len(),
                    "stored": stored,
                    "earliest_rate_date": earliest.map(date_text),
                    "latest_rate_date": latest.map(date_text),
                });
                radfin_db::audit::record(
                    conn,
                    &fetch_audit(&actor, feed, reason.as_deref(), AuditOutcome::Allowed, details),
                )
                .await?;
                Ok(stored)
            },
        )
        .await
        .map_err(|e| to_status(&e))?;
        if stored > 0 {
            self.reference.invalidate().await;
            self.changed.notify_one();
        }
        tracing::info!(source = %feed.feed.source, fetched = rates.len(), stored, "fx feed fetched on demand");
        Ok(Response::new(pb::FetchFxRatesResponse {
            source: feed.feed.source.clone(),
            url: feed.feed.url.to_string(),
            fetched: count(rates.len()),
            stored: count(stored),
            earliest_rate_date: earliest.map(date_text).unwrap_or_default(),
            latest_rate_date: latest.map(date_text).unwrap_or_default(),
        }))
    }

    async fn list_fx_rates(
        &self,
        request: Request<pb::ListFxRatesRequest>,
    ) -> Result<Response<pb::ListFxRatesResponse>, Status> {
        let msg = request.into_inner();
        let currency =
            optional(&msg.currency).map(|c| Currency::parse(&c).map_err(|e| invalid("currency", e))).transpose()?;
        let from = optional(&msg.from).map(|d| date("from", &d)).transpose()?;
        let to = optional(&msg.to).map(|d| date("to", &d)).transpose()?;
        let mut conn = self.conn().await?;
        let rows = radfin_db::fx::list(&mut conn, currency, from.unwrap_or(EARLIEST_RATE), to.unwrap_or(LATEST_RATE))
            .await
            .map_err(|e| to_status(&e))?;
        let rates = rows
            .into_iter()
            .map(|r| pb::FxRate {
                rate_date: date_text(r.rate.rate_date),
                currency: r.rate.currency.to_string(),
                inr_per_unit: r.rate.inr_per_unit.to_string(),
                source: r.rate.source,
                fetched_at: r.fetched_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                in_effect: r.in_effect,
            })
            .collect();
        Ok(Response::new(pb::ListFxRatesResponse { rates }))
    }

    async fn list_held_reports(
        &self,
        request: Request<pb::ListHeldReportsRequest>,
    ) -> Result<Response<pb::ListHeldReportsResponse>, Status> {
        let msg = request.into_inner();
        let period =
            optional(&msg.period).map(|p| p.parse::<Period>().map_err(|e| invalid("period", e))).transpose()?;
        let status =
            optional(&msg.status).map(|s| s.parse::<HeldStatus>().map_err(|e| invalid("status", e))).transpose()?;
        let filter = HeldFilter { status, period, ..HeldFilter::default() };
        let mut conn = self.conn().await?;
        let rows = radfin_db::held::current(&mut conn, &filter).await.map_err(|e| to_status(&e))?;
        let reports = rows
            .into_iter()
            .map(|h| pb::HeldReport {
                report_id: h.report_id.to_string(),
                revision: h.revision,
                client_id: h.client_id.to_string(),
                provider_id: h.provider_id.to_string(),
                period: h.period.to_string(),
                status: h.status.to_string(),
                reason: h.reason,
                held_at: h.held_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            })
            .collect();
        Ok(Response::new(pb::ListHeldReportsResponse { reports }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Principal {
        Principal { name: "ops".to_owned(), role: radfin_service::auth::Role::Finance }
    }
    use rust_decimal_macros::dec;

    fn request(inr_per_unit: &str) -> pb::PutFxRateRequest {
        pb::PutFxRateRequest {
            rate_date: "2026-01-05".into(),
            currency: "USD".into(),
            inr_per_unit: inr_per_unit.into(),
            reason: " ECB feed down; rate from the bank's advice ".into(),
        }
    }

    fn refusal(msg: &pb::PutFxRateRequest) -> String {
        let status = manual_rate_from(msg).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        status.message().to_owned()
    }

    #[test]
    fn a_manual_rate_is_validated() {
        let rate = manual_rate_from(&request("83.123456")).unwrap();
        assert_eq!(
            rate,
            ManualRate {
                rate_date: "2026-01-05".parse().unwrap(),
                currency: Currency::USD,
                inr_per_unit: dec!(83.123456),
                reason: "ECB feed down; rate from the bank's advice".into(),
            }
        );
        assert_eq!(manual_rate_from(&request("9999.999999")).unwrap().inr_per_unit, dec!(9999.999999));
        assert_eq!(
            refusal(&pb::PutFxRateRequest { reason: "  ".into(), ..request("83.1") }),
            "reason: is required for a rate put by hand"
        );
        assert!(refusal(&pb::PutFxRateRequest { currency: "INR".into(), ..request("1") }).starts_with("currency: INR"));
        assert!(
            refusal(&pb::PutFxRateRequest { rate_date: "05/01/2026".into(), ..request("1") }).starts_with("rate_date:")
        );
        assert_eq!(refusal(&request("0")), "inr_per_unit: must be positive, got 0");
        assert_eq!(refusal(&request("-83.1")), "inr_per_unit: must be positive, got -83.1");
        assert_eq!(refusal(&request("abc")), r#"inr_per_unit: "abc" is not a decimal number"#);
    }

    #[test]
    fn a_manual_rate_is_bounded() {
        assert_eq!(
            refusal(&request("79228162514264337593543950335")),
            r#"inr_per_unit: "79228162514264337593543950335" has 29 integer digits; at most 4 are allowed"#
        );
        assert_eq!(
            refusal(&request("1234567890.1234567890123456789")),
            r#"inr_per_unit: "1234567890.1234567890123456789" has 10 integer digits; at most 4 are allowed"#
        );
        assert_eq!(
            refusal(&request("0.00000000000000000000000000001")),
            r#"inr_per_unit: "0.00000000000000000000000000001" has 29 decimal places; at most 6 are allowed"#
        );
        assert_eq!(
            refusal(&request("83.1234567")),
            r#"inr_per_unit: "83.1234567" has 7 decimal places; at most 6 are allowed"#
        );
        assert_eq!(refusal(&request("10000")), r#"inr_per_unit: "10000" has 5 integer digits; at most 4 are allowed"#);
    }

    #[test]
    fn a_manual_put_is_audited_with_what_it_superseded() {
        let rate = manual_rate_from(&request("83.30")).unwrap();
        let feed = radfin_db::fx::StoredFxRate {
            id: 7,
            rate: radfin_domain::fx::FxRate {
                rate_date: rate.rate_date,
                currency: Currency::USD,
                inr_per_unit: dec!(83.20),
                source: "ECB".into(),
            },
            fetched_at: "2026-01-05T16:00:00Z".parse().unwrap(),
            in_effect: true,
        };
        let a = manual_put_audit(&ops(), &rate, &ManualPut::Recorded { superseded: Some(feed.clone()) });
        assert_eq!(
            (a.actor.as_str(), a.action.as_str(), a.target.as_str(), a.reason.as_deref(), a.outcome),
            (
                "ops",
                "PutFxRate",
                "USD 2026-01-05",
                Some("ECB feed down; rate from the bank's advice"),
                AuditOutcome::Allowed
            )
        );
        assert_eq!(a.details["supersedes"]["source"], "ECB");
        assert_eq!(a.details["supersedes"]["inr_per_unit"], "83.20");
        assert_eq!(a.details["inserted"], true);
        let a = manual_put_audit(&ops(), &rate, &ManualPut::AlreadyInEffect);
        assert_eq!((a.outcome, &a.details["inserted"]), (AuditOutcome::Allowed, &serde_json::json!(false)));
        let a = manual_put_audit(&ops(), &rate, &ManualPut::Superseded { by: feed });
        assert_eq!(
            (a.outcome, &a.details["in_effect"]["inr_per_unit"]),
            (AuditOutcome::Failed, &serde_json::json!("83.20"))
        );
    }
}
