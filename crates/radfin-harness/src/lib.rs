//! The whole pipeline in one process: ingest, pricing, ledger and reporting (gRPC, and its
//! dashboard over HTTP), each served on its own ephemeral port, against a private database
//! (`radfin_db::testing::TestDb`) and a private bus prefix, so end-to-end tests run in parallel
//! and leave nothing behind. [`faults`] holds the fault suite's checker and cases; [`fixtures`] the
//! small hand-written reference data and reports the tests and the fault suite share.

pub mod faults;
pub mod fixtures;
pub mod procs;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use radfin_bus::{Bus, BusConfig};
use radfin_db::testing::TestDb;
use radfin_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use radfin_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use radfin_proto::pricing::v1::pricing_service_client::PricingServiceClient;
use radfin_proto::reporting::v1::reporting_service_client::ReportingServiceClient;
use radfin_service::config::Common;
use radfin_service::shutdown::{Shutdown, Trigger};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// NATS for tests: `RADFIN_TEST_NATS_URL`, else `RADFIN_NATS_URL`, else the local server; checked
/// once ([`radfin_bus::testing::nats_url`]).
pub fn nats_url() -> String {
    radfin_bus::testing::nats_url()
}

/// Polls `f` until it yields `Some`, for at most 30 s (a panic naming `what` after that).
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(30), f).await
}

/// [`eventually`] with a limit of `within`.
pub async fn eventually_within<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// xorshift: deterministic for a seed, no dependency (orders and batch sizes of tests).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A bus prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("t{}x{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos)
}

pub struct Stack {
    pub db: TestDb,
    pub prefix: String,
    pub ingest: SocketAddr,
    pub pricing: SocketAddr,
    pub ledger: SocketAddr,
    /// The reporting service's gRPC address.
    pub reporting: SocketAddr,
    /// The reporting service's dashboard (HTTP): `http://{reporting_http}/`.
    pub reporting_http: SocketAddr,
    /// Each service's Prometheus endpoint: `http://{addr}/metrics`. The services share the
    /// process's one registry, so each renders the same series.
    pub metrics: MetricsAddrs,
    stop: Trigger,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Where each service of a [`Stack`] serves `/metrics`.
#[derive(Clone, Copy, Debug)]
pub struct MetricsAddrs {
    pub ingest: SocketAddr,
    pub pricing: SocketAddr,
    pub ledger: SocketAddr,
    pub reporting: SocketAddr,
}

/// A metrics listener on an ephemeral port, and its address.
fn metrics_listener() -> anyhow::Result<(radfin_service::metrics::Listen, SocketAddr)> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    Ok((radfin_service::metrics::Listen::bound(l), addr))
}

async fn listener() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    Ok((l, addr))
}

/// `url` with its host and port replaced by `addr`.
fn with_host(url: &str, addr: SocketAddr) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_start = rest[..authority_end].rfind('@').map_or(0, |at| at + 1);
    format!("{}{addr}{}", &url[..authority_start + host_start], &rest[authority_end..])
}

async fn until(mut stop: Shutdown) {
    stop.requested().await;
}

impl Stack {
    /// Starts the four services, each connecting to the database as its own role.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Like [`Stack::start`], letting the caller adjust the pricing service's configuration.
    pub async fn start_with(adjust_pricing: impl FnOnce(&mut radfin_pricing::Config)) -> anyhow::Result<Self> {
        Self::launch(None, None, adjust_pricing).await
    }

    /// Like [`Stack::start`], with authentication: the services read bearer tokens from
    /// `tokens_file` (see `radfin_service::auth`).
    pub async fn start_with_tokens(tokens_file: std::path::PathBuf) -> anyhow::Result<Self> {
        Self::launch(None, Some(tokens_file), |_| {}).await
    }

    /// Like [`Stack::start`], but the services reach PostgreSQL at `database` (a proxy a test
    /// can cut to simulate an outage) instead of the test database's own server; the test
    /// database is still created on that server, and [`TestDb::pool`] connects to it directly.
    pub async fn start_through(database: SocketAddr) -> anyhow::Result<Self> {
        Self::launch(Some(database), None, |_| {}).await
    }

