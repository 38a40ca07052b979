//! The bundled UI in a real browser: headless Chromium (through chromedriver) types into the
//! pages' fields and clicks their buttons as a user does — sign-up, verification and recovery
//! by codes e-mailed through a real SMTP server process, sign-out, sign-in (a wrong password
//! shows 4000006), a profile change, TOTP enrolment from the QR page, sessions, passkeys with
//! Chromium's virtual authenticator, and the password flows with JavaScript off. Every page
//! visited is checked with axe-core (no critical or serious violation), must load nothing from
//! another origin (Chromium's network log), and is saved as a screenshot under
//! `target/tmp/ui-screenshots/`.

use crate::both_backends;
use crate::chromium::Driver;
use crate::courier::SmtpPeer;
use crate::harness::{Db, TestApp};
use crate::recovery::{code_in, mail_to};
use crate::selfservice::PASSWORD;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tessera::config::{Config, Dur};

const NEW_PASSWORD: &str = "a-brand-new-passphrase-8812";

/// The UI on `http://localhost:<port>/` (a secure context, so WebAuthn works) as `serve --dev`
/// sets it up, with TOTP and passkeys on and mail through the SMTP peer; every UI URL left to
/// the UI's defaults.
fn ui_config(port: u16, smtp: u16) -> impl FnOnce(&mut Config) + 'static {
    move |c| {
        let origin = format!("http://localhost:{port}");
        crate::ui::with_ui(c);
        c.serve.public.port = port;
        c.serve.public.base_url = Some(format!("{origin}/"));
        c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{smtp}/?disable_starttls=true");
        c.courier.smtp.from_address = "accounts@tessera.test".into();
        c.courier.worker.pull_wait = Dur(Duration::from_millis(50));
        c.selfservice.methods.totp.enabled = true;
        c.selfservice.methods.totp.config.issuer = Some("tessera.test".into());
        let passkey = &mut c.selfservice.methods.passkey;
        passkey.enabled = true;
        passkey.config.rp.id = Some("localhost".into());
        passkey.config.rp.display_name = Some("tessera".into());
        passkey.config.rp.origins = vec![origin];
    }
}

/// A browser on the UI: every page it is asked to look at is checked and photographed.
struct Ui {
    driver: Driver,
    origin: String,
    shots: String,
    /// Whether axe-core runs (it needs JavaScript in the page).
    axe: bool,
    /// Every URL the pages requested so far.
    seen: std::cell::RefCell<Vec<String>>,
}

