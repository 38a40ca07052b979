//! Passkeys end to end with `webauthn-authenticator-rs`' SoftPasskey: sign-up with a passkey
//! alone, login without an identifier, refresh with the identity's own passkeys, settings
//! add/remove (the last first factor stays), and passkeys are no second factor.
//!
//! SoftPasskey cannot keep resident keys, so the test plays the browser's part around it: it
//! asks the authenticator for a non-resident credential, and at login names the credential
//! (`allowCredentials`) and returns the user handle a discoverable credential would carry.
//! The server's checks — challenge, origin, signature, user verification, account lookup by
//! the user handle — are the real ones.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::passwordless::amr;
use crate::selfservice::{api_flow, api_submit, message_ids, node};
use crate::settings::{settings_flow, update};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use tessera::config::{Config, HookConfig};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const ORIGIN: &str = "http://localhost:4455";

fn with_passkeys(c: &mut Config) {
    c.selfservice.methods.passkey.enabled = true;
    c.selfservice.methods.passkey.config.rp.id = Some("localhost".into());
    c.selfservice.methods.passkey.config.rp.display_name = Some("tessera test".into());
    c.selfservice.methods.passkey.config.rp.origins = vec![ORIGIN.into()];
    c.selfservice.flows.registration.after.passkey.hooks = vec![HookConfig { hook: "session".into(), config: None }];
}

fn origin() -> url::Url {
    url::Url::parse(ORIGIN).unwrap()
}

fn value_of(flow: &Value, name: &str) -> Value {
    let raw =
        node(flow, name).unwrap_or_else(|| panic!("no {name} in {flow}"))["attributes"]["value"].as_str().unwrap();
    serde_json::from_str(raw).unwrap()
}

type Authenticator = SoftPasskey;

/// Creates a credential from creation options (SoftPasskey keeps no resident keys).
fn create(key: &mut Authenticator, mut options: Value) -> String {
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let credential = key.do_registration(origin(), serde_json::from_value(options).unwrap()).unwrap();
    serde_json::to_string(&credential).unwrap()
}

