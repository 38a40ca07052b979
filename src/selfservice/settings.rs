//! The settings flow (behaviour.md §7) with the profile and password methods: a flow bound to
//! the signed-in identity (or created by a successful recovery), changes that touch
//! credentials or addresses need a privileged (recent) session.

use super::flow::{Flow, FlowKind, FlowType, state};
use super::login::{password_node, submit_button};
use super::ui::{self, group};
use super::{Outcome, RequestInfo, SelfService};
use crate::catalogue as text;
use crate::error::Error;
use crate::identity::Identity;
use crate::schema::TraitsError;
use serde_json::{Value as Json, json};

/// The settings groups' order.
pub const SETTINGS_GROUPS: [&str; 9] =
    ["default", "profile", "password", "oidc", "saml", "webauthn", "passkey", "totp", "lookup_secret"];

/// The profile and password forms for the flow's identity.
pub fn build_ui(svc: &SelfService, flow: &mut Flow) {
    let traits = flow.data.identity.as_ref().and_then(|i| i.get("traits")).cloned().unwrap_or(Json::Null);
    let schema_id = flow
        .data
        .identity
        .as_ref()
        .and_then(|i| i.get("schema_id"))
        .and_then(Json::as_str)
        .unwrap_or(svc.schemas.default_id())
        .to_string();
    let schema = svc.schemas.get(&schema_id).map(|s| s.raw.clone()).unwrap_or(Json::Null);
    flow.ui.nodes.clear();
    flow.ui.nodes.push(ui::csrf_node());
    if svc.config.selfservice.methods.profile.enabled {
        flow.ui.nodes.extend(ui::trait_nodes(&schema, group::PROFILE));
        flow.ui.fill_traits(&traits);
        flow.ui.nodes.push(submit_button(group::PROFILE, "profile", text::label_save()));
    }
    if svc.config.selfservice.methods.password.enabled {
        flow.ui.nodes.push(password_node("new-password"));
        flow.ui.nodes.push(submit_button(group::PASSWORD, "password", text::label_save()));
    }
    let mut keys = ui::registration_keys(&schema);
    keys.retain(|k| k != "password");
    keys.push("password".into());
    flow.ui.sort(&SETTINGS_GROUPS, &keys);
}

/// A settings flow for `identity` (state `show_form`); the caller stores it.
pub fn new_for(
    svc: &SelfService,
    identity: &Identity,
    flow_type: FlowType,
    request_url: String,
    return_to: Option<String>,
    csrf: String,
) -> Flow {
    let mut flow = svc.new_flow(FlowKind::Settings, flow_type, request_url, csrf);
    flow.state = state::SHOW_FORM.into();
    flow.return_to = return_to;
    flow.data.identity_id = Some(identity.id);
    flow.data.identity = Some(super::challenge::identity_data(svc, identity));
    build_ui(svc, &mut flow);
    flow
}

/// 401 when a flow is read or submitted without a session (no error id, as Kratos).
pub fn no_session() -> Error {
    Error::SessionRequired
}

/// `GET /self-service/settings/{browser,api}` with a session.
pub async fn init(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    return_to: Option<&str>,
    csrf: String,
) -> Result<Flow, Error> {
    let Some(live) = &info.session else { return Err(Error::NoSession { named: true }) };
    super::checked_return_to(svc, return_to)?;
    let identity = svc.identities.get(live.session.identity_id).await?;
    let return_to = return_to.filter(|r| !r.is_empty()).map(str::to_string);
    let flow = new_for(svc, &identity, flow_type, info.url.clone(), return_to, csrf);
    svc.flows.create(flow.clone()).await;
    Ok(flow)
}

fn show(flow: Flow, ok: bool, info: &RequestInfo) -> (Flow, Outcome) {
    let to_ui = flow.flow_type == FlowType::Browser && !info.is_json;
    (flow.clone(), Outcome::Show { flow, ok, to_ui, transient_payload: None })
}

/// 403 `session_refresh_required`: sign in again, then come back to this submit.
fn needs_reauth(svc: &SelfService, flow: &Flow) -> Outcome {
    let submit = format!("{}self-service/settings?flow={}", svc.config.public_base_url(), flow.id);
    let base = format!("{}self-service/login/browser?refresh=true", svc.config.public_base_url());
    let to = super::redirect::with_query(&base, "return_to", &submit);
    let e = Error::RefreshRequired { redirect: to.clone() };
    Outcome::ErrorOrRedirect { error: e, redirect: to }
}

fn privileged(svc: &SelfService, info: &RequestInfo) -> bool {
    let max_age = chrono::Duration::from_std(svc.config.selfservice.flows.settings.privileged_session_max_age.0)
        .unwrap_or(chrono::Duration::hours(1));
    info.session.as_ref().is_some_and(|l| l.session.authenticated_at + max_age >= svc.clock.now())
}

