//! Imported password hashes made by other implementations (a Python peer) verify here.
//!
//! `tests/peers/hash_vectors.py` hashes a random password with argon2-cffi, bcrypt, hashlib,
//! hmac, passlib and cryptography in every format Kratos imports. When Python or those modules
//! are missing the peer test is skipped with a note, unless `TESSERA_REQUIRE_PEERS=1` (CI),
//! where it fails. Also here: the hash pool end to end, and its bound on concurrency.

use std::collections::BTreeMap;
use std::process::Command;

use rand::distr::{Alphanumeric, SampleString};
use tessera::config::{Argon2Config, BcryptConfig, ByteSize, HashAlgorithm, HashPoolConfig, HashersConfig};
use tessera::hash::{self, HashError, HashPool};

const PEER: &str = "tests/peers/hash_vectors.py";

/// Format families the peer must cover (a key is the family or `<family>-<variant>`).
const FAMILIES: &[&str] = &[
    "argon2id",
    "argon2i",
    "bcrypt",
    "pbkdf2",
    "scrypt",
    "firescrypt",
    "ssha",
    "ssha256",
    "ssha512",
    "sha1",
    "sha256",
    "sha512",
    "md5",
    "md5-crypt",
    "sha256-crypt",
    "sha512-crypt",
    "hmac",
];

/// Skips (with a note) or, when peers are required, fails.
fn unavailable(why: &str) -> Option<BTreeMap<String, String>> {
    crate::harness::cannot_run(&format!(
        "the Python hash peer is unavailable ({why}); `pip install argon2-cffi bcrypt passlib cryptography`"
    ));
    None
}

/// `{format name: encoded hash}` made by the peer for `password`.
fn peer_hashes(password: &str) -> Option<BTreeMap<String, String>> {
    let output = match Command::new("python3").arg(PEER).arg(password).current_dir(env!("CARGO_MANIFEST_DIR")).output()
    {
        Ok(output) => output,
        Err(e) => return unavailable(&format!("python3 could not be started: {e}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        return unavailable(stderr.trim());
    }
    assert!(output.status.success(), "{PEER} failed ({}): {stderr}", output.status);
    Some(serde_json::from_slice(&output.stdout).expect("the peer prints a JSON object of strings"))
}

#[test]
fn python_made_hashes_verify() {
    // `{SALT}` inside the password checks that salting patterns are applied in one pass.
    let password = format!("{}-é$%{{SALT}}", Alphanumeric.sample_string(&mut rand::rng(), 16));
    let wrong = format!("{password}!");
    let Some(hashes) = peer_hashes(&password) else { return };

    for family in FAMILIES {
        let prefix = format!("{family}-");
        assert!(
            hashes.keys().any(|name| name == family || name.starts_with(&prefix)),
            "the peer made no {family} hash: {:?}",
            hashes.keys()
        );
    }

    let mut failures = Vec::new();
    for (name, encoded) in &hashes {
        if let Err(e) = hash::check_format(encoded) {
            failures.push(format!("{name}: check_format: {e}"));
            continue;
        }
        match hash::verify_blocking(password.as_bytes(), encoded) {
            Ok(true) => {}
            other => failures.push(format!("{name}: right password gave {other:?}")),
        }
        match hash::verify_blocking(wrong.as_bytes(), encoded) {
            Ok(false) => {}
            other => failures.push(format!("{name}: wrong password gave {other:?}")),
        }
    }
    assert!(failures.is_empty(), "password {password:?}:\n{}", failures.join("\n"));
    eprintln!("verified {} hashes made by the Python peer", hashes.len());
}

fn argon2_config(workers: usize, memory_kib: u64, iterations: u32) -> HashersConfig {
    HashersConfig {
        algorithm: HashAlgorithm::Argon2,
        argon2: Argon2Config {
            memory: ByteSize(memory_kib << 10),
            iterations,
            parallelism: 1,
            dedicated_memory: ByteSize(1 << 30),
            ..Argon2Config::default()
        },
        pool: HashPoolConfig { workers, queue_timeout: None },
        ..HashersConfig::default()
    }
}

#[tokio::test]
async fn pool_hashes_and_verifies_with_both_algorithms() {
    let argon2 = HashPool::new(&argon2_config(0, 64, 1)).unwrap();
    let bcrypt_config = HashersConfig {
        algorithm: HashAlgorithm::Bcrypt,
        bcrypt: BcryptConfig { cost: 4 },
        ..HashersConfig::default()
    };
    let bcrypt = HashPool::new(&bcrypt_config).unwrap();

    for (pool, prefix) in [(&argon2, "$argon2id$v=19$m=64,t=1,p=1$"), (&bcrypt, "$2a$04$")] {
        assert!(pool.workers() >= 1);
        let encoded = pool.hash(b"correct horse".to_vec()).await.unwrap();
        assert!(encoded.starts_with(prefix), "{encoded}");
        assert_eq!(hash::check_format(&encoded), Ok(()));
        assert!(!pool.needs_rehash(&encoded), "its own hashes are never re-hashed");
        assert!(pool.verify(b"correct horse".to_vec(), encoded.clone()).await.unwrap());
        assert!(!pool.verify(b"correct horse!".to_vec(), encoded.clone()).await.unwrap());
        // Either pool verifies the other's hashes (and any imported format).
        assert!(argon2.verify(b"correct horse".to_vec(), encoded.clone()).await.unwrap());
        assert!(bcrypt.verify(b"correct horse".to_vec(), encoded).await.unwrap());
    }
    assert_eq!(bcrypt.hash(vec![b'a'; 73]).await, Err(HashError::TooLong));
    assert_eq!(argon2.verify(b"x".to_vec(), "md5:abc".into()).await, Err(HashError::UnknownFormat));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_bounds_concurrency() {
    // Slow enough (8 MiB, 8 passes: tens of milliseconds each) that the jobs overlap.
    let pool = HashPool::new(&argon2_config(2, 8192, 8)).unwrap();
    assert_eq!(pool.workers(), 2);
    let encoded = pool.hash(b"pw".to_vec()).await.unwrap();

    let jobs = (0..8).map(|i| {
        let pool = pool.clone();
        let encoded = encoded.clone();
        tokio::spawn(
            async move { pool.verify(if i % 2 == 0 { b"pw".to_vec() } else { b"no".to_vec() }, encoded).await },
        )
    });
    let results = futures_util::future::join_all(jobs).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), Ok(i % 2 == 0), "job {i}");
    }
    assert_eq!(pool.peak_in_flight(), 2, "8 jobs on 2 workers: 2 at once, never more");
    assert_eq!(pool.in_flight(), 0);
}
