//! Verification and recovery end to end over a real SMTP server process: codes and links are
//! read from the delivered mail, for native (API), browser (HTML forms) and SPA clients; the
//! registration hooks, admin-minted codes and links, templates and the HTTP channel.

use crate::both_backends;
use crate::courier::SmtpPeer;
use crate::harness::{Db, TestApp};
use crate::selfservice::{
    Jar, PASSWORD, api_flow, api_register, api_submit, csrf_of, flow_id_of, get_json, location, message_ids, node,
    open_browser_flow,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tessera::config::{CodeOrLink, Config, Dur, HookConfig};

fn flows_config(port: u16, method: CodeOrLink) -> impl FnOnce(&mut Config) + 'static {
    move |c| {
        c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
        c.courier.smtp.from_address = "accounts@tessera.test".into();
        c.courier.worker.pull_wait = Dur(Duration::from_millis(50));
        c.selfservice.flows.verification.enabled = true;
        c.selfservice.flows.verification.method = method;
        c.selfservice.flows.verification.ui_url = "https://ui.example/verification".into();
        c.selfservice.flows.recovery.enabled = true;
        c.selfservice.flows.recovery.method = method;
        c.selfservice.flows.recovery.ui_url = "https://ui.example/recovery".into();
        c.selfservice.flows.settings.ui_url = "https://ui.example/settings".into();
        c.selfservice.methods.link.enabled = true;
    }
}

