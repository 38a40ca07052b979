//! Logout (behaviour.md §10): the browser's logout URL, the logout itself, and API logout.

use super::cookies::{csrf_cookie, session_cookie_removal};
use super::error::{ApiError, respond};
use super::negotiate::is_json_request;
use super::request::request_token;
use super::state::{AppState, json_response, query_first as first, query_pairs};
use crate::error::Error;
use crate::selfservice::{self as ss, csrf};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value as Json, json};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/self-service/logout/browser").get(logout_browser))
        .service(web::resource("/self-service/logout/api").delete(logout_api))
        .service(web::resource("/self-service/logout").get(logout));
}

async fn logout_browser(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let token = request_token(&state, &req);
    let live = match &token {
        Some(t) => state.sessions.authenticate(t).await,
        None => Ok(None),
    };
    let (Ok(Some(_)), Some(token)) = (live, token) else {
        return respond(&state, &req, false, Error::NoSession { named: true }).await;
    };
    let pairs = query_pairs(&req);
    let mut url = format!("{}self-service/logout", state.config.public_base_url());
    let logout_token = crate::session::logout_token_for(&token);
    url = ss::redirect::with_query(&url, "token", &logout_token);
    if let Some(r) = first(&pairs, "return_to").filter(|r| !r.is_empty()) {
        let default = logout_default(&state);
        match ss::redirect::validate(&state.config, r, &default) {
            Ok(valid) => url = ss::redirect::with_query(&url, "return_to", &valid),
            Err(e) => return respond(&state, &req, false, e.into_error()).await,
        }
    }
    json_response(StatusCode::OK, &json!({"logout_token": logout_token, "logout_url": url}))
}

fn logout_default(state: &AppState) -> String {
    state
        .config
        .selfservice
        .flows
        .logout
        .after
        .default_browser_return_url
        .clone()
        .unwrap_or_else(|| ss::redirect::default_return(&state.config))
}

async fn logout(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let pairs = query_pairs(&req);
    let Some(sent) = first(&pairs, "token").filter(|t| !t.is_empty()).map(str::to_string) else {
        let e = ApiError::bad_request("Please include a token in the URL query.");
        return respond(&state, &req, false, e).await;
    };
    let token = request_token(&state, &req);
    let live = match &token {
        Some(t) => state.sessions.authenticate(t).await,
        None => Ok(None),
    };
    let (Ok(Some(live)), Some(token)) = (live, token) else {
        return respond(&state, &req, false, Error::NoSession { named: true }).await;
    };
    let expected = crate::session::logout_token_for(&token);
    let matches = {
        use subtle::ConstantTimeEq;
        bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))
    };
    if !matches {
        let e = Error::Forbidden(crate::catalogue::error::LOGOUT_TOKEN_MISMATCH.into());
        return respond(&state, &req, false, e).await;
    }
    let default = logout_default(&state);
    let to = match first(&pairs, "return_to").filter(|r| !r.is_empty()) {
        Some(r) => match ss::redirect::validate(&state.config, r, &default) {
            Ok(to) => to,
            Err(e) => return respond(&state, &req, false, e.into_error()).await,
        },
        None => default,
    };
    match state.sessions.find(live.session.id).await {
        Ok(Some(s)) => {
            if let Err(e) = state.sessions.revoke(s).await {
                return respond(&state, &req, false, e).await;
            }
        }
        Ok(None) => {}
        Err(e) => return respond(&state, &req, false, e).await,
    }
    let mut res = if is_json_request(&req) {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
    };
    let _ = res.add_cookie(&session_cookie_removal(&state));
    let _ = res.add_cookie(&csrf_cookie(&state.config, &csrf::new_token()));
    res
}

async fn logout_api(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let forbidden = || ApiError::from(Error::Forbidden(crate::catalogue::error::SESSION_TOKEN_UNKNOWN.into()));
    let v: Json = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Unable to decode JSON payload: {e}")))?;
    let token = v.get("session_token").and_then(Json::as_str).filter(|t| !t.is_empty()).ok_or_else(forbidden)?;
    // A known session is revoked (again, if it already was): Kratos answers 204 for it too.
    let session = state.sessions.find_by_token(token).await?.ok_or_else(forbidden)?;
    if session.active {
        state.sessions.revoke(session).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
