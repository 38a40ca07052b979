//! The bundled self-service UI (`[ui]`): `/ui/{login,registration,settings,recovery,
//! verification}` render a flow's nodes as a plain HTML form (posting to the flow's
//! `ui.action`, so everything but WebAuthn works without JavaScript), `/ui/error` shows a
//! stored error, `/ui/welcome` the signed-in identity. A client of the flows like any other:
//! no page knows a method.

use super::error::ApiError;
use super::request::request_info;
use super::selfservice::{flow_for_client, svc};
use super::state::{AppState, query_first as first, query_pairs};
use crate::selfservice::flow::FlowKind;
use crate::selfservice::redirect::with_query;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::Environment;
use serde::Serialize;
use serde_json::Value as Json;
use std::sync::OnceLock;
use uuid::Uuid;

const PAGE: &str = include_str!("ui/page.html");
const STYLE: &str = include_str!("ui/style.css");

pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ui/style.css").get(style))
        .service(web::resource("/ui/welcome").get(welcome))
        .service(web::resource("/ui/error").get(error_page))
        .service(web::resource("/ui/sessions").get(sessions_page))
        .service(web::resource("/ui/sessions/{id}/revoke").post(revoke_session))
        .service(web::resource("/ui/{flow}").get(flow_page));
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // A template error is a bug caught by the tests; the page then says so (500).
        let _ = env.add_template("page.html", PAGE);
        env
    })
}

fn off(state: &AppState) -> Option<HttpResponse> {
    (!state.config.ui.on()).then(|| status(StatusCode::NOT_FOUND))
}

async fn style(state: web::Data<AppState>) -> HttpResponse {
    if let Some(res) = off(&state) {
        return res;
    }
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(STYLE)
}

#[derive(Serialize)]
struct Link {
    href: String,
    text: &'static str,
}

#[derive(Serialize, Default)]
struct Page {
    title: String,
    messages: Vec<Json>,
    forms: Vec<Form>,
    body: Option<String>,
    links: Vec<Link>,
    sessions: Vec<SessionView>,
    csrf: String,
    /// Some node asks for a script call once the page loaded (passkey autofill).
    onload: bool,
}

#[derive(Serialize, Default)]
struct SessionView {
    device: String,
    place: String,
    seen: String,
    current: bool,
    revoke: String,
}

#[derive(Serialize)]
struct Form {
    action: String,
    method: String,
    groups: Vec<Group>,
}

#[derive(Serialize, Clone)]
struct Group {
    name: String,
    legend: &'static str,
    nodes: Vec<Json>,
    /// Whether anything in it is seen (hidden inputs and scripts alone need no fieldset).
    visible: bool,
}

fn render(page: &Page) -> HttpResponse {
    let html = templates().get_template("page.html").and_then(|t| t.render(minijinja::value::Serde(page)));
    match html {
        Ok(html) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html),
        Err(e) => {
            tracing::error!(error = %e, "ui: the page template failed");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// An error in the JSON envelope.
fn status(code: StatusCode) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::for_status(code))
}

fn see_other(to: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

fn kind_of(name: &str) -> Option<(FlowKind, &'static str)> {
    Some(match name {
        "login" => (FlowKind::Login, "Sign in"),
        "registration" => (FlowKind::Registration, "Sign up"),
        "settings" => (FlowKind::Settings, "Account settings"),
        "recovery" => (FlowKind::Recovery, "Recover your account"),
        "verification" => (FlowKind::Verification, "Verify your account"),
        _ => return None,
    })
}

fn legend(group: &str) -> &'static str {
    match group {
        "default" => "Account",
        "password" => "Password",
        "oidc" => "Sign in with a provider",
        "profile" => "Profile",
        "link" | "code" => "One-time code",
        "totp" => "Authenticator app",
        "lookup_secret" => "Backup codes",
        "webauthn" => "Security key",
        "passkey" => "Passkey",
        "identifier_first" => "Account",
        _ => "More",
    }
}

/// An attribute as text for the page ("" when absent, never "none").
fn shown(v: Option<&Json>) -> Json {
    match v {
        Some(Json::String(s)) => Json::String(s.clone()),
        Some(Json::Null) | None => Json::String(String::new()),
        Some(other) => Json::String(other.to_string()),
    }
}

