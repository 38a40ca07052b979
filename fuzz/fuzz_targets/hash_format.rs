//! Hash-format parsing: any string is checked (and, when it parses, its import cost judged)
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera::hash::HashPool;

fn pool() -> &'static HashPool {
    static POOL: OnceLock<HashPool> = OnceLock::new();
    POOL.get_or_init(|| HashPool::new(&tessera::config::HashersConfig::default()).expect("hash pool"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(encoded) = std::str::from_utf8(data) else { return };
    if tessera::hash::check_format(encoded).is_ok() {
        let _ = pool().check_import(encoded);
        let _ = pool().needs_rehash(encoded);
    }
});
