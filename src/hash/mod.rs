//! Password hashing: the configured hasher (argon2id or bcrypt), every import format Kratos
//! accepts (`hashed_password`), and a bounded blocking pool that runs them.
//!
//! STUB — the API below is the contract the identity code is written against.

use crate::config::{HashAlgorithm, HashersConfig};

/// Why a hash could not be made, parsed or compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The encoded hash has no prefix we know.
    #[error("unknown hash format")]
    UnknownFormat,
    /// The prefix is known but the rest does not parse.
    #[error("malformed {format} hash: {reason}")]
    Malformed { format: &'static str, reason: String },
    /// bcrypt cannot hash passwords longer than 72 bytes.
    #[error("password is longer than 72 bytes")]
    TooLong,
    /// The configuration cannot be used (e.g. argon2 parameters out of range).
    #[error("invalid hasher configuration: {0}")]
    Config(String),
    /// The pool is shut down or a worker failed.
    #[error("hashing failed: {0}")]
    Internal(String),
}

/// Checks that `encoded` is a hash in a format we can verify (import validation).
pub fn check_format(encoded: &str) -> Result<(), HashError> {
    let _ = encoded;
    todo!()
}

/// Compares `password` with `encoded` (any accepted format), in constant time where it matters.
/// Blocking and CPU-heavy: call through [`HashPool::verify`] from async code.
pub fn verify_blocking(password: &[u8], encoded: &str) -> Result<bool, HashError> {
    let _ = (password, encoded);
    todo!()
}

/// Whether `encoded` belongs to the family of `algorithm` (no re-hash needed on login).
pub fn understands(algorithm: HashAlgorithm, encoded: &str) -> bool {
    let _ = (algorithm, encoded);
    todo!()
}

/// The configured hasher plus a bounded pool of blocking workers.
#[derive(Clone)]
pub struct HashPool {}

impl HashPool {
    /// Builds the pool from `[hashers]`; checks parameters and the memory cap.
    pub fn new(config: &HashersConfig) -> Result<HashPool, HashError> {
        let _ = config;
        todo!()
    }

    /// Hashes `password` with the configured algorithm on the pool.
    pub async fn hash(&self, password: Vec<u8>) -> Result<String, HashError> {
        let _ = password;
        todo!()
    }

    /// Verifies `password` against `encoded` on the pool.
    pub async fn verify(&self, password: Vec<u8>, encoded: String) -> Result<bool, HashError> {
        let _ = (password, encoded);
        todo!()
    }

    /// Number of workers (hashes computed at once).
    pub fn workers(&self) -> usize {
        todo!()
    }
}