impl Ui {
    async fn start(db: Db, javascript: bool, what: &str) -> Option<(Ui, u16)> {
        let driver = Driver::start_with(javascript).await?;
        let port = crate::durability::free_port();
        let shots = format!("{}-{what}", format!("{db:?}").to_lowercase());
        Some((
            Ui { driver, origin: format!("http://localhost:{port}"), shots, axe: javascript, seen: Default::default() },
            port,
        ))
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Opens `/ui/<page>` and waits for the page with its flow.
    async fn open(&self, page: &str) -> String {
        self.driver.go(&self.at(&format!("/ui/{page}"))).await;
        self.driver.wait_for_url(&self.at(&format!("/ui/{page}?flow="))).await
    }

    /// The current page: no critical or serious accessibility violation, nothing loaded from
    /// another origin; a screenshot is saved as `<backend>-<test>-<name>.png`.
    async fn check(&self, name: &str) {
        self.driver.screenshot(&format!("{}-{name}", self.shots)).await;
        if self.axe {
            let violations = self.driver.accessibility_violations().await;
            assert_eq!(violations, json!([]), "axe-core on {name} ({})", self.driver.url().await);
        }
        let requested = self.driver.requests().await;
        let foreign: Vec<&String> = requested
            .iter()
            .filter(|u| !u.starts_with(&format!("{}/", self.origin)) && !u.starts_with("data:"))
            .collect();
        assert!(foreign.is_empty(), "{name} requested other origins: {foreign:?}");
        self.seen.borrow_mut().extend(requested);
    }

    async fn messages(&self) -> Vec<String> {
        self.driver.message_ids().await
    }

    async fn press(&self, name: &str, value: &str) {
        self.driver.click(&format!("button[name='{name}'][value='{value}']")).await;
    }

    async fn fill(&self, name: &str, text: &str) {
        self.driver.type_into(&format!("input[name='{name}']"), text).await;
    }

    async fn body(&self) -> String {
        self.driver.text("main").await
    }

    /// Signs up with an e-mail and a password (the two-step form); ends on the welcome page.
    async fn sign_up(&self, email: &str) {
        self.open("registration").await;
        self.check("registration").await;
        self.fill("traits.email", email).await;
        self.press("method", "profile").await;
        self.driver.wait_for_url(&self.at("/ui/registration?flow=")).await;
        self.check("registration-password").await;
        self.fill("password", PASSWORD).await;
        self.press("method", "password").await;
        self.driver.wait_for_url(&self.at("/ui/welcome")).await;
        assert!(self.body().await.contains(&format!("You are signed in as {email}.")), "{}", self.body().await);
    }

    /// Signs out with the welcome page's link; ends on the sign-in page.
    async fn sign_out(&self) {
        self.driver.go(&self.at("/ui/welcome")).await;
        self.driver.click("a[href*='/self-service/logout?token=']").await;
        self.driver.wait_for_url(&self.at("/ui/login?flow=")).await;
        self.driver.go(&self.at("/ui/welcome")).await;
        assert!(self.body().await.contains("You are not signed in."));
    }

    /// Signs in with the password form; a wrong password first shows 4000006.
    async fn sign_in(&self, email: &str, password: &str) {
        self.open("login").await;
        self.check("login").await;
        self.fill("identifier", email).await;
        self.fill("password", "not-the-password-42").await;
        self.press("method", "password").await;
        self.driver.wait_for_url(&self.at("/ui/login?flow=")).await;
        assert!(self.messages().await.contains(&"4000006".to_string()), "{}", self.driver.source().await);
        self.check("login-wrong-password").await;
        self.fill("identifier", email).await;
        self.fill("password", password).await;
        self.press("method", "password").await;
        self.driver.wait_for_url(&self.at("/ui/welcome")).await;
        assert!(self.body().await.contains(&format!("You are signed in as {email}.")));
    }

    /// Asks for a code by e-mail on a verification or recovery page and enters it.
    async fn code_by_mail(&self, page: &str, peer: &SmtpPeer, email: &str) {
        self.open(page).await;
        self.check(page).await;
        let before = peer.received().into_iter().filter(|m| m["to"][0] == email).count();
        self.fill("email", email).await;
        self.press("method", "code").await;
        self.driver.wait_for_url(&self.at(&format!("/ui/{page}?flow="))).await;
        self.check(&format!("{page}-code")).await;
        let code = code_in(&mail_to(peer, email, before + 1).await);
        self.fill("code", &code).await;
        self.press("method", "code").await;
    }

    /// What the page's WebAuthn helper script defined once the page loaded: `"function"`, or
    /// `"undefined"` when the browser runs no page script.
    async fn helper_script(&self) -> String {
        let probe = json!({"script": "return [document.readyState, typeof window.oryPasskeyLogin]", "args": []});
        let mut seen = String::new();
        for _ in 0..40 {
            let got = self.driver.call(Method::POST, "/execute/sync", probe.clone()).await;
            seen = got[1].as_str().unwrap_or_default().to_string();
            if seen == "function" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    }

    /// The browser's session, asked with its cookies from outside the page (safe while the
    /// page navigates).
    async fn whoami(&self) -> Value {
        let cookies = self.driver.call(Method::GET, "/cookie", Value::Null).await;
        let header: Vec<String> = cookies
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c["name"].as_str().unwrap(), c["value"].as_str().unwrap()))
            .collect();
        let res = reqwest::Client::new()
            .get(self.at("/sessions/whoami"))
            .header("Cookie", header.join("; "))
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    }

    async fn quit(self) {
        self.driver.call(Method::DELETE, "", Value::Null).await;
    }
}

