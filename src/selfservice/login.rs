//! The login flow (behaviour.md §5): creation with the session/refresh/AAL decision table, the
//! password method (unified or identifier-first), and what happens after a successful login.

use super::flow::{Flow, FlowKind, FlowType};
use super::hooks::{HookPoint, Stage};
use super::ui::{self, Input, group};
use super::{Done, Init, Outcome, RequestInfo, SelfService, csrf_outcome, flow_message};
use crate::catalogue as text;
use crate::config::{HashAlgorithm, LoginStyle};
use crate::error::{Error, FlowName};
use crate::identity::{Identity, IdentityState};
use crate::session::{Aal, AuthMethod, Session};
use serde_json::Value as Json;

/// Query parameters of `GET /self-service/login/{browser,api}`.
#[derive(Debug, Default, Clone)]
pub struct InitParams {
    pub refresh: bool,
    pub aal: Option<String>,
    pub return_to: Option<String>,
    pub identity_schema: Option<String>,
    pub login_challenge: Option<String>,
    pub return_session_token_exchange_code: bool,
}

fn aal1_required() -> Error {
    Error::Aal1Required
}

fn already_signed_in() -> Error {
    Error::AlreadySignedIn(FlowName::Login)
}

/// The label of the `identifier` input (behaviour.md §13.4).
pub fn identifier_label(schema: &Json) -> text::Text {
    let mut found = Vec::new();
    collect_identifiers(schema, schema.pointer("/properties/traits").unwrap_or(&Json::Null), "traits", &mut found, 0);
    match found.as_slice() {
        [(name, Some(title))] if !title.is_empty() => text::label_generated(title, name),
        _ => text::label_id(),
    }
}

fn collect_identifiers(root: &Json, obj: &Json, prefix: &str, out: &mut Vec<(String, Option<String>)>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Some(props) = obj.get("properties").and_then(Json::as_object) else { return };
    for (k, v) in props {
        let v = match v.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(p) => root.pointer(p).unwrap_or(v),
            None => v,
        };
        let name = format!("{prefix}.{k}");
        let ext = v.get("ory.sh/kratos");
        let flag = |p: &str| ext.and_then(|e| e.pointer(p)).and_then(Json::as_bool).unwrap_or(false);
        if flag("/credentials/password/identifier")
            || flag("/credentials/webauthn/identifier")
            || flag("/credentials/passkey/display_name")
            || flag("/credentials/totp/account_name")
            || flag("/credentials/code/identifier")
        {
            out.push((name.clone(), v.get("title").and_then(Json::as_str).map(str::to_string)));
        }
        collect_identifiers(root, v, &name, out, depth + 1);
    }
}

fn default_schema(svc: &SelfService, flow: &Flow) -> Json {
    let id = flow.data.identity_schema.clone().unwrap_or_else(|| svc.schemas.default_id().to_string());
    svc.schemas.get(&id).map(|s| s.raw.clone()).unwrap_or(Json::Null)
}

fn password_enabled(svc: &SelfService) -> bool {
    svc.config.selfservice.methods.password.enabled
}

/// Fills a fresh login flow's UI.
fn build_ui(svc: &SelfService, flow: &mut Flow, refresh_identifier: Option<String>) {
    let schema = default_schema(svc, flow);
    flow.ui.nodes.push(ui::csrf_node());
    if flow.data.requested_aal == Some(Aal::Aal2) && !flow.data.refresh {
        // Second factors only; tessera offers none yet (TOTP, lookup secrets, WebAuthn).
        flow.ui.messages.push(text::login_mfa());
    } else if flow.data.refresh {
        flow.ui.messages.push(text::login_reauth());
        if let (true, Some(identifier)) = (password_enabled(svc), refresh_identifier) {
            flow.ui.nodes.push(Input::new(group::DEFAULT, "identifier", "hidden").value(identifier).node());
            flow.ui.nodes.push(password_node("current-password"));
            flow.ui.nodes.push(submit_button(group::PASSWORD, "password", text::login_submit()));
        }
    } else if svc.config.selfservice.flows.login.style == LoginStyle::IdentifierFirst {
        flow.ui.nodes.push(
            Input::new(group::IDENTIFIER_FIRST, "identifier", "text")
                .value("")
                .required()
                .autocomplete("username webauthn")
                .label(identifier_label(&schema))
                .node(),
        );
        flow.ui.nodes.push(submit_button(group::IDENTIFIER_FIRST, "identifier_first", text::label_continue()));
    } else if password_enabled(svc) {
        flow.ui.nodes.push(
            Input::new(group::DEFAULT, "identifier", "text")
                .value("")
                .required()
                .label(identifier_label(&schema))
                .node(),
        );
        flow.ui.nodes.push(password_node("current-password"));
        flow.ui.nodes.push(submit_button(group::PASSWORD, "password", text::login_with_password()));
    }
    flow.ui.sort(&ui::LOGIN_GROUPS, &ui::login_keys());
}

