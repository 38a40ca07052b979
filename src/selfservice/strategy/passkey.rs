//! The `passkey` method (`selfservice.methods.passkey`, behaviour.md §13.4): discoverable
//! WebAuthn credentials as a first factor. Sign-up creates a passkey with the traits, login
//! needs no identifier (the authenticator names the account by its user handle; conditional
//! UI options are in the nodes), settings add and remove passkeys. API flows take part too
//! (without the script). Verified by `webauthn-rs`; its challenge state is kept sealed in the
//! flow's internal data. As in Kratos, the user handle is 64 random characters, stored as the
//! credential's identifier; a passkey session is aal1 (AMR `passkey`).

use super::webauthn::{counter_moved, entry_id, relying_party, remove_entry, script_node, store_counter_later};
use super::{
    LoginForm, LoginStep, LoginStrategy, Method, RegistrationForm, RegistrationStep, RegistrationStrategy,
    SettingsStep, SettingsStrategy, login_problem,
};
use crate::catalogue::{self as text, Text};
use crate::config::Config;
use crate::error::Error;
use crate::identity::service::{count_first_factors, new_credential};
use crate::identity::{Identity, IdentityState};
use crate::selfservice::flow::{Flow, FlowType};
use crate::selfservice::form::{Submit, submitted_traits};
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome, show};
use crate::selfservice::traits;
use crate::selfservice::ui::{self, Input, group};
use crate::session::{Aal, AuthMethod};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey as Key, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn,
};

/// Internal-data keys: the pending ceremony and the user handle a registration will get.
const SESSION_DATA: &str = "passkey_session_data";
const REFRESH_DATA: &str = "passkey_refresh_data";
const USER_HANDLE: &str = "passkey_user_handle";
const PARSE_FAILED: &str = "Unable to parse WebAuthn response.";

/// The passkey method.
pub struct Passkey {
    rp: Option<Arc<Webauthn>>,
}

impl Passkey {
    /// The method with the relying party of `config` (none if it is unusable: logged).
    pub fn new(config: &Config) -> Passkey {
        let passkey = &config.selfservice.methods.passkey;
        let rp = if passkey.enabled { relying_party(config, &passkey.config.rp, false).map(Arc::new) } else { None };
        Passkey { rp }
    }
}

impl Method for Passkey {
    fn id(&self) -> &'static str {
        "passkey"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.passkey.enabled
    }

    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }

    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        Some(self)
    }
}

