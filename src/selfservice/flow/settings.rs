//! The settings flow (behaviour.md §7): a flow bound to the signed-in identity (or created by
//! a successful recovery); every enabled method shows its form, a submit goes to the method it
//! names, and changes to credentials or identifiers need a privileged (recent) session.

use super::{Flow, FlowKind, FlowType, State, expiry, verification};
use crate::catalogue as text;
use crate::config::Config;
use crate::error::Error;
use crate::identity::Identity;
use crate::selfservice::SelfService;
use crate::selfservice::form::Submit;
use crate::selfservice::hook::{self, HookPoint, Stage};
use crate::selfservice::redirect;
use crate::selfservice::step::{Outcome, RequestInfo, Stepped, check_csrf, csrf_outcome, show};
use crate::selfservice::strategy::SettingsStep;
use crate::selfservice::ui;
use crate::session::registry::Live;
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Whether a session authenticated at `authenticated_at` is privileged `now`: changes to
/// credentials and identifiers are allowed within `max_age` of signing in.
pub fn privileged(authenticated_at: DateTime<Utc>, max_age: chrono::Duration, now: DateTime<Utc>) -> bool {
    authenticated_at + max_age >= now
}

/// `selfservice.flows.settings.privileged_session_max_age`.
fn privileged_max_age(config: &Config) -> chrono::Duration {
    chrono::Duration::from_std(config.selfservice.flows.settings.privileged_session_max_age.0)
        .unwrap_or(chrono::Duration::hours(1))
}

/// Whether a submit may go to a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitGate {
    Proceed,
    /// No session: 401 (browsers go to the login UI).
    NoSession,
    /// The session belongs to another identity than the flow.
    IdentityMismatch,
}

/// The gate of a submit: the caller's identity (if signed in) and the flow's.
pub fn gate_submit(session_identity: Option<Uuid>, flow_identity: Option<Uuid>) -> SubmitGate {
    match session_identity {
        None => SubmitGate::NoSession,
        Some(id) if flow_identity != Some(id) => SubmitGate::IdentityMismatch,
        Some(_) => SubmitGate::Proceed,
    }
}

/// The settings submit URL of a flow.
fn submit_url(public_base: &str, flow_id: Uuid) -> String {
    format!("{public_base}self-service/settings?flow={flow_id}")
}

/// Where a change that needs a privileged session sends the browser: a refresh login that
/// returns to the settings submit.
pub fn refresh_url(public_base: &str, flow_id: Uuid) -> String {
    let base = format!("{public_base}self-service/login/browser?refresh=true");
    redirect::with_query(&base, "return_to", &submit_url(public_base, flow_id))
}

/// Whether the caller's session meets `selfservice.flows.settings.required_aal`; if not, the
/// error names the aal2 login that returns to `return_to`.
pub fn check_aal(svc: &SelfService, live: &Live, return_to: Option<&str>) -> Result<(), Error> {
    let required = &svc.config.selfservice.flows.settings.required_aal;
    if crate::session::satisfies(required, live.session.aal, live.shared.available_aal) {
        Ok(())
    } else {
        Err(Error::Aal2Required { redirect: redirect::aal2_login_url(&svc.config, return_to) })
    }
}

/// How long a change waiting for re-authentication is kept (Kratos' continuity container).
const CONTINUITY_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// The internal-context key of the kept change.
const CONTINUITY: &str = "continuity";

/// Keeps a browser's submit that needs a privileged session while the user signs in again:
/// sealed inside the flow ([`Services::keep_secret`](crate::selfservice::services::Services::keep_secret)),
/// bound to the flow and the identity, for [`CONTINUITY_TTL`].
fn pause(svc: &SelfService, flow: &mut Flow, identity_id: Uuid, submit: &Submit, now: DateTime<Utc>) {
    let kept = json!({
        "flow": flow.id,
        "identity": identity_id,
        "expires_at": now + CONTINUITY_TTL,
        "body": submit.body,
        "from_form": submit.from_form,
    });
    svc.keep_secret(flow, CONTINUITY, &kept);
}

