//! The identity service behind the admin API: builds identities from request bodies,
//! validates them against their schema, and reads and writes them (writes are durable
//! through the Persister; reads go to the store, which holds every acknowledged write).

use super::import::{AddressInput, CreateIdentityBody, ImportCredentials, ImportProviders, UpdateIdentityBody};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::hash::{HashError, HashPool};
use crate::model::identity::{Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress};
use crate::persistence::identity::{self as rows, ListFilter, ListPage};
use crate::persistence::invalidation::{Invalidation, Notice};
use crate::persistence::{Durability, Persister, Store, WriteError, WriteOp};
use crate::schema::{Extracted, SchemaRegistry, TraitsError};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use uuid::Uuid;

/// Reason Kratos gives for an unknown `hashed_password` format.
const UNKNOWN_HASH: &str =
    "The imported password does not match any known hash format. For more information see https://www.ory.sh/dr/2";
/// Reason for a create that collides with an existing identity.
pub const CONFLICT: &str = crate::catalogue::error::IDENTITY_CONFLICT;

/// Identity operations shared by the admin API, the CLI and (later) the self-service flows.
#[derive(Clone)]
pub struct IdentityService {
    pub config: Arc<Config>,
    pub store: Store,
    pub persister: Persister,
    pub schemas: SchemaRegistry,
    pub hashes: HashPool,
    pub clock: Clock,
    /// Where identity changes are announced (live sessions of the identity are reloaded).
    pub invalidation: Invalidation,
}

/// Maps a refused durable write to the answer Kratos gives.
fn write_error(e: WriteError) -> Error {
    match e {
        WriteError::Conflict(_) => Error::Conflict(CONFLICT.into()),
        WriteError::Rejected(_) => {
            Error::invalid("The identity contains a value the database refuses (for example a NUL character).")
        }
        other => Error::from(other),
    }
}

fn state_error() -> Error {
    Error::invalid("identity state is not valid")
}

fn parse_state(s: Option<&str>) -> Result<Option<IdentityState>, Error> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => IdentityState::parse(s).map(Some).ok_or_else(state_error),
    }
}

/// `provider:subject`, the identifier of a linked oidc/saml account.
pub fn provider_identifier(provider: &str, subject: &str) -> String {
    format!("{provider}:{subject}")
}

/// An empty credential of `kind`.
pub fn new_credential(kind: &str, now: DateTime<Utc>) -> Credential {
    Credential {
        id: Uuid::new_v4(),
        kind: kind.to_string(),
        identifiers: Vec::new(),
        config: json!({}),
        version: 0,
        created_at: now,
        updated_at: now,
    }
}

fn verifiable_from_input(a: AddressInput, now: DateTime<Utc>) -> VerifiableAddress {
    VerifiableAddress {
        // A client-chosen id could name another identity's row: ids are always ours.
        id: Uuid::now_v7(),
        value: a.value.trim().to_lowercase(),
        verified: a.verified.unwrap_or(false),
        via: a.via.filter(|v| !v.is_empty()).unwrap_or_else(|| "email".into()),
        status: a.status.unwrap_or_default(),
        verified_at: a.verified_at,
        created_at: a.created_at.unwrap_or(now),
        updated_at: a.updated_at.unwrap_or(now),
    }
}

fn recovery_from_input(a: AddressInput, now: DateTime<Utc>) -> RecoveryAddress {
    RecoveryAddress {
        id: Uuid::now_v7(),
        value: a.value.trim().to_lowercase(),
        via: a.via.filter(|v| !v.is_empty()).unwrap_or_else(|| "email".into()),
        created_at: a.created_at.unwrap_or(now),
        updated_at: a.updated_at.unwrap_or(now),
    }
}

/// The stored password hash of an identity, if any.
fn password_hash(identity: &Identity) -> Option<&str> {
    identity.credentials.get("password")?.config.get("hashed_password")?.as_str()
}

/// The length of the array at `key` of `config` (0 when there is none).
fn array_len(config: &Json, key: &str) -> usize {
    config.get(key).and_then(Json::as_array).map_or(0, Vec::len)
}

