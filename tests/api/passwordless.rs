//! Passwordless sign-up and sign-in end to end: one-time codes read from a real SMTP server
//! process and a real HTTP SMS gateway process, code as a second factor, identifier-first
//! login for every first factor; native (API), SPA (browser flow, JSON) and HTML clients.

use crate::both_backends;
use crate::courier::SmtpPeer;
use crate::harness::{Db, TestApp};
use crate::recovery::{code_in, mail_to};
use crate::selfservice::{
    Jar, PASSWORD, api_flow, api_submit, csrf_of, flow_id_of, get_json, location, message_ids, node, node_names,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tessera::config::{Config, Dur, HookConfig, LoginStyle};

fn smtp(c: &mut Config, port: u16) {
    c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
    c.courier.worker.pull_wait = Dur(Duration::from_millis(50));
}

fn passwordless(port: u16) -> impl FnOnce(&mut Config) + 'static {
    move |c| {
        smtp(c, port);
        c.selfservice.methods.code.passwordless_enabled = true;
        c.selfservice.flows.registration.after.code.hooks = vec![HookConfig { hook: "session".into(), config: None }];
    }
}

async fn create_identity(t: &TestApp, body: Value) -> Value {
    let (status, _, created) = t.admin_json(Method::POST, "/admin/identities", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn admin_identity(t: &TestApp, id: &str) -> Value {
    let (status, _, body) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=code"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

pub(crate) fn amr(session: &Value) -> Vec<(String, String)> {
    session["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["method"].as_str().unwrap().to_string(), m["aal"].as_str().unwrap().to_string()))
        .collect()
}

async fn code_login_for_native_apps(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(passwordless(peer.port)).build().await;
    let created = create_identity(&t, json!({"schema_id": "default", "traits": {"email": "ann@example.org"}})).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["verifiable_addresses"][0]["verified"], false);

    let flow = api_flow(&t, "login", "").await;
    let send = node(&flow, "method").filter(|n| n["attributes"]["value"] == "code").cloned();
    let send = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "method" && n["attributes"]["value"] == "code")
        .or(send.as_ref())
        .cloned()
        .expect("a code submit");
    assert_eq!(send["group"], "code");
    assert_eq!(send["meta"]["label"]["id"], 1010015);
    assert!(node(&flow, "identifier").is_some());

    // An unknown account: 4000035, nothing sent.
    let (status, body) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "nobody@example.org"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000035]);
    assert_eq!(body["state"], "choose_method");

    // Step one: the code goes out; the flow asks for it.
    let (status, sent) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "Ann@Example.org"})).await;
    assert_eq!(status, 400, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(sent["active"], "code");
    assert_eq!(message_ids(&sent), vec![1010014]);
    assert_eq!(node(&sent, "identifier").unwrap()["attributes"]["type"], "hidden");
    assert_eq!(node(&sent, "identifier").unwrap()["attributes"]["value"], "ann@example.org");
    assert_eq!(node(&sent, "code").unwrap()["meta"]["label"]["id"], 1070013);
    assert_eq!(node(&sent, "resend").unwrap()["attributes"]["value"], "code");
    assert_eq!(node(&sent, "resend").unwrap()["meta"]["label"]["id"], 1070008);
    let mail = mail_to(&peer, "ann@example.org", 1).await;
    let first = code_in(&mail);

    // A wrong code: 4010008, the flow stays usable.
    let (status, body) = api_submit(
        &t,
        "login",
        &flow,
        json!({"method": "code", "identifier": "ann@example.org", "code": wrong(&first)}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4010008]);
    assert_eq!(body["state"], "sent_email");

    // Resend: a new code; the first one no longer works.
    let (status, body) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "ann@example.org", "resend": "code"}))
            .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![1010014]);
    let second = code_in(&mail_to(&peer, "ann@example.org", 2).await);
    if second != first {
        let (status, body) =
            api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "ann@example.org", "code": first}))
                .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(message_ids(&body), vec![4010008]);
    }
    let (status, done) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "ann@example.org", "code": second}))
            .await;
    assert_eq!(status, 200, "{done}");
    assert!(done["session_token"].as_str().unwrap().starts_with("ory_st_"));
    assert_eq!(amr(&done["session"]), vec![("code".to_string(), "aal1".to_string())]);
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal1");
    // The code reached the address: it is verified now.
    let after = admin_identity(&t, &id).await;
    assert_eq!(after["verifiable_addresses"][0]["verified"], true);
    assert_eq!(after["verifiable_addresses"][0]["status"], "completed");

    // A spent code does not sign in again (the flow is done).
    let (status, _) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "ann@example.org", "code": second}))
            .await;
    assert_eq!(status, 400);

    // Re-authentication with a code: the same session, a second AMR entry.
    let token = done["session_token"].as_str().unwrap().to_string();
    let res = t
        .http
        .get(format!("{}/self-service/login/api?refresh=true", t.public))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let refresh: Value = res.json().await.unwrap();
    assert_eq!(node(&refresh, "identifier").unwrap()["attributes"]["value"], "ann@example.org");
    let submit = |body: Value| {
        let req = t
            .http
            .post(format!("{}/self-service/login?flow={}", t.public, refresh["id"].as_str().unwrap()))
            .header("Accept", "application/json")
            .header("X-Session-Token", &token)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, sent) = submit(json!({"method": "code", "identifier": "ann@example.org"})).await;
    assert_eq!(status, 400, "{sent}");
    let code = code_in(&mail_to(&peer, "ann@example.org", 3).await);
    let (status, again) = submit(json!({"method": "code", "identifier": "ann@example.org", "code": code})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["session"]["id"], done["session"]["id"]);
    assert_eq!(amr(&again["session"]).len(), 2);
}
both_backends!(code_login_for_native_apps);

