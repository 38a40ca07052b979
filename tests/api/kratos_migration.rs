//! `tessera migrate from-kratos`: a Kratos database built with upstream's own migrations
//! (`tests/fixtures/kratos/migrations/`, Ory Kratos v26.2.0's SQL files, concatenated), filled
//! with rows written here, moved into tessera; users stay signed in with their Kratos session
//! tokens and sign in with their Kratos password hashes.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use crate::selfservice::api_login;
use diesel::connection::SimpleConnection as _;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::Method;
use serde_json::{Value, json};

const IDENTITY: &str = "5a1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c01";
const NID: &str = "0f4c3a2b-1d2e-4f5a-8b9c-0d1e2f3a4b5c";
const LIVE_TOKEN: &str = "ory_st_KratosLiveSessionToken0000001";
const COOKIE_SECRET: &str = "kratos-cookie-secret-0123456789";
const KRATOS_BCRYPT_123456: &str = "$2a$04$ujIuzPKuqVFjxOj0jyaKouVA./Yyb/9dXsyVAK29fimgVTD0GRhde";

/// The rows a Kratos deployment would have: one identity with a password, an e-mail that is
/// verified and a recovery address; a live session (with a device), an expired and a revoked one.
fn rows() -> String {
    let traits = json!({"email": "kratos-user@example.org"}).to_string();
    let password = json!({"hashed_password": KRATOS_BCRYPT_123456}).to_string();
    let totp = json!({"totp_url": "otpauth://totp/Kratos:kratos-user@example.org?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Kratos"}).to_string();
    let amr = json!([{"method": "password", "aal": "aal1", "completed_at": "2026-12-01T10:00:00Z"}]).to_string();
    let t = "'2026-12-01 10:00:00'";
    format!(
        "INSERT INTO networks (id, created_at, updated_at) VALUES ('{NID}', {t}, {t});
         INSERT INTO identities (id, nid, schema_id, traits, state, metadata_public, metadata_admin, external_id, available_aal, created_at, updated_at)
           VALUES ('{IDENTITY}', '{NID}', 'default', '{traits}', 'active', '{{\"plan\": \"pro\"}}', '{{\"crm\": 7}}', 'ext-kratos-1', 'aal1', {t}, {t});
         INSERT INTO identity_credentials (id, nid, identity_id, identity_credential_type_id, config, version, created_at, updated_at)
           VALUES ('6b1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c02', '{NID}', '{IDENTITY}',
                   (SELECT id FROM identity_credential_types WHERE name = 'password'), '{password}', 0, {t}, {t}),
                  ('6b1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c03', '{NID}', '{IDENTITY}',
                   (SELECT id FROM identity_credential_types WHERE name = 'totp'), '{totp}', 0, {t}, {t});
         INSERT INTO identity_credential_identifiers (id, nid, identity_id, identity_credential_id, identity_credential_type_id, identifier, created_at, updated_at)
           VALUES ('7c1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c04', '{NID}', '{IDENTITY}', '6b1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c02',
                   (SELECT id FROM identity_credential_types WHERE name = 'password'), 'kratos-user@example.org', {t}, {t}),
                  ('7c1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c05', '{NID}', '{IDENTITY}', '6b1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c03',
                   (SELECT id FROM identity_credential_types WHERE name = 'totp'), '{IDENTITY}', {t}, {t});
         INSERT INTO identity_verifiable_addresses (id, nid, identity_id, status, via, verified, value, verified_at, created_at, updated_at)
           VALUES ('8d1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c06', '{NID}', '{IDENTITY}', 'completed', 'email', TRUE, 'kratos-user@example.org', {t}, {t}, {t});
         INSERT INTO identity_recovery_addresses (id, nid, identity_id, via, value, created_at, updated_at)
           VALUES ('9e1c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c07', '{NID}', '{IDENTITY}', 'email', 'kratos-user@example.org', {t}, {t});
         INSERT INTO sessions (id, nid, identity_id, token, logout_token, active, aal, authentication_methods, authenticated_at, issued_at, expires_at, created_at, updated_at)
           VALUES ('a01c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c08', '{NID}', '{IDENTITY}', '{LIVE_TOKEN}', 'ory_lo_KratosLogoutToken000000000001', TRUE, 'aal1', '{amr}', {t}, {t}, '2099-01-01 00:00:00', {t}, {t}),
                  ('a01c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c09', '{NID}', '{IDENTITY}', 'ory_st_KratosExpiredSessionToken0001', 'ory_lo_e', TRUE, 'aal1', '{amr}', {t}, {t}, '2020-01-01 00:00:00', {t}, {t}),
                  ('a01c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c0a', '{NID}', '{IDENTITY}', 'ory_st_KratosRevokedSessionToken0001', 'ory_lo_r', FALSE, 'aal1', '{amr}', {t}, {t}, '2099-01-01 00:00:00', {t}, {t});
         INSERT INTO session_devices (id, nid, session_id, identity_id, ip_address, user_agent, location, created_at, updated_at)
           VALUES ('b11c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c0b', '{NID}', 'a01c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c08', '{IDENTITY}', '198.51.100.7', 'KratosBrowser/1.0', 'Berlin, DE', {t}, {t});"
    )
}

