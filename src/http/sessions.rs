//! Session endpoints: `/sessions/whoami`, the caller's own sessions, token exchange, and the
//! admin session API.

use super::error::ApiError;
use super::pagination::LegacyPage;
use super::request::request_token;
use super::state::{AppState, json_response, link_entry, query_first as first, query_pairs, to_public};
use crate::error::Error;
use crate::session::Session;
use crate::session::registry::Live;
use crate::session::view::render_session;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use uuid::Uuid;

pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sessions/whoami").route(web::route().to(whoami)))
        .service(web::resource("/sessions").get(list_mine).delete(revoke_my_others))
        .service(web::resource("/sessions/token-exchange").get(token_exchange))
        .service(web::resource("/sessions/{id}").delete(revoke_mine));
}

pub(super) fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/sessions/whoami").get(to_public))
        .service(web::resource("/admin/sessions").get(admin_list).delete(to_public))
        .service(web::resource("/admin/sessions/{id}").get(admin_get).delete(admin_revoke))
        .service(web::resource("/admin/sessions/{id}/extend").patch(admin_extend))
        .service(
            web::resource("/admin/identities/{id}/sessions").get(identity_sessions).delete(delete_identity_sessions),
        );
}

/// 401 without an id (whoami and the session list wrap `session_inactive`, behaviour.md §2.4).
fn no_session() -> Error {
    Error::NoSession { named: false }
}

/// The caller's live, active session that satisfies the whoami AAL requirement.
async fn caller(state: &AppState, req: &HttpRequest) -> Result<Arc<Live>, ApiError> {
    let token = request_token(state, req).ok_or_else(no_session)?;
    let live = state.sessions.authenticate(&token).await?.ok_or_else(no_session)?;
    if !crate::session::satisfies(
        &state.config.session.whoami.required_aal,
        live.session.aal,
        live.shared.available_aal,
    ) {
        let pairs = query_pairs(req);
        return Err(Error::Aal2Required {
            redirect: crate::selfservice::redirect::aal2_login_url(&state.config, first(&pairs, "return_to")),
        }
        .into());
    }
    Ok(live)
}

/// The whoami body: the session part is rendered once per live session and the identity once
/// per live identity (shared by its sessions); a request only concatenates them.
fn whoami_body(state: &AppState, live: &Live) -> String {
    let identity = live.shared.rendered.get_or_init(|| {
        crate::identity::view::render(
            &live.shared.identity,
            &live.shared.schema_url,
            crate::identity::view::CredentialsView::Hidden,
            crate::identity::view::AdminMetadata::Hidden,
        )
        .to_string()
    });
    let (before, after) = live.whoami_parts.get_or_init(|| {
        let session = render_session(&live.session, None, true, state.clock.now()).to_string();
        // `"identity":null` occurs once, as the top-level key: inside strings quotes are escaped.
        const KEY: &str = "\"identity\":null";
        match session.find(KEY) {
            Some(at) => (session[..at + KEY.len() - 4].to_string(), session[at + KEY.len()..].to_string()),
            None => (session, String::new()),
        }
    });
    if !before.ends_with("\"identity\":") {
        // Not split (cannot happen with `render_session`): the session JSON alone is valid.
        return before.clone();
    }
    let mut body = String::with_capacity(before.len() + identity.len() + after.len());
    body.push_str(before);
    body.push_str(identity);
    body.push_str(after);
    body
}

/// The whoami body with `tokenized`: the session as a JWT of template `name`.
async fn tokenized_body(state: &AppState, live: &Live, name: &str) -> Result<String, ApiError> {
    let Some(template) = state.config.session.whoami.tokenizer.templates.get(name) else {
        return Err(ApiError::bad_request(format!("Unable to find tokenizer template \"{name}\".")));
    };
    let mut session: Json = serde_json::from_str(&whoami_body(state, live)).map_err(|e| Error::internal(&e))?;
    let issuer = state.config.public_base_url();
    let request = crate::session::tokenizer::TokenRequest {
        template_name: name,
        template,
        session: &session,
        session_id: live.session.id,
        identity_id: live.shared.identity.id,
        external_id: live.shared.identity.external_id.as_deref(),
        issuer: &issuer,
        now: state.clock.now(),
    };
    let token = state.sessions.tokenizer.tokenize(&request).await.map_err(Error::from)?;
    if let Some(o) = session.as_object_mut() {
        o.insert("tokenized".into(), Json::String(token));
    }
    Ok(session.to_string())
}

const CACHE_FOR: HeaderName = HeaderName::from_static("ory-session-cache-for");

