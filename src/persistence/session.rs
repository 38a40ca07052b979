//! Session rows: a session with its devices is written and read as one unit.

use super::schema::{session_devices as devices, sessions};
use super::store::{Conn, StoreError};
use super::types::{Id, Json, Ts};
use crate::model::session::{Aal, AuthMethod, Device, Session};
use crate::on_conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: Id,
    identity_id: Id,
    token_hash: String,
    logout_token_hash: String,
    active: bool,
    aal: String,
    authentication_methods: Json,
    authenticated_at: Ts,
    issued_at: Ts,
    expires_at: Ts,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = devices)]
struct DeviceRow {
    id: Id,
    session_id: Id,
    ip_address: Option<String>,
    user_agent: Option<String>,
    location: Option<String>,
    created_at: Ts,
    updated_at: Ts,
}

fn to_row(s: &Session) -> SessionRow {
    SessionRow {
        id: Id(s.id),
        identity_id: Id(s.identity_id),
        token_hash: s.token_hash.clone(),
        logout_token_hash: s.logout_token_hash.clone(),
        active: s.active,
        aal: s.aal.as_str().into(),
        authentication_methods: Json(serde_json::to_value(&s.authentication_methods).unwrap_or_default()),
        authenticated_at: Ts(s.authenticated_at),
        issued_at: Ts(s.issued_at),
        expires_at: Ts(s.expires_at),
        created_at: Ts(s.created_at),
        updated_at: Ts(s.updated_at),
    }
}

fn from_row(r: SessionRow, devices: Vec<Device>) -> Session {
    Session {
        id: r.id.0,
        identity_id: r.identity_id.0,
        token_hash: r.token_hash,
        logout_token_hash: r.logout_token_hash,
        active: r.active,
        aal: Aal::parse(&r.aal),
        authentication_methods: serde_json::from_value::<Vec<AuthMethod>>(r.authentication_methods.0)
            .unwrap_or_default(),
        authenticated_at: r.authenticated_at.0,
        issued_at: r.issued_at.0,
        expires_at: r.expires_at.0,
        devices,
        created_at: r.created_at.0,
        updated_at: r.updated_at.0,
    }
}

/// Inserts or replaces sessions (distinct ids) and adds their devices. Idempotent. A revoked
/// session stays revoked: `active` only ever goes from true to false.
pub async fn upsert_many(conn: &mut Conn<'_>, batch: &[&Session]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let rows: Vec<SessionRow> = batch.iter().map(|s| to_row(s)).collect();
    let device_rows: Vec<DeviceRow> =
        batch.iter().flat_map(|s| s.devices.iter().map(|d| device_row(s.id, d))).collect();
    insert_all!(conn, sessions::table, &rows, on_conflict(sessions::id) => (
        sessions::active.eq(sessions::active.and(excluded(sessions::active))),
        sessions::aal.eq(excluded(sessions::aal)),
        sessions::authentication_methods.eq(excluded(sessions::authentication_methods)),
        sessions::authenticated_at.eq(excluded(sessions::authenticated_at)),
        sessions::issued_at.eq(excluded(sessions::issued_at)),
        sessions::expires_at.eq(excluded(sessions::expires_at)),
        sessions::updated_at.eq(excluded(sessions::updated_at)),
    ));
    insert_all!(conn, devices::table, &device_rows, on_conflict(devices::id) => (
        devices::updated_at.eq(excluded(devices::updated_at)),
    ));
    Ok(())
}

/// Replaces a session that must still exist (an extend, refresh or revoke): a session deleted
/// in the meantime stays deleted (`NotFound`) and a revoked one stays revoked.
pub async fn update_existing(conn: &mut Conn<'_>, s: &Session) -> Result<(), StoreError> {
    let changed = on_conn!(conn, c => diesel::update(sessions::table.find(Id(s.id)))
        .set((
            sessions::active.eq(sessions::active.and(s.active.into_sql::<diesel::sql_types::Bool>())),
            sessions::aal.eq(s.aal.as_str()),
            sessions::authentication_methods
                .eq(Json(serde_json::to_value(&s.authentication_methods).unwrap_or_default())),
            sessions::authenticated_at.eq(Ts(s.authenticated_at)),
            sessions::issued_at.eq(Ts(s.issued_at)),
            sessions::expires_at.eq(Ts(s.expires_at)),
            sessions::updated_at.eq(Ts(s.updated_at)),
        ))
        .execute(c)
        .await)?;
    if changed == 0 {
        return Err(StoreError::Query(diesel::result::Error::NotFound));
    }
    let devices: Vec<DeviceRow> = s.devices.iter().map(|d| device_row(s.id, d)).collect();
    insert_all!(conn, devices::table, &devices, on_conflict(devices::id) => (
        devices::updated_at.eq(excluded(devices::updated_at)),
    ));
    Ok(())
}