async fn identity_of(t: &TestApp, email: &str) -> Value {
    let (status, _, found) =
        t.admin_json(Method::GET, &format!("/admin/identities?credentials_identifier={email}"), None).await;
    assert_eq!(status, 200, "{found}");
    found[0].clone()
}

/// The whole self-service experience, as a user meets it in the browser.
async fn self_service_in_chromium(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let Some((ui, port)) = Ui::start(db, true, "journey").await else { return };
    let t = TestApp::builder(db).config(ui_config(port, peer.port)).build().await;
    let email = "ada@example.org";

    ui.sign_up(email).await;
    ui.check("welcome").await;
    assert_eq!(identity_of(&t, email).await["verifiable_addresses"][0]["verified"], false);

    // Verification: the code from the mail, typed into the page.
    ui.code_by_mail("verification", &peer, email).await;
    ui.driver.wait_for_url(&ui.at("/ui/verification?flow=")).await;
    assert!(ui.messages().await.contains(&"1080002".to_string()), "{}", ui.driver.source().await);
    ui.check("verification-done").await;
    assert_eq!(identity_of(&t, email).await["verifiable_addresses"][0]["verified"], true);

    ui.sign_out().await;
    ui.sign_in(email, PASSWORD).await;

    // Settings: the profile, and the TOTP page with its QR code.
    ui.driver.click("a[href$='/ui/settings']").await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    ui.check("settings").await;
    ui.fill("traits.name.first", "Ada").await;
    ui.press("method", "profile").await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    assert!(ui.messages().await.contains(&"1050001".to_string()), "{}", ui.driver.source().await);
    assert_eq!(identity_of(&t, email).await["traits"]["name"]["first"], "Ada");
    let qr = ui
        .driver
        .run("const done = arguments[0]; const i = document.getElementById('totp_qr'); done(i.complete ? i.naturalWidth : 0);", json!([]))
        .await;
    assert!(qr.as_u64().unwrap_or(0) > 0, "the QR code is shown: {qr}");
    // On a phone's width the page still fits: nothing scrolls sideways.
    ui.driver.call(Method::POST, "/window/rect", json!({"width": 390, "height": 844})).await;
    let fits = json!({"script": "return [window.innerWidth, document.documentElement.scrollWidth]", "args": []});
    let got = ui.driver.call(Method::POST, "/execute/sync", fits).await;
    let (inner, scroll) = (got[0].as_u64().unwrap(), got[1].as_u64().unwrap());
    assert!(inner <= 400, "a phone's width: {got}");
    assert!(scroll <= inner, "nothing scrolls sideways: {got}");
    ui.check("settings-phone").await;
    ui.driver.call(Method::POST, "/window/rect", json!({"width": 1024, "height": 900})).await;

    // Sessions: this one, which cannot sign itself out from here.
    ui.driver.go(&ui.at("/ui/sessions")).await;
    ui.check("sessions").await;
    assert_eq!(ui.driver.all("ul.sessions li").await.len(), 1);
    assert!(ui.body().await.contains("This device"));

    // Recovery: signed out, a code from the mail, then settings to choose a new password.
    ui.sign_out().await;
    ui.code_by_mail("recovery", &peer, email).await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    assert!(ui.messages().await.contains(&"1060001".to_string()), "{}", ui.driver.source().await);
    ui.check("settings-recovered").await;
    ui.fill("password", NEW_PASSWORD).await;
    ui.press("method", "password").await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    assert!(ui.messages().await.contains(&"1050001".to_string()), "{}", ui.driver.source().await);
    ui.sign_out().await;
    ui.sign_in(email, NEW_PASSWORD).await;

    // TOTP enrolment: the secret under the QR code, a code from it.
    ui.open("settings").await;
    let shown = ui.driver.text("#totp_secret_key").await;
    let secret = shown.split_whitespace().last().unwrap().to_string();
    ui.fill("totp_code", &crate::mfa::code_for(&secret, 0)).await;
    ui.press("method", "totp").await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    assert!(ui.messages().await.contains(&"1050001".to_string()), "{}", ui.driver.source().await);
    ui.check("settings-totp").await;
    let (_, _, full) = t
        .admin_json(
            Method::GET,
            &format!("/admin/identities/{}", identity_of(&t, email).await["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(full["credentials"]["totp"].is_object(), "{full}");

    // A stored error has its page.
    ui.driver.go(&ui.at("/ui/error?id=stub:500")).await;
    ui.check("error").await;
    // The network log saw what the pages loaded: the stylesheet and the WebAuthn helper.
    let seen = ui.seen.borrow().clone();
    for loaded in ["/ui/style.css", "/.well-known/ory/webauthn.js", "/ui/settings?flow="] {
        assert!(seen.iter().any(|u| u.contains(loaded)), "{loaded} not in {seen:?}");
    }
    ui.quit().await;
}
both_backends!(self_service_in_chromium);

/// With JavaScript off, the password flows still work: the pages are plain forms.
async fn password_flows_without_javascript(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let Some((ui, port)) = Ui::start(db, false, "nojs").await else { return };
    let _t = TestApp::builder(db).config(ui_config(port, peer.port)).build().await;
    ui.sign_up("grace@example.org").await;
    ui.sign_out().await;
    // JavaScript is really off: the sign-in page's WebAuthn helper script never ran (the
    // passkey test sees it run on its pages).
    ui.open("login").await;
    assert!(ui.driver.source().await.contains("webauthn.js"), "the sign-in page has the helper script");
    assert_eq!(ui.helper_script().await, "undefined");
    ui.sign_in("grace@example.org", PASSWORD).await;
    ui.sign_out().await;
    ui.code_by_mail("recovery", &peer, "grace@example.org").await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    ui.fill("password", NEW_PASSWORD).await;
    ui.press("method", "password").await;
    ui.driver.wait_for_url(&ui.at("/ui/settings?flow=")).await;
    assert!(ui.messages().await.contains(&"1050001".to_string()), "{}", ui.driver.source().await);
    ui.quit().await;
}
both_backends!(password_flows_without_javascript);

/// Passkeys from the UI's buttons with Chromium's virtual authenticator: sign up with a
/// passkey, sign out, sign in with it alone.
async fn passkeys_from_the_ui(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let Some((ui, port)) = Ui::start(db, true, "passkey").await else { return };
    let _t = TestApp::builder(db).config(ui_config(port, peer.port)).build().await;
    ui.driver
        .call(
            Method::POST,
            "/webauthn/authenticator",
            json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true, "hasUserVerification": true,
                   "isUserVerified": true, "isUserConsenting": true}),
        )
        .await;
    ui.open("registration").await;
    ui.fill("traits.email", "lin@example.org").await;
    ui.press("method", "profile").await;
    ui.driver.wait_for_url(&ui.at("/ui/registration?flow=")).await;
    ui.check("registration-passkey").await;
    assert_eq!(ui.helper_script().await, "function");
    ui.driver.click("button[name='passkey_register_trigger']").await;
    ui.driver.wait_for_url(&ui.at("/ui/welcome")).await;
    assert!(ui.body().await.contains("You are signed in as lin@example.org."));
    let first = ui.whoami().await;
    assert_eq!(first["authentication_methods"][0]["method"], "passkey", "{first}");
    // Signed out, the sign-in page offers the passkey in the browser's autofill as it loads
    // (its onload trigger); the virtual authenticator picks it, which signs in with nothing typed.
    ui.driver.go(&ui.at("/ui/welcome")).await;
    ui.driver.click("a[href*='/self-service/logout?token=']").await;
    let mut again = Value::Null;
    for _ in 0..100 {
        again = ui.whoami().await;
        if again["id"].is_string() && again["id"] != first["id"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(again["id"], first["id"], "a new session: {again}");
    assert_eq!(again["identity"]["id"], first["identity"]["id"]);
    assert_eq!(again["authentication_methods"][0]["method"], "passkey", "{again}");
    ui.driver.wait_for_url(&ui.at("/ui/welcome")).await;
    assert!(ui.body().await.contains("You are signed in as lin@example.org."));
    ui.quit().await;
}
both_backends!(passkeys_from_the_ui);
