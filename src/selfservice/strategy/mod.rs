//! Strategies: one module per self-service method (password, profile, identifier_first, code,
//! link, …). A method implements the parts it takes part in — login, registration, settings,
//! recovery, verification — and is registered once, in [`registry`]. Flows ask every enabled
//! method to populate a new flow's UI and hand a submit to the method it names (Kratos'
//! `login.Strategy`, `registration.Strategy`, …). A strategy gets the [`Services`], never the
//! registry of strategies, and says what should happen next as a step value; the flow runs it.
//!
//! Adding a method: a module here, implementing [`Method`] and the flow traits it takes part
//! in, and one line in [`registry::Strategies::new`]. No flow module changes.

pub mod code;
pub mod identifier_first;
pub mod link;
pub mod lookup;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod profile;
pub mod registry;
pub mod totp;
pub mod webauthn;

use super::flow::Flow;
use super::form::Submit;
use super::services::Services;
use super::step::{CsrfFailure, RequestInfo, Stepped};
use crate::catalogue::Text;
use crate::config::Config;
use crate::courier::template::TemplateType;
use crate::error::Error;
use crate::identity::Identity;
use crate::persistence::selfservice::CodeRecord;
use crate::session::{Aal, AuthMethod};
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

/// A self-service method.
pub trait Method: Send + Sync {
    /// The method's id: the `method` value a submit names (`password`, `code`, …).
    fn id(&self) -> &'static str;
    /// Whether the configuration enables it.
    fn enabled(&self, config: &Config) -> bool;
    /// Its part in login, if it takes part.
    fn login(&self) -> Option<&dyn LoginStrategy> {
        None
    }
    /// Its part in registration, if it takes part.
    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        None
    }
    /// Its part in settings, if it takes part.
    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        None
    }
    /// Its part in recovery, if it takes part.
    fn recovery(&self) -> Option<&dyn RecoveryStrategy> {
        None
    }
    /// Its part in verification, if it takes part.
    fn verification(&self) -> Option<&dyn VerificationStrategy> {
        None
    }
}

// --- login ----------------------------------------------------------------------------------

/// Which login form is being built.
#[derive(Clone, Copy)]
pub enum LoginForm<'a> {
    /// A new login flow: the inputs of every first factor.
    FirstFactor,
    /// Re-authentication (`refresh=true`) of the signed-in identity.
    Refresh { identity: &'a Identity },
    /// Identifier-first, step one: only the identifier.
    Identification,
    /// Identifier-first, step two: what the identified account signs in with (`None`: no such
    /// account, shown as if it existed when account enumeration is mitigated).
    Credentials { identity: Option<&'a Identity> },
    /// An AAL upgrade of the signed-in identity: the second factors it has.
    SecondFactor { identity: &'a Identity },
}

/// What a login strategy made of a submit.
pub enum LoginStep {
    /// The identity proved itself with `method`: sign it in (or refresh its session).
    Authenticated { flow: Flow, identity: Identity, method: AuthMethod },
    /// Identifier-first step one is done: show step two for the account `identifier` names
    /// (`None`: no such account).
    Identified { flow: Flow, identity: Option<Identity>, identifier: String },
    /// The strategy answered itself (a form with problems, an error).
    Answer(Box<Stepped>),
}

/// A method's part in login (Kratos' `login.Strategy`).
#[async_trait::async_trait(?Send)]
pub trait LoginStrategy {
    /// The AAL the method proves under `config`: first factors aal1, second factors aal2.
    fn aal(&self, config: &Config) -> Aal;
    /// Whether it handles submits of `flow` (refresh, requested AAL, login style).
    fn responsible(&self, svc: &Services, flow: &Flow) -> bool;
    /// Whether a submit without `method` is for this strategy (by a field only it uses, as
    /// Kratos decides for e.g. `webauthn_login`).
    fn claims(&self, _submit: &Submit) -> bool {
        false
    }
    /// When it is the only first factor, the `method` identifier-first submits on the user's
    /// behalf once the account is identified (Kratos sends the login code at once).
    fn sole_factor_submit(&self) -> Option<&'static str> {
        None
    }
    /// Adds its nodes to a login form.
    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>);
    /// An aal2 flow for `identity` was just built: a second factor that starts with a message
    /// may send it now (Kratos sends the code when it is the only second factor).
    async fn started(&self, _svc: &Services, flow: Flow, _identity: &Identity, _info: &RequestInfo) -> Flow {
        flow
    }
    /// Handles a submit that names this method.
    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep;
}

// --- registration ---------------------------------------------------------------------------

/// Which registration form is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationForm {
    /// One step: the traits and every credential method's inputs.
    OneStep,
    /// Two steps (`profile_first`), step one: the traits alone.
    Profile,
    /// Two steps, step two: how to sign in (the traits are accepted and hidden).
    Credentials,
}

