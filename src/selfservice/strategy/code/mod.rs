//! The `code` method: a 6-digit code is sent (e-mail or SMS) and the user types it into the
//! flow (at most `code.max_submissions` tries per flow). Recovery and verification here; login
//! (passwordless and as a second factor) in [`login`], registration in [`registration`].

mod login;
mod registration;

use super::{
    LoginStrategy, Method, RecoveryStrategy, Redemption, RegistrationStrategy, SecretMessage, VerificationStrategy,
};
use crate::catalogue as text;
use crate::config::Config;
use crate::courier::template::TemplateType;
use crate::error::Error;
use crate::identity::Identity;
use crate::selfservice::challenge;
use crate::selfservice::codes::{self, Redeemed};
use crate::selfservice::flow::{Flow, FlowKind};
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{RequestInfo, Stepped, check_csrf};
use crate::selfservice::ui::{Input, Node, group};
use serde_json::Value as Json;

/// The code method.
pub struct Code;

/// What a code submit says when there are too many, or the code was used.
pub(crate) const TOO_OFTEN: &str = "The request was submitted too often. Please request another code.";
pub(crate) const USED: &str = "The code was already used. Please request another code.";

impl Method for Code {
    fn id(&self) -> &'static str {
        "code"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.code.enabled
    }

    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }

    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }

    fn recovery(&self) -> Option<&dyn RecoveryStrategy> {
        Some(self)
    }

    fn verification(&self) -> Option<&dyn VerificationStrategy> {
        Some(self)
    }
}

pub use crate::schema::Address;

/// Whether codes are a second factor: `mfa_enabled` (Kratos refuses both it and
/// `passwordless_enabled`; with both, codes are a first factor only).
pub fn second_factor(config: &Config) -> bool {
    let code = &config.selfservice.methods.code;
    code.mfa_enabled && !code.passwordless_enabled
}

/// The addresses of an identity's `code` credential (`config.addresses`; a legacy credential
/// without them: its identifiers, by e-mail).
pub fn code_addresses(identity: &Identity) -> Vec<Address> {
    let Some(c) = identity.credentials.get("code") else { return Vec::new() };
    let listed = c.config.get("addresses").and_then(Json::as_array).map(|list| {
        list.iter()
            .filter_map(|a| {
                let value = a.get("address")?.as_str()?.to_string();
                let via = a.get("channel").and_then(Json::as_str).unwrap_or("email").to_string();
                (!value.is_empty()).then_some(Address { value, via })
            })
            .collect::<Vec<_>>()
    });
    listed.unwrap_or_else(|| {
        c.identifiers
            .iter()
            .filter(|i| !i.is_empty())
            .map(|i| Address { value: i.clone(), via: "email".into() })
            .collect()
    })
}

/// Sends a fresh code to each address (earlier codes of the flow forgotten), counted against
/// the send limits; `Err` is the flow's answer instead.
pub(crate) async fn send_codes(
    svc: &Services,
    flow: Flow,
    identity: Option<&Identity>,
    traits: Option<&Json>,
    addresses: &[Address],
    info: &RequestInfo,
    tp: Option<Json>,
) -> Result<Flow, Stepped> {
    let Some(first) = addresses.first() else { return Ok(flow) };
    let flow = challenge::reserve_send(svc, flow, &first.value, info, tp.clone()).await?;
    let (template, field) = match flow.kind {
        FlowKind::Registration => (TemplateType::RegistrationCodeValid, "registration_code"),
        _ => (TemplateType::LoginCodeValid, "login_code"),
    };
    let lifespan = challenge::lifespan(svc, "code");
    let sent: Result<(), Error> = async {
        codes::forget(svc, flow.id).await?;
        for a in addresses {
            let issue = codes::Issue {
                flow: &flow,
                method: "code",
                identity_id: identity.map(|i| i.id),
                address: &a.value,
                via: &a.via,
                expires_at: svc.clock.now() + lifespan,
                by_admin: false,
            };
            let code = codes::issue(svc, issue).await?;
            let mail = challenge::Mail {
                template,
                to: &a.value,
                via: &a.via,
                identity,
                traits,
                fields: vec![(field, code)],
                transient_payload: tp.as_ref(),
                expires_in: lifespan,
            };
            challenge::send(svc, &flow, mail).await?;
        }
        Ok(())
    }
    .await;
    match sent {
        Ok(()) => Ok(flow),
        Err(e) => Err((flow, crate::selfservice::step::Outcome::Error(e))),
    }
}