/// A node as the template renders it.
fn node_view(node: &Json) -> Json {
    let a = &node["attributes"];
    let text = |k: &str| a.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
    let label = node.pointer("/meta/label/text").and_then(Json::as_str).map(str::to_string);
    let messages = node["messages"].clone();
    let mut v = serde_json::json!({"messages": messages, "label": label.clone().unwrap_or_default()});
    match node["type"].as_str().unwrap_or_default() {
        "input" => {
            let kind = text("type");
            v["name"] = a["name"].clone();
            v["value"] = shown(a.get("value"));
            v["disabled"] = a.get("disabled").cloned().unwrap_or(Json::Bool(false));
            // WebAuthn and passkeys: the helper script's functions, by name.
            v["trigger"] = a.get("onclickTrigger").cloned().unwrap_or_default();
            v["onload"] = a.get("onloadTrigger").cloned().unwrap_or_default();
            match kind.as_str() {
                "hidden" => v["kind"] = "hidden".into(),
                "submit" | "button" => {
                    v["kind"] = "button".into();
                    if label.is_none() {
                        v["label"] = v["value"].clone();
                    }
                }
                "checkbox" => {
                    v["kind"] = "checkbox".into();
                    v["checked"] = Json::Bool(a.get("value") == Some(&Json::Bool(true)));
                    v["required"] = a.get("required").cloned().unwrap_or(Json::Bool(false));
                    if label.is_none() {
                        v["label"] = a["name"].clone();
                    }
                }
                _ => {
                    v["kind"] = "input".into();
                    v["type"] = kind.clone().into();
                    v["required"] = a.get("required").cloned().unwrap_or(Json::Bool(false));
                    v["autocomplete"] = a.get("autocomplete").cloned().unwrap_or_default();
                    v["pattern"] = a.get("pattern").cloned().unwrap_or_default();
                    v["maxlength"] = a.get("maxlength").cloned().unwrap_or_default();
                    if label.is_none() {
                        v["label"] = a["name"].clone();
                    }
                }
            }
        }
        "img" => {
            v["kind"] = "img".into();
            for k in ["id", "src", "width", "height"] {
                v[k] = shown(a.get(k));
            }
        }
        "text" => {
            v["kind"] = "text".into();
            v["id"] = shown(a.get("id"));
            v["text"] = shown(a.pointer("/text/text"));
            v["text_id"] = shown(a.pointer("/text/id"));
            v["secrets"] = a.pointer("/text/context/secrets").cloned().unwrap_or(Json::Array(Vec::new()));
        }
        "a" => {
            v["kind"] = "a".into();
            v["id"] = shown(a.get("id"));
            v["href"] = shown(a.get("href"));
            v["label"] = shown(a.pointer("/title/text"));
        }
        "script" => {
            v["kind"] = "script".into();
            for k in ["id", "src", "integrity", "crossorigin", "referrerpolicy", "nonce"] {
                v[k] = shown(a.get(k));
            }
            v["async"] = Json::Bool(a.get("async") == Some(&Json::Bool(true)));
        }
        _ => v["kind"] = "unknown".into(),
    }
    v
}

/// The flow's nodes in fieldsets, one per group in the order the groups first appear.
fn groups_of(flow: &Json) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for node in flow.pointer("/ui/nodes").and_then(Json::as_array).into_iter().flatten() {
        let name = node["group"].as_str().unwrap_or("default").to_string();
        let view = node_view(node);
        let seen = !matches!(view["kind"].as_str(), Some("hidden" | "script"));
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => {
                g.visible |= seen;
                g.nodes.push(view);
            }
            None => groups.push(Group { legend: legend(&name), name, nodes: vec![view], visible: seen }),
        }
    }
    groups
}

