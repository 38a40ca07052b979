//! Configuration loading: any TOML document loads or is refused with an error, without a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(table) = toml::from_str::<toml::Table>(text) else { return };
    if let Ok(loaded) = tessera::config::from_table(table) {
        let _ = loaded.config.secrets.check_for_serving();
    }
});
