//! `GET /schemas` and `GET /schemas/{id}`.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use base64::Engine;
use serde_json::Value;

async fn list_and_get(db: Db) {
    let t = TestApp::new(db).await;
    let res = t.get(&format!("{}/schemas", t.public)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "3");
    let first = "eyJvZmZzZXQiOiIwIiwidiI6Mn0"; // {"offset":"0","v":2}
    assert_eq!(
        res.headers()["link"].to_str().unwrap(),
        format!("</schemas?page=0&page_size=3&page_token={first}&per_page=3>; rel=\"first\"")
    );
    let body: Vec<Value> = res.json().await.unwrap();
    let ids: Vec<&str> = body.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["default", "phone", "multi"]);
    assert_eq!(body[0]["schema"]["properties"]["traits"]["type"], "object");

    // page 1 of size 2: the last page
    let res = t.get(&format!("{}/schemas?page=1&per_page=2", t.public)).await;
    assert_eq!(
        res.headers()["link"].to_str().unwrap(),
        format!(
            "</schemas?page=0&page_size=2&page_token={first}&per_page=2>; rel=\"first\",\
             </schemas?page=0&page_size=2&page_token={first}&per_page=2>; rel=\"prev\""
        )
    );
    let body: Vec<Value> = res.json().await.unwrap();
    assert_eq!(body.len(), 1);
    assert_eq!(body[0]["id"], "multi");

    // first of several pages: next and last; token form
    let res = t.get(&format!("{}/schemas?page_size=2", t.public)).await;
    let link = res.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"last\"") && !link.contains("rel=\"first\""),
        "{link}"
    );
    let body: Vec<Value> = res.json().await.unwrap();
    assert_eq!(body.len(), 2);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"offset":"2","v":2}"#);
    let body: Vec<Value> =
        t.get(&format!("{}/schemas?page_size=2&page_token={token}", t.public)).await.json().await.unwrap();
    assert_eq!(body.len(), 1);
    // nonsense is clamped, never refused
    let res = t.get(&format!("{}/schemas?page=-3&per_page=abc&foo=bar", t.public)).await;
    assert_eq!(res.status(), 200);

    // by id, raw or base64url
    let res = t.get(&format!("{}/schemas/phone", t.public)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["properties"]["traits"]["properties"]["phone"].is_object());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("multi");
    let res = t.get(&format!("{}/schemas/{encoded}", t.public)).await;
    assert_eq!(res.status(), 200);
    // also under /admin on the public port
    assert_eq!(t.get(&format!("{}/admin/schemas/phone", t.public)).await.status(), 200);

    let res = t.get(&format!("{}/schemas/nope", t.public)).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "Identity schema `nope` could not be found.");
}
both_backends!(list_and_get);

async fn admin_redirects_to_public(db: Db) {
    let t = TestApp::new(db).await;
    for (path, target) in [("/admin/schemas?page=0", "/schemas?page=0"), ("/schemas/phone", "/schemas/phone")] {
        let res = t.get(&format!("{}{path}", t.admin)).await;
        assert_eq!(res.status(), 307, "{path}");
        let location = res.headers()["location"].to_str().unwrap();
        assert_eq!(location, format!("http://127.0.0.1:{}{target}", t.public.rsplit(':').next().unwrap()));
    }
}
both_backends!(admin_redirects_to_public);

/// A schema served over HTTP by a separate server process (python's http.server).
async fn loads_schema_over_http(db: Db) {
    let port = crate::harness::free_port();
    let dir = format!("{}/tests/fixtures/identity-schemas", env!("CARGO_MANIFEST_DIR"));
    let mut server = std::process::Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory", &dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 is needed for this test");
    let url = format!("http://127.0.0.1:{port}/spa-totp.schema.json");
    let probe = reqwest::Client::new();
    for _ in 0..100 {
        if probe.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let schema_url = url.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            c.identity.schemas.push(tessera::config::SchemaSource {
                id: "remote".into(),
                url: schema_url,
                selfservice_selectable: false,
            })
        })
        .build()
        .await;
    let _ = server.kill();
    let _ = server.wait();
    let res = t.get(&format!("{}/schemas/remote", t.public)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["properties"]["traits"]["properties"]["email"].is_object());
    // schema properties keep their order (UI nodes follow it)
    let keys: Vec<&String> = body["properties"]["traits"]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("email"));
}
both_backends!(loads_schema_over_http);
