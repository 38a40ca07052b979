use super::*;
use crate::config::SchemaSource;
use base64::Engine;

const REF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/identity-schemas");

fn config(sources: &[(&str, String)]) -> IdentityConfig {
    IdentityConfig {
        default_schema_id: sources.first().map(|s| s.0.to_string()).unwrap_or_default(),
        schemas: sources
            .iter()
            .map(|(id, url)| SchemaSource { id: id.to_string(), url: url.clone(), selfservice_selectable: false })
            .collect(),
    }
}

fn file(name: &str) -> String {
    format!("file://{REF}/{name}")
}

async fn registry(sources: &[(&str, String)]) -> Result<SchemaRegistry, SchemaError> {
    SchemaRegistry::load(&config(sources), &reqwest::Client::new()).await
}

#[tokio::test]
async fn loads_every_reference_schema() -> Result<(), SchemaError> {
    let reg = registry(&[
        ("all", file("all-strategies.schema.json")),
        ("phone", file("phone-password.schema.json")),
        ("spa", file("spa-totp.schema.json")),
        ("multi", file("multi-identifier.schema.json")),
        ("b64", format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(DEV_SCHEMA))),
    ])
    .await?;
    assert_eq!(reg.all().len(), 5);
    assert_eq!(reg.default_id(), "all");
    let b64_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("phone");
    assert_eq!(reg.get(&b64_id).map(|s| s.id.as_str()), Some("phone"));
    Ok(())
}

#[tokio::test]
async fn bad_schemas_stop_start_up() {
    let dir = tempfile::tempdir().ok();
    let path = dir.as_ref().map(|d| d.path().join("bad.json")).unwrap_or_default();
    // no traits property: violates the identity meta-schema
    let _ = std::fs::write(&path, r#"{"type":"object","properties":{"name":{"type":"string"}}}"#);
    let err = registry(&[("bad", format!("file://{}", path.display()))]).await.err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with("identity schema `bad`: not a valid identity schema")),
        "{err:?}"
    );

    let _ = std::fs::write(&path, "{not json");
    let err = registry(&[("bad", format!("file://{}", path.display()))]).await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("invalid JSON")), "{err:?}");

    let err = registry(&[("gone", "file:///nonexistent/x.json".into())]).await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.starts_with("identity schema `gone`: cannot load")), "{err:?}");

    let err = registry(&[("x", "ftp://x".into())]).await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("unsupported URL scheme")), "{err:?}");

    let mut cfg = config(&[("a", file("all-strategies.schema.json"))]);
    cfg.default_schema_id = "nope".into();
    let err = SchemaRegistry::load(&cfg, &reqwest::Client::new()).await.err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("identity.default_schema_id `nope` is not one of identity.schemas"));
}

#[tokio::test]
async fn verification_needs_a_known_format() {
    let schema = r#"{"type":"object","properties":{"traits":{"type":"object","properties":{
        "x":{"type":"string","format":"uri","ory.sh/kratos":{"verification":{"via":"email"}}}}}}}"#;
    let url = format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(schema));
    assert!(registry(&[("x", url)]).await.is_err());
}

#[tokio::test]
async fn extracts_identifiers_and_addresses() -> Result<(), Box<dyn std::error::Error>> {
    let reg =
        registry(&[("phone", file("phone-password.schema.json")), ("multi", file("multi-identifier.schema.json"))])
            .await?;
    let got =
        reg.validate_traits("phone", &serde_json::json!({"email": "  Foo@Example.COM ", "phone": "+49 30 901820"}));
    // the email format check runs on the raw value; the trimmed form must be valid
    let got = match got {
        Ok(x) => x,
        Err(_) => {
            reg.validate_traits("phone", &serde_json::json!({"email": "Foo@Example.COM", "phone": "+49 30 901820"}))?
        }
    };
    assert!(got.password_identifiers.contains(&"foo@example.com".to_string()));
    assert!(got.verifiable_addresses.contains(&Address { via: "email".into(), value: "foo@example.com".into() }));
    assert!(got.verifiable_addresses.contains(&Address { via: "sms".into(), value: "+4930901820".into() }), "{got:?}");

    let got =
        reg.validate_traits("multi", &serde_json::json!({"username": "Alice", "email": "a@x.io", "email2": "b@x.io"}))?;
    assert_eq!(got.password_identifiers, vec!["alice", "a@x.io", "b@x.io"]);
    assert_eq!(got.code_identifiers.len(), 2);
    assert_eq!(got.recovery_addresses.len(), 2);
    Ok(())
}

#[tokio::test]
async fn invalid_traits_report_paths() -> Result<(), SchemaError> {
    let reg = registry(&[("spa", file("spa-totp.schema.json")), ("phone", file("phone-password.schema.json"))]).await?;
    let err = reg.validate_traits("spa", &serde_json::json!({"email": "not-an-email"}));
    match err {
        Err(TraitsError::Invalid(v)) => assert!(v.iter().any(|v| v.instance_path == "/traits/email"), "{v:?}"),
        other => panic!("expected a violation, got {other:?}"),
    }
    let err = reg.validate_traits("phone", &serde_json::json!({"email": "a@b.io", "phone": "12"}));
    assert!(matches!(err, Err(TraitsError::Invalid(_))), "{err:?}");
    assert_eq!(reg.validate_traits("nope", &serde_json::json!({})), Err(TraitsError::UnknownSchema("nope".into())));
    Ok(())
}
