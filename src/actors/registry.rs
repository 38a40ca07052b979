//! A registry of live actors by key, shared by flows and sessions: lookup, activation from the
//! store with single-flight loading (many concurrent callers, one load), eviction of the least
//! recently used of a sample when over `max_live`, passivation of idle entries, and
//! reactivation after an actor's mailbox closed (a stopped or panicked actor is not live).

use dashmap::DashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// What a registry holds: a handle on a live actor.
pub trait Resident: Send + Sync + 'static {
    /// Stops the actor; called once, when its entry leaves the registry.
    fn passivate(&self);
}

/// Entries compared when one must be evicted (an exact LRU over millions would cost more
/// than it saves).
const EVICTION_SAMPLE: usize = 64;

/// A live entry and when it was last used.
pub struct Entry<V> {
    value: V,
    last_used: AtomicU64,
}

impl<V> std::ops::Deref for Entry<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.value
    }
}

type Loading<V> = Arc<OnceCell<Option<Arc<Entry<V>>>>>;
type OnLeave<K, V> = Box<dyn Fn(&K, &V) + Send + Sync>;

/// A registry's numbers at one moment (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Entries live now.
    pub live: u64,
    /// Loads from the store (activations).
    pub activations: u64,
    /// Entries pushed out because the registry was full.
    pub evictions: u64,
    /// Entries passivated after their idle timeout.
    pub passivations: u64,
}

/// Live actors by key.
pub struct Registry<K, V> {
    live: DashMap<K, Arc<Entry<V>>>,
    loading: DashMap<K, Loading<V>>,
    max_live: usize,
    idle: Duration,
    epoch: Instant,
    activations: AtomicU64,
    evictions: AtomicU64,
    passivations: AtomicU64,
    on_leave: Option<OnLeave<K, V>>,
}

impl<K, V> Registry<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Resident,
{
    /// An empty registry holding at most `max_live` entries, passivating those idle for `idle`.
    pub fn new(max_live: usize, idle: Duration) -> Self {
        Registry {
            live: DashMap::new(),
            loading: DashMap::new(),
            max_live: max_live.max(1),
            idle,
            epoch: Instant::now(),
            activations: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            passivations: AtomicU64::new(0),
            on_leave: None,
        }
    }

