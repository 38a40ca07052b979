//! The self-service flow model shared by every flow kind: identity, type, state, lifespan,
//! UI, and how it is stored and rendered (behaviour.md §4). The rules of each kind live in
//! its own module below.

pub mod dispatch;
pub mod expiry;
pub mod login;
pub mod recovery;
pub mod recovery_v2;
pub mod registration;
pub mod settings;
pub mod verification;

use super::ui::Container;
use crate::config::Config;
use crate::identity::view::ts;
use crate::persistence::selfservice::{FlowRecord, FlowTable};
use crate::session::Aal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

/// Which self-service flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    Login,
    Registration,
    Recovery,
    Verification,
    Settings,
}

impl FlowKind {
    /// The path segment (`login`, `registration`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Login => "login",
            FlowKind::Registration => "registration",
            FlowKind::Recovery => "recovery",
            FlowKind::Verification => "verification",
            FlowKind::Settings => "settings",
        }
    }

    /// The table the kind is stored in.
    pub fn table(self) -> FlowTable {
        match self {
            FlowKind::Login => FlowTable::Login,
            FlowKind::Registration => FlowTable::Registration,
            FlowKind::Recovery => FlowTable::Recovery,
            FlowKind::Verification => FlowTable::Verification,
            FlowKind::Settings => FlowTable::Settings,
        }
    }

    /// The kind stored in a table.
    pub fn of_table(table: FlowTable) -> FlowKind {
        match table {
            FlowTable::Login => FlowKind::Login,
            FlowTable::Registration => FlowKind::Registration,
            FlowTable::Recovery => FlowKind::Recovery,
            FlowTable::Verification => FlowKind::Verification,
            FlowTable::Settings => FlowKind::Settings,
        }
    }
}

/// `api` (native apps) or `browser` (HTML forms and SPAs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowType {
    Api,
    Browser,
}

impl FlowType {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowType::Api => "api",
            FlowType::Browser => "browser",
        }
    }
}

/// Where a flow is in its life (`state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the user to choose and submit a method.
    ChooseMethod,
    /// A message with a code or link went out; waiting for it.
    SentEmail,
    /// The challenge was met (recovery, verification).
    PassedChallenge,
    /// Settings: the form is shown.
    ShowForm,
    /// Settings: the last change was saved.
    Success,
    /// Recovery v2: waiting for an address.
    RecoveryAwaitingAddress,
    /// Recovery v2: the account has several addresses; waiting for a choice.
    RecoveryAwaitingAddressChoice,
    /// Recovery v2: waiting for the chosen address in full.
    RecoveryConfirmingAddress,
    /// Recovery v2: a code went out; waiting for it.
    RecoveryAwaitingCode,
}

impl State {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::ChooseMethod => "choose_method",
            State::SentEmail => "sent_email",
            State::PassedChallenge => "passed_challenge",
            State::ShowForm => "show_form",
            State::Success => "success",
            State::RecoveryAwaitingAddress => "recovery_awaiting_address",
            State::RecoveryAwaitingAddressChoice => "recovery_awaiting_address_choice",
            State::RecoveryConfirmingAddress => "recovery_confirming_address",
            State::RecoveryAwaitingCode => "recovery_awaiting_code",
        }
    }

    /// Parses a serialised name.
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "choose_method" => State::ChooseMethod,
            "sent_email" => State::SentEmail,
            "passed_challenge" => State::PassedChallenge,
            "show_form" => State::ShowForm,
            "success" => State::Success,
            "recovery_awaiting_address" => State::RecoveryAwaitingAddress,
            "recovery_awaiting_address_choice" => State::RecoveryAwaitingAddressChoice,
            "recovery_confirming_address" => State::RecoveryConfirmingAddress,
            "recovery_awaiting_code" => State::RecoveryAwaitingCode,
            _ => return None,
        })
    }
}

