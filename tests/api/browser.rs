//! WebAuthn in a real browser: headless Chromium (driven through chromedriver's WebDriver
//! API, with its virtual authenticator) runs tessera's `/.well-known/ory/webauthn.js` from the
//! script node of a flow, registers a security key in settings and signs in with it at aal2,
//! and signs up and in with a passkey (a discoverable credential) alone.
//! The page is built from the flow's nodes the way a UI would (issue 17 brings tessera's own).

use crate::both_backends;
use crate::chromium::Driver;
use crate::harness::{Db, TestApp};
use crate::selfservice::PASSWORD;
use serde_json::{Value, json};

/// Signs in with the password over fetch (as an SPA does): the session cookie is the browser's.
const PASSWORD_LOGIN: &str = r#"
const [email, password, done] = arguments;
fetch("/self-service/login/browser", { headers: { Accept: "application/json" }, credentials: "include" })
  .then((r) => r.json())
  .then((flow) => {
    const csrf = flow.ui.nodes.find((n) => n.attributes.name === "csrf_token").attributes.value;
    return fetch(flow.ui.action, {
      method: "POST",
      credentials: "include",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ method: "password", identifier: email, password, csrf_token: csrf }),
    });
  })
  .then((r) => done(r.status), (e) => done(String(e)));
"#;

/// Renders a flow's nodes as a plain form (inputs, buttons with their `onclick`, the script
/// node) and waits for the WebAuthn helper to load.
const RENDER_FLOW: &str = r#"
const [kind, id, done] = arguments;
fetch(`/self-service/${kind}/flows?id=${id}`, { headers: { Accept: "application/json" }, credentials: "include" })
  .then((r) => r.json())
  .then((flow) => {
    document.body.innerHTML = "";
    const form = document.createElement("form");
    form.method = "POST";
    form.action = flow.ui.action;
    for (const n of flow.ui.nodes) {
      const a = n.attributes;
      if (n.type === "script") {
        const s = document.createElement("script");
        s.src = a.src;
        s.integrity = a.integrity;
        s.crossOrigin = a.crossorigin;
        s.referrerPolicy = a.referrerpolicy;
        document.head.appendChild(s);
      } else if (n.type === "input" && a.type !== "submit") {
        const i = document.createElement(a.type === "button" ? "button" : "input");
        i.name = a.name;
        i.value = a.value ?? "";
        i.type = a.type;
        if (a.onclick) i.setAttribute("onclick", a.onclick);
        form.appendChild(i);
      }
    }
    document.body.appendChild(form);
    const ready = () => (window.oryWebAuthnLogin ? done(true) : setTimeout(ready, 50));
    ready();
  }, (e) => done(String(e)));
"#;

const WHOAMI: &str = r#"
const done = arguments[arguments.length - 1];
fetch("/sessions/whoami", { credentials: "include" }).then((r) => r.json()).then(done, (e) => done(String(e)));
"#;

