//! Self-service rows: flows (one table per kind, one shape), stored errors, session token
//! exchangers and brute-force counters.

use super::schema::{
    brute_force_counters as bf, selfservice_codes as codes, selfservice_errors as errors, selfservice_login_flows,
    selfservice_recovery_flows, selfservice_registration_flows, selfservice_settings_flows,
    selfservice_verification_flows, session_token_exchanges as exchanges,
};
use super::store::{Conn, StoreError};
use super::types::{Id, Json, Ts};
use crate::on_conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

/// Which flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowTable {
    Login,
    Registration,
    Recovery,
    Verification,
    Settings,
}

impl FlowTable {
    /// Every flow table.
    pub const ALL: [FlowTable; 5] =
        [FlowTable::Login, FlowTable::Registration, FlowTable::Recovery, FlowTable::Verification, FlowTable::Settings];

    /// The table's short name.
    pub fn name(self) -> &'static str {
        match self {
            FlowTable::Login => "login_flows",
            FlowTable::Registration => "registration_flows",
            FlowTable::Recovery => "recovery_flows",
            FlowTable::Verification => "verification_flows",
            FlowTable::Settings => "settings_flows",
        }
    }
}

/// A flow as stored: common columns plus a kind-specific JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub table: FlowTable,
    pub id: Uuid,
    pub flow_type: String,
    pub state: String,
    pub request_url: String,
    pub return_to: Option<String>,
    pub active_method: Option<String>,
    pub ui: serde_json::Value,
    pub csrf_token: String,
    pub data: serde_json::Value,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Raised by every change: a stored newer version is never replaced by an older one.
    pub version: i64,
}

/// Runs `$body` with `t` bound to the flow table module of `$table`.
macro_rules! with_flow_table {
    ($table:expr, $t:ident => $body:expr) => {
        match $table {
            FlowTable::Login => {
                use selfservice_login_flows as $t;
                $body
            }
            FlowTable::Registration => {
                use selfservice_registration_flows as $t;
                $body
            }
            FlowTable::Recovery => {
                use selfservice_recovery_flows as $t;
                $body
            }
            FlowTable::Verification => {
                use selfservice_verification_flows as $t;
                $body
            }
            FlowTable::Settings => {
                use selfservice_settings_flows as $t;
                $body
            }
        }
    };
}

type FlowTuple = (Id, String, String, String, Option<String>, Option<String>, Json, String, Json, Ts, Ts, Ts, Ts, i64);

fn from_tuple(table: FlowTable, r: FlowTuple) -> FlowRecord {
    FlowRecord {
        table,
        id: r.0.0,
        flow_type: r.1,
        state: r.2,
        request_url: r.3,
        return_to: r.4,
        active_method: r.5,
        ui: r.6.0,
        csrf_token: r.7,
        data: r.8.0,
        issued_at: r.9.0,
        expires_at: r.10.0,
        created_at: r.11.0,
        updated_at: r.12.0,
        version: r.13,
    }
}

/// Inserts or replaces a flow.
pub async fn upsert_flow(conn: &mut Conn<'_>, f: &FlowRecord) -> Result<(), StoreError> {
    with_flow_table!(f.table, t => {
        let row = (
            t::id.eq(Id(f.id)),
            t::flow_type.eq(&f.flow_type),
            t::state.eq(&f.state),
            t::request_url.eq(&f.request_url),
            t::return_to.eq(&f.return_to),
            t::active_method.eq(&f.active_method),
            t::ui.eq(Json(f.ui.clone())),
            t::csrf_token.eq(&f.csrf_token),
            t::data.eq(Json(f.data.clone())),
            t::issued_at.eq(Ts(f.issued_at)),
            t::expires_at.eq(Ts(f.expires_at)),
            t::created_at.eq(Ts(f.created_at)),
            t::updated_at.eq(Ts(f.updated_at)),
            t::version.eq(f.version),
        );
        on_conn!(conn, c => {
            let upsert = diesel::insert_into(t::table)
                .values(row.clone())
                .on_conflict(t::id)
                .do_update()
                .set((
                    t::state.eq(excluded(t::state)),
                    t::return_to.eq(excluded(t::return_to)),
                    t::active_method.eq(excluded(t::active_method)),
                    t::ui.eq(excluded(t::ui)),
                    t::data.eq(excluded(t::data)),
                    t::expires_at.eq(excluded(t::expires_at)),
                    t::updated_at.eq(excluded(t::updated_at)),
                    t::version.eq(excluded(t::version)),
                ));
            // A stale copy (another instance stored a later step) does not win.
            diesel::query_dsl::methods::FilterDsl::filter(upsert, t::version.lt(excluded(t::version)))
                .execute(c)
                .await
        })?;
    });
    Ok(())
}

