//! The registration flow (behaviour.md §6): two-step (`profile_first`, the default) or one-step
//! forms, the profile and password methods, and what happens after the identity is created.

use super::flow::{Flow, FlowKind, FlowType};
use super::hooks::{HookPoint, Stage};
use super::login::{check_identity_schema, check_login_challenge, password_node, submit_button};
use super::ui::{self, Input, group};
use super::{Done, Init, Outcome, RequestInfo, SelfService, csrf_outcome, flow_message};
use crate::catalogue as text;
use crate::error::{Error, FlowName};
use crate::identity::service::new_credential;
use crate::identity::{Identity, IdentityState};
use crate::persistence::WriteError;
use crate::schema::TraitsError;
use crate::session::{Aal, AuthMethod};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Query parameters of `GET /self-service/registration/{browser,api}`.
#[derive(Debug, Default, Clone)]
pub struct InitParams {
    pub return_to: Option<String>,
    pub identity_schema: Option<String>,
    pub login_challenge: Option<String>,
    pub return_session_token_exchange_code: bool,
}

/// 400 `self_service_flow_disabled`.
pub fn disabled() -> Error {
    Error::FlowDisabled(FlowName::Registration)
}

fn already_signed_in() -> Error {
    Error::AlreadySignedIn(FlowName::Registration)
}

fn schema_of(svc: &SelfService, flow: &Flow) -> (String, Json) {
    let id = flow.data.identity_schema.clone().unwrap_or_else(|| svc.schemas.default_id().to_string());
    let raw = svc.schemas.get(&id).map(|s| s.raw.clone()).unwrap_or(Json::Null);
    (id, raw)
}

fn two_step(svc: &SelfService) -> bool {
    svc.config.selfservice.flows.registration.two_step() && svc.config.selfservice.methods.profile.enabled
}

fn sort(svc: &SelfService, flow: &mut Flow) {
    let (_, schema) = schema_of(svc, flow);
    flow.ui.sort(&ui::REGISTRATION_GROUPS, &ui::registration_keys(&schema));
}

/// Fills a fresh registration flow's UI (step one, or the one-step form).
pub fn build_ui(svc: &SelfService, flow: &mut Flow) {
    let (_, schema) = schema_of(svc, flow);
    flow.ui.nodes.push(ui::csrf_node());
    flow.ui.nodes.extend(ui::trait_nodes(&schema, group::DEFAULT));
    if two_step(svc) {
        flow.ui.nodes.push(submit_button(group::PROFILE, "profile", text::register()));
    } else if svc.config.selfservice.methods.password.enabled {
        flow.ui.nodes.push(password_node("new-password"));
        flow.ui.nodes.push(submit_button(group::PASSWORD, "password", text::register()));
    }
    sort(svc, flow);
}

