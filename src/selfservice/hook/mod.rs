//! Hooks (behaviour.md §17): `session`, `revoke_active_sessions`, `require_verified_address`,
//! `show_verification_ui` and `web_hook`, configured before and after flows, globally and per
//! method (a method's own after-hooks replace the global list). Hooks get what they call from
//! their caller (the session service at construction, a [`VerificationStarter`] per run);
//! they import no flow.

use super::flow::{Flow, FlowKind, FlowType};
use super::step::{Outcome, RequestInfo};
use crate::catalogue::error as reasons;
use crate::catalogue::{Text, TextType};
use crate::config::{Config, HookConfig};
use crate::error::Error;
use crate::identity::{Identity, VerifiableAddress};
use crate::session::{Session, SessionService};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;
use std::time::Duration;

/// Starts a verification flow for one address and sends its message; returns the flow and its
/// `show_verification_ui` item. The verification flow implements it; hooks only call it.
#[async_trait::async_trait(?Send)]
pub trait VerificationStarter {
    async fn start(
        &self,
        flow_type: FlowType,
        info: &RequestInfo,
        address: &VerifiableAddress,
        return_to: Option<String>,
        keep_csrf: bool,
    ) -> Result<(Flow, Json), Error>;
}

/// Before or after a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Before,
    After,
}

/// Where hooks run.
#[derive(Debug, Clone, Copy)]
pub struct HookPoint<'a> {
    pub kind: FlowKind,
    pub stage: Stage,
    pub method: &'a str,
}

/// Why a hook stopped the flow.
#[derive(Debug)]
pub enum HookError {
    /// A web hook answered with UI messages (`can_interrupt` / `parse`): the flow is shown again.
    Messages(Vec<(String, Text)>),
    /// Any other failure.
    Api(Error),
    /// `require_verified_address`: JSON clients get the error, browsers go to `redirect`.
    Verify { error: Error, redirect: String },
}

impl From<Error> for HookError {
    fn from(e: Error) -> Self {
        HookError::Api(e)
    }
}

impl HookError {
    /// The response for a flow whose hook failed.
    pub fn into_outcome(self, mut flow: Flow, transient_payload: Option<Json>) -> Outcome {
        match self {
            HookError::Messages(messages) => {
                flow.ui.reset_messages();
                for (field, text) in messages {
                    flow.ui.add_field_message(&field, text);
                }
                Outcome::Form { flow, transient_payload }
            }
            HookError::Api(e) => Outcome::Error(e),
            HookError::Verify { error, redirect } => Outcome::ErrorOrRedirect { error, redirect },
        }
    }
}

/// Runs hooks; holds the web-hook HTTP client.
#[derive(Clone)]
pub struct HookRunner {
    outbound: crate::net::Outbound,
    config: Arc<Config>,
    sessions: SessionService,
}

impl HookRunner {
    /// Hooks as `config` sets them; `revoke_active_sessions` revokes through `sessions`.
    pub fn new(config: Arc<Config>, sessions: SessionService) -> HookRunner {
        let outbound = crate::net::Outbound::new(&config.clients, Duration::from_secs(10));
        HookRunner { outbound, config, sessions }
    }
}

/// The after-hooks configured for a flow kind and method.
pub fn after_hooks<'a>(config: &'a Config, kind: FlowKind, method: &str) -> &'a [HookConfig] {
    let flows = &config.selfservice.flows;
    match kind {
        FlowKind::Login => flows.login.after.hooks_for(method),
        FlowKind::Registration => flows.registration.after.hooks_for(method),
        FlowKind::Recovery => flows.recovery.after.hooks_for(method),
        FlowKind::Verification => flows.verification.after.hooks_for(method),
        FlowKind::Settings => flows.settings.after.hooks_for(method),
    }
}

fn is_pre_persist(h: &HookConfig) -> bool {
    h.hook == "web_hook"
        && h.config.as_ref().is_some_and(|c| {
            c.get("can_interrupt").and_then(Json::as_bool) == Some(true)
                || c.pointer("/response/parse").and_then(Json::as_bool) == Some(true)
        })
}

