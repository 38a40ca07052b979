//! Identity aggregate rows: an identity with its credentials, identifiers and addresses
//! is written and read as one unit.

use super::schema::{
    identities, identity_credential_identifiers as identifiers, identity_credentials as credentials,
    identity_recovery_addresses as recovery, identity_verifiable_addresses as verifiable,
};
use super::store::{Conn, StoreError};
use super::types::{Id, Json, Ts};
use crate::model::identity::{Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress};
use crate::on_conn;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = identities)]
struct IdentityRow {
    id: Id,
    schema_id: String,
    state: String,
    state_changed_at: Option<Ts>,
    traits: Json,
    metadata_public: Option<Json>,
    metadata_admin: Option<Json>,
    external_id: Option<String>,
    organization_id: Option<Id>,
    available_aal: Option<String>,
    created_at: Ts,
    updated_at: Ts,
    version: i64,
}

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = credentials)]
struct CredentialRow {
    id: Id,
    identity_id: Id,
    #[serde(rename = "type")]
    kind: String,
    config: Json,
    version: i32,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = identifiers)]
struct IdentifierRow {
    id: Id,
    identifier: String,
    identity_credential_id: Id,
    identity_id: Id,
    #[serde(rename = "type")]
    kind: String,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = verifiable)]
struct VerifiableRow {
    id: Id,
    identity_id: Id,
    via: String,
    value: String,
    verified: bool,
    verified_at: Option<Ts>,
    status: String,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = recovery)]
struct RecoveryRow {
    id: Id,
    identity_id: Id,
    via: String,
    value: String,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Default)]
struct Rows {
    identities: Vec<IdentityRow>,
    credentials: Vec<CredentialRow>,
    identifiers: Vec<IdentifierRow>,
    verifiable: Vec<VerifiableRow>,
    recovery: Vec<RecoveryRow>,
}

fn to_rows(i: &Identity) -> Rows {
    let iid = Id(i.id);
    let mut creds = Vec::new();
    let mut idents = Vec::new();
    for c in i.credentials.values() {
        for identifier in &c.identifiers {
            idents.push(IdentifierRow {
                id: Id(Uuid::new_v4()),
                identifier: identifier.clone(),
                identity_credential_id: Id(c.id),
                identity_id: iid,
                kind: c.kind.clone(),
                created_at: Ts(c.created_at),
                updated_at: Ts(c.updated_at),
            });
        }
        creds.push(CredentialRow {
            id: Id(c.id),
            identity_id: iid,
            kind: c.kind.clone(),
            config: Json(c.config.clone()),
            version: c.version,
            created_at: Ts(c.created_at),
            updated_at: Ts(c.updated_at),
        });
    }
    Rows {
        identities: vec![IdentityRow {
            id: iid,
            schema_id: i.schema_id.clone(),
            state: i.state.as_str().to_string(),
            state_changed_at: i.state_changed_at.map(Ts),
            traits: Json(i.traits.clone()),
            metadata_public: i.metadata_public.clone().map(Json),
            metadata_admin: i.metadata_admin.clone().map(Json),
            external_id: i.external_id.clone(),
            organization_id: i.organization_id.map(Id),
            available_aal: None,
            created_at: Ts(i.created_at),
            updated_at: Ts(i.updated_at),
            version: i.version,
        }],
        credentials: creds,
        identifiers: idents,
        verifiable: i
            .verifiable_addresses
            .iter()
            .map(|a| VerifiableRow {
                id: Id(a.id),
                identity_id: iid,
                via: a.via.clone(),
                value: a.value.clone(),
                verified: a.verified,
                verified_at: a.verified_at.map(Ts),
                status: a.status.clone(),
                created_at: Ts(a.created_at),
                updated_at: Ts(a.updated_at),
            })
            .collect(),
        recovery: i
            .recovery_addresses
            .iter()
            .map(|a| RecoveryRow {
                id: Id(a.id),
                identity_id: iid,
                via: a.via.clone(),
                value: a.value.clone(),
                created_at: Ts(a.created_at),
                updated_at: Ts(a.updated_at),
            })
            .collect(),
    }
}