fn device_row(session_id: Uuid, d: &Device) -> DeviceRow {
    DeviceRow {
        id: Id(d.id),
        session_id: Id(session_id),
        ip_address: d.ip_address.clone(),
        user_agent: d.user_agent.clone(),
        location: d.location.clone(),
        created_at: Ts(d.created_at),
        updated_at: Ts(d.created_at),
    }
}

/// One-statement load of a session by token hash with its devices, identity, credentials and
/// addresses (PostgreSQL: one round trip; the JSON aggregate is decoded here).
pub async fn find_with_identity_pg(
    c: &mut diesel_async::AsyncPgConnection,
    token_hash: &str,
) -> Result<Option<(Session, crate::model::identity::Identity)>, StoreError> {
    #[derive(diesel::QueryableByName)]
    struct Doc {
        #[diesel(sql_type = diesel::sql_types::Text)]
        doc: String,
    }
    const SQL: &str = "SELECT json_build_object(
        'session', row_to_json(s),
        'devices', COALESCE((SELECT json_agg(d ORDER BY d.created_at, d.id) FROM session_devices d WHERE d.session_id = s.id), '[]'::json),
        'identity', row_to_json(i),
        'credentials', COALESCE((SELECT json_agg(c) FROM identity_credentials c WHERE c.identity_id = i.id), '[]'::json),
        'identifiers', COALESCE((SELECT json_agg(x ORDER BY x.identifier) FROM identity_credential_identifiers x WHERE x.identity_id = i.id), '[]'::json),
        'verifiable', COALESCE((SELECT json_agg(v ORDER BY v.id) FROM identity_verifiable_addresses v WHERE v.identity_id = i.id), '[]'::json),
        'recovery', COALESCE((SELECT json_agg(r ORDER BY r.id) FROM identity_recovery_addresses r WHERE r.identity_id = i.id), '[]'::json)
    )::text AS doc
    FROM sessions s JOIN identities i ON i.id = s.identity_id
    WHERE s.token_hash = $1";
    let found: Option<Doc> =
        diesel::sql_query(SQL).bind::<diesel::sql_types::Text, _>(token_hash).get_result(c).await.optional()?;
    let Some(found) = found else { return Ok(None) };
    let bad = || StoreError::Query(diesel::result::Error::DeserializationError("session aggregate".into()));
    let doc: serde_json::Value = serde_json::from_str(&found.doc).map_err(|_| bad())?;
    let row: SessionRow = serde_json::from_value(doc.get("session").cloned().ok_or_else(bad)?).map_err(|_| bad())?;
    let devices: Vec<DeviceRow> =
        serde_json::from_value(doc.get("devices").cloned().ok_or_else(bad)?).map_err(|_| bad())?;
    let identity = super::identity::from_json_aggregate(&doc).ok_or_else(bad)?;
    let devices = devices
        .into_iter()
        .map(|d| Device {
            id: d.id.0,
            ip_address: d.ip_address,
            user_agent: d.user_agent,
            location: d.location,
            created_at: d.created_at.0,
        })
        .collect();
    Ok(Some((from_row(row, devices), identity)))
}

/// Deletes every session of an identity.
pub async fn delete_of_identity(conn: &mut Conn<'_>, identity_id: Uuid) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::delete(sessions::table.filter(sessions::identity_id.eq(Id(identity_id)))).execute(c).await)?;
    Ok(())
}

