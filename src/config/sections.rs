//! The configuration's serde structs (everything but the `selfservice` section, which is in
//! its own module).

use super::selfservice::{CookiesConfig, SecurityConfig, SelfServiceConfig};
use super::values::{ByteSize, Dur, redact_url};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The whole configuration. Passed down as `Arc<Config>`, never global. `Debug` hides every
/// secret (the DSN's password, secrets, web hook and channel credentials).
#[derive(Clone, Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct Config {
    /// Database: `postgres://…`, `sqlite://path`, or `memory`.
    pub dsn: Option<String>,
    pub serve: ServeConfig,
    pub identity: IdentityConfig,
    pub secrets: SecretsConfig,
    pub hashers: HashersConfig,
    pub log: LogConfig,
    pub actors: ActorsConfig,
    pub persistence: PersistenceConfig,
    pub courier: CourierConfig,
    pub session: SessionConfig,
    pub selfservice: SelfServiceConfig,
    pub cookies: CookiesConfig,
    pub security: SecurityConfig,
    pub feature_flags: FeatureFlags,
    /// Ory Hydra's admin API for `login_challenge`.
    pub oauth2_provider: OAuth2ProviderConfig,
    /// Outgoing calls to configured targets.
    pub clients: ClientsConfig,
    /// tessera's own: the bundled self-service UI.
    pub ui: UiConfig,
    /// A recognisable revision, shown by `/admin/health/config`.
    pub revision: Option<String>,
    /// Set by `serve --dev`, not by the file.
    #[serde(skip)]
    pub dev: bool,
    /// Hex SHA-256 of the loaded keys (file and environment) as JSON, shown by
    /// `/admin/health/config` when no `revision` is set.
    #[serde(skip)]
    pub digest: String,
}

/// `[clients]`: outgoing calls to configured targets (web hooks, the password-migration hook,
/// tokenizer keys and mappers).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientsConfig {
    pub http: HttpClientConfig,
    pub web_hook: WebHookClientConfig,
}

/// `[clients.http]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HttpClientConfig {
    /// Refuse calls to loopback, private and link-local addresses (SSRF).
    pub disallow_private_ip_ranges: bool,
    /// Exact URLs called even so.
    pub private_ip_exception_urls: Vec<String>,
}

/// `[clients.web_hook]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebHookClientConfig {
    /// Request headers a web hook's Jsonnet sees (`ctx.request_headers`).
    pub header_allowlist: Vec<String>,
}

impl Default for WebHookClientConfig {
    fn default() -> Self {
        let names = [
            "Accept",
            "Accept-Encoding",
            "Accept-Language",
            "Content-Length",
            "Content-Type",
            "Origin",
            "Priority",
            "Referer",
            "Sec-Ch-Ua",
            "Sec-Ch-Ua-Mobile",
            "Sec-Ch-Ua-Platform",
            "Sec-Fetch-Dest",
            "Sec-Fetch-Mode",
            "Sec-Fetch-Site",
            "Sec-Fetch-User",
            "True-Client-Ip",
            "User-Agent",
        ];
        WebHookClientConfig { header_allowlist: names.iter().map(|s| s.to_string()).collect() }
    }
}

/// `[oauth2_provider]`: the OAuth2 provider (Ory Hydra) whose login requests
/// (`login_challenge`) this server answers.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct OAuth2ProviderConfig {
    /// Hydra's admin API base URL; unset (or empty) = no provider.
    pub url: Option<String>,
    /// Headers sent with every request to it (e.g. an API key).
    pub headers: std::collections::BTreeMap<String, String>,
    /// A login flow's `return_to` becomes the provider's `request_url`.
    pub override_return_to: bool,
}

impl OAuth2ProviderConfig {
    /// The admin URL, when one is configured.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref().filter(|u| !u.trim().is_empty())
    }
}

/// Header values may be credentials: only their names are shown.
impl std::fmt::Debug for OAuth2ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2ProviderConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("override_return_to", &self.override_return_to)
            .finish()
    }
}

