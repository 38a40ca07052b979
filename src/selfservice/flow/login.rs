//! The login flow (behaviour.md §5): creation by the session/refresh/AAL decision table,
//! submits handed to the method they name, and what happens after a method authenticated the
//! identity (session issued or refreshed, after-login hooks, the answer).

use super::{Flow, FlowKind, FlowType, expiry, verification};
use crate::catalogue as text;
use crate::config::LoginStyle;
use crate::error::{Error, FlowName};
use crate::identity::Identity;
use crate::selfservice::SelfService;
use crate::selfservice::form::Submit;
use crate::selfservice::hook::{self, HookPoint, Stage};
use crate::selfservice::hydra;
use crate::selfservice::redirect;
use crate::selfservice::step::{Done, Init, Outcome, RequestInfo, Stepped, flow_message};
use crate::selfservice::strategy::{LoginForm, LoginStep, oidc};
use crate::selfservice::ui;
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

/// How a request to create a login flow is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitDecision {
    /// A new flow; `refresh`: it re-authenticates the caller's session; `of_session`: it
    /// refreshes or upgrades that session (same id afterwards).
    Create { refresh: bool, of_session: bool },
    /// A signed-in HTML browser is sent to the return URL instead.
    SignedIn,
    /// 400 `session_already_available`.
    AlreadySignedIn,
    /// 401 `session_aal1_required`.
    Aal1Required,
}

/// Flow creation's decision table: the caller's session AAL (if signed in) × `refresh` × the
/// requested AAL; `html`: an HTML browser asking for a browser flow.
pub fn decide_init(session: Option<Aal>, refresh: bool, requested: Aal, html: bool) -> InitDecision {
    match session {
        None if requested == Aal::Aal2 => InitDecision::Aal1Required,
        None => InitDecision::Create { refresh: false, of_session: false },
        Some(_) if refresh => InitDecision::Create { refresh: true, of_session: true },
        Some(aal) if requested > aal => InitDecision::Create { refresh: false, of_session: true },
        Some(_) if html => InitDecision::SignedIn,
        Some(_) => InitDecision::AlreadySignedIn,
    }
}

/// Whether a submit may go to a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitGate {
    Proceed,
    /// Signed in, nothing to refresh or upgrade: an HTML browser is sent away.
    SignedInRedirect,
    /// Signed in, nothing to refresh or upgrade: the flow shows why (4000001).
    SignedInMessage,
    /// An aal2 flow without any session.
    Aal1Required,
}

/// The gate of a submit: the caller's session AAL × the flow's `refresh` and requested AAL.
pub fn gate_submit(session: Option<Aal>, refresh: bool, requested: Aal, html: bool) -> SubmitGate {
    match session {
        Some(aal) if !refresh && requested <= aal => {
            if html {
                SubmitGate::SignedInRedirect
            } else {
                SubmitGate::SignedInMessage
            }
        }
        Some(_) => SubmitGate::Proceed,
        None if requested == Aal::Aal2 => SubmitGate::Aal1Required,
        None => SubmitGate::Proceed,
    }
}

/// Which form a login flow shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    FirstFactor,
    Refresh,
    Identification,
    SecondFactor,
}

/// The form of a flow that asks for `requested` (`refresh`: re-authentication; at aal2 with
/// the second factors, as Kratos' second-factor refresh).
pub fn form_for(requested: Aal, refresh: bool, style: LoginStyle) -> Form {
    if requested == Aal::Aal2 {
        Form::SecondFactor
    } else if refresh {
        Form::Refresh
    } else if style == LoginStyle::IdentifierFirst {
        Form::Identification
    } else {
        Form::FirstFactor
    }
}

/// Fills a fresh login flow's UI: every enabled method contributes to the form the flow
/// shows; `identity` is the signed-in identity of a refresh or AAL upgrade.
fn build_ui(svc: &SelfService, flow: &mut Flow, identity: Option<&Identity>) {
    let style = svc.config.selfservice.flows.login.style;
    build_ui_styled(svc, flow, identity, style);
}

