//! Identifier-first login (`selfservice.flows.login.style = "identifier_first"`): step one
//! asks only for the identifier and looks the account up; the login flow then shows step two,
//! what that account signs in with (every first factor populates it), or — with account
//! enumeration mitigated — the same form for an account that does not exist.

use super::{LoginForm, LoginStep, LoginStrategy, Method, find_account, login_problem};
use crate::catalogue as text;
use crate::config::{Config, LoginStyle};
use crate::selfservice::flow::Flow;
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome};
use crate::selfservice::ui::{self, Input, group};
use crate::session::Aal;

/// The identifier-first step of login.
pub struct IdentifierFirst;

impl Method for IdentifierFirst {
    fn id(&self) -> &'static str {
        "identifier_first"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.flows.login.style == LoginStyle::IdentifierFirst
    }

    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }
}

#[async_trait::async_trait(?Send)]
impl LoginStrategy for IdentifierFirst {
    fn aal(&self, _config: &crate::config::Config) -> Aal {
        Aal::Aal1
    }

    fn responsible(&self, _svc: &Services, flow: &Flow) -> bool {
        !flow.data.refresh
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        if let LoginForm::Identification = form {
            let (_, schema) = svc.schema_of(flow);
            flow.ui.nodes.push(
                Input::new(group::IDENTIFIER_FIRST, "identifier", "text")
                    .value("")
                    .required()
                    .autocomplete("username webauthn")
                    .label(ui::identifier_label(&schema))
                    .node(),
            );
            flow.ui.nodes.push(ui::submit_button(group::IDENTIFIER_FIRST, "identifier_first", text::label_continue()));
        }
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return LoginStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let Some(identifier) = submit.field("identifier").map(str::to_string) else {
            return LoginStep::Answer(Box::new(login_problem(
                flow,
                "",
                "identifier",
                text::required("identifier"),
                tp,
            )));
        };
        // Password and WebAuthn identifiers first, then code addresses.
        let found = find_account(svc, &["password", "webauthn", "code"], &identifier).await;
        let identity = match found {
            Ok(i) => i,
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        let mut f = flow;
        f.ui.reset_messages();
        LoginStep::Identified { flow: f, identity, identifier }
    }
}
