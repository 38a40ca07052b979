//! The two HTTP servers: routing, shared middleware and the error envelope.
//! Handlers parse and authorise, call one service, and render; no SQL here.

mod cookies;
mod courier;
pub mod error;
mod health;
mod identities;
mod logout;
pub mod negotiate;
mod oidc;
mod pagination;
mod request;
mod schemas;
mod selfservice;
pub mod sessions;
pub mod state;
mod ui;

use crate::config::Config;
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{App, HttpResponse, ResponseError, web};
use error::ApiError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use state::{AppState, MAX_BODY, Side};

const NO_CACHE: &str = "private, no-cache, no-store, must-revalidate";

/// Body, JSON and query extractor limits and their errors, for both servers.
fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .app_data(web::JsonConfig::default().limit(MAX_BODY).error_handler(|err, _| json_error(&err).into()))
        .app_data(web::QueryConfig::default().error_handler(|err, _| ApiError::bad_request(err.to_string()).into()))
        .app_data(web::FormConfig::default().limit(MAX_BODY).error_handler(|err, _| {
            use actix_web::error::UrlencodedError as E;
            match err {
                E::Overflow { .. } => ApiError::for_status(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE).into(),
                E::ContentType => ApiError::for_status(actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE).into(),
                other => ApiError::bad_request(other.to_string()).into(),
            }
        }));
}

/// Maps a JSON body error to the envelope: 413 too large, 415 wrong type, else 400.
pub fn json_error(err: &actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    use actix_web::http::StatusCode;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE),
        E::ContentType => ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        other => ApiError::bad_request(format!("Unable to decode JSON payload: {other}")),
    }
}

/// Renders any error response that is not already an envelope (actix's own 404/405/413/415…).
fn envelope<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || res.headers().contains_key("ory-error-id") {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let mut err = ApiError::for_status(status);
    if status.is_client_error()
        && let Some(cause) = res.response().error()
    {
        err = err.with_reason(cause.to_string());
    }
    let (req, _) = res.into_parts();
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, err.error_response()).map_into_right_body()))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::for_status(actix_web::http::StatusCode::NOT_FOUND)
        .with_reason("The requested resource could not be found"))
}

/// Echoes `X-Request-ID` into every error envelope (`error.request`). Middleware answers
/// refusals as responses (not errors), so they pass through here too.
fn request_id_layer<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<EitherBody<BoxBody>>, Error = actix_web::Error>,
{
    let id = error::request_id(req.headers()).map(str::to_string);
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        match id {
            Some(id) => Ok(error::echo_request_id(res, &id).await),
            None => Ok(res),
        }
    }
}

/// The public server's application.
pub fn public_app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = state.config.serve.public.cors.clone();
    App::new()
        .app_data(state)
        .configure(extractor_config)
        .configure(|cfg| health::routes(cfg, Side::Public))
        .configure(schemas::public_routes)
        .configure(sessions::public_routes)
        .configure(identities::public_routes)
        .configure(selfservice::public_routes)
        .configure(oidc::public_routes)
        .configure(ui::public_routes)
        .configure(logout::routes)
        .configure(courier::public_routes)
        .default_service(web::to(not_found))
        .wrap(ErrorHandlers::new().default_handler(envelope))
        .wrap_fn(metrics_layer)
        .wrap_fn(|req, srv| {
            let is_get = req.method() == Method::GET;
            let fut = srv.call(req);
            async move {
                let mut res = fut.await?;
                if is_get && !res.headers().contains_key(header::CACHE_CONTROL) {
                    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(NO_CACHE));
                }
                Ok(res)
            }
        })
        .wrap_fn(request_id_layer)
        // Outermost: a preflight is answered before anything else looks at the request.
        .wrap(actix_web::middleware::Condition::new(cors.enabled, cors_layer(&cors)))
}

/// What a redacted log value reads (ory/x's text) when `log.redaction_text` is not set.
const REDACTED: &str =
    "Value is sensitive and has been redacted. To see the value set config key \"log.leak_sensitive_values = true\".";

/// Records Kratos' HTTP metrics for every request a route answered (unmatched paths are not
/// counted, as in Kratos): duration, status, method, route pattern, request and response size;
/// and logs every request as Kratos does ("completed handling request"), its query string
/// replaced by `log.redaction_text` unless `log.leak_sensitive_values` (it may hold tokens, codes
/// and flow ids).
fn metrics_layer<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let request_bytes = request_size(&req);
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        let Some(state) = res.request().app_data::<web::Data<AppState>>().cloned() else { return Ok(res) };
        let took = started.elapsed();
        if tracing::enabled!(tracing::Level::INFO) {
            let log = &state.config.log;
            let query = res.request().query_string();
            let redacted = match log.redaction_text.as_str() {
                "" => REDACTED,
                text => text,
            };
            let query = if query.is_empty() || log.leak_sensitive_values { query } else { redacted };
            tracing::info!(
                method = %method,
                path = res.request().path(),
                query,
                status = res.status().as_u16(),
                took_ms = took.as_secs_f64() * 1000.0,
                "completed handling request"
            );
        }
        if let Some(pattern) = res.request().match_pattern() {
            let response_bytes = match res.response().body().size() {
                actix_web::body::BodySize::Sized(n) => n,
                _ => 0,
            };
            state.http_metrics.observe(
                method.as_str(),
                res.status().as_u16(),
                &pattern,
                took.as_secs_f64(),
                request_bytes,
                response_bytes,
            );
        }
        Ok(res)
    }
}

