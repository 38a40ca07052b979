//! The `webauthn` method (behaviour.md §13.4): as a second factor (`config.passwordless =
//! false`), security keys registered and removed in settings and asked for at aal2 login; as
//! a first factor (`passwordless = true`, in [`passwordless`]) keys sign up and sign in on
//! their own. Browser flows only, as in Kratos. Registration and assertions are verified by `webauthn-rs`; its
//! challenge state is kept in the flow's internal context, and each key is stored in Kratos'
//! shape plus webauthn-rs' own form of it (`key`), which carries the public key and the sign
//! counter. A counter that goes backwards fails the login; the new counter is written after
//! the answer (deferred).

mod passwordless;

use super::{
    LoginForm, LoginStep, LoginStrategy, Method, RegistrationStrategy, SettingsStep, SettingsStrategy,
    second_factor_identity, second_factor_problem,
};
use crate::catalogue::{self as text, Text};
use crate::config::Config;
use crate::error::Error;
use crate::identity::{Identity, IdentityService};
use crate::selfservice::brute_force::Verdict;
use crate::selfservice::flow::{Flow, FlowType};
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome, show};
use crate::selfservice::ui::{self, Input, group};
use crate::session::{Aal, AuthMethod};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha512};
use std::sync::{Arc, OnceLock};
use webauthn_rs::prelude::{
    AuthenticationResult, COSEKey, PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey,
    SecurityKeyAuthentication, SecurityKeyRegistration, Url, Webauthn, WebauthnBuilder,
};

/// The browser helper the trigger nodes call (`GET /.well-known/ory/webauthn.js`).
pub const SCRIPT: &str = include_str!("webauthn.js");
/// The internal-context key of the pending challenge.
const SESSION_DATA: &str = "webauthn_session_data";

/// The script's subresource integrity (`sha512-…`).
pub fn script_integrity() -> &'static str {
    static INTEGRITY: OnceLock<String> = OnceLock::new();
    INTEGRITY.get_or_init(|| format!("sha512-{}", STANDARD.encode(Sha512::digest(SCRIPT.as_bytes()))))
}

/// The WebAuthn method.
pub struct WebAuthn {
    rp: Option<Arc<Webauthn>>,
}

impl WebAuthn {
    /// The method with the relying party of `config` (none if it is unusable: logged).
    pub fn new(config: &Config) -> WebAuthn {
        let webauthn = &config.selfservice.methods.webauthn;
        let rp = if webauthn.enabled { relying_party(config, &webauthn.config.rp, true).map(Arc::new) } else { None };
        WebAuthn { rp }
    }
}

/// The relying party: `rp.id` (default: the public host), `rp.origins` / `rp.origin`
/// (default: the public base URL's origin), `rp.display_name`. `presence_only`: security keys
/// need only user presence (second factors).
pub(crate) fn relying_party(
    config: &Config,
    rp: &crate::config::RelyingParty,
    presence_only: bool,
) -> Option<Webauthn> {
    let base = Url::parse(&config.public_base_url()).ok()?;
    let id = rp.id.clone().filter(|i| !i.is_empty()).or_else(|| base.host_str().map(str::to_string))?;
    let mut origins: Vec<Url> = rp.origins.iter().filter_map(|o| Url::parse(o).ok()).collect();
    if origins.is_empty() {
        origins.push(rp.origin.as_deref().and_then(|o| Url::parse(o).ok()).unwrap_or(base));
    }
    let name = rp.display_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| id.clone());
    let built = WebauthnBuilder::new(&id, &origins[0]).and_then(|b| {
        origins[1..]
            .iter()
            .fold(b, |b, o| b.append_allowed_origin(o))
            .rp_name(&name)
            // Presence is the second factor (the password was the first), as in Kratos:
            // userVerification "discouraged" and no credProtect request, which browsers
            // refuse for keys without a PIN or biometrics.
            .danger_set_user_presence_only_security_keys(presence_only)
            .build()
    });
    match built {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(error = %e, rp_id = %id, "webauthn/passkey: unusable relying party configuration");
            None
        }
    }
}