/// A new user handle: 64 random alphanumerics (Kratos' form).
fn new_user_handle() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..64).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// The stored entries of an identity's passkey credential.
fn entries(identity: &Identity) -> Vec<Json> {
    identity
        .credentials
        .get("passkey")
        .and_then(|c| c.config.get("credentials"))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The identity's passkeys that webauthn-rs can verify.
fn keys(identity: &Identity) -> Vec<Key> {
    entries(identity).iter().filter_map(|e| serde_json::from_value(e.get("key")?.clone()).ok()).collect()
}

/// The trait path (`traits.email`) whose value names a new passkey: the one flagged
/// `credentials.passkey.display_name`, else a WebAuthn identifier.
fn display_name_field(schema: &Json) -> Option<String> {
    fn walk(props: &Json, prefix: &str, flag: &str) -> Option<String> {
        for (name, prop) in props.as_object()? {
            let path = format!("{prefix}.{name}");
            if prop.pointer(flag) == Some(&Json::Bool(true)) {
                return Some(path);
            }
            if let Some(found) = prop.get("properties").and_then(|p| walk(p, &path, flag)) {
                return Some(found);
            }
        }
        None
    }
    let props = schema.pointer("/properties/traits/properties")?;
    walk(props, "traits", "/ory.sh~1kratos/credentials/passkey/display_name")
        .or_else(|| walk(props, "traits", "/ory.sh~1kratos/credentials/webauthn/identifier"))
}

/// The value at a dotted trait path in `traits` (`traits.email` → `traits["email"]`).
fn trait_value(traits: &Json, path: &str) -> Option<String> {
    let pointer: String = path.split('.').skip(1).map(|p| format!("/{p}")).collect();
    traits.pointer(&pointer).and_then(Json::as_str).map(str::to_string)
}

/// A hidden input.
fn hidden(name: &str, value: impl Into<Json>) -> Input {
    Input::new(group::PASSKEY, name, "hidden").value(value)
}

/// A button calling `function` in browsers (`onclick`) and naming it for other clients.
fn trigger(flow: &Flow, name: &str, function: &str, label: Text) -> ui::Node {
    let mut node = Input::new(group::PASSKEY, name, "button").value("").label(label).node();
    if flow.flow_type == FlowType::Browser {
        node.attributes.insert("onclick".into(), format!("window.{function}()").into());
    }
    node.attributes.insert("onclickTrigger".into(), function.into());
    node
}

/// The script node, once per form (browser flows).
fn add_script(svc: &Services, flow: &mut Flow) {
    if flow.flow_type == FlowType::Browser && !flow.ui.nodes.iter().any(|n| n.name() == "webauthn_script") {
        flow.ui.nodes.push(script_node(svc));
    }
}

/// Creation options for `handle` named `name`, as browsers take them: a discoverable
/// credential, the user handle as Kratos forms it.
fn creation_options(rp: &Webauthn, handle: &str, name: &str) -> Option<(Json, PasskeyRegistration)> {
    let (options, state) = rp
        .start_passkey_registration(Uuid::new_v4(), name, name, None)
        .map_err(|e| tracing::warn!(error = %e, "passkey: no registration challenge"))
        .ok()?;
    let mut options = serde_json::to_value(&options).ok()?;
    if let Some(user) = options.pointer_mut("/publicKey/user") {
        user["id"] = json!(URL_SAFE_NO_PAD.encode(handle.as_bytes()));
    }
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
        selection["requireResidentKey"] = json!(true);
        selection["residentKey"] = json!("required");
    }
    Some((options, state))
}

/// The credential entry stored for a new passkey (Kratos' fields plus webauthn-rs' `key`).
fn entry_of(key: &Key, now: chrono::DateTime<chrono::Utc>) -> Json {
    json!({
        "id": STANDARD.encode::<&[u8]>(key.cred_id().as_ref()),
        "attestation_type": "none",
        "authenticator": {"aaguid": STANDARD.encode([0u8; 16]), "sign_count": 0, "clone_warning": false},
        "display_name": "",
        "added_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "is_passwordless": true,
        "flags": {"user_present": true, "user_verified": true, "backup_eligible": false, "backup_state": false},
        "key": serde_json::to_value(key).unwrap_or(Json::Null),
    })
}

/// Adds `key` (user handle `handle`) to the identity's passkey credential.
fn add_key(identity: &mut Identity, key: &Key, handle: &str, now: chrono::DateTime<chrono::Utc>) {
    let mut list = entries(identity);
    list.push(entry_of(key, now));
    let credential = identity.credentials.entry("passkey".into()).or_insert_with(|| {
        let mut c = new_credential("passkey", now);
        c.version = 1;
        c
    });
    credential.config = json!({ "credentials": list, "user_handle": STANDARD.encode(handle.as_bytes()) });
    if !credential.identifiers.iter().any(|i| i == handle) {
        credential.identifiers.push(handle.to_string());
    }
    credential.updated_at = now;
}

/// Parses an assertion; user handles in standard or padded base64 are accepted too.
fn parse_assertion(raw: &str) -> Option<PublicKeyCredential> {
    let mut value: Json = serde_json::from_str(raw).ok()?;
    if let Some(handle) = value.pointer_mut("/response/userHandle")
        && let Some(s) = handle.as_str()
    {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(s))
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s.trim_end_matches('=')))
            .ok()?;
        *handle = json!(URL_SAFE_NO_PAD.encode(bytes));
    }
    serde_json::from_value(value).ok()
}