/// Kind-specific fields, stored as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowData {
    #[serde(default)]
    pub refresh: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_aal: Option<Aal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_login_challenge: Option<String>,
    /// Login: the identity a refresh or AAL upgrade is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<Uuid>,
    /// Login: the session a refresh or AAL upgrade extends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Identifier-first login: the identifier chosen in step one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The session-token exchanger's return-to code (sealed), for API flows that asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_return_code: Option<String>,
    /// The flow whose session-token exchanger this flow finishes (a flow that took over from
    /// another, e.g. a provider sign-in that switched from login to registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_flow: Option<Uuid>,
    /// Two-step registration: the traits accepted in the profile step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traits: Option<Json>,
    /// Recovery / verification: the address a message was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Recovery v2: the user chooses one of the account's addresses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub choose_address: bool,
    /// Recovery by an admin code: the flow skips the CSRF check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub csrf_disabled: bool,
    /// Recovery / settings: the `continue_with` items shown on the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continue_with: Vec<Json>,
    /// Settings: the identity as shown on the flow (without credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Json>,
    /// What methods keep between steps and never show (Kratos' `internal_context`): a TOTP
    /// key being enrolled, lookup codes not yet confirmed, a WebAuthn challenge.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub internal: Map<String, Json>,
}

/// A self-service flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: Uuid,
    pub kind: FlowKind,
    pub flow_type: FlowType,
    pub state: State,
    pub request_url: String,
    pub return_to: Option<String>,
    pub active: Option<String>,
    pub ui: Container,
    /// The real CSRF token the flow was created with (browser flows; empty for API flows).
    pub csrf_token: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub data: FlowData,
    /// Raised by every stored change (the store keeps the newest).
    pub version: i64,
}

/// The UI URL of a flow kind.
pub fn ui_url(config: &Config, kind: FlowKind) -> &str {
    let flows = &config.selfservice.flows;
    match kind {
        FlowKind::Login => &flows.login.ui_url,
        FlowKind::Registration => &flows.registration.ui_url,
        FlowKind::Recovery => &flows.recovery.ui_url,
        FlowKind::Verification => &flows.verification.ui_url,
        FlowKind::Settings => &flows.settings.ui_url,
    }
}

impl Flow {
    /// A new flow of `kind` and `flow_type` for `request_url`, created `now`, with an empty UI
    /// (browser flows keep `csrf`, the real token of the browser's CSRF cookie).
    pub fn new(
        config: &Config,
        now: DateTime<Utc>,
        kind: FlowKind,
        flow_type: FlowType,
        request_url: String,
        csrf: String,
    ) -> Flow {
        let flows = &config.selfservice.flows;
        let lifespan = match kind {
            FlowKind::Login => flows.login.lifespan.0,
            FlowKind::Registration => flows.registration.lifespan.0,
            FlowKind::Recovery => flows.recovery.lifespan.0,
            FlowKind::Verification => flows.verification.lifespan.0,
            FlowKind::Settings => flows.settings.lifespan.0,
        };
        let id = Uuid::new_v4();
        let action = format!("{}self-service/{}?flow={id}", config.public_base_url(), kind.as_str());
        Flow {
            id,
            kind,
            flow_type,
            state: State::ChooseMethod,
            return_to: super::redirect::return_to_of(&request_url),
            request_url,
            active: None,
            ui: Container::new(action),
            csrf_token: if flow_type == FlowType::Browser { csrf } else { String::new() },
            issued_at: now,
            expires_at: now + chrono::Duration::from_std(lifespan).unwrap_or(chrono::Duration::hours(1)),
            created_at: now,
            updated_at: now,
            data: FlowData::default(),
            version: 0,
        }
    }

    /// A new flow of `kind` that takes over from this one (a provider sign-in switching
    /// between login and registration, or linking): same type, browser, request, `return_to`,
    /// schema and session-token exchanger.
    pub fn successor(&self, config: &Config, now: DateTime<Utc>, kind: FlowKind) -> Flow {
        let mut next = Flow::new(config, now, kind, self.flow_type, self.request_url.clone(), self.csrf_token.clone());
        next.return_to = self.return_to.clone();
        next.data.identity_schema = self.data.identity_schema.clone();
        next.data.oauth2_login_challenge = self.data.oauth2_login_challenge.clone();
        next.data.exchange_return_code = self.data.exchange_return_code.clone();
        if self.data.exchange_return_code.is_some() {
            next.data.exchange_flow = Some(self.data.exchange_flow.unwrap_or(self.id));
        }
        if kind == FlowKind::Login {
            next.data.requested_aal = Some(Aal::Aal1);
        }
        next
    }

