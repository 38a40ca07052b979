//! Live flows: one `FlowActor` per flow in use, found through a DashMap registry, activated
//! from the store on first use (one load for many concurrent callers) and passivated when idle.
//! The actor serialises submissions of its flow: each step gets the current flow, returns the
//! next one, and the actor stores it (a deferred write) before the next step starts.

use super::flow::{Flow, FlowKind};
use crate::config::FlowActorsConfig;
use crate::persistence::selfservice::{self as rows};
use crate::persistence::{Durability, Persister, Store, StoreError, WriteOp};
use actix::dev::SendError;
use actix::prelude::*;
use dashmap::DashMap;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// One step applied to a flow: takes the current flow, returns the next one and a reply.
pub type Step<R> = Box<dyn FnOnce(Flow) -> LocalBoxFuture<'static, (Flow, R)> + Send>;

/// Holds one live flow.
pub struct FlowActor {
    flow: Flow,
    persister: Persister,
    clock: crate::clock::Clock,
}

impl Actor for FlowActor {
    type Context = Context<Self>;
}

/// Apply a step atomically (no other step of this flow runs meanwhile).
pub struct Apply<R>(pub Step<R>);

impl<R: Send + 'static> Message for Apply<R> {
    type Result = R;
}

impl<R: Send + 'static> Handler<Apply<R>> for FlowActor {
    type Result = AtomicResponse<Self, R>;

    fn handle(&mut self, msg: Apply<R>, _: &mut Self::Context) -> Self::Result {
        let current = self.flow.clone();
        let persister = self.persister.clone();
        let clock = self.clock.clone();
        let fut = async move {
            let before = current.clone();
            let (mut next, reply) = (msg.0)(current).await;
            if next != before {
                next.updated_at = clock.now();
                let _ = persister.write(WriteOp::UpsertFlow(Box::new(next.to_record())), Durability::Deferred).await;
            }
            (next, reply)
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|(next, reply), act, _| {
            act.flow = next;
            reply
        })))
    }
}

/// Read the current flow.
pub struct Get;

impl Message for Get {
    type Result = Flow;
}

impl Handler<Get> for FlowActor {
    type Result = MessageResult<Get>;

    fn handle(&mut self, _: Get, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.flow.clone())
    }
}

/// Stop (passivate).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate;

