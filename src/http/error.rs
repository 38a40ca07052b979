//! The one place where failures become HTTP: [`ApiError`] is the `errorGeneric` envelope
//! `{"error": {id?, code, status, reason?, message, details?}}` (plus top-level siblings such as
//! `use_flow_id`), with `Ory-Error-Id` mirroring `error.id` (empty when there is none), and
//! `From<Error>` decides the status and texts of every domain error (behaviour.md §2.3, §2.4).

use super::negotiate::{accepts_json, is_json_request};
use super::state::AppState;
use crate::catalogue::error as text;
use crate::error::{CsrfProblem, Error, FlowName};
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{Map, Value as Json, json};
use std::borrow::Cow;

/// An error answered as the `errorGeneric` envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub id: Option<&'static str>,
    pub message: Cow<'static, str>,
    pub reason: Option<String>,
    pub details: Option<Box<Json>>,
    /// Top-level siblings of `error` (e.g. `use_flow_id`, `redirect_browser_to`).
    pub siblings: Option<Box<Map<String, Json>>>,
    /// The request's `X-Request-ID`, echoed as `error.request` (herodot does this).
    pub request: Option<String>,
}

/// herodot's message for a status.
fn standard_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request was malformed or contained invalid parameters",
        401 => "The request could not be authorized",
        403 => "The requested action was forbidden",
        404 => "The requested resource could not be found",
        405 => "The request method is not allowed for this resource",
        406 => "The requested content type can not be produced",
        409 => "The resource could not be created due to a conflict",
        413 => "The request body is too large",
        415 => "The request is using an unknown content type",
        s if s >= 500 => "An internal server error occurred, please contact the system administrator",
        _ => "The request could not be processed",
    }
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        ApiError {
            status,
            id: None,
            message: Cow::Borrowed(message),
            reason: None,
            details: None,
            siblings: None,
            request: None,
        }
    }

    /// The standard envelope for a status (also for statuses actix produced on its own).
    pub fn for_status(status: StatusCode) -> Self {
        Self::new(status, standard_message(status))
    }

    /// 400 with a reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::for_status(StatusCode::BAD_REQUEST).with_reason(reason)
    }

    /// 401 with a reason.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::for_status(StatusCode::UNAUTHORIZED).with_reason(reason)
    }

    /// Adds the human-readable reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a stable error id (`crate::catalogue::error`).
    pub fn with_id(mut self, id: &'static str) -> Self {
        self.id = Some(id);
        self
    }

    /// Replaces the message (herodot's `WithError`: e.g. a JSON decoder's complaint).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Cow::Owned(message.into());
        self
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Json) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// Adds a top-level sibling of `error`.
    pub fn with_sibling(mut self, key: &str, value: Json) -> Self {
        self.siblings.get_or_insert_with(Default::default).insert(key.into(), value);
        self
    }

    /// The `DefaultError` object alone (no `error` wrapper), as batch results embed it.
    pub fn inner_body(&self) -> Json {
        self.body().get("error").cloned().unwrap_or(Json::Null)
    }

    /// The JSON body.
    pub fn body(&self) -> Json {
        let mut error = Map::new();
        if let Some(id) = self.id {
            error.insert("id".into(), json!(id));
        }
        error.insert("code".into(), json!(self.status.as_u16()));
        error.insert("status".into(), json!(self.status.canonical_reason().unwrap_or("")));
        if let Some(request) = &self.request {
            error.insert("request".into(), json!(request));
        }
        if let Some(reason) = &self.reason {
            error.insert("reason".into(), json!(reason));
        }
        error.insert("message".into(), json!(self.message));
        if let Some(details) = &self.details {
            error.insert("details".into(), (**details).clone());
        }
        let mut body = self.siblings.as_deref().cloned().unwrap_or_default();
        body.insert("error".into(), Json::Object(error));
        Json::Object(body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.reason.as_deref().unwrap_or(&self.message))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header(("Ory-Error-Id", self.id.unwrap_or("")))
            .insert_header((header::CACHE_CONTROL, "private, no-cache, no-store, must-revalidate"));
        // Unavailable is temporary: say when to come back.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        res.json(self.body())
    }
}

