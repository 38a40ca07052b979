//! Admin request bodies: create (also the batch item), update, and credential import.

use serde::Deserialize;
use serde_json::Value as Json;
use uuid::Uuid;

/// `createIdentityBody`. Unknown fields are refused, as Kratos' strict decoder does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentityBody {
    #[serde(default)]
    pub schema_id: Option<String>,
    #[serde(default)]
    pub traits: Option<Json>,
    #[serde(default)]
    pub credentials: Option<ImportCredentials>,
    #[serde(default)]
    pub verifiable_addresses: Option<Vec<AddressInput>>,
    #[serde(default)]
    pub recovery_addresses: Option<Vec<AddressInput>>,
    #[serde(default)]
    pub metadata_public: Option<Json>,
    #[serde(default)]
    pub metadata_admin: Option<Json>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub organization_id: Option<Uuid>,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl CreateIdentityBody {
    /// Whether this body carries a plain-text password (the batch limit counts them).
    pub fn has_plaintext_password(&self) -> bool {
        self.credentials
            .as_ref()
            .and_then(|c| c.password.as_ref())
            .and_then(|p| p.config.password.as_deref())
            .is_some_and(|p| !p.is_empty())
    }
}

/// `updateIdentityBody` (PUT). Decoded leniently, as Kratos does for this endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateIdentityBody {
    #[serde(default)]
    pub schema_id: Option<String>,
    #[serde(default)]
    pub traits: Option<Json>,
    /// Decoded leniently by the service (only password, oidc and saml are imported).
    #[serde(default)]
    pub credentials: Option<Json>,
    #[serde(default)]
    pub metadata_public: Option<Json>,
    #[serde(default)]
    pub metadata_admin: Option<Json>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A verifiable or recovery address supplied in a create body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub value: String,
    #[serde(default)]
    pub verified: Option<bool>,
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub identity_id: Option<Uuid>,
}

/// `identityWithCredentials`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportCredentials {
    #[serde(default)]
    pub password: Option<ImportPassword>,
    #[serde(default)]
    pub oidc: Option<ImportProviders>,
    #[serde(default)]
    pub saml: Option<ImportProviders>,
    /// tessera also imports second factors as Kratos stores them (Kratos' API does not).
    #[serde(default)]
    pub totp: Option<ImportStored>,
    #[serde(default)]
    pub lookup_secret: Option<ImportStored>,
    #[serde(default)]
    pub webauthn: Option<ImportStored>,
}

/// A credential imported in the shape Kratos stores it (`{"config": {…}}`); `Debug` never
/// shows the secrets it holds.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportStored {
    #[serde(default)]
    pub config: serde_json::Value,
}

impl std::fmt::Debug for ImportStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportStored").field("config", &"<redacted>").finish()
    }
}

/// `identityWithCredentialsPassword`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportPassword {
    #[serde(default)]
    pub config: ImportPasswordConfig,
}

/// `identityWithCredentialsPasswordConfig`; `Debug` never shows the password or hash.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportPasswordConfig {
    #[serde(default)]
    pub hashed_password: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub use_password_migration_hook: Option<bool>,
}

impl std::fmt::Debug for ImportPasswordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportPasswordConfig")
            .field("hashed_password", &self.hashed_password.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("use_password_migration_hook", &self.use_password_migration_hook)
            .finish()
    }
}

/// `identityWithCredentialsOidc` / `identityWithCredentialsSaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProviders {
    #[serde(default)]
    pub config: ImportProvidersConfig,
}

/// The `providers` list of an oidc or saml import.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProvidersConfig {
    #[serde(default)]
    pub providers: Vec<ImportProvider>,
}

/// One linked provider account.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProvider {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub use_auto_link: Option<bool>,
    #[serde(default)]
    pub organization: Option<Uuid>,
}

/// One entry of `PATCH /admin/identities`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPatchEntry {
    #[serde(default)]
    pub create: Option<CreateIdentityBody>,
    #[serde(default)]
    pub patch_id: Option<Uuid>,
}

/// `patchIdentitiesBody`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPatchBody {
    #[serde(default)]
    pub identities: Option<Vec<BatchPatchEntry>>,
}

/// `null` decodes as the empty string (Go's zero value).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}
