//! The settings flow: profile and password changes for API, browser and SPA clients, the
//! privileged-session rule, and the flow's binding to its identity.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::{Jar, PASSWORD, api_login, csrf_of, flow_id_of, get_json, location, message_ids, node};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tessera::config::{Config, HookConfig};

pub fn with_session_hook(c: &mut Config) {
    c.selfservice.flows.registration.after.password.hooks = vec![HookConfig { hook: "session".into(), config: None }];
    c.selfservice.flows.settings.ui_url = "https://ui.example/settings".into();
}

/// Registers over the API; returns (identity id, session token).
pub async fn signed_up(t: &TestApp, email: &str) -> (String, String) {
    let body = crate::selfservice::api_register(t, email).await;
    (body["identity"]["id"].as_str().unwrap().to_string(), body["session_token"].as_str().unwrap().to_string())
}

pub async fn settings_flow(t: &TestApp, token: &str) -> Value {
    let res = t
        .http
        .get(format!("{}/self-service/settings/api", t.public))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn update(t: &TestApp, token: &str, flow: &Value, body: Value) -> (u16, Value) {
    let res = t
        .http
        .post(format!("{}/self-service/settings?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Session-Token", token)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn api_settings(db: Db) {
    let t = TestApp::builder(db).config(with_session_hook).build().await;
    let (id, token) = signed_up(&t, "set@example.org").await;
    let flow = settings_flow(&t, &token).await;
    assert_eq!(flow["type"], "api");
    assert_eq!(flow["state"], "show_form");
    assert_eq!(flow["identity"]["id"], id.as_str());
    assert_eq!(node(&flow, "traits.email").unwrap()["attributes"]["value"], "set@example.org");
    assert!(node(&flow, "password").is_some());

    // Not signed in, or another identity: refused.
    let url = format!("{}/self-service/settings/flows?id={}", t.public, flow["id"].as_str().unwrap());
    let res = t.http.get(&url).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let (_, other) = signed_up(&t, "other@example.org").await;
    let res = t.http.get(&url).header("X-Session-Token", &other).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "security_identity_mismatch");
    let (status, _) = update(&t, &other, &flow, json!({"method": "password", "password": "another-long-pw-7"})).await;
    assert_eq!(status, 403);
    let res = t.http.get(format!("{}/self-service/settings/api", t.public)).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // Bad input.
    let (status, body) = update(&t, &token, &flow, json!({"method": "totp"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4010004]);
    let (status, body) = update(&t, &token, &flow, json!({"method": "password"})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&body), vec![4000002]);
    let (status, body) = update(&t, &token, &flow, json!({"method": "password", "password": PASSWORD})).await;
    assert_eq!(status, 400);
    assert_eq!(message_ids(&body), vec![4000039]);
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "profile", "traits": {"email": "not-an-email"}})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "profile", "traits": {"email": "other@example.org"}})).await;
    assert_eq!(status, 400, "a taken address: {body}");
    assert_eq!(message_ids(&body), vec![4000007]);

    // Credentials never travel in a URL: a GET submit is refused and changes nothing.
    let res = t
        .http
        .get(format!(
            "{}/self-service/settings?flow={}&method=password&password=a-get-password-42",
            t.public,
            flow["id"].as_str().unwrap()
        ))
        .header("X-Session-Token", &token)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(message_ids(&body), vec![4000001], "{body}");
    assert_eq!(api_login(&t, "set@example.org", "a-get-password-42").await.0, 400);
    assert_eq!(api_login(&t, "set@example.org", PASSWORD).await.0, 200);

    // A new password: saved, the old one no longer works.
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "password", "password": "a-brand-new-pw-42"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "success");
    assert_eq!(message_ids(&body), vec![1050001]);
    assert_eq!(api_login(&t, "set@example.org", PASSWORD).await.0, 400);
    assert_eq!(api_login(&t, "set@example.org", "a-brand-new-pw-42").await.0, 200);

    // The profile: a new name and a new address.
    let (status, body) = update(
        &t,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "moved@example.org", "name": {"first": "Sam"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"]["traits"]["name"]["first"], "Sam");
    let (_, _, stored) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(stored["traits"]["email"], "moved@example.org");
    assert_eq!(stored["verifiable_addresses"][0]["value"], "moved@example.org");
    assert_eq!(api_login(&t, "moved@example.org", "a-brand-new-pw-42").await.0, 200);
}
both_backends!(api_settings);

async fn privileged_session_required(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            with_session_hook(c);
            c.selfservice.flows.settings.privileged_session_max_age = tessera::config::Dur(Duration::from_millis(1));
        })
        .build()
        .await;
    let (_, token) = signed_up(&t, "old@example.org").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let flow = settings_flow(&t, &token).await;
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "password", "password": "a-brand-new-pw-42"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["id"], "session_refresh_required");
    let to = body["redirect_browser_to"].as_str().unwrap();
    assert!(to.contains("/self-service/login/browser?refresh=true&return_to="), "{to}");
    // Changing the address is protected too; the name is not.
    let (status, _) =
        update(&t, &token, &flow, json!({"method": "profile", "traits": {"email": "new@example.org"}})).await;
    assert_eq!(status, 403);
    let (status, body) = update(
        &t,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "old@example.org", "name": {"first": "Al"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api_login(&t, "old@example.org", PASSWORD).await.0, 200, "the password is unchanged");
}
both_backends!(privileged_session_required);

