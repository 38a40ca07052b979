//! The session service: issue, authenticate, list, extend and revoke sessions. Issue and
//! revoke are durable writes; the registry is told to drop what changed.

use super::live::Live;
use super::registry::SessionRegistry;
use super::rules::{compute_aal, new_token, token_digest, token_hash};
use crate::model::session::{AuthMethod, Device, Session};

/// A session-token exchange code: 64 alphanumerics.
fn exchange_code() -> String {
    use rand::Rng;
    rand::rng().sample_iter(&rand::distr::Alphanumeric).take(64).map(char::from).collect()
}
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::identity::Identity;
use crate::persistence::invalidation::{Invalidation, Notice};
use crate::persistence::session::{self as rows, ActiveFilter};
use crate::persistence::{Durability, Persister, Store, WriteError, WriteOp};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// Sessions of this instance and the store.
#[derive(Clone)]
pub struct SessionService {
    pub config: Arc<Config>,
    pub store: Store,
    pub persister: Persister,
    pub registry: SessionRegistry,
    pub clock: Clock,
    sealer: crate::seal::Sealer,
    invalidation: Invalidation,
    /// `whoami?tokenize_as=`: keys, mappers and recent tokens.
    pub tokenizer: Arc<super::tokenizer::Tokenizer>,
}

fn write_error(e: WriteError) -> Error {
    match e {
        // A session write has no unique value a client could have chosen, and is never stale.
        WriteError::Conflict(_) | WriteError::Rejected(_) | WriteError::Stale => Error::internal(&e),
        other => Error::from(other),
    }
}

