//! Identity schemas: loading (`file://`, `base64://`, `http(s)://`), checking against the
//! identity meta-schema, validating traits, and reading the `ory.sh/kratos` extension.

mod extension;
mod violation;

pub use extension::{Address, Extracted, normalise};
use violation::ui_violation;
pub use violation::{UiViolation, Violation, pointer_to_field};

use crate::config::IdentityConfig;
use base64::Engine;
use serde_json::Value as Json;
use std::sync::Arc;

const META: &str = include_str!("meta/identity_meta.schema.json");
const EXTENSION_META: &str = include_str!("meta/identity_extension.schema.json");
/// The schema `serve --dev` uses when none is configured.
pub const DEV_SCHEMA: &str = include_str!("../../config/identity.schema.json");

/// Errors that stop start-up; `Display` is one line naming the schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("identity schema `{id}`: cannot load {url}: {reason}")]
    Load { id: String, url: String, reason: String },
    #[error("identity schema `{id}`: not a valid identity schema: {reason}")]
    Invalid { id: String, reason: String },
    #[error("identity.default_schema_id `{0}` is not one of identity.schemas")]
    UnknownDefault(String),
    #[error("identity.schemas is empty: configure at least one identity schema")]
    Empty,
    #[error("identity schema id `{0}` is configured twice")]
    Duplicate(String),
}

/// Why traits do not fit their schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TraitsError {
    #[error("unknown identity schema `{0}`")]
    UnknownSchema(String),
    #[error("{}", .0.iter().map(|v| format!("I[#{}] {}", v.instance_path, v.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Violation>),
}

/// A configured and compiled identity schema.
pub struct IdentitySchema {
    pub id: String,
    pub url: String,
    pub selfservice_selectable: bool,
    /// The schema document as configured.
    pub raw: Json,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for IdentitySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySchema").field("id", &self.id).field("url", &self.url).finish()
    }
}

/// All configured identity schemas.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Arc<Vec<IdentitySchema>>,
    default_id: String,
}

struct OryRetriever;

impl jsonschema::Retrieve for OryRetriever {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        match uri.as_str() {
            "ory://identity-extension" => Ok(serde_json::from_str(EXTENSION_META)?),
            "ory://identity-meta" => Ok(serde_json::from_str(META)?),
            other => Err(format!("remote references are not resolved: {other}").into()),
        }
    }
}

fn is_phone(s: &str) -> bool {
    phonenumber::parse(None, s).is_ok_and(|n| phonenumber::is_valid(&n))
}

fn meta_validator() -> Result<jsonschema::Validator, String> {
    let meta: Json = serde_json::from_str(META).map_err(|e| e.to_string())?;
    jsonschema::draft7::options().with_retriever(OryRetriever).build(&meta).map_err(|e| e.to_string())
}

fn compile(raw: &Json) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_retriever(OryRetriever)
        .should_validate_formats(true)
        .with_format("tel", is_phone)
        .with_format("no-validate", |_: &str| true)
        .build(raw)
        .map_err(|e| e.to_string())
}