    async fn launch(
        database: Option<SocketAddr>,
        auth_tokens_file: Option<std::path::PathBuf>,
        adjust_pricing: impl FnOnce(&mut radfin_pricing::Config),
    ) -> anyhow::Result<Self> {
        let db = TestDb::create().await.context("test database")?;
        let prefix = unique_prefix();
        let database_url = |role: &str| match database {
            Some(addr) => with_host(&db.url_as(role), addr),
            None => db.url_as(role),
        };
        let common = |role: &str| Common {
            database_url: database_url(role),
            bus: radfin_bus::BusConfig { url: nats_url(), prefix: prefix.clone(), ..Default::default() },
            business_tz: "Asia/Kolkata".to_owned(),
            // None: authentication disabled, every caller is admin `anonymous`.
            auth_tokens_file: auth_tokens_file.clone(),
            tls: Default::default(),
        };
        let (stop, stopped) = radfin_service::shutdown::channel();
        let (ingest_l, ingest) = listener().await?;
        let (pricing_l, pricing) = listener().await?;
        let (ledger_l, ledger) = listener().await?;
        let (reporting_l, reporting) = listener().await?;
        let (reporting_http_l, reporting_http) = listener().await?;

        let (ingest_m, ingest_ma) = metrics_listener()?;
        let (pricing_m, pricing_ma) = metrics_listener()?;
        let (ledger_m, ledger_ma) = metrics_listener()?;
        let (reporting_m, reporting_ma) = metrics_listener()?;
        let metrics =
            MetricsAddrs { ingest: ingest_ma, pricing: pricing_ma, ledger: ledger_ma, reporting: reporting_ma };

        let mut pricing_config = radfin_pricing::Config::with_common(common("radfin_pricing"));
        pricing_config.reference_ttl = Duration::ZERO;
        pricing_config.metrics = pricing_m;
        adjust_pricing(&mut pricing_config);
        let mut ingest_config = radfin_ingest::Config::with_common(common("radfin_ingest"));
        ingest_config.metrics = ingest_m;
        let mut ledger_config = radfin_ledger::Config::with_common(common("radfin_ledger"));
        ledger_config.metrics = ledger_m;
        let mut reporting_config = radfin_reporting::Config::with_common(
            common("radfin_reporting"),
            format!("http://{ledger}"),
            format!("http://{pricing}"),
        );
        reporting_config.metrics = reporting_m;
        let tasks = vec![
            tokio::spawn({
                let s = stopped.clone();
                async move { radfin_ingest::serve_with(&ingest_config, ingest_l, until(s)).await }
            }),
            tokio::spawn({
                let s = stopped.clone();
                async move { radfin_pricing::serve(&pricing_config, pricing_l, until(s)).await }
            }),
            tokio::spawn({
                let s = stopped.clone();
                async move { radfin_ledger::serve(&ledger_config, ledger_l, until(s)).await }
            }),
            tokio::spawn({
                let s = stopped.clone();
                async move { radfin_reporting::serve(&reporting_config, reporting_l, reporting_http_l, until(s)).await }
            }),
        ];
        let stack = Self { db, prefix, ingest, pricing, ledger, reporting, reporting_http, metrics, stop, tasks };
        for addr in [ingest, pricing, ledger, reporting] {
            if let Err(waiting) = stack.wait_serving(addr).await {
                // Report why a service stopped, not just that it did.
                let mut causes = vec![format!("{waiting:#}")];
                stack.stop.fire();
                for task in stack.tasks {
                    match task.await {
                        Ok(Err(e)) => causes.push(format!("{e:#}")),
                        Err(e) => causes.push(format!("{e}")),
                        Ok(Ok(())) => {}
                    }
                }
                anyhow::bail!("the services did not start: {}", causes.join("; "));
            }
        }
        Ok(stack)
    }

    async fn wait_serving(&self, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))?.connect().await {
                let mut health = HealthClient::new(channel);
                let serving = health.check(HealthCheckRequest { service: String::new() }).await;
                if serving.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32) {
                    return Ok(());
                }
            }
            anyhow::ensure!(!self.tasks.iter().any(|t| t.is_finished()), "a service stopped while starting");
            anyhow::ensure!(Instant::now() < deadline, "{addr} did not start serving within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(format!("http://{addr}"))?.connect().await?)
    }

    pub async fn ingest_client(&self) -> anyhow::Result<IngestServiceClient<Channel>> {
        Ok(IngestServiceClient::new(Self::channel(self.ingest).await?).max_decoding_message_size(64 << 20))
    }

    pub async fn pricing_client(&self) -> anyhow::Result<PricingServiceClient<Channel>> {
        Ok(PricingServiceClient::new(Self::channel(self.pricing).await?))
    }

    pub async fn ledger_client(&self) -> anyhow::Result<LedgerServiceClient<Channel>> {
        Ok(LedgerServiceClient::new(Self::channel(self.ledger).await?))
    }

    pub async fn reporting_client(&self) -> anyhow::Result<ReportingServiceClient<Channel>> {
        Ok(ReportingServiceClient::new(Self::channel(self.reporting).await?).max_decoding_message_size(64 << 20))
    }

    /// A bus client on the stack's own streams (its private prefix): to publish by hand what the
    /// services did not, or read the streams.
    pub async fn bus(&self) -> anyhow::Result<Bus> {
        Ok(Bus::connect(&BusConfig { url: nats_url(), prefix: self.prefix.clone(), ..BusConfig::default() }).await?)
    }

    /// Stops every service gracefully, deletes the test's streams, and reports the first failure
    /// of any service. (The database goes when `db` is dropped.)
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.fire();
        let bus = self.bus().await?;
        for task in self.tasks {
            task.await??;
        }
        delete_streams(&bus).await
    }
}

