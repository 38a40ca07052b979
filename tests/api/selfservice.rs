//! Self-service login, registration, logout and errors over HTTP, for native (API), browser
//! (HTML forms with a cookie jar) and SPA (browser flows driven with JSON) clients.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const PASSWORD: &str = "correct-horse-battery-9";

/// A minimal browser: keeps cookies, never follows redirects.
#[derive(Default, Clone)]
pub struct Jar {
    pub cookies: BTreeMap<String, String>,
}

impl Jar {
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let first = v.split(';').next().unwrap_or_default();
            let Some((name, value)) = first.split_once('=') else { continue };
            let expired = v.to_ascii_lowercase().contains("max-age=-") || v.to_ascii_lowercase().contains("max-age=0");
            if expired || value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    pub fn header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.cookies.keys().any(|k| k.starts_with(prefix))
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Response {
        let req = if self.cookies.is_empty() { req } else { req.header("Cookie", self.header()) };
        let res = req.send().await.unwrap();
        self.absorb(res.headers());
        res
    }
}

/// GETs `url` (with the jar's cookies, if any) and parses the JSON answer.
pub async fn get_json(client: &reqwest::Client, url: impl AsRef<str>, jar: Option<&Jar>) -> Value {
    let mut req = client.get(url.as_ref());
    if let Some(jar) = jar {
        req = req.header("Cookie", jar.header());
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// Opens a browser flow of `kind` in `jar` (HTML client) and fetches it; returns its id and JSON.
pub async fn open_browser_flow(client: &reqwest::Client, jar: &mut Jar, public: &str, kind: &str) -> (String, Value) {
    let res = jar.send(client.get(format!("{public}/self-service/{kind}/browser"))).await;
    let id = flow_id_of(&location(&res));
    let flow = get_json(client, format!("{public}/self-service/{kind}/flows?id={id}"), Some(jar)).await;
    (id, flow)
}

pub fn location(res: &Response) -> String {
    res.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

pub fn flow_id_of(url: &str) -> String {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "flow").unwrap().1.into_owned()
}

pub fn node<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"].as_array().unwrap().iter().find(|n| n["attributes"]["name"] == name)
}

pub fn node_names(flow: &Value) -> Vec<String> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["attributes"]["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn message_ids(flow: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = flow["ui"]["messages"]
        .as_array()
        .map(|a| a.iter().map(|m| m["id"].as_u64().unwrap()).collect())
        .unwrap_or_default();
    for n in flow["ui"]["nodes"].as_array().unwrap() {
        ids.extend(n["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()));
    }
    ids
}

pub fn csrf_of(flow: &Value) -> String {
    node(flow, "csrf_token").unwrap()["attributes"]["value"].as_str().unwrap().to_string()
}

pub async fn json_of(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Creates an API flow.
pub async fn api_flow(t: &TestApp, kind: &str, query: &str) -> Value {
    let res = t.get(&format!("{}/self-service/{kind}/api{query}", t.public)).await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Submits JSON to an API flow.
pub async fn api_submit(t: &TestApp, kind: &str, flow: &Value, body: Value) -> (u16, Value) {
    let res = t
        .http
        .post(format!("{}/self-service/{kind}?flow={}", t.public, flow["id"].as_str().unwrap()))
        // As the SDK does.
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    json_of(res).await
}

/// Registers over the API in one submit; returns the response body.
pub async fn api_register(t: &TestApp, email: &str) -> Value {
    let flow = api_flow(t, "registration", "").await;
    let (status, body) = api_submit(
        t,
        "registration",
        &flow,
        json!({"method": "password", "traits": {"email": email}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Logs in over the API; returns the session token.
pub async fn api_login(t: &TestApp, identifier: &str, password: &str) -> (u16, Value) {
    let flow = api_flow(t, "login", "").await;
    api_submit(t, "login", &flow, json!({"method": "password", "identifier": identifier, "password": password})).await
}

fn with_session_hook(cfg: &mut tessera::config::Config) {
    cfg.selfservice.flows.registration.after.password.hooks =
        vec![tessera::config::HookConfig { hook: "session".into(), config: None }];
}

async fn api_flows_sign_up_and_in(db: Db) {
    let t = TestApp::builder(db).config(with_session_hook).build().await;
    // The API registration form: two-step by default (traits, then credentials).
    let flow = api_flow(&t, "registration", "").await;
    assert_eq!(flow["type"], "api");
    assert_eq!(flow["state"], "choose_method");
    assert!(flow["organization_id"].is_null() && flow.get("refresh").is_none());
    assert_eq!(node_names(&flow), ["csrf_token", "traits.email", "traits.name.first", "traits.name.last", "method"]);
    assert_eq!(node(&flow, "method").unwrap()["group"], "profile");
    assert_eq!(node(&flow, "traits.email").unwrap()["meta"]["label"]["id"], 1070002);
    assert_eq!(csrf_of(&flow), "", "API flows carry an empty CSRF node");
    let action = flow["ui"]["action"].as_str().unwrap();
    assert_eq!(action, format!("{}/self-service/registration?flow={}", t.public, flow["id"].as_str().unwrap()));

    // Step one: traits; the credential step answers 400 with the flow.
    let (status, step) =
        api_submit(&t, "registration", &flow, json!({"method": "profile", "traits": {"email": "Api@Example.org"}}))
            .await;
    assert_eq!(status, 400, "{step}");
    assert_eq!(message_ids(&step), [1040009]);
    assert_eq!(node(&step, "traits.email").unwrap()["attributes"]["type"], "hidden");
    assert_eq!(node(&step, "traits.email").unwrap()["attributes"]["value"], "Api@Example.org");
    assert!(node(&step, "password").is_some() && node(&step, "screen").is_some());
    // Step two: the password.
    let (status, done) =
        api_submit(&t, "registration", &flow, json!({"method": "password", "password": PASSWORD})).await;
    assert_eq!(status, 200, "{done}");
    let token = done["session_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ory_st_"));
    assert_eq!(done["identity"]["traits"]["email"], "Api@Example.org");
    assert!(done["identity"].get("credentials").is_none(), "credentials are never shown");
    assert_eq!(done["session"]["identity"]["id"], done["identity"]["id"]);
    assert_eq!(done["session"]["authentication_methods"][0]["method"], "password");
    assert_eq!(done["continue_with"][0]["action"], "set_ory_session_token");
    assert_eq!(done["continue_with"][0]["ory_session_token"], token);
    // The token works.
    let who =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(who.status(), 200);

    // Login: case-insensitive and trimmed identifier.
    let (status, body) = api_login(&t, "  API@example.ORG ", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session_token"].as_str().unwrap().starts_with("ory_st_"));
    assert!(body["continue_with"].is_null());
    assert_eq!(body["session"]["identity"]["traits"]["email"], "Api@Example.org");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal1");
    // The flow can be fetched after login, with `active` set.
    let login_flow = api_flow(&t, "login", "").await;
    assert_eq!(node_names(&login_flow), ["csrf_token", "identifier", "password", "method"]);
    let label = &node(&login_flow, "identifier").unwrap()["meta"]["label"];
    assert_eq!(label["id"], 1070002, "one identifier trait with a title names the input");
    assert_eq!(label["context"], json!({"name": "traits.email", "title": "E-Mail"}));
    assert_eq!(login_flow["requested_aal"], "aal1");
    assert_eq!(login_flow["refresh"], false);
    let fetched =
        t.get(&format!("{}/self-service/login/flows?id={}", t.public, login_flow["id"].as_str().unwrap())).await;
    assert_eq!(fetched.status(), 200);
}
both_backends!(api_flows_sign_up_and_in);

async fn api_validation_errors(db: Db) {
    let t = TestApp::new(db).await;
    api_register(&t, "taken@example.org").await;

    // Login: missing fields, wrong password, unknown identifier, no method.
    let flow = api_flow(&t, "login", "").await;
    let (status, body) = api_submit(&t, "login", &flow, json!({"method": "password", "identifier": ""})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&body), [4000002, 4000002]);
    assert_eq!(node(&body, "identifier").unwrap()["messages"][0]["context"]["property"], "identifier");
    for (identifier, password) in [("taken@example.org", "wrong-password-1"), ("nobody@example.org", PASSWORD)] {
        let (status, body) = api_submit(
            &t,
            "login",
            &flow,
            json!({"method": "password", "identifier": identifier, "password": password}),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(message_ids(&body), [4000006], "{body}");
        assert_eq!(node(&body, "identifier").unwrap()["attributes"]["value"], identifier);
        assert!(node(&body, "password").unwrap()["attributes"].get("value").is_none());
    }
    let (status, body) = api_submit(&t, "login", &flow, json!({"identifier": "x"})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4010002]));

    // API flows refuse browser signals.
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("Origin", "https://evil.example")
        .json(&json!({"method": "password", "identifier": "taken@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]));

    // A cookie on an API flow is refused too (Cloudflare's own cookies are not).
    let submit = format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap());
    let res =
        t.http.post(&submit).header("Cookie", "session=x").json(&json!({"method": "password"})).send().await.unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]));
    assert!(body["ui"]["messages"][0]["text"].as_str().unwrap().contains("\"Cookie\""));
    // Credentials never travel in a URL: GET submits of the password method are refused.
    let res = t.get(&format!("{submit}&method=password&identifier=taken@example.org&password={PASSWORD}")).await;
    let (status, body) = json_of(res).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]), "{body}");
    // Absurdly nested form names are refused before anything else happens.
    let deep = format!("{}=x", vec!["a"; 5000].join("."));
    let res = t
        .http
        .post(&submit)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(t.get(&format!("{}/health/alive", t.public)).await.status(), 200);

    // Registration: required trait, invalid e-mail, policy, duplicate, no identifier.
    let flow = api_flow(&t, "registration", "").await;
    let cases = [
        (json!({"method": "password", "traits": {}, "password": PASSWORD}), "traits.email", 4000002),
        (
            json!({"method": "password", "traits": {"email": "not-an-email"}, "password": PASSWORD}),
            "traits.email",
            4000040,
        ),
        (
            json!({"method": "password", "traits": {"email": "short@example.org"}, "password": "abc"}),
            "password",
            4000032,
        ),
        (
            json!({"method": "password", "traits": {"email": "similar@example.org"}, "password": "similar@example.org1"}),
            "password",
            4000031,
        ),
        (json!({"method": "password", "traits": {"email": "nopass@example.org"}}), "password", 4000002),
    ];
    for (payload, field, id) in cases {
        let (status, body) = api_submit(&t, "registration", &flow, payload.clone()).await;
        assert_eq!(status, 400, "{payload}: {body}");
        let n = node(&body, field).unwrap_or_else(|| panic!("{field} in {body}"));
        assert_eq!(n["messages"][0]["id"], id, "{payload}: {body}");
        assert!(node(&body, "password").is_none_or(|p| p["attributes"].get("value").is_none()));
    }
    let (status, body) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "password", "traits": {"email": "TAKEN@example.org"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000007]), "{body}");
    // A failed registration created nothing.
    let (_, _, list) = t.admin_json(Method::GET, "/admin/identities", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}
both_backends!(api_validation_errors);

async fn flow_lifecycle_errors(db: Db) {
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db).clock(clock.clone()).build().await;
    // Unknown and malformed flows.
    for id in [uuid::Uuid::new_v4().to_string(), "nope".to_string()] {
        let res = t.get(&format!("{}/self-service/login/flows?id={id}", t.public)).await;
        let (status, body) = json_of(res).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["message"], "Unable to locate the resource");
    }
    let res = t.http.post(format!("{}/self-service/login", t.public)).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // Invalid AAL, forbidden return_to, a login_challenge without an OAuth2 provider (even
    // an empty one: the provider is checked first, as Kratos does).
    for (query, status, id) in [
        ("?aal=aal3", 400, None),
        ("?return_to=https://evil.example/", 400, Some("self_service_flow_return_to_forbidden")),
        ("?aal=aal2", 401, Some("session_aal1_required")),
        ("?login_challenge=", 500, Some("invalid_configuration")),
        ("?login_challenge=abc", 500, Some("invalid_configuration")),
    ] {
        let res = t.get(&format!("{}/self-service/login/api{query}", t.public)).await;
        assert_eq!(res.headers()["ory-error-id"], id.unwrap_or(""));
        let (got, body) = json_of(res).await;
        assert_eq!(got, status, "{query}: {body}");
    }
    // Expiry: 410 with a replacement flow that carries 4010001.
    api_register(&t, "exp@example.org").await;
    let flow = api_flow(&t, "login", "").await;
    clock.advance(chrono::Duration::hours(2));
    let (status, body) = api_submit(
        &t,
        "login",
        &flow,
        json!({"method": "password", "identifier": "exp@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    assert!(body["since"].as_i64().unwrap() > 0 && body["expired_at"].is_string());
    let new_id = body["use_flow_id"].as_str().unwrap();
    let res = t.get(&format!("{}/self-service/login/flows?id={new_id}", t.public)).await;
    let (status, replacement) = json_of(res).await;
    assert_eq!(status, 200);
    assert_eq!(message_ids(&replacement), [4010001]);
    // Fetching the expired flow: 410 with the API init URL.
    let res = t.get(&format!("{}/self-service/login/flows?id={}", t.public, flow["id"].as_str().unwrap())).await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["details"]["api"], format!("{}/self-service/login/api", t.public));
    // The replacement works.
    let (status, body) = api_submit(
        &t,
        "login",
        &replacement,
        json!({"method": "password", "identifier": "exp@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
both_backends!(flow_lifecycle_errors);

async fn sessions_and_refresh(db: Db) {
    let t = TestApp::new(db).await;
    api_register(&t, "ref@example.org").await;
    let (_, body) = api_login(&t, "ref@example.org", PASSWORD).await;
    let token = body["session_token"].as_str().unwrap().to_string();
    let session_id = body["session"]["id"].as_str().unwrap().to_string();
    // With a session: plain login and registration are refused.
    for kind in ["login", "registration"] {
        let res = t
            .http
            .get(format!("{}/self-service/{kind}/api", t.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["ory-error-id"], "session_already_available");
        assert_eq!(res.status(), 400);
    }
    // refresh=true: a form pre-filled with the identifier; the same session is refreshed.
    let res = t
        .http
        .get(format!("{}/self-service/login/api?refresh=true", t.public))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    let (status, flow) = json_of(res).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["refresh"], true);
    assert_eq!(message_ids(&flow), [1010003]);
    assert_eq!(node(&flow, "identifier").unwrap()["attributes"]["type"], "hidden");
    assert_eq!(node(&flow, "identifier").unwrap()["attributes"]["value"], "ref@example.org");
    assert_eq!(node(&flow, "method").unwrap()["meta"]["label"]["id"], 1010001);
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "password", "identifier": "ref@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["id"], session_id, "a refresh keeps the session");
    assert_eq!(body["session_token"], token);
    assert_eq!(body["session"]["authentication_methods"].as_array().unwrap().len(), 2);
    // Submitting a non-refresh flow while signed in: 400 with 4000001.
    let plain = api_flow(&t, "login", "").await;
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, plain["id"].as_str().unwrap()))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "password", "identifier": "ref@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]));

    // Logout over the API: 204, then the token is dead; unknown tokens get 403.
    let res = t
        .http
        .delete(format!("{}/self-service/logout/api", t.public))
        .json(&json!({"session_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let who =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(who.status(), 401);
    // Logging out a session that is already revoked is fine (Kratos finds it by token).
    let res = t
        .http
        .delete(format!("{}/self-service/logout/api", t.public))
        .json(&json!({"session_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for body in [json!({"session_token": "ory_st_nope"}), json!({})] {
        let res = t.http.delete(format!("{}/self-service/logout/api", t.public)).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 403, "{body}");
    }
}
both_backends!(sessions_and_refresh);

/// Starts a browser flow; returns the flow id from the redirect.
async fn browser_flow(t: &TestApp, jar: &mut Jar, kind: &str, query: &str) -> String {
    let res = jar.send(t.http.get(format!("{}/self-service/{kind}/browser{query}", t.public))).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with(&format!("https://ui.example/{kind}?flow=")), "{to}");
    flow_id_of(&to)
}

async fn fetch_flow(t: &TestApp, jar: &mut Jar, kind: &str, id: &str) -> Value {
    let res = jar.send(t.http.get(format!("{}/self-service/{kind}/flows?id={id}", t.public))).await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn browser_forms(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            with_session_hook(c);
            c.selfservice.flows.registration.enable_legacy_one_step = true;
        })
        .build()
        .await;
    let mut jar = Jar::default();
    let id = browser_flow(&t, &mut jar, "registration", "?return_to=https://app.example/after").await;
    assert!(jar.has_prefix("csrf_token_"), "the CSRF cookie is set");
    let flow = fetch_flow(&t, &mut jar, "registration", &id).await;
    assert_eq!(flow["type"], "browser");
    assert_eq!(flow["return_to"], "https://app.example/after");
    assert_eq!(
        node_names(&flow),
        ["csrf_token", "traits.email", "password", "traits.name.first", "traits.name.last", "method"]
    );
    let csrf = csrf_of(&flow);
    assert_eq!(csrf.len(), 88, "a masked token");
    // Fetching without the CSRF cookie is refused.
    let res = t.get(&format!("{}/self-service/registration/flows?id={id}", t.public)).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["ory-error-id"], "security_csrf_violation");

    // A form without the token: the browser goes to the error UI, and the error can be read.
    let submit = format!("{}/self-service/registration?flow={id}", t.public);
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("method", "password"),
            ("traits.email", "b@example.org"),
            ("password", PASSWORD),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with("https://ui.example/error?id="), "{to}");
    let error_id = url::Url::parse(&to).unwrap().query_pairs().next().unwrap().1.into_owned();
    let res = t.get(&format!("{}/self-service/errors?id={error_id}", t.public)).await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["error"]["id"], "security_csrf_violation");
    assert_eq!(body["error"]["code"], 403);
    let res = t.get(&format!("{}/self-service/errors?id={}", t.public, uuid::Uuid::new_v4())).await;
    assert_eq!(res.status(), 404);

    // A validation error goes back to the UI (302 for registration) with the values kept.
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("traits.email", "b@example.org"),
            ("password", "short"),
        ]))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), format!("https://ui.example/registration?flow={id}"));
    let flow = fetch_flow(&t, &mut jar, "registration", &id).await;
    assert_eq!(node(&flow, "password").unwrap()["messages"][0]["id"], 4000032);
    assert_eq!(node(&flow, "traits.email").unwrap()["attributes"]["value"], "b@example.org");

    // Success: a session cookie and a redirect to return_to.
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("traits.email", "b@example.org"),
            ("password", PASSWORD),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example/after");
    assert!(jar.cookies.contains_key("ory_kratos_session"));
    let res = jar.send(t.http.get(format!("{}/sessions/whoami", t.public))).await;
    let (status, who) = json_of(res).await;
    assert_eq!(status, 200);
    assert_eq!(who["identity"]["traits"]["email"], "b@example.org");
    // Signed in: the browser login init redirects to the default return URL.
    let res = jar.send(t.http.get(format!("{}/self-service/login/browser", t.public))).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "https://app.example/welcome".to_string()));

    // Logout: URL with token, then the session is revoked and the cookie removed.
    let res = jar
        .send(t.http.get(format!("{}/self-service/logout/browser?return_to=https://app.example/bye", t.public)))
        .await;
    let (status, logout) = json_of(res).await;
    assert_eq!(status, 200, "{logout}");
    let token = logout["logout_token"].as_str().unwrap();
    assert!(token.starts_with("ory_lo_"));
    let url = logout["logout_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/self-service/logout?token=", t.public)));
    let res = jar.send(t.http.get(format!("{}/self-service/logout?token=ory_lo_wrong", t.public))).await;
    assert_eq!(res.status(), 303, "a wrong token goes to the error UI");
    assert!(location(&res).starts_with("https://ui.example/error?id="));
    let res = jar.send(t.http.get(&url)).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "https://app.example/bye".to_string()));
    assert!(!jar.cookies.contains_key("ory_kratos_session"));
    let res = jar
        .send(t.http.get(format!("{}/self-service/logout/browser", t.public)).header("Accept", "application/json"))
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["ory-error-id"], "session_inactive");

    // Browser login with the form; then a wrong password goes back to the UI with 4000006.
    let id = browser_flow(&t, &mut jar, "login", "").await;
    let flow = fetch_flow(&t, &mut jar, "login", &id).await;
    let csrf = csrf_of(&flow);
    let submit = format!("{}/self-service/login?flow={id}", t.public);
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("identifier", "b@example.org"),
            ("password", "wrong-password"),
        ]))
        .await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, format!("https://ui.example/login?flow={id}")));
    let flow = fetch_flow(&t, &mut jar, "login", &id).await;
    assert_eq!(message_ids(&flow), [4000006]);
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("identifier", "b@example.org"),
            ("password", PASSWORD),
        ]))
        .await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "https://app.example/welcome".to_string()));
    assert!(jar.cookies.contains_key("ory_kratos_session"));
}
both_backends!(browser_forms);

