//! The JSON shapes of an identity, field for field as Kratos renders them.

use crate::model::identity::{Credential, Identity};
use serde_json::{Map, Value as Json, json};

/// How credentials appear in a rendered identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsView<'a> {
    /// No `credentials` key (public views, lists without expansion).
    Hidden,
    /// Every credential without its `config`.
    NoConfig,
    /// Configs only for the listed types (`include_credential`); oidc/saml rebuilt.
    Declassified(&'a [String]),
    /// Every credential with its stored config (the document JSON Patch applies to).
    Full,
}

pub use crate::clock::ts;

fn credential_json(c: &Credential, config: Option<Json>) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(c.kind));
    m.insert("identifiers".into(), json!(c.identifiers));
    if let Some(config) = config {
        m.insert("config".into(), config);
    }
    m.insert("version".into(), json!(c.version));
    m.insert("created_at".into(), ts(&c.created_at));
    m.insert("updated_at".into(), ts(&c.updated_at));
    Json::Object(m)
}

/// oidc/saml configs as `include_credential` shows them: provider links, and for oidc the
/// initial tokens as the caller passes them (decrypted; empty when absent).
fn declassified_providers(kind: &str, config: &Json) -> Json {
    let providers: Vec<Json> = config
        .get("providers")
        .and_then(Json::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let mut m = Map::new();
                    if kind == "oidc" {
                        // The caller decrypted them (they are stored encrypted).
                        for token in ["initial_id_token", "initial_access_token", "initial_refresh_token"] {
                            m.insert(token.into(), json!(p.get(token).and_then(Json::as_str).unwrap_or_default()));
                        }
                    }
                    m.insert("subject".into(), json!(p.get("subject").and_then(Json::as_str).unwrap_or_default()));
                    m.insert("provider".into(), json!(p.get("provider").and_then(Json::as_str).unwrap_or_default()));
                    if let Some(org) = p.get("organization").and_then(Json::as_str).filter(|o| !o.is_empty()) {
                        m.insert("organization".into(), json!(org));
                    }
                    if p.get("use_auto_link").and_then(Json::as_bool) == Some(true) {
                        m.insert("use_auto_link".into(), json!(true));
                    }
                    Json::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    json!({ "providers": providers })
}

/// Whether and how `metadata_admin` appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminMetadata {
    /// Not at all (public views).
    Hidden,
    /// Only when set (responses built from a request body: create, update).
    OmitNull,
    /// Always, `null` when unset (responses read from the store).
    Show,
}

/// Renders `identity`; `schema_url` is computed by the caller.
pub fn render(identity: &Identity, schema_url: &str, credentials: CredentialsView<'_>, admin: AdminMetadata) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(identity.id));
    if let Some(ext) = identity.external_id.as_deref().filter(|e| !e.is_empty()) {
        m.insert("external_id".into(), json!(ext));
    }
    if credentials != CredentialsView::Hidden && !identity.credentials.is_empty() {
        let mut creds = Map::new();
        for (kind, c) in &identity.credentials {
            let config = match credentials {
                CredentialsView::Hidden | CredentialsView::NoConfig => None,
                CredentialsView::Full => Some(c.config.clone()),
                CredentialsView::Declassified(types) if types.iter().any(|t| t == kind) => {
                    Some(if kind == "oidc" || kind == "saml" {
                        declassified_providers(kind, &c.config)
                    } else {
                        c.config.clone()
                    })
                }
                CredentialsView::Declassified(_) => None,
            };
            creds.insert(kind.clone(), credential_json(c, config));
        }
        m.insert("credentials".into(), Json::Object(creds));
    }
    m.insert("schema_id".into(), json!(identity.schema_id));
    m.insert("schema_url".into(), json!(schema_url));
    m.insert("state".into(), json!(identity.state.as_str()));
    if let Some(t) = &identity.state_changed_at {
        m.insert("state_changed_at".into(), ts(t));
    }
    m.insert("traits".into(), identity.traits.clone());
    if !identity.verifiable_addresses.is_empty() {
        let list: Vec<Json> = identity
            .verifiable_addresses
            .iter()
            .map(|a| {
                let mut v = Map::new();
                v.insert("id".into(), json!(a.id));
                v.insert("value".into(), json!(a.value));
                v.insert("verified".into(), json!(a.verified));
                v.insert("via".into(), json!(a.via));
                v.insert("status".into(), json!(a.status));
                if let Some(t) = &a.verified_at {
                    v.insert("verified_at".into(), ts(t));
                }
                v.insert("created_at".into(), ts(&a.created_at));
                v.insert("updated_at".into(), ts(&a.updated_at));
                Json::Object(v)
            })
            .collect();
        m.insert("verifiable_addresses".into(), Json::Array(list));
    }
    if !identity.recovery_addresses.is_empty() {
        let list: Vec<Json> = identity
            .recovery_addresses
            .iter()
            .map(|a| {
                json!({
                    "id": a.id, "value": a.value, "via": a.via,
                    "created_at": ts(&a.created_at), "updated_at": ts(&a.updated_at),
                })
            })
            .collect();
        m.insert("recovery_addresses".into(), Json::Array(list));
    }
    m.insert("metadata_public".into(), identity.metadata_public.clone().unwrap_or(Json::Null));
    match (admin, identity.metadata_admin.as_ref().filter(|v| !v.is_null())) {
        (AdminMetadata::Hidden, _) | (AdminMetadata::OmitNull, None) => {}
        (_, Some(meta)) => {
            m.insert("metadata_admin".into(), meta.clone());
        }
        (AdminMetadata::Show, None) => {
            m.insert("metadata_admin".into(), Json::Null);
        }
    }
    m.insert("created_at".into(), ts(&identity.created_at));
    m.insert("updated_at".into(), ts(&identity.updated_at));
    m.insert("organization_id".into(), identity.organization_id.map_or(Json::Null, |o| json!(o)));
    Json::Object(m)
}