/// What a registration strategy made of a submit.
pub enum RegistrationStep {
    /// Create `identity` (the strategy set its credential); `identifiers` name it in a
    /// login hint when one is taken.
    Create { flow: Flow, identity: Box<Identity>, identifiers: Vec<String> },
    /// A provider account to register (`identity`: traits mapped from its claims, not yet
    /// validated); the flow validates, creates and signs it in with `provider`.
    Provider { flow: Flow, identity: Box<Identity>, provider: String },
    /// Two-step registration: the traits are valid; show step two with them.
    ShowCredentials { flow: Flow, traits: Json },
    /// Two-step registration: back to step one with these traits.
    ShowProfile { flow: Flow, traits: Json },
    /// The strategy answered itself (a form with problems, an error).
    Answer(Box<Stepped>),
}

/// A method's part in registration (Kratos' `registration.Strategy`).
#[async_trait::async_trait(?Send)]
pub trait RegistrationStrategy {
    /// Whether a submit naming `method` is for this strategy.
    fn handles(&self, method: &str) -> bool;
    /// Whether it takes submits with this configuration (two-step only, for the profile).
    fn responsible(&self, _svc: &Services) -> bool {
        true
    }
    /// Whether a submit without `method` is for this strategy (by a field only it uses, e.g.
    /// `passkey_register`, which browsers submit alone).
    fn claims(&self, _submit: &Submit) -> bool {
        false
    }
    /// Adds its nodes to a registration form.
    fn populate(&self, svc: &Services, flow: &mut Flow, form: RegistrationForm);
    /// Handles a submit that names this method.
    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep;
}

// --- settings -------------------------------------------------------------------------------

/// What a settings strategy made of a submit.
pub enum SettingsStep {
    /// Save the changed identity; `proved`: the change proved a second factor, which the
    /// session gains (Kratos adds it when a second factor is enrolled).
    Save { flow: Flow, identity: Box<Identity>, proved: Option<AuthMethod> },
    /// The change needs a privileged session: re-authenticate first.
    RefreshRequired(Flow),
    /// The strategy answered itself (a form with problems, an error).
    Answer(Box<Stepped>),
}

/// A method's part in settings (Kratos' `settings.Strategy`).
#[async_trait::async_trait(?Send)]
pub trait SettingsStrategy {
    /// Whether a submit without `method` is for this strategy (by a field only it uses, e.g.
    /// `totp_unlink`, `lookup_secret_reveal`, `webauthn_remove`).
    fn claims(&self, _submit: &Submit) -> bool {
        false
    }
    /// Adds its nodes for `identity`, whose traits as shown are `traits`, under `schema`.
    fn populate(&self, svc: &Services, flow: &mut Flow, identity: &Identity, traits: &Json, schema: &Json);
    /// Handles a submit that names this method; `privileged`: the session is recent enough
    /// for changes to credentials and identifiers.
    async fn update(
        &self,
        svc: &Services,
        flow: Flow,
        identity: Identity,
        submit: &Submit,
        info: &RequestInfo,
        privileged: bool,
    ) -> SettingsStep;
}

// --- recovery and verification --------------------------------------------------------------