async fn spa_json(db: Db) {
    let t = TestApp::builder(db).config(with_session_hook).build().await;
    let mut jar = Jar::default();
    // Browser flows driven with JSON: 200 + flow and the CSRF cookie.
    let res = jar
        .send(
            t.http.get(format!("{}/self-service/registration/browser", t.public)).header("Accept", "application/json"),
        )
        .await;
    let (status, flow) = json_of(res).await;
    assert_eq!(status, 200, "{flow}");
    assert!(jar.has_prefix("csrf_token_"));
    let submit = format!("{}/self-service/registration?flow={}", t.public, flow["id"].as_str().unwrap());
    // Without the token: 403 JSON.
    let res = jar
        .send(
            t.http
                .post(&submit)
                .header("Accept", "application/json")
                .json(&json!({"method": "profile", "traits": {"email": "spa@example.org"}})),
        )
        .await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["id"], "security_csrf_violation");
    assert!(body["error"]["details"]["reject_reason"].is_string());
    // Two steps with JSON.
    let csrf = csrf_of(&flow);
    let res = jar
        .send(
            t.http
                .post(&submit)
                .json(&json!({"csrf_token": csrf, "method": "profile", "traits": {"email": "spa@example.org"}})),
        )
        .await;
    let (status, step) = json_of(res).await;
    assert_eq!(status, 400, "{step}");
    assert_eq!(message_ids(&step), [1040009]);
    let res = jar
        .send(t.http.post(&submit).json(&json!({"csrf_token": csrf_of(&step), "method": "password", "password": PASSWORD, "transient_payload": {"a": 1}})))
        .await;
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.get("session_token").is_none(), "browser flows never get the token");
    assert_eq!(done["session"]["identity"]["traits"]["email"], "spa@example.org");
    assert_eq!(done["continue_with"][0]["action"], "redirect_browser_to");
    assert_eq!(done["continue_with"][0]["redirect_browser_to"], "https://app.example/welcome");
    assert!(jar.cookies.contains_key("ory_kratos_session"));
    // Signed in: JSON init of a login flow is refused.
    let res = jar
        .send(t.http.get(format!("{}/self-service/login/browser", t.public)).header("Accept", "application/json"))
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["ory-error-id"], "session_already_available");
    // Log out with JSON: 204.
    let res = jar.send(t.http.get(format!("{}/self-service/logout/browser", t.public))).await;
    let (_, logout) = json_of(res).await;
    let res = jar.send(t.http.get(logout["logout_url"].as_str().unwrap()).header("Accept", "application/json")).await;
    assert_eq!(res.status(), 204);
    // SPA login.
    let res = jar
        .send(t.http.get(format!("{}/self-service/login/browser", t.public)).header("Accept", "application/json"))
        .await;
    let (_, flow) = json_of(res).await;
    let res = jar
        .send(
            t.http
                .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
                .json(&json!({"csrf_token": csrf_of(&flow), "method": "password", "identifier": "spa@example.org", "password": PASSWORD})),
        )
        .await;
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["continue_with"][0]["action"], "redirect_browser_to");
    assert!(done.get("session_token").is_none());
}
both_backends!(spa_json);

