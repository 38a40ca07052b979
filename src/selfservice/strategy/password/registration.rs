//! Password registration: traits and a password (checked against the policy, then hashed)
//! become a new identity.

use super::{Password, password_node, submit};
use crate::catalogue as text;
use crate::error::Error;
use crate::identity::Identity;
use crate::identity::service::new_credential;
use crate::selfservice::flow::Flow;
use crate::selfservice::form::{Submit, submitted_traits};
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, Stepped, check_csrf, csrf_outcome};
use crate::selfservice::strategy::{RegistrationForm, RegistrationStep, RegistrationStrategy};
use crate::selfservice::traits;
use crate::selfservice::ui::group;
use serde_json::{Value as Json, json};

fn form(flow: Flow, transient_payload: Option<Json>) -> RegistrationStep {
    let stepped: Stepped = (flow.clone(), Outcome::Form { flow, transient_payload });
    RegistrationStep::Answer(Box::new(stepped))
}

#[async_trait::async_trait(?Send)]
impl RegistrationStrategy for Password {
    fn handles(&self, method: &str) -> bool {
        method == "password"
    }

    fn populate(&self, _svc: &Services, flow: &mut Flow, form: RegistrationForm) {
        match form {
            RegistrationForm::OneStep => {
                flow.ui.nodes.push(password_node("new-password"));
                flow.ui.nodes.push(submit(text::register()));
            }
            RegistrationForm::Credentials => {
                flow.ui.nodes.retain(|n| n.group != group::PASSWORD);
                flow.ui.nodes.push(password_node("new-password"));
                flow.ui.nodes.push(submit(text::register()));
            }
            RegistrationForm::Profile => {}
        }
    }

    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return RegistrationStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let (schema_id, schema) = svc.schema_of(&flow);
        let traits =
            submitted_traits(submit, &schema).or_else(|| flow.data.traits.clone()).unwrap_or_else(|| json!({}));
        let mut f = flow;
        let Some(pw) = submit.field("password").map(str::to_string) else {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            f.ui.add_field_message("password", text::required("password"));
            f.ui.sort_registration(&schema);
            return form(f, tp);
        };
        let Some(extracted) = traits::validate(svc, &mut f, &traits) else { return form(f, tp) };
        if extracted.password_identifiers.is_empty() {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            f.ui.clear_passwords();
            f.ui.messages.push(text::identifier_missing());
            f.ui.sort_registration(&schema);
            return form(f, tp);
        }
        let policy = &svc.config.selfservice.methods.password.config;
        if let Some(problem) = super::policy::check(
            policy,
            svc.config.hashers.algorithm,
            &self.breaches,
            &extracted.password_identifiers,
            &pw,
        )
        .await
        {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            f.ui.clear_passwords();
            f.ui.add_field_message("password", problem);
            f.ui.sort_registration(&schema);
            return form(f, tp);
        }
        let pw_len = pw.len();
        let hashed = match svc.identities.hashes.hash(pw.into_bytes()).await {
            Ok(h) => h,
            Err(crate::hash::HashError::TooLong) => {
                f.ui.reset_messages();
                f.ui.add_field_message("password", text::password_too_long(super::policy::BCRYPT_MAX, pw_len));
                return form(f, tp);
            }
            Err(e) => return RegistrationStep::Answer(Box::new((f, Outcome::Error(Error::from(e))))),
        };
        let now = svc.clock.now();
        let mut credential = new_credential("password", now);
        credential.config = json!({ "hashed_password": hashed });
        let mut identity = Identity::signing_up(schema_id, traits, now);
        identity.credentials.insert("password".into(), credential);
        RegistrationStep::Create { flow: f, identity: Box::new(identity), identifiers: extracted.password_identifiers }
    }
}