/// The kept submit of `flow`, if it belongs to `identity_id` and is fresh (taken: it is
/// applied once).
fn resume(svc: &SelfService, flow: &mut Flow, identity_id: Uuid, now: DateTime<Utc>) -> Option<Submit> {
    let kept = svc.kept_secret(flow, CONTINUITY);
    flow.data.internal.remove(CONTINUITY);
    let kept = kept?;
    let expires_at: DateTime<Utc> = serde_json::from_value(kept.get("expires_at")?.clone()).ok()?;
    let bound = kept.get("flow") == Some(&json!(flow.id)) && kept.get("identity") == Some(&json!(identity_id));
    let from_form = kept.get("from_form").and_then(Json::as_bool).unwrap_or(false);
    (bound && expires_at > now).then(|| kept.get("body").cloned().map(|body| Submit::new(body, from_form))).flatten()
}

/// Every enabled method's form for the flow's identity.
fn build_ui(svc: &SelfService, flow: &mut Flow, identity: &Identity) {
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
    for s in svc.strategies.settings() {
        s.populate(svc, flow, identity, &traits, &schema);
    }
    flow.ui.sort_settings(&schema);
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
    flow.state = State::ShowForm;
    flow.return_to = return_to;
    flow.data.identity_id = Some(identity.id);
    flow.data.identity = Some(svc.identity_data(identity));
    build_ui(svc, &mut flow, identity);
    flow
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
    svc.checked_return_to(return_to)?;
    // After the aal2 login the browser comes back to this very request.
    check_aal(svc, live, Some(&info.url))?;
    let identity = svc.identities.get(live.session.identity_id).await?;
    let return_to = return_to.filter(|r| !r.is_empty()).map(str::to_string);
    let flow = new_for(svc, &identity, flow_type, info.url.clone(), return_to, csrf);
    svc.hooks.run_before(FlowKind::Settings, &flow, info).await?;
    svc.flows.create(flow.clone()).await;
    Ok(flow)
}

