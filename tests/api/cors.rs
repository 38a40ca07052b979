//! CORS on the public port (`serve.public.cors`, behaviour.md §1.4): preflights answered with
//! the configured methods and headers, allowed origins echoed with credentials, wildcard
//! origins as upstream, other origins (and a server without CORS) get no CORS headers.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::{Jar, PASSWORD, csrf_of};
use reqwest::Method;
use serde_json::{Value, json};

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

async fn spa_on_another_origin(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            c.serve.public.cors.enabled = true;
            c.serve.public.cors.allowed_origins = vec!["https://*.spa.example".into(), "http://localhost:3000".into()];
        })
        .build()
        .await;
    let origin = "https://app.spa.example";
    // The preflight of a credentialed whoami with the session-token header.
    let res = t
        .http
        .request(Method::OPTIONS, format!("{}/sessions/whoami", t.public))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-session-token")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some(origin));
    assert_eq!(header(&res, "access-control-allow-credentials").as_deref(), Some("true"));
    assert!(header(&res, "access-control-allow-methods").unwrap().contains("GET"));
    assert!(header(&res, "access-control-allow-headers").unwrap().to_lowercase().contains("x-session-token"));
    assert!(header(&res, "access-control-max-age").is_none(), "max_age 0 sends none");

    // A password login from the SPA, cookies and all: every answer carries the CORS headers.
    let (status, _, _) = t
        .admin_json(
            Method::POST,
            "/admin/identities",
            Some(json!({"schema_id": "default", "traits": {"email": "spa@example.org"},
                "credentials": {"password": {"config": {"password": PASSWORD}}}})),
        )
        .await;
    assert_eq!(status, 201);
    let mut jar = Jar::default();
    let res = jar
        .send(
            t.http
                .get(format!("{}/self-service/login/browser", t.public))
                .header("Origin", origin)
                .header("Accept", "application/json"),
        )
        .await;
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some(origin));
    assert_eq!(
        header(&res, "access-control-expose-headers").map(|h| h.to_lowercase()).as_deref(),
        Some("content-type")
    );
    assert!(header(&res, "vary").unwrap_or_default().to_lowercase().contains("origin"));
    let flow: Value = res.json().await.unwrap();
    let res = jar
        .send(
            t.http
                .post(format!("{}/self-service/login?flow={}", t.public, flow["id"].as_str().unwrap()))
                .header("Origin", origin)
                .header("Accept", "application/json")
                .json(&json!({"method": "password", "identifier": "spa@example.org", "password": PASSWORD,
                    "csrf_token": csrf_of(&flow)})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-credentials").as_deref(), Some("true"));
    let res = jar.send(t.http.get(format!("{}/sessions/whoami", t.public)).header("Origin", origin)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some(origin));

    // Another origin: answered, but without CORS headers (the browser keeps it from the page).
    let res =
        t.http.get(format!("{}/health/alive", t.public)).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "access-control-allow-origin").is_none());
    let res = t
        .http
        .request(Method::OPTIONS, format!("{}/sessions/whoami", t.public))
        .header("Origin", "https://spa.example.evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "access-control-allow-origin").is_none());
    let res = t
        .http
        .get(format!("{}/health/alive", t.public))
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("http://localhost:3000"));
}
both_backends!(spa_on_another_origin);

async fn no_cors_unless_enabled(db: Db) {
    let t = TestApp::new(db).await;
    let res = t
        .http
        .get(format!("{}/health/alive", t.public))
        .header("Origin", "https://app.spa.example")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "access-control-allow-origin").is_none());
    // The admin port never answers cross-origin requests (Kratos has no admin CORS).
    let res = t
        .http
        .get(format!("{}/admin/health/alive", t.admin))
        .header("Origin", "https://app.spa.example")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "access-control-allow-origin").is_none());
}
both_backends!(no_cors_unless_enabled);
