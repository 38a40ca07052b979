//! `TestApp`: builds a tessera on port 0 against a fresh database of the chosen backend.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::path::PathBuf;
use tessera::app::{App, BuildOptions};
use tessera::config::{self, Config, SchemaSource};
use tessera::identity::{Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Whether missing peers and databases fail tests (`TESSERA_REQUIRE_PEERS=1`, as CI sets it).
pub fn peers_required() -> bool {
    std::env::var("TESSERA_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// A test that cannot run because `what` is missing: says so on stderr and lets the test end,
/// or — when peers are required — fails it.
pub fn cannot_run(what: &str) {
    assert!(!peers_required(), "TESSERA_REQUIRE_PEERS=1 but {what}");
    eprintln!("SKIPPED: {what}; this test did not run (TESSERA_REQUIRE_PEERS=1 makes this a failure)");
}

/// Runs the body once per backend as two tests: `<name>::sqlite` and `<name>::postgres`
/// (the latter says on stderr that it did not run when `DATABASE_URL` is not set, and fails
/// then if `TESSERA_REQUIRE_PEERS=1`).
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::harness::Db::Sqlite).await;
            }
            #[actix_web::test]
            async fn postgres() {
                if std::env::var("DATABASE_URL").is_err() {
                    $crate::harness::cannot_run("DATABASE_URL is not set (PostgreSQL variant)");
                    return;
                }
                super::$name($crate::harness::Db::Postgres).await;
            }
        }
    };
}

/// A loopback port nothing listens on, for servers whose URL must be known before they start.
/// Taken below the kernel's ephemeral range (32768–60999), so no outgoing connection (a browser,
/// a client pool) can take it between this check and the server's bind; each call moves on
/// from a random start, so tests running at once do not pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ =
        NEXT.compare_exchange(0, 20_000 + (std::process::id() % 6000) as u16 * 2, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        if port >= 32_000 {
            NEXT.store(20_000, Ordering::SeqCst);
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn fixture(name: &str) -> String {
    format!("file://{}/tests/fixtures/identity-schemas/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh database: a temp file for SQLite, a new schema for PostgreSQL.
pub struct TestDb {
    pub dsn: String,
    /// For PostgreSQL: the application_name every connection of this test carries.
    pub tag: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(db: Db) -> TestDb {
        let tag = format!("t_{}", uuid::Uuid::new_v4().simple());
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let dsn = format!("sqlite://{}?_fk=true", dir.path().join("tessera.sqlite").display());
                TestDb { dsn, tag, _dir: Some(dir), pg: None }
            }
            Db::Postgres => {
                let base = std::env::var("DATABASE_URL").unwrap();
                let mut conn = AsyncPgConnection::establish(&base).await.unwrap();
                diesel::sql_query(format!("CREATE SCHEMA {tag}")).execute(&mut conn).await.unwrap();
                let sep = if base.contains('?') { '&' } else { '?' };
                let dsn = format!("{base}{sep}options=-csearch_path%3D{tag}&application_name={tag}");
                TestDb { dsn, tag: tag.clone(), _dir: None, pg: Some((base, tag)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = AsyncPgConnection::establish(&base).await {
                        // A server dropped without a graceful stop can leave a connection idle in
                        // a transaction (its flush was cancelled); it would block the DROP.
                        let _ = diesel::sql_query(format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE application_name = '{schema}' AND pid <> pg_backend_pid()"
                        ))
                        .execute(&mut c)
                        .await;
                        let _ = diesel::sql_query("SET lock_timeout = '10s'").execute(&mut c).await;
                        let _ = diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut c).await;
                    }
                });
            })
            .join();
        }
    }
}

/// A config for tests: port 0, loopback, the all-strategies schema.
pub fn test_config(dsn: &str) -> Config {
    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn.to_string());
    cfg.dev = true;
    cfg.serve.public.host = "127.0.0.1".into();
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    // Cheap hashing parameters: tests check behaviour, benches measure cost.
    cfg.hashers.argon2.memory = config::ByteSize(64 << 10);
    cfg.hashers.argon2.iterations = 1;
    cfg.hashers.argon2.parallelism = 1;
    cfg.hashers.bcrypt.cost = 4;
    // The courier polls only when a message is queued (courier tests poll often themselves),
    // so idle servers run no background statements.
    cfg.courier.worker.pull_wait = config::Dur(std::time::Duration::from_secs(3600));
    // No network in tests: the breached-password check runs only against a local peer.
    cfg.selfservice.methods.password.config.haveibeenpwned_enabled = false;
    cfg.selfservice.default_browser_return_url = Some("https://app.example/welcome".into());
    cfg.selfservice.allowed_return_urls = vec!["https://app.example/".into()];
    cfg.selfservice.flows.login.ui_url = "https://ui.example/login".into();
    cfg.selfservice.flows.registration.ui_url = "https://ui.example/registration".into();
    cfg.selfservice.flows.error.ui_url = "https://ui.example/error".into();
    cfg.identity.schemas = vec![
        SchemaSource { id: "default".into(), url: fixture("all-strategies.schema.json"), selfservice_selectable: true },
        SchemaSource { id: "phone".into(), url: fixture("phone-password.schema.json"), selfservice_selectable: true },
        SchemaSource {
            id: "multi".into(),
            url: fixture("multi-identifier.schema.json"),
            selfservice_selectable: false,
        },
    ];
    cfg
}

