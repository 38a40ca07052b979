//! The configured hasher (argon2id or bcrypt) and the bounded pool of blocking workers that
//! runs every hash and verification.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

use super::formats::{self, BCRYPT_MAX_PASSWORD, Parsed};
use super::{HashError, ImportLimits};
use crate::config::{HashAlgorithm, HashersConfig};

/// The configured hasher plus a bounded pool of blocking workers.
#[derive(Clone)]
pub struct HashPool {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: Hasher,
    limits: ImportLimits,
    /// One permit per worker; a permit is held until the blocking job itself ends, so a caller
    /// that gives up waiting cannot let more than `workers` jobs run at once.
    permits: Arc<Semaphore>,
    workers: usize,
    queue_timeout: std::time::Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    completed: AtomicU64,
    metrics: crate::telemetry::metrics::Metrics,
    /// Time from asking for a worker to getting one.
    queue_wait: metrics::Histogram,
}

/// How new passwords are hashed.
enum Hasher {
    Argon2 { params: argon2::Params, salt_length: usize },
    Bcrypt { cost: u32 },
}

impl HashPool {
    /// Builds the pool from `[hashers]`; checks parameters and the memory cap.
    pub fn new(config: &HashersConfig) -> Result<HashPool, HashError> {
        let hasher = Hasher::from_config(config)?;
        let workers = resolve_workers(config)?;
        let metrics = crate::telemetry::metrics::Metrics::new(&[(
            "tessera_hash_queue_wait_seconds",
            &crate::telemetry::metrics::LATENCY_BUCKETS,
        )]);
        let queue_wait = metrics.histogram(
            "tessera_hash_queue_wait_seconds",
            "time a hash or verification waited for a worker",
            &[],
        );
        Ok(HashPool {
            inner: Arc::new(Inner {
                hasher,
                limits: ImportLimits::from_config(config),
                permits: Arc::new(Semaphore::new(workers)),
                workers,
                queue_timeout: config.pool.queue_timeout.map_or(std::time::Duration::from_secs(10), |d| d.0),
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                completed: AtomicU64::new(0),
                metrics,
                queue_wait,
            }),
        })
    }

    /// Hashes `password` with the configured algorithm on the pool.
    pub async fn hash(&self, password: Vec<u8>) -> Result<String, HashError> {
        if matches!(self.inner.hasher, Hasher::Bcrypt { .. }) && password.len() > BCRYPT_MAX_PASSWORD {
            return Err(HashError::TooLong);
        }
        self.run(move |inner| inner.hasher.hash(&password)).await
    }

    /// Verifies `password` against `encoded` on the pool.
    pub async fn verify(&self, password: Vec<u8>, encoded: String) -> Result<bool, HashError> {
        // Parsing is cheap: unknown and malformed hashes are answered without taking a worker.
        let parsed = formats::parse(&encoded)?;
        self.run(move |_| parsed.verify(&password)).await
    }

    /// Checks an imported hash: its format, and its cost against `[hashers.import_limits]`.
    pub fn check_import(&self, encoded: &str) -> Result<(), HashError> {
        self.inner.limits.check(encoded)
    }

    /// Whether a stored hash should be replaced by one of the configured hasher after a
    /// successful login: another algorithm family, or a cost above the configured one.
    pub fn needs_rehash(&self, encoded: &str) -> bool {
        match (&self.inner.hasher, formats::parse(encoded)) {
            (
                Hasher::Argon2 { params, .. },
                Ok(Parsed::Argon2 { algorithm: argon2::Algorithm::Argon2id, params: p, .. }),
            ) => p.m_cost() > params.m_cost() || p.t_cost() > params.t_cost() || p.p_cost() > params.p_cost(),
            (Hasher::Bcrypt { cost }, Ok(parsed @ Parsed::Bcrypt { .. })) => {
                parsed.costs().iter().any(|&(_, c)| c > u64::from(*cost))
            }
            _ => true,
        }
    }

