//! The live-session registry: `SessionActor`s by token hash, activated on first use with
//! single-flight loading (many concurrent callers, one store read), passivated when idle or
//! when over `actors.session.max_live` (least recently used first, sampled).

use super::actor::{Cell, Revalidate, SessionActor, read};
use super::{Aal, Session};
use crate::actors::Passivate;
use crate::actors::registry::{Entry, Registry, Resident};
use crate::config::SessionActorsConfig;
use crate::identity::Identity;
use crate::persistence::{Store, StoreError, identity as identity_rows, session as session_rows};
use actix::prelude::*;
use dashmap::DashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;
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

/// A live session in the registry: its snapshot cell and actor.
pub struct LiveSession {
    cell: Cell,
    addr: Addr<SessionActor>,
    session_id: Uuid,
    identity_id: Uuid,
}

impl Resident for LiveSession {
    fn passivate(&self) {
        self.addr.do_send(Passivate);
    }
}

struct Inner {
    by_token: Registry<Digest, LiveSession>,
    /// Session id → token digest, for invalidation by id.
    token_of: Arc<DashMap<Uuid, Digest>>,
    identities: IdentityCache,
    store: Store,
    config: SessionActorsConfig,
    public_base: String,
}

/// Live sessions of this instance.
#[derive(Clone)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new(store: Store, config: SessionActorsConfig, public_base: String) -> SessionRegistry {
        let token_of: Arc<DashMap<Uuid, Digest>> = Arc::new(DashMap::new());
        let index = token_of.clone();
        let by_token =
            Registry::new(config.max_live, config.idle_timeout.0).on_leave(move |digest, s: &LiveSession| {
                index.remove_if(&s.session_id, |_, t| t == digest);
            });
        SessionRegistry {
            inner: Arc::new(Inner {
                by_token,
                token_of,
                identities: Arc::new(DashMap::new()),
                store,
                config,
                public_base,
            }),
        }
    }

    /// The live session whose token has the SHA-256 digest `digest`, activating it if needed.
    /// `None` when no such session exists (whether it is active is for the caller to judge).
    pub async fn by_token(&self, digest: &Digest) -> Result<Option<Arc<Live>>, StoreError> {
        for _ in 0..3 {
            let Some(entry) = self.inner.by_token.get(digest) else {
                return Ok(self.activate(digest).await?.map(|e| read(&e.cell)));
            };
            let snapshot = read(&entry.cell);
            if snapshot.validated_at.elapsed() < self.inner.config.revalidate_interval.0 {
                return Ok(Some(snapshot));
            }
            match entry.addr.send(Revalidate).await {
                Ok(Ok(Some(live))) => return Ok(Some(live)),
                Ok(Ok(None)) => {
                    self.inner.by_token.remove(digest);
                    return Ok(None);
                }
                Ok(Err(e)) => return Err(e),
                // A closed mailbox (the actor stopped or panicked) is not live: re-activate.
                Err(_) => self.inner.by_token.forget_closed(digest, &entry),
            }
        }
        Ok(None)
    }

    async fn activate(&self, digest: &Digest) -> Result<Option<Arc<Entry<LiveSession>>>, StoreError> {
        let entry = self
            .inner
            .by_token
            .activate(digest, || async {
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
                Ok::<_, StoreError>(Some(LiveSession { cell, addr: actor.start(), session_id, identity_id }))
            })
            .await?;
        if let Some(e) = &entry {
            self.inner.token_of.insert(e.session_id, *digest);
        }
        Ok(entry)
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
            self.inner.by_token.remove(&token);
        }
    }

    /// Drops the actors of every live session of an identity.
    pub fn invalidate_identity(&self, identity_id: Uuid) {
        self.inner.by_token.remove_where(|_, s| s.identity_id == identity_id);
    }

    /// Passivates sessions idle longer than `actors.session.idle_timeout`; returns how many.
    pub fn sweep_idle(&self) -> usize {
        let n = self.inner.by_token.sweep_idle();
        self.inner.identities.retain(|_, w| w.strong_count() > 0);
        n
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
        self.inner.by_token.activations()
    }
}
