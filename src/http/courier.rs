//! `GET /admin/courier/messages` and `GET /admin/courier/messages/{id}` (behaviour.md §16.3).

use super::error::ApiError;
use super::state::{AppState, json_response, link_entry, query_first as first, query_pairs, temporary_redirect};
use crate::courier::{parse_status, render};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LINK};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

pub(super) fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/courier/messages").get(list))
        .service(web::resource("/admin/courier/messages/{id}").get(get));
}

/// The public server sends courier routes to the admin server (307).
pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/courier/messages").to(to_admin))
        .service(web::resource("/admin/courier/messages/{tail:.*}").to(to_admin));
}

async fn to_admin(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    temporary_redirect(&state.config.admin_base_url(), path, req.query_string())
}

/// Page tokens are opaque: the keyset position sealed with the server's secrets.
fn encode_token(state: &AppState, at: DateTime<Utc>, id: Uuid) -> Option<String> {
    let sealed = state.sessions.seal(&format!("{}|{id}", at.to_rfc3339()))?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
}

fn decode_token(state: &AppState, token: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let plain = state.sessions.unseal(std::str::from_utf8(&sealed).ok()?)?;
    let (at, id) = plain.split_once('|')?;
    Some((DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc), Uuid::parse_str(id).ok()?))
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let status = match first(&pairs, "status").filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_status(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Message status \"{s}\" is not valid (queued, sent, processing or abandoned)."
            ))
        })?),
        None => None,
    };
    let recipient = first(&pairs, "recipient").filter(|s| !s.is_empty());
    let size = match first(&pairs, "page_size") {
        Some(v) => v.parse::<i64>().map_err(|_| ApiError::bad_request("page_size must be a positive integer"))?,
        None => 10,
    }
    .clamp(1, 500);
    let after = match first(&pairs, "page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_token(&state, t).ok_or_else(|| ApiError::bad_request("The page token is invalid."))?),
        None => None,
    };
    let mut rows = state.courier.list(status, recipient, after, size + 1).await?;
    let more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let body: Vec<Value> = rows.iter().map(|m| render(m, None, state.config.dev)).collect();
    let mut res = json_response(StatusCode::OK, &Value::Array(body));
    let mut links = vec![link_entry(&req, &pairs, &[("page_size", size.to_string())], "first")];
    if more
        && let Some(last) = rows.last()
        && let Some(token) = encode_token(&state, last.created_at.0, last.id.0)
    {
        links.push(link_entry(&req, &pairs, &[("page_size", size.to_string()), ("page_token", token)], "next"));
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        res.headers_mut().insert(LINK, v);
    }
    Ok(res)
}

async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|e| ApiError::bad_request(format!("invalid message id: {e}")))?;
    let (message, dispatches) = state.courier.get(id).await?.ok_or_else(crate::error::Error::no_rows)?;
    Ok(json_response(StatusCode::OK, &render(&message, Some(&dispatches), state.config.dev)))
}
