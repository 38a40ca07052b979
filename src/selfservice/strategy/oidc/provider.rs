//! The providers: where each one authorizes, exchanges codes and tells who the user is, as
//! Kratos' `selfservice/strategy/oidc/provider_*.go` do. OpenID Connect providers are found by
//! discovery and prove the user with a verified ID token (openidconnect); OAuth2-only providers
//! answer on their own user APIs, whose fields are mapped to the same claims.

use super::claims;
use crate::config::OidcProvider as ProviderConfig;
use base64::Engine;
use dashmap::DashMap;
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{ClientId, IssuerUrl, JsonWebKeySetUrl, Nonce};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The provider types tessera speaks (`provider` in the configuration).
pub const TYPES: &[&str] = &[
    "generic",
    "google",
    "github",
    "github-app",
    "gitlab",
    "microsoft",
    "apple",
    "facebook",
    "discord",
    "slack",
    "auth0",
    "linkedin",
    "linkedin_v2",
    "spotify",
    "amazon",
    "yandex",
    "vk",
    "netid",
    "dingtalk",
    "lark",
    "patreon",
    "line",
    "uaepass",
    "salesforce",
];

/// Parameters a submit may pass on to the provider's authorization endpoint.
pub const UPSTREAM_PARAMETERS: &[&str] = &["login_hint", "hd", "prompt", "auth_type", "acr_values"];

/// How long a discovery document and its keys are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);

/// Why talking to a provider failed; the flow decides how each is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The configuration cannot work (500 `invalid_configuration`).
    Config(String),
    /// The provider is unreachable or answered nonsense (502).
    Upstream(String),
    /// The provider refused what the user brought (a used code, a bad ID token): 400 on the flow.
    Rejected(String),
}

/// Where a provider is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Family {
    /// OpenID Connect: the endpoints come from discovery at `issuer`; the user is proved by
    /// the ID token (`userinfo`: the claims are read from the user-info endpoint).
    Oidc { issuer: String, userinfo: bool },
    /// OAuth2 with fixed endpoints; the user API says who the user is.
    OAuth2 { auth_url: String, token_url: String },
}

fn trim_slash(s: &str) -> &str {
    s.trim_end_matches('/')
}

/// The family of a configured provider, with `auth_url` / `token_url` overrides applied to
/// OAuth2 providers (and `issuer_url` as the base of the self-hostable ones).
pub fn family(cfg: &ProviderConfig) -> Result<Family, Failure> {
    let issuer = cfg.issuer_url.as_deref().filter(|s| !s.is_empty());
    let oauth2 = |auth: String, token: String| Family::OAuth2 {
        auth_url: cfg.auth_url.clone().filter(|s| !s.is_empty()).unwrap_or(auth),
        token_url: cfg.token_url.clone().filter(|s| !s.is_empty()).unwrap_or(token),
    };
    let userinfo = cfg.claims_source.as_deref() == Some("userinfo");
    let oidc = |issuer: &str, userinfo: bool| Family::Oidc { issuer: issuer.to_string(), userinfo };
    Ok(match cfg.provider.as_str() {
        "generic" => match issuer {
            Some(i) => oidc(i, userinfo),
            None => {
                return Err(Failure::Config(format!("The OpenID Connect provider {:?} needs an issuer_url.", cfg.id)));
            }
        },
        "google" => oidc("https://accounts.google.com", userinfo),
        "apple" => oidc("https://appleid.apple.com", false),
        "line" => oidc("https://access.line.me", userinfo),
        "netid" => oidc("https://broker.netid.de/", true),
        "linkedin_v2" => oidc("https://www.linkedin.com/oauth", true),
        "microsoft" => {
            let tenant = cfg
                .microsoft_tenant
                .as_deref()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Failure::Config("No Tenant specified for the `microsoft` oidc provider".into()))?;
            oidc(&format!("https://login.microsoftonline.com/{tenant}/v2.0"), false)
        }
        "github" | "github-app" => oauth2(
            "https://github.com/login/oauth/authorize".into(),
            "https://github.com/login/oauth/access_token".into(),
        ),
        "gitlab" => {
            let base = trim_slash(issuer.unwrap_or("https://gitlab.com"));
            oauth2(format!("{base}/oauth/authorize"), format!("{base}/oauth/token"))
        }
        "auth0" | "salesforce" => {
            let base = trim_slash(issuer.ok_or_else(|| {
                Failure::Config(format!("The {} provider {:?} needs an issuer_url.", cfg.provider, cfg.id))
            })?);
            if cfg.provider == "auth0" {
                oauth2(format!("{base}/authorize"), format!("{base}/oauth/token"))
            } else {
                oauth2(format!("{base}/services/oauth2/authorize"), format!("{base}/services/oauth2/token"))
            }
        }
        "facebook" => {
            oauth2("https://facebook.com/dialog/oauth".into(), "https://graph.facebook.com/oauth/access_token".into())
        }
        "discord" => oauth2(
            "https://discord.com/api/v9/oauth2/authorize".into(),
            "https://discord.com/api/v9/oauth2/token".into(),
        ),
        "slack" => oauth2("https://slack.com/oauth/authorize".into(), "https://slack.com/api/oauth.access".into()),
        "vk" => oauth2("https://oauth.vk.com/authorize".into(), "https://oauth.vk.com/access_token".into()),
        "yandex" => oauth2("https://oauth.yandex.com/authorize".into(), "https://oauth.yandex.com/token".into()),
        "spotify" => {
            oauth2("https://accounts.spotify.com/authorize".into(), "https://accounts.spotify.com/api/token".into())
        }
        "dingtalk" => oauth2(
            "https://login.dingtalk.com/oauth2/auth".into(),
            "https://api.dingtalk.com/v1.0/oauth2/userAccessToken".into(),
        ),
        "linkedin" => oauth2(
            "https://www.linkedin.com/oauth/v2/authorization".into(),
            "https://www.linkedin.com/oauth/v2/accessToken".into(),
        ),
        "patreon" => {
            oauth2("https://www.patreon.com/oauth2/authorize".into(), "https://www.patreon.com/api/oauth2/token".into())
        }
        "lark" => oauth2(
            "https://passport.feishu.cn/suite/passport/oauth/authorize".into(),
            "https://passport.feishu.cn/suite/passport/oauth/token".into(),
        ),
        "amazon" => oauth2("https://www.amazon.com/ap/oa".into(), "https://api.amazon.com/auth/o2/token".into()),
        "uaepass" => {
            let base = trim_slash(issuer.unwrap_or("https://id.uaepass.ae"));
            oauth2(format!("{base}/idshub/authorize"), format!("{base}/idshub/token"))
        }
        other => {
            return Err(Failure::Config(format!(
                "The oidc provider type {other:?} is not supported; supported are: {}",
                TYPES.join(", ")
            )));
        }
    })
}

