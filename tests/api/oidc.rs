//! Social sign-in end to end against a real OpenID Connect provider process (npm
//! `oidc-provider`, `tests/sdk/peers/oidc-provider.mjs`) and a GitHub-style OAuth2 provider
//! process (`tests/peers/oauth2_peer.py`): the whole redirect dance with a cookie jar, as a
//! browser does it — registration, login, the switch between them, completing traits,
//! account linking, settings link/unlink, SPA and native flows, the session-token exchange,
//! provider errors and tampered state.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::{
    Jar, PASSWORD, api_flow, api_submit, csrf_of, flow_id_of, get_json, location, message_ids, node,
};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tessera::config::{Config, HookConfig, OidcProvider};

/// The claims mapper: e-mail (when the provider gives one) and first name as traits; the
/// e-mail verified when the provider says so; the subject in public metadata.
const MAPPER: &str = r#"
local claims = std.extVar('claims');
{
  identity: {
    traits: (if 'email' in claims then { email: claims.email } else {}) +
            (if 'given_name' in claims then { name: { first: claims.given_name } } else {}),
    verified_addresses: if 'email' in claims && 'email_verified' in claims && claims.email_verified
      then [{ via: 'email', value: claims.email }] else [],
    metadata_public: { sub: claims.sub },
  },
}
"#;

pub fn mapper_url() -> String {
    format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(MAPPER))
}

pub use crate::harness::free_port;

/// The OpenID Connect provider process.
pub struct OidcPeer {
    _child: tokio::process::Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl OidcPeer {
    /// Starts the provider with the callback URIs of a tessera on `tessera_port` for the
    /// provider ids `ids`.
    pub async fn start(tessera_port: u16, ids: &[&str]) -> Option<OidcPeer> {
        let uris: Vec<String> = ids
            .iter()
            .map(|id| format!("http://127.0.0.1:{tessera_port}/self-service/methods/oidc/callback/{id}"))
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
        if !dir.join("node_modules/oidc-provider").exists() {
            crate::harness::cannot_run("oidc-provider is not installed (run npm ci in tests/sdk)");
            return None;
        }
        let port = free_port();
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg("peers/oidc-provider.mjs")
            .arg(port.to_string())
            .arg(uris.join(","))
            .current_dir(&dir)
            .stderr(std::process::Stdio::null());
        let (child, line) = crate::harness::start_peer(cmd, "node (the OpenID Connect provider)").await?;
        let issuer = line.strip_prefix("ready ").unwrap().trim().to_string();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Some(OidcPeer { _child: child, issuer, http })
    }

    /// Who signs in at the next interaction (or that it is denied).
    pub async fn next(&self, body: Value) {
        let res = self.http.post(format!("{}/_control/next", self.issuer)).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 204);
    }

    /// Claims to add (or override) for an account.
    pub async fn claims(&self, account: &str, claims: Value) {
        let res = self
            .http
            .post(format!("{}/_control/account", self.issuer))
            .json(&json!({"account": account, "claims": claims}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }

    /// An ID token for the public client `native-app`, as a native app's SDK gets one.
    pub async fn native_id_token(&self, account: &str, nonce: Option<&str>) -> String {
        let mut jar = Jar::default();
        let mut url = url::Url::parse(&format!("{}/auth", self.issuer)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", "native-app")
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", "http://127.0.0.1/native-callback")
            .append_pair("scope", "openid email profile")
            .append_pair("login_hint", account);
        if let Some(n) = nonce {
            url.query_pairs_mut().append_pair("nonce", n);
        }
        let back = through_provider(&self.http, &mut jar, url.as_str(), "http://127.0.0.1/native-callback").await;
        let code = url::Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1/native-callback"),
                ("client_id", "native-app"),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["id_token"].as_str().unwrap_or_else(|| panic!("no id_token: {body}")).to_string()
    }
}

fn session_hook() -> Vec<HookConfig> {
    vec![HookConfig { hook: "session".into(), config: None }]
}

/// tessera on `port` with the provider `op` (generic, discovered at `issuer`).
pub fn with_provider(port: u16, issuer: String) -> impl FnOnce(&mut Config) + 'static {
    move |c| {
        c.serve.public.port = port;
        c.selfservice.methods.oidc.enabled = true;
        c.selfservice.methods.oidc.config.providers = vec![OidcProvider {
            id: "op".into(),
            provider: "generic".into(),
            label: Some("Test Provider".into()),
            client_id: "tessera".into(),
            client_secret: "tessera-client-secret-0123456789abcdef".into(),
            issuer_url: Some(issuer),
            mapper_url: mapper_url(),
            scope: vec!["email".into(), "profile".into()],
            additional_id_token_audiences: vec!["native-app".into()],
            ..OidcProvider::default()
        }];
        c.selfservice.flows.registration.after.oidc.hooks = session_hook();
    }
}

fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base).unwrap().join(location).unwrap().to_string()
}

/// Follows the provider's redirects as a browser until it is sent to a URL starting with
/// `until`; returns that URL.
pub async fn through_provider(http: &reqwest::Client, jar: &mut Jar, start: &str, until: &str) -> String {
    let mut url = start.to_string();
    for _ in 0..12 {
        if url.starts_with(until) {
            return url;
        }
        let res = jar.send(http.get(&url)).await;
        let status = res.status();
        let next = location(&res);
        assert!(status.is_redirection(), "{url}: {status} {}", res.text().await.unwrap_or_default());
        url = absolute(&url, &next);
    }
    panic!("the provider never sent the browser back to {until}");
}