/// On PostgreSQL, tells the other instances (delivered when the transaction commits) that a
/// flow changed, so they drop their cached copy; `origin` is the writing instance.
pub async fn notify_flow_changed(conn: &mut Conn<'_>, id: Uuid, origin: Uuid) -> Result<(), StoreError> {
    if let Conn::Pg(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(super::invalidation::CHANNEL)
            .bind::<diesel::sql_types::Text, _>(super::invalidation::Notice::Flow(id, origin).encode())
            .execute(&mut **c)
            .await?;
    }
    Ok(())
}

/// A flow by id.
pub async fn find_flow(conn: &mut Conn<'_>, table: FlowTable, id: Uuid) -> Result<Option<FlowRecord>, StoreError> {
    let row: Option<FlowTuple> = with_flow_table!(table, t => on_conn!(conn, c => t::table
        .filter(t::id.eq(Id(id)))
        .select((
            t::id, t::flow_type, t::state, t::request_url, t::return_to, t::active_method, t::ui,
            t::csrf_token, t::data, t::issued_at, t::expires_at, t::created_at, t::updated_at, t::version,
        ))
        .first::<FlowTuple>(c)
        .await
        .optional())?);
    Ok(row.map(|r| from_tuple(table, r)))
}

/// Deletes up to `limit` flows of one kind that expired before `before`.
pub async fn delete_expired_flows(
    conn: &mut Conn<'_>,
    table: FlowTable,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    let before = Ts(before);
    Ok(with_flow_table!(table, t => on_conn!(conn, c => {
        let ids: Vec<Id> = t::table.filter(t::expires_at.lt(before)).select(t::id).limit(limit).load(c).await?;
        diesel::delete(t::table.filter(t::id.eq_any(ids))).execute(c).await
    }))?)
}

// --- stored errors -------------------------------------------------------------------------

/// A stored self-service error (`flowError`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRecord {
    pub id: Uuid,
    pub error: serde_json::Value,
    pub was_seen: bool,
    pub seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Stores an error container.
pub async fn insert_error(conn: &mut Conn<'_>, e: &ErrorRecord) -> Result<(), StoreError> {
    let row = (
        errors::id.eq(Id(e.id)),
        errors::error.eq(Json(e.error.clone())),
        errors::csrf_token.eq(""),
        errors::was_seen.eq(e.was_seen),
        errors::seen_at.eq(e.seen_at.map(Ts)),
        errors::created_at.eq(Ts(e.created_at)),
        errors::updated_at.eq(Ts(e.updated_at)),
    );
    on_conn!(conn, c => diesel::insert_into(errors::table).values(row.clone()).on_conflict_do_nothing().execute(c).await)?;
    Ok(())
}

/// Reads an error and marks it seen.
pub async fn read_error(conn: &mut Conn<'_>, id: Uuid, now: DateTime<Utc>) -> Result<Option<ErrorRecord>, StoreError> {
    let row: Option<(Id, Json, bool, Option<Ts>, Ts, Ts)> = on_conn!(conn, c => errors::table
        .filter(errors::id.eq(Id(id)))
        .select((errors::id, errors::error, errors::was_seen, errors::seen_at, errors::created_at, errors::updated_at))
        .first(c)
        .await
        .optional())?;
    let Some(r) = row else { return Ok(None) };
    on_conn!(conn, c => diesel::update(errors::table.filter(errors::id.eq(Id(id))))
        .set((errors::was_seen.eq(true), errors::seen_at.eq(Some(Ts(now))), errors::updated_at.eq(Ts(now))))
        .execute(c)
        .await)?;
    Ok(Some(ErrorRecord {
        id: r.0.0,
        error: r.1.0,
        was_seen: r.2,
        seen_at: r.3.map(|t| t.0),
        created_at: r.4.0,
        updated_at: r.5.0,
    }))
}

// --- session token exchange -------------------------------------------------------------------