/// `[ui]`: the bundled self-service UI under `/ui/` on the public port. Off unless enabled
/// (`serve --dev` enables it when the file does not say).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    pub enabled: Option<bool>,
}

impl UiConfig {
    pub fn on(&self) -> bool {
        self.enabled.unwrap_or(false)
    }
}

impl Config {
    /// With the UI on, the UI URLs the file leaves at Kratos' defaults point at the bundled
    /// pages: `<base>ui/<flow>`, the default return URL `<base>ui/welcome` and the logout
    /// return URL `<base>ui/login`. Called once the public base URL is known.
    pub fn apply_ui_defaults(&mut self) {
        if !self.ui.on() {
            return;
        }
        let base = self.public_base_url();
        let flows = &mut self.selfservice.flows;
        for (name, url) in [
            ("login", &mut flows.login.ui_url),
            ("registration", &mut flows.registration.ui_url),
            ("settings", &mut flows.settings.ui_url),
            ("recovery", &mut flows.recovery.ui_url),
            ("verification", &mut flows.verification.ui_url),
            ("error", &mut flows.error.ui_url),
        ] {
            if *url == super::selfservice::fallback(name) {
                *url = format!("{base}ui/{name}");
            }
        }
        if flows.logout.after.default_browser_return_url.is_none() {
            flows.logout.after.default_browser_return_url = Some(format!("{base}ui/login"));
        }
        if self.selfservice.default_browser_return_url.is_none() {
            self.selfservice.default_browser_return_url = Some(format!("{base}ui/welcome"));
        }
    }
}

/// `[serve]`: the two HTTP servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    pub public: ListenConfig,
    pub admin: AdminListenConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            public: ListenConfig { host: "0.0.0.0".into(), port: 4433, base_url: None, cors: CorsConfig::default() },
            admin: AdminListenConfig {
                host: "127.0.0.1".into(),
                port: 4434,
                base_url: None,
                api_keys: Vec::new(),
                allow_unauthenticated: false,
            },
        }
    }
}

/// `[serve.public]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ListenConfig {
    pub host: String,
    pub port: u16,
    /// Where clients reach this server; derived from host and port when unset.
    pub base_url: Option<String>,
    /// Cross-origin requests (public listener only, as in Kratos).
    pub cors: CorsConfig,
}

/// `[serve.public.cors]`, with Kratos' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CorsConfig {
    pub enabled: bool,
    /// `*` allows every origin; an origin may hold one `*` standing for any characters.
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub options_passthrough: bool,
    /// Seconds a preflight answer may be cached (0: not sent).
    pub max_age: u64,
    pub debug: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CorsConfig {
            enabled: false,
            allowed_origins: list(&["*"]),
            allowed_methods: list(&["POST", "GET", "PUT", "PATCH", "DELETE"]),
            allowed_headers: list(&[
                "Authorization",
                "Content-Type",
                "Max-Age",
                "X-Session-Token",
                "X-XSRF-TOKEN",
                "X-CSRF-TOKEN",
            ]),
            exposed_headers: list(&["Content-Type"]),
            allow_credentials: true,
            options_passthrough: false,
            max_age: 0,
            debug: false,
        }
    }
}

impl CorsConfig {
    /// Whether `origin` may make cross-origin requests (case-insensitive; `*` alone allows
    /// all; one `*` inside an entry stands for any host characters, as rs/cors matches).
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.allowed_origins.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.split_once('*') {
                _ if pattern == "*" => true,
                // The wildcard stands for host characters only (an origin has no path).
                Some((prefix, suffix)) => {
                    origin.len() >= prefix.len() + suffix.len()
                        && origin.starts_with(prefix)
                        && origin.ends_with(suffix)
                        && !origin[prefix.len()..origin.len() - suffix.len()].contains('/')
                }
                None => pattern == origin,
            }
        })
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ServeConfig::default().public
    }
}

