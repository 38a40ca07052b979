//! kill -9: every write the server acknowledged survives a crash of the process.

use crate::both_backends;
use crate::harness::{Db, TestDb, bin};
use std::time::{Duration, Instant};

pub use crate::harness::free_port;

pub fn env(dsn: &str, public: u16, admin: u16) -> Vec<(String, String)> {
    let schema =
        format!("file://{}/tests/fixtures/identity-schemas/all-strategies.schema.json", env!("CARGO_MANIFEST_DIR"));
    vec![
        ("DSN".into(), dsn.to_string()),
        ("TESSERA__SERVE__PUBLIC__PORT".into(), public.to_string()),
        ("TESSERA__SERVE__ADMIN__PORT".into(), admin.to_string()),
        ("TESSERA__IDENTITY__SCHEMAS".into(), format!("[{{ id = \"default\", url = \"{schema}\" }}]")),
        ("TESSERA__HASHERS__ARGON2__MEMORY".into(), "\"64KB\"".into()),
        ("TESSERA__HASHERS__ARGON2__PARALLELISM".into(), "1".into()),
        ("TESSERA__LOG__LEVEL".into(), "\"error\"".into()),
        ("TESSERA__SELFSERVICE__METHODS__PASSWORD__CONFIG__HAVEIBEENPWNED_ENABLED".into(), "false".into()),
        ("TESSERA__SECRETS__DEFAULT".into(), "[\"a-durable-secret-of-32-characters\"]".into()),
    ]
}

pub async fn serve(vars: &[(String, String)], http: &reqwest::Client, admin: u16) -> tokio::process::Child {
    // `TESSERA_TEST_STDERR=<file>` sends the server's log there.
    let stderr = match vars.iter().find(|(k, _)| k == "TESSERA_TEST_STDERR") {
        Some((_, path)) => std::process::Stdio::from(std::fs::File::create(path).unwrap()),
        None => std::process::Stdio::inherit(),
    };
    let child = tokio::process::Command::new(bin())
        .args(["serve", "--migrate"])
        .envs(vars.iter().filter(|(k, _)| k != "TESSERA_TEST_STDERR").cloned())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let url = format!("http://127.0.0.1:{admin}/admin/health/ready");
        if let Ok(res) = http.get(&url).send().await
            && res.status() == 200
        {
            return child;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn whoami(http: &reqwest::Client, public: u16, token: &str) -> u16 {
    http.get(format!("http://127.0.0.1:{public}/sessions/whoami"))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn login(http: &reqwest::Client, public: u16, email: &str) -> serde_json::Value {
    let flow: serde_json::Value = http
        .get(format!("http://127.0.0.1:{public}/self-service/login/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http
        .post(format!("http://127.0.0.1:{public}/self-service/login?flow={}", flow["id"].as_str().unwrap()))
        .json(&serde_json::json!({"method": "password", "identifier": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn register(http: &reqwest::Client, public: u16, email: &str) -> u16 {
    let flow: serde_json::Value = http
        .get(format!("http://127.0.0.1:{public}/self-service/registration/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("http://127.0.0.1:{public}/self-service/registration?flow={}", flow["id"].as_str().unwrap()))
        .json(&serde_json::json!({"method": "password", "traits": {"email": email}, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub const PASSWORD: &str = "kill-nine-survivor-7";

async fn acknowledged_writes_survive_kill_9(db: Db) {
    let test_db = TestDb::new(db).await;
    let (public, admin) = (free_port(), free_port());
    let vars = env(&test_db.dsn, public, admin);
    let http = reqwest::Client::new();
    let mut child = serve(&vars, &http, admin).await;
    // Sign-ups and sign-ins over the self-service API: each acknowledged session is durable.
    assert_eq!(register(&http, public, "owner@example.org").await, 200);
    let mut sessions: Vec<(String, String)> = Vec::new();
    for _ in 0..10 {
        let body = login(&http, public, "owner@example.org").await;
        sessions.push((
            body["session"]["id"].as_str().unwrap().to_string(),
            body["session_token"].as_str().unwrap().to_string(),
        ));
    }
    for (_, token) in &sessions {
        assert_eq!(whoami(&http, public, token).await, 200);
    }
    // Acknowledged revocations (self-service logout and admin), identity creations and
    // registrations; then kill -9 right after the last acknowledgement.
    for (_, token) in &sessions[..3] {
        let res = http
            .delete(format!("http://127.0.0.1:{public}/self-service/logout/api"))
            .json(&serde_json::json!({"session_token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    for (id, _) in &sessions[3..5] {
        let res = http.delete(format!("http://127.0.0.1:{admin}/admin/sessions/{id}")).send().await.unwrap();
        assert_eq!(res.status(), 204);
    }
    let mut created = Vec::new();
    for n in 0..5 {
        let res = http
            .post(format!("http://127.0.0.1:{admin}/admin/identities"))
            .json(&serde_json::json!({"traits": {"email": format!("k{n}@example.org")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        created.push(res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    for n in 0..3 {
        assert_eq!(register(&http, public, &format!("signup{n}@example.org")).await, 200);
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let mut child = serve(&vars, &http, admin).await;
    for (n, (_, token)) in sessions.iter().enumerate() {
        let expected = if n < 5 { 401 } else { 200 };
        assert_eq!(whoami(&http, public, token).await, expected, "session {n} after kill -9");
    }
    for id in &created {
        let res = http.get(format!("http://127.0.0.1:{admin}/admin/identities/{id}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "acknowledged identity {id} was lost");
    }
    for n in 0..3 {
        login(&http, public, &format!("signup{n}@example.org")).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
both_backends!(acknowledged_writes_survive_kill_9);
