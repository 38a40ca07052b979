//! Error policy (one place):
//! * `anyhow` for work outside a request (start-up, CLI);
//! * `StoreError` in storage code, `ConfigError`/`SchemaError` for start-up checks;
//! * [`ApiError`] for everything that becomes an HTTP response: it renders the
//!   `errorGeneric` envelope `{"error": {id?, code, status, reason?, message, details?}}`
//!   and mirrors `error.id` in the `Ory-Error-Id` header (empty when there is no id).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
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
}

impl ApiError {
    /// An error with a status and the standard message for it.
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        ApiError { status, id: None, message: Cow::Borrowed(message), reason: None, details: None, siblings: None }
    }

    /// Adds the human-readable reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a stable error id (`reference/errors.tsv`).
    pub fn with_id(mut self, id: &'static str) -> Self {
        self.id = Some(id);
        self
    }

    /// Replaces the message (herodot's `WithError`: e.g. a JSON decoder's complaint).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Cow::Owned(message.into());
        self
    }

    /// 404 for a row that does not exist (Kratos' `sqlcon.ErrNoRows`).
    pub fn no_rows() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Unable to locate the resource")
    }

    /// The `DefaultError` object alone (no `error` wrapper), as batch results embed it.
    pub fn inner_body(&self) -> Json {
        self.body().get("error").cloned().unwrap_or(Json::Null)
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Json) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "The request was malformed or contained invalid parameters")
            .with_reason(reason)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "The request could not be authorized").with_reason(reason)
    }

    /// 404 Not Found.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "The requested resource could not be found").with_reason(reason)
    }

    /// 409 Conflict.
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "The resource could not be created due to a conflict").with_reason(reason)
    }

    /// 409 as Kratos' `sqlcon.ErrUniqueViolation` (no reason).
    pub fn unique_violation() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Unable to insert or update resource because a resource with that value exists already",
        )
    }

    /// 500: an internal failure; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal server error occurred, please contact the system administrator",
        )
    }

    /// A storage failure: 503 while the database is unreachable, else 500.
    pub fn store(e: crate::persistence::StoreError) -> Self {
        match e {
            crate::persistence::StoreError::Unavailable(_) => Self::unavailable(&e),
            other => Self::internal(&other),
        }
    }

    /// 503: a dependency (the database) is unavailable.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "service unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "The service is currently unavailable, please try again later")
    }

    /// The standard envelope for any status actix produced on its own (404, 405, 413, 415…).
    pub fn for_status(status: StatusCode) -> Self {
        let message = match status.as_u16() {
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
        };
        Self::new(status, message)
    }

    /// The JSON body.
    pub fn body(&self) -> Json {
        let mut error = Map::new();
        if let Some(id) = self.id {
            error.insert("id".into(), json!(id));
        }
        error.insert("code".into(), json!(self.status.as_u16()));
        error.insert("status".into(), json!(self.status.canonical_reason().unwrap_or("")));
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
        HttpResponse::build(self.status)
            .insert_header(("Ory-Error-Id", self.id.unwrap_or("")))
            .insert_header((header::CACHE_CONTROL, "private, no-cache, no-store, must-revalidate"))
            .json(self.body())
    }
}
