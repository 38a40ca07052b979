//! The recovery flow (behaviour.md §8, §19): an address is submitted (the answer is the same
//! whether or not an account uses it), the method (`code`, `link`) sends a secret, redeeming
//! it signs the user in with a privileged session and opens a settings flow. Admins can mint
//! codes and links directly.

use super::recovery_v2 as v2;
use super::{Flow, FlowKind, FlowType, State, settings};
use crate::catalogue as text;
use crate::error::{Error, FlowName};
use crate::persistence::identity::{AddressKind, find_by_address};
use crate::persistence::selfservice::CodeRecord;
use crate::selfservice::challenge::{self, Mail};
use crate::selfservice::codes;
use crate::selfservice::form::Submit;
use crate::selfservice::step::{CsrfFailure, Outcome, RequestInfo, Stepped, check_csrf, csrf_outcome, flow_message};
use crate::selfservice::strategy::{RecoveryStrategy, Redemption};
use crate::selfservice::{SelfService, csrf, redirect};
use crate::session::{Aal, AuthMethod};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// 400: recovery is disabled.
pub fn disabled() -> Error {
    Error::FlowDisabled(FlowName::Recovery)
}

/// What creating a recovery flow gives.
pub enum Init {
    Created(Box<Flow>),
    /// Signed in (HTML): 302 here.
    SignedIn(String),
}

/// What a submit carries, as far as choosing an action goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The `method` it names.
    pub method: Option<&'a str>,
    /// It carries a link `token`.
    pub has_token: bool,
    /// It carries an address (an empty one counts as none).
    pub email_given: bool,
    /// It came with `GET` (opening a link).
    pub get: bool,
}

/// What a recovery submit asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No enabled method fits: the flow shows 4010005.
    NoMethod,
    /// Credentials in a `GET`: the flow shows why not.
    GetNotAllowed,
    /// Redeem the secret of this method.
    Redeem(&'static str),
    /// The flow already succeeded: start over.
    RetrySucceeded,
    /// Send a message with this method.
    Send(&'static str),
}

/// Recovery's state machine: the flow's state and configured method × what the submit carries.
/// Without a `method`, a token means `link`, and after a message went out a submit without an
/// address is a code.
pub fn decide(
    state: State,
    configured: &'static str,
    active: Option<&str>,
    enabled: &dyn Fn(&str) -> bool,
    facts: Facts<'_>,
) -> Action {
    let chosen = facts.method.or(if facts.has_token {
        Some("link")
    } else if state != State::ChooseMethod && !facts.email_given {
        Some(configured)
    } else {
        None
    });
    let Some(method) = challenge::resolve_method(configured, chosen, active, enabled) else { return Action::NoMethod };
    if facts.get && (method != "link" || !facts.has_token || facts.email_given) {
        return Action::GetNotAllowed;
    }
    if method == "link" && facts.has_token && !facts.email_given {
        return Action::Redeem("link");
    }
    if method == "code" && !facts.email_given && state != State::ChooseMethod {
        return Action::Redeem("code");
    }
    if state == State::PassedChallenge {
        return Action::RetrySucceeded;
    }
    Action::Send(method)
}

/// Where a signed-in browser goes instead: the request's `return_to` when it points into
/// `<public>/self-service` (the allow-list is not consulted), else the default return URL.
fn signed_in_target(svc: &SelfService, info: &RequestInfo) -> String {
    let self_service = format!("{}self-service", svc.config.public_base_url());
    redirect::return_to_of(&info.url)
        .filter(|r| r.starts_with(&self_service))
        .unwrap_or_else(|| redirect::default_return(&svc.config))
}

/// A signed-in caller may not ask for a message: JSON clients get 400
/// `session_already_available`, browsers are sent on.
fn signed_in(svc: &SelfService, info: &RequestInfo) -> Option<Outcome> {
    info.session.as_ref()?;
    Some(if info.is_json {
        Outcome::Error(Error::AlreadySignedIn(FlowName::Recovery))
    } else {
        Outcome::SignedIn(signed_in_target(svc, info))
    })
}

/// The strategy of `method`.
fn strategy<'a>(svc: &'a SelfService, method: &str) -> Option<&'a dyn RecoveryStrategy> {
    svc.strategies.recovery_method(method)
}

