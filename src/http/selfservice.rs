//! Self-service endpoints: login, registration, recovery, verification and settings (create,
//! fetch, submit), admin recovery, and stored errors (logout is in `logout.rs`). Handlers turn
//! the request into a [`RequestInfo`], run one flow step, and render the [`Outcome`] as JSON
//! or a browser redirect (behaviour.md §2.2).

use super::cookies::{continuity_cookie, csrf_cookie, csrf_token, session_cookie};
use super::error::{ApiError, respond};
use super::negotiate::is_json_request;
use super::request::request_info;
use super::state::{AppState, json_response, query_first as first, query_pairs, to_public};
use crate::error::{Error, FlowName};
use crate::selfservice::flow::{
    Flow, FlowKind, FlowType, dispatch, login, recovery, registration, settings, verification,
};
use crate::selfservice::form::{self, Submit};
use crate::selfservice::registry::FlowError;
use crate::selfservice::step::{self, Done, Init, Outcome, RequestInfo};
use crate::selfservice::{self as ss, csrf};
use crate::session::view::render_session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde_json::{Value as Json, json};
use uuid::Uuid;

pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/self-service/login/browser").get(login_browser))
        .service(web::resource("/self-service/login/api").get(login_api))
        .service(web::resource("/self-service/login/flows").get(login_fetch))
        .service(web::resource("/self-service/login").post(login_submit).get(login_submit))
        .service(web::resource("/self-service/registration/browser").get(registration_browser))
        .service(web::resource("/self-service/registration/api").get(registration_api))
        .service(web::resource("/self-service/registration/flows").get(registration_fetch))
        .service(web::resource("/self-service/registration").post(registration_submit).get(registration_submit))
        .service(web::resource("/self-service/recovery/browser").get(recovery_browser))
        .service(web::resource("/self-service/recovery/api").get(recovery_api))
        .service(web::resource("/self-service/recovery/flows").get(recovery_fetch))
        .service(web::resource("/self-service/recovery").post(recovery_submit).get(recovery_submit))
        .service(web::resource("/self-service/verification/browser").get(verification_browser))
        .service(web::resource("/self-service/verification/api").get(verification_api))
        .service(web::resource("/self-service/verification/flows").get(verification_fetch))
        .service(web::resource("/self-service/verification").post(verification_submit).get(verification_submit))
        .service(web::resource("/self-service/settings/browser").get(settings_browser))
        .service(web::resource("/self-service/settings/api").get(settings_api))
        .service(web::resource("/self-service/settings/flows").get(settings_fetch))
        .service(web::resource("/self-service/settings").post(settings_submit).get(settings_submit))
        .service(web::resource("/self-service/errors").get(read_error))
        .service(web::resource("/.well-known/ory/webauthn.js").get(webauthn_script));
}

/// `GET /.well-known/ory/webauthn.js`: the helper the WebAuthn trigger nodes call.
async fn webauthn_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=UTF-8")
        .body(crate::selfservice::strategy::webauthn::SCRIPT)
}

pub(super) fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/recovery/code").post(admin_recovery_code))
        .service(web::resource("/admin/recovery/link").post(admin_recovery_link))
        .service(web::resource("/admin/self-service/{tail:.*}").to(to_public));
}

fn admin_recovery_body(body: &[u8]) -> Result<recovery::AdminBody, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Unable to decode JSON payload: {e}")))
}

async fn admin_recovery_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body = admin_recovery_body(&body)?;
    let return_to = first(&query_pairs(&req), "return_to").map(str::to_string);
    let out = recovery::admin_code(svc(&state), body, return_to).await?;
    Ok(json_response(StatusCode::CREATED, &out))
}

async fn admin_recovery_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body = admin_recovery_body(&body)?;
    let return_to = first(&query_pairs(&req), "return_to").map(str::to_string);
    let out = recovery::admin_link(svc(&state), body, return_to).await?;
    Ok(json_response(StatusCode::OK, &out))
}

pub(super) fn svc(state: &AppState) -> &ss::SelfService {
    &state.selfservice
}