/// First-factor credentials as Kratos' strategies count them: a password with a hash and an
/// identifier, each oidc link without an organization whose identifier is present, each
/// passkey and passwordless WebAuthn key of a credential that has identifiers. (SAML has no
/// counter in Kratos OSS; the password migration hook is not configurable yet.)
pub fn count_first_factors(identity: &Identity) -> usize {
    identity
        .credentials
        .values()
        .map(|c| match c.kind.as_str() {
            "password" => usize::from(
                c.config.get("hashed_password").and_then(Json::as_str).is_some_and(|h| !h.is_empty())
                    && !c.identifiers.is_empty(),
            ),
            "oidc" => c.config.get("providers").and_then(Json::as_array).map_or(0, |ps| {
                ps.iter()
                    .filter(|p| p.get("organization").and_then(Json::as_str).is_none_or(str::is_empty))
                    .filter(|p| {
                        let id = provider_identifier(
                            p.get("provider").and_then(Json::as_str).unwrap_or_default(),
                            p.get("subject").and_then(Json::as_str).unwrap_or_default(),
                        );
                        c.identifiers.contains(&id)
                    })
                    .count()
            }),
            "passkey" if !c.identifiers.is_empty() => array_len(&c.config, "credentials"),
            "webauthn" if !c.identifiers.is_empty() => c
                .config
                .get("credentials")
                .and_then(Json::as_array)
                .map_or(0, |cs| cs.iter().filter(|k| k.get("is_passwordless") == Some(&json!(true))).count()),
            _ => 0,
        })
        .sum()
}

/// The TOTP key in an `otpauth://` URL, if it is one that can be checked safely: a period,
/// 6–8 digits and a secret of at least 80 bits (totp-rs panics on a zero period or 10+ digits).
pub fn totp_key(url: &str) -> Option<totp_rs::Totp> {
    totp_rs::Totp::from_url_unchecked(url)
        .ok()
        .filter(|k| k.step() > 0 && (6..=8).contains(&k.digits()) && k.secret().as_bytes().len() >= 10)
}

/// Checks an imported second factor in Kratos' stored shape: a TOTP URL a key can be read
/// from, lookup codes as `{code, used_at?}` objects, WebAuthn keys as a `credentials` list.
fn check_stored_second_factor(kind: &str, config: &Json) -> Result<(), Error> {
    let ok = match kind {
        "totp" => config.get("totp_url").and_then(Json::as_str).is_some_and(|u| totp_key(u).is_some()),
        "lookup_secret" => config.get("recovery_codes").and_then(Json::as_array).is_some_and(|codes| {
            !codes.is_empty()
                && codes.iter().all(|c| {
                    c.get("code").and_then(Json::as_str).is_some_and(|s| !s.is_empty())
                        && c.get("used_at").is_none_or(|u| {
                            u.is_null() || u.as_str().is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok())
                        })
                })
        }),
        _ => config.get("credentials").and_then(Json::as_array).is_some_and(|a| {
            a.iter().all(|k| {
                k.get("id").and_then(Json::as_str).is_some_and(|id| !id.is_empty())
                    && (k.get("key").is_some() || k.get("public_key").and_then(Json::as_str).is_some())
            })
        }),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("The {kind} credentials to import are not in the shape Kratos stores them.")))
    }
}

