//! What every handler shares: the application state and small request/response helpers.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;

/// Largest accepted request body (as Kratos).
pub const MAX_BODY: usize = 5 << 20;

/// What every handler may use.
pub struct AppState {
    pub config: Arc<crate::config::Config>,
    pub store: crate::persistence::Store,
    pub persister: crate::persistence::Persister,
    pub schemas: crate::schema::SchemaRegistry,
    pub clock: crate::clock::Clock,
    pub identities: crate::identity::IdentityService,
    pub sessions: crate::session::SessionService,
    pub selfservice: crate::selfservice::SelfService,
    pub courier: crate::courier::Courier,
    /// Kratos' HTTP request families, for both servers.
    pub http_metrics: crate::telemetry::metrics::HttpMetrics,
}

impl AppState {
    /// Every component's recorder (rendered together; also kept folded by the upkeep task).
    pub fn metric_sets(&self) -> [&crate::telemetry::metrics::Metrics; 4] {
        [
            self.persister.metrics(),
            self.identities.hashes.metrics(),
            self.courier.metrics(),
            self.selfservice.services.brute_force.metrics(),
        ]
    }
}

/// Which server a route table is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Public,
    Admin,
}

/// The query string as decoded pairs, in request order (repeated keys kept).
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect()
}

/// Every value of `key`.
pub fn query_all<'a>(pairs: &'a [(String, String)], key: &str) -> impl Iterator<Item = &'a str> {
    pairs.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The first value of `key`.
pub fn query_first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query_all(pairs, key).next()
}

/// A `Link` entry `<path?query>; rel="…"`: the request's own path and query with `set`
/// replacing those keys, keys sorted (values of one key keep their order), as Go encodes it.
pub fn link_entry(req: &HttpRequest, pairs: &[(String, String)], set: &[(&str, String)], rel: &str) -> String {
    let mut q: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| !set.iter().any(|(s, _)| s == k)).cloned().collect();
    q.extend(set.iter().map(|(k, v)| (k.to_string(), v.clone())));
    q.sort_by(|a, b| a.0.cmp(&b.0));
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(q).finish();
    format!("<{}?{query}>; rel=\"{rel}\"", req.path())
}

/// A JSON body already rendered as a value.
pub fn json_response(status: actix_web::http::StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).content_type("application/json").body(body.to_string())
}

/// 307 to `path` (no leading `/`) on `base` (ending in `/`), query kept.
pub fn temporary_redirect(base: &str, path: &str, query: &str) -> HttpResponse {
    let location = if query.is_empty() { format!("{base}{path}") } else { format!("{base}{path}?{query}") };
    HttpResponse::TemporaryRedirect().insert_header((header::LOCATION, location)).finish()
}

/// The admin server sends public routes (`/admin/<path>`) to the public server (307).
pub async fn to_public(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let path = req.path().strip_prefix("/admin").unwrap_or(req.path()).trim_start_matches('/');
    temporary_redirect(&state.config.public_base_url(), path, req.query_string())
}

/// A `200 OK` JSON response.
pub fn ok_json(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok().json(body)
}
