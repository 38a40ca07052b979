//! Social sign-in endpoints: the providers' way back
//! (`GET|POST /self-service/methods/oidc/callback[/{provider}]`), which hands the callback to
//! the flow its sealed `state` names, and FedCM.

use super::cookies::{csrf_cookie, csrf_token};
use super::error::{ApiError, respond};
use super::request::request_info;
use super::selfservice::{flow_error, flow_gone, parse_body, run_step, svc};
use super::state::{AppState, query_first as first, query_pairs};
use crate::error::Error;
use crate::selfservice::flow::{FlowKind, FlowType, login};
use crate::selfservice::form::{Callback, Submit};
use crate::selfservice::step::{self, Init};
use crate::selfservice::strategy::oidc;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value as Json, json};

pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/self-service/methods/oidc/callback").get(callback_any))
        .service(web::resource("/self-service/methods/oidc/callback/{provider}").get(callback).post(callback_form_post))
        .service(web::resource("/self-service/fed-cm/parameters").get(fedcm_parameters))
        .service(web::resource("/self-service/fed-cm/token").post(fedcm_token));
}

const DISABLED: &str = "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.";

async fn callback_any(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    run(state, req, String::new()).await
}

async fn callback(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    run(state, req, path.into_inner()).await
}

/// Providers that answer with `response_mode=form_post` (Apple) POST the callback: it goes on
/// as a GET with the form fields in the query, so that the browser's cookies (SameSite=Lax)
/// come along.
async fn callback_form_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let mut pairs = query_pairs(&req);
    pairs.extend(url::form_urlencoded::parse(&body).into_owned());
    let base = format!("{}self-service/methods/oidc/callback/{}", state.config.public_base_url(), path.into_inner());
    let Ok(mut to) = url::Url::parse(&base) else {
        return respond(
            &state,
            &req,
            false,
            ApiError::bad_request("The provider id in the callback URL is malformed."),
        )
        .await;
    };
    to.query_pairs_mut().extend_pairs(pairs);
    HttpResponse::Found().insert_header((header::LOCATION, to.to_string())).finish()
}

async fn run(state: web::Data<AppState>, req: HttpRequest, provider: String) -> HttpResponse {
    if !state.config.selfservice.methods.oidc.enabled {
        return respond(&state, &req, false, Error::not_found(DISABLED)).await;
    }
    let params = query_pairs(&req);
    let Some(raw) = first(&params, "state").filter(|s| !s.is_empty()) else {
        let e = ApiError::bad_request(
            "Unable to complete OpenID Connect flow because the OpenID Provider did not return the state query parameter.",
        );
        return respond(&state, &req, false, e).await;
    };
    let Some((auth, kind)) = oidc::open_state(&state.config, raw).and_then(|a| oidc::kind_of(&a).map(|k| (a, k)))
    else {
        let e = ApiError::bad_request("Unable to complete OpenID Connect flow because the state parameter is invalid.");
        return respond(&state, &req, false, e).await;
    };
    let flow = match svc(&state).flows.get(kind, auth.flow).await {
        Ok(f) => f,
        Err(e) => return respond(&state, &req, false, flow_error(e)).await,
    };
    // The callback comes to a browser, even for a native app's API flow: errors go to the
    // error UI (JSON only for clients that ask for it).
    if flow.is_expired(state.clock.now()) {
        return respond(&state, &req, false, flow_gone(&state, &flow)).await;
    }
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let submit = Submit::callback("oidc", Callback { provider, params });
    run_step(&state, &req, info, kind, auth.flow, submit, true).await
}

// --- FedCM ------------------------------------------------------------------------------------

/// `GET /self-service/fed-cm/parameters`: what `navigator.credentials.get` needs for each
/// provider with a FedCM configuration, and a CSRF token for the submit.
async fn fedcm_parameters(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !state.config.selfservice.methods.oidc.enabled {
        return respond(&state, &req, false, Error::not_found(DISABLED)).await;
    }
    let (real, new_cookie) = csrf_token(&state, &req);
    let body = json!({
        "providers": oidc::fedcm_providers(&state.config, state.clock.now()),
        "csrf_token": crate::selfservice::csrf::mask(&real),
    });
    let mut res = super::state::json_response(StatusCode::OK, &body);
    if new_cookie {
        let _ = res.add_cookie(&csrf_cookie(&state.config, &real));
    }
    res
}

/// `POST /self-service/fed-cm/token`: the token `navigator.credentials.get` gave; signs in
/// (or registers) like a provider sign-in with an ID token, on a new browser login flow.
async fn fedcm_token(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !state.config.selfservice.methods.oidc.enabled {
        return respond(&state, &req, false, Error::not_found(DISABLED)).await;
    }
    let submitted = match parse_body(&req, &body) {
        Ok(s) => s,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let Some(token) = submitted.field("token").map(str::to_string) else {
        return respond(&state, &req, false, ApiError::bad_request("The FedCM token is missing (token).")).await;
    };
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let sent = submitted.field("csrf_token").unwrap_or_default();
    let csrf_ok = info.csrf_cookie.as_deref().is_some_and(|real| crate::selfservice::csrf::verify(real, sent));
    if !csrf_ok {
        let reason = step::csrf_reject_reason(&info, sent.is_empty());
        return respond(&state, &req, false, step::csrf_error(&info, reason)).await;
    }
    // The nonce sent, else the one in the token: it must be one this server issued.
    let claimed = crate::selfservice::strategy::oidc::provider::payload(&token)
        .and_then(|p| p.get("nonce").and_then(Json::as_str).map(str::to_string));
    let nonce = submitted.field("nonce").map(str::to_string).or(claimed);
    let provider = match oidc::fedcm_provider(&state.config, &token, nonce.as_deref(), state.clock.now()) {
        Ok(p) => p,
        Err(oidc::FedcmProblem::Nonce) => {
            let e = ApiError::bad_request("The FedCM nonce was not issued by this server or has expired.");
            return respond(&state, &req, false, e).await;
        }
        Err(oidc::FedcmProblem::Provider) => {
            let e = ApiError::bad_request("No FedCM provider is configured for this token.");
            return respond(&state, &req, false, e).await;
        }
    };
    let csrf_real = info.csrf_cookie.clone().unwrap_or_default();
    let flow = match login::init(svc(&state), FlowType::Browser, &info, login::InitParams::default(), csrf_real).await {
        Ok(Init::Created { flow, .. }) => *flow,
        Ok(Init::SignedIn(to)) => return HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish(),
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let mut submit_body = json!({"method": "oidc", "provider": provider, "id_token": token, "csrf_token": sent});
    if let Some(n) = nonce {
        submit_body["id_token_nonce"] = json!(n);
    }
    if let Some(tp) = submitted.body.get("transient_payload").filter(|t| t.is_object()) {
        submit_body["transient_payload"] = tp.clone();
    }
    let submit = Submit::new(submit_body, false);
    run_step(&state, &req, info, FlowKind::Login, flow.id, submit, false).await
}
