//! `[selfservice]`, `[cookies]` and `[security]`: the self-service flows, their methods and
//! hooks, shared cookie attributes, and tessera's brute-force defence.

use super::values::{ByteSize, Cidr, Dur};
use serde::Deserialize;
use std::time::Duration;

const FALLBACK_UI: &str = "https://www.ory.sh/kratos/docs/fallback/";

/// Kratos' default `ui_url` of a flow (its documentation's fallback page).
pub fn fallback(flow: &str) -> String {
    format!("{FALLBACK_UI}{flow}")
}

/// `[selfservice]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SelfServiceConfig {
    /// Where browsers go after a flow when nothing more specific is configured.
    pub default_browser_return_url: Option<String>,
    /// `return_to` values must match one of these (scheme, host, path prefix).
    pub allowed_return_urls: Vec<String>,
    pub flows: FlowsConfig,
    pub methods: MethodsConfig,
}

/// `[selfservice.flows]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FlowsConfig {
    pub login: LoginFlowConfig,
    pub registration: RegistrationFlowConfig,
    pub logout: LogoutFlowConfig,
    pub error: UiOnlyConfig,
    pub settings: SettingsFlowConfig,
    pub verification: VerificationFlowConfig,
    pub recovery: RecoveryFlowConfig,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            login: LoginFlowConfig::default(),
            registration: RegistrationFlowConfig::default(),
            logout: LogoutFlowConfig::default(),
            error: UiOnlyConfig { ui_url: fallback("error") },
            settings: SettingsFlowConfig::default(),
            verification: VerificationFlowConfig::default(),
            recovery: RecoveryFlowConfig::default(),
        }
    }
}

/// A flow of which only the UI URL is used so far.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UiOnlyConfig {
    pub ui_url: String,
}

impl Default for UiOnlyConfig {
    fn default() -> Self {
        UiOnlyConfig { ui_url: fallback("error") }
    }
}

/// `recovery.use` / `verification.use`: which method sends the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CodeOrLink {
    #[default]
    Code,
    Link,
}

impl CodeOrLink {
    /// The method name (`code`, `link`).
    pub fn as_str(self) -> &'static str {
        match self {
            CodeOrLink::Code => "code",
            CodeOrLink::Link => "link",
        }
    }
}

/// `[selfservice.flows.recovery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RecoveryFlowConfig {
    pub enabled: bool,
    pub ui_url: String,
    pub lifespan: Dur,
    #[serde(rename = "use")]
    pub method: CodeOrLink,
    /// Send the "invalid" template to addresses that belong to no account.
    pub notify_unknown_recipients: bool,
    pub before: BeforeConfig,
    pub after: AfterConfig,
}

impl Default for RecoveryFlowConfig {
    fn default() -> Self {
        RecoveryFlowConfig {
            enabled: false,
            ui_url: fallback("recovery"),
            lifespan: Dur(Duration::from_secs(3600)),
            method: CodeOrLink::Code,
            notify_unknown_recipients: false,
            before: BeforeConfig::default(),
            after: AfterConfig::default(),
        }
    }
}

/// `[selfservice.flows.verification]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VerificationFlowConfig {
    pub enabled: bool,
    pub ui_url: String,
    pub lifespan: Dur,
    #[serde(rename = "use")]
    pub method: CodeOrLink,
    pub notify_unknown_recipients: bool,
    pub before: BeforeConfig,
    pub after: AfterConfig,
}

impl Default for VerificationFlowConfig {
    fn default() -> Self {
        VerificationFlowConfig {
            enabled: false,
            ui_url: fallback("verification"),
            lifespan: Dur(Duration::from_secs(3600)),
            method: CodeOrLink::Code,
            notify_unknown_recipients: false,
            before: BeforeConfig::default(),
            after: AfterConfig::default(),
        }
    }
}

/// `[selfservice.flows.settings]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SettingsFlowConfig {
    pub ui_url: String,
    pub lifespan: Dur,
    pub privileged_session_max_age: Dur,
    /// `aal1` or `highest_available`.
    pub required_aal: String,
    pub before: BeforeConfig,
    pub after: AfterConfig,
}

impl Default for SettingsFlowConfig {
    fn default() -> Self {
        SettingsFlowConfig {
            ui_url: fallback("settings"),
            lifespan: Dur(Duration::from_secs(3600)),
            privileged_session_max_age: Dur(Duration::from_secs(3600)),
            required_aal: "highest_available".into(),
            before: BeforeConfig::default(),
            after: AfterConfig::default(),
        }
    }
}

/// `selfservice.flows.login.style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoginStyle {
    #[default]
    Unified,
    IdentifierFirst,
}

/// `selfservice.flows.registration.style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStyle {
    Unified,
    #[default]
    ProfileFirst,
}

