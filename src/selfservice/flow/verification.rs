//! The verification flow (behaviour.md §9): an address is submitted, the method (`code`,
//! `link`) sends a secret, redeeming it marks the address verified. Responses follow Kratos'
//! negotiation for this flow: a browser request (`IsBrowserRequest`) is redirected to the
//! verification UI, anything else gets the flow as JSON. Other flows start verification
//! through [`start_for_address`] (their hooks through [`Starter`]).

use super::{Flow, FlowKind, FlowType, State};
use crate::catalogue as text;
use crate::error::{Error, FlowName};
use crate::identity::VerifiableAddress;
use crate::persistence::identity::{AddressKind, find_by_address};
use crate::persistence::selfservice::CodeRecord;
use crate::selfservice::challenge::{self, Mail};
use crate::selfservice::codes;
use crate::selfservice::form::Submit;
use crate::selfservice::hook::{HookPoint, Stage, VerificationStarter};
use crate::selfservice::step::{Outcome, RequestInfo, Stepped, check_csrf, csrf_outcome};
use crate::selfservice::strategy::{Redemption, VerificationStrategy};
use crate::selfservice::ui::{self, group};
use crate::selfservice::{SelfService, csrf, redirect};
use serde_json::{Value as Json, json};

/// 400: verification is disabled.
pub fn disabled() -> Error {
    Error::FlowDisabled(FlowName::Verification)
}

/// What a submit carries, as far as choosing an action goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The `method` it names.
    pub method: Option<&'a str>,
    /// It carries a `code`.
    pub has_code: bool,
    /// It carries a link `token`.
    pub has_token: bool,
    /// It carries an `email` (any non-null value).
    pub has_email: bool,
    /// It came with `GET` (a link from a message).
    pub get: bool,
}

/// What a verification submit asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No enabled method fits: the flow shows 4010006.
    NoMethod,
    /// The flow already succeeded: start over.
    RetrySucceeded,
    /// A code link was opened: the code goes into the form for the user to confirm.
    Prefill,
    /// Redeem the secret of this method.
    Redeem(&'static str),
    /// A `GET` with nothing to redeem: show the flow.
    ShowFlow,
    /// Send a message with this method.
    Send(&'static str),
}

/// Verification's state machine: the flow's state and configured method × what the submit
/// carries. Without a `method`, a token means `link` and a code means `code`.
pub fn decide(
    state: State,
    configured: &'static str,
    active: Option<&str>,
    enabled: &dyn Fn(&str) -> bool,
    facts: Facts<'_>,
) -> Action {
    let chosen = facts.method.or(if facts.has_token {
        Some("link")
    } else if facts.has_code {
        Some("code")
    } else {
        None
    });
    let Some(method) = challenge::resolve_method(configured, chosen, active, enabled) else { return Action::NoMethod };
    if state == State::PassedChallenge {
        return Action::RetrySucceeded;
    }
    match method {
        "code" if facts.has_code && facts.get => Action::Prefill,
        "code" if facts.has_code => Action::Redeem("code"),
        "link" if facts.has_token && !facts.has_email => Action::Redeem("link"),
        _ if facts.get => Action::ShowFlow,
        _ => Action::Send(method),
    }
}

fn strategy<'a>(svc: &'a SelfService, method: &str) -> Option<&'a dyn VerificationStrategy> {
    svc.strategies.verification_method(method)
}

/// `GET /self-service/verification/{browser,api}`.
pub async fn init(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    return_to: Option<&str>,
    csrf: String,
) -> Result<Flow, Error> {
    if !svc.config.selfservice.flows.verification.enabled {
        return Err(disabled());
    }
    let method = challenge::method(svc, FlowKind::Verification).ok_or_else(disabled)?;
    let strategy = strategy(svc, method).ok_or_else(disabled)?;
    svc.checked_return_to(return_to)?;
    let mut flow = svc.new_flow(FlowKind::Verification, flow_type, info.url.clone(), csrf);
    flow.active = Some(method.into());
    svc.hooks.run_before(FlowKind::Verification, &flow, info).await?;
    strategy.populate(&mut flow, None);
    svc.flows.create(flow.clone()).await;
    Ok(flow)
}

fn show(flow: Flow, info: &RequestInfo) -> Stepped {
    crate::selfservice::step::show(flow, true, info.is_browser)
}