/// What redeeming a submitted code or link found.
pub enum Redemption {
    /// The secret is good and now spent.
    Valid(Box<CodeRecord>),
    /// Show the flow again with this message.
    Invalid(Text),
    /// Start over with a new flow; the reason is shown there.
    Retry(&'static str),
    /// Start over in a browser flow that shows this message (links are opened in browsers).
    RestartInBrowser(Text),
    /// The secret ran out then; `in_browser`: it came from a link.
    Expired { at: DateTime<Utc>, in_browser: bool },
    /// The submit failed its CSRF check.
    Csrf(CsrfFailure),
}

/// A message that carries a secret: its template and the fields that hold the secret.
pub struct SecretMessage {
    pub template: TemplateType,
    pub fields: Vec<(&'static str, String)>,
}

/// A method's part in recovery (Kratos' `recovery.Strategy`).
#[async_trait::async_trait(?Send)]
pub trait RecoveryStrategy {
    /// The AMR a recovery with this method gives (`code_recovery`, `link_recovery`).
    fn amr(&self) -> &'static str;
    /// Whether its secret is opened in a browser (a link): the answer always goes there.
    fn opened_in_browser(&self) -> bool {
        false
    }
    /// The first form: an address (pre-filled with `email`) and this method's submit.
    fn populate(&self, flow: &mut Flow, email: Option<&str>);
    /// The message for a known address, carrying `secret`.
    fn message(&self, svc: &Services, flow: &Flow, secret: &str) -> SecretMessage;
    /// The template for an address no account uses (`notify_unknown_recipients`).
    fn unknown_template(&self) -> TemplateType;
    /// The flow after a message went out to `address`.
    fn sent(&self, flow: &mut Flow, address: &str);
    /// Redeems the secret a submit carries.
    async fn redeem(
        &self,
        svc: &Services,
        flow: &Flow,
        submit: &Submit,
        info: &RequestInfo,
    ) -> Result<Redemption, Error>;
}

/// A method's part in verification (Kratos' `verification.Strategy`).
#[async_trait::async_trait(?Send)]
pub trait VerificationStrategy {
    /// The first form: an address (pre-filled with `email`) and this method's submit.
    fn populate(&self, flow: &mut Flow, email: Option<&str>);
    /// The message for a known address, carrying `secret`.
    fn message(&self, svc: &Services, flow: &Flow, secret: &str) -> SecretMessage;
    /// The template for an address no account uses (`notify_unknown_recipients`).
    fn unknown_template(&self) -> TemplateType;
    /// The flow after a message went out to `address` (`resend`: offer to send it again).
    fn sent(&self, flow: &mut Flow, address: &str, resend: bool);
    /// Redeems the secret a submit carries.
    async fn redeem(
        &self,
        svc: &Services,
        flow: &Flow,
        submit: &Submit,
        info: &RequestInfo,
    ) -> Result<Redemption, Error>;
}

/// A login form shown again (400) with `message` on `field` (flow level when empty): other
/// messages cleared, passwords emptied, the submitted identifier kept.
pub fn login_problem(
    mut flow: Flow,
    identifier: &str,
    field: &str,
    message: Text,
    transient_payload: Option<Json>,
) -> Stepped {
    flow.ui.reset_messages();
    flow.ui.clear_passwords();
    if let Some(n) = flow.ui.node_mut("identifier", None)
        && n.input_type() != "hidden"
    {
        n.set_value(Some(identifier.into()));
    }
    flow.ui.add_field_message(field, message);
    flow.ui.sort_login();
    (flow.clone(), super::step::Outcome::Form { flow, transient_payload })
}

/// Adds the empty identifier input unless the form has one. `autocomplete`: a value it must
/// carry (conditional UI for passkeys and passwordless keys: `username webauthn`, which asks
/// browsers to offer WebAuthn credentials in its autofill), set on an existing input too.
pub fn ensure_identifier(svc: &Services, flow: &mut Flow, autocomplete: Option<&str>) {
    if let Some(n) = flow.ui.node_mut("identifier", None) {
        if let Some(value) = autocomplete {
            n.attributes.insert("autocomplete".into(), value.into());
        }
        return;
    }
    let (_, schema) = svc.schema_of(flow);
    let mut input = super::ui::Input::new(super::ui::group::DEFAULT, "identifier", "text").value("").required();
    if let Some(value) = autocomplete {
        input = input.autocomplete(value);
    }
    flow.ui.nodes.push(input.label(super::ui::identifier_label(&schema)).node());
}

/// A typed identifier as code addresses are stored: e-mail-like values lower-cased, phone
/// numbers in E.164, anything else trimmed.
pub fn normalise_identifier(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed.contains('@') {
        return trimmed.to_lowercase();
    }
    crate::schema::normalise("sms", trimmed).unwrap_or_else(|_| trimmed.to_string())
}

/// The account a typed identifier names, looking through the credential types `kinds` in
/// order, each normalised as it is stored: code addresses by [`normalise_identifier`], the
/// other identifiers (password, WebAuthn) trimmed and lower-cased.
pub async fn find_account(svc: &Services, kinds: &[&str], identifier: &str) -> Result<Option<Identity>, Error> {
    let mut pooled = svc.store.get().await?;
    for kind in kinds {
        let value = if *kind == "code" { normalise_identifier(identifier) } else { identifier.trim().to_lowercase() };
        let found = crate::persistence::identity::find_by_identifier(&mut pooled.conn(), kind, &value).await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The identity an aal2 login is for: the signed-in one, active.
pub async fn second_factor_identity(svc: &Services, flow: &Flow, info: &RequestInfo) -> Result<Identity, Error> {
    let id =
        info.session.as_ref().map(|l| l.session.identity_id).or(flow.data.identity_id).ok_or(Error::Aal1Required)?;
    let identity = svc.identities.get(id).await?;
    if identity.state != crate::identity::IdentityState::Active {
        return Err(Error::IdentityDisabled);
    }
    Ok(identity)
}

/// A second-factor login form shown again (400) with `message` on `field` (flow level when
/// empty); the input named `input` is emptied.
pub fn second_factor_problem(flow: Flow, input: &str, field: &str, message: Text, tp: Option<Json>) -> Stepped {
    let mut f = flow;
    if let Some(n) = f.ui.node_mut(input, None) {
        n.set_value(Some("".into()));
    }
    login_problem(f, "", field, message, tp)
}