/// `[serve.admin]`: like the public listener, plus optional API keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminListenConfig {
    pub host: String,
    pub port: u16,
    pub base_url: Option<String>,
    /// Hex SHA-256 digests of accepted `Authorization: Bearer` keys; empty = no key needed.
    pub api_keys: Vec<String>,
    /// Serve the admin API without keys on a non-loopback interface (refused otherwise,
    /// outside `--dev`).
    pub allow_unauthenticated: bool,
}

impl Default for AdminListenConfig {
    fn default() -> Self {
        ServeConfig::default().admin
    }
}

impl AdminListenConfig {
    /// The listener part (host, port, base URL).
    pub fn listen(&self) -> ListenConfig {
        ListenConfig {
            host: self.host.clone(),
            port: self.port,
            base_url: self.base_url.clone(),
            cors: CorsConfig::default(),
        }
    }

    /// What serving outside `--dev` needs: on an interface other than loopback, the admin API
    /// (which can do anything) requires `api_keys` unless `allow_unauthenticated` says
    /// otherwise. The error is one line naming the keys.
    pub fn check_for_serving(&self) -> Result<(), String> {
        if !self.api_keys.is_empty() || self.allow_unauthenticated || is_loopback(&self.host) {
            return Ok(());
        }
        Err(format!(
            "config: `serve.admin.host` is {:?}, which is not loopback, and `serve.admin.api_keys` is empty: \
             set api keys, or `serve.admin.allow_unauthenticated = true` to serve the admin API to anyone who can reach it",
            self.host
        ))
    }
}

/// Whether a listen host is a loopback interface (`localhost`, `127.0.0.0/8`, `::1`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdentityConfig {
    pub default_schema_id: String,
    pub schemas: Vec<SchemaSource>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { default_schema_id: "default".into(), schemas: Vec::new() }
    }
}

/// One `[[identity.schemas]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaSource {
    pub id: String,
    /// `file://…`, `base64://…` or `http(s)://…`.
    pub url: String,
    #[serde(default)]
    pub selfservice_selectable: bool,
}

/// `[secrets]`: the first entry of each list signs/encrypts, all verify.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecretsConfig {
    pub default: Vec<String>,
    pub cookie: Vec<String>,
    pub cipher: Vec<String>,
}

// Written by hand so that secrets never reach a log line.
impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("default", &format_args!("[{} redacted]", self.default.len()))
            .field("cookie", &format_args!("[{} redacted]", self.cookie.len()))
            .field("cipher", &format_args!("[{} redacted]", self.cipher.len()))
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("dsn", &self.dsn.as_deref().map(redact_url))
            .field("serve", &self.serve)
            .field("identity", &self.identity)
            .field("secrets", &self.secrets)
            .field("hashers", &self.hashers)
            .field("log", &self.log)
            .field("actors", &self.actors)
            .field("persistence", &self.persistence)
            .field("courier", &self.courier)
            .field("session", &self.session)
            .field("selfservice", &self.selfservice)
            .field("cookies", &self.cookies)
            .field("security", &self.security)
            .field("feature_flags", &self.feature_flags)
            .field("oauth2_provider", &self.oauth2_provider)
            .field("clients", &self.clients)
            .field("dev", &self.dev)
            .finish()
    }
}

/// Kratos' minimum length of a secret.
pub const MIN_SECRET_LENGTH: usize = 16;

impl SecretsConfig {
    /// What serving outside `--dev` needs: `secrets.default` (or both `secrets.cookie` and
    /// `secrets.cipher`), every secret at least [`MIN_SECRET_LENGTH`] characters. The error is
    /// one line naming the key (never the value).
    pub fn check_for_serving(&self) -> Result<(), String> {
        if self.default.is_empty() && (self.cookie.is_empty() || self.cipher.is_empty()) {
            return Err("config: `secrets.default` is not set: outside --dev tessera needs it (or both \
                        `secrets.cookie` and `secrets.cipher`) to encrypt cookies, codes and queued messages"
                .into());
        }
        for (key, list) in [("default", &self.default), ("cookie", &self.cookie), ("cipher", &self.cipher)] {
            if let Some(n) = list.iter().position(|s| s.chars().count() < MIN_SECRET_LENGTH) {
                return Err(format!("config: `secrets.{key}[{n}]` is shorter than {MIN_SECRET_LENGTH} characters"));
            }
        }
        Ok(())
    }
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// How long a session lives after it is issued or extended.
    pub lifespan: Dur,
    /// A session may be extended only when it expires within this long; unset = always.
    pub earliest_possible_extend: Option<Dur>,
    pub cookie: SessionCookieConfig,
    pub whoami: WhoamiConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            lifespan: Dur(Duration::from_secs(24 * 3600)),
            earliest_possible_extend: None,
            cookie: SessionCookieConfig::default(),
            whoami: WhoamiConfig::default(),
        }
    }
}

