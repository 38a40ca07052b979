//! The Invalidator: on PostgreSQL, change notices are sent with NOTIFY and every instance
//! LISTENs, dropping the actors that cached what changed. Correctness never depends on it
//! (live sessions revalidate against the store, DESIGN.md §3); it only makes revocation fast.

use super::Notice;
use crate::session::SessionRegistry;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the listener waits quietly before pinging its connection.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The NOTIFY channel.
pub const CHANNEL: &str = "tessera_invalidate";

/// Starts the sender and listener tasks for `pg_url`; returns where local notices go.
pub fn start(pg_url: String, registry: SessionRegistry, flows: Flows) -> mpsc::UnboundedSender<Notice> {
    let (tx, rx) = mpsc::unbounded_channel();
    actix::spawn(send_loop(pg_url.clone(), rx));
    actix::spawn(listen_loop(pg_url, registry, flows));
    tx
}

/// The flow registry of this instance and the instance's id (its own notices are ignored).
#[derive(Clone)]
pub struct Flows {
    pub registry: crate::selfservice::registry::FlowRegistry,
    pub instance: uuid::Uuid,
}

async fn send_loop(url: String, mut rx: mpsc::UnboundedReceiver<Notice>) {
    let mut conn: Option<AsyncPgConnection> = None;
    while let Some(notice) = rx.recv().await {
        for attempt in 0..3 {
            if conn.is_none() {
                conn = AsyncPgConnection::establish(&url).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                continue;
            };
            let sent = diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(notice.encode())
                .execute(c)
                .await;
            if sent.is_ok() {
                break;
            }
            conn = None;
        }
    }
}

async fn listen_loop(url: String, registry: SessionRegistry, flows: Flows) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Ok(mut conn) = AsyncPgConnection::establish(&url).await
            && diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).await.is_ok()
        {
            backoff = Duration::from_millis(100);
            loop {
                // The stream never ends by itself, even when the connection silently dies:
                // after a quiet spell the connection is pinged (the stream is re-created after
                // that; it yields every notification the connection has received).
                let next = {
                    let mut stream = std::pin::pin!(conn.notifications_stream());
                    tokio::time::timeout(KEEPALIVE, stream.next()).await
                };
                match next {
                    Ok(Some(Ok(n))) => match Notice::decode(&n.payload) {
                        Some(Notice::Session(id)) => registry.invalidate_session(id),
                        Some(Notice::Identity(id)) => registry.invalidate_identity(id),
                        Some(Notice::Flow(id, origin)) if origin != flows.instance => flows.registry.invalidate(id),
                        Some(Notice::Flow(..)) | None => {}
                    },
                    Ok(_) => break,
                    Err(_) => {
                        if diesel::sql_query("SELECT 1").execute(&mut conn).await.is_err() {
                            break;
                        }
                    }
                }
            }
            tracing::warn!("invalidation listener lost its connection; reconnecting");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
