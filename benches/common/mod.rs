//! Shared by the benchmarks: a database for one run.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// A fresh PostgreSQL schema named `<prefix><pid>` when DATABASE_URL is set (returned so it can
/// be dropped), else a SQLite file in `dir`. Returns `(dsn, backend name, schema)`.
pub async fn database(prefix: &str, dir: &std::path::Path) -> (String, &'static str, Option<String>) {
    match std::env::var("DATABASE_URL") {
        Ok(base) => {
            let schema = format!("{prefix}{}", std::process::id());
            let mut c = AsyncPgConnection::establish(&base).await.unwrap();
            diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut c).await.unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}options=-csearch_path%3D{schema}"), "postgres", Some(schema))
        }
        Err(_) => (format!("sqlite://{}?_fk=true", dir.join("b.sqlite").display()), "sqlite", None),
    }
}