/// Signs `options` with credential `id`, returning what a discoverable credential returns.
fn sign(key: &mut Authenticator, mut options: Value, id: &str, handle: Option<&str>) -> String {
    if options["publicKey"]["allowCredentials"].as_array().is_none_or(|a| a.is_empty()) {
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
    }
    let assertion = key.do_authentication(origin(), serde_json::from_value(options).unwrap()).unwrap();
    let mut assertion = serde_json::to_value(&assertion).unwrap();
    if let Some(handle) = handle {
        assertion["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(handle));
    }
    assertion.to_string()
}

async fn stored_passkeys(t: &TestApp, id: &str) -> Value {
    let (status, _, body) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=passkey"), None).await;
    assert_eq!(status, 200, "{body}");
    body["credentials"]["passkey"].clone()
}

async fn passkeys_alone(db: Db) {
    let t = TestApp::builder(db).config(with_passkeys).build().await;
    let mut key = SoftPasskey::new(true);

    // Sign-up: the traits, then the passkey.
    let flow = api_flow(&t, "registration", "").await;
    let traits = json!({"email": "pia@example.org"});
    let (status, step2) = api_submit(&t, "registration", &flow, json!({"method": "profile", "traits": traits})).await;
    assert_eq!(status, 400, "{step2}");
    let trigger = node(&step2, "passkey_register_trigger").unwrap();
    assert_eq!(trigger["group"], "passkey");
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryPasskeyRegistration");
    assert!(trigger["attributes"].get("onclick").is_none(), "API flows run no script");
    assert_eq!(trigger["meta"]["label"]["id"], 1040007);
    assert!(step2["ui"]["nodes"].as_array().unwrap().iter().all(|n| n["type"] != "script"), "API flows run no script");
    let data = value_of(&step2, "passkey_create_data");
    assert_eq!(data["displayNameFieldName"], "traits.email");
    assert_eq!(data["credentialOptions"]["publicKey"]["authenticatorSelection"]["residentKey"], "required");
    let handle =
        URL_SAFE_NO_PAD.decode(data["credentialOptions"]["publicKey"]["user"]["id"].as_str().unwrap()).unwrap();
    let handle = String::from_utf8(handle).unwrap();
    assert_eq!(handle.len(), 64);
    // Without the passkey: asked for it.
    let (status, body) = api_submit(&t, "registration", &flow, json!({"method": "passkey", "traits": traits})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000002]);
    // Garbage: refused, nothing created.
    let (status, body) =
        api_submit(&t, "registration", &flow, json!({"traits": traits, "passkey_register": "{\"id\":1}"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000001]);
    let created = create(&mut key, data["credentialOptions"].clone());
    let credential_id = serde_json::from_str::<Value>(&created).unwrap()["id"].as_str().unwrap().to_string();
    // What the browser submits: the form, no `method`.
    let (status, done) =
        api_submit(&t, "registration", &flow, json!({"traits": traits, "passkey_register": created})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(amr(&done["session"]), vec![("passkey".to_string(), "aal1".to_string())]);
    let id = done["identity"]["id"].as_str().unwrap().to_string();
    let stored = stored_passkeys(&t, &id).await;
    assert_eq!(stored["identifiers"], json!([handle]));
    assert_eq!(stored["config"]["credentials"][0]["is_passwordless"], true);
    assert_eq!(
        base64::engine::general_purpose::STANDARD.decode(stored["config"]["user_handle"].as_str().unwrap()).unwrap(),
        handle.as_bytes()
    );

    // Login without an identifier.
    let flow = api_flow(&t, "login", "").await;
    let login_trigger = node(&flow, "passkey_login_trigger").unwrap();
    assert_eq!(login_trigger["attributes"]["onclickTrigger"], "oryPasskeyLogin");
    assert_eq!(login_trigger["meta"]["label"]["id"], 1010021);
    assert_eq!(node(&flow, "passkey_login").unwrap()["attributes"]["onloadTrigger"], "oryPasskeyLoginAutocompleteInit");
    assert_eq!(node(&flow, "identifier").unwrap()["attributes"]["autocomplete"], "username webauthn");
    let challenge = value_of(&flow, "passkey_challenge");
    assert!(challenge["publicKey"]["challenge"].is_string());
    assert_eq!(challenge["publicKey"]["rpId"], "localhost");
    assert!(challenge.get("mediation").is_none());
    // An unknown user handle: 4000015.
    let unknown = sign(&mut key, challenge.clone(), &credential_id, Some("no-such-handle"));
    let (status, body) = api_submit(&t, "login", &flow, json!({"passkey_login": unknown})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000015]);
    // A tampered signature: 4000008.
    let mut forged: Value =
        serde_json::from_str(&sign(&mut key, challenge.clone(), &credential_id, Some(&handle))).unwrap();
    forged["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode([7u8; 70]));
    let (status, body) = api_submit(&t, "login", &flow, json!({"passkey_login": forged.to_string()})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000008]);
    let assertion = sign(&mut key, challenge, &credential_id, Some(&handle));
    let (status, done) = api_submit(&t, "login", &flow, json!({"passkey_login": assertion})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["session"]["identity"]["id"], id.as_str());
    assert_eq!(amr(&done["session"]), vec![("passkey".to_string(), "aal1".to_string())]);
    let token = done["session_token"].as_str().unwrap().to_string();
    // The sign counter is stored after the answer (a clone's lower counter is refused then).
    let mut counted = Value::Null;
    for _ in 0..100 {
        counted = stored_passkeys(&t, &id).await["config"]["credentials"][0]["authenticator"]["sign_count"].clone();
        if counted.as_u64().is_some_and(|c| c > 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counted.as_u64().is_some_and(|c| c > 0), "{counted}");

    // Refresh: only this identity's passkeys are challenged.
    let res = t
        .http
        .get(format!("{}/self-service/login/api?refresh=true", t.public))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let flow: Value = res.json().await.unwrap();
    let challenge = value_of(&flow, "passkey_challenge");
    let allowed: Vec<&str> = challenge["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, vec![credential_id.as_str()]);
    let assertion = sign(&mut key, challenge, &credential_id, Some(&handle));
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "passkey", "passkey_login": assertion}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    assert_eq!(refreshed["session"]["id"], done["session"]["id"]);
    assert_eq!(refreshed["session"]["authentication_methods"].as_array().unwrap().len(), 2);

    // Passkeys are no second factor.
    let res = t
        .http
        .get(format!("{}/self-service/login/api?aal=aal2", t.public))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    if res.status() == 200 {
        let flow: Value = res.json().await.unwrap();
        assert!(node(&flow, "passkey_login_trigger").is_none(), "{flow}");
    }

    // Settings: the only passkey cannot be removed; a second one is added, then one removed.
    let flow = settings_flow(&t, &token).await;
    let remove = node(&flow, "passkey_remove").unwrap();
    assert_eq!(remove["attributes"]["disabled"], true);
    assert_eq!(remove["meta"]["label"]["id"], 1050020);
    let hex_id = remove["attributes"]["value"].as_str().unwrap().to_string();
    assert_eq!(hex_id, hex::encode(URL_SAFE_NO_PAD.decode(&credential_id).unwrap()));
    let (status, body) = update(&t, &token, &flow, json!({"method": "passkey", "passkey_remove": hex_id})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(message_ids(&body), vec![4000001]);
    assert_eq!(stored_passkeys(&t, &id).await["config"]["credentials"].as_array().unwrap().len(), 1);

    let flow = settings_flow(&t, &token).await;
    assert_eq!(node(&flow, "passkey_register_trigger").unwrap()["meta"]["label"]["id"], 1050019);
    let options = value_of(&flow, "passkey_create_data");
    assert_eq!(options["publicKey"]["user"]["name"], "pia@example.org");
    let mut second = SoftPasskey::new(true);
    let created = create(&mut second, options);
    let (status, body) = update(&t, &token, &flow, json!({"passkey_settings_register": created})).await;
    assert_eq!(status, 200, "{body}");
    let stored = stored_passkeys(&t, &id).await;
    assert_eq!(stored["config"]["credentials"].as_array().unwrap().len(), 2);
    assert_eq!(stored["identifiers"].as_array().unwrap().len(), 2, "each passkey's user handle names the account");
    let flow = settings_flow(&t, &token).await;
    let removes: Vec<&Value> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["attributes"]["name"] == "passkey_remove")
        .collect();
    assert_eq!(removes.len(), 2);
    assert!(removes.iter().all(|n| n["attributes"]["disabled"] != true));
    let (status, body) = update(&t, &token, &flow, json!({"passkey_remove": hex_id})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored_passkeys(&t, &id).await["config"]["credentials"].as_array().unwrap().len(), 1);
    // The removed passkey no longer signs in.
    let flow = api_flow(&t, "login", "").await;
    let assertion = sign(&mut key, value_of(&flow, "passkey_challenge"), &credential_id, Some(&handle));
    let (status, body) = api_submit(&t, "login", &flow, json!({"passkey_login": assertion})).await;
    assert_eq!(status, 400, "{body}");
}
both_backends!(passkeys_alone);

/// A JSON request from a browser app with the cookies in `jar`.
async fn spa(jar: &mut crate::selfservice::Jar, req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = jar.send(req.header("Accept", "application/json")).await;
    (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
}

/// A browser app (SPA: browser flows, JSON, cookies): the nodes carry the script and the
/// `onclick` calls; sign-up and login with a passkey; a missing CSRF token changes nothing.
async fn passkeys_for_spas(db: Db) {
    use crate::selfservice::{Jar, csrf_of};
    let t = TestApp::builder(db).config(with_passkeys).build().await;
    let mut key = SoftPasskey::new(true);
    let mut jar = Jar::default();
    let (status, flow) = spa(&mut jar, t.http.get(format!("{}/self-service/registration/browser", t.public))).await;
    assert_eq!(status, 200, "{flow}");
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let traits = json!({"email": "spa-passkey@example.org"});
    let body = json!({"method": "profile", "traits": traits, "csrf_token": csrf_of(&flow)});
    let (status, step2) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 400, "{step2}");
    let trigger = node(&step2, "passkey_register_trigger").unwrap();
    assert_eq!(trigger["attributes"]["onclick"], "window.oryPasskeyRegistration()");
    let scripts = step2["ui"]["nodes"].as_array().unwrap().iter().filter(|n| n["type"] == "script").count();
    assert_eq!(scripts, 1, "one script node for browsers");
    let created = create(&mut key, value_of(&step2, "passkey_create_data")["credentialOptions"].clone());
    let credential_id = serde_json::from_str::<Value>(&created).unwrap()["id"].as_str().unwrap().to_string();
    // Without the CSRF token: refused, nothing created.
    let (status, _) =
        spa(&mut jar, t.http.post(&action).json(&json!({"traits": traits, "passkey_register": created}))).await;
    assert_eq!(status, 403);
    let body = json!({"traits": traits, "passkey_register": created, "csrf_token": csrf_of(&step2)});
    let (status, done) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.get("session_token").is_none());
    assert!(jar.has_prefix("ory_kratos_session"));
    let id = done["identity"]["id"].as_str().unwrap().to_string();
    let handle = stored_passkeys(&t, &id).await["identifiers"][0].as_str().unwrap().to_string();

    // A new browser signs in with the passkey alone.
    let mut jar = Jar::default();
    let (status, flow) = spa(&mut jar, t.http.get(format!("{}/self-service/login/browser", t.public))).await;
    assert_eq!(status, 200, "{flow}");
    assert_eq!(
        node(&flow, "passkey_login").unwrap()["attributes"]["onload"],
        "window.oryPasskeyLoginAutocompleteInit()"
    );
    let assertion = sign(&mut key, value_of(&flow, "passkey_challenge"), &credential_id, Some(&handle));
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let body = json!({"passkey_login": assertion, "csrf_token": csrf_of(&flow)});
    let (status, done) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["session"]["identity"]["id"], id.as_str());
    assert_eq!(amr(&done["session"]), vec![("passkey".to_string(), "aal1".to_string())]);
    assert_eq!(done["continue_with"][0]["action"], "redirect_browser_to");
}
both_backends!(passkeys_for_spas);

