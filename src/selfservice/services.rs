//! What flows and strategies work with: configuration, store, clock, the identity and
//! session services, live flows, hooks and the courier. Strategies receive these (never the
//! strategy registry, which is above them).

use super::flow::{Flow, FlowKind, FlowType};
use super::redirect;
use super::step::RequestInfo;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::identity::IdentityService;
use crate::persistence::{Persister, Store};
use crate::schema::SchemaRegistry;
use crate::session::SessionService;
use serde_json::{Value as Json, json};
use std::sync::Arc;

/// The services of the self-service layer.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub persister: Persister,
    pub clock: Clock,
    pub schemas: SchemaRegistry,
    pub identities: IdentityService,
    pub sessions: SessionService,
    pub flows: super::registry::FlowRegistry,
    pub brute_force: super::brute_force::BruteForce,
    pub hooks: super::hook::HookRunner,
    pub courier: crate::courier::Courier,
    pub outbox: super::outbox::Outbox,
    /// The OAuth2 provider's admin API (`login_challenge`).
    pub hydra: super::hydra::Hydra,
}

impl Services {
    /// A new flow of `kind` and `flow_type` for `request_url`, with an empty UI.
    pub fn new_flow(&self, kind: FlowKind, flow_type: FlowType, request_url: String, csrf: String) -> Flow {
        Flow::new(&self.config, self.clock.now(), kind, flow_type, request_url, csrf)
    }

    /// The UI URL of a flow kind.
    pub fn ui_url(&self, kind: FlowKind) -> &str {
        super::flow::ui_url(&self.config, kind)
    }

    /// The identity schema of a flow (its `identity_schema`, else the default): id and document.
    pub fn schema_of(&self, flow: &Flow) -> (String, Json) {
        let id = flow.data.identity_schema.clone().unwrap_or_else(|| self.schemas.default_id().to_string());
        let raw = self.schemas.get(&id).map(|s| s.raw.clone()).unwrap_or(Json::Null);
        (id, raw)
    }

    /// Where a browser goes after `flow` succeeded with `method` (the method's return URL,
    /// the flow's, the global default; `return_to` if allowed), and the `continue_with` items
    /// of an SPA.
    pub fn after_success(
        &self,
        after: &crate::config::AfterConfig,
        method: &str,
        flow: &Flow,
        info: &RequestInfo,
    ) -> Result<(String, Vec<Json>), Error> {
        let default =
            after.return_url_for(method).map(str::to_string).unwrap_or_else(|| redirect::default_return(&self.config));
        let to = redirect::after_flow(&self.config, flow.return_to.as_deref(), &flow.request_url, &default)
            .map_err(redirect::Forbidden::into_error)?;
        let mut continue_with = Vec::new();
        if flow.flow_type == FlowType::Browser && info.is_json {
            continue_with.push(json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
        }
        Ok((to, continue_with))
    }

    /// Checks an init request's `return_to` (if any) against the allow-list; returns it.
    pub fn checked_return_to(&self, return_to: Option<&str>) -> Result<Option<String>, Error> {
        match return_to.filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(r) => {
                let default = redirect::default_return(&self.config);
                redirect::validate(&self.config, r, &default).map(Some).map_err(redirect::Forbidden::into_error)
            }
        }
    }

    /// Keeps a secret in the flow's internal data, sealed (AES-256-GCM with the first secret),
    /// so the stored flow never holds it in clear: a TOTP key being enrolled, unconfirmed
    /// lookup codes, a WebAuthn challenge.
    pub fn keep_secret(&self, flow: &mut Flow, key: &str, value: &Json) {
        match self.sessions.seal(&value.to_string()) {
            Some(sealed) => {
                flow.data.internal.insert(key.into(), Json::String(sealed));
            }
            None => tracing::warn!(key, "no secret to seal a flow's internal data: not kept"),
        }
    }

    /// A secret kept by [`Self::keep_secret`] (none if it was sealed with a secret this
    /// process does not have).
    pub fn kept_secret(&self, flow: &Flow, key: &str) -> Option<Json> {
        let sealed = flow.data.internal.get(key)?.as_str()?;
        serde_json::from_str(&self.sessions.unseal(sealed)?).ok()
    }

    /// The identity as flows and templates show it (no credentials, no admin metadata).
    pub fn identity_data(&self, identity: &crate::identity::Identity) -> Json {
        let schema_url = self.identities.schema_url_of(identity);
        crate::identity::view::render(
            identity,
            &schema_url,
            crate::identity::view::CredentialsView::Hidden,
            crate::identity::view::AdminMetadata::Hidden,
        )
    }
}