async fn webauthn_js_in_chromium(db: Db) {
    let Some(driver) = Driver::start().await else { return };
    let port = crate::durability::free_port();
    let origin = format!("http://localhost:{port}");
    let page = format!("{origin}/health/alive");
    let (o, p) = (origin.clone(), page.clone());
    let t = TestApp::builder(db)
        .config(move |c| {
            c.serve.public.port = port;
            c.serve.public.base_url = Some(format!("{o}/"));
            c.selfservice.flows.login.ui_url = p.clone();
            c.selfservice.flows.settings.ui_url = p.clone();
            c.selfservice.default_browser_return_url = Some(format!("{p}?signed-in"));
            c.selfservice.methods.webauthn.enabled = true;
            c.selfservice.methods.webauthn.config.rp.id = Some("localhost".into());
            c.selfservice.methods.webauthn.config.rp.display_name = Some("tessera".into());
            c.selfservice.methods.webauthn.config.rp.origins = vec![o];
        })
        .build()
        .await;
    let (status, _, created) = t
        .admin_json(
            reqwest::Method::POST,
            "/admin/identities",
            Some(json!({"traits": {"email": "chromium@example.org"}, "credentials": {"password": {"config": {"password": PASSWORD}}}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    driver
        .call(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            json!({"protocol": "ctap2", "transport": "usb", "hasResidentKey": false, "hasUserVerification": false, "isUserConsenting": true}),
        )
        .await;

    // Sign in, open settings, register a key with the trigger button.
    driver.go(&page).await;
    assert_eq!(driver.run(PASSWORD_LOGIN, json!(["chromium@example.org", PASSWORD])).await, json!(200));
    driver.go(&format!("{origin}/self-service/settings/browser")).await;
    let at = driver.wait_for_url(&format!("{page}?flow=")).await;
    let flow = at.split("flow=").nth(1).unwrap().to_string();
    assert_eq!(driver.run(RENDER_FLOW, json!(["settings", flow])).await, json!(true), "webauthn.js loaded (integrity)");
    let click = r#"const done = arguments[arguments.length - 1];
        document.querySelector('[name="webauthn_register_displayname"]').value = "chromium key";
        document.querySelector('[name="webauthn_register_trigger"]').click();
        done(true);"#;
    driver.run(click, json!([])).await;
    driver.wait_for_url(&format!("{page}?flow={flow}")).await;
    let mut keys = Value::Null;
    for _ in 0..100 {
        let (_, _, ident) = t
            .admin_json(reqwest::Method::GET, &format!("/admin/identities/{id}?include_credential=webauthn"), None)
            .await;
        keys = ident["credentials"]["webauthn"]["config"]["credentials"].clone();
        if keys.is_array() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(keys[0]["display_name"], "chromium key", "{keys}");

    // A new browser session: password first (aal1), then the key at aal2.
    driver.call(reqwest::Method::DELETE, "/cookie", Value::Null).await;
    // 422 browser_location_change_required: the aal1 cookie is set, aal2 is still needed.
    assert_eq!(driver.run(PASSWORD_LOGIN, json!(["chromium@example.org", PASSWORD])).await, json!(422));
    let session = driver.run(WHOAMI, json!([])).await;
    assert_eq!(session["error"]["id"], "session_aal2_required", "{session}");
    driver.go(&format!("{origin}/self-service/login/browser?aal=aal2")).await;
    let at = driver.wait_for_url(&format!("{page}?flow=")).await;
    let flow = at.split("flow=").nth(1).unwrap().to_string();
    assert_eq!(driver.run(RENDER_FLOW, json!(["login", flow])).await, json!(true));
    let click = r#"const done = arguments[arguments.length - 1];
        document.querySelector('[name="webauthn_login_trigger"]').click();
        done(true);"#;
    driver.run(click, json!([])).await;
    driver.wait_for_url(&format!("{page}?signed-in")).await;
    let session = driver.run(WHOAMI, json!([])).await;
    assert_eq!(session["authenticator_assurance_level"], "aal2", "{session}");
    assert_eq!(session["authentication_methods"][1]["method"], "webauthn");
    driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}
both_backends!(webauthn_js_in_chromium);

/// Passkeys in headless Chromium: sign-up with the trigger button of a one-step registration
/// form (the virtual authenticator keeps a discoverable credential with user verification),
/// then, in a fresh browser session, login with the passkey alone — no identifier typed.
async fn passkeys_in_chromium(db: Db) {
    let Some(driver) = Driver::start().await else { return };
    let port = crate::durability::free_port();
    let origin = format!("http://localhost:{port}");
    let page = format!("{origin}/health/alive");
    let (o, p) = (origin.clone(), page.clone());
    // Kept alive until the end: the server the browser talks to.
    let _server = TestApp::builder(db)
        .config(move |c| {
            c.serve.public.port = port;
            c.serve.public.base_url = Some(format!("{o}/"));
            c.selfservice.flows.login.ui_url = p.clone();
            c.selfservice.flows.registration.ui_url = p.clone();
            c.selfservice.flows.registration.enable_legacy_one_step = true;
            c.selfservice.flows.registration.after.passkey.hooks =
                vec![tessera::config::HookConfig { hook: "session".into(), config: None }];
            c.selfservice.default_browser_return_url = Some(format!("{p}?signed-in"));
            c.selfservice.methods.passkey.enabled = true;
            c.selfservice.methods.passkey.config.rp.id = Some("localhost".into());
            c.selfservice.methods.passkey.config.rp.display_name = Some("tessera".into());
            c.selfservice.methods.passkey.config.rp.origins = vec![o];
        })
        .build()
        .await;
    driver
        .call(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true, "hasUserVerification": true,
                   "isUserVerified": true, "isUserConsenting": true}),
        )
        .await;

    // Sign up: the traits, then the passkey button.
    driver.go(&page).await;
    driver.go(&format!("{origin}/self-service/registration/browser")).await;
    let at = driver.wait_for_url(&format!("{page}?flow=")).await;
    let flow = at.split("flow=").nth(1).unwrap().to_string();
    assert_eq!(driver.run(RENDER_FLOW, json!(["registration", flow])).await, json!(true));
    let click = r#"const done = arguments[arguments.length - 1];
        document.querySelector('[name="traits.email"]').value = "passkey@example.org";
        document.querySelector('[name="passkey_register_trigger"]').click();
        done(true);"#;
    driver.run(click, json!([])).await;
    driver.wait_for_url(&format!("{page}?signed-in")).await;
    let session = driver.run(WHOAMI, json!([])).await;
    assert_eq!(session["authentication_methods"][0]["method"], "passkey", "{session}");
    assert_eq!(session["identity"]["traits"]["email"], "passkey@example.org");

    // A fresh browser session: the passkey alone signs in.
    driver.call(reqwest::Method::DELETE, "/cookie", Value::Null).await;
    driver.go(&format!("{origin}/self-service/login/browser")).await;
    let at = driver.wait_for_url(&format!("{page}?flow=")).await;
    let flow = at.split("flow=").nth(1).unwrap().to_string();
    assert_eq!(driver.run(RENDER_FLOW, json!(["login", flow])).await, json!(true));
    let click = r#"const done = arguments[arguments.length - 1];
        document.querySelector('[name="passkey_login_trigger"]').click();
        done(true);"#;
    driver.run(click, json!([])).await;
    driver.wait_for_url(&format!("{page}?signed-in")).await;
    let again = driver.run(WHOAMI, json!([])).await;
    assert_eq!(again["identity"]["id"], session["identity"]["id"], "{again}");
    assert_eq!(again["authentication_methods"][0]["method"], "passkey");
    assert_eq!(again["authenticator_assurance_level"], "aal1");
    driver.call(reqwest::Method::DELETE, "", Value::Null).await;
}
both_backends!(passkeys_in_chromium);