    /// Whether the flow may no longer be submitted.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at < now
    }

    /// The stored form.
    pub fn to_record(&self) -> FlowRecord {
        FlowRecord {
            table: self.kind.table(),
            id: self.id,
            flow_type: self.flow_type.as_str().into(),
            state: self.state.as_str().into(),
            request_url: self.request_url.clone(),
            return_to: self.return_to.clone(),
            active_method: self.active.clone(),
            ui: serde_json::to_value(&self.ui).unwrap_or(Json::Null),
            csrf_token: self.csrf_token.clone(),
            data: serde_json::to_value(&self.data).unwrap_or(Json::Null),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// Rebuilds a flow from its stored form (`None` if the row is not a readable flow).
    pub fn from_record(r: FlowRecord) -> Option<Flow> {
        Some(Flow {
            id: r.id,
            kind: FlowKind::of_table(r.table),
            flow_type: if r.flow_type == "api" { FlowType::Api } else { FlowType::Browser },
            state: State::parse(&r.state)?,
            request_url: r.request_url,
            return_to: r.return_to,
            active: r.active_method,
            ui: serde_json::from_value(r.ui).ok()?,
            csrf_token: r.csrf_token,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            data: serde_json::from_value(r.data).ok()?,
            version: r.version,
        })
    }

    /// The flow's JSON (`loginFlow` / `registrationFlow`). `csrf_masked` fills the CSRF node.
    pub fn render(&self, csrf_masked: Option<&str>, transient_payload: Option<&Json>) -> Json {
        let mut ui = self.ui.clone();
        if let (Some(masked), Some(node)) = (csrf_masked, ui.node_mut("csrf_token", None)) {
            node.set_value(Some(masked.into()));
        }
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        if matches!(self.kind, FlowKind::Login | FlowKind::Registration) {
            o.insert("organization_id".into(), json!(self.data.organization_id));
        }
        o.insert("type".into(), json!(self.flow_type.as_str()));
        o.insert("expires_at".into(), ts(&self.expires_at));
        o.insert("issued_at".into(), ts(&self.issued_at));
        o.insert("request_url".into(), json!(self.request_url));
        if let Some(r) = &self.return_to {
            o.insert("return_to".into(), json!(r));
        }
        if let Some(a) = &self.active {
            o.insert("active".into(), json!(a));
        }
        o.insert("ui".into(), serde_json::to_value(&ui).unwrap_or(Json::Null));
        if self.kind == FlowKind::Login {
            o.insert("created_at".into(), ts(&self.created_at));
            o.insert("updated_at".into(), ts(&self.updated_at));
            o.insert("refresh".into(), json!(self.data.refresh));
            o.insert("requested_aal".into(), json!(self.data.requested_aal.unwrap_or(Aal::Aal1).as_str()));
        }
        if let Some(c) = &self.data.oauth2_login_challenge {
            o.insert("oauth2_login_challenge".into(), json!(c));
        }
        if let Some(s) = &self.data.identity_schema {
            o.insert("identity_schema".into(), json!(s));
        }
        if self.kind == FlowKind::Settings
            && let Some(identity) = &self.data.identity
        {
            o.insert("identity".into(), identity.clone());
        }
        if matches!(self.kind, FlowKind::Settings | FlowKind::Recovery) && !self.data.continue_with.is_empty() {
            o.insert("continue_with".into(), json!(self.data.continue_with));
        }
        o.insert("state".into(), json!(self.state.as_str()));
        if let Some(tp) = transient_payload {
            o.insert("transient_payload".into(), tp.clone());
        }
        Json::Object(o)
    }
}
