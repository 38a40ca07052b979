//! Social sign-in (`oidc`, behaviour.md §13.4): OpenID Connect and OAuth2 providers in login,
//! registration and settings, as Kratos' `selfservice/strategy/oidc`.
//!
//! A submit naming a `provider` sends the browser to the provider (303, or 422
//! `browser_location_change_required` for JSON clients) with a sealed `state` that names the
//! flow, the provider, the PKCE verifier and the nonce; a continuity cookie binds the way back
//! to the browser that left. The provider's callback comes back to the flow as a submit
//! carrying the [`Callback`]; the code is exchanged, the user proved (ID token or user API),
//! and:
//! * login: a known `provider:subject` signs in; an unknown one registers (the flow switches);
//! * registration: an unknown one registers with the traits the Jsonnet mapper makes of the
//!   claims (a form to complete them when they do not fit the schema); a known one signs in;
//! * settings: the provider account is linked.
//!
//! Native apps submit an `id_token` (+ `id_token_nonce`) instead of the redirect.

pub mod claims;
pub mod fedcm;
pub mod provider;

use super::{
    LoginForm, LoginStep, LoginStrategy, Method, RegistrationForm, RegistrationStep, RegistrationStrategy,
    SettingsStep, SettingsStrategy,
};
use crate::catalogue as text;
use crate::config::{Config, OidcProvider};
use crate::error::Error;
use crate::identity::Identity;
use crate::model::identity::{IdentityState, VerifiableAddress};
use crate::selfservice::flow::{Flow, FlowKind, FlowType};
use crate::selfservice::form::{Callback, Submit};
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, Stepped, Switch, flow_message, show};
use crate::selfservice::ui::{Input, group};
use crate::session::{Aal, AuthMethod};
use dashmap::DashMap;
use provider::{AuthRequest, Failure, Providers, Tokens};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

/// The cookie that binds a provider's callback to the browser that left for the provider.
pub const CONTINUITY_COOKIE: &str = "ory_kratos_continuity";
/// How long the continuity cookie lives.
pub const CONTINUITY_MAX_AGE_SECONDS: i64 = 30 * 60;

/// What a submit that left for the provider brought along (traits, transient payload),
/// kept under the digest of its state: only the callback of that very state gets it back.
const KEPT_KEY: &str = "oidc_submit";
/// A login flow that links a provider account once the user signed in (sealed).
pub const LINK_KEY: &str = "oidc_link";

/// The `oidc` method.
pub struct Oidc {
    providers: Providers,
    /// Mappers fetched from `http(s)://` (or decoded from `base64://`), by URL.
    mappers: Arc<DashMap<String, String>>,
}

impl Default for Oidc {
    fn default() -> Self {
        Oidc::new()
    }
}

impl Oidc {
    pub fn new() -> Oidc {
        Oidc { providers: Providers::new(), mappers: Arc::new(DashMap::new()) }
    }
}

// --- configuration ---------------------------------------------------------------------------

/// The configured provider `id`.
pub fn provider_config<'a>(config: &'a Config, id: &str) -> Option<&'a OidcProvider> {
    config.selfservice.methods.oidc.config.providers.iter().find(|p| p.id == id)
}

/// Checks the configured providers before serving: ids unique and set, known types with the
/// keys they need. The error names the provider.
pub fn check_config(config: &Config) -> Result<(), String> {
    let providers = &config.selfservice.methods.oidc.config.providers;
    for (i, p) in providers.iter().enumerate() {
        let at = format!("config: `selfservice.methods.oidc.config.providers.{i}`");
        if p.id.is_empty() {
            return Err(format!("{at}: `id` is required"));
        }
        if providers[..i].iter().any(|q| q.id == p.id) {
            return Err(format!("{at}: the id {:?} is used twice", p.id));
        }
        if p.client_id.is_empty() || p.mapper_url.is_empty() {
            return Err(format!("{at} ({}): `client_id` and `mapper_url` are required", p.id));
        }
        if let Err(Failure::Config(reason) | Failure::Upstream(reason) | Failure::Rejected(reason)) =
            provider::family(p)
        {
            return Err(format!("{at} ({}): {reason}", p.id));
        }
        if let Some(pkce) = p.pkce.as_deref().filter(|v| !matches!(*v, "auto" | "force" | "never")) {
            return Err(format!("{at} ({}): `pkce` must be auto, force or never, not {pkce:?}", p.id));
        }
        if let Some(source) = p.claims_source.as_deref().filter(|v| !matches!(*v, "id_token" | "userinfo")) {
            return Err(format!("{at} ({}): Unknown claims source: {source:?}", p.id));
        }
    }
    Ok(())
}

/// A provider's button text: its label, else its id.
pub fn label(p: &OidcProvider) -> &str {
    p.label.as_deref().filter(|l| !l.is_empty()).unwrap_or(&p.id)
}

/// The providers that get buttons (organization providers never do), by id.
fn shown(config: &Config) -> Vec<&OidcProvider> {
    let mut list: Vec<&OidcProvider> = config
        .selfservice
        .methods
        .oidc
        .config
        .providers
        .iter()
        .filter(|p| p.organization_id.as_deref().is_none_or(str::is_empty))
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list
}