/// The JSON of a flow, with a freshly masked CSRF token for browser flows.
fn flow_json(flow: &Flow, transient_payload: Option<&Json>, exchange_code: Option<&str>) -> Json {
    let masked = (flow.flow_type == FlowType::Browser).then(|| csrf::mask(&flow.csrf_token));
    let mut v = flow.render(masked.as_deref(), transient_payload);
    if let (Some(code), Some(o)) = (exchange_code, v.as_object_mut()) {
        o.insert("session_token_exchange_code".into(), json!(code));
    }
    v
}

fn ui_redirect(ui_url: &str, flow_id: Uuid, status: StatusCode) -> HttpResponse {
    let to = ss::redirect::with_query(ui_url, "flow", &flow_id.to_string());
    HttpResponseBuilder::new(status).insert_header((header::LOCATION, to)).finish()
}

fn flow_name(kind: FlowKind) -> FlowName {
    match kind {
        FlowKind::Login => FlowName::Login,
        FlowKind::Registration => FlowName::Registration,
        FlowKind::Recovery => FlowName::Recovery,
        FlowKind::Verification => FlowName::Verification,
        FlowKind::Settings => FlowName::Settings,
    }
}

pub(super) fn flow_error(e: FlowError) -> ApiError {
    match e {
        FlowError::NotFound => Error::no_rows().into(),
        FlowError::Store(e) => e.into(),
    }
}

// --- creation ------------------------------------------------------------------------------

fn flag(pairs: &[(String, String)], key: &str) -> bool {
    matches!(first(pairs, key).map(str::to_ascii_lowercase).as_deref(), Some("true" | "1" | "t"))
}

async fn create(state: web::Data<AppState>, req: HttpRequest, kind: FlowKind, flow_type: FlowType) -> HttpResponse {
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return respond(&state, &req, flow_type == FlowType::Api, e).await,
    };
    let pairs = query_pairs(&req);
    let (csrf_real, new_cookie) = csrf_token(&state, &req);
    let get = |k: &str| first(&pairs, k).map(str::to_string);
    let created = match kind {
        FlowKind::Login => {
            let params = login::InitParams {
                refresh: flag(&pairs, "refresh"),
                aal: get("aal"),
                return_to: get("return_to"),
                identity_schema: get("identity_schema"),
                login_challenge: get("login_challenge"),
                return_session_token_exchange_code: flag(&pairs, "return_session_token_exchange_code"),
            };
            login::init(svc(&state), flow_type, &info, params, csrf_real.clone()).await
        }
        FlowKind::Registration => {
            let params = registration::InitParams {
                return_to: get("return_to"),
                identity_schema: get("identity_schema"),
                login_challenge: get("login_challenge"),
                return_session_token_exchange_code: flag(&pairs, "return_session_token_exchange_code"),
            };
            registration::init(svc(&state), flow_type, &info, params, csrf_real.clone()).await
        }
        FlowKind::Recovery => {
            match recovery::init(svc(&state), flow_type, &info, get("return_to").as_deref(), csrf_real.clone()).await {
                Ok(recovery::Init::Created(flow)) => {
                    Ok(Init::Created { flow, exchange_code: None, oauth2_login_request: None })
                }
                Ok(recovery::Init::SignedIn(to)) => {
                    return HttpResponse::Found().insert_header((header::LOCATION, to)).finish();
                }
                Err(e) => Err(e),
            }
        }
        FlowKind::Verification => {
            verification::init(svc(&state), flow_type, &info, get("return_to").as_deref(), csrf_real.clone())
                .await
                .map(|flow| Init::Created { flow: Box::new(flow), exchange_code: None, oauth2_login_request: None })
        }
        FlowKind::Settings => {
            if info.session.is_none() && flow_type == FlowType::Browser && !info.is_json {
                // Sign in first, then come back.
                let mut to = format!("{}self-service/login/browser", state.config.public_base_url());
                if let Some(r) = get("return_to").filter(|r| !r.is_empty()) {
                    to = ss::redirect::with_query(&to, "return_to", &r);
                }
                return HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish();
            }
            match settings::init(svc(&state), flow_type, &info, get("return_to").as_deref(), csrf_real.clone()).await {
                // An HTML browser goes to the aal2 login instead of seeing the 403.
                Err(Error::Aal2Required { redirect }) if flow_type == FlowType::Browser && !info.is_json => {
                    return HttpResponse::SeeOther().insert_header((header::LOCATION, redirect)).finish();
                }
                created => created.map(|flow| Init::Created {
                    flow: Box::new(flow),
                    exchange_code: None,
                    oauth2_login_request: None,
                }),
            }
        }
    };
    let (flow, exchange_code, oauth2_login_request) = match created {
        Ok(Init::Created { flow, exchange_code, oauth2_login_request }) => (*flow, exchange_code, oauth2_login_request),
        Ok(Init::SignedIn(to)) => return HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish(),
        Ok(Init::Found(to)) => return HttpResponse::Found().insert_header((header::LOCATION, to)).finish(),
        Err(e) => return respond(&state, &req, flow_type == FlowType::Api, e).await,
    };
    let mut res = if flow_type == FlowType::Browser && !info.is_json {
        ui_redirect(svc(&state).ui_url(kind), flow.id, StatusCode::SEE_OTHER)
    } else {
        let mut body = flow_json(&flow, None, exchange_code.as_deref());
        if let (Some(lr), Some(o)) = (oauth2_login_request, body.as_object_mut()) {
            o.insert("oauth2_login_request".into(), lr);
        }
        json_response(StatusCode::OK, &body)
    };
    if flow_type == FlowType::Browser && new_cookie {
        let _ = res.add_cookie(&csrf_cookie(&state.config, &csrf_real));
    }
    res
}