impl Method for WebAuthn {
    fn id(&self) -> &'static str {
        "webauthn"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.webauthn.enabled
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

fn passwordless(svc: &Services) -> bool {
    svc.config.selfservice.methods.webauthn.config.passwordless
}

/// The stored entries of an identity's WebAuthn credential (`config.credentials`).
fn entries(identity: &Identity) -> Vec<Json> {
    identity
        .credentials
        .get("webauthn")
        .and_then(|c| c.config.get("credentials"))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
}

fn is_passwordless(entry: &Json) -> bool {
    entry.get("is_passwordless") == Some(&Json::Bool(true))
}

/// The raw credential id of an entry (stored as standard base64).
pub(crate) fn entry_id(entry: &Json) -> Vec<u8> {
    entry.get("id").and_then(Json::as_str).and_then(|s| STANDARD.decode(s).ok()).unwrap_or_default()
}

/// The webauthn-rs key of a stored entry: its own form (`key`), else one made from what
/// Kratos stores (the COSE `public_key`, the sign counter and flags), so that keys migrated
/// from Kratos sign in.
fn key_of(entry: &Json) -> Option<SecurityKey> {
    if let Some(key) = entry.get("key") {
        return serde_json::from_value(key.clone()).ok();
    }
    let id = entry_id(entry);
    let cose = STANDARD.decode(entry.get("public_key")?.as_str()?).ok()?;
    let cose: serde_cbor_2::Value = serde_cbor_2::from_slice(&cose).ok()?;
    let cose = COSEKey::try_from(&cose).ok()?;
    let flag = |name: &str| entry.pointer(&format!("/flags/{name}")).and_then(Json::as_bool).unwrap_or(false);
    let credential = json!({
        "cred_id": URL_SAFE_NO_PAD.encode(&id),
        "cred": cose,
        "counter": entry.pointer("/authenticator/sign_count").and_then(Json::as_u64).unwrap_or(0),
        "transports": null,
        "user_verified": flag("user_verified"),
        "backup_eligible": flag("backup_eligible"),
        "backup_state": flag("backup_state"),
        "registration_policy": "preferred",
        "extensions": {},
        "attestation": {"data": "None", "metadata": "None"},
        "attestation_format": "none",
    });
    (!id.is_empty()).then(|| serde_json::from_value(json!({ "cred": credential })).ok()).flatten()
}

/// The identity's keys of one kind (passwordless, or second factor) that webauthn-rs can verify.
fn keys(identity: &Identity, passwordless: bool) -> Vec<SecurityKey> {
    entries(identity).iter().filter(|e| is_passwordless(e) == passwordless).filter_map(key_of).collect()
}

/// The identity's second-factor keys that webauthn-rs can verify.
fn mfa_keys(identity: &Identity) -> Vec<SecurityKey> {
    keys(identity, false)
}

/// Removes the entry whose credential id is `hex_id` from the identity's `kind` credential
/// (`webauthn`, `passkey`), and the credential with its last entry. An entry that is a first
/// factor (`first_factor`) is kept when it is the identity's last one. `Err`: the field and
/// the message to show.
pub(crate) fn remove_entry(
    identity: &mut Identity,
    kind: &str,
    hex_id: &str,
    not_found: &str,
    first_factor: impl Fn(&Json) -> bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), (&'static str, Text)> {
    let mut list: Vec<Json> = identity
        .credentials
        .get(kind)
        .and_then(|c| c.config.get("credentials"))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(pos) = list.iter().position(|e| hex::encode(entry_id(e)) == hex_id.to_lowercase()) else {
        return Err(("", text::generic(not_found)));
    };
    if first_factor(&list[pos]) && crate::identity::service::count_first_factors(identity) < 2 {
        let reason = "unable to remove this security key because it would lock you out of your account";
        return Err(("webauthn_remove", text::generic(reason)));
    }
    list.remove(pos);
    if list.is_empty() {
        identity.credentials.remove(kind);
    } else if let Some(c) = identity.credentials.get_mut(kind) {
        c.config["credentials"] = Json::Array(list);
        c.updated_at = now;
    }
    Ok(())
}

/// Whether an assertion's key is one of the identity's keys of that kind now, with a sign
/// counter ahead of the stored one (both zero: the authenticator keeps no counter).
fn still_valid(identity: &Identity, result: &AuthenticationResult, passwordless: bool) -> bool {
    let list: Vec<Json> = entries(identity).into_iter().filter(|e| is_passwordless(e) == passwordless).collect();
    counter_moved(&list, result)
}

/// Whether the assertion's key is among `list` (stored entries) with a sign counter ahead of
/// the stored one (both zero: the authenticator keeps no counter, as synced passkeys do).
pub(crate) fn counter_moved(list: &[Json], result: &AuthenticationResult) -> bool {
    let id: &[u8] = result.cred_id().as_ref();
    list.iter().filter(|e| key_of(e).is_some()).any(|e| {
        let stored = e.pointer("/authenticator/sign_count").and_then(Json::as_u64).unwrap_or(0);
        entry_id(e) == id && (u64::from(result.counter()) > stored || (stored == 0 && result.counter() == 0))
    })
}

/// The script node.
pub(crate) fn script_node(svc: &Services) -> ui::Node {
    let src = format!("{}.well-known/ory/webauthn.js", svc.config.public_base_url());
    ui::script(group::WEBAUTHN, "webauthn_script", &src, script_integrity(), &uuid::Uuid::new_v4().to_string())
}

/// A trigger button carrying `options`, calling `function` with them.
fn trigger(name: &str, function: &str, options: &Json, label: Text) -> ui::Node {
    let mut node = Input::new(group::WEBAUTHN, name, "button").value(options.to_string()).label(label).node();
    node.attributes.insert("onclick".into(), format!("window.{function}({options})").into());
    node.attributes.insert("onclickTrigger".into(), function.into());
    node
}

/// The AMR entry of a key: aal1 when keys are a first factor (passwordless), else aal2.
fn amr(svc: &Services) -> AuthMethod {
    AuthMethod {
        method: "webauthn".into(),
        aal: Some(if passwordless(svc) { Aal::Aal1 } else { Aal::Aal2 }),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    }
}

/// Writes the key's new sign counter after the answer (a failure is logged: the next login
/// then compares against the older counter).
pub(crate) fn store_counter_later(
    identities: IdentityService,
    identity_id: uuid::Uuid,
    kind: &'static str,
    result: AuthenticationResult,
) {
    if !result.needs_update() {
        return;
    }
    tokio::spawn(async move {
        for _ in 0..3 {
            let mut identity = match identities.get(identity_id).await {
                Ok(i) => i,
                Err(e) => return tracing::warn!(error = %e, "webauthn: sign counter not stored"),
            };
            let Some(cred) = identity.credentials.get_mut(kind) else { return };
            let Some(list) = cred.config.get_mut("credentials").and_then(Json::as_array_mut) else { return };
            let mut changed = false;
            for entry in list.iter_mut() {
                let Some(mut key) = key_of(entry) else { continue };
                if key.update_credential(&result) == Some(true)
                    && let Some(fields) = entry.as_object_mut()
                {
                    fields.insert("key".into(), serde_json::to_value(&key).unwrap_or(Json::Null));
                    let authenticator = fields.entry("authenticator").or_insert_with(|| json!({}));
                    if let Some(a) = authenticator.as_object_mut() {
                        a.insert("sign_count".into(), json!(result.counter()));
                    }
                    changed = true;
                }
            }
            if !changed {
                return;
            }
            match identities.save_changed(&mut identity).await {
                Ok(()) => return,
                Err(Error::Stale) => continue,
                Err(e) => return tracing::warn!(error = %e, "webauthn: sign counter not stored"),
            }
        }
    });
}

#[async_trait::async_trait(?Send)]
impl LoginStrategy for WebAuthn {
    fn aal(&self, config: &crate::config::Config) -> Aal {
        if config.selfservice.methods.webauthn.config.passwordless { Aal::Aal1 } else { Aal::Aal2 }
    }

