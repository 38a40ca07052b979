//! The registration flow (behaviour.md §6): two steps (`profile_first`, the default: the
//! traits, then how to sign in) or one form; a method turns a submit into a new identity,
//! which the flow stores (after the pre-persist hooks) and signs in.

use super::login::check_identity_schema;
use super::{Flow, FlowKind, FlowType, expiry, verification};
use crate::catalogue as text;
use crate::config::Config;
use crate::error::{Error, FlowName};
use crate::identity::Identity;
use crate::persistence::WriteError;
use crate::selfservice::SelfService;
use crate::selfservice::form::Submit;
use crate::selfservice::hook::{self, HookPoint, Stage};
use crate::selfservice::redirect;
use crate::selfservice::step::{Done, Init, Outcome, RequestInfo, Stepped, flow_message};
use crate::selfservice::strategy::{RegistrationForm, RegistrationStep, oidc};
use crate::selfservice::traits;
use crate::selfservice::ui::{self, Input, group};
use crate::session::{Aal, AuthMethod};
use serde_json::{Value as Json, json};

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

/// Whether registration takes two steps: `profile_first` with the profile method enabled.
pub fn two_step(config: &Config) -> bool {
    config.selfservice.flows.registration.two_step() && config.selfservice.methods.profile.enabled
}

/// Whether a submit may go to a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitGate {
    Proceed,
    /// Signed in: JSON clients get 400 `session_already_available` …
    AlreadySignedIn,
    /// … browsers are sent away.
    SignedInRedirect,
    /// Registration is disabled.
    Disabled,
}

/// The gate of a submit: is the caller signed in (and asking for JSON), is registration on.
pub fn gate_submit(signed_in: bool, json: bool, enabled: bool) -> SubmitGate {
    match (signed_in, json, enabled) {
        (true, true, _) => SubmitGate::AlreadySignedIn,
        (true, false, _) => SubmitGate::SignedInRedirect,
        (false, _, false) => SubmitGate::Disabled,
        (false, _, true) => SubmitGate::Proceed,
    }
}

/// The form a new registration flow shows.
pub fn first_form(two_step: bool) -> RegistrationForm {
    if two_step { RegistrationForm::Profile } else { RegistrationForm::OneStep }
}

fn populate(svc: &SelfService, flow: &mut Flow, form: RegistrationForm) {
    for s in svc.strategies.registration() {
        s.populate(svc, flow, form);
    }
}

/// Fills a fresh registration flow's UI (step one, or the one-step form).
fn build_ui(svc: &SelfService, flow: &mut Flow) {
    let (_, schema) = svc.schema_of(flow);
    flow.ui.nodes.push(ui::csrf_node());
    flow.ui.nodes.extend(ui::trait_nodes(&schema, group::DEFAULT));
    populate(svc, flow, first_form(two_step(&svc.config)));
    flow.ui.sort_registration(&schema);
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
    let challenge = crate::selfservice::hydra::challenge_of(&svc.config, params.login_challenge.as_deref())?;
    let identity_schema = check_identity_schema(svc, params.identity_schema.as_deref())?;
    let default = redirect::default_return(&svc.config);
    if let Some(r) = params.return_to.as_deref().filter(|r| !r.is_empty()) {
        redirect::validate(&svc.config, r, &default).map_err(redirect::Forbidden::into_error)?;
    }
    // Sent by the OAuth2 provider while signed in: the provider's login request is accepted
    // with this session when it may skip the sign-in, else the browser signs in again (login
    // flow, same query; `return_to` = the provider's request with `override_return_to`).
    if let (Some(c), Some(live), FlowType::Browser) = (&challenge, info.session.as_ref(), flow_type) {
        let lr = svc.hydra.login_request(&svc.config, c).await?;
        if lr.skip {
            let to = svc.hydra.accept(&svc.config, c, &live.session).await?;
            if info.html_for(flow_type) {
                return Ok(Init::SignedIn(to));
            }
            return Err(Error::AlreadySignedIn(FlowName::Registration));
        }
        let mut set = Vec::new();
        if svc.config.oauth2_provider.override_return_to && !lr.request_url.is_empty() {
            set.push(("return_to", lr.request_url.clone()));
        }
        let query = url::Url::parse(&redirect::with_query_set(&info.url, &set))
            .ok()
            .and_then(|u| u.query().map(str::to_string))
            .unwrap_or_default();
        let mut to = format!("{}self-service/login/browser", svc.config.public_base_url());
        if !query.is_empty() {
            to.push('?');
            to.push_str(&query);
        }
        return Ok(Init::Found(to));
    }
    if info.session.is_some() {
        if info.html_for(flow_type) {
            let to = redirect::after_flow(&svc.config, None, &info.url, &default)
                .map_err(redirect::Forbidden::into_error)?;
            return Ok(Init::SignedIn(to));
        }
        return Err(Error::AlreadySignedIn(FlowName::Registration));
    }
    // The provider's login request is checked (it must exist) but not shown at creation, as
    // Kratos; `GET …/flows` shows it.
    if let (Some(c), FlowType::Browser) = (&challenge, flow_type) {
        svc.hydra.login_request(&svc.config, c).await?;
    }
    let mut flow = svc.new_flow(FlowKind::Registration, flow_type, info.url.clone(), csrf_real);
    flow.data.identity_schema = identity_schema;
    flow.data.oauth2_login_challenge = challenge;
    svc.hooks.run_before(FlowKind::Registration, &flow, info).await?;
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
    Ok(Init::Created { flow: Box::new(flow), exchange_code, oauth2_login_request: None })
}

