//! Social sign-in endpoints: the providers' way back
//! (`GET|POST /self-service/methods/oidc/callback[/{provider}]`), which hands the callback to
//! the flow its sealed `state` names, and FedCM.

use super::cookies::{csrf_cookie, csrf_token};
use super::error::{ApiError, respond};
use super::request::request_info;
use super::selfservice::{check_bounds, flow_error, flow_gone, parse_body, read_bounded, run_step, svc};
use super::state::{AppState, query_first as first, query_pairs};
use crate::error::Error;
use crate::selfservice::flow::{FlowKind, FlowType, login};
use crate::selfservice::form::{Callback, Submit};
use crate::selfservice::step::{self, Init};
use crate::selfservice::strategy::oidc;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

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
        "providers": oidc::fedcm::providers(&state.config, state.clock.now(), &real),
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
async fn fedcm_token(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    if !state.config.selfservice.methods.oidc.enabled {
        return respond(&state, &req, false, Error::not_found(DISABLED)).await;
    }
    let limit = usize::try_from(state.config.security.input_limits.submit_body.0).unwrap_or(usize::MAX);
    let submitted = match read_bounded(&req, payload, limit)
        .await
        .and_then(|body| parse_body(&req, &body))
        .and_then(|s| check_bounds(&state, &s).map(|()| s))
    {
        Ok(s) => s,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    if submitted.body.get("transient_payload").is_some_and(|tp| !tp.is_object()) {
        return respond(&state, &req, false, ApiError::bad_request("transient_payload must be a JSON object")).await;
    }
    let Some(token) = submitted.field("token").map(str::to_string) else {
        return respond(&state, &req, false, ApiError::bad_request("The FedCM token is missing (token).")).await;
    };
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let sent = submitted.field("csrf_token").unwrap_or_default();
    let csrf_real = match step::check_form_csrf(&info, sent) {
        Ok(real) => real,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    // The token must carry a nonce this server issued to this browser (and a nonce sent
    // beside it must be that one).
    let checked =
        oidc::fedcm::provider_of(&state.config, &token, submitted.field("nonce"), state.clock.now(), &csrf_real);
    let (provider, nonce) = match checked {
        Ok(found) => found,
        Err(oidc::fedcm::Problem::Nonce) => {
            let e = ApiError::bad_request(
                "The FedCM token does not carry a nonce this server issued to this browser, or it has expired.",
            );
            return respond(&state, &req, false, e).await;
        }
        Err(oidc::fedcm::Problem::Provider) => {
            let e = ApiError::bad_request("No FedCM provider is configured for this token.");
            return respond(&state, &req, false, e).await;
        }
    };
    let flow = match login::init(svc(&state), FlowType::Browser, &info, login::InitParams::default(), csrf_real).await {
        Ok(Init::Created { flow, .. }) => *flow,
        Ok(Init::SignedIn(to)) => return HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish(),
        Ok(Init::Found(to)) => return HttpResponse::Found().insert_header((header::LOCATION, to)).finish(),
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let mut submit_body =
        json!({"method": "oidc", "provider": provider, "id_token": token, "id_token_nonce": nonce, "csrf_token": sent});
    if let Some(tp) = submitted.body.get("transient_payload") {
        submit_body["transient_payload"] = tp.clone();
    }
    let submit = Submit::new(submit_body, false);
    run_step(&state, &req, info, FlowKind::Login, flow.id, submit, false).await
}
