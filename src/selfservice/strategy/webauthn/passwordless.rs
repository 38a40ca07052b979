//! WebAuthn keys as a first factor (`webauthn.config.passwordless = true`, behaviour.md
//! §13.4), browser flows only as in Kratos: login asks for the identifier (`method=webauthn`),
//! then challenges that account's passwordless keys; registration creates the identity with
//! a key; settings add passwordless keys. Presence is what the key proves (userVerification
//! discouraged), as Kratos asks for it; the session is aal1 (AMR `webauthn`).

use super::{SESSION_DATA, WebAuthn, amr, keys, script_node, still_valid, store_counter_later, trigger};
use crate::catalogue::{self as text, Text};
use crate::error::Error;
use crate::identity::service::new_credential;
use crate::identity::{Identity, IdentityState};
use crate::selfservice::brute_force::Verdict;
use crate::selfservice::flow::{Flow, FlowType};
use crate::selfservice::form::{Submit, submitted_traits};
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome};
use crate::selfservice::strategy::{
    LoginForm, LoginStep, RegistrationForm, RegistrationStep, RegistrationStrategy, find_account, login_problem,
};
use crate::selfservice::traits;
use crate::selfservice::ui::{self, Input, group};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value as Json, json};
use webauthn_rs::prelude::{
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKeyAuthentication, SecurityKeyRegistration,
};

/// Where the account an identifier names is looked for: its WebAuthn identifier, else (as
/// identifier-first found it) its password identifier.
const ACCOUNT_KINDS: &[&str] = &["webauthn", "password"];

/// The internal-data key of the user id a registration creates its identity with.
const NEW_IDENTITY: &str = "webauthn_new_identity";

fn answer(stepped: crate::selfservice::step::Stepped) -> LoginStep {
    LoginStep::Answer(Box::new(stepped))
}

impl WebAuthn {
    /// The login nodes of passwordless mode.
    pub(super) fn populate_passwordless(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        if self.rp.is_none() || flow.flow_type != FlowType::Browser {
            return;
        }
        let submit = || ui::submit_button(group::WEBAUTHN, "webauthn", text::login_webauthn());
        match form {
            LoginForm::FirstFactor => {
                crate::selfservice::strategy::ensure_identifier(svc, flow, Some("username webauthn"));
                flow.ui.nodes.push(submit());
            }
            LoginForm::Credentials { identity } => {
                let has = identity.is_some_and(|i| !keys(i, true).is_empty());
                if has || svc.config.security.account_enumeration.mitigate {
                    flow.ui.nodes.push(submit());
                }
            }
            LoginForm::Refresh { identity } => {
                let Some(identifier) = identity.credentials.get("webauthn").and_then(|c| c.identifiers.first()) else {
                    return;
                };
                let Some(options) = self.challenge(svc, flow, identity) else { return };
                if flow.ui.node_mut("identifier", None).is_none() {
                    flow.ui
                        .nodes
                        .push(Input::new(group::DEFAULT, "identifier", "hidden").value(identifier.as_str()).node());
                }
                flow.ui.nodes.push(Input::new(group::WEBAUTHN, "webauthn_login", "hidden").value("").node());
                flow.ui.nodes.push(script_node(svc));
                flow.ui.nodes.push(trigger(
                    "webauthn_login_trigger",
                    "oryWebAuthnLogin",
                    &options,
                    text::login_webauthn(),
                ));
            }
            LoginForm::Identification | LoginForm::SecondFactor { .. } => {}
        }
    }

    /// A challenge for the identity's passwordless keys (kept in the flow), as the options the
    /// trigger carries.
    fn challenge(&self, svc: &Services, flow: &mut Flow, identity: &Identity) -> Option<Json> {
        let rp = self.rp.as_ref()?;
        let keys = keys(identity, true);
        if keys.is_empty() {
            return None;
        }
        let (options, state) = rp
            .start_securitykey_authentication(&keys)
            .map_err(|e| tracing::warn!(error = %e, "webauthn: no login challenge"))
            .ok()?;
        // The challenge is bound to the account it was made for: only that account's stored
        // keys verify it, whatever identifier the answer names.
        let kept = json!({ "state": serde_json::to_value(&state).ok()?, "identity": identity.id });
        svc.keep_secret(flow, SESSION_DATA, &kept);
        serde_json::to_value(&options).ok()
    }

