//! The dashboard over HTTP (axum): the page (`/`), its static files embedded in the binary
//! (`/assets/...`), one JSON endpoint per panel (`/api/<table>`) and its CSV
//! (`/api/<table>.csv`), `/api/meta` (periods and reruns for the selectors), the finance
//! documents of the periods shown (`/api/documents`, from the ledger; see [`crate::documents`])
//! and each as PDF (`/documents/pdf?number=INV/26-27/000001`), and `/healthz`.
//!
//! Everything but `/healthz` needs the `viewer` role when authentication is enabled, checked by
//! [`radfin_service::auth::Auth::check`] as for the gRPC method [`DASHBOARD_PATH`]: a bearer token
//! in `Authorization`, or in the `radfin_dashboard` cookie, which `/?token=<token>` sets once
//! (HttpOnly, SameSite=Strict) before redirecting to the page without the token in its address.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use radfin_service::auth::Auth;
use serde::Deserialize;
use serde_json::json;

use crate::documents::Documents;
use crate::panels::{self, Params};
use crate::query::{Range, Reporting, ReportingError};

/// The pseudo gRPC method the dashboard is authorized as (`viewer` in the policy).
pub const DASHBOARD_PATH: &str = "/radfin.reporting.v1.Dashboard/View";
/// The cookie that carries the token after `?token=`.
pub const COOKIE: &str = "radfin_dashboard";
/// How long the cookie lasts (the token's own expiry still applies).
const COOKIE_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The page's files, compiled in: (path under `/assets/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("dashboard.css", "text/css; charset=utf-8", include_bytes!("../assets/dashboard.css")),
    ("dashboard.js", "text/javascript; charset=utf-8", include_bytes!("../assets/dashboard.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../assets/favicon.svg")),
    (
        "vendor/echarts/echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/echarts/echarts.min.js"),
    ),
    ("vendor/echarts/LICENSE", "text/plain; charset=utf-8", include_bytes!("../assets/vendor/echarts/LICENSE")),
    ("vendor/echarts/NOTICE", "text/plain; charset=utf-8", include_bytes!("../assets/vendor/echarts/NOTICE")),
    (
        "vendor/echarts/LICENSE-zrender",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/echarts/LICENSE-zrender"),
    ),
    ("vendor/echarts/LICENSE-d3", "text/plain; charset=utf-8", include_bytes!("../assets/vendor/echarts/LICENSE-d3")),
];
const INDEX: &[u8] = include_bytes!("../assets/index.html");

/// The page's content security policy: its own files only (ECharts draws on a canvas).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the handlers share.
#[derive(Clone)]
pub struct Dashboard {
    pub reporting: Arc<Reporting>,
    pub auth: Auth,
    /// How often the page refreshes its panels.
    pub refresh: Duration,
    /// The ledger's documents, asked for with the caller's token.
    pub documents: Documents,
}

/// The table of finance documents, which comes from the ledger rather than the summary.
pub const DOCUMENTS: &str = "documents";

/// The dashboard's routes.
pub fn router(dashboard: Dashboard) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/api/meta", get(meta))
        .route("/api/{table}", get(api))
        .route("/documents/pdf", get(document_pdf))
        .layer(middleware::from_fn_with_state(dashboard.clone(), authorize))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/favicon.ico", get(|| asset(Path("favicon.svg".to_owned()))))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn(security_headers))
        .with_state(dashboard)
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The first address may carry `?token=`: never send it anywhere.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The token of the dashboard cookie, if the request carries one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The `token` of a query string and the query without it.
fn split_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("token=") {
            Some(t) => {
                token = Some(t.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    (token, rest.join("&"))
}

/// The caller's token: `Authorization: Bearer`, else the dashboard cookie.
fn caller_token(headers: &HeaderMap) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    from_header.or_else(|| cookie_token(headers))
}

fn bearer(token: &str) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).ok()?);
    Some(headers)
}

/// Checks the caller as a `viewer` of [`DASHBOARD_PATH`]; `?token=` sets the cookie and
/// redirects to the address without it.
async fn authorize(State(d): State<Dashboard>, request: Request, next: Next) -> Response {
    let now = chrono::Utc::now();
    let (token, rest) = split_token(request.uri().query().unwrap_or(""));
    if let Some(token) = token {
        let Some(headers) = bearer(&token) else {
            return denied(request.uri(), StatusCode::UNAUTHORIZED, "malformed token");
        };
        return match d.auth.check(DASHBOARD_PATH, &headers, now) {
            Ok(_) => {
                let location = if rest.is_empty() {
                    request.uri().path().to_owned()
                } else {
                    format!("{}?{rest}", request.uri().path())
                };
                let cookie = format!(
                    "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                    COOKIE_MAX_AGE.as_secs()
                );
                let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
            Err(denial) => {
                d.auth.record_denial(&denial).await;
                denied(request.uri(), http_code(&denial.status), denial.status.message())
            }
        };
    }
    let checked = {
        let from_cookie;
        let headers = if request.headers().contains_key(header::AUTHORIZATION) {
            request.headers()
        } else if let Some(headers) = cookie_token(request.headers()).as_deref().and_then(bearer) {
            from_cookie = headers;
            &from_cookie
        } else {
            request.headers()
        };
        d.auth.check(DASHBOARD_PATH, headers, now)
    };
    match checked {
        Ok(principal) => {
            let mut request = request;
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(denial) => {
            d.auth.record_denial(&denial).await;
            denied(request.uri(), http_code(&denial.status), denial.status.message())
        }
    }
}

fn http_code(status: &tonic::Status) -> StatusCode {
    match status.code() {
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// A refusal: JSON for the API, a short page for a person.
fn denied(uri: &Uri, code: StatusCode, message: &str) -> Response {
    let mut response = if uri.path().starts_with("/api/") {
        (code, axum::Json(json!({ "error": message }))).into_response()
    } else {
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>radfin: sign in</title></head>\
             <body><main><h1>radfin margins</h1><p>{}</p><p>Open this page with <code>?token=&lt;a viewer token&gt;</code> \
             (e.g. the <code>viewer</code> line of <code>target/radfin/dev-tokens.txt</code>), or send \
             <code>Authorization: Bearer &lt;token&gt;</code>.</p></main></body></html>",
            escape_html(message)
        );
        (code, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
    };
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX).into_response()
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// The query parameters of the API.
#[derive(Debug, Default, Deserialize)]
pub struct ApiQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub limit: String,
}

impl ApiQuery {
    fn params(&self) -> Result<Params, ReportingError> {
        let number =
            |field: &'static str, s: &str| -> Result<Option<i64>, ReportingError> {
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<i64>().ok().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    ReportingError::invalid(field, format!("must be a positive whole number, got {s:?}"))
                })
            };
        Ok(Params {
            range: Range::parse(&self.from, &self.to)?,
            run_id: number("run_id", &self.run_id)?,
            limit: number("limit", &self.limit)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        })
    }
}

