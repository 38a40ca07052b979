//! Live flows: one `FlowActor` per flow in use, found through a DashMap registry, activated
//! from the store on first use (one load for many concurrent callers) and passivated when idle.
//! The actor serialises submissions of its flow: each step gets the current flow, returns the
//! next one, and the actor stores it (a deferred write) before the next step starts.

use super::flow::{Flow, FlowKind};
use crate::actors::Passivate;
use crate::actors::registry::{Entry, Registry, Resident};
use crate::config::FlowActorsConfig;
use crate::persistence::selfservice::{self as rows};
use crate::persistence::{Durability, Persister, Store, StoreError, WriteOp};
use actix::dev::SendError;
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use uuid::Uuid;

/// Longest wait for room in a busy flow's mailbox; past it the submit is 503.
const MAILBOX_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
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
                next.version = before.version + 1;
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

impl Handler<Passivate> for FlowActor {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// A live flow in the registry: its actor and kind.
pub struct LiveFlow {
    addr: Addr<FlowActor>,
    kind: FlowKind,
}

impl Resident for LiveFlow {
    fn passivate(&self) {
        self.addr.do_send(Passivate);
    }
}

struct Inner {
    live: Registry<Uuid, LiveFlow>,
    store: Store,
    persister: Persister,
    clock: crate::clock::Clock,
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

type Slot = Arc<Entry<LiveFlow>>;

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
                live: Registry::new(config.max_live, config.idle_timeout.0),
                store,
                persister,
                clock,
            }),
        }
    }

    /// Registers a new flow (a deferred write) and starts its actor.
    pub async fn create(&self, flow: Flow) {
        let _ = self.inner.persister.write(WriteOp::UpsertFlow(Box::new(flow.to_record())), Durability::Deferred).await;
        self.start(flow);
    }

    fn live_flow(&self, flow: Flow) -> LiveFlow {
        let kind = flow.kind;
        let addr = FlowActor { flow, persister: self.inner.persister.clone(), clock: self.inner.clock.clone() }.start();
        LiveFlow { addr, kind }
    }

    fn start(&self, flow: Flow) -> Slot {
        let id = flow.id;
        let live = self.live_flow(flow);
        self.inner.live.insert(id, live)
    }

    /// The live actor of a flow, loading it when needed. A flow another instance created a
    /// moment ago may not be committed yet (flow writes are deferred): a miss is retried once
    /// after two flush intervals.
    async fn slot(&self, kind: FlowKind, id: Uuid) -> Result<Option<Slot>, StoreError> {
        match self.slot_once(kind, id).await? {
            Some(s) => Ok(Some(s)),
            None => {
                tokio::time::sleep(self.inner.persister.flush_interval() * 2).await;
                self.slot_once(kind, id).await
            }
        }
    }

    async fn slot_once(&self, kind: FlowKind, id: Uuid) -> Result<Option<Slot>, StoreError> {
        let slot = self
            .inner
            .live
            .activate(&id, || async {
                let mut pooled = self.inner.store.get().await?;
                let record = rows::find_flow(&mut pooled.conn(), kind.table(), id).await?;
                Ok::<_, StoreError>(record.and_then(Flow::from_record).map(|f| self.live_flow(f)))
            })
            .await?;
        Ok(slot.filter(|s| s.kind == kind))
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
                    // A full mailbox is waited for, but not for ever.
                    match tokio::time::timeout(MAILBOX_WAIT, slot.addr.send(msg)).await {
                        Ok(sent) => sent.map_err(|_| stopped())?,
                        Err(_) => return Err(FlowError::Store(StoreError::Unavailable("the flow is busy".into()))),
                    }
                    return rx.await.map_err(|_| stopped());
                }
                Err(SendError::Closed(msg)) => {
                    // Not live any more: reload from the store and try again.
                    self.inner.live.forget_closed(&id, &slot);
                    message = Some(msg);
                }
            }
        }
        Err(stopped())
    }

    /// Whether flow `id` of `kind` exists (loading it if it is not live).
    pub async fn exists(&self, kind: FlowKind, id: Uuid) -> Result<bool, FlowError> {
        Ok(self.slot(kind, id).await?.is_some())
    }

    /// The current state of flow `id`.
    pub async fn get(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        for _ in 0..2 {
            let Some(slot) = self.slot(kind, id).await? else { return Err(FlowError::NotFound) };
            match slot.addr.send(Get).await {
                Ok(f) => return Ok(f),
                Err(_) => self.inner.live.forget_closed(&id, &slot),
            }
        }
        Err(FlowError::NotFound)
    }

    /// Passivates flows idle longer than `actors.flow.idle_timeout`; returns how many.
    pub fn sweep_idle(&self) -> usize {
        self.inner.live.sweep_idle()
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
        self.inner.live.remove(&id);
    }

    /// Number of live flow actors.
    pub fn live(&self) -> usize {
        self.inner.live.len()
    }

    /// Store reads made to activate flows.
    pub fn store_reads(&self) -> u64 {
        self.inner.live.activations()
    }

    /// Live flow actors, activations, evictions and passivations (for metrics).
    pub fn stats(&self) -> crate::actors::registry::RegistryStats {
        self.inner.live.stats()
    }

    /// Passivates every flow (tests: later steps must reload from the store).
    #[doc(hidden)]
    pub fn passivate_all(&self) {
        self.inner.live.remove_where(|_, _| true);
    }
}