/// [`build_ui`] with the login style given (a flow that links a provider account always
/// shows every first factor at once).
fn build_ui_styled(svc: &SelfService, flow: &mut Flow, identity: Option<&Identity>, style: LoginStyle) {
    let requested = flow.data.requested_aal.unwrap_or(Aal::Aal1);
    let form = match form_for(requested, flow.data.refresh, style) {
        Form::SecondFactor => {
            flow.ui.messages.push(if flow.data.refresh { text::login_reauth() } else { text::login_mfa() });
            identity.map(|identity| LoginForm::SecondFactor { identity })
        }
        Form::Refresh => {
            flow.ui.messages.push(text::login_reauth());
            identity.map(|identity| LoginForm::Refresh { identity })
        }
        Form::Identification => Some(LoginForm::Identification),
        Form::FirstFactor => Some(LoginForm::FirstFactor),
    };
    flow.ui.nodes.push(ui::csrf_node());
    if let Some(form) = form {
        let second = matches!(form, LoginForm::SecondFactor { .. });
        for s in svc.strategies.login().filter(|s| (s.aal(&svc.config) == Aal::Aal2) == second) {
            s.populate(svc, flow, form);
        }
    }
    flow.ui.sort_login();
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

/// Whether `session` has the AAL whoami requires of `identity` (`session.whoami.required_aal`).
pub fn aal_satisfied(config: &crate::config::Config, session: &Session, identity: &Identity) -> bool {
    let code_mfa = crate::selfservice::strategy::code::second_factor(config);
    let available = crate::session::registry::available_aal(identity, code_mfa);
    crate::session::satisfies(&config.session.whoami.required_aal, session.aal, available)
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
    let challenge = hydra::challenge_of(&svc.config, params.login_challenge.as_deref())?;
    let mut params = params;
    let mut request_url = info.url.clone();
    // A browser sent by the OAuth2 provider: its login request decides whether the user must
    // sign in again (`skip` false: refresh) and, with `override_return_to`, where to return.
    let mut login_request = None;
    if let (Some(c), FlowType::Browser) = (&challenge, flow_type) {
        let lr = svc.hydra.login_request(&svc.config, c).await?;
        let mut set = Vec::new();
        if !lr.skip {
            params.refresh = true;
            set.push(("refresh", "true".to_string()));
        }
        if svc.config.oauth2_provider.override_return_to && !lr.request_url.is_empty() {
            params.return_to = Some(lr.request_url.clone());
            set.push(("return_to", lr.request_url.clone()));
        }
        request_url = redirect::with_query_set(&request_url, &set);
        login_request = Some(lr);
    }
    let identity_schema = check_identity_schema(svc, params.identity_schema.as_deref())?;
    let default = redirect::default_return(&svc.config);
    if let Some(r) = params.return_to.as_deref().filter(|r| !r.is_empty()) {
        redirect::validate(&svc.config, r, &default).map_err(redirect::Forbidden::into_error)?;
    }
    let mut flow = svc.new_flow(FlowKind::Login, flow_type, request_url, csrf_real);
    flow.data.identity_schema = identity_schema;
    flow.data.requested_aal = Some(aal);
    flow.data.oauth2_login_challenge = challenge.clone();
    let session = info.session.as_ref().map(|l| &l.session);
    let mut identity = None;
    let decision = decide_init(session.map(|s| s.aal), params.refresh, aal, info.html_for(flow_type));
    // Signed in already and the provider need not ask again: its login request is accepted
    // with this session; the browser goes on to the provider (JSON clients get the usual 400).
    if let (InitDecision::SignedIn | InitDecision::AlreadySignedIn, Some(c), Some(s), FlowType::Browser) =
        (decision, &challenge, session, flow_type)
    {
        let to = svc.hydra.accept(&svc.config, c, s).await?;
        if decision == InitDecision::SignedIn {
            return Ok(Init::SignedIn(to));
        }
        return Err(Error::AlreadySignedIn(FlowName::Login));
    }
    match decision {
        InitDecision::Aal1Required => return Err(Error::Aal1Required),
        InitDecision::AlreadySignedIn => return Err(Error::AlreadySignedIn(FlowName::Login)),
        InitDecision::SignedIn => {
            let to = redirect::after_flow(&svc.config, None, &info.url, &default)
                .map_err(redirect::Forbidden::into_error)?;
            return Ok(Init::SignedIn(to));
        }
        InitDecision::Create { refresh, of_session } => {
            if let (true, Some(s)) = (of_session, session) {
                flow.data.refresh = refresh;
                identity = Some(svc.identities.get(s.identity_id).await?);
                flow.data.identity_id = Some(s.identity_id);
                flow.data.session_id = Some(s.id);
            }
        }
    }
    svc.hooks.run_before(FlowKind::Login, &flow, info).await?;
    build_ui(svc, &mut flow, identity.as_ref());
    if aal == Aal::Aal2
        && !flow.data.refresh
        && let Some(identity) = identity.as_ref()
    {
        for s in svc.strategies.login().filter(|s| s.aal(&svc.config) == Aal::Aal2) {
            flow = s.started(svc, flow, identity, info).await;
        }
    }
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
    Ok(Init::Created { flow: Box::new(flow), exchange_code, oauth2_login_request: login_request.map(|l| l.raw) })
}

/// `POST /self-service/login?flow=`: runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, submit: Submit, info: RequestInfo) -> Stepped {
    let tp = submit.transient_payload();
    let requested = flow.data.requested_aal.unwrap_or(Aal::Aal1);
    let session_aal = info.session.as_ref().map(|l| l.session.aal);
    match gate_submit(session_aal, flow.data.refresh, requested, info.html_for(flow.flow_type)) {
        SubmitGate::Proceed => {}
        SubmitGate::SignedInRedirect => return (flow, Outcome::Redirect(redirect::default_return(&svc.config))),
        SubmitGate::SignedInMessage => {
            return flow_message(flow, text::generic(text::error::LOGIN_ALREADY_SIGNED_IN), tp);
        }
        SubmitGate::Aal1Required => return (flow, Outcome::Error(Error::Aal1Required)),
    }
    // An AAL upgrade belongs to the session it was created for: another identity's session
    // must not finish it (its second factors were offered, and would be checked).
    let caller = info.session.as_ref().map(|l| l.session.identity_id);
    if requested == Aal::Aal2 && flow.data.identity_id.is_some() && caller != flow.data.identity_id {
        return (flow, Outcome::Error(Error::IdentityMismatch));
    }
    if flow.is_expired(svc.clock.now()) {
        let message = text::login_expired(flow.expires_at, svc.clock.now());
        let outcome = expiry::replace(
            &svc,
            &flow,
            &info,
            |f| {
                f.data.requested_aal = Some(Aal::Aal1);
                build_ui(&svc, f, None);
            },
            message,
        )
        .await;
        return (flow, outcome);
    }
    let method = svc.strategies.login_method_of(&submit);
    if info.is_get() && submit.callback.is_none() && svc.strategies.is_login_method(&method) {
        return flow_message(flow, text::generic(text::error::GET_NOT_ALLOWED), None);
    }
    let Some(strategy) = svc.strategies.login_method(&method).filter(|s| s.responsible(&svc, &flow)) else {
        let mut f = flow;
        f.ui.reset_messages();
        f.ui.messages.push(text::no_strategy());
        return (f.clone(), Outcome::Form { flow: f, transient_payload: tp });
    };
    let step = match strategy.login(&svc, flow, &submit, &info).await {
        LoginStep::Identified { flow, identity, identifier } => {
            identified(&svc, flow, identity, identifier, &submit, &info).await
        }
        other => other,
    };
    match step {
        LoginStep::Answer(stepped) => *stepped,
        LoginStep::Identified { flow, .. } => (flow.clone(), Outcome::Form { flow, transient_payload: tp }),
        LoginStep::Authenticated { mut flow, identity, method } => {
            let outcome = finish(&svc, &mut flow, identity, method, &info, tp).await;
            (flow, outcome)
        }
    }
}