    /// Number of workers (hashes computed at once).
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Hashes being computed right now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Jobs (hashes and verifications) finished by this pool so far.
    pub fn completed(&self) -> u64 {
        self.inner.completed.load(Ordering::SeqCst)
    }

    /// Queue waits (`tessera_hash_queue_wait_seconds`).
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.inner.metrics
    }

    /// The most hashes ever computed at once by this pool (never above [`HashPool::workers`]).
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// Runs `job` on a blocking thread once a worker permit is free.
    async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, HashError> + Send + 'static,
    {
        let acquire = Arc::clone(&self.inner.permits).acquire_owned();
        let asked = std::time::Instant::now();
        let permit = tokio::time::timeout(self.inner.queue_timeout, acquire)
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Internal("the hash pool is closed".into()))?;
        self.inner.queue_wait.record(asked.elapsed().as_secs_f64());
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            inner.peak.fetch_max(now, Ordering::SeqCst);
            let _leave = InFlight(&inner.in_flight);
            let result = job(&inner);
            inner.completed.fetch_add(1, Ordering::SeqCst);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(HashError::Internal("a hash worker panicked".into())),
            Err(_) => Err(HashError::Internal("a hash worker was cancelled".into())),
        }
    }
}

/// Decrements the in-flight count when the job ends, even by unwinding.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    fn from_config(config: &HashersConfig) -> Result<Hasher, HashError> {
        match config.algorithm {
            HashAlgorithm::Argon2 => {
                let a = &config.argon2;
                let m_cost = u32::try_from(a.memory.0 / 1024)
                    .map_err(|_| HashError::Config("hashers.argon2.memory is too large".into()))?;
                let key_length = usize::try_from(a.key_length)
                    .map_err(|_| HashError::Config("hashers.argon2.key_length is too large".into()))?;
                let params =
                    argon2::Params::new(m_cost, a.iterations, a.parallelism, Some(key_length)).map_err(|e| {
                        HashError::Config(format!(
                            "hashers.argon2 (memory, iterations, parallelism, key_length) is not usable: {e}"
                        ))
                    })?;
                let salt_length = usize::try_from(a.salt_length)
                    .map_err(|_| HashError::Config("hashers.argon2.salt_length is too large".into()))?;
                if salt_length < argon2::MIN_SALT_LEN {
                    return Err(HashError::Config(format!(
                        "hashers.argon2.salt_length must be at least {}",
                        argon2::MIN_SALT_LEN
                    )));
                }
                Ok(Hasher::Argon2 { params, salt_length })
            }
            HashAlgorithm::Bcrypt => {
                let cost = config.bcrypt.cost;
                if !(4..=31).contains(&cost) {
                    return Err(HashError::Config(format!("hashers.bcrypt.cost must be between 4 and 31, not {cost}")));
                }
                Ok(Hasher::Bcrypt { cost })
            }
        }
    }

    /// Hashes a new password (blocking).
    fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        match self {
            Hasher::Argon2 { params, salt_length } => {
                let mut salt = vec![0u8; *salt_length];
                random(&mut salt)?;
                let mut out = vec![0u8; params.output_len().unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN)];
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone())
                    .hash_password_into(password, &salt, &mut out)
                    .map_err(|e| HashError::Internal(format!("argon2: {e}")))?;
                Ok(format!(
                    "$argon2id$v=19$m={},t={},p={}${}${}",
                    params.m_cost(),
                    params.t_cost(),
                    params.p_cost(),
                    STANDARD_NO_PAD.encode(&salt),
                    STANDARD_NO_PAD.encode(&out)
                ))
            }
            Hasher::Bcrypt { cost } => {
                if password.len() > BCRYPT_MAX_PASSWORD {
                    return Err(HashError::TooLong);
                }
                let mut salt = [0u8; 16];
                random(&mut salt)?;
                let parts = bcrypt::hash_with_salt(password, *cost, salt)
                    .map_err(|e| HashError::Internal(format!("bcrypt: {e}")))?;
                // Kratos writes the `$2a$` prefix.
                Ok(parts.format_for_version(bcrypt::Version::TwoA))
            }
        }
    }
}