/// `[session.cookie]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionCookieConfig {
    pub name: String,
    pub persistent: bool,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub same_site: Option<String>,
    pub secure: Option<bool>,
}

impl Default for SessionCookieConfig {
    fn default() -> Self {
        SessionCookieConfig {
            name: "ory_kratos_session".into(),
            persistent: true,
            path: None,
            domain: None,
            same_site: None,
            secure: None,
        }
    }
}

/// `[session.whoami]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WhoamiConfig {
    /// `aal1` or `highest_available`.
    pub required_aal: String,
    pub tokenizer: TokenizerConfig,
}

impl Default for WhoamiConfig {
    fn default() -> Self {
        WhoamiConfig { required_aal: "highest_available".into(), tokenizer: TokenizerConfig::default() }
    }
}

/// `[session.whoami.tokenizer]`: templates for `whoami?tokenize_as=<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TokenizerConfig {
    pub templates: std::collections::BTreeMap<String, TokenizerTemplate>,
}

/// One tokenizer template: a JWT signed with the first key of `jwks_url`.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenizerTemplate {
    /// How long a token is valid.
    #[serde(default = "TokenizerTemplate::default_ttl")]
    pub ttl: Dur,
    /// Jsonnet (`file://`, `http(s)://`, `base64://`) mapping `std.extVar('session')` and
    /// `std.extVar('claims')` to `{claims: {...}}`.
    #[serde(default)]
    pub claims_mapper_url: Option<String>,
    /// The signing keys (`file://`, `http(s)://`, `base64://`): a JWKS or one JWK, with `alg`.
    pub jwks_url: String,
    /// `sub`: the identity's `id` or its `external_id`.
    #[serde(default)]
    pub subject_source: SubjectSource,
}

impl TokenizerTemplate {
    fn default_ttl() -> Dur {
        Dur(Duration::from_secs(60))
    }
}

/// Where a token's `sub` comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectSource {
    #[default]
    Id,
    ExternalId,
}

/// `[hashers]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HashersConfig {
    pub algorithm: HashAlgorithm,
    pub argon2: Argon2Config,
    pub bcrypt: BcryptConfig,
    /// tessera's own: the bounded blocking pool hashes run on.
    pub pool: HashPoolConfig,
    /// tessera's own: the most an imported hash may cost to verify.
    pub import_limits: ImportLimitsConfig,
}

/// `[hashers.import_limits]` (tessera's own): ceilings on the parameters of imported hashes.
/// Unset = four times the configured hasher's cost, and never below four times common
/// defaults (so what a default Kratos, argon2-cffi or passlib exports imports).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImportLimitsConfig {
    pub argon2_memory: Option<ByteSize>,
    pub argon2_iterations: Option<u32>,
    pub argon2_parallelism: Option<u32>,
    /// Memory x iterations: what verifying costs in time.
    pub argon2_work: Option<ByteSize>,
    pub bcrypt_cost: Option<u32>,
    pub pbkdf2_iterations: Option<u32>,
    pub scrypt_memory: Option<ByteSize>,
    pub scrypt_parallelism: Option<u32>,
    pub sha_crypt_rounds: Option<u32>,
}

impl Default for HashersConfig {
    fn default() -> Self {
        HashersConfig {
            algorithm: HashAlgorithm::Argon2,
            argon2: Argon2Config::default(),
            bcrypt: BcryptConfig { cost: 12 },
            pool: HashPoolConfig::default(),
            import_limits: ImportLimitsConfig::default(),
        }
    }
}