/// Verifies a new passkey (`raw`: the browser's attestation) against the flow's pending
/// registration; returns it with the user handle it was created for, or the message to show.
fn finish_registration(svc: &Services, rp: &Webauthn, flow: &Flow, raw: &str) -> Result<(Key, String), Text> {
    let credential =
        serde_json::from_str::<RegisterPublicKeyCredential>(raw).map_err(|_| text::generic(PARSE_FAILED))?;
    let state = svc.kept_secret(flow, SESSION_DATA).and_then(|s| serde_json::from_value::<PasskeyRegistration>(s).ok());
    let handle = svc.kept_secret(flow, USER_HANDLE).and_then(|h| h.as_str().map(str::to_string));
    let (Some(state), Some(handle)) = (state, handle) else {
        return Err(text::generic("Unable to parse WebAuthn response: no registration was started."));
    };
    rp.finish_passkey_registration(&credential, &state)
        .map(|key| (key, handle))
        .map_err(|e| text::generic(&format!("Unable to parse WebAuthn response: {e}")))
}

fn amr(svc: &Services) -> AuthMethod {
    AuthMethod {
        method: "passkey".into(),
        aal: Some(Aal::Aal1),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    }
}

impl Passkey {
    /// The login nodes: the challenge (discoverable, or for `identity`'s passkeys on a
    /// refresh), the result input, the trigger unless `trigger` is false.
    fn login_nodes(&self, svc: &Services, flow: &mut Flow, identity: Option<&Identity>, with_trigger: bool) {
        let Some(rp) = &self.rp else { return };
        let options = match identity {
            None => rp.start_discoverable_authentication().ok().and_then(|(options, state)| {
                svc.keep_secret(flow, SESSION_DATA, &serde_json::to_value(&state).ok()?);
                serde_json::to_value(&options).ok()
            }),
            Some(identity) => {
                let keys = keys(identity);
                if keys.is_empty() {
                    return;
                }
                rp.start_passkey_authentication(&keys).ok().and_then(|(options, state)| {
                    svc.keep_secret(flow, REFRESH_DATA, &serde_json::to_value(&state).ok()?);
                    serde_json::to_value(&options).ok()
                })
            }
        };
        let Some(mut options) = options else { return tracing::warn!("passkey: no login challenge") };
        // Clients add `mediation` themselves (conditional UI).
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        add_script(svc, flow);
        if identity.is_none() {
            // Conditional UI: browsers offer passkeys in the identifier's autofill.
            crate::selfservice::strategy::ensure_identifier(svc, flow, Some("username webauthn"));
        }
        if with_trigger {
            flow.ui.nodes.push(trigger(flow, "passkey_login_trigger", "oryPasskeyLogin", text::login_passkey()));
        }
        let mut result = hidden("passkey_login", "").node();
        if identity.is_none() {
            if flow.flow_type == FlowType::Browser {
                result.attributes.insert("onload".into(), "window.oryPasskeyLoginAutocompleteInit()".into());
            }
            result.attributes.insert("onloadTrigger".into(), "oryPasskeyLoginAutocompleteInit".into());
        }
        flow.ui.nodes.push(result);
        flow.ui.nodes.push(hidden("passkey_challenge", options.to_string()).node());
    }

    /// Registration nodes: the creation options (with the trait that names the passkey), the
    /// result input and the trigger.
    fn registration_nodes(&self, svc: &Services, flow: &mut Flow) {
        let Some(rp) = &self.rp else { return };
        flow.ui.nodes.retain(|n| n.group != group::PASSKEY);
        let (_, schema) = svc.schema_of(flow);
        let handle = new_user_handle();
        let name = svc.config.selfservice.methods.passkey.config.rp.display_name.clone().unwrap_or_default();
        let Some((options, state)) = creation_options(rp, &handle, &name) else { return };
        let (Ok(state), field) = (serde_json::to_value(&state), display_name_field(&schema)) else { return };
        svc.keep_secret(flow, SESSION_DATA, &state);
        svc.keep_secret(flow, USER_HANDLE, &json!(handle));
        let data = json!({ "credentialOptions": options, "displayNameFieldName": field.unwrap_or_default() });
        add_script(svc, flow);
        flow.ui.nodes.push(trigger(
            flow,
            "passkey_register_trigger",
            "oryPasskeyRegistration",
            text::register_passkey(),
        ));
        flow.ui.nodes.push(hidden("passkey_register", "").node());
        flow.ui.nodes.push(hidden("passkey_create_data", data.to_string()).node());
    }
}

