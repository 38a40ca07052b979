//! Form decoding: any body decodes to JSON or a 400 reason, without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = tessera::selfservice::form::decode_form(data) {
        assert!(v.is_object());
    }
});