impl HookRunner {
    /// Before-hooks of a flow kind (run while the flow is created; a failure aborts creation).
    pub async fn run_before(&self, kind: FlowKind, flow: &Flow, info: &RequestInfo) -> Result<(), Error> {
        let flows = &self.config.selfservice.flows;
        let hooks: &[HookConfig] = match kind {
            FlowKind::Login => &flows.login.before.hooks,
            FlowKind::Registration => &flows.registration.before.hooks,
            FlowKind::Recovery => &flows.recovery.before.hooks,
            FlowKind::Verification => &flows.verification.before.hooks,
            FlowKind::Settings => &flows.settings.before.hooks,
        };
        for h in hooks {
            if h.hook == "web_hook" {
                let ctx = self.context(flow, info, None, None, None);
                match self.web_hook(h.config.as_ref(), ctx).await {
                    Ok(_) => {}
                    Err(HookError::Api(e) | HookError::Verify { error: e, .. }) => return Err(e),
                    Err(HookError::Messages(m)) => {
                        let reason =
                            m.first().map_or_else(|| "a web hook refused the request".into(), |(_, t)| t.text.clone());
                        return Err(Error::Invalid(reason));
                    }
                }
            }
        }
        Ok(())
    }

    /// After-hooks of a login, or the post-persist hooks of a registration (`session` is
    /// handled by the registration itself). `verification` starts the flow that
    /// `require_verified_address` offers.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_after(
        &self,
        point: HookPoint<'_>,
        flow: &mut Flow,
        info: &RequestInfo,
        identity: &Identity,
        session: Option<&Session>,
        transient_payload: Option<&Json>,
        verification: &dyn VerificationStarter,
    ) -> Result<(), HookError> {
        for h in after_hooks(&self.config, point.kind, point.method) {
            match h.hook.as_str() {
                "revoke_active_sessions" => {
                    self.sessions.revoke_all_of(identity.id, session.map(|s| s.id)).await?;
                }
                "require_verified_address"
                    if point.kind == FlowKind::Login && identity.verifiable_addresses.is_empty() =>
                {
                    return Err(HookError::Api(Error::Misconfigured(reasons::NO_VERIFIABLE_ADDRESS.into())));
                }
                "require_verified_address"
                    if point.kind == FlowKind::Login && !identity.verifiable_addresses.iter().any(|a| a.verified) =>
                {
                    let error = Error::VerifiedAddressRequired { continue_with: None };
                    // A verification flow for the first address, its message sent, offered
                    // to the client.
                    let address = identity.verifiable_addresses.iter().find(|a| !a.value.is_empty());
                    if let (true, Some(address)) = (self.config.selfservice.flows.verification.enabled, address) {
                        let started =
                            verification.start(flow.flow_type, info, address, flow.return_to.clone(), true).await;
                        let (vflow, mut item) = match started {
                            Ok(v) => v,
                            Err(e) => {
                                tracing::warn!(error = %e, "require_verified_address: no verification flow");
                                return Err(HookError::Api(error));
                            }
                        };
                        let url = super::redirect::with_query(
                            super::flow::ui_url(&self.config, FlowKind::Verification),
                            "flow",
                            &vflow.id.to_string(),
                        );
                        if let Some(f) = item.get_mut("flow").and_then(Json::as_object_mut) {
                            f.insert("url".into(), json!(url));
                        }
                        let error = Error::VerifiedAddressRequired { continue_with: Some(item) };
                        return Err(HookError::Verify { error, redirect: url });
                    }
                    return Err(HookError::Api(error));
                }
                "web_hook"
                    if matches!(point.kind, FlowKind::Registration | FlowKind::Settings) && is_pre_persist(h) =>
                {
                    // Ran before the identity was written.
                }
                "web_hook" => {
                    let ctx = self.context(flow, info, Some(identity), session, transient_payload);
                    self.web_hook(h.config.as_ref(), ctx).await?;
                }
                // `session` (registration) and `show_verification_ui` are applied by the flow;
                // unknown names are ignored, as Kratos does.
                _ => {}
            }
        }
        Ok(())
    }

    /// Registration's and settings' pre-persist web hooks (`can_interrupt` or
    /// `response.parse`, read only from `after.<method>.hooks`, as Kratos): they may refuse the
    /// change or alter the identity before it is written.
    pub async fn run_pre_persist(
        &self,
        kind: FlowKind,
        method: &str,
        flow: &Flow,
        info: &RequestInfo,
        identity: &mut Identity,
        transient_payload: Option<&Json>,
    ) -> Result<(), HookError> {
        let flows = &self.config.selfservice.flows;
        let per_method = match kind {
            FlowKind::Registration => flows.registration.after.method(method),
            FlowKind::Settings => flows.settings.after.method(method),
            _ => None,
        };
        let hooks = per_method.map(|m| m.hooks.as_slice()).unwrap_or(&[]);
        for h in hooks.iter().filter(|h| is_pre_persist(h)) {
            let ctx = self.context(flow, info, Some(identity), None, transient_payload);
            if let Some(patch) = self.web_hook(h.config.as_ref(), ctx).await? {
                apply_identity_patch(identity, &patch)?;
            }
        }
        Ok(())
    }

    fn context(
        &self,
        flow: &Flow,
        info: &RequestInfo,
        identity: Option<&Identity>,
        session: Option<&Session>,
        transient_payload: Option<&Json>,
    ) -> Json {
        let mut headers = Map::new();
        for (k, v) in &info.headers {
            if self.config.clients.web_hook.header_allowlist.iter().any(|a| a.eq_ignore_ascii_case(k)) {
                let canonical = canonical_header(k);
                let entry = headers.entry(canonical).or_insert_with(|| json!([]));
                if let Some(a) = entry.as_array_mut() {
                    a.push(json!(v));
                }
            }
        }
        let cookies: Map<String, Json> = info.cookies.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut ctx = Map::new();
        ctx.insert("flow".into(), flow.render(None, transient_payload));
        ctx.insert("request_headers".into(), Json::Object(headers));
        ctx.insert("request_method".into(), json!(info.method));
        ctx.insert("request_url".into(), json!(info.url));
        ctx.insert("request_cookies".into(), Json::Object(cookies));
        if let Some(i) = identity {
            ctx.insert(
                "identity".into(),
                crate::identity::view::render(
                    i,
                    "",
                    crate::identity::view::CredentialsView::Hidden,
                    crate::identity::view::AdminMetadata::Show,
                ),
            );
        }
        if let Some(s) = session {
            ctx.insert("session".into(), crate::session::view::render_session(s, None, true, s.issued_at));
        }
        Json::Object(ctx)
    }

    /// The HTTP request of a web hook (or the password-migration hook) `config`: method, URL,
    /// headers, auth, the body (JSON, or form-encoded when the headers say so) and, unless
    /// `emit_analytics_event = false`, Kratos' `Ory-Webhook-Request-ID` / `Ory-Webhook-Trigger-ID`.
    fn request(&self, config: &Json, method: &str, body: Option<Json>) -> Result<reqwest::RequestBuilder, HookError> {
        let invalid = |reason: &str| HookError::Api(Error::Misconfigured(reason.to_string()));
        let url = config.get("url").and_then(Json::as_str).ok_or_else(|| invalid("a web_hook has no url"))?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| invalid("invalid web hook method"))?;
        let client = self.outbound.client_for(url).map_err(|e| {
            tracing::warn!(error = %e, "web hook refused");
            HookError::Api(Error::Upstream(reasons::UPSTREAM_UNREACHABLE.into()))
        })?;
        let mut req = client.request(method.clone(), url);
        let mut form = false;
        if let Some(h) = config.get("headers").and_then(Json::as_object) {
            for (k, v) in h {
                if let Some(v) = v.as_str() {
                    form |=
                        k.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded");
                    req = req.header(k.as_str(), v);
                }
            }
        }
        if config.get("emit_analytics_event").and_then(Json::as_bool) != Some(false) {
            req = req
                .header("Ory-Webhook-Request-ID", uuid::Uuid::new_v4().to_string())
                .header("Ory-Webhook-Trigger-ID", uuid::Uuid::new_v4().to_string());
        }
        if let Some(auth) = config.get("auth") {
            let c = auth.get("config").cloned().unwrap_or(Json::Null);
            let s = |k: &str| c.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
            match auth.get("type").and_then(Json::as_str) {
                Some("basic_auth") => req = req.basic_auth(s("user"), Some(s("password"))),
                Some("api_key") if s("in") == "cookie" => {
                    req = req.header("Cookie", format!("{}={}", s("name"), s("value")))
                }
                Some("api_key") => req = req.header(s("name"), s("value")),
                _ => {}
            }
        }
        if method != reqwest::Method::TRACE
            && let Some(b) = body
        {
            req = if form {
                if !b.as_object().is_some_and(|o| o.values().all(Json::is_string)) {
                    return Err(invalid("a form-encoded web hook body must be an object of strings"));
                }
                req.form(&b)
            } else {
                req.json(&b)
            };
        }
        Ok(req)
    }

    /// A body template, from `base64://`, `file://` or (through the guarded client) `http(s)://`.
    async fn load_template(&self, url: &str) -> Result<String, String> {
        let client = self.outbound.client_for(url).map_err(|e| e.to_string())?;
        crate::jsonnet::load(url, client).await
    }

    /// The password-migration hook (`selfservice.methods.password.config.migrate_hook`) for an
    /// imported identity without a hash: `Ok(true)` when the remote system says the password
    /// matches (`200 {"status":"password_match"}`), `Ok(false)` for any other 200 or a 403;
    /// unreachable or another status: 502.
    pub async fn password_migration(
        &self,
        flow: &Flow,
        info: &RequestInfo,
        identity: &Identity,
        identifier: &str,
        password: &str,
    ) -> Result<bool, Error> {
        let hook = &self.config.selfservice.methods.password.config.migrate_hook;
        if !hook.enabled {
            return Err(Error::Misconfigured(
                "Password migration hook is not enabled but password migration is requested.".into(),
            ));
        }
        let config = hook.config.clone().unwrap_or(Json::Null);
        let method = config.get("method").and_then(Json::as_str).unwrap_or("POST").to_ascii_uppercase();
        let body = match config.get("body").and_then(Json::as_str).filter(|b| !b.is_empty()) {
            None => json!({ "identifier": identifier, "password": password }),
            Some(template_url) => {
                let template = self.load_template(template_url).await.map_err(|e| {
                    tracing::error!(error = %e, "password migration body template could not be loaded");
                    Error::Misconfigured("The password migration hook body template could not be loaded.".into())
                })?;
                let mut ctx = self.context(flow, info, Some(identity), None, None);
                if let Some(o) = ctx.as_object_mut() {
                    o.insert("identifier".into(), json!(identifier));
                    o.insert("password".into(), json!(password));
                }
                match crate::jsonnet::render(template, ctx).await {
                    Ok(Some(b)) => b,
                    Ok(None) => return Ok(false),
                    Err(e) => {
                        tracing::error!(error = %e, "password migration body template failed");
                        return Err(Error::Misconfigured(
                            "The password migration hook body template failed to render.".into(),
                        ));
                    }
                }
            }
        };
        let req = self.request(&config, &method, Some(body)).map_err(|e| match e {
            HookError::Api(e) => e,
            _ => Error::Misconfigured("invalid password migration hook".into()),
        })?;
        let res = req.send().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "password migration hook unreachable");
            Error::Upstream(reasons::MIGRATION_HOOK_UNREACHABLE.into())
        })?;
        match res.status().as_u16() {
            200 => {
                let answer = read_limited(res).await;
                let status = serde_json::from_str::<Json>(answer.get(..1024).unwrap_or(&answer))
                    .ok()
                    .and_then(|v| v.get("status").and_then(Json::as_str).map(str::to_string));
                Ok(status.as_deref() == Some("password_match"))
            }
            403 => Ok(false),
            other => {
                tracing::warn!(status = other, "password migration hook answered an unexpected status");
                Err(Error::Upstream(reasons::MIGRATION_HOOK_IMPROPER.into()))
            }
        }
    }

    /// Calls one web hook. `Ok(Some(identity))` when `response.parse` returned identity changes.
    async fn web_hook(&self, config: Option<&Json>, ctx: Json) -> Result<Option<Json>, HookError> {
        let invalid = |reason: &str| HookError::Api(Error::Misconfigured(reason.to_string()));
        let Some(config) = config else { return Err(invalid("a web_hook has no config")) };
        if config.get("url").and_then(Json::as_str).is_none() {
            return Err(invalid("a web_hook has no url"));
        }
        let method = config.get("method").and_then(Json::as_str).unwrap_or("POST").to_ascii_uppercase();
        let can_interrupt = config.get("can_interrupt").and_then(Json::as_bool).unwrap_or(false);
        let parse = config.pointer("/response/parse").and_then(Json::as_bool).unwrap_or(false);
        let ignore = config.pointer("/response/ignore").and_then(Json::as_bool).unwrap_or(false);
        if ignore && (parse || can_interrupt) {
            return Err(invalid(
                "A web hook can not be configured to both ignore the response and parse it or interrupt the flow.",
            ));
        }
        let body = match config.get("body").and_then(Json::as_str) {
            Some(template_url) => {
                // Template problems are logged in full but answered with a fixed reason: a
                // template URL or path may carry secrets.
                let template = self.load_template(template_url).await.map_err(|e| {
                    tracing::error!(error = %e, "web hook body template could not be loaded");
                    invalid("The web hook body template could not be loaded.")
                })?;
                match crate::jsonnet::render(template, ctx).await {
                    Ok(Some(b)) => Some(b),
                    // `error "cancel"`: skip the call.
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        tracing::error!(error = %e, "web hook body template failed");
                        return Err(invalid("The web hook body template failed to render."));
                    }
                }
            }
            None if method.eq_ignore_ascii_case("TRACE") => None,
            None => return Err(invalid("A web hook needs a body template (`body`).")),
        };
        let req = self.request(config, &method, body)?;
        if ignore {
            tokio::spawn(async move {
                if let Err(e) = req.timeout(Duration::from_secs(30)).send().await {
                    tracing::warn!(error = %e.without_url(), "asynchronous web hook failed");
                }
            });
            return Ok(None);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                HookError::Api(Error::UpstreamTimeout)
            } else {
                HookError::Api(Error::Upstream(reasons::UPSTREAM_UNREACHABLE.into()))
            }
        })?;
        let status = res.status();
        let text = read_limited(res).await;
        if status.as_u16() >= 400 {
            if can_interrupt || parse {
                return Err(parse_messages(&text));
            }
            return Err(HookError::Api(Error::Upstream(reasons::upstream_status(status.as_u16()))));
        }
        if parse && status.as_u16() != 204 {
            let v: Json = serde_json::from_str(&text)
                .map_err(|_| HookError::Api(Error::Upstream(reasons::UPSTREAM_UNPARSABLE.into())))?;
            return Ok(v.get("identity").cloned());
        }
        Ok(None)
    }
}

