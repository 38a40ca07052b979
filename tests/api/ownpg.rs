//! A PostgreSQL server of the test's own (`initdb` + `pg_ctl` in a temporary directory on a
//! free port), for tests that stop the database or configure it (TLS).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// `-c name=value` settings given to every start.
    settings: Vec<String>,
}

/// Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else Debian's versioned directory.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program as the `postgres` user when we are root (the server refuses root).
fn run(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let path = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args).output().unwrap()
}

impl OwnPostgres {
    /// Creates and starts a server with `settings` (`name=value`; `{dir}` stands for the
    /// directory `files` are written to), and `hba` as its `pg_hba.conf` if given; `None` (the
    /// test is skipped) where no PostgreSQL binaries are installed.
    pub fn start(settings: &[&str], files: &[(&str, &[u8])], hba: Option<&str>) -> Option<OwnPostgres> {
        let Some(bin) = bindir() else {
            crate::harness::cannot_run("no PostgreSQL server binaries (initdb, pg_ctl) were found");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        if is_root() {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(chown.success());
        }
        for (name, _) in files {
            // Key files must not be readable by others.
            let _ = Command::new("chmod").arg("600").arg(dir.path().join(name)).status();
        }
        let init = run(&bin, "initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        if let Some(hba) = hba {
            std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
            if is_root() {
                let _ = Command::new("chown").arg("postgres:postgres").arg(data.join("pg_hba.conf")).status();
            }
        }
        let port = crate::durability::free_port();
        let settings = settings.iter().map(|s| s.replace("{dir}", &dir.path().display().to_string())).collect();
        let own = OwnPostgres { bin, dir, port, settings };
        own.up();
        Some(own)
    }

    /// The directory the files given to [`OwnPostgres::start`] are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the server (waits until it accepts connections).
    pub fn up(&self) {
        let mut options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        for s in &self.settings {
            options.push_str(&format!(" -c {s}"));
        }
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let out = run(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once, as a crash or a network cut would look to its clients.
    pub fn down(&self) {
        let data = self.dir.path().join("data");
        let out = run(&self.bin, "pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A DSN for the server's `postgres` database.
    pub fn dsn(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run(&self.bin, "pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}