/// `POST /self-service/verification?flow=` (and `GET` with `code` or `token` from a message):
/// runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, submit: Submit, info: RequestInfo) -> Stepped {
    let (flow, outcome) = submit_step(svc, flow, &submit, info).await;
    (flow, challenge::echo_transient_payload(&submit.body, outcome))
}

async fn submit_step(svc: SelfService, flow: Flow, submit: &Submit, info: RequestInfo) -> Stepped {
    if !svc.config.selfservice.flows.verification.enabled {
        return (flow, Outcome::Error(disabled()));
    }
    let Some(configured) = challenge::method(&svc, FlowKind::Verification) else {
        return (flow, Outcome::Error(disabled()));
    };
    let now = svc.clock.now();
    if flow.is_expired(now) {
        let new_flow = challenge::restart(&svc, &flow, text::verification_expired(flow.expires_at, now)).await;
        return (flow, challenge::redirect_to_new(&svc, &new_flow, info.html_for(new_flow.flow_type)));
    }
    let tp = submit.transient_payload();
    let facts = Facts {
        method: submit.trimmed("method"),
        has_code: submit.trimmed("code").is_some(),
        has_token: submit.trimmed("token").is_some(),
        has_email: submit.body.get("email").is_some_and(|e| !e.is_null()),
        get: info.is_get(),
    };
    let enabled = |m: &str| challenge::enabled(&svc, m);
    match decide(flow.state, configured, flow.active.as_deref(), &enabled, facts) {
        Action::NoMethod => challenge::no_method(flow, text::no_verification_strategy(), &info),
        Action::RetrySucceeded => {
            let new_flow = challenge::restart(&svc, &flow, text::verification_retry_success()).await;
            let outcome = retry_answer(&svc, &new_flow, "An error occured, please use the new flow.", &info);
            (flow, outcome)
        }
        Action::Prefill => prefill(&svc, flow, submit.trimmed("code").unwrap_or_default()),
        Action::Redeem(method) => redeem(&svc, flow, method, submit, &info).await,
        Action::ShowFlow => crate::selfservice::step::show(flow, true, true),
        Action::Send(method) => send(svc, flow, submit, method, &info, tp).await,
    }
}

/// The answer after a flow was replaced: JSON clients get 410 naming the new flow, others a
/// 303 to its UI.
fn retry_answer(svc: &SelfService, new_flow: &Flow, reason: &str, info: &RequestInfo) -> Outcome {
    if info.is_json {
        challenge::with_new_csrf(new_flow, Outcome::Error(challenge::replaced_error(new_flow, reason)))
    } else {
        challenge::redirect_to_new(svc, new_flow, true)
    }
}

/// Sends a code or link to the submitted address.
async fn send(
    svc: SelfService,
    flow: Flow,
    submit: &Submit,
    method: &'static str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    if let Err(failure) = check_csrf(&flow, info, &submit.body) {
        return csrf_outcome(flow, failure, tp);
    }
    let Some(strategy) = strategy(&svc, method) else {
        return challenge::no_method(flow, text::no_verification_strategy(), info);
    };
    let raw = submit.body.get("email").and_then(Json::as_str).map(str::to_string);
    let email = match challenge::submitted_email(&submit.body) {
        Ok(e) => e,
        Err(m) => return challenge::email_problem(flow, method, raw.as_deref(), m, info),
    };
    let flow = match challenge::reserve_send(&svc, flow, &email, info, tp.clone()).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    // The answer is the same for every address; the message follows it.
    let (task_svc, task_flow, address, payload) = (svc.clone(), flow.clone(), email.clone(), tp.clone());
    svc.outbox.send_latest(flow.id, async move {
        deliver(&task_svc, &task_flow, method, &address, "email", payload.as_ref()).await
    });
    let mut f = flow;
    mark_sent(&mut f, strategy, method, &email, true);
    show(f, info)
}

/// Moves the flow to `sent_email` for `address` (alike for every address).
fn mark_sent(f: &mut Flow, strategy: &dyn VerificationStrategy, method: &str, address: &str, resend: bool) {
    f.state = State::SentEmail;
    f.active = Some(method.into());
    f.data.address = Some(address.into());
    f.ui.reset_messages();
    strategy.sent(f, address, resend);
}