/// OpenID Connect providers whose endpoints are fixed rather than discovered: Microsoft's
/// multi-tenant issuers (`common`, `organizations`, a domain) advertise another issuer than
/// the one asked, so their endpoints are built from the tenant (the ID token's own tenant is
/// discovered to verify it).
fn fixed_endpoints(cfg: &ProviderConfig) -> Option<(String, String)> {
    let over = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    match cfg.provider.as_str() {
        "microsoft" => {
            let tenant = cfg.microsoft_tenant.as_deref().filter(|t| !t.is_empty())?;
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            Some((
                over(&cfg.auth_url).unwrap_or_else(|| format!("{base}/authorize")),
                over(&cfg.token_url).unwrap_or_else(|| format!("{base}/token")),
            ))
        }
        _ => None,
    }
}

/// The PKCE mode of a provider: its `pkce` (default `auto`); UAE PASS needs PKCE, so `auto`
/// means `force` there (as in Kratos).
pub fn pkce_mode(cfg: &ProviderConfig) -> &str {
    match cfg.pkce.as_deref().unwrap_or("auto") {
        "auto" if cfg.provider == "uaepass" => "force",
        mode => mode,
    }
}

/// Whether the provider can verify an ID token a native app obtained itself (Kratos: apple,
/// google, netid; tessera also takes them from `generic` issuers, whose keys discovery finds).
pub fn verifies_id_tokens(cfg: &ProviderConfig) -> bool {
    matches!(cfg.provider.as_str(), "google" | "apple" | "generic" | "netid")
}

/// What a provider discovery document says, with its keys.
#[derive(Clone)]
pub struct Discovery {
    pub doc: Json,
    pub keys: CoreJsonWebKeySet,
}

impl Discovery {
    fn endpoint(&self, key: &str) -> Option<String> {
        self.doc.get(key).and_then(Json::as_str).map(str::to_string)
    }

    /// Whether the provider takes S256 code challenges.
    pub fn s256(&self) -> bool {
        self.doc
            .get("code_challenge_methods_supported")
            .and_then(Json::as_array)
            .is_some_and(|a| a.iter().any(|m| m == "S256"))
    }
}

/// The HTTP client and the cached discovery documents the providers share.
#[derive(Clone)]
pub struct Providers {
    pub http: reqwest::Client,
    discovered: Arc<DashMap<String, (Instant, Discovery)>>,
}

impl Default for Providers {
    fn default() -> Self {
        Providers::new()
    }
}

