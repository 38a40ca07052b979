//! kill -9: every write the server acknowledged survives a crash of the process.

use crate::both_backends;
use crate::harness::{Db, TestDb, bin, identity};
use std::time::{Duration, Instant};
use tessera::persistence::{Store, identity as identity_rows, session as session_rows};
use tessera::session::{Aal, AuthMethod, Session};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn env(dsn: &str, public: u16, admin: u16) -> Vec<(String, String)> {
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
    ]
}

async fn serve(vars: &[(String, String)], http: &reqwest::Client, admin: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(bin())
        .args(["serve", "--migrate"])
        .envs(vars.iter().cloned())
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

async fn acknowledged_writes_survive_kill_9(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = Store::connect(&test_db.dsn).unwrap();
    store.migrate().await.unwrap();
    // Sessions made outside the server (the login flow is not there yet): ten of them.
    let owner = identity("owner@example.org");
    let now = tessera::clock::Clock::system().now();
    let mut sessions: Vec<(Session, String)> = Vec::new();
    {
        let mut pooled = store.get().await.unwrap();
        let mut conn = pooled.conn();
        identity_rows::upsert(&mut conn, &owner).await.unwrap();
        for _ in 0..10 {
            let method = AuthMethod {
                method: "password".into(),
                aal: Some(Aal::Aal1),
                completed_at: now,
                provider: None,
                organization: None,
            };
            let (s, token, _) = Session::issue(owner.id, vec![method], None, now, chrono::Duration::hours(1));
            session_rows::upsert_many(&mut conn, &[&s]).await.unwrap();
            sessions.push((s, token));
        }
    }
    let (public, admin) = (free_port(), free_port());
    let vars = env(&test_db.dsn, public, admin);
    let http = reqwest::Client::new();
    let mut child = serve(&vars, &http, admin).await;
    for (_, token) in &sessions {
        assert_eq!(whoami(&http, public, token).await, 200);
    }
    // Acknowledged revocations and identity creations, then kill -9 right after the last ack.
    for (s, _) in &sessions[..5] {
        let res = http.delete(format!("http://127.0.0.1:{admin}/admin/sessions/{}", s.id)).send().await.unwrap();
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
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
both_backends!(acknowledged_writes_survive_kill_9);