async fn registration_without_session_hook(db: Db) {
    let t = TestApp::new(db).await;
    let body = api_register(&t, "nohook@example.org").await;
    assert!(body.get("session").is_none() && body.get("session_token").is_none(), "{body}");
    assert_eq!(body["identity"]["traits"]["email"], "nohook@example.org");
    assert_eq!(body["identity"]["verifiable_addresses"][0]["value"], "nohook@example.org");
    // The session Kratos persists anyway is there (admin view), and login works.
    let id = body["identity"]["id"].as_str().unwrap();
    let (status, _, sessions) = t.admin_json(Method::GET, &format!("/admin/identities/{id}/sessions"), None).await;
    assert_eq!(status, 200);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let (status, _) = api_login(&t, "nohook@example.org", PASSWORD).await;
    assert_eq!(status, 200);
}
both_backends!(registration_without_session_hook);

async fn brute_force_is_bounded(db: Db) {
    const LIMIT: u32 = 5;
    let t = TestApp::builder(db)
        .config(|c| {
            c.security.brute_force.max_failures_per_identifier = LIMIT;
            c.security.brute_force.max_failures_per_ip = 100_000;
        })
        .build()
        .await;
    api_register(&t, "victim@example.org").await;
    // Many flows, submitted in parallel with wrong passwords.
    const N: usize = 1000;
    // Created 200 at a time too: 1,000 at once on a loaded 2-core machine kept requests waiting
    // past the server's request timeout (408).
    use futures_util::StreamExt;
    let flows: Vec<Value> =
        futures_util::stream::iter((0..N).map(|_| api_flow(&t, "login", ""))).buffer_unordered(200).collect().await;
    let attempts = flows.iter().map(|f| {
        api_submit(
            &t,
            "login",
            f,
            json!({"method": "password", "identifier": "victim@example.org", "password": "wrong-password"}),
        )
    });
    // At most 200 in flight: with all 1,000 at once a loaded 2-core CI machine can keep a
    // request waiting for a database connection past the pool's 5 s limit (503).
    let results: Vec<(u16, Value)> = futures_util::stream::iter(attempts).buffer_unordered(200).collect().await;
    assert!(results.iter().all(|(s, _)| *s == 400), "{:?}", results.iter().find(|(s, _)| *s != 400));
    let evaluated = results.iter().filter(|(_, b)| message_ids(b) == [4000006]).count();
    let locked = results.iter().filter(|(_, b)| message_ids(b) == [4019001]).count();
    assert_eq!(evaluated, LIMIT as usize, "exactly the configured number of attempts is evaluated");
    assert_eq!(evaluated + locked, N);
    // Locked out: even the right password is refused now, with the retry time in the context.
    let (status, body) = api_login(&t, "victim@example.org", PASSWORD).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4019001]));
    assert!(body["ui"]["messages"][0]["context"]["retry_after_seconds"].as_i64().unwrap() > 0);
    // Other identifiers are not affected.
    api_register(&t, "other@example.org").await;
    assert_eq!(api_login(&t, "other@example.org", PASSWORD).await.0, 200);
}
both_backends!(brute_force_is_bounded);

