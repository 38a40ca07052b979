//! Web hooks and the breached-password check against a real HTTP server process on loopback
//! (`tests/peers/http_peer.py`, standard-library Python).

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::{PASSWORD, api_flow, api_login, api_register, api_submit, message_ids, node};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tessera::config::{Config, HookConfig};

/// The peer process; killed when dropped.
pub struct Peer {
    _child: tokio::process::Child,
    pub base: String,
}

impl Peer {
    pub async fn start() -> Option<Peer> {
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg("tests/peers/http_peer.py").current_dir(env!("CARGO_MANIFEST_DIR"));
        let (child, line) = crate::harness::start_peer(cmd, "python3 (the HTTP peer)").await?;
        let port = line.strip_prefix("PORT ").unwrap().trim().to_string();
        Some(Peer { _child: child, base: format!("http://127.0.0.1:{port}") })
    }

    pub async fn requests(&self) -> Vec<Value> {
        reqwest::get(format!("{}/requests", self.base)).await.unwrap().json().await.unwrap()
    }
}

fn template(jsonnet: &str) -> String {
    format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(jsonnet))
}

fn web_hook(config: Value) -> HookConfig {
    HookConfig { hook: "web_hook".into(), config: Some(config) }
}

fn session_hook() -> HookConfig {
    HookConfig { hook: "session".into(), config: None }
}

async fn app_with(db: Db, tweak: impl FnOnce(&mut Config) + 'static) -> TestApp {
    TestApp::builder(db).config(tweak).build().await
}

async fn web_hooks_with_jsonnet(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let body = template(
        "function(ctx) { email: ctx.identity.traits.email, tp: ctx.flow.transient_payload, \
         method: ctx.request_method, ua: std.objectHas(ctx.request_headers, 'User-Agent'), \
         flow_type: ctx.flow.type }",
    );
    let url = format!("{}/hook/ok", peer.base);
    let quiet = format!("{}/hook/ok?quiet", peer.base);
    let quiet_body = template("function(ctx) { quiet: true }");
    let t = app_with(db, move |c| {
        c.selfservice.flows.registration.after.password.hooks = vec![
            web_hook(json!({
                "url": url, "method": "POST", "body": body, "headers": {"X-Test": "yes"},
                "auth": {"type": "api_key", "config": {"name": "X-Api-Key", "value": "hook-secret", "in": "header"}},
            })),
            web_hook(json!({"url": quiet, "method": "PUT", "body": quiet_body, "emit_analytics_event": false})),
            session_hook(),
        ];
    })
    .await;
    let flow = api_flow(&t, "registration", "").await;
    let (status, done) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "password", "traits": {"email": "hook@example.org"}, "password": PASSWORD, "transient_payload": {"consent": true}}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(done["session_token"].is_string(), "the session hook still runs after the web hook");
    let seen = peer.requests().await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["method"], "POST");
    assert_eq!(seen[0]["headers"]["x-api-key"], "hook-secret");
    assert_eq!(seen[0]["headers"]["x-test"], "yes");
    // Kratos' analytics headers, unless `emit_analytics_event = false`.
    for h in ["ory-webhook-request-id", "ory-webhook-trigger-id"] {
        assert!(uuid::Uuid::parse_str(seen[0]["headers"][h].as_str().unwrap_or("")).is_ok(), "{h}: {}", seen[0]);
        assert!(seen[1]["headers"].get(h).is_none(), "{h}: {}", seen[1]);
    }
    assert_eq!(seen[1]["method"], "PUT");
    assert_eq!(seen[1]["body"], json!({"quiet": true}));
    assert_eq!(
        seen[0]["body"],
        json!({"email": "hook@example.org", "tp": {"consent": true}, "method": "POST", "ua": false, "flow_type": "api"})
    );
}
both_backends!(web_hooks_with_jsonnet);