/// A browser checks every required field of a form before any submit button sends it. Only a
/// group's `method` button whose form requires nothing beyond its own group and the shared
/// fields keeps that check; every other button (a provider, "resend", a backup code next to a
/// TOTP field) sends the form as it is. The server validates what it is sent either way.
fn check_only_own_fields(groups: &mut [Group]) {
    let required = |g: &Group| g.nodes.iter().any(|n| n["required"] == Json::Bool(true));
    let asking: Vec<String> = groups.iter().filter(|g| required(g)).map(|g| g.name.clone()).collect();
    for g in groups.iter_mut() {
        let own = required(g) && asking.iter().all(|name| name == &g.name || name == "default");
        for n in g.nodes.iter_mut().filter(|n| n["kind"] == "button") {
            n["novalidate"] = Json::Bool(!(own && n["name"] == "method"));
        }
    }
}

/// The flow's UI as forms posting to its action: one form, except in settings, where each
/// group is saved on its own (with the shared hidden fields such as the CSRF token), so a
/// field another section requires does not stop a section from being saved.
fn forms_of(flow: &Json, separate: bool) -> Vec<Form> {
    let action = flow.pointer("/ui/action").and_then(Json::as_str).unwrap_or_default().to_string();
    let method = flow.pointer("/ui/method").and_then(Json::as_str).unwrap_or("POST").to_string();
    let form = |mut groups: Vec<Group>| {
        check_only_own_fields(&mut groups);
        Form { action: action.clone(), method: method.clone(), groups }
    };
    let groups = groups_of(flow);
    if !separate {
        return vec![form(groups)];
    }
    let (shared, own): (Vec<Group>, Vec<Group>) = groups.into_iter().partition(|g| g.name == "default");
    if own.is_empty() {
        return vec![form(shared)];
    }
    own.into_iter()
        .map(|g| {
            let mut groups = shared.clone();
            groups.push(g);
            form(groups)
        })
        .collect()
}

fn links_for(base: &str, name: &str) -> Vec<Link> {
    let to = |page: &str, text: &'static str| Link { href: format!("{base}ui/{page}"), text };
    match name {
        "login" => vec![to("registration", "Create an account"), to("recovery", "Forgot your password?")],
        "registration" => vec![to("login", "Already have an account? Sign in")],
        "recovery" | "verification" => vec![to("login", "Back to sign in")],
        _ => vec![to("welcome", "Home")],
    }
}

/// `GET /ui/{flow}`: without `?flow=` the browser starts a flow (which comes back here);
/// with one, the flow's form. A flow that cannot be shown any more starts over.
async fn flow_page(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Some(res) = off(&state) {
        return res;
    }
    let name = path.into_inner();
    let Some((kind, title)) = kind_of(&name) else {
        return status(StatusCode::NOT_FOUND);
    };
    let pairs = query_pairs(&req);
    let base = state.config.public_base_url();
    // A new flow gets what the page was opened with (`return_to`, `aal`, `refresh`,
    // `login_challenge`, …), as the browser endpoint takes it.
    let start = pairs
        .iter()
        .filter(|(k, _)| k != "flow")
        .fold(format!("{base}self-service/{name}/browser"), |url, (k, v)| with_query(&url, k, v));
    let Some(id) = first(&pairs, "flow").and_then(|v| Uuid::parse_str(v).ok()) else {
        return see_other(start);
    };
    let flow = match flow_for_client(&state, &req, kind, id).await {
        Ok(Ok(flow)) => flow,
        Ok(Err(redirect)) => return redirect,
        // A flow that is gone starts over; anything else (another browser's flow, a flow this
        // session may not use) is shown, so a browser without cookies does not loop.
        Err(e) if matches!(e.status, StatusCode::NOT_FOUND | StatusCode::GONE) => return see_other(start),
        Err(e) => return super::error::respond(&state, &req, false, e).await,
    };
    let forms = forms_of(&flow, kind == FlowKind::Settings);
    let onload = forms
        .iter()
        .flat_map(|f| f.groups.iter().flat_map(|g| g.nodes.iter()))
        .any(|n| n["onload"].as_str().is_some_and(|s| !s.is_empty()));
    let page = Page {
        onload,
        title: title.to_string(),
        messages: flow.pointer("/ui/messages").and_then(Json::as_array).cloned().unwrap_or_default(),
        forms,
        links: links_for(&base, &name),
        ..Page::default()
    };
    render(&page)
}

