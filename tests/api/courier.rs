//! The courier against a real SMTP server process (`tests/peers/smtp_peer.py`, aiosmtpd):
//! delivery, the admin message API, retries across an outage without loss or duplicates, and
//! abandonment.

use crate::both_backends;
use crate::harness::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tessera::courier::{MessageType, NewMessage};
use tokio::io::AsyncBufReadExt;

/// The SMTP peer; killed when dropped.
pub struct SmtpPeer {
    child: tokio::process::Child,
    pub port: u16,
    pub mailbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpPeer {
    pub async fn start(port: Option<u16>, dir: Option<tempfile::TempDir>) -> Option<SmtpPeer> {
        SmtpPeer::start_with(port, dir, &[]).await
    }

    /// A peer with options (`SMTP_PEER_TLS`, `SMTP_PEER_AUTH`).
    pub async fn start_with(
        port: Option<u16>,
        dir: Option<tempfile::TempDir>,
        env: &[(&str, &str)],
    ) -> Option<SmtpPeer> {
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let mailbox = dir.path().join("mail.jsonl");
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg("tests/peers/smtp_peer.py").arg(&mailbox);
        cmd.envs(env.iter().copied());
        if let Some(p) = port {
            cmd.arg(p.to_string());
        }
        let spawned = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                crate::harness::cannot_run(&format!("python3 is unavailable for the SMTP peer: {e}"));
                return None;
            }
        };
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        match tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                let port = line.strip_prefix("PORT ").unwrap().trim().parse().unwrap();
                Some(SmtpPeer { child, port, mailbox, _dir: dir })
            }
            _ => {
                let status = child.wait().await.ok();
                crate::harness::cannot_run(&format!("the SMTP peer did not start ({status:?}); pip install aiosmtpd"));
                None
            }
        }
    }

    /// Stops the server (an outage) and hands back its directory for a restart.
    pub async fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        (self.port, self._dir)
    }

    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.mailbox)
            .unwrap_or_default()
            .lines()
            // A line still being written is skipped (it is read again on the next poll).
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > within {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn smtp_config(port: u16) -> impl FnOnce(&mut tessera::config::Config) + 'static {
    move |c| {
        c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
        c.courier.smtp.from_address = "courier@tessera.test".into();
        c.courier.smtp.from_name = Some("Tessera Tests".into());
        c.courier.smtp.headers.insert("X-Tessera-Test".into(), "yes".into());
        c.courier.worker.pull_wait = tessera::config::Dur(Duration::from_millis(50));
        c.courier.message_retries = 3;
    }
}

fn email(to: &str, n: usize) -> NewMessage {
    NewMessage {
        kind: MessageType::Email,
        channel: "email".into(),
        recipient: to.into(),
        subject: format!("Code {n}"),
        body: format!("Your code is {n:06}."),
        template_type: "verification_code_valid".into(),
        template_data: json!({"to": to, "verification_code": format!("{n:06}")}),
    }
}