/// Where a flow's form goes.
fn submit_url(t: &TestApp, kind: &str, flow: &Value) -> String {
    format!("{}/self-service/{kind}?flow={}", t.public, flow["id"].as_str().unwrap())
}

/// An HTML browser's password sign-in on the login flow `flow`.
fn password_sign_in(t: &TestApp, flow: &Value, email: &str) -> reqwest::RequestBuilder {
    t.http.post(submit_url(t, "login", flow)).form(&[
        ("method", "password"),
        ("identifier", email),
        ("password", PASSWORD),
        ("csrf_token", &csrf_of(flow)),
    ])
}

/// A native app's ID-token submit to an API flow of `kind`.
async fn id_token_submit(t: &TestApp, kind: &str, id_token: &str, nonce: Option<&str>) -> (u16, Value) {
    let flow = api_flow(t, kind, "").await;
    let mut body = json!({"method": "oidc", "provider": "op", "id_token": id_token});
    if let Some(n) = nonce {
        body["id_token_nonce"] = json!(n);
    }
    api_submit(t, kind, &flow, body).await
}

fn callback_prefix(t: &TestApp) -> String {
    format!("{}/self-service/methods/oidc/callback/", t.public)
}

/// An HTML browser submits the provider button of a browser flow and goes through the
/// provider; returns tessera's answer to the callback.
async fn html_via_provider(
    t: &TestApp,
    jar: &mut Jar,
    kind: &str,
    flow: &Value,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, String)> = vec![("provider", "op".into()), ("csrf_token", csrf_of(flow))];
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let res = jar.send(t.http.post(submit_url(t, kind, flow)).form(&form)).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let to = location(&res);
    let back = through_provider(&t.http, jar, &to, &callback_prefix(t)).await;
    jar.send(t.http.get(back)).await
}

async fn open_flow(t: &TestApp, jar: &mut Jar, kind: &str) -> Value {
    let res = jar.send(t.http.get(format!("{}/self-service/{kind}/browser", t.public))).await;
    let id = flow_id_of(&location(&res));
    get_json(&t.http, format!("{}/self-service/{kind}/flows?id={id}", t.public), Some(jar)).await
}