async fn login_browser(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Login, FlowType::Browser).await
}

async fn login_api(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Login, FlowType::Api).await
}

async fn registration_browser(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Registration, FlowType::Browser).await
}

async fn registration_api(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Registration, FlowType::Api).await
}

async fn recovery_browser(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Recovery, FlowType::Browser).await
}

async fn recovery_api(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Recovery, FlowType::Api).await
}

async fn settings_browser(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Settings, FlowType::Browser).await
}

async fn settings_api(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Settings, FlowType::Api).await
}

async fn settings_submit(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    submit(state, req, body, FlowKind::Settings).await
}

async fn verification_browser(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Verification, FlowType::Browser).await
}

async fn verification_api(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    create(state, req, FlowKind::Verification, FlowType::Api).await
}

// --- fetch ---------------------------------------------------------------------------------

async fn fetch(state: web::Data<AppState>, req: HttpRequest, kind: FlowKind) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let id = first(&pairs, "id").and_then(|v| Uuid::parse_str(v).ok()).ok_or_else(Error::no_rows)?;
    match flow_for_client(&state, &req, kind, id).await? {
        Ok(flow) => Ok(json_response(StatusCode::OK, &flow)),
        Err(redirect) => Ok(redirect),
    }
}

/// A flow as `GET /self-service/<kind>/flows` shows it to this request (session, identity,
/// AAL, CSRF and expiry checked), or the redirect an HTML browser gets instead.
pub(super) async fn flow_for_client(
    state: &AppState,
    req: &HttpRequest,
    kind: FlowKind,
    id: Uuid,
) -> Result<Result<Json, HttpResponse>, ApiError> {
    let flows = &state.config.selfservice.flows;
    match kind {
        FlowKind::Registration if !flows.registration.enabled => return Err(registration::disabled().into()),
        FlowKind::Recovery if !flows.recovery.enabled => return Err(recovery::disabled().into()),
        FlowKind::Verification if !flows.verification.enabled => return Err(verification::disabled().into()),
        _ => {}
    }
    // Settings: a session first (before the flow is looked up), then the identity binding.
    let live = if kind == FlowKind::Settings {
        let info = request_info(state, req).await?;
        let Some(live) = info.session.clone() else {
            if !is_json_request(req) {
                let to = state.config.selfservice.flows.login.ui_url.clone();
                return Ok(Err(HttpResponse::Found().insert_header((header::LOCATION, to)).finish()));
            }
            return Err(Error::SessionRequired.into());
        };
        Some(live)
    } else {
        None
    };
    let flow = svc(state).flows.get(kind, id).await.map_err(flow_error)?;
    if let Some(live) = &live
        && flow.data.identity_id != Some(live.session.identity_id)
    {
        return Err(Error::IdentityMismatch.into());
    }
    if let Some(live) = &live {
        let ui = ss::redirect::with_query(svc(state).ui_url(FlowKind::Settings), "flow", &flow.id.to_string());
        settings::check_aal(svc(state), live, Some(&ui))?;
    }
    if flow.flow_type == FlowType::Browser && !flow.data.csrf_disabled && kind != FlowKind::Settings {
        let info = request_info(state, req).await?;
        let ok = info.csrf_cookie.as_deref().is_some_and(|c| {
            use subtle::ConstantTimeEq;
            bool::from(c.as_bytes().ct_eq(flow.csrf_token.as_bytes()))
        });
        if !ok {
            // A GET carries no form token, so with the cookie present Kratos only hints at it.
            let reason = if info.csrf_cookie.is_some() { None } else { step::csrf_reject_reason(&info, false) };
            return Err(step::csrf_error(&info, reason).into());
        }
    }
    if flow.is_expired(state.clock.now()) {
        return Err(flow_gone(state, &flow).into());
    }
    let mut body = flow_json(&flow, None, None);
    // A flow the OAuth2 provider started shows its login request, as the provider has it now.
    if let Some(challenge) = flow.data.oauth2_login_challenge.as_deref() {
        let lr = svc(state).hydra.login_request(&state.config, challenge).await?;
        if let Some(o) = body.as_object_mut() {
            o.insert("oauth2_login_request".into(), lr.raw);
        }
    }
    Ok(Ok(body))
}