async fn brute_force_per_ip(db: Db) {
    let t = TestApp::builder(db).config(|c| c.security.brute_force.max_failures_per_ip = 3).build().await;
    api_register(&t, "ip@example.org").await;
    for n in 0..3 {
        let (_, body) = api_login(&t, &format!("someone-{n}@example.org"), "wrong-password").await;
        assert_eq!(message_ids(&body), [4000006]);
    }
    let (_, body) = api_login(&t, "ip@example.org", PASSWORD).await;
    assert_eq!(message_ids(&body), [4019001], "the address is locked out");
}
both_backends!(brute_force_per_ip);

async fn token_exchange_codes(db: Db) {
    let t = TestApp::new(db).await;
    let flow = api_flow(&t, "login", "?return_session_token_exchange_code=true").await;
    let init = flow["session_token_exchange_code"].as_str().unwrap().to_string();
    assert_eq!(init.len(), 64);
    // Not bound to a session yet.
    let res = t.get(&format!("{}/sessions/token-exchange?init_code={init}&return_to_code=x", t.public)).await;
    assert_eq!(res.status(), 404);
    // Bind it as the OIDC method will, with a known return-to code.
    let body = api_register(&t, "exchange@example.org").await;
    let identity =
        t.app().state().identities.get(body["identity"]["id"].as_str().unwrap().parse().unwrap()).await.unwrap();
    let (session, token) = t.app().state().sessions.issue(&identity, vec![], None).await.unwrap();
    let flow_id: uuid::Uuid = flow["id"].as_str().unwrap().parse().unwrap();
    assert!(t.app().state().sessions.bind_exchanger(flow_id, session.id, &token).await.unwrap());
    // The return-to code is only known to the flow; a wrong one finds nothing.
    let res = t.get(&format!("{}/sessions/token-exchange?init_code={init}&return_to_code=wrong", t.public)).await;
    assert_eq!(res.status(), 404);
    // A pair of codes bound to a session exchanges for the session and its token.
    let (init, return_to) = t.app().state().sessions.create_exchanger(uuid::Uuid::new_v4()).await.unwrap();
    let other_flow = uuid::Uuid::new_v4();
    let (init2, return_to2) = t.app().state().sessions.create_exchanger(other_flow).await.unwrap();
    assert!(t.app().state().sessions.bind_exchanger(other_flow, session.id, &token).await.unwrap());
    let res =
        t.get(&format!("{}/sessions/token-exchange?init_code={init2}&return_to_code={return_to2}", t.public)).await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_token"], token);
    assert_eq!(body["session"]["id"], session.id.to_string());
    assert_eq!(body["session"]["identity"]["id"], identity.id.to_string());
    // A pair works once: the second exchange finds nothing.
    let res =
        t.get(&format!("{}/sessions/token-exchange?init_code={init2}&return_to_code={return_to2}", t.public)).await;
    assert_eq!(res.status(), 404);
    // Unbound codes and crossed pairs find nothing.
    for (i, r) in [(&init, &return_to), (&init2, &return_to), (&init, &return_to2)] {
        let res = t.get(&format!("{}/sessions/token-exchange?init_code={i}&return_to_code={r}", t.public)).await;
        assert_eq!(res.status(), 404);
    }
}
both_backends!(token_exchange_codes);