async fn whoami(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let flags = &state.config.feature_flags;
    let live = match caller(&state, &req).await {
        Ok(live) => live,
        // With cacheable sessions, "no credentials at all" may be cached for a minute.
        Err(e) if flags.cacheable_sessions && !has_credentials(&state, &req) => {
            let mut res = actix_web::ResponseError::error_response(&e);
            res.headers_mut().insert(CACHE_FOR, HeaderValue::from_static("60"));
            return Ok(res);
        }
        Err(e) => return Err(e),
    };
    let pairs = query_pairs(&req);
    let tokenize_as = first(&pairs, "tokenize_as").filter(|t| !t.is_empty());
    let body = match tokenize_as {
        Some(name) => tokenized_body(&state, &live, name).await?,
        None => whoami_body(&state, &live),
    };
    let mut res = HttpResponse::Ok().content_type("application/json").body(body);
    if let Ok(v) = HeaderValue::from_str(&live.shared.identity.id.to_string()) {
        res.headers_mut().insert(HeaderName::from_static("x-kratos-authenticated-identity-id"), v);
    }
    if flags.cacheable_sessions && tokenize_as.is_none() {
        // Seconds until the session expires, capped by the configured maximum (rounded, as
        // upstream prints them).
        let mut left = (live.session.expires_at - state.clock.now()).num_milliseconds().max(0) as f64 / 1000.0;
        if let Some(max) = flags.cacheable_sessions_max_age.filter(|m| !m.0.is_zero()) {
            left = left.min(max.0.as_secs_f64());
        }
        if let Ok(v) = HeaderValue::from_str(&format!("{}", left.round() as i64)) {
            res.headers_mut().insert(CACHE_FOR, v);
        }
    }
    // A cookie older than the session (e.g. after an admin extend) is issued again, and so is
    // a cookie Kratos issued (tessera's own replaces it).
    if req.headers().get("x-session-token").is_none()
        && let Some(c) = req.cookie(&state.config.session.cookie.name)
        && state.sessions.cookie_expiry(c.value()).is_none_or(|e| e < live.session.expires_at)
        && let Some(token) = state.sessions.token_from_cookie(c.value())
        && let Some(fresh) = super::cookies::session_cookie(&state, &token, live.session.expires_at)
    {
        let _ = res.add_cookie(&fresh);
    }
    Ok(res)
}

/// Whether the request carries any session credential (cookie, `X-Session-Token`, bearer).
fn has_credentials(state: &AppState, req: &HttpRequest) -> bool {
    req.cookie(&state.config.session.cookie.name).is_some()
        || req.headers().contains_key("x-session-token")
        || req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

async fn list_mine(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let live = caller(&state, &req).await?;
    let page = LegacyPage::from_request(&req, 250, 1000);
    let (sessions, total) = state
        .sessions
        .list_of_identity(
            live.shared.identity.id,
            Some(true),
            Some(live.session.id),
            page.offset as i64,
            page.limit as i64,
        )
        .await?;
    let now = state.clock.now();
    let body: Vec<Json> = sessions
        .iter()
        .map(|s| render_session(s, Some((&live.shared.identity, &live.shared.schema_url)), true, now))
        .collect();
    let mut res = json_response(StatusCode::OK, &Json::Array(body));
    page.write_headers(&req, total as usize, res.headers_mut());
    Ok(res)
}

async fn revoke_my_others(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let live = caller(&state, &req).await?;
    let count = state.sessions.revoke_all_of(live.shared.identity.id, Some(live.session.id)).await?;
    Ok(json_response(StatusCode::OK, &json!({ "count": count })))
}

fn parse_uuid(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|e| {
        ApiError::bad_request("The request was malformed or contained invalid parameters").with_message(e.to_string())
    })
}

async fn revoke_mine(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let live = caller(&state, &req).await?;
    let id = parse_uuid(&id)?;
    if id == live.session.id {
        return Err(ApiError::bad_request("The request was malformed or contained invalid parameters")
            .with_message("cannot revoke current session"));
    }
    if let Some(s) = state.sessions.find(id).await?
        && s.identity_id == live.shared.identity.id
    {
        state.sessions.revoke(s).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn token_exchange(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let (Some(init), Some(ret)) = (
        first(&pairs, "init_code").filter(|v| !v.is_empty()),
        first(&pairs, "return_to_code").filter(|v| !v.is_empty()),
    ) else {
        return Err(ApiError::bad_request("init_code and return_to_code query params must be set"));
    };
    let Some((session, token)) = state.sessions.exchange(init, ret).await? else {
        return Err(Error::not_found("no session yet for this \"code\"").into());
    };
    let identity = state.identities.get(session.identity_id).await?;
    let schema_url = state.identities.schema_url_of(&identity);
    let body = render_session(&session, Some((&identity, &schema_url)), true, state.clock.now());
    Ok(json_response(StatusCode::OK, &json!({ "session_token": token, "session": body })))
}

fn parse_active(pairs: &[(String, String)]) -> Result<Option<bool>, ApiError> {
    match first(pairs, "active").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" => Ok(Some(true)),
            "0" | "f" | "false" => Ok(Some(false)),
            _ => Err(ApiError::bad_request("The request was malformed or contained invalid parameters")
                .with_message("could not parse parameter active")),
        },
    }
}

/// `expand` values: (identity, devices).
fn parse_expand(pairs: &[(String, String)]) -> Result<(bool, bool), ApiError> {
    let mut out = (false, false);
    for (_, v) in pairs.iter().filter(|(k, _)| k == "expand") {
        match v.to_ascii_lowercase().as_str() {
            "identity" => out.0 = true,
            "devices" => out.1 = true,
            _ => return Err(ApiError::bad_request(format!("Could not parse expand option: {v}"))),
        }
    }
    Ok(out)
}