/// The password-migration hook: an identity imported with `use_password_migration_hook` signs
/// in once through the remote check, then with an ordinary hash (the hook is not asked again).
async fn password_migration_hook(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let url = format!("{}/migrate", peer.base);
    let t = app_with(db, move |c| {
        c.selfservice.methods.password.config.migrate_hook = tessera::config::MigrateHookConfig {
            enabled: true,
            config: Some(json!({"url": url, "method": "POST", "headers": {"X-Legacy": "1"}})),
        };
    })
    .await;
    let import = |email: &str| {
        json!({"traits": {"email": email},
               "credentials": {"password": {"config": {"use_password_migration_hook": true}}}})
    };
    let mut ids = Vec::new();
    for email in ["legacy@example.org", "other@example.org"] {
        let (status, _, created) = t.admin_json(Method::POST, "/admin/identities", Some(import(email))).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    // Refused by the remote system (403, or 200 without a match): invalid credentials.
    for wrong in ["not-it", "weird-answer"] {
        let (status, body) = api_login(&t, "legacy@example.org", wrong).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(message_ids(&body), [4000006]);
    }
    // The remote system fails: 502.
    let (status, body) = api_login(&t, "other@example.org", "fail-please").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["reason"], "A third-party upstream service responded improperly. Please try again later.");
    // A match: signed in, the password stored as a hash of the configured hasher.
    let (status, body) = api_login(&t, "legacy@example.org", "legacy-secret-1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session_token"].is_string());
    let seen = peer.requests().await;
    let last = seen.last().unwrap();
    assert_eq!(last["body"], json!({"identifier": "legacy@example.org", "password": "legacy-secret-1"}));
    assert_eq!(last["headers"]["x-legacy"], "1");
    assert!(last["headers"]["ory-webhook-request-id"].is_string());
    let (_, _, stored) =
        t.admin_json(Method::GET, &format!("/admin/identities/{}?include_credential=password", ids[0]), None).await;
    let config = &stored["credentials"]["password"]["config"];
    assert!(config["hashed_password"].as_str().unwrap().starts_with("$argon2id$"), "{stored}");
    assert!(config.get("use_password_migration_hook").is_none(), "{stored}");
    // From now on the hash decides; the hook is not asked.
    let asked = seen.len();
    let (status, _) = api_login(&t, "legacy@example.org", "legacy-secret-1").await;
    assert_eq!(status, 200);
    let (status, _) = api_login(&t, "legacy@example.org", "legacy-other-2").await;
    assert_eq!(status, 400, "the hook would have said yes; the hash says no");
    assert_eq!(peer.requests().await.len(), asked);

    // Migration requested while the hook is off: 500 invalid_configuration.
    let off = app_with(db, |_| {}).await;
    let (status, _, _) = off.admin_json(Method::POST, "/admin/identities", Some(import("off@example.org"))).await;
    assert_eq!(status, 201);
    let (status, body) = api_login(&off, "off@example.org", "legacy-secret-1").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["id"], "invalid_configuration");
}
both_backends!(password_migration_hook);

async fn interrupting_and_parsing_hooks(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let body = template("function(ctx) { traits: ctx.identity.traits }");
    let (interrupt, parse, fail) = (
        format!("{}/hook/interrupt", peer.base),
        format!("{}/hook/parse", peer.base),
        format!("{}/hook/fail", peer.base),
    );
    let cancel =
        template("function(ctx) if ctx.identity.traits.email == 'skip@example.org' then error 'cancel' else {}");
    let t = app_with(db, {
        let body = body.clone();
        move |c| {
            c.selfservice.flows.registration.after.password.hooks = vec![
                web_hook(json!({"url": interrupt, "method": "POST", "body": cancel, "can_interrupt": true})),
                web_hook(json!({"url": parse, "method": "POST", "body": body, "response": {"parse": true}})),
            ];
            c.selfservice.flows.login.after.hooks =
                vec![web_hook(json!({"url": fail, "method": "POST", "body": template("function(ctx) {}")}))];
        }
    })
    .await;
    // The interrupting hook refuses: the flow comes back with its message on the field.
    let flow = api_flow(&t, "registration", "").await;
    let (status, body) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "password", "traits": {"email": "blocked@example.org"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let email = node(&body, "traits.email").unwrap();
    assert_eq!(email["messages"][0]["text"], "blocked by the hook");
    assert_eq!(email["messages"][0]["context"], json!({"reason": "blocked"}));
    let (_, _, list) = t.admin_json(Method::GET, "/admin/identities", None).await;
    assert!(list.as_array().unwrap().is_empty(), "a refused registration writes nothing");
    // `error "cancel"` skips the interrupting hook; the parsing hook changes the identity.
    let (status, done) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "password", "traits": {"email": "skip@example.org"}, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["identity"]["traits"]["name"]["first"], "Hooked");
    assert_eq!(done["identity"]["metadata_public"], json!({"hooked": true}));
    let paths: Vec<String> = peer.requests().await.iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(paths, ["/hook/interrupt", "/hook/parse"], "the cancelled call was not sent");
    // A failing login hook: 502, and no session for the caller.
    let (status, body) = api_login(&t, "skip@example.org", PASSWORD).await;
    assert_eq!(status, 502, "{body}");
}
both_backends!(interrupting_and_parsing_hooks);