/// Where the provider sends the browser back: `<base>/self-service/methods/oidc/callback/<id>`
/// (without the id when PKCE is forced, as Kratos).
pub fn redirect_uri(config: &Config, p: &OidcProvider) -> String {
    let base = config
        .selfservice
        .methods
        .oidc
        .config
        .base_redirect_uri
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| config.public_base_url());
    let base = base.trim_end_matches('/');
    if provider::pkce_mode(p) == "force" {
        format!("{base}/self-service/methods/oidc/callback")
    } else {
        format!("{base}/self-service/methods/oidc/callback/{}", p.id)
    }
}

/// The provider links of an identity: `(provider, subject)`.
pub fn links(identity: &Identity) -> Vec<(String, String)> {
    identity
        .credentials
        .get("oidc")
        .and_then(|c| c.config.get("providers"))
        .and_then(Json::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let get = |k: &str| p.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
                    (get("provider"), get("subject"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Adds a provider link (`entry`: `{subject, provider, initial_*_token…}`) to an identity.
pub fn add_link(identity: &mut Identity, entry: Json, now: chrono::DateTime<chrono::Utc>) {
    let provider = entry.get("provider").and_then(Json::as_str).unwrap_or_default().to_string();
    let subject = entry.get("subject").and_then(Json::as_str).unwrap_or_default().to_string();
    let c = identity.credentials.entry("oidc".into()).or_insert_with(|| {
        let mut c = crate::identity::service::new_credential("oidc", now);
        c.config = json!({"providers": []});
        c
    });
    let identifier = crate::identity::service::provider_identifier(&provider, &subject);
    if !c.identifiers.contains(&identifier) {
        c.identifiers.push(identifier);
    }
    if let Some(list) = c.config.get_mut("providers").and_then(Json::as_array_mut) {
        list.push(entry);
    } else {
        c.config = json!({"providers": [entry]});
    }
    c.updated_at = now;
}

/// The session's record of a provider sign-in.
pub fn amr(provider: &str, now: chrono::DateTime<chrono::Utc>) -> AuthMethod {
    AuthMethod {
        method: "oidc".into(),
        aal: Some(Aal::Aal1),
        completed_at: now,
        provider: Some(provider.to_string()),
        organization: None,
    }
}

// --- state -----------------------------------------------------------------------------------

/// What travels through the provider in `state` (sealed: only tessera reads or makes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthState {
    #[serde(rename = "f")]
    pub flow: Uuid,
    #[serde(rename = "k")]
    pub kind: String,
    #[serde(rename = "p")]
    pub provider: String,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    #[serde(rename = "n")]
    pub nonce: String,
    /// An API flow with a session-token exchanger: no continuity cookie is needed.
    #[serde(rename = "x", default)]
    pub exchange: bool,
}

fn sealer(config: &Config) -> crate::seal::Sealer {
    let s = &config.secrets;
    let list = if !s.cipher.is_empty() {
        &s.cipher
    } else if !s.default.is_empty() {
        &s.default
    } else {
        &s.cookie
    };
    crate::seal::Sealer::new(list, "oidc-state")
}

/// The token cipher of stored provider tokens (`secrets.cipher`, else `secrets.default`).
pub fn token_cipher(config: &Config) -> crate::seal::TokenCipher {
    let s = &config.secrets;
    crate::seal::TokenCipher::new(if s.cipher.is_empty() { &s.default } else { &s.cipher })
}

/// Opens a callback's `state`.
pub fn open_state(config: &Config, raw: &str) -> Option<AuthState> {
    serde_json::from_str(&sealer(config).open(raw)?).ok()
}

/// The flow kind a state names.
pub fn kind_of(state: &AuthState) -> Option<FlowKind> {
    match state.kind.as_str() {
        "login" => Some(FlowKind::Login),
        "registration" => Some(FlowKind::Registration),
        "settings" => Some(FlowKind::Settings),
        _ => None,
    }
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random(n: usize) -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(n).map(char::from).collect()
}

/// The `upstream_parameters` of a submit that may go to the provider.
fn upstream_parameters(submit: &Submit) -> Vec<(String, String)> {
    let Some(Json::Object(o)) = submit.body.get("upstream_parameters") else { return Vec::new() };
    provider::UPSTREAM_PARAMETERS
        .iter()
        .filter_map(|k| {
            o.get(*k).and_then(Json::as_str).filter(|v| !v.is_empty()).map(|v| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A provider failure as the flow shows it.
fn failed(flow: Flow, f: Failure, tp: Option<Json>) -> Stepped {
    match f {
        Failure::Config(reason) => (flow, Outcome::Error(Error::Misconfigured(reason))),
        Failure::Upstream(reason) => (flow, Outcome::Error(Error::Upstream(reason))),
        Failure::Rejected(reason) => flow_message(flow, text::generic(&reason), tp),
    }
}

/// The transient payload the submit that left for the provider brought (for its callback).
fn cb_transient_payload(flow: &Flow, cb: &Callback) -> Option<Json> {
    kept_for(flow, cb.param("state")?).and_then(|k| k.get("transient_payload").cloned())
}

fn kept_for<'a>(flow: &'a Flow, state: &str) -> Option<&'a Json> {
    flow.data.internal.get(KEPT_KEY).filter(|k| k.get("d") == Some(&json!(digest(state))))
}

/// A provider's callback continues the submit that left: its traits and transient payload
/// come back into the submit (only for the state that submit was given).
pub fn restore_kept(flow: &Flow, mut submit: Submit) -> Submit {
    let Some(state) = submit.callback.as_ref().and_then(|cb| cb.param("state").map(str::to_string)) else {
        return submit;
    };
    if let (Some(kept), Some(body)) = (kept_for(flow, &state), submit.body.as_object_mut()) {
        for key in ["traits", "transient_payload"] {
            if let Some(v) = kept.get(key) {
                body.insert(key.into(), v.clone());
            }
        }
    }
    submit
}

/// What the provider said about the user.
pub struct Account {
    pub provider: String,
    pub subject: String,
    pub claims: Json,
    pub tokens: Tokens,
}

impl Account {
    /// The credential identifier: `provider:subject`.
    pub fn identifier(&self) -> String {
        crate::identity::service::provider_identifier(&self.provider, &self.subject)
    }
}

fn unknown_provider(id: &str) -> Error {
    Error::not_found(format!("OpenID Connect Provider \"{id}\" is unknown or has not been configured"))
}

impl Oidc {
    /// Sends the browser to the provider: a sealed state, PKCE and a nonce; the traits and
    /// transient payload of the submit are kept for the way back.
    async fn start(
        &self,
        svc: &Services,
        mut flow: Flow,
        cfg: &OidcProvider,
        submit: &Submit,
        info: &RequestInfo,
    ) -> Stepped {
        let tp = submit.transient_payload();
        let (challenge, verifier) = if self.providers.uses_pkce(cfg).await {
            let (c, v) = openidconnect::PkceCodeChallenge::new_random_sha256();
            (Some(c.as_str().to_string()), Some(v.secret().clone()))
        } else {
            (None, None)
        };
        let state = AuthState {
            flow: flow.id,
            kind: flow.kind.as_str().into(),
            provider: cfg.id.clone(),
            verifier,
            nonce: random(32),
            exchange: flow.flow_type == FlowType::Api && flow.data.exchange_return_code.is_some(),
        };
        let Some(sealed) = serde_json::to_string(&state).ok().and_then(|s| sealer(&svc.config).seal(&s)) else {
            return (
                flow,
                Outcome::Error(Error::Misconfigured(
                    "No secret is configured to seal the OpenID Connect state.".into(),
                )),
            );
        };
        let upstream = upstream_parameters(submit);
        let request = AuthRequest {
            redirect_uri: &redirect_uri(&svc.config, cfg),
            state: &sealed,
            nonce: &state.nonce,
            code_challenge: challenge.as_deref(),
            refresh: flow.data.refresh,
            upstream: &upstream,
        };
        let to = match self.providers.authorize_url(cfg, &request).await {
            Ok(u) => u,
            Err(f) => return failed(flow, f, tp),
        };
        flow.active = Some("oidc".into());
        let mut kept = Map::new();
        kept.insert("d".into(), json!(digest(&sealed)));
        if let Some(t) = submit.body.get("traits").filter(|t| t.is_object()) {
            kept.insert("traits".into(), t.clone());
        }
        if let Some(p) = &tp {
            kept.insert("transient_payload".into(), p.clone());
        }
        flow.data.internal.insert(KEPT_KEY.into(), Json::Object(kept));
        let answer =
            if info.is_json { Outcome::Error(Error::LocationChangeRequired { to }) } else { Outcome::Redirect(to) };
        let continuity = json!({"f": flow.id, "s": digest(&sealed)}).to_string();
        let outcome = match sealer(&svc.config).seal(&continuity) {
            Some(value) => Outcome::WithContinuity { value, inner: Box::new(answer) },
            None => answer,
        };
        (flow, outcome)
    }

    /// The provider account a callback brought, or the answer when it brought none.
    async fn callback_account(
        &self,
        svc: &Services,
        flow: &Flow,
        cb: &Callback,
        info: &RequestInfo,
    ) -> Result<(OidcProvider, Account), Box<Stepped>> {
        let tp = cb_transient_payload(flow, cb);
        let error = |e: Error| Err(Box::new((flow.clone(), Outcome::Error(e))));
        let raw = cb.param("state").unwrap_or_default();
        let Some(state) = open_state(&svc.config, raw).filter(|s| s.flow == flow.id) else {
            return error(Error::invalid(
                "Unable to complete OpenID Connect flow because the state parameter is invalid.",
            ));
        };
        if !cb.provider.is_empty() && cb.provider != state.provider {
            return error(Error::invalid(
                "Unable to complete OpenID Connect flow because of a provider mismatch between internal state and URL.",
            ));
        }
        let Some(cfg) = provider_config(&svc.config, &state.provider).cloned() else {
            return error(unknown_provider(&state.provider));
        };
        if !state.exchange {
            let bound = info
                .cookies
                .iter()
                .find(|(k, _)| k == CONTINUITY_COOKIE)
                .and_then(|(_, v)| sealer(&svc.config).open(v))
                .and_then(|v| serde_json::from_str::<Json>(&v).ok())
                .is_some_and(|v| v["f"] == json!(flow.id) && v["s"] == json!(digest(raw)));
            if !bound {
                return error(Error::invalid(
                    "The browser does not contain the necessary cookie to resume the session. This is a security violation and was blocked. Please clear your browser's cookies and cache and try again!",
                ));
            }
        }
        if let Some(e) = cb.param("error") {
            let description = cb.param("error_description").unwrap_or_default();
            let reason = format!(
                "Unable to complete OpenID Connect flow because the OpenID Provider returned error \"{e}\": {description}"
            );
            return Err(Box::new(flow_message(flow.clone(), text::generic(&reason), tp)));
        }
        let Some(code) = cb.param("code").or_else(|| cb.param("authCode")) else {
            let reason = "Unable to complete OpenID Connect flow because the OpenID Provider did not return the code query parameter.";
            return Err(Box::new(flow_message(flow.clone(), text::generic(reason), tp)));
        };
        let redirect = redirect_uri(&svc.config, &cfg);
        let tokens = match self
            .providers
            .exchange(&cfg, code, &redirect, state.verifier.as_deref(), svc.clock.now().timestamp())
            .await
        {
            Ok(t) => t,
            Err(f) => return Err(Box::new(failed(flow.clone(), f, tp))),
        };
        let mut claims = match self.providers.claims(&cfg, &tokens, &state.nonce).await {
            Ok(c) => c,
            Err(f) => return Err(Box::new(failed(flow.clone(), f, tp))),
        };
        if cfg.provider == "apple"
            && let Some(user) = cb.param("user")
        {
            claims::apple_user(&mut claims, user);
        }
        match account_of(&cfg, claims, tokens) {
            Ok(a) => Ok((cfg, a)),
            Err(e) => error(e),
        }
    }

    /// The provider account of a native app's `id_token` submit.
    async fn native_account(&self, cfg: &OidcProvider, submit: &Submit) -> Result<Account, Error> {
        if !provider::verifies_id_tokens(cfg) {
            return Err(Error::Upstream(format!(
                "The provider {} does not support id_token verification",
                cfg.provider
            )));
        }
        let id_token = submit.field("id_token").unwrap_or_default();
        let issuer = match cfg.provider.as_str() {
            "google" => "https://accounts.google.com".to_string(),
            "apple" => "https://appleid.apple.com".to_string(),
            "netid" => "https://broker.netid.de/".to_string(),
            _ => cfg.issuer_url.clone().unwrap_or_default(),
        };
        let unverified = provider::payload(id_token).unwrap_or_default();
        let sent = submit.field("id_token_nonce");
        let nonce = match unverified.get("nonce").and_then(Json::as_str).filter(|n| !n.is_empty()) {
            Some(claimed) => match sent {
                Some(n) if n == claimed => Some(n),
                Some(_) => {
                    return Err(Error::Upstream(
                        "The supplied nonce does not match the nonce from the id_token".into(),
                    ));
                }
                None => return Err(Error::Upstream("No nonce was provided but is required by the provider".into())),
            },
            None => {
                let skip = match cfg.provider.as_str() {
                    "google" => true,
                    // Apple leaves the nonce out only for devices that cannot use one.
                    "apple" => {
                        matches!(unverified.get("nonce_supported"), Some(Json::Bool(true)))
                            || unverified.get("nonce_supported") == Some(&json!("true"))
                    }
                    _ => false,
                };
                if !skip {
                    return Err(Error::Upstream(
                        "No nonce was included in the id_token but is required by the provider".into(),
                    ));
                }
                None
            }
        };
        let raw = match self.providers.verify_id_token(cfg, &issuer, id_token, nonce).await {
            Ok(raw) => raw,
            Err(Failure::Rejected(reason)) => return Err(Error::Forbidden(reason)),
            Err(Failure::Config(r)) => return Err(Error::Misconfigured(r)),
            Err(Failure::Upstream(r)) => return Err(Error::Upstream(r)),
        };
        let mut c = claims::standard(&raw);
        c.insert("raw_claims".into(), raw);
        account_of(cfg, Json::Object(c), Tokens::default())
            .map_err(|_| Error::Forbidden("The id_token claims were invalid".into()))
    }

    /// The mapper template of a provider (remote ones fetched once).
    async fn mapper(&self, url: &str) -> Result<String, String> {
        if let Some(hit) = self.mappers.get(url) {
            return Ok(hit.clone());
        }
        let template = crate::jsonnet::load(url, &self.providers.http).await?;
        if !url.starts_with("file://") {
            self.mappers.insert(url.to_string(), template.clone());
        }
        Ok(template)
    }

    /// A new identity for a provider account: traits (and metadata, verified addresses) from
    /// the claims mapper, the traits a user submitted on top, the provider link.
    async fn new_identity(
        &self,
        svc: &Services,
        flow: &Flow,
        cfg: &OidcProvider,
        account: &Account,
        submitted: Option<&Json>,
    ) -> Result<Identity, Error> {
        let template = self
            .mapper(&cfg.mapper_url)
            .await
            .map_err(|e| Error::Misconfigured(format!("Unable to load the claims mapper {}: {e}", cfg.mapper_url)))?;
        let out = crate::jsonnet::eval_ext(template, vec![("claims".into(), account.claims.clone())])
            .await
            .map_err(|e| Error::Misconfigured(format!("The claims mapper failed: {e}")))?
            .unwrap_or_default();
        let mapped = claims::read_mapped(&out).map_err(Error::Misconfigured)?;
        let mut traits = mapped.traits;
        if let Some(submitted) = submitted.filter(|t| t.is_object()) {
            claims::merge(&mut traits, submitted);
        }
        let now = svc.clock.now();
        let (schema_id, _) = svc.schema_of(flow);
        let mut identity = Identity::signing_up(schema_id, traits, now);
        identity.metadata_public = mapped.metadata_public;
        identity.metadata_admin = mapped.metadata_admin;
        identity.verifiable_addresses = mapped
            .verified_addresses
            .into_iter()
            .map(|(via, value)| VerifiableAddress {
                id: Uuid::now_v7(),
                value,
                verified: true,
                via,
                status: "completed".into(),
                verified_at: Some(now),
                created_at: now,
                updated_at: now,
            })
            .collect();
        if let Some(org) = cfg.organization_id.as_deref().and_then(|o| Uuid::parse_str(o).ok()) {
            identity.organization_id = Some(org);
        }
        add_link(&mut identity, self.entry(svc, cfg, account), now);
        Ok(identity)
    }

    /// The stored provider link, tokens encrypted.
    fn entry(&self, svc: &Services, cfg: &OidcProvider, account: &Account) -> Json {
        let cipher = token_cipher(&svc.config);
        let enc = |t: &str| cipher.encrypt(t).unwrap_or_default();
        let mut e = json!({
            "subject": account.subject,
            "provider": account.provider,
            "initial_id_token": enc(&account.tokens.id_token),
            "initial_access_token": enc(&account.tokens.access_token),
            "initial_refresh_token": enc(&account.tokens.refresh_token),
        });
        if let Some(org) = cfg.organization_id.as_deref().filter(|o| !o.is_empty()) {
            e["organization"] = json!(org);
        }
        e
    }

    /// The identity linked to a provider account, if any.
    async fn linked_identity(&self, svc: &Services, account: &Account) -> Result<Option<Identity>, Error> {
        let mut pooled = svc.store.get().await?;
        Ok(crate::persistence::identity::find_by_identifier(&mut pooled.conn(), "oidc", &account.identifier()).await?)
    }

    /// The account of a callback or `id_token` submit on a login or registration flow, or the
    /// answer (a redirect to the provider, an error).
    async fn account_or_start(
        &self,
        svc: &Services,
        flow: Flow,
        submit: &Submit,
        info: &RequestInfo,
    ) -> Result<(Flow, OidcProvider, Account), Box<Stepped>> {
        if let Some(cb) = &submit.callback {
            let (cfg, account) = self.callback_account(svc, &flow, cb, info).await?;
            return Ok((flow, cfg, account));
        }
        let Some(id) = submit.field("provider") else {
            // Not this method's submit (Kratos' "not responsible").
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(match f.kind {
                FlowKind::Registration => text::no_registration_strategy(),
                _ => text::no_strategy(),
            });
            let tp = submit.transient_payload();
            return Err(Box::new((f.clone(), Outcome::Form { flow: f, transient_payload: tp })));
        };
        let Some(cfg) = provider_config(&svc.config, id).cloned() else {
            return Err(Box::new((flow, Outcome::Error(unknown_provider(id)))));
        };
        if submit.field("id_token").is_none() {
            return Err(Box::new(self.start(svc, flow, &cfg, submit, info).await));
        }
        match self.native_account(&cfg, submit).await {
            Ok(account) => Ok((flow, cfg, account)),
            Err(e) => Err(Box::new((flow, Outcome::Error(e)))),
        }
    }
}

/// Checks the claims every provider must give and wraps them up.
fn account_of(cfg: &OidcProvider, claims: Json, tokens: Tokens) -> Result<Account, Error> {
    let subject = claims.get("sub").and_then(Json::as_str).unwrap_or_default().to_string();
    if subject.is_empty() {
        return Err(Error::Upstream("provider did not return a subject".into()));
    }
    if claims.get("iss").and_then(Json::as_str).is_none_or(str::is_empty) {
        return Err(Error::Upstream("issuer not set in claims".into()));
    }
    Ok(Account { provider: cfg.id.clone(), subject, claims, tokens })
}

/// The registration form for a provider account whose traits need completing (Kratos:
/// the trait inputs and one `provider` button labelled "Continue").
pub fn complete_form(svc: &Services, flow: &mut Flow, provider: &str) {
    let (_, schema) = svc.schema_of(flow);
    flow.ui.nodes.retain(|n| n.name() == "csrf_token");
    flow.ui.nodes.extend(crate::selfservice::ui::trait_nodes(&schema, group::DEFAULT));
    flow.ui.nodes.push(
        Input::new(group::OIDC, "provider", "submit").value(provider).label(text::registration_continue()).node(),
    );
    flow.active = Some("oidc".into());
}

/// The login form of a flow that links a provider account once the user signs in: the
/// provider just used is gone, the submits say they link, the identifier is the duplicate.
pub fn to_linking_form(config: &Config, flow: &mut Flow, duplicate: &str, provider: &str) {
    flow.ui.nodes.retain(|n| !(n.group == group::OIDC && n.attributes.get("value") == Some(&json!(provider))));
    for n in &mut flow.ui.nodes {
        let id = n.attributes.get("value").and_then(Json::as_str).unwrap_or_default().to_string();
        let Some(current) = n.meta.label.as_mut() else { continue };
        match current.id {
            1010001 => *current = text::login_and_link(),
            1010002 => {
                let shown = provider_config(config, &id).map_or(id.as_str(), label);
                *current = text::login_with_provider_and_link(shown);
            }
            _ => {}
        }
    }
    if let Some(n) = flow.ui.node_mut("identifier", None) {
        n.set_value(Some(duplicate.into()));
        n.attributes.insert("type".into(), "hidden".into());
    }
    let shown = provider_config(config, provider).map_or_else(
        || provider.to_string(),
        |p| p.label.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| p.provider.clone()),
    );
    let login_url = config.selfservice.flows.login.ui_url.clone();
    flow.ui.messages = vec![text::login_to_link(duplicate, &shown, &login_url, &[], &[])];
    flow.active = Some("oidc".into());
}

fn provider_button(p: &OidcProvider, label: crate::catalogue::Text) -> crate::selfservice::ui::Node {
    Input::new(group::OIDC, "provider", "submit").value(p.id.as_str()).label(label).node()
}

impl Method for Oidc {
    fn id(&self) -> &'static str {
        "oidc"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.oidc.enabled
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

#[async_trait::async_trait(?Send)]
impl LoginStrategy for Oidc {
    fn aal(&self, _config: &Config) -> Aal {
        Aal::Aal1
    }

    fn responsible(&self, _svc: &Services, flow: &Flow) -> bool {
        flow.data.requested_aal.unwrap_or(Aal::Aal1) == Aal::Aal1
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("provider").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        let config = &svc.config;
        let buttons: Vec<_> = match form {
            LoginForm::FirstFactor | LoginForm::Identification => shown(config)
                .into_iter()
                .map(|p| provider_button(p, text::login_with_provider(label(p), &p.id, false)))
                .collect(),
            LoginForm::Refresh { identity } => {
                let linked = links(identity);
                shown(config)
                    .into_iter()
                    .filter(|p| linked.iter().any(|(id, _)| *id == p.id))
                    .map(|p| provider_button(p, text::login_with_provider(label(p), &p.id, true)))
                    .collect()
            }
            LoginForm::Credentials { identity } => {
                // Step two replaces step one's buttons with what the account has.
                flow.ui.nodes.retain(|n| n.group != group::OIDC);
                let mitigate = config.security.account_enumeration.mitigate;
                let linked = identity.map(links).unwrap_or_default();
                shown(config)
                    .into_iter()
                    .filter(|p| mitigate || linked.iter().any(|(id, _)| *id == p.id))
                    .map(|p| provider_button(p, text::login_with_provider(label(p), &p.id, false)))
                    .collect()
            }
            LoginForm::SecondFactor { .. } => Vec::new(),
        };
        flow.ui.nodes.extend(buttons);
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let (flow, _cfg, account) = match self.account_or_start(svc, flow, submit, info).await {
            Ok(x) => x,
            Err(stepped) => return LoginStep::Answer(stepped),
        };
        let now = svc.clock.now();
        match self.linked_identity(svc, &account).await {
            Err(e) => LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
            Ok(Some(identity)) => {
                if identity.state != IdentityState::Active {
                    return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::IdentityDisabled))));
                }
                if flow.data.identity_id.is_some_and(|id| id != identity.id) {
                    return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::IdentityMismatch))));
                }
                LoginStep::Authenticated { flow, identity, method: amr(&account.provider, now) }
            }
            // Re-authentication (or an AAL upgrade) is for the signed-in identity: a provider
            // account that is not linked to it signs up no one.
            Ok(None) if flow.data.identity_id.is_some() => {
                LoginStep::Answer(Box::new((flow, Outcome::Error(Error::IdentityMismatch))))
            }
            // No identity has the account and sign-up is off: nothing to switch to.
            Ok(None) if !svc.config.selfservice.flows.registration.enabled => LoginStep::Answer(Box::new((
                flow,
                Outcome::Error(Error::FlowDisabled(crate::error::FlowName::Registration)),
            ))),
            Ok(None) => {
                let cfg = provider_config(&svc.config, &account.provider).cloned().unwrap_or_default();
                match self.new_identity(svc, &flow, &cfg, &account, submit.body.get("traits")).await {
                    Ok(identity) => {
                        let switch =
                            Switch::ToRegistration { identity: Box::new(identity), provider: account.provider };
                        LoginStep::Answer(Box::new((flow, Outcome::Switch(Box::new(switch)))))
                    }
                    Err(e) => LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
                }
            }
        }
    }
}