/// Passwordless WebAuthn keys (`webauthn.config.passwordless = true`) in a browser app:
/// sign-up with a security key (SoftToken, presence only, as Kratos asks), login by
/// identifier then key (aal1), unknown accounts 4000015, keys that are no second factor, the
/// only first factor kept, and API flows without the method.
async fn passwordless_security_keys(db: Db) {
    use crate::selfservice::{Jar, csrf_of};
    use webauthn_authenticator_rs::softtoken::SoftToken;
    let t = TestApp::builder(db)
        .config(|c| {
            c.selfservice.methods.webauthn.enabled = true;
            c.selfservice.methods.webauthn.config.passwordless = true;
            c.selfservice.methods.webauthn.config.rp.id = Some("localhost".into());
            c.selfservice.methods.webauthn.config.rp.display_name = Some("tessera test".into());
            c.selfservice.methods.webauthn.config.rp.origins = vec![ORIGIN.into()];
            c.selfservice.flows.registration.after.webauthn.hooks =
                vec![HookConfig { hook: "session".into(), config: None }];
        })
        .build()
        .await;
    let (mut token, _) = SoftToken::new(false).unwrap();
    let trigger_options = |flow: &Value, name: &str| -> Value {
        serde_json::from_str(node(flow, name).unwrap()["attributes"]["value"].as_str().unwrap()).unwrap()
    };

    // Sign up: traits, then the key.
    let mut jar = Jar::default();
    let (_, flow) = spa(&mut jar, t.http.get(format!("{}/self-service/registration/browser", t.public))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let traits = json!({"email": "key-only@example.org"});
    let body = json!({"method": "profile", "traits": traits, "csrf_token": csrf_of(&flow)});
    let (status, step2) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 400, "{step2}");
    assert_eq!(node(&step2, "webauthn_register_trigger").unwrap()["meta"]["label"]["id"], 1040004);
    let options = trigger_options(&step2, "webauthn_register_trigger");
    let created = token.do_registration(origin(), serde_json::from_value(options).unwrap()).unwrap();
    let body = json!({"traits": traits, "csrf_token": csrf_of(&step2), "webauthn_register_displayname": "my key",
                      "webauthn_register": serde_json::to_string(&created).unwrap()});
    let (status, done) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(amr(&done["session"]), vec![("webauthn".to_string(), "aal1".to_string())]);
    let id = done["identity"]["id"].as_str().unwrap().to_string();
    let (_, _, stored) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=webauthn"), None).await;
    let stored = &stored["credentials"]["webauthn"];
    assert_eq!(stored["identifiers"], json!(["key-only@example.org"]));
    assert_eq!(stored["config"]["credentials"][0]["is_passwordless"], true);
    assert_eq!(stored["config"]["credentials"][0]["display_name"], "my key");

    // Sign in: the identifier, then the key.
    let mut jar = Jar::default();
    let (_, flow) = spa(&mut jar, t.http.get(format!("{}/self-service/login/browser", t.public))).await;
    let submit = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "method" && n["attributes"]["value"] == "webauthn")
        .cloned()
        .expect("a webauthn submit");
    assert_eq!(submit["meta"]["label"]["id"], 1010008);
    let action = flow["ui"]["action"].as_str().unwrap().to_string();
    let body = json!({"method": "webauthn", "identifier": "nobody@example.org", "csrf_token": csrf_of(&flow)});
    let (status, refused) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(message_ids(&refused), vec![4000015]);
    let body = json!({"method": "webauthn", "identifier": "Key-Only@example.org", "csrf_token": csrf_of(&flow)});
    let (status, moved) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 422, "{moved}");
    assert_eq!(moved["error"]["id"], "browser_location_change_required");
    let (_, flow) =
        spa(&mut jar, t.http.get(format!("{}/self-service/login/flows?id={}", t.public, flow["id"].as_str().unwrap())))
            .await;
    assert_eq!(message_ids(&flow), vec![1010012]);
    let options = trigger_options(&flow, "webauthn_login_trigger");
    assert_eq!(options["publicKey"]["allowCredentials"].as_array().unwrap().len(), 1);
    let assertion = token.do_authentication(origin(), serde_json::from_value(options).unwrap()).unwrap();
    // The challenge belongs to the account it was made for: naming another account refuses.
    let (status, _, _) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({"traits": {"email": "other@example.org"},
                        "credentials": {"password": {"config": {"password": crate::selfservice::PASSWORD}}}})),
        )
        .await;
    assert_eq!(status, 201);
    let body = json!({"identifier": "other@example.org", "csrf_token": csrf_of(&flow),
                      "webauthn_login": serde_json::to_string(&assertion).unwrap()});
    let (status, refused) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(message_ids(&refused), vec![4000008]);
    let body = json!({"identifier": "key-only@example.org", "csrf_token": csrf_of(&flow),
                      "webauthn_login": serde_json::to_string(&assertion).unwrap()});
    let (status, done) = spa(&mut jar, t.http.post(&action).json(&body)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["session"]["identity"]["id"], id.as_str());
    assert_eq!(amr(&done["session"]), vec![("webauthn".to_string(), "aal1".to_string())]);
    // aal1 is the highest available: a passwordless key is no second factor.
    let (status, _) = spa(&mut jar, t.http.get(format!("{}/sessions/whoami", t.public))).await;
    assert_eq!(status, 200);

    // Settings: the only first factor cannot be removed.
    let (_, settings) = spa(&mut jar, t.http.get(format!("{}/self-service/settings/browser", t.public))).await;
    assert_eq!(node(&settings, "webauthn_remove").unwrap()["attributes"]["disabled"], true);

    // API flows do not offer the method.
    let flow = api_flow(&t, "login", "").await;
    assert!(flow["ui"]["nodes"].as_array().unwrap().iter().all(|n| n["group"] != "webauthn"), "{flow}");
}
both_backends!(passwordless_security_keys);
