//! The live-session registry: `SessionActor`s by token hash, activated on first use with
//! single-flight loading (many concurrent callers, one store read), passivated when idle or
//! when over `actors.session.max_live` (least recently used first, sampled).

use super::actor::{Cell, Passivate, Revalidate, SessionActor, read};
use super::{Aal, Session};
use crate::config::SessionActorsConfig;
use crate::identity::Identity;
use crate::persistence::{Store, StoreError, identity as identity_rows, session as session_rows};
use actix::prelude::*;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// What live sessions need of their identity; shared by all live sessions of one identity
/// (as long as it is unchanged), without credentials.
#[derive(Debug)]
pub struct SharedIdentity {
    pub identity: Identity,
    pub schema_url: String,
    /// The highest AAL the identity's credentials allow (behaviour.md §14.2).
    pub available_aal: Aal,
    /// The identity as whoami shows it, rendered once and shared by its sessions.
    pub rendered: std::sync::OnceLock<String>,
}

/// A session token's SHA-256 digest: the registry's key (the store keeps its hex form).
pub type Digest = [u8; 32];

/// Live identities by id, shared between sessions (weak: dropped with their last session).
pub type IdentityCache = Arc<DashMap<Uuid, Weak<SharedIdentity>>>;

/// A live session with what answering for it needs.
#[derive(Debug)]
pub struct Live {
    /// The session without its token hashes (lookups are done; they are not needed here).
    pub session: Session,
    pub shared: Arc<SharedIdentity>,
    pub validated_at: Instant,
    /// The session's whoami JSON around its `identity` value (rendered on first use; a
    /// snapshot is immutable and whoami only answers for active sessions, so `active` is true).
    pub whoami_parts: std::sync::OnceLock<(String, String)>,
}

/// How a session is looked up in the store.
#[derive(Debug, Clone)]
pub enum Key {
    TokenHash(String),
    Id(Uuid),
}

/// The AAL an identity can reach with its credentials.
pub fn available_aal(identity: &Identity) -> Aal {
    use serde_json::Value as Json;
    let second = identity.credentials.values().any(|c| match c.kind.as_str() {
        "totp" => c.config.get("totp_url").and_then(Json::as_str).is_some_and(|u| !u.is_empty()),
        "lookup_secret" => c.config.get("recovery_codes").and_then(Json::as_array).is_some_and(|a| !a.is_empty()),
        "webauthn" => c
            .config
            .get("credentials")
            .and_then(Json::as_array)
            .is_some_and(|a| a.iter().any(|k| k.get("is_passwordless") != Some(&Json::Bool(true)))),
        _ => false,
    });
    if second {
        Aal::Aal2
    } else if crate::identity::service::count_first_factors(identity) > 0 {
        Aal::Aal1
    } else {
        Aal::Aal0
    }
}

/// Loads a session and its identity from the store.
pub async fn load_live(
    store: &Store,
    public_base: &str,
    cache: &IdentityCache,
    key: Key,
) -> Result<Option<Arc<Live>>, StoreError> {
    let mut pooled = store.get().await?;
    let mut conn = pooled.conn();
    let (session, mut identity) = match (&key, &mut conn) {
        // PostgreSQL: one statement (one round trip) for the session and its identity.
        (Key::TokenHash(h), crate::persistence::Conn::Pg(c)) => {
            match session_rows::find_with_identity_pg(c, h).await? {
                Some(found) => found,
                None => return Ok(None),
            }
        }
        _ => {
            let session = match &key {
                Key::TokenHash(h) => session_rows::find_by_token_hash(&mut conn, h).await?,
                Key::Id(id) => session_rows::find(&mut conn, *id).await?,
            };
            let Some(session) = session else { return Ok(None) };
            let Some(identity) = identity_rows::find(&mut conn, session.identity_id).await? else { return Ok(None) };
            (session, identity)
        }
    };
    let mut session = session;
    session.token_hash = String::new();
    session.logout_token_hash = String::new();
    let available_aal = available_aal(&identity);
    // A live session never shows credentials; keeping them would only cost memory.
    identity.credentials.clear();
    let reusable = cache
        .get(&identity.id)
        .and_then(|w| w.upgrade())
        .filter(|s| s.identity == identity && s.available_aal == available_aal);
    let shared = match reusable {
        Some(s) => s,
        None => {
            let s = Arc::new(SharedIdentity {
                schema_url: crate::schema::schema_url(public_base, &identity.schema_id),
                available_aal,
                identity,
                rendered: Default::default(),
            });
            cache.insert(s.identity.id, Arc::downgrade(&s));
            s
        }
    };
    Ok(Some(Arc::new(Live { session, shared, validated_at: Instant::now(), whoami_parts: Default::default() })))
}