    /// Calls `f` whenever an entry leaves (secondary indexes are kept in step with it).
    pub fn on_leave(mut self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> Self {
        self.on_leave = Some(Box::new(f));
        self
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn leave(&self, key: &K, entry: &Entry<V>) {
        if let Some(f) = &self.on_leave {
            f(key, &entry.value);
        }
        entry.value.passivate();
    }

    /// The live entry of `key`, marked as used.
    pub fn get(&self, key: &K) -> Option<Arc<Entry<V>>> {
        let entry = self.live.get(key).map(|e| e.value().clone())?;
        entry.last_used.store(self.now_ms(), Ordering::Relaxed);
        Some(entry)
    }

    /// The live entry of `key`, activated with `load` when there is none. Concurrent callers
    /// for one key share one load. `Ok(None)`: `load` found nothing to activate.
    pub async fn activate<E, F, Fut>(&self, key: &K, load: F) -> Result<Option<Arc<Entry<V>>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(e) = self.get(key) {
            return Ok(Some(e));
        }
        let cell = self.loading.entry(key.clone()).or_insert_with(|| Arc::new(OnceCell::new())).clone();
        let result = cell
            .get_or_try_init(|| async {
                if let Some(e) = self.get(key) {
                    return Ok(Some(e));
                }
                self.activations.fetch_add(1, Ordering::Relaxed);
                Ok(load().await?.map(|v| self.insert(key.clone(), v)))
            })
            .await
            .cloned();
        self.loading.remove_if(key, |_, v| Arc::ptr_eq(v, &cell));
        result
    }

    /// Makes `value` the live entry of `key` (an entry it replaces is passivated); evicts the least
    /// recently used of a sample when over `max_live`.
    pub fn insert(&self, key: K, value: V) -> Arc<Entry<V>> {
        let entry = Arc::new(Entry { value, last_used: AtomicU64::new(self.now_ms()) });
        if let Some(old) = self.live.insert(key.clone(), entry.clone()) {
            // The key stays live: its secondary index entries stay too.
            old.value.passivate();
        }
        if self.live.len() > self.max_live {
            self.evict_one(&key);
        }
        entry
    }

    fn evict_one(&self, keep: &K) {
        let victim = self
            .live
            .iter()
            .filter(|e| e.key() != keep)
            .take(EVICTION_SAMPLE)
            .min_by_key(|e| e.value().last_used.load(Ordering::Relaxed))
            .map(|e| e.key().clone());
        if let Some(v) = victim
            && self.remove(&v)
        {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes (and passivates) the entry of `key`; whether there was one.
    pub fn remove(&self, key: &K) -> bool {
        match self.live.remove(key) {
            Some((k, e)) => {
                self.leave(&k, &e);
                true
            }
            None => false,
        }
    }

    /// Forgets `entry` if it is still the live one of `key`: its actor's mailbox closed, so
    /// the next use activates a fresh one.
    pub fn forget_closed(&self, key: &K, entry: &Arc<Entry<V>>) {
        if let Some((k, e)) = self.live.remove_if(key, |_, e| Arc::ptr_eq(e, entry)) {
            self.leave(&k, &e);
        }
    }

    /// Removes every entry for which `pred` holds; returns how many.
    pub fn remove_where(&self, pred: impl Fn(&K, &V) -> bool) -> usize {
        let keys: Vec<K> =
            self.live.iter().filter(|e| pred(e.key(), &e.value().value)).map(|e| e.key().clone()).collect();
        keys.iter().filter(|k| self.remove(k)).count()
    }

    /// Passivates entries unused for the idle timeout or longer; returns how many.
    pub fn sweep_idle(&self) -> usize {
        let idle = self.idle.as_millis() as u64;
        let now = self.now_ms();
        let keys: Vec<K> = self
            .live
            .iter()
            .filter(|e| now.saturating_sub(e.value().last_used.load(Ordering::Relaxed)) >= idle)
            .map(|e| e.key().clone())
            .collect();
        let n = keys.iter().filter(|k| self.remove(k)).count();
        self.passivations.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// How many loads activation has run (each one is a store read).
    pub fn activations(&self) -> u64 {
        self.activations.load(Ordering::Relaxed)
    }

    /// What the registry did so far.
    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            live: self.live.len() as u64,
            activations: self.activations.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            passivations: self.passivations.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A resident that records when it is passivated.
    struct Probe {
        id: u32,
        stopped: Arc<Mutex<Vec<u32>>>,
    }

    impl Resident for Probe {
        fn passivate(&self) {
            self.stopped.lock().unwrap_or_else(|p| p.into_inner()).push(self.id);
        }
    }

    fn probe(id: u32, stopped: &Arc<Mutex<Vec<u32>>>) -> Probe {
        Probe { id, stopped: stopped.clone() }
    }

    fn stopped(s: &Arc<Mutex<Vec<u32>>>) -> Vec<u32> {
        s.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    #[tokio::test]
    async fn concurrent_activations_of_one_key_share_one_load() {
        let reg: Arc<Registry<u32, Probe>> = Arc::new(Registry::new(10, Duration::from_secs(60)));
        let log = Arc::new(Mutex::new(Vec::new()));
        let loads = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (reg, log, loads) = (reg.clone(), log.clone(), loads.clone());
                tokio::spawn(async move {
                    reg.activate(&7, || async {
                        loads.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(Some(probe(7, &log)))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await, Ok(Ok(Some(_)))));
        }
        assert_eq!(loads.load(Ordering::Relaxed), 1);
        assert_eq!(reg.activations(), 1);
        assert_eq!(reg.len(), 1);
        // Nothing found: nothing live, and the next activation loads again.
        let none = reg.activate(&8, || async { Ok::<Option<Probe>, ()>(None) }).await;
        assert!(matches!(none, Ok(None)));
        assert_eq!(reg.len(), 1);
        let err = reg.activate(&9, || async { Err::<Option<Probe>, &str>("store down") }).await;
        assert!(matches!(err, Err("store down")));
        assert_eq!(reg.activations(), 3);
    }

    #[tokio::test]
    async fn over_max_live_the_least_recently_used_is_passivated() {
        let reg: Registry<u32, Probe> = Registry::new(3, Duration::from_secs(60));
        let log = Arc::new(Mutex::new(Vec::new()));
        for id in 1..=3 {
            reg.insert(id, probe(id, &log));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // 1 is used again: 2 is now the least recently used.
        assert!(reg.get(&1).is_some());
        reg.insert(4, probe(4, &log));
        assert_eq!(reg.len(), 3);
        assert_eq!(stopped(&log), vec![2]);
        assert!(reg.get(&2).is_none());
        // Replacing an entry passivates the old one.
        reg.insert(4, probe(40, &log));
        assert_eq!(stopped(&log), vec![2, 4]);
        assert_eq!(reg.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_entries_are_passivated_and_leave_their_indexes() {
        let left = Arc::new(Mutex::new(Vec::new()));
        let l = left.clone();
        let reg: Registry<u32, Probe> = Registry::new(100, Duration::from_secs(60))
            .on_leave(move |k, _| l.lock().unwrap_or_else(|p| p.into_inner()).push(*k));
        let log = Arc::new(Mutex::new(Vec::new()));
        reg.insert(1, probe(1, &log));
        reg.insert(2, probe(2, &log));
        tokio::time::advance(Duration::from_secs(45)).await;
        assert!(reg.get(&2).is_some());
        assert_eq!(reg.sweep_idle(), 0);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(reg.sweep_idle(), 1, "only the entry unused for a minute");
        assert_eq!(stopped(&log), vec![1]);
        assert_eq!(*left.lock().unwrap_or_else(|p| p.into_inner()), vec![1]);
        assert_eq!(reg.remove_where(|_, p| p.id == 2), 1);
        assert!(reg.is_empty());
    }

    #[tokio::test]
    async fn a_closed_entry_is_forgotten_only_if_still_live() {
        let reg: Registry<u32, Probe> = Registry::new(10, Duration::from_secs(60));
        let log = Arc::new(Mutex::new(Vec::new()));
        let old = reg.insert(1, probe(1, &log));
        let new = reg.insert(1, probe(10, &log));
        reg.forget_closed(&1, &old);
        assert!(reg.get(&1).is_some_and(|e| Arc::ptr_eq(&e, &new)), "a newer activation stays");
        reg.forget_closed(&1, &new);
        assert!(reg.get(&1).is_none());
        let again = reg.activate(&1, || async { Ok::<_, ()>(Some(probe(11, &log))) }).await;
        assert!(matches!(again, Ok(Some(e)) if e.id == 11));
    }
}