/// Reads at most 5 MiB of a response body (as Kratos); the rest is ignored.
async fn read_limited(mut res: reqwest::Response) -> String {
    const LIMIT: usize = 5 << 20;
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= LIMIT {
            body.truncate(LIMIT);
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A refusing web hook's `{"messages":[{"instance_ptr","messages":[uiText]}]}`.
fn parse_messages(body: &str) -> HookError {
    let generic = || HookError::Api(Error::Upstream(reasons::UPSTREAM_REFUSED_UNPARSABLE.into()));
    let Ok(v) = serde_json::from_str::<Json>(body) else { return generic() };
    let Some(groups) = v.get("messages").and_then(Json::as_array) else { return generic() };
    let mut out = Vec::new();
    for g in groups {
        let ptr = g.get("instance_ptr").and_then(Json::as_str).unwrap_or("#/");
        let field = crate::schema::pointer_to_field(ptr.trim_start_matches('#'));
        for m in g.get("messages").and_then(Json::as_array).into_iter().flatten() {
            let kind = match m.get("type").and_then(Json::as_str) {
                Some("error") => TextType::Error,
                _ => TextType::Info,
            };
            out.push((
                field.clone(),
                Text {
                    id: m.get("id").and_then(Json::as_u64).and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                    text: m.get("text").and_then(Json::as_str).unwrap_or_default().to_string(),
                    kind,
                    context: m.get("context").cloned().filter(|c| !c.is_null()),
                },
            ));
        }
    }
    if out.is_empty() { generic() } else { HookError::Messages(out) }
}

/// Applies a parsing web hook's `identity` object to the identity being created.
fn apply_identity_patch(identity: &mut Identity, patch: &Json) -> Result<(), HookError> {
    let Some(p) = patch.as_object() else { return Ok(()) };
    if let Some(t) = p.get("traits").filter(|t| t.is_object()) {
        identity.traits = t.clone();
    }
    if let Some(s) = p.get("schema_id").and_then(Json::as_str) {
        identity.schema_id = s.to_string();
    }
    if let Some(s) = p.get("state").and_then(Json::as_str) {
        identity.state = crate::identity::IdentityState::parse(s)
            .ok_or_else(|| HookError::Api(Error::invalid("the web hook returned an invalid identity state")))?;
    }
    if let Some(m) = p.get("metadata_public") {
        identity.metadata_public = Some(m.clone()).filter(|v| !v.is_null());
    }
    if let Some(m) = p.get("metadata_admin") {
        identity.metadata_admin = Some(m.clone()).filter(|v| !v.is_null());
    }
    if let Some(e) = p.get("external_id") {
        identity.external_id = e.as_str().map(str::to_string).filter(|s| !s.is_empty());
    }
    if let Some(addrs) = p.get("verifiable_addresses").and_then(Json::as_array) {
        for a in addrs {
            let (Some(value), Some(verified)) =
                (a.get("value").and_then(Json::as_str), a.get("verified").and_then(Json::as_bool))
            else {
                continue;
            };
            if let Some(existing) =
                identity.verifiable_addresses.iter_mut().find(|x| x.value.eq_ignore_ascii_case(value))
            {
                existing.verified = verified;
                if let Some(s) = a.get("status").and_then(Json::as_str) {
                    existing.status = s.to_string();
                }
            }
        }
    }
    Ok(())
}
