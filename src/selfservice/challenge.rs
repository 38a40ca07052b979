//! What recovery and verification share: the active method (`code` or `link`), their forms,
//! the address a submit names, sending the message, and restarting a flow.

use super::brute_force::Verdict;
use super::flow::{Flow, FlowKind, FlowType, State};
use super::services::Services;
use super::step::{Outcome, RequestInfo, Stepped, flow_message};
use super::ui::{self, Input, group};
use crate::catalogue::{self as text, Text};
use crate::courier::MessageType;
use crate::courier::template::TemplateType;
use crate::error::Error;
use crate::identity::Identity;
use serde_json::{Value as Json, json};

/// The method a recovery or verification flow uses (`selfservice.flows.<kind>.use`), if it
/// is enabled.
pub fn method(svc: &Services, kind: FlowKind) -> Option<&'static str> {
    let flows = &svc.config.selfservice.flows;
    let chosen = match kind {
        FlowKind::Recovery => flows.recovery.method,
        _ => flows.verification.method,
    };
    let methods = &svc.config.selfservice.methods;
    let enabled = match chosen {
        crate::config::CodeOrLink::Code => methods.code.enabled,
        crate::config::CodeOrLink::Link => methods.link.enabled,
    };
    enabled.then_some(chosen.as_str())
}

/// Counts a code submission to `flow` (in the database, so every instance shares the count);
/// `true` once the flow is over `code.max_submissions`.
pub async fn over_submission_limit(svc: &Services, flow: &Flow) -> Result<bool, Error> {
    let max = svc.config.selfservice.methods.code.config.max_submissions;
    let until = flow.expires_at + chrono::Duration::hours(1);
    let submissions = svc.brute_force.code_submission(flow.id, max, until).await.map_err(Error::from)?;
    Ok(submissions > max)
}

/// The flow again (400) with "no method can handle this submit" (`message`).
pub fn no_method(mut flow: Flow, message: Text, info: &RequestInfo) -> (Flow, Outcome) {
    flow.ui.reset_messages();
    flow.ui.messages.push(message);
    let redirect = flow.flow_type == FlowType::Browser && !info.is_json;
    (flow.clone(), Outcome::Show { flow, ok: false, to_ui: redirect, transient_payload: None })
}

/// Echoes a submit's transient payload on the flow it answers with (successful answers).
pub fn echo_transient_payload(body: &Json, mut outcome: Outcome) -> Outcome {
    if let Outcome::Show { transient_payload, ok: true, .. } = &mut outcome {
        *transient_payload = body.get("transient_payload").cloned();
    }
    outcome
}

/// Whether the configuration enables the recovery/verification method `method`.
pub fn enabled(svc: &Services, method: &str) -> bool {
    let methods = &svc.config.selfservice.methods;
    match method {
        "code" => methods.code.enabled,
        "link" => methods.link.enabled,
        _ => false,
    }
}

/// The method a submit may use: the one it names (`chosen`), when that method is enabled and
/// is the configured one or the one the flow was started with (an admin link).
pub fn resolve_method(
    configured: &str,
    chosen: Option<&str>,
    active: Option<&str>,
    enabled: &dyn Fn(&str) -> bool,
) -> Option<&'static str> {
    let name = match chosen? {
        "code" => "code",
        "link" => "link",
        _ => return None,
    };
    (enabled(name) && (name == configured || active == Some(name))).then_some(name)
}

/// The node group of a method.
pub fn method_group(method: &str) -> &'static str {
    if method == "link" { group::LINK } else { group::CODE }
}

/// How long a secret of `method` lives.
pub fn lifespan(svc: &Services, method: &str) -> chrono::Duration {
    let methods = &svc.config.selfservice.methods;
    let d = if method == "link" { methods.link.config.lifespan.0 } else { methods.code.config.lifespan.0 };
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(1))
}

