//! The database: a connection pool of one backend (PostgreSQL or SQLite), the connection
//! handle query code matches on, DSN parsing and migrations.

use diesel::QueryableByName;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The SQLite connection type used behind the async pool.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid DSN: {0}")]
    Dsn(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// A compare-and-set write found the row changed since it was read.
    #[error("the row was changed since it was read")]
    Stale,
}

impl StoreError {
    /// A unique-constraint violation (e.g. a duplicate credential identifier).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Errors that say something about the data rather than the database's health:
    /// retrying the same write cannot make them go away.
    pub fn is_permanent(&self) -> bool {
        use diesel::result::DatabaseErrorKind as K;
        match self {
            StoreError::Query(diesel::result::Error::DatabaseError(kind, _)) => {
                matches!(kind, K::UniqueViolation | K::ForeignKeyViolation | K::NotNullViolation | K::CheckViolation)
            }
            StoreError::Query(
                diesel::result::Error::NotFound
                | diesel::result::Error::SerializationError(_)
                | diesel::result::Error::DeserializationError(_)
                | diesel::result::Error::QueryBuilderError(_),
            ) => true,
            StoreError::Dsn(_) | StoreError::Stale => true,
            _ => false,
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StoreError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

enum Pool {
    Pg(DeadPool<AsyncPgConnection>),
    Sqlite(DeadPool<SqliteConn>),
}

/// A borrowed connection of either backend; query code matches on it with [`on_conn!`].
pub enum Conn<'a> {
    Pg(&'a mut AsyncPgConnection),
    Sqlite(&'a mut SqliteConn),
}

/// Runs one query body against whichever backend `$conn` (a `&mut Conn`) holds.
/// The body is compiled once per backend, so it must be valid diesel for both.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::persistence::store::Conn::Pg(inner) => {
                let $c = &mut **inner;
                $body
            }
            $crate::persistence::store::Conn::Sqlite(inner) => {
                let $c = &mut **inner;
                $body
            }
        }
    };
}

async fn begin<C: AsyncConnection>(c: &mut C) -> diesel::QueryResult<()> {
    C::TransactionManager::begin_transaction(c).await
}

async fn commit<C: AsyncConnection>(c: &mut C) -> diesel::QueryResult<()> {
    C::TransactionManager::commit_transaction(c).await
}

async fn rollback<C: AsyncConnection>(c: &mut C) -> diesel::QueryResult<()> {
    C::TransactionManager::rollback_transaction(c).await
}

impl Conn<'_> {
    /// Opens a transaction (or a savepoint inside one).
    pub async fn begin(&mut self) -> Result<(), StoreError> {
        Ok(on_conn!(self, c => begin(c).await)?)
    }

    /// Commits the innermost transaction.
    pub async fn commit(&mut self) -> Result<(), StoreError> {
        Ok(on_conn!(self, c => commit(c).await)?)
    }

    /// Rolls back the innermost transaction.
    pub async fn rollback(&mut self) -> Result<(), StoreError> {
        Ok(on_conn!(self, c => rollback(c).await)?)
    }
}

enum Pooled {
    Pg(Box<Object<AsyncPgConnection>>),
    Sqlite(Object<SqliteConn>),
}

/// A connection checked out of the pool.
pub struct PooledConn(Pooled);

impl PooledConn {
    /// Borrows the connection for query code.
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            Pooled::Pg(o) => Conn::Pg(o),
            Pooled::Sqlite(o) => Conn::Sqlite(o),
        }
    }
}

#[derive(QueryableByName)]
struct MigrationRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// The database: a connection pool of one backend plus migration helpers.
#[derive(Clone)]
pub struct Store {
    inner: std::sync::Arc<StoreInner>,
}

struct StoreInner {
    pool: Pool,
    backend: Backend,
    /// Where migrations connect (for SQLite: the file path; memory databases use the pool).
    migrate_url: String,
    /// Connections checked out so far (benchmarks count store work with it).
    checkouts: AtomicU64,
    /// Statements started on pooled connections so far (each one is a round trip on PostgreSQL).
    statements: Arc<AtomicU64>,
}

/// Parsed form of a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub backend: Backend,
    /// URL or path handed to the driver.
    pub url: String,
    /// Pool size (`max_conns` in the DSN, else a default per backend).
    pub max_conns: usize,
}

