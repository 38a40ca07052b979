//! Password settings: a new password (different from the current one, under the policy)
//! replaces the stored hash; it needs a privileged session.

use super::{Password, hashed_password, password_node, submit};
use crate::catalogue::{self as text, Text};
use crate::error::Error;
use crate::identity::Identity;
use crate::selfservice::flow::Flow;
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, show};
use crate::selfservice::strategy::{SettingsStep, SettingsStrategy};
use serde_json::{Value as Json, json};

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for Password {
    fn populate(&self, _svc: &Services, flow: &mut Flow, _identity: &Identity, _traits: &Json, _schema: &Json) {
        flow.ui.nodes.push(password_node("new-password"));
        flow.ui.nodes.push(submit(text::label_save()));
    }

    async fn update(
        &self,
        svc: &Services,
        flow: Flow,
        mut identity: Identity,
        submit: &Submit,
        info: &RequestInfo,
        privileged: bool,
    ) -> SettingsStep {
        if !privileged {
            return SettingsStep::RefreshRequired(flow);
        }
        let to_ui = info.html_for(flow.flow_type);
        let mut f = flow;
        let Some(pw) = submit.field("password").map(str::to_string) else {
            f.ui.reset_messages();
            f.ui.add_field_message("password", text::required("password"));
            return SettingsStep::Answer(Box::new(show(f, false, to_ui)));
        };
        let problem = |mut f: Flow, message: Text| {
            f.ui.reset_messages();
            f.ui.clear_passwords();
            f.ui.add_field_message("password", message);
            SettingsStep::Answer(Box::new(show(f, false, to_ui)))
        };
        if let Some(old) = hashed_password(&identity)
            && svc.identities.hashes.verify(pw.clone().into_bytes(), old).await.unwrap_or(false)
        {
            return problem(f, text::password_same_as_old());
        }
        let identifiers: Vec<String> =
            identity.credentials.get("password").map(|c| c.identifiers.clone()).unwrap_or_default();
        let policy = &svc.config.selfservice.methods.password.config;
        if let Some(message) =
            super::policy::check(policy, svc.config.hashers.algorithm, &self.breaches, &identifiers, &pw).await
        {
            return problem(f, message);
        }
        let len = pw.len();
        let hashed = match svc.identities.hashes.hash(pw.into_bytes()).await {
            Ok(h) => h,
            Err(crate::hash::HashError::TooLong) => {
                return problem(f, text::password_too_long(super::policy::BCRYPT_MAX, len));
            }
            Err(e) => return SettingsStep::Answer(Box::new((f, Outcome::Error(Error::from(e))))),
        };
        let now = svc.clock.now();
        let credential = identity
            .credentials
            .entry("password".into())
            .or_insert_with(|| crate::identity::service::new_credential("password", now));
        credential.config = json!({ "hashed_password": hashed });
        credential.updated_at = now;
        SettingsStep::Save { flow: f, identity: Box::new(identity), proved: None }
    }
}
