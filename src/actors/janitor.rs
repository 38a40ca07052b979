//! The Janitor: a supervised actor that passivates idle actors and deletes expired rows in
//! batches on a schedule (`[actors.janitor]`). What it sweeps is handed to it, so it knows no
//! registry; `tessera cleanup` runs the deletion once.

use crate::clock::Clock;
use crate::config::ActorsConfig;
use crate::persistence::Store;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Passivates idle actors of one registry; returns how many.
pub type Sweep = Arc<dyn Fn() -> usize + Send + Sync>;

/// Runs cleanup and idle passivation on a schedule.
pub struct Janitor {
    store: Store,
    sweeps: Vec<(&'static str, Sweep)>,
    config: ActorsConfig,
    clock: Clock,
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Idle actors are looked for several times per idle timeout.
        let every = (self.config.session.idle_timeout.0 / 4).max(Duration::from_millis(50));
        ctx.run_interval(every, |act, _| {
            for (what, sweep) in &act.sweeps {
                let n = sweep();
                if n > 0 {
                    tracing::debug!(passivated = n, actors = what, "idle actors passivated");
                }
            }
        });
        let interval = self.config.janitor.interval.0.max(Duration::from_millis(100));
        ctx.run_interval(interval, |act, ctx| {
            let (store, now, batch) = (act.store.clone(), act.clock.now(), act.config.janitor.batch_size);
            ctx.spawn(
                async move {
                    match crate::persistence::cleanup::delete_expired(&store, now, batch).await {
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

/// Starts the janitor under a supervisor; `sweeps` name the registries it passivates.
pub fn start(store: Store, sweeps: Vec<(&'static str, Sweep)>, config: ActorsConfig, clock: Clock) -> Addr<Janitor> {
    Supervisor::start(move |_| Janitor { store, sweeps, config, clock })
}