/// The `password` input.
pub fn password_node(autocomplete: &str) -> ui::Node {
    Input::new(group::PASSWORD, "password", "password")
        .required()
        .autocomplete(autocomplete)
        .label(text::label_password())
        .node()
}

/// A `method` submit button.
pub fn submit_button(group: &'static str, method: &str, label: text::Text) -> ui::Node {
    Input::new(group, "method", "submit").value(method).label(label).node()
}

/// Parses `aal`: empty → aal1.
pub fn parse_aal(v: Option<&str>) -> Result<Aal, Error> {
    match v.unwrap_or("") {
        "" | "aal1" => Ok(Aal::Aal1),
        "aal2" => Ok(Aal::Aal2),
        other => Err(Error::invalid(format!(
            "Unable to parse AuthenticationMethod Assurance Level (AAL): expected one of [aal1, aal2] but got {other}"
        ))),
    }
}

/// Checks `identity_schema` (must be the default or selfservice-selectable).
pub fn check_identity_schema(svc: &SelfService, id: Option<&str>) -> Result<Option<String>, Error> {
    let Some(id) = id.filter(|s| !s.is_empty()) else { return Ok(None) };
    match svc.schemas.get(id) {
        Some(s) if s.id == svc.schemas.default_id() || s.selfservice_selectable => Ok(Some(s.id.clone())),
        _ => Err(Error::invalid(format!("The identity schema \"{id}\" is not allowed for self-service flows."))),
    }
}

/// Checks a `login_challenge`: tessera has no OAuth2 provider integration yet.
pub fn check_login_challenge(challenge: Option<&str>) -> Result<(), Error> {
    match challenge {
        None => Ok(()),
        Some("") => Err(Error::invalid("the login_challenge parameter is present but empty")),
        Some(_) => Err(Error::Misconfigured(text::error::LOGIN_CHALLENGE_UNSUPPORTED.into())),
    }
}

/// `GET /self-service/login/{browser,api}`.
pub async fn init(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    params: InitParams,
    csrf_real: String,
) -> Result<Init, Error> {
    let aal = parse_aal(params.aal.as_deref())?;
    check_login_challenge(params.login_challenge.as_deref())?;
    let identity_schema = check_identity_schema(svc, params.identity_schema.as_deref())?;
    let default = super::redirect::default_return(&svc.config);
    if let Some(r) = params.return_to.as_deref().filter(|r| !r.is_empty()) {
        super::redirect::validate(&svc.config, r, &default).map_err(super::redirect::Forbidden::into_error)?;
    }
    let mut flow = svc.new_flow(FlowKind::Login, flow_type, info.url.clone(), csrf_real);
    flow.data.identity_schema = identity_schema;
    flow.data.requested_aal = Some(aal);
    let mut refresh_identifier = None;
    match &info.session {
        None if aal == Aal::Aal2 => return Err(aal1_required()),
        None => {}
        Some(live) => {
            if params.refresh {
                flow.data.refresh = true;
                refresh_identifier = live_identifier(svc, live.session.identity_id).await?;
            } else if aal > live.session.aal {
                // An AAL upgrade of the current session.
            } else if flow_type == FlowType::Browser && !info.is_json {
                let to = super::redirect::after_flow(&svc.config, None, &info.url, &default)
                    .map_err(super::redirect::Forbidden::into_error)?;
                return Ok(Init::SignedIn(to));
            } else {
                return Err(already_signed_in());
            }
            flow.data.identity_id = Some(live.session.identity_id);
            flow.data.session_id = Some(live.session.id);
        }
    }
    svc.hooks.run_before(svc, FlowKind::Login, &flow, info).await?;
    build_ui(svc, &mut flow, refresh_identifier);
    let exchange_code =
        if flow_type == FlowType::Api && params.return_session_token_exchange_code && info.session.is_none() {
            let (init, return_to) = svc.sessions.create_exchanger(flow.id).await?;
            // The return-to code is handed out after the browser round trip (OIDC); keep it sealed.
            flow.data.exchange_return_code = svc.sessions.seal(&return_to);
            Some(init)
        } else {
            None
        };
    svc.flows.create(flow.clone()).await;
    Ok(Init::Created { flow: Box::new(flow), exchange_code })
}