/// A Kratos database of `db`'s kind with upstream's schema and [`rows`]; its DSN, and (for
/// PostgreSQL) the database to drop.
async fn kratos_database(db: Db, dir: &std::path::Path) -> (String, Option<(String, String)>) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kratos/migrations");
    match db {
        Db::Sqlite => {
            let path = dir.join("kratos.sqlite");
            let mut conn = <diesel::SqliteConnection as diesel::Connection>::establish(path.to_str().unwrap()).unwrap();
            conn.batch_execute(&std::fs::read_to_string(format!("{fixtures}/sqlite.sql")).unwrap()).unwrap();
            conn.batch_execute(&rows()).unwrap();
            (format!("sqlite://{}?_fk=true", path.display()), None)
        }
        Db::Postgres => {
            let base = std::env::var("DATABASE_URL").unwrap();
            let name = format!("kratos_{}", uuid::Uuid::new_v4().simple());
            let mut admin = AsyncPgConnection::establish(&base).await.unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            let mut url = url::Url::parse(&base).unwrap();
            url.set_path(&format!("/{name}"));
            url.set_query(None);
            let dsn = format!("{url}?sslmode=disable");
            let mut conn = AsyncPgConnection::establish(url.as_str()).await.unwrap();
            conn.batch_execute(&std::fs::read_to_string(format!("{fixtures}/postgres.sql")).unwrap()).await.unwrap();
            conn.batch_execute(&rows()).await.unwrap();
            (dsn, Some((base, name)))
        }
    }
}

