//! The cookies tessera sets and reads: the CSRF cookie (behaviour.md §3.3) and the session
//! cookie (§3.1), with the attributes from `cookies.*` and `session.cookie.*`.

use super::state::AppState;
use crate::config::Config;
use crate::selfservice::csrf;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

/// Parses a SameSite setting (`Strict`, `Lax`, `None`); anything else is Lax.
pub fn same_site(v: Option<&str>) -> SameSite {
    match v.map(str::to_ascii_lowercase).as_deref() {
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        _ => SameSite::Lax,
    }
}

/// The value of the request's CSRF cookie, if present (it may still be malformed: then every
/// check against it fails as a mismatch).
pub fn csrf_from_request(config: &Config, req: &HttpRequest) -> Option<String> {
    let c = req.cookie(&csrf::cookie_name(config))?;
    Some(c.value().to_string()).filter(|v| !v.is_empty())
}

/// The CSRF cookie carrying `token`.
pub fn csrf_cookie(config: &Config, token: &str) -> Cookie<'static> {
    let secure = config.cookies.secure.unwrap_or(!config.dev);
    let same_site = if secure { same_site(config.cookies.same_site.as_deref()) } else { SameSite::Lax };
    let mut c = Cookie::build(csrf::cookie_name(config), token.to_string())
        .http_only(true)
        .secure(secure)
        .same_site(same_site)
        .path(config.cookies.path.clone().unwrap_or_else(|| "/".into()))
        .max_age(CookieDuration::days(365))
        .finish();
    if let Some(d) = &config.cookies.domain {
        c.set_domain(d.clone());
    }
    c
}

/// The CSRF token of the request's cookie, or a new one (then the cookie must be set).
pub fn csrf_token(state: &AppState, req: &HttpRequest) -> (String, bool) {
    match csrf_from_request(&state.config, req).filter(|t| csrf::is_valid(t)) {
        Some(t) => (t, false),
        None => (csrf::new_token(), true),
    }
}

/// The session cookie for `token`.
pub fn session_cookie(
    state: &AppState,
    token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Option<Cookie<'static>> {
    let c = &state.config.session.cookie;
    let value = state.sessions.cookie_value(token, expires_at)?;
    let secure = c.secure.unwrap_or(!state.config.dev);
    let mut cookie = Cookie::build(c.name.clone(), value)
        .http_only(true)
        .secure(secure)
        .same_site(same_site(c.same_site.as_deref().or(state.config.cookies.same_site.as_deref())))
        .path(c.path.clone().or_else(|| state.config.cookies.path.clone()).unwrap_or_else(|| "/".into()))
        .finish();
    if let Some(d) = c.domain.clone().or_else(|| state.config.cookies.domain.clone()) {
        cookie.set_domain(d);
    }
    if c.persistent {
        let remaining = (expires_at - state.clock.now()).num_seconds().max(0);
        cookie.set_max_age(CookieDuration::seconds(remaining));
    }
    Some(cookie)
}

/// A cookie that removes the session cookie.
pub fn session_cookie_removal(state: &AppState) -> Cookie<'static> {
    let c = &state.config.session.cookie;
    let mut cookie = Cookie::build(c.name.clone(), "")
        .http_only(true)
        .path(c.path.clone().or_else(|| state.config.cookies.path.clone()).unwrap_or_else(|| "/".into()))
        .max_age(CookieDuration::seconds(-1))
        .finish();
    if let Some(d) = c.domain.clone().or_else(|| state.config.cookies.domain.clone()) {
        cookie.set_domain(d);
    }
    cookie
}

/// The continuity cookie of a provider sign-in (sealed: the flow and a digest of the state).
pub fn continuity_cookie(config: &Config, value: String) -> Cookie<'static> {
    let secure = config.cookies.secure.unwrap_or(!config.dev);
    let mut c = Cookie::build(crate::selfservice::strategy::oidc::CONTINUITY_COOKIE, value)
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .path(config.cookies.path.clone().unwrap_or_else(|| "/".into()))
        .max_age(CookieDuration::seconds(crate::selfservice::strategy::oidc::CONTINUITY_MAX_AGE_SECONDS))
        .finish();
    if let Some(d) = &config.cookies.domain {
        c.set_domain(d.clone());
    }
    c
}