/// `[selfservice.flows.login]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginFlowConfig {
    pub ui_url: String,
    pub lifespan: Dur,
    pub style: LoginStyle,
    pub before: BeforeConfig,
    pub after: AfterConfig,
}

impl Default for LoginFlowConfig {
    fn default() -> Self {
        LoginFlowConfig {
            ui_url: fallback("login"),
            lifespan: Dur(Duration::from_secs(3600)),
            style: LoginStyle::default(),
            before: BeforeConfig::default(),
            after: AfterConfig::default(),
        }
    }
}

/// `[selfservice.flows.registration]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RegistrationFlowConfig {
    pub enabled: bool,
    pub ui_url: String,
    pub lifespan: Dur,
    pub style: RegistrationStyle,
    /// Deprecated Kratos switch: `true` forces the one-step (unified) form.
    pub enable_legacy_one_step: bool,
    /// On a duplicate identifier, tell the user how the existing account signs in (4000028).
    pub login_hints: bool,
    pub before: BeforeConfig,
    pub after: AfterConfig,
}

impl Default for RegistrationFlowConfig {
    fn default() -> Self {
        RegistrationFlowConfig {
            enabled: true,
            ui_url: fallback("registration"),
            lifespan: Dur(Duration::from_secs(3600)),
            style: RegistrationStyle::default(),
            enable_legacy_one_step: false,
            login_hints: false,
            before: BeforeConfig::default(),
            after: AfterConfig::default(),
        }
    }
}

impl RegistrationFlowConfig {
    /// Whether registration shows traits first and credentials in a second step.
    pub fn two_step(&self) -> bool {
        self.style == RegistrationStyle::ProfileFirst && !self.enable_legacy_one_step
    }
}

/// `[selfservice.flows.logout]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogoutFlowConfig {
    pub after: ReturnOnly,
}

/// An `after` section with only a return URL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReturnOnly {
    pub default_browser_return_url: Option<String>,
}

/// `before`: hooks run while a flow is created.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BeforeConfig {
    pub hooks: Vec<HookConfig>,
}

/// `after`: hooks and return URL, globally and per method (a method's hooks replace the global ones).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AfterConfig {
    pub default_browser_return_url: Option<String>,
    pub hooks: Vec<HookConfig>,
    pub password: MethodAfterConfig,
    pub profile: MethodAfterConfig,
    pub oidc: MethodAfterConfig,
    pub code: MethodAfterConfig,
    pub webauthn: MethodAfterConfig,
    pub passkey: MethodAfterConfig,
    pub totp: MethodAfterConfig,
    pub lookup_secret: MethodAfterConfig,
    pub saml: MethodAfterConfig,
}

impl AfterConfig {
    /// The per-method section for a credential type, if the type is known.
    pub fn method(&self, method: &str) -> Option<&MethodAfterConfig> {
        Some(match method {
            "password" => &self.password,
            "profile" => &self.profile,
            "oidc" => &self.oidc,
            "code" => &self.code,
            "webauthn" => &self.webauthn,
            "passkey" => &self.passkey,
            "totp" => &self.totp,
            "lookup_secret" => &self.lookup_secret,
            "saml" => &self.saml,
            _ => return None,
        })
    }

    /// The hooks that run after `method`: the method's own when it has any, else the global list.
    pub fn hooks_for(&self, method: &str) -> &[HookConfig] {
        match self.method(method) {
            Some(m) if !m.hooks.is_empty() => &m.hooks,
            _ => &self.hooks,
        }
    }

    /// The method's return URL, else the flow's.
    pub fn return_url_for(&self, method: &str) -> Option<&str> {
        self.method(method)
            .and_then(|m| m.default_browser_return_url.as_deref())
            .or(self.default_browser_return_url.as_deref())
    }
}

/// `after.<method>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MethodAfterConfig {
    pub default_browser_return_url: Option<String>,
    pub hooks: Vec<HookConfig>,
}

/// One hook entry: `{ hook = "web_hook", config = { … } }`. `Debug` shows only the hook and
/// its URL: the config may hold credentials.
#[derive(Clone, Deserialize)]
pub struct HookConfig {
    pub hook: String,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.config.as_ref().and_then(|c| c.get("url")).and_then(serde_json::Value::as_str);
        f.debug_struct("HookConfig")
            .field("hook", &self.hook)
            .field("url", &url.map(super::values::redact_url))
            .finish_non_exhaustive()
    }
}

/// `[selfservice.methods]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MethodsConfig {
    pub password: PasswordMethodConfig,
    pub profile: Toggle,
    pub code: CodeMethodConfig,
    pub link: LinkMethodConfig,
    pub totp: TotpMethodConfig,
    pub lookup_secret: Switch,
    pub webauthn: WebauthnMethodConfig,
    pub passkey: PasskeyMethodConfig,
    pub oidc: OidcMethodConfig,
}