/// What the token endpoint answered.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: String,
    pub refresh_token: String,
    /// The rest of the answer (vk sends the e-mail address here; scopes granted).
    pub extra: Map<String, Json>,
}

impl Providers {
    pub fn new() -> Providers {
        // No redirects (a provider must not steer tessera elsewhere) and a firm deadline.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent("tessera")
            .build()
            .unwrap_or_default();
        Providers { http, discovered: Arc::new(DashMap::new()) }
    }

    /// The discovery document of `issuer` and its keys (cached for ten minutes).
    pub async fn discover(&self, issuer: &str) -> Result<Discovery, Failure> {
        if let Some(hit) = self.discovered.get(issuer)
            && hit.0.elapsed() < DISCOVERY_TTL
        {
            return Ok(hit.1.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", trim_slash(issuer));
        let doc: Json = self
            .get_json(&url, None, &[])
            .await
            .map_err(|e| Failure::Config(format!("Unable to discover the OpenID Connect provider at {issuer}: {e}")))?;
        let advertised = doc.get("issuer").and_then(Json::as_str).unwrap_or_default();
        if trim_slash(advertised) != trim_slash(issuer) {
            return Err(Failure::Config(format!(
                "The OpenID Connect provider at {issuer} calls itself {advertised:?}: the issuer must match exactly."
            )));
        }
        let jwks_uri = doc.get("jwks_uri").and_then(Json::as_str).unwrap_or_default();
        let jwks_url = JsonWebKeySetUrl::new(jwks_uri.to_string())
            .map_err(|e| Failure::Config(format!("The provider's jwks_uri {jwks_uri:?} is invalid: {e}")))?;
        let keys = CoreJsonWebKeySet::fetch_async(&jwks_url, &self.http)
            .await
            .map_err(|e| Failure::Upstream(format!("Unable to fetch the provider's signing keys: {e}")))?;
        let found = Discovery { doc, keys };
        self.discovered.insert(issuer.to_string(), (Instant::now(), found.clone()));
        Ok(found)
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>, headers: &[(&str, &str)]) -> Result<Json, String> {
        let mut req = self.http.get(url).header("Accept", "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        // Some user APIs take the access token in the query: never show it.
        let shown = url.split('?').next().unwrap_or_default();
        let res = req.send().await.map_err(|e| format!("{shown} is unreachable: {}", e.without_url()))?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("{shown} answered {status}"));
        }
        res.json::<Json>()
            .await
            .map_err(|e| format!("{shown} answered something that is not JSON: {}", e.without_url()))
    }

    /// Where the browser goes to sign in at the provider.
    pub async fn authorize_url(&self, cfg: &ProviderConfig, request: &AuthRequest<'_>) -> Result<String, Failure> {
        let family = family(cfg)?;
        let (endpoint, openid) = match &family {
            Family::Oidc { .. } if fixed_endpoints(cfg).is_some() => {
                (fixed_endpoints(cfg).map(|(a, _)| a).unwrap_or_default(), true)
            }
            Family::Oidc { issuer, .. } => {
                let d = self.discover(issuer).await?;
                let auth = cfg
                    .auth_url
                    .clone()
                    .filter(|s| !s.is_empty())
                    .or_else(|| d.endpoint("authorization_endpoint"))
                    .ok_or_else(|| Failure::Config("The provider names no authorization_endpoint.".into()))?;
                (auth, true)
            }
            Family::OAuth2 { auth_url, .. } => (auth_url.clone(), false),
        };
        let mut url = url::Url::parse(&endpoint)
            .map_err(|e| Failure::Config(format!("The authorization URL {endpoint:?} is invalid: {e}")))?;
        let mut scopes: Vec<String> = cfg.scope.clone();
        if openid && !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        let mut params: Vec<(String, String)> = Vec::new();
        if cfg.provider == "google" && scopes.iter().any(|s| s == "offline_access") {
            scopes.retain(|s| s != "offline_access");
            params.push(("access_type".into(), "offline".into()));
        }
        params.extend([
            ("client_id".into(), cfg.client_id.clone()),
            ("redirect_uri".into(), request.redirect_uri.to_string()),
            ("response_type".into(), "code".into()),
            ("scope".into(), scopes.join(" ")),
            ("state".into(), request.state.to_string()),
        ]);
        if openid {
            params.push(("nonce".into(), request.nonce.to_string()));
            if request.refresh {
                params.push(("prompt".into(), "login".into()));
            }
            if let Some(claims) = cfg.requested_claims.as_ref().filter(|c| !c.is_null()) {
                params.push(("claims".into(), claims.to_string()));
            }
        }
        if let Some(challenge) = request.code_challenge {
            params.push(("code_challenge".into(), challenge.to_string()));
            params.push(("code_challenge_method".into(), "S256".into()));
        }
        match cfg.provider.as_str() {
            "discord" | "patreon" => {
                params.push(("prompt".into(), if request.refresh { "consent" } else { "none" }.into()));
            }
            "dingtalk" => params.push(("prompt".into(), "consent".into())),
            "uaepass" => {
                params.push(("acr_values".into(), "urn:safelayer:tws:policies:authentication:level:low".into()))
            }
            "apple" if scopes.iter().any(|s| s == "email" || s == "name") => {
                params.push(("response_mode".into(), "form_post".into()))
            }
            _ => {}
        }
        // Upstream parameters come last and win over the defaults.
        for (k, v) in request.upstream {
            params.retain(|(name, _)| name != k);
            params.push((k.clone(), v.clone()));
        }
        url.query_pairs_mut().extend_pairs(params);
        Ok(url.to_string())
    }

    /// Whether the authorization uses PKCE (`pkce`: `force`, `never`, or `auto`: when
    /// discovery says the provider takes S256).
    pub async fn uses_pkce(&self, cfg: &ProviderConfig) -> bool {
        match pkce_mode(cfg) {
            "force" => true,
            "never" => false,
            _ => match family(cfg) {
                Ok(Family::Oidc { .. }) if fixed_endpoints(cfg).is_some() => false,
                Ok(Family::Oidc { issuer, .. }) => self.discover(&issuer).await.is_ok_and(|d| d.s256()),
                _ => false,
            },
        }
    }

    /// Exchanges an authorization code for tokens.
    pub async fn exchange(
        &self,
        cfg: &ProviderConfig,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
        now: i64,
    ) -> Result<Tokens, Failure> {
        let token_url = match family(cfg)? {
            Family::Oidc { .. } if fixed_endpoints(cfg).is_some() => {
                fixed_endpoints(cfg).map(|(_, t)| t).unwrap_or_default()
            }
            Family::Oidc { issuer, .. } => match cfg.token_url.clone().filter(|s| !s.is_empty()) {
                Some(t) => t,
                None => self
                    .discover(&issuer)
                    .await?
                    .endpoint("token_endpoint")
                    .ok_or_else(|| Failure::Config("The provider names no token_endpoint.".into()))?,
            },
            Family::OAuth2 { token_url, .. } => token_url,
        };
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let in_body = matches!(cfg.provider.as_str(), "apple" | "lark" | "linkedin");
        let mut answer = self.token_request(&token_url, cfg, &form, in_body, now).await?;
        // Kratos' auto-detection: HTTP Basic first, then the credentials in the body.
        if !in_body && matches!(answer.0, 400 | 401) && answer.1.get("error") == Some(&json!("invalid_client")) {
            answer = self.token_request(&token_url, cfg, &form, true, now).await?;
        }
        let (status, body) = answer;
        if let Some(error) = body.get("error").and_then(Json::as_str) {
            let description = body.get("error_description").and_then(Json::as_str).unwrap_or_default();
            return Err(Failure::Rejected(format!(
                "The OpenID Connect provider refused the authorization code: {error} {description}"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Upstream(format!("The provider's token endpoint answered {status}.")));
        }
        let text = |k: &str| body.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
        let tokens = Tokens {
            access_token: text("access_token"),
            id_token: text("id_token"),
            refresh_token: text("refresh_token"),
            extra: body.as_object().cloned().unwrap_or_default(),
        };
        if tokens.access_token.is_empty() {
            return Err(Failure::Upstream("The provider's token endpoint sent no access_token.".into()));
        }
        Ok(tokens)
    }

    async fn token_request(
        &self,
        url: &str,
        cfg: &ProviderConfig,
        form: &[(&str, &str)],
        in_body: bool,
        now: i64,
    ) -> Result<(u16, Json), Failure> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut req = self.http.post(url).header("Accept", "application/json");
        let secret = client_secret(cfg, now)?;
        if in_body {
            fields.push(("client_id", &cfg.client_id));
            fields.push(("client_secret", &secret));
        } else {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&cfg.client_id), Some(enc(&secret)));
        }
        let res = req.form(&fields).send().await.map_err(|e| {
            Failure::Upstream(format!("The provider's token endpoint is unreachable: {}", e.without_url()))
        })?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| Failure::Upstream(e.to_string()))?;
        // GitHub answers form-encoded to clients that do not ask for JSON.
        let body = serde_json::from_slice::<Json>(&bytes).unwrap_or_else(|_| {
            Json::Object(
                url::form_urlencoded::parse(&bytes)
                    .map(|(k, v)| (k.into_owned(), Json::String(v.into_owned())))
                    .collect(),
            )
        });
        Ok((status, body))
    }

    /// Verifies an ID token of `issuer` for `cfg`'s client: signature (discovered keys),
    /// issuer, audience (the client id and `additional_id_token_audiences`), expiry and nonce
    /// (`nonce`: `Some(n)` must match; `None`: Kratos' rules for native tokens, applied by the
    /// caller). Returns the token's payload.
    pub async fn verify_id_token(
        &self,
        cfg: &ProviderConfig,
        issuer: &str,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<Json, Failure> {
        let discovery = self.discover(issuer).await?;
        let issuer_url = IssuerUrl::new(discovery.doc.get("issuer").and_then(Json::as_str).unwrap_or(issuer).into())
            .map_err(|e| Failure::Config(format!("The issuer {issuer:?} is not a URL: {e}")))?;
        // The audience is checked below: the client id or one of the additional audiences (a
        // native app's own client id) must be among the token's.
        // Signed with the provider's keys only (no shared-secret algorithms): the ones its
        // discovery document names, RS256 when it names none.
        let algs: Vec<CoreJwsSigningAlgorithm> = discovery
            .doc
            .get("id_token_signing_alg_values_supported")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter(|v| v.as_str().is_some_and(|s| !s.starts_with("HS") && s != "none"))
                    .filter_map(|v| serde_json::from_value(v.clone()).ok())
                    .collect()
            })
            .filter(|v: &Vec<CoreJwsSigningAlgorithm>| !v.is_empty())
            .unwrap_or_else(|| vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(cfg.client_id.clone()),
            issuer_url,
            discovery.keys.clone(),
        )
        .set_allowed_algs(algs)
        .require_audience_match(false);
        let parsed: CoreIdToken =
            id_token.parse().map_err(|e| Failure::Rejected(format!("The id_token is malformed: {e}")))?;
        // A nonce in the token must be the one sent; a provider that does not echo nonces
        // is accepted, as Kratos sends none.
        let expected = nonce.map(str::to_string);
        let checked = parsed
            .claims(&verifier, move |claimed: Option<&Nonce>| match (claimed, expected) {
                (Some(c), Some(e))
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(c.secret().as_bytes(), e.as_bytes())) =>
                {
                    Err("nonce mismatch".to_string())
                }
                _ => Ok(()),
            })
            .map(|_| ());
        checked.map_err(|e| Failure::Rejected(format!("Could not verify id_token: {e}")))?;
        let raw = payload(id_token).ok_or_else(|| Failure::Rejected("The id_token payload is not JSON.".into()))?;
        let audiences: Vec<&str> = match raw.get("aud") {
            Some(Json::String(a)) => vec![a.as_str()],
            Some(Json::Array(list)) => list.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        let trusted = |a: &str| a == cfg.client_id || cfg.additional_id_token_audiences.iter().any(|x| x == a);
        if !audiences.iter().any(|a| trusted(a)) {
            return Err(Failure::Rejected(format!(
                "Could not verify id_token: the audience {audiences:?} is not this client's"
            )));
        }
        Ok(raw)
    }

    /// Who the user is: the claims (Kratos' `Claims`) after a code exchange.
    pub async fn claims(&self, cfg: &ProviderConfig, tokens: &Tokens, nonce: &str) -> Result<Json, Failure> {
        match family(cfg)? {
            Family::Oidc { issuer, userinfo } => {
                if tokens.id_token.is_empty() {
                    return Err(Failure::Rejected(
                        "Authentication failed because no id_token was returned. Please accept the \"openid\" permission and try again.".into(),
                    ));
                }
                let verify_issuer = match cfg.provider.as_str() {
                    // Microsoft's common tenants: the token names the real one.
                    "microsoft" => payload(&tokens.id_token)
                        .and_then(|p| p.get("tid").and_then(Json::as_str).map(str::to_string))
                        .filter(|t| uuid::Uuid::parse_str(t).is_ok())
                        .map(|tid| format!("https://login.microsoftonline.com/{tid}/v2.0"))
                        .ok_or_else(|| Failure::Rejected("The Microsoft id_token names no tenant (tid).".into()))?,
                    _ => issuer.clone(),
                };
                let raw = self.verify_id_token(cfg, &verify_issuer, &tokens.id_token, Some(nonce)).await?;
                if !userinfo {
                    let mut c = claims::standard(&raw);
                    if cfg.provider == "microsoft" {
                        self.microsoft_subject(cfg, tokens, &raw, &mut c).await?;
                    }
                    c.insert("raw_claims".into(), raw);
                    return Ok(Json::Object(c));
                }
                let endpoint = self
                    .discover(&issuer)
                    .await?
                    .endpoint("userinfo_endpoint")
                    .ok_or_else(|| Failure::Config("The provider names no userinfo_endpoint.".into()))?;
                let info =
                    self.get_json(&endpoint, Some(&tokens.access_token), &[]).await.map_err(Failure::Upstream)?;
                if info.get("sub") != raw.get("sub") {
                    return Err(Failure::Rejected(
                        "sub (Subject) claim mismatch between ID token and UserInfo endpoint".into(),
                    ));
                }
                let mut c = claims::standard(&info);
                if !c.contains_key("iss")
                    && let Some(iss) = raw.get("iss")
                {
                    c.insert("iss".into(), iss.clone());
                }
                c.insert("raw_claims".into(), info);
                Ok(Json::Object(c))
            }
            Family::OAuth2 { token_url, .. } => self.api_claims(cfg, tokens, &token_url).await,
        }
    }

    async fn microsoft_subject(
        &self,
        cfg: &ProviderConfig,
        tokens: &Tokens,
        raw: &Json,
        c: &mut Map<String, Json>,
    ) -> Result<(), Failure> {
        match cfg.subject_source.as_deref().unwrap_or("userinfo") {
            "oid" => {
                if let Some(oid) = raw.get("oid") {
                    c.insert("sub".into(), oid.clone());
                }
            }
            "me" => {
                let me = self
                    .get_json("https://graph.microsoft.com/v1.0/me", Some(&tokens.access_token), &[])
                    .await
                    .map_err(Failure::Upstream)?;
                if let Some(id) = me.get("id") {
                    c.insert("sub".into(), id.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The claims of an OAuth2-only provider, from its user API.
    async fn api_claims(&self, cfg: &ProviderConfig, tokens: &Tokens, token_url: &str) -> Result<Json, Failure> {
        let token = tokens.access_token.as_str();
        let issuer = cfg.issuer_url.as_deref().filter(|s| !s.is_empty()).map(trim_slash);
        let get = |url: String, bearer: bool, headers: Vec<(&'static str, String)>| {
            let headers: Vec<(&str, String)> = headers;
            async move {
                let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                self.get_json(&url, bearer.then_some(token), &hs).await.map_err(Failure::Upstream)
            }
        };
        let c = match cfg.provider.as_str() {
            "github" | "github-app" => {
                let api = issuer.unwrap_or("https://api.github.com");
                let gh = vec![("Accept", "application/vnd.github.v3+json".to_string())];
                let user = get(format!("{api}/user"), true, gh.clone()).await?;
                let granted = tokens.extra.get("scope").and_then(Json::as_str).unwrap_or_default();
                let wants_email =
                    cfg.provider == "github-app" || granted.split(',').any(|s| s.trim() == "user:email");
                let emails = if wants_email { Some(get(format!("{api}/user/emails"), true, gh).await?) } else { None };
                claims::github(&user, emails.as_ref(), token_url)
            }
            "gitlab" => {
                let base = issuer.unwrap_or("https://gitlab.com");
                let mut c = claims::standard(&get(format!("{base}/oauth/userinfo"), true, vec![]).await?);
                if !c.contains_key("iss") {
                    c.insert("iss".into(), json!(base));
                }
                c
            }
            "auth0" | "salesforce" => {
                let base = issuer.unwrap_or_default();
                let path = if cfg.provider == "auth0" { "/userinfo" } else { "/services/oauth2/userinfo" };
                let mut c = claims::standard(&get(format!("{base}{path}"), true, vec![]).await?);
                c.entry("iss").or_insert_with(|| json!(base));
                c
            }
            "discord" => claims::discord(&get("https://discord.com/api/v9/users/@me".into(), true, vec![]).await?),
            "spotify" => claims::spotify(&get("https://api.spotify.com/v1/me".into(), true, vec![]).await?),
            "yandex" => claims::yandex(
                &get(format!("https://login.yandex.ru/info?format=json&oauth_token={token}"), false, vec![]).await?,
            ),
            "vk" => claims::vk(
                &get(
                    format!(
                        "https://api.vk.com/method/users.get?fields=photo_200,nickname,bdate,sex&access_token={token}&v=5.103"
                    ),
                    false,
                    vec![],
                )
                .await?,
                tokens.extra.get("email"),
            ),
            "patreon" => claims::patreon(
                &get(
                    "https://www.patreon.com/api/oauth2/v2/identity?fields%5Buser%5D=first_name,last_name,url,full_name,email,image_url".into(),
                    true,
                    vec![],
                )
                .await?,
            ),
            "lark" => {
                claims::lark(&get("https://passport.feishu.cn/suite/passport/oauth/userinfo".into(), true, vec![]).await?)
            }
            "amazon" => claims::amazon(
                &get(
                    "https://api.amazon.com/user/profile".into(),
                    false,
                    vec![("x-amz-access-token", token.to_string())],
                )
                .await?,
            ),
            "uaepass" => {
                let base = issuer.unwrap_or("https://id.uaepass.ae");
                claims::uaepass(&get(format!("{base}/idshub/userinfo"), true, vec![]).await?, base)
            }
            "dingtalk" => claims::dingtalk(
                &get(
                    "https://api.dingtalk.com/v1.0/contact/users/me".into(),
                    false,
                    vec![("x-acs-dingtalk-access-token", token.to_string())],
                )
                .await?,
            ),
            "facebook" => {
                use hmac::{KeyInit, Mac};
                // sha2 0.11, the version `hmac` is built against.
                let mut mac = <hmac::Hmac<pbkdf2::sha2::Sha256> as KeyInit>::new_from_slice(cfg.client_secret.as_bytes())
                    .map_err(|e| Failure::Config(e.to_string()))?;
                mac.update(token.as_bytes());
                let proof = hex::encode(mac.finalize().into_bytes());
                claims::facebook(
                    &get(
                        format!(
                            "https://graph.facebook.com/me?fields=id,name,first_name,last_name,middle_name,email,picture,birthday,gender&appsecret_proof={proof}"
                        ),
                        true,
                        vec![],
                    )
                    .await?,
                )
            }
            "slack" => {
                let res = self
                    .http
                    .post("https://slack.com/api/users.identity")
                    .form(&[("token", token)])
                    .send()
                    .await
                    .map_err(|e| Failure::Upstream(e.without_url().to_string()))?;
                claims::slack(&res.json::<Json>().await.map_err(|e| Failure::Upstream(e.to_string()))?)
            }
            "linkedin" => {
                let me = get(
                    "https://api.linkedin.com/v2/me?projection=(id,localizedFirstName,localizedLastName,profilePicture(displayImage~digitalmediaAsset:playableStreams))".into(),
                    true,
                    vec![],
                )
                .await?;
                let email = get(
                    "https://api.linkedin.com/v2/emailAddress?q=members&projection=(elements*(handle~))".into(),
                    true,
                    vec![],
                )
                .await?;
                claims::linkedin(&me, &email)
            }
            other => return Err(Failure::Config(format!("The provider type {other:?} has no user API."))),
        };
        Ok(Json::Object(c))
    }
}

/// The client secret sent to the token endpoint. Apple's is a JWT (ES256, five minutes)
/// signed with the team's private key: `kid` = `apple_private_key_id`, `iss` =
/// `apple_team_id`, `sub` = the client id, `aud` = Apple; a configured `client_secret` wins.
pub fn client_secret(cfg: &ProviderConfig, now: i64) -> Result<String, Failure> {
    let key = cfg.apple_private_key.as_deref().filter(|k| !k.is_empty());
    let (true, Some(pem), true) = (cfg.provider == "apple", key, cfg.client_secret.is_empty()) else {
        return Ok(cfg.client_secret.clone());
    };
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::DecodePrivateKey;
    let (Some(team), Some(kid)) = (
        cfg.apple_team_id.as_deref().filter(|t| !t.is_empty()),
        cfg.apple_private_key_id.as_deref().filter(|k| !k.is_empty()),
    ) else {
        return Err(Failure::Config(
            "apple_team_id and apple_private_key_id are required with apple_private_key".into(),
        ));
    };
    let signing = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
        .map_err(|e| Failure::Config(format!("apple_private_key is not a PKCS#8 P-256 key: {e}")))?;
    let b64 = |v: &Json| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = json!({"alg": "ES256", "kid": kid});
    let claims = json!({
        "iss": team,
        "iat": now,
        "exp": now + 300,
        "aud": "https://appleid.apple.com",
        "sub": cfg.client_id,
    });
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature: p256::ecdsa::Signature = signing.sign(input.as_bytes());
    Ok(format!("{input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes())))
}

/// What an authorization URL is built from.
pub struct AuthRequest<'a> {
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_challenge: Option<&'a str>,
    /// A refresh login: OpenID Connect providers are asked to sign in again.
    pub refresh: bool,
    pub upstream: &'a [(String, String)],
}

/// The payload of a JWT, unverified.
pub fn payload(jwt: &str) -> Option<Json> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(provider: &str) -> ProviderConfig {
        ProviderConfig {
            id: "p".into(),
            provider: provider.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            ..ProviderConfig::default()
        }
    }

    #[test]
    fn every_type_has_endpoints() {
        for t in TYPES {
            let mut c = cfg(t);
            c.issuer_url = Some("https://issuer.example".into());
            c.microsoft_tenant = Some("common".into());
            assert!(family(&c).is_ok(), "{t}");
        }
        assert!(matches!(family(&cfg("x")), Err(Failure::Config(_))));
        assert!(matches!(family(&cfg("generic")), Err(Failure::Config(_))), "generic needs an issuer");
        assert!(matches!(family(&cfg("microsoft")), Err(Failure::Config(_))), "microsoft needs a tenant");
    }

    #[test]
    fn fixed_issuers_and_overrides() {
        assert_eq!(
            family(&cfg("google")),
            Ok(Family::Oidc { issuer: "https://accounts.google.com".into(), userinfo: false })
        );
        let mut gh = cfg("github");
        assert_eq!(
            family(&gh),
            Ok(Family::OAuth2 {
                auth_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into()
            })
        );
        gh.auth_url = Some("http://127.0.0.1:1/a".into());
        gh.token_url = Some("http://127.0.0.1:1/t".into());
        assert_eq!(
            family(&gh),
            Ok(Family::OAuth2 { auth_url: "http://127.0.0.1:1/a".into(), token_url: "http://127.0.0.1:1/t".into() })
        );
        let mut gl = cfg("gitlab");
        gl.issuer_url = Some("https://git.example/".into());
        assert_eq!(
            family(&gl),
            Ok(Family::OAuth2 {
                auth_url: "https://git.example/oauth/authorize".into(),
                token_url: "https://git.example/oauth/token".into()
            })
        );
        let mut ms = cfg("microsoft");
        ms.microsoft_tenant = Some("organizations".into());
        assert_eq!(
            family(&ms),
            Ok(Family::Oidc { issuer: "https://login.microsoftonline.com/organizations/v2.0".into(), userinfo: false })
        );
    }

    #[tokio::test]
    async fn oauth2_authorize_urls_carry_state_scopes_and_upstream_parameters() {
        let mut c = cfg("discord");
        c.scope = vec!["identify".into(), "email".into()];
        let upstream =
            vec![("login_hint".to_string(), "a@example.org".to_string()), ("prompt".into(), "consent".into())];
        let request = AuthRequest {
            redirect_uri: "https://id.example/cb",
            state: "st",
            nonce: "n",
            code_challenge: Some("ch"),
            refresh: false,
            upstream: &upstream,
        };
        let url = Providers::new().authorize_url(&c, &request).await.unwrap_or_default();
        let parsed = url::Url::parse(&url).unwrap_or_else(|_| unreachable!());
        let q: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(parsed.host_str(), Some("discord.com"));
        assert_eq!(get("scope"), vec!["identify email"], "no openid for OAuth2 providers");
        assert_eq!(get("state"), vec!["st"]);
        assert_eq!(get("nonce"), Vec::<&str>::new());
        assert_eq!(get("code_challenge_method"), vec!["S256"]);
        assert_eq!(get("prompt"), vec!["consent"], "upstream parameters override the provider's default");
        assert_eq!(get("login_hint"), vec!["a@example.org"]);
    }

    const APPLE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2qUf7Um+09OkXjFq
aXCq6qsKgeRISuXhn2+621nIZrihRANCAATTfuIDj3KfhCfAsJmK+ZVBR6vACvCk
SX1pJrAmB6RDtXSR4uOxlAkgqYiep7TB/jub/6EZBpKvS4CD4LSWq1zs
-----END PRIVATE KEY-----
";

    #[test]
    fn apple_client_secrets_are_signed_jwts() {
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePrivateKey;
        let mut c = cfg("apple");
        c.client_secret = String::new();
        c.client_id = "org.example.app".into();
        c.apple_team_id = Some("TEAM123456".into());
        c.apple_private_key_id = Some("KEY1234567".into());
        c.apple_private_key = Some(APPLE_KEY.into());
        let jwt = client_secret(&c, 1_700_000_000).unwrap_or_default();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(payload(&format!("x.{}.y", parts[0])), Some(json!({"alg": "ES256", "kid": "KEY1234567"})));
        assert_eq!(
            payload(&jwt),
            Some(json!({"iss": "TEAM123456", "iat": 1_700_000_000, "exp": 1_700_000_300,
                "aud": "https://appleid.apple.com", "sub": "org.example.app"}))
        );
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(APPLE_KEY).unwrap_or_else(|_| unreachable!());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap_or_else(|_| unreachable!());
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(key.verifying_key().verify(signed.as_bytes(), &sig).is_ok());
        c.apple_private_key = Some("not a key".into());
        assert!(matches!(client_secret(&c, 0), Err(Failure::Config(_))));
        assert_eq!(client_secret(&cfg("github"), 0), Ok("s".into()));
    }

    #[test]
    fn jwt_payloads_decode() {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        assert_eq!(payload(&format!("h.{body}.s")), Some(json!({"sub": "x"})));
        assert_eq!(payload("nope"), None);
    }
}
