//! The identity model: traits, credentials and addresses (no storage types, no rules).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Whether an identity may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    Active,
    Inactive,
}

impl IdentityState {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityState::Active => "active",
            IdentityState::Inactive => "inactive",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(IdentityState::Active),
            "inactive" => Some(IdentityState::Inactive),
            _ => None,
        }
    }
}

/// A person or machine with traits, credentials and addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub id: Uuid,
    pub schema_id: String,
    pub state: IdentityState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_changed_at: Option<DateTime<Utc>>,
    pub traits: serde_json::Value,
    #[serde(default)]
    pub metadata_public: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata_admin: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(default)]
    pub credentials: BTreeMap<String, Credential>,
    #[serde(default)]
    pub verifiable_addresses: Vec<VerifiableAddress>,
    #[serde(default)]
    pub recovery_addresses: Vec<RecoveryAddress>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The stored version this copy was read at (compare-and-set writes; never shown).
    #[serde(skip)]
    pub version: i64,
}

impl Identity {
    /// A new active identity signing up by itself: `traits` under `schema_id`, nothing else yet.
    pub fn signing_up(schema_id: String, traits: serde_json::Value, now: DateTime<Utc>) -> Identity {
        Identity {
            id: Uuid::new_v4(),
            schema_id,
            state: IdentityState::Active,
            state_changed_at: Some(now),
            traits,
            metadata_public: None,
            metadata_admin: None,
            external_id: None,
            organization_id: None,
            credentials: BTreeMap::new(),
            verifiable_addresses: Vec::new(),
            recovery_addresses: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

/// One credential of an identity, keyed by its type (`password`, `oidc`, …).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    #[serde(skip)]
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub identifiers: Vec<String>,
    pub config: serde_json::Value,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// Written by hand: `config` holds password hashes and tokens, which must never reach a log.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("identifiers", &self.identifiers)
            .field("config", &"<redacted>")
            .field("version", &self.version)
            .finish()
    }
}

/// An address that can be verified (e-mail or phone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiableAddress {
    pub id: Uuid,
    pub value: String,
    pub verified: bool,
    pub via: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An address that recovery messages may be sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryAddress {
    pub id: Uuid,
    pub value: String,
    pub via: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