/// `POST /self-service/settings?flow=`: runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, body: Json, info: RequestInfo, from_form: bool) -> (Flow, Outcome) {
    let tp = body.get("transient_payload").cloned();
    let Some(live) = info.session.clone() else {
        return (
            flow,
            Outcome::ErrorOrRedirect { error: no_session(), redirect: svc.ui_url(FlowKind::Login).to_string() },
        );
    };
    if flow.data.identity_id != Some(live.session.identity_id) {
        return (flow, Outcome::Error(identity_mismatch()));
    }
    if flow.is_expired(svc.clock.now()) {
        let outcome = super::login::replace_expired(&svc, &flow, &info).await;
        return (flow, outcome);
    }
    let method = body.get("method").and_then(Json::as_str).unwrap_or_default().to_string();
    let enabled = match method.as_str() {
        "profile" => svc.config.selfservice.methods.profile.enabled,
        "password" => svc.config.selfservice.methods.password.enabled,
        _ => false,
    };
    if !enabled {
        let mut f = flow;
        f.ui.reset_messages();
        f.ui.messages.push(text::no_settings_strategy());
        return show(f, false, &info);
    }
    if let Err(failure) = svc.ensure_csrf(&flow, &info, &body) {
        return super::csrf_outcome(flow, failure, tp);
    }
    let identity = match svc.identities.get(live.session.identity_id).await {
        Ok(i) => i,
        Err(e) => return (flow, Outcome::Error(e)),
    };
    let changed = if method == "password" {
        password(&svc, flow, identity, &body, &info).await
    } else {
        profile(&svc, flow, identity, &body, &info, from_form).await
    };
    let (mut f, identity) = match changed {
        Ok(done) => done,
        Err(stop) => return *stop,
    };
    // Saved: the form again, with the new values and 1050001.
    f.state = "success".into();
    f.data.identity = Some(super::challenge::identity_data(&svc, &identity));
    build_ui(&svc, &mut f);
    f.ui.messages = vec![text::settings_saved()];
    // The implicit `verification` hook: a verification flow for the first address that was
    // never sent a message (e.g. a changed e-mail).
    let mut verification = None;
    if svc.config.selfservice.flows.verification.enabled
        && let Some(address) =
            identity.verifiable_addresses.iter().find(|a| a.status == "pending" && !a.value.is_empty())
    {
        // The change is saved: a verification message that cannot be sent does not undo it.
        match super::verification::start_for_address(&svc, f.flow_type, &info, address, None, true).await {
            Ok((_, item)) => verification = Some(item),
            Err(e) => tracing::warn!(error = %e, "settings: no verification flow"),
        }
    }
    let point =
        super::hooks::HookPoint { kind: FlowKind::Settings, stage: super::hooks::Stage::After, method: &method };
    if let Err(e) = svc.hooks.run_after(&svc, point, &mut f, &info, &identity, Some(&live.session), tp.as_ref()).await {
        let outcome = e.into_outcome(f.clone(), tp);
        return (f, outcome);
    }
    let after = &svc.config.selfservice.flows.settings.after;
    if f.flow_type == FlowType::Browser && !info.is_json {
        let to = after
            .return_url_for(&method)
            .map(str::to_string)
            .unwrap_or_else(|| super::redirect::with_query(svc.ui_url(FlowKind::Settings), "flow", &f.id.to_string()));
        let to = super::redirect::after_flow(&svc.config, f.return_to.as_deref(), &f.request_url, &to).unwrap_or(to);
        return (f, Outcome::Redirect(to));
    }
    let mut shown = f.clone();
    let show_ui =
        super::hooks::after_hooks(&svc, FlowKind::Settings, &method).iter().any(|h| h.hook == "show_verification_ui");
    if let (true, Some(item)) = (show_ui, verification) {
        shown.data.continue_with.push(item);
    }
    if f.flow_type == FlowType::Browser {
        let default = after
            .return_url_for(&method)
            .map(str::to_string)
            .unwrap_or_else(|| super::redirect::default_return(&svc.config));
        let to = super::redirect::after_flow(&svc.config, f.return_to.as_deref(), &f.request_url, &default)
            .unwrap_or(default);
        shown.data.continue_with.insert(0, json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
    }
    (f, Outcome::Show { flow: shown, ok: true, to_ui: false, transient_payload: None })
}

type Step = Result<(Flow, Identity), Box<(Flow, Outcome)>>;

fn stop(flow: Flow, outcome: Outcome) -> Step {
    Err(Box::new((flow, outcome)))
}