async fn identifier_first_and_enumeration(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| c.selfservice.flows.login.style = tessera::config::LoginStyle::IdentifierFirst)
        .build()
        .await;
    api_register(&t, "idfirst@example.org").await;
    let flow = api_flow(&t, "login", "").await;
    assert_eq!(node_names(&flow), ["identifier", "method", "csrf_token"], "identifier_first sorts before default");
    assert_eq!(node(&flow, "method").unwrap()["attributes"]["value"], "identifier_first");
    assert_eq!(node(&flow, "identifier").unwrap()["group"], "identifier_first");
    // Unknown account (no enumeration mitigation): 4000037 on the identifier.
    let (status, body) =
        api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": "ghost@example.org"})).await;
    assert_eq!(status, 400);
    assert_eq!(node(&body, "identifier").unwrap()["messages"][0]["id"], 4000037);
    // Known account: step two asks for the password (400 + flow), then the login succeeds.
    let (status, step) =
        api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": "IDFIRST@example.org"}))
            .await;
    assert_eq!(status, 400, "{step}");
    assert_eq!(step["active"], "identifier_first");
    assert_eq!(node(&step, "identifier").unwrap()["attributes"]["type"], "hidden");
    assert!(node(&step, "password").is_some());
    let (status, body) = api_submit(&t, "login", &flow, json!({"method": "password", "password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");

    // Unknown identifiers cost a password verification too (no timing oracle).
    let hashes = &t.app().state().identities.hashes;
    let before = hashes.completed();
    let (_, body) = api_login(&t, "nobody-at-all@example.org", "whatever-password").await;
    assert_eq!(message_ids(&body), [4000006]);
    assert_eq!(hashes.completed() - before, 1, "one dummy verification for an unknown identifier");
}
both_backends!(identifier_first_and_enumeration);

async fn login_hooks(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            c.selfservice.flows.login.after.password.hooks = vec![
                tessera::config::HookConfig { hook: "revoke_active_sessions".into(), config: None },
                tessera::config::HookConfig { hook: "require_verified_address".into(), config: None },
            ];
        })
        .build()
        .await;
    let body = api_register(&t, "hooked@example.org").await;
    let id = body["identity"]["id"].as_str().unwrap().to_string();
    // Unverified address: refused with 403.
    let (status, body) = api_login(&t, "hooked@example.org", PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["id"], "session_verified_address_required");
    // Verify the address (admin), then log in twice: the second login revokes the first session.
    let patch = json!([
        {"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true},
        {"op": "replace", "path": "/verifiable_addresses/0/status", "value": "completed"},
    ]);
    let (status, _, updated) = t.admin_json(Method::PATCH, &format!("/admin/identities/{id}"), Some(patch)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["verifiable_addresses"][0]["verified"], true);
    let (status, first) = api_login(&t, "hooked@example.org", PASSWORD).await;
    assert_eq!(status, 200, "{first}");
    let (status, _) = api_login(&t, "hooked@example.org", PASSWORD).await;
    assert_eq!(status, 200);
    let token = first["session_token"].as_str().unwrap();
    let who =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", token).send().await.unwrap();
    assert_eq!(who.status(), 401, "revoke_active_sessions revoked the earlier session");
}
both_backends!(login_hooks);

