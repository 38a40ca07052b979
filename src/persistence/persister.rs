//! The write-behind Persister (DESIGN.md §3).
//!
//! Writers put operations into a bounded buffer that lives outside the actor, so an actor
//! restart loses nothing. The actor runs one flush loop: it takes the buffered operations in
//! arrival order and applies them in one transaction (group commit). A **durable** write
//! completes its caller's future only after the transaction that holds it has committed; a
//! **deferred** write returns at once and is committed within `flush_interval`.
//!
//! * Coalescing: a second write to the same row, while the first still waits, replaces it.
//! * Failures: when the database is unreachable the batch is retried with exponential
//!   back-off; when it is reachable but the batch fails, each operation is retried alone so
//!   one bad write (a unique violation, say) fails only its own caller.
//! * Back-pressure: callers wait for room when `buffer_size` operations are pending.
//! * Every operation is idempotent, so retrying after an ambiguous commit is safe.

use super::selfservice::{self, ErrorRecord, FlowRecord};
use super::store::{Store, StoreError};
use super::{identity, session};
use crate::config::PersistenceConfig;
use crate::model::identity::Identity;
use crate::model::session::Session;
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, oneshot};
use uuid::Uuid;

/// When the caller's future completes (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the transaction holding the write has committed.
    Durable,
    /// At once; committed within `persistence.flush_interval`.
    Deferred,
}

/// A row-level write the Persister knows how to apply.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert or replace an identity with its credentials and addresses.
    UpsertIdentity(Box<Identity>),
    /// Replace an identity that must still exist, at the version it was read at
    /// (compare-and-set): if it was deleted in the meantime the write fails with
    /// [`WriteError::NotFound`] instead of re-creating it, if another write came first with
    /// [`WriteError::Stale`]. Stored as the next version.
    UpdateIdentity(Box<Identity>),
    /// Delete an identity and everything that belongs to it.
    DeleteIdentity(Uuid),
    /// Insert a new session (and its devices).
    UpsertSession(Box<Session>),
    /// Replace a session that must still exist (extend, refresh, revoke): a deleted session
    /// is [`WriteError::NotFound`], never re-created; a revoked one stays revoked.
    UpdateSession(Box<Session>),
    /// Delete every session of an identity.
    DeleteSessionsOf(Uuid),
    /// Insert or replace a self-service flow.
    UpsertFlow(Box<FlowRecord>),
    /// Store a self-service error container.
    InsertError(Box<ErrorRecord>),
    /// Queue a courier message.
    InsertMessage(Box<super::courier::MessageRow>),
    /// Record a delivery attempt: the message's new state and a dispatch row.
    RecordAttempt(Box<super::courier::Attempt>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RowKey {
    table: &'static str,
    id: Uuid,
}

impl WriteOp {
    fn key(&self) -> RowKey {
        match self {
            WriteOp::UpsertIdentity(i) | WriteOp::UpdateIdentity(i) => RowKey { table: "identities", id: i.id },
            WriteOp::DeleteIdentity(id) => RowKey { table: "identities", id: *id },
            WriteOp::UpsertSession(s) | WriteOp::UpdateSession(s) => RowKey { table: "sessions", id: s.id },
            WriteOp::DeleteSessionsOf(id) => RowKey { table: "sessions_of", id: *id },
            WriteOp::UpsertFlow(f) => RowKey { table: f.table.name(), id: f.id },
            WriteOp::InsertError(e) => RowKey { table: "errors", id: e.id },
            WriteOp::InsertMessage(m) => RowKey { table: "courier_messages", id: m.id.0 },
            WriteOp::RecordAttempt(a) => RowKey { table: "courier_dispatches", id: a.dispatch.id.0 },
        }
    }

    fn is_upsert(&self) -> bool {
        matches!(
            self,
            WriteOp::UpsertIdentity(_)
                | WriteOp::UpdateIdentity(_)
                | WriteOp::UpsertSession(_)
                | WriteOp::UpdateSession(_)
                | WriteOp::UpsertFlow(_)
        )
    }
}

/// Why a durable write failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    /// A unique constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused the write for another reason tied to its data.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The row an update needs is gone.
    #[error("not found")]
    NotFound,
    /// The row was changed since the writer read it (compare-and-set).
    #[error("changed since it was read")]
    Stale,
    /// The Persister is gone (shutdown).
    #[error("persister stopped")]
    Stopped,
    /// Not committed within `persistence.write_timeout` (the write stays queued).
    #[error("not committed within the write timeout")]
    Timeout,
}

