//! The `code` method for recovery and verification: a 6-digit code is e-mailed, and the user
//! types it into the flow (at most `code.max_submissions` tries per flow).

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
use crate::selfservice::step::{RequestInfo, check_csrf};

/// The code method.
pub struct Code;

/// What a code submit says when there are too many, or the code was used.
const TOO_OFTEN: &str = "The request was submitted too often. Please request another code.";
const USED: &str = "The code was already used. Please request another code.";

impl Method for Code {
    fn id(&self) -> &'static str {
        "code"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.code.enabled
    }

    fn recovery(&self) -> Option<&dyn RecoveryStrategy> {
        Some(self)
    }

    fn verification(&self) -> Option<&dyn VerificationStrategy> {
        Some(self)
    }
}

/// Counts this submit and spends the code if it is good.
async fn spend(svc: &Services, flow: &Flow, submit: &Submit) -> Result<Result<Redeemed, Redemption>, Error> {
    if challenge::over_submission_limit(svc, flow).await? {
        return Ok(Err(Redemption::Retry(TOO_OFTEN)));
    }
    let code = submit.trimmed("code").unwrap_or_default();
    Ok(Ok(codes::redeem(svc, flow.id, "code", code).await?))
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
        Ok(match spend(svc, flow, submit).await? {
            Err(r) => r,
            Ok(Redeemed::Unknown | Redeemed::Expired(_)) => Redemption::Invalid(text::recovery_code_invalid()),
            Ok(Redeemed::Used(_)) => Redemption::Retry(USED),
            Ok(Redeemed::Ok(record)) => Redemption::Valid(record),
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
        Ok(match spend(svc, flow, submit).await? {
            Err(r) => r,
            Ok(Redeemed::Unknown) => Redemption::Invalid(text::verification_code_invalid()),
            Ok(Redeemed::Expired(record)) => Redemption::Expired { at: record.expires_at, in_browser: false },
            Ok(Redeemed::Used(_)) => Redemption::Retry(USED),
            Ok(Redeemed::Ok(record)) => Redemption::Valid(record),
        })
    }
}