/// Sends the message for `address`: a known verifiable address gets a new secret (the flow's
/// earlier ones are forgotten) in the valid template; an unknown one the invalid template if
/// configured, else nothing.
async fn deliver(
    svc: &SelfService,
    flow: &Flow,
    method: &'static str,
    address: &str,
    via: &str,
    tp: Option<&Json>,
) -> Result<(), Error> {
    // Looked up where used: a strategy is not `Sync`, and this runs on a task of its own.
    let enabled = || strategy(svc, method).ok_or_else(disabled);
    enabled()?;
    codes::forget(svc, flow.id).await?;
    let identity = {
        let mut pooled = svc.store.get().await?;
        find_by_address(&mut pooled.conn(), AddressKind::Verifiable, via, address).await?
    };
    let expires_in = challenge::lifespan(svc, method);
    match &identity {
        Some(identity) => {
            let issue = codes::Issue {
                flow,
                method,
                identity_id: Some(identity.id),
                address,
                via,
                expires_at: svc.clock.now() + expires_in,
                by_admin: false,
            };
            let secret = codes::issue(svc, issue).await?;
            let message = enabled()?.message(svc, flow, &secret);
            let mail = Mail {
                template: message.template,
                to: address,
                via,
                identity: Some(identity),
                traits: None,
                fields: message.fields,
                transient_payload: tp,
                expires_in,
            };
            challenge::send(svc, flow, mail).await?;
            svc.identities.mark_sent(identity.id, address).await
        }
        None if svc.config.selfservice.flows.verification.notify_unknown_recipients && via == "email" => {
            let mail = Mail {
                template: enabled()?.unknown_template(),
                to: address,
                via,
                identity: None,
                traits: None,
                fields: Vec::new(),
                transient_payload: tp,
                expires_in,
            };
            challenge::send(svc, flow, mail).await
        }
        None => Ok(()),
    }
}

/// `GET …?flow=&code=` (the link in a code message, upstream's `handleLinkClick`): the code
/// lands in the form for the user to confirm. The link may be opened in another browser than
/// the one that started the flow, so the opener gets a fresh CSRF token, stored on the flow
/// and set as its cookie: the UI can then read and submit the flow.
fn prefill(svc: &SelfService, flow: Flow, code: &str) -> Stepped {
    let mut f = flow;
    if f.ui.node_mut("code", None).is_none() {
        let address = f.data.address.clone();
        challenge::code_sent_ui(&mut f, address.as_deref());
    }
    if let Some(n) = f.ui.node_mut("code", None) {
        n.set_value(Some(code.into()));
    }
    let token = csrf::new_token();
    f.csrf_token = token.clone();
    let to = redirect::with_query(svc.ui_url(FlowKind::Verification), "flow", &f.id.to_string());
    (f, Outcome::WithCookies { csrf: Some(token), session: None, inner: Box::new(Outcome::Redirect(to)) })
}

/// Too many submissions or an already-used code: a new flow with 4000001.
async fn replaced(svc: &SelfService, flow: &Flow, reason: &str, info: &RequestInfo) -> Outcome {
    let new_flow = challenge::restart(svc, flow, text::generic(reason)).await;
    retry_answer(svc, &new_flow, "An error occured, please retry the flow.", info)
}

/// Redeems the submitted secret with `method` and answers as it found.
async fn redeem(svc: &SelfService, flow: Flow, method: &str, submit: &Submit, info: &RequestInfo) -> Stepped {
    let Some(strategy) = strategy(svc, method) else {
        return challenge::no_method(flow, text::no_verification_strategy(), info);
    };
    let redemption = match strategy.redeem(svc, &flow, submit, info).await {
        Ok(r) => r,
        Err(e) => return (flow, Outcome::Error(e)),
    };
    match redemption {
        Redemption::Valid(record) => succeed(svc, flow, &record, info).await,
        Redemption::Invalid(message) => {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(message);
            show(f, info)
        }
        Redemption::Retry(reason) => {
            let outcome = replaced(svc, &flow, reason, info).await;
            (flow, outcome)
        }
        Redemption::Expired { at, in_browser } => {
            let mut from = flow.clone();
            if in_browser {
                from.flow_type = FlowType::Browser;
            }
            let outcome = expired_code(svc, &from, at, info).await;
            (flow, outcome)
        }
        Redemption::RestartInBrowser(message) => {
            let mut as_browser = flow.clone();
            as_browser.flow_type = FlowType::Browser;
            let new_flow = challenge::restart(svc, &as_browser, message).await;
            (flow, retry_answer(svc, &new_flow, "An error occured, please use the new flow.", info))
        }
        Redemption::Csrf(failure) => csrf_outcome(flow, failure, submit.transient_payload()),
    }
}