/// Identifier-first, step two: the identifier kept (hidden) and what the account signs in
/// with. Nothing to offer → 4000037, unless account enumeration is mitigated (then an
/// unknown account gets a plausible form). When one method is the only first factor, it is
/// submitted right away (a login code is sent).
async fn identified(
    svc: &SelfService,
    flow: Flow,
    identity: Option<Identity>,
    identifier: String,
    submit: &Submit,
    info: &RequestInfo,
) -> LoginStep {
    let tp = submit.transient_payload();
    let mitigate = svc.config.security.account_enumeration.mitigate;
    let mut next = flow.clone();
    next.ui.nodes.retain(|n| !(n.name() == "method" && n.group == ui::group::IDENTIFIER_FIRST));
    if let Some(n) = next.ui.node_mut("identifier", None) {
        n.set_value(Some(identifier.clone().into()));
        n.attributes.insert("type".into(), "hidden".into());
    }
    next.active = Some("identifier_first".into());
    next.data.identifier = Some(identifier.clone());
    let firsts: Vec<_> = svc
        .strategies
        .login_named()
        .filter(|(id, s)| *id != "identifier_first" && s.aal(&svc.config) == Aal::Aal1 && s.responsible(svc, &next))
        .collect();
    // Step one's provider buttons make way for the ones this account has.
    next.ui.nodes.retain(|n| n.group != ui::group::OIDC);
    let before = next.ui.nodes.len();
    for (_, s) in &firsts {
        s.populate(svc, &mut next, LoginForm::Credentials { identity: identity.as_ref() });
    }
    if next.ui.nodes.len() == before && !mitigate {
        let shown =
            crate::selfservice::strategy::login_problem(flow, &identifier, "identifier", text::account_not_found(), tp);
        return LoginStep::Answer(Box::new(shown));
    }
    next.ui.sort_login();
    // Not with account enumeration mitigated: a code sent (or refused) would tell whether the
    // account exists. Not again once a step went further.
    if let [(_, only)] = firsts.as_slice()
        && let Some(method) = only.sole_factor_submit()
        && !mitigate
        && flow.state == super::State::ChooseMethod
    {
        let mut body = serde_json::json!({ "method": method, "identifier": identifier });
        for key in ["csrf_token", "transient_payload"] {
            if let Some(v) = submit.body.get(key) {
                body[key] = v.clone();
            }
        }
        return only.login(svc, next, &Submit::new(body, submit.from_form), info).await;
    }
    LoginStep::Answer(Box::new((next.clone(), Outcome::Form { flow: next, transient_payload: tp })))
}

