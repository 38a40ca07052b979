//! Provider callbacks handled per second — tessera's whole way back from an OpenID Connect
//! provider: state and continuity check, the code exchange at the provider's token endpoint,
//! ID-token verification against the provider's keys, the identity lookup and the session
//! issued — against the provider's own token endpoint rate (code exchanges/s done directly),
//! measured in the same run as the baseline. The provider is npm `oidc-provider` on loopback
//! (`tests/sdk/peers/oidc-provider.mjs`; `npm ci` in tests/sdk first). Codes are obtained
//! before the clock starts. PostgreSQL when DATABASE_URL is set, else SQLite:
//! `cargo bench --bench oidc_callback`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tessera::app::{App, BuildOptions};
use tessera::config::{self, HookConfig, OidcProvider, SchemaSource};
use tokio::io::AsyncBufReadExt;

const N: usize = 200;
const CONCURRENCY: usize = 8;
const MAPPER: &str = "local c = std.extVar('claims'); { identity: { traits: { email: c.email } } }";

/// Cookies by name (every server here is 127.0.0.1, where browsers share cookies).
#[derive(Clone, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, http: &reqwest::Client, url: &str) -> reqwest::Response {
        let res = http.get(url).header("Cookie", self.header()).send().await.unwrap();
        self.absorb(&res);
        res
    }

    fn absorb(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let first = v.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = first.split_once('=') {
                self.0.insert(k.trim().into(), v.trim().into());
            }
        }
    }
}

fn location(base: &str, res: &reqwest::Response) -> String {
    let to = res.headers().get("location").unwrap().to_str().unwrap();
    url::Url::parse(base).unwrap().join(to).unwrap().to_string()
}

/// Follows redirects from `url` until one starts with `until`.
async fn follow(http: &reqwest::Client, jar: &mut Jar, mut url: String, until: &str) -> String {
    for _ in 0..12 {
        if url.starts_with(until) {
            return url;
        }
        let res = jar.get(http, &url).await;
        assert!(res.status().is_redirection(), "{url}: {}", res.status());
        url = location(&url, &res);
    }
    panic!("never reached {until}");
}

async fn rate<F, Fut>(n: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures_util::stream::iter(0..n).map(&f).buffer_unordered(CONCURRENCY).collect::<Vec<()>>().await;
    n as f64 / start.elapsed().as_secs_f64()
}

async fn run() {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    assert!(sdk.join("node_modules/oidc-provider").exists(), "run `npm ci` in tests/sdk first");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let peer_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let callback = format!("http://127.0.0.1:{port}/self-service/methods/oidc/callback/op");
    let mut peer = tokio::process::Command::new("node")
        .arg("peers/oidc-provider.mjs")
        .arg(peer_port.to_string())
        .arg(&callback)
        .current_dir(&sdk)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(peer.stdout.take().unwrap()).lines();
    let issuer = lines.next_line().await.unwrap().unwrap().strip_prefix("ready ").unwrap().trim().to_string();

    let dir = tempfile::tempdir().unwrap();
    let (dsn, backend, _schema) = common::database("boidc", dir.path()).await;
    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn);
    cfg.dev = true;
    cfg.serve.public.host = "127.0.0.1".into();
    cfg.serve.public.port = port;
    cfg.serve.admin.port = 0;
    // Outside --dev the server needs configured secrets.
    cfg.secrets.default = vec!["bench-secret-0123456789abcdef".into()];
    let schema = format!("file://{}/config/identity.schema.json", env!("CARGO_MANIFEST_DIR"));
    cfg.identity.schemas = vec![SchemaSource { id: "default".into(), url: schema, selfservice_selectable: true }];
    cfg.selfservice.methods.oidc.enabled = true;
    cfg.selfservice.methods.oidc.config.providers = vec![OidcProvider {
        id: "op".into(),
        provider: "generic".into(),
        client_id: "tessera".into(),
        client_secret: "tessera-client-secret-0123456789abcdef".into(),
        issuer_url: Some(issuer.clone()),
        mapper_url: format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(MAPPER)),
        scope: vec!["email".into()],
        ..OidcProvider::default()
    }];
    cfg.selfservice.flows.registration.after.oidc.hooks = vec![HookConfig { hook: "session".into(), config: None }];
    let app = App::build(cfg, BuildOptions { migrate: true, workers: Some(2), clock: None }).await.unwrap();
    let public = app.public_url();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // One browser at the provider (signed in once, consent remembered); one tessera jar per
    // login flow (each has its own continuity cookie).
    let mut at_provider = Jar::default();
    let mut prepared = Vec::with_capacity(N + 1);
    for _ in 0..=N {
        let mut jar = Jar::default();
        let res = jar.get(&http, &format!("{public}/self-service/login/browser")).await;
        let flow_id = url::Url::parse(&location(&public, &res))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "flow")
            .unwrap()
            .1
            .into_owned();
        let res = http
            .get(format!("{public}/self-service/login/flows?id={flow_id}"))
            .header("Cookie", jar.header())
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
            .post(format!("{public}/self-service/login?flow={flow_id}"))
            .header("Cookie", jar.header())
            .form(&[("provider", "op"), ("csrf_token", &csrf)])
            .send()
            .await
            .unwrap();
        jar.absorb(&res);
        let to = location(&public, &res);
        let back = follow(&http, &mut at_provider, to, &callback).await;
        prepared.push((back, jar));
    }
    // The first callback registers the account (not timed).
    let (first, jar) = prepared.pop().unwrap();
    let res = http.get(&first).header("Cookie", jar.header()).send().await.unwrap();
    assert_eq!(res.status(), 303);

    // Codes for the provider's own rate: the public client, exchanged directly.
    let mut codes = Vec::with_capacity(N);
    for _ in 0..N {
        let auth = format!(
            "{issuer}/auth?client_id=native-app&response_type=code&scope=openid%20email&redirect_uri=http%3A%2F%2F127.0.0.1%2Fnative-callback&nonce=n"
        );
        let back = follow(&http, &mut at_provider, auth, "http://127.0.0.1/native-callback").await;
        codes.push(url::Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned());
    }

    let token_url = format!("{issuer}/token");
    let codes_ref = &codes;
    let provider_rate = rate(N, |i| {
        let (http, token_url) = (http.clone(), token_url.clone());
        async move {
            let res = http
                .post(&token_url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", codes_ref[i].as_str()),
                    ("redirect_uri", "http://127.0.0.1/native-callback"),
                    ("client_id", "native-app"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let _ = res.bytes().await;
        }
    })
    .await;

    let prepared_ref = &prepared;
    let callback_rate = rate(N, |i| {
        let http = http.clone();
        async move {
            let (url, jar) = &prepared_ref[i];
            let res = http.get(url).header("Cookie", jar.header()).send().await.unwrap();
            assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
        }
    })
    .await;

    println!("backend: {backend}, provider: npm oidc-provider on loopback, {N} each, concurrency {CONCURRENCY}");
    println!("provider token endpoint: {provider_rate:>8.1} code exchanges/s (baseline)");
    println!(
        "tessera callbacks:       {callback_rate:>8.1}/s   ratio {:.2} to the provider's own rate (exchange + ID-token verification + session)",
        callback_rate / provider_rate
    );
    app.stop().await;
    let _ = peer.start_kill();
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