/// `GET /self-service/recovery/{browser,api}`.
pub async fn init(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    return_to: Option<&str>,
    csrf: String,
) -> Result<Init, Error> {
    if !svc.config.selfservice.flows.recovery.enabled {
        return Err(disabled());
    }
    let method = challenge::method(svc, FlowKind::Recovery).ok_or_else(disabled)?;
    let strategy = strategy(svc, method).ok_or_else(disabled)?;
    if info.session.is_some() {
        if info.html_for(flow_type) {
            return Ok(Init::SignedIn(signed_in_target(svc, info)));
        }
        return Err(Error::AlreadySignedIn(FlowName::Recovery));
    }
    svc.checked_return_to(return_to)?;
    let mut flow = svc.new_flow(FlowKind::Recovery, flow_type, info.url.clone(), csrf);
    flow.active = Some(method.into());
    svc.hooks.run_before(FlowKind::Recovery, &flow, info).await?;
    if method == "code" && svc.config.feature_flags.choose_recovery_address {
        v2::initial_ui(&mut flow);
    } else {
        strategy.populate(&mut flow, None);
    }
    svc.flows.create(flow.clone()).await;
    Ok(Init::Created(Box::new(flow)))
}

fn transitions(svc: &SelfService) -> bool {
    svc.config.feature_flags.use_continue_with_transitions
}

/// The flow as JSON (200), or for HTML browsers a 303 to the recovery UI.
fn show(flow: Flow, info: &RequestInfo) -> Stepped {
    let to_ui = info.html_for(flow.flow_type);
    crate::selfservice::step::show(flow, true, to_ui)
}

/// A new flow carrying `message` replaces `old`: 303 to the new flow (its JSON for JSON
/// clients, its UI otherwise), or with continue-with transitions a 400 error for JSON clients
/// whose `details.continue_with` points at the new flow.
async fn retry(svc: &SelfService, old: &Flow, message: text::Text, info: &RequestInfo) -> Outcome {
    let reason = message.text.clone();
    let new_flow = challenge::restart(svc, old, message).await;
    if transitions(svc) && (info.is_json || new_flow.flow_type == FlowType::Api) {
        let e = Error::RetryFlow {
            reason,
            continue_with: vec![json!({"action": "show_recovery_ui", "flow": {"id": new_flow.id}})],
        };
        return challenge::with_new_csrf(&new_flow, Outcome::Error(e));
    }
    challenge::redirect_to_new(svc, &new_flow, info.html_for(new_flow.flow_type))
}

/// `POST /self-service/recovery?flow=` (and `GET` with a link `token`): runs inside the flow's
/// actor.
pub async fn submit(svc: SelfService, flow: Flow, submit: Submit, info: RequestInfo) -> Stepped {
    let (flow, outcome) = submit_step(svc, flow, &submit, info).await;
    (flow, challenge::echo_transient_payload(&submit.body, outcome))
}