fn error(e: &ReportingError) -> Response {
    let (code, message) = e.http();
    (code, [(header::CACHE_CONTROL, "no-store")], axum::Json(json!({ "error": message }))).into_response()
}

async fn api(
    State(d): State<Dashboard>,
    Path(table): Path<String>,
    Query(q): Query<ApiQuery>,
    headers: HeaderMap,
) -> Response {
    let params = match q.params() {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let (name, csv) = match table.strip_suffix(".csv") {
        Some(name) => (name, true),
        None => (table.as_str(), false),
    };
    let table = if name == DOCUMENTS {
        d.documents.table(&params.range, caller_token(&headers).as_deref()).await.map(Some)
    } else {
        panels::table(&d.reporting, name, &params).await
    };
    let table = match table {
        Ok(Some(t)) => t,
        Ok(None) => {
            let tables = format!("{}, {DOCUMENTS}", panels::TABLES.join(", "));
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "error": format!("no table {name:?}; tables: {tables}") })),
            )
                .into_response();
        }
        Err(e) => return error(&e),
    };
    if !csv {
        return ([(header::CACHE_CONTROL, "no-store")], axum::Json(table.json(panels::JSON_ROWS))).into_response();
    }
    match table.csv() {
        Ok(bytes) => {
            let range = [params.range.from, params.range.to]
                .iter()
                .map(|p| p.map_or_else(|| "all".to_owned(), |p| p.to_string()))
                .collect::<Vec<_>>()
                .join("_");
            let disposition = format!("attachment; filename=\"radfin-{name}-{range}.csv\"");
            let mut response = (
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
                Body::from(bytes),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => error(&ReportingError::Internal(format!("csv: {e}"))),
    }
}

#[derive(Debug, Deserialize)]
struct DocumentQuery {
    #[serde(default)]
    number: String,
}

/// A document as PDF, as an attachment named after its number.
async fn document_pdf(State(d): State<Dashboard>, Query(q): Query<DocumentQuery>, headers: HeaderMap) -> Response {
    let pdf = match d.documents.pdf(&q.number, caller_token(&headers).as_deref()).await {
        Ok(pdf) => pdf,
        Err(e) => return error(&e),
    };
    let file = format!("{}.pdf", q.number.trim().replace('/', "_"));
    let mut response =
        ([(header::CONTENT_TYPE, "application/pdf"), (header::CACHE_CONTROL, "no-store")], Body::from(pdf))
            .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// What the page's selectors offer: the periods, the reruns, and how often to refresh.
async fn meta(State(d): State<Dashboard>) -> Response {
    let periods = match d.reporting.periods().await {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let reruns = match d.reporting.reruns().await {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let body = json!({
        "periods": periods.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "reruns": reruns.iter().map(|r| json!({
            "run_id": r.run.run_id,
            "period": r.run.period.to_string(),
            "applied": r.applied,
            "created_at": r.run.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "reason": r.run.reason,
        })).collect::<Vec<_>>(),
        "tables": panels::TABLES,
        "refresh_ms": u64::try_from(d.refresh.as_millis()).unwrap_or(u64::MAX),
        "now": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(split_token("token=abc"), (Some("abc".to_owned()), String::new()));
        assert_eq!(
            split_token("from=2026-09&token=abc&to=2026-10"),
            (Some("abc".to_owned()), "from=2026-09&to=2026-10".to_owned())
        );
        assert_eq!(split_token("from=2026-09"), (None, "from=2026-09".to_owned()));
        assert_eq!(split_token(""), (None, String::new()));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; radfin_dashboard=tok-1; b=2"));
        assert_eq!(cookie_token(&h).as_deref(), Some("tok-1"));
        h.insert(header::COOKIE, HeaderValue::from_static("radfin_dashboardx=1"));
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        let page = std::str::from_utf8(INDEX).unwrap();
        for (path, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{path}");
        }
        for reference in page.split("\"/assets/").skip(1) {
            let path = reference.split('"').next().unwrap_or_default();
            assert!(ASSETS.iter().any(|(p, _, _)| *p == path), "the page names /assets/{path}, which is not served");
        }
    }
}