async fn code_login_in_browsers(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(passwordless(peer.port)).build().await;
    create_identity(&t, json!({"schema_id": "default", "traits": {"email": "bo@example.org"}})).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // HTML forms: every step is a 303 back to the UI.
    let mut jar = Jar::default();
    let res = jar.send(client.get(format!("{}/self-service/login/browser", t.public))).await;
    let id = flow_id_of(&location(&res));
    let flow = get_json(&client, format!("{}/self-service/login/flows?id={id}", t.public), Some(&jar)).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let form = [("csrf_token", csrf_of(&flow)), ("method", "code".into()), ("identifier", "bo@example.org".into())];
    let res = jar.send(client.post(&action).form(&form)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/login?flow="));
    let flow = get_json(&client, format!("{}/self-service/login/flows?id={id}", t.public), Some(&jar)).await;
    assert_eq!(flow["state"], "sent_email");
    let code = code_in(&mail_to(&peer, "bo@example.org", 1).await);
    let form = [
        ("csrf_token", csrf_of(&flow)),
        ("method", "code".into()),
        ("identifier", "bo@example.org".into()),
        ("code", code),
    ];
    let res = jar.send(client.post(&action).form(&form)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example/welcome");
    assert!(jar.has_prefix("ory_kratos_session"));

    // SPA: JSON answers with the browser's cookies.
    let mut jar = Jar::default();
    let res = jar
        .send(client.get(format!("{}/self-service/login/browser", t.public)).header("Accept", "application/json"))
        .await;
    let flow: Value = res.json().await.unwrap();
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let body = json!({"csrf_token": csrf_of(&flow), "method": "code", "identifier": "bo@example.org"});
    let res = jar.send(client.post(&action).header("Accept", "application/json").json(&body)).await;
    assert_eq!(res.status(), 400);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["state"], "sent_email");
    let code = code_in(&mail_to(&peer, "bo@example.org", 2).await);
    let body = json!({"csrf_token": csrf_of(&flow), "method": "code", "identifier": "bo@example.org", "code": code});
    let res = jar.send(client.post(&action).header("Accept", "application/json").json(&body)).await;
    assert_eq!(res.status(), 200);
    let done: Value = res.json().await.unwrap();
    assert!(done.get("session_token").is_none(), "browsers get a cookie, not a token");
    assert_eq!(done["continue_with"][0]["action"], "redirect_browser_to");
    assert!(jar.has_prefix("ory_kratos_session"));

    // A submit without the CSRF token changes nothing.
    let mut jar = Jar::default();
    let res = jar
        .send(client.get(format!("{}/self-service/login/browser", t.public)).header("Accept", "application/json"))
        .await;
    let flow: Value = res.json().await.unwrap();
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let body = json!({"method": "code", "identifier": "bo@example.org"});
    let res = jar.send(client.post(&action).header("Accept", "application/json").json(&body)).await;
    assert_eq!(res.status(), 403);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.received().iter().filter(|m| m["to"][0] == "bo@example.org").count(), 2);
}
both_backends!(code_login_in_browsers);