impl From<&StoreError> for WriteError {
    fn from(e: &StoreError) -> Self {
        if e.is_conflict() {
            WriteError::Conflict(e.to_string())
        } else if matches!(e, StoreError::Query(diesel::result::Error::NotFound)) {
            WriteError::NotFound
        } else if matches!(e, StoreError::Stale) {
            WriteError::Stale
        } else {
            WriteError::Rejected(e.to_string())
        }
    }
}

type Waiter = oneshot::Sender<Result<(), WriteError>>;

struct Entry {
    op: WriteOp,
    waiters: Vec<Waiter>,
    durable: bool,
    in_flight: bool,
    queued_at: Instant,
}

#[derive(Default)]
struct Buffer {
    /// Pending operations by sequence number: iteration order is commit order.
    entries: BTreeMap<u64, Entry>,
    /// The queued (not in-flight) entry for a row, if any: the one new writes coalesce into.
    queued_by_key: HashMap<RowKey, u64>,
    next_seq: u64,
}

impl Buffer {
    fn queued_durable(&self) -> bool {
        self.entries.values().any(|e| !e.in_flight && e.durable)
    }

    fn oldest_queued(&self) -> Option<Instant> {
        self.entries.values().filter(|e| !e.in_flight).map(|e| e.queued_at).min()
    }

    fn queued_len(&self) -> usize {
        self.entries.values().filter(|e| !e.in_flight).count()
    }
}

/// Counters that show what the Persister did (tests and benchmarks read them).
#[derive(Debug, Default)]
pub struct PersisterStats {
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// Operations committed.
    pub operations: AtomicU64,
    /// Writes merged into a pending write of the same row.
    pub coalesced: AtomicU64,
    /// Batches retried because the database was unreachable.
    pub retries: AtomicU64,
}

/// A copy of [`PersisterStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub transactions: u64,
    pub operations: u64,
    pub coalesced: u64,
    pub retries: u64,
}

impl PersisterStats {
    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            transactions: self.transactions.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    store: Store,
    config: PersistenceConfig,
    buffer: Mutex<Buffer>,
    room: Semaphore,
    wake: Notify,
    idle: Notify,
    force: AtomicBool,
    stopped: AtomicBool,
    stats: PersisterStats,
    injected_failures: AtomicU32,
    /// Set when an injected failure happened: the next reachability check reports "down".
    injected_down: AtomicBool,
    injected_panic: AtomicBool,
    /// This instance, as named in the change notices it sends.
    instance: Uuid,
    metrics: crate::telemetry::metrics::Metrics,
    batch_size: metrics::Histogram,
    commit_seconds: metrics::Histogram,
}