fn form(flow: Flow, tp: Option<Json>) -> Stepped {
    (flow.clone(), Outcome::Form { flow, transient_payload: tp })
}

/// `POST /self-service/registration?flow=`: runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, submit: Submit, info: RequestInfo) -> Stepped {
    let tp = submit.transient_payload();
    let enabled = svc.config.selfservice.flows.registration.enabled;
    match gate_submit(info.session.is_some(), info.is_json, enabled) {
        SubmitGate::Proceed => {}
        SubmitGate::AlreadySignedIn => return (flow, Outcome::Error(Error::AlreadySignedIn(FlowName::Registration))),
        SubmitGate::SignedInRedirect => {
            let self_service = format!("{}self-service", svc.config.public_base_url());
            let to = redirect::return_to_of(&info.url)
                .filter(|r| r.starts_with(&self_service))
                .unwrap_or_else(|| redirect::default_return(&svc.config));
            return (flow, Outcome::SignedIn(to));
        }
        SubmitGate::Disabled => return (flow, Outcome::Error(disabled())),
    }
    if flow.is_expired(svc.clock.now()) {
        let message = text::registration_expired(flow.expires_at, svc.clock.now());
        let outcome = expiry::replace(&svc, &flow, &info, |f| build_ui(&svc, f), message).await;
        return (flow, outcome);
    }
    let method = svc.strategies.registration_method_of(&submit);
    if info.is_get() && submit.callback.is_none() && svc.strategies.is_registration_method(&method) {
        return flow_message(flow, text::generic(text::error::GET_NOT_ALLOWED), None);
    }
    let Some(strategy) = svc.strategies.registration().find(|s| s.handles(&method) && s.responsible(&svc)) else {
        let mut f = flow;
        f.ui.reset_messages();
        f.ui.messages.push(text::no_registration_strategy());
        return form(f, tp);
    };
    match strategy.register(&svc, flow, &submit, &info).await {
        RegistrationStep::Answer(stepped) => *stepped,
        RegistrationStep::ShowCredentials { flow, traits } => credentials_step(&svc, flow, traits, tp),
        RegistrationStep::ShowProfile { flow, traits } => profile_step(&svc, flow, traits, tp),
        RegistrationStep::Create { flow, identity, identifiers } => {
            create(&svc, flow, *identity, identifiers, &method, None, &info, tp).await
        }
        RegistrationStep::Provider { flow, identity, provider } => {
            provider_account(&svc, flow, *identity, &provider, &info, tp).await
        }
    }
}