impl SessionService {
    /// Builds the service; cookie keys come from `secrets.cookie`, else `secrets.default`.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        persister: Persister,
        registry: SessionRegistry,
        clock: Clock,
        invalidation: Invalidation,
    ) -> SessionService {
        let secrets = if config.secrets.cookie.is_empty() { &config.secrets.default } else { &config.secrets.cookie };
        let sealer = crate::seal::Sealer::new(secrets, "");
        let tokenizer = Arc::new(super::tokenizer::Tokenizer::new(&config.clients));
        SessionService { config, store, persister, registry, clock, sealer, invalidation, tokenizer }
    }

    fn lifespan(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.session.lifespan.0).unwrap_or(chrono::Duration::hours(24))
    }

    /// Writes a new session.
    async fn persist(&self, session: &Session) -> Result<(), Error> {
        self.persister
            .write(WriteOp::UpsertSession(Box::new(session.clone())), Durability::Durable)
            .await
            .map_err(write_error)
    }

    /// Writes a change of a stored session: a session deleted meanwhile stays deleted (404)
    /// and a revoked one stays revoked.
    async fn persist_change(&self, session: &Session) -> Result<(), Error> {
        self.persister
            .write(WriteOp::UpdateSession(Box::new(session.clone())), Durability::Durable)
            .await
            .map_err(write_error)
    }

    fn changed(&self, notice: Notice) {
        self.invalidation.announce(notice);
    }

    /// Issues a session for `identity` (durable). Returns it with its clear-text token.
    pub async fn issue(
        &self,
        identity: &Identity,
        methods: Vec<AuthMethod>,
        device: Option<Device>,
    ) -> Result<(Session, String), Error> {
        let (session, token) = self.build(identity, methods, device);
        self.persist(&session).await?;
        Ok((session, token))
    }

    /// A new session for `identity`, not stored yet (hooks may still refuse it): see [`Self::save`].
    pub fn build(&self, identity: &Identity, methods: Vec<AuthMethod>, device: Option<Device>) -> (Session, String) {
        let (session, token, _logout) = Session::issue(identity.id, methods, device, self.clock.now(), self.lifespan());
        (session, token)
    }

    /// Stores a session made by [`Self::build`], or (`reauthenticated`) changed by
    /// [`Self::reauthenticated`] (durable), and
    /// drops any cached copy.
    pub async fn save(&self, session: &Session, reauthenticated: bool) -> Result<(), Error> {
        if reauthenticated {
            self.persist_change(session).await?;
        } else {
            self.persist(session).await?;
        }
        self.changed(Notice::Session(session.id));
        Ok(())
    }

    /// The live session a token belongs to, if it is active now.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Arc<Live>>, Error> {
        let Some(live) = self.registry.by_token(&token_digest(token)).await.map_err(Error::from)? else {
            return Ok(None);
        };
        let identity_active = live.shared.identity.state == crate::identity::IdentityState::Active;
        Ok(live.session.is_active(self.clock.now(), identity_active).then_some(live))
    }

    /// A session by id (from the store).
    pub async fn find(&self, id: Uuid) -> Result<Option<Session>, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        rows::find(&mut conn.conn(), id).await.map_err(Error::from)
    }

    /// Revokes a session (durable) and drops it from every instance's memory.
    pub async fn revoke(&self, mut session: Session) -> Result<(), Error> {
        session.revoke(self.clock.now());
        self.persist_change(&session).await?;
        self.changed(Notice::Session(session.id));
        Ok(())
    }

    /// Sessions of an identity, newest first, `except` left out; with the total count.
    pub async fn list_of_identity(
        &self,
        identity_id: Uuid,
        active: Option<bool>,
        except: Option<Uuid>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Session>, i64), Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        let filter = ActiveFilter { active, now: self.clock.now() };
        rows::list_of_identity(&mut conn.conn(), identity_id, filter, except, offset, limit).await.map_err(Error::from)
    }

    /// All sessions after a keyset position, newest first.
    pub async fn list_all(
        &self,
        active: Option<bool>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<Session>, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        let filter = ActiveFilter { active, now: self.clock.now() };
        rows::list_all(&mut conn.conn(), filter, after, limit).await.map_err(Error::from)
    }

    /// Revokes every active session of `identity_id` except `except`; returns how many.
    pub async fn revoke_all_of(&self, identity_id: Uuid, except: Option<Uuid>) -> Result<i64, Error> {
        let (sessions, _) = self.list_of_identity(identity_id, Some(true), except, 0, i64::MAX).await?;
        let n = sessions.len() as i64;
        let writes = sessions.into_iter().map(|mut s| {
            s.revoke(self.clock.now());
            async move { self.persist_change(&s).await }
        });
        for r in futures_util::future::join_all(writes).await {
            match r {
                // Deleted meanwhile: gone is as good as revoked.
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // One notice drops every live session of the identity, here and on other instances.
        self.changed(Notice::Identity(identity_id));
        Ok(n)
    }

    /// Deletes every session of an identity (admin).
    pub async fn delete_all_of(&self, identity_id: Uuid) -> Result<(), Error> {
        self.persister.write(WriteOp::DeleteSessionsOf(identity_id), Durability::Durable).await.map_err(write_error)?;
        self.changed(Notice::Identity(identity_id));
        Ok(())
    }

    /// Extends a session to `now + lifespan` when `session.earliest_possible_extend` allows.
    pub async fn extend(&self, id: Uuid) -> Result<Session, Error> {
        let mut session = self.find(id).await?.ok_or_else(Error::no_rows)?;
        let now = self.clock.now();
        let window = self.config.session.earliest_possible_extend.and_then(|d| chrono::Duration::from_std(d.0).ok());
        if session.can_extend(now, window) {
            session.expires_at = now + self.lifespan();
            session.updated_at = now;
            self.persist_change(&session).await?;
            self.changed(Notice::Session(session.id));
        }
        Ok(session)
    }

    /// Encrypts and authenticates `payload` (AES-256-GCM, first secret; opaque text).
    pub fn seal(&self, payload: &str) -> Option<String> {
        self.sealer.seal(payload)
    }

    /// Opens a value made by [`Self::seal`] with any configured secret.
    pub fn unseal(&self, sealed: &str) -> Option<String> {
        self.sealer.open(sealed)
    }

    /// The encrypted session cookie value for `token` (opaque; `secrets.cookie[0]` encrypts).
    pub fn cookie_value(&self, token: &str, expires_at: DateTime<Utc>) -> Option<String> {
        let nonce = new_token("");
        self.seal(&serde_json::json!({"t": token, "e": expires_at, "n": &nonce[..8]}).to_string())
    }

    /// The token inside a session cookie value (any configured secret may have made it), or
    /// inside Kratos' own session cookie (gorilla securecookie; `secrets.cookie`, else
    /// `secrets.default`), so browsers signed in before a migration stay signed in.
    pub fn token_from_cookie(&self, value: &str) -> Option<String> {
        match self.unseal(value) {
            Some(open) => {
                let v: serde_json::Value = serde_json::from_str(&open).ok()?;
                v.get("t").and_then(serde_json::Value::as_str).map(str::to_string)
            }
            None => self.token_from_kratos_cookie(value),
        }
    }

    /// The token of a cookie Kratos issued (see [`super::kratos_cookie`]).
    pub fn token_from_kratos_cookie(&self, value: &str) -> Option<String> {
        let s = &self.config.secrets;
        let secrets = if s.cookie.is_empty() { &s.default } else { &s.cookie };
        let name = &self.config.session.cookie.name;
        super::kratos_cookie::token(secrets, name, value, self.clock.now().timestamp())
    }

    /// The `expires_at` inside a session cookie value.
    pub fn cookie_expiry(&self, value: &str) -> Option<DateTime<Utc>> {
        let v: serde_json::Value = serde_json::from_str(&self.unseal(value)?).ok()?;
        serde_json::from_value(v.get("e")?.clone()).ok()
    }

    /// An existing session re-authenticated (refresh or AAL upgrade): the method is appended,
    /// times start again and the device is recorded. Not stored yet: see [`Self::save`].
    pub async fn reauthenticated(
        &self,
        id: Uuid,
        method: AuthMethod,
        device: Device,
        now: DateTime<Utc>,
    ) -> Result<Session, Error> {
        let mut session = self.find(id).await?.ok_or_else(|| Error::NoSession { named: false })?;
        session.authentication_methods.push(method);
        session.aal = compute_aal(&session.authentication_methods);
        session.authenticated_at = now;
        session.issued_at = now;
        session.expires_at = now + self.lifespan();
        session.updated_at = now;
        session.devices.push(device);
        Ok(session)
    }

    /// A second factor proved while the session was in use (enrolled in settings): the
    /// session gains it and its AAL is computed again; stored now.
    pub async fn add_method(&self, id: Uuid, method: AuthMethod) -> Result<Session, Error> {
        let mut session = self.find(id).await?.ok_or(Error::NoSession { named: false })?;
        session.authentication_methods.push(method);
        session.aal = compute_aal(&session.authentication_methods);
        session.updated_at = self.clock.now();
        self.save(&session, true).await?;
        Ok(session)
    }

    /// The stored session a token belongs to, active or not (logout of a dead session is fine).
    pub async fn find_by_token(&self, token: &str) -> Result<Option<Session>, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        rows::find_by_token_hash(&mut conn.conn(), &token_hash(token)).await.map_err(Error::from)
    }

    /// Creates a session-token exchanger for an API flow; returns `(init_code, return_to_code)`.
    pub async fn create_exchanger(&self, flow_id: Uuid) -> Result<(String, String), Error> {
        let init = exchange_code();
        let return_to = exchange_code();
        let mut pooled = self.store.get().await.map_err(Error::from)?;
        crate::persistence::selfservice::create_exchanger(
            &mut pooled.conn(),
            flow_id,
            &token_hash(&init),
            &token_hash(&return_to),
            self.clock.now(),
        )
        .await
        .map_err(Error::from)?;
        Ok((init, return_to))
    }

    /// Binds a flow's exchanger to a session (the OIDC method does this when an API flow
    /// finishes in a browser). The token is kept sealed until it is exchanged.
    pub async fn bind_exchanger(&self, flow_id: Uuid, session_id: Uuid, token: &str) -> Result<bool, Error> {
        let sealed = self.seal(token).ok_or_else(|| Error::internal(&"no secret to seal the session token"))?;
        let mut pooled = self.store.get().await.map_err(Error::from)?;
        let n = crate::persistence::selfservice::bind_exchanger(
            &mut pooled.conn(),
            flow_id,
            session_id,
            &sealed,
            self.clock.now(),
        )
        .await
        .map_err(Error::from)?;
        Ok(n > 0)
    }

    /// `GET /sessions/token-exchange`: the session and token bound to a pair of codes.
    pub async fn exchange(&self, init_code: &str, return_to_code: &str) -> Result<Option<(Session, String)>, Error> {
        let found = {
            let mut pooled = self.store.get().await.map_err(Error::from)?;
            crate::persistence::selfservice::take_exchanger(
                &mut pooled.conn(),
                &token_hash(init_code),
                &token_hash(return_to_code),
            )
            .await
            .map_err(Error::from)?
        };
        let Some((session_id, sealed)) = found else { return Ok(None) };
        let Some(token) = self.unseal(&sealed) else { return Ok(None) };
        Ok(self.find(session_id).await?.map(|s| (s, token)))
    }
}
