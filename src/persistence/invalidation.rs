//! Change notices: what changed in the store that live actors may cache. A notice is handed
//! to this instance's subscribers at once and, on PostgreSQL, sent to the other instances with
//! NOTIFY (every instance LISTENs). Correctness never depends on delivery (live sessions
//! revalidate against the store, DESIGN.md §3; CockroachDB has no LISTEN): it only makes
//! revocation and flow changes visible sooner.

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A notice as sent by the instance `origin`: `<notice>@<origin>`, so that an instance skips
/// the echo of what it already delivered locally.
fn wire(notice: Notice, origin: Uuid) -> String {
    format!("{}@{origin}", notice.encode())
}

/// The notice of a payload unless `me` sent it (payloads without an origin are decoded too).
fn from_wire(payload: &str, me: Uuid) -> Option<Notice> {
    match payload.split_once('@') {
        Some((_, origin)) if Uuid::parse_str(origin).is_ok_and(|o| o == me) => None,
        Some((notice, _)) => Notice::decode(notice),
        None => Notice::decode(payload),
    }
}

/// The NOTIFY channel.
pub const CHANNEL: &str = "tessera_invalidate";

/// How long the listener waits quietly before pinging its connection.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// Something changed that live actors may cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A session was revoked or extended.
    Session(Uuid),
    /// An identity changed (state, credentials, traits) or was deleted.
    Identity(Uuid),
    /// A self-service flow changed; the second id is the instance that wrote it.
    Flow(Uuid, Uuid),
}

impl Notice {
    /// The NOTIFY payload: `s:<uuid>`, `i:<uuid>` or `f:<uuid>:<instance>`.
    pub fn encode(self) -> String {
        match self {
            Notice::Session(id) => format!("s:{id}"),
            Notice::Identity(id) => format!("i:{id}"),
            Notice::Flow(id, origin) => format!("f:{id}:{origin}"),
        }
    }

    /// Parses a NOTIFY payload.
    pub fn decode(s: &str) -> Option<Notice> {
        let (kind, rest) = s.split_once(':')?;
        if kind == "f" {
            let (id, origin) = rest.split_once(':')?;
            return Some(Notice::Flow(Uuid::parse_str(id).ok()?, Uuid::parse_str(origin).ok()?));
        }
        let id = Uuid::parse_str(rest).ok()?;
        match kind {
            "s" => Some(Notice::Session(id)),
            "i" => Some(Notice::Identity(id)),
            _ => None,
        }
    }
}

type Subscriber = Arc<dyn Fn(Notice) + Send + Sync>;

struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    remote: Option<mpsc::UnboundedSender<Notice>>,
    instance: Uuid,
}

/// Where change notices are announced and who hears them. Cloning shares it.
#[derive(Clone)]
pub struct Invalidation {
    inner: Arc<Inner>,
}

impl Invalidation {
    /// Notices stay inside this process (SQLite, tools).
    pub fn local(instance: Uuid) -> Invalidation {
        Invalidation { inner: Arc::new(Inner { subscribers: RwLock::default(), remote: None, instance }) }
    }

    /// On PostgreSQL (`pg_url`), also sends notices to and hears them from the other instances
    /// (two background tasks on the current tokio runtime); else as [`Self::local`].
    pub fn start(pg_url: Option<&str>, instance: Uuid) -> Invalidation {
        let Some(url) = pg_url else { return Self::local(instance) };
        let (tx, rx) = mpsc::unbounded_channel();
        let inv =
            Invalidation { inner: Arc::new(Inner { subscribers: RwLock::default(), remote: Some(tx), instance }) };
        tokio::spawn(send_loop(url.to_string(), rx, instance));
        tokio::spawn(listen_loop(url.to_string(), Arc::downgrade(&inv.inner)));
        inv
    }

    /// This instance's id (it ignores its own flow notices).
    pub fn instance(&self) -> Uuid {
        self.inner.instance
    }

    /// Calls `f` for every notice from now on (local and, on PostgreSQL, remote ones).
    pub fn subscribe(&self, f: impl Fn(Notice) + Send + Sync + 'static) {
        self.inner.subscribers.write().unwrap_or_else(|p| p.into_inner()).push(Arc::new(f));
    }

    /// Announces a change: this instance's subscribers hear it at once, the others soon.
    pub fn announce(&self, notice: Notice) {
        self.inner.deliver(notice);
        if let Some(tx) = &self.inner.remote {
            let _ = tx.send(notice);
        }
    }
}

impl Inner {
    fn deliver(&self, notice: Notice) {
        if matches!(notice, Notice::Flow(_, origin) if origin == self.instance) {
            return;
        }
        let subscribers = self.subscribers.read().unwrap_or_else(|p| p.into_inner()).clone();
        for s in subscribers {
            s(notice);
        }
    }
}

async fn send_loop(url: String, mut rx: mpsc::UnboundedReceiver<Notice>, instance: Uuid) {
    let mut conn: Option<AsyncPgConnection> = None;
    while let Some(notice) = rx.recv().await {
        for attempt in 0..3 {
            if conn.is_none() {
                conn = super::pg_tls::connect(&url).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                continue;
            };
            let sent = diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(wire(notice, instance))
                .execute(c)
                .await;
            if sent.is_ok() {
                break;
            }
            conn = None;
        }
    }
}

/// Listens until the [`Invalidation`] is dropped, reconnecting with back-off.
async fn listen_loop(url: String, inner: std::sync::Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    while inner.strong_count() > 0 {
        if let Ok(mut conn) = super::pg_tls::connect(&url).await
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
                    Ok(Some(Ok(n))) => {
                        let Some(inner) = inner.upgrade() else { return };
                        if let Some(notice) = from_wire(&n.payload, inner.instance) {
                            inner.deliver(notice);
                        }
                    }
                    Ok(_) => break,
                    Err(_) => {
                        if inner.strong_count() == 0 {
                            return;
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn notices_round_trip() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for n in [Notice::Session(a), Notice::Identity(a), Notice::Flow(a, b)] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("f:not-a-uuid:x"), None);
        assert_eq!(Notice::decode("x:00000000-0000-0000-0000-000000000000"), None);
        // On the wire: an instance skips its own echo, hears the others and bare payloads.
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(from_wire(&wire(Notice::Session(a), me), me), None);
        assert_eq!(from_wire(&wire(Notice::Session(a), other), me), Some(Notice::Session(a)));
        assert_eq!(from_wire(&Notice::Identity(a).encode(), me), Some(Notice::Identity(a)));
    }

    #[test]
    fn subscribers_hear_local_notices_but_not_their_own_flow_writes() {
        let me = Uuid::new_v4();
        let inv = Invalidation::local(me);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        inv.subscribe(move |n| h.lock().unwrap_or_else(|p| p.into_inner()).push(n));
        let (s, f) = (Uuid::new_v4(), Uuid::new_v4());
        inv.announce(Notice::Session(s));
        inv.announce(Notice::Flow(f, me));
        inv.announce(Notice::Flow(f, Uuid::nil()));
        let heard = heard.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(heard, vec![Notice::Session(s), Notice::Flow(f, Uuid::nil())]);
    }
}