/// `POST /self-service/settings?flow=`: runs inside the flow's actor.
pub async fn submit(svc: SelfService, flow: Flow, submit: Submit, info: RequestInfo) -> Stepped {
    let tp = submit.transient_payload();
    let to_ui = info.html_for(flow.flow_type);
    let session = info.session.as_ref().map(|l| &l.session);
    match gate_submit(session.map(|s| s.identity_id), flow.data.identity_id) {
        SubmitGate::Proceed => {}
        SubmitGate::NoSession => {
            let redirect = svc.ui_url(FlowKind::Login).to_string();
            return (flow, Outcome::ErrorOrRedirect { error: Error::SessionRequired, redirect });
        }
        SubmitGate::IdentityMismatch => return (flow, Outcome::Error(Error::IdentityMismatch)),
    }
    let Some(live) = info.session.as_ref() else { return (flow, Outcome::Error(Error::SessionRequired)) };
    let session = &live.session;
    if let Err(error) = check_aal(&svc, live, Some(&submit_url(&svc.config.public_base_url(), flow.id))) {
        let Error::Aal2Required { redirect } = &error else { return (flow, Outcome::Error(error)) };
        let redirect = redirect.clone();
        return (flow, Outcome::ErrorOrRedirect { error, redirect });
    }
    let now = svc.clock.now();
    if flow.is_expired(now) {
        let message = text::settings_expired(flow.expires_at, now);
        let current = match svc.identities.get(session.identity_id).await {
            Ok(i) => i,
            Err(e) => return (flow, Outcome::Error(e)),
        };
        let prepare = |f: &mut Flow| {
            f.data.identity_id = Some(current.id);
            f.data.identity = Some(svc.identity_data(&current));
            f.state = State::ShowForm;
            build_ui(&svc, f, &current);
        };
        let outcome = expiry::replace(&svc, &flow, &info, prepare, message).await;
        return (flow, outcome);
    }
    // Back from re-authenticating (the refresh login returns here with a GET): the change that
    // needed it is applied now. It passed its CSRF check when it was submitted.
    let mut flow = flow;
    let (submit, replayed) = match info.is_get() && submit.method().is_empty() {
        true => match resume(&svc, &mut flow, session.identity_id, now) {
            Some(kept) => (kept, true),
            None => (submit, false),
        },
        false => (submit, false),
    };
    let tp = if replayed { submit.transient_payload() } else { tp };
    let method = svc.strategies.settings_method_of(&submit);
    // Credentials in a GET would end up in URLs and logs (login refuses them the same way).
    // A provider's callback comes back with a GET and its own proof (state, continuity).
    let callback = submit.callback.is_some();
    if info.is_get() && !replayed && !callback && svc.strategies.is_settings_method(&method) {
        let mut f = flow;
        f.ui.reset_messages();
        f.ui.messages.push(text::generic(text::error::GET_NOT_ALLOWED));
        return show(f, false, to_ui);
    }
    let Some(strategy) = svc.strategies.settings_method(&method) else {
        let mut f = flow;
        f.ui.reset_messages();
        f.ui.messages.push(text::no_settings_strategy());
        return show(f, false, to_ui);
    };
    if !replayed
        && !callback
        && let Err(failure) = check_csrf(&flow, &info, &submit.body)
    {
        return csrf_outcome(flow, failure, tp);
    }
    let identity = match svc.identities.get(session.identity_id).await {
        Ok(i) => i,
        Err(e) => return (flow, Outcome::Error(e)),
    };
    let privileged = privileged(session.authenticated_at, privileged_max_age(&svc.config), now);
    let (mut f, mut identity, proved) = match strategy.update(&svc, flow, identity, &submit, &info, privileged).await {
        SettingsStep::Answer(stepped) => return *stepped,
        SettingsStep::RefreshRequired(mut flow) => {
            if flow.flow_type == FlowType::Browser {
                // A provider's way back is not replayable: the link starts over instead.
                let replay = crate::selfservice::strategy::oidc::replay_link(&svc.config, &submit);
                pause(&svc, &mut flow, session.identity_id, replay.as_ref().unwrap_or(&submit), now);
            }
            let to = refresh_url(&svc.config.public_base_url(), flow.id);
            let outcome =
                Outcome::ErrorOrRedirect { error: Error::RefreshRequired { redirect: to.clone() }, redirect: to };
            return (flow, outcome);
        }
        SettingsStep::Save { flow, identity, proved } => (flow, *identity, proved),
    };
    // Web hooks that may refuse or change the update (`can_interrupt`, `response.parse`) run
    // before it is saved.
    if let Err(e) = svc.hooks.run_pre_persist(FlowKind::Settings, &method, &f, &info, &mut identity, tp.as_ref()).await
    {
        let outcome = e.into_outcome(f.clone(), tp);
        return (f, outcome);
    }
    match svc.identities.save_changed(&mut identity).await {
        Ok(()) => {}
        Err(Error::UniqueViolation) => {
            f.ui.reset_messages();
            f.ui.fill_traits(&identity.traits);
            f.ui.messages.push(text::duplicate_credentials());
            return show(f, false, to_ui);
        }
        Err(e) => return (f, Outcome::Error(e)),
    }
    let mut session = session.clone();
    if let Some(amr) = proved {
        match svc.sessions.add_method(session.id, amr).await {
            Ok(s) => session = s,
            Err(e) => return (f, Outcome::Error(e)),
        }
    }
    let (f, outcome) = saved(&svc, f, identity, &method, &info, &session, tp).await;
    // Upstream's settings hook issues the session cookie again for browsers.
    match (f.flow_type, info.session_token.clone()) {
        (FlowType::Browser, Some(token)) => {
            let inner = Box::new(outcome);
            (f, Outcome::WithCookies { csrf: None, session: Some(Box::new((session, token))), inner })
        }
        _ => (f, outcome),
    }
}