async fn code_registration(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(passwordless(peer.port)).build().await;

    // Two-step: the profile step, then the credential step offers a code next to the password.
    let flow = api_flow(&t, "registration", "").await;
    let (status, step2) =
        api_submit(&t, "registration", &flow, json!({"method": "profile", "traits": {"email": "cy@example.org"}}))
            .await;
    assert_eq!(status, 400, "{step2}");
    let submits: Vec<String> = step2["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["attributes"]["name"] == "method" && n["attributes"]["type"] == "submit")
        .map(|n| n["attributes"]["value"].as_str().unwrap().to_string())
        .collect();
    assert!(submits.contains(&"code".to_string()) && submits.contains(&"password".to_string()), "{submits:?}");

    let traits = json!({"email": "cy@example.org", "name": {"first": "Cy"}});
    let (status, sent) = api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits})).await;
    assert_eq!(status, 400, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1040005]);
    assert_eq!(node(&sent, "traits.email").unwrap()["attributes"]["type"], "hidden");
    assert_eq!(node(&sent, "traits.email").unwrap()["attributes"]["value"], "cy@example.org");
    assert_eq!(node(&sent, "code").unwrap()["meta"]["label"]["id"], 1070012);
    assert_eq!(node(&sent, "resend").unwrap()["attributes"]["value"], "code");
    assert_eq!(node(&sent, "screen").unwrap()["attributes"]["value"], "credential-selection");
    assert!(node(&sent, "password").is_none());
    let mail = mail_to(&peer, "cy@example.org", 1).await;
    assert!(mail["subject"].as_str().unwrap_or_default().len() > 3);
    let code = code_in(&mail);

    // Traits changed since the code went out: 4000036.
    let changed = json!({"email": "other@example.org", "name": {"first": "Cy"}});
    let (status, body) =
        api_submit(&t, "registration", &flow, json!({"method": "code", "traits": changed, "code": code})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000036]);
    // A wrong code: 4040003.
    let (status, body) =
        api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits, "code": wrong(&code)})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4040003]);
    // The code with the same traits creates the account, its address verified, signed in.
    let (status, done) =
        api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits, "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["identity"]["traits"], traits);
    assert_eq!(done["identity"]["verifiable_addresses"][0]["verified"], true);
    assert_eq!(amr(&done["session"]), vec![("code".to_string(), "aal1".to_string())]);
    let id = done["identity"]["id"].as_str().unwrap();
    let stored = admin_identity(&t, id).await;
    assert_eq!(stored["credentials"]["code"]["identifiers"], json!(["cy@example.org"]));
    assert_eq!(
        stored["credentials"]["code"]["config"]["addresses"],
        json!([{"channel": "email", "address": "cy@example.org"}])
    );

    // The new account signs in with a code.
    let flow = api_flow(&t, "login", "").await;
    let (status, _) = api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "cy@example.org"})).await;
    assert_eq!(status, 400);
    let code = code_in(&mail_to(&peer, "cy@example.org", 2).await);
    let (status, done) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "cy@example.org", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["session"]["identity"]["id"], id);

    // Signing up again with the taken address: the code goes out, creating fails as a duplicate.
    let flow = api_flow(&t, "registration", "").await;
    let (status, _) = api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits})).await;
    assert_eq!(status, 400);
    let code = code_in(&mail_to(&peer, "cy@example.org", 3).await);
    let (status, body) =
        api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits, "code": code})).await;
    assert_eq!(status, 400, "{body}");
    let ids = message_ids(&body);
    assert!(ids == vec![4000007] || ids == vec![4000028], "{ids:?}");
}
both_backends!(code_registration);