/// Deletes the report, priced and dead-letter streams of `bus`'s prefix (a test's, when it ends).
pub async fn delete_streams(bus: &Bus) -> anyhow::Result<()> {
    let names = bus.names();
    for stream in [names.reports_stream(), names.priced_stream(), names.dlq_stream()] {
        bus.jetstream().delete_stream(stream).await.with_context(|| format!("delete stream {stream}"))?;
    }
    Ok(())
}

/// What the checks below need of a running radfin, in one process ([`Stack`]) or as processes
/// ([`procs::ProcStack`]): its database (as the owner) and where the ledger and pricing answer.
pub trait Deployment {
    fn db(&self) -> &TestDb;
    fn ledger_addr(&self) -> SocketAddr;
    fn pricing_addr(&self) -> SocketAddr;
}

impl Deployment for Stack {
    fn db(&self) -> &TestDb {
        &self.db
    }

    fn ledger_addr(&self) -> SocketAddr {
        self.ledger
    }

    fn pricing_addr(&self) -> SocketAddr {
        self.pricing
    }
}

/// The engine's price of `period` as stored (`PricingRun::price` over the stored current
/// revisions, with the stored parties, rules and rates), and the stored FX table.
pub async fn engine_pricing(
    stack: &impl Deployment,
    period: radfin_domain::Period,
) -> anyhow::Result<(radfin_domain::PeriodPricing, radfin_domain::fx::FxTable)> {
    engine_pricing_of(stack, period, |_| true).await
}

/// Like [`engine_pricing`], over only the stored current revisions `keep` selects (say, those a
/// close booked, leaving out the reports stored after it).
pub async fn engine_pricing_of(
    stack: &impl Deployment,
    period: radfin_domain::Period,
    keep: impl Fn(&radfin_domain::ReportEvent) -> bool,
) -> anyhow::Result<(radfin_domain::PeriodPricing, radfin_domain::fx::FxTable)> {
    let mut conn = stack.db().pool().get().await?;
    let mut catalog = radfin_domain::Catalog::default();
    radfin_db::parties::load_into(&mut conn, &mut catalog).await?;
    radfin_db::rules::load_into(&mut conn, &mut catalog).await?;
    let fx = radfin_db::fx::load(
        &mut conn,
        chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default(),
        radfin_domain::fx::DEFAULT_MAX_RATE_AGE_DAYS,
    )
    .await?;
    let mut reports = radfin_db::reports::current_of_period(&mut conn, period).await?;
    reports.retain(|r| keep(r));
    drop(conn);
    let run = radfin_domain::PricingRun {
        calendar: radfin_domain::BusinessCalendar::default(),
        period,
        rules_as_of: chrono::Utc::now(),
    };
    Ok((run.price(&catalog, &reports)?, fx))
}

/// Every client-month of `pricing`'s period that the engine or the ledger's live view
/// (`SummarizePeriod`) holds, each equal or with its difference: revenue in the contract
/// currency, revenue in INR (valued as spec §6 defines it), COGS and the billable reports.
pub async fn client_months(
    stack: &impl Deployment,
    pricing: &radfin_domain::PeriodPricing,
    fx: &radfin_domain::fx::FxTable,
) -> anyhow::Result<Vec<faults::ClientMonth>> {
    use std::collections::BTreeMap;

    use radfin_proto::ledger::v1::SummarizePeriodRequest;
    use rust_decimal::Decimal;

    let period = pricing.period;
    let engine = radfin_domain::live::engine_view(pricing, fx)?;
    let summary = LedgerServiceClient::new(Stack::channel(stack.ledger_addr()).await?)
        .summarize_period(SummarizePeriodRequest { period: period.to_string() })
        .await?
        .into_inner();
    let mut ledger: BTreeMap<String, (String, Decimal, Decimal, Decimal, u64)> = BTreeMap::new();
    for c in summary.clients {
        ledger.insert(
            c.client_id.clone(),
            (c.currency, c.revenue.parse()?, c.revenue_inr.parse()?, c.cogs_inr.parse()?, c.reports),
        );
    }
    let month = |client_id: &str, difference: Option<String>| faults::ClientMonth {
        period: period.to_string(),
        client_id: client_id.to_owned(),
        difference,
    };
    let mut months = Vec::new();
    for e in &engine {
        let booked = ledger.remove(e.client_id.as_str()).unwrap_or_default();
        let expected = (e.currency.code().to_owned(), e.revenue, e.revenue_inr, e.cogs_inr, e.billable as u64);
        let nothing = e.revenue.is_zero() && e.cogs_inr.is_zero() && e.revenue_inr.is_zero();
        let equal = booked == expected || nothing && booked.1.is_zero() && booked.2.is_zero() && booked.3.is_zero();
        months.push(month(
            e.client_id.as_str(),
            (!equal).then(|| {
                format!("ledger (currency, revenue, revenue INR, COGS INR, reports) {booked:?}, engine {expected:?}")
            }),
        ));
    }
    for (client, booked) in ledger {
        let nothing = booked.1.is_zero() && booked.2.is_zero() && booked.3.is_zero();
        months.push(month(&client, (!nothing).then(|| format!("ledger {booked:?}, but the engine bills nothing"))));
    }
    Ok(months)
}