#[async_trait::async_trait(?Send)]
impl RegistrationStrategy for Oidc {
    fn handles(&self, method: &str) -> bool {
        method == "oidc"
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("provider").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, _form: RegistrationForm) {
        let buttons: Vec<_> = shown(&svc.config)
            .into_iter()
            .map(|p| provider_button(p, text::register_with_provider(label(p), &p.id)))
            .collect();
        flow.ui.nodes.extend(buttons);
    }

    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep {
        let (flow, cfg, account) = match self.account_or_start(svc, flow, submit, info).await {
            Ok(x) => x,
            Err(stepped) => return RegistrationStep::Answer(stepped),
        };
        match self.linked_identity(svc, &account).await {
            Err(e) => RegistrationStep::Answer(Box::new((flow, Outcome::Error(e)))),
            Ok(Some(identity)) => {
                let switch = Switch::ToLogin { identity: Box::new(identity), provider: account.provider };
                RegistrationStep::Answer(Box::new((flow, Outcome::Switch(Box::new(switch)))))
            }
            Ok(None) => match self.new_identity(svc, &flow, &cfg, &account, submit.body.get("traits")).await {
                Ok(identity) => {
                    RegistrationStep::Provider { flow, identity: Box::new(identity), provider: account.provider }
                }
                Err(e) => RegistrationStep::Answer(Box::new((flow, Outcome::Error(e)))),
            },
        }
    }
}

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for Oidc {
    fn claims(&self, submit: &Submit) -> bool {
        submit.field("link").is_some() || submit.field("unlink").is_some()
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, identity: &Identity, _traits: &Json, _schema: &Json) {
        let linked = links(identity);
        let can_unlink = crate::identity::service::count_first_factors(identity) > 1;
        let mut nodes = Vec::new();
        for p in shown(&svc.config) {
            if linked.iter().any(|(id, _)| *id == p.id) {
                if can_unlink {
                    nodes.push(
                        Input::new(group::OIDC, "unlink", "submit")
                            .value(p.id.as_str())
                            .label(text::unlink_provider(label(p)))
                            .node(),
                    );
                }
            } else {
                nodes.push(
                    Input::new(group::OIDC, "link", "submit")
                        .value(p.id.as_str())
                        .label(text::link_provider(label(p)))
                        .node(),
                );
            }
        }
        flow.ui.nodes.extend(nodes);
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
        let problem = |mut f: Flow, reason: &str| {
            f.ui.reset_messages();
            f.ui.messages.push(text::generic(reason));
            SettingsStep::Answer(Box::new(show(f, false, to_ui)))
        };
        let linked = links(&identity);
        if let Some(cb) = &submit.callback {
            // Still privileged when the provider sends the user back (as Kratos checks); if
            // not, the link starts over after re-authentication (see `replay_link`).
            if !privileged {
                return SettingsStep::RefreshRequired(flow);
            }
            let (cfg, account) = match self.callback_account(svc, &flow, cb, info).await {
                Ok(x) => x,
                Err(stepped) => {
                    return SettingsStep::Answer(match *stepped {
                        (_, Outcome::Form { flow: shown, .. }) => Box::new(show(shown, false, to_ui)),
                        other => Box::new(other),
                    });
                }
            };
            if linked.iter().any(|(id, _)| *id == account.provider) {
                return problem(flow, "can not link unknown or already existing OpenID Connect connection");
            }
            let now = svc.clock.now();
            add_link(&mut identity, self.entry(svc, &cfg, &account), now);
            return SettingsStep::Save {
                flow,
                identity: Box::new(identity),
                proved: Some(amr(&account.provider, now)),
            };
        }
        let (link, unlink) = (submit.field("link"), submit.field("unlink"));
        if link.is_some() && unlink.is_some() {
            return problem(flow, "it is not possible to link and unlink providers in the same request");
        }
        if let Some(id) = link {
            let Some(cfg) = provider_config(&svc.config, id).filter(|_| !linked.iter().any(|(p, _)| p == id)).cloned()
            else {
                return problem(flow, "can not link unknown or already existing OpenID Connect connection");
            };
            if !privileged {
                return SettingsStep::RefreshRequired(flow);
            }
            return SettingsStep::Answer(Box::new(self.start(svc, flow, &cfg, submit, info).await));
        }
        let Some(id) = unlink else {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.messages.push(text::no_settings_strategy());
            return SettingsStep::Answer(Box::new(show(f, false, to_ui)));
        };
        if !privileged {
            return SettingsStep::RefreshRequired(flow);
        }
        if crate::identity::service::count_first_factors(&identity) < 2 {
            return problem(
                flow,
                "can not unlink OpenID Connect connection because it is the last remaining first factor credential",
            );
        }
        if provider_config(&svc.config, id).is_none() || !linked.iter().any(|(p, _)| p == id) {
            return problem(flow, "can not unlink non-existing OpenID Connect connection");
        }
        if let Some(c) = identity.credentials.get_mut("oidc") {
            let prefix = format!("{id}:");
            c.identifiers.retain(|i| !i.starts_with(&prefix));
            if let Some(list) = c.config.get_mut("providers").and_then(Json::as_array_mut) {
                list.retain(|p| p.get("provider").and_then(Json::as_str) != Some(id));
            }
            c.updated_at = svc.clock.now();
        }
        SettingsStep::Save { flow, identity: Box::new(identity), proved: None }
    }
}

