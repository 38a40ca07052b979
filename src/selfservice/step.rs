//! What a flow step receives ([`RequestInfo`]: the request as the flows need to know it) and
//! what it answers ([`Outcome`]), plus the CSRF check every browser-flow submit passes
//! (behaviour.md §3.3). The HTTP layer turns requests into these and outcomes into answers.

use super::csrf;
use super::flow::{Flow, FlowType};
use crate::catalogue::{self as text, Text};
use crate::error::{CsrfProblem, Error};
use crate::session::Device;
use crate::session::registry::Live;
use serde_json::Value as Json;
use std::sync::Arc;

/// What a flow step needs to know about the HTTP request (owned: it crosses to the actor).
#[derive(Clone)]
pub struct RequestInfo {
    /// Kratos' `IsJSONRequest`.
    pub is_json: bool,
    /// Kratos' `IsBrowserRequest`.
    pub is_browser: bool,
    /// The real token from the CSRF cookie.
    pub csrf_cookie: Option<String>,
    /// The request had a `Cookie` header at all.
    pub has_cookie_header: bool,
    /// The body is JSON (`Content-Type: application/json…`).
    pub json_body: bool,
    /// The request carried a cookie other than Cloudflare's (forbidden on API flows).
    pub has_foreign_cookie: bool,
    /// The request carried an `Origin` header (forbidden on API flows).
    pub has_origin: bool,
    /// `Sec-Fetch-Mode` says the request came from script (for the CSRF hint).
    pub ajax: bool,
    /// The caller's active session, if any, and the token it was presented with.
    pub session: Option<Arc<Live>>,
    pub session_token: Option<String>,
    pub device: Device,
    pub client_ip: Option<String>,
    /// The full request URL (as the client addressed it).
    pub url: String,
    /// Request headers for web hooks (name, value).
    pub headers: Vec<(String, String)>,
    pub method: String,
    pub cookies: Vec<(String, String)>,
}

impl RequestInfo {
    /// An HTML browser (not JSON) talking to a browser flow: it is sent on with redirects.
    pub fn html_for(&self, flow_type: FlowType) -> bool {
        flow_type == FlowType::Browser && !self.is_json
    }

    /// The submit came with `GET` (credentials would end up in URLs and logs).
    pub fn is_get(&self) -> bool {
        self.method == "GET"
    }
}

/// What a flow step answers; the HTTP layer turns it into JSON or a browser redirect.
pub enum Outcome {
    /// The flow again, with problems or as an intermediate step (400 for JSON clients);
    /// browsers are sent to the flow's UI.
    Form { flow: Flow, transient_payload: Option<Json> },
    /// The flow is done: a session was issued (or, registration without session hook, only
    /// an identity created).
    Done(Box<Done>),
    /// Send the browser on (303).
    Redirect(String),
    /// A browser that is signed in already is sent away (302).
    SignedIn(String),
    /// The flow expired: a replacement was created.
    Expired { new_flow: Flow, error: Error },
    /// An error: JSON envelope, or (browser) a stored error shown by the error UI.
    Error(Error),
    /// Recovery, verification and settings: the flow as JSON (`ok`: 200, else 400), or
    /// (`to_ui`) the browser sent to the flow's UI — the step decides, as those flows
    /// negotiate differently.
    Show { flow: Flow, ok: bool, to_ui: bool, transient_payload: Option<Json> },
    /// JSON clients (and API flows) get `error`; browsers are sent to `redirect` (303).
    ErrorOrRedirect { error: Error, redirect: String },
    /// `inner`, after which the browser holds a new CSRF token and/or this session.
    WithCookies { csrf: Option<String>, session: Option<Box<(crate::session::Session, String)>>, inner: Box<Outcome> },
    /// `inner`, after which the browser holds this continuity cookie (sealed): the provider
    /// callback must come back to the browser that left for the provider.
    WithContinuity { value: String, inner: Box<Outcome> },
    /// A provider sign-in that belongs to the other flow kind: the flows switch (resolved
    /// before the answer is rendered; see `flow::dispatch`).
    Switch(Box<Switch>),
}

/// A provider account on the wrong kind of flow (Kratos switches flows for it).
pub enum Switch {
    /// Sign-in with a provider account no identity has: it registers in a new registration
    /// flow, with `identity` as the provider's claims made it.
    ToRegistration { identity: Box<crate::identity::Identity>, provider: String },
    /// Registration with a provider account an identity has: it signs in in a new login flow.
    ToLogin { identity: Box<crate::identity::Identity>, provider: String },
}