/// The first form: an e-mail address and a submit button for `method`.
pub fn choose_method_ui(flow: &mut Flow, method: &str, email: Option<&str>) {
    let g = method_group(method);
    flow.ui.nodes.clear();
    flow.ui.nodes.push(ui::csrf_node());
    let mut input = Input::new(g, "email", "email").required().label(text::label_email());
    if let Some(e) = email {
        input = input.value(e);
    }
    flow.ui.nodes.push(input.node());
    flow.ui.nodes.push(Input::new(g, "method", "submit").value(method).label(text::label_continue()).node());
}

/// The form after a code was sent: the code, continue, and "resend" (the address again).
pub fn code_sent_ui(flow: &mut Flow, email: Option<&str>) {
    let label =
        if flow.kind == FlowKind::Recovery { text::label_recovery_code() } else { text::label_verification_code() };
    flow.ui.nodes.clear();
    flow.ui.nodes.push(ui::csrf_node());
    // Recovery's code input says what a code looks like; verification's only that it is required.
    let code = Input::new(group::CODE, "code", "text").required();
    let code = if flow.kind == FlowKind::Recovery { code.pattern("[0-9]+").max_length(6) } else { code };
    flow.ui.nodes.push(code.label(label).node());
    flow.ui.nodes.push(Input::new(group::CODE, "method", "hidden").value("code").node());
    flow.ui.nodes.push(Input::new(group::CODE, "method", "submit").value("code").label(text::label_continue()).node());
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        flow.ui.nodes.push(Input::new(group::CODE, "email", "submit").value(e).label(text::label_resend()).node());
    }
}

/// The submitted address, trimmed and lower-cased, or the message to show on the field.
pub fn submitted_email(body: &Json) -> Result<String, Text> {
    let raw = match body.get("email") {
        Some(Json::String(s)) => s.trim().to_string(),
        None | Some(Json::Null) => return Err(text::required("email")),
        Some(other) => return Err(text::invalid_email(&other.to_string())),
    };
    if raw.is_empty() {
        return Err(text::required("email"));
    }
    let valid = raw.len() <= 320
        && !raw.chars().any(char::is_whitespace)
        && raw.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !valid {
        return Err(text::invalid_email(&raw));
    }
    Ok(raw.to_lowercase())
}

/// Shows the flow again with `message` on the e-mail field (400).
pub fn email_problem(
    mut flow: Flow,
    method: &str,
    email: Option<&str>,
    message: Text,
    info: &RequestInfo,
) -> (Flow, Outcome) {
    flow.ui.reset_messages();
    if flow.state == State::ChooseMethod || flow.ui.node_mut("email", None).is_none() {
        choose_method_ui(&mut flow, method, email);
    }
    flow.ui.add_field_message("email", message);
    let redirect = flow.flow_type == FlowType::Browser && !info.is_json;
    (flow.clone(), Outcome::Show { flow, ok: false, to_ui: redirect, transient_payload: None })
}

/// Counts a message to `address` against the send limits (per address and per client; known
/// and unknown addresses alike). Over a limit the flow answers with 4069001 (recovery) or
/// 4079001 (verification) instead.
pub async fn reserve_send(
    svc: &Services,
    flow: Flow,
    address: &str,
    info: &RequestInfo,
    tp: Option<Json>,
) -> Result<Flow, Stepped> {
    match svc.brute_force.reserve_send(address, info.client_ip.as_deref()).await {
        Ok(Verdict::Allowed) => Ok(flow),
        Ok(Verdict::Locked(until)) => {
            let verification = flow.kind == FlowKind::Verification;
            let message = text::too_many_messages(verification, svc.brute_force.retry_after(until));
            Err(flow_message(flow, message, tp))
        }
        Err(e) => Err((flow, Outcome::Error(Error::from(e)))),
    }
}

/// One message to queue for a flow.
pub struct Mail<'a> {
    pub template: TemplateType,
    pub to: &'a str,
    /// `email` or `sms`.
    pub via: &'a str,
    pub identity: Option<&'a Identity>,
    /// The traits of an identity not created yet (registration codes).
    pub traits: Option<&'a Json>,
    /// The secret fields (`recovery_code`, `verification_url`, …).
    pub fields: Vec<(&'static str, String)>,
    pub transient_payload: Option<&'a Json>,
    pub expires_in: chrono::Duration,
}