/// PostgreSQL refuses NUL characters in text and jsonb: such input is a 400, not a retry.
fn contains_nul(identity: &Identity) -> bool {
    fn walk(v: &Json) -> bool {
        match v {
            Json::String(s) => s.contains('\0'),
            Json::Array(a) => a.iter().any(walk),
            Json::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    walk(&identity.traits)
        || identity.metadata_public.as_ref().is_some_and(walk)
        || identity.metadata_admin.as_ref().is_some_and(walk)
        || identity.external_id.as_deref().is_some_and(|e| e.contains('\0'))
        || identity.schema_id.contains('\0')
        || identity.credentials.values().any(|c| walk(&c.config) || c.identifiers.iter().any(|i| i.contains('\0')))
        || identity.verifiable_addresses.iter().any(|a| a.value.contains('\0') || a.status.contains('\0'))
        || identity.recovery_addresses.iter().any(|a| a.value.contains('\0'))
}

impl IdentityService {
    fn schema_url(&self, schema_id: &str) -> String {
        crate::schema::schema_url(&self.config.public_base_url(), schema_id)
    }

    /// `schema_url` of an identity as rendered.
    pub fn schema_url_of(&self, identity: &Identity) -> String {
        self.schema_url(&identity.schema_id)
    }

    /// Imports credentials into `identity` (password hashed or format-checked; oidc/saml
    /// providers appended). Errors here fail a whole batch, as in Kratos.
    async fn import_credentials(&self, identity: &mut Identity, creds: ImportCredentials) -> Result<(), Error> {
        let now = self.clock.now();
        if let Some(pw) = creds.password {
            let config = pw.config;
            let new_config = if config.use_password_migration_hook == Some(true) {
                json!({ "hashed_password": "", "use_password_migration_hook": true })
            } else {
                let hashed = match config.password.filter(|p| !p.is_empty()) {
                    Some(plain) => self.hashes.hash(plain.into_bytes()).await.map_err(|e| match e {
                        HashError::TooLong => Error::invalid("The password is longer than 72 bytes."),
                        other => Error::from(other),
                    })?,
                    None => config.hashed_password.unwrap_or_default(),
                };
                self.hashes.check_import(&hashed).map_err(|e| match e {
                    over @ HashError::OverLimit { .. } => Error::invalid(over.to_string()),
                    _ => Error::invalid(UNKNOWN_HASH),
                })?;
                json!({ "hashed_password": hashed })
            };
            let c = identity.credentials.entry("password".into()).or_insert_with(|| new_credential("password", now));
            c.config = new_config;
            c.updated_at = now;
        }
        for (kind, providers) in [("oidc", creds.oidc), ("saml", creds.saml)] {
            let Some(ImportProviders { config }) = providers else { continue };
            let c = identity.credentials.entry(kind.into()).or_insert_with(|| {
                let mut c = new_credential(kind, now);
                c.config = json!({ "providers": [] });
                c
            });
            let mut list = c.config.get("providers").and_then(Json::as_array).cloned().unwrap_or_default();
            for p in config.providers {
                c.identifiers.push(provider_identifier(&p.provider, &p.subject));
                let mut entry = json!({
                    "subject": p.subject,
                    "provider": p.provider,
                    "initial_id_token": "",
                    "initial_access_token": "",
                    "initial_refresh_token": "",
                });
                if let Some(org) = p.organization {
                    entry["organization"] = json!(org);
                }
                if kind == "oidc" && p.use_auto_link == Some(true) {
                    entry["use_auto_link"] = json!(true);
                }
                list.push(entry);
            }
            c.config = json!({ "providers": list });
            c.updated_at = now;
        }
        for (kind, stored) in
            [("totp", creds.totp), ("lookup_secret", creds.lookup_secret), ("webauthn", creds.webauthn)]
        {
            let Some(super::import::ImportStored { config }) = stored else { continue };
            check_stored_second_factor(kind, &config)?;
            let mut c = new_credential(kind, now);
            if kind != "webauthn" {
                // Webauthn identifiers come from the schema (applied on save).
                c.identifiers = vec![identity.id.to_string()];
            }
            c.config = config;
            identity.credentials.insert(kind.into(), c);
        }
        Ok(())
    }

    /// Turns a create body into an identity that still has to pass [`Self::apply_schema`].
    pub async fn prepare(&self, body: CreateIdentityBody) -> Result<Identity, Error> {
        let now = self.clock.now();
        let state = parse_state(body.state.as_deref())?.unwrap_or(IdentityState::Active);
        let schema_id = body.schema_id.filter(|s| !s.is_empty()).unwrap_or_else(|| self.schemas.default_id().into());
        let mut identity = Identity {
            id: Uuid::new_v4(),
            schema_id,
            state,
            state_changed_at: Some(now),
            traits: body.traits.unwrap_or_else(|| json!({})),
            metadata_public: body.metadata_public.filter(|v| !v.is_null()),
            metadata_admin: body.metadata_admin.filter(|v| !v.is_null()),
            external_id: body.external_id.filter(|e| !e.is_empty()),
            organization_id: body.organization_id,
            credentials: Default::default(),
            verifiable_addresses: body
                .verifiable_addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| verifiable_from_input(a, now))
                .collect(),
            recovery_addresses: body
                .recovery_addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| recovery_from_input(a, now))
                .collect(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        if let Some(creds) = body.credentials {
            self.import_credentials(&mut identity, creds).await?;
        }
        Ok(identity)
    }

    /// Validates traits against the identity's schema and derives what the `ory.sh/kratos`
    /// extension says: credential identifiers and verifiable/recovery addresses (addresses
    /// already on the identity that match keep their id and verification state).
    pub fn apply_schema(&self, identity: &mut Identity) -> Result<(), Error> {
        if identity.schema_id.is_empty() {
            identity.schema_id = self.schemas.default_id().to_string();
        }
        if identity.traits.is_null() {
            identity.traits = json!({});
        }
        let schema_id = self.schemas.get(&identity.schema_id).map_or(identity.schema_id.clone(), |s| s.id.clone());
        let extracted = self.schemas.validate_traits(&schema_id, &identity.traits).map_err(|e| match e {
            TraitsError::UnknownSchema(id) => Error::invalid(format!("Unable to find JSON Schema ID: {id}")),
            TraitsError::Invalid(_) => Error::invalid(e.to_string()),
        })?;
        if contains_nul(identity) {
            return Err(Error::invalid("The identity contains a NUL character, which cannot be stored."));
        }
        let now = self.clock.now();
        self.apply_identifiers(identity, &extracted, now);
        self.apply_addresses(identity, &extracted, now);
        Ok(())
    }

    fn apply_identifiers(&self, identity: &mut Identity, x: &Extracted, now: DateTime<Utc>) {
        for (kind, values) in [("password", &x.password_identifiers), ("webauthn", &x.webauthn_identifiers)] {
            match identity.credentials.get_mut(kind) {
                Some(c) if c.identifiers != *values => {
                    c.identifiers = values.clone();
                    c.updated_at = now;
                }
                Some(_) => {}
                None if !values.is_empty() => {
                    let mut c = new_credential(kind, now);
                    c.identifiers = values.clone();
                    identity.credentials.insert(kind.into(), c);
                }
                None => {}
            }
        }
        let mut addresses: Vec<(String, String)> =
            x.code_identifiers.iter().map(|a| (a.value.clone(), a.via.clone())).collect();
        addresses.sort();
        addresses.dedup();
        if addresses.is_empty() && !identity.credentials.contains_key("code") {
            return;
        }
        let config = json!({
            "addresses": addresses.iter().map(|(value, via)| json!({"channel": via, "address": value})).collect::<Vec<_>>()
        });
        let mut identifiers: Vec<String> = Vec::new();
        for (value, _) in &addresses {
            if !identifiers.contains(value) {
                identifiers.push(value.clone());
            }
        }
        let c = identity.credentials.entry("code".into()).or_insert_with(|| {
            let mut c = new_credential("code", now);
            c.version = 1;
            c
        });
        if c.identifiers != identifiers || c.config != config {
            c.identifiers = identifiers;
            c.config = config;
            c.updated_at = now;
        }
    }

    fn apply_addresses(&self, identity: &mut Identity, x: &Extracted, now: DateTime<Utc>) {
        let mut verifiable = Vec::with_capacity(x.verifiable_addresses.len());
        for a in &x.verifiable_addresses {
            if verifiable.iter().any(|v: &VerifiableAddress| v.value == a.value && v.via == a.via) {
                continue;
            }
            let mut v = identity
                .verifiable_addresses
                .iter()
                .find(|v| v.value == a.value && v.via == a.via)
                .cloned()
                .unwrap_or_else(|| VerifiableAddress {
                    id: Uuid::now_v7(),
                    value: a.value.clone(),
                    verified: false,
                    via: a.via.clone(),
                    status: String::new(),
                    verified_at: None,
                    created_at: now,
                    updated_at: now,
                });
            if v.status.is_empty() {
                v.status = if v.verified { "completed" } else { "pending" }.into();
            }
            if v.verified && v.verified_at.is_none() {
                v.verified_at = Some(now);
            }
            if !v.verified {
                v.verified_at = None;
            }
            verifiable.push(v);
        }
        let mut recovery = Vec::with_capacity(x.recovery_addresses.len());
        for a in &x.recovery_addresses {
            if recovery.iter().any(|r: &RecoveryAddress| r.value == a.value && r.via == a.via) {
                continue;
            }
            let r = identity
                .recovery_addresses
                .iter()
                .find(|r| r.value == a.value && r.via == a.via)
                .cloned()
                .unwrap_or_else(|| RecoveryAddress {
                    id: Uuid::now_v7(),
                    value: a.value.clone(),
                    via: a.via.clone(),
                    created_at: now,
                    updated_at: now,
                });
            recovery.push(r);
        }
        identity.verifiable_addresses = verifiable;
        identity.recovery_addresses = recovery;
    }

    /// Writes a new identity (durable); a taken identifier is `WriteError::Conflict`.
    pub async fn insert(&self, identity: &Identity) -> Result<(), WriteError> {
        self.persist(identity).await
    }

    /// Replaces the stored password hash of an identity (re-hash on login).
    pub async fn replace_password_hash(&self, id: Uuid, hashed: &str) -> Result<Identity, Error> {
        self.retrying(|| async {
            let mut identity = self.get(id).await?;
            let now = self.clock.now();
            if let Some(c) = identity.credentials.get_mut("password") {
                c.config = json!({ "hashed_password": hashed });
                c.updated_at = now;
            }
            identity.updated_at = now;
            self.persister
                .write(WriteOp::UpdateIdentity(Box::new(identity.clone())), Durability::Durable)
                .await
                .map_err(write_error)?;
            identity.version += 1;
            Ok(identity)
        })
        .await
    }

    /// Runs a read-modify-write of one identity again (reading it afresh) while another
    /// write overtakes it, a few times at most: for changes that are meant relative to what
    /// is stored (admin updates, a re-hash), not for a user's form built on an older read.
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(Error::Stale) if tries < 8 => tries += 1,
                other => return other,
            }
        }
    }

    async fn persist(&self, identity: &Identity) -> Result<(), WriteError> {
        self.persister.write(WriteOp::UpsertIdentity(Box::new(identity.clone())), Durability::Durable).await
    }

    /// `POST /admin/identities`.
    pub async fn create(&self, body: CreateIdentityBody) -> Result<Identity, Error> {
        let mut identity = self.prepare(body).await?;
        self.apply_schema(&mut identity)?;
        self.persist(&identity).await.map_err(write_error)?;
        Ok(identity)
    }

    /// `PATCH /admin/identities`: every body is converted first (a failure there fails the
    /// request), then each is validated and written on its own; results keep request order.
    pub async fn create_batch(
        &self,
        bodies: Vec<Option<CreateIdentityBody>>,
    ) -> Result<Vec<Option<Result<Uuid, Error>>>, Error> {
        // Bodies are converted concurrently: plain-text passwords hash in parallel on the
        // bounded pool (which caps the concurrency).
        let conversions = bodies.into_iter().map(|body| async move {
            match body {
                Some(b) => self.prepare(b).await.map(Some),
                None => Ok(None),
            }
        });
        let prepared = futures_util::future::join_all(conversions)
            .await
            .into_iter()
            .collect::<Result<Vec<Option<Identity>>, Error>>()?;
        let mut results: Vec<Option<Result<Identity, Error>>> = prepared
            .into_iter()
            .map(|p| {
                p.map(|mut i| {
                    self.apply_schema(&mut i)?;
                    Ok(i)
                })
            })
            .collect();
        let valid: Vec<usize> =
            results.iter().enumerate().filter(|(_, r)| matches!(r, Some(Ok(_)))).map(|(n, _)| n).collect();
        let writes = valid.iter().filter_map(|&n| match &results[n] {
            Some(Ok(identity)) => Some(self.persist(identity)),
            _ => None,
        });
        let outcomes = futures_util::future::join_all(writes).await;
        // Kratos inserts a single identity without partial-insert mode: its conflict fails
        // the whole request with 409.
        let batch_error = |e: WriteError| match e {
            WriteError::Conflict(_) => Error::UniqueViolation,
            other => write_error(other),
        };
        if valid.len() == 1
            && let Some(Err(e)) = outcomes.first()
        {
            return Err(batch_error(e.clone()));
        }
        for (&n, outcome) in valid.iter().zip(outcomes) {
            if let Err(e) = outcome {
                results[n] = Some(Err(batch_error(e)));
            }
        }
        Ok(results.into_iter().map(|r| r.map(|r| r.map(|i| i.id))).collect())
    }

    /// Loads an identity or answers 404.
    pub async fn get(&self, id: Uuid) -> Result<Identity, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        rows::find(&mut conn.conn(), id).await.map_err(Error::from)?.ok_or_else(Error::no_rows)
    }

    /// `GET /admin/identities/by/external/{externalID}`.
    pub async fn get_by_external_id(&self, external_id: &str) -> Result<Identity, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        rows::find_by_external_id(&mut conn.conn(), external_id).await.map_err(Error::from)?.ok_or_else(Error::no_rows)
    }

    /// One page of identities.
    pub async fn list(
        &self,
        filter: &ListFilter,
        page: ListPage,
        with_credentials: bool,
    ) -> Result<Vec<Identity>, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        rows::list(&mut conn.conn(), filter, page, with_credentials).await.map_err(Error::from)
    }

    /// Number of identities.
    pub async fn count(&self) -> Result<i64, Error> {
        let mut conn = self.store.get().await.map_err(Error::from)?;
        rows::count(&mut conn.conn()).await.map_err(Error::from)
    }

    fn changed(&self, id: Uuid) {
        self.invalidation.announce(Notice::Identity(id));
    }

    /// Marks the verifiable address `value` of an identity verified (durable); returns the
    /// identity as it is now. Only the address row is written, so a concurrent change of the
    /// identity (a new password, new traits) is not undone.
    pub async fn mark_verified(&self, id: Uuid, value: &str) -> Result<Identity, Error> {
        let now = self.clock.now();
        let mut pooled = self.store.get().await.map_err(Error::from)?;
        let n = crate::persistence::identity::set_address_verified(&mut pooled.conn(), id, value, now)
            .await
            .map_err(Error::from)?;
        drop(pooled);
        if n > 0 {
            self.changed(id);
        }
        self.get(id).await
    }

    /// Marks the pending verifiable address `value` of an identity `sent` (a verification
    /// message went out), as Kratos does; only the address row is written.
    pub async fn mark_sent(&self, id: Uuid, value: &str) -> Result<(), Error> {
        let now = self.clock.now();
        let mut pooled = self.store.get().await.map_err(Error::from)?;
        let n = crate::persistence::identity::set_address_sent(&mut pooled.conn(), id, value, now)
            .await
            .map_err(Error::from)?;
        if n > 0 {
            self.changed(id);
        }
        Ok(())
    }

    /// Validates and durably writes an identity changed by a self-service flow; a taken
    /// identifier is 409.
    pub async fn save_changed(&self, identity: &mut Identity) -> Result<(), Error> {
        self.save(identity).await
    }

    /// Validates and durably writes a changed identity, if it is still at the version it was
    /// read at (else [`Error::Stale`], 409).
    async fn save(&self, identity: &mut Identity) -> Result<(), Error> {
        self.apply_schema(identity)?;
        identity.updated_at = self.clock.now();
        let op = WriteOp::UpdateIdentity(Box::new(identity.clone()));
        self.persister.write(op, Durability::Durable).await.map_err(|e| match e {
            WriteError::Conflict(_) => Error::UniqueViolation,
            other => write_error(other),
        })?;
        identity.version += 1;
        self.changed(identity.id);
        Ok(())
    }

    /// `PUT /admin/identities/{id}`: replaces traits, metadata and external id; imports
    /// credentials when given.
    pub async fn update(&self, id: Uuid, body: UpdateIdentityBody) -> Result<Identity, Error> {
        self.retrying(|| self.try_update(id, body.clone())).await
    }

    async fn try_update(&self, id: Uuid, body: UpdateIdentityBody) -> Result<Identity, Error> {
        let mut identity = self.get(id).await?;
        if let Some(schema_id) = body.schema_id.filter(|s| !s.is_empty()) {
            identity.schema_id = schema_id;
        }
        if let Some(state) = body.state.as_deref().filter(|s| !s.is_empty() && *s != identity.state.as_str()) {
            identity.state = IdentityState::parse(state).ok_or_else(state_error)?;
            identity.state_changed_at = Some(self.clock.now());
        }
        identity.traits = body.traits.filter(|t| !t.is_null()).unwrap_or_else(|| json!({}));
        identity.metadata_public = body.metadata_public.filter(|v| !v.is_null());
        identity.metadata_admin = body.metadata_admin.filter(|v| !v.is_null());
        identity.external_id = body.external_id.filter(|e| !e.is_empty());
        if let Some(creds) = body.credentials.filter(|c| !c.is_null()) {
            // Lenient as Kratos' decoder for this endpoint: types that cannot be imported
            // (e.g. `code` from a GET body sent back) are ignored.
            let known: serde_json::Map<String, Json> = creds
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| matches!(k.as_str(), "password" | "oidc" | "saml"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let creds: ImportCredentials = serde_json::from_value(Json::Object(known))
                .map_err(|e| Error::invalid(format!("Unable to decode JSON payload: {e}")))?;
            self.import_credentials(&mut identity, creds).await?;
        }
        self.save(&mut identity).await?;
        Ok(identity)
    }

    /// `PATCH /admin/identities/{id}` with an RFC 6902 document.
    pub async fn patch(&self, id: Uuid, patch: &[u8]) -> Result<Identity, Error> {
        self.retrying(|| self.try_patch(id, patch)).await
    }

    async fn try_patch(&self, id: Uuid, patch: &[u8]) -> Result<Identity, Error> {
        let mut identity = self.get(id).await?;
        let ops = super::patch::parse(patch)?;
        let url = self.schema_url_of(&identity);
        let doc =
            super::view::render(&identity, &url, super::view::CredentialsView::Full, super::view::AdminMetadata::Show);
        let patched = super::patch::apply(doc, &ops)?;
        let old_state = identity.state;
        let old_hash = password_hash(&identity).map(str::to_string);
        super::patch::merge_into(&mut identity, patched, self.clock.now())?;
        // A patched hash is not format-checked (as in Kratos), but its cost is capped like an import's.
        if let Some(hash) = password_hash(&identity).filter(|h| !h.is_empty() && Some(*h) != old_hash.as_deref())
            && let Err(over @ HashError::OverLimit { .. }) = self.hashes.check_import(hash)
        {
            return Err(Error::invalid(over.to_string()));
        }
        if identity.state != old_state {
            identity.state_changed_at = Some(self.clock.now());
        }
        self.save(&mut identity).await?;
        Ok(identity)
    }

    /// `DELETE /admin/identities/{id}`: the identity and everything it owns (sessions too).
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        self.get(id).await?;
        self.persister.write(WriteOp::DeleteIdentity(id), Durability::Durable).await.map_err(write_error)?;
        self.changed(id);
        Ok(())
    }

    /// `DELETE /admin/identities/{id}/credentials/{type}`.
    pub async fn delete_credential(&self, id: Uuid, kind: &str, identifier: Option<&str>) -> Result<(), Error> {
        self.retrying(|| self.try_delete_credential(id, kind, identifier)).await
    }

    async fn try_delete_credential(&self, id: Uuid, kind: &str, identifier: Option<&str>) -> Result<(), Error> {
        let mut identity = self.get(id).await?;
        let Some(cred) = identity.credentials.get(kind).cloned() else {
            return Err(Error::not_found(format!("You tried to remove a {kind} but this user have no {kind} set up.")));
        };
        let now = self.clock.now();
        match kind {
            "totp" | "lookup_secret" => {
                identity.credentials.remove(kind);
            }
            "webauthn" => {
                let kept: Vec<Json> = cred
                    .config
                    .get("credentials")
                    .and_then(Json::as_array)
                    .map(|cs| cs.iter().filter(|k| k.get("is_passwordless") == Some(&json!(true))).cloned().collect())
                    .unwrap_or_default();
                if kept.is_empty() {
                    identity.credentials.remove(kind);
                } else if let Some(c) = identity.credentials.get_mut(kind) {
                    c.config["credentials"] = Json::Array(kept);
                    c.updated_at = now;
                }
            }
            "password" | "oidc" | "saml" => {
                if count_first_factors(&identity) < 2 {
                    return Err(Error::invalid("You cannot remove the last first factor credential."));
                }
                let Some(c) = identity.credentials.get_mut(kind) else { return Err(Error::no_rows()) };
                if kind == "password" {
                    c.config = json!({});
                } else {
                    let Some(target) = identifier.filter(|i| !i.is_empty()) else {
                        return Err(Error::invalid("You must provide an identifier to delete this credential."));
                    };
                    let providers = c.config.get("providers").and_then(Json::as_array).cloned().unwrap_or_default();
                    let (removed, kept): (Vec<Json>, Vec<Json>) = providers.into_iter().partition(|p| {
                        provider_identifier(
                            p.get("provider").and_then(Json::as_str).unwrap_or_default(),
                            p.get("subject").and_then(Json::as_str).unwrap_or_default(),
                        ) == target
                    });
                    if removed.is_empty() {
                        return Err(Error::not_found(format!(
                            "The identifier `{target}` was not found among OIDC credentials."
                        )));
                    }
                    c.identifiers = kept
                        .iter()
                        .map(|p| {
                            provider_identifier(
                                p.get("provider").and_then(Json::as_str).unwrap_or_default(),
                                p.get("subject").and_then(Json::as_str).unwrap_or_default(),
                            )
                        })
                        .collect();
                    c.config = json!({ "providers": kept });
                }
                c.updated_at = now;
            }
            other => return Err(Error::invalid(format!("Credentials type {other} cannot be deleted."))),
        }
        self.save(&mut identity).await
    }
}