async fn breached_passwords_are_refused(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let host = peer.base.clone();
    let t = app_with(db, move |c| {
        c.selfservice.methods.password.config.haveibeenpwned_enabled = true;
        c.selfservice.methods.password.config.haveibeenpwned_host = host;
    })
    .await;
    let flow = api_flow(&t, "registration", "").await;
    let (status, body) = api_submit(
        &t,
        "registration",
        &flow,
        json!({"method": "password", "traits": {"email": "pwned@example.org"}, "password": "breached-password-1"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let messages = &node(&body, "password").unwrap()["messages"];
    assert_eq!(messages[0]["id"], 4000034);
    assert_eq!(messages[0]["context"]["breaches"], 42);
    // Only the five-character prefix of the SHA-1 reached the range API.
    let seen = peer.requests().await;
    assert!(seen.is_empty(), "range lookups are GETs and are not recorded as hooks");
    api_register(&t, "safe@example.org").await;
    assert_eq!(message_ids(&body), [4000034]);
}
both_backends!(breached_passwords_are_refused);

async fn before_hooks_and_the_replace_rule(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let body = template("function(ctx) { flow: ctx.flow.type, url: ctx.request_url }");
    let base = peer.base.clone();
    let t = app_with(db, move |c| {
        let hook = |path: &str| web_hook(json!({"url": format!("{base}{path}"), "method": "POST", "body": body}));
        c.selfservice.flows.login.before.hooks = vec![hook("/hook/ok?login-before")];
        c.selfservice.flows.registration.before.hooks = vec![hook("/hook/fail?registration-before")];
        c.selfservice.flows.login.after.hooks = vec![hook("/hook/ok?login-global")];
        c.selfservice.flows.login.after.password.hooks = vec![hook("/hook/ok?login-password")];
    })
    .await;
    // A failing before-hook aborts flow creation.
    let res = t.get(&format!("{}/self-service/registration/api", t.public)).await;
    assert_eq!(res.status(), 502);
    // Login: the before hook runs at creation; after login only the method's hooks run
    // (they replace the global list).
    let identity = json!({"traits": {"email": "replace@example.org"}, "credentials": {"password": {"config": {"password": PASSWORD}}}});
    let (status, _, _) = t.admin_json(Method::POST, "/admin/identities", Some(identity)).await;
    assert_eq!(status, 201);
    let (status, body) = api_login(&t, "replace@example.org", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let seen = peer.requests().await;
    let paths: Vec<&str> = seen.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/hook/fail?registration-before", "/hook/ok?login-before", "/hook/ok?login-password"]);
    assert_eq!(seen[1]["body"]["flow"], "api");
    assert!(seen[1]["body"]["url"].as_str().unwrap().ends_with("/self-service/login/api"));
}
both_backends!(before_hooks_and_the_replace_rule);

async fn fire_and_forget_hooks(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let url = format!("{}/hook/fail?async", peer.base);
    let body = template("function(ctx) { id: ctx.identity.id }");
    let t = app_with(db, move |c| {
        c.selfservice.flows.registration.after.password.hooks =
            vec![web_hook(json!({"url": url, "method": "POST", "body": body, "response": {"ignore": true}}))];
    })
    .await;
    // The hook answers 500, but with `response.ignore` the registration does not wait for it.
    let done = api_register(&t, "async@example.org").await;
    let id = done["identity"]["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if !peer.requests().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = peer.requests().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["body"]["id"], id);
}
both_backends!(fire_and_forget_hooks);

async fn settings_hooks_run_for_every_method(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let body = template("function(ctx) { flow: ctx.flow.type }");
    let base = peer.base.clone();
    let t = app_with(db, move |c| {
        let hook = |path: &str| web_hook(json!({"url": format!("{base}{path}"), "method": "POST", "body": body}));
        crate::settings::with_session_hook(c);
        c.selfservice.methods.totp.enabled = true;
        c.selfservice.flows.settings.before.hooks = vec![hook("/hook/ok?settings-before")];
        c.selfservice.flows.settings.after.hooks = vec![hook("/hook/ok?settings-global")];
        c.selfservice.flows.settings.after.totp.hooks = vec![hook("/hook/ok?settings-totp")];
    })
    .await;
    let (_, token) = crate::settings::signed_up(&t, "sethooks@example.org").await;
    // TOTP: the before hook at creation, then the method's own after hooks.
    crate::mfa::enrol_totp(&t, &token).await;
    // The profile: the global after hooks.
    let flow = crate::settings::settings_flow(&t, &token).await;
    let traits = json!({"email": "sethooks@example.org", "name": {"first": "Hooked"}});
    let (status, body) =
        crate::settings::update(&t, &token, &flow, json!({"method": "profile", "traits": traits})).await;
    assert_eq!(status, 200, "{body}");
    let paths: Vec<String> = peer.requests().await.iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        paths,
        ["/hook/ok?settings-before", "/hook/ok?settings-totp", "/hook/ok?settings-before", "/hook/ok?settings-global"]
    );
}
both_backends!(settings_hooks_run_for_every_method);

/// `clients.http.disallow_private_ip_ranges`: a web hook to a loopback address is refused
/// (nothing reaches it) unless its exact URL is an exception; `clients.web_hook.header_allowlist`
/// decides which request headers the Jsonnet sees.
async fn outgoing_client_settings(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let url = format!("{}/hook/ok", peer.base);
    let body = template("function(ctx) { headers: std.objectFields(ctx.request_headers) }");
    let hooks =
        move |url: String| vec![web_hook(json!({"url": url, "method": "POST", "body": body.clone()})), session_hook()];
    let (u, h) = (url.clone(), hooks.clone());
    let refused = app_with(db, move |c| {
        c.clients.http.disallow_private_ip_ranges = true;
        c.selfservice.flows.registration.after.password.hooks = h(u);
    })
    .await;
    let flow = api_flow(&refused, "registration", "").await;
    let body = json!({"method": "password", "traits": {"email": "ssrf@example.org"}, "password": PASSWORD});
    let (status, answer) = api_submit(&refused, "registration", &flow, body.clone()).await;
    assert_eq!(status, 502, "{answer}");
    assert!(peer.requests().await.is_empty(), "nothing reached the internal address");

    let (u, h) = (url.clone(), hooks.clone());
    let allowed = app_with(db, move |c| {
        c.clients.http.disallow_private_ip_ranges = true;
        c.clients.http.private_ip_exception_urls = vec![u.clone()];
        c.clients.web_hook.header_allowlist = vec!["X-Tenant".into()];
        c.selfservice.flows.registration.after.password.hooks = h(u);
    })
    .await;
    let flow = api_flow(&allowed, "registration", "").await;
    let res = allowed
        .http
        .post(format!("{}/self-service/registration?flow={}", allowed.public, flow["id"].as_str().unwrap()))
        .header("Accept", "application/json")
        .header("X-Tenant", "blue")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = peer.requests().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["body"], json!({"headers": ["X-Tenant"]}), "only the allowed header, canonical");
}
both_backends!(outgoing_client_settings);

/// Settings' pre-persist web hooks: an interrupting hook refuses the profile change (nothing is
/// saved), a parsing one alters the identity before it is written.
async fn settings_pre_persist_hooks(db: Db) {
    let Some(peer) = Peer::start().await else { return };
    let body = template("function(ctx) { traits: ctx.identity.traits }");
    let (interrupt, parse) = (format!("{}/hook/interrupt", peer.base), format!("{}/hook/parse", peer.base));
    let refuse = template("function(ctx) if ctx.identity.traits.email == 'ok@example.org' then error 'cancel' else {}");
    let t = app_with(db, move |c| {
        c.selfservice.flows.registration.after.password.hooks = vec![session_hook()];
        c.selfservice.flows.settings.after.profile.hooks = vec![
            web_hook(json!({"url": interrupt, "method": "POST", "body": refuse, "can_interrupt": true})),
            web_hook(json!({"url": parse, "method": "POST", "body": body, "response": {"parse": true}})),
        ];
    })
    .await;
    let (id, token) = crate::settings::signed_up(&t, "settings-hook@example.org").await;
    let flow = crate::settings::settings_flow(&t, &token).await;
    let (status, refused) = crate::settings::update(
        &t,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "blocked@example.org"}}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(message_ids(&refused), [4000001], "{refused}");
    let (_, _, stored) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(stored["traits"]["email"], "settings-hook@example.org", "nothing was saved");
    let flow = crate::settings::settings_flow(&t, &token).await;
    let (status, done) =
        crate::settings::update(&t, &token, &flow, json!({"method": "profile", "traits": {"email": "ok@example.org"}}))
            .await;
    assert_eq!(status, 200, "{done}");
    let (_, _, stored) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
    assert_eq!(stored["traits"]["email"], "ok@example.org");
    assert_eq!(stored["traits"]["name"]["first"], "Hooked", "changed by the parsing hook before the save");
    assert_eq!(stored["metadata_public"], json!({"hooked": true}));
}
both_backends!(settings_pre_persist_hooks);