/// The columns an upsert replaces (everything but id and created_at). A macro because
/// diesel's `Excluded` type cannot be named outside diesel.
macro_rules! identity_update {
    () => {
        (
            identities::schema_id.eq(excluded(identities::schema_id)),
            identities::state.eq(excluded(identities::state)),
            identities::state_changed_at.eq(excluded(identities::state_changed_at)),
            identities::traits.eq(excluded(identities::traits)),
            identities::metadata_public.eq(excluded(identities::metadata_public)),
            identities::metadata_admin.eq(excluded(identities::metadata_admin)),
            identities::external_id.eq(excluded(identities::external_id)),
            identities::organization_id.eq(excluded(identities::organization_id)),
            identities::updated_at.eq(excluded(identities::updated_at)),
            identities::version.eq(excluded(identities::version)),
        )
    };
}

/// Writes the whole aggregate: inserts it, or replaces what is stored under its id.
/// Idempotent, so the Persister may retry it after an ambiguous commit.
pub async fn upsert(conn: &mut Conn<'_>, identity: &Identity) -> Result<(), StoreError> {
    upsert_many(conn, &[identity]).await
}

/// [`upsert`] for several identities (distinct ids) with a fixed number of statements.
pub async fn upsert_many(conn: &mut Conn<'_>, batch: &[&Identity]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut all = Rows::default();
    for i in batch {
        let r = to_rows(i);
        all.identities.extend(r.identities);
        all.credentials.extend(r.credentials);
        all.identifiers.extend(r.identifiers);
        all.verifiable.extend(r.verifiable);
        all.recovery.extend(r.recovery);
    }
    let ids: Vec<Id> = all.identities.iter().map(|r| r.id).collect();
    let keep_v: Vec<Id> = all.verifiable.iter().map(|r| r.id).collect();
    let keep_r: Vec<Id> = all.recovery.iter().map(|r| r.id).collect();
    // Identities first (so children can refer to them), replacing stored values.
    insert_all!(conn, identities::table, &all.identities, on_conflict(identities::id) => identity_update!());
    on_conn!(conn, c => {
        // Children are replaced wholesale; addresses keep their ids (tokens refer to them).
        diesel::delete(identifiers::table.filter(identifiers::identity_id.eq_any(&ids))).execute(c).await?;
        diesel::delete(credentials::table.filter(credentials::identity_id.eq_any(&ids))).execute(c).await?;
        diesel::delete(
            verifiable::table.filter(verifiable::identity_id.eq_any(&ids)).filter(verifiable::id.ne_all(&keep_v)),
        )
        .execute(c)
        .await?;
        diesel::delete(recovery::table.filter(recovery::identity_id.eq_any(&ids)).filter(recovery::id.ne_all(&keep_r)))
            .execute(c)
            .await?;
        Ok::<(), StoreError>(())
    })?;
    insert_all!(conn, credentials::table, &all.credentials);
    insert_all!(conn, identifiers::table, &all.identifiers);
    insert_all!(conn, verifiable::table, &all.verifiable, on_conflict(verifiable::id) => (
        verifiable::via.eq(excluded(verifiable::via)),
        verifiable::value.eq(excluded(verifiable::value)),
        verifiable::verified.eq(excluded(verifiable::verified)),
        verifiable::verified_at.eq(excluded(verifiable::verified_at)),
        verifiable::status.eq(excluded(verifiable::status)),
        verifiable::updated_at.eq(excluded(verifiable::updated_at)),
    ));
    insert_all!(conn, recovery::table, &all.recovery, on_conflict(recovery::id) => (
        recovery::via.eq(excluded(recovery::via)),
        recovery::value.eq(excluded(recovery::value)),
        recovery::updated_at.eq(excluded(recovery::updated_at)),
    ));
    Ok(())
}

/// Replaces an identity that must still exist, at the version it was read at, and stores it
/// as the next version (compare-and-set): `NotFound` when it is gone, `Stale` when another
/// write came first — unless that write was this one, retried after an ambiguous commit.
/// On PostgreSQL the row stays locked until the transaction ends.
pub async fn update_checked(conn: &mut Conn<'_>, identity: &Identity) -> Result<(), StoreError> {
    let q = identities::table.find(Id(identity.id)).select((identities::version, identities::updated_at));
    let found: Option<(i64, Ts)> = match conn {
        Conn::Pg(c) => q.for_update().first(&mut **c).await.optional()?,
        Conn::Sqlite(c) => q.first(&mut **c).await.optional()?,
    };
    match found {
        None => Err(StoreError::Query(diesel::result::Error::NotFound)),
        Some((v, _)) if v == identity.version => {
            let mut next = identity.clone();
            next.version += 1;
            upsert_many(conn, &[&next]).await
        }
        Some((v, at))
            if v == identity.version + 1 && at.0.timestamp_micros() == identity.updated_at.timestamp_micros() =>
        {
            Ok(())
        }
        Some(_) => Err(StoreError::Stale),
    }
}

