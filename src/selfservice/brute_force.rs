//! Brute-force defence (tessera's own; Kratos has none): every password attempt reserves a
//! slot in a per-identifier and a per-IP bucket *before* the password is checked. The
//! reservation is one transaction whose counters are raised by the database, so parallel
//! attempts on any number of instances get distinct numbers, and at most the configured
//! number of attempts per window is ever evaluated. A success clears the identifier's bucket.

use crate::clock::Clock;
use crate::config::{BruteForceConfig, SendLimitsConfig};
use crate::persistence::selfservice as rows;
use crate::persistence::{Store, StoreError};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Whether an attempt may be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Locked out until then.
    Locked(DateTime<Utc>),
}

/// The counters, kept in the store.
#[derive(Clone)]
pub struct BruteForce {
    config: BruteForceConfig,
    sends: SendLimitsConfig,
    store: Store,
    clock: Clock,
    metrics: crate::telemetry::metrics::Metrics,
}

fn id_key(identifier: &str) -> String {
    format!("id:{}", hex::encode(Sha256::digest(identifier.trim().to_lowercase().as_bytes())))
}

fn second_factor_key(identity: uuid::Uuid) -> String {
    format!("2fa:{identity}")
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn send_address_key(address: &str) -> String {
    format!("send-to:{}", hex::encode(Sha256::digest(address.trim().to_lowercase().as_bytes())))
}

fn send_ip_key(ip: &str) -> String {
    format!("send-from:{ip}")
}

/// The client address a bucket is keyed on: requests whose address could not be determined
/// still count, all in one shared bucket.
fn client(ip: Option<&str>) -> &str {
    ip.filter(|ip| !ip.is_empty()).unwrap_or("unknown")
}

/// How long the lock after `earlier` locks lasts: `base`, doubled per earlier lock, at most `max`.
fn backoff(base: std::time::Duration, max: std::time::Duration, earlier: i32) -> std::time::Duration {
    let doublings = u32::try_from(earlier.clamp(0, 30)).unwrap_or(0);
    base.saturating_mul(1 << doublings).min(max.max(base))
}

fn dur(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl BruteForce {
    /// Counters over `store`.
    pub fn new(config: BruteForceConfig, sends: SendLimitsConfig, store: Store, clock: Clock) -> BruteForce {
        BruteForce { config, sends, store, clock, metrics: Default::default() }
    }

    /// Refusals by kind (`tessera_brute_force_lockouts_total`).
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.metrics
    }

    fn count_refusal(&self, verdict: &Verdict, kind: &'static str) {
        if matches!(verdict, Verdict::Locked(_)) {
            self.metrics
                .counter(
                    "tessera_brute_force_lockouts_total",
                    "attempts refused because their bucket is locked: password (identifier or client \
                     address), second_factor, send (messages to an address or from a client)",
                    &[("kind", kind.to_string())],
                )
                .increment(1);
        }
    }

    /// Reserves an attempt for `identifier` from `ip`.
    pub async fn reserve(&self, identifier: &str, ip: Option<&str>) -> Result<Verdict, StoreError> {
        let verdict = self.reserve_attempt(id_key(identifier), Some(ip)).await?;
        self.count_refusal(&verdict, "password");
        Ok(verdict)
    }

    /// Reserves a second-factor attempt (TOTP, lookup secret, WebAuthn at aal2) of a signed-in
    /// identity: its own bucket (password identifiers never share it). The caller already
    /// proved a first factor, so the client address is not counted.
    pub async fn reserve_second_factor(&self, identity: uuid::Uuid) -> Result<Verdict, StoreError> {
        let verdict = self.reserve_attempt(second_factor_key(identity), None).await?;
        self.count_refusal(&verdict, "second_factor");
        Ok(verdict)
    }

    /// One attempt in the bucket `key` (limited like an identifier's) and, when `client` is
    /// given, in the client address's.
    async fn reserve_attempt(&self, key: String, client_ip: Option<Option<&str>>) -> Result<Verdict, StoreError> {
        if !self.config.enabled {
            return Ok(Verdict::Allowed);
        }
        let now = self.clock.now();
        let (base, max) = (self.config.lockout.0, self.config.max_lockout.0);
        let lock_until = move |earlier: i32| now + dur(backoff(base, max, earlier));
        let mut buckets = vec![(key, self.config.max_failures_per_identifier)];
        if let Some(ip) = client_ip {
            buckets.push((ip_key(client(ip)), self.config.max_failures_per_ip));
        }
        self.reserve_in(buckets, self.config.window.0, lock_until).await
    }

    /// A second factor was proved: the identity's bucket starts over (failures are logged).
    pub async fn second_factor_succeeded(&self, identity: uuid::Uuid) {
        if let Err(e) = self.attempt_succeeded(&second_factor_key(identity), None).await {
            tracing::warn!(error = %e, "brute-force counter could not be cleared");
        }
    }

    /// Reserves one message to `address` requested from `ip` (recovery, verification and code
    /// sends), whether or not the address is known.
    pub async fn reserve_send(&self, address: &str, ip: Option<&str>) -> Result<Verdict, StoreError> {
        if !self.sends.enabled {
            return Ok(Verdict::Allowed);
        }
        let now = self.clock.now();
        let window = dur(self.sends.window.0);
        let buckets =
            [(send_address_key(address), self.sends.max_per_address), (send_ip_key(client(ip)), self.sends.max_per_ip)];
        let verdict = self.reserve_in(buckets.to_vec(), self.sends.window.0, move |_| now + window).await?;
        self.count_refusal(&verdict, "send");
        Ok(verdict)
    }

    /// Raises each bucket by one in one transaction; locked if any bucket is over its limit.
    async fn reserve_in(
        &self,
        buckets: Vec<(String, u32)>,
        window: std::time::Duration,
        lock_until: impl Fn(i32) -> DateTime<Utc>,
    ) -> Result<Verdict, StoreError> {
        let now = self.clock.now();
        let window_start_after = now - dur(window);
        let mut pooled = self.store.get().await?;
        let mut conn = pooled.conn();
        conn.begin().await?;
        let mut verdict = Verdict::Allowed;
        for (key, limit) in buckets {
            let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
            let reserved = rows::reserve_attempt(&mut conn, &key, now, window_start_after, limit, &lock_until).await;
            let (n, locked_until) = match reserved {
                Ok(r) => r,
                Err(e) => {
                    let _ = conn.rollback().await;
                    return Err(e);
                }
            };
            // `n == 0`: the bucket was locked before this attempt.
            if n == 0 || n > limit {
                verdict = Verdict::Locked(locked_until.unwrap_or(now));
            }
        }
        conn.commit().await?;
        Ok(verdict)
    }

    /// Counts one code submission to flow `flow_id` (in the database, so every instance sees
    /// the same count) and returns how many there were, this one included; `u32::MAX` once the
    /// flow is over its `limit` (it stays locked until `until`).
    pub async fn code_submission(
        &self,
        flow_id: uuid::Uuid,
        limit: u32,
        until: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let now = self.clock.now();
        let key = format!("code-submissions:{flow_id}");
        // One window for the flow's whole life; the submit after the limit locks the bucket.
        let window_start_after = now - chrono::Duration::days(365);
        let lock = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let mut pooled = self.store.get().await?;
        let mut conn = pooled.conn();
        conn.begin().await?;
        let reserved = rows::reserve_attempt(&mut conn, &key, now, window_start_after, lock, |_| until).await;
        let (n, _) = match reserved {
            Ok(r) => r,
            Err(e) => {
                let _ = conn.rollback().await;
                return Err(e);
            }
        };
        conn.commit().await?;
        Ok(if n <= 0 { u32::MAX } else { u32::try_from(n).unwrap_or(u32::MAX) })
    }

    /// A successful login: the identifier's bucket starts over and the address gets its
    /// attempt back (so many users behind one address are not locked out by signing in).
    pub async fn succeeded(&self, identifier: &str, ip: Option<&str>) -> Result<(), StoreError> {
        self.attempt_succeeded(&id_key(identifier), Some(ip)).await
    }

    async fn attempt_succeeded(&self, key: &str, client_ip: Option<Option<&str>>) -> Result<(), StoreError> {
        if !self.config.enabled {
            return Ok(());
        }
        let mut pooled = self.store.get().await?;
        let mut conn = pooled.conn();
        rows::clear_counter(&mut conn, key).await?;
        if let Some(ip) = client_ip {
            rows::release_attempt(&mut conn, &ip_key(client(ip))).await?;
        }
        Ok(())
    }

    /// Claims a one-time secret (a TOTP time step of an identity): true only for the first
    /// caller, on every instance.
    pub async fn claim_once(&self, key: &str) -> Result<bool, StoreError> {
        let mut pooled = self.store.get().await?;
        rows::claim_once(&mut pooled.conn(), &format!("once:{key}"), self.clock.now()).await
    }

    /// Seconds until `until`, at least 1.
    pub fn retry_after(&self, until: DateTime<Utc>) -> i64 {
        (until - self.clock.now()).num_seconds().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_lock_lasts_twice_the_last_up_to_the_maximum() {
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        let locks: Vec<u64> = (0..9).map(|n| backoff(base, max, n).as_secs()).collect();
        assert_eq!(locks, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(base, max, i32::MAX), max);
        assert_eq!(backoff(base, Duration::ZERO, 3), base, "a maximum below the base is the base");
    }
}