/// Renders and queues one message.
pub async fn send(svc: &Services, flow: &Flow, mail: Mail<'_>) -> Result<(), Error> {
    let mut data = json!({
        "to": mail.to,
        "request_url": flow.request_url,
        "transient_payload": mail.transient_payload.cloned().unwrap_or_else(|| json!({})),
        "expires_in_minutes": mail.expires_in.num_minutes(),
    });
    if let Some(o) = data.as_object_mut() {
        if let Some(i) = mail.identity {
            o.insert("identity".into(), svc.identity_data(i));
        } else if let Some(traits) = mail.traits {
            o.insert("traits".into(), traits.clone());
            o.insert("identity".into(), json!({ "traits": traits }));
        }
        for (k, v) in mail.fields {
            o.insert(k.to_string(), json!(v));
        }
    }
    let kind = if mail.via == "sms" { MessageType::Sms } else { MessageType::Email };
    svc.courier.send_template(kind, mail.to, mail.template, data).await.map(|_| ())
}

/// A new flow of the same kind and type replacing `old`, showing `message` (the choose-method
/// form; CSRF token regenerated). Stored before it is returned.
pub async fn restart(svc: &Services, old: &Flow, message: Text) -> Flow {
    let csrf = super::csrf::new_token();
    let mut flow = svc.new_flow(old.kind, old.flow_type, old.request_url.clone(), csrf);
    flow.return_to = old.return_to.clone();
    let m = method(svc, old.kind).unwrap_or("code");
    if old.data.choose_address {
        super::flow::recovery_v2::initial_ui(&mut flow);
    } else {
        choose_method_ui(&mut flow, m, None);
    }
    flow.ui.messages.push(message);
    svc.flows.create(flow.clone()).await;
    flow
}

/// `<public>/self-service/<kind>/flows?id=<id>`.
pub fn fetch_url(svc: &Services, kind: FlowKind, id: uuid::Uuid) -> String {
    format!("{}self-service/{}/flows?id={id}", svc.config.public_base_url(), kind.as_str())
}

/// `<public>/self-service/<kind>?flow=<id>&<key>=<secret>` (the link inside a message).
pub fn submit_link(svc: &Services, kind: FlowKind, id: uuid::Uuid, key: &str, secret: &str) -> String {
    let base = format!("{}self-service/{}", svc.config.public_base_url(), kind.as_str());
    let with_flow = super::redirect::with_query(&base, "flow", &id.to_string());
    super::redirect::with_query(&with_flow, key, secret)
}

/// 303 to the new flow: the flow's UI for browser flows, else its JSON (`…/flows?id=`).
pub fn redirect_to_new(svc: &Services, new_flow: &Flow, to_ui: bool) -> Outcome {
    let to = if to_ui {
        super::redirect::with_query(svc.ui_url(new_flow.kind), "flow", &new_flow.id.to_string())
    } else {
        fetch_url(svc, new_flow.kind, new_flow.id)
    };
    Outcome::WithCookies {
        csrf: (new_flow.flow_type == FlowType::Browser).then(|| new_flow.csrf_token.clone()),
        session: None,
        inner: Box::new(Outcome::Redirect(to)),
    }
}

/// 410 `self_service_flow_replaced` naming the replacement (`use_flow_id`).
pub fn replaced_error(new_flow: &Flow, reason: &str) -> Error {
    Error::FlowReplaced { replacement: new_flow.id, reason: reason.into() }
}

/// 410 `self_service_flow_expired` (`expired_at`, `since` and, with a replacement, `use_flow_id`).
pub fn expired_error(
    expired_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    new_flow: Option<uuid::Uuid>,
) -> Error {
    Error::FlowExpired { expired_at, now, replacement: new_flow, continue_with: Vec::new() }
}

/// An error that also sets the replacement flow's CSRF cookie.
pub fn with_new_csrf(new_flow: &Flow, inner: Outcome) -> Outcome {
    Outcome::WithCookies {
        csrf: (new_flow.flow_type == FlowType::Browser).then(|| new_flow.csrf_token.clone()),
        session: None,
        inner: Box::new(inner),
    }
}