fn csrf(p: CsrfProblem) -> ApiError {
    let hint = match p.reject_reason {
        None => text::CSRF_HINT_TOKEN_MISSING,
        Some(_) if p.ajax => text::CSRF_HINT_AJAX,
        Some(_) => text::CSRF_HINT_SERVER,
    };
    let mut details = json!({ "docs": text::CSRF_DOCS, "hint": hint });
    if let (Some(r), Some(o)) = (p.reject_reason, details.as_object_mut()) {
        o.insert("reject_reason".into(), json!(r));
    }
    ApiError::new(StatusCode::FORBIDDEN, text::CSRF_MESSAGE)
        .with_id(text::SECURITY_CSRF_VIOLATION)
        .with_reason(text::CSRF_REASON)
        .with_details(details)
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        use StatusCode as S;
        match e {
            Error::Invalid(reason) => ApiError::bad_request(reason),
            Error::Malformed { message, reason } => {
                let e = ApiError::for_status(S::BAD_REQUEST).with_message(message);
                match reason {
                    Some(r) => e.with_reason(r),
                    None => e,
                }
            }
            Error::RetryFlow { reason, continue_with } => {
                ApiError::bad_request(reason).with_details(json!({ "continue_with": continue_with }))
            }
            Error::ReturnToForbidden(url) => ApiError::bad_request(text::return_to_forbidden(&url))
                .with_id(text::SELF_SERVICE_FLOW_RETURN_TO_FORBIDDEN),
            Error::AlreadySignedIn(flow) => {
                let (reason, own_message) = match flow {
                    FlowName::Registration => (text::REGISTRATION_ALREADY_SIGNED_IN, true),
                    FlowName::Recovery => (text::RECOVERY_ALREADY_SIGNED_IN, false),
                    _ => (text::LOGIN_ALREADY_SIGNED_IN, true),
                };
                let e = ApiError::bad_request(reason).with_id(text::SESSION_ALREADY_AVAILABLE);
                if own_message { e.with_message(text::ALREADY_SIGNED_IN_MESSAGE) } else { e }
            }
            Error::FlowDisabled(FlowName::Registration) => ApiError::bad_request(text::REGISTRATION_DISABLED)
                .with_id(text::SELF_SERVICE_FLOW_DISABLED)
                .with_message(text::REGISTRATION_DISABLED_MESSAGE),
            Error::FlowDisabled(FlowName::Recovery) => ApiError::bad_request(text::RECOVERY_DISABLED),
            Error::FlowDisabled(_) => ApiError::bad_request(text::VERIFICATION_DISABLED),
            Error::EndpointDisabled => ApiError::for_status(S::NOT_FOUND).with_reason(text::ENDPOINT_DISABLED),
            Error::NotFound(None) => ApiError::new(S::NOT_FOUND, text::NO_ROWS_MESSAGE),
            Error::NotFound(Some(reason)) => ApiError::for_status(S::NOT_FOUND).with_reason(reason),
            Error::Conflict(reason) => ApiError::for_status(S::CONFLICT).with_reason(reason),
            Error::UniqueViolation => ApiError::new(S::CONFLICT, text::UNIQUE_VIOLATION_MESSAGE),
            Error::Stale => ApiError::for_status(S::CONFLICT).with_reason(text::STALE_REASON),
            Error::NoSession { named } => {
                let e = ApiError::unauthorized(text::NO_SESSION).with_message(text::NO_SESSION_MESSAGE);
                if named { e.with_id(text::SESSION_INACTIVE) } else { e }
            }
            Error::SessionRequired => ApiError::unauthorized(text::SESSION_MISSING),
            Error::IdentityDisabled => {
                ApiError::unauthorized(text::IDENTITY_DISABLED).with_message(text::IDENTITY_DISABLED_MESSAGE)
            }
            Error::Aal1Required => ApiError::unauthorized(text::AAL1_REQUIRED)
                .with_id(text::SESSION_AAL1_REQUIRED)
                .with_message(text::AAL1_REQUIRED_MESSAGE),
            Error::Aal2Required { redirect } => ApiError::new(S::FORBIDDEN, text::AAL2_REQUIRED_MESSAGE)
                .with_id(text::SESSION_AAL2_REQUIRED)
                .with_reason(text::AAL2_REQUIRED)
                .with_details(json!({ "redirect_browser_to": redirect }))
                .with_sibling("redirect_browser_to", json!(redirect)),
            Error::Csrf(problem) => csrf(problem),
            Error::IdentityMismatch => ApiError::for_status(S::FORBIDDEN)
                .with_id(text::SECURITY_IDENTITY_MISMATCH)
                .with_reason(text::IDENTITY_MISMATCH),
            Error::RefreshRequired { redirect } => ApiError::for_status(S::FORBIDDEN)
                .with_id(text::SESSION_REFRESH_REQUIRED)
                .with_reason(text::REFRESH_REQUIRED)
                .with_sibling("redirect_browser_to", json!(redirect)),
            Error::VerifiedAddressRequired { continue_with } => {
                let e = ApiError::new(S::FORBIDDEN, text::VERIFIED_ADDRESS_REQUIRED_MESSAGE)
                    .with_id(text::SESSION_VERIFIED_ADDRESS_REQUIRED)
                    .with_reason(text::VERIFIED_ADDRESS_REQUIRED);
                match continue_with {
                    Some(item) => e.with_details(json!({ "continue_with": [item] })),
                    None => e,
                }
            }
            Error::Forbidden(reason) => ApiError::for_status(S::FORBIDDEN).with_reason(reason),
            Error::FlowExpired { expired_at, now, replacement, continue_with } => {
                let ago = now - expired_at;
                let minutes = ago.num_seconds().max(0) as f64 / 60.0;
                let mut e = ApiError::new(S::GONE, text::FLOW_EXPIRED_MESSAGE)
                    .with_id(text::SELF_SERVICE_FLOW_EXPIRED)
                    .with_reason(text::flow_expired(minutes))
                    .with_sibling("expired_at", crate::clock::ts(&expired_at))
                    .with_sibling("since", json!(ago.num_nanoseconds().unwrap_or(i64::MAX)));
                if let Some(id) = replacement {
                    e = e.with_sibling("use_flow_id", json!(id));
                }
                if !continue_with.is_empty() {
                    e = e.with_details(json!({ "continue_with": continue_with }));
                }
                e
            }
            Error::FlowGone { flow, api, named, restart, return_to } => {
                let e = ApiError::new(S::GONE, text::FLOW_GONE_MESSAGE);
                let e = if named { e.with_id(text::SELF_SERVICE_FLOW_EXPIRED) } else { e };
                if api {
                    e.with_reason(text::flow_gone_api(flow.as_str())).with_details(json!({ "api": restart }))
                } else {
                    e.with_reason(text::flow_gone_browser(flow.as_str()))
                        .with_details(json!({ "redirect_to": restart, "return_to": return_to.unwrap_or_default() }))
                }
            }
            Error::FlowReplaced { replacement, reason } => ApiError::new(S::GONE, text::FLOW_REPLACED_MESSAGE)
                .with_id(text::SELF_SERVICE_FLOW_REPLACED)
                .with_reason(reason)
                .with_sibling("use_flow_id", json!(replacement)),
            Error::LocationChangeRequired { to } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, text::LOCATION_CHANGE_MESSAGE)
                    .with_id(text::BROWSER_LOCATION_CHANGE_REQUIRED)
                    .with_reason(text::location_change(&to))
                    .with_sibling("redirect_browser_to", json!(to))
            }
            Error::Misconfigured(reason) => {
                ApiError::new(S::INTERNAL_SERVER_ERROR, text::INVALID_CONFIGURATION_MESSAGE)
                    .with_id(text::INVALID_CONFIGURATION)
                    .with_reason(reason)
            }
            Error::UpstreamTimeout => {
                ApiError::new(S::GATEWAY_TIMEOUT, text::UPSTREAM_TIMEOUT_MESSAGE).with_reason(text::UPSTREAM_TIMEOUT)
            }
            Error::Upstream(reason) => ApiError::new(S::BAD_GATEWAY, text::UPSTREAM_MESSAGE).with_reason(reason),
            Error::OAuth2Provider { server, reason, status_code, hint } => {
                let status = if server { S::INTERNAL_SERVER_ERROR } else { S::BAD_REQUEST };
                let mut details = Map::new();
                if let Some(code) = status_code {
                    details.insert("status_code".into(), json!(code));
                }
                if let Some(hint) = hint {
                    details.insert("oauth2_error_hint".into(), json!(hint));
                }
                let e = ApiError::for_status(status).with_reason(reason);
                if details.is_empty() { e } else { e.with_details(Json::Object(details)) }
            }
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ApiError::for_status(S::INTERNAL_SERVER_ERROR)
            }
            Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "service unavailable");
                ApiError::new(S::SERVICE_UNAVAILABLE, "The service is currently unavailable, please try again later")
            }
        }
    }
}