/// Creates an exchanger for a flow (codes stored as SHA-256 hex).
pub async fn create_exchanger(
    conn: &mut Conn<'_>,
    flow_id: Uuid,
    init_hash: &str,
    return_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = (
        exchanges::id.eq(Id(Uuid::new_v4())),
        exchanges::flow_id.eq(Id(flow_id)),
        exchanges::init_code_hash.eq(init_hash),
        exchanges::return_to_code_hash.eq(return_hash),
        exchanges::created_at.eq(Ts(now)),
        exchanges::updated_at.eq(Ts(now)),
    );
    on_conn!(conn, c => diesel::insert_into(exchanges::table).values(row).execute(c).await)?;
    Ok(())
}

/// Binds the exchanger of a flow to a session (with the session token, sealed).
pub async fn bind_exchanger(
    conn: &mut Conn<'_>,
    flow_id: Uuid,
    session_id: Uuid,
    sealed_token: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(on_conn!(conn, c => diesel::update(exchanges::table.filter(exchanges::flow_id.eq(Id(flow_id))))
        .set((
            exchanges::session_id.eq(Some(Id(session_id))),
            exchanges::session_token_sealed.eq(Some(sealed_token)),
            exchanges::updated_at.eq(Ts(now)),
        ))
        .execute(c)
        .await)?)
}

/// The bound session and sealed token for a pair of code hashes.
pub async fn take_exchanger(
    conn: &mut Conn<'_>,
    init_hash: &str,
    return_hash: &str,
) -> Result<Option<(Uuid, String)>, StoreError> {
    // Deleted as it is read: a pair of codes works once, even under concurrent exchanges.
    let row: Option<(Option<Id>, Option<String>)> = on_conn!(conn, c => diesel::delete(
        exchanges::table
            .filter(exchanges::init_code_hash.eq(init_hash))
            .filter(exchanges::return_to_code_hash.eq(return_hash))
            .filter(exchanges::session_id.is_not_null()),
    )
    .returning((exchanges::session_id, exchanges::session_token_sealed))
    .get_result(c)
    .await
    .optional())?;
    Ok(row.and_then(|(s, t)| Some((s?.0, t?))))
}

/// Deletes at most `limit` exchangers created before `before` (used or not); returns how many.
pub async fn delete_stale_exchangers(
    conn: &mut Conn<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    let ids: Vec<Id> = on_conn!(conn, c => exchanges::table
        .filter(exchanges::created_at.lt(Ts(before)))
        .select(exchanges::id)
        .limit(limit)
        .load(c)
        .await)?;
    Ok(on_conn!(conn, c => diesel::delete(exchanges::table.filter(exchanges::id.eq_any(&ids))).execute(c).await)?)
}

/// Deletes at most `limit` stored errors created before `before`; returns how many.
pub async fn delete_stale_errors(conn: &mut Conn<'_>, before: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
    let ids: Vec<Id> = on_conn!(conn, c => errors::table
        .filter(errors::created_at.lt(Ts(before)))
        .select(errors::id)
        .limit(limit)
        .load(c)
        .await)?;
    Ok(on_conn!(conn, c => diesel::delete(errors::table.filter(errors::id.eq_any(&ids))).execute(c).await)?)
}

// --- brute-force counters -------------------------------------------------------------------

/// A brute-force bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub failures: i32,
    pub window_start: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    /// Locks so far without a success in between.
    pub lockouts: i32,
}

/// The bucket `key`, if it exists.
pub async fn counter(conn: &mut Conn<'_>, key: &str) -> Result<Option<Counter>, StoreError> {
    let row: Option<(i32, Ts, Option<Ts>, i32)> = on_conn!(conn, c => bf::table
        .filter(bf::key.eq(key))
        .select((bf::failures, bf::window_start, bf::locked_until, bf::lockouts))
        .first(c)
        .await
        .optional())?;
    Ok(row.map(|(failures, w, l, lockouts)| Counter {
        failures,
        window_start: w.0,
        locked_until: l.map(|t| t.0),
        lockouts,
    }))
}