/// Counts a change made outside the aggregate (an address verified): a write based on what
/// was read before it is then refused.
async fn bump_version(conn: &mut Conn<'_>, id: Uuid) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::update(identities::table.find(Id(id)))
        .set(identities::version.eq(identities::version + 1))
        .execute(c)
        .await)?;
    Ok(())
}

/// Deletes an identity and, by cascade, everything that belongs to it.
pub async fn delete(conn: &mut Conn<'_>, id: Uuid) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::delete(identities::table.find(Id(id))).execute(c).await)?;
    Ok(())
}

/// Loads the aggregate, or `None` when no identity has this id.
pub async fn find(conn: &mut Conn<'_>, id: Uuid) -> Result<Option<Identity>, StoreError> {
    let iid = Id(id);
    let rows: Vec<IdentityRow> = on_conn!(conn, c => identities::table
        .find(iid)
        .select(IdentityRow::as_select())
        .load(c)
        .await)?;
    Ok(hydrate(conn, rows, true).await?.pop())
}

/// Loads the identity whose `external_id` is `external_id`.
pub async fn find_by_external_id(conn: &mut Conn<'_>, external_id: &str) -> Result<Option<Identity>, StoreError> {
    let rows: Vec<IdentityRow> = on_conn!(conn, c => identities::table
        .filter(identities::external_id.eq(external_id))
        .select(IdentityRow::as_select())
        .load(c)
        .await)?;
    Ok(hydrate(conn, rows, true).await?.pop())
}

/// Loads the identity that owns credential identifier `identifier` of type `kind`.
pub async fn find_by_identifier(
    conn: &mut Conn<'_>,
    kind: &str,
    identifier: &str,
) -> Result<Option<Identity>, StoreError> {
    let rows: Vec<IdentityRow> = on_conn!(conn, c => identities::table
        .filter(identities::id.eq_any(
            identifiers::table
                .filter(identifiers::kind.eq(kind))
                .filter(identifiers::identifier.eq(identifier))
                .select(identifiers::identity_id),
        ))
        .select(IdentityRow::as_select())
        .load(c)
        .await)?;
    Ok(hydrate(conn, rows, true).await?.pop())
}

/// Which identities a list returns (filters are exclusive, as in Kratos).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Ids(Vec<Uuid>),
    Organization(Uuid),
    /// Exact credential identifier: `normalised` is compared with password, webauthn and code
    /// identifiers, `raw` with oidc and saml (`provider:subject`) identifiers.
    Identifier {
        normalised: String,
        raw: String,
    },
    /// Prefix match on credential identifiers (same split as `Identifier`).
    IdentifierPrefix {
        normalised: String,
        raw: String,
    },
}

/// Where a list page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPage {
    /// Identities with an id greater than `after`, at most `limit`.
    After { after: Uuid, limit: i64 },
    /// Legacy offset paging.
    Offset { offset: i64, limit: i64 },
}

const NORMALISED_TYPES: [&str; 3] = ["password", "webauthn", "code"];
const RAW_TYPES: [&str; 2] = ["oidc", "saml"];