async fn with_devices(conn: &mut Conn<'_>, rows: Vec<SessionRow>) -> Result<Vec<Session>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let found: Vec<DeviceRow> = on_conn!(conn, c => devices::table
        .filter(devices::session_id.eq_any(&ids))
        .order((devices::created_at.asc(), devices::id.asc()))
        .select(DeviceRow::as_select())
        .load(c)
        .await)?;
    let mut by_session: HashMap<Id, Vec<Device>> = HashMap::new();
    for d in found {
        by_session.entry(d.session_id).or_default().push(Device {
            id: d.id.0,
            ip_address: d.ip_address,
            user_agent: d.user_agent,
            location: d.location,
            created_at: d.created_at.0,
        });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let d = by_session.remove(&r.id).unwrap_or_default();
            from_row(r, d)
        })
        .collect())
}

/// A session by id.
pub async fn find(conn: &mut Conn<'_>, id: Uuid) -> Result<Option<Session>, StoreError> {
    let rows: Vec<SessionRow> = on_conn!(conn, c => sessions::table
        .find(Id(id))
        .select(SessionRow::as_select())
        .load(c)
        .await)?;
    Ok(with_devices(conn, rows).await?.pop())
}

/// A session by the hash of its token.
pub async fn find_by_token_hash(conn: &mut Conn<'_>, hash: &str) -> Result<Option<Session>, StoreError> {
    let rows: Vec<SessionRow> = on_conn!(conn, c => sessions::table
        .filter(sessions::token_hash.eq(hash))
        .select(SessionRow::as_select())
        .load(c)
        .await)?;
    Ok(with_devices(conn, rows).await?.pop())
}

/// Filter on the stored activity of a session (`active` query parameter).
#[derive(Debug, Clone, Copy)]
pub struct ActiveFilter {
    pub active: Option<bool>,
    pub now: DateTime<Utc>,
}

/// Sessions of an identity, newest first, `offset`/`limit` paged.
pub async fn list_of_identity(
    conn: &mut Conn<'_>,
    identity_id: Uuid,
    filter: ActiveFilter,
    except: Option<Uuid>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Session>, i64), StoreError> {
    let iid = Id(identity_id);
    let now = Ts(filter.now);
    let except = Id(except.unwrap_or(Uuid::nil()));
    let (rows, total) = on_conn!(conn, c => {
        let base = || {
            let mut q = sessions::table.filter(sessions::identity_id.eq(iid)).filter(sessions::id.ne(except)).into_boxed();
            match filter.active {
                Some(true) => q = q.filter(sessions::active.eq(true)).filter(sessions::expires_at.gt(now)),
                Some(false) => q = q.filter(sessions::active.eq(false).or(sessions::expires_at.le(now))),
                None => {}
            }
            q
        };
        let total: i64 = base().count().get_result(c).await?;
        let rows: Vec<SessionRow> = base()
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .offset(offset)
            .limit(limit)
            .select(SessionRow::as_select())
            .load(c)
            .await?;
        Ok::<_, StoreError>((rows, total))
    })?;
    Ok((with_devices(conn, rows).await?, total))
}

/// All sessions, newest first, after the keyset position `(created_at, id)`.
pub async fn list_all(
    conn: &mut Conn<'_>,
    filter: ActiveFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Session>, StoreError> {
    let now = Ts(filter.now);
    let rows: Vec<SessionRow> = on_conn!(conn, c => {
        let mut q = sessions::table.select(SessionRow::as_select()).into_boxed();
        match filter.active {
            Some(true) => q = q.filter(sessions::active.eq(true)).filter(sessions::expires_at.gt(now)),
            Some(false) => q = q.filter(sessions::active.eq(false).or(sessions::expires_at.le(now))),
            None => {}
        }
        if let Some((created, id)) = after {
            let (created, id) = (Ts(created), Id(id));
            q = q.filter(sessions::created_at.lt(created).or(sessions::created_at.eq(created).and(sessions::id.lt(id))));
        }
        q.order((sessions::created_at.desc(), sessions::id.desc())).limit(limit).load(c).await
    })?;
    with_devices(conn, rows).await
}

/// Deletes up to `limit` sessions that expired before `before`; returns how many.
pub async fn delete_expired(conn: &mut Conn<'_>, before: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
    let before = Ts(before);
    Ok(on_conn!(conn, c => {
        let ids: Vec<Id> = sessions::table
            .filter(sessions::expires_at.lt(before))
            .select(sessions::id)
            .limit(limit)
            .load(c)
            .await?;
        diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(c).await
    })?)
}