async fn code_registration_in_browsers(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(passwordless(peer.port)).build().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut jar = Jar::default();
    let res = jar.send(client.get(format!("{}/self-service/registration/browser", t.public))).await;
    let id = flow_id_of(&location(&res));
    let fetch = format!("{}/self-service/registration/flows?id={id}", t.public);
    let flow = get_json(&client, &fetch, Some(&jar)).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let csrf = csrf_of(&flow);
    // HTML forms: the code goes out (303 to the UI, a step) …
    let form = [("csrf_token", csrf.clone()), ("method", "code".into()), ("traits.email", "eve@example.org".into())];
    let res = jar.send(client.post(&action).form(&form)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/registration?flow="));
    let sent = get_json(&client, &fetch, Some(&jar)).await;
    assert_eq!(sent["state"], "sent_email");
    let code = code_in(&mail_to(&peer, "eve@example.org", 1).await);
    // … a wrong code is a validation error (302, as Kratos' registration errors) …
    let wrong_form = [
        ("csrf_token", csrf.clone()),
        ("method", "code".into()),
        ("traits.email", "eve@example.org".into()),
        ("code", wrong(&code).into()),
    ];
    let res = jar.send(client.post(&action).form(&wrong_form)).await;
    assert_eq!(res.status(), 302);
    assert_eq!(message_ids(&get_json(&client, &fetch, Some(&jar)).await), vec![4040003]);
    // … and the code signs the new account in (303 to the return URL, cookie set).
    let form =
        [("csrf_token", csrf), ("method", "code".into()), ("traits.email", "eve@example.org".into()), ("code", code)];
    let res = jar.send(client.post(&action).form(&form)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example/welcome");
    assert!(jar.has_prefix("ory_kratos_session"));
}
both_backends!(code_registration_in_browsers);

/// The courier channel `sms`: the HTTP gateway at `base` gets `{to, text, kind}`.
pub(crate) fn sms_gateway(base: &str) -> tessera::config::ChannelConfig {
    use base64::Engine;
    let body = "function(ctx) { to: ctx.recipient, text: ctx.body, kind: ctx.template_type }";
    tessera::config::ChannelConfig {
        id: "sms".into(),
        kind: Some("http".into()),
        request_config: tessera::config::HttpRequestConfig {
            url: format!("{base}/hook/ok/sms"),
            method: "POST".into(),
            headers: Default::default(),
            body: Some(format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(body))),
            auth: None,
        },
    }
}

/// The HTTP SMS gateway's requests, waited for.
async fn texts(peer: &crate::hooks::Peer, to: &str, n: usize) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let got: Vec<Value> = peer
            .requests()
            .await
            .into_iter()
            .filter(|r| r["path"] == "/hook/ok/sms" && r["body"]["to"] == to)
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no text #{n} to {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn code_of_text(text: &Value) -> String {
    let body = text["body"]["text"].as_str().unwrap();
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {body}"))
        .into()
}