/// Hashes `password` once with the configured hasher on this thread (for calibration).
pub fn hash_once(config: &HashersConfig, password: &[u8]) -> Result<String, HashError> {
    Hasher::from_config(config)?.hash(password)
}

fn random(buf: &mut [u8]) -> Result<(), HashError> {
    OsRng.try_fill_bytes(buf).map_err(|e| HashError::Internal(format!("the OS random source failed: {e}")))
}

/// Workers: `hashers.pool.workers`, or one per CPU when 0. With argon2 the pool must fit in
/// `hashers.argon2.dedicated_memory`: an automatic count is lowered to fit (at least 1), an
/// explicit one that does not fit is a configuration error.
fn resolve_workers(config: &HashersConfig) -> Result<usize, HashError> {
    let argon2 = config.algorithm == HashAlgorithm::Argon2;
    let memory = config.argon2.memory.0.max(1);
    let dedicated = config.argon2.dedicated_memory.0;
    let fitting = usize::try_from(dedicated / memory).unwrap_or(usize::MAX);
    match config.pool.workers {
        0 => {
            let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            Ok(if argon2 { cpus.min(fitting).max(1) } else { cpus })
        }
        explicit if argon2 && explicit > fitting => Err(HashError::Config(format!(
            "hashers.pool.workers ({explicit}) x hashers.argon2.memory ({memory} bytes) exceeds \
             hashers.argon2.dedicated_memory ({dedicated} bytes)"
        ))),
        explicit if explicit > Semaphore::MAX_PERMITS => {
            Err(HashError::Config(format!("hashers.pool.workers ({explicit}) is too large")))
        }
        explicit => Ok(explicit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Argon2Config, BcryptConfig, ByteSize, HashPoolConfig};

    fn argon2_config(workers: usize, memory: u64, dedicated: u64) -> HashersConfig {
        HashersConfig {
            algorithm: HashAlgorithm::Argon2,
            argon2: Argon2Config {
                memory: ByteSize(memory),
                iterations: 1,
                parallelism: 1,
                dedicated_memory: ByteSize(dedicated),
                ..Argon2Config::default()
            },
            pool: HashPoolConfig { workers, queue_timeout: None },
            ..HashersConfig::default()
        }
    }

    fn bcrypt_config(cost: u32) -> HashersConfig {
        HashersConfig { algorithm: HashAlgorithm::Bcrypt, bcrypt: BcryptConfig { cost }, ..HashersConfig::default() }
    }

    #[tokio::test]
    async fn waiting_for_a_worker_has_a_deadline() {
        let mut config = bcrypt_config(12);
        config.pool = HashPoolConfig {
            workers: 1,
            queue_timeout: Some(crate::config::Dur(std::time::Duration::from_millis(20))),
        };
        let pool = HashPool::new(&config).unwrap();
        let (a, b) = tokio::join!(pool.hash(b"first".to_vec()), pool.hash(b"second".to_vec()));
        let busy = [&a, &b].iter().filter(|r| matches!(r, Err(HashError::Busy))).count();
        assert_eq!(busy, 1, "{a:?} {b:?}");
        assert!(a.is_ok() || b.is_ok());
    }

    #[test]
    fn automatic_workers_fit_the_dedicated_memory() {
        let pool = HashPool::new(&argon2_config(0, 64 << 10, 64 << 10)).unwrap();
        assert_eq!(pool.workers(), 1);
        // Even when one hash alone exceeds the budget, one worker remains.
        let pool = HashPool::new(&argon2_config(0, 1 << 20, 1 << 10)).unwrap();
        assert_eq!(pool.workers(), 1);
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let pool = HashPool::new(&argon2_config(0, 64 << 10, 1 << 30)).unwrap();
        assert_eq!(pool.workers(), cpus);
    }

    #[test]
    fn explicit_workers_beyond_the_dedicated_memory_are_refused() {
        let err = HashPool::new(&argon2_config(3, 64 << 10, 128 << 10)).err().unwrap();
        let HashError::Config(msg) = err else { panic!("expected a config error, got {err:?}") };
        assert!(msg.contains("hashers.pool.workers") && msg.contains("hashers.argon2.dedicated_memory"), "{msg}");
        assert_eq!(HashPool::new(&argon2_config(2, 64 << 10, 128 << 10)).unwrap().workers(), 2);
        // The memory cap is about argon2 only.
        let mut bcrypt = argon2_config(3, 64 << 10, 128 << 10);
        bcrypt.algorithm = HashAlgorithm::Bcrypt;
        bcrypt.bcrypt.cost = 4;
        assert_eq!(HashPool::new(&bcrypt).unwrap().workers(), 3);
    }

    #[test]
    fn unusable_parameters_are_config_errors() {
        let mut c = argon2_config(1, 64 << 10, 1 << 30);
        c.argon2.iterations = 0;
        assert!(matches!(HashPool::new(&c), Err(HashError::Config(_))));
        let mut c = argon2_config(1, 4 << 10, 1 << 30);
        c.argon2.parallelism = 4; // needs at least 32 KiB
        assert!(matches!(HashPool::new(&c), Err(HashError::Config(_))));
        let mut c = argon2_config(1, 64 << 10, 1 << 30);
        c.argon2.salt_length = 4;
        assert!(matches!(HashPool::new(&c), Err(HashError::Config(_))));
        let mut c = argon2_config(1, 64 << 10, 1 << 30);
        c.argon2.key_length = 2;
        assert!(matches!(HashPool::new(&c), Err(HashError::Config(_))));
        for cost in [3, 32] {
            assert!(matches!(HashPool::new(&bcrypt_config(cost)), Err(HashError::Config(_))), "cost {cost}");
        }
    }

    #[tokio::test]
    async fn argon2id_hashes_in_the_kratos_encoding() {
        let mut c = argon2_config(1, 64 << 10, 1 << 30);
        c.argon2.salt_length = 16;
        c.argon2.key_length = 32;
        let pool = HashPool::new(&c).unwrap();
        let hash = pool.hash(b"secret".to_vec()).await.unwrap();
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(&parts[..4], ["", "argon2id", "v=19", "m=64,t=1,p=1"]);
        assert_eq!(parts[4].len(), 22, "16-byte salt, unpadded");
        assert_eq!(parts[5].len(), 43, "32-byte key, unpadded");
        assert!(pool.verify(b"secret".to_vec(), hash.clone()).await.unwrap());
        assert!(!pool.verify(b"Secret".to_vec(), hash).await.unwrap());
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn bcrypt_hashes_with_2a_and_refuses_long_passwords() {
        let pool = HashPool::new(&bcrypt_config(4)).unwrap();
        let hash = pool.hash(vec![b'x'; 72]).await.unwrap();
        assert!(hash.starts_with("$2a$04$") && hash.len() == 60, "{hash}");
        assert!(pool.verify(vec![b'x'; 72], hash.clone()).await.unwrap());
        assert!(!pool.verify(vec![b'x'; 71], hash.clone()).await.unwrap());
        // 73 bytes would be truncated to the same 72: refused, like Kratos.
        assert!(!pool.verify(vec![b'x'; 73], hash).await.unwrap());
        assert_eq!(pool.hash(vec![b'x'; 73]).await, Err(HashError::TooLong));
    }

    #[tokio::test]
    async fn verify_rejects_unknown_and_malformed_without_a_worker() {
        let pool = HashPool::new(&argon2_config(1, 64 << 10, 1 << 30)).unwrap();
        assert_eq!(pool.verify(b"x".to_vec(), "plain".into()).await, Err(HashError::UnknownFormat));
        assert!(matches!(
            pool.verify(b"x".to_vec(), "$argon2id$v=19$m=64".into()).await,
            Err(HashError::Malformed { format: "argon2id", .. })
        ));
        assert_eq!(pool.peak_in_flight(), 0);
    }
}
