//! The dashboard's HTTP layer against a database of its own, as the `radfin_reporting` role:
//! every panel and its CSV answer (so the role may read everything they show), and the viewer
//! role guards everything but `/healthz`: a bearer token, or `?token=` once, which sets an
//! HttpOnly cookie and leaves the address.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use http::{Request, StatusCode, header};
use radfin_db::testing::TestDb;
use radfin_pdf::Supplier;
use radfin_reporting::documents::Documents;
use radfin_reporting::http::{COOKIE, Dashboard, router};
use radfin_reporting::{Reporting, panels};
use radfin_service::auth::{Auth, sha256_hex};
use tower::ServiceExt;

struct Fixture {
    _db: TestDb,
    dir: std::path::PathBuf,
    app: axum::Router,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A dashboard over an empty database, as `radfin_reporting`, with tokens of each role (or
/// authentication disabled).
async fn fixture(authenticated: bool) -> Fixture {
    let db = TestDb::create().await.unwrap();
    let pool = radfin_db::pool(&db.url_as("radfin_reporting"), 2).await.unwrap();
    let dir = std::env::temp_dir().join(format!("radfin-reporting-http-{}-{}", std::process::id(), db.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth = if authenticated {
        let tokens = dir.join("tokens.json");
        let entry = |name: &str, role: &str| {
            format!(r#"{{"name":"{name}","role":"{role}","sha256":"{}"}}"#, sha256_hex(&format!("secret-{name}")))
        };
        std::fs::write(&tokens, format!(r#"{{"tokens":[{},{}]}}"#, entry("ceo", "viewer"), entry("feed", "ingest")))
            .unwrap();
        Auth::load(&tokens).unwrap()
    } else {
        Auth::disabled()
    };
    // No ledger listens here: the documents' table says so (the harness's tests show documents).
    let documents =
        Documents::new("http://127.0.0.1:9", "http://127.0.0.1:9", &Default::default(), Supplier::default()).unwrap();
    let dashboard =
        Dashboard { reporting: Arc::new(Reporting::new(pool)), auth, refresh: Duration::from_secs(5), documents };
    Fixture { _db: db, dir, app: router(dashboard) }
}

async fn get(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 16 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_answers_as_json_and_csv_for_the_reporting_role() {
    let f = fixture(false).await;
    let (status, headers, page) = get(&f.app, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1>radfin <span>margins</span></h1>"));
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    let (status, headers, _) = get(&f.app, "/assets/vendor/echarts/echarts.min.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert_eq!(get(&f.app, "/assets/nothing.js", &[]).await.0, StatusCode::NOT_FOUND);

    let (status, _, meta) = get(&f.app, "/api/meta", &[]).await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["periods"], serde_json::json!([]));
    for table in panels::TABLES {
        let (status, _, json) = get(&f.app, &format!("/api/{table}?from=2026-09&to=2026-10"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{table}: {json}");
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let columns: Vec<String> = serde_json::from_value(json["columns"].clone()).unwrap();
        let (status, headers, csv) = get(&f.app, &format!("/api/{table}.csv"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{table}: {csv}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
        assert!(
            headers[header::CONTENT_DISPOSITION].to_str().unwrap().contains(&format!("radfin-{table}-all_all.csv"))
        );
        assert_eq!(csv.lines().next().unwrap(), columns.join(","), "{table}: the CSV header is the table's columns");
    }
    // Five statuses, none held yet.
    let (_, _, held) = get(&f.app, "/api/held-by-status.csv", &[]).await;
    assert_eq!(held.lines().count(), 6);

    let (status, _, body) = get(&f.app, "/api/trend?from=2026-10&to=2026-09", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("to_period: 2026-09 is before from_period 2026-10"), "{body}");
    let (status, _, body) = get(&f.app, "/api/rerun-clients?run_id=x", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("run_id"), "{body}");
    assert_eq!(get(&f.app, "/api/rerun-clients?run_id=42", &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&f.app, "/api/margins", &[]).await.0, StatusCode::NOT_FOUND);

    let (status, _, body) = get(&f.app, "/api/documents", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no ledger: {body}");
    assert!(body.contains("ledger"), "{body}");
    let (status, _, body) = get(&f.app, "/documents/pdf?number=XYZ/1", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a document number"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_needs_a_viewer_token_from_a_header_or_the_cookie_the_address_sets() {
    let f = fixture(true).await;
    assert_eq!(get(&f.app, "/healthz", &[]).await.0, StatusCode::OK, "health is public");

    let (status, headers, body) = get(&f.app, "/api/trend", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert!(body.contains("missing bearer token"), "{body}");
    let (status, headers, page) = get(&f.app, "/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(page.contains("?token="), "{page}");
    assert_eq!(get(&f.app, "/assets/dashboard.js", &[]).await.0, StatusCode::UNAUTHORIZED);

    // A bearer token of the viewer role reads; the ingest role may not; an unknown token is no one.
    assert_eq!(get(&f.app, "/api/trend", &[("authorization", "Bearer secret-ceo")]).await.0, StatusCode::OK);
    let (status, _, body) = get(&f.app, "/api/trend", &[("authorization", "Bearer secret-feed")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("needs role viewer"), "{body}");
    assert_eq!(get(&f.app, "/api/trend", &[("authorization", "Bearer nobody")]).await.0, StatusCode::UNAUTHORIZED);

    // `?token=` once: a cookie (HttpOnly, SameSite=Strict) and a redirect without the token.
    let (status, headers, _) = get(&f.app, "/?from=2026-09&token=secret-ceo", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/?from=2026-09");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("{COOKIE}=secret-ceo;")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let sent = format!("theme=dark; {}", cookie.split(';').next().unwrap());
    assert_eq!(get(&f.app, "/", &[("cookie", &sent)]).await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/api/held.csv", &[("cookie", &sent)]).await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/api/trend", &[("cookie", "radfin_dashboard=secret-feed")]).await.0, StatusCode::FORBIDDEN);
    let (status, headers, _) = get(&f.app, "/?token=wrong", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!headers.contains_key(header::SET_COOKIE), "no cookie for a bad token");
}
