//! Sessions: whoami, the caller's sessions, the admin session API, activation, passivation,
//! invalidation across instances.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tessera::identity::Identity;
use tessera::session::{Aal, AuthMethod, Device};

fn password_method() -> AuthMethod {
    AuthMethod {
        method: "password".into(),
        aal: Some(Aal::Aal1),
        completed_at: tessera::clock::Clock::system().now(),
        provider: None,
        organization: None,
    }
}

pub async fn new_identity(t: &TestApp, email: &str) -> Identity {
    let (status, _, created) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({"traits": {"email": email}, "credentials": {"password": {"config": {"password": "secret-secret"}}}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    t.app().state().identities.get(created["id"].as_str().unwrap().parse().unwrap()).await.unwrap()
}

pub async fn issue(t: &TestApp, identity: &Identity) -> (tessera::session::Session, String) {
    let device = Device {
        id: uuid::Uuid::new_v4(),
        ip_address: Some("192.0.2.1".into()),
        user_agent: Some("tests".into()),
        location: None,
        created_at: tessera::clock::Clock::system().now(),
    };
    t.app().state().sessions.issue(identity, vec![password_method()], Some(device)).await.unwrap()
}

async fn whoami(t: &TestApp, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let res =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", token).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

async fn whoami_variants(db: Db) {
    let t = TestApp::new(db).await;
    let identity = new_identity(&t, "who@example.org").await;
    let (session, token) = issue(&t, &identity).await;
    assert!(token.starts_with("ory_st_"));

    let (status, headers, body) = whoami(&t, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-kratos-authenticated-identity-id"].to_str().unwrap(), identity.id.to_string());
    assert_eq!(body["id"], json!(session.id));
    assert_eq!(body["active"], true);
    assert_eq!(body["authenticator_assurance_level"], "aal1");
    assert_eq!(body["authentication_methods"][0]["method"], "password");
    assert_eq!(body["authentication_methods"][0]["aal"], "aal1");
    assert_eq!(body["identity"]["id"], json!(identity.id));
    assert!(body["identity"].get("credentials").is_none(), "{body}");
    assert!(body["identity"].get("metadata_admin").is_none());
    assert_eq!(body["identity"]["verifiable_addresses"][0]["value"], "who@example.org");
    assert_eq!(body["devices"][0]["ip_address"], "192.0.2.1");
    assert!(body.get("token").is_none() && !body.to_string().contains(&token));

    // Bearer, any method, and the session cookie.
    let res = t.http.post(format!("{}/sessions/whoami", t.public)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookie = t.app().state().sessions.cookie_value(&token, session.expires_at).unwrap();
    assert!(!cookie.contains(&token[7..]), "the cookie must not carry the token in clear");
    let res = t
        .http
        .get(format!("{}/sessions/whoami", t.public))
        .header("Cookie", format!("ory_kratos_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // No or bad credentials: 401 in Kratos' shape.
    for req in [
        t.http.get(format!("{}/sessions/whoami", t.public)),
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", "ory_st_nope"),
        t.http.get(format!("{}/sessions/whoami", t.public)).header("Authorization", "Bearer"),
        t.http.get(format!("{}/sessions/whoami", t.public)).header("Cookie", "ory_kratos_session=forged"),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": 401, "status": "Unauthorized",
                "reason": "No active session was found in this request.",
                "message": "request does not have a valid authentication session"}})
        );
    }
    let res =
        t.http.get(format!("{}/sessions/whoami?tokenize_as=x", t.public)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // An inactive identity has no session.
    let (status, _, _) = t
        .admin_json(
            Method::PATCH,
            &format!("/admin/identities/{}", identity.id),
            Some(json!([{"op": "replace", "path": "/state", "value": "inactive"}])),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(whoami(&t, &token).await.0, 401);
}
both_backends!(whoami_variants);

/// 100 concurrent requests for a cold session: one store read; later ones none.
/// `feature_flags.cacheable_sessions`: whoami says how long its answer may be cached — until
/// the session expires, capped by `cacheable_sessions_max_age`; a request without any
/// credential may be cached a minute; a wrong credential is not cacheable. Off by default.
async fn cacheable_sessions(db: Db) {
    let t = TestApp::new(db).await;
    let identity = new_identity(&t, "plain@example.org").await;
    let (_, token) = issue(&t, &identity).await;
    let (status, headers, _) = whoami(&t, &token).await;
    assert_eq!(status, 200);
    assert!(headers.get("ory-session-cache-for").is_none());

    for (max_age, expected) in [(None, 24 * 3600), (Some(Duration::from_secs(90)), 90)] {
        let t = TestApp::builder(db)
            .config(move |c| {
                c.session.lifespan = tessera::config::Dur(Duration::from_secs(24 * 3600));
                c.feature_flags.cacheable_sessions = true;
                c.feature_flags.cacheable_sessions_max_age = max_age.map(tessera::config::Dur);
            })
            .build()
            .await;
        let identity = new_identity(&t, "cache@example.org").await;
        let (_, token) = issue(&t, &identity).await;
        let (status, headers, _) = whoami(&t, &token).await;
        assert_eq!(status, 200);
        let seconds: i64 = headers["ory-session-cache-for"].to_str().unwrap().parse().unwrap();
        assert!((expected - 5..=expected).contains(&seconds), "{seconds} for {max_age:?}");
        let res = t.http.get(format!("{}/sessions/whoami", t.public)).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["ory-session-cache-for"], "60", "no credentials at all");
        let (status, headers, _) = whoami(&t, "ory_st_not-a-real-token").await;
        assert_eq!(status, 401);
        assert!(headers.get("ory-session-cache-for").is_none(), "a wrong token is not cached");
    }
}
both_backends!(cacheable_sessions);

async fn single_flight_activation(db: Db) {
    let t = TestApp::new(db).await;
    let identity = new_identity(&t, "cold@example.org").await;
    let (_, token) = issue(&t, &identity).await;
    let registry = t.app().state().sessions.registry.clone();
    let store = t.app().state().store.clone();
    let before = registry.store_reads();
    let statements = store.statements();
    let requests = (0..100).map(|_| whoami(&t, &token));
    let results = futures_util::future::join_all(requests).await;
    assert!(results.iter().all(|(s, _, _)| *s == 200));
    assert_eq!(registry.store_reads() - before, 1);
    if matches!(db, Db::Postgres) {
        // One query for the session and its identity, plus the pool's liveness check of the
        // connection it checked out (`SELECT 1`).
        assert_eq!(store.statements() - statements, 2, "a cold session is one query on PostgreSQL");
    }
    assert_eq!(registry.live(), 1);
    for _ in 0..20 {
        assert_eq!(whoami(&t, &token).await.0, 200);
    }
    assert_eq!(registry.store_reads() - before, 1, "a live session answers from memory");
}
both_backends!(single_flight_activation);

async fn idle_sessions_are_passivated(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| c.actors.session.idle_timeout = tessera::config::Dur(Duration::from_millis(200)))
        .build()
        .await;
    let identity = new_identity(&t, "idle@example.org").await;
    let (_, token) = issue(&t, &identity).await;
    assert_eq!(whoami(&t, &token).await.0, 200);
    let registry = t.app().state().sessions.registry.clone();
    assert_eq!(registry.live(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while registry.live() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(registry.live(), 0);
    assert_eq!(whoami(&t, &token).await.0, 200, "a passivated session is activated again");
}
both_backends!(idle_sessions_are_passivated);

async fn aal2_required_when_available(db: Db) {
    let t = TestApp::new(db).await;
    let mut identity = new_identity(&t, "mfa@example.org").await;
    let now = tessera::clock::Clock::system().now();
    identity.credentials.insert(
        "totp".into(),
        tessera::identity::Credential {
            id: uuid::Uuid::new_v4(),
            kind: "totp".into(),
            identifiers: vec![identity.id.to_string()],
            config: json!({"totp_url": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"}),
            version: 0,
            created_at: now,
            updated_at: now,
        },
    );
    let state = t.app().state();
    state
        .persister
        .write(
            tessera::persistence::WriteOp::UpsertIdentity(Box::new(identity.clone())),
            tessera::persistence::Durability::Durable,
        )
        .await
        .unwrap();
    let (_, token) = issue(&t, &identity).await;
    let (status, headers, body) = whoami(&t, &token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["ory-error-id"], "session_aal2_required");
    assert_eq!(body["error"]["id"], "session_aal2_required");
    assert_eq!(body["redirect_browser_to"], format!("{}/self-service/login/browser?aal=aal2", t.public));
}
both_backends!(aal2_required_when_available);

async fn my_sessions(db: Db) {
    let t = TestApp::new(db).await;
    let identity = new_identity(&t, "mine@example.org").await;
    let other = new_identity(&t, "other@example.org").await;
    let (current, token) = issue(&t, &identity).await;
    let (second, second_token) = issue(&t, &identity).await;
    let (third, _) = issue(&t, &identity).await;
    let (foreign, foreign_token) = issue(&t, &other).await;

    let res = t.http.get(format!("{}/sessions", t.public)).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "2");
    let list: Vec<Value> = res.json().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&second.id.to_string().as_str()) && ids.contains(&third.id.to_string().as_str()));
    assert!(!ids.contains(&current.id.to_string().as_str()));
    assert_eq!(t.http.get(format!("{}/sessions", t.public)).send().await.unwrap().status(), 401);

    let del = |id: String| {
        t.http.delete(format!("{}/sessions/{id}", t.public)).header("X-Session-Token", token.clone()).send()
    };
    assert_eq!(del(current.id.to_string()).await.unwrap().status(), 400);
    assert_eq!(del("not-a-uuid".into()).await.unwrap().status(), 400);
    assert_eq!(del(uuid::Uuid::new_v4().to_string()).await.unwrap().status(), 204);
    assert_eq!(del(foreign.id.to_string()).await.unwrap().status(), 204);
    assert_eq!(whoami(&t, &foreign_token).await.0, 200, "another identity's session is untouched");
    assert_eq!(del(second.id.to_string()).await.unwrap().status(), 204);
    assert_eq!(whoami(&t, &second_token).await.0, 401);

    let res = t.http.delete(format!("{}/sessions", t.public)).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"count": 1}));
    assert_eq!(whoami(&t, &token).await.0, 200, "the current session stays");
    let res = t.http.get(format!("{}/sessions/token-exchange?init_code=a", t.public)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res =
        t.http.get(format!("{}/sessions/token-exchange?init_code=a&return_to_code=b", t.public)).send().await.unwrap();
    assert_eq!(res.status(), 404);
}
both_backends!(my_sessions);

async fn admin_sessions(db: Db) {
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db)
        .clock(clock.clone())
        .config(|c| c.session.earliest_possible_extend = Some(tessera::config::Dur(Duration::from_secs(3600))))
        .build()
        .await;
    let identity = new_identity(&t, "adm@example.org").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(issue(&t, &identity).await);
        clock.advance(chrono::Duration::seconds(1));
    }
    // Newest first, keyset pages of 2.
    let (status, headers, page) = t.admin_json(Method::GET, "/admin/sessions?page_size=2&expand=identity", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [made[2].0.id.to_string(), made[1].0.id.to_string()]);
    assert_eq!(page[0]["identity"]["id"], json!(identity.id));
    assert_eq!(page[0]["devices"], json!([]));
    let link = headers["link"].to_str().unwrap().to_string();
    let next = link.split(',').find(|l| l.ends_with("rel=\"next\"")).unwrap();
    let token = next.split("page_token=").nth(1).unwrap().split(['&', '>']).next().unwrap();
    let token = url::form_urlencoded::parse(format!("t={token}").as_bytes()).next().unwrap().1.into_owned();
    let (_, headers, page) =
        t.admin_json(Method::GET, &format!("/admin/sessions?page_size=2&page_token={}", urlencode(&token)), None).await;
    assert_eq!(page.as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page[0]["id"], json!(made[0].0.id));
    assert_eq!(page[0]["identity"], Value::Null);
    assert!(!headers["link"].to_str().unwrap().contains("rel=\"next\""));
    for bad in ["/admin/sessions?active=maybe", "/admin/sessions?expand=nothing", "/admin/sessions?page_token=zz"] {
        assert_eq!(t.admin_json(Method::GET, bad, None).await.0, 400, "{bad}");
    }

    let id = made[0].0.id;
    let (status, _, got) = t.admin_json(Method::GET, &format!("/admin/sessions/{id}?expand=devices"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["devices"][0]["user_agent"], "tests");
    assert_eq!(got["identity"], Value::Null);
    assert_eq!(t.admin_json(Method::GET, "/admin/sessions/nope", None).await.0, 400);
    assert_eq!(t.admin_json(Method::GET, &format!("/admin/sessions/{}", uuid::Uuid::new_v4()), None).await.0, 404);

    // Extend: only inside the window before expiry.
    let (status, _, extended) = t.admin_json(Method::PATCH, &format!("/admin/sessions/{id}/extend"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        extended["expires_at"],
        json!(made[0].0.expires_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
    clock.advance(chrono::Duration::hours(23) + chrono::Duration::minutes(30));
    let (_, _, extended) = t.admin_json(Method::PATCH, &format!("/admin/sessions/{id}/extend"), None).await;
    let new_expiry: chrono::DateTime<chrono::Utc> = extended["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(new_expiry, clock.now() + chrono::Duration::hours(24));
    assert_eq!(
        t.admin_json(Method::PATCH, &format!("/admin/sessions/{}/extend", uuid::Uuid::new_v4()), None).await.0,
        404
    );

    // Revoke, identity sessions, delete all.
    assert_eq!(t.admin_json(Method::DELETE, &format!("/admin/sessions/{id}"), None).await.0, 204);
    assert_eq!(whoami(&t, &made[0].1).await.0, 401);
    assert_eq!(t.admin_json(Method::DELETE, &format!("/admin/sessions/{}", uuid::Uuid::new_v4()), None).await.0, 404);
    let (status, headers, list) =
        t.admin_json(Method::GET, &format!("/admin/identities/{}/sessions?active=true", identity.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-total-count"], "2");
    assert_eq!(list[0]["identity"]["id"], json!(identity.id));
    let (_, _, list) =
        t.admin_json(Method::GET, &format!("/admin/identities/{}/sessions?active=false", identity.id), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        t.admin_json(Method::GET, &format!("/admin/identities/{}/sessions", uuid::Uuid::new_v4()), None).await.0,
        404
    );
    assert_eq!(t.admin_json(Method::DELETE, &format!("/admin/identities/{}/sessions", identity.id), None).await.0, 204);
    assert_eq!(whoami(&t, &made[1].1).await.0, 401);
    let (_, _, list) = t.admin_json(Method::GET, &format!("/admin/identities/{}/sessions", identity.id), None).await;
    assert_eq!(list, json!([]));
}
both_backends!(admin_sessions);

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Two servers on one database: a revocation on A is refused by B within a second.
#[actix_web::test]
async fn revocation_reaches_another_instance() {
    if std::env::var("DATABASE_URL").is_err() {
        crate::harness::cannot_run("DATABASE_URL is not set (test not run)");
        return;
    }
    let a = TestApp::new(Db::Postgres).await;
    let b = TestApp::builder(Db::Postgres).same_db_as(&a).no_migrations().build().await;
    let identity = new_identity(&a, "two@example.org").await;
    let (session, token) = issue(&a, &identity).await;
    assert_eq!(whoami(&b, &token).await.0, 200);
    assert_eq!(whoami(&a, &token).await.0, 200);
    assert_eq!(a.admin_json(Method::DELETE, &format!("/admin/sessions/{}", session.id), None).await.0, 204);
    let start = Instant::now();
    loop {
        let status = whoami(&b, &token).await.0;
        if status == 401 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "B still accepts a revoked session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("revocation seen by B after {:?}", start.elapsed());
}

/// Expired sessions are deleted by the janitor's pass.
async fn expired_sessions_are_cleaned_up(db: Db) {
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db).clock(clock.clone()).build().await;
    let identity = new_identity(&t, "old@example.org").await;
    let (old, _) = issue(&t, &identity).await;
    clock.advance(chrono::Duration::hours(25));
    let (fresh, _) = issue(&t, &identity).await;
    let state = t.app().state();
    let n = tessera::persistence::cleanup::delete_expired(&state.store, clock.now(), 1).await.unwrap();
    assert_eq!(n, 1);
    assert!(state.sessions.find(old.id).await.unwrap().is_none());
    assert!(state.sessions.find(fresh.id).await.unwrap().is_some());
}
both_backends!(expired_sessions_are_cleaned_up);

/// At most `actors.session.max_live` actors; a closed mailbox is re-activated from the store.
async fn live_cap_and_closed_mailboxes(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            c.actors.session.max_live = 2;
            c.actors.session.revalidate_interval = tessera::config::Dur(Duration::from_millis(20));
        })
        .build()
        .await;
    let identity = new_identity(&t, "cap@example.org").await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(issue(&t, &identity).await);
    }
    let registry = t.app().state().sessions.registry.clone();
    for (_, token) in &tokens {
        assert_eq!(whoami(&t, token).await.0, 200);
    }
    assert_eq!(registry.live(), 2, "the least recently used session was passivated");

    let (session, token) = &tokens[2];
    registry.stop_actor_keep_entry(session.id);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reads = registry.store_reads();
    assert_eq!(whoami(&t, token).await.0, 200, "a dead actor is replaced, not trusted");
    assert_eq!(registry.store_reads() - reads, 1);
}
both_backends!(live_cap_and_closed_mailboxes);

/// Cross-port redirects (307, query kept): identity routes on the public port go to the admin
/// server; the caller's own session routes on the admin port go to the public server.
async fn cross_port_redirects(db: Db) {
    let t = TestApp::new(db).await;
    let admin = t.admin.trim_end_matches('/');
    let public = t.public.trim_end_matches('/');
    let id = uuid::Uuid::new_v4();
    for (method, url, expected) in [
        (Method::GET, format!("{public}/identities?page_size=1"), format!("{admin}/admin/identities?page_size=1")),
        (Method::GET, format!("{public}/admin/identities/{id}"), format!("{admin}/admin/identities/{id}")),
        (
            Method::DELETE,
            format!("{public}/identities/{id}/sessions"),
            format!("{admin}/admin/identities/{id}/sessions"),
        ),
        (Method::GET, format!("{admin}/admin/sessions/whoami?x=1"), format!("{public}/sessions/whoami?x=1")),
        (Method::DELETE, format!("{admin}/admin/sessions"), format!("{public}/sessions")),
    ] {
        let res = t.http.request(method, &url).send().await.unwrap();
        assert_eq!(res.status(), 307, "{url}");
        assert_eq!(res.headers()["location"].to_str().unwrap(), expected, "{url}");
    }
}
both_backends!(cross_port_redirects);

/// An identity change drops exactly that identity's live sessions, found through the
/// identity → sessions index, and the index follows sessions as they leave.
async fn identity_changes_drop_only_its_sessions(db: Db) {
    let t = TestApp::new(db).await;
    let (a, b) = (new_identity(&t, "a@example.org").await, new_identity(&t, "b@example.org").await);
    let tokens_a = [issue(&t, &a).await.1, issue(&t, &a).await.1];
    let (session_b, token_b) = issue(&t, &b).await;
    for token in tokens_a.iter().chain([&token_b]) {
        assert_eq!(whoami(&t, token).await.0, 200);
    }
    let registry = t.app().state().sessions.registry.clone();
    assert_eq!((registry.live(), registry.live_identities()), (3, 2));
    let (status, _, body) = t
        .admin_json(
            Method::PATCH,
            &format!("/admin/identities/{}", a.id),
            Some(json!([{"op": "replace", "path": "/traits/email", "value": "a2@example.org"}])),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((registry.live(), registry.live_identities()), (1, 1), "only b's session is still live");
    // The next use reloads: the new traits are seen at once.
    let (status, _, body) = whoami(&t, &tokens_a[0]).await;
    assert_eq!((status, body["identity"]["traits"]["email"].as_str()), (200, Some("a2@example.org")));
    // A revoked session leaves both indexes.
    assert_eq!(t.admin_json(Method::DELETE, &format!("/admin/sessions/{}", session_b.id), None).await.0, 204);
    assert_eq!((registry.live(), registry.live_identities()), (1, 1));
    assert_eq!(whoami(&t, &token_b).await.0, 401);
}
both_backends!(identity_changes_drop_only_its_sessions);
