//! Social sign-in endpoints: the providers' way back
//! (`GET|POST /self-service/methods/oidc/callback[/{provider}]`), which hands the callback to
//! the flow its sealed `state` names, and FedCM.

use super::error::{ApiError, respond};
use super::request::request_info;
use super::selfservice::{flow_error, flow_gone, render_outcome, svc};
use super::state::{AppState, query_first as first, query_pairs};
use crate::error::Error;
use crate::selfservice::flow::{FlowType, dispatch};
use crate::selfservice::form::{Callback, Submit};
use crate::selfservice::strategy::oidc;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/self-service/methods/oidc/callback").get(callback_any)).service(
        web::resource("/self-service/methods/oidc/callback/{provider}").get(callback).post(callback_form_post),
    );
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
    let api = flow.flow_type == FlowType::Api;
    if flow.is_expired(state.clock.now()) {
        return respond(&state, &req, api, flow_gone(&state, &flow)).await;
    }
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return respond(&state, &req, api, e).await,
    };
    let submit = Submit::callback("oidc", Callback { provider, params });
    let service = svc(&state).clone();
    let step_info = info.clone();
    let result = svc(&state)
        .flows
        .apply(
            kind,
            auth.flow,
            Box::new(move |flow| {
                Box::pin(async move {
                    let (flow, outcome) = dispatch::submit(service, kind, flow, submit, step_info).await;
                    (flow, (outcome, api))
                })
            }),
        )
        .await;
    match result {
        Ok((outcome, api)) => render_outcome(&state, &req, &info, kind, outcome, api).await,
        Err(e) => respond(&state, &req, api, flow_error(e)).await,
    }
}