async fn submit_step(svc: SelfService, flow: Flow, submit: &Submit, info: RequestInfo) -> Stepped {
    // As Kratos, a submit does not check `recovery.enabled` (admin-created flows work with
    // self-service recovery off); the method must be enabled.
    let configured = challenge::method(&svc, FlowKind::Recovery)
        .or(flow.active.as_deref().map(|a| if a == "link" { "link" } else { "code" }))
        .unwrap_or("code");
    let now = svc.clock.now();
    if flow.is_expired(now) {
        let message = text::recovery_expired(flow.expires_at, now);
        let new_flow = challenge::restart(&svc, &flow, message).await;
        let outcome = if transitions(&svc) && new_flow.flow_type == FlowType::Api {
            Outcome::Error(Error::FlowExpired {
                expired_at: flow.expires_at,
                now,
                replacement: Some(new_flow.id),
                continue_with: vec![json!({"action": "show_recovery_ui", "flow": {"id": new_flow.id}})],
            })
        } else {
            challenge::redirect_to_new(&svc, &new_flow, info.html_for(new_flow.flow_type))
        };
        return (flow, outcome);
    }
    if flow.data.choose_address {
        return submit_v2(&svc, flow, submit, &info).await;
    }
    let tp = submit.transient_payload();
    let facts = Facts {
        method: submit.trimmed("method"),
        has_token: submit.trimmed("token").is_some(),
        // An empty e-mail counts as none; any other non-string value is checked (and refused).
        email_given: match submit.body.get("email") {
            None | Some(Json::Null) => false,
            Some(Json::String(e)) => !e.trim().is_empty(),
            Some(_) => true,
        },
        get: info.is_get(),
    };
    let enabled = |m: &str| challenge::enabled(&svc, m);
    match decide(flow.state, configured, flow.active.as_deref(), &enabled, facts) {
        Action::NoMethod => challenge::no_method(flow, text::no_recovery_strategy(), &info),
        Action::GetNotAllowed => flow_message(flow, text::generic(text::error::GET_NOT_ALLOWED), tp),
        Action::Redeem(method) => redeem(&svc, flow, method, submit, &info).await,
        Action::RetrySucceeded => {
            let outcome = retry(&svc, &flow, text::recovery_retry_success(), &info).await;
            (flow, outcome)
        }
        Action::Send(method) => send(svc, flow, submit, method, &info, tp).await,
    }
}

/// A v2 screen again (400, browsers 303 to the UI) with `message` on `field` (flow level when
/// empty).
fn problem_v2(mut flow: Flow, field: &str, message: text::Text, info: &RequestInfo) -> Stepped {
    flow.ui.reset_messages();
    flow.ui.add_field_message(field, message);
    let to_ui = info.html_for(flow.flow_type);
    crate::selfservice::step::show(flow, false, to_ui)
}