/// A finished login or registration.
pub struct Done {
    pub flow: Flow,
    pub identity: crate::identity::Identity,
    /// The session and its clear-text token, when one was issued.
    pub session: Option<(crate::session::Session, String)>,
    /// Whether the session cookie is set (browser flows with a session).
    pub set_cookie: bool,
    /// Whether the session (and token) appear in the response body.
    pub expose_session: bool,
    pub continue_with: Vec<Json>,
    /// Browser redirect target.
    pub redirect: String,
    /// A CSRF token to set (a verification flow created on the way regenerated it).
    pub new_csrf: Option<String>,
}

/// What creating a login or registration flow gives.
pub enum Init {
    Created {
        flow: Box<Flow>,
        exchange_code: Option<String>,
        /// The OAuth2 provider's login request (`oauth2_login_request`), fetched for this answer.
        oauth2_login_request: Option<Json>,
    },
    /// Already signed in (browser): go here (303).
    SignedIn(String),
    /// Go here (302): a registration the OAuth2 provider wants re-authenticated goes to login.
    Found(String),
}

/// A step's result: the flow as it is now, and the answer.
pub type Stepped = (Flow, Outcome);

/// The flow shown again (400) with one flow-level message (other messages cleared).
pub fn flow_message(mut flow: Flow, message: Text, transient_payload: Option<Json>) -> Stepped {
    flow.ui.reset_messages();
    flow.ui.messages.push(message);
    (flow.clone(), Outcome::Form { flow, transient_payload })
}

/// How a submit failed its CSRF check.
pub enum CsrfFailure {
    /// 403 `security_csrf_violation`.
    Violation(Error),
    /// An API flow with an `Origin` or cookie header: 400 form with 4000001 and this reason.
    ApiBrowserSignal(&'static str),
}

/// The CSRF check of a submit (behaviour.md §3.3): browser flows need the masked token in
/// the body; API flows must not carry browser signals.
pub fn check_csrf(flow: &Flow, info: &RequestInfo, body: &Json) -> Result<(), CsrfFailure> {
    match flow.flow_type {
        FlowType::Api => {
            if info.has_origin {
                return Err(CsrfFailure::ApiBrowserSignal(text::error::API_FLOW_ORIGIN));
            }
            if info.has_foreign_cookie {
                return Err(CsrfFailure::ApiBrowserSignal(text::error::API_FLOW_COOKIE));
            }
            Ok(())
        }
        FlowType::Browser => {
            let sent = body.get("csrf_token").and_then(Json::as_str).unwrap_or_default();
            check_form_csrf(info, sent).map(|_| ()).map_err(CsrfFailure::Violation)
        }
    }
}

/// The CSRF check of a browser form outside a flow (the masked token `sent` against the
/// CSRF cookie): the cookie's real token, or `security_csrf_violation`.
pub fn check_form_csrf(info: &RequestInfo, sent: &str) -> Result<String, Error> {
    match &info.csrf_cookie {
        Some(real) if csrf::verify(real, sent) => Ok(real.clone()),
        _ => Err(csrf_error(info, csrf_reject_reason(info, sent.is_empty()))),
    }
}

/// The response to a failed CSRF check: 403 for browser flows, the flow with 4000001 for API
/// flows that carry browser signals.
pub fn csrf_outcome(flow: Flow, failure: CsrfFailure, transient_payload: Option<Json>) -> Stepped {
    match failure {
        CsrfFailure::Violation(e) => (flow, Outcome::Error(e)),
        CsrfFailure::ApiBrowserSignal(reason) => flow_message(flow, text::generic(reason), transient_payload),
    }
}

/// Why a CSRF check failed (`None`: the cookie is there but no token was sent in a form).
pub fn csrf_reject_reason(info: &RequestInfo, token_missing: bool) -> Option<&'static str> {
    if !info.has_cookie_header {
        Some(text::error::CSRF_NO_COOKIE_HEADER)
    } else if info.csrf_cookie.is_none() {
        Some(text::error::CSRF_NO_CSRF_COOKIE)
    } else if token_missing && !info.json_body {
        None
    } else {
        Some(text::error::CSRF_MISMATCH)
    }
}

/// `security_csrf_violation` for this request.
pub fn csrf_error(info: &RequestInfo, reject_reason: Option<&'static str>) -> Error {
    Error::Csrf(CsrfProblem { reject_reason, ajax: info.ajax })
}

/// Recovery, verification and settings: the flow (`ok`: 200, else 400), or the browser sent
/// to its UI (`to_ui`).
pub fn show(flow: Flow, ok: bool, to_ui: bool) -> Stepped {
    (flow.clone(), Outcome::Show { flow, ok, to_ui, transient_payload: None })
}
