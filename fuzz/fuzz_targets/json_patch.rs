//! JSON Patch (`PATCH /admin/identities/{id}`): any body is parsed, applied to an identity's
//! admin view and merged back, or refused, without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tessera::identity::patch;

fn identity() -> tessera::identity::Identity {
    let now = tessera::clock::Clock::system().now();
    serde_json::from_value(json!({
        "id": uuid::Uuid::nil(),
        "schema_id": "default",
        "state": "active",
        "traits": {"email": "fuzz@example.org", "name": {"first": "F"}},
        "metadata_public": {"a": [1, 2]},
        "created_at": now,
        "updated_at": now,
    }))
    .expect("identity")
}

fuzz_target!(|data: &[u8]| {
    let Ok(ops) = patch::parse(data) else { return };
    let mut identity = identity();
    let doc = tessera::identity::view::render(
        &identity,
        "https://example.org/schema",
        tessera::identity::view::CredentialsView::Full,
        tessera::identity::view::AdminMetadata::Show,
    );
    if let Ok(patched) = patch::apply(doc, &ops) {
        let _ = patch::merge_into(&mut identity, patched, tessera::clock::Clock::system().now());
    }
});