impl Shared {
    async fn reachable(&self) -> bool {
        if self.injected_down.swap(false, Ordering::AcqRel) {
            return false;
        }
        self.store.ping().await.is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means a panic elsewhere; the buffer itself stays consistent.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to the Persister: cheap to clone, used by every writer.
#[derive(Clone)]
pub struct Persister {
    shared: Arc<Shared>,
    actor: Addr<PersisterActor>,
}

impl Persister {
    /// This instance's id in change notices.
    pub fn instance(&self) -> Uuid {
        self.shared.instance
    }

    /// How long a deferred write may wait before it is committed (`persistence.flush_interval`).
    pub fn flush_interval(&self) -> std::time::Duration {
        self.shared.config.flush_interval.0
    }

    /// Starts the Persister actor under a supervisor on the current arbiter.
    pub fn start(store: Store, config: PersistenceConfig) -> Persister {
        let capacity = config.buffer_size.max(1);
        let metrics = crate::telemetry::metrics::Metrics::new(&[
            ("tessera_persister_batch_size", &crate::telemetry::metrics::COUNT_BUCKETS),
            ("tessera_persister_commit_seconds", &crate::telemetry::metrics::LATENCY_BUCKETS),
        ]);
        let batch_size =
            metrics.histogram("tessera_persister_batch_size", "writes committed together in one transaction", &[]);
        let commit_seconds =
            metrics.histogram("tessera_persister_commit_seconds", "time to commit one batch, retries included", &[]);
        let shared = Arc::new(Shared {
            store,
            config,
            buffer: Mutex::new(Buffer::default()),
            room: Semaphore::new(capacity),
            wake: Notify::new(),
            idle: Notify::new(),
            force: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stats: PersisterStats::default(),
            injected_failures: AtomicU32::new(0),
            injected_down: AtomicBool::new(false),
            injected_panic: AtomicBool::new(false),
            instance: Uuid::new_v4(),
            metrics,
            batch_size,
            commit_seconds,
        });
        let for_actor = shared.clone();
        let actor = Supervisor::start(move |_| PersisterActor { shared: for_actor, flush: None });
        Persister { shared, actor }
    }

    /// Submits a write. Durable writes resolve after commit; deferred writes at once. Either
    /// waits at most `persistence.write_timeout` (for room in the buffer, then for the commit):
    /// past it the answer is [`WriteError::Timeout`] and a queued write stays queued — it is
    /// never acknowledged, so it is never acknowledged twice.
    pub async fn write(&self, op: WriteOp, durability: Durability) -> Result<(), WriteError> {
        let wait = async {
            let rx = self.enqueue(op, durability).await?;
            match rx {
                Some(rx) => rx.await.unwrap_or(Err(WriteError::Stopped)),
                None => Ok(()),
            }
        };
        tokio::time::timeout(self.shared.config.write_timeout.0, wait).await.unwrap_or(Err(WriteError::Timeout))
    }

    async fn enqueue(
        &self,
        op: WriteOp,
        durability: Durability,
    ) -> Result<Option<oneshot::Receiver<Result<(), WriteError>>>, WriteError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(WriteError::Stopped);
        }
        // Back-pressure: wait for room in the buffer.
        let permit = self.shared.room.acquire().await.map_err(|_| WriteError::Stopped)?;
        let durable = durability == Durability::Durable;
        let (tx, rx) = if durable {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let key = op.key();
        {
            let mut buf = self.shared.lock();
            if self.shared.stopped.load(Ordering::Acquire) {
                return Err(WriteError::Stopped);
            }
            let existing = buf.queued_by_key.get(&key).copied();
            match existing {
                // Coalesce into the queued write of the same row, in place, only when both are
                // upserts and no later queued write touches the same table: merging must not
                // reorder writes that could depend on each other (unique values moving between
                // rows). Deletes are never merged. Otherwise the write is appended.
                Some(seq)
                    if op.is_upsert()
                        && buf.entries.get(&seq).is_some_and(|e| e.op.is_upsert() && may_merge(&e.op, &op))
                        && !buf.entries.range(seq + 1..).any(|(_, e)| e.op.key().table == key.table) =>
                {
                    self.shared.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                    if let Some(e) = buf.entries.get_mut(&seq) {
                        // An update merged into a create that has not been written yet stays a
                        // create (the row does not exist until it is).
                        e.op = merged(&e.op, op);
                        e.durable |= durable;
                        e.waiters.extend(tx);
                    }
                    // No new entry: the permit goes back at once.
                    drop(permit);
                }
                _ => {
                    let seq = buf.next_seq;
                    buf.next_seq += 1;
                    buf.entries.insert(
                        seq,
                        Entry {
                            op,
                            waiters: tx.into_iter().collect(),
                            durable,
                            in_flight: false,
                            queued_at: Instant::now(),
                        },
                    );
                    buf.queued_by_key.insert(key, seq);
                    // The permit is returned when the entry is committed.
                    permit.forget();
                }
            }
        }
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// Waits until every write submitted before this call has been committed.
    pub async fn flush(&self) {
        loop {
            let idle = self.shared.idle.notified();
            let empty = self.shared.lock().entries.is_empty();
            if empty {
                return;
            }
            self.shared.force.store(true, Ordering::Release);
            self.shared.wake.notify_one();
            let _ = tokio::time::timeout(Duration::from_millis(20), idle).await;
        }
    }

    /// Flushes and refuses further writes (graceful shutdown).
    pub async fn shutdown(&self) {
        {
            let _buf = self.shared.lock();
            self.shared.stopped.store(true, Ordering::Release);
        }
        self.shared.room.close();
        self.flush().await;
    }

    /// Batch sizes and commit latency (`tessera_persister_*`).
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.shared.metrics
    }

    /// Operations buffered and not yet committed.
    pub fn pending(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// What the Persister has done so far.
    pub fn stats(&self) -> &PersisterStats {
        &self.shared.stats
    }

    /// Makes the next `n` commits fail as if the database connection dropped just before
    /// COMMIT (the transaction is rolled back). For failure tests on any backend.
    #[doc(hidden)]
    pub fn inject_commit_failures(&self, n: u32) {
        self.shared.injected_failures.store(n, Ordering::Release);
    }

    /// Stops the actor as a crash would; its supervisor restarts it (for tests).
    #[doc(hidden)]
    pub fn crash_actor(&self) {
        self.actor.do_send(Crash);
    }

    /// Makes the flush loop panic at its next batch, as a bug would (for tests).
    #[doc(hidden)]
    pub fn inject_loop_panic(&self) {
        self.shared.injected_panic.store(true, Ordering::Release);
    }
}

/// The actor that owns the flush loop. Its state is only a pointer to the shared buffer.
pub struct PersisterActor {
    shared: Arc<Shared>,
    /// The running flush loop (a task of its own, so the watchdog sees it die).
    flush: Option<tokio::task::AbortHandle>,
}

impl Actor for PersisterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // After a restart, whatever the previous instance had in flight is queued again.
        {
            let mut buf = self.shared.lock();
            let Buffer { entries, queued_by_key, .. } = &mut *buf;
            for (seq, e) in entries.iter_mut().filter(|(_, e)| e.in_flight) {
                e.in_flight = false;
                queued_by_key.entry(e.op.key()).or_insert(*seq);
            }
        }
        // The watchdog: if the loop dies (a panic), the writes it held in flight fail —
        // their waiters get an answer instead of waiting forever — and the actor restarts,
        // which starts a new loop for everything still queued.
        let handle = actix::spawn(flush_loop(self.shared.clone()));
        self.flush = Some(handle.abort_handle());
        let shared = self.shared.clone();
        ctx.spawn(handle.into_actor(self).map(move |ended, _, ctx| {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!("the persister's flush loop died; failing its in-flight writes and restarting it");
                fail_in_flight(&shared);
                ctx.stop();
            }
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(loop_task) = self.flush.take() {
            loop_task.abort();
        }
    }
}

impl Supervised for PersisterActor {
    // `stopped` (which ends the old flush loop) runs before every restart.
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("persister restarting");
    }
}

/// Drops the writes a dead flush loop held in flight and tells their waiters.
fn fail_in_flight(shared: &Shared) {
    let failed: Vec<Entry> = {
        let mut buf = shared.lock();
        let seqs: Vec<u64> = buf.entries.iter().filter(|(_, e)| e.in_flight).map(|(s, _)| *s).collect();
        seqs.iter().filter_map(|s| buf.entries.remove(s)).collect()
    };
    shared.room.add_permits(failed.len());
    for entry in failed {
        if entry.waiters.is_empty() {
            tracing::error!("a deferred write was lost with the persister's flush loop");
        }
        for w in entry.waiters {
            let _ = w.send(Err(WriteError::Stopped));
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

impl Handler<Crash> for PersisterActor {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

async fn flush_loop(shared: Arc<Shared>) {
    let interval = shared.config.flush_interval.0;
    loop {
        let wake = shared.wake.notified();
        let (len, durable, oldest) = {
            let buf = shared.lock();
            (buf.queued_len(), buf.queued_durable(), buf.oldest_queued())
        };
        if len == 0 {
            shared.idle.notify_waiters();
            wake.await;
            continue;
        }
        let forced = shared.force.swap(false, Ordering::AcqRel);
        if !durable && !forced && len < shared.config.max_batch {
            // Only deferred writes: let them gather until the oldest is `interval` old.
            let due = oldest.map_or(Duration::ZERO, |t| interval.saturating_sub(t.elapsed()));
            if !due.is_zero() {
                let _ = tokio::time::timeout(due, wake).await;
                continue;
            }
        }
        flush_batch(&shared).await;
    }
}

/// Takes up to `max_batch` queued entries (marking them in flight) and commits them.
async fn flush_batch(shared: &Shared) {
    let batch: Vec<(u64, WriteOp)> = {
        let mut buf = shared.lock();
        let Buffer { entries, queued_by_key, .. } = &mut *buf;
        let mut taken = Vec::new();
        for (seq, e) in entries.iter_mut().filter(|(_, e)| !e.in_flight).take(shared.config.max_batch) {
            e.in_flight = true;
            let key = e.op.key();
            if queued_by_key.get(&key) == Some(seq) {
                queued_by_key.remove(&key);
            }
            taken.push((*seq, e.op.clone()));
        }
        taken
    };
    if batch.is_empty() {
        return;
    }
    if shared.injected_panic.swap(false, Ordering::AcqRel) {
        panic!("injected flush-loop failure");
    }
    let started = Instant::now();
    let results = commit_with_retry(shared, &batch).await;
    shared.commit_seconds.record(started.elapsed().as_secs_f64());
    shared.batch_size.record(batch.len() as f64);
    let mut released = 0;
    {
        let mut buf = shared.lock();
        for ((seq, _), result) in batch.iter().zip(results) {
            if let Some(entry) = buf.entries.remove(seq) {
                released += 1;
                if let Err(e) = &result
                    && entry.waiters.is_empty()
                {
                    tracing::error!(error = %e, "deferred write was rejected by the database");
                }
                for w in entry.waiters {
                    let _ = w.send(result.clone());
                }
            }
        }
    }
    shared.room.add_permits(released);
}

/// How often a transient error may repeat while the database answers pings before the
/// batch is split up (batch) or the write is refused (single write). While the database is
/// unreachable, retries never stop: acknowledged durable writes must not be lost.
const BATCH_ATTEMPTS_WHILE_REACHABLE: u32 = 3;
const WRITE_ATTEMPTS_WHILE_REACHABLE: u32 = 10;

/// Commits the batch in one transaction, retrying transient failures; when the database
/// keeps refusing it, commits each write alone. Returns one result per write.
async fn commit_with_retry(shared: &Shared, batch: &[(u64, WriteOp)]) -> Vec<Result<(), WriteError>> {
    let ops: Vec<&WriteOp> = batch.iter().map(|(_, op)| op).collect();
    match commit_retrying(shared, &ops, BATCH_ATTEMPTS_WHILE_REACHABLE).await {
        Ok(()) => vec![Ok(()); batch.len()],
        Err(e) if ops.len() == 1 => vec![Err(WriteError::from(&e))],
        Err(e) => {
            tracing::debug!(error = %e, "batch refused; committing its writes one by one");
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                results.push(
                    commit_retrying(shared, &[op], WRITE_ATTEMPTS_WHILE_REACHABLE)
                        .await
                        .map_err(|e| WriteError::from(&e)),
                );
            }
            results
        }
    }
}

/// Commits `ops` in one transaction. Permanent errors return at once; transient ones are
/// retried with exponential back-off, forever while the database is unreachable and up to
/// `attempts_while_reachable` times while it answers.
async fn commit_retrying(shared: &Shared, ops: &[&WriteOp], attempts_while_reachable: u32) -> Result<(), StoreError> {
    let mut backoff = Duration::from_millis(10);
    let mut reachable_failures = 0;
    loop {
        match commit_batch(shared, ops.iter().copied()).await {
            Ok(()) => {
                shared.stats.transactions.fetch_add(1, Ordering::Relaxed);
                shared.stats.operations.fetch_add(ops.len() as u64, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                if shared.reachable().await {
                    reachable_failures += 1;
                    if reachable_failures > attempts_while_reachable {
                        return Err(e);
                    }
                }
                shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, retry_in = ?backoff, ops = ops.len(), "write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.config.retry_max_backoff.0);
            }
        }
    }
}

async fn commit_batch<'a>(shared: &Shared, ops: impl Iterator<Item = &'a WriteOp>) -> Result<(), StoreError> {
    let mut pooled = shared.store.get().await?;
    let mut conn = pooled.conn();
    conn.begin().await?;
    let mut outcome = apply_all(&mut conn, ops, shared.instance).await;
    if outcome.is_ok() && take_injected_failure(shared) {
        shared.injected_down.store(true, Ordering::Release);
        outcome = Err(StoreError::Unavailable("injected failure before commit".into()));
    }
    match outcome {
        Ok(()) => conn.commit().await,
        Err(e) => {
            let _ = conn.rollback().await;
            Err(e)
        }
    }
}

/// Whether `later` may replace the queued `earlier` write of the same row. A compare-and-set
/// identity update never replaces another update: it was read before that one committed, so
/// it must be applied after it (and fail as stale).
fn may_merge(earlier: &WriteOp, later: &WriteOp) -> bool {
    !matches!((earlier, later), (WriteOp::UpdateIdentity(_), WriteOp::UpdateIdentity(_)))
}

/// `later` merged into the queued `earlier` write of the same row.
fn merged(earlier: &WriteOp, later: WriteOp) -> WriteOp {
    match (earlier, later) {
        // An update of a create not written yet stays a create (the row does not exist until
        // it is), stored as the version the updater will hold.
        (WriteOp::UpsertIdentity(_), WriteOp::UpdateIdentity(mut i)) => {
            i.version += 1;
            WriteOp::UpsertIdentity(i)
        }
        // Revocation is monotonic: a queued revoke is not undone by a later write of the
        // session; a session created and changed before its first write stays a create.
        (
            WriteOp::UpsertSession(old) | WriteOp::UpdateSession(old),
            WriteOp::UpsertSession(mut s) | WriteOp::UpdateSession(mut s),
        ) => {
            s.active &= old.active;
            if matches!(earlier, WriteOp::UpsertSession(_)) {
                WriteOp::UpsertSession(s)
            } else {
                WriteOp::UpdateSession(s)
            }
        }
        (_, op) => op,
    }
}

/// Applies `ops` in order. Consecutive identity upserts go to the database as one multi-row
/// write; a run is cut at a row it already holds (one statement may touch a row only once).
async fn apply_all<'a>(
    conn: &mut super::store::Conn<'_>,
    ops: impl Iterator<Item = &'a WriteOp>,
    instance: Uuid,
) -> Result<(), StoreError> {
    let mut identities: Vec<&Identity> = Vec::new();
    let mut sessions: Vec<&Session> = Vec::new();
    for op in ops {
        match op {
            WriteOp::UpsertIdentity(i) => {
                if identities.iter().any(|r| r.id == i.id) {
                    identity::upsert_many(conn, &identities).await?;
                    identities.clear();
                }
                identities.push(i);
            }
            WriteOp::UpdateIdentity(i) => {
                identity::upsert_many(conn, &identities).await?;
                identities.clear();
                identity::update_checked(conn, i).await?;
            }
            WriteOp::UpsertSession(s) => {
                // A session refers to its identity: identities written earlier go first.
                identity::upsert_many(conn, &identities).await?;
                identities.clear();
                if sessions.iter().any(|r| r.id == s.id) {
                    session::upsert_many(conn, &sessions).await?;
                    sessions.clear();
                }
                sessions.push(s);
            }
            WriteOp::UpdateSession(s) => {
                identity::upsert_many(conn, &identities).await?;
                identities.clear();
                session::upsert_many(conn, &sessions).await?;
                sessions.clear();
                session::update_existing(conn, s).await?;
            }
            WriteOp::DeleteIdentity(id) => {
                identity::upsert_many(conn, &identities).await?;
                identities.clear();
                session::upsert_many(conn, &sessions).await?;
                sessions.clear();
                identity::delete(conn, *id).await?;
            }
            WriteOp::DeleteSessionsOf(id) => {
                identity::upsert_many(conn, &identities).await?;
                identities.clear();
                session::upsert_many(conn, &sessions).await?;
                sessions.clear();
                session::delete_of_identity(conn, *id).await?;
            }
            // Flows and errors refer to nothing written in the same batch.
            // Other instances drop their copy of the flow when this commits (PostgreSQL).
            WriteOp::UpsertFlow(f) => {
                selfservice::upsert_flow(conn, f).await?;
                selfservice::notify_flow_changed(conn, f.id, instance).await?;
            }
            WriteOp::InsertError(e) => selfservice::insert_error(conn, e).await?,
            WriteOp::InsertMessage(m) => super::courier::insert(conn, &[m]).await?,
            WriteOp::RecordAttempt(a) => super::courier::record_attempt(conn, a).await?,
        }
    }
    identity::upsert_many(conn, &identities).await?;
    session::upsert_many(conn, &sessions).await
}

fn take_injected_failure(shared: &Shared) -> bool {
    shared.injected_failures.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::session::Aal;

    fn session(active: bool) -> Box<Session> {
        let now = chrono::DateTime::UNIX_EPOCH;
        Box::new(Session {
            id: Uuid::nil(),
            identity_id: Uuid::nil(),
            token_hash: String::new(),
            logout_token_hash: String::new(),
            active,
            aal: Aal::parse("aal1"),
            authentication_methods: Vec::new(),
            authenticated_at: now,
            issued_at: now,
            expires_at: now,
            devices: Vec::new(),
            created_at: now,
            updated_at: now,
        })
    }

    fn identity(version: i64) -> Box<Identity> {
        let mut i: Identity = serde_json::from_value(serde_json::json!({
            "id": Uuid::nil(), "schema_id": "default", "state": "active", "traits": {},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        i.version = version;
        Box::new(i)
    }

    #[test]
    fn a_queued_revocation_survives_a_later_write_of_the_session() {
        let revoked = WriteOp::UpdateSession(session(false));
        let refreshed = merged(&revoked, WriteOp::UpdateSession(session(true)));
        assert!(matches!(refreshed, WriteOp::UpdateSession(s) if !s.active));
        // A session created and revoked before its first write stays a (revoked) create.
        let created = WriteOp::UpsertSession(session(true));
        let then_revoked = merged(&created, WriteOp::UpdateSession(session(false)));
        assert!(matches!(then_revoked, WriteOp::UpsertSession(s) if !s.active));
    }

    #[test]
    fn identity_updates_never_replace_each_other() {
        let first = WriteOp::UpdateIdentity(identity(3));
        assert!(!may_merge(&first, &WriteOp::UpdateIdentity(identity(3))));
        // An update of a create not written yet stays a create, as the next version.
        let create = WriteOp::UpsertIdentity(identity(0));
        assert!(may_merge(&create, &WriteOp::UpdateIdentity(identity(0))));
        let merged_create = merged(&create, WriteOp::UpdateIdentity(identity(0)));
        assert!(matches!(merged_create, WriteOp::UpsertIdentity(i) if i.version == 1));
    }
}