async fn whoami(t: &TestApp, jar: &Jar) -> (u16, Value) {
    let res = t.http.get(format!("{}/sessions/whoami", t.public)).header("Cookie", jar.header()).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn amr(session: &Value) -> Vec<(String, String)> {
    session["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["method"].as_str().unwrap().to_string(), m["provider"].as_str().unwrap_or_default().to_string()))
        .collect()
}

async fn setup(db: Db) -> Option<(OidcPeer, TestApp)> {
    let port = free_port();
    let peer = OidcPeer::start(port, &["op"]).await?;
    let t = TestApp::builder(db).config(with_provider(port, peer.issuer.clone())).build().await;
    Some((peer, t))
}

async fn browser_registration_then_login(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    let mut jar = Jar::default();
    let flow = open_flow(&t, &mut jar, "registration").await;
    let button = flow["ui"]["nodes"].as_array().unwrap().iter().find(|n| n["group"] == "oidc").cloned().unwrap();
    assert_eq!(button["attributes"]["name"], "provider");
    assert_eq!(button["attributes"]["value"], "op");
    assert_eq!(button["attributes"]["type"], "submit");
    assert_eq!(button["meta"]["label"]["id"], 1040002);
    assert_eq!(button["meta"]["label"]["context"], json!({"provider": "Test Provider", "provider_id": "op"}));

    // The submit sends the browser to the provider with state, nonce and PKCE.
    let res = jar
        .send(
            t.http
                .post(submit_url(&t, "registration", &flow))
                .form(&[("provider", "op"), ("csrf_token", &csrf_of(&flow))]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(jar.cookies.contains_key("ory_kratos_continuity"));
    let to = url::Url::parse(&location(&res)).unwrap();
    assert!(to.as_str().starts_with(&format!("{}/auth", peer.issuer)), "{to}");
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "tessera");
    assert_eq!(q["redirect_uri"], format!("{}op", callback_prefix(&t)));
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256", "the provider advertises S256: PKCE is used");
    assert!(!q["state"].is_empty() && !q["nonce"].is_empty());
    let back = through_provider(&t.http, &mut jar, to.as_str(), &callback_prefix(&t)).await;
    let res = jar.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    assert_eq!(location(&res), "https://app.example/welcome");
    let (status, session) = whoami(&t, &jar).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["identity"]["traits"], json!({"email": "alice@example.org", "name": {"first": "alice"}}));
    assert_eq!(session["identity"]["verifiable_addresses"][0]["verified"], true);
    assert_eq!(session["identity"]["metadata_public"]["sub"].as_str().map(str::len), Some(24));
    assert_eq!(amr(&session), vec![("oidc".to_string(), "op".to_string())]);
    assert_eq!(session["authenticator_assurance_level"], "aal1");
    let id = session["identity"]["id"].as_str().unwrap().to_string();

    // The callback URL again (replayed) does not sign anyone in twice.
    let replay = t.http.get(&back).header("Accept", "application/json").send().await.unwrap();
    assert!(replay.status().is_client_error(), "{}", replay.status());

    // The credential: `op:<subject>`; tokens stored encrypted, shown with include_credential.
    let (_, _, admin) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}?include_credential=oidc"), None).await;
    let oidc = &admin["credentials"]["oidc"];
    let subject = session["identity"]["metadata_public"]["sub"].as_str().unwrap();
    assert_eq!(oidc["identifiers"], json!([format!("op:{subject}")]));
    let shown = &oidc["config"]["providers"][0];
    assert_eq!(shown["provider"], "op");
    assert_eq!(shown["subject"], subject);
    let id_token = shown["initial_id_token"].as_str().unwrap();
    assert_eq!(id_token.split('.').count(), 3, "the ID token in clear: {shown}");
    assert!(!shown["initial_access_token"].as_str().unwrap().is_empty());
    let stored = crate::harness::stored(&t.app().state().store, id.parse().unwrap()).await.unwrap();
    let kept = stored.credentials["oidc"].config["providers"][0]["initial_id_token"].as_str().unwrap().to_string();
    assert!(!kept.contains(id_token) && hex::decode(&kept).is_ok(), "stored encrypted");
    let (_, _, plain) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert!(plain["credentials"]["oidc"].get("config").is_none());

    // Signing in again from a new browser (the provider remembers nobody there).
    let mut other = Jar::default();
    let login = open_flow(&t, &mut other, "login").await;
    let button = login["ui"]["nodes"].as_array().unwrap().iter().find(|n| n["group"] == "oidc").cloned().unwrap();
    assert_eq!(button["meta"]["label"]["id"], 1010002);
    peer.next(json!({"account": "alice@example.org"})).await;
    let res = html_via_provider(&t, &mut other, "login", &login, &[]).await;
    assert_eq!(res.status(), 303);
    let (_, session) = whoami(&t, &other).await;
    assert_eq!(session["identity"]["id"], id.as_str());
    assert_eq!(amr(&session), vec![("oidc".to_string(), "op".to_string())]);
}
both_backends!(browser_registration_then_login);

async fn spa_login_of_a_new_account_registers(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    let mut jar = Jar::default();
    let res = jar
        .send(t.http.get(format!("{}/self-service/login/browser", t.public)).header("Accept", "application/json"))
        .await;
    let flow: Value = res.json().await.unwrap();
    // An SPA asks for JSON: 422 with the provider URL.
    let res = jar
        .send(
            t.http
                .post(submit_url(&t, "login", &flow))
                .header("Accept", "application/json")
                .json(&json!({"method": "oidc", "provider": "op", "csrf_token": csrf_of(&flow),
                    "upstream_parameters": {"login_hint": "bob@example.org", "not_allowed": "x"}})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    let to = body["redirect_browser_to"].as_str().unwrap().to_string();
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&to).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["login_hint"], "bob@example.org", "allowed upstream parameters go to the provider");
    assert!(!q.contains_key("not_allowed"));
    let _ = &peer;
    let back = through_provider(&t.http, &mut jar, &to, &callback_prefix(&t)).await;
    let res = jar.send(t.http.get(&back)).await;
    // No identity had the account: it was registered (the registration session hook ran).
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let (status, session) = whoami(&t, &jar).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["identity"]["traits"]["email"], "bob@example.org");
}
both_backends!(spa_login_of_a_new_account_registers);

