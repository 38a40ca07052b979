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

pub use pool::HashPool;

use crate::config::HashAlgorithm;

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

/// Whether `encoded` belongs to the family of `algorithm` (no re-hash needed on login).
pub fn understands(algorithm: HashAlgorithm, encoded: &str) -> bool {
    match algorithm {
        HashAlgorithm::Argon2 => encoded.starts_with("$argon2id$"),
        HashAlgorithm::Bcrypt => formats::bcrypt_prefix(encoded).is_some(),
    }
}