impl From<crate::persistence::StoreError> for ApiError {
    fn from(e: crate::persistence::StoreError) -> ApiError {
        Error::from(e).into()
    }
}

/// Answers an error: JSON for JSON clients and API flows, else a stored error shown by the UI.
pub async fn respond(state: &AppState, req: &HttpRequest, api_flow: bool, e: impl Into<ApiError>) -> HttpResponse {
    let mut e: ApiError = e.into();
    e.request = request_id(req.headers()).map(str::to_string);
    if api_flow || is_json_request(req) {
        return e.error_response();
    }
    let id = match crate::selfservice::errors::store(&state.selfservice, e.inner_body()).await {
        Ok(id) => id,
        Err(e) => return ApiError::from(e).error_response(),
    };
    if accepts_json(req) {
        return e.error_response();
    }
    let to =
        crate::selfservice::redirect::with_query(&state.config.selfservice.flows.error.ui_url, "id", &id.to_string());
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

/// The `X-Request-ID` of a request, if it sent one.
pub fn request_id(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// Adds `error.request = id` to an error envelope (herodot echoes `X-Request-ID` in every
/// JSON error); other responses pass unchanged.
pub async fn echo_request_id(
    res: ServiceResponse<EitherBody<BoxBody>>,
    id: &str,
) -> ServiceResponse<EitherBody<BoxBody>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !res.status().is_client_error() && !res.status().is_server_error() || !is_json {
        return res;
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(b) => b,
        Err(_) => {
            let fallback = ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR).error_response();
            return ServiceResponse::new(req, fallback).map_into_left_body();
        }
    };
    let unchanged = |req, head: HttpResponse<()>, bytes| ServiceResponse::new(req, head.set_body(BoxBody::new(bytes)));
    let Ok(mut doc) = serde_json::from_slice::<Json>(&bytes) else {
        return unchanged(req, head, bytes).map_into_left_body();
    };
    let Some(error) = doc.get_mut("error").and_then(Json::as_object_mut).filter(|e| !e.contains_key("request")) else {
        return unchanged(req, head, bytes).map_into_left_body();
    };
    // herodot's field order: id, code, status, request, …
    let rest = std::mem::take(error);
    for (k, v) in rest {
        let after_status = k == "status";
        error.insert(k, v);
        if after_status {
            error.insert("request".into(), json!(id));
        }
    }
    if !error.contains_key("request") {
        error.insert("request".into(), json!(id));
    }
    ServiceResponse::new(req, head.set_body(BoxBody::new(doc.to_string()))).map_into_left_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_kratos_envelopes() {
        let e = ApiError::from(Error::NoSession { named: true });
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.id, Some("session_inactive"));
        assert_eq!(e.body()["error"]["message"], "request does not have a valid authentication session");
        let e = ApiError::from(Error::NoSession { named: false });
        assert_eq!(e.id, None);
        let e = ApiError::from(Error::NotFound(None));
        assert_eq!((e.status.as_u16(), e.reason.as_deref()), (404, None));
        assert_eq!(e.body()["error"]["message"], "Unable to locate the resource");
        let e = ApiError::from(Error::LocationChangeRequired { to: "https://x.example/".into() });
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.body()["redirect_browser_to"], "https://x.example/");
        let now = crate::clock::Clock::system().now();
        let id = uuid::Uuid::new_v4();
        let e = ApiError::from(Error::FlowExpired {
            expired_at: now - chrono::Duration::minutes(3),
            now,
            replacement: Some(id),
            continue_with: vec![],
        });
        let body = e.body();
        assert_eq!(body["use_flow_id"], json!(id));
        assert_eq!(body["since"], json!(180_000_000_000i64));
        assert_eq!(body["error"]["reason"], "The self-service flow expired 3.00 minutes ago, initialize a new one.");
        assert!(body["error"].get("details").is_none());
        let e = ApiError::from(Error::Csrf(CsrfProblem { reject_reason: None, ajax: false }));
        assert_eq!(e.status.as_u16(), 403);
        assert!(e.body()["error"]["details"].get("reject_reason").is_none());
        assert_eq!(ApiError::from(Error::Upstream("x".into())).status.as_u16(), 502);
        assert_eq!(ApiError::from(Error::UpstreamTimeout).status.as_u16(), 504);
        assert_eq!(ApiError::from(Error::Unavailable("db".into())).status.as_u16(), 503);
    }
}