async fn live_identifier(svc: &SelfService, identity_id: uuid::Uuid) -> Result<Option<String>, Error> {
    let identity = svc.identities.get(identity_id).await?;
    Ok(identity
        .credentials
        .get("password")
        .filter(|c| c.config.get("hashed_password").and_then(Json::as_str).is_some_and(|h| !h.is_empty()))
        .and_then(|c| c.identifiers.first().cloned()))
}

/// A replacement for an expired flow (same type, request URL and schema) with `message`.
pub async fn replace_expired(svc: &SelfService, old: &Flow, info: &RequestInfo) -> Outcome {
    let now = svc.clock.now();
    let csrf = info.csrf_cookie.clone().filter(|t| super::csrf::is_valid(t)).unwrap_or_else(super::csrf::new_token);
    let mut new_flow = svc.new_flow(old.kind, old.flow_type, old.request_url.clone(), csrf);
    new_flow.data.identity_schema = old.data.identity_schema.clone();
    new_flow.return_to = old.return_to.clone();
    let message = match old.kind {
        FlowKind::Login => {
            new_flow.data.requested_aal = Some(Aal::Aal1);
            build_ui(svc, &mut new_flow, None);
            text::login_expired(old.expires_at, now)
        }
        FlowKind::Registration => {
            super::registration::build_ui(svc, &mut new_flow);
            text::registration_expired(old.expires_at, now)
        }
        FlowKind::Settings => {
            new_flow.data.identity_id = old.data.identity_id;
            new_flow.data.identity = old.data.identity.clone();
            new_flow.state = super::flow::state::SHOW_FORM.into();
            super::settings::build_ui(svc, &mut new_flow);
            text::settings_expired(old.expires_at, now)
        }
        FlowKind::Recovery => text::recovery_expired(old.expires_at, now),
        FlowKind::Verification => text::verification_expired(old.expires_at, now),
    };
    new_flow.ui.messages.push(message);
    svc.flows.create(new_flow.clone()).await;
    let error = super::challenge::expired_error(old.expires_at, now, Some(new_flow.id));
    Outcome::Expired { new_flow, error }
}

fn form(flow: Flow, transient_payload: Option<Json>) -> Outcome {
    Outcome::Form { flow, transient_payload }
}

/// Puts a validation problem into the flow and re-renders it (400).
fn fail(mut flow: Flow, identifier: &str, field: &str, message: text::Text, tp: Option<Json>) -> (Flow, Outcome) {
    flow.ui.reset_messages();
    flow.ui.clear_passwords();
    if let Some(n) = flow.ui.node_mut("identifier", None)
        && n.input_type() != "hidden"
    {
        n.set_value(Some(identifier.into()));
    }
    flow.ui.add_field_message(field, message);
    flow.ui.sort(&ui::LOGIN_GROUPS, &ui::login_keys());
    (flow.clone(), form(flow, tp))
}

/// `POST /self-service/login?flow=`: runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, body: Json, info: RequestInfo) -> (Flow, Outcome) {
    let tp = body.get("transient_payload").cloned();
    // 1. An existing session makes a plain login pointless.
    match &info.session {
        Some(live) => {
            let upgrade = flow.data.requested_aal.unwrap_or(Aal::Aal1) > live.session.aal;
            if !flow.data.refresh && !upgrade {
                if !info.is_json && flow.flow_type == FlowType::Browser {
                    let to = super::redirect::default_return(&svc.config);
                    return (flow, Outcome::Redirect(to));
                }
                return flow_message(flow, text::generic(text::error::LOGIN_ALREADY_SIGNED_IN), tp);
            }
        }
        None if flow.data.requested_aal == Some(Aal::Aal2) => return (flow, Outcome::Error(aal1_required())),
        None => {}
    }
    // 2. Expiry.
    if flow.is_expired(svc.clock.now()) {
        let outcome = replace_expired(&svc, &flow, &info).await;
        return (flow, outcome);
    }
    // 3. The method.
    let method = body.get("method").and_then(Json::as_str).unwrap_or_default().to_string();
    let identifier_first = svc.config.selfservice.flows.login.style == LoginStyle::IdentifierFirst;
    let first_factor = flow.data.requested_aal.unwrap_or(Aal::Aal1) == Aal::Aal1 || flow.data.refresh;
    if info.method == "GET" && matches!(method.as_str(), "password" | "identifier_first") {
        return flow_message(flow, text::generic(text::error::GET_NOT_ALLOWED), None);
    }
    match method.as_str() {
        "password" if password_enabled(&svc) && first_factor => password(svc, flow, body, info, tp).await,
        "identifier_first" if identifier_first && !flow.data.refresh => identify(svc, flow, body, info, tp).await,
        _ => {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(text::no_strategy());
            (f.clone(), form(f, tp))
        }
    }
}