/// Reserves one attempt in bucket `key` (call inside a transaction). A window that started
/// before `window_start_after`, or a lock that has run out, restarts the bucket. Returns
/// `(attempt number in this window, locked_until)`; when already locked the count is not
/// raised and `0` is returned. The attempt that reaches `limit` locks the bucket until
/// `lock_until(earlier locks)`. Every step is a single UPDATE whose arithmetic happens in the
/// database (the first one takes the row lock), so parallel callers get distinct numbers.
pub async fn reserve_attempt(
    conn: &mut Conn<'_>,
    key: &str,
    now: DateTime<Utc>,
    window_start_after: DateTime<Utc>,
    limit: i32,
    lock_until: impl FnOnce(i32) -> DateTime<Utc>,
) -> Result<(i32, Option<DateTime<Utc>>), StoreError> {
    let fresh = (
        bf::key.eq(key),
        bf::failures.eq(0),
        bf::window_start.eq(Ts(now)),
        bf::locked_until.eq(None::<Ts>),
        bf::updated_at.eq(Ts(now)),
    );
    // A success elsewhere may delete the bucket between the insert and the updates (it
    // existed, so nothing was inserted): then it is created again.
    let mut attempt = 0;
    let (raised, mut c) = loop {
        attempt += 1;
        on_conn!(conn, c => diesel::insert_into(bf::table).values(fresh).on_conflict_do_nothing().execute(c).await)?;
        // A run-out lock or an old window restarts the bucket.
        on_conn!(conn, c => diesel::update(bf::table.filter(bf::key.eq(key)).filter(
                bf::locked_until.le(Ts(now)).or(bf::locked_until.is_null().and(bf::window_start.le(Ts(window_start_after)))),
            ))
            .set((bf::failures.eq(0), bf::window_start.eq(Ts(now)), bf::locked_until.eq(None::<Ts>)))
            .execute(c)
            .await)?;
        let raised = on_conn!(conn, c => diesel::update(bf::table.filter(bf::key.eq(key)).filter(bf::locked_until.is_null()))
            .set((bf::failures.eq(bf::failures + 1), bf::updated_at.eq(Ts(now))))
            .execute(c)
            .await)?;
        match counter(conn, key).await? {
            Some(c) => break (raised, c),
            None if attempt < 3 => continue,
            None => return Err(StoreError::Query(diesel::result::Error::NotFound)),
        }
    };
    if raised == 0 {
        return Ok((0, c.locked_until));
    }
    if c.failures >= limit && c.locked_until.is_none() {
        let until = lock_until(c.lockouts);
        on_conn!(conn, c => diesel::update(bf::table.filter(bf::key.eq(key)).filter(bf::locked_until.is_null()))
            .set((bf::locked_until.eq(Some(Ts(until))), bf::lockouts.eq(bf::lockouts + 1)))
            .execute(c)
            .await)?;
        c.locked_until = Some(until);
    }
    Ok((c.failures, c.locked_until))
}

/// Gives back one reserved attempt (the attempt succeeded), unless the bucket is locked.
pub async fn release_attempt(conn: &mut Conn<'_>, key: &str) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::update(
            bf::table.filter(bf::key.eq(key)).filter(bf::failures.gt(0)).filter(bf::locked_until.is_null()),
        )
        .set(bf::failures.eq(bf::failures - 1))
        .execute(c)
        .await)?;
    Ok(())
}

/// Deletes buckets untouched since `before` that are not locked now.
pub async fn delete_stale_counters(
    conn: &mut Conn<'_>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    Ok(on_conn!(conn, c => {
        let keys: Vec<String> = bf::table
            .filter(bf::updated_at.lt(Ts(before)))
            .filter(bf::locked_until.is_null().or(bf::locked_until.lt(Ts(now))))
            .select(bf::key)
            .limit(limit)
            .load(c)
            .await?;
        diesel::delete(bf::table.filter(bf::key.eq_any(keys))).execute(c).await
    })?)
}

/// Marks `key` as used once: true the first time, false ever after (until the janitor
/// removes the marker with the stale counters). One INSERT, so parallel callers agree.
pub async fn claim_once(conn: &mut Conn<'_>, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let marker = (
        bf::key.eq(key),
        bf::failures.eq(0),
        bf::window_start.eq(Ts(now)),
        bf::locked_until.eq(None::<Ts>),
        bf::updated_at.eq(Ts(now)),
    );
    let n =
        on_conn!(conn, c => diesel::insert_into(bf::table).values(marker).on_conflict_do_nothing().execute(c).await)?;
    Ok(n == 1)
}

