//! The live-session registry: `SessionActor`s by token hash, activated on first use with
//! single-flight loading (many concurrent callers, one store read), passivated when idle or
//! when over `actors.session.max_live` (least recently used first, sampled).

use super::actor::{Cell, Revalidate, SessionActor, read};
pub use super::live::{Digest, IdentityCache, Key, Live, SharedIdentity, available_aal, load_live};
use crate::actors::Passivate;
use crate::actors::registry::{Entry, Registry, Resident};
use crate::config::SessionActorsConfig;
use crate::persistence::{Store, StoreError};
use actix::prelude::*;
use dashmap::DashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

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
    /// Identity id → token digests of its live sessions, for invalidation by identity
    /// without a scan of every live session.
    of_identity: Arc<DashMap<Uuid, Vec<Digest>>>,
    identities: IdentityCache,
    store: Store,
    config: SessionActorsConfig,
    public_base: String,
    /// Codes count as a second factor (`selfservice.methods.code.mfa_enabled`).
    code_mfa: bool,
}

/// Live sessions of this instance.
#[derive(Clone)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new(store: Store, config: SessionActorsConfig, public_base: String, code_mfa: bool) -> SessionRegistry {
        let token_of: Arc<DashMap<Uuid, Digest>> = Arc::new(DashMap::new());
        let of_identity: Arc<DashMap<Uuid, Vec<Digest>>> = Arc::new(DashMap::new());
        let (by_id, by_identity) = (token_of.clone(), of_identity.clone());
        let by_token =
            Registry::new(config.max_live, config.idle_timeout.0).on_leave(move |digest, s: &LiveSession| {
                by_id.remove_if(&s.session_id, |_, t| t == digest);
                if let Some(mut digests) = by_identity.get_mut(&s.identity_id) {
                    digests.retain(|d| d != digest);
                }
                by_identity.remove_if(&s.identity_id, |_, d| d.is_empty());
            });
        SessionRegistry {
            inner: Arc::new(Inner {
                by_token,
                token_of,
                of_identity,
                identities: Arc::new(DashMap::new()),
                store,
                config,
                public_base,
                code_mfa,
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
                    self.inner.code_mfa,
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
                    code_mfa: self.inner.code_mfa,
                    identities: self.inner.identities.clone(),
                };
                // Indexed before the entry goes live, so a revocation by id never misses it.
                self.inner.token_of.insert(session_id, *digest);
                let mut digests = self.inner.of_identity.entry(identity_id).or_default();
                if !digests.contains(digest) {
                    digests.push(*digest);
                }
                drop(digests);
                Ok::<_, StoreError>(Some(LiveSession { cell, addr: actor.start(), session_id, identity_id }))
            })
            .await?;
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
        let digests = self.inner.of_identity.get(&identity_id).map(|d| d.clone()).unwrap_or_default();
        for digest in digests {
            self.inner.by_token.remove(&digest);
        }
    }

    /// Number of identities with live sessions (tests: the index follows the registry).
    pub fn live_identities(&self) -> usize {
        self.inner.of_identity.len()
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

    /// Live session actors, activations, evictions and passivations (for metrics).
    pub fn stats(&self) -> crate::actors::registry::RegistryStats {
        self.inner.by_token.stats()
    }
}