fn string_field<'a>(body: &'a Json, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Json::as_str).filter(|s| !s.is_empty())
}

/// Identifier-first step one: find the identity and show its credential inputs.
async fn identify(svc: SelfService, flow: Flow, body: Json, info: RequestInfo, tp: Option<Json>) -> (Flow, Outcome) {
    if let Err(failure) = svc.ensure_csrf(&flow, &info, &body) {
        return csrf_outcome(flow, failure, tp);
    }
    let Some(identifier) = string_field(&body, "identifier").map(str::to_string) else {
        return fail(flow, "", "identifier", text::required("identifier"), tp);
    };
    let found = find_by_identifier(&svc, &identifier).await;
    let has_password = match &found {
        Ok(Some(i)) => hashed_password(i).is_some(),
        Ok(None) => false,
        Err(e) => return (flow, Outcome::Error(e.clone())),
    };
    let mitigate = svc.config.security.account_enumeration.mitigate;
    if !has_password && !mitigate {
        return fail(flow, &identifier, "identifier", text::account_not_found(), tp);
    }
    let mut f = flow;
    f.ui.reset_messages();
    f.ui.nodes.retain(|n| !(n.name() == "method" && n.group == group::IDENTIFIER_FIRST));
    if let Some(n) = f.ui.node_mut("identifier", None) {
        n.set_value(Some(identifier.clone().into()));
        n.attributes.insert("type".into(), "hidden".into());
    }
    f.ui.nodes.push(password_node("current-password"));
    f.ui.nodes.push(submit_button(group::PASSWORD, "password", text::login_with_password()));
    f.active = Some("identifier_first".into());
    f.data.identifier = Some(identifier);
    (f.clone(), form(f, tp))
}

async fn find_by_identifier(svc: &SelfService, identifier: &str) -> Result<Option<Identity>, Error> {
    let normalised = identifier.trim().to_lowercase();
    let mut pooled = svc.store.get().await.map_err(Error::from)?;
    crate::persistence::identity::find_by_identifier(&mut pooled.conn(), "password", &normalised)
        .await
        .map_err(Error::from)
}

