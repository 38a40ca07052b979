//! The verification flow (behaviour.md §9) with the `code` and `link` methods: an address is
//! submitted, a message carries a code or link, redeeming it marks the address verified.
//! Responses follow Kratos' negotiation for this flow: a browser request (`IsBrowserRequest`)
//! is redirected to the verification UI, anything else gets the flow as JSON.

use super::challenge::{self, Mail};
use super::codes::{self, Redeemed};
use super::flow::{Flow, FlowKind, FlowType, state};
use super::ui::{self, group};
use super::{Outcome, RequestInfo, SelfService};
use crate::catalogue as text;
use crate::courier::template::TemplateType;
use crate::error::{Error, FlowName};
use crate::persistence::identity::{AddressKind, find_by_address};
use serde_json::{Value as Json, json};

/// 400: verification is disabled.
pub fn disabled() -> Error {
    Error::FlowDisabled(FlowName::Verification)
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
    super::checked_return_to(svc, return_to)?;
    let mut flow = svc.new_flow(FlowKind::Verification, flow_type, info.url.clone(), csrf);
    flow.active = Some(method.into());
    svc.hooks.run_before(svc, FlowKind::Verification, &flow, info).await?;
    challenge::choose_method_ui(&mut flow, method, None);
    svc.flows.create(flow.clone()).await;
    Ok(flow)
}

fn show(flow: Flow, info: &RequestInfo) -> (Flow, Outcome) {
    (flow.clone(), Outcome::Show { flow, ok: true, to_ui: info.is_browser, transient_payload: None })
}

/// `POST /self-service/verification?flow=` (and `GET` with `code` or `token` from a message):
/// runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, body: Json, info: RequestInfo) -> (Flow, Outcome) {
    let echo = body.clone();
    let (flow, outcome) = submit_step(svc, flow, body, info).await;
    (flow, challenge::echo_transient_payload(&echo, outcome))
}

async fn submit_step(svc: SelfService, flow: Flow, body: Json, info: RequestInfo) -> (Flow, Outcome) {
    if !svc.config.selfservice.flows.verification.enabled {
        return (flow, Outcome::Error(disabled()));
    }
    let Some(method) = challenge::method(&svc, FlowKind::Verification) else {
        return (flow, Outcome::Error(disabled()));
    };
    let now = svc.clock.now();
    if flow.is_expired(now) {
        let new_flow = challenge::restart(&svc, &flow, text::verification_expired(flow.expires_at, now)).await;
        let to_ui = new_flow.flow_type == FlowType::Browser && !info.is_json;
        return (flow, challenge::redirect_to_new(&svc, &new_flow, to_ui));
    }
    let tp = body.get("transient_payload").cloned();
    let str_field = |k: &str| body.get(k).and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty());
    let code = str_field("code").map(str::to_string);
    let token = str_field("token").map(str::to_string);
    let has_email = body.get("email").is_some_and(|e| !e.is_null());
    let chosen = str_field("method").map(str::to_string).or_else(|| {
        if token.is_some() {
            Some("link".into())
        } else if code.is_some() {
            Some("code".into())
        } else {
            None
        }
    });
    let Some(method) = challenge::resolve_method(&svc, method, chosen.as_deref(), flow.active.as_deref()) else {
        return challenge::no_method(flow, text::no_verification_strategy(), &info);
    };
    if flow.state == state::PASSED_CHALLENGE {
        let new_flow = challenge::restart(&svc, &flow, text::verification_retry_success()).await;
        let outcome = retry_answer(&svc, &new_flow, "An error occured, please use the new flow.", &info);
        return (flow, outcome);
    }
    match (method, code, token) {
        // A GET from the e-mailed link pre-fills the code instead of using it.
        ("code", Some(code), _) if info.method == "GET" => prefill(svc, flow, code),
        ("code", Some(code), _) => use_code(svc, flow, &code, &info).await,
        ("link", _, Some(token)) if !has_email => use_token(svc, flow, &token, &info).await,
        _ if info.method == "GET" => {
            let f = flow;
            (f.clone(), Outcome::Show { flow: f, ok: true, to_ui: true, transient_payload: None })
        }
        _ => send(svc, flow, &body, method, &info, tp).await,
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
    body: &Json,
    method: &str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> (Flow, Outcome) {
    if let Err(failure) = svc.ensure_csrf(&flow, info, body) {
        return super::csrf_outcome(flow, failure, tp);
    }
    let raw = body.get("email").and_then(Json::as_str).map(str::to_string);
    let email = match challenge::submitted_email(body) {
        Ok(e) => e,
        Err(m) => return challenge::email_problem(flow, method, raw.as_deref(), m, info),
    };
    let mut f = flow;
    if let Err(e) = send_to_address(&svc, &mut f, method, &email, "email", tp.as_ref(), true).await {
        return (f, Outcome::Error(e));
    }
    show(f, info)
}

/// Sends the message for `address` (known verifiable address: valid template; unknown: the
/// invalid template if configured, else nothing) and moves the flow to `sent_email`.
async fn send_to_address(
    svc: &SelfService,
    f: &mut Flow,
    method: &str,
    address: &str,
    via: &str,
    tp: Option<&Json>,
    resend_node: bool,
) -> Result<(), Error> {
    codes::forget(svc, f.id).await?;
    let identity = {
        let mut pooled = svc.store.get().await.map_err(Error::from)?;
        find_by_address(&mut pooled.conn(), AddressKind::Verifiable, via, address).await.map_err(Error::from)?
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
            // A failure here is logged, not answered: the answer must not tell a known address
            // from an unknown one.
            let sent = async {
                let secret = codes::issue(svc, issue).await?;
                let (template, fields) = if method == "link" {
                    let url = challenge::submit_link(svc, FlowKind::Verification, f.id, "token", &secret);
                    (TemplateType::VerificationValid, vec![("verification_url", url)])
                } else {
                    let url = challenge::submit_link(svc, FlowKind::Verification, f.id, "code", &secret);
                    (
                        TemplateType::VerificationCodeValid,
                        vec![("verification_code", secret), ("verification_url", url)],
                    )
                };
                let mail = Mail {
                    template,
                    to: address,
                    via,
                    identity: Some(identity),
                    fields,
                    transient_payload: tp,
                    expires_in,
                };
                challenge::send(svc, f, mail).await?;
                svc.identities.mark_sent(identity.id, address).await
            };
            if let Err(e) = sent.await {
                tracing::error!(flow_id = %f.id, error = %e, "verification: the message could not be queued");
            }
        }
        None if svc.config.selfservice.flows.verification.notify_unknown_recipients && via == "email" => {
            let template = if method == "link" {
                TemplateType::VerificationInvalid
            } else {
                TemplateType::VerificationCodeInvalid
            };
            let mail = Mail {
                template,
                to: address,
                via,
                identity: None,
                fields: Vec::new(),
                transient_payload: tp,
                expires_in,
            };
            challenge::send(svc, f, mail).await?;
        }
        None => {}
    }
    f.state = state::SENT_EMAIL.into();
    f.active = Some(method.into());
    f.data.address = Some(address.into());
    f.ui.reset_messages();
    if method == "link" {
        challenge::choose_method_ui(f, method, Some(address));
        f.ui.messages.push(text::verification_link_sent());
    } else {
        challenge::code_sent_ui(f, resend_node.then_some(address));
        f.ui.messages.push(text::verification_code_sent());
    }
    Ok(())
}