/// Creates an identity through the admin API; returns it.
async fn create_identity(t: &TestApp, email: &str) -> Value {
    let (status, _, body) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({
                "schema_id": "default",
                "traits": {"email": email},
                "credentials": {"password": {"config": {"password": PASSWORD}}},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn identity(t: &TestApp, id: &str) -> Value {
    let (status, _, body) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The newest mail to `to` (waits for it).
pub(crate) async fn mail_to(peer: &SmtpPeer, to: &str, nth: usize) -> Value {
    let start = std::time::Instant::now();
    loop {
        let got: Vec<Value> = peer.received().into_iter().filter(|m| m["to"][0] == to).collect();
        if got.len() >= nth {
            return got[nth - 1].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no mail #{nth} to {to}: {:?}", peer.received());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The 6-digit code in a mail's text part.
pub(crate) fn code_in(mail: &Value) -> String {
    let text = mail["text"].as_str().unwrap();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .into()
}

/// The first URL in a mail's text part that contains `needle`.
fn link_in(mail: &Value, needle: &str) -> String {
    let text = mail["text"].as_str().unwrap();
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .into()
}

/// A client that does not follow redirects.
fn browser(_t: &TestApp) -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn verification_with_code(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(flows_config(peer.port, CodeOrLink::Code)).build().await;
    let created = create_identity(&t, "vera@example.org").await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["verifiable_addresses"][0]["verified"], false);

    // Native client.
    let flow = api_flow(&t, "verification", "").await;
    assert_eq!(flow["state"], "choose_method");
    assert_eq!(node(&flow, "email").unwrap()["group"], "code");
    let (status, sent) =
        api_submit(&t, "verification", &flow, json!({"method": "code", "email": "Vera@Example.org"})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1080003]);
    assert!(node(&sent, "code").is_some());
    let mail = mail_to(&peer, "vera@example.org", 1).await;
    assert_eq!(mail["from"], "accounts@tessera.test");
    assert!(mail["html"].as_str().unwrap().contains("<strong>"), "the HTML alternative is rendered: {mail}");
    let code = code_in(&mail);
    assert!(link_in(&mail, "/self-service/verification?").contains(&format!("code={code}")));

    assert_eq!(identity(&t, &id).await["verifiable_addresses"][0]["status"], "sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = api_submit(&t, "verification", &flow, json!({"method": "code", "code": wrong})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(message_ids(&body), vec![4070006]);
    let (status, done) = api_submit(&t, "verification", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "passed_challenge");
    assert_eq!(message_ids(&done), vec![1080002]);
    assert_eq!(done["ui"]["method"], "GET");
    assert_eq!(done["ui"]["nodes"][0]["attributes"]["href"], "https://app.example/welcome");
    let after = identity(&t, &id).await;
    assert_eq!(after["verifiable_addresses"][0]["verified"], true);
    assert_eq!(after["verifiable_addresses"][0]["status"], "completed");
    assert!(after["verifiable_addresses"][0]["verified_at"].is_string());

    // Submitting again starts a new flow: JSON clients get 410 naming it, with 4070002.
    let (status, gone) = api_submit(&t, "verification", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 410, "{gone}");
    assert_eq!(gone["error"]["id"], "self_service_flow_replaced");
    let next = gone["use_flow_id"].as_str().unwrap();
    let replacement: Value =
        get_json(&t.http, format!("{}/self-service/verification/flows?id={next}", t.public), None).await;
    assert_eq!(message_ids(&replacement), vec![4070002]);

    // Unknown addresses get the same answer and no mail.
    let flow = api_flow(&t, "verification", "").await;
    let (status, body) =
        api_submit(&t, "verification", &flow, json!({"method": "code", "email": "nobody@example.org"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "sent_email");
    // Bad input: a 400 flow with the problem on the field.
    let flow = api_flow(&t, "verification", "").await;
    let (status, body) =
        api_submit(&t, "verification", &flow, json!({"method": "code", "email": "not an address"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000040]);
    let (status, body) = api_submit(&t, "verification", &flow, json!({"method": "code"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000002]);

    // Browser: HTML forms with a cookie jar; the link in the mail pre-fills the code.
    let client = browser(&t);
    let mut jar = Jar::default();
    let res = jar.send(client.get(format!("{}/self-service/verification/browser", t.public))).await;
    assert_eq!(res.status(), 303);
    let flow_id = flow_id_of(&location(&res));
    assert!(location(&res).starts_with("https://ui.example/verification?flow="));
    let fetch = |jar: &Jar| {
        client
            .get(format!("{}/self-service/verification/flows?id={flow_id}", t.public))
            .header("Cookie", jar.header())
            .send()
    };
    let flow: Value = fetch(&jar).await.unwrap().json().await.unwrap();
    let res = jar
        .send(client.post(format!("{}/self-service/verification?flow={flow_id}", t.public)).form(&[
            ("method", "code"),
            ("email", "vera@example.org"),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let mail = mail_to(&peer, "vera@example.org", 2).await;
    let link = link_in(&mail, "/self-service/verification?");
    let res = jar.send(client.get(&link)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/verification?flow={flow_id}"));
    let flow: Value = fetch(&jar).await.unwrap().json().await.unwrap();
    let code = node(&flow, "code").unwrap()["attributes"]["value"].as_str().unwrap().to_string();
    assert_eq!(code, code_in(&mail));
    let res = jar
        .send(client.post(format!("{}/self-service/verification?flow={flow_id}", t.public)).form(&[
            ("method", "code"),
            ("code", code.as_str()),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let flow: Value = fetch(&jar).await.unwrap().json().await.unwrap();
    assert_eq!(flow["state"], "passed_challenge");
}
both_backends!(verification_with_code);

async fn verification_with_link(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(flows_config(peer.port, CodeOrLink::Link)).build().await;
    let created = create_identity(&t, "lin@example.org").await;
    let flow = api_flow(&t, "verification", "").await;
    assert_eq!(node(&flow, "email").unwrap()["group"], "link");
    let (status, sent) =
        api_submit(&t, "verification", &flow, json!({"method": "link", "email": "lin@example.org"})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(message_ids(&sent), vec![1080001]);
    let mail = mail_to(&peer, "lin@example.org", 1).await;
    let link = link_in(&mail, "token=");
    // Opening the link in a browser (no Accept header): verified, then the UI shows the flow.
    let res = browser(&t).get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/verification?flow={}", flow["id"].as_str().unwrap()));
    let after = identity(&t, created["id"].as_str().unwrap()).await;
    assert_eq!(after["verifiable_addresses"][0]["verified"], true);
    // A link works once: then a new (browser) flow is shown in the UI.
    let res = browser(&t).get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/verification?flow="), "{}", location(&res));
    assert_ne!(flow_id_of(&location(&res)), flow["id"].as_str().unwrap());
}
both_backends!(verification_with_link);

fn show_verification_ui(c: &mut Config) {
    c.selfservice.flows.registration.after.password.hooks = vec![
        HookConfig { hook: "show_verification_ui".into(), config: None },
        HookConfig { hook: "session".into(), config: None },
    ];
}

async fn registration_sends_verification(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            show_verification_ui(c);
        })
        .build()
        .await;
    let body = api_register(&t, "reg@example.org").await;
    let items = body["continue_with"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["show_verification_ui", "set_ory_session_token"], "{body}");
    assert_eq!(items[0]["flow"]["verifiable_address"], "reg@example.org");
    assert!(items[0]["flow"].get("url").is_none(), "API flows have no UI URL");
    let vflow_id = items[0]["flow"]["id"].as_str().unwrap();
    let vflow: Value =
        get_json(&t.http, format!("{}/self-service/verification/flows?id={vflow_id}", t.public), None).await;
    assert_eq!(vflow["state"], "sent_email");
    assert_eq!(node(&vflow, "email").unwrap()["attributes"]["value"], "reg@example.org");
    let code = code_in(&mail_to(&peer, "reg@example.org", 1).await);
    let (status, done) = api_submit(&t, "verification", &vflow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "passed_challenge");
    let id = body["identity"]["id"].as_str().unwrap();
    assert_eq!(identity(&t, id).await["verifiable_addresses"][0]["verified"], true);

    // Browser: the registration redirect goes to the verification flow.
    let client = browser(&t);
    let mut jar = Jar::default();
    let (flow_id, flow) = open_browser_flow(&client, &mut jar, &t.public, "registration").await;
    let res = jar
        .send(client.post(format!("{}/self-service/registration?flow={flow_id}", t.public)).form(&[
            ("method", "password"),
            ("traits.email", "web@example.org"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/verification?flow="), "{}", location(&res));
    mail_to(&peer, "web@example.org", 1).await;
}
both_backends!(registration_sends_verification);

async fn recovery_with_code(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(flows_config(peer.port, CodeOrLink::Code)).build().await;
    let created = create_identity(&t, "rita@example.org").await;
    let id = created["id"].as_str().unwrap();

    let flow = api_flow(&t, "recovery", "").await;
    assert_eq!(flow["state"], "choose_method");
    // Known and unknown addresses get the same answer; only the known one gets mail.
    let (status, sent) = api_submit(
        &t,
        "recovery",
        &flow,
        json!({"method": "code", "email": "rita@example.org", "transient_payload": {"campaign": "spring"}}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["transient_payload"], json!({"campaign": "spring"}), "echoed on the answer");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1060003]);
    let other = api_flow(&t, "recovery", "").await;
    let (status, unknown) =
        api_submit(&t, "recovery", &other, json!({"method": "code", "email": "ghost@example.org"})).await;
    assert_eq!(status, 200);
    assert_eq!(unknown["state"], sent["state"]);
    assert_eq!(message_ids(&unknown), message_ids(&sent));
    let code = code_in(&mail_to(&peer, "rita@example.org", 1).await);

    // Wrong codes: 4060006 on the same flow, five times; the sixth submit restarts the flow.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": wrong})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(message_ids(&body), vec![4060006]);
    }
    let res = browser(&t)
        .post(format!("{}/self-service/recovery?flow={}", t.public, flow["id"].as_str().unwrap()))
        .json(&json!({"method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "too many submissions");
    let next: Value = t.http.get(location(&res)).send().await.unwrap().json().await.unwrap();
    assert_eq!(message_ids(&next), vec![4000001]);

    // A fresh flow: the right code signs in and opens a settings flow (422 to it, flag off).
    let flow = api_flow(&t, "recovery", "").await;
    api_submit(&t, "recovery", &flow, json!({"method": "code", "email": "rita@example.org"})).await;
    let code = code_in(&mail_to(&peer, "rita@example.org", 2).await);
    let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    let to = body["redirect_browser_to"].as_str().unwrap();
    assert!(to.starts_with("https://ui.example/settings?flow="), "{to}");
    // The code is spent.
    let (status, _) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 303);
    // The address counts as verified now.
    assert_eq!(identity(&t, id).await["verifiable_addresses"][0]["verified"], true);
}
both_backends!(recovery_with_code);

async fn recovery_with_continue_with_transitions(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.feature_flags.use_continue_with_transitions = true;
        })
        .build()
        .await;
    let created = create_identity(&t, "tom@example.org").await;
    let flow = api_flow(&t, "recovery", "").await;
    api_submit(&t, "recovery", &flow, json!({"method": "code", "email": "tom@example.org"})).await;
    let code = code_in(&mail_to(&peer, "tom@example.org", 1).await);
    let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "passed_challenge");
    let items = body["continue_with"].as_array().unwrap();
    assert_eq!(items[0]["action"], "set_ory_session_token");
    assert_eq!(items[1]["action"], "show_settings_ui");
    let token = items[0]["ory_session_token"].as_str().unwrap();
    let settings_id = items[1]["flow"]["id"].as_str().unwrap();
    // The session token is in this answer only, never in the stored flow.
    let stored: Value = get_json(
        &t.http,
        format!("{}/self-service/recovery/flows?id={}", t.public, flow["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(stored["state"], "passed_challenge");
    assert!(stored.get("continue_with").is_none() && !stored.to_string().contains(token), "{stored}");
    // The session: AMR code_recovery; it may read the settings flow, others may not.
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
    assert_eq!(whoami["authentication_methods"][0]["method"], "code_recovery");
    assert_eq!(whoami["identity"]["id"], created["id"]);
    let settings_url = format!("{}/self-service/settings/flows?id={settings_id}", t.public);
    let res = t.http.get(&settings_url).header("X-Session-Token", token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let settings: Value = res.json().await.unwrap();
    assert_eq!(settings["identity"]["id"], created["id"]);
    assert_eq!(settings["state"], "show_form");
    assert_eq!(message_ids(&settings), vec![1060001]);
    assert!(node(&settings, "password").is_some());
    let res = t.http.get(&settings_url).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 401);
}
both_backends!(recovery_with_continue_with_transitions);

async fn recovery_with_link_in_a_browser(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(flows_config(peer.port, CodeOrLink::Link)).build().await;
    create_identity(&t, "lisa@example.org").await;
    let client = browser(&t);
    let mut jar = Jar::default();
    let res = jar
        .send(client.get(format!("{}/self-service/recovery/browser?return_to=https://app.example/after", t.public)))
        .await;
    assert_eq!(res.status(), 303);
    let flow_id = flow_id_of(&location(&res));
    let flow: Value =
        get_json(&client, format!("{}/self-service/recovery/flows?id={flow_id}", t.public), Some(&jar)).await;
    // Without the CSRF token: 403, nothing sent, and the CSRF cookie is replaced (in a copy of
    // the browser here, so that the flow stays usable below).
    let mut other = jar.clone();
    let before = other.cookies.clone();
    let res = other
        .send(
            client
                .post(format!("{}/self-service/recovery?flow={flow_id}", t.public))
                .header("Accept", "application/json")
                .form(&[("method", "link"), ("email", "lisa@example.org")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_ne!(other.cookies, before, "a new CSRF cookie");
    let res = jar
        .send(client.post(format!("{}/self-service/recovery?flow={flow_id}", t.public)).form(&[
            ("method", "link"),
            ("email", "lisa@example.org"),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/recovery?flow={flow_id}"));
    let link = link_in(&mail_to(&peer, "lisa@example.org", 1).await, "token=");
    assert_eq!(peer.received().len(), 1, "the CSRF failure sent nothing");
    let res = jar.send(client.get(&link)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/settings?flow="), "{}", location(&res));
    let whoami =
        client.get(format!("{}/sessions/whoami", t.public)).header("Cookie", jar.header()).send().await.unwrap();
    assert_eq!(whoami.status(), 200, "the session cookie was set");
    let whoami: Value = whoami.json().await.unwrap();
    assert_eq!(whoami["authentication_methods"][0]["method"], "link_recovery");
    let settings: Value = get_json(
        &client,
        format!("{}/self-service/settings/flows?id={}", t.public, flow_id_of(&location(&res))),
        Some(&jar),
    )
    .await;
    assert_eq!(settings["return_to"], "https://app.example/after");
    // The point of recovery: a new password, set through the settings flow.
    let res = jar
        .send(
            client.post(format!("{}/self-service/settings?flow={}", t.public, settings["id"].as_str().unwrap())).form(
                &[("method", "password"), ("password", "recovered-pw-2024"), ("csrf_token", &csrf_of(&settings))],
            ),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example/after", "the recovery's return_to");
    assert_eq!(crate::selfservice::api_login(&t, "lisa@example.org", "recovered-pw-2024").await.0, 200);
    // Signed in: creating another recovery flow redirects (HTML) or fails (JSON).
    let res = jar.send(client.get(format!("{}/self-service/recovery/browser", t.public))).await;
    assert_eq!(res.status(), 302);
    let res = client
        .get(format!("{}/self-service/recovery/browser", t.public))
        .header("Cookie", jar.header())
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_already_available");
    // The link is spent: a new flow with 4060004.
    let res = client.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/recovery?flow="));
}
both_backends!(recovery_with_link_in_a_browser);

async fn admin_recovery_codes_and_links(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(flows_config(peer.port, CodeOrLink::Code)).build().await;
    let created = create_identity(&t, "adam@example.org").await;
    let id = created["id"].as_str().unwrap();

    let (status, _, body) =
        t.admin_json(Method::POST, "/admin/recovery/code", Some(json!({"identity_id": id, "flow_type": "api"}))).await;
    assert_eq!(status, 201, "{body}");
    let code = body["recovery_code"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    let link = body["recovery_link"].as_str().unwrap();
    assert!(link.starts_with("https://ui.example/recovery?flow="), "{link}");
    let flow: Value =
        get_json(&t.http, format!("{}/self-service/recovery/flows?id={}", t.public, flow_id_of(link)), None).await;
    assert_eq!(flow["state"], "sent_email");
    let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 422, "{body}");
    // Admin codes do not verify addresses.
    assert_eq!(identity(&t, id).await["verifiable_addresses"][0]["verified"], false);

    for (body, want) in [
        (json!({"identity_id": id, "expires_in": "soon"}), 400),
        (json!({"identity_id": id, "expires_in": "-1h"}), 400),
        (json!({"identity_id": id, "flow_type": "spa"}), 400),
        (json!({"identity_id": uuid::Uuid::new_v4()}), 404),
        (json!({"identity_id": "not-a-uuid"}), 400),
    ] {
        let (status, _, out) = t.admin_json(Method::POST, "/admin/recovery/code", Some(body.clone())).await;
        assert_eq!(status, want, "{body} → {out}");
        assert!(out["error"]["reason"].is_string() || out["error"]["message"].is_string(), "{out}");
    }

    let (status, _, body) =
        t.admin_json(Method::POST, "/admin/recovery/link", Some(json!({"identity_id": id, "expires_in": "10m"}))).await;
    assert_eq!(status, 200, "{body}");
    let link = body["recovery_link"].as_str().unwrap();
    assert!(link.contains("/self-service/recovery?flow=") && link.contains("&token="), "{link}");
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.with_timezone(&chrono::Utc) - t.app().state().clock.now();
    assert!(left > chrono::Duration::minutes(9) && left <= chrono::Duration::minutes(10), "{left}");
    let res = browser(&t).get(link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/settings?flow="));
    let (status, _, _) =
        t.admin_json(Method::POST, "/admin/recovery/link", Some(json!({"identity_id": uuid::Uuid::new_v4()}))).await;
    assert_eq!(status, 400);
    assert!(peer.received().is_empty(), "admin recovery sends no mail");

    // With the method off the endpoint is not there.
    let port = peer.port;
    let off = TestApp::builder(Db::Sqlite)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.selfservice.methods.link.enabled = false;
        })
        .build()
        .await;
    let (status, _, _) = off.admin_json(Method::POST, "/admin/recovery/link", Some(json!({"identity_id": id}))).await;
    assert_eq!(status, 404);
}
both_backends!(admin_recovery_codes_and_links);

async fn disabled_flows_and_bad_input(db: Db) {
    let t = TestApp::new(db).await;
    for kind in ["recovery", "verification"] {
        let res = t.http.get(format!("{}/self-service/{kind}/api", t.public)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{kind} is disabled by default");
    }
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(Db::Sqlite).config(flows_config(peer.port, CodeOrLink::Code)).build().await;
    let flow = api_flow(&t, "recovery", "").await;
    for body in
        [json!({"method": "code", "email": 42}), json!({"method": "code", "email": ""}), json!({"method": "sms"})]
    {
        let (status, out) = api_submit(&t, "recovery", &flow, body.clone()).await;
        assert_eq!(status, 400, "{body} → {out}");
    }
    let res = t
        .http
        .post(format!("{}/self-service/recovery?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res =
        t.http.post(format!("{}/self-service/recovery?flow=nope", t.public)).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = t
        .http
        .get(format!("{}/self-service/verification/flows?id={}", t.public, uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(peer.received().is_empty());
}
both_backends!(disabled_flows_and_bad_input);

async fn unverified_login_is_sent_to_verification(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.selfservice.flows.login.after.password.hooks =
                vec![HookConfig { hook: "require_verified_address".into(), config: None }];
        })
        .build()
        .await;
    create_identity(&t, "una@example.org").await;
    let (status, body) = crate::selfservice::api_login(&t, "una@example.org", PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["id"], "session_verified_address_required");
    let item = &body["error"]["details"]["continue_with"][0];
    assert_eq!(item["action"], "show_verification_ui");
    assert_eq!(item["flow"]["verifiable_address"], "una@example.org");
    assert!(item["flow"]["url"].as_str().unwrap().starts_with("https://ui.example/verification?flow="));
    // The code in the mail verifies the address; then the login succeeds.
    let vflow: Value = get_json(
        &t.http,
        format!("{}/self-service/verification/flows?id={}", t.public, item["flow"]["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(vflow["state"], "sent_email");
    let code = code_in(&mail_to(&peer, "una@example.org", 1).await);
    let (status, _) = api_submit(&t, "verification", &vflow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200);
    let (status, body) = crate::selfservice::api_login(&t, "una@example.org", PASSWORD).await;
    assert_eq!(status, 200, "{body}");

    // A browser (HTML form) is sent to the verification UI instead.
    create_identity(&t, "ben@example.org").await;
    let client = browser(&t);
    let mut jar = Jar::default();
    let (flow_id, flow) = open_browser_flow(&client, &mut jar, &t.public, "login").await;
    let res = jar
        .send(client.post(format!("{}/self-service/login?flow={flow_id}", t.public)).form(&[
            ("method", "password"),
            ("identifier", "ben@example.org"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/verification?flow="), "{}", location(&res));
    assert!(!jar.has_prefix("ory_kratos_session"), "no session for an unverified login");
}
both_backends!(unverified_login_is_sent_to_verification);

async fn changed_address_is_verified_again(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.selfservice.flows.registration.after.password.hooks =
                vec![HookConfig { hook: "session".into(), config: None }];
            c.selfservice.flows.settings.after.profile.hooks =
                vec![HookConfig { hook: "show_verification_ui".into(), config: None }];
        })
        .build()
        .await;
    let body = api_register(&t, "first@example.org").await;
    let token = body["session_token"].as_str().unwrap();
    mail_to(&peer, "first@example.org", 1).await;
    let flow: Value = t
        .http
        .get(format!("{}/self-service/settings/api", t.public))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = t
        .http
        .post(format!("{}/self-service/settings?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Session-Token", token)
        .header("Accept", "application/json")
        .json(&json!({"method": "profile", "traits": {"email": "second@example.org"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let saved: Value = res.json().await.unwrap();
    assert_eq!(saved["continue_with"][0]["action"], "show_verification_ui", "{saved}");
    assert_eq!(saved["continue_with"][0]["flow"]["verifiable_address"], "second@example.org");
    let code = code_in(&mail_to(&peer, "second@example.org", 1).await);
    assert_eq!(code.len(), 6);
    let id = body["identity"]["id"].as_str().unwrap();
    assert_eq!(identity(&t, id).await["verifiable_addresses"][0]["status"], "sent");
}
both_backends!(changed_address_is_verified_again);

async fn unknown_recipients_can_be_notified(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.selfservice.flows.recovery.notify_unknown_recipients = true;
            c.selfservice.flows.verification.notify_unknown_recipients = true;
        })
        .build()
        .await;
    for kind in ["recovery", "verification"] {
        let flow = api_flow(&t, kind, "").await;
        let to = format!("stranger-{kind}@example.org");
        let (status, body) = api_submit(&t, kind, &flow, json!({"method": "code", "email": to})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "sent_email");
        let mail = mail_to(&peer, &to, 1).await;
        let text = mail["text"].as_str().unwrap();
        assert!(text.contains("no account uses it"), "the invalid template: {text}");
    }
    let (_, _, list) = t.admin_json(Method::GET, "/admin/courier/messages", None).await;
    let mut types: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["template_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["recovery_code_invalid", "verification_code_invalid"]);
}
both_backends!(unknown_recipients_can_be_notified);

async fn submission_limit_holds_across_instances(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let a = TestApp::builder(db).config(move |c| flows_config(port, CodeOrLink::Code)(c)).build().await;
    let b = TestApp::builder(db).config(move |c| flows_config(port, CodeOrLink::Code)(c)).same_db_as(&a).build().await;
    create_identity(&a, "twice@example.org").await;
    let flow = api_flow(&a, "recovery", "").await;
    api_submit(&a, "recovery", &flow, json!({"method": "code", "email": "twice@example.org"})).await;
    let code = code_in(&mail_to(&peer, "twice@example.org", 1).await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Five wrong codes, alternating between two servers on one database.
    for n in 0..5 {
        let t = if n % 2 == 0 { &a } else { &b };
        let (status, body) = api_submit(t, "recovery", &flow, json!({"method": "code", "code": wrong})).await;
        assert_eq!(status, 200, "submit {n}: {body}");
        assert_eq!(message_ids(&body), vec![4060006]);
    }
    // The sixth — even the right code, on either server — restarts the flow.
    let res = b
        .http
        .post(format!("{}/self-service/recovery?flow={}", b.public, flow["id"].as_str().unwrap()))
        .header("Accept", "application/json")
        .json(&json!({"method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the limit counts submissions on every instance");
}
both_backends!(submission_limit_holds_across_instances);

/// Asks for a recovery or verification message to `email` on a new API flow, as client
/// `client` (forwarded by the trusted loopback proxy); returns the status and message ids.
async fn send_from(t: &TestApp, kind: &str, email: &str, client: &str) -> (u16, Vec<u64>, Value) {
    let flow = api_flow(t, kind, "").await;
    let res = t
        .http
        .post(format!("{}/self-service/{kind}?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("Accept", "application/json")
        .header("X-Forwarded-For", client)
        .json(&json!({"method": "code", "email": email}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, message_ids(&body), body)
}

/// Recovery and verification sends are limited per address and per client; known and
/// unknown addresses count alike, and a resend leaves only the newest code valid.
async fn sends_are_limited_per_address_and_client(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.security.send_limits.max_per_address = 2;
            c.security.send_limits.max_per_ip = 4;
            c.security.trusted_proxies = vec![tessera::config::Cidr::parse("127.0.0.0/8").unwrap()];
        })
        .build()
        .await;
    create_identity(&t, "known@example.org").await;
    for (email, client) in [("known@example.org", "198.51.100.1"), ("ghost@example.org", "198.51.100.2")] {
        for _ in 0..2 {
            let (status, ids, body) = send_from(&t, "recovery", email, client).await;
            assert_eq!((status, ids), (200, vec![1060003]), "{body}");
        }
        // The third message to the address, even from another client, is refused, and the
        // answer is the same for the known and the unknown address.
        let (status, ids, body) = send_from(&t, "recovery", email, "198.51.100.9").await;
        assert_eq!((status, ids), (400, vec![4069001]), "{body}");
        assert!(body["ui"]["messages"][0]["context"]["retry_after_seconds"].as_i64().unwrap() > 3000);
        assert_eq!(body["state"], "choose_method");
    }
    // The known address got its two messages and no third.
    mail_to(&peer, "known@example.org", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.received().iter().filter(|m| m["to"][0] == "known@example.org").count(), 2);
    // One client cannot write to any number of addresses; the limit counts verification too.
    for n in 0..3 {
        let (status, ids, _) = send_from(&t, "recovery", &format!("r{n}@example.org"), "198.51.100.3").await;
        assert_eq!((status, ids), (200, vec![1060003]));
    }
    let (status, ids, _) = send_from(&t, "verification", "v@example.org", "198.51.100.3").await;
    assert_eq!((status, ids), (200, vec![1080003]));
    let (status, ids, _) = send_from(&t, "verification", "v2@example.org", "198.51.100.3").await;
    assert_eq!((status, ids), (400, vec![4079001]));
    let (status, ids, _) = send_from(&t, "verification", "v2@example.org", "198.51.100.4").await;
    assert_eq!((status, ids), (200, vec![1080003]), "other clients are not affected");

    // A resend on one flow: only the newest code is valid.
    create_identity(&t, "again@example.org").await;
    let flow = api_flow(&t, "recovery", "").await;
    api_submit(&t, "recovery", &flow, json!({"method": "code", "email": "again@example.org"})).await;
    let first = code_in(&mail_to(&peer, "again@example.org", 1).await);
    api_submit(&t, "recovery", &flow, json!({"method": "code", "email": "again@example.org"})).await;
    let second = code_in(&mail_to(&peer, "again@example.org", 2).await);
    if first != second {
        let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": first})).await;
        assert_eq!((status, message_ids(&body)), (200, vec![4060006]), "{body}");
    }
    let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": second})).await;
    assert_eq!(status, 422, "{body}");
}
both_backends!(sends_are_limited_per_address_and_client);

async fn login_verification_hook(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.selfservice.flows.login.after.password.hooks = vec![
                HookConfig { hook: "verification".into(), config: None },
                HookConfig { hook: "show_verification_ui".into(), config: None },
            ];
        })
        .build()
        .await;
    create_identity(&t, "lv@example.org").await;
    let (status, body) = crate::selfservice::api_login(&t, "lv@example.org", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session_token"].is_string());
    let item = &body["continue_with"][0];
    assert_eq!(item["action"], "show_verification_ui", "{body}");
    assert_eq!(item["flow"]["verifiable_address"], "lv@example.org");
    assert_eq!(code_in(&mail_to(&peer, "lv@example.org", 1).await).len(), 6);
}
both_backends!(login_verification_hook);

/// A flow one instance advanced is not served stale by another that had it cached
/// (PostgreSQL: the commit of the flow's write notifies the other instances).
#[actix_web::test]
async fn flows_changed_elsewhere_are_reloaded() {
    if std::env::var("DATABASE_URL").is_err() {
        crate::harness::cannot_run("DATABASE_URL is not set (multi-instance test not run)");
        return;
    }
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    // Instances of one deployment share their secrets (codes are keyed with them).
    let config = move |c: &mut Config| {
        flows_config(port, CodeOrLink::Code)(c);
        c.secrets.default = vec!["one-deployment-one-secret-32-chars".into()];
    };
    let a = TestApp::builder(Db::Postgres).config(config).build().await;
    let b = TestApp::builder(Db::Postgres).config(config).same_db_as(&a).build().await;
    create_identity(&a, "fresh@example.org").await;
    let flow = api_flow(&a, "verification", "").await;
    let url = |t: &TestApp| format!("{}/self-service/verification/flows?id={}", t.public, flow["id"].as_str().unwrap());
    // B caches the flow as it is now …
    assert_eq!(get_json(&b.http, url(&b), None).await["state"], "choose_method");
    // … A advances it …
    let (status, _) =
        api_submit(&a, "verification", &flow, json!({"method": "code", "email": "fresh@example.org"})).await;
    assert_eq!(status, 200);
    // … and B serves the new state once A's write has committed.
    let start = std::time::Instant::now();
    loop {
        let state = get_json(&b.http, url(&b), None).await["state"].clone();
        if state == "sent_email" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "B still serves {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The code from the mail works on B.
    let code = code_in(&mail_to(&peer, "fresh@example.org", 1).await);
    let (status, body) = api_submit(&b, "verification", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "passed_challenge");
}

/// Recovery v2 over the API: a choice between the account's e-mail address and phone
/// number (masked), a code by e-mail or by SMS through a real HTTP gateway, the full address
/// asked for when the choice is not the typed address, and unknown addresses answered alike.
async fn recovery_v2_choose_an_address(db: Db) {
    use tessera::config::SchemaSource;
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let Some(gateway) = crate::hooks::Peer::start().await else { return };
    let (port, base) = (peer.port, gateway.base.clone());
    let t = TestApp::builder(db)
        .config(move |c| {
            flows_config(port, CodeOrLink::Code)(c);
            c.feature_flags.choose_recovery_address = true;
            c.feature_flags.use_continue_with_transitions = true;
            c.identity.schemas.push(SchemaSource {
                id: "both".into(),
                url: crate::harness::fixture("email-phone-recovery.schema.json"),
                selfservice_selectable: false,
            });
            c.courier.channels = vec![crate::passwordless::sms_gateway(&base)];
        })
        .build()
        .await;
    let (status, _, created) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({"schema_id": "both", "traits": {"email": "rae@example.org", "phone": "+16502530002"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let hash = |a: &str| {
        use sha2::Digest;
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha2::Sha256::digest(a.as_bytes()))
    };

    // The first screen asks for an address.
    let flow = api_flow(&t, "recovery", "").await;
    assert_eq!(flow["state"], "recovery_awaiting_address");
    assert_eq!(node(&flow, "recovery_address").unwrap()["meta"]["label"]["id"], 1070016);
    let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000002]);

    // Two addresses: a choice, masked.
    let (status, choice) =
        api_submit(&t, "recovery", &flow, json!({"method": "code", "recovery_address": "rae@example.org"})).await;
    assert_eq!(status, 200, "{choice}");
    assert_eq!(choice["state"], "recovery_awaiting_address_choice");
    assert_eq!(message_ids(&choice), vec![1060006]);
    let options: Vec<(String, String)> = choice["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["attributes"]["name"] == "recovery_select_address")
        .map(|n| {
            (n["meta"]["label"]["text"].as_str().unwrap().into(), n["attributes"]["value"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        options,
        vec![
            ("+16****02".to_string(), hash("+16502530002")),
            ("ra****@example.org".to_string(), hash("rae@example.org"))
        ]
    );
    // The typed address chosen: the code goes there by e-mail.
    let (status, sent) = api_submit(
        &t,
        "recovery",
        &flow,
        json!({"method": "code", "recovery_address": "rae@example.org", "recovery_select_address": hash("rae@example.org")}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["state"], "recovery_awaiting_code");
    assert_eq!(message_ids(&sent), vec![1060004]);
    assert_eq!(sent["ui"]["messages"][0]["context"]["masked_address"], "ra****@example.org");
    let code = code_in(&mail_to(&peer, "rae@example.org", 1).await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": wrong})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(message_ids(&body), vec![4060006]);
    let (status, done) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "passed_challenge");
    let actions: Vec<&str> =
        done["continue_with"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["set_ory_session_token", "show_settings_ui"]);

    // The phone chosen after typing the e-mail address: typed in full, then a text message.
    let flow = api_flow(&t, "recovery", "").await;
    api_submit(&t, "recovery", &flow, json!({"method": "code", "recovery_address": "rae@example.org"})).await;
    let (status, confirm) = api_submit(
        &t,
        "recovery",
        &flow,
        json!({"method": "code", "recovery_address": "rae@example.org", "recovery_select_address": hash("+16502530002")}),
    )
    .await;
    assert_eq!(status, 200, "{confirm}");
    assert_eq!(confirm["state"], "recovery_confirming_address");
    assert_eq!(message_ids(&confirm), vec![1060005]);
    let input = node(&confirm, "recovery_confirm_address").unwrap();
    assert_eq!(input["attributes"]["type"], "tel");
    assert_eq!(input["meta"]["label"]["id"], 1070017);
    // A choice that is none of the account's addresses is refused.
    let flow2 = api_flow(&t, "recovery", "").await;
    api_submit(&t, "recovery", &flow2, json!({"method": "code", "recovery_address": "rae@example.org"})).await;
    let (status, body) = api_submit(
        &t,
        "recovery",
        &flow2,
        json!({"method": "code", "recovery_address": "rae@example.org", "recovery_select_address": hash("x@y.z")}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000001]);
    let (status, sent) = api_submit(
        &t,
        "recovery",
        &flow,
        json!({"method": "code", "recovery_address": "rae@example.org", "recovery_confirm_address": "+16502530002"}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["ui"]["messages"][0]["context"]["masked_address"], "+16****02");
    let text = {
        let start = std::time::Instant::now();
        loop {
            let got: Vec<Value> =
                gateway.requests().await.into_iter().filter(|r| r["path"] == "/hook/ok/sms").collect();
            if let Some(r) = got.first() {
                break r.clone();
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no text message");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(text["body"]["to"], "+16502530002");
    assert_eq!(text["body"]["kind"], "recovery_code_valid");
    let body = text["body"]["text"].as_str().unwrap();
    let code: String = body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().into();
    // Back from the code screen: the choice again.
    let flow3 = api_flow(&t, "recovery", "").await;
    api_submit(&t, "recovery", &flow3, json!({"method": "code", "recovery_address": "rae@example.org"})).await;
    api_submit(
        &t,
        "recovery",
        &flow3,
        json!({"method": "code", "recovery_address": "rae@example.org", "recovery_select_address": hash("rae@example.org")}),
    )
    .await;
    let (status, back) = api_submit(
        &t,
        "recovery",
        &flow3,
        json!({"method": "code", "recovery_address": "rae@example.org", "screen": "previous"}),
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["state"], "recovery_awaiting_address_choice");
    let (status, done) = api_submit(&t, "recovery", &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "passed_challenge");

    // An account with one address, typed in another case, answers like an unknown address.
    let (status, _, _) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({"schema_id": "both", "traits": {"email": "solo@example.org"}})),
        )
        .await;
    assert_eq!(status, 201);
    let mut states = Vec::new();
    for typed in ["SOLO@Example.org", "GHOST2@Example.org"] {
        let flow = api_flow(&t, "recovery", "").await;
        let (status, body) =
            api_submit(&t, "recovery", &flow, json!({"method": "code", "recovery_address": typed})).await;
        assert_eq!(status, 200, "{body}");
        states.push((body["state"].clone(), message_ids(&body)));
    }
    assert_eq!(states[0], states[1]);
    assert_eq!(states[0].0, "recovery_awaiting_code");
    assert_eq!(code_in(&mail_to(&peer, "solo@example.org", 1).await).len(), 6);

    // An unknown address looks like a known one with a single address; nothing is sent.
    let flow = api_flow(&t, "recovery", "").await;
    let (status, sent) =
        api_submit(&t, "recovery", &flow, json!({"method": "code", "recovery_address": "ghost@example.org"})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["state"], "recovery_awaiting_code");
    assert_eq!(message_ids(&sent), vec![1060004]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(peer.received().iter().all(|m| m["to"][0] != "ghost@example.org"));

    // HTML forms: every screen is a 303 back to the recovery UI.
    let client = browser(&t);
    let mut jar = Jar::default();
    let res = jar.send(client.get(format!("{}/self-service/recovery/browser", t.public))).await;
    let id = flow_id_of(&location(&res));
    let fetch = format!("{}/self-service/recovery/flows?id={id}", t.public);
    let flow = get_json(&client, &fetch, Some(&jar)).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let form =
        [("csrf_token", csrf_of(&flow)), ("method", "code".into()), ("recovery_address", "rae@example.org".into())];
    let res = jar.send(client.post(&action).form(&form)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("https://ui.example/recovery?flow={id}"));
    let shown = get_json(&client, &fetch, Some(&jar)).await;
    assert_eq!(shown["state"], "recovery_awaiting_address_choice");
}
both_backends!(recovery_v2_choose_an_address);
