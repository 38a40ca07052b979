//! `GET /admin/metrics/prometheus`: Kratos' HTTP families (names, labels, buckets) and
//! tessera's own, parsed by the official Prometheus Python client's text parser
//! (`tests/peers/prom_parse.py`).

use crate::both_backends;
use crate::harness::{Db, TestApp, cannot_run};
use crate::selfservice::{api_flow, api_login, api_submit};
use crate::sessions::{issue, new_identity};
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::{Command, Stdio};

const PARSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/prom_parse.py");

/// The families of a scrape, as the Prometheus client parsed them.
fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new("python3").arg(PARSER).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "the scrape does not parse: {stdout}\n{text}");
    serde_json::from_str::<Value>(&stdout).unwrap().as_array().unwrap().clone()
}

/// Samples named `name` whose labels include `labels`.
fn samples<'a>(families: &'a [Value], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Value> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap().iter())
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .collect()
}

fn value(families: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(families, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]["value"].as_f64().unwrap()
}

async fn scrape(t: &TestApp) -> (String, Vec<Value>) {
    let res = t.http.get(format!("{}/admin/metrics/prometheus", t.admin)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    (content_type, parse(&text))
}

async fn prometheus_metrics(db: Db) {
    if !Command::new("python3").args(["-c", "import prometheus_client"]).status().is_ok_and(|s| s.success()) {
        cannot_run("python3 with prometheus_client (pip install prometheus-client)");
        return;
    }
    let t = TestApp::builder(db)
        .config(|c| {
            c.security.brute_force.max_failures_per_identifier = 2;
            c.selfservice.flows.recovery.enabled = true;
        })
        .build()
        .await;
    let identity = new_identity(&t, "metrics@example.org").await;
    let (_, token) = issue(&t, &identity).await;
    for _ in 0..3 {
        let res = t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", &token).send().await;
        assert_eq!(res.unwrap().status(), 200);
    }
    let (status, _, _) = t.admin_json(reqwest::Method::GET, &format!("/admin/identities/{}", identity.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(t.get(&format!("{}/no/such/route", t.public)).await.status(), 404);
    // Wrong passwords until the identifier is locked.
    for _ in 0..3 {
        let (status, _) = api_login(&t, "metrics@example.org", "not-the-password").await;
        assert_eq!(status, 400);
    }
    // A recovery code is queued for the courier.
    let flow = api_flow(&t, "recovery", "").await;
    let (status, body) =
        api_submit(&t, "recovery", &flow, json!({"method": "code", "email": "metrics@example.org"})).await;
    assert_eq!(status, 200, "{body}");
    // The message is queued after the answer (the flow's outbox): wait for it.
    let started = std::time::Instant::now();
    let (content_type, families) = loop {
        let (content_type, families) = scrape(&t).await;
        let queued = [("channel", "email"), ("status", "queued")];
        if !samples(&families, "tessera_courier_messages_total", &queued).is_empty()
            || started.elapsed() > std::time::Duration::from_secs(10)
        {
            break (content_type, families);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    // Kratos' HTTP families: route patterns with {param}, lower-case methods, build labels.
    let kratos = [("app", "kratos"), ("version", env!("CARGO_PKG_VERSION")), ("hash", "undefined")];
    let whoami = [("code", "200"), ("method", "get"), ("endpoint", "/sessions/whoami")];
    assert_eq!(value(&families, "http_requests_total", &[&kratos[..], &whoami[..]].concat()), 3.0);
    let admin_get = [("code", "200"), ("method", "get"), ("endpoint", "/admin/identities/{param}")];
    assert_eq!(value(&families, "http_requests_total", &admin_get), 1.0);
    assert!(samples(&families, "http_requests_total", &[("endpoint", "/no/such/route")]).is_empty());
    assert_eq!(value(&families, "http_requests_duration_seconds_count", &whoami), 3.0);
    let buckets: Vec<String> = samples(&families, "http_requests_duration_seconds_bucket", &whoami)
        .iter()
        .map(|s| s["labels"]["le"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        buckets,
        ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"],
        "as Go prints them"
    );
    assert_eq!(value(&families, "http_response_time_seconds_count", &[("endpoint", "/sessions/whoami")]), 3.0);
    assert!(value(&families, "http_response_size_bytes_sum", &[("code", "200"), ("method", "get")]) > 100.0);
    assert!(value(&families, "http_requests_size_bytes_count", &[("code", "400"), ("method", "post")]) >= 3.0);
    assert!(value(&families, "http_requests_statuses_total", &[("method", "GET"), ("status_bucket", "2xx")]) >= 4.0);
    assert!(value(&families, "http_requests_statuses_total", &[("method", "POST"), ("status_bucket", "4xx")]) >= 3.0);

    // tessera's own.
    assert!(value(&families, "tessera_live_actors", &[("registry", "session")]) >= 1.0);
    assert!(value(&families, "tessera_live_actors", &[("registry", "flow")]) >= 1.0);
    assert!(value(&families, "tessera_registry_activations_total", &[("registry", "flow")]) >= 0.0);
    assert_eq!(value(&families, "tessera_registry_evictions_total", &[("registry", "session")]), 0.0);
    assert!(value(&families, "tessera_persister_transactions_total", &[]) >= 1.0);
    // Present (its value depends on what the courier wrote since the flush).
    assert!(value(&families, "tessera_persister_queue_depth", &[]).is_finite());
    assert!(value(&families, "tessera_persister_batch_size_count", &[]) >= 1.0);
    assert!(value(&families, "tessera_persister_commit_seconds_count", &[]) >= 1.0);
    // One hash at creation, three wrong passwords verified until the lock-out, then none.
    assert!(value(&families, "tessera_hash_jobs_total", &[]) >= 3.0);
    assert!(value(&families, "tessera_hash_queue_wait_seconds_count", &[]) >= 3.0);
    assert_eq!(value(&families, "tessera_hash_in_flight", &[]), 0.0);
    assert_eq!(value(&families, "tessera_brute_force_lockouts_total", &[("kind", "password")]), 1.0);
    assert_eq!(value(&families, "tessera_courier_messages_total", &[("channel", "email"), ("status", "queued")]), 1.0);

    // The counters move with the traffic.
    let res = t.http.get(format!("{}/sessions/whoami", t.public)).header("X-Session-Token", &token).send().await;
    assert_eq!(res.unwrap().status(), 200);
    let (_, again) = scrape(&t).await;
    assert_eq!(value(&again, "http_requests_total", &whoami), 4.0);
    assert!(value(&again, "http_requests_total", &[("endpoint", "/admin/metrics/prometheus")]) >= 1.0);
}
both_backends!(prometheus_metrics);