/// 410 for an expired flow that is read (or that a provider sends the browser back to):
/// start a new one.
pub(super) fn flow_gone(state: &AppState, flow: &Flow) -> Error {
    let kind = flow.kind;
    let base = state.config.public_base_url();
    let name = kind.as_str();
    let api = flow.flow_type == FlowType::Api;
    let restart = if api {
        format!("{base}self-service/{name}/api")
    } else {
        let browser = format!("{base}self-service/{name}/browser");
        match &flow.return_to {
            Some(r) => ss::redirect::with_query(&browser, "return_to", r),
            None => browser,
        }
    };
    // Only login, registration and API recovery flows name the error.
    let named = matches!(
        (kind, flow.flow_type),
        (FlowKind::Login | FlowKind::Registration, _) | (FlowKind::Recovery, FlowType::Api)
    );
    Error::FlowGone { flow: flow_name(kind), api, named, restart, return_to: flow.return_to.clone() }
}

async fn login_fetch(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    fetch(state, req, FlowKind::Login).await
}

async fn registration_fetch(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    fetch(state, req, FlowKind::Registration).await
}

async fn recovery_fetch(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    fetch(state, req, FlowKind::Recovery).await
}

async fn verification_fetch(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    fetch(state, req, FlowKind::Verification).await
}

async fn settings_fetch(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    fetch(state, req, FlowKind::Settings).await
}

// --- submit --------------------------------------------------------------------------------

/// The submitted payload as JSON (`application/json`, or a form with dotted names).
pub(super) fn parse_body(req: &HttpRequest, body: &[u8]) -> Result<Submit, ApiError> {
    let ct =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    if ct.starts_with("application/json") {
        let v: Json = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Unable to decode JSON payload: {e}")))?;
        if !v.is_object() {
            return Err(ApiError::bad_request("The request body must be a JSON object."));
        }
        return Ok(Submit::new(v, false));
    }
    if ct.starts_with("application/x-www-form-urlencoded")
        || (ct.is_empty() && req.method() == actix_web::http::Method::GET)
    {
        let source = if req.method() == actix_web::http::Method::GET { req.query_string().as_bytes() } else { body };
        let v = form::decode_form(source).map_err(ApiError::bad_request)?;
        return Ok(Submit::new(v, true));
    }
    if ct.is_empty() && body.is_empty() {
        return Ok(Submit::new(json!({}), false));
    }
    Err(ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).with_reason(format!(
        "The content type \"{ct}\" is not supported; use application/json or application/x-www-form-urlencoded."
    )))
}