/// Clears a bucket (after a successful login).
pub async fn clear_counter(conn: &mut Conn<'_>, key: &str) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::delete(bf::table.filter(bf::key.eq(key))).execute(c).await)?;
    Ok(())
}

// --- one-time codes and link tokens ---------------------------------------------------------

/// A recovery or verification code / link token, stored as a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRecord {
    pub id: Uuid,
    pub flow_id: Uuid,
    /// `recovery` or `verification`.
    pub flow_kind: String,
    /// `code` or `link`.
    pub method: String,
    pub digest: String,
    pub identity_id: Option<Uuid>,
    pub address_value: String,
    pub address_via: String,
    /// Issued through `POST /admin/recovery/*` (does not verify the address).
    pub by_admin: bool,
    pub used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

type CodeTuple = (Id, Id, String, String, String, Option<Id>, String, String, bool, Option<Ts>, Ts, Ts);

/// Stores a code.
pub async fn insert_code(conn: &mut Conn<'_>, r: &CodeRecord) -> Result<(), StoreError> {
    let row = (
        codes::id.eq(Id(r.id)),
        codes::flow_id.eq(Id(r.flow_id)),
        codes::flow_kind.eq(&r.flow_kind),
        codes::method.eq(&r.method),
        codes::digest.eq(&r.digest),
        codes::identity_id.eq(r.identity_id.map(Id)),
        codes::address_value.eq(&r.address_value),
        codes::address_via.eq(&r.address_via),
        codes::by_admin.eq(r.by_admin),
        codes::used_at.eq(r.used_at.map(Ts)),
        codes::expires_at.eq(Ts(r.expires_at)),
        codes::created_at.eq(Ts(r.created_at)),
    );
    on_conn!(conn, c => diesel::insert_into(codes::table).values(row).execute(c).await)?;
    Ok(())
}

/// The `method` secret of `flow_id` whose digest is one of `digests` (one per configured
/// secret): a 6-digit code can never be redeemed as a link token.
pub async fn find_code(
    conn: &mut Conn<'_>,
    flow_id: Uuid,
    method: &str,
    digests: &[String],
) -> Result<Option<CodeRecord>, StoreError> {
    let row: Option<CodeTuple> = on_conn!(conn, c => codes::table
        .filter(codes::flow_id.eq(Id(flow_id)))
        .filter(codes::method.eq(method))
        .filter(codes::digest.eq_any(digests))
        .select((
            codes::id, codes::flow_id, codes::flow_kind, codes::method, codes::digest, codes::identity_id,
            codes::address_value, codes::address_via, codes::by_admin, codes::used_at, codes::expires_at,
            codes::created_at,
        ))
        .first::<CodeTuple>(c)
        .await
        .optional())?;
    Ok(row.map(|r| CodeRecord {
        id: r.0.0,
        flow_id: r.1.0,
        flow_kind: r.2,
        method: r.3,
        digest: r.4,
        identity_id: r.5.map(|i| i.0),
        address_value: r.6,
        address_via: r.7,
        by_admin: r.8,
        used_at: r.9.map(|t| t.0),
        expires_at: r.10.0,
        created_at: r.11.0,
    }))
}

/// Marks a code used; `false` when it already was (a concurrent use won).
pub async fn use_code(conn: &mut Conn<'_>, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = on_conn!(conn, c => diesel::update(codes::table.filter(codes::id.eq(Id(id))).filter(codes::used_at.is_null()))
        .set(codes::used_at.eq(Some(Ts(now))))
        .execute(c)
        .await)?;
    Ok(n == 1)
}

/// Removes the unused codes of a flow (a new code replaces them).
pub async fn delete_codes_of_flow(conn: &mut Conn<'_>, flow_id: Uuid) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::delete(codes::table.filter(codes::flow_id.eq(Id(flow_id))).filter(codes::used_at.is_null()))
        .execute(c)
        .await)?;
    Ok(())
}

/// Deletes up to `limit` codes that expired before `before`.
pub async fn delete_expired_codes(conn: &mut Conn<'_>, before: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
    let before = Ts(before);
    Ok(on_conn!(conn, c => {
        let ids: Vec<Id> = codes::table.filter(codes::expires_at.lt(before)).select(codes::id).limit(limit).load(c).await?;
        diesel::delete(codes::table.filter(codes::id.eq_any(ids))).execute(c).await
    })?)
}
