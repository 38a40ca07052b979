//! Self-service flows: login, registration and logout with the password and profile methods,
//! their hooks, CSRF protection, brute-force defence and stored errors. Flows live in
//! [`registry::FlowActor`]s; the rules are plain async functions over a [`flow::Flow`].

pub mod brute_force;
pub mod challenge;
pub mod codes;
pub mod csrf;
pub mod errors;
pub mod flow;
pub mod hooks;
pub mod login;
pub mod password;
pub mod recovery;
pub mod redirect;
pub mod registration;
pub mod registry;
pub mod settings;
pub mod ui;
pub mod verification;

use crate::catalogue as text;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{CsrfProblem, Error};
use crate::identity::IdentityService;
use crate::persistence::{Persister, Store};
use crate::schema::SchemaRegistry;
use crate::session::registry::Live;
use crate::session::{Device, SessionService};
use flow::{Flow, FlowKind, FlowType};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use uuid::Uuid;

/// Everything the flows use.
#[derive(Clone)]
pub struct SelfService {
    pub config: Arc<Config>,
    pub store: Store,
    pub persister: Persister,
    pub clock: Clock,
    pub schemas: SchemaRegistry,
    pub identities: IdentityService,
    pub sessions: SessionService,
    pub flows: registry::FlowRegistry,
    pub brute_force: brute_force::BruteForce,
    pub breaches: password::BreachChecker,
    pub hooks: hooks::HookRunner,
    pub courier: crate::courier::Courier,
    /// A hash of a random password in the configured format: unknown identifiers are checked
    /// against it so that they cost as much time as known ones.
    pub dummy_hash: Arc<String>,
}

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
    },
    /// Already signed in (browser): go here.
    SignedIn(String),
}

/// The flow shown again (400) with one flow-level message (other messages cleared).
pub fn flow_message(mut flow: Flow, message: text::Text, transient_payload: Option<Json>) -> (Flow, Outcome) {
    flow.ui.reset_messages();
    flow.ui.messages.push(message);
    (flow.clone(), Outcome::Form { flow, transient_payload })
}

/// The response to a failed CSRF check: 403 for browser flows, the flow with 4000001 for API
/// flows that carry browser signals.
pub fn csrf_outcome(flow: Flow, failure: CsrfFailure, transient_payload: Option<Json>) -> (Flow, Outcome) {
    match failure {
        CsrfFailure::Violation(e) => (flow, Outcome::Error(e)),
        CsrfFailure::ApiBrowserSignal(reason) => flow_message(flow, text::generic(reason), transient_payload),
    }
}

/// Where a browser goes after `flow` succeeded with `method` (the method's return URL, the
/// flow's, the global default; `return_to` if allowed), and the `continue_with` items of an SPA.
pub fn after_success(
    svc: &SelfService,
    after: &crate::config::AfterConfig,
    method: &str,
    flow: &Flow,
    info: &RequestInfo,
) -> Result<(String, Vec<Json>), Error> {
    let default =
        after.return_url_for(method).map(str::to_string).unwrap_or_else(|| redirect::default_return(&svc.config));
    let to = redirect::after_flow(&svc.config, flow.return_to.as_deref(), &flow.request_url, &default)
        .map_err(redirect::Forbidden::into_error)?;
    let mut continue_with = Vec::new();
    if flow.flow_type == FlowType::Browser && info.is_json {
        continue_with.push(json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
    }
    Ok((to, continue_with))
}

/// Checks an init request's `return_to` (if any) against the allow-list; returns it.
pub fn checked_return_to(svc: &SelfService, return_to: Option<&str>) -> Result<Option<String>, Error> {
    match return_to.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) => {
            let default = redirect::default_return(&svc.config);
            redirect::validate(&svc.config, r, &default).map(Some).map_err(redirect::Forbidden::into_error)
        }
    }
}

impl SelfService {
    /// A new flow of `kind` and `flow_type` for `request_url`, with an empty UI.
    pub fn new_flow(&self, kind: FlowKind, flow_type: FlowType, request_url: String, csrf: String) -> Flow {
        let now = self.clock.now();
        let flows = &self.config.selfservice.flows;
        let lifespan = match kind {
            FlowKind::Login => flows.login.lifespan.0,
            FlowKind::Registration => flows.registration.lifespan.0,
            FlowKind::Recovery => flows.recovery.lifespan.0,
            FlowKind::Verification => flows.verification.lifespan.0,
            FlowKind::Settings => flows.settings.lifespan.0,
        };
        let id = Uuid::new_v4();
        let action = format!("{}self-service/{}?flow={id}", self.config.public_base_url(), kind.as_str());
        Flow {
            id,
            kind,
            flow_type,
            state: flow::state::CHOOSE_METHOD.into(),
            return_to: redirect::return_to_of(&request_url),
            request_url,
            active: None,
            ui: ui::Container::new(action),
            csrf_token: if flow_type == FlowType::Browser { csrf } else { String::new() },
            issued_at: now,
            expires_at: now + chrono::Duration::from_std(lifespan).unwrap_or(chrono::Duration::hours(1)),
            created_at: now,
            updated_at: now,
            data: flow::FlowData::default(),
        }
    }