async fn password(svc: &SelfService, mut f: Flow, mut identity: Identity, body: &Json, info: &RequestInfo) -> Step {
    if !privileged(svc, info) {
        let outcome = needs_reauth(svc, &f);
        return stop(f, outcome);
    }
    let Some(pw) = body.get("password").and_then(Json::as_str).filter(|p| !p.is_empty()).map(str::to_string) else {
        f.ui.reset_messages();
        f.ui.add_field_message("password", text::required("password"));
        let (f, o) = show(f, false, info);
        return stop(f, o);
    };
    let problem = |mut f: Flow, message: text::Text| {
        f.ui.reset_messages();
        f.ui.clear_passwords();
        f.ui.add_field_message("password", message);
        let (f, o) = show(f, false, info);
        stop(f, o)
    };
    let old = identity
        .credentials
        .get("password")
        .and_then(|c| c.config.get("hashed_password"))
        .and_then(Json::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    if let Some(old) = old
        && svc.identities.hashes.verify(pw.clone().into_bytes(), old).await.unwrap_or(false)
    {
        return problem(f, text::password_same_as_old());
    }
    let identifiers: Vec<String> =
        identity.credentials.get("password").map(|c| c.identifiers.clone()).unwrap_or_default();
    let policy = &svc.config.selfservice.methods.password.config;
    if let Some(message) =
        super::password::check(policy, svc.config.hashers.algorithm, &svc.breaches, &identifiers, &pw).await
    {
        return problem(f, message);
    }
    let len = pw.len();
    let hashed = match svc.identities.hashes.hash(pw.into_bytes()).await {
        Ok(h) => h,
        Err(crate::hash::HashError::TooLong) => {
            return problem(f, text::password_too_long(super::password::BCRYPT_MAX, len));
        }
        Err(e) => return stop(f, Outcome::Error(Error::internal(&e))),
    };
    let now = svc.clock.now();
    let credential = identity
        .credentials
        .entry("password".into())
        .or_insert_with(|| crate::identity::service::new_credential("password", now));
    credential.config = json!({ "hashed_password": hashed });
    credential.updated_at = now;
    match svc.identities.save_changed(&mut identity).await {
        Ok(()) => Ok((f, identity)),
        Err(e) => stop(f, Outcome::Error(e)),
    }
}

async fn profile(
    svc: &SelfService,
    mut f: Flow,
    mut identity: Identity,
    body: &Json,
    info: &RequestInfo,
    from_form: bool,
) -> Step {
    let schema = svc.schemas.get(&identity.schema_id).map(|s| s.raw.clone()).unwrap_or(Json::Null);
    let Some(mut traits) = body.get("traits").cloned().filter(|t| t.as_object().is_some_and(|o| !o.is_empty())) else {
        f.ui.reset_messages();
        f.ui.messages.push(text::generic("Did not receive any value changes."));
        let (f, o) = show(f, false, info);
        return stop(f, o);
    };
    if from_form {
        super::drop_empty_strings(&mut traits);
        super::coerce_traits(&schema, &mut traits);
    }
    let new = match svc.schemas.validate_traits(&identity.schema_id, &traits) {
        Ok(x) => x,
        Err(e) => {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            match e {
                TraitsError::Invalid(violations) => {
                    let ui: Vec<_> = violations.into_iter().map(|v| v.ui).collect();
                    f.ui.add_violations(&ui);
                }
                TraitsError::UnknownSchema(id) => {
                    f.ui.messages.push(text::generic(&format!("Unable to find JSON Schema ID: {id}")));
                }
            }
            let (f, o) = show(f, false, info);
            return stop(f, o);
        }
    };
    let old = svc.schemas.validate_traits(&identity.schema_id, &identity.traits).unwrap_or_default();
    let protected = old.password_identifiers != new.password_identifiers
        || old.webauthn_identifiers != new.webauthn_identifiers
        || old.code_identifiers != new.code_identifiers
        || old.verifiable_addresses != new.verifiable_addresses
        || old.recovery_addresses != new.recovery_addresses;
    if protected && !privileged(svc, info) {
        let outcome = needs_reauth(svc, &f);
        return stop(f, outcome);
    }
    identity.traits = traits.clone();
    match svc.identities.save_changed(&mut identity).await {
        Ok(()) => Ok((f, identity)),
        Err(Error::UniqueViolation) => {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            f.ui.messages.push(text::duplicate_credentials());
            let (f, o) = show(f, false, info);
            stop(f, o)
        }
        Err(e) => stop(f, Outcome::Error(e)),
    }
}

/// 403 `security_identity_mismatch`: the flow belongs to another identity.
pub fn identity_mismatch() -> Error {
    Error::IdentityMismatch
}