/// Saved: the form again with the new values and 1050001, the implicit verification hook,
/// the after-settings hooks, and where the client goes.
async fn saved(
    svc: &SelfService,
    mut f: Flow,
    identity: Identity,
    method: &str,
    info: &RequestInfo,
    session: &crate::session::Session,
    tp: Option<Json>,
) -> Stepped {
    f.state = State::Success;
    f.data.identity = Some(svc.identity_data(&identity));
    build_ui(svc, &mut f, &identity);
    f.ui.messages = vec![text::settings_saved()];
    // The implicit `verification` hook: a verification flow for the first address that was
    // never sent a message (e.g. a changed e-mail).
    let mut verification = None;
    if svc.config.selfservice.flows.verification.enabled
        && let Some(address) =
            identity.verifiable_addresses.iter().find(|a| a.status == "pending" && !a.value.is_empty())
    {
        // The change is saved: a verification message that cannot be sent does not undo it.
        match verification::start_for_address(svc, f.flow_type, info, address, None, true, None).await {
            Ok((_, item)) => verification = Some(item),
            Err(e) => tracing::warn!(error = %e, "settings: no verification flow"),
        }
    }
    let point = HookPoint { kind: FlowKind::Settings, stage: Stage::After, method };
    let starter = verification::Starter(svc);
    if let Err(e) = svc.hooks.run_after(point, &mut f, info, &identity, Some(session), tp.as_ref(), &starter).await {
        let outcome = e.into_outcome(f.clone(), tp);
        return (f, outcome);
    }
    let after = &svc.config.selfservice.flows.settings.after;
    if info.html_for(f.flow_type) {
        let to = after
            .return_url_for(method)
            .map(str::to_string)
            .unwrap_or_else(|| redirect::with_query(svc.ui_url(FlowKind::Settings), "flow", &f.id.to_string()));
        let to = redirect::after_flow(&svc.config, f.return_to.as_deref(), &f.request_url, &to).unwrap_or(to);
        return (f, Outcome::Redirect(to));
    }
    let mut shown = f.clone();
    let show_ui =
        hook::after_hooks(&svc.config, FlowKind::Settings, method).iter().any(|h| h.hook == "show_verification_ui");
    if let (true, Some(item)) = (show_ui, verification) {
        shown.data.continue_with.push(item);
    }
    if f.flow_type == FlowType::Browser {
        let default =
            after.return_url_for(method).map(str::to_string).unwrap_or_else(|| redirect::default_return(&svc.config));
        let to = redirect::after_flow(&svc.config, f.return_to.as_deref(), &f.request_url, &default).unwrap_or(default);
        shown.data.continue_with.insert(0, json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
    }
    (f, Outcome::Show { flow: shown, ok: true, to_ui: false, transient_payload: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_privileged_for_max_age_after_signing_in() {
        let signed_in = crate::clock::Clock::system().now();
        let hour = chrono::Duration::hours(1);
        assert!(privileged(signed_in, hour, signed_in));
        assert!(privileged(signed_in, hour, signed_in + hour), "the boundary is still privileged");
        assert!(!privileged(signed_in, hour, signed_in + hour + chrono::Duration::seconds(1)));
    }

    #[test]
    fn only_the_flows_own_identity_may_submit() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(gate_submit(None, Some(me)), SubmitGate::NoSession);
        assert_eq!(gate_submit(Some(other), Some(me)), SubmitGate::IdentityMismatch);
        assert_eq!(gate_submit(Some(me), None), SubmitGate::IdentityMismatch);
        assert_eq!(gate_submit(Some(me), Some(me)), SubmitGate::Proceed);
    }

    #[test]
    fn refresh_returns_to_the_submit() {
        let id = Uuid::nil();
        assert_eq!(
            refresh_url("https://id.example/", id),
            "https://id.example/self-service/login/browser?refresh=true&return_to=https%3A%2F%2Fid.example%2Fself-service%2Fsettings%3Fflow%3D00000000-0000-0000-0000-000000000000"
        );
    }
}
