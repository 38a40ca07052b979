//! The Janitor: a supervised actor that passivates idle session actors and deletes expired
//! sessions in batches on a schedule (`[actors.janitor]`). `tessera cleanup` runs one pass.

use crate::clock::Clock;
use crate::config::ActorsConfig;
use crate::persistence::selfservice::{self as flow_rows, FlowTable};
use crate::persistence::{Store, StoreError, session as session_rows};
use crate::selfservice::registry::FlowRegistry;
use crate::session::SessionRegistry;
use actix::prelude::*;
use std::time::Duration;

/// Deletes expired sessions and flows in batches of `batch_size`; returns how many rows.
pub async fn delete_expired(store: &Store, clock: &Clock, batch_size: usize) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let mut pooled = store.get().await?;
        let n = session_rows::delete_expired(&mut pooled.conn(), clock.now(), batch_size as i64).await?;
        total += n;
        if n < batch_size {
            break;
        }
    }
    // Flows are kept for a while after they expire: a late submit still finds them and gets
    // "expired" (with a replacement flow) instead of "not found".
    let flow_cutoff = clock.now() - chrono::Duration::hours(1);
    for table in FlowTable::ALL {
        loop {
            let mut pooled = store.get().await?;
            let n = flow_rows::delete_expired_flows(&mut pooled.conn(), table, flow_cutoff, batch_size as i64).await?;
            total += n;
            if n < batch_size {
                break;
            }
        }
    }
    loop {
        let mut pooled = store.get().await?;
        let n = flow_rows::delete_expired_codes(&mut pooled.conn(), flow_cutoff, batch_size as i64).await?;
        total += n;
        if n < batch_size {
            break;
        }
    }
    // Brute-force buckets nobody has touched for a day (and that are not locked) go too.
    let stale = clock.now() - chrono::Duration::hours(24);
    loop {
        let mut pooled = store.get().await?;
        let n = flow_rows::delete_stale_counters(&mut pooled.conn(), stale, clock.now(), batch_size as i64).await?;
        total += n;
        if n < batch_size {
            break;
        }
    }
    Ok(total)
}

/// Runs cleanup and idle passivation on a schedule.
pub struct Janitor {
    store: Store,
    registry: SessionRegistry,
    flows: FlowRegistry,
    config: ActorsConfig,
    clock: Clock,
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Idle actors are looked for several times per idle timeout.
        let sweep = (self.config.session.idle_timeout.0 / 4).max(Duration::from_millis(50));
        ctx.run_interval(sweep, |act, _| {
            let n = act.registry.sweep_idle();
            if n > 0 {
                tracing::debug!(passivated = n, "idle session actors passivated");
            }
            let n = act.flows.sweep_idle();
            if n > 0 {
                tracing::debug!(passivated = n, "idle flow actors passivated");
            }
        });
        let interval = self.config.janitor.interval.0.max(Duration::from_millis(100));
        ctx.run_interval(interval, |act, ctx| {
            let (store, clock, batch) = (act.store.clone(), act.clock.clone(), act.config.janitor.batch_size.max(1));
            ctx.spawn(
                async move {
                    match delete_expired(&store, &clock, batch).await {
                        Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions and flows deleted"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "janitor: cleanup failed"),
                    }
                }
                .into_actor(act),
            );
        });
    }
}

impl Supervised for Janitor {}

/// Starts the janitor under a supervisor.
pub fn start(
    store: Store,
    registry: SessionRegistry,
    flows: FlowRegistry,
    config: ActorsConfig,
    clock: Clock,
) -> Addr<Janitor> {
    Supervisor::start(move |_| Janitor { store, registry, flows, config, clock })
}
