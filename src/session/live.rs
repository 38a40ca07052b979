//! A live session's snapshot: the session, its identity (shared by the identity's live
//! sessions, without credentials) and the whoami JSON rendered from them, loaded from the store.

use crate::identity::Identity;
use crate::model::session::{Aal, Session};
use crate::persistence::{Store, StoreError, identity as identity_rows, session as session_rows};
use dashmap::DashMap;
use std::sync::{Arc, Weak};
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
pub fn available_aal(identity: &Identity, code_mfa: bool) -> Aal {
    use serde_json::Value as Json;
    let second = identity.credentials.values().any(|c| match c.kind.as_str() {
        "totp" => c.config.get("totp_url").and_then(Json::as_str).is_some_and(|u| !u.is_empty()),
        "lookup_secret" => c.config.get("recovery_codes").and_then(Json::as_array).is_some_and(|a| !a.is_empty()),
        "webauthn" => c
            .config
            .get("credentials")
            .and_then(Json::as_array)
            // Keys with something to verify against: tessera's `key` or Kratos' `public_key`.
            .is_some_and(|a| {
                a.iter().any(|k| {
                    k.get("is_passwordless") != Some(&Json::Bool(true))
                        && (k.get("key").is_some() || k.get("public_key").is_some())
                })
            }),
        // With codes as a second factor, an identity with a code address has one.
        "code" => {
            code_mfa
                && c.config
                    .get("addresses")
                    .and_then(Json::as_array)
                    .map_or(!c.identifiers.is_empty(), |a| !a.is_empty())
        }
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
    code_mfa: bool,
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
    let available_aal = available_aal(&identity, code_mfa);
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