async fn codes_by_sms(db: Db) {
    let Some(gateway) = crate::hooks::Peer::start().await else { return };
    let base = gateway.base.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            c.courier.worker.pull_wait = Dur(Duration::from_millis(50));
            c.identity.schemas.push(tessera::config::SchemaSource {
                id: "sms".into(),
                url: crate::harness::fixture("sms-code.schema.json"),
                selfservice_selectable: true,
            });
            c.selfservice.methods.code.passwordless_enabled = true;
            c.selfservice.flows.registration.after.code.hooks =
                vec![HookConfig { hook: "session".into(), config: None }];
            c.courier.channels = vec![sms_gateway(&base)];
        })
        .build()
        .await;
    // Sign up with a phone number (typed loosely, stored in E.164).
    let flow = api_flow(&t, "registration", "?identity_schema=sms").await;
    let traits = json!({"phone": "+1 650 253 0000"});
    let (status, sent) = api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits})).await;
    assert_eq!(status, 400, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    let text = texts(&gateway, "+16502530000", 1).await.remove(0);
    assert_eq!(text["body"]["kind"], "registration_code_valid");
    let (status, done) =
        api_submit(&t, "registration", &flow, json!({"method": "code", "traits": traits, "code": code_of_text(&text)}))
            .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["identity"]["verifiable_addresses"][0]["value"], "+16502530000");
    assert_eq!(done["identity"]["verifiable_addresses"][0]["via"], "sms");
    assert_eq!(done["identity"]["verifiable_addresses"][0]["verified"], true);

    // Sign in with the number.
    let flow = api_flow(&t, "login", "").await;
    let (status, sent) = api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "+16502530000"})).await;
    assert_eq!(status, 400, "{sent}");
    let texts = texts(&gateway, "+16502530000", 2).await;
    let text = &texts[1];
    assert_eq!(text["body"]["kind"], "login_code_valid");
    let (status, done) = api_submit(
        &t,
        "login",
        &flow,
        json!({"method": "code", "identifier": "+16502530000", "code": code_of_text(text)}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(amr(&done["session"]), vec![("code".to_string(), "aal1".to_string())]);
}
both_backends!(codes_by_sms);

async fn code_as_second_factor(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.methods.code.mfa_enabled = true;
            c.selfservice.methods.totp.enabled = true;
            c.selfservice.flows.settings.required_aal = "aal1".into();
        })
        .build()
        .await;
    create_identity(
        &t,
        json!({"schema_id": "default", "traits": {"email": "di@example.org"},
               "credentials": {"password": {"config": {"password": PASSWORD}}}}),
    )
    .await;
    let password_login = || async {
        let flow = api_flow(&t, "login", "").await;
        assert!(node_names(&flow).iter().all(|n| n != "address"), "codes are no first factor here");
        let body = json!({"method": "password", "identifier": "di@example.org", "password": PASSWORD});
        let (status, first) = api_submit(&t, "login", &flow, body).await;
        assert_eq!(status, 200, "{first}");
        first
    };
    let whoami = |token: String| {
        let req = t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let aal2_flow = |token: String| {
        let req = t.http.get(format!("{}/self-service/login/api?aal=aal2", t.public)).header("X-Session-Token", token);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let submit = |token: String, flow: &Value, body: Value| {
        let req = t
            .http
            .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
            .header("Accept", "application/json")
            .header("X-Session-Token", token)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };

    // The code is the only second factor, to one address: it goes out with the flow.
    let first = password_login().await;
    let token = first["session_token"].as_str().unwrap().to_string();
    // A code address is a second factor now: the highest available AAL is aal2.
    assert_eq!(whoami(token.clone()).await, 403);
    let flow = aal2_flow(token.clone()).await;
    assert_eq!(flow["state"], "sent_email", "{flow}");
    assert_eq!(message_ids(&flow), vec![1010014]);
    let hidden = node(&flow, "identifier").unwrap();
    assert_eq!(hidden["attributes"]["value"], "di@example.org");
    assert_eq!(hidden["meta"]["label"]["id"], 1010023);
    let code = code_in(&mail_to(&peer, "di@example.org", 1).await);
    let (status, body) = submit(token.clone(), &flow, json!({"method": "code", "code": wrong(&code)})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4010008]);
    let (status, done) = submit(token.clone(), &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["session"]["id"], first["session"]["id"], "the same session, upgraded");
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(
        amr(&done["session"]),
        vec![("password".to_string(), "aal1".to_string()), ("code".to_string(), "aal2".to_string())]
    );
    assert_eq!(whoami(token.clone()).await, 200);

    // With TOTP too, the code waits for the address to be chosen.
    crate::mfa::enrol_totp(&t, &token).await;
    let first = password_login().await;
    let token = first["session_token"].as_str().unwrap().to_string();
    let flow = aal2_flow(token.clone()).await;
    assert_eq!(flow["state"], "choose_method");
    let address = node(&flow, "address").unwrap();
    assert_eq!(address["attributes"]["value"], "di@example.org");
    assert_eq!(address["attributes"]["type"], "submit");
    assert_eq!(address["meta"]["label"]["context"], json!({"address": "di@example.org", "channel": "email"}));
    assert!(node(&flow, "totp_code").is_some());
    // An address the identity does not have sends nothing.
    let (status, body) = submit(token.clone(), &flow, json!({"method": "code", "address": "evil@example.org"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000035]);
    // What a UI submits: the button's name and value, no method.
    let (status, sent) = submit(token.clone(), &flow, json!({"address": "di@example.org"})).await;
    assert_eq!(status, 400, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    let code = code_in(&mail_to(&peer, "di@example.org", 2).await);
    let (status, done) = submit(token.clone(), &flow, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(amr(&done["session"])[1], ("code".to_string(), "aal2".to_string()));
}
both_backends!(code_as_second_factor);

async fn identifier_first_for_every_first_factor(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.methods.code.passwordless_enabled = true;
            c.selfservice.flows.login.style = LoginStyle::IdentifierFirst;
            c.security.account_enumeration.mitigate = false;
        })
        .build()
        .await;
    create_identity(
        &t,
        json!({"schema_id": "default", "traits": {"email": "pw@example.org"},
               "credentials": {"password": {"config": {"password": PASSWORD}}}}),
    )
    .await;
    create_identity(
        &t,
        json!({"schema_id": "phone", "traits": {"email": "codeonly@example.org", "phone": "+16502530001"}}),
    )
    .await;
    let methods = |flow: &Value| -> Vec<String> {
        let mut m: Vec<String> = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["attributes"]["name"] == "method" && n["attributes"]["type"] == "submit")
            .map(|n| n["attributes"]["value"].as_str().unwrap().to_string())
            .collect();
        m.sort();
        m
    };
    // An account with a password: password and code.
    let flow = api_flow(&t, "login", "").await;
    assert_eq!(methods(&flow), vec!["identifier_first"]);
    let (status, step2) =
        api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": "PW@example.org"})).await;
    assert_eq!(status, 400, "{step2}");
    assert_eq!(methods(&step2), vec!["code", "password"]);
    // An account with only a code address: the code alone.
    let flow = api_flow(&t, "login", "").await;
    let (status, step2) =
        api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": "codeonly@example.org"}))
            .await;
    assert_eq!(status, 400, "{step2}");
    assert_eq!(methods(&step2), vec!["code"]);
    assert!(node(&step2, "password").is_none());
    let (status, sent) =
        api_submit(&t, "login", &step2, json!({"method": "code", "identifier": "codeonly@example.org"})).await;
    assert_eq!(status, 400, "{sent}");
    let code = code_in(&mail_to(&peer, "codeonly@example.org", 1).await);
    let (status, done) =
        api_submit(&t, "login", &step2, json!({"method": "code", "identifier": "codeonly@example.org", "code": code}))
            .await;
    assert_eq!(status, 200, "{done}");
    // No such account, enumeration not mitigated: 4000037.
    let flow = api_flow(&t, "login", "").await;
    let (status, body) =
        api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": "nobody@example.org"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000037]);
}
both_backends!(identifier_first_for_every_first_factor);

