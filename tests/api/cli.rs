//! The `tessera` binary: configuration errors, `serve --dev`, graceful SIGTERM, `migrate`.

use crate::harness::bin;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::harness::{Db, TestDb, free_port};

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
        format!(
            "config: {}:3: unknown key `serve.public.prot` (neither a tessera nor a Kratos configuration key)",
            cfg.display()
        )
    );
    // the same in a Kratos YAML file, with the global flag before the subcommand
    let yml = dir.path().join("kratos.yml");
    std::fs::write(&yml, "dsn: memory\nserve:\n  admin:\n    port: 4434\n  public:\n    prot: 4433\n").unwrap();
    let out = Command::new(bin()).args(["-c"]).arg(&yml).arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("config: {}:6: unknown key `serve.public.prot`", yml.display())), "{stderr}");
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
    let (child, public, ready) =
        serve_dev(dir.path(), "[selfservice.flows.verification]\nenabled = false\n[tracing]\nprovider = \"jaeger\"\n");
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
    assert!(stderr.contains("`tracing` is a Kratos key that tessera does not implement yet"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes when the log is not a terminal: {stderr}");
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

/// `migrate status`, `up` and `down` (also in Kratos' spelling `migrate sql [-e] [--yes] …`).
async fn migrate_status_up_down(db: Db) {
    let t = TestDb::new(db).await;
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).env("DSN", &t.dsn).stdin(Stdio::null()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let states = |stdout: &str| {
        stdout.lines().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    let before = run(&["migrate", "status"]);
    let n = before.lines().count();
    assert!(n >= 6, "{before}");
    assert!(states(&before).iter().all(|s| s == "Pending"), "{before}");
    let applied = run(&["migrate", "sql", "-e", "--yes", "up"]);
    let after = run(&["migrate", "status"]);
    let applied_names: Vec<&str> = applied.lines().filter_map(|l| l.strip_prefix("applied  ")).collect();
    let status_names: Vec<&str> = after.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(applied_names, status_names, "{applied}");
    assert!(states(&after).iter().all(|s| s == "Applied"), "{after}");
    let names: Vec<&str> = after.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    // down reverts the newest first
    let down = run(&["migrate", "down", "--steps", "2", "--yes"]);
    assert_eq!(
        down.lines().collect::<Vec<_>>(),
        [format!("reverted {}", names[n - 1]), format!("reverted {}", names[n - 2])]
    );
    let status = run(&["migrate", "sql", &t.dsn, "status"]);
    assert_eq!(states(&status)[n - 2..], ["Pending", "Pending"], "{status}");
    assert!(states(&status)[..n - 2].iter().all(|s| s == "Applied"), "{status}");
    let up = run(&["migrate", "up", "--yes"]);
    assert_eq!(up.lines().filter(|l| l.starts_with("applied ")).count(), 2, "{up}");
    assert_eq!(run(&["migrate", "up", "--yes"]).trim(), "no pending migrations");
    assert!(states(&run(&["migrate", "status"])).iter().all(|s| s == "Applied"));
}
both_backends!(migrate_status_up_down);

/// `jsonnet lint` (and Kratos' `lint lint`): exit 1 naming the file, line and column.
#[test]
fn jsonnet_lint() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonnet");
    let bad = dir.path().join("bad.jsonnet");
    std::fs::write(&good, "function(ctx) {\n  email: ctx.identity.traits.email,\n}\n").unwrap();
    std::fs::write(&bad, "function(ctx) {\n  a: ctx.x,\n  b: ctz.y,\n}\n").unwrap();
    let out = Command::new(bin()).args(["jsonnet", "lint"]).arg(&good).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{}: ok", good.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("{}: 3:6: unknown variable `ctz`\n", bad.display())), "{stderr}");
    let out = Command::new(bin()).args(["lint", "lint"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // format: to stdout, or in place with -w (Kratos' `format jsonnet -w`); unparsable: exit 1.
    let messy = dir.path().join("messy.jsonnet");
    std::fs::write(&messy, "function(ctx)   {\n      email: ctx.identity.traits.email,   \n}\n\n\n").unwrap();
    let tidy = "function(ctx) {\n  email: ctx.identity.traits.email,\n}\n";
    let out = Command::new(bin()).args(["jsonnet", "format"]).arg(&messy).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), tidy);
    let out = Command::new(bin()).args(["format", "jsonnet", "-w"]).arg(&messy).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), tidy);
    let out = Command::new(bin()).args(["jsonnet", "format"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// `hashers argon2 calibrate`: the printed section is a configuration `serve` accepts, and its
/// hash time was measured under the target.
#[test]
fn argon2_calibrate_prints_usable_parameters() {
    let out = Command::new(bin())
        .args(["hashers", "argon2", "calibrate", "120", "--start-memory", "1MB", "--adjust-memory", "1MB"])
        .args(["--max-memory", "16MB", "--expected-duration", "20ms", "-r", "1", "--parallelism", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Settled on") && stderr.contains("iterations."), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let table: toml::Table = toml::from_str(&stdout).unwrap();
    let argon2 = &table["hashers"]["argon2"];
    assert!(argon2["iterations"].as_integer().unwrap() >= 1, "{stdout}");
    assert_eq!(argon2["parallelism"].as_integer(), Some(1));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tessera.toml");
    std::fs::write(&cfg, format!("dsn = \"memory\"\n{stdout}")).unwrap();
    let out = Command::new(bin()).args(["config", "check"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Upstream-style Kratos configuration files (YAML and JSON) load unchanged: `config check`,
/// `config convert` to TOML, and `serve` with Kratos' own command line and environment names.
#[test]
fn kratos_config_files_and_environment_unchanged() {
    let fixtures = format!("{}/tests/fixtures/kratos", env!("CARGO_MANIFEST_DIR"));
    for file in ["kratos.yml", "kratos.json"] {
        let out = Command::new(bin()).args(["config", "check", &format!("{fixtures}/{file}")]).output().unwrap();
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{fixtures}/{file}: ok"));
    }
    // Converted to TOML, the same configuration.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin()).args(["config", "convert", &format!("{fixtures}/kratos.yml")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("ui_url = \"http://127.0.0.1:4455/login\""), "{toml}");
    let converted = dir.path().join("tessera.toml");
    std::fs::write(&converted, &toml).unwrap();
    let out = Command::new(bin()).args(["config", "check"]).arg(&converted).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Kratos' command line and environment: the file as it is, the deployment's values from
    // the environment (an array of objects as JSON, an array of strings comma-separated), and
    // tessera's own names winning over Kratos' where both are set.
    let (public, admin) = (free_port(), free_port());
    let schema =
        format!("file://{}/tests/fixtures/identity-schemas/all-strategies.schema.json", env!("CARGO_MANIFEST_DIR"));
    let db = dir.path().join("kratos.sqlite");
    let env = [
        ("DSN", format!("sqlite://{}?_fk=true", db.display())),
        ("SERVE_PUBLIC_PORT", public.to_string()),
        ("SERVE_PUBLIC_HOST", "127.0.0.1".to_string()),
        ("SERVE_PUBLIC_BASE_URL", format!("http://127.0.0.1:{public}/")),
        ("SERVE_ADMIN_PORT", "1".to_string()),
        ("TESSERA__SERVE__ADMIN__PORT", admin.to_string()),
        ("IDENTITY_SCHEMAS", format!("[{{\"id\": \"default\", \"url\": \"{schema}\"}}]")),
        ("SELFSERVICE_FLOWS_LOGIN_UI_URL", "http://127.0.0.1:4455/sign-in".to_string()),
        ("SECRETS_DEFAULT", "a-kratos-secret-of-32-characters,an-older-secret-of-32-characters".to_string()),
    ];
    let out = Command::new(bin())
        .args(["migrate", "sql", "-e", "--yes", "-c", &format!("{fixtures}/kratos.yml")])
        .envs(env.clone())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let child = Command::new(bin())
        .args(["serve", "-c", &format!("{fixtures}/kratos.yml"), "--watch-courier"])
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wait_ready(&format!("http://127.0.0.1:{admin}/admin/health/ready"));
    let url = format!("http://127.0.0.1:{public}/self-service/login/browser");
    let out = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", &url]).output().unwrap();
    unsafe_sigterm(child.id());
    let out_child = child.wait_with_output().unwrap();
    assert!(ready, "{}", String::from_utf8_lossy(&out_child.stderr));
    let to = String::from_utf8_lossy(&out.stdout);
    assert!(to.starts_with("http://127.0.0.1:4455/sign-in?flow="), "{to}");
    assert!(db.exists());
}

/// `serve --dev` in `dir` on free loopback ports with `extra` configuration (stdout and stderr
/// piped); the child, its public port, and whether it became ready.
fn serve_dev(dir: &std::path::Path, extra: &str) -> (std::process::Child, u16, bool) {
    let cfg = dir.join("tessera.toml");
    let (public, admin) = (free_port(), free_port());
    let listen = format!("[serve.public]\nport = {public}\nhost = \"127.0.0.1\"\n[serve.admin]\nport = {admin}\n");
    std::fs::write(&cfg, format!("{listen}{extra}")).unwrap();
    let child = Command::new(bin())
        .current_dir(dir)
        .args(["serve", "--dev", "--config"])
        .arg(&cfg)
        .env_remove("DSN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wait_ready(&format!("http://127.0.0.1:{public}/health/ready"));
    (child, public, ready)
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

/// Every request is logged (`completed handling request`, JSON with `log.format = "json"`);
/// its query string only with `log.leak_sensitive_values`, else the redaction text.
#[test]
fn request_log_redacts_queries_unless_asked() {
    for leak in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (child, public, ready) =
            serve_dev(dir.path(), &format!("[log]\nformat = \"json\"\nleak_sensitive_values = {leak}\n"));
        let url = format!("http://127.0.0.1:{public}/health/alive?code=secret-query-value");
        let out = Command::new("curl").args(["-s", "-o", "/dev/null", &url]).output().unwrap();
        assert!(out.status.success());
        unsafe_sigterm(child.id());
        let out = child.wait_with_output().unwrap();
        assert!(ready);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("completed handling request") && l.contains("/health/alive") && l.contains("query"))
            .unwrap_or_else(|| panic!("no request log line: {stderr}"));
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(entry["status"], 200, "{line}");
        if leak {
            assert_eq!(entry["query"], "code=secret-query-value", "{line}");
        } else {
            assert!(entry["query"].as_str().unwrap().starts_with("Value is sensitive and has been redacted"), "{line}");
            assert!(!stderr.contains("secret-query-value"), "{stderr}");
        }
    }
}