/// `[hashers.pool]` (tessera's own).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HashPoolConfig {
    /// Hashes computed at once; 0 = one per CPU, lowered so that
    /// `workers x hashers.argon2.memory <= hashers.argon2.dedicated_memory`.
    pub workers: usize,
    /// Longest wait for a free worker; past it the request is 503. Unset = 10 s.
    pub queue_timeout: Option<Dur>,
}

/// `hashers.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Argon2,
    Bcrypt,
}

/// `[hashers.argon2]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Argon2Config {
    pub memory: ByteSize,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt_length: u32,
    pub key_length: u32,
    pub expected_duration: Dur,
    pub expected_deviation: Dur,
    pub dedicated_memory: ByteSize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        Argon2Config {
            memory: ByteSize(128 << 20),
            iterations: 1,
            parallelism: 2 * cpus,
            salt_length: 16,
            key_length: 32,
            expected_duration: Dur(Duration::from_millis(500)),
            expected_deviation: Dur(Duration::from_millis(500)),
            dedicated_memory: ByteSize(1 << 30),
        }
    }
}

/// `[hashers.bcrypt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BcryptConfig {
    pub cost: u32,
}

impl Default for BcryptConfig {
    fn default() -> Self {
        BcryptConfig { cost: 12 }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
    pub leak_sensitive_values: bool,
    pub redaction_text: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel::Info,
            format: LogFormat::Text,
            leak_sensitive_values: false,
            redaction_text: String::new(),
        }
    }
}

/// `log.level` (Kratos' names; `warn` is accepted for `warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    #[serde(alias = "warn")]
    Warning,
    Error,
    Fatal,
    Panic,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[actors]`: tessera's in-memory actors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActorsConfig {
    pub session: SessionActorsConfig,
    pub flow: FlowActorsConfig,
    pub janitor: JanitorConfig,
}

/// `[actors.session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionActorsConfig {
    pub idle_timeout: Dur,
    pub max_live: usize,
    pub mailbox: usize,
    pub revalidate_interval: Dur,
}

impl Default for SessionActorsConfig {
    fn default() -> Self {
        SessionActorsConfig {
            idle_timeout: Dur(Duration::from_secs(600)),
            max_live: 1_000_000,
            mailbox: 64,
            revalidate_interval: Dur(Duration::from_secs(1)),
        }
    }
}

/// `[actors.flow]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FlowActorsConfig {
    pub idle_timeout: Dur,
    pub max_live: usize,
    pub mailbox: usize,
}

impl Default for FlowActorsConfig {
    fn default() -> Self {
        FlowActorsConfig { idle_timeout: Dur(Duration::from_secs(300)), max_live: 200_000, mailbox: 16 }
    }
}

/// `[actors.janitor]`: periodic removal of expired rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JanitorConfig {
    pub interval: Dur,
    pub batch_size: usize,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        JanitorConfig { interval: Dur(Duration::from_secs(300)), batch_size: 1000 }
    }
}

/// `[persistence]`: the write-behind Persister.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PersistenceConfig {
    /// Longest time a deferred write waits before its batch is committed.
    pub flush_interval: Dur,
    /// Most operations in one transaction.
    pub max_batch: usize,
    /// Most operations pending at once; writers wait beyond it.
    pub buffer_size: usize,
    /// Ceiling of the exponential back-off while the database is unreachable.
    pub retry_max_backoff: Dur,
    /// Longest wait of a durable write for its commit; past it the caller gets 503 with
    /// `Retry-After` (the write stays queued and commits when the database is back).
    pub write_timeout: Dur,
    /// PostgreSQL `statement_timeout` of every pooled connection.
    pub statement_timeout: Dur,
    /// Idle time before TCP keepalive probes on PostgreSQL connections.
    pub keepalive: Dur,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            flush_interval: Dur(Duration::from_millis(50)),
            max_batch: 512,
            buffer_size: 65_536,
            retry_max_backoff: Dur(Duration::from_secs(2)),
            write_timeout: Dur(Duration::from_secs(10)),
            statement_timeout: Dur(Duration::from_secs(30)),
            keepalive: Dur(Duration::from_secs(30)),
        }
    }
}

