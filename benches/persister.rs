//! Durable identity writes: through the Persister (group commit) vs. write-through (each
//! write in its own transaction), same store, same pool, same concurrency, one run.
//! Prints writes/s of both and the ratio. PostgreSQL when DATABASE_URL is set, else SQLite.
//!
//!     cargo bench --bench persister            # or: DATABASE_URL=postgres://… cargo bench --bench persister
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use std::time::Instant;
use tessera::config::PersistenceConfig;
use tessera::identity::{Credential, Identity, IdentityState};
use tessera::persistence::{Durability, Persister, Store, WriteOp, identity as rows};

const WRITES: usize = 3000;
const CONCURRENCY: usize = 64;

fn identity(n: usize, run: &str) -> Identity {
    let now = tessera::clock::Clock::system().now();
    let email = format!("{run}-{n}@bench.example");
    let mut credentials = std::collections::BTreeMap::new();
    credentials.insert(
        "password".into(),
        Credential {
            id: uuid::Uuid::new_v4(),
            kind: "password".into(),
            identifiers: vec![email.clone()],
            config: serde_json::json!({"hashed_password": "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"}),
            version: 0,
            created_at: now,
            updated_at: now,
        },
    );
    Identity {
        id: uuid::Uuid::new_v4(),
        schema_id: "default".into(),
        state: IdentityState::Active,
        state_changed_at: Some(now),
        traits: serde_json::json!({"email": email}),
        metadata_public: None,
        metadata_admin: None,
        external_id: None,
        organization_id: None,
        credentials,
        verifiable_addresses: vec![],
        recovery_addresses: vec![],
        created_at: now,
        updated_at: now,
        version: 0,
    }
}

async fn write_through(store: &Store, batch: Vec<Identity>) -> f64 {
    let start = Instant::now();
    futures_util::stream::iter(batch)
        .for_each_concurrent(CONCURRENCY, |i| async move {
            let mut pooled = store.get().await.unwrap();
            let mut conn = pooled.conn();
            conn.begin().await.unwrap();
            rows::upsert(&mut conn, &i).await.unwrap();
            conn.commit().await.unwrap();
        })
        .await;
    WRITES as f64 / start.elapsed().as_secs_f64()
}

async fn through_persister(persister: &Persister, batch: Vec<Identity>) -> f64 {
    let start = Instant::now();
    futures_util::stream::iter(batch)
        .for_each_concurrent(CONCURRENCY, |i| async move {
            persister.write(WriteOp::UpsertIdentity(Box::new(i)), Durability::Durable).await.unwrap();
        })
        .await;
    WRITES as f64 / start.elapsed().as_secs_f64()
}

async fn run() {
    let run_id = format!("b{}", std::process::id());
    let _dir = tempfile::tempdir().unwrap();
    let (dsn, backend) = match std::env::var("DATABASE_URL") {
        Ok(base) => {
            let mut c = AsyncPgConnection::establish(&base).await.unwrap();
            diesel::sql_query(format!("CREATE SCHEMA {run_id}")).execute(&mut c).await.unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}options=-csearch_path%3D{run_id}"), "postgres")
        }
        Err(_) => (format!("sqlite://{}?_fk=true", _dir.path().join("bench.sqlite").display()), "sqlite"),
    };
    let store = Store::connect(&dsn).unwrap();
    store.migrate().await.unwrap();
    let persister = Persister::start(store.clone(), PersistenceConfig::default());

    // warm up both paths (connections, statement caches)
    write_through(&store, (0..64).map(|n| identity(n, "warm-a")).collect()).await;
    through_persister(&persister, (0..64).map(|n| identity(n, "warm-b")).collect()).await;

    let baseline = write_through(&store, (0..WRITES).map(|n| identity(n, "wt")).collect()).await;
    let tx_before = persister.stats().snapshot().transactions;
    let grouped = through_persister(&persister, (0..WRITES).map(|n| identity(n, "gc")).collect()).await;
    let tx = persister.stats().snapshot().transactions - tx_before;

    println!("backend: {backend}, {WRITES} durable identity writes, concurrency {CONCURRENCY}");
    println!("write-through (one transaction per write): {baseline:>9.0} writes/s");
    println!("persister (group commit, {tx:>4} transactions): {grouped:>9.0} writes/s");
    println!("ratio persister / write-through: {:.2}", grouped / baseline);

    if backend == "postgres" {
        let base = std::env::var("DATABASE_URL").unwrap();
        let mut c = AsyncPgConnection::establish(&base).await.unwrap();
        let _ = diesel::sql_query(format!("DROP SCHEMA {run_id} CASCADE")).execute(&mut c).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