    fn responsible(&self, svc: &Services, flow: &Flow) -> bool {
        let requested = flow.data.requested_aal.unwrap_or(Aal::Aal1);
        flow.flow_type == FlowType::Browser && (requested == Aal::Aal2) != passwordless(svc)
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("webauthn_login").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        if passwordless(svc) {
            return self.populate_passwordless(svc, flow, form);
        }
        let LoginForm::SecondFactor { identity } = form else { return };
        let (Some(rp), FlowType::Browser) = (&self.rp, flow.flow_type) else { return };
        let keys = mfa_keys(identity);
        if keys.is_empty() {
            return;
        }
        let (options, state) = match rp.start_securitykey_authentication(&keys) {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "webauthn: no login challenge"),
        };
        let (Ok(options), Ok(state)) = (serde_json::to_value(&options), serde_json::to_value(&state)) else { return };
        svc.keep_secret(flow, SESSION_DATA, &state);
        if let Some(identifier) = identity.credentials.get("webauthn").and_then(|c| c.identifiers.first()) {
            flow.ui.nodes.push(Input::new(group::DEFAULT, "identifier", "hidden").value(identifier.as_str()).node());
        }
        flow.ui.nodes.push(Input::new(group::WEBAUTHN, "webauthn_login", "hidden").value("").node());
        flow.ui.nodes.push(script_node(svc));
        flow.ui.nodes.push(trigger("webauthn_login_trigger", "oryWebAuthnLogin", &options, text::login_webauthn()));
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return LoginStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        if passwordless(svc) {
            return self.login_passwordless(svc, flow, submit, info).await;
        }
        let problem = |flow: Flow, field: &str, message: Text| {
            LoginStep::Answer(Box::new(second_factor_problem(flow, "webauthn_login", field, message, tp.clone())))
        };
        let Some(rp) = &self.rp else { return problem(flow, "", text::no_webauthn()) };
        let Some(response) = submit.field("webauthn_login") else {
            return problem(flow, "webauthn_login", text::required("webauthn_login"));
        };
        let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(response) else {
            return problem(flow, "", text::generic("Unable to parse WebAuthn response."));
        };
        let identity = match second_factor_identity(svc, &flow, info).await {
            Ok(i) => i,
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        if mfa_keys(&identity).is_empty() {
            return problem(flow, "", text::no_webauthn());
        }
        let Some(state) = svc
            .kept_secret(&flow, SESSION_DATA)
            .and_then(|s| serde_json::from_value::<SecurityKeyAuthentication>(s).ok())
        else {
            return problem(flow, "", text::totp_wrong());
        };
        match svc.brute_force.reserve_second_factor(identity.id).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Locked(until)) => {
                return problem(flow, "", text::locked_out(svc.brute_force.retry_after(until)));
            }
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::from(e))))),
        }
        let result = match rp.finish_securitykey_authentication(&credential, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "webauthn: assertion refused");
                return problem(flow, "", text::totp_wrong());
            }
        };
        // The challenge listed the keys the identity had when the flow was created: the key
        // must still be one of its keys now, and its counter must be ahead of the stored one.
        if !still_valid(&identity, &result, false) {
            tracing::info!("webauthn: assertion by a removed key or with a counter that went backwards");
            return problem(flow, "", text::totp_wrong());
        }
        svc.brute_force.second_factor_succeeded(identity.id).await;
        store_counter_later(svc.identities.clone(), identity.id, "webauthn", result);
        let mut flow = flow;
        // The challenge is spent.
        flow.data.internal.remove(SESSION_DATA);
        flow.active = Some("webauthn".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc) }
    }
}

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for WebAuthn {
    fn claims(&self, submit: &Submit) -> bool {
        submit.field("webauthn_register").is_some() || submit.field("webauthn_remove").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, identity: &Identity, _traits: &Json, _schema: &Json) {
        let (Some(rp), FlowType::Browser) = (&self.rp, flow.flow_type) else { return };
        let first_factors = crate::identity::service::count_first_factors(identity);
        for entry in entries(identity) {
            let name = entry.get("display_name").and_then(Json::as_str).filter(|n| !n.is_empty()).unwrap_or("unnamed");
            let added_at = entry
                .get("added_at")
                .and_then(Json::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_default();
            let mut node = Input::new(group::WEBAUTHN, "webauthn_remove", "submit")
                .value(hex::encode(entry_id(&entry)))
                .label(text::settings_webauthn_remove(name, added_at))
                .node();
            if is_passwordless(&entry) && first_factors < 2 {
                node.attributes.insert("disabled".into(), true.into());
            }
            flow.ui.nodes.push(node);
        }
        let user = identity.credentials.get("webauthn").and_then(|c| c.identifiers.first().cloned());
        let user = user.unwrap_or_else(|| identity.id.to_string());
        let exclude: Vec<_> = entries(identity).iter().filter_map(key_of).map(|k| k.cred_id().clone()).collect();
        let started = rp.start_securitykey_registration(identity.id, &user, &user, Some(exclude), None, None);
        let (options, state) = match started {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "webauthn: no registration challenge"),
        };
        let (Ok(options), Ok(state)) = (serde_json::to_value(&options), serde_json::to_value(&state)) else { return };
        svc.keep_secret(flow, SESSION_DATA, &state);
        flow.ui.nodes.push(
            Input::new(group::WEBAUTHN, "webauthn_register_displayname", "text")
                .value("")
                .label(text::settings_webauthn_display_name())
                .node(),
        );
        flow.ui.nodes.push(Input::new(group::WEBAUTHN, "webauthn_register", "hidden").value("").node());
        flow.ui.nodes.push(trigger(
            "webauthn_register_trigger",
            "oryWebAuthnRegistration",
            &options,
            text::settings_webauthn_register(),
        ));
        flow.ui.nodes.push(script_node(svc));
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
        let remove = submit.field("webauthn_remove").map(str::to_string);
        let register = submit.field("webauthn_register").map(str::to_string);
        let (Some(rp), FlowType::Browser, true) = (&self.rp, f.flow_type, remove.is_some() || register.is_some())
        else {
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
            let not_found = "You tried to remove a WebAuthn credential which does not exist.";
            let now = svc.clock.now();
            if let Err((field, message)) =
                remove_entry(&mut identity, "webauthn", &hex_id, not_found, is_passwordless, now)
            {
                return refuse(f, field, message);
            }
            return SettingsStep::Save { flow: f, identity: Box::new(identity), proved: None };
        }
        let response = register.unwrap_or_default();
        let Some(name) = submit.trimmed("webauthn_register_displayname").map(str::to_string) else {
            return refuse(f, "webauthn_register_displayname", text::required("webauthn_register_displayname"));
        };
        let identifiers = svc
            .schemas
            .validate_traits(&identity.schema_id, &identity.traits)
            .map(|x| x.webauthn_identifiers)
            .unwrap_or_default();
        if identifiers.is_empty() {
            return refuse(f, "", text::identifier_missing());
        }
        let credential = match serde_json::from_str::<RegisterPublicKeyCredential>(&response) {
            Ok(c) => c,
            Err(e) => return refuse(f, "", text::generic(&format!("Unable to parse WebAuthn response: {e}"))),
        };
        let Some(state) =
            svc.kept_secret(&f, SESSION_DATA).and_then(|s| serde_json::from_value::<SecurityKeyRegistration>(s).ok())
        else {
            return refuse(f, "", text::generic("Unable to parse WebAuthn response: no registration was started."));
        };
        let key = match rp.finish_securitykey_registration(&credential, &state) {
            Ok(k) => k,
            Err(e) => return refuse(f, "", text::generic(&format!("Unable to parse WebAuthn response: {e}"))),
        };
        let now = svc.clock.now();
        let entry = json!({
            "id": STANDARD.encode::<&[u8]>(key.cred_id().as_ref()),
            "attestation_type": "none",
            "authenticator": {"aaguid": STANDARD.encode([0u8; 16]), "sign_count": 0, "clone_warning": false},
            "display_name": name,
            "added_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "is_passwordless": passwordless(svc),
            "key": serde_json::to_value(&key).unwrap_or(Json::Null),
        });
        let mut list = entries(&identity);
        list.push(entry);
        let credential = identity
            .credentials
            .entry("webauthn".into())
            .or_insert_with(|| crate::identity::service::new_credential("webauthn", now));
        credential.config = json!({ "credentials": list, "user_handle": STANDARD.encode(identity.id.as_bytes()) });
        credential.identifiers = identifiers;
        credential.updated_at = now;
        f.data.internal.remove(SESSION_DATA);
        SettingsStep::Save { flow: f, identity: Box::new(identity), proved: Some(amr(svc)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stored_by_kratos_become_webauthn_rs_keys() {
        // A credential as Kratos (go-webauthn) stores it: an ES256 COSE key.
        let entry = json!({
            "id": "OE7fnoAeqaydiBM4+fQsbYMiO+EObq97WYb/c1HuX8Crbsb2777xs+upv7muXE8hOLkm6lQHC1ahegnzw+aIsQ==",
            "public_key": "pQECAyYgASFYIPW2FsD6d/Lc7SU33hMhJUxafOA3JWpsLka8eKO+OPRkIlggkkPt8ocrupQOuvy+8HbQLSLiu899EdchJlWdMPE1tiw=",
            "attestation_type": "none",
            "authenticator": {"aaguid": "AAAAAAAAAAAAAAAAAAAAAA==", "sign_count": 3, "clone_warning": false},
            "display_name": "some-key",
            "added_at": "2021-08-17T10:18:55Z",
            "is_passwordless": false
        });
        let key = key_of(&entry).map(|k| k.cred_id().to_vec());
        assert_eq!(key, Some(entry_id(&entry)));
        let mut broken = entry.clone();
        broken["public_key"] = json!("bm90IGNib3I=");
        assert!(key_of(&broken).is_none());
    }

    #[test]
    fn the_script_integrity_is_its_sha512() {
        assert!(script_integrity().starts_with("sha512-"));
        assert_eq!(STANDARD.decode(&script_integrity()["sha512-".len()..]).map(|d| d.len()).ok(), Some(64));
    }
}