    /// A passwordless login submit: the identifier (→ the challenge), then the assertion.
    pub(super) async fn login_passwordless(
        &self,
        svc: &Services,
        flow: Flow,
        submit: &Submit,
        info: &RequestInfo,
    ) -> LoginStep {
        let tp = submit.transient_payload();
        let Some(identifier) =
            submit.trimmed("identifier").map(str::to_string).or_else(|| flow.data.identifier.clone())
        else {
            return answer(login_problem(flow, "", "identifier", text::required("identifier"), tp));
        };
        let Some(response) = submit.field("webauthn_login") else {
            // Step two: the challenge for this account's keys; the browser runs it.
            let identity = match find_account(svc, ACCOUNT_KINDS, &identifier).await {
                Ok(Some(i)) if !keys(&i, true).is_empty() => i,
                Ok(_) => return answer(login_problem(flow, &identifier, "", text::no_passkey_user(), tp)),
                Err(e) => return answer((flow, Outcome::Error(e))),
            };
            let mut f = flow;
            let Some(options) = self.challenge(svc, &mut f, &identity) else {
                return answer(login_problem(f, &identifier, "", text::no_passkey_user(), tp));
            };
            f.ui.reset_messages();
            f.ui.nodes.retain(|n| n.name() == "csrf_token");
            f.ui.nodes
                .push(Input::new(group::DEFAULT, "identifier", "hidden").value(identifier.as_str()).required().node());
            f.ui.nodes.push(script_node(svc));
            f.ui.nodes.push(trigger("webauthn_login_trigger", "oryWebAuthnLogin", &options, text::login_continue()));
            f.ui.nodes.push(Input::new(group::WEBAUTHN, "webauthn_login", "hidden").value("").node());
            f.ui.messages.push(text::login_webauthn_prepare());
            f.data.identifier = Some(identifier);
            let to = crate::selfservice::redirect::with_query(svc.ui_url(f.kind), "flow", &f.id.to_string());
            let outcome =
                Outcome::ErrorOrRedirect { error: Error::LocationChangeRequired { to: to.clone() }, redirect: to };
            return answer((f, outcome));
        };
        let problem = |mut f: Flow, message: Text| {
            if let Some(n) = f.ui.node_mut("webauthn_login", None) {
                n.set_value(Some("".into()));
            }
            answer(login_problem(f, "", "", message, tp.clone()))
        };
        let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(response) else {
            return problem(flow, text::generic("Unable to parse WebAuthn response."));
        };
        // Step three: the account the challenge was made for, and only that one.
        let kept = svc.kept_secret(&flow, SESSION_DATA).unwrap_or(Json::Null);
        let state = serde_json::from_value::<SecurityKeyAuthentication>(kept["state"].clone()).ok();
        let bound = serde_json::from_value::<uuid::Uuid>(kept["identity"].clone()).ok();
        let (Some(state), Some(bound)) = (state, bound) else { return problem(flow, text::totp_wrong()) };
        let identity = match svc.identities.get(bound).await {
            Ok(i) => i,
            Err(Error::NotFound(_)) => return problem(flow, text::no_passkey_user()),
            Err(e) => return answer((flow, Outcome::Error(e))),
        };
        match find_account(svc, ACCOUNT_KINDS, &identifier).await {
            Ok(Some(named)) if named.id != bound => return problem(flow, text::totp_wrong()),
            Ok(_) => {}
            Err(e) => return answer((flow, Outcome::Error(e))),
        }
        match svc.brute_force.reserve(&identifier, info.client_ip.as_deref()).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Locked(until)) => return problem(flow, text::locked_out(svc.brute_force.retry_after(until))),
            Err(e) => return answer((flow, Outcome::Error(Error::from(e)))),
        }
        let Some(rp) = &self.rp else { return problem(flow, text::no_webauthn()) };
        let result = match rp.finish_securitykey_authentication(&credential, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "webauthn: passwordless assertion refused");
                return problem(flow, text::totp_wrong());
            }
        };
        if !still_valid(&identity, &result, true) {
            tracing::info!("webauthn: assertion by a removed key or with a counter that went backwards");
            return problem(flow, text::totp_wrong());
        }
        if identity.state != IdentityState::Active {
            return answer((flow, Outcome::Error(Error::IdentityDisabled)));
        }
        if let Err(e) = svc.brute_force.succeeded(&identifier, info.client_ip.as_deref()).await {
            tracing::warn!(error = %e, "brute-force counter could not be cleared");
        }
        store_counter_later(svc.identities.clone(), identity.id, "webauthn", result);
        let mut flow = flow;
        flow.data.internal.remove(SESSION_DATA);
        flow.active = Some("webauthn".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc) }
    }

    /// Registration nodes: the key's name, the trigger with creation options for the identity
    /// to be created, the result input, the script.
    fn registration_nodes(&self, svc: &Services, flow: &mut Flow) {
        let Some(rp) = &self.rp else { return };
        flow.ui.nodes.retain(|n| n.group != group::WEBAUTHN);
        let user = uuid::Uuid::new_v4();
        let name = svc.config.selfservice.methods.webauthn.config.rp.display_name.clone().unwrap_or_default();
        let (options, state) = match rp.start_securitykey_registration(user, &name, &name, None, None, None) {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "webauthn: no registration challenge"),
        };
        let (Ok(options), Ok(state)) = (serde_json::to_value(&options), serde_json::to_value(&state)) else { return };
        svc.keep_secret(flow, SESSION_DATA, &state);
        svc.keep_secret(flow, NEW_IDENTITY, &json!(user));
        flow.ui.nodes.push(
            Input::new(group::WEBAUTHN, "webauthn_register_displayname", "text")
                .value("")
                .label(text::settings_webauthn_display_name())
                .node(),
        );
        flow.ui.nodes.push(trigger(
            "webauthn_register_trigger",
            "oryWebAuthnRegistration",
            &options,
            text::register_webauthn(),
        ));
        flow.ui.nodes.push(script_node(svc));
        flow.ui.nodes.push(Input::new(group::WEBAUTHN, "webauthn_register", "hidden").value("").node());
    }
}