/// A provider account registers: its traits must fit the schema (else a form to complete
/// them, which goes through the provider again), then it is created and signed in.
pub async fn provider_account(
    svc: &SelfService,
    mut flow: Flow,
    identity: Identity,
    provider: &str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    let (_, schema) = svc.schema_of(&flow);
    let mut checked = flow.clone();
    let Some(extracted) = traits::validate(svc, &mut checked, &identity.traits) else {
        oidc::complete_form(svc, &mut flow, provider);
        let _ = traits::validate(svc, &mut flow, &identity.traits);
        flow.ui.sort_registration(&schema);
        return form(flow, tp);
    };
    create(svc, flow, identity, extracted.password_identifiers, "oidc", Some(provider), info, tp).await
}

/// A provider sign-in on a login flow whose account has no identity: it registers in a new
/// registration flow (returned with the answer; the caller stores it).
pub async fn from_provider(
    svc: &SelfService,
    from: &Flow,
    identity: Identity,
    provider: &str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    let mut flow = from.successor(&svc.config, svc.clock.now(), FlowKind::Registration);
    if !svc.config.selfservice.flows.registration.enabled {
        return (flow, Outcome::Error(disabled()));
    }
    if let Err(e) = svc.hooks.run_before(FlowKind::Registration, &flow, info).await {
        return (flow, Outcome::Error(e));
    }
    build_ui(svc, &mut flow);
    provider_account(svc, flow, identity, provider, info, tp).await
}

/// Two-step registration, step two: the accepted traits hidden, a way back, and what
/// `populate` adds (every credential method's inputs).
pub fn to_credentials_step(flow: &mut Flow, traits: Json, schema: &Json, populate: impl FnOnce(&mut Flow)) {
    flow.ui.reset_messages();
    flow.active = None;
    flow.ui.messages.push(text::registration_choose_credentials());
    flow.ui.nodes.retain(|n| !(n.name() == "method" && n.group == group::PROFILE) && n.name() != "screen");
    for n in &mut flow.ui.nodes {
        if n.group == group::DEFAULT && n.kind == "input" && n.name() != "csrf_token" {
            n.attributes.insert("type".into(), "hidden".into());
        }
    }
    flow.ui.fill_traits(&traits);
    flow.ui
        .nodes
        .push(Input::new(group::PROFILE, "screen", "submit").value("previous").label(text::registration_back()).node());
    populate(flow);
    flow.data.traits = Some(traits);
    flow.ui.sort_registration(schema);
}

/// Two-step registration, back to step one: the trait inputs with `traits` filled in and
/// what `populate` adds (the profile submit).
pub fn to_profile_step(flow: &mut Flow, traits: &Json, schema: &Json, populate: impl FnOnce(&mut Flow)) {
    flow.ui.reset_messages();
    flow.ui.nodes.retain(|n| n.name() == "csrf_token");
    flow.ui.nodes.extend(ui::trait_nodes(schema, group::DEFAULT));
    populate(flow);
    flow.ui.fill_traits(traits);
    flow.data.organization_id = None;
    flow.ui.sort_registration(schema);
}

fn credentials_step(svc: &SelfService, mut flow: Flow, traits: Json, tp: Option<Json>) -> Stepped {
    let (_, schema) = svc.schema_of(&flow);
    to_credentials_step(&mut flow, traits, &schema, |f| populate(svc, f, RegistrationForm::Credentials));
    form(flow, tp)
}

fn profile_step(svc: &SelfService, mut flow: Flow, traits: Json, tp: Option<Json>) -> Stepped {
    let (_, schema) = svc.schema_of(&flow);
    to_profile_step(&mut flow, &traits, &schema, |f| populate(svc, f, RegistrationForm::Profile));
    form(flow, tp)
}

