//! Traits validation: any JSON value is validated against the identity schema with every
//! extension (identifiers, verification, recovery), and coerced as a form's traits are,
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera::schema::SchemaRegistry;

fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let schema = format!(
            "file://{}/../tests/fixtures/identity-schemas/all-strategies.schema.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let config: tessera::config::IdentityConfig = serde_json::from_value(serde_json::json!({
            "default_schema_id": "default",
            "schemas": [{"id": "default", "url": schema}],
        }))
        .expect("identity config");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(SchemaRegistry::load(&config, &reqwest::Client::new())).expect("schema")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut traits) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let registry = registry();
    let _ = registry.validate_traits("default", &traits);
    if let Some(schema) = registry.get("default") {
        tessera::selfservice::form::coerce_traits(&schema.raw, &mut traits);
        tessera::selfservice::form::drop_empty_strings(&mut traits);
        let _ = registry.validate_traits("default", &traits);
    }
});