#[async_trait::async_trait(?Send)]
impl LoginStrategy for Passkey {
    fn aal(&self, _config: &Config) -> Aal {
        Aal::Aal1
    }

    fn responsible(&self, _svc: &Services, flow: &Flow) -> bool {
        self.rp.is_some() && flow.data.requested_aal.unwrap_or(Aal::Aal1) == Aal::Aal1
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("passkey_login").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        match form {
            LoginForm::FirstFactor => self.login_nodes(svc, flow, None, true),
            LoginForm::Identification => self.login_nodes(svc, flow, None, false),
            LoginForm::Credentials { identity } => {
                let has = identity.is_some_and(|i| !keys(i).is_empty());
                if has || svc.config.security.account_enumeration.mitigate {
                    if flow.ui.node_mut("passkey_challenge", None).is_none() {
                        self.login_nodes(svc, flow, None, false);
                    }
                    flow.ui.nodes.push(trigger(
                        flow,
                        "passkey_login_trigger",
                        "oryPasskeyLogin",
                        text::login_passkey(),
                    ));
                }
            }
            LoginForm::Refresh { identity } => self.login_nodes(svc, flow, Some(identity), true),
            LoginForm::SecondFactor { .. } => {}
        }
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return LoginStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let problem = |mut flow: Flow, field: &str, message: Text| {
            if let Some(n) = flow.ui.node_mut("passkey_login", None) {
                n.set_value(Some("".into()));
            }
            LoginStep::Answer(Box::new(login_problem(flow, "", field, message, tp.clone())))
        };
        let Some(rp) = &self.rp else { return problem(flow, "", text::no_passkey_user()) };
        let Some(raw) = submit.field("passkey_login") else {
            return problem(flow, "passkey_login", text::required("passkey_login"));
        };
        let Some(credential) = parse_assertion(raw) else { return problem(flow, "", text::generic(PARSE_FAILED)) };
        // The authenticator names the account by the user handle it was created with.
        let handle = credential.get_user_unique_id().and_then(|h| String::from_utf8(h.to_vec()).ok());
        // User handles are stored as they were made (mixed case): looked up exactly.
        let found: Result<Option<Identity>, Error> = async {
            let Some(handle) = handle else { return Ok(None) };
            let mut pooled = svc.store.get().await?;
            Ok(crate::persistence::identity::find_by_identifier(&mut pooled.conn(), "passkey", &handle).await?)
        }
        .await;
        let identity = match found {
            Ok(Some(i)) => i,
            Ok(None) => return problem(flow, "", text::no_passkey_user()),
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        let Some(key) =
            keys(&identity).into_iter().find(|k| AsRef::<[u8]>::as_ref(k.cred_id()) == credential.raw_id.as_slice())
        else {
            return problem(flow, "", text::no_passkey_user());
        };
        // A refresh challenged the signed-in identity's passkeys; a new login any passkey.
        let refresh =
            svc.kept_secret(&flow, REFRESH_DATA).and_then(|s| serde_json::from_value::<PasskeyAuthentication>(s).ok());
        let verified = match refresh {
            // A refresh challenged the signed-in identity's passkeys: only that identity.
            Some(_) if flow.data.identity_id != Some(identity.id) => return problem(flow, "", text::totp_wrong()),
            Some(state) => rp.finish_passkey_authentication(&credential, &state),
            None => match svc
                .kept_secret(&flow, SESSION_DATA)
                .and_then(|s| serde_json::from_value::<DiscoverableAuthentication>(s).ok())
            {
                Some(state) => rp.finish_discoverable_authentication_v2(&credential, state, &key),
                None => return problem(flow, "", text::totp_wrong()),
            },
        };
        let result = match verified {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey: assertion refused");
                return problem(flow, "", text::totp_wrong());
            }
        };
        // A counter that does not move forward is a cloned authenticator (or a replay).
        if !counter_moved(&entries(&identity), &result) {
            tracing::info!("passkey: assertion with a counter that went backwards");
            return problem(flow, "", text::totp_wrong());
        }
        if identity.state != IdentityState::Active {
            return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::IdentityDisabled))));
        }
        let mut flow = flow;
        store_counter_later(svc.identities.clone(), identity.id, "passkey", result);
        flow.data.internal.remove(SESSION_DATA);
        flow.data.internal.remove(REFRESH_DATA);
        flow.active = Some("passkey".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc) }
    }
}