impl Default for MethodsConfig {
    fn default() -> Self {
        MethodsConfig {
            password: PasswordMethodConfig::default(),
            profile: Toggle { enabled: true },
            code: CodeMethodConfig::default(),
            link: LinkMethodConfig::default(),
            totp: TotpMethodConfig::default(),
            lookup_secret: Switch::default(),
            webauthn: WebauthnMethodConfig::default(),
            passkey: PasskeyMethodConfig::default(),
            oidc: OidcMethodConfig::default(),
        }
    }
}

/// A method that is off unless enabled (`lookup_secret`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Switch {
    pub enabled: bool,
}

/// `[selfservice.methods.totp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TotpMethodConfig {
    pub enabled: bool,
    pub config: TotpConfig,
}

/// `[selfservice.methods.totp.config]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TotpConfig {
    /// Shown in authenticator apps; defaults to the public base URL's host.
    pub issuer: Option<String>,
}

/// `[selfservice.methods.webauthn]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebauthnMethodConfig {
    pub enabled: bool,
    pub config: WebauthnConfig,
}

/// `[selfservice.methods.webauthn.config]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebauthnConfig {
    /// Keys are a first factor (passwordless) instead of a second one.
    pub passwordless: bool,
    pub rp: RelyingParty,
}

/// `[selfservice.methods.passkey]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PasskeyMethodConfig {
    pub enabled: bool,
    pub config: PasskeyConfig,
}

/// `[selfservice.methods.passkey.config]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PasskeyConfig {
    pub rp: RelyingParty,
}

/// `[selfservice.methods.webauthn.config.rp]` and `[selfservice.methods.passkey.config.rp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RelyingParty {
    pub display_name: Option<String>,
    pub id: Option<String>,
    /// Deprecated in Kratos in favour of `origins`.
    pub origin: Option<String>,
    pub origins: Vec<String>,
}

/// `[selfservice.methods.oidc]`: sign-in with OpenID Connect and OAuth2 providers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OidcMethodConfig {
    pub enabled: bool,
    pub config: OidcConfig,
}

/// `[selfservice.methods.oidc.config]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OidcConfig {
    /// The base of the redirect URIs (else the public base URL).
    pub base_redirect_uri: Option<String>,
    pub providers: Vec<OidcProvider>,
}

/// One `[[selfservice.methods.oidc.config.providers]]` entry (Kratos' provider keys).
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct OidcProvider {
    pub id: String,
    pub provider: String,
    pub label: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub issuer_url: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub mapper_url: String,
    pub scope: Vec<String>,
    pub microsoft_tenant: Option<String>,
    pub subject_source: Option<String>,
    pub apple_team_id: Option<String>,
    pub apple_private_key_id: Option<String>,
    pub apple_private_key: Option<String>,
    pub requested_claims: Option<serde_json::Value>,
    pub organization_id: Option<String>,
    pub additional_id_token_audiences: Vec<String>,
    pub claims_source: Option<String>,
    pub pkce: Option<String>,
    pub fedcm_config_url: Option<String>,
    pub net_id_token_origin_header: Option<String>,
    pub account_linking_mode: Option<String>,
}

// Written by hand: the client secret and private key must never reach a log.
impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("issuer_url", &self.issuer_url)
            .finish_non_exhaustive()
    }
}

/// `[selfservice.methods.code]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CodeMethodConfig {
    pub enabled: bool,
    pub passwordless_enabled: bool,
    pub mfa_enabled: bool,
    pub config: CodeConfig,
}

impl Default for CodeMethodConfig {
    fn default() -> Self {
        CodeMethodConfig {
            enabled: true,
            passwordless_enabled: false,
            mfa_enabled: false,
            config: CodeConfig::default(),
        }
    }
}

/// `[selfservice.methods.code.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CodeConfig {
    pub lifespan: Dur,
    /// Code submissions a flow accepts before it must be started again.
    pub max_submissions: u32,
    pub missing_credential_fallback_enabled: bool,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            lifespan: Dur(Duration::from_secs(3600)),
            max_submissions: 5,
            missing_credential_fallback_enabled: false,
        }
    }
}

/// `[selfservice.methods.link]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LinkMethodConfig {
    pub enabled: bool,
    pub config: LinkConfig,
}

/// `[selfservice.methods.link.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LinkConfig {
    /// Deprecated in Kratos; has no effect (links use the public base URL).
    pub base_url: Option<String>,
    pub lifespan: Dur,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { base_url: None, lifespan: Dur(Duration::from_secs(3600)) }
    }
}

/// A method with only an `enabled` switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Toggle {
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// `[selfservice.methods.password]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordMethodConfig {
    pub enabled: bool,
    pub config: PasswordPolicyConfig,
}