/// A submit to a recovery v2 flow (the screens are in [`v2`]).
async fn submit_v2(svc: &SelfService, flow: Flow, submit: &Submit, info: &RequestInfo) -> Stepped {
    let tp = submit.transient_payload();
    let step = v2::decide(flow.state, submit.field("screen") == Some("previous"), submit.trimmed("code").is_some());
    match step {
        v2::Step::RetrySucceeded => {
            let outcome = retry(svc, &flow, text::recovery_retry_success(), info).await;
            return (flow, outcome);
        }
        // Codes are accepted with a session, as in v1; the strategy checks CSRF.
        v2::Step::Redeem => return redeem(svc, flow, "code", submit, info).await,
        _ => {}
    }
    if let Some(outcome) = signed_in(svc, info) {
        return (flow, outcome);
    }
    if let Err(failure) = check_csrf(&flow, info, &submit.body) {
        return csrf_failed(flow, failure, tp);
    }
    let typed = submit.trimmed("recovery_address").unwrap_or_default().to_string();
    let mut f = flow;
    match step {
        v2::Step::Back => {
            let from_choice = f.state == State::RecoveryAwaitingAddressChoice;
            match v2::addresses_of(&svc.store, &typed).await {
                Ok(Some(list)) if list.len() > 1 && !from_choice => v2::choice_ui(&mut f, &list, &typed),
                Ok(_) => v2::initial_ui(&mut f),
                Err(e) => return (f, Outcome::Error(Error::from(e))),
            }
            show(f, info)
        }
        v2::Step::Address => {
            if typed.is_empty() {
                if f.ui.node_mut("recovery_address", None).is_none() {
                    v2::initial_ui(&mut f);
                }
                return problem_v2(f, "recovery_address", text::required("recovery_address"), info);
            }
            // An address no account uses is answered like an account with that one address.
            let stored = v2::stored_form(&typed);
            let list = match v2::addresses_of(&svc.store, &typed).await {
                Ok(found) => found.unwrap_or_else(|| vec![stored.clone()]),
                Err(e) => return (f, Outcome::Error(Error::from(e))),
            };
            if list.len() == 1 && list[0] == stored {
                return send_v2(svc, f, &typed, &typed, info, tp).await;
            }
            v2::choice_ui(&mut f, &list, &typed);
            show(f, info)
        }
        v2::Step::Choose => {
            let Some(chosen) = submit.trimmed("recovery_select_address").map(str::to_string) else {
                return problem_v2(f, "recovery_select_address", text::required("recovery_select_address"), info);
            };
            if typed.is_empty() {
                return problem_v2(f, "recovery_address", text::required("recovery_address"), info);
            }
            let list = match v2::addresses_of(&svc.store, &typed).await {
                Ok(found) => found.unwrap_or_else(|| vec![v2::stored_form(&typed)]),
                Err(e) => return (f, Outcome::Error(Error::from(e))),
            };
            let Some(address) = list.iter().find(|a| v2::address_hash(a) == chosen).cloned() else {
                return problem_v2(f, "", text::generic("The selected recovery address is not valid."), info);
            };
            if address == v2::stored_form(&typed) {
                return send_v2(svc, f, &typed, &typed, info, tp).await;
            }
            v2::confirm_ui(&mut f, &address, &typed);
            show(f, info)
        }
        v2::Step::Send => {
            let Some(address) = submit.trimmed("recovery_confirm_address").map(str::to_string) else {
                return problem_v2(f, "recovery_confirm_address", text::required("recovery_confirm_address"), info);
            };
            send_v2(svc, f, &address, &typed, info, tp).await
        }
        v2::Step::Redeem | v2::Step::RetrySucceeded => {
            (f, Outcome::Error(Error::internal(&"recovery v2: step handled above")))
        }
    }
}

/// v2: sends a code to `address` by e-mail or SMS (nothing when no account uses it) and shows
/// the code screen.
async fn send_v2(
    svc: &SelfService,
    flow: Flow,
    address: &str,
    typed: &str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    let stored = v2::stored_form(address);
    let flow = match challenge::reserve_send(svc, flow, &stored, info, tp.clone()).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let via = v2::channel_of(&stored);
    let (task_svc, task_flow, to, payload) = (svc.clone(), flow.clone(), stored.clone(), tp);
    svc.outbox
        .send_latest(flow.id, async move { deliver(&task_svc, &task_flow, "code", via, &to, payload.as_ref()).await });
    let mut f = flow;
    f.data.address = Some(stored.clone());
    v2::code_ui(&mut f, &stored, typed);
    show(f, info)
}

/// Sends a code or link to the submitted address (or nothing, for an unknown address).
async fn send(
    svc: SelfService,
    flow: Flow,
    submit: &Submit,
    method: &'static str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Stepped {
    if let Some(outcome) = signed_in(&svc, info) {
        return (flow, outcome);
    }
    if !flow.data.csrf_disabled
        && let Err(failure) = check_csrf(&flow, info, &submit.body)
    {
        return csrf_failed(flow, failure, tp);
    }
    let Some(strategy) = strategy(&svc, method) else {
        return challenge::no_method(flow, text::no_recovery_strategy(), info);
    };
    let raw = submit.body.get("email").and_then(Json::as_str).map(str::to_string);
    let address = match challenge::submitted_email(&submit.body) {
        Ok(e) => e,
        Err(m) => return challenge::email_problem(flow, method, raw.as_deref(), m, info),
    };
    let flow = match challenge::reserve_send(&svc, flow, &address, info, tp.clone()).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    // The answer is the same for every address; the message follows it.
    let (task_svc, task_flow, to, payload) = (svc.clone(), flow.clone(), address.clone(), tp.clone());
    svc.outbox.send_latest(flow.id, async move {
        deliver(&task_svc, &task_flow, method, "email", &to, payload.as_ref()).await
    });
    let mut f = flow;
    f.state = State::SentEmail;
    f.active = Some(method.into());
    f.data.address = Some(address.clone());
    f.ui.reset_messages();
    strategy.sent(&mut f, &address);
    show(f, info)
}