async fn messages(t: &TestApp, query: &str) -> Vec<Value> {
    let (status, _, body) = t.admin_json(Method::GET, &format!("/admin/courier/messages{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn wait_status(t: &TestApp, query: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let got = messages(t, query).await;
        if got.len() >= n || start.elapsed() > Duration::from_secs(20) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delivers_over_smtp(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(smtp_config(peer.port)).build().await;
    let courier = &t.app().state().courier;
    for n in 0..5 {
        courier.enqueue(email(&format!("user{n}@example.org"), n)).await.unwrap();
    }
    let mail = peer.wait_for(5, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 5);
    let first = mail.iter().find(|m| m["to"][0] == "user0@example.org").unwrap();
    let data = first["data"].as_str().unwrap();
    assert!(data.contains("Your code is 000000."), "{data}");
    assert!(data.contains("Subject: Code 0"));
    assert!(data.contains("From: \"Tessera Tests\" <courier@tessera.test>"), "{data}");
    assert!(data.contains("X-Tessera-Test: yes"));
    assert_eq!(first["from"], "courier@tessera.test");

    // The admin API: all sent, filters, keyset pages, one message with its dispatch.
    let sent = wait_status(&t, "?status=sent", 5).await;
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0]["type"], "email");
    assert_eq!(sent[0]["send_count"], 1);
    assert!(sent[0].get("dispatches").is_none(), "the list omits dispatches");
    let one = messages(&t, "?recipient=user3@example.org").await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["body"], "Your code is 000003.", "dev mode shows bodies");
    let res = t.http.get(format!("{}/admin/courier/messages?page_size=2", t.admin)).send().await.unwrap();
    let link = res.headers()["link"].to_str().unwrap().to_string();
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), 2);
    let next = link.split(',').find(|l| l.contains("rel=\"next\"")).unwrap();
    let path = next.trim().trim_start_matches('<').split('>').next().unwrap();
    let page2: Vec<Value> = t.http.get(format!("{}{path}", t.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(page2.len(), 2);
    assert!(page.iter().all(|a| page2.iter().all(|b| a["id"] != b["id"])));
    let id = one[0]["id"].as_str().unwrap();
    let (status, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(full["dispatches"][0]["status"], "success");
    // Bad input.
    for (path, status) in [
        ("/admin/courier/messages?status=lost".to_string(), 400),
        ("/admin/courier/messages?page_token=garbage".to_string(), 400),
        ("/admin/courier/messages/not-a-uuid".to_string(), 400),
        (format!("/admin/courier/messages/{}", uuid::Uuid::new_v4()), 404),
    ] {
        let (got, _, body) = t.admin_json(Method::GET, &path, None).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    // The public port sends the admin route on.
    let res = t.get(&format!("{}/admin/courier/messages?status=sent", t.public)).await;
    assert_eq!(res.status(), 307);
}
both_backends!(delivers_over_smtp);

async fn dispatch_count(t: &TestApp, path: &str) -> usize {
    t.admin_json(Method::GET, path, None).await.2["dispatches"].as_array().map_or(0, Vec::len)
}

async fn survives_an_outage_without_loss_or_duplicates(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    // Time is the app's clock: the test moves it on, so a 30 s outage takes no 30 s.
    let clock = tessera::clock::Clock::fixed(tessera::clock::Clock::system().now());
    let t = TestApp::builder(db)
        .clock(clock.clone())
        .config({
            let port = peer.port;
            move |c| {
                smtp_config(port)(c);
                c.courier.message_retries = 100;
                c.courier.worker.retry_max_wait = tessera::config::Dur(Duration::from_secs(2));
            }
        })
        .build()
        .await;
    // The server goes away for 30 s of the clock; messages queue up and fail meanwhile.
    let (port, dir) = peer.stop().await;
    let courier = &t.app().state().courier;
    for n in 0..10 {
        courier.enqueue(email(&format!("outage{n}@example.org"), n)).await.unwrap();
    }
    let id = messages(&t, "").await[0]["id"].as_str().unwrap().to_string();
    let path = format!("/admin/courier/messages/{id}");
    for _ in 0..15 {
        // Each step makes the failed messages due again (back-off ≤ 2 s); the dispatcher
        // polls every 50 ms of real time and tries them.
        let before = dispatch_count(&t, &path).await;
        clock.advance(chrono::Duration::seconds(2));
        let start = std::time::Instant::now();
        while dispatch_count(&t, &path).await == before && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let queued = messages(&t, "?status=sent").await;
    assert!(queued.is_empty(), "nothing can be sent while the server is down");
    assert!(dispatch_count(&t, &path).await >= 10, "retried during the outage");
    // It comes back on the same port: everything arrives, once.
    let peer = SmtpPeer::start(Some(port), Some(dir)).await.unwrap();
    let start = std::time::Instant::now();
    while peer.received().len() < 10 && start.elapsed() < Duration::from_secs(30) {
        clock.advance(chrono::Duration::seconds(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mail = peer.wait_for(10, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mail = if mail.len() < 10 { mail } else { peer.received() };
    let mut to: Vec<String> = mail.iter().map(|m| m["to"][0].as_str().unwrap().to_string()).collect();
    to.sort();
    let mut expected: Vec<String> = (0..10).map(|n| format!("outage{n}@example.org")).collect();
    expected.sort();
    assert_eq!(to, expected, "every message exactly once");
    let sent = wait_status(&t, "?status=sent", 10).await;
    assert_eq!(sent.len(), 10);
    assert!(sent.iter().all(|m| m["send_count"].as_i64().unwrap() >= 2), "each was retried after failing");
}
both_backends!(survives_an_outage_without_loss_or_duplicates);

async fn abandons_after_retries(db: Db) {
    // Nothing listens on this port.
    let port = crate::harness::free_port();
    let t = TestApp::builder(db).config(smtp_config(port)).build().await;
    let id = t.app().state().courier.enqueue(email("nobody@example.org", 7)).await.unwrap();
    let abandoned = wait_status(&t, "?status=abandoned", 1).await;
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    let (_, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{id}"), None).await;
    assert_eq!(full["send_count"], 4, "the first attempt and three retries");
    let dispatches = full["dispatches"].as_array().unwrap();
    assert_eq!(dispatches.len(), 4);
    assert!(dispatches.iter().all(|d| d["status"] == "failed" && d["error"]["message"].is_string()));
}
both_backends!(abandons_after_retries);

async fn permanent_refusals_are_not_retried(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(db).config(smtp_config(peer.port)).build().await;
    let courier = &t.app().state().courier;
    let refused = courier.enqueue(email("reject@example.org", 1)).await.unwrap();
    courier.enqueue(email("fine@example.org", 2)).await.unwrap();
    // The refused message does not hold up the other one.
    let mail = peer.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["to"][0], "fine@example.org");
    let abandoned = wait_status(&t, "?status=abandoned", 1).await;
    assert_eq!(abandoned.len(), 1);
    let (_, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{refused}"), None).await;
    assert_eq!(full["send_count"], 1, "a 5xx is final: no retries");
    assert!(full["dispatches"][0]["error"]["message"].as_str().unwrap().contains("550"));
}
both_backends!(permanent_refusals_are_not_retried);

fn base64_uri(text: &str) -> String {
    use base64::Engine;
    format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(text))
}

async fn http_channel_delivers_sms_and_email(db: Db) {
    use tessera::config::{ChannelConfig, HttpAuthConfig, HttpRequestConfig};
    use tessera::courier::template::TemplateType;
    let Some(peer) = crate::hooks::Peer::start().await else { return };
    let base = peer.base.clone();
    let t = TestApp::builder(db)
        .config(move |c| {
            c.courier.worker.pull_wait = tessera::config::Dur(Duration::from_millis(50));
            c.courier.message_retries = 2;
            c.courier.channels = vec![ChannelConfig {
                id: "sms".into(),
                kind: Some("http".into()),
                request_config: HttpRequestConfig {
                    url: format!("{base}/hook/ok/sms"),
                    method: "POST".into(),
                    headers: [("X-Provider".to_string(), "loopback".to_string())].into_iter().collect(),
                    body: Some(base64_uri(
                        "function(ctx) { to: ctx.recipient, text: ctx.body, kind: ctx.template_type, code: ctx.template_data.verification_code }",
                    )),
                    auth: Some(HttpAuthConfig {
                        kind: "basic_auth".into(),
                        config: [("user".to_string(), "me".to_string()), ("password".to_string(), "pw".to_string())]
                            .into_iter()
                            .collect(),
                    }),
                },
            }];
            // E-mail over HTTP too, with Kratos' default body.
            c.courier.delivery_strategy = "http".into();
            c.courier.http.request_config = Some(HttpRequestConfig {
                url: format!("{base}/hook/ok/email"),
                method: "POST".into(),
                headers: Default::default(),
                body: None,
                auth: None,
            });
        })
        .build()
        .await;
    let courier = &t.app().state().courier;
    let data = json!({"to": "+15550100", "verification_code": "424242", "identity": {"traits": {}}});
    courier.send_template(MessageType::Sms, "+15550100", TemplateType::VerificationCodeValid, data).await.unwrap();
    let data = json!({"to": "eve@example.org", "recovery_code": "135790"});
    courier.send_template(MessageType::Email, "eve@example.org", TemplateType::RecoveryCodeValid, data).await.unwrap();
    let sent = wait_status(&t, "?status=sent", 2).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let requests = peer.requests().await;
    let sms = requests.iter().find(|r| r["path"] == "/hook/ok/sms").expect("the SMS request");
    assert_eq!(sms["method"], "POST");
    assert_eq!(sms["headers"]["x-provider"], "loopback");
    assert_eq!(sms["headers"]["authorization"], "Basic bWU6cHc=");
    assert_eq!(
        sms["body"],
        json!({"to": "+15550100", "text": "Your verification code is: 424242\n", "kind": "verification_code_valid", "code": "424242"})
    );
    let mail = requests.iter().find(|r| r["path"] == "/hook/ok/email").expect("the e-mail request");
    assert_eq!(mail["body"]["recipient"], "eve@example.org");
    assert_eq!(mail["body"]["template_type"], "recovery_code_valid");
    assert_eq!(mail["body"]["recovery_code"], "135790");
    assert_eq!(mail["body"]["subject"], "Your recovery code");
    assert!(mail["body"]["body"].as_str().unwrap().contains("135790"));
    let (_, _, full) =
        t.admin_json(Method::GET, &format!("/admin/courier/messages/{}", sent[0]["id"].as_str().unwrap()), None).await;
    assert_eq!(full["dispatches"][0]["status"], "success");
}
both_backends!(http_channel_delivers_sms_and_email);

async fn failing_http_channel_is_retried_then_abandoned(db: Db) {
    use tessera::config::{ChannelConfig, HttpRequestConfig};
    let Some(peer) = crate::hooks::Peer::start().await else { return };
    let url = format!("{}/hook/fail", peer.base);
    let t = TestApp::builder(db)
        .config(move |c| {
            c.courier.worker.pull_wait = tessera::config::Dur(Duration::from_millis(20));
            c.courier.message_retries = 2;
            c.courier.channels = vec![ChannelConfig {
                id: "sms".into(),
                kind: Some("http".into()),
                request_config: HttpRequestConfig {
                    url,
                    method: "POST".into(),
                    headers: Default::default(),
                    body: None,
                    auth: None,
                },
            }];
        })
        .build()
        .await;
    let mut m = email("+15550199", 1);
    m.kind = MessageType::Sms;
    m.channel = "sms".into();
    let id = t.app().state().courier.enqueue(m).await.unwrap();
    let abandoned = wait_status(&t, "?status=abandoned", 1).await;
    assert_eq!(abandoned.len(), 1);
    let (_, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{id}"), None).await;
    assert_eq!(full["send_count"], 3);
    assert!(full["dispatches"][0]["error"]["message"].as_str().unwrap().contains("500"), "{full}");
    assert_eq!(peer.requests().await.len(), 3);
}
both_backends!(failing_http_channel_is_retried_then_abandoned);

async fn templates_from_the_override_directory(db: Db) {
    use tessera::courier::template::TemplateType;
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("verification_code").join("valid");
    std::fs::create_dir_all(&tpl).unwrap();
    // A template as written for Kratos: Go template syntax, `.Identity` traits, sprig.
    std::fs::write(
        tpl.join("email.body.plaintext.gotmpl"),
        "Hi {{ .Identity.traits.email | upper }}, your code: {{ .VerificationCode }}\n",
    )
    .unwrap();
    std::fs::write(tpl.join("email.subject.gotmpl"), "{{ .VerificationCode }} is your code\n").unwrap();
    let root = dir.path().display().to_string();
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.courier.template_override_path = Some(root);
        })
        .build()
        .await;
    let data = json!({"to": "ola@example.org", "verification_code": "777111", "identity": {"traits": {"email": "ola@example.org"}}});
    t.app()
        .state()
        .courier
        .send_template(MessageType::Email, "ola@example.org", TemplateType::VerificationCodeValid, data)
        .await
        .unwrap();
    let mail = peer.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mail[0]["subject"], "777111 is your code");
    assert_eq!(mail[0]["text"].as_str().unwrap().replace("\r\n", "\n"), "Hi OLA@EXAMPLE.ORG, your code: 777111\n");
    // The HTML part had no override: the built-in one.
    assert!(mail[0]["html"].as_str().unwrap().contains("<strong>777111</strong>"));
}
both_backends!(templates_from_the_override_directory);

async fn rate_limit_spaces_deliveries(db: Db) {
    use tessera::config::RateLimit;
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.courier.pool.rate_limits.insert("email".into(), RateLimit { per_second: 20, burst: Some(1) });
        })
        .build()
        .await;
    let start = Instant::now();
    for n in 0..31 {
        t.app().state().courier.enqueue(email(&format!("paced{n}@example.org"), n)).await.unwrap();
    }
    let mail = peer.wait_for(31, Duration::from_secs(30)).await;
    assert_eq!(mail.len(), 31);
    // 31 messages at 20/s with a burst of 1 need at least 30/20 s: a lower bound only, which
    // load on the machine cannot break (the achieved rate is measured by benches/courier.rs).
    assert!(start.elapsed() >= Duration::from_millis(1500), "{:?}", start.elapsed());
}
both_backends!(rate_limit_spaces_deliveries);

/// `tessera courier watch` delivers what a server with its own courier switched off queued.
#[actix_web::test]
async fn courier_watch_runs_alone() {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let t = TestApp::builder(Db::Sqlite).config(|c| c.courier.worker.enabled = false).build().await;
    t.app().state().courier.enqueue(email("watched@example.org", 5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(messages(&t, "?status=queued").await.len(), 1, "serve does not deliver with the worker off");
    let child = std::process::Command::new(crate::harness::bin())
        .args(["courier", "watch"])
        .env("DSN", &t.db.dsn)
        .env("TESSERA__COURIER__SMTP__CONNECTION_URI", format!("smtp://127.0.0.1:{}/?disable_starttls=true", peer.port))
        .env("TESSERA__COURIER__WORKER__PULL_WAIT", "100ms")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mail = peer.wait_for(1, Duration::from_secs(30)).await;
    let sent = wait_status(&t, "?status=sent", 1).await;
    crate::cli::unsafe_sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(mail.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mail[0]["to"][0], "watched@example.org");
    assert_eq!(sent.len(), 1);
    assert_eq!(out.status.code(), Some(0), "graceful stop: {}", String::from_utf8_lossy(&out.stderr));
}

async fn tls_and_authentication(db: Db) {
    // SMTPS (implicit TLS), then STARTTLS with a password; self-signed certificates are
    // accepted with skip_ssl_verify=true.
    let Some(smtps) = SmtpPeer::start_with(None, None, &[("SMTP_PEER_TLS", "implicit")]).await else { return };
    let port = smtps.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.courier.smtp.connection_uri = format!("smtps://127.0.0.1:{port}/?skip_ssl_verify=true");
        })
        .build()
        .await;
    let id = t.app().state().courier.enqueue(email("tls@example.org", 1)).await.unwrap();
    let got = smtps.wait_for(1, Duration::from_secs(20)).await.len();
    let (_, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{id}"), None).await;
    assert_eq!(got, 1, "delivered over SMTPS: {full}");

    let env = [("SMTP_PEER_TLS", "starttls"), ("SMTP_PEER_AUTH", "mailer:s3cret pass")];
    let Some(starttls) = SmtpPeer::start_with(None, None, &env).await else { return };
    let port = starttls.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.courier.smtp.connection_uri =
                format!("smtp://mailer:s3cret%20pass@127.0.0.1:{port}/?skip_ssl_verify=true");
        })
        .build()
        .await;
    t.app().state().courier.enqueue(email("auth@example.org", 2)).await.unwrap();
    let mail = starttls.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mail.len(), 1, "delivered over STARTTLS with AUTH");
    assert_eq!(mail[0]["to"][0], "auth@example.org");

    // A wrong password is refused (535): the message is not delivered.
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.courier.smtp.connection_uri = format!("smtp://mailer:wrong@127.0.0.1:{port}/?skip_ssl_verify=true");
        })
        .build()
        .await;
    let id = t.app().state().courier.enqueue(email("denied@example.org", 3)).await.unwrap();
    let abandoned = wait_status(&t, "?status=abandoned", 1).await;
    let (_, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{id}"), None).await;
    assert_eq!(abandoned.len(), 1, "{full}");
    assert!(full["dispatches"][0]["error"]["message"].as_str().unwrap().contains("535"), "{full}");
    assert_eq!(starttls.received().len(), 1);
}
both_backends!(tls_and_authentication);

async fn two_dispatchers_never_send_one_message_twice(db: Db) {
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let a = TestApp::builder(db).config(smtp_config(port)).build().await;
    let b = TestApp::builder(db).config(smtp_config(port)).same_db_as(&a).build().await;
    for n in 0..120 {
        let t = if n % 2 == 0 { &a } else { &b };
        t.app().state().courier.enqueue(email(&format!("once{n}@example.org"), n)).await.unwrap();
    }
    let mail = peer.wait_for(120, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut to: Vec<String> = peer.received().iter().map(|m| m["to"][0].as_str().unwrap().to_string()).collect();
    assert_eq!(mail.len(), 120);
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 120, "every message once");
    assert_eq!(peer.received().len(), 120, "no message twice");
    assert_eq!(wait_status(&a, "?status=sent&page_size=500", 120).await.len(), 120);
}
both_backends!(two_dispatchers_never_send_one_message_twice);

async fn messages_are_sealed_at_rest(db: Db) {
    use tessera::courier::template::TemplateType;
    let Some(peer) = SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let mut t = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.secrets.cipher = vec!["a-cipher-secret-of-32-characters!".into()];
        })
        .build()
        .await;
    let data = json!({"to": "sealed@example.org", "recovery_code": "864209"});
    let id = t
        .app()
        .state()
        .courier
        .send_template(MessageType::Email, "sealed@example.org", TemplateType::RecoveryCodeValid, data)
        .await
        .unwrap();
    // The row holds no code in clear …
    let mut pooled = t.app().state().store.get().await.unwrap();
    let (row, _) = tessera::persistence::courier::get(&mut pooled.conn(), id).await.unwrap().unwrap();
    drop(pooled);
    let stored = format!("{} {} {:?}", row.subject, row.body, row.template_data);
    assert!(!stored.contains("864209"), "{stored}");
    assert!(row.body.starts_with("tsl1:"), "{}", row.body);
    // … the mail and the (dev-mode) admin API do.
    let mail = peer.wait_for(1, Duration::from_secs(20)).await;
    assert!(mail[0]["text"].as_str().unwrap().contains("864209"));
    assert!(mail[0]["html"].as_str().unwrap().contains("864209"), "the HTML part is rendered from the opened data");
    let (_, _, full) = t.admin_json(Method::GET, &format!("/admin/courier/messages/{id}"), None).await;
    assert!(full["body"].as_str().unwrap().contains("864209"), "{full}");

    // An instance with other secrets cannot open a message: it abandons it instead of sending
    // it blank, and its admin API says so.
    let writer = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.secrets.cipher = vec!["a-cipher-secret-of-32-characters!".into()];
            c.courier.worker.enabled = false;
        })
        .same_db_as(&t)
        .build()
        .await;
    let other = TestApp::builder(db)
        .config(move |c| {
            smtp_config(port)(c);
            c.secrets.cipher = vec!["another-cipher-secret-32-chars!!".into()];
        })
        .same_db_as(&t)
        .build()
        .await;
    // The first server (which could open it) is gone.
    t.stop().await;
    let foreign = writer.app().state().courier.enqueue(email("foreign@example.org", 9)).await.unwrap();
    other.app().state().courier.enqueue(email("wake@example.org", 10)).await.unwrap();
    let abandoned = wait_status(&other, "?status=abandoned", 1).await;
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert_eq!(abandoned[0]["id"], foreign.to_string());
    assert_eq!(abandoned[0]["body"], "<sealed with another secret>");
    assert!(peer.received().iter().all(|m| m["to"][0] != "foreign@example.org"));
}
both_backends!(messages_are_sealed_at_rest);