/// `[courier]`: SMTP delivery, the dispatch worker, retries, and tessera's `[courier.pool]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CourierConfig {
    pub smtp: SmtpConfig,
    /// Per template type overrides: `<type>.<valid|invalid>.<email|sms>` → URIs
    /// (`file://`, `http(s)://`, `base64://`) of `subject`, `body.html`, `body.plaintext`.
    pub templates: BTreeMap<String, TemplateVariants>,
    /// A directory laid out as `<type>/<valid|invalid>/email.body.gotmpl` etc.
    pub template_override_path: Option<String>,
    /// `smtp` (default) or `http` for the implicit `email` channel.
    pub delivery_strategy: String,
    /// `[courier.http]`: the implicit `email` channel when `delivery_strategy = "http"`.
    pub http: CourierHttpConfig,
    /// Extra channels (`sms`, …) delivered over HTTP.
    pub channels: Vec<ChannelConfig>,
    /// A message is abandoned after this many failed attempts beyond the first.
    pub message_retries: u32,
    pub worker: CourierWorkerConfig,
    pub pool: CourierPoolConfig,
}

impl Default for CourierConfig {
    fn default() -> Self {
        CourierConfig {
            smtp: SmtpConfig::default(),
            templates: BTreeMap::new(),
            template_override_path: None,
            delivery_strategy: "smtp".into(),
            http: CourierHttpConfig::default(),
            channels: Vec::new(),
            message_retries: 5,
            worker: CourierWorkerConfig::default(),
            pool: CourierPoolConfig::default(),
        }
    }
}

/// `[courier.smtp]`.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct SmtpConfig {
    /// `smtp://user:pass@host:port/` (STARTTLS unless `?disable_starttls=true`) or `smtps://…`
    /// (implicit TLS); `?skip_ssl_verify=true`, `?server_name=…`.
    pub connection_uri: String,
    pub from_address: String,
    pub from_name: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub local_name: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            connection_uri: String::new(),
            from_address: "no-reply@ory.kratos.sh".into(),
            from_name: None,
            headers: BTreeMap::new(),
            local_name: "localhost".into(),
        }
    }
}

// Written by hand: the connection URI may carry a password.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("connection_uri", &if self.connection_uri.is_empty() { "" } else { "<redacted>" })
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("local_name", &self.local_name)
            .finish()
    }
}

/// `courier.templates.<type>`: the `valid` and `invalid` variants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TemplateVariants {
    pub valid: TemplateChannels,
    pub invalid: TemplateChannels,
}

/// `courier.templates.<type>.<variant>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TemplateChannels {
    pub email: EmailTemplateUris,
    pub sms: SmsTemplateUris,
}

/// The e-mail parts of a template override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmailTemplateUris {
    pub subject: Option<String>,
    pub body: EmailBodyUris,
}

/// `…email.body`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmailBodyUris {
    pub html: Option<String>,
    pub plaintext: Option<String>,
}

/// `…sms`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SmsTemplateUris {
    pub body: SmsBodyUris,
}

/// `…sms.body`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SmsBodyUris {
    pub plaintext: Option<String>,
}

/// `[courier.http]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CourierHttpConfig {
    pub request_config: Option<HttpRequestConfig>,
}

/// `[[courier.channels]]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelConfig {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub request_config: HttpRequestConfig,
}

/// An HTTP delivery: where, how, and the Jsonnet that builds the body.
#[derive(Clone, Deserialize)]
pub struct HttpRequestConfig {
    pub url: String,
    #[serde(default = "default_post")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A Jsonnet URI (`file://`, `http(s)://`, `base64://`); the Kratos default when absent.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub auth: Option<HttpAuthConfig>,
}

fn default_post() -> String {
    "POST".into()
}

