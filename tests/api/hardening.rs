//! Hardening (issue 13): secrets are required and never echoed; what follows adds bounded
//! inputs, compare-and-set writes, abuse limits and the rest.

use crate::both_backends;
use crate::durability::{PASSWORD, env, free_port, login, register, serve};
use crate::harness::{Db, TestDb, bin};
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
