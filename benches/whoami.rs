//! `GET /sessions/whoami` on a live session vs `GET /health/alive` on the same server, same
//! client, concurrency 64, one run; store reads per whoami; a cold session's store reads;
//! RSS per live session actor over 100k sessions that each answered a whoami.
//! PostgreSQL when DATABASE_URL is set, else SQLite: `cargo bench --bench whoami`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::app::{App, BuildOptions};
use tessera::config::{self, SchemaSource};
use tessera::session::{Aal, AuthMethod};

const CONCURRENCY: usize = 64;
const SECONDS: u64 = 8;
const LIVE_SESSIONS: usize = 100_000;

struct Load {
    rps: f64,
    p50: Duration,
    p99: Duration,
    non_200: usize,
}

async fn load(http: &reqwest::Client, url: &str, token: Option<&str>) -> Load {
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let start = Instant::now();
    let tasks = (0..CONCURRENCY).map(|_| {
        let (http, url, token) = (http.clone(), url.to_string(), token.map(str::to_string));
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut bad = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut req = http.get(&url);
                if let Some(tok) = &token {
                    req = req.header("X-Session-Token", tok);
                }
                let res = req.send().await.unwrap();
                let ok = res.status() == 200;
                let _ = res.bytes().await.unwrap();
                lat.push(t.elapsed());
                bad += usize::from(!ok);
            }
            (lat, bad)
        })
    });
    let mut all = Vec::new();
    let mut non_200 = 0;
    for r in futures_util::future::join_all(tasks).await {
        let (lat, bad) = r.unwrap();
        all.extend(lat);
        non_200 += bad;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    Load { rps: all.len() as f64 / elapsed, p50: all[all.len() / 2], p99: all[all.len() * 99 / 100], non_200 }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let (dsn, backend, db_schema) = common::database("bwhoami", dir.path()).await;
    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn);
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    // Outside --dev the server needs configured secrets.
    cfg.secrets.default = vec!["bench-secret-0123456789abcdef".into()];
    cfg.hashers.argon2.memory = config::ByteSize(64 << 10);
    cfg.hashers.argon2.parallelism = 1;
    let schema = format!("file://{}/config/identity.schema.json", env!("CARGO_MANIFEST_DIR"));
    cfg.identity.schemas = vec![SchemaSource { id: "default".into(), url: schema, selfservice_selectable: true }];
    let app = App::build(cfg, BuildOptions { migrate: true, workers: Some(2), clock: None }).await.unwrap();
    let state = app.state();
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();

    let body = serde_json::json!({"traits": {"email": "bench@example.org"}});
    let res = http.post(format!("{}/admin/identities", app.admin_url())).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let id: uuid::Uuid = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    let identity = state.identities.get(id).await.unwrap();
    let method = || AuthMethod {
        method: "password".into(),
        aal: Some(Aal::Aal1),
        completed_at: tessera::clock::Clock::system().now(),
        provider: None,
        organization: None,
    };
    let (_, token) = state.sessions.issue(&identity, vec![method()], None).await.unwrap();
    let registry = state.sessions.registry.clone();

    // Cold session: store reads for its first request.
    let reads = registry.store_reads();
    let statements = state.store.statements();
    let whoami_url = format!("{}/sessions/whoami", app.public_url());
    let res = http.get(&whoami_url).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cold_reads = registry.store_reads() - reads;
    let cold_statements = state.store.statements() - statements;

    let alive = load(&http, &format!("{}/health/alive", app.public_url()), None).await;
    let reads = registry.store_reads();
    let whoami = load(&http, &whoami_url, Some(&token)).await;
    let whoami_reads = registry.store_reads() - reads;

    println!("backend: {backend}, concurrency {CONCURRENCY}, {SECONDS} s per endpoint, same server and client");
    println!(
        "GET /health/alive:            {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        alive.rps,
        alive.p50.as_secs_f64() * 1e3,
        alive.p99.as_secs_f64() * 1e3
    );
    println!(
        "GET /sessions/whoami (live):  {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  non-200: {}",
        whoami.rps,
        whoami.p50.as_secs_f64() * 1e3,
        whoami.p99.as_secs_f64() * 1e3,
        whoami.non_200
    );
    println!("ratio whoami / alive: {:.2}", whoami.rps / alive.rps);
    println!(
        "store reads: {whoami_reads} activations during the whoami run (revalidation reads are 1/s by design); cold session: {cold_reads} activation, {cold_statements} SQL statements (incl. the pool's connection check)"
    );

    // Memory per live session actor.
    let tokens: Arc<Vec<String>> = Arc::new(
        futures_util::stream::iter(0..LIVE_SESSIONS)
            .map(|_| {
                let (state, identity) = (state, &identity);
                async move { state.sessions.issue(identity, vec![method()], None).await.unwrap().1 }
            })
            .buffer_unordered(512)
            .collect()
            .await,
    );
    let before_live = registry.live();
    let rss_before = rss_kib();
    // Each session answers one whoami over HTTP, so it holds what a used session holds (its
    // snapshot and its rendered whoami JSON).
    futures_util::stream::iter(tokens.iter())
        .for_each_concurrent(64, |t| {
            let (http, url) = (http.clone(), whoami_url.clone());
            async move {
                let res = http.get(&url).header("X-Session-Token", t).send().await.unwrap();
                assert_eq!(res.status(), 200);
                let _ = res.bytes().await.unwrap();
            }
        })
        .await;
    let rss_after = rss_kib();
    let live = registry.live() - before_live;
    println!(
        "memory: {live} live sessions added, RSS +{} KiB = {:.2} KiB per live session",
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 / live as f64
    );

    app.stop().await;
    if let Some(schema) = db_schema {
        let base = std::env::var("DATABASE_URL").unwrap();
        let mut c = AsyncPgConnection::establish(&base).await.unwrap();
        let _ = diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut c).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
