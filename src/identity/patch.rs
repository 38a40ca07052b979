//! `PATCH /admin/identities/{id}`: RFC 6902 over the identity's admin JSON, with Kratos'
//! rules — only add, remove and replace; some paths denied; `replace` of a missing member
//! adds it; `add` creates missing parent objects.

use crate::error::Error;
use crate::model::identity::{Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress};
use chrono::{DateTime, Utc};
use json_patch::{AddOperation, PatchOperation};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use uuid::Uuid;

const PATCH_FAILED: &str = "An error occured when applying the JSON patch";
/// Most `/` segments a patch path may have.
const MAX_PATH_DEPTH: usize = 32;
/// Credential types an identity can hold.
const CREDENTIAL_TYPES: [&str; 8] =
    ["password", "oidc", "totp", "lookup_secret", "webauthn", "code", "passkey", "saml"];

fn patch_error(message: impl Into<String>) -> Error {
    Error::Malformed { message: message.into(), reason: Some(PATCH_FAILED.into()) }
}

/// Whether `path` is denied: `/id`, `/stateChangedAt` (never matches: the field is
/// `state_changed_at`, kept as Kratos has it), `/credentials`, `/credentials/oidc/**`.
fn denied(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    matches!(p.as_str(), "/id" | "/statechangedat" | "/credentials") || p.starts_with("/credentials/oidc/")
}

/// Whether the last segment addresses an array element (`-` or a number).
fn is_element_access(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|last| last == "-" || last.parse::<i64>().is_ok()) && !path.is_empty()
}

/// Decodes and checks a patch document.
pub fn parse(body: &[u8]) -> Result<Vec<PatchOperation>, Error> {
    let ops: Vec<PatchOperation> = serde_json::from_slice(body).map_err(|e| patch_error(e.to_string()))?;
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let kind = match &op {
            PatchOperation::Add(_) => "add",
            PatchOperation::Remove(_) => "remove",
            PatchOperation::Replace(_) => "replace",
            PatchOperation::Move(_) => "move",
            PatchOperation::Copy(_) => "copy",
            PatchOperation::Test(_) => "test",
        };
        if !matches!(kind, "add" | "remove" | "replace") {
            return Err(patch_error(format!("unsupported operation: {kind}")));
        }
        let path = op.path().to_string();
        // Deeper paths would build values deep enough to exhaust the stack.
        if path.matches('/').count() > MAX_PATH_DEPTH {
            return Err(patch_error(format!("patch path is deeper than {MAX_PATH_DEPTH} levels: {path}")));
        }
        if denied(&path) {
            return Err(patch_error(format!("patch includes denied path: {path}")));
        }
        out.push(match op {
            PatchOperation::Replace(r) if !is_element_access(&path) => {
                PatchOperation::Add(AddOperation { path: r.path, value: r.value })
            }
            other => other,
        });
    }
    Ok(out)
}

