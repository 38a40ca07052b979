//! Every flow submit enters here: it goes to the flow of its kind, and what only a place that
//! knows login and registration together can do happens after — a provider sign-in on the
//! wrong kind of flow switches flows (Kratos' login↔registration switch), and a provider's
//! way back that finishes a native app's API flow ends at the session-token exchanger.

use super::{Flow, FlowKind, FlowType, login, recovery, registration, settings, verification};
use crate::error::Error;
use crate::selfservice::SelfService;
use crate::selfservice::form::Submit;
use crate::selfservice::redirect;
use crate::selfservice::step::{Outcome, RequestInfo, Stepped, Switch};
use serde_json::Value as Json;

/// Runs a submit (or a provider's callback) on `flow`, a flow of `kind`.
pub async fn submit(svc: SelfService, kind: FlowKind, flow: Flow, submit: Submit, info: RequestInfo) -> Stepped {
    let callback = submit.callback.is_some();
    if callback
        && matches!(kind, FlowKind::Login | FlowKind::Registration)
        && !flow.data.refresh
        && flow.data.identity_id.is_none()
        && let Some(live) = info.session.clone()
    {
        // Already signed in when the provider sends the browser back: on to `return_to`, and
        // a native app's exchanger gets this session, as Kratos does (the return-to code goes
        // only to the allow-listed `return_to`, so the init code alone is worth nothing).
        let outcome = signed_in_already(&svc, &flow, &live.session, info.session_token.as_deref()).await;
        return (flow, outcome);
    }
    let submit = crate::selfservice::strategy::oidc::restore_kept(&flow, submit);
    let tp = submit.transient_payload();
    let (flow, outcome) = match kind {
        FlowKind::Login => login::submit(svc.clone(), flow, submit, info.clone()).await,
        FlowKind::Registration => registration::submit(svc.clone(), flow, submit, info.clone()).await,
        FlowKind::Recovery => recovery::submit(svc.clone(), flow, submit, info.clone()).await,
        FlowKind::Verification => verification::submit(svc.clone(), flow, submit, info.clone()).await,
        FlowKind::Settings => settings::submit(svc.clone(), flow, submit, info.clone()).await,
    };
    let outcome = match outcome {
        Outcome::Switch(s) => switch(&svc, &flow, *s, &info, tp).await,
        other => other,
    };
    let outcome = if callback { to_exchanger(&svc, outcome).await } else { outcome };
    (flow, outcome)
}

/// A provider account on the other kind of flow: it continues in a new flow of that kind,
/// which is stored; the answer is that flow's.
async fn switch(svc: &SelfService, from: &Flow, s: Switch, info: &RequestInfo, tp: Option<Json>) -> Outcome {
    let (next, outcome) = match s {
        Switch::ToRegistration { identity, provider } => {
            registration::from_provider(svc, from, *identity, &provider, info, tp).await
        }
        Switch::ToLogin { identity, provider } => login::from_provider(svc, from, *identity, &provider, info, tp).await,
    };
    svc.flows.create(next).await;
    outcome
}

/// A native app's API flow that finished in the browser (through a provider) with a
/// session-token exchanger: the session is bound to the exchanger and the browser goes to
/// `return_to` with the return-to code, which the app trades for the token.
async fn to_exchanger(svc: &SelfService, outcome: Outcome) -> Outcome {
    // A flow error on the way back goes to the app's `return_to` (the system browser shows
    // no flow UI); the app reads the flow.
    if let Outcome::Form { flow, .. } = &outcome
        && flow.flow_type == FlowType::Api
        && flow.data.exchange_return_code.is_some()
    {
        return Outcome::Redirect(return_to(svc, flow));
    }
    let Outcome::Done(done) = outcome else { return outcome };
    let (Some(sealed), Some((session, token))) =
        (done.flow.data.exchange_return_code.as_deref(), done.session.as_ref())
    else {
        return Outcome::Done(done);
    };
    if done.flow.flow_type != FlowType::Api {
        return Outcome::Done(done);
    }
    let Some(code) = svc.sessions.unseal(sealed) else {
        return Outcome::Error(Error::internal(&"the session-token exchange code cannot be opened"));
    };
    let exchanger = done.flow.data.exchange_flow.unwrap_or(done.flow.id);
    if let Err(e) = svc.sessions.bind_exchanger(exchanger, session.id, token).await {
        return Outcome::Error(e);
    }
    Outcome::Redirect(redirect::with_query(&return_to(svc, &done.flow), "code", &code))
}

async fn signed_in_already(
    svc: &SelfService,
    flow: &Flow,
    session: &crate::session::Session,
    token: Option<&str>,
) -> Outcome {
    let to = return_to(svc, flow);
    let (Some(sealed), Some(token)) = (flow.data.exchange_return_code.as_deref(), token) else {
        return Outcome::Redirect(to);
    };
    let Some(code) = svc.sessions.unseal(sealed) else { return Outcome::Redirect(to) };
    match svc.sessions.bind_exchanger(flow.data.exchange_flow.unwrap_or(flow.id), session.id, token).await {
        Ok(_) => Outcome::Redirect(redirect::with_query(&to, "code", &code)),
        Err(e) => Outcome::Error(e),
    }
}

/// The flow's `return_to` if the allow-list has it, else the default return URL.
fn return_to(svc: &SelfService, flow: &Flow) -> String {
    let default = redirect::default_return(&svc.config);
    flow.return_to
        .as_deref()
        .filter(|r| !r.is_empty())
        .and_then(|r| redirect::validate(&svc.config, r, &default).ok())
        .unwrap_or(default)
}