fn registration_form(flow: Flow, tp: Option<Json>) -> RegistrationStep {
    RegistrationStep::Answer(Box::new((flow.clone(), Outcome::Form { flow, transient_payload: tp })))
}

#[async_trait::async_trait(?Send)]
impl RegistrationStrategy for Passkey {
    fn handles(&self, method: &str) -> bool {
        method == "passkey"
    }

    fn responsible(&self, _svc: &Services) -> bool {
        self.rp.is_some()
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("passkey_register").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: RegistrationForm) {
        match form {
            RegistrationForm::OneStep | RegistrationForm::Credentials => self.registration_nodes(svc, flow),
            RegistrationForm::Profile => flow.ui.nodes.retain(|n| n.group != group::PASSKEY),
        }
    }

    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return RegistrationStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let Some(rp) = &self.rp else { return registration_form(flow, tp) };
        let (schema_id, schema) = svc.schema_of(&flow);
        let traits =
            submitted_traits(submit, &schema).or_else(|| flow.data.traits.clone()).unwrap_or_else(|| json!({}));
        let mut f = flow;
        let Some(extracted) = traits::validate(svc, &mut f, &traits) else { return registration_form(f, tp) };
        let refuse = |mut f: Flow, field: &str, message: Text| {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            if let Some(n) = f.ui.node_mut("passkey_register", None) {
                n.set_value(Some("".into()));
            }
            f.ui.add_field_message(field, message);
            f.ui.sort_registration(&schema);
            registration_form(f, tp.clone())
        };
        // Traits first: valid traits without a passkey yet show the passkey step.
        let Some(raw) = submit.field("passkey_register") else {
            return refuse(f, "passkey_register", text::required("passkey_register"));
        };
        let (key, handle) = match finish_registration(svc, rp, &f, raw) {
            Ok(done) => done,
            Err(message) => return refuse(f, "", message),
        };
        let now = svc.clock.now();
        let mut identity = Identity::signing_up(schema_id, traits, now);
        add_key(&mut identity, &key, &handle, now);
        // The pending registration stays in the flow: if creating the identity fails (a taken
        // identifier, a hook), the same form can be submitted again.
        let mut identifiers = extracted.password_identifiers;
        identifiers.extend(extracted.webauthn_identifiers);
        RegistrationStep::Create { flow: f, identity: Box::new(identity), identifiers }
    }
}

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for Passkey {
    fn claims(&self, submit: &Submit) -> bool {
        submit.field("passkey_settings_register").is_some() || submit.field("passkey_remove").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, identity: &Identity, traits: &Json, schema: &Json) {
        let Some(rp) = &self.rp else { return };
        let first_factors = count_first_factors(identity);
        add_script(svc, flow);
        for entry in entries(identity) {
            let name = entry.get("display_name").and_then(Json::as_str).unwrap_or_default();
            let added_at = entry
                .get("added_at")
                .and_then(Json::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_default();
            let mut node = Input::new(group::PASSKEY, "passkey_remove", "submit")
                .value(hex::encode(entry_id(&entry)))
                .label(text::settings_passkey_remove(name, added_at))
                .node();
            if first_factors < 2 {
                node.attributes.insert("disabled".into(), true.into());
            }
            flow.ui.nodes.push(node);
        }
        let Some(name) = display_name_field(schema).and_then(|f| trait_value(traits, &f)) else { return };
        let handle = new_user_handle();
        let Some((options, state)) = creation_options(rp, &handle, &name) else { return };
        let Ok(state) = serde_json::to_value(&state) else { return };
        svc.keep_secret(flow, SESSION_DATA, &state);
        svc.keep_secret(flow, USER_HANDLE, &json!(handle));
        flow.ui.nodes.push(trigger(
            flow,
            "passkey_register_trigger",
            "oryPasskeySettingsRegistration",
            text::settings_passkey_register(),
        ));
        flow.ui.nodes.push(hidden("passkey_settings_register", "").node());
        flow.ui.nodes.push(hidden("passkey_create_data", options.to_string()).node());
    }

    async fn update(
        &self,
        svc: &Services,
        flow: Flow,
        mut identity: Identity,
        submit: &Submit,
        info: &RequestInfo,
        privileged: bool,
    ) -> SettingsStep {
        let to_ui = info.html_for(flow.flow_type);
        let mut f = flow;
        f.ui.reset_messages();
        let remove = submit.field("passkey_remove").map(str::to_string);
        let register = submit.field("passkey_settings_register").map(str::to_string);
        let (Some(rp), true) = (&self.rp, remove.is_some() || register.is_some()) else {
            f.ui.messages.push(text::no_settings_strategy());
            return SettingsStep::Answer(Box::new(show(f, false, to_ui)));
        };
        if !privileged {
            return SettingsStep::RefreshRequired(f);
        }
        let refuse = |mut f: Flow, field: &str, message: Text| {
            f.ui.add_field_message(field, message);
            SettingsStep::Answer(Box::new(show(f, false, to_ui)))
        };
        if let Some(hex_id) = remove {
            if entries(&identity).is_empty() {
                return refuse(f, "", text::generic("You tried to remove a WebAuthn but you have no WebAuthn set up."));
            }
            let not_found = "You tried to remove a passkey which does not exist.";
            if let Err((field, message)) =
                remove_entry(&mut identity, "passkey", &hex_id, not_found, |_| true, svc.clock.now())
            {
                return refuse(f, field, message);
            }
            return SettingsStep::Save { flow: f, identity: Box::new(identity), proved: None };
        }
        let raw = register.unwrap_or_default();
        let (key, handle) = match finish_registration(svc, rp, &f, &raw) {
            Ok(done) => done,
            Err(message) => return refuse(f, "", message),
        };
        add_key(&mut identity, &key, &handle, svc.clock.now());
        f.data.internal.remove(SESSION_DATA);
        f.data.internal.remove(USER_HANDLE);
        SettingsStep::Save { flow: f, identity: Box::new(identity), proved: Some(amr(svc)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_display_name_comes_from_the_flagged_trait() {
        let schema = json!({"properties": {"traits": {"properties": {
            "name": {"type": "object", "properties": {"nick": {"type": "string",
                "ory.sh/kratos": {"credentials": {"passkey": {"display_name": true}}}}}},
            "email": {"type": "string", "ory.sh/kratos": {"credentials": {"webauthn": {"identifier": true}}}}
        }}}});
        assert_eq!(display_name_field(&schema).as_deref(), Some("traits.name.nick"));
        assert_eq!(trait_value(&json!({"name": {"nick": "ann"}}), "traits.name.nick").as_deref(), Some("ann"));
        let only_webauthn = json!({"properties": {"traits": {"properties": {
            "email": {"type": "string", "ory.sh/kratos": {"credentials": {"webauthn": {"identifier": true}}}}
        }}}});
        assert_eq!(display_name_field(&only_webauthn).as_deref(), Some("traits.email"));
    }

    #[test]
    fn user_handles_are_kratos_shaped_and_assertions_accept_padded_handles() {
        let handle = new_user_handle();
        assert_eq!(handle.len(), 64);
        assert!(handle.chars().all(|c| c.is_ascii_alphanumeric()));
        let padded = STANDARD.encode(b"abcd");
        let raw = json!({"id": "AA", "rawId": "AA", "type": "public-key", "response": {
            "authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA", "userHandle": padded}});
        let parsed = parse_assertion(&raw.to_string()).map(|c| c.get_user_unique_id().map(<[u8]>::to_vec));
        assert_eq!(parsed, Some(Some(b"abcd".to_vec())));
    }
}