/// A provider sign-in on a registration flow whose account has an identity: it signs in in
/// a new login flow (returned with the answer; the caller stores it).
pub async fn from_provider(
    svc: &SelfService,
    from: &Flow,
    identity: Identity,
    provider: &str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    let mut flow = from.successor(&svc.config, svc.clock.now(), FlowKind::Login);
    if identity.state != crate::model::identity::IdentityState::Active {
        return (flow, Outcome::Error(Error::IdentityDisabled));
    }
    if let Err(e) = svc.hooks.run_before(FlowKind::Login, &flow, info).await {
        return (flow, Outcome::Error(e));
    }
    build_ui_styled(svc, &mut flow, None, LoginStyle::Unified);
    let method = oidc::amr(provider, svc.clock.now());
    let outcome = finish(svc, &mut flow, identity, method, info, tp).await;
    (flow, outcome)
}

/// A provider account whose identifier (`duplicate`) an existing account holds: a new login
/// flow for that account (1010016), which links the provider account (`entry`) once the user
/// signed in with a way the account has. Returned with the answer; the caller stores it.
pub async fn linking(
    svc: &SelfService,
    from: &Flow,
    duplicate: &str,
    provider: &str,
    entry: &Json,
    tp: Option<Json>,
) -> Stepped {
    let mut flow = from.successor(&svc.config, svc.clock.now(), FlowKind::Login);
    build_ui_styled(svc, &mut flow, None, LoginStyle::Unified);
    oidc::to_linking_form(&svc.config, &mut flow, duplicate, provider);
    oidc::keep_link(svc, &mut flow, duplicate, provider, entry);
    (flow.clone(), Outcome::Form { flow, transient_payload: tp })
}