    /// The UI URL of a flow kind.
    pub fn ui_url(&self, kind: FlowKind) -> &str {
        let flows = &self.config.selfservice.flows;
        match kind {
            FlowKind::Login => &flows.login.ui_url,
            FlowKind::Registration => &flows.registration.ui_url,
            FlowKind::Recovery => &flows.recovery.ui_url,
            FlowKind::Verification => &flows.verification.ui_url,
            FlowKind::Settings => &flows.settings.ui_url,
        }
    }

    /// The CSRF check of a submit (behaviour.md §3.3): browser flows need the masked token in
    /// the body; API flows must not carry browser signals (`Err(Some(msg))` → 400 form).
    pub fn ensure_csrf(&self, flow: &Flow, info: &RequestInfo, body: &Json) -> Result<(), CsrfFailure> {
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
                match &info.csrf_cookie {
                    Some(real) if csrf::verify(real, sent) => Ok(()),
                    _ => Err(CsrfFailure::Violation(csrf_error(info, csrf_reject_reason(info, sent.is_empty())))),
                }
            }
        }
    }

    /// Persists an error container (the error's JSON, durable) and returns its id.
    pub async fn store_error(&self, error: Json) -> Result<Uuid, Error> {
        errors::store(self, error).await
    }
}

/// How a submit failed its CSRF check.
pub enum CsrfFailure {
    /// 403 `security_csrf_violation`.
    Violation(Error),
    /// An API flow with an `Origin` or cookie header: 400 form with 4000001 and this reason.
    ApiBrowserSignal(&'static str),
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

/// The deepest nesting a form field name (`a.b.c`) may ask for.
pub const MAX_FORM_DEPTH: usize = 32;

/// Converts a form-encoded body (`traits.email=…`) into the nested JSON a JSON body has.
/// Callers bound the depth with [`MAX_FORM_DEPTH`].
pub fn form_to_json(pairs: &[(String, String)]) -> Json {
    let mut root = serde_json::Map::new();
    for (key, value) in pairs {
        let parts: Vec<&str> = key.split('.').collect();
        insert_path(&mut root, &parts, Json::String(value.clone()));
    }
    Json::Object(root)
}

fn insert_path(obj: &mut serde_json::Map<String, Json>, parts: &[&str], value: Json) {
    let Some((first, rest)) = parts.split_first() else { return };
    if rest.is_empty() {
        // The first value of a repeated key wins.
        obj.entry(first.to_string()).or_insert(value);
        return;
    }
    let child = obj.entry(first.to_string()).or_insert_with(|| Json::Object(Default::default()));
    if !child.is_object() {
        *child = Json::Object(Default::default());
    }
    if let Json::Object(map) = child {
        insert_path(map, rest, value);
    }
}

/// Coerces form strings in `traits` to the JSON types the identity schema declares
/// (numbers, booleans), as Kratos' form decoder does.
pub fn coerce_traits(schema: &Json, traits: &mut Json) {
    fn walk(root: &Json, schema: &Json, value: &mut Json, depth: usize) {
        if depth > 16 {
            return;
        }
        let schema = match schema.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(schema),
            None => schema,
        };
        let kind = schema.get("type").and_then(|t| match t {
            Json::String(s) => Some(s.as_str()),
            Json::Array(a) => a.iter().filter_map(Json::as_str).find(|s| *s != "null"),
            _ => None,
        });
        match (kind, &mut *value) {
            (Some("object"), Json::Object(map)) => {
                if let Some(props) = schema.get("properties").and_then(Json::as_object) {
                    for (k, v) in map.iter_mut() {
                        if let Some(s) = props.get(k) {
                            walk(root, s, v, depth + 1);
                        }
                    }
                }
            }
            (Some("integer"), Json::String(s)) => {
                if let Ok(n) = s.trim().parse::<i64>() {
                    *value = json!(n);
                }
            }
            (Some("number"), Json::String(s)) => {
                if let Ok(n) = s.trim().parse::<f64>()
                    && let Some(num) = serde_json::Number::from_f64(n)
                {
                    *value = if n.fract() == 0.0 && n.abs() < 9.0e15 { json!(n as i64) } else { Json::Number(num) };
                }
            }
            (Some("boolean"), Json::String(s)) => match s.as_str() {
                "true" | "on" | "1" => *value = json!(true),
                "false" | "off" | "0" | "" => *value = json!(false),
                _ => {}
            },
            _ => {}
        }
    }
    if let Some(traits_schema) = schema.pointer("/properties/traits") {
        walk(schema, traits_schema, traits, 0);
    }
}

/// Removes empty-string trait values from a form submit (an empty optional field is absent).
pub fn drop_empty_strings(traits: &mut Json) {
    if let Json::Object(map) = traits {
        map.retain(|_, v| !matches!(v, Json::String(s) if s.is_empty()));
        for v in map.values_mut() {
            drop_empty_strings(v);
        }
    }
}