struct Entry {
    cell: Cell,
    addr: Addr<SessionActor>,
    session_id: Uuid,
    identity_id: Uuid,
    last_used: AtomicU64,
}

struct Inner {
    by_token: DashMap<Digest, Arc<Entry>>,
    token_of: DashMap<Uuid, Digest>,
    loading: DashMap<Digest, Arc<OnceCell<Option<Arc<Entry>>>>>,
    identities: IdentityCache,
    store: Store,
    config: SessionActorsConfig,
    public_base: String,
    epoch: Instant,
    store_reads: AtomicU64,
}

/// Live sessions of this instance.
#[derive(Clone)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new(store: Store, config: SessionActorsConfig, public_base: String) -> SessionRegistry {
        SessionRegistry {
            inner: Arc::new(Inner {
                by_token: DashMap::new(),
                token_of: DashMap::new(),
                loading: DashMap::new(),
                identities: Arc::new(DashMap::new()),
                store,
                config,
                public_base,
                epoch: Instant::now(),
                store_reads: AtomicU64::new(0),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// The live session whose token has the SHA-256 digest `digest`, activating it if needed.
    /// `None` when no such session exists (whether it is active is for the caller to judge).
    pub async fn by_token(&self, digest: &Digest) -> Result<Option<Arc<Live>>, StoreError> {
        for _ in 0..3 {
            let entry = self.inner.by_token.get(digest).map(|e| e.value().clone());
            let Some(entry) = entry else {
                return Ok(self.activate(digest).await?.map(|e| read(&e.cell)));
            };
            entry.last_used.store(self.now_ms(), Ordering::Relaxed);
            let snapshot = read(&entry.cell);
            if snapshot.validated_at.elapsed() < self.inner.config.revalidate_interval.0 {
                return Ok(Some(snapshot));
            }
            match entry.addr.send(Revalidate).await {
                Ok(Ok(Some(live))) => return Ok(Some(live)),
                Ok(Ok(None)) => {
                    self.drop_entry(digest);
                    return Ok(None);
                }
                Ok(Err(e)) => return Err(e),
                // A closed mailbox (the actor stopped or panicked) is not live: re-activate.
                Err(_) => self.drop_entry(digest),
            }
        }
        Ok(None)
    }

    async fn activate(&self, digest: &Digest) -> Result<Option<Arc<Entry>>, StoreError> {
        let cell = self.inner.loading.entry(*digest).or_insert_with(|| Arc::new(OnceCell::new())).clone();
        let result = cell.get_or_try_init(|| self.load(digest)).await.cloned();
        self.inner.loading.remove_if(digest, |_, v| Arc::ptr_eq(v, &cell));
        result
    }

    async fn load(&self, digest: &Digest) -> Result<Option<Arc<Entry>>, StoreError> {
        if let Some(e) = self.inner.by_token.get(digest) {
            return Ok(Some(e.value().clone()));
        }
        self.inner.store_reads.fetch_add(1, Ordering::Relaxed);
        let Some(live) = load_live(
            &self.inner.store,
            &self.inner.public_base,
            &self.inner.identities,
            Key::TokenHash(hex::encode(digest)),
        )
        .await?
        else {
            return Ok(None);
        };
        let (session_id, identity_id) = (live.session.id, live.shared.identity.id);
        let cell: Cell = Arc::new(RwLock::new(live));
        let actor = SessionActor {
            cell: cell.clone(),
            store: self.inner.store.clone(),
            revalidate_interval: self.inner.config.revalidate_interval.0,
            public_base: self.inner.public_base.clone(),
            identities: self.inner.identities.clone(),
        };
        let entry = Arc::new(Entry {
            cell,
            addr: actor.start(),
            session_id,
            identity_id,
            last_used: AtomicU64::new(self.now_ms()),
        });
        self.inner.token_of.insert(session_id, *digest);
        self.inner.by_token.insert(*digest, entry.clone());
        if self.inner.by_token.len() > self.inner.config.max_live {
            self.evict_least_recently_used(digest);
        }
        Ok(Some(entry))
    }

    /// Passivates the least recently used of a sample of live sessions (not `keep`).
    fn evict_least_recently_used(&self, keep: &Digest) {
        let victim = self
            .inner
            .by_token
            .iter()
            .filter(|e| e.key() != keep)
            .take(64)
            .min_by_key(|e| e.value().last_used.load(Ordering::Relaxed))
            .map(|e| *e.key());
        if let Some(v) = victim {
            self.drop_entry(&v);
        }
    }

    fn drop_entry(&self, digest: &Digest) {
        if let Some((_, e)) = self.inner.by_token.remove(digest) {
            self.inner.token_of.remove_if(&e.session_id, |_, t| t == digest);
            e.addr.do_send(Passivate);
        }
    }

    /// Drops the actors that announced changes make stale (revoked sessions, changed identities).
    pub fn follow(&self, invalidation: &crate::persistence::invalidation::Invalidation) {
        use crate::persistence::invalidation::Notice;
        let registry = self.clone();
        invalidation.subscribe(move |n| match n {
            Notice::Session(id) => registry.invalidate_session(id),
            Notice::Identity(id) => registry.invalidate_identity(id),
            Notice::Flow(..) => {}
        });
    }

    /// Drops a session's actor (after a revocation or change): the next use reloads it.
    pub fn invalidate_session(&self, session_id: Uuid) {
        if let Some((_, token)) = self.inner.token_of.remove(&session_id) {
            self.drop_entry(&token);
        }
    }

    /// Drops the actors of every live session of an identity.
    pub fn invalidate_identity(&self, identity_id: Uuid) {
        let tokens: Vec<Digest> =
            self.inner.by_token.iter().filter(|e| e.value().identity_id == identity_id).map(|e| *e.key()).collect();
        for t in tokens {
            self.drop_entry(&t);
        }
    }

    /// Passivates sessions idle longer than `actors.session.idle_timeout`; returns how many.
    pub fn sweep_idle(&self) -> usize {
        let idle = self.inner.config.idle_timeout.0.as_millis() as u64;
        let now = self.now_ms();
        let idle_tokens: Vec<Digest> = self
            .inner
            .by_token
            .iter()
            .filter(|e| now.saturating_sub(e.value().last_used.load(Ordering::Relaxed)) >= idle)
            .map(|e| *e.key())
            .collect();
        for t in &idle_tokens {
            self.drop_entry(t);
        }
        self.inner.identities.retain(|_, w| w.strong_count() > 0);
        idle_tokens.len()
    }

    /// Stops a session's actor but leaves its registry entry, as a panicking handler would
    /// (tests: a closed mailbox must be treated as not live).
    #[doc(hidden)]
    pub fn stop_actor_keep_entry(&self, session_id: Uuid) {
        if let Some(token) = self.inner.token_of.get(&session_id)
            && let Some(e) = self.inner.by_token.get(token.value())
        {
            e.addr.do_send(Passivate);
        }
    }

    /// Number of live session actors.
    pub fn live(&self) -> usize {
        self.inner.by_token.len()
    }

    /// Store reads made to activate sessions (tests and benchmarks count them).
    pub fn store_reads(&self) -> u64 {
        self.inner.store_reads.load(Ordering::Relaxed)
    }
}