/// The provider link a linking flow keeps, for the identity that signed in: it must be the
/// account holding the duplicate identifier (else 4010009). An account with a second factor
/// gets no link from a first factor alone (Kratos waits for aal2); the user can link it in
/// settings. Returns the link entry and its provider.
fn pending_link(svc: &SelfService, flow: &Flow, identity: &Identity) -> Result<Option<(Json, String)>, Box<Stepped>> {
    let Some(link) = svc.kept_secret(flow, oidc::LINK_KEY) else { return Ok(None) };
    let duplicate = link.get("identifier").and_then(Json::as_str).unwrap_or_default().to_lowercase();
    let holds = identity
        .credentials
        .values()
        .filter(|c| c.kind != "oidc")
        .any(|c| c.identifiers.iter().any(|i| i.to_lowercase() == duplicate));
    if !holds {
        return Err(Box::new(flow_message(flow.clone(), text::linked_credentials_mismatch(), None)));
    }
    let code_mfa = crate::selfservice::strategy::code::second_factor(&svc.config);
    if crate::session::registry::available_aal(identity, code_mfa) == Aal::Aal2 {
        return Ok(None);
    }
    let provider = link.get("provider").and_then(Json::as_str).unwrap_or_default().to_string();
    Ok(Some((link.get("entry").cloned().unwrap_or_default(), provider)))
}