/// Checks `traits` against an identity schema document as the server would (formats, `tel`):
/// each problem as `#/traits/…: message`.
pub fn check_traits(schema: &Json, traits: &Json) -> Result<(), Vec<String>> {
    let validator = compile(schema).map_err(|e| vec![format!("the identity schema does not compile: {e}")])?;
    let instance = serde_json::json!({ "traits": traits });
    let problems: Vec<String> =
        validator.iter_errors(&instance).map(|e| format!("#{}: {}", e.instance_path(), e)).collect();
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Fetches a schema document from its configured URL.
pub async fn fetch(url: &str, http: &reqwest::Client) -> Result<Json, String> {
    let bytes: Vec<u8> = if let Some(path) = url.strip_prefix("file://") {
        tokio::fs::read(path).await.map_err(|e| e.to_string())?
    } else if let Some(b64) = url.strip_prefix("base64://") {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines.iter().find_map(|e| e.decode(b64.trim()).ok()).ok_or("invalid base64")?
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP status {}", resp.status()));
        }
        resp.bytes().await.map_err(|e| e.to_string())?.to_vec()
    } else {
        return Err("unsupported URL scheme: use file://, base64://, http:// or https://".into());
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON: {e}"))
}

impl SchemaRegistry {
    /// Loads, checks and compiles every configured schema.
    pub async fn load(config: &IdentityConfig, http: &reqwest::Client) -> Result<SchemaRegistry, SchemaError> {
        if config.schemas.is_empty() {
            return Err(SchemaError::Empty);
        }
        let meta = meta_validator().map_err(|reason| SchemaError::Invalid { id: "<meta>".into(), reason })?;
        let mut schemas = Vec::with_capacity(config.schemas.len());
        for source in &config.schemas {
            if schemas.iter().any(|s: &IdentitySchema| s.id == source.id) {
                return Err(SchemaError::Duplicate(source.id.clone()));
            }
            let raw = fetch(&source.url, http).await.map_err(|reason| SchemaError::Load {
                id: source.id.clone(),
                url: redact_url(&source.url),
                reason,
            })?;
            if let Some(err) = meta.iter_errors(&raw).next() {
                return Err(SchemaError::Invalid {
                    id: source.id.clone(),
                    reason: format!("at {}: {err}", pointer_or_root(&err.instance_path().to_string())),
                });
            }
            let validator = compile(&raw).map_err(|reason| SchemaError::Invalid { id: source.id.clone(), reason })?;
            schemas.push(IdentitySchema {
                id: source.id.clone(),
                url: source.url.clone(),
                selfservice_selectable: source.selfservice_selectable,
                raw,
                validator,
            });
        }
        if !schemas.iter().any(|s| s.id == config.default_schema_id) {
            return Err(SchemaError::UnknownDefault(config.default_schema_id.clone()));
        }
        Ok(SchemaRegistry { schemas: Arc::new(schemas), default_id: config.default_schema_id.clone() })
    }

    /// The id used when an identity names no schema.
    pub fn default_id(&self) -> &str {
        &self.default_id
    }

    /// All schemas in configuration order.
    pub fn all(&self) -> &[IdentitySchema] {
        &self.schemas
    }

    /// A schema by its id, or by the base64url (no padding) encoding of its id.
    pub fn get(&self, id: &str) -> Option<&IdentitySchema> {
        self.schemas.iter().find(|s| s.id == id).or_else(|| {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            self.schemas.iter().find(|s| s.id == decoded)
        })
    }

    /// Validates `traits` against schema `schema_id` and reads the extension's values.
    pub fn validate_traits(&self, schema_id: &str, traits: &Json) -> Result<Extracted, TraitsError> {
        let schema = self
            .schemas
            .iter()
            .find(|s| s.id == schema_id)
            .ok_or_else(|| TraitsError::UnknownSchema(schema_id.into()))?;
        let document = serde_json::json!({ "traits": traits });
        let violations: Vec<Violation> = schema
            .validator
            .iter_errors(&document)
            .map(|e| Violation {
                instance_path: e.instance_path().to_string(),
                message: e.to_string(),
                ui: ui_violation(&e),
            })
            .collect();
        if !violations.is_empty() {
            return Err(TraitsError::Invalid(violations));
        }
        extension::extract(&schema.raw, &document).map_err(TraitsError::Invalid)
    }
}

/// The `schema_url` of an identity: `<public base>/schemas/<base64url(id)>`.
pub fn schema_url(public_base: &str, schema_id: &str) -> String {
    format!("{public_base}schemas/{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(schema_id))
}

fn pointer_or_root(p: &str) -> String {
    if p.is_empty() { "the root".into() } else { p.to_string() }
}

/// base64:// URLs carry the whole schema; keep error lines short.
fn redact_url(url: &str) -> String {
    if url.starts_with("base64://") && url.len() > 40 { format!("{}…", &url[..40]) } else { url.to_string() }
}

#[cfg(test)]
mod tests;