/// `GET /ui/error?id=`: a stored error.
async fn error_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(res) = off(&state) {
        return res;
    }
    let pairs = query_pairs(&req);
    let id = first(&pairs, "id").unwrap_or_default().to_string();
    let base = state.config.public_base_url();
    let (title, body) = match crate::selfservice::errors::read(svc(&state), &id).await {
        Ok(e) => {
            let error = &e["error"];
            let text = |k: &str| error.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
            let mut body = text("message");
            let reason = text("reason");
            if !reason.is_empty() {
                body = format!("{body} {reason}");
            }
            (format!("Something went wrong ({})", error.get("code").and_then(Json::as_u64).unwrap_or(500)), body)
        }
        Err(_) => ("Something went wrong".to_string(), "This error is not known (any more).".to_string()),
    };
    let links = vec![Link { href: format!("{base}ui/welcome"), text: "Home" }];
    render(&Page { title, body: Some(body), links, ..Page::default() })
}

/// `GET /ui/welcome`: who is signed in, with links to the settings and out; else links to
/// sign in and up.
async fn welcome(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(res) = off(&state) {
        return res;
    }
    let base = state.config.public_base_url();
    let info = request_info(&state, &req).await.ok();
    let signed_in = info.as_ref().and_then(|i| i.session.clone().zip(i.session_token.clone()));
    let Some((live, token)) = signed_in else {
        let links = vec![
            Link { href: format!("{base}ui/login"), text: "Sign in" },
            Link { href: format!("{base}ui/registration"), text: "Sign up" },
        ];
        return render(&Page {
            title: "Welcome".into(),
            body: Some("You are not signed in.".into()),
            links,
            ..Page::default()
        });
    };
    let traits = &live.shared.identity.traits;
    let shown = traits
        .get("email")
        .and_then(Json::as_str)
        .map(str::to_string)
        .or_else(|| traits.as_object().and_then(|o| o.values().find_map(Json::as_str)).map(str::to_string))
        .unwrap_or_else(|| live.shared.identity.id.to_string());
    let logout = with_query(&format!("{base}self-service/logout"), "token", &crate::session::logout_token_for(&token));
    let links = vec![
        Link { href: format!("{base}ui/settings"), text: "Account settings" },
        Link { href: format!("{base}ui/sessions"), text: "Your sessions" },
        Link { href: logout, text: "Sign out" },
    ];
    render(&Page {
        title: "Welcome".into(),
        body: Some(format!("You are signed in as {shown}.")),
        links,
        ..Page::default()
    })
}

/// `GET /ui/sessions`: the signed-in identity's active sessions (device, place, when), each
/// other one with a button that signs it out.
async fn sessions_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(res) = off(&state) {
        return res;
    }
    let base = state.config.public_base_url();
    let Some(live) = request_info(&state, &req).await.ok().and_then(|i| i.session) else {
        return see_other(format!("{base}ui/login"));
    };
    let listed = state.sessions.list_of_identity(live.shared.identity.id, Some(true), None, 0, 100).await;
    let Ok((sessions, _)) = listed else { return status(StatusCode::SERVICE_UNAVAILABLE) };
    let views = sessions
        .iter()
        .map(|s| {
            let device = s.devices.last();
            let text = |v: Option<&String>| v.filter(|t| !t.is_empty()).cloned();
            SessionView {
                device: device.and_then(|d| text(d.user_agent.as_ref())).unwrap_or_else(|| "Unknown device".into()),
                place: [
                    device.and_then(|d| text(d.location.as_ref())),
                    device.and_then(|d| text(d.ip_address.as_ref())),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
                seen: s.authenticated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                current: s.id == live.session.id,
                revoke: format!("{base}ui/sessions/{}/revoke", s.id),
            }
        })
        .collect();
    let (real, new_cookie) = super::cookies::csrf_token(&state, &req);
    let mut res = render(&Page {
        title: "Your sessions".into(),
        sessions: views,
        csrf: crate::selfservice::csrf::mask(&real),
        links: vec![Link { href: format!("{base}ui/welcome"), text: "Home" }],
        ..Page::default()
    });
    if new_cookie {
        let _ = res.add_cookie(&super::cookies::csrf_cookie(&state.config, &real));
    }
    res
}