/// A failed CSRF check: the usual answer, and (browser flows) a regenerated CSRF cookie.
fn csrf_failed(flow: Flow, failure: CsrfFailure, tp: Option<Json>) -> Stepped {
    let browser = flow.flow_type == FlowType::Browser;
    let (flow, outcome) = csrf_outcome(flow, failure, tp);
    if !browser {
        return (flow, outcome);
    }
    (flow, Outcome::WithCookies { csrf: Some(csrf::new_token()), session: None, inner: Box::new(outcome) })
}

/// Sends the message for `address`: a recovery address gets a new secret (the flow's earlier
/// ones are forgotten); an unknown one the invalid template if configured, else nothing.
async fn deliver(
    svc: &SelfService,
    f: &Flow,
    method: &'static str,
    via: &'static str,
    address: &str,
    tp: Option<&Json>,
) -> Result<(), Error> {
    // Looked up where used: a strategy is not `Sync`, and this runs on a task of its own.
    let enabled = || strategy(svc, method).ok_or_else(|| Error::invalid("The recovery method is not enabled."));
    enabled()?;
    codes::forget(svc, f.id).await?;
    let identity = {
        let mut pooled = svc.store.get().await?;
        find_by_address(&mut pooled.conn(), AddressKind::Recovery, via, address).await?
    };
    let expires_in = challenge::lifespan(svc, method);
    match &identity {
        Some(identity) => {
            let issue = codes::Issue {
                flow: f,
                method,
                identity_id: Some(identity.id),
                address,
                via,
                expires_at: svc.clock.now() + expires_in,
                by_admin: false,
            };
            let secret = codes::issue(svc, issue).await?;
            let message = enabled()?.message(svc, f, &secret);
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
            challenge::send(svc, f, mail).await
        }
        // Unknown addresses get the "invalid" mail when configured; never a text message.
        None if svc.config.selfservice.flows.recovery.notify_unknown_recipients && via == "email" => {
            let mail = Mail {
                template: enabled()?.unknown_template(),
                to: address,
                via: "email",
                identity: None,
                traits: None,
                fields: Vec::new(),
                transient_payload: tp,
                expires_in,
            };
            challenge::send(svc, f, mail).await
        }
        None => Ok(()),
    }
}

/// Redeems the submitted secret with `method` and answers as it found.
pub(super) async fn redeem(
    svc: &SelfService,
    flow: Flow,
    method: &str,
    submit: &Submit,
    info: &RequestInfo,
) -> Stepped {
    let Some(strategy) = strategy(svc, method) else {
        return challenge::no_method(flow, text::no_recovery_strategy(), info);
    };
    let redemption = match strategy.redeem(svc, &flow, submit, info).await {
        Ok(r) => r,
        Err(e) => return (flow, Outcome::Error(e)),
    };
    match redemption {
        Redemption::Valid(record) => succeed(svc, flow, &record, strategy, info).await,
        Redemption::Invalid(message) => {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(message);
            show(f, info)
        }
        Redemption::Retry(reason) => {
            let outcome = retry(svc, &flow, text::generic(reason), info).await;
            (flow, outcome)
        }
        Redemption::RestartInBrowser(message) => {
            let outcome = restart_in_browser(svc, &flow, message).await;
            (flow, outcome)
        }
        Redemption::Expired { at, .. } => {
            let outcome = restart_in_browser(svc, &flow, text::recovery_expired(at, svc.clock.now())).await;
            (flow, outcome)
        }
        Redemption::Csrf(failure) => csrf_failed(flow, failure, submit.transient_payload()),
    }
}