async fn missing_traits_are_completed_in_a_form(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    // The provider gives no e-mail for this account: the schema requires one.
    peer.claims("noemail@example.org", json!({"email": ""})).await;
    peer.next(json!({"account": "noemail@example.org"})).await;
    let mut jar = Jar::default();
    let flow = open_flow(&t, &mut jar, "registration").await;
    let res = html_via_provider(&t, &mut jar, "registration", &flow, &[]).await;
    assert_eq!(res.status(), 302, "registration errors go back with 302");
    let to = location(&res);
    assert!(to.starts_with("https://ui.example/registration?flow="), "{to}");
    let form =
        get_json(&t.http, format!("{}/self-service/registration/flows?id={}", t.public, flow_id_of(&to)), Some(&jar))
            .await;
    let go = node(&form, "provider").unwrap();
    assert_eq!(go["attributes"]["value"], "op");
    assert_eq!(go["meta"]["label"]["id"], 1040003);
    assert!(message_ids(&form).contains(&4000002), "{form}");
    assert_eq!(node(&form, "traits.name.first").unwrap()["attributes"]["value"], "noemail");
    assert!(whoami(&t, &jar).await.0 == 401);

    // The user types the e-mail and goes through the provider again.
    peer.next(json!({"account": "noemail@example.org"})).await;
    let res = html_via_provider(&t, &mut jar, "registration", &form, &[("traits.email", "typed@example.org")]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let (_, session) = whoami(&t, &jar).await;
    assert_eq!(session["identity"]["traits"], json!({"email": "typed@example.org", "name": {"first": "noemail"}}));
    assert_eq!(session["identity"]["verifiable_addresses"][0]["verified"], false, "the provider did not vouch for it");
}
both_backends!(missing_traits_are_completed_in_a_form);

async fn create_password_identity(t: &TestApp, email: &str) -> String {
    let (status, _, created) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({"schema_id": "default", "traits": {"email": email},
                "credentials": {"password": {"config": {"password": PASSWORD}}}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn a_taken_email_links_after_signing_in(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    let id = create_password_identity(&t, "carol@example.org").await;
    peer.next(json!({"account": "carol@example.org"})).await;
    let mut jar = Jar::default();
    let flow = open_flow(&t, &mut jar, "registration").await;
    let res = html_via_provider(&t, &mut jar, "registration", &flow, &[]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let to = location(&res);
    assert!(to.starts_with("https://ui.example/login?flow="), "{to}");
    let login =
        get_json(&t.http, format!("{}/self-service/login/flows?id={}", t.public, flow_id_of(&to)), Some(&jar)).await;
    let message = &login["ui"]["messages"][0];
    assert_eq!(message["id"], 1010016, "{login}");
    assert_eq!(message["context"]["duplicate_identifier"], "carol@example.org");
    assert_eq!(message["context"]["provider"], "Test Provider");
    let identifier = node(&login, "identifier").unwrap();
    assert_eq!(identifier["attributes"]["type"], "hidden");
    assert_eq!(identifier["attributes"]["value"], "carol@example.org");
    assert!(
        login["ui"]["nodes"].as_array().unwrap().iter().all(|n| n["group"] != "oidc"),
        "the provider just used is gone"
    );
    assert_eq!(whoami(&t, &jar).await.0, 401);

    // Signing in with the password links the provider account.
    let res = jar.send(password_sign_in(&t, &login, "carol@example.org")).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let (_, session) = whoami(&t, &jar).await;
    assert_eq!(session["identity"]["id"], id.as_str());
    assert_eq!(amr(&session), vec![("password".to_string(), String::new()), ("oidc".to_string(), "op".to_string())]);
    let (_, _, admin) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"].as_array().map(Vec::len), Some(1));

    // From now on the provider signs carol in directly.
    let mut other = Jar::default();
    let login = open_flow(&t, &mut other, "login").await;
    peer.next(json!({"account": "carol@example.org"})).await;
    assert_eq!(html_via_provider(&t, &mut other, "login", &login, &[]).await.status(), 303);
    assert_eq!(whoami(&t, &other).await.1["identity"]["id"], id.as_str());
}
both_backends!(a_taken_email_links_after_signing_in);

async fn settings_link_and_unlink(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    let id = create_password_identity(&t, "dave@example.org").await;
    let mut jar = Jar::default();
    let login = open_flow(&t, &mut jar, "login").await;
    let res = jar.send(password_sign_in(&t, &login, "dave@example.org")).await;
    assert_eq!(res.status(), 303);
    let settings = open_flow(&t, &mut jar, "settings").await;
    let link = node(&settings, "link").unwrap();
    assert_eq!(link["attributes"]["value"], "op");
    assert_eq!(link["meta"]["label"]["id"], 1050002);
    assert!(node(&settings, "unlink").is_none());
    // Linking goes through the provider, as dave.
    peer.next(json!({"account": "dave@example.org"})).await;
    let res = jar
        .send(
            t.http
                .post(submit_url(&t, "settings", &settings))
                .form(&[("link", "op"), ("csrf_token", &csrf_of(&settings))]),
        )
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let back = through_provider(&t.http, &mut jar, &location(&res), &callback_prefix(&t)).await;
    let res = jar.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let (_, _, admin) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"].as_array().map(Vec::len), Some(1), "{admin}");
    let (_, session) = whoami(&t, &jar).await;
    assert!(amr(&session).contains(&("oidc".to_string(), "op".to_string())));

    // Linked: an unlink button (the password remains as a first factor); unlinking works.
    let settings = open_flow(&t, &mut jar, "settings").await;
    assert!(node(&settings, "link").is_none());
    assert_eq!(node(&settings, "unlink").unwrap()["meta"]["label"]["id"], 1050003);
    let res = jar
        .send(
            t.http
                .post(submit_url(&t, "settings", &settings))
                .header("Accept", "application/json")
                .json(&json!({"unlink": "op", "csrf_token": csrf_of(&settings)})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    let (_, _, admin) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"], json!([]));

    // An identity whose only way in is the provider cannot unlink it.
    let mut solo = Jar::default();
    let reg = open_flow(&t, &mut solo, "registration").await;
    peer.next(json!({"account": "erin@example.org"})).await;
    assert_eq!(html_via_provider(&t, &mut solo, "registration", &reg, &[]).await.status(), 303);
    let settings = open_flow(&t, &mut solo, "settings").await;
    assert!(node(&settings, "unlink").is_none(), "the last first factor shows no unlink");
    let res = solo
        .send(
            t.http
                .post(submit_url(&t, "settings", &settings))
                .header("Accept", "application/json")
                .json(&json!({"unlink": "op", "csrf_token": csrf_of(&settings)})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ui"]["messages"][0]["id"], 4000001);
    assert!(body["ui"]["messages"][0]["text"].as_str().unwrap().contains("last remaining first factor"));
}
both_backends!(settings_link_and_unlink);

async fn provider_errors_and_tampered_state(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    // The user says no at the provider: the flow shows the provider's error.
    peer.next(json!({"deny": true})).await;
    let mut jar = Jar::default();
    let login = open_flow(&t, &mut jar, "login").await;
    let res = html_via_provider(&t, &mut jar, "login", &login, &[]).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert_eq!(to, format!("https://ui.example/login?flow={}", login["id"].as_str().unwrap()));
    let shown =
        get_json(&t.http, format!("{}/self-service/login/flows?id={}", t.public, flow_id_of(&to)), Some(&jar)).await;
    let m = &shown["ui"]["messages"][0];
    assert_eq!(m["id"], 4000001);
    assert!(m["text"].as_str().unwrap().contains("access_denied"), "{m}");

    // A callback without state, with a forged one, or from another browser: 400, nothing signed in.
    let cb = format!("{}op", callback_prefix(&t));
    let json_get = |url: String| t.http.get(url).header("Accept", "application/json").send();
    let res = json_get(format!("{cb}?code=x")).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = json_get(format!("{cb}?code=x&state=Zm9yZ2Vk")).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["reason"].as_str().unwrap().contains("state parameter is invalid"), "{body}");
    let login = open_flow(&t, &mut jar, "login").await;
    let res = jar
        .send(
            t.http.post(submit_url(&t, "login", &login)).form(&[("provider", "op"), ("csrf_token", &csrf_of(&login))]),
        )
        .await;
    let mut attacker = Jar::default();
    let back = through_provider(&t.http, &mut jar, &location(&res), &callback_prefix(&t)).await;
    let res = attacker.send(t.http.get(&back).header("Accept", "application/json")).await;
    assert_eq!(res.status(), 400, "a callback needs the browser's continuity cookie");
    assert_eq!(whoami(&t, &attacker).await.0, 401);
    // The browser that started it still can.
    assert_eq!(jar.send(t.http.get(&back)).await.status(), 303);
    assert_eq!(whoami(&t, &jar).await.0, 200);

    // Someone else's submit to the same flow cannot slip traits into the victim's sign-up:
    // kept values belong to the state they left with.
    let mut victim = Jar::default();
    let reg = open_flow(&t, &mut victim, "registration").await;
    let res = victim
        .send(
            t.http
                .post(submit_url(&t, "registration", &reg))
                .form(&[("provider", "op"), ("csrf_token", &csrf_of(&reg))]),
        )
        .await;
    let victim_to = location(&res);
    let res = t
        .http
        .post(submit_url(&t, "registration", &reg))
        .form(&[("provider", "op"), ("traits.email", "attacker@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    peer.next(json!({"account": "victim@example.org"})).await;
    let back = through_provider(&t.http, &mut victim, &victim_to, &callback_prefix(&t)).await;
    assert_eq!(victim.send(t.http.get(&back)).await.status(), 303);
    let (_, session) = whoami(&t, &victim).await;
    assert_eq!(session["identity"]["traits"]["email"], "victim@example.org");

    // A submit naming the method but no provider is not this method's.
    let fresh = open_flow(&t, &mut Jar::default(), "login").await;
    let (status, body) = api_like(&t, &fresh, json!({"method": "oidc"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["ui"]["messages"][0]["id"], 4010002);

    // An unknown provider: 404.
    let fresh = open_flow(&t, &mut Jar::default(), "login").await;
    let (status, body) = api_like(&t, &fresh, json!({"method": "oidc", "provider": "nope"})).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["reason"].as_str().unwrap().contains("\"nope\" is unknown"));
    let _ = peer;
}
both_backends!(provider_errors_and_tampered_state);

async fn api_like(t: &TestApp, flow: &Value, body: Value) -> (u16, Value) {
    let res = t
        .http
        .post(submit_url(t, "login", flow))
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn native_apps_exchange_a_code_or_submit_an_id_token(db: Db) {
    let Some((peer, t)) = setup(db).await else { return };
    // The browser round trip of a native app: the session goes to the exchanger.
    let flow =
        api_flow(&t, "login", "?return_session_token_exchange_code=true&return_to=https%3A%2F%2Fapp.example%2Fnative")
            .await;
    let init_code = flow["session_token_exchange_code"].as_str().unwrap().to_string();
    assert_eq!(init_code.len(), 64);
    let (status, body) = api_submit(&t, "login", &flow, json!({"method": "oidc", "provider": "op"})).await;
    assert_eq!(status, 422, "{body}");
    let to = body["redirect_browser_to"].as_str().unwrap().to_string();
    let mut system_browser = Jar::default();
    peer.next(json!({"account": "frank@example.org"})).await;
    let back = through_provider(&t.http, &mut system_browser, &to, &callback_prefix(&t)).await;
    let res = system_browser.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let to = url::Url::parse(&location(&res)).unwrap();
    assert_eq!(format!("{}://{}{}", to.scheme(), to.host_str().unwrap(), to.path()), "https://app.example/native");
    let code = to.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let exchange = format!("{}/sessions/token-exchange?init_code={init_code}&return_to_code={code}", t.public);
    let res = t.get(&exchange).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["identity"]["traits"]["email"], "frank@example.org");
    let token = body["session_token"].as_str().unwrap().to_string();
    let res =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(t.get(&exchange).await.status(), 404, "the token is handed out once");
    let res = t.get(&format!("{}/sessions/token-exchange?init_code={init_code}", t.public)).await;
    assert_eq!(res.status(), 400);

    // A system browser that is signed in already: the app gets that session.
    let mut signed_in = Jar::default();
    let login = open_flow(&t, &mut signed_in, "login").await;
    peer.next(json!({"account": "frank@example.org"})).await;
    assert_eq!(html_via_provider(&t, &mut signed_in, "login", &login, &[]).await.status(), 303);
    let flow =
        api_flow(&t, "login", "?return_session_token_exchange_code=true&return_to=https%3A%2F%2Fapp.example%2Fnative")
            .await;
    let init_code = flow["session_token_exchange_code"].as_str().unwrap().to_string();
    let (_, body) = api_submit(&t, "login", &flow, json!({"method": "oidc", "provider": "op"})).await;
    let to = body["redirect_browser_to"].as_str().unwrap().to_string();
    let back = through_provider(&t.http, &mut signed_in, &to, &callback_prefix(&t)).await;
    let res = signed_in.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303);
    let to = url::Url::parse(&location(&res)).unwrap();
    let code = to.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let res = t.get(&format!("{}/sessions/token-exchange?init_code={init_code}&return_to_code={code}", t.public)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["identity"]["traits"]["email"], "frank@example.org");

    // A native SDK's ID token: registration, then login, without a browser.
    let id_token = peer.native_id_token("grace@example.org", Some("nonce-1")).await;
    let (status, body) = id_token_submit(&t, "registration", &id_token, Some("nonce-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"]["traits"]["email"], "grace@example.org");
    assert!(body["session_token"].as_str().is_some_and(|s| !s.is_empty()));
    let id = body["identity"]["id"].as_str().unwrap().to_string();
    let id_token = peer.native_id_token("grace@example.org", Some("nonce-2")).await;
    let (status, body) = id_token_submit(&t, "login", &id_token, Some("nonce-2")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["identity"]["id"], id.as_str());
    // A wrong nonce, a missing nonce, a forged token: refused.
    let id_token = peer.native_id_token("grace@example.org", Some("nonce-3")).await;
    assert_eq!(id_token_submit(&t, "login", &id_token, Some("other")).await.0, 502);
    assert_eq!(id_token_submit(&t, "login", &id_token, None).await.0, 502);
    let mut parts: Vec<String> = id_token.split('.').map(str::to_string).collect();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"iss": peer.issuer, "sub": "someone-else", "aud": "tessera", "nonce": "nonce-3",
            "exp": 4102444800u64, "iat": 1700000000u64}))
        .unwrap(),
    );
    parts[1] = forged;
    let (status, body) = id_token_submit(&t, "login", &parts.join("."), Some("nonce-3")).await;
    assert_eq!(status, 403, "{body}");
}
both_backends!(native_apps_exchange_a_code_or_submit_an_id_token);

/// The GitHub-style OAuth2 peer.
struct OAuth2Peer {
    _child: tokio::process::Child,
    base: String,
}

impl OAuth2Peer {
    async fn start() -> Option<OAuth2Peer> {
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg("tests/peers/oauth2_peer.py").current_dir(env!("CARGO_MANIFEST_DIR"));
        let (child, line) = crate::harness::start_peer(cmd, "python3 (the OAuth2 peer)").await?;
        let port: u16 = line.strip_prefix("PORT ").unwrap().trim().parse().unwrap();
        Some(OAuth2Peer { _child: child, base: format!("http://127.0.0.1:{port}") })
    }
}

async fn oauth2_only_provider_with_a_user_api(db: Db) {
    let Some(peer) = OAuth2Peer::start().await else { return };
    let base = peer.base.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            c.selfservice.methods.oidc.enabled = true;
            c.selfservice.methods.oidc.config.providers = vec![OidcProvider {
                id: "gh".into(),
                provider: "github".into(),
                client_id: "octo-client".into(),
                client_secret: "octo-client-secret".into(),
                auth_url: Some(format!("{base}/login/oauth/authorize")),
                token_url: Some(format!("{base}/login/oauth/access_token")),
                issuer_url: Some(base.clone()),
                mapper_url: mapper_url(),
                scope: vec!["user:email".into()],
                ..OidcProvider::default()
            }];
            c.selfservice.flows.registration.after.oidc.hooks = session_hook();
        })
        .build()
        .await;
    let mut jar = Jar::default();
    let flow = open_flow(&t, &mut jar, "registration").await;
    let res = jar
        .send(
            t.http
                .post(submit_url(&t, "registration", &flow))
                .form(&[("provider", "gh"), ("csrf_token", &csrf_of(&flow))]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&to).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "user:email", "OAuth2 providers get no openid scope");
    assert!(!q.contains_key("nonce") && !q.contains_key("code_challenge"), "{to}");
    let back =
        through_provider(&t.http, &mut jar, &to, &format!("{}/self-service/methods/oidc/callback/", t.public)).await;
    let res = jar.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let (_, session) = whoami(&t, &jar).await;
    assert_eq!(session["identity"]["traits"]["email"], "octo@example.org", "the primary address of /user/emails");
    assert_eq!(session["identity"]["verifiable_addresses"][0]["verified"], true);
    assert_eq!(amr(&session), vec![("oidc".to_string(), "gh".to_string())]);
    // The token endpoint saw HTTP Basic client authentication, the user API the bearer token.
    let seen: Value = reqwest::get(format!("{}/requests", peer.base)).await.unwrap().json().await.unwrap();
    let seen = seen.as_array().unwrap();
    let auth = |r: &Value| {
        r["headers"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str().unwrap().to_string())
    };
    let token = seen.iter().find(|r| r["path"] == "/login/oauth/access_token").unwrap();
    assert!(auth(token).unwrap().starts_with("Basic "), "{token}");
    let user = seen.iter().find(|r| r["path"] == "/user").unwrap();
    assert!(auth(user).unwrap().starts_with("Bearer "), "{user}");
}
both_backends!(oauth2_only_provider_with_a_user_api);

async fn fedcm_parameters_and_token(db: Db) {
    let port = free_port();
    let Some(peer) = OidcPeer::start(port, &["op"]).await else { return };
    let issuer = peer.issuer.clone();
    let config_url = format!("{issuer}/fedcm.json");
    let fedcm = config_url.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            with_provider(port, issuer)(c);
            c.selfservice.methods.oidc.config.providers[0].fedcm_config_url = Some(fedcm);
        })
        .build()
        .await;
    let mut jar = Jar::default();
    let res = jar.send(t.http.get(format!("{}/self-service/fed-cm/parameters", t.public))).await;
    assert_eq!(res.status(), 200);
    let params: Value = res.json().await.unwrap();
    let p = &params["providers"][0];
    assert_eq!(p["config_url"], config_url.as_str());
    assert_eq!(p["client_id"], "tessera");
    let nonce = p["nonce"].as_str().unwrap().to_string();
    let csrf = params["csrf_token"].as_str().unwrap().to_string();
    assert!(jar.has_prefix("csrf_token"));

    let post = |jar: &Jar, body: Value| {
        t.http
            .post(format!("{}/self-service/fed-cm/token", t.public))
            .header("Accept", "application/json")
            .header("Cookie", jar.header())
            .json(&body)
            .send()
    };
    // Without the CSRF token: 403; with a nonce this server never issued: 400.
    let token = peer.native_id_token("heidi@example.org", Some(&nonce)).await;
    let res = post(&jar, json!({"token": token, "nonce": nonce})).await.unwrap();
    assert_eq!(res.status(), 403);
    let res = post(&jar, json!({"token": token, "nonce": "forged", "csrf_token": csrf})).await.unwrap();
    assert_eq!(res.status(), 400);
    // The token signs heidi up (a new account) …
    let res = post(&jar, json!({"token": token, "nonce": nonce, "csrf_token": csrf})).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    jar.absorb(res.headers());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["identity"]["traits"]["email"], "heidi@example.org");
    assert!(body.get("session_token").is_none(), "browsers get a cookie, not a token");
    let id = body["session"]["identity"]["id"].as_str().unwrap().to_string();
    assert_eq!(whoami(&t, &jar).await.1["identity"]["id"], id.as_str());
    // … and in again, from another browser.
    let mut other = Jar::default();
    let params: Value =
        other.send(t.http.get(format!("{}/self-service/fed-cm/parameters", t.public))).await.json().await.unwrap();
    let nonce = params["providers"][0]["nonce"].as_str().unwrap().to_string();
    let token = peer.native_id_token("heidi@example.org", Some(&nonce)).await;
    // The nonce was issued to that browser: a third browser cannot use its token.
    let mut third = Jar::default();
    let own: Value =
        third.send(t.http.get(format!("{}/self-service/fed-cm/parameters", t.public))).await.json().await.unwrap();
    let res = post(&third, json!({"token": token, "csrf_token": own["csrf_token"]})).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = post(&other, json!({"token": token, "csrf_token": params["csrf_token"]})).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["identity"]["id"], id.as_str());
}
both_backends!(fedcm_parameters_and_token);

async fn no_sign_up_when_registration_is_disabled(db: Db) {
    let port = free_port();
    let Some(peer) = OidcPeer::start(port, &["op"]).await else { return };
    let issuer = peer.issuer.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            with_provider(port, issuer)(c);
            c.selfservice.flows.registration.enabled = false;
        })
        .build()
        .await;
    let mut jar = Jar::default();
    let login = open_flow(&t, &mut jar, "login").await;
    peer.next(json!({"account": "ivan@example.org"})).await;
    let res = html_via_provider(&t, &mut jar, "login", &login, &[]).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/error?id="), "{}", location(&res));
    assert_eq!(whoami(&t, &jar).await.0, 401);
    let (status, _, list) = t.admin_json(Method::GET, "/admin/identities", None).await;
    assert_eq!((status, list), (200, json!([])));
}
both_backends!(no_sign_up_when_registration_is_disabled);