// Written by hand: headers and auth may carry secrets.
impl std::fmt::Debug for HttpRequestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequestConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth", &self.auth.as_ref().map(|a| a.kind.as_str()))
            .finish_non_exhaustive()
    }
}

/// `request_config.auth`: `basic_auth` (`user`, `password`) or `api_key` (`name`, `value`, `in`).
#[derive(Clone, Deserialize)]
pub struct HttpAuthConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// `[feature_flags]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FeatureFlags {
    /// Recovery answers with `continue_with` items instead of 422/303 redirects.
    pub use_continue_with_transitions: bool,
    /// Recovery v2: the user chooses one of the account's recovery addresses (code method).
    pub choose_recovery_address: bool,
    /// whoami answers `Ory-Session-Cache-For` (seconds a result may be cached).
    pub cacheable_sessions: bool,
    /// Caps `Ory-Session-Cache-For` (unset: until the session expires).
    pub cacheable_sessions_max_age: Option<Dur>,
}

/// `[courier.worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CourierWorkerConfig {
    /// Messages claimed at once.
    pub pull_count: usize,
    /// Pause between polls when the queue is empty.
    pub pull_wait: Dur,
    /// tessera's own: retries back off exponentially from `pull_wait` up to this wait.
    pub retry_max_wait: Dur,
    /// tessera's own: whether `serve` delivers messages itself (else run `tessera courier watch`).
    pub enabled: bool,
}

impl Default for CourierWorkerConfig {
    fn default() -> Self {
        CourierWorkerConfig {
            pull_count: 10,
            pull_wait: Dur(Duration::from_secs(1)),
            retry_max_wait: Dur(Duration::from_secs(600)),
            enabled: true,
        }
    }
}

/// `[courier.pool]`: delivery workers and per-channel rate limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CourierPoolConfig {
    pub workers: usize,
    pub rate_limits: BTreeMap<String, RateLimit>,
}

impl Default for CourierPoolConfig {
    fn default() -> Self {
        CourierPoolConfig { workers: 16, rate_limits: BTreeMap::new() }
    }
}

/// A token bucket: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimit {
    pub per_second: u32,
    #[serde(default)]
    pub burst: Option<u32>,
}

impl Config {
    /// The public base URL, always ending in `/`.
    pub fn public_base_url(&self) -> String {
        base_url(&self.serve.public, self.dev)
    }

    /// The admin base URL, always ending in `/`.
    pub fn admin_base_url(&self) -> String {
        base_url(&self.serve.admin.listen(), self.dev)
    }
}

fn base_url(l: &ListenConfig, dev: bool) -> String {
    match &l.base_url {
        Some(u) if u.ends_with('/') => u.clone(),
        Some(u) => format!("{u}/"),
        None => {
            let host = match l.host.as_str() {
                "" | "0.0.0.0" | "::" => "localhost",
                h => h,
            };
            let scheme = if dev { "http" } else { "https" };
            format!("{scheme}://{host}:{}/", l.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["0.0.0.0", "::", "", "10.0.0.1", "example.org", "localhost.example.org"] {
            assert!(!is_loopback(host), "{host}");
        }
        let open = AdminListenConfig { host: "0.0.0.0".into(), ..Default::default() };
        let mut cors = CorsConfig::default();
        assert!(cors.allows("https://anything.example"), "* allows every origin");
        cors.allowed_origins = vec!["https://*.example.com".into(), "http://localhost:3000".into()];
        assert!(cors.allows("https://app.example.com"));
        assert!(cors.allows("https://a.b.EXAMPLE.com"));
        assert!(!cors.allows("https://example.com"), "the wildcard stands between the dot and the scheme");
        assert!(!cors.allows("https://evil.com/.example.com"));
        assert!(cors.allows("http://localhost:3000"));
        assert!(!cors.allows("http://localhost:3001"));
        assert!(open.check_for_serving().is_err());
        assert!(AdminListenConfig { allow_unauthenticated: true, ..open.clone() }.check_for_serving().is_ok());
        assert!(AdminListenConfig { api_keys: vec!["ab".into()], ..open }.check_for_serving().is_ok());
    }
}
