//! Hardening (issue 13): secrets are required and never echoed; what follows adds bounded
//! inputs, compare-and-set writes, abuse limits and the rest.

use crate::both_backends;
use crate::durability::{PASSWORD, env, free_port, login, register, serve};
use crate::harness::{Db, TestApp, TestDb, bin};
use crate::selfservice::get_json;
use reqwest::Method;
use std::process::Command;

fn serve_with(vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(bin())
        .arg("serve")
        .env("DSN", "memory")
        .envs(vars.iter().copied())
        .env("TESSERA__SERVE__PUBLIC__PORT", free_port().to_string())
        .env("TESSERA__SERVE__ADMIN__PORT", free_port().to_string())
        .output()
        .unwrap()
}

#[test]
fn serving_without_secrets_is_refused_naming_the_key() {
    let out = serve_with(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`secrets.default` is not set"), "{stderr}");
    // Cookie and cipher secrets together are enough …
    let out = serve_with(&[
        ("TESSERA__SECRETS__COOKIE", "[\"a-cookie-secret-of-32-characters\"]"),
        ("TESSERA__SECRETS__CIPHER", "[\"short\"]"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // … but every secret must have Kratos' minimum length; the value is never printed.
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("`secrets.cipher[0]` is shorter than 16 characters"), "{stderr}");
    assert!(!stderr.contains("short\""), "{stderr}");
    let out = serve_with(&[("TESSERA__SECRETS__DEFAULT", "[\"a-default-secret-of-32-chars!!\", \"tiny\"]")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("`secrets.default[1]`"));
}

/// The admin API can do anything: off loopback it needs keys, or an explicit opt-out.
#[actix_web::test]
async fn an_open_admin_port_off_loopback_is_refused() {
    let secret = ("TESSERA__SECRETS__DEFAULT", "[\"a-default-secret-of-32-chars!!\"]");
    let out = serve_with(&[secret, ("TESSERA__SERVE__ADMIN__HOST", "\"0.0.0.0\"")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`serve.admin.api_keys` is empty"), "{stderr}");
    assert!(stderr.contains("serve.admin.allow_unauthenticated"), "{stderr}");
    // Loopback in any spelling is fine (the other tests serve on 127.0.0.1); so are keys, or
    // the explicit opt-out.
    let (public, admin) = (free_port(), free_port());
    let http = reqwest::Client::new();
    for extra in [
        ("TESSERA__SERVE__ADMIN__API_KEYS", format!("[\"{}\"]", "ab".repeat(32))),
        ("TESSERA__SERVE__ADMIN__ALLOW_UNAUTHENTICATED", "true".to_string()),
    ] {
        let mut vars = env("memory", public, admin);
        vars.push(("TESSERA__SERVE__ADMIN__HOST".into(), "\"0.0.0.0\"".into()));
        vars.push((extra.0.into(), extra.1));
        let mut child = serve(&vars, &http, admin).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}

#[test]
fn debug_output_of_the_configuration_hides_secrets() {
    let mut c = tessera::config::Config {
        dsn: Some("postgres://tessera:db-password-123@db.internal:5432/kratos?sslpassword=ssl-secret".into()),
        ..Default::default()
    };
    c.secrets.default = vec!["a-default-secret-of-32-chars!!".into()];
    c.courier.smtp.connection_uri = "smtp://mailer:smtp-password-456@mail:587/".into();
    c.selfservice.flows.login.after.hooks = vec![tessera::config::HookConfig {
        hook: "web_hook".into(),
        config: Some(serde_json::json!({
            "url": "https://hooks.internal/login",
            "auth": {"type": "basic_auth", "config": {"user": "u", "password": "hook-password-789"}},
        })),
    }];
    let shown = format!("{c:?}");
    for secret in ["db-password-123", "ssl-secret", "a-default-secret", "smtp-password-456", "hook-password-789"] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert!(shown.contains("db.internal") && shown.contains("hooks.internal/login"), "still useful: {shown}");
}

/// At the most verbose level nothing bound to a statement (hashes, tokens) is logged.
async fn trace_logs_carry_no_bound_values(db: Db) {
    let test_db = TestDb::new(db).await;
    let (public, admin) = (free_port(), free_port());
    let mut vars = env(&test_db.dsn, public, admin);
    vars.retain(|(k, _)| k != "TESSERA__LOG__LEVEL");
    vars.push(("TESSERA__LOG__LEVEL".into(), "\"trace\"".into()));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    vars.push(("TESSERA_TEST_STDERR".into(), log.display().to_string()));
    let http = reqwest::Client::new();
    let mut child = serve(&vars, &http, admin).await;
    assert_eq!(register(&http, public, "quiet@example.org").await, 200);
    let body = login(&http, public, "quiet@example.org").await;
    let token = body["session_token"].as_str().unwrap().to_string();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.len() > 1000, "trace logging is on: {} bytes", logged.len());
    for secret in [token.as_str(), PASSWORD, "$argon2id$", "with parameters"] {
        assert!(!logged.contains(secret), "{secret} appears in the trace log");
    }
}
both_backends!(trace_logs_carry_no_bound_values);

/// Page numbers at the edge of `usize` give an empty page, not an overflow or a database error.
async fn huge_page_numbers_give_empty_pages(db: Db) {
    let t = TestApp::new(db).await;
    let body = crate::selfservice::api_register(&t, "pages@example.org").await;
    let id = body["identity"]["id"].as_str().unwrap().to_string();
    let token =
        crate::selfservice::api_login(&t, "pages@example.org", crate::selfservice::PASSWORD).await.1["session_token"]
            .as_str()
            .unwrap()
            .to_string();
    let huge = u64::MAX;
    for query in [format!("page={huge}&per_page=2"), format!("page={huge}&per_page=1000"), "page_token=AAAA".into()] {
        let res = t
            .http
            .get(format!("{}/sessions?{query}", t.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "/sessions?{query}");
        let (status, _, list) =
            t.admin_json(Method::GET, &format!("/admin/identities/{id}/sessions?{query}"), None).await;
        assert_eq!(status, 200, "{query}: {list}");
        let (status, _, list) = t.admin_json(Method::GET, &format!("/admin/identities?{query}"), None).await;
        assert!(status == 200 || status == 400, "{query}: {status} {list}");
    }
    let (status, _, list) =
        t.admin_json(Method::GET, &format!("/admin/identities/{id}/sessions?page={huge}&per_page=2"), None).await;
    assert_eq!((status, list), (200, serde_json::json!([])));
}
both_backends!(huge_page_numbers_give_empty_pages);

/// The janitor's pass removes stored errors and token exchangers a day old, and nothing newer.
async fn cleanup_removes_old_errors_and_exchangers(db: Db) {
    use tessera::persistence::selfservice::{ErrorRecord, insert_error, read_error};
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db).clock(clock.clone()).build().await;
    let state = t.app().state();
    let record = |id, at| ErrorRecord {
        id,
        error: serde_json::json!({"id": "x"}),
        was_seen: false,
        seen_at: None,
        created_at: at,
        updated_at: at,
    };
    let (old, fresh) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let old_flow = uuid::Uuid::new_v4();
    {
        let mut pooled = state.store.get().await.unwrap();
        let mut conn = pooled.conn();
        insert_error(&mut conn, &record(old, clock.now())).await.unwrap();
    }
    state.sessions.create_exchanger(old_flow).await.unwrap();
    clock.advance(chrono::Duration::hours(25));
    let new_flow = uuid::Uuid::new_v4();
    state.sessions.create_exchanger(new_flow).await.unwrap();
    {
        let mut pooled = state.store.get().await.unwrap();
        let mut conn = pooled.conn();
        insert_error(&mut conn, &record(fresh, clock.now())).await.unwrap();
    }
    let n = tessera::persistence::cleanup::delete_expired(&state.store, clock.now(), 1).await.unwrap();
    assert_eq!(n, 2, "one error and one exchanger");
    let mut pooled = state.store.get().await.unwrap();
    let mut conn = pooled.conn();
    assert!(read_error(&mut conn, old, clock.now()).await.unwrap().is_none());
    assert!(read_error(&mut conn, fresh, clock.now()).await.unwrap().is_some());
    drop(pooled);
    // The old exchanger is gone (binding finds no row); the new one is still there.
    let identity = crate::sessions::new_identity(&t, "exchange@example.org").await;
    let (session, token) = state.sessions.issue(&identity, vec![], None).await.unwrap();
    assert!(!state.sessions.bind_exchanger(old_flow, session.id, &token).await.unwrap());
    assert!(state.sessions.bind_exchanger(new_flow, session.id, &token).await.unwrap());
}
both_backends!(cleanup_removes_old_errors_and_exchangers);

/// Recording the same delivery attempt twice (a retried batch after an ambiguous commit)
/// leaves one dispatch row.
async fn recording_an_attempt_twice_keeps_one_dispatch(db: Db) {
    use tessera::persistence::courier::{Attempt, DispatchRow, record_attempt};
    use tessera::persistence::types::{Id, Ts};
    let t = TestApp::builder(db).config(|c| c.courier.worker.enabled = false).build().await;
    let state = t.app().state();
    let message = state
        .courier
        .enqueue(tessera::courier::NewMessage {
            kind: tessera::courier::MessageType::Email,
            channel: "email".into(),
            recipient: "twice@example.org".into(),
            subject: "s".into(),
            body: "b".into(),
            template_type: "verification_code_valid".into(),
            template_data: serde_json::json!({}),
        })
        .await
        .unwrap();
    let now = tessera::clock::Clock::system().now();
    let attempt = Attempt {
        message_id: message,
        status: 2,
        send_count: 1,
        next_attempt_at: None,
        dispatch: DispatchRow {
            id: Id(uuid::Uuid::new_v4()),
            message_id: Id(message),
            status: "success".into(),
            error: None,
            created_at: Ts(now),
            updated_at: Ts(now),
        },
        at: now,
    };
    for _ in 0..2 {
        let mut pooled = state.store.get().await.unwrap();
        record_attempt(&mut pooled.conn(), &attempt).await.unwrap();
    }
    let (status, _, body) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{message}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dispatches"].as_array().unwrap().len(), 1, "{body}");
}
both_backends!(recording_an_attempt_twice_keeps_one_dispatch);

/// Imported hashes may not cost more than `[hashers.import_limits]`; a login with one that
/// costs more than the configured hasher re-hashes it.
async fn imported_hash_costs_are_capped(db: Db) {
    let t = TestApp::new(db).await;
    let import = |email: &str, hash: &str| {
        serde_json::json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"password": {"config": {"hashed_password": hash}}},
        })
    };
    let salt = "cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw";
    for (hash, names) in [
        (format!("$argon2id$v=19$m=1048577,t=1,p=1${salt}"), "argon2 memory (m, in KiB)"),
        (format!("$argon2id$v=19$m=64,t=100,p=1${salt}"), "argon2 iterations (t)"),
        (format!("$argon2id$v=19$m=262144,t=3,p=1${salt}"), "argon2 work (m x t, in KiB)"),
        ("$2a$31$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6".to_string(), "bcrypt cost"),
        (
            "$pbkdf2-sha256$i=99999999,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI".into(),
            "pbkdf2 iterations (i)",
        ),
    ] {
        let (status, _, body) =
            t.admin_json(Method::POST, "/admin/identities", Some(import("costly@example.org", &hash))).await;
        assert_eq!(status, 400, "{body}");
        let reason = body["error"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(names), "{reason}");
    }
    let (_, _, list) = t.admin_json(Method::GET, "/admin/identities", None).await;
    assert_eq!(list, serde_json::json!([]), "nothing was created");

    // A hash from Kratos' own tests (t=5, p=4) imports; the server's hasher is cheaper, so the
    // first login replaces it with one of the configured parameters.
    let kratos = "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4";
    let (status, _, created) =
        t.admin_json(Method::POST, "/admin/identities", Some(import("kratos@example.org", kratos))).await;
    assert_eq!(status, 201, "{created}");
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let stored_hash = |i: tessera::identity::Identity| {
        i.credentials["password"].config["hashed_password"].as_str().unwrap().to_string()
    };
    let store = &t.app().state().store;
    assert_eq!(stored_hash(crate::harness::stored(store, id).await.unwrap()), kratos);
    let (status, body) = crate::selfservice::api_login(&t, "kratos@example.org", "test").await;
    assert_eq!(status, 200, "{body}");
    let rehashed = stored_hash(crate::harness::stored(store, id).await.unwrap());
    let cfg = &t.app().state().config.hashers.argon2;
    let params = format!("m={},t={},p={}", cfg.memory.0 / 1024, cfg.iterations, cfg.parallelism);
    assert!(rehashed.starts_with(&format!("$argon2id$v=19${params}$")), "{rehashed}");
    assert_eq!(crate::selfservice::api_login(&t, "kratos@example.org", "test").await.0, 200);

    // A patched hash is capped too.
    let patch = serde_json::json!([{"op": "replace", "path": "/credentials/password/config/hashed_password",
        "value": format!("$argon2id$v=19$m=64,t=100,p=1${salt}")}]);
    let (status, _, body) = t.admin_json(Method::PATCH, &format!("/admin/identities/{id}"), Some(patch)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(stored_hash(crate::harness::stored(store, id).await.unwrap()), rehashed);
}
both_backends!(imported_hash_costs_are_capped);

/// A password login with extra request headers; returns the UI message ids and the lock-out
/// message's `retry_after_seconds`, if any.
async fn login_from(
    t: &TestApp,
    identifier: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (Vec<u64>, Option<i64>) {
    let flow = crate::selfservice::api_flow(t, "login", "").await;
    let mut req = t
        .http
        .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
        .header("Accept", "application/json")
        .json(&serde_json::json!({"method": "password", "identifier": identifier, "password": password}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    let retry = body["ui"]["messages"][0]["context"]["retry_after_seconds"].as_i64();
    let ids = if body["ui"].is_object() { crate::selfservice::message_ids(&body) } else { Vec::new() };
    (ids, retry)
}

/// Forwarding headers count only from `security.trusted_proxies`; IPv6 clients are counted
/// per /64.
async fn forwarded_addresses_only_from_trusted_proxies(db: Db) {
    let wrong = |n: usize| format!("nobody-{n}@example.org");
    // Nothing trusted: a client cannot escape its address's bucket by inventing headers.
    let t = TestApp::builder(db).config(|c| c.security.brute_force.max_failures_per_ip = 3).build().await;
    for n in 0..3 {
        let xff = format!("198.51.100.{n}");
        assert_eq!(login_from(&t, &wrong(n), "wrong-password", &[("X-Forwarded-For", &xff)]).await.0, [4000006]);
    }
    let (ids, _) = login_from(&t, &wrong(9), "wrong-password", &[("True-Client-IP", "192.0.2.200")]).await;
    assert_eq!(ids, [4019001], "the peer address is locked");

    // Behind a trusted proxy (the tests' loopback peer): each forwarded client has its bucket.
    let t = TestApp::builder(db)
        .config(|c| {
            c.security.brute_force.max_failures_per_ip = 3;
            c.security.trusted_proxies = vec![tessera::config::Cidr::parse("127.0.0.0/8").unwrap()];
        })
        .build()
        .await;
    for n in 0..3 {
        let xff = format!("198.51.100.{n}, 127.0.0.1");
        assert_eq!(login_from(&t, &wrong(n), "wrong-password", &[("X-Forwarded-For", &xff)]).await.0, [4000006]);
    }
    for n in 0..3 {
        let v6 = format!("2001:db8:1:2::{n}");
        assert_eq!(login_from(&t, &wrong(n), "wrong-password", &[("X-Forwarded-For", &v6)]).await.0, [4000006]);
    }
    let (ids, _) = login_from(&t, &wrong(9), "wrong-password", &[("X-Forwarded-For", "2001:db8:1:2:ffff::1")]).await;
    assert_eq!(ids, [4019001], "one /64 is one bucket");
    let (ids, _) = login_from(&t, &wrong(9), "wrong-password", &[("X-Forwarded-For", "2001:db8:1:3::1")]).await;
    assert_eq!(ids, [4000006], "the next /64 is another");
    // A forwarded value that is no address goes to the shared "unknown" bucket, never to none.
    for n in 0..3 {
        assert_eq!(login_from(&t, &wrong(n), "wrong-password", &[("X-Real-IP", "garbage")]).await.0, [4000006]);
    }
    assert_eq!(login_from(&t, &wrong(5), "wrong-password", &[("X-Real-IP", "other-garbage")]).await.0, [4019001]);
}
both_backends!(forwarded_addresses_only_from_trusted_proxies);

/// Each lock-out of an identifier lasts twice the one before; a successful login starts over.
async fn identifier_lockouts_back_off_exponentially(db: Db) {
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db)
        .clock(clock.clone())
        .config(|c| {
            c.security.brute_force.max_failures_per_identifier = 2;
            c.security.brute_force.lockout = tessera::config::Dur(std::time::Duration::from_secs(60));
            c.security.brute_force.max_lockout = tessera::config::Dur(std::time::Duration::from_secs(200));
        })
        .build()
        .await;
    let who = "backoff@example.org";
    crate::selfservice::api_register(&t, who).await;
    let password = crate::selfservice::PASSWORD;
    for expected in [60, 120, 200, 200] {
        for _ in 0..2 {
            assert_eq!(login_from(&t, who, "wrong-password", &[]).await.0, [4000006]);
        }
        let (ids, retry) = login_from(&t, who, "wrong-password", &[]).await;
        assert_eq!((ids, retry), (vec![4019001], Some(expected)));
        // Still locked a second before the end, even with the right password.
        clock.advance(chrono::Duration::seconds(expected - 1));
        assert_eq!(login_from(&t, who, password, &[]).await, (vec![4019001], Some(1)));
        clock.advance(chrono::Duration::seconds(1));
    }
    assert_eq!(login_from(&t, who, password, &[]).await.0, Vec::<u64>::new(), "signed in");
    for _ in 0..2 {
        assert_eq!(login_from(&t, who, "wrong-password", &[]).await.0, [4000006]);
    }
    assert_eq!(login_from(&t, who, "wrong-password", &[]).await, (vec![4019001], Some(60)), "started over");
}
both_backends!(identifier_lockouts_back_off_exponentially);

// --- No lost updates: an administrative decision racing a user's write always stands. ---

/// Whether `token` still opens a session.
async fn whoami(t: &TestApp, token: &str) -> u16 {
    let url = format!("{}/sessions/whoami", t.public);
    t.http.get(url).header("X-Session-Token", token).send().await.unwrap().status().as_u16()
}

/// A re-authentication (`refresh=true`) flow for the session `token` opens.
async fn refresh_flow(t: &TestApp, token: &str) -> String {
    let res = t
        .http
        .get(format!("{}/self-service/login/api?refresh=true", t.public))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let flow: serde_json::Value = res.json().await.unwrap();
    flow["id"].as_str().unwrap().to_string()
}

/// Submits the password to refresh flow `flow` with the session `token`.
async fn refresh(t: &TestApp, flow: &str, token: &str, email: &str) -> u16 {
    let res = t
        .http
        .post(format!("{}/self-service/login?flow={flow}", t.public))
        .header("X-Session-Token", token)
        .header("Accept", "application/json")
        .json(&serde_json::json!({"method": "password", "identifier": email, "password": crate::selfservice::PASSWORD}))
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

const ROUNDS: u64 = 24;

/// Revoking a session while it is re-authenticated: it stays revoked.
async fn revocation_stands_against_a_racing_refresh(db: Db) {
    let t = TestApp::builder(db).config(crate::settings::with_session_hook).build().await;
    for n in 0..ROUNDS {
        let email = format!("revoke-{n}@example.org");
        let body = crate::selfservice::api_register(&t, &email).await;
        let token = body["session_token"].as_str().unwrap().to_string();
        let sid = body["session"]["id"].as_str().unwrap().to_string();
        let flow = refresh_flow(&t, &token).await;
        let revoke = async {
            tokio::time::sleep(std::time::Duration::from_micros(n * 500)).await;
            t.admin_json(Method::DELETE, &format!("/admin/sessions/{sid}"), None).await.0
        };
        let (revoked, refreshed) = tokio::join!(revoke, refresh(&t, &flow, &token, &email));
        assert_eq!(revoked, 204, "round {n}");
        assert!(refreshed < 500, "round {n}: {refreshed}");
        let (status, _, session) = t.admin_json(Method::GET, &format!("/admin/sessions/{sid}"), None).await;
        assert_eq!((status, &session["active"]), (200, &serde_json::json!(false)), "round {n}: {session}");
        assert_eq!(whoami(&t, &token).await, 401, "round {n}");
    }
}
both_backends!(revocation_stands_against_a_racing_refresh);

/// Disabling an identity while its user changes the password (hashing takes a while): it
/// stays disabled; the settings submit either came first or is refused as stale (409).
async fn disabling_stands_against_a_racing_password_change(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            crate::settings::with_session_hook(c);
            // A hash that takes some milliseconds: the window the admin's write falls into.
            c.hashers.argon2.memory = tessera::config::ByteSize(4 << 20);
            c.hashers.argon2.iterations = 2;
        })
        .build()
        .await;
    let disable = serde_json::json!([{"op": "replace", "path": "/state", "value": "inactive"}]);
    for n in 0..ROUNDS {
        let (id, token) = crate::settings::signed_up(&t, &format!("disable-{n}@example.org")).await;
        let flow = crate::settings::settings_flow(&t, &token).await;
        let new_password = serde_json::json!({"method": "password", "password": format!("a-new-password-{n}-x")});
        let admin = async {
            tokio::time::sleep(std::time::Duration::from_millis(n % 6)).await;
            t.admin_json(Method::PATCH, &format!("/admin/identities/{id}"), Some(disable.clone())).await
        };
        let ((patched, _, _), (changed, body)) =
            tokio::join!(admin, crate::settings::update(&t, &token, &flow, new_password));
        assert_eq!(patched, 200, "round {n}");
        assert!([200, 401, 403, 409].contains(&changed), "round {n}: {changed} {body}");
        let (_, _, identity) = t.admin_json(Method::GET, &format!("/admin/identities/{id}"), None).await;
        assert_eq!(identity["state"], "inactive", "round {n}: settings answered {changed}");
        assert_eq!(whoami(&t, &token).await, 401, "round {n}");
    }
}
both_backends!(disabling_stands_against_a_racing_password_change);

/// Deleting an identity's sessions while one is extended: it stays deleted.
async fn deletion_stands_against_a_racing_extend(db: Db) {
    let t = TestApp::builder(db).config(crate::settings::with_session_hook).build().await;
    for n in 0..ROUNDS {
        let body = crate::selfservice::api_register(&t, &format!("extend-{n}@example.org")).await;
        let token = body["session_token"].as_str().unwrap().to_string();
        let sid = body["session"]["id"].as_str().unwrap().to_string();
        let id = body["identity"]["id"].as_str().unwrap().to_string();
        let delete = async {
            tokio::time::sleep(std::time::Duration::from_millis(n % 3)).await;
            t.admin_json(Method::DELETE, &format!("/admin/identities/{id}/sessions"), None).await.0
        };
        let path = format!("/admin/sessions/{sid}/extend");
        let extend = t.admin_json(Method::PATCH, &path, None);
        let (deleted, (extended, _, _)) = tokio::join!(delete, extend);
        assert_eq!(deleted, 204, "round {n}");
        assert!([200, 404].contains(&extended), "round {n}: {extended}");
        let (status, _, _) = t.admin_json(Method::GET, &format!("/admin/sessions/{sid}"), None).await;
        assert_eq!(status, 404, "round {n}: the deleted session came back");
        assert_eq!(whoami(&t, &token).await, 401, "round {n}");
    }
}
both_backends!(deletion_stands_against_a_racing_extend);

// --- Bounded inputs ---

/// The peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// JSON of `size` bytes whose traits carry one long string.
fn big_json(size: usize) -> Vec<u8> {
    let mut body = br#"{"method":"password","password":"x","traits":{"email":""#.to_vec();
    let tail = br#""}}"#;
    body.resize(size - tail.len(), b'a');
    body.extend_from_slice(tail);
    body
}

/// Posts `size` bytes of JSON with chunked transfer encoding (no `Content-Length`, so the
/// server must count) over a raw connection; returns the status line's code.
async fn post_chunked(port: u16, path: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let body = big_json(size);
    for chunk in body.chunks(64 << 10) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and close before the whole body is sent.
        if conn.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// 5 MiB submits, to a flow that does not exist and to a real one, cost the server a bounded
/// amount of memory, answer in the error envelope and change nothing; so do oversized traits,
/// identifiers and field counts.
async fn oversized_submits_cost_bounded_memory_and_change_nothing(db: Db) {
    let test_db = TestDb::new(db).await;
    let (public, admin) = (free_port(), free_port());
    let http = reqwest::Client::new();
    // One malloc arena: peak RSS then measures what the server holds, not how many threads
    // happened to allocate.
    let mut vars = env(&test_db.dsn, public, admin);
    vars.push(("MALLOC_ARENA_MAX".into(), "1".into()));
    let child = serve(&vars, &http, admin).await;
    let pid = child.id().unwrap();
    let base = format!("http://127.0.0.1:{public}");
    let flow = get_json(&http, format!("{base}/self-service/registration/api"), None).await;
    let real = flow["id"].as_str().unwrap().to_string();
    // Warm up: one ordinary submit, so the baseline includes what any request allocates.
    let bad = http
        .post(format!("{base}/self-service/registration?flow={real}"))
        .json(&serde_json::json!({"method": "password", "traits": {"email": "not-an-email"}, "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let before = peak_rss_kib(pid);
    const SIZE: usize = 5 << 20;
    let mut first_round = None;
    for _ in 0..4 {
        let random = uuid::Uuid::new_v4();
        let res = http
            .post(format!("{base}/self-service/registration?flow={random}"))
            .header("Content-Type", "application/json")
            .body(big_json(SIZE))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 404, "{body}");
        let res = http
            .post(format!("{base}/self-service/registration?flow={real}"))
            .header("Content-Type", "application/json")
            .body(big_json(SIZE))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 413, "{body}");
        // Without a length the server counts what it reads.
        let path = format!("/self-service/registration?flow={real}");
        assert_eq!(post_chunked(public, &path, SIZE).await, 413);
        first_round.get_or_insert(peak_rss_kib(pid));
    }
    let peak = peak_rss_kib(pid);
    let (grown, later) = (peak.saturating_sub(before), peak.saturating_sub(first_round.unwrap_or(peak)));
    println!("peak RSS grew by {grown} KiB over twelve 5 MiB submits, {later} KiB after the first three");
    // No body is ever held whole (one would be 5 MiB, its parse as much again), and more
    // submits do not cost more.
    assert!(grown < 8 << 10, "peak RSS grew by {grown} KiB");
    // (2 MiB: allocator noise on a loaded machine reached 1.1 MiB; one held body is 5 MiB.)
    assert!(later < 2 << 10, "peak RSS grew by {later} KiB after the first round");

    // Within the body limit, each part has its own bound.
    let submit =
        |body: serde_json::Value| http.post(format!("{base}/self-service/registration?flow={real}")).json(&body).send();
    let traits = serde_json::json!({"method": "password", "password": "x", "traits": {"email": "a".repeat(70 << 10)}});
    assert_eq!(submit(traits).await.unwrap().status(), 413);
    let fields: serde_json::Map<String, serde_json::Value> =
        (0..300).map(|n| (format!("f{n}"), serde_json::json!("x"))).collect();
    assert_eq!(submit(serde_json::Value::Object(fields)).await.unwrap().status(), 400);
    let login = get_json(&http, format!("{base}/self-service/login/api"), None).await;
    let res = http
        .post(format!("{base}/self-service/login?flow={}", login["id"].as_str().unwrap()))
        .json(&serde_json::json!({"method": "password", "identifier": "i".repeat(1025), "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["reason"].as_str().unwrap().contains("identifier"), "{body}");

    // Nothing changed: the flow is as it was and no identity exists.
    let after = get_json(&http, format!("{base}/self-service/registration/flows?id={real}"), None).await;
    assert_eq!(after["state"], flow["state"]);
    let list = get_json(&http, format!("http://127.0.0.1:{admin}/admin/identities"), None).await;
    assert_eq!(list, serde_json::json!([]));
}
both_backends!(oversized_submits_cost_bounded_memory_and_change_nothing);

// --- Bounded waits ---

/// While the database cannot commit, a durable write answers 503 with `Retry-After` within
/// `persistence.write_timeout`; the write stays queued and lands once commits work again.
async fn durable_writes_answer_503_within_the_write_timeout(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            c.persistence.write_timeout = tessera::config::Dur(std::time::Duration::from_millis(300));
            c.persistence.retry_max_backoff = tessera::config::Dur(std::time::Duration::from_millis(40));
        })
        .build()
        .await;
    let state = t.app().state();
    state.persister.inject_commit_failures(40);
    let start = std::time::Instant::now();
    let res = t
        .http
        .post(format!("{}/admin/identities", t.admin))
        .json(&serde_json::json!({"schema_id": "default", "traits": {"email": "queued@example.org"}}))
        .send()
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(res.status(), 503);
    assert!(took < std::time::Duration::from_secs(3), "answered after {took:?}");
    assert!(res.headers().get("retry-after").is_some());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 503, "{body}");
    // Not lost: committed once the database takes writes again.
    state.persister.flush().await;
    let (_, _, list) =
        t.admin_json(Method::GET, "/admin/identities?credentials_identifier=queued@example.org", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}
both_backends!(durable_writes_answer_503_within_the_write_timeout);

/// A PostgreSQL outage under load: live sessions keep answering from memory, writes answer
/// 503 within the write timeout, readiness says 503, and after the database returns every
/// acknowledged write is there and the server works again without a restart of its own.
#[actix_web::test]
async fn a_postgres_outage_is_survived() {
    let Some(pg) = crate::ownpg::OwnPostgres::start(&[], &[], None) else { return };
    let (public, admin) = (free_port(), free_port());
    let mut vars = env(&pg.dsn(), public, admin);
    vars.push(("TESSERA__PERSISTENCE__WRITE_TIMEOUT".into(), "\"1s\"".into()));
    vars.push(("TESSERA__PERSISTENCE__RETRY_MAX_BACKOFF".into(), "\"200ms\"".into()));
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build().unwrap();
    let _server = serve(&vars, &http, admin).await;
    let admin_url = format!("http://127.0.0.1:{admin}");
    assert_eq!(register(&http, public, "outage@example.org").await, 200);
    let tokens: Vec<String> = {
        let mut t = Vec::new();
        for _ in 0..3 {
            t.push(login(&http, public, "outage@example.org").await["session_token"].as_str().unwrap().to_string());
        }
        t
    };
    let whoami = |token: String| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{public}/sessions/whoami"))
                .header("X-Session-Token", token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let create = |email: String| {
        let (http, admin_url) = (http.clone(), admin_url.clone());
        async move {
            let res = http
                .post(format!("{admin_url}/admin/identities"))
                .json(&serde_json::json!({"schema_id": "default", "traits": {"email": email}}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry_after = res.headers().get("retry-after").is_some();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, retry_after, body)
        }
    };
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let (status, _, body) = create(format!("before-{n}@example.org")).await;
        assert_eq!(status, 201, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_string());
    }
    for t in &tokens {
        assert_eq!(whoami(t.clone()).await, 200);
    }

    pg.down();
    // Under load during the outage: every live session answers from memory; every write
    // answers 503 (with Retry-After, in the envelope) within the write timeout and slack.
    for round in 0..3 {
        let sessions = futures_util::future::join_all(tokens.iter().cloned().map(whoami)).await;
        assert!(sessions.iter().all(|s| *s == 200), "round {round}: {sessions:?}");
        let start = std::time::Instant::now();
        let (status, retry_after, body) = create(format!("during-{round}@example.org")).await;
        assert_eq!((status, retry_after), (503, true), "{body}");
        assert_eq!(body["error"]["code"], 503, "{body}");
        assert!(start.elapsed() < std::time::Duration::from_secs(8), "a write took {:?}", start.elapsed());
    }
    let ready = http.get(format!("{admin_url}/admin/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    pg.up();
    let start = std::time::Instant::now();
    loop {
        let ready = http.get(format!("{admin_url}/admin/health/ready")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "not ready again after the database returned");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Recovered: new writes commit, and every write acknowledged before is there.
    let (status, _, body) = create("after@example.org".into()).await;
    assert_eq!(status, 201, "{body}");
    for id in &acknowledged {
        let res = http.get(format!("{admin_url}/admin/identities/{id}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "acknowledged identity {id} is gone");
    }
    for t in &tokens {
        assert_eq!(whoami(t.clone()).await, 200);
    }
    assert_eq!(login(&http, public, "outage@example.org").await["session"]["active"], true);
}

// --- TLS to PostgreSQL ---

/// A CA, a server certificate it signed for `localhost`, and another CA.
fn tls_files() -> (String, String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "tessera test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server_params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let server = server_params.signed_by(&server_key, &ca).unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other_params.self_signed(&other_key).unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem(), other.pem())
}

/// Whether a pool built from `dsn` reaches the server.
async fn reaches(dsn: &str) -> Result<(), String> {
    let store = tessera::persistence::Store::connect(dsn).map_err(|e| e.to_string())?;
    store.ping().await.map_err(|e| e.to_string())
}

/// TLS to PostgreSQL with each `sslmode`, against a server the test starts with `ssl = on`,
/// certificates from a CA it generates, and only TLS connections allowed; then a whole server
/// (pool, migrations, LISTEN connection) over `verify-full`.
#[actix_web::test]
async fn postgres_over_tls_with_every_sslmode() {
    let (ca, cert, key, other_ca) = tls_files();
    let files: [(&str, &[u8]); 4] = [
        ("ca.crt", ca.as_bytes()),
        ("server.crt", cert.as_bytes()),
        ("server.key", key.as_bytes()),
        ("other-ca.crt", other_ca.as_bytes()),
    ];
    let settings = ["ssl=on", "ssl_cert_file={dir}/server.crt", "ssl_key_file={dir}/server.key"];
    let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n";
    let Some(pg) = crate::ownpg::OwnPostgres::start(&settings, &files, Some(hba)) else { return };
    let dir = pg.dir();
    let (ca_path, other_path) = (dir.join("ca.crt"), dir.join("other-ca.crt"));
    let at = |host: &str, query: String| format!("postgres://postgres@{host}:{}/postgres?{query}", pg.port);
    let ca_q = |mode: &str| format!("sslmode={mode}&sslrootcert={}", ca_path.display());

    // Plain connections are refused by the server; every TLS mode gets through as it should.
    assert!(reaches(&at("127.0.0.1", "sslmode=disable".into())).await.is_err(), "plain TCP was accepted");
    reaches(&at("127.0.0.1", "sslmode=prefer".into())).await.unwrap();
    reaches(&at("127.0.0.1", "sslmode=require".into())).await.unwrap();
    reaches(&at("127.0.0.1", ca_q("verify-ca"))).await.unwrap();
    reaches(&at("localhost", ca_q("verify-full"))).await.unwrap();
    // The certificate names localhost, not 127.0.0.1: only the chain is checked by verify-ca.
    let wrong_name = reaches(&at("127.0.0.1", ca_q("verify-full"))).await;
    assert!(wrong_name.is_err(), "verify-full accepted a certificate for another name");
    let untrusted = format!("sslmode=verify-ca&sslrootcert={}", other_path.display());
    assert!(reaches(&at("127.0.0.1", untrusted)).await.is_err(), "an untrusted CA was accepted");
    assert!(reaches(&at("localhost", "sslmode=verify-full".into())).await.is_err(), "a private CA is not a public one");
    // The CockroachDB spelling is the same driver.
    reaches(&format!("cockroach://postgres@localhost:{}/postgres?{}", pg.port, ca_q("verify-full"))).await.unwrap();

    // A whole server over verify-full: migrations, the pool and the LISTEN connection.
    let (public, admin) = (free_port(), free_port());
    let vars = env(&at("localhost", ca_q("verify-full")), public, admin);
    let http = reqwest::Client::new();
    let _server = serve(&vars, &http, admin).await;
    assert_eq!(register(&http, public, "tls@example.org").await, 200);
    assert_eq!(login(&http, public, "tls@example.org").await["session"]["active"], true);
    let check = tessera::persistence::Store::connect(&at("localhost", ca_q("verify-full"))).unwrap();
    let start = std::time::Instant::now();
    loop {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut pooled = check.get().await.unwrap();
        let tessera::persistence::Conn::Pg(c) = pooled.conn() else { unreachable!() };
        let listening: Row = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE s.ssl AND a.query ILIKE 'LISTEN%'",
            ),
            c,
        )
        .await
        .unwrap();
        if listening.n > 0 {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "no LISTEN connection over TLS");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
