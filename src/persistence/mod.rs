//! Storage: one query layer over PostgreSQL (diesel-async) and SQLite (diesel,
//! wrapped for async), migrations, and the write-behind [`persister`].

/// Inserts `rows` (optionally as an upsert) in one multi-row statement on PostgreSQL and row
/// by row on SQLite (diesel has no multi-row INSERT for SQLite through the async wrapper;
/// SQLite round trips are in-process and cheap). The backend-specific escape hatch for bulk
/// writes.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr $(, on_conflict($col:expr) => $set:expr)?) => {
        match $conn {
            $crate::persistence::Conn::Pg(c) => {
                if !$rows.is_empty() {
                    diesel::insert_into($table)
                        .values($rows)
                        $(.on_conflict($col).do_update().set($set))?
                        .execute(&mut **c)
                        .await?;
                }
            }
            $crate::persistence::Conn::Sqlite(c) => {
                for row in $rows {
                    diesel::insert_into($table)
                        .values(row)
                        $(.on_conflict($col).do_update().set($set))?
                        .execute(&mut **c)
                        .await?;
                }
            }
        }
    };
}

pub mod cleanup;
pub mod courier;
pub mod identity;
pub mod invalidation;
pub mod kratos;
pub mod persister;
pub mod pg_tls;
pub mod schema;
pub mod selfservice;
pub mod session;
pub mod store;
pub mod types;

pub use persister::{Durability, Persister, PersisterStats, StatsSnapshot, WriteError, WriteOp};
pub use store::{Backend, Conn, Dsn, PooledConn, SqliteConn, Store, StoreError};