async fn restart_in_browser(svc: &SelfService, flow: &Flow, message: text::Text) -> Outcome {
    let mut as_browser = flow.clone();
    as_browser.flow_type = FlowType::Browser;
    let new_flow = challenge::restart(svc, &as_browser, message).await;
    challenge::redirect_to_new(svc, &new_flow, true)
}

/// The secret was good: sign in, open a settings flow, and send the user there.
async fn succeed(
    svc: &SelfService,
    flow: Flow,
    record: &CodeRecord,
    strategy: &dyn RecoveryStrategy,
    info: &RequestInfo,
) -> Stepped {
    let mut f = flow;
    let Some(identity_id) = record.identity_id else {
        return (f, Outcome::Error(Error::internal(&"recovery code without identity")));
    };
    let identity = if record.by_admin || record.address_value.is_empty() {
        svc.identities.get(identity_id).await
    } else {
        // A self-service code proves the recovery address: it counts as verified too.
        svc.identities.mark_verified(identity_id, &record.address_value).await
    };
    let identity = match identity {
        Ok(i) => i,
        Err(e) => return (f, Outcome::Error(e)),
    };
    // A disabled account cannot recover into a session.
    if identity.state != crate::identity::IdentityState::Active {
        return (f, Outcome::Error(Error::IdentityDisabled));
    }
    let now = svc.clock.now();
    let amr = strategy.amr();
    let method =
        AuthMethod { method: amr.into(), aal: Some(Aal::Aal1), completed_at: now, provider: None, organization: None };
    let (session, token) = match svc.sessions.issue(&identity, vec![method], Some(info.device.clone())).await {
        Ok(s) => s,
        Err(e) => return (f, Outcome::Error(e)),
    };
    f.state = State::PassedChallenge;
    f.ui.reset_messages();
    let point = crate::selfservice::hook::HookPoint {
        kind: FlowKind::Recovery,
        stage: crate::selfservice::hook::Stage::After,
        method: amr,
    };
    let starter = super::verification::Starter(svc);
    if let Err(e) = svc.hooks.run_after(point, &mut f, info, &identity, Some(&session), None, &starter).await {
        let outcome = e.into_outcome(f.clone(), None);
        return (f, outcome);
    }
    // Links are opened in browsers: they always get the browser treatment.
    let link = strategy.opened_in_browser();
    let browser = f.flow_type == FlowType::Browser || link;
    // A new sign-in gets a new CSRF token.
    let csrf = if browser { csrf::new_token() } else { String::new() };
    let settings_type = if browser { FlowType::Browser } else { FlowType::Api };
    let return_to =
        f.return_to.clone().or_else(|| svc.config.selfservice.flows.recovery.after.default_browser_return_url.clone());
    let mut settings = settings::new_for(svc, &identity, settings_type, f.request_url.clone(), return_to, csrf.clone());
    let max_age = chrono::Duration::from_std(svc.config.selfservice.flows.settings.privileged_session_max_age.0)
        .unwrap_or(chrono::Duration::hours(1));
    settings.ui.messages.push(text::recovery_successful(now + max_age, now));
    svc.flows.create(settings.clone()).await;
    let settings_url = redirect::with_query(svc.ui_url(FlowKind::Settings), "flow", &settings.id.to_string());
    let session_cookie = browser.then(|| Box::new((session.clone(), token.clone())));
    let new_csrf = browser.then(|| csrf.clone());
    let inner = if link || (!info.is_json && browser) {
        Outcome::Redirect(settings_url)
    } else if transitions(svc) {
        // `continue_with` is part of this answer only: it may carry the session token, and
        // the stored flow can be read by anyone who knows its id.
        let mut shown = f.clone();
        if !browser {
            shown.data.continue_with.push(json!({"action": "set_ory_session_token", "ory_session_token": token}));
        }
        shown
            .data
            .continue_with
            .push(json!({"action": "show_settings_ui", "flow": {"id": settings.id, "url": settings_url}}));
        Outcome::Show { flow: shown, ok: true, to_ui: false, transient_payload: None }
    } else {
        Outcome::Error(Error::LocationChangeRequired { to: settings_url })
    };
    (f, Outcome::WithCookies { csrf: new_csrf, session: session_cookie, inner: Box::new(inner) })
}