impl Dsn {
    /// Parses Kratos-style DSNs: `postgres://…`, `sqlite://path?_fk=true`, `sqlite:path`, `memory`.
    pub fn parse(dsn: &str) -> Result<Dsn, StoreError> {
        let dsn = dsn.trim();
        if dsn == "memory" {
            return Ok(Dsn { backend: Backend::Sqlite, url: ":memory:".into(), max_conns: 1 });
        }
        // CockroachDB speaks the PostgreSQL protocol; the SQL used is portable to it.
        if let Some(rest) = ["postgres://", "postgresql://", "cockroach://"].iter().find_map(|p| dsn.strip_prefix(p)) {
            let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
            let mut kept = Vec::new();
            let mut max_conns = std::thread::available_parallelism().map_or(4, |n| n.get() * 4).max(8);
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match k {
                    "max_conns" => {
                        max_conns =
                            v.parse().map_err(|_| StoreError::Dsn(format!("max_conns must be a number, got {v:?}")))?
                    }
                    // pool tuning options of Kratos' driver that tokio-postgres does not know
                    "max_idle_conns" | "max_conn_lifetime" | "max_conn_idle_time" => {}
                    _ => kept.push(pair),
                }
            }
            let mut url = format!("postgres://{base}");
            if !kept.is_empty() {
                url.push('?');
                url.push_str(&kept.join("&"));
            }
            return Ok(Dsn { backend: Backend::Postgres, url, max_conns });
        }
        if let Some(rest) = dsn.strip_prefix("sqlite://").or_else(|| dsn.strip_prefix("sqlite:")) {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(StoreError::Dsn("sqlite DSN has no path".into()));
            }
            if path.contains(":memory:") || query.split('&').any(|kv| kv == "mode=memory") {
                return Ok(Dsn { backend: Backend::Sqlite, url: ":memory:".into(), max_conns: 1 });
            }
            return Ok(Dsn { backend: Backend::Sqlite, url: path.to_string(), max_conns: 4 });
        }
        Err(StoreError::Dsn("expected postgres://…, sqlite://<path> or memory".into()))
    }
}

/// Counts every statement a connection starts (benchmarks report round trips with it).
fn count_statements(counter: Arc<AtomicU64>) -> impl diesel::connection::Instrumentation {
    move |event: diesel::connection::InstrumentationEvent<'_>| {
        if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn pg_setup(
    url: &str,
    counter: Arc<AtomicU64>,
    statement_timeout: Option<Duration>,
) -> futures_util::future::BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> {
    Box::pin(async move {
        let mut conn = super::pg_tls::connect(url).await?;
        if let Some(t) = statement_timeout {
            diesel::sql_query(format!("SET statement_timeout = {}", t.as_millis()))
                .execute(&mut conn)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        }
        conn.set_instrumentation(count_statements(counter));
        Ok(conn)
    })
}

/// How pooled PostgreSQL connections are tuned (`[persistence]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    /// `statement_timeout` of every pooled connection.
    pub statement_timeout: Option<Duration>,
    /// TCP keepalive idle time (unless the DSN sets `keepalives*` itself).
    pub keepalive: Option<Duration>,
}

fn sqlite_setup(
    url: &str,
    counter: Arc<AtomicU64>,
) -> futures_util::future::BoxFuture<'_, diesel::ConnectionResult<SqliteConn>> {
    Box::pin(async move {
        let mut conn = <SqliteConn as AsyncConnection>::establish(url).await?;
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA busy_timeout = 10000",
            "PRAGMA foreign_keys = ON",
            "PRAGMA synchronous = FULL",
        ] {
            diesel::sql_query(pragma)
                .execute(&mut conn)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        }
        conn.set_instrumentation(count_statements(counter));
        Ok(conn)
    })
}

impl Store {
    /// Builds the pool for `dsn`. Connections are made lazily, so this succeeds while the
    /// database is down; [`Store::ping`] tells whether it is up.
    pub fn connect(dsn: &str) -> Result<Store, StoreError> {
        Store::connect_tuned(dsn, Tuning::default())
    }

