//! Health, version, the error envelope, admin routing and admin API keys.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use serde_json::{Value, json};

async fn alive_ready_version(db: Db) {
    let t = TestApp::new(db).await;
    for base in [&t.public, &t.admin] {
        for path in ["/health/alive", "/health/ready"] {
            let res = t.get(&format!("{base}{path}")).await;
            assert_eq!(res.status(), 200, "{base}{path}");
            assert_eq!(res.headers()["cache-control"], "private, no-cache, no-store, must-revalidate");
            assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
        }
    }
    // the admin server serves everything under /admin and prefixes bare paths
    for path in ["/admin/version", "/version"] {
        let res = t.get(&format!("{}{path}", t.admin)).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"version": env!("CARGO_PKG_VERSION")}));
    }
    let res = t.get(&format!("{}/admin/health/alive", t.admin)).await;
    assert_eq!(res.status(), 200);
    // the public server has no version route
    assert_eq!(t.get(&format!("{}/version", t.public)).await.status(), 404);
}
both_backends!(alive_ready_version);

/// `/admin/health/config`: the configuration's `revision`, else a digest of the loaded keys.
async fn config_revision_or_digest(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| {
            c.digest =
                tessera::config::load(None, vec![("SERVE_PUBLIC_PORT".into(), "1".into())]).unwrap().config.digest
        })
        .build()
        .await;
    let res = t.get(&format!("{}/admin/health/config", t.admin)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    let digest = res.text().await.unwrap();
    assert_eq!(digest.len(), 64, "{digest}");
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    let plain = tessera::config::load(None, Vec::new()).unwrap().config.digest;
    assert_ne!(digest, plain, "another configuration, another digest");
    let t = TestApp::builder(db).config(|c| c.revision = Some("2026-12-03.1".into())).build().await;
    let res = t.get(&format!("{}/admin/health/config", t.admin)).await;
    assert_eq!(res.text().await.unwrap(), "2026-12-03.1");
    assert_eq!(t.get(&format!("{}/health/config", t.public)).await.status(), 404, "admin only");
}
both_backends!(config_revision_or_digest);

async fn not_ready_until_migrated(db: Db) {
    let t = TestApp::builder(db).no_migrations().build().await;
    let res = t.get(&format!("{}/health/ready", t.admin)).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    let msg = body["errors"]["migrations"].as_str().unwrap_or_else(|| panic!("{}", body.to_string()));
    assert!(msg.starts_with("migrations have not yet been fully applied"), "{body}");
    // the public server hides the real message
    let res = t.get(&format!("{}/health/ready", t.public)).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"errors": {"migrations": "error may contain sensitive information and was obfuscated"}}));
    // alive does not look at the database
    assert_eq!(t.get(&format!("{}/health/alive", t.public)).await.status(), 200);

    t.app().state().store.migrate().await.unwrap();
    assert_eq!(t.get(&format!("{}/health/ready", t.public)).await.status(), 200);
}
both_backends!(not_ready_until_migrated);

async fn not_ready_when_database_is_down(db: Db) {
    let dsn = match db {
        Db::Sqlite => "sqlite:///nonexistent-dir/tessera/x.sqlite".to_string(),
        Db::Postgres => "postgres://nobody@127.0.0.1:1/none?connect_timeout=1".to_string(),
    };
    let t = TestApp::builder(db).no_migrations().config(move |c| c.dsn = Some(dsn)).build().await;
    let res = t.get(&format!("{}/health/ready", t.admin)).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"]["database"].is_string(), "{body}");
}
both_backends!(not_ready_when_database_is_down);

async fn error_envelope(db: Db) {
    let t = TestApp::new(db).await;
    for base in [&t.public, &t.admin] {
        let res = t.get(&format!("{base}/no/such/route")).await;
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["ory-error-id"], "");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 404);
        assert_eq!(body["error"]["status"], "Not Found");
        assert_eq!(body["error"]["message"], "The requested resource could not be found");

        let res = t.http.post(format!("{base}/health/alive")).send().await.unwrap();
        assert_eq!(res.status(), 405);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 405);
        assert_eq!(body["error"]["status"], "Method Not Allowed");
    }
}
both_backends!(error_envelope);

async fn admin_api_keys(db: Db) {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"s3cret-admin-key"));
    let t = TestApp::builder(db).config(move |c| c.serve.admin.api_keys = vec![digest]).build().await;
    let res = t.get(&format!("{}/admin/version", t.admin)).await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    let res = t.http.get(format!("{}/admin/version", t.admin)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = t.http.get(format!("{}/admin/version", t.admin)).bearer_auth("s3cret-admin-key").send().await.unwrap();
    assert_eq!(res.status(), 200);
    // health stays open for probes
    assert_eq!(t.get(&format!("{}/health/ready", t.admin)).await.status(), 200);
}
both_backends!(admin_api_keys);
