//! The methods tessera has, registered once each, and the enabled ones per flow kind.

use super::{LoginStrategy, Method, RecoveryStrategy, RegistrationStrategy, SettingsStrategy, VerificationStrategy};
use crate::config::Config;
use std::sync::Arc;

/// Every method, in the order flows show them.
#[derive(Clone)]
pub struct Strategies {
    config: Arc<Config>,
    methods: Arc<Vec<Box<dyn Method>>>,
}

impl Strategies {
    /// The methods under `config`. `dummy_hash` is a hash of a random password in the
    /// configured format: unknown identifiers are checked against it, so that they cost as
    /// much time as known ones.
    pub fn new(config: Arc<Config>, dummy_hash: Arc<String>) -> Strategies {
        let methods: Vec<Box<dyn Method>> = vec![
            Box::new(super::password::Password::new(dummy_hash)),
            Box::new(super::identifier_first::IdentifierFirst),
            Box::new(super::profile::Profile),
            Box::new(super::code::Code),
            Box::new(super::link::Link),
            Box::new(super::totp::Totp),
            Box::new(super::lookup::LookupSecret),
            Box::new(super::webauthn::WebAuthn::new(&config)),
            Box::new(super::passkey::Passkey::new(&config)),
            Box::new(super::oidc::Oidc::new()),
        ];
        Strategies { config, methods: Arc::new(methods) }
    }

    fn enabled(&self) -> impl Iterator<Item = &dyn Method> {
        self.methods.iter().map(|m| m.as_ref()).filter(|m| m.enabled(&self.config))
    }

    /// Whether some method, enabled or not, takes part in login under this id.
    pub fn is_login_method(&self, id: &str) -> bool {
        self.methods.iter().any(|m| m.id() == id && m.login().is_some())
    }

    /// The enabled login strategies.
    pub fn login(&self) -> impl Iterator<Item = &dyn LoginStrategy> {
        self.enabled().filter_map(|m| m.login())
    }

    /// The enabled login strategies with their method ids.
    pub fn login_named(&self) -> impl Iterator<Item = (&'static str, &dyn LoginStrategy)> {
        self.enabled().filter_map(|m| m.login().map(|l| (m.id(), l)))
    }

    /// The enabled login strategy named `id`.
    pub fn login_method(&self, id: &str) -> Option<&dyn LoginStrategy> {
        self.enabled().find(|m| m.id() == id).and_then(|m| m.login())
    }

    /// The method a submit names: its `method`, else the enabled login strategy that claims it.
    pub fn login_method_of(&self, submit: &crate::selfservice::form::Submit) -> String {
        match submit.method() {
            "" => self.enabled().find(|m| m.login().is_some_and(|l| l.claims(submit))).map_or("", |m| m.id()).into(),
            named => named.into(),
        }
    }

    /// The method a settings submit names: its `method`, else the enabled settings strategy
    /// that claims it.
    pub fn settings_method_of(&self, submit: &crate::selfservice::form::Submit) -> String {
        match submit.method() {
            "" => self.enabled().find(|m| m.settings().is_some_and(|s| s.claims(submit))).map_or("", |m| m.id()).into(),
            named => named.into(),
        }
    }

    /// The method a registration submit names: its `method`, else the enabled registration
    /// strategy that claims it.
    pub fn registration_method_of(&self, submit: &crate::selfservice::form::Submit) -> String {
        match submit.method() {
            "" => self
                .enabled()
                .find(|m| m.registration().is_some_and(|r| r.claims(submit)))
                .map_or("", |m| m.id())
                .into(),
            named => named.into(),
        }
    }

    /// The enabled registration strategies.
    pub fn registration(&self) -> impl Iterator<Item = &dyn RegistrationStrategy> {
        self.enabled().filter_map(|m| m.registration())
    }

    /// Whether some method, enabled or not, handles registration submits naming `method`.
    pub fn is_registration_method(&self, method: &str) -> bool {
        self.methods.iter().filter_map(|m| m.registration()).any(|r| r.handles(method))
    }

    /// The enabled settings strategies.
    pub fn settings(&self) -> impl Iterator<Item = &dyn SettingsStrategy> {
        self.enabled().filter_map(|m| m.settings())
    }

    /// Whether some method, enabled or not, takes part in settings under this id.
    pub fn is_settings_method(&self, id: &str) -> bool {
        self.methods.iter().any(|m| m.id() == id && m.settings().is_some())
    }

    /// The enabled settings strategy named `id`.
    pub fn settings_method(&self, id: &str) -> Option<&dyn SettingsStrategy> {
        self.enabled().find(|m| m.id() == id).and_then(|m| m.settings())
    }

    /// The recovery strategy named `id` (enabled or not: the flow checks the configuration).
    pub fn recovery_method(&self, id: &str) -> Option<&dyn RecoveryStrategy> {
        self.methods.iter().find(|m| m.id() == id).and_then(|m| m.recovery())
    }

    /// The verification strategy named `id` (enabled or not: the flow checks the
    /// configuration).
    pub fn verification_method(&self, id: &str) -> Option<&dyn VerificationStrategy> {
        self.methods.iter().find(|m| m.id() == id).and_then(|m| m.verification())
    }
}
