//! The `tessera` binary: configuration errors, `serve --dev`, graceful SIGTERM, `migrate`.

use crate::harness::bin;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn typo_in_config_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tessera.toml");
    std::fs::write(&cfg, "dsn = \"memory\"\n[serve.public]\nprot = 4433\n").unwrap();
    let out = Command::new(bin()).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "config: unknown key `serve.public.prot` (neither a tessera nor a Kratos configuration key)"
    );
    // a bad duration and a wrong type name their keys too
    std::fs::write(&cfg, "[persistence]\nflush_interval = \"soon\"\n").unwrap();
    let out = Command::new(bin()).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`persistence.flush_interval`"), "{stderr}");
    // an unreadable identity schema stops start-up with a clear line
    std::fs::write(
        &cfg,
        "dsn = \"memory\"\n[secrets]\ndefault = [\"a-cli-test-secret-of-32-chars!!\"]\n\
         [identity]\nschemas = [{ id = \"default\", url = \"file:///nope.json\" }]\n",
    )
    .unwrap();
    let out = Command::new(bin()).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("identity schema `default`: cannot load file:///nope.json"), "{stderr}");
}

#[test]
fn kratos_only_keys_warn_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tessera.toml");
    let (public, admin) = (free_port(), free_port());
    std::fs::write(
        &cfg,
        format!(
            "[serve.public]\nport = {public}\nhost = \"127.0.0.1\"\n[serve.admin]\nport = {admin}\n\
             [selfservice.flows.verification]\nenabled = false\n\
             [oauth2_provider]\nurl = \"http://127.0.0.1:1/\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .current_dir(dir.path())
        .args(["serve", "--dev", "--config"])
        .arg(&cfg)
        .env_remove("DSN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wait_ready(&format!("http://127.0.0.1:{public}/health/ready"));
    // --dev turns the UI on, and recovery with it unless the file says otherwise.
    let starts = |flow: &str| {
        let url = format!("http://127.0.0.1:{public}/self-service/{flow}/browser");
        let out = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", &url]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (recovery, verification) = (starts("recovery"), starts("verification"));
    unsafe_sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(ready, "server did not become ready");
    assert_eq!(out.status.code(), Some(0), "graceful SIGTERM exits 0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`oauth2_provider` is a Kratos key that tessera does not implement yet"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ui = format!("http://127.0.0.1:{public}/ui/");
    assert_eq!(stdout.lines().next(), Some(format!("  open:       {ui}welcome").as_str()), "{stdout}");
    assert!(stdout.contains(&format!("http://127.0.0.1:{public}/")), "{stdout}");
    assert!(stdout.contains("/admin/courier/messages (no SMTP server configured)"), "{stdout}");
    assert!(recovery.starts_with(&format!("{ui}recovery?flow=")), "{recovery}");
    assert!(verification.starts_with(&format!("{ui}error?id=")), "turned off in the file: {verification}");
    assert!(dir.path().join("tessera-dev.sqlite").exists(), "--dev uses a SQLite file");
}

#[test]
fn migrate_then_serve_without_dev() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let dsn = format!("sqlite://{}?_fk=true", db.display());
    let schema =
        format!("file://{}/tests/fixtures/identity-schemas/all-strategies.schema.json", env!("CARGO_MANIFEST_DIR"));
    let (public, admin) = (free_port(), free_port());
    let env = [
        ("DSN", dsn.clone()),
        ("TESSERA__SERVE__PUBLIC__PORT", public.to_string()),
        ("TESSERA__SERVE__ADMIN__PORT", admin.to_string()),
        ("TESSERA__IDENTITY__SCHEMAS", format!("[{{ id = \"default\", url = \"{schema}\" }}]")),
        ("TESSERA__SECRETS__DEFAULT", "[\"a-cli-test-secret-of-32-chars!!\"]".to_string()),
    ];
    let out = Command::new(bin()).arg("migrate").envs(env.clone()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut child = Command::new(bin()).arg("serve").envs(env).stderr(Stdio::piped()).spawn().unwrap();
    let ready = wait_ready(&format!("http://127.0.0.1:{admin}/admin/health/ready"));
    unsafe_sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(ready);
    assert!(status.success());

    let out = Command::new(bin()).arg("cleanup").env("DSN", &dsn).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deleted 0 expired sessions");

    let out = Command::new(bin()).arg("version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("tessera {}", env!("CARGO_PKG_VERSION")));
}

fn wait_ready(url: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(out) = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url]).output()
            && out.stdout == b"200"
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}
