//! The session model: assurance levels, authentication methods, devices and the stored
//! session (the rules that act on them are in `crate::session`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Authenticator assurance levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    Aal0,
    Aal1,
    Aal2,
}

impl Aal {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Aal::Aal0 => "aal0",
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
        }
    }

    /// Parses the stored name (unknown → aal0).
    pub fn parse(s: &str) -> Aal {
        match s {
            "aal1" => Aal::Aal1,
            "aal2" => Aal::Aal2,
            _ => Aal::Aal0,
        }
    }
}

/// One completed authentication step (`sessionAuthenticationMethod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthMethod {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aal: Option<Aal>,
    pub completed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

impl AuthMethod {
    /// The AAL of this step; entries stored without one get the method's usual level.
    pub fn level(&self) -> Aal {
        self.aal.unwrap_or(match self.method.as_str() {
            "webauthn" | "totp" | "lookup_secret" => Aal::Aal2,
            _ => Aal::Aal1,
        })
    }
}

/// A device a session was used from (`sessionDevice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: Uuid,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub location: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A session as stored. The token is kept only as its SHA-256 hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub identity_id: Uuid,
    pub token_hash: String,
    pub logout_token_hash: String,
    /// Not revoked (expiry and identity state are checked separately).
    pub active: bool,
    pub aal: Aal,
    pub authentication_methods: Vec<AuthMethod>,
    pub authenticated_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub devices: Vec<Device>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("identity_id", &self.identity_id)
            .field("active", &self.active)
            .field("aal", &self.aal)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