/// An expired code: a new flow with 4070005; JSON clients get 410 naming it.
async fn expired_code(
    svc: &SelfService,
    flow: &Flow,
    expired_at: chrono::DateTime<chrono::Utc>,
    info: &RequestInfo,
) -> Outcome {
    let now = svc.clock.now();
    let new_flow = challenge::restart(svc, flow, text::verification_expired(expired_at, now)).await;
    if info.is_json {
        let e = challenge::expired_error(expired_at, now, Some(new_flow.id));
        challenge::with_new_csrf(&new_flow, Outcome::Error(e))
    } else {
        challenge::redirect_to_new(svc, &new_flow, true)
    }
}

/// Where "continue" leads after verification: the flow's `return_to` if allowed, else
/// `verification.after.default_browser_return_url`, else the global default.
fn continue_url(svc: &SelfService, flow: &Flow) -> String {
    let default = svc
        .config
        .selfservice
        .flows
        .verification
        .after
        .default_browser_return_url
        .clone()
        .unwrap_or_else(|| redirect::default_return(&svc.config));
    flow.return_to.as_deref().and_then(|r| redirect::validate(&svc.config, r, &default).ok()).unwrap_or(default)
}

async fn succeed(svc: &SelfService, flow: Flow, record: &CodeRecord, info: &RequestInfo) -> Stepped {
    let mut f = flow;
    let identity = match record.identity_id {
        Some(id) => match svc.identities.mark_verified(id, &record.address_value).await {
            Ok(i) => Some(i),
            Err(e) => return (f, Outcome::Error(e)),
        },
        None => None,
    };
    let to = continue_url(svc, &f);
    f.state = State::PassedChallenge;
    f.ui.method = "GET".into();
    f.ui.action = to.clone();
    let g = challenge::method_group(f.active.as_deref().unwrap_or("code"));
    f.ui.nodes = vec![ui::anchor(g, "continue", &to, text::label_continue())];
    f.ui.messages = vec![text::verification_successful()];
    if let Some(identity) = &identity {
        let point = HookPoint { kind: FlowKind::Verification, stage: Stage::After, method: "code" };
        let starter = Starter(svc);
        if let Err(e) = svc.hooks.run_after(point, &mut f, info, identity, None, None, &starter).await {
            let outcome = e.into_outcome(f.clone(), None);
            return (f, outcome);
        }
    }
    // A sign-up the OAuth2 provider started: its login request is accepted now, the browser
    // signed in and sent back to the provider (JSON: the continue link leads there).
    if f.flow_type == FlowType::Browser
        && let Some(challenge) = f.data.oauth2_login_challenge.clone()
    {
        let session = match f.data.session_id {
            Some(id) => svc.sessions.find(id).await,
            None => Ok(None),
        };
        let session = match session {
            Ok(Some(s)) => s,
            Ok(None) => {
                let e = Error::invalid("No session was found for this flow. Please retry the authentication.");
                return (f, Outcome::Error(e));
            }
            Err(e) => return (f, Outcome::Error(e)),
        };
        let to = match svc.hydra.accept(&svc.config, &challenge, &session).await {
            Ok(to) => to,
            Err(e) => return (f, Outcome::Error(e)),
        };
        f.ui.action = to.clone();
        f.ui.nodes = vec![ui::anchor(g, "continue", &to, text::label_continue())];
        let token = svc.kept_secret(&f, OAUTH2_SESSION_KEY).and_then(|v| v["token"].as_str().map(str::to_string));
        let inner = if info.is_json { show(f.clone(), info).1 } else { Outcome::Redirect(to) };
        let outcome =
            Outcome::WithCookies { csrf: None, session: token.map(|t| Box::new((session, t))), inner: Box::new(inner) };
        return (f, outcome);
    }
    show(f, info)
}

/// A sign-up the OAuth2 provider started, handed to the verification that follows it: once the
/// address is verified, the provider's login request is accepted with this session.
pub struct OAuth2Handoff {
    pub challenge: String,
    pub session_id: uuid::Uuid,
    /// The session's token (kept sealed in the flow): the browser gets the session cookie.
    pub token: String,
}

/// Where a verification flow keeps the session of an [`OAuth2Handoff`].
const OAUTH2_SESSION_KEY: &str = "oauth2_session";