async fn browser_settings(db: Db) {
    let t = TestApp::builder(db).config(with_session_hook).build().await;
    crate::selfservice::api_register(&t, "web-set@example.org").await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut jar = Jar::default();
    // Not signed in: off to login first.
    let res = jar
        .send(client.get(format!("{}/self-service/settings/browser?return_to=https://app.example/x", t.public)))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!(
            "{}/self-service/login/browser?return_to=https%3A%2F%2Fapp.example%2Fx",
            t.app().state().config.public_base_url().trim_end_matches('/')
        )
    );
    // Sign in with a browser form.
    let res = jar.send(client.get(format!("{}/self-service/login/browser", t.public))).await;
    let login_id = flow_id_of(&location(&res));
    let login: Value =
        get_json(&client, format!("{}/self-service/login/flows?id={login_id}", t.public), Some(&jar)).await;
    let res = jar
        .send(client.post(format!("{}/self-service/login?flow={login_id}", t.public)).form(&[
            ("method", "password"),
            ("identifier", "web-set@example.org"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_of(&login)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let res = jar.send(client.get(format!("{}/self-service/settings/browser", t.public))).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/settings?flow="));
    let id = flow_id_of(&location(&res));
    let flow: Value = get_json(&client, format!("{}/self-service/settings/flows?id={id}", t.public), Some(&jar)).await;
    // Without the CSRF token: 403.
    let res = jar
        .send(
            client
                .post(format!("{}/self-service/settings?flow={id}", t.public))
                .header("Accept", "application/json")
                .json(&json!({"method": "password", "password": "browser-new-pw-77"})),
        )
        .await;
    assert_eq!(res.status(), 403);
    // SPA: JSON with the token; continue_with says where to go next.
    let res = jar
        .send(
            client
                .post(format!("{}/self-service/settings?flow={id}", t.public))
                .header("Accept", "application/json")
                .json(&json!({"method": "password", "password": "browser-new-pw-77", "csrf_token": csrf_of(&flow)})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["continue_with"][0]["action"], "redirect_browser_to");
    // HTML form: 303 back to the settings UI.
    let res = jar
        .send(client.post(format!("{}/self-service/settings?flow={id}", t.public)).form(&[
            ("method", "profile"),
            ("traits.email", "web-set@example.org"),
            ("traits.name.first", "Web"),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/settings?flow={id}"));
    assert_eq!(api_login(&t, "web-set@example.org", "browser-new-pw-77").await.0, 200);
}
both_backends!(browser_settings);

/// Continuity: a browser's change that needs a privileged session is kept while the user
/// signs in again, and applied when the refresh login returns to the settings flow.
async fn continuity_applies_the_change_after_reauthentication(db: Db) {
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db)
        .clock(clock.clone())
        .config(|c| {
            with_session_hook(c);
            c.selfservice.flows.login.ui_url = "https://ui.example/login".into();
            c.selfservice.allowed_return_urls = vec!["https://ui.example/".into()];
        })
        .build()
        .await;
    crate::selfservice::api_register(&t, "later@example.org").await;
    let client = &t.http;
    let mut jar = Jar::default();
    let sign_in = async |jar: &mut Jar, query: &str| {
        let res = jar.send(client.get(format!("{}/self-service/login/browser{query}", t.public))).await;
        let id = flow_id_of(&location(&res));
        let login: Value = get_json(client, format!("{}/self-service/login/flows?id={id}", t.public), Some(jar)).await;
        jar.send(client.post(format!("{}/self-service/login?flow={id}", t.public)).form(&[
            ("method", "password"),
            ("identifier", "later@example.org"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_of(&login)),
        ]))
        .await
    };
    assert_eq!(sign_in(&mut jar, "").await.status(), 303);
    // Two hours later the session is no longer privileged.
    clock.advance(chrono::Duration::hours(2));
    let res = jar.send(client.get(format!("{}/self-service/settings/browser", t.public))).await;
    let id = flow_id_of(&location(&res));
    let flow: Value = get_json(client, format!("{}/self-service/settings/flows?id={id}", t.public), Some(&jar)).await;
    let res = jar
        .send(client.post(format!("{}/self-service/settings?flow={id}", t.public)).form(&[
            ("method", "password"),
            ("password", "changed-after-refresh-5"),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.contains("/self-service/login/browser?refresh=true&return_to="), "{to}");
    assert_eq!(api_login(&t, "later@example.org", PASSWORD).await.0, 200, "nothing changed yet");
    // The refresh login returns to the settings submit, which applies the kept change once.
    let query = to.split_once('?').map(|(_, q)| format!("?{q}")).unwrap();
    let res = sign_in(&mut jar, &query).await;
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.ends_with(&format!("/self-service/settings?flow={id}")), "{back}");
    let res = jar.send(client.get(&back)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/settings?flow={id}"));
    let flow: Value = get_json(client, format!("{}/self-service/settings/flows?id={id}", t.public), Some(&jar)).await;
    assert_eq!(flow["state"], "success", "{flow}");
    assert_eq!(api_login(&t, "later@example.org", "changed-after-refresh-5").await.0, 200);
    // Not again: a second visit shows the form without changing anything.
    let res = jar.send(client.get(&back)).await;
    assert_eq!(res.status(), 303);
    // Another identity's session cannot pick up a kept change (the flow is bound to its identity).
    let res = t
        .http
        .get(format!("{}/self-service/settings?flow={id}", t.public))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
both_backends!(continuity_applies_the_change_after_reauthentication);
