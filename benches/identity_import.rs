//! Batch identity import through `PATCH /admin/identities` vs. the raw rate of inserting the
//! same rows with multi-row INSERTs into the same database, one run; and import with
//! plain-text passwords vs. the raw hash rate of the same hasher and pool.
//! Needs PostgreSQL: `DATABASE_URL=postgres://… cargo bench --bench identity_import`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use std::time::Instant;
use tessera::app::{App, BuildOptions};
use tessera::config::{self, SchemaSource};

const PER_REQUEST: usize = 1000;
const ROUNDS: usize = 8;
const PLAINTEXT_PER_REQUEST: usize = 200;
const PLAINTEXT_ROUNDS: usize = 2;
const BCRYPT: &str = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

const SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {
    "email": {"type": "string", "format": "email", "ory.sh/kratos": {
      "credentials": {"password": {"identifier": true}},
      "verification": {"via": "email"}, "recovery": {"via": "email"}}},
    "name": {"type": "string"}
  }, "required": ["email"], "additionalProperties": false}}
}"#;

fn body(run: &str, round: usize, n: usize, plaintext: bool) -> Value {
    let email = format!("{run}-{round}-{n}@bench.example");
    let password = if plaintext {
        json!({"password": format!("pw-{round}-{n}-long-enough")})
    } else {
        json!({"hashed_password": BCRYPT})
    };
    json!({"create": {"traits": {"email": email, "name": "Bench User"}, "credentials": {"password": {"config": password}}}})
}

async fn import(http: &reqwest::Client, admin: &str, run: &str, rounds: usize, per: usize, plaintext: bool) -> f64 {
    let start = Instant::now();
    for round in 0..rounds {
        let items: Vec<Value> = (0..per).map(|n| body(run, round, n, plaintext)).collect();
        let res =
            http.patch(format!("{admin}/admin/identities")).json(&json!({"identities": items})).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let out: Value = res.json().await.unwrap();
        assert!(out["identities"].as_array().unwrap().iter().all(|i| i["action"] == "create"), "{out}");
    }
    (rounds * per) as f64 / start.elapsed().as_secs_f64()
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The rows an import writes, inserted with one multi-row INSERT per table per 1,000.
async fn raw_inserts(conn: &mut AsyncPgConnection, run: &str, rounds: usize) -> f64 {
    let start = Instant::now();
    for round in 0..rounds {
        let now = "now()";
        let (mut ids, mut creds, mut idents, mut ver, mut rec) = (vec![], vec![], vec![], vec![], vec![]);
        for n in 0..PER_REQUEST {
            let email = format!("{run}-{round}-{n}@bench.example");
            let (iid, cid) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            let traits = json!({"email": email, "name": "Bench User"}).to_string();
            ids.push(format!(
                "('{iid}','default','active',{now},{}::jsonb,NULL,NULL,NULL,NULL,NULL,{now},{now})",
                q(&traits)
            ));
            let config = json!({"hashed_password": BCRYPT}).to_string();
            creds.push(format!("('{cid}','{iid}','password',{}::jsonb,0,{now},{now})", q(&config)));
            idents.push(format!("('{}',{},'{cid}','{iid}','password',{now},{now})", uuid::Uuid::new_v4(), q(&email)));
            ver.push(format!(
                "('{}','{iid}','email',{},false,NULL,'pending',{now},{now})",
                uuid::Uuid::now_v7(),
                q(&email)
            ));
            rec.push(format!("('{}','{iid}','email',{},{now},{now})", uuid::Uuid::now_v7(), q(&email)));
        }
        let sql = format!(
            "BEGIN;\
             INSERT INTO identities (id,schema_id,state,state_changed_at,traits,metadata_public,metadata_admin,external_id,organization_id,available_aal,created_at,updated_at) VALUES {};\
             INSERT INTO identity_credentials (id,identity_id,type,config,version,created_at,updated_at) VALUES {};\
             INSERT INTO identity_credential_identifiers (id,identifier,identity_credential_id,identity_id,type,created_at,updated_at) VALUES {};\
             INSERT INTO identity_verifiable_addresses (id,identity_id,via,value,verified,verified_at,status,created_at,updated_at) VALUES {};\
             INSERT INTO identity_recovery_addresses (id,identity_id,via,value,created_at,updated_at) VALUES {};\
             COMMIT;",
            ids.join(","),
            creds.join(","),
            idents.join(","),
            ver.join(","),
            rec.join(",")
        );
        conn.batch_execute(&sql).await.unwrap();
    }
    (rounds * PER_REQUEST) as f64 / start.elapsed().as_secs_f64()
}

async fn run() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        eprintln!("identity_import needs PostgreSQL: set DATABASE_URL");
        return;
    };
    let schema = format!("bimport{}", std::process::id());
    let mut admin_conn = AsyncPgConnection::establish(&base).await.unwrap();
    diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut admin_conn).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let dsn = format!("{base}{sep}options=-csearch_path%3D{schema}");

    let mut cfg = config::load(None, Vec::new()).unwrap().config;
    cfg.dsn = Some(dsn.clone());
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    // Outside --dev the server needs configured secrets.
    cfg.secrets.default = vec!["bench-secret-0123456789abcdef".into()];
    let url = format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(SCHEMA));
    cfg.identity.schemas = vec![SchemaSource { id: "default".into(), url, selfservice_selectable: true }];
    let hashers = cfg.hashers.clone();
    let app = App::build(cfg, BuildOptions { migrate: true, workers: Some(2), clock: None }).await.unwrap();
    let http = reqwest::Client::new();
    let admin = app.admin_url();
    let mut raw_conn = AsyncPgConnection::establish(&dsn).await.unwrap();

    // Warm up both paths.
    import(&http, &admin, "warm", 1, 200, false).await;
    raw_inserts(&mut raw_conn, "warmraw", 1).await;

    let imported = import(&http, &admin, "imp", ROUNDS, PER_REQUEST, false).await;
    let raw = raw_inserts(&mut raw_conn, "raw", ROUNDS).await;
    println!("backend: postgres, {ROUNDS} requests x {PER_REQUEST} identities (bcrypt pre-hashed, 5 rows each)");
    println!("batch import (PATCH /admin/identities): {imported:>9.0} identities/s");
    println!("raw multi-row INSERTs, same rows:       {raw:>9.0} identities/s");
    println!("ratio import / raw: {:.2}", imported / raw);

    // Plain-text passwords: the import hashes each one with the configured hasher.
    let pool = tessera::hash::HashPool::new(&hashers).unwrap();
    let n = PLAINTEXT_ROUNDS * PLAINTEXT_PER_REQUEST;
    let start = Instant::now();
    let hashes = (0..n).map(|i| pool.hash(format!("raw-{i}-long-enough").into_bytes()));
    futures_util::future::join_all(hashes).await.into_iter().for_each(|h| {
        h.unwrap();
    });
    let raw_hash = n as f64 / start.elapsed().as_secs_f64();
    let plain = import(&http, &admin, "plain", PLAINTEXT_ROUNDS, PLAINTEXT_PER_REQUEST, true).await;
    println!("hasher {:?} (pool of {}), {n} plain-text passwords", hashers.algorithm, pool.workers());
    println!("import with plain-text passwords: {plain:>9.1} identities/s");
    println!("raw hashes on the same pool:       {raw_hash:>9.1} hashes/s");
    println!("ratio import / raw hash: {:.2}", plain / raw_hash);

    app.stop().await;
    let _ = diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin_conn).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(run());
}
