//! Password logins/s against raw verifications/s, and registrations/s against raw hashes/s,
//! with the same hasher parameters and pool size, in one run; and the requests and store
//! connection checkouts of one browser login; and aal2 logins (password, then TOTP) against
//! password logins. Default argon2id parameters (128 MB).
//! PostgreSQL when DATABASE_URL is set, else SQLite: `cargo bench --bench login`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Instant;
use tessera::app::{App, BuildOptions};
use tessera::config::{self, SchemaSource};
use tessera::hash::HashPool;

const N: usize = 48;
const SENDS: usize = 200;
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

async fn api_json(http: &reqwest::Client, req: reqwest::RequestBuilder) -> (u16, Value) {
    let _ = http;
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// The current code of a base32 TOTP secret.
fn totp_code(secret: &str) -> String {
    let key =
        totp_rs::Builder::new().with_secret(totp_rs::Secret::try_from_base32(secret).unwrap()).build_noncompliant();
    key.generate_current().to_string()
}

/// A password login over the API; returns the session token.
async fn password_login(http: &reqwest::Client, public: &str, n: usize) -> String {
    let (_, flow) = api_json(http, http.get(format!("{public}/self-service/login/api"))).await;
    let (status, body) = api_json(
        http,
        http.post(format!("{public}/self-service/login?flow={}", flow["id"].as_str().unwrap()))
            .json(&json!({"method": "password", "identifier": format!("user{n}@example.org"), "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["session_token"].as_str().unwrap().to_string()
}

/// Enrols TOTP for the signed-in user; returns the secret.
async fn enrol_totp(http: &reqwest::Client, public: &str, token: &str) -> String {
    let (_, flow) =
        api_json(http, http.get(format!("{public}/self-service/settings/api")).header("X-Session-Token", token)).await;
    let secret = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["id"] == "totp_secret_key")
        .unwrap()["attributes"]["text"]["context"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = api_json(
        http,
        http.post(format!("{public}/self-service/settings?flow={}", flow["id"].as_str().unwrap()))
            .header("X-Session-Token", token)
            .json(&json!({"method": "totp", "totp_code": totp_code(&secret)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    secret
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let (dsn, backend, _schema) = common::database("blogin", dir.path()).await;
    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn);
    cfg.dev = true;
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    // Outside --dev the server needs configured secrets.
    cfg.secrets.default = vec!["bench-secret-0123456789abcdef".into()];
    cfg.selfservice.methods.password.config.haveibeenpwned_enabled = false;
    cfg.selfservice.flows.recovery.enabled = true;
    cfg.security.send_limits.enabled = false;
    cfg.courier.worker.enabled = false;
    cfg.selfservice.methods.totp.enabled = true;
    let schema = format!("file://{}/config/identity.schema.json", env!("CARGO_MANIFEST_DIR"));
    cfg.identity.schemas = vec![SchemaSource { id: "default".into(), url: schema, selfservice_selectable: true }];
    let hashers = cfg.hashers.clone();
    let app = App::build(cfg, BuildOptions { migrate: true, workers: Some(2), clock: None }).await.unwrap();
    let public = app.public_url();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let raw = HashPool::new(&hashers).unwrap();
    let workers = raw.workers();
    let concurrency = workers * 4;

    // Baseline: raw hashes on a pool of the same size.
    let raw_hash = rate(N, concurrency, |_| {
        let raw = raw.clone();
        async move {
            raw.hash(PASSWORD.as_bytes().to_vec()).await.unwrap();
        }
    })
    .await;
    // Registrations: flow creation + submit, over HTTP.
    let registrations = rate(N, concurrency, |n| {
        let (http, public) = (http.clone(), public.clone());
        async move {
            let (_, flow) = api_json(&http, http.get(format!("{public}/self-service/registration/api"))).await;
            let (status, body) = api_json(
                &http,
                http.post(format!("{public}/self-service/registration?flow={}", flow["id"].as_str().unwrap())).json(
                    &json!({"method": "password", "traits": {"email": format!("user{n}@example.org")}, "password": PASSWORD}),
                ),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    })
    .await;
    // Baseline: raw verifications of the same kind of hash.
    let stored = raw.hash(PASSWORD.as_bytes().to_vec()).await.unwrap();
    let raw_verify = rate(N, concurrency, |_| {
        let (raw, stored) = (raw.clone(), stored.clone());
        async move {
            assert!(raw.verify(PASSWORD.as_bytes().to_vec(), stored).await.unwrap());
        }
    })
    .await;
    // Logins: flow creation + submit, over HTTP.
    let logins = rate(N, concurrency, |n| {
        let (http, public) = (http.clone(), public.clone());
        async move {
            let (_, flow) = api_json(&http, http.get(format!("{public}/self-service/login/api"))).await;
            let (status, body) = api_json(
                &http,
                http.post(format!("{public}/self-service/login?flow={}", flow["id"].as_str().unwrap())).json(
                    &json!({"method": "password", "identifier": format!("user{n}@example.org"), "password": PASSWORD}),
                ),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    })
    .await;

    // aal2 logins: the same password login, then the TOTP step (flow creation + submit).
    let mut secrets = Vec::with_capacity(N);
    for n in 0..N {
        let token = password_login(&http, &public, n).await;
        secrets.push(enrol_totp(&http, &public, &token).await);
    }
    let secrets = std::sync::Arc::new(secrets);
    let mfa_logins = rate(N, concurrency, |n| {
        let (http, public, secrets) = (http.clone(), public.clone(), secrets.clone());
        async move {
            let token = password_login(&http, &public, n).await;
            let (_, flow) = api_json(
                &http,
                http.get(format!("{public}/self-service/login/api?aal=aal2")).header("X-Session-Token", &token),
            )
            .await;
            let (status, body) = api_json(
                &http,
                http.post(format!("{public}/self-service/login?flow={}", flow["id"].as_str().unwrap()))
                    .header("X-Session-Token", &token)
                    .json(&json!({"method": "totp", "totp_code": totp_code(&secrets[n])})),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
        }
    })
    .await;

    // One browser login: requests and store connection checkouts.
    let store = app.state().store.clone();
    let before = store.checkouts();
    let flow_reads = app.state().selfservice.flows.store_reads();
    let res = http.get(format!("{public}/self-service/login/browser")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let id = res.headers()["location"].to_str().unwrap().split("flow=").nth(1).unwrap().to_string();
    let res = http
        .get(format!("{public}/self-service/login/flows?id={id}"))
        .header("Cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    let flow: Value = res.json().await.unwrap();
    let csrf = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "csrf_token")
        .unwrap()["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let res = http
        .post(format!("{public}/self-service/login?flow={id}"))
        .header("Cookie", cookies.join("; "))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("identifier", "user0@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let checkouts = store.checkouts() - before;
    let flow_loads = app.state().selfservice.flows.store_reads() - flow_reads;

    // Recovery sends: the answer's latency for known and unknown addresses, in a shuffled
    // order (the message to a known address is queued after the answer, so what precedes a
    // request must not depend on its kind).
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for n in 0..2 * SENDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let is_known = if known.len() == SENDS {
            false
        } else if unknown.len() == SENDS {
            true
        } else {
            seed & 1 == 0
        };
        let email = if is_known { format!("user{}@example.org", n % N) } else { format!("ghost{n}@example.org") };
        let (_, flow) = api_json(&http, http.get(format!("{public}/self-service/recovery/api"))).await;
        let req = http
            .post(format!("{public}/self-service/recovery?flow={}", flow["id"].as_str().unwrap()))
            .json(&json!({"method": "code", "email": email}));
        let start = Instant::now();
        let (status, body) = api_json(&http, req).await;
        let took = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(status, 200, "{body}");
        if is_known { known.push(took) } else { unknown.push(took) }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));

    println!(
        "backend: {backend}, argon2id {} MiB, hash pool {workers} workers, {N} operations each, concurrency {concurrency}",
        hashers.argon2.memory.0 >> 20
    );
    println!("raw hashes:        {raw_hash:>7.2}/s");
    println!("registrations:     {registrations:>7.2}/s   ratio {:.2} (target >= 0.85)", registrations / raw_hash);
    println!("raw verifications: {raw_verify:>7.2}/s");
    println!("password logins:   {logins:>7.2}/s   ratio {:.2} (target >= 0.9)", logins / raw_verify);
    println!(
        "aal2 logins:       {mfa_logins:>7.2}/s   ratio {:.2} to password logins (target >= 0.91: TOTP adds <= 10 %)",
        mfa_logins / logins
    );
    println!(
        "browser login: 3 requests (init 303, fetch flow, submit 303); {checkouts} store connection checkouts, {flow_loads} flow loads from the store"
    );
    println!(
        "recovery sends ({SENDS} each): median known {known:.2} ms, unknown {unknown:.2} ms   ratio {:.2} (target 0.9..1.1)",
        known / unknown
    );
    app.stop().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