/// `GET /self-service/registration/{browser,api}`.
pub async fn init(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    params: InitParams,
    csrf_real: String,
) -> Result<Init, Error> {
    if !svc.config.selfservice.flows.registration.enabled {
        return Err(disabled());
    }
    check_login_challenge(params.login_challenge.as_deref())?;
    let identity_schema = check_identity_schema(svc, params.identity_schema.as_deref())?;
    let default = super::redirect::default_return(&svc.config);
    if let Some(r) = params.return_to.as_deref().filter(|r| !r.is_empty()) {
        super::redirect::validate(&svc.config, r, &default).map_err(super::redirect::Forbidden::into_error)?;
    }
    if info.session.is_some() {
        if flow_type == FlowType::Browser && !info.is_json {
            let to = super::redirect::after_flow(&svc.config, None, &info.url, &default)
                .map_err(super::redirect::Forbidden::into_error)?;
            return Ok(Init::SignedIn(to));
        }
        return Err(already_signed_in());
    }
    let mut flow = svc.new_flow(FlowKind::Registration, flow_type, info.url.clone(), csrf_real);
    flow.data.identity_schema = identity_schema;
    svc.hooks.run_before(svc, FlowKind::Registration, &flow, info).await?;
    build_ui(svc, &mut flow);
    let exchange_code = if flow_type == FlowType::Api && params.return_session_token_exchange_code {
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

fn form(flow: Flow, tp: Option<Json>) -> (Flow, Outcome) {
    (flow.clone(), Outcome::Form { flow, transient_payload: tp })
}

/// The submitted traits, typed as the schema says (form values are strings); empty form
/// values count as absent.
fn submitted_traits(svc: &SelfService, flow: &Flow, body: &Json, from_form: bool) -> Option<Json> {
    let (_, schema) = schema_of(svc, flow);
    let mut traits = body.get("traits").cloned().filter(Json::is_object)?;
    if from_form {
        super::drop_empty_strings(&mut traits);
        super::coerce_traits(&schema, &mut traits);
    }
    Some(traits)
}

/// `POST /self-service/registration?flow=`: runs inside the flow's actor.
pub async fn submit_flow(
    svc: SelfService,
    flow: Flow,
    body: Json,
    info: RequestInfo,
    from_form: bool,
) -> (Flow, Outcome) {
    let tp = body.get("transient_payload").cloned();
    if info.session.is_some() {
        if info.is_json {
            return (flow, Outcome::Error(already_signed_in()));
        }
        let self_service = format!("{}self-service", svc.config.public_base_url());
        let to = super::redirect::return_to_of(&info.url)
            .filter(|r| r.starts_with(&self_service))
            .unwrap_or_else(|| super::redirect::default_return(&svc.config));
        return (flow, Outcome::SignedIn(to));
    }
    if !svc.config.selfservice.flows.registration.enabled {
        return (flow, Outcome::Error(disabled()));
    }
    if flow.is_expired(svc.clock.now()) {
        let outcome = super::login::replace_expired(&svc, &flow, &info).await;
        return (flow, outcome);
    }
    let method = body.get("method").and_then(Json::as_str).unwrap_or_default().to_string();
    let screen = body.get("screen").and_then(Json::as_str).unwrap_or_default().to_string();
    if info.method == "GET" && matches!(method.as_str(), "password" | "profile" | "profile:back") {
        return flow_message(flow, text::generic(text::error::GET_NOT_ALLOWED), None);
    }
    match method.as_str() {
        "profile" | "profile:back" if two_step(&svc) => {
            if screen == "previous" || method == "profile:back" {
                back_to_profile(svc, flow, &body, from_form, tp)
            } else {
                profile_step(svc, flow, body, info, from_form, tp)
            }
        }
        "password" if svc.config.selfservice.methods.password.enabled => {
            password(svc, flow, body, info, from_form, tp).await
        }
        _ => {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(text::no_registration_strategy());
            form(f, tp)
        }
    }
}

/// Validates traits; on failure the flow shows the violations (values kept).
fn validate_traits(svc: &SelfService, flow: &mut Flow, traits: &Json) -> Result<crate::schema::Extracted, ()> {
    let (schema_id, _) = schema_of(svc, flow);
    match svc.schemas.validate_traits(&schema_id, traits) {
        Ok(x) => Ok(x),
        Err(e) => {
            flow.ui.reset_messages();
            flow.ui.fill_traits(traits);
            flow.ui.clear_passwords();
            match e {
                TraitsError::Invalid(violations) => {
                    let ui: Vec<_> = violations.into_iter().map(|v| v.ui).collect();
                    flow.ui.add_violations(&ui);
                }
                TraitsError::UnknownSchema(id) => {
                    flow.ui.messages.push(text::generic(&format!("Unable to find JSON Schema ID: {id}")));
                }
            }
            sort(svc, flow);
            Err(())
        }
    }
}

/// Two-step registration, step one: traits are checked, then credentials are asked for.
fn profile_step(
    svc: SelfService,
    flow: Flow,
    body: Json,
    info: RequestInfo,
    from_form: bool,
    tp: Option<Json>,
) -> (Flow, Outcome) {
    if let Err(failure) = svc.ensure_csrf(&flow, &info, &body) {
        return csrf_outcome(flow, failure, tp);
    }
    let traits = submitted_traits(&svc, &flow, &body, from_form).unwrap_or_else(|| json!({}));
    let mut f = flow;
    if validate_traits(&svc, &mut f, &traits).is_err() {
        return form(f, tp);
    }
    f.ui.reset_messages();
    f.active = None;
    f.ui.messages.push(text::registration_choose_credentials());
    f.ui.nodes.retain(|n| !(n.name() == "method" && n.group == group::PROFILE) && n.name() != "screen");
    for n in &mut f.ui.nodes {
        if n.group == group::DEFAULT && n.kind == "input" && n.name() != "csrf_token" {
            n.attributes.insert("type".into(), "hidden".into());
        }
    }
    f.ui.fill_traits(&traits);
    f.ui.nodes
        .push(Input::new(group::PROFILE, "screen", "submit").value("previous").label(text::registration_back()).node());
    if svc.config.selfservice.methods.password.enabled {
        f.ui.nodes.retain(|n| n.group != group::PASSWORD);
        f.ui.nodes.push(password_node("new-password"));
        f.ui.nodes.push(submit_button(group::PASSWORD, "password", text::register()));
    }
    f.data.traits = Some(traits);
    sort(&svc, &mut f);
    form(f, tp)
}

/// `screen=previous`: back to the traits form (no CSRF check, as Kratos).
fn back_to_profile(svc: SelfService, flow: Flow, body: &Json, from_form: bool, tp: Option<Json>) -> (Flow, Outcome) {
    let traits = submitted_traits(&svc, &flow, body, from_form)
        .or_else(|| flow.data.traits.clone())
        .unwrap_or_else(|| json!({}));
    let mut f = flow;
    f.ui.reset_messages();
    f.ui.nodes.retain(|n| n.name() == "csrf_token");
    let (_, schema) = schema_of(&svc, &f);
    f.ui.nodes.extend(ui::trait_nodes(&schema, group::DEFAULT));
    f.ui.nodes.push(submit_button(group::PROFILE, "profile", text::register()));
    f.ui.fill_traits(&traits);
    f.data.organization_id = None;
    sort(&svc, &mut f);
    form(f, tp)
}

/// The password method: traits and a password become an identity and (usually) a session.
async fn password(
    svc: SelfService,
    flow: Flow,
    body: Json,
    info: RequestInfo,
    from_form: bool,
    tp: Option<Json>,
) -> (Flow, Outcome) {
    if let Err(failure) = svc.ensure_csrf(&flow, &info, &body) {
        return csrf_outcome(flow, failure, tp);
    }
    let traits = submitted_traits(&svc, &flow, &body, from_form)
        .or_else(|| flow.data.traits.clone())
        .unwrap_or_else(|| json!({}));
    let mut f = flow;
    let Some(pw) = body.get("password").and_then(Json::as_str).filter(|p| !p.is_empty()).map(str::to_string) else {
        f.ui.reset_messages();
        f.ui.fill_traits(&traits);
        f.ui.add_field_message("password", text::required("password"));
        sort(&svc, &mut f);
        return form(f, tp);
    };
    let Ok(extracted) = validate_traits(&svc, &mut f, &traits) else { return form(f, tp) };
    if extracted.password_identifiers.is_empty() {
        f.ui.reset_messages();
        f.ui.fill_traits(&traits);
        f.ui.clear_passwords();
        f.ui.messages.push(text::identifier_missing());
        sort(&svc, &mut f);
        return form(f, tp);
    }
    let policy = &svc.config.selfservice.methods.password.config;
    if let Some(problem) = super::password::check(
        policy,
        svc.config.hashers.algorithm,
        &svc.breaches,
        &extracted.password_identifiers,
        &pw,
    )
    .await
    {
        f.ui.reset_messages();
        f.ui.fill_traits(&traits);
        f.ui.clear_passwords();
        f.ui.add_field_message("password", problem);
        sort(&svc, &mut f);
        return form(f, tp);
    }
    let pw_len = pw.len();
    let hashed = match svc.identities.hashes.hash(pw.into_bytes()).await {
        Ok(h) => h,
        Err(crate::hash::HashError::TooLong) => {
            f.ui.reset_messages();
            f.ui.add_field_message("password", text::password_too_long(super::password::BCRYPT_MAX, pw_len));
            return form(f, tp);
        }
        Err(e) => return (f, Outcome::Error(Error::internal(&e))),
    };
    let now = svc.clock.now();
    let (schema_id, _) = schema_of(&svc, &f);
    let mut credential = new_credential("password", now);
    credential.config = json!({ "hashed_password": hashed });
    let mut identity = Identity {
        id: Uuid::new_v4(),
        schema_id,
        state: IdentityState::Active,
        state_changed_at: Some(now),
        traits: traits.clone(),
        metadata_public: None,
        metadata_admin: None,
        external_id: None,
        organization_id: None,
        credentials: [("password".to_string(), credential)].into_iter().collect(),
        verifiable_addresses: Vec::new(),
        recovery_addresses: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = svc.identities.apply_schema(&mut identity) {
        return (f, Outcome::Error(e));
    }
    if let Err(e) = svc.hooks.run_pre_persist(&svc, "password", &f, &info, &mut identity, tp.as_ref()).await {
        let outcome = e.into_outcome(f.clone(), tp);
        return (f, outcome);
    }
    // A parsing hook may have changed the traits: validate again.
    if identity.traits != traits {
        if validate_traits(&svc, &mut f, &identity.traits.clone()).is_err() {
            return form(f, tp);
        }
        if let Err(e) = svc.identities.apply_schema(&mut identity) {
            return (f, Outcome::Error(e));
        }
    }
    match svc.identities.insert(&identity).await {
        Ok(()) => {}
        Err(WriteError::Conflict(_)) => {
            f.ui.reset_messages();
            f.ui.clear_passwords();
            let hint = if svc.config.selfservice.flows.registration.login_hints {
                login_hint(&svc, &extracted.password_identifiers).await
            } else {
                None
            };
            f.ui.messages.push(hint.unwrap_or_else(text::duplicate_credentials));
            return form(f, tp);
        }
        Err(e) => return (f, Outcome::Error(Error::internal(&e))),
    }
    let outcome = finish(&svc, &mut f, identity, &info, tp).await;
    (f, outcome)
}

/// 4000028 for the account that already holds one of `identifiers`, when it has a way to sign in.
async fn login_hint(svc: &SelfService, identifiers: &[String]) -> Option<text::Text> {
    let mut pooled = svc.store.get().await.ok()?;
    for id in identifiers {
        let Ok(Some(existing)) =
            crate::persistence::identity::find_by_identifier(&mut pooled.conn(), "password", id).await
        else {
            continue;
        };
        let mut types: Vec<String> = existing
            .credentials
            .values()
            .filter(|c| {
                c.kind != "password"
                    || c.config.get("hashed_password").and_then(Json::as_str).is_some_and(|h| !h.is_empty())
            })
            .map(|c| c.kind.clone())
            .collect();
        types.sort();
        let mut providers: Vec<String> = existing
            .credentials
            .get("oidc")
            .and_then(|c| c.config.get("providers"))
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(|p| p.get("provider").and_then(Json::as_str).map(str::to_string)).collect())
            .unwrap_or_default();
        providers.sort();
        providers.dedup();
        if types.is_empty() && providers.is_empty() {
            return None;
        }
        return Some(text::duplicate_with_hints(id, &types, &providers));
    }
    None
}

/// After the identity exists: a session is issued and persisted (even without a `session`
/// hook, as Kratos), the post-persist hooks run, and the response is chosen.
async fn finish(
    svc: &SelfService,
    flow: &mut Flow,
    identity: Identity,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Outcome {
    let method_name = "password";
    let after = &svc.config.selfservice.flows.registration.after;
    let (redirect, mut continue_with) = match super::after_success(svc, after, method_name, flow, info) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let method = AuthMethod {
        method: method_name.into(),
        aal: Some(Aal::Aal1),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    };
    let (session, token) = match svc.sessions.issue(&identity, vec![method], Some(info.device.clone())).await {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e),
    };
    // The implicit `verification` hook runs first: a verification flow for the first
    // unverified address, its message sent.
    let mut verification = None;
    if svc.config.selfservice.flows.verification.enabled
        && let Some(address) = identity.verifiable_addresses.iter().find(|a| !a.verified && !a.value.is_empty())
    {
        // The identity exists: a verification message that cannot be sent does not undo it.
        match super::verification::start_for_address(svc, flow.flow_type, info, address, flow.return_to.clone(), false)
            .await
        {
            Ok(v) => verification = Some(v),
            Err(e) => tracing::warn!(error = %e, "registration: no verification flow"),
        }
    }
    let point = HookPoint { kind: FlowKind::Registration, stage: Stage::After, method: method_name };
    if let Err(e) = svc.hooks.run_after(svc, point, flow, info, &identity, Some(&session), tp.as_ref()).await {
        return e.into_outcome(flow.clone(), tp);
    }
    let hooks = super::hooks::after_hooks(svc, FlowKind::Registration, method_name);
    let mut redirect = redirect;
    let mut new_csrf = None;
    if let Some((vflow, item)) = verification {
        if vflow.flow_type == FlowType::Browser {
            new_csrf = Some(vflow.csrf_token.clone());
        }
        if hooks.iter().any(|h| h.hook == "show_verification_ui") {
            if let Some(url) = item.pointer("/flow/url").and_then(Json::as_str) {
                redirect = url.to_string();
            }
            continue_with.push(item);
        }
    }
    let session_hook = hooks.iter().any(|h| h.hook == "session");
    if session_hook && flow.flow_type == FlowType::Api {
        continue_with.push(json!({"action": "set_ory_session_token", "ory_session_token": token}));
    }
    Outcome::Done(Box::new(Done {
        flow: flow.clone(),
        identity,
        session: Some((session, token)),
        set_cookie: session_hook && flow.flow_type == FlowType::Browser,
        expose_session: session_hook,
        continue_with,
        redirect,
        new_csrf,
    }))
}