impl Handler<Passivate> for FlowActor {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

struct Slot {
    addr: Addr<FlowActor>,
    kind: FlowKind,
    last_used: AtomicU64,
}

struct Inner {
    live: DashMap<Uuid, Arc<Slot>>,
    loading: DashMap<Uuid, Arc<OnceCell<Option<Arc<Slot>>>>>,
    store: Store,
    persister: Persister,
    clock: crate::clock::Clock,
    config: FlowActorsConfig,
    epoch: Instant,
    store_reads: AtomicU64,
}

/// Live flows of this instance.
#[derive(Clone)]
pub struct FlowRegistry {
    inner: Arc<Inner>,
}

/// Why a step could not run.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("flow not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FlowRegistry {
    /// An empty registry.
    pub fn new(
        store: Store,
        persister: Persister,
        clock: crate::clock::Clock,
        config: FlowActorsConfig,
    ) -> FlowRegistry {
        FlowRegistry {
            inner: Arc::new(Inner {
                live: DashMap::new(),
                loading: DashMap::new(),
                store,
                persister,
                clock,
                config,
                epoch: Instant::now(),
                store_reads: AtomicU64::new(0),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new flow (a deferred write) and starts its actor.
    pub async fn create(&self, flow: Flow) {
        let _ = self.inner.persister.write(WriteOp::UpsertFlow(Box::new(flow.to_record())), Durability::Deferred).await;
        self.start(flow);
    }

    fn start(&self, flow: Flow) -> Arc<Slot> {
        let id = flow.id;
        let kind = flow.kind;
        let addr = FlowActor { flow, persister: self.inner.persister.clone(), clock: self.inner.clock.clone() }.start();
        let slot = Arc::new(Slot { addr, kind, last_used: AtomicU64::new(self.now_ms()) });
        if let Some(old) = self.inner.live.insert(id, slot.clone()) {
            old.addr.do_send(Passivate);
        }
        if self.inner.live.len() > self.inner.config.max_live {
            self.evict_one(id);
        }
        slot
    }

    fn evict_one(&self, keep: Uuid) {
        let victim = self
            .inner
            .live
            .iter()
            .filter(|e| *e.key() != keep)
            .take(64)
            .min_by_key(|e| e.value().last_used.load(Ordering::Relaxed))
            .map(|e| *e.key());
        if let Some(v) = victim
            && let Some((_, s)) = self.inner.live.remove(&v)
        {
            s.addr.do_send(Passivate);
        }
    }

    /// The live actor of a flow, loading it when needed. A flow another instance created a
    /// moment ago may not be committed yet (flow writes are deferred): a miss is retried once
    /// after two flush intervals.
    async fn slot(&self, kind: FlowKind, id: Uuid) -> Result<Option<Arc<Slot>>, StoreError> {
        match self.slot_once(kind, id).await? {
            Some(s) => Ok(Some(s)),
            None => {
                tokio::time::sleep(self.inner.persister.flush_interval() * 2).await;
                self.slot_once(kind, id).await
            }
        }
    }

    async fn slot_once(&self, kind: FlowKind, id: Uuid) -> Result<Option<Arc<Slot>>, StoreError> {
        if let Some(s) = self.inner.live.get(&id).map(|e| e.value().clone()) {
            if s.kind != kind {
                return Ok(None);
            }
            s.last_used.store(self.now_ms(), Ordering::Relaxed);
            return Ok(Some(s));
        }
        let cell = self.inner.loading.entry(id).or_insert_with(|| Arc::new(OnceCell::new())).clone();
        let result = cell
            .get_or_try_init(|| async {
                if let Some(s) = self.inner.live.get(&id) {
                    return Ok(Some(s.value().clone()));
                }
                self.inner.store_reads.fetch_add(1, Ordering::Relaxed);
                let table = kind.table();
                let mut pooled = self.inner.store.get().await?;
                let record = rows::find_flow(&mut pooled.conn(), table, id).await?;
                Ok::<_, StoreError>(record.and_then(Flow::from_record).map(|f| self.start(f)))
            })
            .await
            .cloned();
        self.inner.loading.remove_if(&id, |_, v| Arc::ptr_eq(v, &cell));
        result
    }

    /// Runs `step` on flow `id` of `kind`, serialised with every other step of that flow.
    /// A step sent to an actor that has just been passivated goes to a reloaded one.
    pub async fn apply<R: Send + 'static>(&self, kind: FlowKind, id: Uuid, step: Step<R>) -> Result<R, FlowError> {
        let stopped = || FlowError::Store(StoreError::Unavailable("flow actor stopped".into()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut message = Some(Apply::<()>(Box::new(move |flow| {
            Box::pin(async move {
                let (flow, reply) = step(flow).await;
                let _ = tx.send(reply);
                (flow, ())
            })
        })));
        for _ in 0..3 {
            let Some(msg) = message.take() else { break };
            let Some(slot) = self.slot(kind, id).await? else { return Err(FlowError::NotFound) };
            match slot.addr.try_send(msg) {
                Ok(()) => return rx.await.map_err(|_| stopped()),
                Err(SendError::Full(msg)) => {
                    slot.addr.send(msg).await.map_err(|_| stopped())?;
                    return rx.await.map_err(|_| stopped());
                }
                Err(SendError::Closed(msg)) => {
                    // Not live any more: reload from the store and try again.
                    self.inner.live.remove_if(&id, |_, s| Arc::ptr_eq(s, &slot));
                    message = Some(msg);
                }
            }
        }
        Err(stopped())
    }

    /// The current state of flow `id`.
    pub async fn get(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        for _ in 0..2 {
            let Some(slot) = self.slot(kind, id).await? else { return Err(FlowError::NotFound) };
            match slot.addr.send(Get).await {
                Ok(f) => return Ok(f),
                Err(_) => {
                    self.inner.live.remove_if(&id, |_, s| Arc::ptr_eq(s, &slot));
                }
            }
        }
        Err(FlowError::NotFound)
    }

    /// Passivates flows idle longer than `actors.flow.idle_timeout`; returns how many.
    pub fn sweep_idle(&self) -> usize {
        let idle = self.inner.config.idle_timeout.0.as_millis() as u64;
        let now = self.now_ms();
        let ids: Vec<Uuid> = self
            .inner
            .live
            .iter()
            .filter(|e| now.saturating_sub(e.value().last_used.load(Ordering::Relaxed)) >= idle)
            .map(|e| *e.key())
            .collect();
        for id in &ids {
            if let Some((_, s)) = self.inner.live.remove(id) {
                s.addr.do_send(Passivate);
            }
        }
        ids.len()
    }

    /// Drops flows other instances changed (their notices are announced by the commit).
    pub fn follow(&self, invalidation: &crate::persistence::invalidation::Invalidation) {
        let registry = self.clone();
        invalidation.subscribe(move |n| {
            if let crate::persistence::invalidation::Notice::Flow(id, _) = n {
                registry.invalidate(id);
            }
        });
    }

    /// Drops the live copy of a flow (another instance changed it): the next use reloads it.
    pub fn invalidate(&self, id: Uuid) {
        if let Some((_, s)) = self.inner.live.remove(&id) {
            s.addr.do_send(Passivate);
        }
    }

    /// Number of live flow actors.
    pub fn live(&self) -> usize {
        self.inner.live.len()
    }

    /// Store reads made to activate flows.
    pub fn store_reads(&self) -> u64 {
        self.inner.store_reads.load(Ordering::Relaxed)
    }

    /// Passivates every flow (tests: later steps must reload from the store).
    #[doc(hidden)]
    pub fn passivate_all(&self) {
        let ids: Vec<Uuid> = self.inner.live.iter().map(|e| *e.key()).collect();
        for id in ids {
            if let Some((_, s)) = self.inner.live.remove(&id) {
                s.addr.do_send(Passivate);
            }
        }
    }
}
