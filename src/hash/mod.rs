//! Password hashing: the configured hasher (argon2id or bcrypt), every import format Kratos
//! accepts (`hashed_password`), and a bounded blocking pool that runs them.
//!
//! Formats (behaviour.md §18.3): argon2id/argon2i (and argon2d), bcrypt (`$2$`, `$2a$`, `$2b$`,
//! `$2y$`, `$2z$`), `$pbkdf2-sha…$`, `$scrypt$`, `$firescrypt$`, `{SSHA}`/`{SSHA256}`/`{SSHA512}`,
//! `$sha1$`/`$sha256$`/`$sha512$` with a `pf=` pattern, `$md5$`, `$md5-crypt$`,
//! `$sha256-crypt$`, `$sha512-crypt$` and `$hmac-<md4|md5|sha1|sha224|sha256|sha384|sha512>$`.
//! Parsing and comparing live in `formats`, the configured hasher and the pool in `pool`.
//! Nothing here logs a password or a hash.

mod formats;
mod pool;
#[cfg(test)]
mod tests;

pub use formats::CostParam;
pub use pool::{HashPool, hash_once};

use crate::config::HashersConfig;

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
    /// An imported hash costs more to verify than `[hashers.import_limits]` allows.
    #[error(
        "The hash's {} is {value}, above the import limit of {limit} (`hashers.import_limits.{}`).",
        param.describe(),
        param.key()
    )]
    OverLimit { param: CostParam, value: u64, limit: u64 },
    /// The pool is shut down or a worker failed.
    #[error("hashing failed: {0}")]
    Internal(String),
    /// No worker was free within `hashers.pool.queue_timeout`.
    #[error("no hash worker was free in time")]
    Busy,
}

/// Checks that `encoded` is a hash in a format we can verify (import validation).
///
/// The whole hash is decoded (parameters, base64 fields, lengths) but not computed, so this is
/// cheap. Hashes that could never match any password (empty or wrongly sized digests) are
/// malformed, and so are argon2/scrypt parameters asking for more than 2 GiB of memory.
pub fn check_format(encoded: &str) -> Result<(), HashError> {
    formats::parse(encoded).map(|_| ())
}

/// Compares `password` with `encoded` (any accepted format), in constant time where it matters.
/// Blocking and CPU-heavy: call through [`HashPool::verify`] from async code.
///
/// `Ok(false)` for a wrong password (and, like Kratos, for a password over 72 bytes against a
/// bcrypt hash); `Err` when `encoded` is of an unknown format or malformed.
pub fn verify_blocking(password: &[u8], encoded: &str) -> Result<bool, HashError> {
    formats::parse(encoded)?.verify(password)
}

/// The resolved ceilings of `[hashers.import_limits]` (memory in KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    argon2_memory: u64,
    argon2_iterations: u64,
    argon2_parallelism: u64,
    argon2_work: u64,
    bcrypt_cost: u64,
    pbkdf2_iterations: u64,
    scrypt_memory: u64,
    scrypt_parallelism: u64,
    sha_crypt_rounds: u64,
}

/// How many times the configured (or Kratos' default) cost an import may ask for.
const IMPORT_FACTOR: u64 = 4;

impl ImportLimits {
    /// Configured ceilings, else [`IMPORT_FACTOR`] times the larger of the configured
    /// hasher's cost and a floor: Kratos' defaults (argon2 128 MiB, bcrypt 12) and the common
    /// defaults of other tools (argon2 t=3, p=8; pbkdf2 600,000 iterations; scrypt p=4), or
    /// a million sha-crypt rounds (passlib's default is 656,000).
    pub fn from_config(c: &HashersConfig) -> ImportLimits {
        let l = &c.import_limits;
        let kib = |b: Option<crate::config::ByteSize>| b.map(|b| b.0 / 1024);
        let or = |set: Option<u32>, default: u64| set.map_or(default, u64::from);
        let a = &c.argon2;
        let memory = IMPORT_FACTOR * (a.memory.0 / 1024).max(128 << 10);
        let work = IMPORT_FACTOR * ((a.memory.0 / 1024).saturating_mul(u64::from(a.iterations))).max(128 << 10);
        ImportLimits {
            argon2_memory: kib(l.argon2_memory).unwrap_or(memory),
            argon2_iterations: or(l.argon2_iterations, IMPORT_FACTOR * u64::from(a.iterations.max(3))),
            argon2_parallelism: or(l.argon2_parallelism, IMPORT_FACTOR * u64::from(a.parallelism.max(8))),
            argon2_work: kib(l.argon2_work).unwrap_or(work),
            // bcrypt's cost is a power of two: +2 is four times the work.
            bcrypt_cost: or(l.bcrypt_cost, u64::from(c.bcrypt.cost.max(12)) + 2),
            pbkdf2_iterations: or(l.pbkdf2_iterations, IMPORT_FACTOR * 600_000),
            scrypt_memory: kib(l.scrypt_memory).unwrap_or(memory),
            scrypt_parallelism: or(l.scrypt_parallelism, IMPORT_FACTOR * 4),
            sha_crypt_rounds: or(l.sha_crypt_rounds, 1_000_000),
        }
    }

    fn limit(&self, p: CostParam) -> u64 {
        match p {
            CostParam::Argon2Memory => self.argon2_memory,
            CostParam::Argon2Iterations => self.argon2_iterations,
            CostParam::Argon2Parallelism => self.argon2_parallelism,
            CostParam::Argon2Work => self.argon2_work,
            CostParam::BcryptCost => self.bcrypt_cost,
            CostParam::Pbkdf2Iterations => self.pbkdf2_iterations,
            CostParam::ScryptMemory => self.scrypt_memory,
            CostParam::ScryptParallelism => self.scrypt_parallelism,
            CostParam::ShaCryptRounds => self.sha_crypt_rounds,
        }
    }

    /// Checks that `encoded` parses and that none of its cost parameters is above its ceiling.
    pub fn check(&self, encoded: &str) -> Result<(), HashError> {
        for (param, value) in formats::parse(encoded)?.costs() {
            let limit = self.limit(param);
            if value > limit {
                return Err(HashError::OverLimit { param, value, limit });
            }
        }
        Ok(())
    }
}
