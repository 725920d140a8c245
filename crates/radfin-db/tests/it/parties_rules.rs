//! `parties` and `rules`: versions in, a domain `Catalog` out.

use chrono::NaiveDate;
use radfin_db::{StorageError, parties, rules};
use radfin_domain::party::{ClientProfile, ProviderProfile};
use radfin_domain::{Catalog, ClientId, Currency, Grade, ProviderId};

use crate::support::{count, db};

const PROVIDER_RULES: &str = include_str!("../../../../samples/rules/provider.json");
const HOSP_001_RULES: &str = include_str!("../../../../samples/rules/clients/HOSP-001.json");

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn provider(grade: Grade, effective_from: &str) -> ProviderProfile {
    ProviderProfile {
        provider_id: ProviderId::parse("RAD-007").unwrap(),
        name: "Dr. A. Rao".to_owned(),
        grade,
        practicing_since: d("2014-06-01"),
        pan: Some("ABCDE1234F".to_owned()),
        effective_from: d(effective_from),
    }
}

fn client(gstin: Option<&str>, effective_from: &str) -> ClientProfile {
    ClientProfile {
        client_id: ClientId::parse("HOSP-001").unwrap(),
        name: "City Hospital".to_owned(),
        country: "US".to_owned(),
        state_code: None,
        gstin: gstin.map(str::to_owned),
        currency: Currency::USD,
        effective_from: d(effective_from),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_versions_load_as_in_force() {
    let db = db().await;
    let mut conn = db.connect_as("radfin_pricing").await.unwrap();
    assert!(parties::insert_provider(&mut conn, &provider(Grade::Senior, "2025-04-01"), "alice").await.unwrap());
    assert!(
        !parties::insert_provider(&mut conn, &provider(Grade::Senior, "2025-04-01"), "alice").await.unwrap(),
        "unchanged"
    );
    // A correction of the same version, and a later version, in one batch (with a repeat).
    let batch = [
        provider(Grade::Consultant, "2025-04-01"),
        provider(Grade::Consultant, "2026-02-01"),
        provider(Grade::Consultant, "2026-02-01"),
    ];
    assert_eq!(parties::insert_providers(&mut conn, &batch, "bob").await.unwrap(), 2);
    assert!(parties::insert_client(&mut conn, &client(None, "2025-04-01"), "alice").await.unwrap());
    assert!(parties::insert_client(&mut conn, &client(Some("27ABCDE1234F1Z5"), "2025-04-01"), "alice").await.unwrap());
    assert!(!parties::insert_client(&mut conn, &client(Some("27ABCDE1234F1Z5"), "2025-04-01"), "alice").await.unwrap());

    let mut catalog = Catalog::default();
    parties::load_into(&mut conn, &mut catalog).await.unwrap();
    let versions = catalog.provider(&ProviderId::parse("RAD-007").unwrap()).unwrap();
    assert_eq!(versions.iter().count(), 2, "one per effective date");
    assert_eq!(versions.in_force(d("2026-01-31")).unwrap().grade, Grade::Consultant, "the correction is in force");
    let hosp = catalog.client(&ClientId::parse("HOSP-001").unwrap()).unwrap();
    assert_eq!(hosp.in_force(d("2026-01-01")).unwrap().gstin.as_deref(), Some("27ABCDE1234F1Z5"));

    let mut admin = db.pool().get().await.unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM providers").await, 3, "every version is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_versions_are_numbered_and_load_into_the_catalog() {
    let db = db().await;
    let mut conn = db.connect_as("radfin_pricing").await.unwrap();
    let hosp = ClientId::parse("HOSP-001").unwrap();
    assert_eq!(rules::insert_provider_rules(&mut conn, d("2025-04-01"), PROVIDER_RULES, "alice").await.unwrap(), 1);
    assert_eq!(rules::insert_provider_rules(&mut conn, d("2026-01-01"), PROVIDER_RULES, "alice").await.unwrap(), 2);
    assert_eq!(rules::insert_client_rules(&mut conn, &hosp, d("2025-04-01"), HOSP_001_RULES, "bob").await.unwrap(), 1);

    let listed = rules::list_provider_rules(&mut conn).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| (r.version, r.effective_from)).collect::<Vec<_>>(),
        [(1, d("2025-04-01")), (2, d("2026-01-01"))]
    );
    assert_eq!(listed[0].document, PROVIDER_RULES, "the document is kept byte for byte");
    let clients = rules::list_client_rules(&mut conn, Some(&hosp)).await.unwrap();
    assert_eq!(
        (clients[0].client_id.as_ref(), clients[0].version, clients[0].recorded_by.as_str()),
        (Some(&hosp), 1, "bob")
    );
    assert!(rules::list_client_rules(&mut conn, Some(&ClientId::parse("HOSP-404").unwrap())).await.unwrap().is_empty());

    let mut catalog = Catalog::default();
    rules::load_into(&mut conn, &mut catalog).await.unwrap();
    assert_eq!(catalog.provider_rules().iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    let selected = catalog.client_rules(&hosp).unwrap().select(d("2026-01-15"), chrono::Utc::now()).unwrap();
    assert_eq!((selected.version, selected.rules.currency), (1, Currency::USD));

    // The table refuses a client document that names another client.
    let err = rules::insert_client_rules(
        &mut conn,
        &ClientId::parse("HOSP-002").unwrap(),
        d("2025-04-01"),
        HOSP_001_RULES,
        "bob",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("client_pricing_rules_document_check"), "{err}");

    // A stored document that no longer parses is an error naming it, never a skipped version.
    rules::insert_provider_rules(&mut conn, d("2026-02-01"), r#"{"currency": "INR"}"#, "mallory").await.unwrap();
    let err = rules::load_into(&mut conn, &mut Catalog::default()).await.unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("provider_pricing_rules version 3 no longer parses"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_recorders_get_distinct_versions() {
    let db = db().await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let pool = db.pool().clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await?;
                rules::insert_provider_rules(&mut conn, d("2025-04-01"), PROVIDER_RULES, &format!("user-{i}")).await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4]);
}

/// Two reference changes committed at once are stamped in commit order, and the version read
/// between the two commits covers the first and not the second: a load never claims a change
/// it did not see, whatever order the transactions began in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_changes_are_stamped_in_commit_order() {
    use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

    let db = db().await;
    let mut first = db.connect_as("radfin_pricing").await.unwrap();
    let mut second = db.connect_as("radfin_pricing").await.unwrap();
    let mut reader = db.connect_as("radfin_pricing").await.unwrap();
    let before = rules::reference_version(&mut reader).await.unwrap();

    // The first change begins first and commits last.
    AnsiTransactionManager::begin_transaction(&mut first).await.unwrap();
    parties::insert_provider(&mut first, &provider(Grade::Senior, "2026-01-01"), "alice").await.unwrap();
    let committing_second = tokio::spawn(async move {
        parties::insert_client(&mut second, &client(None, "2026-01-01"), "bob").await.unwrap();
        second
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!committing_second.is_finished(), "the second change waits for the first's stamp to commit");
    assert_eq!(rules::reference_version(&mut reader).await.unwrap(), before, "nothing committed yet");
    <AnsiTransactionManager as TransactionManager<AsyncPgConnection>>::commit_transaction(&mut first).await.unwrap();
    let _second = committing_second.await.unwrap();

    let provider_at = stamp(&mut reader, "SELECT recorded_at AS at FROM providers").await;
    let client_at = stamp(&mut reader, "SELECT recorded_at AS at FROM clients").await;
    assert!(before < provider_at && provider_at < client_at, "{before} < {provider_at} < {client_at}");
    assert_eq!(rules::reference_version(&mut reader).await.unwrap(), client_at);
}

async fn stamp(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> chrono::DateTime<chrono::Utc> {
    #[derive(diesel::QueryableByName)]
    struct At {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        at: chrono::DateTime<chrono::Utc>,
    }
    use diesel_async::RunQueryDsl;
    let row: At = diesel::sql_query(sql).get_result(conn).await.unwrap();
    row.at
}