/// Escapes `%`, `_` and `\` for a LIKE pattern with `\` as the escape character.
fn like_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// Lists identities ordered by id. Credentials are loaded only when `with_credentials`.
pub async fn list(
    conn: &mut Conn<'_>,
    filter: &ListFilter,
    page: ListPage,
    with_credentials: bool,
) -> Result<Vec<Identity>, StoreError> {
    let rows: Vec<IdentityRow> = on_conn!(conn, c => {
        let mut q = identities::table.select(IdentityRow::as_select()).order(identities::id.asc()).into_boxed();
        match filter {
            ListFilter::All => {}
            ListFilter::Ids(ids) => {
                q = q.filter(identities::id.eq_any(ids.iter().copied().map(Id).collect::<Vec<_>>()));
            }
            ListFilter::Organization(org) => q = q.filter(identities::organization_id.eq(Id(*org))),
            ListFilter::Identifier { normalised, raw } => {
                let matching = identifiers::table
                    .filter(
                        identifiers::kind
                            .eq_any(NORMALISED_TYPES)
                            .and(identifiers::identifier.eq(normalised.clone()))
                            .or(identifiers::kind.eq_any(RAW_TYPES).and(identifiers::identifier.eq(raw.clone()))),
                    )
                    .select(identifiers::identity_id);
                q = q.filter(identities::id.eq_any(matching));
            }
            ListFilter::IdentifierPrefix { normalised, raw } => {
                let matching = identifiers::table
                    .filter(
                        identifiers::kind
                            .eq_any(NORMALISED_TYPES)
                            .and(identifiers::identifier.like(like_prefix(normalised)).escape('\\'))
                            .or(identifiers::kind
                                .eq_any(RAW_TYPES)
                                .and(identifiers::identifier.like(like_prefix(raw)).escape('\\'))),
                    )
                    .select(identifiers::identity_id);
                q = q.filter(identities::id.eq_any(matching));
            }
        }
        match page {
            ListPage::After { after, limit } => q = q.filter(identities::id.gt(Id(after))).limit(limit),
            ListPage::Offset { offset, limit } => q = q.offset(offset).limit(limit),
        }
        q.load(c).await
    })?;
    hydrate(conn, rows, with_credentials).await
}

/// Loads the children of `rows` with one query per table and assembles the aggregates.
async fn hydrate(
    conn: &mut Conn<'_>,
    rows: Vec<IdentityRow>,
    with_credentials: bool,
) -> Result<Vec<Identity>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let (creds, idents, ver, rec) = on_conn!(conn, c => {
        let (creds, idents) = if with_credentials {
            let creds: Vec<CredentialRow> = credentials::table
                .filter(credentials::identity_id.eq_any(&ids))
                .select(CredentialRow::as_select())
                .load(c)
                .await?;
            let idents: Vec<IdentifierRow> = identifiers::table
                .filter(identifiers::identity_id.eq_any(&ids))
                .order(identifiers::identifier.asc())
                .select(IdentifierRow::as_select())
                .load(c)
                .await?;
            (creds, idents)
        } else {
            (Vec::new(), Vec::new())
        };
        let ver: Vec<VerifiableRow> = verifiable::table
            .filter(verifiable::identity_id.eq_any(&ids))
            .order(verifiable::id.asc())
            .select(VerifiableRow::as_select())
            .load(c)
            .await?;
        let rec: Vec<RecoveryRow> = recovery::table
            .filter(recovery::identity_id.eq_any(&ids))
            .order(recovery::id.asc())
            .select(RecoveryRow::as_select())
            .load(c)
            .await?;
        Ok::<_, StoreError>((creds, idents, ver, rec))
    })?;
    let mut children: HashMap<Id, Rows> = HashMap::with_capacity(rows.len());
    for r in creds {
        children.entry(r.identity_id).or_default().credentials.push(r);
    }
    for r in idents {
        children.entry(r.identity_id).or_default().identifiers.push(r);
    }
    for r in ver {
        children.entry(r.identity_id).or_default().verifiable.push(r);
    }
    for r in rec {
        children.entry(r.identity_id).or_default().recovery.push(r);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let kids = children.remove(&row.id).unwrap_or_default();
            from_rows(row, kids)
        })
        .collect())
}

/// An identity from the JSON aggregate a single-statement load returns (PostgreSQL
/// `row_to_json` / `json_agg` of the identity and its child rows).
pub(super) fn from_json_aggregate(doc: &serde_json::Value) -> Option<Identity> {
    fn rows<T: serde::de::DeserializeOwned>(doc: &serde_json::Value, key: &str) -> Option<Vec<T>> {
        serde_json::from_value(doc.get(key).cloned().unwrap_or(serde_json::Value::Null)).ok()
    }
    let identity: IdentityRow = serde_json::from_value(doc.get("identity")?.clone()).ok()?;
    let kids = Rows {
        identities: Vec::new(),
        credentials: rows(doc, "credentials")?,
        identifiers: rows(doc, "identifiers")?,
        verifiable: rows(doc, "verifiable")?,
        recovery: rows(doc, "recovery")?,
    };
    Some(from_rows(identity, kids))
}