fn registration_form(flow: Flow, tp: Option<Json>) -> RegistrationStep {
    RegistrationStep::Answer(Box::new((flow.clone(), Outcome::Form { flow, transient_payload: tp })))
}

#[async_trait::async_trait(?Send)]
impl RegistrationStrategy for WebAuthn {
    fn handles(&self, method: &str) -> bool {
        method == "webauthn"
    }

    fn responsible(&self, svc: &Services) -> bool {
        self.rp.is_some() && super::passwordless(svc)
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("webauthn_register").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: RegistrationForm) {
        if !super::passwordless(svc) || flow.flow_type != FlowType::Browser {
            return;
        }
        match form {
            RegistrationForm::OneStep | RegistrationForm::Credentials => self.registration_nodes(svc, flow),
            RegistrationForm::Profile => flow.ui.nodes.retain(|n| n.group != group::WEBAUTHN),
        }
    }

    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return RegistrationStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let (Some(rp), FlowType::Browser) = (&self.rp, flow.flow_type) else {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(text::no_registration_strategy());
            return registration_form(f, tp);
        };
        let (schema_id, schema) = svc.schema_of(&flow);
        let traits =
            submitted_traits(submit, &schema).or_else(|| flow.data.traits.clone()).unwrap_or_else(|| json!({}));
        let name = submit.trimmed("webauthn_register_displayname").unwrap_or_default().to_string();
        let mut f = flow;
        let Some(extracted) = traits::validate(svc, &mut f, &traits) else { return registration_form(f, tp) };
        let refuse = |mut f: Flow, field: &str, message: Text| {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            if let Some(n) = f.ui.node_mut("webauthn_register", None) {
                n.set_value(Some("".into()));
            }
            if let Some(n) = f.ui.node_mut("webauthn_register_displayname", None) {
                n.set_value(Some(name.clone().into()));
            }
            f.ui.add_field_message(field, message);
            f.ui.sort_registration(&schema);
            registration_form(f, tp.clone())
        };
        let Some(raw) = submit.field("webauthn_register") else {
            return refuse(f, "webauthn_register", text::required("webauthn_register"));
        };
        if extracted.webauthn_identifiers.is_empty() {
            return refuse(f, "", text::identifier_missing());
        }
        let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(raw) else {
            return refuse(f, "", text::generic("Unable to parse WebAuthn response."));
        };
        let state =
            svc.kept_secret(&f, SESSION_DATA).and_then(|s| serde_json::from_value::<SecurityKeyRegistration>(s).ok());
        let user = svc.kept_secret(&f, NEW_IDENTITY).and_then(|u| serde_json::from_value::<uuid::Uuid>(u).ok());
        let (Some(state), Some(user)) = (state, user) else {
            return refuse(f, "", text::generic("Unable to parse WebAuthn response: no registration was started."));
        };
        let key = match rp.finish_securitykey_registration(&credential, &state) {
            Ok(k) => k,
            Err(e) => return refuse(f, "", text::generic(&format!("Unable to parse WebAuthn response: {e}"))),
        };
        let now = svc.clock.now();
        let mut identity = Identity::signing_up(schema_id, traits.clone(), now);
        // The key was created for this user id (its user handle).
        identity.id = user;
        let entry = json!({
            "id": STANDARD.encode::<&[u8]>(key.cred_id().as_ref()),
            "attestation_type": "none",
            "authenticator": {"aaguid": STANDARD.encode([0u8; 16]), "sign_count": 0, "clone_warning": false},
            "display_name": name,
            "added_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "is_passwordless": true,
            "key": serde_json::to_value(&key).unwrap_or(Json::Null),
        });
        let mut c = new_credential("webauthn", now);
        c.version = 1;
        c.config = json!({ "credentials": [entry], "user_handle": STANDARD.encode(user.as_bytes()) });
        c.identifiers = extracted.webauthn_identifiers.clone();
        identity.credentials.insert("webauthn".into(), c);
        // The pending registration stays in the flow: if creating the identity fails (a taken
        // identifier, a hook), the same form can be submitted again.
        RegistrationStep::Create { flow: f, identity: Box::new(identity), identifiers: extracted.webauthn_identifiers }
    }
}
