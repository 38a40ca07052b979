//! Removal of rows nobody needs any more, in batches (so one pass never holds long locks):
//! expired sessions, flows and one-time codes an hour past expiry, brute-force counters
//! untouched for a day, stored errors and session-token exchangers a day old. The Janitor runs [`delete_expired`] on a schedule; `tessera cleanup`
//! runs it once.

use super::store::{Conn, Store, StoreError};
use chrono::{DateTime, Utc};

/// How long flows and codes are kept after they expire: a late submit still finds its flow
/// and gets "expired" (with a replacement flow) instead of "not found".
const FLOW_GRACE: chrono::Duration = chrono::Duration::hours(1);
/// Brute-force buckets untouched this long (and not locked) are stale.
const COUNTER_STALE: chrono::Duration = chrono::Duration::hours(24);
/// Stored errors are read by the error UI right after the redirect; a day later nobody does.
const ERROR_KEPT: chrono::Duration = chrono::Duration::hours(24);
/// Session-token exchangers live as long as the browser round trip of an API flow.
const EXCHANGER_KEPT: chrono::Duration = chrono::Duration::hours(24);

/// Runs `delete` (one batch of at most `batch` rows; returns how many it deleted) until a
/// batch comes back short; returns the total.
async fn in_batches<F>(store: &Store, batch: usize, mut delete: F) -> Result<usize, StoreError>
where
    F: for<'c> AsyncFnMut(&mut Conn<'c>, i64) -> Result<usize, StoreError>,
{
    let mut total = 0;
    loop {
        let mut pooled = store.get().await?;
        let n = delete(&mut pooled.conn(), batch as i64).await?;
        total += n;
        if n < batch {
            return Ok(total);
        }
    }
}

/// Deletes everything expired as of `now`, `batch` rows at a time; returns how many rows.
pub async fn delete_expired(store: &Store, now: DateTime<Utc>, batch: usize) -> Result<usize, StoreError> {
    let batch = batch.max(1);
    let mut total = in_batches(store, batch, async |c, n| super::session::delete_expired(c, now, n).await).await?;
    let cutoff = now - FLOW_GRACE;
    for table in super::selfservice::FlowTable::ALL {
        total +=
            in_batches(store, batch, async |c, n| super::selfservice::delete_expired_flows(c, table, cutoff, n).await)
                .await?;
    }
    total +=
        in_batches(store, batch, async |c, n| super::selfservice::delete_expired_codes(c, cutoff, n).await).await?;
    total +=
        in_batches(store, batch, async |c, n| super::selfservice::delete_stale_errors(c, now - ERROR_KEPT, n).await)
            .await?;
    total += in_batches(store, batch, async |c, n| {
        super::selfservice::delete_stale_exchangers(c, now - EXCHANGER_KEPT, n).await
    })
    .await?;
    let stale = now - COUNTER_STALE;
    total += in_batches(store, batch, async |c, n| super::selfservice::delete_stale_counters(c, stale, now, n).await)
        .await?;
    Ok(total)
}
