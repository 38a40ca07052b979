//! Second factors (issue 14): TOTP and lookup secrets enrolled in settings and asked for at
//! login (aal2), the AAL requirements of whoami and settings, and removal — for API, browser
//! (HTML) and SPA clients. TOTP codes are computed here from the enrolled secret.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::{Jar, PASSWORD, api_login, csrf_of, flow_id_of, get_json, location, message_ids};
use crate::settings::{settings_flow, signed_up, update, with_session_hook};
use serde_json::{Value, json};
use tessera::config::Config;

fn mfa(c: &mut Config) {
    with_session_hook(c);
    c.selfservice.methods.totp.enabled = true;
    c.selfservice.methods.totp.config.issuer = Some("tessera.test".into());
    c.selfservice.methods.lookup_secret.enabled = true;
    c.selfservice.flows.login.ui_url = "https://ui.example/login".into();
}

/// The node whose `name` (inputs) or `id` (text, img, script) is `name`.
pub fn node<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"].as_array()?.iter().find(|n| n["attributes"]["name"] == name || n["attributes"]["id"] == name)
}

/// The ids/names of a flow's nodes, in order (`method` submits as `method=<value>`).
fn names(flow: &Value) -> Vec<String> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let a = &n["attributes"];
            match a["name"].as_str() {
                Some("method") => format!("method={}", a["value"].as_str().unwrap_or_default()),
                Some(name) => name.to_string(),
                None => a["id"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// The current code of the key in a settings flow's `totp_secret_key` node.
pub(crate) fn code_for(secret: &str, offset_steps: i64) -> String {
    let key =
        totp_rs::Builder::new().with_secret(totp_rs::Secret::try_from_base32(secret).unwrap()).build_noncompliant();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    key.generate((now + offset_steps * 30) as u64).to_string()
}

async fn admin_get(t: &TestApp, path: &str) -> Value {
    let (status, _, body) = t.admin_json(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn whoami(t: &TestApp, token: &str) -> (u16, Value) {
    let res =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", token).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// Enrols TOTP through an API settings flow; returns the secret.
pub async fn enrol_totp(t: &TestApp, token: &str) -> String {
    let flow = settings_flow(t, token).await;
    let secret = node(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["context"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = update(t, token, &flow, json!({"method": "totp", "totp_code": code_for(&secret, 0)})).await;
    assert_eq!(status, 200, "{body}");
    secret
}

/// An aal2 API login flow for the session `token`.
async fn aal2_flow(t: &TestApp, token: &str) -> Value {
    let res = t
        .http
        .get(format!("{}/self-service/login/api?aal=aal2", t.public))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn aal2_submit(t: &TestApp, token: &str, flow: &Value, body: Value) -> (u16, Value) {
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Session-Token", token)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn totp_over_the_api(db: Db) {
    let t = TestApp::builder(db).config(mfa).build().await;
    let (id, token) = signed_up(&t, "totp@example.org").await;

    // Settings offer enrolment: QR code, secret, code input, save.
    let flow = settings_flow(&t, &token).await;
    let qr = node(&flow, "totp_qr").unwrap();
    assert_eq!(qr["type"], "img");
    assert!(qr["attributes"]["src"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert_eq!((qr["attributes"]["width"].as_u64(), qr["meta"]["label"]["id"].as_u64()), (Some(256), Some(1050005)));
    let secret_node = node(&flow, "totp_secret_key").unwrap();
    assert_eq!(secret_node["type"], "text");
    assert_eq!(secret_node["attributes"]["text"]["id"], 1050006);
    assert_eq!(secret_node["meta"]["label"]["id"], 1050017);
    assert_eq!(node(&flow, "totp_code").unwrap()["meta"]["label"]["id"], 1070006);
    let totp_names: Vec<String> =
        names(&flow).into_iter().filter(|n| n.starts_with("totp") || n == "method=totp").collect();
    assert_eq!(totp_names, ["totp_qr", "totp_secret_key", "totp_code", "method=totp"]);
    let secret = secret_node["attributes"]["text"]["context"]["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    // The stored flow keeps the pending key, sealed.
    {
        use tessera::persistence::selfservice::{FlowTable, find_flow};
        let state = t.app().state();
        state.persister.flush().await;
        let mut pooled = state.store.get().await.unwrap();
        let id = uuid::Uuid::parse_str(flow["id"].as_str().unwrap()).unwrap();
        let row = find_flow(&mut pooled.conn(), FlowTable::Settings, id).await.unwrap().unwrap();
        assert!(row.data["internal"]["totp_url"].is_string(), "{}", row.data);
        assert!(!row.data.to_string().contains(&secret), "the key is not stored in clear");
    }

    // A wrong code, or none, is refused on the code input; nothing is stored.
    let (status, body) = update(&t, &token, &flow, json!({"method": "totp", "totp_code": "000000"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(node(&body, "totp_code").unwrap()["messages"][0]["id"], 4000008);
    let (status, body) = update(&t, &token, &flow, json!({"method": "totp"})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000002]));
    let (status, _) = whoami(&t, &token).await;
    assert_eq!(status, 200);

    // The right code enrols the key; the session gains the factor (same session, aal2).
    let code = code_for(&secret, 0);
    let (status, body) = update(&t, &token, &flow, json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "success");
    assert_eq!(message_ids(&body), vec![1050001]);
    assert_eq!(node(&body, "totp_unlink").unwrap()["attributes"]["value"], "true");
    assert!(node(&body, "totp_qr").is_none());
    let (status, session) = whoami(&t, &token).await;
    assert_eq!(status, 200);
    assert_eq!(session["authenticator_assurance_level"], "aal2");
    let amr: Vec<(String, String)> = session["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["method"].as_str().unwrap().into(), m["aal"].as_str().unwrap().into()))
        .collect();
    assert_eq!(amr, [("password".into(), "aal1".into()), ("totp".into(), "aal2".into())]);

    // The stored credential has Kratos' shape (the account is the identity id: the schema flags
    // no `totp.account_name` trait); the admin API shows it only when asked.
    let ident = admin_get(&t, &format!("/admin/identities/{id}?include_credential=totp")).await;
    let url = ident["credentials"]["totp"]["config"]["totp_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "otpauth://totp/tessera.test:{id}?algorithm=SHA1&digits=6&issuer=tessera.test&period=30&secret="
        )),
        "{url}"
    );
    assert_eq!(ident["credentials"]["totp"]["identifiers"], json!([id]));
    let plain = admin_get(&t, &format!("/admin/identities/{id}")).await;
    assert!(plain["credentials"]["totp"]["config"].is_null());

    // A password login now gives an aal1 session that whoami refuses (highest_available).
    let (status, login) = api_login(&t, "totp@example.org", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    assert!(login["session"]["identity"].is_null(), "the identity is withheld until aal2");
    let aal1 = login["session_token"].as_str().unwrap().to_string();
    let (status, body) = whoami(&t, &aal1).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["id"], "session_aal2_required");
    assert!(body["redirect_browser_to"].as_str().unwrap().contains("/self-service/login/browser?aal=aal2"));
    let res = t
        .http
        .get(format!("{}/self-service/settings/api", t.public))
        .header("X-Session-Token", &aal1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "settings need aal2 too");

    // The aal2 login offers only the second factor.
    let flow = aal2_flow(&t, &aal1).await;
    assert_eq!(flow["requested_aal"], "aal2");
    assert_eq!(message_ids(&flow), vec![1010004]);
    assert_eq!(names(&flow), ["csrf_token", "totp_code", "method=totp"]);
    assert_eq!(node(&flow, "totp_code").unwrap()["meta"]["label"]["id"], 1010006);
    let (status, body) = aal2_submit(&t, &aal1, &flow, json!({"method": "totp", "totp_code": "123"})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000003]));
    let (status, body) = aal2_submit(
        &t,
        &aal1,
        &flow,
        json!({"method": "password", "identifier": "totp@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!((status, message_ids(&body)), (400, vec![4010002]), "first factors are not offered at aal2");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = aal2_submit(&t, &aal1, &flow, json!({"method": "totp", "totp_code": wrong})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000008]));
    assert_eq!(body["ui"]["messages"][0]["id"], 4000008, "a wrong code is a flow message");
    // The code that enrolled the key signs in (enrolment does not spend it) …
    let (status, body) = aal2_submit(&t, &aal1, &flow, json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(body["session_token"].as_str(), Some(aal1.as_str()), "the same session is upgraded");
    assert_eq!(body["session"]["identity"]["id"], id.as_str());
    assert_eq!(whoami(&t, &aal1).await.0, 200);
    // An aal2 flow belongs to the session it was created for.
    let (_, intruder) = signed_up(&t, "intruder@example.org").await;
    let foreign = aal2_flow(&t, &intruder).await;
    let (_, login) = api_login(&t, "totp@example.org", PASSWORD).await;
    let victim = login["session_token"].as_str().unwrap().to_string();
    let (status, body) = aal2_submit(&t, &victim, &foreign, json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["id"], "security_identity_mismatch");
    // … once: another login in the same time step with the same code is refused.
    let (_, login) = api_login(&t, "totp@example.org", PASSWORD).await;
    let other = login["session_token"].as_str().unwrap().to_string();
    let flow = aal2_flow(&t, &other).await;
    let (status, body) = aal2_submit(&t, &other, &flow, json!({"method": "totp", "totp_code": code})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000008]), "{body}");

    // Re-authentication of an aal2 session asks for the second factor again.
    let res = t
        .http
        .get(format!("{}/self-service/login/api?refresh=true&aal=aal2", t.public))
        .header("X-Session-Token", &aal1)
        .send()
        .await
        .unwrap();
    let refresh: Value = res.json().await.unwrap();
    assert_eq!(refresh["refresh"], true);
    assert_eq!(names(&refresh), ["csrf_token", "totp_code", "method=totp"]);
    assert_eq!(message_ids(&refresh), vec![1010003]);

    // Unlinking (from the aal2 session) returns the identity to aal1.
    let flow = settings_flow(&t, &aal1).await;
    let (status, body) = update(&t, &aal1, &flow, json!({"method": "totp", "totp_unlink": true})).await;
    assert_eq!(status, 200, "{body}");
    assert!(node(&body, "totp_qr").is_some());
    assert_eq!(whoami(&t, &other).await.0, 200, "no second factor left: aal1 is enough");
    let ident = admin_get(&t, &format!("/admin/identities/{id}?include_credential=totp")).await;
    assert!(ident["credentials"]["totp"].is_null());

    // Enrolled again, then removed by the admin API: aal1 again.
    enrol_totp(&t, &aal1).await;
    assert_eq!(whoami(&t, &other).await.0, 403);
    let res = t.http.delete(format!("{}/admin/identities/{id}/credentials/totp", t.admin)).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(whoami(&t, &other).await.0, 200);

    // aal2 without any session: 401.
    let res = t.http.get(format!("{}/self-service/login/api?aal=aal2", t.public)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_aal1_required");
}
both_backends!(totp_over_the_api);

async fn lookup_secrets_over_the_api(db: Db) {
    let t = TestApp::builder(db).config(mfa).build().await;
    let (id, token) = signed_up(&t, "lookup@example.org").await;
    let flow = settings_flow(&t, &token).await;
    assert!(node(&flow, "lookup_secret_regenerate").is_some());
    assert!(node(&flow, "lookup_secret_reveal").is_none());
    // Reveal and confirm without codes are refused.
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]));
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "lookup_secret", "lookup_secret_reveal": true})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]));

    // Regenerate shows twelve codes; they count only once confirmed.
    let (status, body) =
        update(&t, &token, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    assert_eq!(status, 200, "{body}");
    let codes_node = node(&body, "lookup_secret_codes").unwrap();
    assert_eq!(codes_node["meta"]["label"]["id"], 1050010);
    let codes: Vec<String> = codes_node["attributes"]["text"]["context"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["id"], 1050009);
            s["context"]["secret"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(codes.len(), 12);
    assert!(codes.iter().all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())));
    assert_eq!(codes_node["attributes"]["text"]["text"], codes.join(", "));
    assert!(node(&body, "lookup_secret_confirm").is_some());
    assert!(node(&body, "lookup_secret_regenerate").is_none());
    assert_eq!(whoami(&t, &token).await.1["authenticator_assurance_level"], "aal1", "not stored yet");
    let (status, body) =
        update(&t, &token, &body, json!({"method": "lookup_secret", "lookup_secret_confirm": "true"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "success");
    assert!(node(&body, "lookup_secret_reveal").is_some() && node(&body, "lookup_secret_disable").is_some());
    assert_eq!(whoami(&t, &token).await.1["authenticator_assurance_level"], "aal2");
    let ident = admin_get(&t, &format!("/admin/identities/{id}?include_credential=lookup_secret")).await;
    let stored = &ident["credentials"]["lookup_secret"]["config"]["recovery_codes"];
    assert_eq!(stored.as_array().unwrap().len(), 12);
    assert_eq!(stored[0], json!({"code": codes[0], "used_at": null}));

    // A fresh aal1 session spends one code at aal2.
    let (_, login) = api_login(&t, "lookup@example.org", PASSWORD).await;
    let aal1 = login["session_token"].as_str().unwrap().to_string();
    let flow = aal2_flow(&t, &aal1).await;
    assert_eq!(names(&flow), ["csrf_token", "lookup_secret", "method=lookup_secret"]);
    let (status, body) =
        aal2_submit(&t, &aal1, &flow, json!({"method": "lookup_secret", "lookup_secret": "nonsense"})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000016]));
    let (status, body) =
        aal2_submit(&t, &aal1, &flow, json!({"method": "lookup_secret", "lookup_secret": codes[3]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
    let methods: Vec<&str> = body["session"]["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["password", "lookup_secret"]);
    // A used code is refused.
    let (_, login) = api_login(&t, "lookup@example.org", PASSWORD).await;
    let again = login["session_token"].as_str().unwrap().to_string();
    let flow = aal2_flow(&t, &again).await;
    let (status, body) =
        aal2_submit(&t, &again, &flow, json!({"method": "lookup_secret", "lookup_secret": codes[3]})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000012]));

    // Two logins racing with one code: exactly one wins.
    let mut flows = Vec::new();
    for _ in 0..2 {
        let (_, login) = api_login(&t, "lookup@example.org", PASSWORD).await;
        let token = login["session_token"].as_str().unwrap().to_string();
        let flow = aal2_flow(&t, &token).await;
        flows.push((token, flow));
    }
    let body = json!({"method": "lookup_secret", "lookup_secret": codes[5]});
    let (a, b) = tokio::join!(
        aal2_submit(&t, &flows[0].0, &flows[0].1, body.clone()),
        aal2_submit(&t, &flows[1].0, &flows[1].1, body.clone())
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{} / {}", a.1, b.1);

    // Reveal shows the used code as used.
    let flow = settings_flow(&t, &aal1).await;
    let (status, body) =
        update(&t, &aal1, &flow, json!({"method": "lookup_secret", "lookup_secret_reveal": true})).await;
    assert_eq!(status, 200, "{body}");
    let secrets = &node(&body, "lookup_secret_codes").unwrap()["attributes"]["text"]["context"]["secrets"];
    assert_eq!(secrets[3]["id"], 1050014);
    assert!(secrets[3]["context"]["used_at_unix"].as_i64().unwrap() > 0);
    assert_eq!(secrets[4]["context"]["secret"], codes[4].as_str());
    // Disable removes the codes: aal1 is enough again.
    let (status, body) =
        update(&t, &aal1, &body, json!({"method": "lookup_secret", "lookup_secret_disable": true})).await;
    assert_eq!(status, 200, "{body}");
    assert!(node(&body, "lookup_secret_regenerate").is_some());
    assert_eq!(whoami(&t, &again).await.0, 200);
}
both_backends!(lookup_secrets_over_the_api);

async fn second_factors_in_a_browser(db: Db) {
    let t = TestApp::builder(db).config(mfa).build().await;
    let (_, token) = signed_up(&t, "web2fa@example.org").await;
    let secret = enrol_totp(&t, &token).await;
    let client = &t.http;
    let mut jar = Jar::default();
    // Password first: the session cookie is set at aal1 and the browser is sent on to aal2.
    let res = jar
        .send(client.get(format!("{}/self-service/login/browser?return_to=https://app.example/after", t.public)))
        .await;
    let login_id = flow_id_of(&location(&res));
    let login: Value =
        get_json(client, format!("{}/self-service/login/flows?id={login_id}", t.public), Some(&jar)).await;
    let res = jar
        .send(client.post(format!("{}/self-service/login?flow={login_id}", t.public)).form(&[
            ("method", "password"),
            ("identifier", "web2fa@example.org"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_of(&login)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.contains("/self-service/login/browser?aal=aal2"), "{to}");
    assert!(to.contains("return_to=https%3A%2F%2Fapp.example%2Fafter"), "{to}");
    // Settings refuse the aal1 session: the browser goes to the aal2 login.
    let res = jar.send(client.get(format!("{}/self-service/settings/browser", t.public))).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).contains("/self-service/login/browser?aal=aal2"));
    // The aal2 form, then the code.
    let res = jar.send(client.get(&to)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/login?flow="));
    let id = flow_id_of(&location(&res));
    let flow: Value = get_json(client, format!("{}/self-service/login/flows?id={id}", t.public), Some(&jar)).await;
    assert_eq!(names(&flow), ["csrf_token", "totp_code", "method=totp"]);
    let res = jar
        .send(client.post(format!("{}/self-service/login?flow={id}", t.public)).form(&[
            ("method", "totp"),
            ("totp_code", &code_for(&secret, 0)),
            ("csrf_token", &csrf_of(&flow)),
        ]))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example/after");
    let session: Value = get_json(client, format!("{}/sessions/whoami", t.public), Some(&jar)).await;
    assert_eq!(session["authenticator_assurance_level"], "aal2", "{session}");

    // A settings change re-issues the session cookie (SPA).
    let res = jar
        .send(client.get(format!("{}/self-service/settings/browser", t.public)).header("Accept", "application/json"))
        .await;
    assert_eq!(res.status(), 200);
    let flow: Value = res.json().await.unwrap();
    let res = jar
        .send(
            client
                .post(format!("{}/self-service/settings?flow={}", t.public, flow["id"].as_str().unwrap()))
                .header("Accept", "application/json")
                .json(
                    // No `method`: the button's own field names the strategy, as UI nodes submit it.
                    &json!({"lookup_secret_regenerate": true, "csrf_token": csrf_of(&flow)}),
                ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let res = jar
        .send(
            client
                .post(format!("{}/self-service/settings?flow={}", t.public, flow["id"].as_str().unwrap()))
                .header("Accept", "application/json")
                .json(&json!({"lookup_secret_confirm": "true", "csrf_token": csrf_of(&body)})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let cookie_name = &t.app().state().config.session.cookie.name;
    assert!(
        res.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with(&format!("{cookie_name}="))),
        "the session cookie is issued again"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["continue_with"][0]["action"], "redirect_browser_to");
    let session: Value = get_json(client, format!("{}/sessions/whoami", t.public), Some(&jar)).await;
    assert_eq!(session["authenticator_assurance_level"], "aal2");
}
both_backends!(second_factors_in_a_browser);

async fn second_factor_settings_need_a_privileged_session(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            mfa(c);
            c.selfservice.flows.settings.privileged_session_max_age =
                tessera::config::Dur(std::time::Duration::from_millis(1));
        })
        .build()
        .await;
    let (_, token) = signed_up(&t, "stale2fa@example.org").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let flow = settings_flow(&t, &token).await;
    let secret = node(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["context"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    for body in [
        json!({"method": "totp", "totp_code": code_for(&secret, 0)}),
        json!({"method": "lookup_secret", "lookup_secret_regenerate": true}),
    ] {
        let (status, res) = update(&t, &token, &flow, body).await;
        assert_eq!(status, 403, "{res}");
        assert_eq!(res["error"]["id"], "session_refresh_required");
    }
}
both_backends!(second_factor_settings_need_a_privileged_session);

fn with_webauthn(c: &mut Config) {
    mfa(c);
    c.selfservice.methods.webauthn.enabled = true;
    c.selfservice.methods.webauthn.config.rp.id = Some("localhost".into());
    c.selfservice.methods.webauthn.config.rp.display_name = Some("tessera test".into());
    c.selfservice.methods.webauthn.config.rp.origins = vec![ORIGIN.into()];
}

const ORIGIN: &str = "http://localhost:4455";

/// A browser (SPA) signed in with the password: its cookie jar.
async fn spa_password_login(t: &TestApp, email: &str) -> Jar {
    let mut jar = Jar::default();
    let res = jar
        .send(t.http.get(format!("{}/self-service/login/browser", t.public)).header("Accept", "application/json"))
        .await;
    let flow: Value = res.json().await.unwrap();
    let res = jar
        .send(
            t.http
                .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
                .header("Accept", "application/json")
                .json(&json!({"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": csrf_of(&flow)})),
        )
        .await;
    assert!(matches!(res.status().as_u16(), 200 | 422), "{}", res.status());
    jar
}

async fn spa_get(t: &TestApp, jar: &mut Jar, path: &str) -> (u16, Value) {
    let res = jar.send(t.http.get(format!("{}{path}", t.public)).header("Accept", "application/json")).await;
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn spa_post(t: &TestApp, jar: &mut Jar, kind: &str, flow: &Value, mut body: Value) -> (u16, Value) {
    body["csrf_token"] = json!(csrf_of(flow));
    let res = jar
        .send(
            t.http
                .post(format!("{}/self-service/{kind}?flow={}", t.public, flow["id"].as_str().unwrap()))
                .header("Accept", "application/json")
                .json(&body),
        )
        .await;
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// What the browser helper would do with a trigger node: run the ceremony on `token`.
fn trigger_options<T: serde::de::DeserializeOwned>(flow: &Value, trigger: &str) -> T {
    let value = node(flow, trigger).unwrap()["attributes"]["value"].as_str().unwrap();
    serde_json::from_str(value).unwrap()
}

async fn security_keys_as_second_factor(db: Db) {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softtoken::SoftToken;
    let t = TestApp::builder(db).config(with_webauthn).build().await;
    let (id, token) = signed_up(&t, "key@example.org").await;
    let origin = url::Url::parse(ORIGIN).unwrap();

    // The helper script is served with the integrity the nodes carry.
    let res = t.http.get(format!("{}/.well-known/ory/webauthn.js", t.public)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let script = res.bytes().await.unwrap();
    let integrity = {
        use base64::Engine;
        use sha2::Digest;
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&script)))
    };
    assert!(String::from_utf8_lossy(&script).contains("window.oryWebAuthnLogin"));

    // API flows have no WebAuthn.
    let flow = settings_flow(&t, &token).await;
    assert!(node(&flow, "webauthn_register_trigger").is_none());

    // A browser registers a key in settings.
    let mut jar = spa_password_login(&t, "key@example.org").await;
    let (status, flow) = spa_get(&t, &mut jar, "/self-service/settings/browser").await;
    assert_eq!(status, 200, "{flow}");
    let trigger = node(&flow, "webauthn_register_trigger").unwrap();
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryWebAuthnRegistration");
    assert_eq!(trigger["meta"]["label"]["id"], 1050012);
    let script_node = node(&flow, "webauthn_script").unwrap();
    assert_eq!(script_node["type"], "script");
    assert_eq!(script_node["attributes"]["integrity"], integrity.as_str());
    assert!(script_node["attributes"]["src"].as_str().unwrap().ends_with("/.well-known/ory/webauthn.js"));
    let (mut key, _) = SoftToken::new(false).unwrap();
    let attestation = key.do_registration(origin.clone(), trigger_options(&flow, "webauthn_register_trigger")).unwrap();
    let attestation = serde_json::to_string(&attestation).unwrap();
    let (status, body) =
        spa_post(&t, &mut jar, "settings", &flow, json!({"method": "webauthn", "webauthn_register": attestation}))
            .await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000002]), "a name is required");
    let (status, body) = spa_post(
        &t,
        &mut jar,
        "settings",
        &flow,
        json!({"method": "webauthn", "webauthn_register": attestation, "webauthn_register_displayname": "desk key"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let remove = node(&body, "webauthn_remove").unwrap();
    assert_eq!(remove["meta"]["label"]["id"], 1050018);
    assert_eq!(remove["meta"]["label"]["context"]["display_name"], "desk key");
    let ident = admin_get(&t, &format!("/admin/identities/{id}?include_credential=webauthn")).await;
    let stored = &ident["credentials"]["webauthn"];
    assert_eq!(stored["identifiers"], json!(["key@example.org"]));
    assert_eq!(stored["config"]["credentials"][0]["is_passwordless"], false);
    assert_eq!(stored["config"]["credentials"][0]["display_name"], "desk key");
    let hex_id = remove["attributes"]["value"].as_str().unwrap().to_string();
    {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(stored["config"]["credentials"][0]["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(hex::encode(raw), hex_id);
    }

    // Password login, then the key at aal2.
    let mut jar = spa_password_login(&t, "key@example.org").await;
    let (status, _) = spa_get(&t, &mut jar, "/sessions/whoami").await;
    assert_eq!(status, 403);
    let (status, flow) = spa_get(&t, &mut jar, "/self-service/login/browser?aal=aal2").await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(
        names(&flow),
        ["csrf_token", "identifier", "webauthn_login", "webauthn_script", "webauthn_login_trigger"]
    );
    assert_eq!(node(&flow, "webauthn_login_trigger").unwrap()["attributes"]["onclickTrigger"], "oryWebAuthnLogin");
    let before = key.to_cbor().unwrap();
    let assertion = key.do_authentication(origin.clone(), trigger_options(&flow, "webauthn_login_trigger")).unwrap();
    let (status, body) = spa_post(
        &t,
        &mut jar,
        "login",
        &flow,
        // What webauthn.js submits: the form's inputs, no `method`.
        json!({"identifier": "key@example.org", "webauthn_login": serde_json::to_string(&assertion).unwrap()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(body["session"]["authentication_methods"][1]["method"], "webauthn");
    let (status, _) = spa_get(&t, &mut jar, "/sessions/whoami").await;
    assert_eq!(status, 200);

    // The new sign counter is written after the answer; a cloned key that replays an older
    // counter is refused.
    let mut counted = false;
    for _ in 0..100 {
        let ident = admin_get(&t, &format!("/admin/identities/{id}?include_credential=webauthn")).await;
        if ident["credentials"]["webauthn"]["config"]["credentials"][0]["authenticator"]["sign_count"].as_u64()
            > Some(0)
        {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(counted, "the sign counter is stored");
    let mut clone = SoftToken::from_cbor(&before).unwrap();
    let mut jar2 = spa_password_login(&t, "key@example.org").await;
    let (_, flow) = spa_get(&t, &mut jar2, "/self-service/login/browser?aal=aal2").await;
    let assertion = clone.do_authentication(origin.clone(), trigger_options(&flow, "webauthn_login_trigger")).unwrap();
    let (status, body) = spa_post(
        &t,
        &mut jar2,
        "login",
        &flow,
        json!({"method": "webauthn", "webauthn_login": serde_json::to_string(&assertion).unwrap()}),
    )
    .await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000008]), "{body}");
    let (status, body) =
        spa_post(&t, &mut jar2, "login", &flow, json!({"method": "webauthn", "webauthn_login": "{not json"})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000001]));

    // Removing the key (from the aal2 session) returns the identity to aal1.
    let (_, flow) = spa_get(&t, &mut jar, "/self-service/settings/browser").await;
    let (status, body) = spa_post(&t, &mut jar, "settings", &flow, json!({"webauthn_remove": hex_id})).await;
    assert_eq!(status, 200, "{body}");
    assert!(node(&body, "webauthn_remove").is_none());
    let (status, _) = spa_get(&t, &mut jar2, "/sessions/whoami").await;
    assert_eq!(status, 200);
}
both_backends!(security_keys_as_second_factor);

/// Identities imported with second factors in the shape Kratos stores them sign in with them.
async fn imported_second_factors_work(db: Db) {
    let t = TestApp::builder(db).config(mfa).build().await;
    let secret = "2F43HRJNMUW67EDMRR7AKQYRZP3AI6IG";
    let url = format!(
        "otpauth://totp/issuer.ory.sh:someone?algorithm=SHA1&digits=6&issuer=issuer.ory.sh&period=30&secret={secret}"
    );
    let body = json!({
        "traits": {"email": "imported2fa@example.org"},
        "credentials": {
            "password": {"config": {"password": PASSWORD}},
            "totp": {"config": {"totp_url": url}},
            "lookup_secret": {"config": {"recovery_codes": [
                {"code": "abcd1234", "used_at": null},
                {"code": "used0001", "used_at": "2021-08-17T11:32:39Z"}
            ]}}
        }
    });
    let (status, _, created) = t.admin_json(reqwest::Method::POST, "/admin/identities", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let ident =
        admin_get(&t, &format!("/admin/identities/{id}?include_credential=totp&include_credential=lookup_secret"))
            .await;
    assert_eq!(ident["credentials"]["totp"]["config"]["totp_url"], url.as_str());
    assert_eq!(ident["credentials"]["lookup_secret"]["identifiers"], json!([id]));

    let (_, login) = api_login(&t, "imported2fa@example.org", PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    let flow = aal2_flow(&t, &token).await;
    assert_eq!(names(&flow), ["csrf_token", "totp_code", "method=totp", "lookup_secret", "method=lookup_secret"]);
    let (status, body) =
        aal2_submit(&t, &token, &flow, json!({"method": "totp", "totp_code": code_for(secret, 0)})).await;
    assert_eq!(status, 200, "{body}");
    let (_, login) = api_login(&t, "imported2fa@example.org", PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    let flow = aal2_flow(&t, &token).await;
    let (status, body) =
        aal2_submit(&t, &token, &flow, json!({"method": "lookup_secret", "lookup_secret": "used0001"})).await;
    assert_eq!((status, message_ids(&body)), (400, vec![4000012]));
    let (status, body) =
        aal2_submit(&t, &token, &flow, json!({"method": "lookup_secret", "lookup_secret": "abcd1234"})).await;
    assert_eq!(status, 200, "{body}");

    // A malformed second factor is refused and nothing is created (a zero period or ten
    // digits would make every check panic).
    for totp_url in [
        "nope".to_string(),
        format!("otpauth://totp/x:y?algorithm=SHA1&digits=6&issuer=x&period=0&secret={secret}"),
        format!("otpauth://totp/x:y?algorithm=SHA1&digits=10&issuer=x&period=30&secret={secret}"),
        "otpauth://totp/x:y?algorithm=SHA1&digits=6&issuer=x&period=30&secret=".to_string(),
    ] {
        let bad = json!({"traits": {"email": "bad2fa@example.org"}, "credentials": {"totp": {"config": {"totp_url": totp_url}}}});
        let (status, _, body) = t.admin_json(reqwest::Method::POST, "/admin/identities", Some(bad)).await;
        assert_eq!(status, 400, "{totp_url}: {body}");
    }
    let codes = json!({"recovery_codes": [{"code": "a", "used_at": "yesterday"}]});
    let bad = json!({"traits": {"email": "bad2fa@example.org"}, "credentials": {"lookup_secret": {"config": codes}}});
    let (status, _, body) = t.admin_json(reqwest::Method::POST, "/admin/identities", Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    let (_, _, list) =
        t.admin_json(reqwest::Method::GET, "/admin/identities?credentials_identifier=bad2fa@example.org", None).await;
    assert_eq!(list, json!([]));
}
both_backends!(imported_second_factors_work);

/// The COSE public key inside a registration's attestation object (what go-webauthn stores as
/// `public_key`): authenticator data = rpIdHash(32) flags(1) counter(4) aaguid(16) idLen(2)
/// id(idLen) COSE key.
fn cose_key_of(attestation: &webauthn_rs::prelude::RegisterPublicKeyCredential) -> Vec<u8> {
    use serde_cbor_2::Value;
    let raw: Vec<u8> = attestation.response.attestation_object.clone();
    let Value::Map(object) = serde_cbor_2::from_slice::<Value>(&raw).unwrap() else { panic!("not a map") };
    let Some(Value::Bytes(data)) = object.get(&Value::Text("authData".into())) else { panic!("no authData") };
    let id_len = usize::from(u16::from_be_bytes([data[53], data[54]]));
    let key: Value = serde_cbor_2::from_slice(&data[55 + id_len..]).unwrap();
    serde_cbor_2::to_vec(&key).unwrap()
}

/// A security key stored as Kratos stores it (COSE public key, no webauthn-rs form) signs in;
/// its first login stores tessera's form of it.
async fn security_keys_migrated_from_kratos_sign_in(db: Db) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softtoken::SoftToken;
    let t = TestApp::builder(db).config(with_webauthn).build().await;
    let origin = url::Url::parse(ORIGIN).unwrap();
    // The key is made outside tessera, as Kratos' registration would have.
    let rp = webauthn_rs::prelude::WebauthnBuilder::new("localhost", &origin).unwrap().build().unwrap();
    let user = uuid::Uuid::new_v4();
    let (options, _) = rp.start_securitykey_registration(user, "m", "m", None, None, None).unwrap();
    let (mut token, _) = SoftToken::new(false).unwrap();
    let attestation = token.do_registration(origin.clone(), options).unwrap();
    let id: Vec<u8> = attestation.raw_id.clone();
    let body = json!({
        "traits": {"email": "migrated@example.org"},
        "credentials": {
            "password": {"config": {"password": PASSWORD}},
            "webauthn": {"config": {
                "credentials": [{
                    "id": STANDARD.encode(&id),
                    "public_key": STANDARD.encode(cose_key_of(&attestation)),
                    "attestation_type": "none",
                    "authenticator": {"aaguid": "AAAAAAAAAAAAAAAAAAAAAA==", "sign_count": 0, "clone_warning": false},
                    "display_name": "old key",
                    "added_at": "2024-01-01T00:00:00Z",
                    "is_passwordless": false
                }],
                "user_handle": STANDARD.encode(user.as_bytes())
            }}
        }
    });
    let (status, _, created) = t.admin_json(reqwest::Method::POST, "/admin/identities", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let identity = created["id"].as_str().unwrap().to_string();

    let mut jar = spa_password_login(&t, "migrated@example.org").await;
    assert_eq!(spa_get(&t, &mut jar, "/sessions/whoami").await.0, 403, "the imported key counts as a second factor");
    let (_, flow) = spa_get(&t, &mut jar, "/self-service/login/browser?aal=aal2").await;
    let assertion = token.do_authentication(origin, trigger_options(&flow, "webauthn_login_trigger")).unwrap();
    let assertion = serde_json::to_string(&assertion).unwrap();
    let (status, body) = spa_post(&t, &mut jar, "login", &flow, json!({"webauthn_login": assertion})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
    let mut stored = Value::Null;
    for _ in 0..100 {
        stored = admin_get(&t, &format!("/admin/identities/{identity}?include_credential=webauthn")).await;
        if stored["credentials"]["webauthn"]["config"]["credentials"][0]["key"].is_object() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let entry = &stored["credentials"]["webauthn"]["config"]["credentials"][0];
    assert!(entry["key"].is_object(), "{entry}");
    assert!(entry["authenticator"]["sign_count"].as_u64() > Some(0));
    assert_eq!(entry["public_key"].as_str().map(str::is_empty), Some(false), "Kratos' fields are kept");
}
both_backends!(security_keys_migrated_from_kratos_sign_in);