/// A method built `identity`: the pre-persist hooks may refuse or change it, then it is
/// stored (a taken identifier shows 4000007, or 4000028 with login hints; a provider account
/// goes to a login flow that links it) and signed in.
#[allow(clippy::too_many_arguments)]
async fn create(
    svc: &SelfService,
    flow: Flow,
    mut identity: Identity,
    identifiers: Vec<String>,
    method: &str,
    provider: Option<&str>,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    let mut f = flow;
    if let Err(e) = svc.identities.apply_schema(&mut identity) {
        return (f, Outcome::Error(e));
    }
    let traits = identity.traits.clone();
    if let Err(e) =
        svc.hooks.run_pre_persist(FlowKind::Registration, method, &f, info, &mut identity, tp.as_ref()).await
    {
        let outcome = e.into_outcome(f.clone(), tp);
        return (f, outcome);
    }
    // A parsing hook may have changed the traits: validate again.
    if identity.traits != traits {
        if traits::validate(svc, &mut f, &identity.traits.clone()).is_none() {
            return form(f, tp);
        }
        if let Err(e) = svc.identities.apply_schema(&mut identity) {
            return (f, Outcome::Error(e));
        }
    }
    match svc.identities.insert(&identity).await {
        Ok(()) => {}
        Err(WriteError::Conflict(_)) if provider.is_some() => {
            let provider = provider.unwrap_or_default();
            let duplicate = duplicate_identifier(svc, &identity).await;
            let entry = identity
                .credentials
                .get("oidc")
                .and_then(|c| c.config.get("providers"))
                .and_then(|p| p.get(0))
                .cloned()
                .unwrap_or_default();
            f.ui.reset_messages();
            f.ui.messages.push(text::duplicate_credentials());
            let (login, outcome) = super::login::linking(svc, &f, &duplicate, provider, &entry, tp).await;
            svc.flows.create(login).await;
            return (f, outcome);
        }
        Err(WriteError::Conflict(_)) => {
            f.ui.reset_messages();
            f.ui.clear_passwords();
            let hint = if svc.config.selfservice.flows.registration.login_hints {
                login_hint(svc, &identifiers).await
            } else {
                None
            };
            f.ui.messages.push(hint.unwrap_or_else(text::duplicate_credentials));
            return form(f, tp);
        }
        Err(e) => return (f, Outcome::Error(Error::internal(&e))),
    }
    let outcome = finish(svc, &mut f, identity, method, provider, info, tp).await;
    (f, outcome)
}

