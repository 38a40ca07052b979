//! Compatibility details found by using tessera as Kratos clients do: the request id in error
//! envelopes, the device address behind proxies, the verification link opened in another
//! browser, and node order with nested traits.

use crate::both_backends;
use crate::courier::SmtpPeer;
use crate::harness::{Db, TestApp};
use crate::selfservice::{Jar, PASSWORD, api_flow, api_register, api_submit, csrf_of, location, node, node_names};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tessera::config::{CodeOrLink, Dur, HookConfig};

/// herodot echoes `X-Request-ID` as `error.request` in every JSON error.
async fn errors_echo_the_request_id(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            // A refusal by middleware, before any handler runs, must carry it too.
            c.serve.admin.api_keys = vec!["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()];
        })
        .build()
        .await;
    let get = |url: String, id: Option<&'static str>| {
        let mut req = t.http.get(url).header("Accept", "application/json");
        if let Some(id) = id {
            req = req.header("X-Request-ID", id);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for (url, status) in [
        (format!("{}/sessions/whoami", t.public), 401),
        (format!("{}/no/such/route", t.public), 404),
        (format!("{}/self-service/login/flows?id={}", t.public, uuid::Uuid::new_v4()), 404),
        (format!("{}/admin/identities", t.admin), 401),
    ] {
        let (got, body) = get(url.clone(), Some("req-42")).await;
        assert_eq!(got, status, "{url}: {body}");
        assert_eq!(body["error"]["request"], "req-42", "{url}: {body}");
        let keys: Vec<&String> = body["error"].as_object().unwrap().keys().collect();
        let at = |k: &str| keys.iter().position(|x| *x == k);
        assert_eq!(at("request"), at("status").map(|s| s + 1), "herodot's field order: {keys:?}");
        let (_, body) = get(url.clone(), None).await;
        assert!(body["error"].get("request").is_none(), "{url}: {body}");
    }
    // A browser error is stored for the error UI; the stored container carries it too.
    let res = t
        .http
        .get(format!("{}/self-service/login/flows?id=not-a-uuid-but-browser", t.public))
        .header("X-Request-ID", "req-43")
        .send()
        .await
        .unwrap();
    let (status, body) = (res.status().as_u16(), res.json::<Value>().await.unwrap());
    assert_eq!((status, &body["error"]["request"]), (404, &json!("req-43")), "{body}");
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, uuid::Uuid::new_v4()))
        .header("X-Request-ID", "req-44")
        .form(&[("method", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let error_id = location(&res).split("id=").nth(1).unwrap().to_string();
    let stored: Value = t.get(&format!("{}/self-service/errors?id={error_id}", t.public)).await.json().await.unwrap();
    assert_eq!(stored["error"]["request"], "req-44", "{stored}");
    // A flow answered with problems (400) is a flow, not an envelope: nothing is added.
    let flow = api_flow(&t, "login", "").await;
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Request-ID", "req-45")
        .json(&json!({"method": "password", "identifier": "x@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("error").is_none() && body["id"] == flow["id"], "{body}");
}
both_backends!(errors_echo_the_request_id);

/// Behind proxies that only name private addresses, Kratos records the empty string it
/// computed as the device address (not null).
async fn device_address_is_empty_behind_private_proxies(db: Db) {
    let t = TestApp::new(db).await;
    api_register(&t, "proxy@example.org").await;
    let flow = api_flow(&t, "login", "").await;
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Forwarded-For", "10.0.0.1, 172.16.0.2")
        .json(&json!({"method": "password", "identifier": "proxy@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["devices"][0]["ip_address"], json!(""), "{body}");
    let token = body["session_token"].as_str().unwrap();
    let id = body["session"]["id"].as_str().unwrap();
    // Read back from memory and from the store: still the empty string.
    let whoami: Value = t
        .http
        .get(format!("{}/sessions/whoami", t.public))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whoami["devices"][0]["ip_address"], json!(""), "{whoami}");
    let (status, _, admin) = t.admin_json(Method::GET, &format!("/admin/sessions/{id}?expand=devices"), None).await;
    assert_eq!(status, 200);
    assert_eq!(admin["devices"][0]["ip_address"], json!(""), "{admin}");
}
both_backends!(device_address_is_empty_behind_private_proxies);

/// The code link in a verification mail is often opened in another browser (a phone's mail
/// app) than the one that started the flow: as upstream's `handleLinkClick`, opening it sets a
/// fresh CSRF cookie and stores that token on the flow, so the UI can read and submit it.
async fn verification_link_works_in_another_browser(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
            c.courier.worker.pull_wait = Dur(Duration::from_millis(50));
            c.selfservice.flows.verification.enabled = true;
            c.selfservice.flows.verification.method = CodeOrLink::Code;
            c.selfservice.flows.verification.ui_url = "https://ui.example/verification".into();
        })
        .build()
        .await;
    api_register(&t, "phone@example.org").await;
    let first = peer.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 1, "registration sent the verification code");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // The desktop browser starts a flow and asks for a code.
    let mut desktop = Jar::default();
    let res = desktop.send(client.get(format!("{}/self-service/verification/browser", t.public))).await;
    let flow_id = crate::selfservice::flow_id_of(&location(&res));
    let fetch = |jar: &Jar| {
        client
            .get(format!("{}/self-service/verification/flows?id={flow_id}", t.public))
            .header("Cookie", jar.header())
            .send()
    };
    let flow: Value = fetch(&desktop).await.unwrap().json().await.unwrap();
    let res = desktop
        .send(client.post(format!("{}/self-service/verification?flow={flow_id}", t.public)).form(&[
            ("method", "code"),
            ("email", "phone@example.org"),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let mail = peer.wait_for(2, Duration::from_secs(20)).await;
    let text = mail[1]["text"].as_str().unwrap();
    let link = text.split_whitespace().find(|w| w.contains("/self-service/verification?")).unwrap().to_string();
    // The phone opens the link: a CSRF cookie is set, and the flow goes to the UI.
    let mut phone = Jar::default();
    let res = phone.send(client.get(&link)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/verification?flow={flow_id}"));
    assert!(phone.has_prefix("csrf_token_"), "the opener gets a CSRF cookie");
    // The UI reads the flow with the phone's cookies (403 before), the code filled in …
    let res = fetch(&phone).await.unwrap();
    assert_eq!(res.status(), 200);
    let flow: Value = res.json().await.unwrap();
    let code = node(&flow, "code").unwrap()["attributes"]["value"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    // … and the phone submits it.
    let res = phone
        .send(client.post(format!("{}/self-service/verification?flow={flow_id}", t.public)).form(&[
            ("method", "code"),
            ("code", code.as_str()),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let flow: Value = fetch(&phone).await.unwrap().json().await.unwrap();
    assert_eq!(flow["state"], "passed_challenge");
}
both_backends!(verification_link_works_in_another_browser);

/// Node order follows the schema's leaf keys (Kratos' computeKeyPositions): a last name
/// without a value stays after the first name that has one.
async fn nested_traits_keep_schema_order(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            c.selfservice.flows.registration.after.password.hooks =
                vec![HookConfig { hook: "session".into(), config: None }];
        })
        .build()
        .await;
    let flow = api_flow(&t, "registration", "").await;
    let (status, step) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "profile", "traits": {"email": "order@example.org", "name": {"first": "Zoe"}}}),
    )
    .await;
    assert_eq!(status, 400);
    let names = node_names(&step);
    let first = names.iter().position(|n| n == "traits.name.first").unwrap();
    let last = names.iter().position(|n| n == "traits.name.last").unwrap();
    assert!(first < last, "two-step registration's hidden fields: {names:?}");
    let (status, done) =
        api_submit(&t, "registration", &flow, json!({"method": "password", "password": PASSWORD})).await;
    assert_eq!(status, 200, "{done}");
    let token = done["session_token"].as_str().unwrap();
    let res = t.http.get(format!("{}/self-service/settings/api", t.public)).header("X-Session-Token", token);
    let settings: Value = res.send().await.unwrap().json().await.unwrap();
    let names = node_names(&settings);
    let first = names.iter().position(|n| n == "traits.name.first").unwrap();
    let last = names.iter().position(|n| n == "traits.name.last").unwrap();
    assert!(first < last, "settings: {names:?}");
}
both_backends!(nested_traits_keep_schema_order);