async fn a_callback_to_an_expired_flow_is_gone(db: Db) {
    let port = free_port();
    let Some(peer) = OidcPeer::start(port, &["op"]).await else { return };
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db).clock(clock.clone()).config(with_provider(port, peer.issuer.clone())).build().await;
    let mut jar = Jar::default();
    let login = open_flow(&t, &mut jar, "login").await;
    let res = jar
        .send(
            t.http.post(submit_url(&t, "login", &login)).form(&[("provider", "op"), ("csrf_token", &csrf_of(&login))]),
        )
        .await;
    let back = through_provider(&t.http, &mut jar, &location(&res), &callback_prefix(&t)).await;
    clock.advance(chrono::Duration::hours(2));
    let res = jar.send(t.http.get(&back).header("Accept", "application/json")).await;
    assert_eq!(res.status(), 410);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    let res = jar.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("https://ui.example/error?id="), "{}", location(&res));
    assert_eq!(whoami(&t, &jar).await.0, 401);
}
both_backends!(a_callback_to_an_expired_flow_is_gone);

async fn identifier_first_offers_the_linked_provider(db: Db) {
    let port = free_port();
    let Some(peer) = OidcPeer::start(port, &["op"]).await else { return };
    let issuer = peer.issuer.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            with_provider(port, issuer)(c);
            c.selfservice.flows.login.style = tessera::config::LoginStyle::IdentifierFirst;
        })
        .build()
        .await;
    create_password_identity(&t, "pat@example.org").await;
    let mut jar = Jar::default();
    let reg = open_flow(&t, &mut jar, "registration").await;
    peer.next(json!({"account": "olly@example.org"})).await;
    assert_eq!(html_via_provider(&t, &mut jar, "registration", &reg, &[]).await.status(), 303);

    let step_two = |identifier: &'static str| {
        let t = &t;
        async move {
            let mut jar = Jar::default();
            let flow = open_flow(t, &mut jar, "login").await;
            assert!(
                flow["ui"]["nodes"].as_array().unwrap().iter().any(|n| n["group"] == "oidc"),
                "step one shows providers"
            );
            let res = jar
                .send(t.http.post(submit_url(t, "login", &flow)).header("Accept", "application/json").json(
                    &json!({"method": "identifier_first", "identifier": identifier, "csrf_token": csrf_of(&flow)}),
                ))
                .await;
            let body: Value = res.json().await.unwrap();
            body
        }
    };
    let olly = step_two("olly@example.org").await;
    let groups: Vec<&str> =
        olly["ui"]["nodes"].as_array().unwrap().iter().map(|n| n["group"].as_str().unwrap()).collect();
    assert!(groups.contains(&"oidc") && !groups.contains(&"password"), "{olly}");
    assert!(!message_ids(&olly).contains(&4000037));
    let pat = step_two("pat@example.org").await;
    let groups: Vec<&str> =
        pat["ui"]["nodes"].as_array().unwrap().iter().map(|n| n["group"].as_str().unwrap()).collect();
    assert!(groups.contains(&"password") && !groups.contains(&"oidc"), "{pat}");
}
both_backends!(identifier_first_offers_the_linked_provider);