/// Compares the ledger's live view of `period` (`SummarizePeriod`, per client) with the engine's
/// price of the month as stored ([`engine_pricing`], [`client_months`]). Returns one line per
/// difference, empty when they agree to the paisa: revenue in the contract currency, revenue in
/// INR, COGS and the billable reports.
pub async fn live_view_differences(
    stack: &impl Deployment,
    period: radfin_domain::Period,
) -> anyhow::Result<Vec<String>> {
    let (pricing, fx) = engine_pricing(stack, period).await?;
    Ok(client_months(stack, &pricing, &fx)
        .await?
        .into_iter()
        .filter_map(|m| m.difference.map(|d| format!("{}: {d}", m.client_id)))
        .collect())
}

/// A generated month's parties, rules and FX rates, through the pricing service's gRPC API.
pub async fn put_month_reference_data(
    stack: &impl Deployment,
    month: &radfin_testkit::GeneratedMonth,
) -> anyhow::Result<()> {
    use radfin_proto::pricing::v1 as pricing;

    let mut p = PricingServiceClient::new(Stack::channel(stack.pricing_addr()).await?);
    for v in &month.providers {
        p.put_provider(pricing::PutProviderRequest { provider: Some(v.into()) }).await?;
    }
    p.put_provider_rules(pricing::PutProviderRulesRequest {
        effective_from: "2020-01-01".into(),
        document: radfin_testkit::SPEC_PROVIDER_RULES.into(),
    })
    .await?;
    for (i, c) in month.clients.iter().enumerate() {
        p.put_client(pricing::PutClientRequest { client: Some(c.into()) }).await?;
        p.put_client_rules(pricing::PutClientRulesRequest {
            client_id: c.client_id.to_string(),
            effective_from: "2020-01-01".into(),
            document: radfin_testkit::client_rules_document(i, &c.client_id, c.currency).to_string(),
        })
        .await?;
    }
    for r in month.fx.rates() {
        p.put_fx_rate(pricing::PutFxRateRequest {
            rate_date: r.rate_date.format("%Y-%m-%d").to_string(),
            currency: r.currency.to_string(),
            inr_per_unit: r.inr_per_unit.to_string(),
            reason: "generated test rates".into(),
        })
        .await?;
    }
    Ok(())
}

/// Where `margin_summary` differs from the ledger's current view of `period` (spec §7): each row
/// the summary holds that the entries do not give, and each the other way round.
pub async fn margin_summary_differences(stack: &Stack, period: radfin_domain::Period) -> anyhow::Result<Vec<String>> {
    let mut conn = stack.db.pool().get().await?;
    let stored = radfin_db::margin::rows(&mut conn, Some(period), Some(period), None).await?;
    let expected = radfin_db::margin::ledger_view(&mut conn, period).await?;
    let mut differences: Vec<String> =
        stored.iter().filter(|r| !expected.contains(r)).map(|r| format!("margin_summary holds {r:?}")).collect();
    differences.extend(expected.iter().filter(|r| !stored.contains(r)).map(|r| format!("the ledger gives {r:?}")));
    Ok(differences)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_host_is_replaced() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 6000));
        assert_eq!(
            super::with_host("postgres://radfin_ledger@127.0.0.1:5432/radfin_t_1?sslmode=disable", addr),
            "postgres://radfin_ledger@127.0.0.1:6000/radfin_t_1?sslmode=disable"
        );
        assert_eq!(super::with_host("postgres://localhost/db", addr), "postgres://127.0.0.1:6000/db");
    }
}
