//! The `profile` method: the traits. In two-step registration (`profile_first`) it is step
//! one — valid traits lead to the credential step, `screen=previous` back; in settings it
//! changes the traits (changes to identifiers or addresses need a privileged session).

use super::{Method, RegistrationForm, RegistrationStep, RegistrationStrategy, SettingsStep, SettingsStrategy};
use crate::catalogue as text;
use crate::config::Config;
use crate::identity::Identity;
use crate::selfservice::flow::Flow;
use crate::selfservice::form::{Submit, coerce_traits, drop_empty_strings, submitted_traits};
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome, show};
use crate::selfservice::traits;
use crate::selfservice::ui::{self, group};
use serde_json::{Value as Json, json};

/// The profile method.
pub struct Profile;

impl Method for Profile {
    fn id(&self) -> &'static str {
        "profile"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.profile.enabled
    }

    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        Some(self)
    }
}

#[async_trait::async_trait(?Send)]
impl RegistrationStrategy for Profile {
    fn handles(&self, method: &str) -> bool {
        matches!(method, "profile" | "profile:back")
    }

    fn responsible(&self, svc: &Services) -> bool {
        svc.config.selfservice.flows.registration.two_step()
    }

    fn populate(&self, _svc: &Services, flow: &mut Flow, form: RegistrationForm) {
        if form == RegistrationForm::Profile {
            flow.ui.nodes.push(ui::submit_button(group::PROFILE, "profile", text::register()));
        }
    }

    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep {
        let tp = submit.transient_payload();
        let (_, schema) = svc.schema_of(&flow);
        let submitted = submitted_traits(submit, &schema);
        // `screen=previous`: back to the traits form (no CSRF check, as Kratos).
        if submit.field("screen") == Some("previous") || submit.method() == "profile:back" {
            let traits = submitted.or_else(|| flow.data.traits.clone()).unwrap_or_else(|| json!({}));
            return RegistrationStep::ShowProfile { flow, traits };
        }
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return RegistrationStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let traits = submitted.unwrap_or_else(|| json!({}));
        let mut f = flow;
        if traits::validate(svc, &mut f, &traits).is_none() {
            return RegistrationStep::Answer(Box::new((f.clone(), Outcome::Form { flow: f, transient_payload: tp })));
        }
        RegistrationStep::ShowCredentials { flow: f, traits }
    }
}

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for Profile {
    fn populate(&self, _svc: &Services, flow: &mut Flow, _identity: &Identity, traits: &Json, schema: &Json) {
        flow.ui.nodes.extend(ui::trait_nodes(schema, group::PROFILE));
        flow.ui.fill_traits(traits);
        flow.ui.nodes.push(ui::submit_button(group::PROFILE, "profile", text::label_save()));
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
        let to_ui = info.html_for(flow.flow_type);
        let mut f = flow;
        let schema = svc.schemas.get(&identity.schema_id).map(|s| s.raw.clone()).unwrap_or(Json::Null);
        let Some(mut new_traits) =
            submit.body.get("traits").cloned().filter(|t| t.as_object().is_some_and(|o| !o.is_empty()))
        else {
            f.ui.reset_messages();
            f.ui.messages.push(text::generic("Did not receive any value changes."));
            return SettingsStep::Answer(Box::new(show(f, false, to_ui)));
        };
        if submit.from_form {
            drop_empty_strings(&mut new_traits);
            coerce_traits(&schema, &mut new_traits);
        }
        let new = match svc.schemas.validate_traits(&identity.schema_id, &new_traits) {
            Ok(x) => x,
            Err(e) => {
                f.ui.reset_messages();
                f.ui.fill_traits(&new_traits);
                traits::show_problem(&mut f, e);
                return SettingsStep::Answer(Box::new(show(f, false, to_ui)));
            }
        };
        let old = svc.schemas.validate_traits(&identity.schema_id, &identity.traits).unwrap_or_default();
        if !old.same_identifiers(&new) && !privileged {
            return SettingsStep::RefreshRequired(f);
        }
        identity.traits = new_traits;
        SettingsStep::Save { flow: f, identity: Box::new(identity), proved: None }
    }
}
