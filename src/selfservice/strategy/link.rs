//! The `link` method for recovery and verification: the e-mail carries a link with a token;
//! opening it redeems the token (links are opened in browsers, so a failed one starts a
//! browser flow).

use super::{Method, RecoveryStrategy, Redemption, SecretMessage, VerificationStrategy};
use crate::catalogue as text;
use crate::config::Config;
use crate::courier::template::TemplateType;
use crate::error::Error;
use crate::selfservice::challenge;
use crate::selfservice::codes::{self, Redeemed};
use crate::selfservice::flow::{Flow, FlowKind};
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::RequestInfo;

/// The link method.
pub struct Link;

impl Method for Link {
    fn id(&self) -> &'static str {
        "link"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.link.enabled
    }

    fn recovery(&self) -> Option<&dyn RecoveryStrategy> {
        Some(self)
    }

    fn verification(&self) -> Option<&dyn VerificationStrategy> {
        Some(self)
    }
}

async fn spend(svc: &Services, flow: &Flow, submit: &Submit) -> Result<Redeemed, Error> {
    codes::redeem(svc, flow.id, "link", submit.trimmed("token").unwrap_or_default()).await
}

#[async_trait::async_trait(?Send)]
impl RecoveryStrategy for Link {
    fn amr(&self) -> &'static str {
        "link_recovery"
    }

    fn opened_in_browser(&self) -> bool {
        true
    }

    fn populate(&self, flow: &mut Flow, email: Option<&str>) {
        challenge::choose_method_ui(flow, "link", email);
    }

    fn message(&self, svc: &Services, flow: &Flow, secret: &str) -> SecretMessage {
        let url = challenge::submit_link(svc, FlowKind::Recovery, flow.id, "token", secret);
        SecretMessage { template: TemplateType::RecoveryValid, fields: vec![("recovery_url", url)] }
    }

    fn unknown_template(&self) -> TemplateType {
        TemplateType::RecoveryInvalid
    }

    fn sent(&self, flow: &mut Flow, address: &str) {
        challenge::choose_method_ui(flow, "link", Some(address));
        flow.ui.messages.push(text::recovery_link_sent());
    }

    async fn redeem(
        &self,
        svc: &Services,
        flow: &Flow,
        submit: &Submit,
        _info: &RequestInfo,
    ) -> Result<Redemption, Error> {
        Ok(match spend(svc, flow, submit).await? {
            Redeemed::Ok(record) => Redemption::Valid(record),
            Redeemed::Expired(record) => {
                Redemption::RestartInBrowser(text::recovery_expired(record.expires_at, svc.clock.now()))
            }
            Redeemed::Unknown | Redeemed::Used(_) => Redemption::RestartInBrowser(text::recovery_token_invalid()),
        })
    }
}

#[async_trait::async_trait(?Send)]
impl VerificationStrategy for Link {
    fn populate(&self, flow: &mut Flow, email: Option<&str>) {
        challenge::choose_method_ui(flow, "link", email);
    }

    fn message(&self, svc: &Services, flow: &Flow, secret: &str) -> SecretMessage {
        let url = challenge::submit_link(svc, FlowKind::Verification, flow.id, "token", secret);
        SecretMessage { template: TemplateType::VerificationValid, fields: vec![("verification_url", url)] }
    }

    fn unknown_template(&self) -> TemplateType {
        TemplateType::VerificationInvalid
    }

    fn sent(&self, flow: &mut Flow, address: &str, _resend: bool) {
        challenge::choose_method_ui(flow, "link", Some(address));
        flow.ui.messages.push(text::verification_link_sent());
    }

    async fn redeem(
        &self,
        svc: &Services,
        flow: &Flow,
        submit: &Submit,
        _info: &RequestInfo,
    ) -> Result<Redemption, Error> {
        Ok(match spend(svc, flow, submit).await? {
            Redeemed::Ok(record) => Redemption::Valid(record),
            Redeemed::Expired(record) => Redemption::Expired { at: record.expires_at, in_browser: true },
            Redeemed::Unknown | Redeemed::Used(_) => Redemption::RestartInBrowser(text::verification_token_invalid()),
        })
    }
}
