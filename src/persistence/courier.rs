//! Courier rows: messages and their delivery attempts (dispatches).

use super::schema::{courier_message_dispatches as dispatches, courier_messages as messages};
use super::store::{Conn, StoreError};
use super::types::{Id, Json, Ts};
use crate::on_conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

/// Kratos' stored status values.
pub const QUEUED: i16 = 1;
pub const SENT: i16 = 2;
pub const PROCESSING: i16 = 3;
pub const ABANDONED: i16 = 4;

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: Id,
    pub kind: i16,
    pub status: i16,
    pub channel: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub template_type: String,
    pub template_data: Option<Json>,
    pub send_count: i32,
    pub next_attempt_at: Option<Ts>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// A delivery attempt as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = dispatches)]
pub struct DispatchRow {
    pub id: Id,
    pub message_id: Id,
    pub status: String,
    pub error: Option<Json>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// Inserts new messages (idempotent by id).
pub async fn insert(conn: &mut Conn<'_>, rows: &[&MessageRow]) -> Result<(), StoreError> {
    for r in rows {
        on_conn!(conn, c => diesel::insert_into(messages::table).values(*r).on_conflict_do_nothing().execute(c).await)?;
    }
    Ok(())
}

/// Claims up to `limit` due queued messages, oldest first, marking them `processing`. On
/// PostgreSQL rows another instance has claimed are skipped (`FOR UPDATE SKIP LOCKED`), so no
/// message is handed out twice.
pub async fn claim(conn: &mut Conn<'_>, now: DateTime<Utc>, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
    // PostgreSQL: the row locks of `FOR UPDATE SKIP LOCKED` last until the transaction ends,
    // so selecting and marking happen in one transaction; another instance skips these rows.
    if matches!(conn, Conn::Pg(_)) {
        conn.begin().await?;
        let claimed = claim_rows(conn, now, limit).await;
        return match claimed {
            Ok(rows) => {
                conn.commit().await?;
                Ok(rows)
            }
            Err(e) => {
                let _ = conn.rollback().await;
                Err(e)
            }
        };
    }
    claim_rows(conn, now, limit).await
}

async fn claim_rows(conn: &mut Conn<'_>, now: DateTime<Utc>, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
    let due =
        messages::status.eq(QUEUED).and(messages::next_attempt_at.is_null().or(messages::next_attempt_at.le(Ts(now))));
    let rows: Vec<MessageRow> = match conn {
        Conn::Pg(c) => {
            let ids: Vec<Id> = messages::table
                .filter(due)
                .order((messages::created_at.asc(), messages::id.asc()))
                .limit(limit)
                .select(messages::id)
                .for_update()
                .skip_locked()
                .load(&mut **c)
                .await?;
            diesel::update(messages::table.filter(messages::id.eq_any(ids)).filter(messages::status.eq(QUEUED)))
                .set((messages::status.eq(PROCESSING), messages::updated_at.eq(Ts(now))))
                .returning(MessageRow::as_returning())
                .get_results(&mut **c)
                .await?
        }
        Conn::Sqlite(c) => {
            let ids: Vec<Id> = messages::table
                .filter(due)
                .order((messages::created_at.asc(), messages::id.asc()))
                .limit(limit)
                .select(messages::id)
                .load(&mut **c)
                .await?;
            diesel::update(messages::table.filter(messages::id.eq_any(ids)).filter(messages::status.eq(QUEUED)))
                .set((messages::status.eq(PROCESSING), messages::updated_at.eq(Ts(now))))
                .returning(MessageRow::as_returning())
                .get_results(&mut **c)
                .await?
        }
    };
    let mut rows = rows;
    rows.sort_by_key(|r| (r.created_at, r.id.0));
    Ok(rows)
}

/// One delivery attempt's outcome, written through the Persister (many share a transaction).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub message_id: Uuid,
    pub status: i16,
    pub send_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub dispatch: DispatchRow,
    pub at: DateTime<Utc>,
}

/// Applies an [`Attempt`].
pub async fn record_attempt(conn: &mut Conn<'_>, a: &Attempt) -> Result<(), StoreError> {
    finish_attempt(conn, a.message_id, a.status, a.send_count, a.next_attempt_at, Some(&a.dispatch), a.at).await
}

/// Records one attempt's outcome: the message's new status, send count and next attempt, and
/// a dispatch row.
pub async fn finish_attempt(
    conn: &mut Conn<'_>,
    id: Uuid,
    status: i16,
    send_count: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    dispatch: Option<&DispatchRow>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_conn!(conn, c => diesel::update(messages::table.filter(messages::id.eq(Id(id))))
        .set((
            messages::status.eq(status),
            messages::send_count.eq(send_count),
            messages::next_attempt_at.eq(next_attempt_at.map(Ts)),
            messages::updated_at.eq(Ts(now)),
        ))
        .execute(c)
        .await)?;
    if let Some(d) = dispatch {
        // Idempotent: a retry after an ambiguous commit finds the row written.
        on_conn!(conn, c => diesel::insert_into(dispatches::table)
            .values(d)
            .on_conflict(dispatches::id)
            .do_nothing()
            .execute(c)
            .await)?;
    }
    Ok(())
}

/// Puts messages left `processing` by a crashed worker back in the queue.
pub async fn requeue_stale(conn: &mut Conn<'_>, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(on_conn!(conn, c => diesel::update(
            messages::table.filter(messages::status.eq(PROCESSING)).filter(messages::updated_at.lt(Ts(before))),
        )
        .set(messages::status.eq(QUEUED))
        .execute(c)
        .await)?)
}

/// A page of messages, newest first, after a keyset position.
pub async fn list(
    conn: &mut Conn<'_>,
    status: Option<i16>,
    recipient: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MessageRow>, StoreError> {
    Ok(on_conn!(conn, c => {
        let mut q = messages::table.select(MessageRow::as_select()).into_boxed();
        if let Some(s) = status {
            q = q.filter(messages::status.eq(s));
        }
        if let Some(r) = recipient {
            q = q.filter(messages::recipient.eq(r.to_string()));
        }
        if let Some((at, id)) = after {
            q = q.filter(
                messages::created_at.lt(Ts(at)).or(messages::created_at.eq(Ts(at)).and(messages::id.gt(Id(id)))),
            );
        }
        q.order((messages::created_at.desc(), messages::id.asc())).limit(limit).load(c).await
    })?)
}

/// One message with its dispatches (newest first).
pub async fn get(conn: &mut Conn<'_>, id: Uuid) -> Result<Option<(MessageRow, Vec<DispatchRow>)>, StoreError> {
    let row: Option<MessageRow> = on_conn!(conn, c => messages::table
        .filter(messages::id.eq(Id(id)))
        .select(MessageRow::as_select())
        .first(c)
        .await
        .optional())?;
    let Some(row) = row else { return Ok(None) };
    let ds: Vec<DispatchRow> = on_conn!(conn, c => dispatches::table
        .filter(dispatches::message_id.eq(Id(id)))
        .order((dispatches::created_at.desc(), dispatches::id.desc()))
        .select(DispatchRow::as_select())
        .load(c)
        .await)?;
    Ok(Some((row, ds)))
}