/// The nodes after a code was sent: `code` (labelled `label`), continue, and resend.
pub(crate) fn code_nodes(label: crate::catalogue::Text) -> Vec<Node> {
    vec![
        Input::new(group::CODE, "method", "hidden").value("code").node(),
        Input::new(group::CODE, "code", "text").required().label(label).node(),
        Input::new(group::CODE, "method", "submit").value("code").label(text::label_continue()).node(),
        Input::new(group::CODE, "resend", "submit").value("code").label(text::label_resend()).node(),
    ]
}

/// Counts a code submission to `flow` (at most `code.max_submissions`) and spends `code` if
/// it is good; `None`: the flow took too many submissions (a new code must be asked for).
pub(crate) async fn spend(svc: &Services, flow: &Flow, code: &str) -> Result<Option<Redeemed>, Error> {
    if challenge::over_submission_limit(svc, flow).await? {
        return Ok(None);
    }
    Ok(Some(codes::redeem(svc, flow.id, "code", code).await?))
}

#[async_trait::async_trait(?Send)]
impl RecoveryStrategy for Code {
    fn amr(&self) -> &'static str {
        "code_recovery"
    }

    fn populate(&self, flow: &mut Flow, email: Option<&str>) {
        challenge::choose_method_ui(flow, "code", email);
    }

    fn message(&self, _svc: &Services, _flow: &Flow, secret: &str) -> SecretMessage {
        SecretMessage { template: TemplateType::RecoveryCodeValid, fields: vec![("recovery_code", secret.to_string())] }
    }

    fn unknown_template(&self) -> TemplateType {
        TemplateType::RecoveryCodeInvalid
    }

    fn sent(&self, flow: &mut Flow, address: &str) {
        challenge::code_sent_ui(flow, Some(address));
        flow.ui.messages.push(text::recovery_code_sent());
    }

    async fn redeem(
        &self,
        svc: &Services,
        flow: &Flow,
        submit: &Submit,
        info: &RequestInfo,
    ) -> Result<Redemption, Error> {
        if !flow.data.csrf_disabled
            && let Err(failure) = check_csrf(flow, info, &submit.body)
        {
            return Ok(Redemption::Csrf(failure));
        }
        Ok(match spend(svc, flow, submit.trimmed("code").unwrap_or_default()).await? {
            None => Redemption::Retry(TOO_OFTEN),
            Some(Redeemed::Unknown | Redeemed::Expired(_)) => Redemption::Invalid(text::recovery_code_invalid()),
            Some(Redeemed::Used(_)) => Redemption::Retry(USED),
            Some(Redeemed::Ok(record)) => Redemption::Valid(record),
        })
    }
}

#[async_trait::async_trait(?Send)]
impl VerificationStrategy for Code {
    fn populate(&self, flow: &mut Flow, email: Option<&str>) {
        challenge::choose_method_ui(flow, "code", email);
    }

    fn message(&self, svc: &Services, flow: &Flow, secret: &str) -> SecretMessage {
        let url = challenge::submit_link(svc, FlowKind::Verification, flow.id, "code", secret);
        SecretMessage {
            template: TemplateType::VerificationCodeValid,
            fields: vec![("verification_code", secret.to_string()), ("verification_url", url)],
        }
    }

    fn unknown_template(&self) -> TemplateType {
        TemplateType::VerificationCodeInvalid
    }

    fn sent(&self, flow: &mut Flow, address: &str, resend: bool) {
        challenge::code_sent_ui(flow, resend.then_some(address));
        flow.ui.messages.push(text::verification_code_sent());
    }

    async fn redeem(
        &self,
        svc: &Services,
        flow: &Flow,
        submit: &Submit,
        _info: &RequestInfo,
    ) -> Result<Redemption, Error> {
        Ok(match spend(svc, flow, submit.trimmed("code").unwrap_or_default()).await? {
            None => Redemption::Retry(TOO_OFTEN),
            Some(Redeemed::Unknown) => Redemption::Invalid(text::verification_code_invalid()),
            Some(Redeemed::Expired(record)) => Redemption::Expired { at: record.expires_at, in_browser: false },
            Some(Redeemed::Used(_)) => Redemption::Retry(USED),
            Some(Redeemed::Ok(record)) => Redemption::Valid(record),
        })
    }
}
