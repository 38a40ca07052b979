//! Passwordless code logins/s end to end — flow creation, the identifier submit, delivery of
//! the code over SMTP to a loopback server (aiosmtpd, `tests/peers/smtp_peer.py`), reading the
//! code from the delivered mail, the code submit — against password logins/s with argon2id
//! defaults (128 MB), in one run on the same server. Target: code logins are not slower.
//! PostgreSQL when DATABASE_URL is set, else SQLite: `cargo bench --bench code_login`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tessera::app::{App, BuildOptions};
use tessera::config::{self, SchemaSource};
use tokio::io::AsyncBufReadExt;

const N: usize = 48;
const PASSWORD: &str = "bench-password-for-login-1";

async fn rate<F, Fut>(n: usize, concurrency: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures_util::stream::iter(0..n).map(&f).buffer_unordered(concurrency).collect::<Vec<()>>().await;
    n as f64 / start.elapsed().as_secs_f64()
}

async fn api_json(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.header("Accept", "application/json").send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// The code of the first mail to `to` in the peer's mailbox (JSON lines), waited for.
async fn code_for(mailbox: &std::path::Path, to: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(mailbox).unwrap_or_default();
        let found = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|m| m["to"][0] == to);
        if let Some(mail) = found {
            let body = mail["text"].as_str().unwrap().to_string();
            return body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no mail to {to}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = dir.path().join("mail.jsonl");
    let mut peer = tokio::process::Command::new("python3")
        .arg("tests/peers/smtp_peer.py")
        .arg(&mailbox)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(peer.stdout.take().unwrap()).lines();
    let port: u16 = lines.next_line().await.unwrap().unwrap().strip_prefix("PORT ").unwrap().parse().unwrap();
    let (dsn, backend, _schema) = common::database("bcode", dir.path()).await;
    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn);
    cfg.dev = true;
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    // Outside --dev the server needs configured secrets.
    cfg.secrets.default = vec!["bench-secret-0123456789abcdef".into()];
    cfg.selfservice.methods.password.config.haveibeenpwned_enabled = false;
    cfg.selfservice.methods.code.passwordless_enabled = true;
    cfg.security.send_limits.enabled = false;
    cfg.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
    let schema = format!("file://{}/config/identity.schema.json", env!("CARGO_MANIFEST_DIR"));
    cfg.identity.schemas = vec![SchemaSource { id: "default".into(), url: schema, selfservice_selectable: true }];
    let argon2_mib = cfg.hashers.argon2.memory.0 >> 20;
    let app = App::build(cfg, BuildOptions { migrate: true, workers: Some(2), clock: None }).await.unwrap();
    let (public, admin) = (app.public_url(), app.admin_url());
    let http = reqwest::Client::new();
    let concurrency = 8;

    // Accounts with a password and a code address (the schema's e-mail).
    futures_util::stream::iter(0..N)
        .for_each_concurrent(concurrency, |n| {
            let (http, admin) = (http.clone(), admin.clone());
            async move {
                let body = json!({"schema_id": "default", "traits": {"email": format!("user{n}@example.org")},
                                  "credentials": {"password": {"config": {"password": PASSWORD}}}});
                let (status, created) = api_json(http.post(format!("{admin}/admin/identities")).json(&body)).await;
                assert_eq!(status, 201, "{created}");
            }
        })
        .await;

    let password_logins = rate(N, concurrency, |n| {
        let (http, public) = (http.clone(), public.clone());
        async move {
            let (_, flow) = api_json(http.get(format!("{public}/self-service/login/api"))).await;
            let url = format!("{public}/self-service/login?flow={}", flow["id"].as_str().unwrap());
            let body =
                json!({"method": "password", "identifier": format!("user{n}@example.org"), "password": PASSWORD});
            let (status, done) = api_json(http.post(url).json(&body)).await;
            assert_eq!(status, 200, "{done}");
        }
    })
    .await;

    let mailbox_ref = &mailbox;
    let code_logins = rate(N, concurrency, |n| {
        let (http, public) = (http.clone(), public.clone());
        async move {
            let email = format!("user{n}@example.org");
            let (_, flow) = api_json(http.get(format!("{public}/self-service/login/api"))).await;
            let url = format!("{public}/self-service/login?flow={}", flow["id"].as_str().unwrap());
            let (status, sent) = api_json(http.post(&url).json(&json!({"method": "code", "identifier": email}))).await;
            assert_eq!(status, 400, "{sent}");
            let code = code_for(mailbox_ref, &email).await;
            let (status, done) =
                api_json(http.post(&url).json(&json!({"method": "code", "identifier": email, "code": code}))).await;
            assert_eq!(status, 200, "{done}");
        }
    })
    .await;

    println!(
        "backend: {backend}, argon2id {argon2_mib} MiB, SMTP peer: aiosmtpd on loopback, {N} logins each, concurrency {concurrency}"
    );
    println!("password logins: {password_logins:>7.2}/s");
    println!(
        "code logins:     {code_logins:>7.2}/s   ratio {:.2} to password logins (target >= 1.0; delivery included)",
        code_logins / password_logins
    );
    app.stop().await;
    let _ = peer.start_kill();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