    /// [`Store::connect`] with statement timeout and TCP keepalive on PostgreSQL.
    pub fn connect_tuned(dsn: &str, tuning: Tuning) -> Result<Store, StoreError> {
        let dsn = Dsn::parse(dsn)?;
        let statements = Arc::new(AtomicU64::new(0));
        let pool = match dsn.backend {
            Backend::Postgres => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                let counter = statements.clone();
                let statement_timeout = tuning.statement_timeout.filter(|t| !t.is_zero());
                config.custom_setup = Box::new(move |url| pg_setup(url, counter.clone(), statement_timeout));
                let mut url = dsn.url.clone();
                if let Some(idle) = tuning.keepalive.filter(|_| !url.contains("keepalives")) {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&format!("keepalives=1&keepalives_idle={}", idle.as_secs().max(1)));
                }
                let mgr = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
                Pool::Pg(
                    DeadPool::builder(mgr)
                        .max_size(dsn.max_conns)
                        .wait_timeout(Some(Duration::from_secs(5)))
                        .create_timeout(Some(Duration::from_secs(5)))
                        .runtime(deadpool::Runtime::Tokio1)
                        .build()
                        .map_err(|e| StoreError::Dsn(e.to_string()))?,
                )
            }
            Backend::Sqlite => {
                let mut config = ManagerConfig::<SqliteConn>::default();
                let counter = statements.clone();
                config.custom_setup = Box::new(move |url| sqlite_setup(url, counter.clone()));
                let mgr = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(dsn.url.clone(), config);
                Pool::Sqlite(
                    DeadPool::builder(mgr)
                        .max_size(dsn.max_conns)
                        .wait_timeout(Some(Duration::from_secs(10)))
                        .runtime(deadpool::Runtime::Tokio1)
                        .build()
                        .map_err(|e| StoreError::Dsn(e.to_string()))?,
                )
            }
        };
        Ok(Store {
            inner: std::sync::Arc::new(StoreInner {
                pool,
                backend: dsn.backend,
                migrate_url: dsn.url,
                checkouts: Default::default(),
                statements,
            }),
        })
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The PostgreSQL URL (for a dedicated LISTEN connection); `None` on SQLite.
    pub fn pg_url(&self) -> Option<&str> {
        (self.inner.backend == Backend::Postgres).then_some(self.inner.migrate_url.as_str())
    }

    /// Connections checked out of the pool so far.
    pub fn checkouts(&self) -> u64 {
        AtomicU64::load(&self.inner.checkouts, Ordering::Relaxed)
    }

    /// Statements run on pooled connections so far (migrations not included).
    pub fn statements(&self) -> u64 {
        AtomicU64::load(&self.inner.statements, Ordering::Relaxed)
    }

    /// Checks a connection out of the pool.
    pub async fn get(&self) -> Result<PooledConn, StoreError> {
        AtomicU64::fetch_add(&self.inner.checkouts, 1, Ordering::Relaxed);
        Ok(PooledConn(match &self.inner.pool {
            Pool::Pg(p) => Pooled::Pg(Box::new(p.get().await?)),
            Pool::Sqlite(p) => Pooled::Sqlite(p.get().await?),
        }))
    }

    /// Round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut pooled = self.get().await?;
        let mut conn = pooled.conn();
        on_conn!(&mut conn, c => diesel::sql_query("SELECT 1").execute(c).await)?;
        Ok(())
    }

    /// Applies all pending migrations; returns the names of those applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.with_harness(|h| h.run_pending()).await
    }

    /// Reverts the last `steps` applied migrations (newest first); returns their names.
    pub async fn migrate_down(&self, steps: usize) -> Result<Vec<String>, StoreError> {
        self.with_harness(move |h| {
            let mut reverted = Vec::new();
            for _ in 0..steps {
                if h.applied()?.is_empty() {
                    break;
                }
                reverted.push(h.revert_last()?);
            }
            Ok(reverted)
        })
        .await
    }

    /// Every migration this build knows, oldest first, with whether it is applied.
    pub async fn migration_status(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let known: Vec<(String, String)> = match self.inner.backend {
            Backend::Postgres => migration_names::<diesel::pg::Pg>(&PG_MIGRATIONS),
            Backend::Sqlite => migration_names::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
        };
        let mut pooled = self.get().await?;
        let mut conn = pooled.conn();
        // No table yet: nothing is applied.
        let applied: Vec<MigrationRow> = on_conn!(&mut conn, c =>
            diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(c).await
        )
        .unwrap_or_default();
        Ok(known
            .into_iter()
            .map(|(version, name)| {
                let done = applied.iter().any(|a| a.version == version);
                (name, done)
            })
            .collect())
    }

    /// Names of migrations that are not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.migration_status().await?.into_iter().filter(|(_, done)| !done).map(|(name, _)| name).collect())
    }

    /// Runs `job` with this backend's migrations on a blocking thread: PostgreSQL on its own
    /// connection (with TLS as the DSN says), SQLite through the pool so that an in-memory
    /// database is migrated in place.
    async fn with_harness<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Harness) -> Result<T, String> + Send + 'static,
    {
        match &self.inner.pool {
            Pool::Pg(_) => {
                let async_conn = super::pg_tls::connect(&self.inner.migrate_url)
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                tokio::task::spawn_blocking(move || {
                    type Wrapped = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
                    let mut conn = Wrapped::from(async_conn);
                    job(&mut Migrations {
                        conn: &mut conn,
                        source: || PG_MIGRATIONS,
                        backend: std::marker::PhantomData::<diesel::pg::Pg>,
                    })
                    .map_err(StoreError::Migration)
                })
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?
            }
            Pool::Sqlite(pool) => {
                let mut obj = pool.get().await?;
                let conn: &mut SqliteConn = &mut obj;
                let out = conn
                    .spawn_blocking(move |conn| {
                        Ok(job(&mut Migrations {
                            conn,
                            source: || SQLITE_MIGRATIONS,
                            backend: std::marker::PhantomData::<diesel::sqlite::Sqlite>,
                        }))
                    })
                    .await
                    .map_err(|e| StoreError::Migration(e.to_string()))?;
                out.map_err(StoreError::Migration)
            }
        }
    }
}