/// Creates missing parent objects of `path` so that `add` can succeed.
fn ensure_parents(doc: &mut Json, path: &str) {
    let segments: Vec<String> = path.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    let Some((_, parents)) = segments.split_last() else { return };
    let mut cur = doc;
    for seg in parents {
        cur = match cur {
            Json::Object(m) => m.entry(seg.clone()).or_insert_with(|| Json::Object(Map::new())),
            Json::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
        if cur.is_null() {
            *cur = Json::Object(Map::new());
        }
    }
}

/// Applies checked operations to the document.
pub fn apply(mut doc: Json, ops: &[PatchOperation]) -> Result<Json, Error> {
    for op in ops {
        if let PatchOperation::Add(a) = op {
            ensure_parents(&mut doc, a.path.as_str());
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|e| patch_error(e.to_string()))?;
    }
    Ok(doc)
}

#[derive(Deserialize)]
struct PatchedCredential {
    #[serde(default)]
    identifiers: Vec<String>,
    #[serde(default)]
    config: Option<Json>,
    #[serde(default)]
    version: i32,
}

#[derive(Deserialize)]
struct PatchedVerifiable {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    value: String,
    #[serde(default)]
    verified: bool,
    #[serde(default)]
    via: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    verified_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct PatchedRecovery {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    value: String,
    #[serde(default)]
    via: String,
}

/// The fields of the patched document that are read back (the rest are ignored, as Go's
/// decoder ignores them).
#[derive(Deserialize)]
struct Patched {
    #[serde(default)]
    schema_id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    state_changed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    traits: Json,
    #[serde(default)]
    metadata_public: Option<Json>,
    #[serde(default)]
    metadata_admin: Option<Json>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    organization_id: Option<Uuid>,
    #[serde(default)]
    credentials: Option<BTreeMap<String, PatchedCredential>>,
    #[serde(default)]
    verifiable_addresses: Option<Vec<PatchedVerifiable>>,
    #[serde(default)]
    recovery_addresses: Option<Vec<PatchedRecovery>>,
}

/// Reads the patched document back into `identity`. An invalid state is refused with
/// Kratos' message.
pub fn merge_into(identity: &mut Identity, doc: Json, now: DateTime<Utc>) -> Result<(), Error> {
    let p: Patched = serde_json::from_value(doc).map_err(|e| patch_error(e.to_string()))?;
    let state = IdentityState::parse(&p.state).ok_or_else(|| Error::Malformed {
        message: "identity state is not valid".into(),
        reason: Some(format!(
            "The supplied state ('{}') was not valid. Valid states are ('active', 'inactive').",
            p.state
        )),
    })?;
    if let Some(kind) = p.credentials.iter().flatten().map(|(k, _)| k).find(|k| !CREDENTIAL_TYPES.contains(&k.as_str()))
    {
        return Err(patch_error(format!("unknown credentials type: {kind}")));
    }
    identity.schema_id = p.schema_id;
    identity.state_changed_at = p.state_changed_at.or(identity.state_changed_at);
    identity.state = state;
    identity.traits = if p.traits.is_null() { Json::Object(Map::new()) } else { p.traits };
    identity.metadata_public = p.metadata_public.filter(|v| !v.is_null());
    identity.metadata_admin = p.metadata_admin.filter(|v| !v.is_null());
    identity.external_id = p.external_id.filter(|e| !e.is_empty());
    identity.organization_id = p.organization_id;
    let old = std::mem::take(&mut identity.credentials);
    for (kind, c) in p.credentials.unwrap_or_default() {
        let prior = old.get(&kind);
        let config = c.config.or_else(|| prior.map(|o| o.config.clone())).unwrap_or_else(|| Json::Object(Map::new()));
        let unchanged =
            prior.is_some_and(|o| o.config == config && o.identifiers == c.identifiers && o.version == c.version);
        identity.credentials.insert(
            kind.clone(),
            Credential {
                id: prior.map_or_else(Uuid::new_v4, |o| o.id),
                kind: kind.clone(),
                identifiers: c.identifiers,
                config,
                version: c.version,
                created_at: prior.map_or(now, |o| o.created_at),
                updated_at: if unchanged { prior.map_or(now, |o| o.updated_at) } else { now },
            },
        );
    }
    let old_verifiable = std::mem::take(&mut identity.verifiable_addresses);
    identity.verifiable_addresses = p
        .verifiable_addresses
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            // Only this identity's own address ids are kept (an id may not move rows).
            let prior = old_verifiable.iter().find(|o| Some(o.id) == a.id);
            VerifiableAddress {
                id: prior.map_or_else(Uuid::now_v7, |o| o.id),
                value: a.value.trim().to_lowercase(),
                verified: a.verified,
                via: if a.via.is_empty() { "email".into() } else { a.via },
                status: a.status,
                verified_at: a.verified_at,
                created_at: prior.map_or(now, |o| o.created_at),
                updated_at: now,
            }
        })
        .collect();
    let old_recovery = std::mem::take(&mut identity.recovery_addresses);
    identity.recovery_addresses = p
        .recovery_addresses
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let prior = old_recovery.iter().find(|o| Some(o.id) == a.id);
            RecoveryAddress {
                id: prior.map_or_else(Uuid::now_v7, |o| o.id),
                value: a.value.trim().to_lowercase(),
                via: if a.via.is_empty() { "email".into() } else { a.via },
                created_at: prior.map_or(now, |o| o.created_at),
                updated_at: now,
            }
        })
        .collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_add_remove_replace_and_no_denied_paths() {
        assert!(parse(br#"[{"op":"move","from":"/a","path":"/b"}]"#).is_err());
        assert!(parse(br#"[{"op":"test","path":"/a","value":1}]"#).is_err());
        assert!(parse(br#"[{"op":"replace","path":"/id","value":"x"}]"#).is_err());
        assert!(parse(br#"[{"op":"replace","path":"/ID","value":"x"}]"#).is_err());
        assert!(parse(br#"[{"op":"remove","path":"/credentials"}]"#).is_err());
        assert!(parse(br#"[{"op":"add","path":"/credentials/oidc/config","value":{}}]"#).is_err());
        assert!(
            parse(br#"[{"op":"replace","path":"/credentials/password/config/hashed_password","value":"x"}]"#).is_ok()
        );
        assert!(parse(br#"[{"op":"remove","path":"/credentials/oidc"}]"#).is_ok());
        assert!(parse(br#"[{"op":"replace","path":"/state_changed_at","value":"x"}]"#).is_ok());
        assert!(parse(b"").is_err());
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn replace_of_a_missing_member_adds_it_and_parents_are_created() {
        let ops = parse(br#"[{"op":"replace","path":"/metadata_admin/a/b","value":1}]"#).unwrap();
        let doc = apply(json!({"metadata_admin": null}), &ops).unwrap();
        assert_eq!(doc, json!({"metadata_admin": {"a": {"b": 1}}}));
        let ops = parse(br#"[{"op":"replace","path":"/list/5","value":1}]"#).unwrap();
        assert!(apply(json!({"list": []}), &ops).is_err());
    }
}
