//! The settings flow (behaviour.md §7) — so far what recovery needs: a flow bound to an
//! identity, created after a successful recovery, with the profile and password forms, and
//! readable through `GET /self-service/settings/flows?id=` by that identity's session.

use super::SelfService;
use super::flow::{Flow, FlowKind, FlowType, state};
use super::login::{password_node, submit_button};
use super::text;
use super::ui::{self, group};
use crate::error::ApiError;
use crate::identity::Identity;
use actix_web::http::StatusCode;
use serde_json::Value as Json;

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

/// A settings flow for `identity` (state `show_form`), stored and live.
pub async fn create_for(
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
    svc.flows.create(flow.clone()).await;
    flow
}

/// 401 when no session is presented.
pub fn no_session() -> ApiError {
    ApiError::unauthorized("No valid session credentials found in the request.")
        .with_id("session_inactive")
        .with_message("request does not have a valid authentication session")
}

/// 403 `security_identity_mismatch`: the flow belongs to another identity.
pub fn identity_mismatch() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "The requested action was forbidden")
        .with_id("security_identity_mismatch")
        .with_reason("You must restart the flow because the resumable session was initiated by another person.")
}