async fn drop_database(base: &str, name: &str) {
    if let Ok(mut admin) = AsyncPgConnection::establish(base).await {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

fn from_kratos(target: &str, source: &str) -> (bool, String, String) {
    let out = std::process::Command::new(crate::harness::bin())
        .args(["migrate", "from-kratos", "--source-dsn", source, "--batch-size", "2"])
        .env("DSN", target)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn migrate_from_kratos(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (source, drop) = kratos_database(db, dir.path()).await;
    // The identity has a TOTP credential: whoami asks only for aal1 here.
    let t = TestApp::builder(db)
        .config(|c| {
            c.session.whoami.required_aal = "aal1".into();
            // The secret Kratos signed its session cookies with.
            c.secrets.cookie = vec![COOKIE_SECRET.into()];
        })
        .build()
        .await;
    let target = t.app().state().config.dsn.clone().unwrap();

    let (ok, out, err) = from_kratos(&target, &source);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.trim(),
        "identities: 1 copied, 0 already present, 0 failed; sessions: 1 copied, 2 skipped, 0 failed",
        "{err}"
    );
    // Signed in still, with the token Kratos issued.
    let res =
        t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", LIVE_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let session: Value = res.json().await.unwrap();
    assert_eq!(session["id"], "a01c7b1e-2f0e-4c44-9a5b-0b0e6a1d2c08");
    assert_eq!(session["identity"]["id"], IDENTITY);
    assert_eq!(session["authentication_methods"][0]["method"], "password");
    assert_eq!(session["devices"][0]["ip_address"], "198.51.100.7");
    assert_eq!(session["devices"][0]["location"], "Berlin, DE");
    // A browser holding Kratos' own cookie (gorilla securecookie) stays signed in, and gets
    // tessera's cookie in its place; a cookie signed with another secret is refused.
    let kratos_cookie = |secret: &str| {
        let out = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/kratos_cookie.py"))
            .args([secret, "ory_kratos_session", LIVE_TOKEN])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let res = t
        .http
        .get(format!("{}/sessions/whoami", t.public))
        .header("Cookie", format!("ory_kratos_session={}", kratos_cookie(COOKIE_SECRET)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let reissued = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ory_kratos_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .expect("tessera's cookie replaces Kratos'");
    let res = t.http.get(format!("{}/sessions/whoami", t.public)).header("Cookie", reissued).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["identity"]["id"], IDENTITY);
    let res = t
        .http
        .get(format!("{}/sessions/whoami", t.public))
        .header("Cookie", format!("ory_kratos_session={}", kratos_cookie("another-secret-0123456789abcdef")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for gone in ["ory_st_KratosExpiredSessionToken0001", "ory_st_KratosRevokedSessionToken0001"] {
        let res =
            t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", gone).send().await.unwrap();
        assert_eq!(res.status(), 401, "{gone}");
    }
    // The identity as it was: addresses, metadata, external id, every credential.
    let (status, _, identity) = t
        .admin_json(
            Method::GET,
            &format!("/admin/identities/{IDENTITY}?include_credential=password&include_credential=totp"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{identity}");
    assert_eq!(identity["traits"]["email"], "kratos-user@example.org");
    assert_eq!(identity["metadata_public"], json!({"plan": "pro"}));
    assert_eq!(identity["metadata_admin"], json!({"crm": 7}));
    assert_eq!(identity["external_id"], "ext-kratos-1");
    assert_eq!(identity["verifiable_addresses"][0]["verified"], true);
    assert_eq!(identity["verifiable_addresses"][0]["status"], "completed");
    assert_eq!(identity["recovery_addresses"][0]["value"], "kratos-user@example.org");
    assert_eq!(identity["credentials"]["password"]["identifiers"], json!(["kratos-user@example.org"]));
    assert_eq!(identity["credentials"]["password"]["config"]["hashed_password"], KRATOS_BCRYPT_123456);
    assert!(identity["credentials"]["totp"]["config"]["totp_url"].as_str().unwrap().starts_with("otpauth://"));
    // The Kratos hash signs in (and is re-hashed to tessera's algorithm on the way).
    let (status, body) = api_login(&t, "kratos-user@example.org", "123456").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = api_login(&t, "kratos-user@example.org", "1234567").await;
    assert_eq!(status, 400);

    // Run again: nothing is copied twice, nothing fails.
    let (ok, out, err) = from_kratos(&target, &source);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.trim(),
        "identities: 0 copied, 1 already present, 0 failed; sessions: 0 copied, 3 skipped, 0 failed"
    );
    // A source that is not there: a clear error, exit 1.
    let (ok, _, err) = from_kratos(&target, "sqlite:///nonexistent/dir/kratos.sqlite");
    assert!(!ok);
    assert!(!err.trim().is_empty());
    if let Some((base, name)) = drop {
        drop_database(&base, &name).await;
    }
}
both_backends!(migrate_from_kratos);
