//! `SessionActor`: one per live session. It owns the session's snapshot cell — handlers read
//! the snapshot without a message; the actor refreshes it from the store (at most once per
//! `actors.session.revalidate_interval`, concurrent requests coalesced by its mailbox).

use super::live::{IdentityCache, Key, Live, load_live};
use crate::persistence::{Store, StoreError};
use actix::prelude::*;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The shared cell a live session's snapshot is published in.
pub type Cell = Arc<RwLock<Arc<Live>>>;

/// Reads the current snapshot.
pub fn read(cell: &Cell) -> Arc<Live> {
    cell.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn publish(cell: &Cell, live: Arc<Live>) {
    *cell.write().unwrap_or_else(|p| p.into_inner()) = live;
}

/// Keeps one session's snapshot fresh.
pub struct SessionActor {
    pub(super) cell: Cell,
    pub(super) store: Store,
    pub(super) revalidate_interval: Duration,
    pub(super) public_base: String,
    pub(super) code_mfa: bool,
    pub(super) identities: IdentityCache,
}

impl Actor for SessionActor {
    type Context = Context<Self>;
}

/// Refresh the snapshot from the store unless it was refreshed within the interval.
/// `Ok(None)`: the session or its identity is gone.
#[derive(Message)]
#[rtype(result = "Result<Option<Arc<Live>>, StoreError>")]
pub struct Revalidate;

impl Handler<Revalidate> for SessionActor {
    type Result = AtomicResponse<Self, Result<Option<Arc<Live>>, StoreError>>;

    fn handle(&mut self, _: Revalidate, _: &mut Self::Context) -> Self::Result {
        let current = read(&self.cell);
        if current.validated_at.elapsed() < self.revalidate_interval {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(Some(current)))));
        }
        let cache = self.identities.clone();
        let (store, base, id, code_mfa) =
            (self.store.clone(), self.public_base.clone(), current.session.id, self.code_mfa);
        AtomicResponse::new(Box::pin(
            async move { load_live(&store, &base, code_mfa, &cache, Key::Id(id)).await }.into_actor(self).map(
                move |res, act, _| match res {
                    Ok(Some(live)) => {
                        publish(&act.cell, live.clone());
                        Ok(Some(live))
                    }
                    // The store cannot be asked (an outage): the session answers from memory
                    // (nothing can be revoked in the store meanwhile either) and asks again
                    // after another interval, so requests do not queue behind the outage.
                    Err(e) => {
                        tracing::warn!(error = %e, "session revalidation failed; serving the last snapshot");
                        let kept = Arc::new(Live {
                            session: current.session.clone(),
                            shared: current.shared.clone(),
                            validated_at: std::time::Instant::now(),
                            whoami_parts: current.whoami_parts.clone(),
                        });
                        publish(&act.cell, kept.clone());
                        Ok(Some(kept))
                    }
                    gone => gone,
                },
            ),
        ))
    }
}

impl Handler<crate::actors::Passivate> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: crate::actors::Passivate, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