/// The submit to replay after re-authentication when a settings link came back from the
/// provider without a privileged session: the link again.
pub fn replay_link(config: &Config, submit: &Submit) -> Option<Submit> {
    let cb = submit.callback.as_ref()?;
    let state = open_state(config, cb.param("state")?)?;
    Some(Submit::new(json!({"method": "oidc", "link": state.provider}), false))
}

/// Decrypts the provider tokens of an identity's oidc credential for `include_credential`
/// (an entry no configured secret opens shows empty tokens, as Kratos).
pub fn declassify(config: &Config, identity: &mut Identity) {
    let cipher = token_cipher(config);
    let Some(list) =
        identity.credentials.get_mut("oidc").and_then(|c| c.config.get_mut("providers")).and_then(Json::as_array_mut)
    else {
        return;
    };
    for p in list.iter_mut() {
        let Some(o) = p.as_object_mut() else { continue };
        for key in ["initial_id_token", "initial_access_token", "initial_refresh_token"] {
            let stored = o.get(key).and_then(Json::as_str).unwrap_or_default().to_string();
            o.insert(key.into(), json!(cipher.decrypt(&stored).unwrap_or_default()));
        }
    }
}

/// Keeps, sealed in a login flow, the provider link to add once the user signed in to the
/// account that holds `duplicate`.
pub fn keep_link(svc: &Services, flow: &mut Flow, duplicate: &str, provider: &str, entry: &Json) {
    let mut m = Map::new();
    m.insert("identifier".into(), json!(duplicate));
    m.insert("provider".into(), json!(provider));
    m.insert("entry".into(), entry.clone());
    svc.keep_secret(flow, LINK_KEY, &Json::Object(m));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_sealed() {
        let mut config = Config::default();
        config.secrets.default = vec!["a-secret-of-enough-length-0123456789".into()];
        let state = AuthState {
            flow: Uuid::new_v4(),
            kind: "login".into(),
            provider: "p".into(),
            verifier: Some("v".into()),
            nonce: "n".into(),
            exchange: false,
        };
        let sealed = sealer(&config).seal(&serde_json::to_string(&state).unwrap_or_default()).unwrap_or_default();
        assert!(!sealed.contains("login"));
        assert_eq!(open_state(&config, &sealed), Some(state));
        assert_eq!(open_state(&config, "tampered"), None);
    }

    #[test]
    fn redirect_uris_follow_pkce_and_base() {
        let mut config = Config::default();
        let mut p = OidcProvider { id: "gh".into(), ..OidcProvider::default() };
        config.selfservice.methods.oidc.config.base_redirect_uri = Some("https://auth.example/".into());
        assert_eq!(redirect_uri(&config, &p), "https://auth.example/self-service/methods/oidc/callback/gh");
        p.pkce = Some("force".into());
        assert_eq!(redirect_uri(&config, &p), "https://auth.example/self-service/methods/oidc/callback");
    }

    fn provider(id: &str) -> OidcProvider {
        OidcProvider { id: id.into(), provider: "generic".into(), ..OidcProvider::default() }
    }

    #[test]
    fn a_callback_gets_back_only_what_its_own_state_left_with() {
        let config = Config::default();
        let now = crate::clock::Clock::system().now();
        let mut flow =
            Flow::new(&config, now, FlowKind::Registration, FlowType::Browser, "https://x/".into(), "t".into());
        flow.data.internal.insert(
            KEPT_KEY.into(),
            json!({"d": digest("state-a"), "traits": {"email": "a@x"}, "transient_payload": {"k": 1}}),
        );
        let cb = |state: &str| {
            Submit::callback("oidc", Callback { provider: "op".into(), params: vec![("state".into(), state.into())] })
        };
        let restored = restore_kept(&flow, cb("state-a"));
        assert_eq!(restored.body["traits"], json!({"email": "a@x"}));
        assert_eq!(restored.transient_payload(), Some(json!({"k": 1})));
        let other = restore_kept(&flow, cb("state-b"));
        assert!(other.body.get("traits").is_none() && other.transient_payload().is_none());
    }

    #[test]
    fn the_linking_form_hides_the_identifier_and_relabels() {
        let mut config = Config::default();
        config.selfservice.methods.oidc.config.providers = vec![provider("used"), provider("other")];
        let now = crate::clock::Clock::system().now();
        let mut flow = Flow::new(&config, now, FlowKind::Login, FlowType::Browser, "https://x/".into(), "t".into());
        flow.ui.nodes.push(Input::new(group::DEFAULT, "identifier", "text").node());
        for p in ["used", "other"] {
            flow.ui.nodes.push(provider_button(&provider(p), text::login_with_provider(p, p, false)));
        }
        to_linking_form(&config, &mut flow, "a@example.org", "used");
        let buttons: Vec<_> = flow.ui.nodes.iter().filter(|n| n.group == group::OIDC).collect();
        assert_eq!(buttons.len(), 1, "the provider just used is gone");
        assert_eq!(buttons[0].meta.label.as_ref().map(|l| l.id), Some(1010018));
        let identifier = flow.ui.nodes.iter().find(|n| n.name() == "identifier").map(|n| n.attributes.clone());
        assert_eq!(identifier.as_ref().and_then(|a| a.get("type")), Some(&json!("hidden")));
        assert_eq!(identifier.as_ref().and_then(|a| a.get("value")), Some(&json!("a@example.org")));
        assert_eq!(flow.ui.messages.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1010016]);
    }

    #[test]
    fn links_are_added_once_per_subject() {
        let now = crate::clock::Clock::system().now();
        let mut identity = Identity::signing_up("default".into(), json!({}), now);
        add_link(&mut identity, json!({"provider": "a", "subject": "1"}), now);
        add_link(&mut identity, json!({"provider": "b", "subject": "2"}), now);
        assert_eq!(links(&identity), vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(identity.credentials["oidc"].identifiers, vec!["a:1".to_string(), "b:2".to_string()]);
    }
}