async fn identifier_first_sends_the_code_when_it_is_the_only_factor(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.methods.code.passwordless_enabled = true;
            c.selfservice.methods.password.enabled = false;
            c.selfservice.flows.login.style = LoginStyle::IdentifierFirst;
        })
        .build()
        .await;
    create_identity(&t, json!({"schema_id": "default", "traits": {"email": "fast@example.org"}})).await;
    let flow = api_flow(&t, "login", "").await;
    let (status, sent) =
        api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": "fast@example.org"})).await;
    assert_eq!(status, 400, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1010014]);
    let code = code_in(&mail_to(&peer, "fast@example.org", 1).await);
    let (status, done) =
        api_submit(&t, "login", &flow, json!({"method": "code", "identifier": "fast@example.org", "code": code})).await;
    assert_eq!(status, 200, "{done}");
}
both_backends!(identifier_first_sends_the_code_when_it_is_the_only_factor);

/// With account enumeration mitigated, identifier-first sends nothing by itself: a known and
/// an unknown identifier get the same step two.
async fn identifier_first_with_mitigation_tells_nothing(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.methods.code.passwordless_enabled = true;
            c.selfservice.methods.password.enabled = false;
            c.selfservice.flows.login.style = LoginStyle::IdentifierFirst;
            c.security.account_enumeration.mitigate = true;
        })
        .build()
        .await;
    create_identity(&t, json!({"schema_id": "default", "traits": {"email": "known@example.org"}})).await;
    let mut shapes = Vec::new();
    for identifier in ["known@example.org", "unknown@example.org"] {
        let flow = api_flow(&t, "login", "").await;
        let (status, step2) =
            api_submit(&t, "login", &flow, json!({"method": "identifier_first", "identifier": identifier})).await;
        assert_eq!(status, 400, "{step2}");
        assert_eq!(step2["state"], "choose_method");
        shapes.push((node_names(&step2), message_ids(&step2)));
    }
    assert_eq!(shapes[0], shapes[1]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(peer.received().is_empty(), "nothing was sent");
}
both_backends!(identifier_first_with_mitigation_tells_nothing);