/// `POST /ui/sessions/{id}/revoke` (a form with the CSRF token): signs another session of the
/// same identity out, then back to the list.
async fn revoke_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(res) = off(&state) {
        return res;
    }
    let base = state.config.public_base_url();
    let info = match request_info(&state, &req).await {
        Ok(i) => i,
        Err(e) => return super::error::respond(&state, &req, false, e).await,
    };
    let Some(live) = info.session.clone() else { return see_other(format!("{base}ui/login")) };
    let sent = url::form_urlencoded::parse(&body).find(|(k, _)| k == "csrf_token").map(|(_, v)| v.into_owned());
    let sent = sent.unwrap_or_default();
    if let Err(e) = crate::selfservice::step::check_form_csrf(&info, &sent) {
        return super::error::respond(&state, &req, false, e).await;
    }
    if let Ok(id) = Uuid::parse_str(&id)
        && id != live.session.id
        && let Ok(Some(s)) = state.sessions.find(id).await
        && s.identity_id == live.shared.identity.id
        && let Err(e) = state.sessions.revoke(s).await
    {
        return super::error::respond(&state, &req, false, e).await;
    }
    see_other(format!("{base}ui/sessions"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(group: &str, name: &str, kind: &str, required: bool) -> Json {
        json!({"type": "input", "group": group, "messages": [], "meta": {},
               "attributes": {"name": name, "type": kind, "required": required, "value": ""}})
    }

    fn flow() -> Json {
        json!({"ui": {"action": "https://id.example/self-service/settings?flow=1", "method": "POST", "nodes": [
            input("default", "csrf_token", "hidden", true),
            input("profile", "traits.email", "email", true),
            input("profile", "method", "submit", false),
            input("password", "password", "password", true),
            input("password", "method", "submit", false),
            input("oidc", "link", "submit", false),
        ]}})
    }

    #[test]
    fn settings_saves_each_section_on_its_own_with_the_shared_fields() {
        let forms = forms_of(&flow(), true);
        let names: Vec<Vec<&str>> = forms.iter().map(|f| f.groups.iter().map(|g| g.name.as_str()).collect()).collect();
        assert_eq!(names, vec![vec!["default", "profile"], vec!["default", "password"], vec!["default", "oidc"]]);
        assert!(forms.iter().all(|f| f.action.ends_with("settings?flow=1")));
        // Only hidden fields: no fieldset.
        assert!(!forms[0].groups[0].visible && forms[0].groups[1].visible);
    }

    fn novalidate(forms: &[Form], group: &str) -> Json {
        let g = forms[0].groups.iter().find(|g| g.name == group).unwrap();
        g.nodes.iter().find(|n| n["kind"] == "button").unwrap()["novalidate"].clone()
    }

    #[test]
    fn a_method_button_keeps_the_browser_check_only_when_the_form_asks_nothing_else() {
        let login = json!({"ui": {"action": "https://id.example/self-service/login?flow=1", "method": "POST", "nodes": [
            input("default", "csrf_token", "hidden", true),
            input("default", "identifier", "text", true),
            input("password", "password", "password", true),
            input("password", "method", "submit", false),
            input("oidc", "provider", "submit", false),
        ]}});
        let forms = forms_of(&login, false);
        assert_eq!(forms.len(), 1);
        assert_eq!(novalidate(&forms, "password"), json!(false), "identifier and password are checked");
        assert_eq!(novalidate(&forms, "oidc"), json!(true), "a provider needs no password typed");
        // Two groups that each require a field (TOTP and backup codes, or profile and
        // password in one form): neither button may wait for the other's field.
        let forms = forms_of(&flow(), false);
        assert_eq!(novalidate(&forms, "profile"), json!(true));
        assert_eq!(novalidate(&forms, "password"), json!(true));
        // Separate forms (settings): each section checks its own fields.
        let forms = forms_of(&flow(), true);
        assert_eq!(novalidate(&forms[1..], "password"), json!(false));
    }
}
