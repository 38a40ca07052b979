//! Runs the SDK-driven suites in `tests/sdk/` (the official `@ory/kratos-client`) against
//! a real server. Needs Node.js and `npm ci` in tests/sdk; with TESSERA_REQUIRE_PEERS=1 (CI)
//! a missing peer fails the test instead of skipping it.

use crate::both_backends;
use crate::harness::{Db, TestApp};

fn sdk_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

fn peers_available() -> bool {
    let ok = sdk_dir().join("node_modules/@ory/kratos-client").exists()
        && std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        crate::harness::cannot_run("node or tests/sdk/node_modules is missing (run `npm ci` in tests/sdk)");
    }
    ok
}

/// Mail through the SMTP peer on `port`, delivered at once.
fn smtp(c: &mut tessera::config::Config, port: u16) {
    c.courier.smtp.connection_uri = format!("smtp://127.0.0.1:{port}/?disable_starttls=true");
    c.courier.worker.pull_wait = tessera::config::Dur(std::time::Duration::from_millis(50));
}

async fn run_suite(t: &TestApp, file: &str) {
    run_suite_with(t, file, &[]).await
}

async fn run_suite_with(t: &TestApp, file: &str, env: &[(&str, String)]) {
    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "--test-timeout=60000", file])
        .current_dir(sdk_dir())
        .env("TESSERA_ADMIN_URL", &t.admin)
        .env("TESSERA_PUBLIC_URL", &t.public)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("{file} did not finish within 180 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{file} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

async fn identities(db: Db) {
    if !peers_available() {
        return;
    }
    let t = TestApp::new(db).await;
    run_suite(&t, "identities.test.mjs").await;
}
both_backends!(identities);

async fn selfservice(db: Db) {
    if !peers_available() {
        return;
    }
    let t = TestApp::builder(db)
        .config(|c| {
            c.selfservice.flows.registration.after.password.hooks =
                vec![tessera::config::HookConfig { hook: "session".into(), config: None }];
        })
        .build()
        .await;
    run_suite(&t, "selfservice.test.mjs").await;
}
both_backends!(selfservice);

async fn recovery(db: Db) {
    if !peers_available() {
        return;
    }
    let Some(peer) = crate::courier::SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.flows.verification.enabled = true;
            c.selfservice.flows.recovery.enabled = true;
            c.selfservice.methods.link.enabled = true;
            c.feature_flags.use_continue_with_transitions = true;
        })
        .build()
        .await;
    let mailbox = peer.mailbox.display().to_string();
    run_suite_with(&t, "recovery.test.mjs", &[("TESSERA_MAILBOX", mailbox)]).await;
}
both_backends!(recovery);

async fn mfa(db: Db) {
    if !peers_available() {
        return;
    }
    let t = TestApp::builder(db)
        .config(|c| {
            c.selfservice.flows.registration.after.password.hooks =
                vec![tessera::config::HookConfig { hook: "session".into(), config: None }];
            c.selfservice.methods.totp.enabled = true;
            c.selfservice.methods.lookup_secret.enabled = true;
        })
        .build()
        .await;
    run_suite(&t, "mfa.test.mjs").await;
}
both_backends!(mfa);

async fn passwordless(db: Db) {
    if !peers_available() {
        return;
    }
    let Some(peer) = crate::courier::SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.methods.code.passwordless_enabled = true;
            c.selfservice.flows.registration.after.code.hooks =
                vec![tessera::config::HookConfig { hook: "session".into(), config: None }];
        })
        .build()
        .await;
    let mailbox = peer.mailbox.display().to_string();
    run_suite_with(&t, "passwordless.test.mjs", &[("TESSERA_MAILBOX", mailbox)]).await;
}
both_backends!(passwordless);

async fn recovery_v2(db: Db) {
    if !peers_available() {
        return;
    }
    let Some(peer) = crate::courier::SmtpPeer::start(None, None).await else { return };
    let port = peer.port;
    let t = TestApp::builder(db)
        .config(move |c| {
            smtp(c, port);
            c.selfservice.flows.recovery.enabled = true;
            c.feature_flags.choose_recovery_address = true;
            c.feature_flags.use_continue_with_transitions = true;
        })
        .build()
        .await;
    let mailbox = peer.mailbox.display().to_string();
    run_suite_with(&t, "recovery_v2.test.mjs", &[("TESSERA_MAILBOX", mailbox)]).await;
}
both_backends!(recovery_v2);

async fn oidc(db: Db) {
    if !peers_available() {
        return;
    }
    let port = crate::oidc::free_port();
    let Some(peer) = crate::oidc::OidcPeer::start(port, &["op"]).await else { return };
    let issuer = peer.issuer.clone();
    let fedcm = format!("{issuer}/fedcm.json");
    let t = TestApp::builder(db)
        .config(move |c| {
            crate::oidc::with_provider(port, issuer)(c);
            c.selfservice.methods.oidc.config.providers[0].fedcm_config_url = Some(fedcm);
        })
        .build()
        .await;
    run_suite_with(&t, "oidc.test.mjs", &[("TESSERA_OIDC_ISSUER", peer.issuer.clone())]).await;
}
both_backends!(oidc);