/// Garbage in every new field gets a 4xx, never a 5xx: login and registration by code and by
/// passkey, recovery v2.
async fn garbage_in_passwordless_fields_is_a_4xx(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            passwordless(port)(c);
            c.selfservice.methods.passkey.enabled = true;
            c.selfservice.methods.passkey.config.rp.id = Some("localhost".into());
            c.selfservice.methods.passkey.config.rp.display_name = Some("tessera".into());
            c.selfservice.methods.passkey.config.rp.origins = vec!["http://localhost:4455".into()];
            c.selfservice.flows.recovery.enabled = true;
            c.feature_flags.choose_recovery_address = true;
        })
        .build()
        .await;
    create_identity(&t, json!({"schema_id": "default", "traits": {"email": "g@example.org"}})).await;
    let long = "9".repeat(5000);
    let junk = [
        json!({"method": "code", "identifier": {"a": 1}}),
        json!({"method": "code", "identifier": ["x"]}),
        json!({"method": "code", "identifier": long}),
        json!({"method": "code", "identifier": "+999999999999999999999"}),
        json!({"method": "code", "identifier": "g@example.org", "code": 123456}),
        json!({"method": "code", "address": 7, "resend": "code"}),
        json!({"passkey_login": "{"}),
        json!({"passkey_login": "{\"id\":\"x\",\"rawId\":\"!!\",\"type\":\"public-key\",\"response\":{}}"}),
        json!({"method": "passkey", "passkey_login": {"nested": true}}),
        json!({"passkey_login": format!("{{\"response\":{{\"userHandle\":\"{long}\"}}}}")}),
    ];
    for body in &junk {
        let flow = api_flow(&t, "login", "").await;
        // Twice: the second submit meets the state the first left.
        for _ in 0..2 {
            let (status, answer) = api_submit(&t, "login", &flow, body.clone()).await;
            assert!((400..500).contains(&status), "{body} → {status} {answer}");
        }
    }
    let junk = [
        json!({"method": "code", "traits": "nope"}),
        json!({"method": "code", "traits": {"email": 5}}),
        json!({"method": "code", "traits": {"email": "x@example.org"}, "code": {"x": 1}, "resend": 1}),
        json!({"method": "code", "screen": "credential-selection", "traits": []}),
        json!({"method": "passkey", "traits": {"email": "p@example.org"}, "passkey_register": "[]"}),
        json!({"traits": {"email": "p@example.org"}, "passkey_register": long}),
    ];
    for body in &junk {
        let flow = api_flow(&t, "registration", "").await;
        for _ in 0..2 {
            let (status, answer) = api_submit(&t, "registration", &flow, body.clone()).await;
            assert!((400..500).contains(&status), "{body} → {status} {answer}");
        }
    }
    let junk = [
        json!({"method": "code", "recovery_address": {"a": 1}}),
        json!({"method": "code", "recovery_address": long}),
        json!({"method": "code", "recovery_address": "g@example.org", "recovery_select_address": "%%%"}),
        json!({"method": "code", "screen": "previous"}),
        json!({"method": "code", "recovery_confirm_address": "+1"}),
    ];
    for body in &junk {
        let flow = api_flow(&t, "recovery", "").await;
        for _ in 0..2 {
            let (status, answer) = api_submit(&t, "recovery", &flow, body.clone()).await;
            assert!(status < 500, "{body} → {status} {answer}");
        }
    }
}
both_backends!(garbage_in_passwordless_fields_is_a_4xx);
