//! FedCM (beyond Kratos OSS, which answers 404): the parameters `navigator.credentials.get`
//! needs — the providers with a `fedcm_config_url`, each with a sealed nonce bound to the
//! browser's CSRF token — and the checks a returned token must pass before it signs in like a
//! native `id_token`.

use super::{digest, provider, random, sealer, shown};
use crate::config::{Config, OidcProvider};
use serde_json::{Value as Json, json};

/// How long a FedCM nonce may be used.
const FEDCM_NONCE_SECONDS: i64 = 10 * 60;

/// `GET /self-service/fed-cm/parameters`: the providers with a FedCM configuration, each
/// with a fresh nonce (sealed: tessera knows its own nonces without storing them), bound to
/// the browser's CSRF token `csrf`.
pub fn providers(config: &Config, now: chrono::DateTime<chrono::Utc>, csrf: &str) -> Vec<Json> {
    fedcm_configured(config)
        .into_iter()
        .filter_map(|p| {
            let config_url = p.fedcm_config_url.as_deref().unwrap_or_default();
            let expires = (now + chrono::Duration::seconds(FEDCM_NONCE_SECONDS)).timestamp();
            let nonce = sealer(config)
                .seal(&json!({"fedcm": p.id, "e": expires, "c": digest(csrf), "r": random(16)}).to_string())?;
            Some(json!({"config_url": config_url, "client_id": p.client_id, "nonce": nonce}))
        })
        .collect()
}

/// Why a FedCM token cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The token carries no nonce this server issued for this browser, or it is too old.
    Nonce,
    /// No FedCM provider issued the token.
    Provider,
}

/// The providers FedCM may use: a `fedcm_config_url`, and a token that is an ID token of the
/// provider (netid's FedCM token needs its broker's exchange, which tessera does not do).
fn fedcm_configured(config: &Config) -> Vec<&OidcProvider> {
    shown(config)
        .into_iter()
        .filter(|p| p.fedcm_config_url.as_deref().is_some_and(|u| !u.is_empty()) && p.provider != "netid")
        .collect()
}

/// The provider a FedCM token is for and the nonce to check it with. The token must carry a
/// nonce this server issued (sealed, fresh, for this browser's CSRF token `csrf`); a nonce
/// sent beside it must be the same.
pub fn provider_of(
    config: &Config,
    token: &str,
    sent: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
    csrf: &str,
) -> Result<(String, String), Problem> {
    let claimed = provider::payload(token)
        .and_then(|p| p.get("nonce").and_then(Json::as_str).map(str::to_string))
        .filter(|n| !n.is_empty())
        .ok_or(Problem::Nonce)?;
    if sent.is_some_and(|s| s != claimed) {
        return Err(Problem::Nonce);
    }
    let opened: Json =
        sealer(config).open(&claimed).and_then(|v| serde_json::from_str(&v).ok()).ok_or(Problem::Nonce)?;
    if opened.get("e").and_then(Json::as_i64).is_none_or(|e| e < now.timestamp())
        || opened.get("c") != Some(&json!(digest(csrf)))
    {
        return Err(Problem::Nonce);
    }
    let id = opened.get("fedcm").and_then(Json::as_str).unwrap_or_default();
    let found = fedcm_configured(config).into_iter().find(|p| p.id == id).ok_or(Problem::Provider)?;
    Ok((found.id.clone(), claimed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(id: &str) -> OidcProvider {
        OidcProvider { id: id.into(), provider: "generic".into(), ..OidcProvider::default() }
    }

    #[test]
    fn fedcm_nonces_are_ours_fresh_and_for_this_browser() {
        use base64::Engine;
        let mut config = Config::default();
        config.secrets.default = vec!["a-secret-of-enough-length-0123456789".into()];
        let mut p = provider("fed");
        p.fedcm_config_url = Some("https://idp.example/fedcm.json".into());
        config.selfservice.methods.oidc.config.providers = vec![provider("plain"), p];
        let now = crate::clock::Clock::system().now();
        let offered = providers(&config, now, "csrf-a");
        assert_eq!(offered.len(), 1);
        let nonce = offered[0]["nonce"].as_str().unwrap_or_default().to_string();
        let token = |n: &str| {
            let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"nonce": n}).to_string());
            format!("h.{body}.s")
        };
        assert_eq!(provider_of(&config, &token(&nonce), None, now, "csrf-a"), Ok(("fed".into(), nonce.clone())));
        let both = provider_of(&config, &token(&nonce), Some(&nonce), now, "csrf-a");
        assert_eq!(both.map(|x| x.0), Ok("fed".into()));
        let later = now + chrono::Duration::minutes(11);
        assert_eq!(provider_of(&config, &token(&nonce), None, later, "csrf-a"), Err(Problem::Nonce));
        let elsewhere = provider_of(&config, &token(&nonce), None, now, "csrf-b");
        assert_eq!(elsewhere, Err(Problem::Nonce), "another browser");
        let differs = provider_of(&config, &token(&nonce), Some("other"), now, "csrf-a");
        assert_eq!(differs, Err(Problem::Nonce));
        assert_eq!(provider_of(&config, &token("forged"), None, now, "csrf-a"), Err(Problem::Nonce));
        let bare = provider_of(&config, "x.e30.y", Some(&nonce), now, "csrf-a");
        assert_eq!(bare, Err(Problem::Nonce), "the token must carry the nonce");
    }
}
