//! Error policy (one place):
//! * `anyhow` for work outside a request (start-up, CLI);
//! * [`crate::persistence::StoreError`] and [`crate::persistence::WriteError`] in storage code,
//!   `ConfigError`/`SchemaError` for start-up checks;
//! * [`Error`] in the domain layers (identity, session, courier, self-service): each variant
//!   says what went wrong in the domain's words and carries what an answer needs (a reason, a
//!   redirect target, a replacement flow), never an HTTP status;
//! * `http::error` maps an [`Error`] to exactly one answer: the `errorGeneric` envelope with
//!   its status, or (for browsers) a redirect. Stable ids and texts come from
//!   [`crate::catalogue`].

use crate::persistence::{StoreError, WriteError};
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use uuid::Uuid;

/// Which flow an error is about, where the answer differs per flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowName {
    Login,
    Registration,
    Recovery,
    Verification,
    Settings,
}

impl FlowName {
    /// The path segment (`login`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowName::Login => "login",
            FlowName::Registration => "registration",
            FlowName::Recovery => "recovery",
            FlowName::Verification => "verification",
            FlowName::Settings => "settings",
        }
    }
}

/// Why a browser flow failed its CSRF check (`reject_reason`; `None`: the cookie is there
/// but the form carried no token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrfProblem {
    pub reject_reason: Option<&'static str>,
    /// The request came from script (`Sec-Fetch-Mode: cors|same-origin`): the hint differs.
    pub ajax: bool,
}

/// A failure of the domain layers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request cannot be accepted; the reason says why.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A value could not be decoded: the decoder's complaint replaces the standard message.
    #[error("malformed request: {message}")]
    Malformed { message: String, reason: Option<String> },
    /// A flow must be started again; `continue_with` points at the new flow.
    #[error("retry the flow: {reason}")]
    RetryFlow { reason: String, continue_with: Vec<Json> },
    /// A `return_to` outside the allow-list.
    #[error("return_to {0:?} is not allowed")]
    ReturnToForbidden(String),
    /// A session exists already, so this flow makes no sense.
    #[error("a session exists already ({})", .0.as_str())]
    AlreadySignedIn(FlowName),
    /// The flow kind is disabled by configuration.
    #[error("the {} flow is disabled", .0.as_str())]
    FlowDisabled(FlowName),
    /// An admin endpoint whose method is disabled.
    #[error("the endpoint is disabled")]
    EndpointDisabled,
    /// No such resource: `None` is a missing row (no reason), `Some` says what is missing.
    #[error("not found")]
    NotFound(Option<String>),
    /// The resource conflicts with an existing one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A unique value (an identifier) is taken.
    #[error("a unique value is taken")]
    UniqueViolation,
    /// The record was changed by another request after this one read it.
    #[error("changed by another request")]
    Stale,
    /// No usable session; `named` answers with the `session_inactive` id.
    #[error("no active session")]
    NoSession { named: bool },
    /// A settings flow read or submitted without any session.
    #[error("a session is required")]
    SessionRequired,
    /// The identity is disabled and may not sign in.
    #[error("the identity is disabled")]
    IdentityDisabled,
    /// A higher AAL was asked for without a session.
    #[error("aal1 session required")]
    Aal1Required,
    /// The session's AAL is below what is required; sign in with a second factor here.
    #[error("aal2 required")]
    Aal2Required { redirect: String },
    /// A browser flow without the right CSRF token.
    #[error("CSRF violation")]
    Csrf(CsrfProblem),
    /// The flow belongs to another identity.
    #[error("the flow belongs to another identity")]
    IdentityMismatch,
    /// The change needs a recent sign-in; re-authenticate here.
    #[error("a privileged session is required")]
    RefreshRequired { redirect: String },
    /// Sign-in needs a verified address; `continue_with` offers a verification flow.
    #[error("a verified address is required")]
    VerifiedAddressRequired { continue_with: Option<Json> },
    /// Anything else the caller may not do; the reason says what.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A flow submitted after it expired; `replacement` was created in its place.
    #[error("the flow expired")]
    FlowExpired { expired_at: DateTime<Utc>, now: DateTime<Utc>, replacement: Option<Uuid>, continue_with: Vec<Json> },
    /// An expired flow was fetched: start a new one (`named` answers with the id).
    #[error("the {} flow expired", .flow.as_str())]
    FlowGone { flow: FlowName, api: bool, named: bool, restart: String, return_to: Option<String> },
    /// The flow had to start over; `replacement` is the new one.
    #[error("the flow was replaced: {reason}")]
    FlowReplaced { replacement: Uuid, reason: String },
    /// The next step needs a full browser navigation to `to`.
    #[error("browser location change required")]
    LocationChangeRequired { to: String },
    /// The configuration does not allow this.
    #[error("invalid configuration: {0}")]
    Misconfigured(String),
    /// A web hook did not answer in time.
    #[error("the web hook timed out")]
    UpstreamTimeout,
    /// A web hook failed; the reason says how.
    #[error("the web hook failed: {0}")]
    Upstream(String),
    /// A failure inside tessera; the cause is logged, never sent.
    /// The OAuth2 provider (Hydra) failed (`server`: 500, else 400); `status_code` and `hint`
    /// come from its answer, when there was one.
    #[error("OAuth2 provider: {reason}")]
    OAuth2Provider { server: bool, reason: String, status_code: Option<u16>, hint: Option<String> },

    #[error("internal error: {0}")]
    Internal(String),
    /// A dependency (the database) is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// An internal failure; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Error {
        Error::Internal(cause.to_string())
    }

    /// A missing row (Kratos' `sqlcon.ErrNoRows`).
    pub fn no_rows() -> Error {
        Error::NotFound(None)
    }

    /// Not found, saying what.
    pub fn not_found(reason: impl Into<String>) -> Error {
        Error::NotFound(Some(reason.into()))
    }

    /// The request is invalid, saying why.
    pub fn invalid(reason: impl Into<String>) -> Error {
        Error::Invalid(reason.into())
    }
}

impl From<StoreError> for Error {
    /// 503 while the database is unreachable, else an internal failure.
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Unavailable(_) => Error::Unavailable(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<crate::hash::HashError> for Error {
    /// A hash that could not be computed: no worker free in time is 503, anything else 500.
    fn from(e: crate::hash::HashError) -> Error {
        match e {
            crate::hash::HashError::Busy => Error::Unavailable(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<WriteError> for Error {
    /// A refused durable write: a taken unique value, data the database refuses, a row that
    /// is gone, or a Persister that is shutting down.
    fn from(e: WriteError) -> Error {
        match e {
            WriteError::Conflict(_) => Error::UniqueViolation,
            WriteError::Rejected(reason) => Error::Internal(reason),
            WriteError::NotFound => Error::NotFound(None),
            WriteError::Stale => Error::Stale,
            WriteError::Timeout => {
                Error::Unavailable("the write did not commit within persistence.write_timeout".into())
            }
            WriteError::Stopped => Error::Unavailable("the persister is shutting down".into()),
        }
    }
}

/// The domain's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