/// A verification flow created by another flow (after registration, login or settings) for
/// one address: the message is sent at once and the flow starts in `sent_email`. Returns the
/// flow and its `show_verification_ui` item.
pub async fn start_for_address(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    address: &VerifiableAddress,
    return_to: Option<String>,
    keep_csrf: bool,
    handoff: Option<OAuth2Handoff>,
) -> Result<(Flow, Json), Error> {
    let method = challenge::method(svc, FlowKind::Verification).unwrap_or("code");
    if method == "link" && address.via != "email" {
        return Err(Error::invalid("Verification links can only be sent to e-mail addresses."));
    }
    let strategy = strategy(svc, method).ok_or_else(disabled)?;
    // As Kratos: after registration a browser's CSRF token is regenerated for the new flow;
    // after a refused login the browser's token is kept.
    let csrf = match info.csrf_cookie.clone().filter(|t| keep_csrf && csrf::is_valid(t)) {
        Some(t) => t,
        None => csrf::new_token(),
    };
    let mut flow = svc.new_flow(FlowKind::Verification, flow_type, info.url.clone(), csrf);
    flow.return_to = return_to;
    if let Some(h) = handoff {
        flow.data.oauth2_login_challenge = Some(h.challenge);
        flow.data.session_id = Some(h.session_id);
        svc.keep_secret(&mut flow, OAUTH2_SESSION_KEY, &json!({ "token": h.token }));
    }
    strategy.populate(&mut flow, None);
    if let Err(e) = deliver(svc, &flow, method, &address.value, &address.via, None).await {
        tracing::error!(flow_id = %flow.id, error = %e, "verification: the message could not be queued");
    }
    mark_sent(&mut flow, strategy, method, &address.value, false);
    // The resend button carries the address, named after its channel.
    flow.ui.nodes.push(
        ui::Input::new(group::CODE, if address.via == "sms" { "sms" } else { "email" }, "submit")
            .value(address.value.as_str())
            .label(text::label_resend())
            .node(),
    );
    svc.flows.create(flow.clone()).await;
    let mut item =
        json!({"action": "show_verification_ui", "flow": {"id": flow.id, "verifiable_address": address.value}});
    if flow_type == FlowType::Browser
        && let Some(f) = item.get_mut("flow").and_then(Json::as_object_mut)
    {
        f.insert(
            "url".into(),
            json!(redirect::with_query(svc.ui_url(FlowKind::Verification), "flow", &flow.id.to_string())),
        );
    }
    Ok((flow, item))
}

/// Starts verification flows for hooks (`require_verified_address`).
pub struct Starter<'a>(pub &'a SelfService);

#[async_trait::async_trait(?Send)]
impl VerificationStarter for Starter<'_> {
    async fn start(
        &self,
        flow_type: FlowType,
        info: &RequestInfo,
        address: &VerifiableAddress,
        return_to: Option<String>,
        keep_csrf: bool,
    ) -> Result<(Flow, Json), Error> {
        start_for_address(self.0, flow_type, info, address, return_to, keep_csrf, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(_: &str) -> bool {
        true
    }

    #[test]
    fn verification_state_machine() {
        use Action::*;
        // Choosing a method: the submit names it (the form's button does).
        let email = Facts { has_email: true, ..Facts::default() };
        assert_eq!(decide(State::ChooseMethod, "code", Some("code"), &both, email), NoMethod);
        let named = Facts { method: Some("code"), has_email: true, ..Facts::default() };
        assert_eq!(decide(State::ChooseMethod, "code", Some("code"), &both, named), Send("code"));
        // A code from a message: opened (GET) it pre-fills the form; submitted it is redeemed.
        let link = Facts { has_code: true, get: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, link), Prefill);
        let code = Facts { has_code: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, code), Redeem("code"));
        // A link token redeems; with an address it sends again.
        let token = Facts { has_token: true, get: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "link", Some("link"), &both, token), Redeem("link"));
        let resend = Facts { has_token: true, has_email: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "link", Some("link"), &both, resend), Send("link"));
        // A GET with nothing to redeem shows the flow; naming no method it is refused.
        let get = Facts { method: Some("code"), get: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, get), ShowFlow);
        let bare = Facts { get: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, bare), NoMethod);
        let other = Facts { method: Some("link"), has_email: true, ..Facts::default() };
        assert_eq!(decide(State::ChooseMethod, "code", Some("code"), &both, other), NoMethod);
        // Once verified, any submit starts over.
        assert_eq!(decide(State::PassedChallenge, "code", Some("code"), &both, code), RetrySucceeded);
    }
}