/// The migration operations the CLI needs, the same for both backends.
trait Harness {
    fn run_pending(&mut self) -> Result<Vec<String>, String>;
    fn revert_last(&mut self) -> Result<String, String>;
    fn applied(&mut self) -> Result<Vec<String>, String>;
}

struct Migrations<'c, C, DB> {
    conn: &'c mut C,
    /// The embedded migrations (a `const`, made afresh for each use).
    source: fn() -> EmbeddedMigrations,
    backend: std::marker::PhantomData<DB>,
}

impl<C, DB: diesel::backend::Backend> Migrations<'_, C, DB> {
    /// A migration's name (`2026-11-25-000001_initial`) from its version, as `status` names it.
    fn name_of(&self, version: &str) -> String {
        let known = migration_names::<DB>(&(self.source)());
        known.into_iter().find(|(v, _)| v == version).map_or_else(|| version.to_string(), |(_, name)| name)
    }
}

impl<C: MigrationHarness<DB>, DB: diesel::backend::Backend> Harness for Migrations<'_, C, DB> {
    fn run_pending(&mut self) -> Result<Vec<String>, String> {
        let done: Vec<String> = self
            .conn
            .run_pending_migrations((self.source)())
            .map_err(|e| e.to_string())?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(done.iter().map(|v| self.name_of(v)).collect())
    }

    fn revert_last(&mut self) -> Result<String, String> {
        let version = self.conn.revert_last_migration((self.source)()).map_err(|e| e.to_string())?;
        Ok(self.name_of(&version.to_string()))
    }

    fn applied(&mut self) -> Result<Vec<String>, String> {
        let done = self.conn.applied_migrations().map_err(|e| e.to_string())?;
        Ok(done.iter().map(ToString::to_string).collect())
    }
}

fn migration_names<DB: diesel::backend::Backend>(source: &EmbeddedMigrations) -> Vec<(String, String)> {
    use diesel::migration::MigrationSource;
    MigrationSource::<DB>::migrations(source)
        .unwrap_or_default()
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kratos_dsns() -> Result<(), StoreError> {
        let pg = Dsn::parse("postgres://u:p@h:5432/db?sslmode=disable&max_conns=20&max_idle_conns=4")?;
        assert_eq!(pg.backend, Backend::Postgres);
        assert_eq!(pg.url, "postgres://u:p@h:5432/db?sslmode=disable");
        assert_eq!(pg.max_conns, 20);
        let lite = Dsn::parse("sqlite:///var/lib/kratos/db.sqlite?_fk=true")?;
        assert_eq!(lite.url, "/var/lib/kratos/db.sqlite");
        assert_eq!(Dsn::parse("memory")?.url, ":memory:");
        assert_eq!(Dsn::parse("sqlite://file::memory:?_fk=true")?.max_conns, 1);
        assert!(Dsn::parse("mysql://x").is_err());
        let roach = Dsn::parse("cockroach://root@h:26257/defaultdb?sslmode=disable")?;
        assert_eq!(
            (roach.backend, roach.url.as_str()),
            (Backend::Postgres, "postgres://root@h:26257/defaultdb?sslmode=disable")
        );
        Ok(())
    }
}