/// `GET …?flow=&code=`: the code lands in the form; the user confirms it.
fn prefill(svc: SelfService, flow: Flow, code: String) -> (Flow, Outcome) {
    let mut f = flow;
    if f.ui.node_mut("code", None).is_none() {
        let address = f.data.address.clone();
        challenge::code_sent_ui(&mut f, address.as_deref());
    }
    if let Some(n) = f.ui.node_mut("code", None) {
        n.set_value(Some(code.into()));
    }
    // The link may be opened by anyone: the flow's CSRF token and the opener's cookie are left
    // alone (a code submit needs no CSRF token), so no one learns or plants a token this way.
    let to = super::redirect::with_query(svc.ui_url(FlowKind::Verification), "flow", &f.id.to_string());
    let csrf = None;
    (f, Outcome::WithCookies { csrf, session: None, inner: Box::new(Outcome::Redirect(to)) })
}

/// Too many submissions or an already-used code: a new flow with 4000001.
async fn replaced(svc: &SelfService, flow: &Flow, reason: &str, info: &RequestInfo) -> Outcome {
    let new_flow = challenge::restart(svc, flow, text::generic(reason)).await;
    retry_answer(svc, &new_flow, "An error occured, please retry the flow.", info)
}

async fn use_code(svc: SelfService, flow: Flow, code: &str, info: &RequestInfo) -> (Flow, Outcome) {
    let mut f = flow;
    let over = match challenge::over_submission_limit(&svc, &f).await {
        Ok(over) => over,
        Err(e) => return (f, Outcome::Error(e)),
    };
    if over {
        let outcome =
            replaced(&svc, &f, "The request was submitted too often. Please request another code.", info).await;
        return (f, outcome);
    }
    let redeemed = match codes::redeem(&svc, f.id, "code", code).await {
        Ok(r) => r,
        Err(e) => return (f, Outcome::Error(e)),
    };
    match redeemed {
        Redeemed::Unknown => {
            f.ui.reset_messages();
            f.ui.messages.push(text::verification_code_invalid());
            show(f, info)
        }
        Redeemed::Expired(record) => {
            let outcome = expired_code(&svc, &f, &record, info).await;
            (f, outcome)
        }
        Redeemed::Used(_) => {
            let outcome = replaced(&svc, &f, "The code was already used. Please request another code.", info).await;
            (f, outcome)
        }
        Redeemed::Ok(record) => succeed(svc, f, &record, info).await,
    }
}