async fn a_link_that_outlives_the_privileged_session_starts_over(db: Db) {
    let port = free_port();
    let Some(peer) = OidcPeer::start(port, &["op"]).await else { return };
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let issuer = peer.issuer.clone();
    let t = TestApp::builder(db)
        .clock(clock.clone())
        .config(move |c| {
            with_provider(port, issuer)(c);
            c.selfservice.flows.settings.privileged_session_max_age =
                tessera::config::Dur(std::time::Duration::from_secs(60));
        })
        .build()
        .await;
    let id = create_password_identity(&t, "quinn@example.org").await;
    let mut jar = Jar::default();
    let sign_in = |flow: Value| password_sign_in(&t, &flow, "quinn@example.org");
    let login = open_flow(&t, &mut jar, "login").await;
    assert_eq!(jar.send(sign_in(login)).await.status(), 303);
    let settings = open_flow(&t, &mut jar, "settings").await;
    let settings_id = settings["id"].as_str().unwrap().to_string();
    peer.next(json!({"account": "quinn@example.org"})).await;
    let res = jar
        .send(
            t.http
                .post(format!("{}/self-service/settings?flow={settings_id}", t.public))
                .form(&[("link", "op"), ("csrf_token", &csrf_of(&settings))]),
        )
        .await;
    let back = through_provider(&t.http, &mut jar, &location(&res), &callback_prefix(&t)).await;
    // The user took too long at the provider: sign in again, then the link starts over.
    clock.advance(chrono::Duration::minutes(2));
    let res = jar.send(t.http.get(&back)).await;
    assert_eq!(res.status(), 303);
    let refresh = location(&res);
    assert!(refresh.starts_with(&format!("{}/self-service/login/browser?refresh=true", t.public)), "{refresh}");
    let res = jar.send(t.http.get(&refresh)).await;
    let login_id = flow_id_of(&location(&res));
    let login = get_json(&t.http, format!("{}/self-service/login/flows?id={login_id}", t.public), Some(&jar)).await;
    let res = jar.send(sign_in(login)).await;
    assert_eq!(res.status(), 303);
    let resume = location(&res);
    assert_eq!(resume, format!("{}/self-service/settings?flow={settings_id}", t.public));
    let res = jar.send(t.http.get(&resume)).await;
    assert_eq!(res.status(), 303, "the link goes to the provider again");
    let back = through_provider(&t.http, &mut jar, &location(&res), &callback_prefix(&t)).await;
    assert_eq!(jar.send(t.http.get(&back)).await.status(), 303);
    let (_, _, admin) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"].as_array().map(Vec::len), Some(1), "{admin}");
}
both_backends!(a_link_that_outlives_the_privileged_session_starts_over);