// --- admin ----------------------------------------------------------------------------------

/// Parses a Go duration (`1h30m`, `90s`, `250ms`).
pub fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    let mut total_ns: i128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ns += (number * unit) as i128;
        if total_ns > i64::MAX as i128 {
            return None;
        }
    }
    let ns = i64::try_from(total_ns).ok()?;
    Some(chrono::Duration::nanoseconds(if negative { -ns } else { ns }))
}

fn expires_in(raw: Option<&str>, default: chrono::Duration, must_be: &str) -> Result<chrono::Duration, Error> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => {
            let d = parse_go_duration(s).ok_or_else(|| {
                Error::invalid(format!(
                    "Unable to parse \"expires_in\" whose format should match \"[0-9]+(ns|us|ms|s|m|h)\" but did not: {s}"
                ))
            })?;
            if d <= chrono::Duration::zero() {
                return Err(Error::invalid(format!("Value from \"expires_in\" {must_be}: {s}")));
            }
            Ok(d)
        }
    }
}

/// A body of `POST /admin/recovery/{code,link}`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AdminBody {
    pub identity_id: Option<Uuid>,
    #[serde(default)]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub flow_type: Option<String>,
}

fn admin_flow(svc: &SelfService, flow_type: FlowType, lifespan: chrono::Duration, return_to: Option<String>) -> Flow {
    let request_url = format!("{}self-service/recovery/{}", svc.config.public_base_url(), flow_type.as_str());
    let mut flow = svc.new_flow(FlowKind::Recovery, flow_type, request_url, csrf::new_token());
    flow.expires_at = flow.issued_at + lifespan;
    flow.return_to = return_to;
    flow
}

async fn known_identity(svc: &SelfService, id: Option<Uuid>) -> Option<crate::identity::Identity> {
    svc.identities.get(id?).await.ok()
}

/// `POST /admin/recovery/link`: a browser flow and a link (no e-mail is sent).
pub async fn admin_link(svc: &SelfService, body: AdminBody, return_to: Option<String>) -> Result<Json, Error> {
    if !svc.config.selfservice.methods.link.enabled {
        return Err(Error::EndpointDisabled);
    }
    let return_to = svc.checked_return_to(return_to.as_deref())?;
    let lifespan =
        expires_in(body.expires_in.as_deref(), challenge::lifespan(svc, "link"), "must be result to a future time")?;
    let identity = known_identity(svc, body.identity_id)
        .await
        .ok_or_else(|| Error::invalid("The requested identity id does not exist."))?;
    let mut flow = admin_flow(svc, FlowType::Browser, lifespan, return_to);
    flow.csrf_token = String::new();
    flow.data.csrf_disabled = true;
    flow.active = Some("link".into());
    if let Some(link) = strategy(svc, "link") {
        link.populate(&mut flow, None);
    }
    let issue = codes::Issue {
        flow: &flow,
        method: "link",
        identity_id: Some(identity.id),
        address: "",
        via: "email",
        expires_at: flow.expires_at,
        by_admin: true,
    };
    let token = codes::issue(svc, issue).await?;
    svc.flows.create(flow.clone()).await;
    let link = challenge::submit_link(svc, FlowKind::Recovery, flow.id, "token", &token);
    Ok(json!({"recovery_link": link, "expires_at": crate::clock::ts(&flow.expires_at)}))
}