fn from_rows(i: IdentityRow, rows: Rows) -> Identity {
    let mut creds = BTreeMap::new();
    for c in rows.credentials {
        let identifiers = rows
            .identifiers
            .iter()
            .filter(|i| i.identity_credential_id == c.id)
            .map(|i| i.identifier.clone())
            .collect();
        creds.insert(
            c.kind.clone(),
            Credential {
                id: c.id.0,
                kind: c.kind,
                identifiers,
                config: c.config.0,
                version: c.version,
                created_at: c.created_at.0,
                updated_at: c.updated_at.0,
            },
        );
    }
    Identity {
        id: i.id.0,
        schema_id: i.schema_id,
        state: IdentityState::parse(&i.state).unwrap_or(IdentityState::Inactive),
        state_changed_at: i.state_changed_at.map(|t| t.0),
        traits: i.traits.0,
        metadata_public: i.metadata_public.map(|j| j.0),
        metadata_admin: i.metadata_admin.map(|j| j.0),
        external_id: i.external_id,
        organization_id: i.organization_id.map(|x| x.0),
        credentials: creds,
        verifiable_addresses: rows
            .verifiable
            .into_iter()
            .map(|a| VerifiableAddress {
                id: a.id.0,
                value: a.value,
                verified: a.verified,
                via: a.via,
                status: a.status,
                verified_at: a.verified_at.map(|t| t.0),
                created_at: a.created_at.0,
                updated_at: a.updated_at.0,
            })
            .collect(),
        recovery_addresses: rows
            .recovery
            .into_iter()
            .map(|a| RecoveryAddress {
                id: a.id.0,
                value: a.value,
                via: a.via,
                created_at: a.created_at.0,
                updated_at: a.updated_at.0,
            })
            .collect(),
        created_at: i.created_at.0,
        updated_at: i.updated_at.0,
        version: i.version,
    }
}

/// Number of identities (used by tests and the legacy pagination header).
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on_conn!(conn, c => identities::table.count().get_result::<i64>(c).await)?)
}

/// Which address table [`find_by_address`] searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Verifiable,
    Recovery,
}

/// The identity that owns the verifiable or recovery address `value` (channel `via`).
pub async fn find_by_address(
    conn: &mut Conn<'_>,
    kind: AddressKind,
    via: &str,
    value: &str,
) -> Result<Option<Identity>, StoreError> {
    let owner: Option<Id> = match kind {
        AddressKind::Verifiable => on_conn!(conn, c => verifiable::table
            .filter(verifiable::via.eq(via))
            .filter(verifiable::value.eq(value))
            .select(verifiable::identity_id)
            .first(c)
            .await
            .optional())?,
        AddressKind::Recovery => on_conn!(conn, c => recovery::table
            .filter(recovery::via.eq(via))
            .filter(recovery::value.eq(value))
            .select(recovery::identity_id)
            .first(c)
            .await
            .optional())?,
    };
    match owner {
        Some(id) => find(conn, id.0).await,
        None => Ok(None),
    }
}

/// Marks an identity's verifiable address `value` verified (`completed`); returns rows changed.
pub async fn set_address_verified(
    conn: &mut Conn<'_>,
    identity_id: Uuid,
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    let n = on_conn!(conn, c => diesel::update(
            verifiable::table
                .filter(verifiable::identity_id.eq(Id(identity_id)))
                .filter(verifiable::value.eq(value))
                .filter(verifiable::verified.eq(false)),
        )
        .set((
            verifiable::verified.eq(true),
            verifiable::verified_at.eq(Some(Ts(now))),
            verifiable::status.eq("completed"),
            verifiable::updated_at.eq(Ts(now)),
        ))
        .execute(c)
        .await)?;
    if n > 0 {
        bump_version(conn, identity_id).await?;
    }
    Ok(n)
}

/// Marks an identity's pending verifiable address `value` `sent`; returns rows changed.
pub async fn set_address_sent(
    conn: &mut Conn<'_>,
    identity_id: Uuid,
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    let n = on_conn!(conn, c => diesel::update(
            verifiable::table
                .filter(verifiable::identity_id.eq(Id(identity_id)))
                .filter(verifiable::value.eq(value))
                .filter(verifiable::status.eq("pending")),
        )
        .set((verifiable::status.eq("sent"), verifiable::updated_at.eq(Ts(now))))
        .execute(c)
        .await)?;
    Ok(n)
}