const TOKEN_TIME: &str = "%Y-%m-%d %H:%M:%S%.f";

fn encode_page_token(created_at: DateTime<Utc>, id: Uuid) -> String {
    // Kratos writes at most 5 fractional digits; 6 (the stored precision) keep the keyset exact.
    let created = created_at.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let created = created.trim_end_matches('0').trim_end_matches('.');
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("id={id}/created_at={created}"))
}

fn decode_page_token(token: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(token.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')))
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (mut id, mut created) = (None, None);
    for part in text.split('/') {
        match part.split_once('=')? {
            ("id", v) => id = Uuid::parse_str(v).ok(),
            ("created_at", v) => created = NaiveDateTime::parse_from_str(v, TOKEN_TIME).ok().map(|t| t.and_utc()),
            _ => return None,
        }
    }
    Some((created?, id?))
}

async fn identity_of(state: &AppState, s: &Session) -> Result<Option<(crate::identity::Identity, String)>, ApiError> {
    match state.identities.get(s.identity_id).await {
        Ok(i) => {
            let url = state.identities.schema_url_of(&i);
            Ok(Some((i, url)))
        }
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn render_admin(state: &AppState, s: &Session, expand: (bool, bool)) -> Result<Json, ApiError> {
    let identity = if expand.0 { identity_of(state, s).await? } else { None };
    Ok(render_session(s, identity.as_ref().map(|(i, u)| (i, u.as_str())), expand.1, state.clock.now()))
}

async fn admin_list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let active = parse_active(&pairs)?;
    let size = match first(&pairs, "page_size").filter(|v| !v.is_empty()) {
        None => 250,
        Some(v) => v.parse::<i64>().map_err(|_| {
            ApiError::bad_request("The request was malformed or contained invalid parameters")
                .with_message("could not parse parameter page_size")
        })?,
    };
    let size = if size < 1 { 250 } else { size.min(1000) };
    let after = match first(&pairs, "page_token").filter(|v| !v.is_empty()) {
        None => None,
        Some(t) => {
            let pos = decode_page_token(t)
                .ok_or_else(|| ApiError::bad_request("The page token is invalid, do not craft your own page tokens"))?;
            (!pos.1.is_nil()).then_some(pos)
        }
    };
    let expand = parse_expand(&pairs)?;
    let mut sessions = state.sessions.list_all(active, after, size + 1).await?;
    let more = sessions.len() as i64 > size;
    sessions.truncate(size as usize);
    let mut body = Vec::with_capacity(sessions.len());
    for s in &sessions {
        body.push(render_admin(&state, s, expand).await?);
    }
    let link = |token: String, rel: &str| {
        link_entry(&req, &pairs, &[("page_size", size.to_string()), ("page_token", token)], rel)
    };
    let far_future = chrono::NaiveDate::from_ymd_opt(2200, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .unwrap_or_default();
    let mut links = vec![link(encode_page_token(far_future, Uuid::nil()), "first")];
    if more && let Some(last) = sessions.last() {
        links.push(link(encode_page_token(last.created_at, last.id), "next"));
    }
    let mut res = json_response(StatusCode::OK, &Json::Array(body));
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        res.headers_mut().insert(header::LINK, v);
    }
    Ok(res)
}

async fn admin_get(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid(&id)?;
    let expand = parse_expand(&query_pairs(&req))?;
    let s = state.sessions.find(id).await?.ok_or_else(Error::no_rows)?;
    Ok(json_response(StatusCode::OK, &render_admin(&state, &s, expand).await?))
}

async fn admin_revoke(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid(&id)?;
    let s = state.sessions.find(id).await?.ok_or_else(Error::no_rows)?;
    state.sessions.revoke(s).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn admin_extend(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid(&id)?;
    let s = state.sessions.extend(id).await?;
    Ok(json_response(StatusCode::OK, &render_admin(&state, &s, (true, false)).await?))
}

async fn identity_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid(&id)?;
    let pairs = query_pairs(&req);
    let active = parse_active(&pairs)?;
    let identity = state.identities.get(id).await?;
    let url = state.identities.schema_url_of(&identity);
    let page = LegacyPage::from_request(&req, 250, 1000);
    let (sessions, total) =
        state.sessions.list_of_identity(id, active, None, page.offset as i64, page.limit as i64).await?;
    let now = state.clock.now();
    let body: Vec<Json> = sessions.iter().map(|s| render_session(s, Some((&identity, &url)), true, now)).collect();
    let mut res = json_response(StatusCode::OK, &Json::Array(body));
    page.write_headers(&req, total as usize, res.headers_mut());
    Ok(res)
}

async fn delete_identity_sessions(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid(&id)?;
    state.identities.get(id).await?;
    state.sessions.delete_all_of(id).await?;
    Ok(HttpResponse::NoContent().finish())
}