pub struct TestApp {
    pub app: Option<App>,
    pub db: TestDb,
    pub public: String,
    pub admin: String,
    pub http: reqwest::Client,
}

type ConfigTweak = Box<dyn FnOnce(&mut Config)>;

pub struct Builder {
    db: Db,
    migrate: bool,
    tweak: Option<ConfigTweak>,
    clock: Option<tessera::clock::Clock>,
    shared: Option<(String, String)>,
}

impl TestApp {
    pub fn builder(db: Db) -> Builder {
        Builder { db, migrate: true, tweak: None, clock: None, shared: None }
    }

    pub async fn new(db: Db) -> TestApp {
        Self::builder(db).build().await
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().unwrap()
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// Stops the servers gracefully (flushing the Persister) and keeps the database.
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }
}

impl Builder {
    pub fn no_migrations(mut self) -> Self {
        self.migrate = false;
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut Config) + 'static) -> Self {
        self.tweak = Some(Box::new(f));
        self
    }

    /// Uses a fixed clock the test can advance.
    pub fn clock(mut self, clock: tessera::clock::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Runs against the database of `other` (a second instance).
    pub fn same_db_as(mut self, other: &TestApp) -> Self {
        self.shared = Some((other.db.dsn.clone(), other.db.tag.clone()));
        self
    }

    pub async fn build(self) -> TestApp {
        let db = match self.shared {
            Some((dsn, tag)) => TestDb { dsn, tag, _dir: None, pg: None },
            None => TestDb::new(self.db).await,
        };
        let mut cfg = test_config(&db.dsn);
        if let Some(f) = self.tweak {
            f(&mut cfg);
        }
        let app =
            App::build(cfg, BuildOptions { migrate: self.migrate, workers: Some(1), clock: self.clock }).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestApp { public: app.public_url(), admin: app.admin_url(), app: Some(app), db, http }
    }
}

/// An identity with a password credential and addresses, as the admin API will build them.
pub fn identity(email: &str) -> Identity {
    let now = tessera::clock::Clock::system().now();
    let id = uuid::Uuid::new_v4();
    let mut credentials = std::collections::BTreeMap::new();
    credentials.insert(
        "password".to_string(),
        Credential {
            id: uuid::Uuid::new_v4(),
            kind: "password".into(),
            identifiers: vec![email.to_string()],
            config: serde_json::json!({"hashed_password": "$2a$12$placeholder"}),
            version: 0,
            created_at: now,
            updated_at: now,
        },
    );
    Identity {
        id,
        schema_id: "default".into(),
        state: IdentityState::Active,
        state_changed_at: Some(now),
        traits: serde_json::json!({"email": email}),
        metadata_public: None,
        metadata_admin: Some(serde_json::json!({"n": 0})),
        external_id: None,
        organization_id: None,
        credentials,
        verifiable_addresses: vec![VerifiableAddress {
            id: uuid::Uuid::new_v4(),
            value: email.to_string(),
            verified: false,
            via: "email".into(),
            status: "pending".into(),
            verified_at: None,
            created_at: now,
            updated_at: now,
        }],
        recovery_addresses: vec![RecoveryAddress {
            id: uuid::Uuid::new_v4(),
            value: email.to_string(),
            via: "email".into(),
            created_at: now,
            updated_at: now,
        }],
        created_at: now,
        updated_at: now,
        version: 0,
    }
}

/// Reads an identity straight from the store.
pub async fn stored(store: &tessera::persistence::Store, id: uuid::Uuid) -> Option<Identity> {
    let mut pooled = store.get().await.unwrap();
    let mut conn = pooled.conn();
    tessera::persistence::identity::find(&mut conn, id).await.unwrap()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera"))
}

/// Terminates every PostgreSQL backend whose application_name is `tag`, every 15 ms,
/// until `stop` is set. Returns how many it killed.
pub async fn kill_connections_until(
    base: String,
    tag: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let mut admin = AsyncPgConnection::establish(&base).await.unwrap();
    let mut kills = 0u64;
    // Kills for at most 3 s: under load a batch may outlast the kill interval every time, and
    // the writes must be able to finish once the database is left alone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::Relaxed)
        && std::time::Instant::now() < deadline
    {
        let sql = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{tag}'");
        if let Ok(n) = diesel::sql_query(sql).execute(&mut admin).await {
            kills += n as u64;
        }
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
    kills
}

impl TestApp {
    /// Sends a JSON request to the admin server; returns status, headers and the JSON body
    /// (`Null` when empty).
    pub async fn admin_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.admin));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let json = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, headers, json)
    }
}

/// Starts a peer process (stdout piped, killed on drop) and returns it with the first line it
/// prints (its address); `None` (after `cannot_run`) when the program cannot be started.
pub async fn start_peer(mut cmd: tokio::process::Command, what: &str) -> Option<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt;
    let spawned = cmd.stdout(std::process::Stdio::piped()).kill_on_drop(true).spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            cannot_run(&format!("{what} cannot be started: {e}"));
            return None;
        }
    };
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap();
    Some((child, line.unwrap_or_default().trim().to_string()))
}