impl Default for PasswordMethodConfig {
    fn default() -> Self {
        PasswordMethodConfig { enabled: true, config: PasswordPolicyConfig::default() }
    }
}

/// `[selfservice.methods.password.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordPolicyConfig {
    pub min_password_length: usize,
    pub identifier_similarity_check_enabled: bool,
    pub haveibeenpwned_enabled: bool,
    /// Host (or full `http(s)://` base URL, for a local range-API server) of the
    /// k-anonymity range API.
    pub haveibeenpwned_host: String,
    pub max_breaches: u32,
    pub ignore_network_errors: bool,
    /// Checks passwords of identities imported with `use_password_migration_hook` remotely.
    pub migrate_hook: MigrateHookConfig,
}

/// `[selfservice.methods.password.config.migrate_hook]`: `config` as a web hook's
/// (`url`, `method`, `headers`, `auth`, `body`, `emit_analytics_event`).
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct MigrateHookConfig {
    pub enabled: bool,
    pub config: Option<serde_json::Value>,
}

/// Headers and auth may hold credentials: only whether it is on is shown.
impl std::fmt::Debug for MigrateHookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateHookConfig").field("enabled", &self.enabled).finish_non_exhaustive()
    }
}

impl Default for PasswordPolicyConfig {
    fn default() -> Self {
        PasswordPolicyConfig {
            min_password_length: 8,
            identifier_similarity_check_enabled: true,
            haveibeenpwned_enabled: true,
            haveibeenpwned_host: "api.pwnedpasswords.com".into(),
            max_breaches: 0,
            ignore_network_errors: true,
            migrate_hook: MigrateHookConfig::default(),
        }
    }
}

/// `[cookies]`: attributes shared by the CSRF and session cookies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CookiesConfig {
    pub domain: Option<String>,
    pub path: Option<String>,
    pub same_site: Option<String>,
    pub secure: Option<bool>,
}

/// `[security]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    pub account_enumeration: AccountEnumerationConfig,
    pub brute_force: BruteForceConfig,
    /// tessera's own: proxies whose forwarding headers are believed. A request from one of
    /// these networks is attributed to the right-most `X-Forwarded-For` entry outside them
    /// (or to `True-Client-IP` / `Cf-Connecting-IP` / `X-Real-IP`); any other request to
    /// its TCP peer. Empty = no forwarding header is believed.
    pub trusted_proxies: Vec<Cidr>,
    pub send_limits: SendLimitsConfig,
    pub input_limits: InputLimitsConfig,
}

/// `[security.input_limits]` (tessera's own): how much a self-service submit may carry. The
/// flow is looked up before the body is read; a larger body is refused with 413 after at most
/// `submit_body` bytes were read, oversized traits with 413, a longer identifier or more
/// fields with 400 — and nothing is changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InputLimitsConfig {
    pub submit_body: ByteSize,
    pub traits: ByteSize,
    /// Characters of a login identifier.
    pub identifier: usize,
    /// Fields of a form (or keys of a JSON body, nested ones included).
    pub fields: usize,
}

impl Default for InputLimitsConfig {
    fn default() -> Self {
        InputLimitsConfig { submit_body: ByteSize(1 << 20), traits: ByteSize(64 << 10), identifier: 1024, fields: 256 }
    }
}

/// `[security.send_limits]` (tessera's own): recovery and verification messages requested per
/// address and per client address within `window`; past either limit the bucket is locked
/// until `window` has passed since the lock. Known and unknown addresses count alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SendLimitsConfig {
    pub enabled: bool,
    pub window: Dur,
    pub max_per_address: u32,
    pub max_per_ip: u32,
}

impl Default for SendLimitsConfig {
    fn default() -> Self {
        SendLimitsConfig { enabled: true, window: Dur(Duration::from_secs(3600)), max_per_address: 10, max_per_ip: 100 }
    }
}

/// `[security.account_enumeration]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountEnumerationConfig {
    pub mitigate: bool,
}

/// `[security.brute_force]` (tessera's own): failed password logins are counted per
/// identifier and per client address (IPv6 per /64; see `security.trusted_proxies`); a bucket
/// that reaches its limit inside `window` is locked for `lockout`, and each lock that follows
/// without a successful login lasts twice the one before, up to `max_lockout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BruteForceConfig {
    pub enabled: bool,
    pub window: Dur,
    pub lockout: Dur,
    pub max_lockout: Dur,
    pub max_failures_per_identifier: u32,
    pub max_failures_per_ip: u32,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        BruteForceConfig {
            enabled: true,
            window: Dur(Duration::from_secs(15 * 60)),
            lockout: Dur(Duration::from_secs(60)),
            max_lockout: Dur(Duration::from_secs(24 * 3600)),
            max_failures_per_identifier: 10,
            max_failures_per_ip: 100,
        }
    }
}