/// After a successful first or second factor: issue (or refresh) the session, run the
/// after-login hooks, and decide the response.
async fn finish(
    svc: &SelfService,
    flow: &mut Flow,
    mut identity: Identity,
    method: AuthMethod,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Outcome {
    let now = svc.clock.now();
    let method_name = method.method.clone();
    let link = match pending_link(svc, flow, &identity) {
        Ok(l) => l,
        Err(stepped) => {
            let (f, o) = *stepped;
            *flow = f;
            return o;
        }
    };
    let linked = link.as_ref().map(|(_, provider)| oidc::amr(provider, now));
    // A refresh or AAL upgrade of the caller's own session keeps that session.
    let reuse = info.session.as_ref().filter(|l| l.session.identity_id == identity.id).map(|l| l.session.id);
    // The session is built in memory; it is stored only once every after-login hook agreed.
    let issued: Result<(Session, String), Error> = match (reuse, info.session_token.clone()) {
        (Some(id), Some(token)) => {
            svc.sessions.reauthenticated(id, method, info.device.clone(), now).await.map(|s| (s, token))
        }
        _ => Ok(svc.sessions.build(
            &identity,
            [Some(method), linked].into_iter().flatten().collect(),
            Some(info.device.clone()),
        )),
    };
    let (session, token) = match issued {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e),
    };
    let after = &svc.config.selfservice.flows.login.after;
    let (mut redirect, mut continue_with) = match svc.after_success(after, &method_name, flow, info) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let point = HookPoint { kind: FlowKind::Login, stage: Stage::After, method: &method_name };
    let starter = verification::Starter(svc);
    if let Err(e) = svc.hooks.run_after(point, flow, info, &identity, Some(&session), tp.as_ref(), &starter).await {
        return e.into_outcome(flow.clone(), tp);
    }
    // The provider account is linked once the sign-in is certain (hooks agreed).
    if let Some((entry, _)) = link {
        oidc::add_link(&mut identity, entry, now);
        if let Err(e) = svc.identities.save_changed(&mut identity).await {
            let (f, o) = match e {
                Error::UniqueViolation => flow_message(flow.clone(), text::duplicate_credentials(), None),
                e => (flow.clone(), Outcome::Error(e)),
            };
            *flow = f;
            return o;
        }
        flow.data.internal.remove(oidc::LINK_KEY);
    }
    if let Err(e) = svc.sessions.save(&session, reuse.is_some() && info.session_token.is_some()).await {
        return Outcome::Error(e);
    }
    // An explicit `verification` hook (aal1 logins): a verification flow for the first
    // unverified address; `show_verification_ui` offers it to the client.
    let hooks = hook::after_hooks(&svc.config, FlowKind::Login, &method_name);
    if svc.config.selfservice.flows.verification.enabled
        && session.aal == Aal::Aal1
        && hooks.iter().any(|h| h.hook == "verification")
        && let Some(address) = identity.verifiable_addresses.iter().find(|a| !a.verified && !a.value.is_empty())
    {
        match verification::start_for_address(svc, flow.flow_type, info, address, flow.return_to.clone(), true, None)
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
    // Started by the OAuth2 provider: once the session is complete (its AAL as whoami
    // requires), the login request is accepted and the browser goes back to the provider.
    if flow.flow_type == FlowType::Browser
        && let Some(challenge) = flow.data.oauth2_login_challenge.clone()
        && aal_satisfied(&svc.config, &session, &identity)
    {
        let accepted = svc.hydra.accept(&svc.config, &challenge, &session).await;
        let inner = match accepted {
            Ok(to) if !info.is_json => {
                redirect = to;
                None
            }
            // A browser app (SPA) is told to send the browser there.
            Ok(to) => Some(Outcome::Error(Error::LocationChangeRequired { to })),
            Err(e) => Some(Outcome::Error(e)),
        };
        if let Some(inner) = inner {
            // Signed in either way: the session cookie is set (and a new CSRF token).
            return Outcome::WithCookies {
                csrf: Some(crate::selfservice::csrf::new_token()),
                session: Some(Box::new((session, token))),
                inner: Box::new(inner),
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_follows_the_session_refresh_aal_table() {
        use InitDecision::*;
        let (a1, a2) = (Aal::Aal1, Aal::Aal2);
        // No session: aal2 needs one; refresh means nothing without one.
        assert_eq!(decide_init(None, false, a1, true), Create { refresh: false, of_session: false });
        assert_eq!(decide_init(None, true, a1, false), Create { refresh: false, of_session: false });
        assert_eq!(decide_init(None, false, a2, true), Aal1Required);
        // A session: refresh re-authenticates it, a higher AAL upgrades it …
        assert_eq!(decide_init(Some(a1), true, a1, true), Create { refresh: true, of_session: true });
        assert_eq!(decide_init(Some(a2), true, a1, false), Create { refresh: true, of_session: true });
        assert_eq!(decide_init(Some(a1), false, a2, false), Create { refresh: false, of_session: true });
        // … anything else is already done: browsers go on, API and JSON clients get 400.
        assert_eq!(decide_init(Some(a1), false, a1, true), SignedIn);
        assert_eq!(decide_init(Some(a1), false, a1, false), AlreadySignedIn);
        assert_eq!(decide_init(Some(a2), false, a2, false), AlreadySignedIn);
    }

    #[test]
    fn submits_are_gated_the_same_way() {
        use SubmitGate::*;
        let (a1, a2) = (Aal::Aal1, Aal::Aal2);
        assert_eq!(gate_submit(None, false, a1, true), Proceed);
        assert_eq!(gate_submit(None, false, a2, false), Aal1Required);
        assert_eq!(gate_submit(Some(a1), true, a1, true), Proceed);
        assert_eq!(gate_submit(Some(a1), false, a2, false), Proceed);
        assert_eq!(gate_submit(Some(a1), false, a1, true), SignedInRedirect);
        assert_eq!(gate_submit(Some(a2), false, a1, false), SignedInMessage);
    }

    #[test]
    fn the_form_follows_aal_refresh_and_style() {
        use LoginStyle::{IdentifierFirst, Unified};
        assert_eq!(form_for(Aal::Aal2, false, Unified), Form::SecondFactor);
        assert_eq!(form_for(Aal::Aal2, true, Unified), Form::SecondFactor);
        assert_eq!(form_for(Aal::Aal1, true, IdentifierFirst), Form::Refresh);
        assert_eq!(form_for(Aal::Aal1, false, IdentifierFirst), Form::Identification);
        assert_eq!(form_for(Aal::Aal1, false, Unified), Form::FirstFactor);
    }
}