/// `POST /admin/recovery/code`: a flow waiting for the returned code (201).
pub async fn admin_code(svc: &SelfService, body: AdminBody, return_to: Option<String>) -> Result<Json, Error> {
    if !svc.config.selfservice.methods.code.enabled {
        return Err(Error::EndpointDisabled);
    }
    let return_to = svc.checked_return_to(return_to.as_deref())?;
    let lifespan =
        expires_in(body.expires_in.as_deref(), challenge::lifespan(svc, "code"), "must result to a future time")?;
    let flow_type = match body.flow_type.as_deref().unwrap_or("browser") {
        "" | "browser" => FlowType::Browser,
        "api" => FlowType::Api,
        other => return Err(Error::invalid(format!("Value from \"flow_type\" is not valid: {other:?}"))),
    };
    let identity =
        known_identity(svc, body.identity_id).await.ok_or_else(|| Error::not_found("could not find identity"))?;
    let mut flow = admin_flow(svc, flow_type, lifespan, return_to);
    flow.data.csrf_disabled = true;
    flow.state = State::SentEmail;
    flow.active = Some("code".into());
    challenge::code_sent_ui(&mut flow, None);
    let issue = codes::Issue {
        flow: &flow,
        method: "code",
        identity_id: Some(identity.id),
        address: "",
        via: "email",
        expires_at: flow.expires_at,
        by_admin: true,
    };
    let code = codes::issue(svc, issue).await?;
    svc.flows.create(flow.clone()).await;
    let link = redirect::with_query(svc.ui_url(FlowKind::Recovery), "flow", &flow.id.to_string());
    Ok(json!({
        "recovery_link": link,
        "recovery_code": code,
        "expires_at": crate::clock::ts(&flow.expires_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(_: &str) -> bool {
        true
    }

    fn only_code(m: &str) -> bool {
        m == "code"
    }

    #[test]
    fn recovery_state_machine() {
        use Action::*;
        // Choosing a method: the submit names it (the form's button does); without one no
        // method is responsible.
        let email = Facts { email_given: true, ..Facts::default() };
        assert_eq!(decide(State::ChooseMethod, "code", Some("code"), &both, email), NoMethod);
        let named = Facts { method: Some("code"), email_given: true, ..Facts::default() };
        assert_eq!(decide(State::ChooseMethod, "code", Some("code"), &both, named), Send("code"));
        // A method that is not configured (nor the flow's own) is refused.
        let other = Facts { method: Some("link"), email_given: true, ..Facts::default() };
        assert_eq!(decide(State::ChooseMethod, "code", Some("code"), &both, other), NoMethod);
        assert_eq!(decide(State::ChooseMethod, "code", Some("link"), &only_code, other), NoMethod, "disabled");
        // After sending: no address means a code submit; an address (the resend button, with
        // the form's hidden method) sends again.
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, Facts::default()), Redeem("code"));
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, named), Send("code"));
        // A link token redeems (also with GET, which is how links arrive) …
        let token = Facts { has_token: true, get: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "link", Some("link"), &both, token), Redeem("link"));
        // … but a GET carrying anything else is refused.
        let get_code = Facts { get: true, ..Facts::default() };
        assert_eq!(decide(State::SentEmail, "code", Some("code"), &both, get_code), GetNotAllowed);
        // A flow that succeeded starts over on the next address.
        assert_eq!(decide(State::PassedChallenge, "code", Some("code"), &both, named), RetrySucceeded);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h30m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(parse_go_duration("250ms"), Some(chrono::Duration::milliseconds(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(chrono::Duration::milliseconds(1500)));
        assert_eq!(parse_go_duration("-1s"), Some(chrono::Duration::seconds(-1)));
        assert_eq!(parse_go_duration("0"), Some(chrono::Duration::zero()));
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration("h"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("99999999999999h"), None);
    }
}
