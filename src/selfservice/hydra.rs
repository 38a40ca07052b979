//! The OAuth2 provider (Ory Hydra) side of `login_challenge` (behaviour.md §13): a login or
//! registration started by Hydra carries its challenge; the login request is fetched from
//! Hydra's admin API (`GET /admin/oauth2/auth/requests/login`) and, once the user is signed
//! in, accepted (`PUT …/login/accept`) with the session's subject and AMR, after which the
//! browser goes to Hydra's `redirect_to`.

use crate::catalogue::error as reasons;
use crate::config::Config;
use crate::error::Error;
use crate::session::Session;
use serde_json::{Value as Json, json};
use std::time::Duration;

/// Largest answer read from Hydra.
const MAX_ANSWER: usize = 1 << 20;

/// What the flows need of a login request.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// Hydra's object as it came (shown as the flow's `oauth2_login_request`).
    pub raw: Json,
    /// Hydra remembers the user: no new sign-in is needed.
    pub skip: bool,
    /// The authorization request that led here.
    pub request_url: String,
}

/// Hydra's admin API client.
#[derive(Clone)]
pub struct Hydra {
    http: reqwest::Client,
}

impl Default for Hydra {
    fn default() -> Self {
        Hydra::new()
    }
}

/// The `login_challenge` of a request: `Ok(None)` without one; 500 when no provider is
/// configured (checked first, as Kratos), 400 when it is empty.
pub fn challenge_of(config: &Config, given: Option<&str>) -> Result<Option<String>, Error> {
    let Some(c) = given else { return Ok(None) };
    if config.oauth2_provider.url().is_none() {
        return Err(Error::Misconfigured(reasons::LOGIN_CHALLENGE_UNSUPPORTED.into()));
    }
    if c.is_empty() {
        return Err(Error::invalid(reasons::LOGIN_CHALLENGE_EMPTY));
    }
    Ok(Some(c.to_string()))
}

fn endpoint(config: &Config, path: &str, challenge: &str) -> Result<String, Error> {
    let base = config
        .oauth2_provider
        .url()
        .ok_or_else(|| Error::Misconfigured("oauth2_provider.url is not configured".into()))?;
    let mut url = url::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
        .map_err(|_| Error::Misconfigured(reasons::LOGIN_CHALLENGE_UNSUPPORTED.into()))?;
    url.query_pairs_mut().append_pair("login_challenge", challenge);
    Ok(url.into())
}

/// Reads at most [`MAX_ANSWER`] bytes.
async fn body_of(mut res: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            body.truncate(MAX_ANSWER);
            break;
        }
    }
    body
}

/// Hydra's error answer: `status_code`, and `error_hint` when the body is an OAuth2 error
/// (a 410 answers `{redirect_to}` instead: no hint).
fn failure(server: bool, reason: &str, status: Option<u16>, body: &[u8]) -> Error {
    let hint = match status {
        Some(410) | None => None,
        Some(_) => serde_json::from_slice::<Json>(body)
            .ok()
            .filter(Json::is_object)
            .map(|v| v.get("error_hint").and_then(Json::as_str).unwrap_or_default().to_string()),
    };
    Error::OAuth2Provider { server, reason: reason.to_string(), status_code: status, hint }
}

fn is_json(res: &reqwest::Response) -> bool {
    res.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            (m.starts_with("application/") || m.starts_with("text/")) && (m.ends_with("/json") || m.ends_with("+json"))
        })
}

impl Hydra {
    pub fn new() -> Hydra {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Hydra { http }
    }