async fn flows_survive_a_restart(db: Db) {
    let mut t = TestApp::new(db).await;
    api_register(&t, "restart@example.org").await;
    let flow = api_flow(&t, "login", "").await;
    let (status, _) =
        api_submit(&t, "login", &flow, json!({"method": "password", "identifier": "restart@example.org"})).await;
    assert_eq!(status, 400);
    // A graceful stop flushes the deferred flow writes; a new instance loads the flow.
    t.stop().await;
    let t2 = TestApp::builder(Db::Sqlite).same_db_as(&t).build().await;
    let res = t2.get(&format!("{}/self-service/login/flows?id={}", t2.public, flow["id"].as_str().unwrap())).await;
    let (status, stored) = json_of(res).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(node(&stored, "password").unwrap()["messages"][0]["id"], 4000002, "the last state was kept");
    let (status, body) = api_submit(
        &t2,
        "login",
        &flow,
        json!({"method": "password", "identifier": "restart@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(t2.app().state().selfservice.flows.store_reads(), 1, "one load for the fetch and the submit");
}
both_backends!(flows_survive_a_restart);

async fn whoami_reissues_an_outdated_cookie(db: Db) {
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db).clock(clock.clone()).config(with_session_hook).build().await;
    let mut jar = Jar::default();
    let res = jar
        .send(
            t.http.get(format!("{}/self-service/registration/browser", t.public)).header("Accept", "application/json"),
        )
        .await;
    let (_, flow) = json_of(res).await;
    let submit = format!("{}/self-service/registration?flow={}", t.public, flow["id"].as_str().unwrap());
    let res = jar
        .send(t.http.post(&submit).json(&json!({"csrf_token": csrf_of(&flow), "method": "password", "password": PASSWORD, "traits": {"email": "cookie@example.org"}})))
        .await;
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    let session_id = done["session"]["id"].as_str().unwrap().to_string();
    let res = jar.send(t.http.get(format!("{}/sessions/whoami", t.public))).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get(SET_COOKIE).is_none(), "an up-to-date cookie is left alone");
    clock.advance(chrono::Duration::hours(1));
    let (status, _, _) = t.admin_json(Method::PATCH, &format!("/admin/sessions/{session_id}/extend"), None).await;
    assert_eq!(status, 200);
    let before = jar.cookies["ory_kratos_session"].clone();
    let res = jar.send(t.http.get(format!("{}/sessions/whoami", t.public))).await;
    assert_eq!(res.status(), 200);
    assert_ne!(jar.cookies["ory_kratos_session"], before, "the extended session gets a new cookie");
}
both_backends!(whoami_reissues_an_outdated_cookie);

fn rich_schema(cfg: &mut tessera::config::Config) {
    cfg.identity.schemas.push(tessera::config::SchemaSource {
        id: "rich".into(),
        url: crate::harness::fixture("rich.schema.json"),
        selfservice_selectable: true,
    });
    cfg.selfservice.flows.registration.enable_legacy_one_step = true;
    cfg.selfservice.flows.registration.login_hints = true;
}

async fn rich_traits_from_forms(db: Db) {
    let t = TestApp::builder(db).config(rich_schema).build().await;
    let mut jar = Jar::default();
    let id = browser_flow(&t, &mut jar, "registration", "?identity_schema=rich").await;
    let flow = fetch_flow(&t, &mut jar, "registration", &id).await;
    assert_eq!(flow["identity_schema"], "rich");
    assert_eq!(
        node_names(&flow),
        [
            "csrf_token",
            "traits.email",
            "password",
            "traits.website",
            "traits.age",
            "traits.tos",
            "traits.consent.newsletter",
            "method"
        ]
    );
    let types: Vec<&str> = ["traits.email", "traits.website", "traits.age", "traits.tos"]
        .iter()
        .map(|n| node(&flow, n).unwrap()["attributes"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["email", "url", "number", "checkbox"]);
    let csrf = csrf_of(&flow);
    let submit = format!("{}/self-service/registration?flow={id}", t.public);
    // All empty: every required field is reported.
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("password", PASSWORD),
            ("traits.email", ""),
            ("traits.website", ""),
        ]))
        .await;
    assert_eq!(res.status(), 302);
    let flow = fetch_flow(&t, &mut jar, "registration", &id).await;
    assert_eq!(node(&flow, "traits.email").unwrap()["messages"][0]["id"], 4000002);
    assert_eq!(node(&flow, "traits.website").unwrap()["messages"][0]["id"], 4000002);
    // Too short a URI, a number over its maximum.
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("password", PASSWORD),
            ("traits.email", "rich@example.org"),
            ("traits.website", "http://x"),
            ("traits.age", "301"),
        ]))
        .await;
    assert_eq!(res.status(), 302);
    let flow = fetch_flow(&t, &mut jar, "registration", &id).await;
    assert_eq!(node(&flow, "traits.website").unwrap()["messages"][0]["id"], 4000003);
    let age = &node(&flow, "traits.age").unwrap()["messages"][0];
    assert_eq!(age["id"], 4000020);
    assert_eq!(age["context"], json!({"maximum": 300, "actual": 301}));
    assert_eq!(node(&flow, "traits.age").unwrap()["attributes"]["value"], 301, "typed values are kept");
    // Valid: numbers and booleans are stored typed.
    let res = jar
        .send(t.http.post(&submit).form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("password", PASSWORD),
            ("traits.email", "rich@example.org"),
            ("traits.website", "https://rich.example.org"),
            ("traits.age", "42"),
            ("traits.tos", "true"),
            ("traits.consent.newsletter", "false"),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let (_, _, list) = t.admin_json(Method::GET, "/admin/identities", None).await;
    let traits = &list[0]["traits"];
    assert_eq!(
        *traits,
        json!({"email": "rich@example.org", "website": "https://rich.example.org", "age": 42, "tos": true, "consent": {"newsletter": false}})
    );
    assert_eq!(list[0]["schema_id"], "rich");
    // The same address again, with login hints on: 4000028 says how to sign in.
    let flow = api_flow(&t, "registration", "?identity_schema=rich").await;
    let (status, body) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "password", "password": PASSWORD, "traits": {"email": "RICH@example.org", "website": "https://other.example.org"}}),
    )
    .await;
    assert_eq!(status, 400);
    let m = &body["ui"]["messages"][0];
    assert_eq!(m["id"], 4000028, "{body}");
    assert_eq!(m["context"]["available_credential_types"], json!(["password"]));
    assert_eq!(m["context"]["credential_identifier_hint"], "rich@example.org");
}
both_backends!(rich_traits_from_forms);