/// An expired code: a new flow with 4070005; JSON clients get 410 naming it.
async fn expired_code(
    svc: &SelfService,
    flow: &Flow,
    record: &crate::persistence::selfservice::CodeRecord,
    info: &RequestInfo,
) -> Outcome {
    let now = svc.clock.now();
    let new_flow = challenge::restart(svc, flow, text::verification_expired(record.expires_at, now)).await;
    if info.is_json {
        let e = challenge::expired_error(record.expires_at, now, Some(new_flow.id));
        challenge::with_new_csrf(&new_flow, Outcome::Error(e))
    } else {
        challenge::redirect_to_new(svc, &new_flow, true)
    }
}

async fn use_token(svc: SelfService, flow: Flow, token: &str, info: &RequestInfo) -> (Flow, Outcome) {
    let redeemed = match codes::redeem(&svc, flow.id, "link", token).await {
        Ok(r) => r,
        Err(e) => return (flow, Outcome::Error(e)),
    };
    match redeemed {
        Redeemed::Ok(record) => succeed(svc, flow, &record, info).await,
        // Links are opened in browsers: a failed one restarts as a browser flow.
        Redeemed::Expired(record) => {
            let mut as_browser = flow.clone();
            as_browser.flow_type = FlowType::Browser;
            (flow, expired_code(&svc, &as_browser, &record, info).await)
        }
        Redeemed::Unknown | Redeemed::Used(_) => {
            let mut as_browser = flow.clone();
            as_browser.flow_type = FlowType::Browser;
            let new_flow = challenge::restart(&svc, &as_browser, text::verification_token_invalid()).await;
            (flow, retry_answer(&svc, &new_flow, "An error occured, please use the new flow.", info))
        }
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
        .unwrap_or_else(|| super::redirect::default_return(&svc.config));
    flow.return_to.as_deref().and_then(|r| super::redirect::validate(&svc.config, r, &default).ok()).unwrap_or(default)
}

async fn succeed(
    svc: SelfService,
    flow: Flow,
    record: &crate::persistence::selfservice::CodeRecord,
    info: &RequestInfo,
) -> (Flow, Outcome) {
    let mut f = flow;
    let identity = match record.identity_id {
        Some(id) => match svc.identities.mark_verified(id, &record.address_value).await {
            Ok(i) => Some(i),
            Err(e) => return (f, Outcome::Error(e)),
        },
        None => None,
    };
    let to = continue_url(&svc, &f);
    f.state = state::PASSED_CHALLENGE.into();
    f.ui.method = "GET".into();
    f.ui.action = to.clone();
    let g = challenge::method_group(f.active.as_deref().unwrap_or("code"));
    f.ui.nodes = vec![ui::anchor(g, "continue", &to, text::label_continue())];
    f.ui.messages = vec![text::verification_successful()];
    if let Some(identity) = &identity {
        let point =
            super::hooks::HookPoint { kind: FlowKind::Verification, stage: super::hooks::Stage::After, method: "code" };
        if let Err(e) = svc.hooks.run_after(&svc, point, &mut f, info, identity, None, None).await {
            let outcome = e.into_outcome(f.clone(), None);
            return (f, outcome);
        }
    }
    show(f, info)
}

/// A verification flow created by a hook (after registration, login or settings) for one
/// address: the message is sent at once and the flow starts in `sent_email`. Returns the flow
/// and its `show_verification_ui` item.
pub async fn start_for_address(
    svc: &SelfService,
    flow_type: FlowType,
    info: &RequestInfo,
    address: &crate::identity::VerifiableAddress,
    return_to: Option<String>,
    keep_csrf: bool,
) -> Result<(Flow, Json), Error> {
    let method = challenge::method(svc, FlowKind::Verification).unwrap_or("code");
    if method == "link" && address.via != "email" {
        return Err(Error::invalid("Verification links can only be sent to e-mail addresses."));
    }
    // As Kratos: after registration a browser's CSRF token is regenerated for the new flow;
    // after a refused login the browser's token is kept.
    let csrf = match info.csrf_cookie.clone().filter(|t| keep_csrf && super::csrf::is_valid(t)) {
        Some(t) => t,
        None => super::csrf::new_token(),
    };
    let mut flow = svc.new_flow(FlowKind::Verification, flow_type, info.url.clone(), csrf);
    flow.return_to = return_to;
    challenge::choose_method_ui(&mut flow, method, None);
    send_to_address(svc, &mut flow, method, &address.value, &address.via, None, false).await?;
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
            json!(super::redirect::with_query(svc.ui_url(FlowKind::Verification), "flow", &flow.id.to_string())),
        );
    }
    Ok((flow, item))
}