    fn request(&self, config: &Config, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, url).header(reqwest::header::ACCEPT, "application/json");
        for (k, v) in &config.oauth2_provider.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req
    }

    /// The login request of `challenge`. Hydra unreachable or failing: 500; refusing (4xx) or
    /// answering something else than a login request: 400.
    pub async fn login_request(&self, config: &Config, challenge: &str) -> Result<LoginRequest, Error> {
        let reason = reasons::OAUTH2_GET_LOGIN_REQUEST;
        if challenge.is_empty() {
            return Err(Error::invalid("invalid login_challenge"));
        }
        let url = endpoint(config, "/admin/oauth2/auth/requests/login", challenge)?;
        let res = self.request(config, reqwest::Method::GET, url).send().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "oauth2_provider: the login request could not be fetched");
            failure(true, reason, None, &[])
        })?;
        let status = res.status().as_u16();
        let json_body = is_json(&res);
        let body = body_of(res).await;
        if status >= 500 {
            return Err(failure(true, reason, Some(status), &body));
        }
        if !(200..300).contains(&status) || !json_body {
            return Err(failure(false, reason, Some(status), &body));
        }
        let raw: Json = serde_json::from_slice(&body).map_err(|_| failure(false, reason, Some(status), &body))?;
        let complete = ["challenge", "client", "request_url", "skip", "subject"]
            .iter()
            .all(|k| raw.as_object().is_some_and(|o| o.contains_key(*k)));
        if !complete {
            return Err(failure(false, reason, Some(status), &body));
        }
        let skip = raw.get("skip").and_then(Json::as_bool).unwrap_or(false);
        let request_url = raw.get("request_url").and_then(Json::as_str).unwrap_or_default().to_string();
        // Fields Hydra sent as null are left out, as Kratos re-encodes them.
        let raw = match raw {
            Json::Object(o) => Json::Object(o.into_iter().filter(|(_, v)| !v.is_null()).collect()),
            other => other,
        };
        Ok(LoginRequest { raw, skip, request_url })
    }

    /// Accepts `challenge` for `session` (subject = its identity, AMR = its methods, remembered
    /// as the session cookie is persistent, for the session lifespan); returns where the
    /// browser goes next. Any failure: 500.
    pub async fn accept(&self, config: &Config, challenge: &str, session: &Session) -> Result<String, Error> {
        let reason = reasons::OAUTH2_ACCEPT_LOGIN_REQUEST;
        let url = endpoint(config, "/admin/oauth2/auth/requests/login/accept", challenge)?;
        let body = json!({
            "subject": session.identity_id.to_string(),
            "identity_provider_session_id": session.id.to_string(),
            "remember": config.session.cookie.persistent,
            "remember_for": config.session.lifespan.0.as_secs(),
            "amr": session.authentication_methods.iter().map(|m| m.method.clone()).collect::<Vec<_>>(),
        });
        let res = self.request(config, reqwest::Method::PUT, url).json(&body).send().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "oauth2_provider: the login request could not be accepted");
            failure(true, reason, None, &[])
        })?;
        let status = res.status().as_u16();
        let answer = body_of(res).await;
        if !(200..300).contains(&status) {
            return Err(failure(true, reason, Some(status), &answer));
        }
        serde_json::from_slice::<Json>(&answer)
            .ok()
            .and_then(|v| v.get("redirect_to").and_then(Json::as_str).map(str::to_string))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| failure(true, reason, Some(status), &answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_need_a_provider_then_a_value() {
        let mut config = Config::default();
        assert!(matches!(challenge_of(&config, None), Ok(None)));
        assert!(matches!(challenge_of(&config, Some("")), Err(Error::Misconfigured(_))), "the provider first");
        assert!(matches!(challenge_of(&config, Some("abc")), Err(Error::Misconfigured(_))));
        config.oauth2_provider.url = Some("http://hydra:4445/".into());
        assert!(matches!(challenge_of(&config, Some("")), Err(Error::Invalid(_))));
        assert_eq!(challenge_of(&config, Some("not-a-uuid")).ok().flatten().as_deref(), Some("not-a-uuid"));
        assert_eq!(
            endpoint(&config, "/admin/oauth2/auth/requests/login", "a b&c").ok().as_deref(),
            Some("http://hydra:4445/admin/oauth2/auth/requests/login?login_challenge=a+b%26c")
        );
    }

    #[test]
    fn failures_carry_status_and_hint() {
        let e = failure(false, "r", Some(404), br#"{"error":"not_found","error_hint":"gone for good"}"#);
        assert!(
            matches!(e, Error::OAuth2Provider { server: false, status_code: Some(404), hint: Some(ref h), .. } if h == "gone for good")
        );
        let e = failure(false, "r", Some(410), br#"{"redirect_to":"x"}"#);
        assert!(matches!(e, Error::OAuth2Provider { hint: None, .. }));
        let e = failure(true, "r", Some(409), br#"{"error":"conflict"}"#);
        assert!(matches!(e, Error::OAuth2Provider { hint: Some(ref h), .. } if h.is_empty()));
        let e = failure(true, "r", Some(500), b"not json");
        assert!(matches!(e, Error::OAuth2Provider { hint: None, .. }));
    }
}