/// Two instances on one PostgreSQL database: a flow made on one is finished on the other, and
/// brute-force counters are shared.
#[actix_web::test]
async fn flows_and_lockouts_span_instances() {
    if std::env::var("DATABASE_URL").is_err() {
        crate::harness::cannot_run("DATABASE_URL is not set (multi-instance test not run)");
        return;
    }
    let a =
        TestApp::builder(Db::Postgres).config(|c| c.security.brute_force.max_failures_per_identifier = 3).build().await;
    let b = TestApp::builder(Db::Postgres)
        .same_db_as(&a)
        .config(|c| c.security.brute_force.max_failures_per_identifier = 3)
        .build()
        .await;
    api_register(&a, "two@example.org").await;
    // Created on A, submitted on B right away (B loads it from the store).
    let flow = api_flow(&a, "login", "").await;
    let (status, body) = api_submit(
        &b,
        "login",
        &flow,
        json!({"method": "password", "identifier": "two@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Failures on A and B add up to one lock-out.
    for (n, app) in [&a, &b, &a].into_iter().enumerate() {
        let (_, body) = api_login(app, "two@example.org", "wrong-password").await;
        assert_eq!(message_ids(&body), [4000006], "attempt {n}");
    }
    let (_, body) = api_login(&b, "two@example.org", PASSWORD).await;
    assert_eq!(message_ids(&body), [4019001]);
}

async fn legacy_hashes_are_upgraded_on_login(db: Db) {
    let t = TestApp::new(db).await;
    // An identity imported with a bcrypt hash (cost 4) of PASSWORD; the configured hasher is argon2id.
    let hashed = bcrypt::hash(PASSWORD, 4).unwrap();
    let body = json!({"traits": {"email": "legacy@example.org"}, "credentials": {"password": {"config": {"hashed_password": hashed}}}});
    let (status, _, created) = t.admin_json(Method::POST, "/admin/identities", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let stored = |v: &Value| v["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap().to_string();
    let path = format!("/admin/identities/{id}?include_credential=password");
    let (_, _, before) = t.admin_json(Method::GET, &path, None).await;
    assert!(stored(&before).starts_with("$2"), "{before}");
    let (status, body) = api_login(&t, "legacy@example.org", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, after) = t.admin_json(Method::GET, &path, None).await;
    assert!(stored(&after).starts_with("$argon2id$"), "re-hashed with the configured algorithm: {after}");
    // The new hash works, and an argon2 hash is not re-hashed again.
    let (status, _) = api_login(&t, "legacy@example.org", PASSWORD).await;
    assert_eq!(status, 200);
    let (_, _, again) = t.admin_json(Method::GET, &path, None).await;
    assert_eq!(stored(&again), stored(&after));
}
both_backends!(legacy_hashes_are_upgraded_on_login);
