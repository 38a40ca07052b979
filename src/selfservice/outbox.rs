//! Messages a flow sends after its answer: the answer to "send me a code" does the same work
//! (and takes the same time) whether or not the address belongs to anyone, and the lookup,
//! the code and the message follow on a task of their own. A flow's sends run one at a time and
//! only the newest request runs at all: a resend that overtakes an earlier send leaves exactly
//! one valid code.

use crate::error::Error;
use dashmap::DashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

#[derive(Default)]
struct Slot {
    /// The newest request's number.
    newest: AtomicU64,
    running: tokio::sync::Mutex<()>,
}

/// The per-flow send queues.
#[derive(Clone, Default)]
pub struct Outbox {
    slots: Arc<DashMap<Uuid, Arc<Slot>>>,
}

impl Outbox {
    /// Runs `work` for `flow` after the sends queued before it, unless a newer request for the
    /// same flow comes first. A failure is logged (the answer has gone: it must not depend on
    /// whether the address was known).
    pub fn send_latest<F>(&self, flow: Uuid, work: F)
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let slot = self.slots.entry(flow).or_default().clone();
        let mine = slot.newest.fetch_add(1, Ordering::SeqCst) + 1;
        let slots = self.slots.clone();
        tokio::spawn(async move {
            {
                let _running = slot.running.lock().await;
                if slot.newest.load(Ordering::SeqCst) == mine
                    && let Err(e) = work.await
                {
                    tracing::error!(flow_id = %flow, error = %e, "the flow's message could not be queued");
                }
            }
            drop(slot);
            // The map's own reference is the last one: nothing is queued for the flow.
            slots.remove_if(&flow, |_, s| Arc::strong_count(s) == 1);
        });
    }

    /// How many flows have sends queued or running.
    pub fn pending(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test]
    async fn only_the_newest_request_of_a_flow_runs_after_a_running_one() {
        let outbox = Outbox::default();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let flow = Uuid::new_v4();
        for n in 0..4 {
            let ran = ran.clone();
            outbox.send_latest(flow, async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ran.lock().unwrap().push(n);
                Ok(())
            });
            // The first one starts before the others are queued.
            if n == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let other = Uuid::new_v4();
        let r = ran.clone();
        outbox.send_latest(other, async move {
            r.lock().unwrap().push(10);
            Ok(())
        });
        for _ in 0..100 {
            if outbox.pending() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut ran = ran.lock().unwrap().clone();
        ran.sort_unstable();
        assert_eq!(ran, [0, 3, 10]);
        assert_eq!(outbox.pending(), 0, "finished flows leave no slot");
    }
}