/// promhttp's estimate of a request's size: URL, method, protocol, headers, host and body length.
fn request_size(req: &ServiceRequest) -> u64 {
    let headers: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    let proto = format!("{:?}", req.version()).len();
    let body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    (req.uri().to_string().len()
        + req.method().as_str().len()
        + proto
        + headers
        + req.connection_info().host().len()
        + body) as u64
}

/// `serve.public.cors` as actix-cors applies it, with rs/cors' semantics as Kratos uses it:
/// an origin that is not allowed gets no CORS headers (the request itself goes on), the
/// allowed origin is echoed back (with `Vary: Origin`), `max_age` 0 sends no max age.
fn cors_layer(config: &crate::config::CorsConfig) -> actix_cors::Cors {
    let origins = config.clone();
    let mut cors = actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|o| origins.allows(o)))
        .allowed_methods(config.allowed_methods.iter().filter_map(|m| Method::from_bytes(m.as_bytes()).ok()))
        .allowed_headers(config.allowed_headers.iter().filter_map(|h| header::HeaderName::try_from(h.as_str()).ok()))
        .expose_headers(config.exposed_headers.iter().filter_map(|h| header::HeaderName::try_from(h.as_str()).ok()))
        .max_age(usize::try_from(config.max_age).ok().filter(|a| *a > 0))
        .block_on_origin_mismatch(false);
    if config.allow_credentials {
        cors = cors.supports_credentials();
    }
    cors
}

/// Whether the admin request carries one of the configured API keys (hex SHA-256 digests).
fn admin_key_ok(config: &Config, req: &ServiceRequest) -> bool {
    if config.serve.admin.api_keys.is_empty() || req.path().starts_with("/admin/health/") {
        return true;
    }
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    config
        .serve
        .admin
        .api_keys
        .iter()
        .fold(false, |found, k| found | bool::from(k.to_ascii_lowercase().as_bytes().ct_eq(digest.as_bytes())))
}

/// The admin server's application: every route lives under `/admin`; a request path
/// without that prefix gets it prepended (as Kratos does).
pub fn admin_app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<EitherBody<actix_web::body::BoxBody>>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let config = state.config.clone();
    App::new()
        .app_data(state)
        .configure(extractor_config)
        .configure(|cfg| health::routes(cfg, Side::Admin))
        .configure(schemas::admin_routes)
        .configure(identities::admin_routes)
        .configure(sessions::admin_routes)
        .configure(selfservice::admin_routes)
        .configure(courier::admin_routes)
        .default_service(web::to(not_found))
        .wrap(ErrorHandlers::new().default_handler(envelope))
        .wrap_fn(metrics_layer)
        .wrap_fn(move |req, srv| {
            if !admin_key_ok(&config, &req) {
                let refused = ApiError::unauthorized("A valid admin API key is required (Authorization: Bearer <key>)");
                let res = req.into_response(refused.error_response()).map_into_left_body();
                return futures_util::future::Either::Left(std::future::ready(Ok(res)));
            }
            let is_get = req.method() == Method::GET;
            let fut = srv.call(req);
            futures_util::future::Either::Right(async move {
                let mut res = fut.await?;
                if is_get && !res.headers().contains_key(header::CACHE_CONTROL) {
                    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(NO_CACHE));
                }
                Ok(res)
            })
        })
        .wrap_fn(|mut req, srv| {
            if !(req.path() == "/admin" || req.path().starts_with("/admin/")) {
                let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_string();
                if let Ok(uri) = format!("/admin{pq}").parse::<actix_web::http::Uri>() {
                    req.match_info_mut().get_mut().update(&uri);
                    req.head_mut().uri = uri;
                }
            }
            srv.call(req)
        })
        .wrap_fn(request_id_layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test;
    use serde_json::Value;

    async fn echo(body: web::Json<Value>) -> HttpResponse {
        HttpResponse::Ok().json(body.into_inner())
    }

    /// JSON bodies on every route share these limits and errors.
    #[actix_web::test]
    async fn json_body_errors_use_the_envelope() {
        let app = test::init_service(
            App::new()
                .configure(extractor_config)
                .route("/echo", web::post().to(echo))
                .wrap(ErrorHandlers::new().default_handler(envelope)),
        )
        .await;
        let cases: Vec<(test::TestRequest, u16)> = vec![
            (
                test::TestRequest::post()
                    .uri("/echo")
                    .insert_header(("content-type", "application/json"))
                    .set_payload("{nope"),
                400,
            ),
            (
                test::TestRequest::post().uri("/echo").insert_header(("content-type", "text/plain")).set_payload("{}"),
                415,
            ),
            (
                test::TestRequest::post()
                    .uri("/echo")
                    .insert_header(("content-type", "application/json"))
                    .set_payload(vec![b' '; MAX_BODY + 1]),
                413,
            ),
        ];
        for (req, status) in cases {
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status().as_u16(), status);
            assert_eq!(res.headers().get("ory-error-id").map(|v| v.as_bytes()), Some(&b""[..]));
            let body: Value = test::read_body_json(res).await;
            assert_eq!(body["error"]["code"], status);
            assert!(body["error"]["message"].is_string());
        }
        let ok = test::TestRequest::post().uri("/echo").set_json(serde_json::json!({"a": 1})).to_request();
        assert_eq!(test::call_service(&app, ok).await.status(), 200);
    }
}