/// The identifier of a new identity that an existing account holds (the first credential
/// identifier, then verifiable and recovery address, that is taken).
async fn duplicate_identifier(svc: &SelfService, identity: &Identity) -> String {
    let mut candidates: Vec<String> = identity
        .credentials
        .values()
        .filter(|c| c.kind != "oidc" && c.kind != "saml")
        .flat_map(|c| c.identifiers.iter().cloned())
        .collect();
    candidates.extend(identity.verifiable_addresses.iter().map(|a| a.value.clone()));
    candidates.extend(identity.recovery_addresses.iter().map(|a| a.value.clone()));
    for c in &candidates {
        if let Ok(Some(_)) =
            crate::selfservice::strategy::find_account(svc, &["password", "webauthn", "passkey", "code"], c).await
        {
            return c.clone();
        }
    }
    candidates.into_iter().next().unwrap_or_default()
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
    method_name: &str,
    provider: Option<&str>,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Outcome {
    let after = &svc.config.selfservice.flows.registration.after;
    let (redirect, mut continue_with) = match svc.after_success(after, method_name, flow, info) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let method = AuthMethod {
        method: method_name.into(),
        aal: Some(Aal::Aal1),
        completed_at: svc.clock.now(),
        provider: provider.map(str::to_string),
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
        // A sign-up the OAuth2 provider started: the verification finishes it (for browsers).
        let handoff =
            flow.data.oauth2_login_challenge.clone().filter(|_| flow.flow_type == FlowType::Browser).map(|challenge| {
                verification::OAuth2Handoff { challenge, session_id: session.id, token: token.clone() }
            });
        match verification::start_for_address(
            svc,
            flow.flow_type,
            info,
            address,
            flow.return_to.clone(),
            false,
            handoff,
        )
        .await
        {
            Ok(v) => verification = Some(v),
            Err(e) => tracing::warn!(error = %e, "registration: no verification flow"),
        }
    }
    let point = HookPoint { kind: FlowKind::Registration, stage: Stage::After, method: method_name };
    let starter = verification::Starter(svc);
    if let Err(e) = svc.hooks.run_after(point, flow, info, &identity, Some(&session), tp.as_ref(), &starter).await {
        return e.into_outcome(flow.clone(), tp);
    }
    let hooks = hook::after_hooks(&svc.config, FlowKind::Registration, method_name);
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
    // Started by the OAuth2 provider (browser flows): unless the verification UI comes first,
    // its login request is accepted with the new session and the browser goes back to it —
    // HTML always (with or without the `session` hook, as Kratos), a browser app (SPA) when
    // it got the session: Hydra's URL as the last `redirect_browser_to`.
    let verification_first = continue_with.iter().any(|i| i["action"] == "show_verification_ui");
    if flow.flow_type == FlowType::Browser
        && let Some(challenge) = flow.data.oauth2_login_challenge.clone()
        && !verification_first
        && (!info.is_json || session_hook)
    {
        match svc.hydra.accept(&svc.config, &challenge, &session).await {
            Ok(to) if info.is_json => {
                continue_with.retain(|i| i["action"] != "redirect_browser_to");
                continue_with.push(json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
            }
            Ok(to) => redirect = to,
            Err(e) => return Outcome::Error(e),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_in_and_disabled_submits_stop_at_the_gate() {
        assert_eq!(gate_submit(true, true, true), SubmitGate::AlreadySignedIn);
        assert_eq!(gate_submit(true, false, false), SubmitGate::SignedInRedirect, "a session outranks disabling");
        assert_eq!(gate_submit(false, true, false), SubmitGate::Disabled);
        assert_eq!(gate_submit(false, false, true), SubmitGate::Proceed);
    }

    fn schema() -> Json {
        json!({"properties": {"traits": {"type": "object", "properties": {
            "email": {"type": "string", "format": "email", "title": "E-Mail"},
            "name": {"type": "object", "properties": {"first": {"type": "string"}, "last": {"type": "string"}}}
        }}}})
    }

    #[test]
    fn profile_first_goes_to_the_credential_step_and_back() {
        let config = Config::default();
        let now = crate::clock::Clock::system().now();
        let mut flow =
            Flow::new(&config, now, FlowKind::Registration, FlowType::Browser, "https://x/".into(), "t".into());
        flow.ui.nodes.push(ui::csrf_node());
        flow.ui.nodes.extend(ui::trait_nodes(&schema(), group::DEFAULT));
        flow.ui.nodes.push(ui::submit_button(group::PROFILE, "profile", text::register()));
        let traits = json!({"email": "a@example.org", "name": {"first": "A"}});
        // Step two: traits kept as hidden inputs, a way back, the credential inputs.
        to_credentials_step(&mut flow, traits.clone(), &schema(), |f| {
            f.ui.nodes.push(ui::submit_button(group::PASSWORD, "password", text::register()))
        });
        assert_eq!(flow.ui.messages.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1040009]);
        assert_eq!(flow.data.traits.as_ref(), Some(&traits));
        let email = flow.ui.nodes.iter().find(|n| n.name() == "traits.email").map(|n| n.attributes.clone());
        assert_eq!(email.as_ref().and_then(|a| a.get("type")), Some(&json!("hidden")));
        assert_eq!(email.as_ref().and_then(|a| a.get("value")), Some(&json!("a@example.org")));
        let methods: Vec<(String, String)> = flow
            .ui
            .nodes
            .iter()
            .filter(|n| n.input_type() == "submit")
            .map(|n| (n.name().to_string(), n.attributes["value"].as_str().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(methods, vec![("method".into(), "password".into()), ("screen".into(), "previous".into())]);
        // Back: the visible trait form again with the values, and the profile submit.
        to_profile_step(&mut flow, &traits, &schema(), |f| {
            f.ui.nodes.push(ui::submit_button(group::PROFILE, "profile", text::register()))
        });
        assert!(flow.ui.messages.is_empty());
        let names: Vec<&str> = flow.ui.nodes.iter().map(|n| n.name()).collect();
        assert_eq!(names, vec!["csrf_token", "traits.email", "traits.name.first", "traits.name.last", "method"]);
        assert!(flow.ui.nodes.iter().all(|n| n.input_type() != "hidden" || n.name() == "csrf_token"));
    }

    #[test]
    fn profile_first_needs_the_profile_method() {
        let mut c = Config::default();
        assert!(two_step(&c), "profile_first is the default");
        assert_eq!(first_form(two_step(&c)), RegistrationForm::Profile);
        c.selfservice.methods.profile.enabled = false;
        assert!(!two_step(&c));
        c.selfservice.methods.profile.enabled = true;
        c.selfservice.flows.registration.enable_legacy_one_step = true;
        assert_eq!(first_form(two_step(&c)), RegistrationForm::OneStep);
    }
}