/// Reads a submit body of at most `limit` bytes; a longer one is 413 after at most `limit`
/// bytes were read (at once when `Content-Length` says so).
pub(super) async fn read_bounded(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            .with_reason(format!("The request body is larger than {limit} bytes (security.input_limits.submit_body)."))
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("Unable to read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What a submit may carry besides its size (`security.input_limits`): the number of fields,
/// the identifier's length and the traits' size.
pub(super) fn check_bounds(state: &AppState, submit: &Submit) -> Result<(), ApiError> {
    let limits = &state.config.security.input_limits;
    let fields = count_keys(&submit.body);
    if fields > limits.fields {
        return Err(ApiError::bad_request(format!(
            "The request has {fields} fields; at most {} are accepted (security.input_limits.fields).",
            limits.fields
        )));
    }
    if let Some(identifier) = submit.body.get("identifier").and_then(Json::as_str)
        && identifier.chars().count() > limits.identifier
    {
        return Err(ApiError::bad_request(format!(
            "The identifier is longer than {} characters (security.input_limits.identifier).",
            limits.identifier
        )));
    }
    if let Some(traits) = submit.body.get("traits")
        && serde_json::to_vec(traits).map_or(0, |v| v.len()) as u64 > limits.traits.0
    {
        return Err(ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).with_reason(format!(
            "The traits are larger than {} bytes (security.input_limits.traits).",
            limits.traits.0
        )));
    }
    Ok(())
}

/// Keys of every object in `v`, nested ones included.
fn count_keys(v: &Json) -> usize {
    match v {
        Json::Object(o) => o.len() + o.values().map(count_keys).sum::<usize>(),
        Json::Array(a) => a.iter().map(count_keys).sum(),
        _ => 0,
    }
}

async fn submit(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload, kind: FlowKind) -> HttpResponse {
    let pairs = query_pairs(&req);
    let Some(id) = first(&pairs, "flow").and_then(|v| Uuid::parse_str(v).ok()) else {
        let e = ApiError::bad_request("The flow query parameter is missing or malformed.");
        return respond(&state, &req, false, e).await;
    };
    // The flow first: a body for a flow that does not exist is never read.
    match svc(&state).flows.exists(kind, id).await {
        Ok(true) => {}
        Ok(false) => return respond(&state, &req, false, flow_error(FlowError::NotFound)).await,
        Err(e) => return respond(&state, &req, false, flow_error(e)).await,
    }
    let limit = usize::try_from(state.config.security.input_limits.submit_body.0).unwrap_or(usize::MAX);
    let body = match read_bounded(&req, payload, limit).await {
        Ok(b) => b,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    let submit = match parse_body(&req, &body).and_then(|s| check_bounds(&state, &s).map(|()| s)) {
        Ok(b) => b,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    if let Some(tp) = submit.body.get("transient_payload")
        && !tp.is_object()
    {
        return respond(&state, &req, false, ApiError::bad_request("transient_payload must be a JSON object")).await;
    }
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return respond(&state, &req, false, e).await,
    };
    run_step(&state, &req, info, kind, id, submit, false).await
}

/// Runs `submit` on the flow `id` inside its actor (one step at a time per flow) and renders
/// the outcome. `in_browser`: the answer goes to a browser even for an API flow (a provider's
/// callback in the system browser of a native app), so errors are not API JSON.
pub(super) async fn run_step(
    state: &AppState,
    req: &HttpRequest,
    info: RequestInfo,
    kind: FlowKind,
    id: Uuid,
    submit: Submit,
    in_browser: bool,
) -> HttpResponse {
    let service = svc(state).clone();
    let step_info = info.clone();
    let result = svc(state)
        .flows
        .apply(
            kind,
            id,
            Box::new(move |flow| {
                let api = flow.flow_type == FlowType::Api && !in_browser;
                Box::pin(async move {
                    let (flow, outcome) = dispatch::submit(service, kind, flow, submit, step_info).await;
                    (flow, (outcome, api))
                })
            }),
        )
        .await;
    match result {
        Ok((outcome, api)) => render_outcome(state, req, &info, kind, outcome, api).await,
        Err(e) => respond(state, req, false, flow_error(e)).await,
    }
}

async fn login_submit(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    submit(state, req, body, FlowKind::Login).await
}

async fn registration_submit(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    submit(state, req, body, FlowKind::Registration).await
}

async fn recovery_submit(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    submit(state, req, body, FlowKind::Recovery).await
}

async fn verification_submit(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    submit(state, req, body, FlowKind::Verification).await
}

fn has_error_message(flow: &Flow) -> bool {
    use crate::catalogue::TextType;
    flow.ui
        .messages
        .iter()
        .chain(flow.ui.nodes.iter().flat_map(|n| n.messages.iter()))
        .any(|m| m.kind == TextType::Error)
}

pub(super) async fn render_outcome(
    state: &AppState,
    req: &HttpRequest,
    info: &RequestInfo,
    kind: FlowKind,
    outcome: Outcome,
    api: bool,
) -> HttpResponse {
    match outcome {
        Outcome::Form { flow, mut transient_payload } => {
            // Kratos answers validation errors with the flow as stored, without the payload.
            if has_error_message(&flow) {
                transient_payload = None;
            }
            // A provider sign-in may have switched to a flow of the other kind.
            let kind = flow.kind;
            if flow.flow_type == FlowType::Browser && !info.is_json {
                // Registration sends validation errors back with 302, steps with 303.
                let redirect = if kind == FlowKind::Registration && has_error_message(&flow) {
                    StatusCode::FOUND
                } else {
                    StatusCode::SEE_OTHER
                };
                return ui_redirect(svc(state).ui_url(kind), flow.id, redirect);
            }
            json_response(StatusCode::BAD_REQUEST, &flow_json(&flow, transient_payload.as_ref(), None))
        }
        Outcome::Redirect(to) => HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish(),
        Outcome::SignedIn(to) => HttpResponse::Found().insert_header((header::LOCATION, to)).finish(),
        Outcome::Expired { new_flow, error } => {
            use actix_web::ResponseError;
            let mut res = if new_flow.flow_type == FlowType::Api || info.is_json {
                ApiError::from(error).error_response()
            } else {
                ui_redirect(svc(state).ui_url(kind), new_flow.id, StatusCode::SEE_OTHER)
            };
            // A replacement browser flow minted a CSRF token the browser does not have yet.
            if new_flow.flow_type == FlowType::Browser
                && info.csrf_cookie.as_deref() != Some(new_flow.csrf_token.as_str())
            {
                let _ = res.add_cookie(&csrf_cookie(&state.config, &new_flow.csrf_token));
            }
            res
        }
        Outcome::Error(e) => respond(state, req, api, e).await,
        Outcome::Done(done) => render_done(state, info, *done),
        Outcome::ErrorOrRedirect { error, redirect } => {
            if !api && !info.is_json && info.is_browser {
                HttpResponse::SeeOther().insert_header((header::LOCATION, redirect)).finish()
            } else {
                respond(state, req, api, error).await
            }
        }
        Outcome::Show { flow, ok, to_ui, transient_payload } => {
            if to_ui {
                ui_redirect(svc(state).ui_url(kind), flow.id, StatusCode::SEE_OTHER)
            } else {
                let status = if ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
                json_response(status, &flow_json(&flow, transient_payload.as_ref(), None))
            }
        }
        Outcome::WithContinuity { value, inner } => {
            let mut res = Box::pin(render_outcome(state, req, info, kind, *inner, api)).await;
            let _ = res.add_cookie(&continuity_cookie(&state.config, value));
            res
        }
        Outcome::Switch(_) => {
            respond(state, req, api, Error::internal(&"a flow switch reached the HTTP layer unresolved")).await
        }
        Outcome::WithCookies { csrf: new_csrf, session, inner } => {
            let mut res = Box::pin(render_outcome(state, req, info, kind, *inner, api)).await;
            if let Some(token) = new_csrf {
                let _ = res.add_cookie(&csrf_cookie(&state.config, &token));
            }
            if let Some(s) = session
                && let Some(c) = session_cookie(state, &s.1, s.0.expires_at)
            {
                let _ = res.add_cookie(&c);
            }
            res
        }
    }
}

fn render_done(state: &AppState, info: &RequestInfo, done: Done) -> HttpResponse {
    let now = state.clock.now();
    let schema_url = state.identities.schema_url_of(&done.identity);
    let identity_json = crate::identity::view::render(
        &done.identity,
        &schema_url,
        crate::identity::view::CredentialsView::Hidden,
        crate::identity::view::AdminMetadata::Hidden,
    );
    let api = done.flow.flow_type == FlowType::Api;
    let continue_with =
        if done.continue_with.is_empty() { Json::Null } else { Json::Array(done.continue_with.clone()) };
    let session_json = done.session.as_ref().map(|(s, _)| {
        let aal_ok = aal_satisfied(state, s, &done.identity);
        let shown = (api && !aal_ok).then_some(()).map_or(Some((&done.identity, schema_url.as_str())), |_| None);
        (render_session(s, shown, true, now), aal_ok)
    });
    let mut res = match done.flow.kind {
        FlowKind::Recovery | FlowKind::Verification | FlowKind::Settings => {
            return ApiError::from(Error::internal(&"flow finished without a session step")).error_response_owned();
        }
        FlowKind::Login => {
            let Some((session, aal_ok)) = session_json else {
                return ApiError::from(Error::internal(&"login finished without a session")).error_response_owned();
            };
            if api {
                let token = done.session.as_ref().map(|(_, t)| t.clone()).unwrap_or_default();
                json_response(
                    StatusCode::OK,
                    &json!({"session_token": token, "session": session, "continue_with": continue_with}),
                )
            } else if !aal_ok {
                let mut to = ss::redirect::aal2_login_url(
                    &state.config,
                    ss::redirect::return_to_of(&done.flow.request_url).as_deref(),
                );
                // The OAuth2 provider's login request is accepted after the second factor.
                if let Some(c) = &done.flow.data.oauth2_login_challenge {
                    to = ss::redirect::with_query(&to, "login_challenge", c);
                }
                if info.is_json {
                    ApiError::from(Error::LocationChangeRequired { to }).error_response_owned()
                } else {
                    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
                }
            } else if info.is_json {
                json_response(StatusCode::OK, &json!({"session": session, "continue_with": continue_with}))
            } else {
                HttpResponse::SeeOther().insert_header((header::LOCATION, done.redirect.clone())).finish()
            }
        }
        FlowKind::Registration => {
            if api || info.is_json {
                let mut body = serde_json::Map::new();
                if done.expose_session
                    && let Some((session, _)) = &session_json
                {
                    if api {
                        let token = done.session.as_ref().map(|(_, t)| t.clone()).unwrap_or_default();
                        body.insert("session_token".into(), json!(token));
                    }
                    body.insert("session".into(), session.clone());
                }
                body.insert("identity".into(), identity_json);
                body.insert("continue_with".into(), continue_with);
                json_response(StatusCode::OK, &Json::Object(body))
            } else {
                HttpResponse::SeeOther().insert_header((header::LOCATION, done.redirect.clone())).finish()
            }
        }
    };
    if done.set_cookie
        && let Some((session, token)) = &done.session
    {
        if let Some(c) = session_cookie(state, token, session.expires_at) {
            let _ = res.add_cookie(&c);
        }
        // A new sign-in (no session before, or another identity's) gets a new CSRF token.
        if done.new_csrf.is_none() && info.session.as_ref().is_none_or(|l| l.session.identity_id != done.identity.id) {
            let _ = res.add_cookie(&csrf_cookie(&state.config, &csrf::new_token()));
        }
    }
    if let Some(token) = &done.new_csrf {
        let _ = res.add_cookie(&csrf_cookie(&state.config, token));
    }
    res
}

fn aal_satisfied(state: &AppState, session: &crate::session::Session, identity: &crate::identity::Identity) -> bool {
    login::aal_satisfied(&state.config, session, identity)
}

trait OwnedErrorResponse {
    fn error_response_owned(self) -> HttpResponse;
}

impl OwnedErrorResponse for ApiError {
    fn error_response_owned(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

// --- errors --------------------------------------------------------------------------------

async fn read_error(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let id = first(&pairs, "id").or_else(|| first(&pairs, "error")).unwrap_or_default().to_string();
    let body = ss::errors::read(svc(&state), &id).await?;
    Ok(json_response(StatusCode::OK, &body))
}
