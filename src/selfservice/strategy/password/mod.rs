//! The `password` method (behaviour.md §13.4): an identifier and a password at login, a new
//! password at registration and in settings, under the password policy.

mod login;
pub mod policy;
mod registration;
mod settings;

use super::{LoginStrategy, Method, RegistrationStrategy, SettingsStrategy};
use crate::catalogue as text;
use crate::config::Config;
use crate::identity::Identity;
use crate::selfservice::ui::{self, Input, group};
use serde_json::Value as Json;
use std::sync::Arc;

/// The password method.
pub struct Password {
    /// A hash of a random password: unknown identifiers are checked against it.
    dummy_hash: Arc<String>,
    breaches: policy::BreachChecker,
}

impl Password {
    /// The method; `dummy_hash` is a hash of a random password in the configured format.
    pub fn new(dummy_hash: Arc<String>) -> Password {
        Password { dummy_hash, breaches: policy::BreachChecker::default() }
    }
}

impl Method for Password {
    fn id(&self) -> &'static str {
        "password"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.password.enabled
    }

    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }

    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        Some(self)
    }
}

/// The `password` input.
fn password_node(autocomplete: &str) -> ui::Node {
    Input::new(group::PASSWORD, "password", "password")
        .required()
        .autocomplete(autocomplete)
        .label(text::label_password())
        .node()
}

/// The `method=password` submit.
fn submit(label: crate::catalogue::Text) -> ui::Node {
    ui::submit_button(group::PASSWORD, "password", label)
}

/// The identity whose password identifier is `identifier` (case-insensitive).
pub async fn find_identity(
    svc: &crate::selfservice::services::Services,
    identifier: &str,
) -> Result<Option<Identity>, crate::error::Error> {
    super::find_account(svc, &["password"], identifier).await
}

/// The stored password hash of an identity, if it has a usable one.
pub(crate) fn hashed_password(identity: &Identity) -> Option<String> {
    identity
        .credentials
        .get("password")
        .and_then(|c| c.config.get("hashed_password"))
        .and_then(Json::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}