fn hashed_password(identity: &Identity) -> Option<String> {
    identity
        .credentials
        .get("password")
        .and_then(|c| c.config.get("hashed_password"))
        .and_then(Json::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// The password method.
async fn password(svc: SelfService, flow: Flow, body: Json, info: RequestInfo, tp: Option<Json>) -> (Flow, Outcome) {
    if let Err(failure) = svc.ensure_csrf(&flow, &info, &body) {
        return csrf_outcome(flow, failure, tp);
    }
    let identifier = string_field(&body, "identifier")
        .or_else(|| string_field(&body, "password_identifier"))
        .map(str::to_string)
        .or_else(|| flow.data.identifier.clone());
    let password = string_field(&body, "password").map(str::to_string);
    let (Some(identifier), Some(password)) = (identifier.clone(), password) else {
        let mut f = flow;
        f.ui.reset_messages();
        f.ui.clear_passwords();
        if identifier.is_none() {
            f.ui.add_field_message("identifier", text::required("identifier"));
        } else if let Some(n) = f.ui.node_mut("identifier", None)
            && n.input_type() != "hidden"
        {
            n.set_value(identifier.clone().map(Json::from));
        }
        if body.get("password").and_then(Json::as_str).is_none_or(str::is_empty) {
            f.ui.add_field_message("password", text::required("password"));
        }
        f.ui.sort(&ui::LOGIN_GROUPS, &ui::login_keys());
        return (f.clone(), form(f, tp));
    };
    // Brute-force defence: reserve the attempt before anything is checked.
    match svc.brute_force.reserve(&identifier, info.client_ip.as_deref()).await {
        Ok(super::brute_force::Verdict::Allowed) => {}
        Ok(super::brute_force::Verdict::Locked(until)) => {
            let message = text::locked_out(svc.brute_force.retry_after(until));
            return fail(flow, &identifier, "", message, tp);
        }
        Err(e) => return (flow, Outcome::Error(Error::from(e))),
    }
    let identity = match find_by_identifier(&svc, &identifier).await {
        Ok(i) => i,
        Err(e) => return (flow, Outcome::Error(e)),
    };
    let stored = identity.as_ref().and_then(hashed_password);
    // Unknown identifiers and identities without a password are checked against a dummy hash,
    // so they take as long as a wrong password.
    let encoded = stored.clone().unwrap_or_else(|| svc.dummy_hash.to_string());
    let matched = svc.identities.hashes.verify(password.clone().into_bytes(), encoded).await.unwrap_or(false);
    let (Some(identity), Some(stored), true) = (identity, stored, matched) else {
        return fail(flow, &identifier, "", text::invalid_credentials(), tp);
    };
    if identity.state != IdentityState::Active {
        return (flow, Outcome::Error(Error::IdentityDisabled));
    }
    if let Err(e) = svc.brute_force.succeeded(&identifier, info.client_ip.as_deref()).await {
        tracing::warn!(error = %e, "brute-force counter could not be cleared");
    }
    let identity = rehash_if_needed(&svc, identity, &stored, &password).await;
    let method = AuthMethod {
        method: "password".into(),
        aal: Some(Aal::Aal1),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    };
    let mut flow = flow;
    flow.active = Some("password".into());
    let outcome = finish(&svc, &mut flow, identity, method, &info, tp).await;
    (flow, outcome)
}

/// Re-hashes a password stored in another algorithm family (behaviour.md §18.2); failures
/// are logged and ignored.
async fn rehash_if_needed(svc: &SelfService, identity: Identity, stored: &str, password: &str) -> Identity {
    let algorithm: HashAlgorithm = svc.config.hashers.algorithm;
    if crate::hash::understands(algorithm, stored) {
        return identity;
    }
    match svc.identities.hashes.hash(password.as_bytes().to_vec()).await {
        Ok(new_hash) => match svc.identities.replace_password_hash(identity.id, &new_hash).await {
            Ok(updated) => updated,
            Err(e) => {
                tracing::warn!(error = %e, "password re-hash could not be stored");
                identity
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "password re-hash failed");
            identity
        }
    }
}

/// After a successful first or second factor: issue (or refresh) the session, run the
/// after-login hooks, and decide the response.
async fn finish(
    svc: &SelfService,
    flow: &mut Flow,
    identity: Identity,
    method: AuthMethod,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Outcome {
    let now = svc.clock.now();
    let method_name = method.method.clone();
    // A refresh or AAL upgrade of the caller's own session keeps that session.
    let reuse = info.session.as_ref().filter(|l| l.session.identity_id == identity.id).map(|l| l.session.id);
    // The session is built in memory; it is stored only once every after-login hook agreed.
    let issued: Result<(Session, String), Error> = match (reuse, info.session_token.clone()) {
        (Some(id), Some(token)) => {
            svc.sessions.reauthenticated(id, method, info.device.clone(), now).await.map(|s| (s, token))
        }
        _ => Ok(svc.sessions.build(&identity, vec![method], Some(info.device.clone()))),
    };
    let (session, token) = match issued {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e),
    };
    let after = &svc.config.selfservice.flows.login.after;
    let (mut redirect, mut continue_with) = match super::after_success(svc, after, &method_name, flow, info) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let point = HookPoint { kind: FlowKind::Login, stage: Stage::After, method: &method_name };
    if let Err(e) = svc.hooks.run_after(svc, point, flow, info, &identity, Some(&session), tp.as_ref()).await {
        return e.into_outcome(flow.clone(), tp);
    }
    if let Err(e) = svc.sessions.save(&session).await {
        return Outcome::Error(e);
    }
    // An explicit `verification` hook (aal1 logins): a verification flow for the first
    // unverified address; `show_verification_ui` offers it to the client.
    let hooks = super::hooks::after_hooks(svc, FlowKind::Login, &method_name);
    if svc.config.selfservice.flows.verification.enabled
        && session.aal == Aal::Aal1
        && hooks.iter().any(|h| h.hook == "verification")
        && let Some(address) = identity.verifiable_addresses.iter().find(|a| !a.verified && !a.value.is_empty())
    {
        match super::verification::start_for_address(svc, flow.flow_type, info, address, flow.return_to.clone(), true)
            .await
        {
            Ok((_, item)) => {
                if hooks.iter().any(|h| h.hook == "show_verification_ui") {
                    if let Some(url) = item.pointer("/flow/url").and_then(Json::as_str)
                        && !info.is_json
                    {
                        redirect = url.to_string();
                    }
                    continue_with.push(item);
                }
            }
            Err(e) => tracing::warn!(error = %e, "login: no verification flow"),
        }
    }
    Outcome::Done(Box::new(Done {
        flow: flow.clone(),
        identity,
        session: Some((session, token)),
        set_cookie: flow.flow_type == FlowType::Browser,
        expose_session: true,
        continue_with,
        redirect,
        new_csrf: None,
    }))
}
