//! Messages/s delivered to a loopback SMTP server (aiosmtpd, `tests/peers/smtp_peer.py`) with
//! the rate limit off, and the achieved/limit ratio with a limit, in one run.
//! PostgreSQL when DATABASE_URL is set, else SQLite: `cargo bench --bench courier`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tessera::app::{App, BuildOptions};
use tessera::config::{self, RateLimit, SchemaSource};
use tessera::courier::{MessageType, NewMessage};
use tokio::io::AsyncBufReadExt;

const UNLIMITED: usize = 3000;
const LIMITED: usize = 600;
const LIMIT: u32 = 200;
const WORKERS: usize = 64;

fn count(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

/// Delivered messages per second: end to end (enqueue included), and between the first and the
/// last delivery (the rate the limiter holds once messages flow).
async fn run_once(dsn: &str, port: u16, mailbox: &std::path::Path, n: usize, limit: Option<u32>) -> (f64, f64) {
    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn.to_string());
    cfg.dev = true;
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    // Outside --dev the server needs configured secrets.
    cfg.secrets.default = vec!["bench-secret-0123456789abcdef".into()];
    let schema = format!("file://{}/config/identity.schema.json", env!("CARGO_MANIFEST_DIR"));
    cfg.identity.schemas = vec![SchemaSource { id: "default".into(), url: schema, selfservice_selectable: true }];
    cfg.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
    cfg.courier.pool.workers = WORKERS;
    cfg.courier.worker.pull_count = 100;
    if let Some(l) = limit {
        cfg.courier.pool.rate_limits.insert("email".into(), RateLimit { per_second: l, burst: Some(1) });
    }
    let app = App::build(cfg, BuildOptions { migrate: true, workers: Some(1), clock: None }).await.unwrap();
    let courier = app.state().courier.clone();
    let before = count(mailbox);
    let start = Instant::now();
    futures_util::stream::iter(0..n)
        .for_each_concurrent(256, |i| {
            let courier = courier.clone();
            async move {
                courier
                    .enqueue(NewMessage {
                        kind: MessageType::Email,
                        channel: "email".into(),
                        recipient: format!("bench{i}@example.org"),
                        subject: "Your code".into(),
                        body: format!("Your code is {:06}.", i % 1_000_000),
                        template_type: "verification_code_valid".into(),
                        template_data: serde_json::json!({}),
                    })
                    .await
                    .unwrap();
            }
        })
        .await;
    let enqueued = start.elapsed();
    let mut first = None;
    loop {
        let delivered = count(mailbox) - before;
        if delivered >= 1 && first.is_none() {
            first = Some(Instant::now());
        }
        if delivered >= n {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "delivery stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let steady = first.map_or(rate, |f| (n - 1) as f64 / f.elapsed().as_secs_f64());
    println!(
        "  {n} messages: enqueued in {:.2} s, all delivered after {:.2} s",
        enqueued.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    app.stop().await;
    (rate, steady)
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = dir.path().join("mail.jsonl");
    let mut peer = tokio::process::Command::new("python3")
        .arg("tests/peers/smtp_peer.py")
        .arg(&mailbox)
        // Only count messages: decoding their MIME parts would make the peer the bottleneck.
        .env("SMTP_PEER_PARSE", "0")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(peer.stdout.take().unwrap()).lines();
    let port: u16 = lines.next_line().await.unwrap().unwrap().strip_prefix("PORT ").unwrap().parse().unwrap();
    let (dsn, backend, _schema) = common::database("bcourier", dir.path()).await;
    let (unlimited, _) = run_once(&dsn, port, &mailbox, UNLIMITED, None).await;
    let (limited, steady) = run_once(&dsn, port, &mailbox, LIMITED, Some(LIMIT)).await;
    println!("backend: {backend}, SMTP peer: aiosmtpd on loopback, {WORKERS} delivery workers");
    println!(
        "rate limit off: {UNLIMITED} messages, {unlimited:.0} messages/s delivered (enqueue included; target >= 1000)"
    );
    println!(
        "rate limit {LIMIT}/s: {LIMITED} messages, {limited:.1} messages/s end to end (achieved/limit {:.3}); \
         {steady:.1} messages/s from the first delivery to the last (achieved/limit {:.3})",
        limited / LIMIT as f64,
        steady / LIMIT as f64
    );
    let _ = peer.start_kill();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
