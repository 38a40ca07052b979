//! Code registration (behaviour.md §6.3): the traits are submitted with `method=code`, a code
//! goes to every address the schema marks `credentials.code.identifier`, and the code with
//! the same traits creates the identity, its address verified.

use super::{Address, Code, TOO_OFTEN, USED, code_nodes, send_codes, spend};
use crate::catalogue::{self as text, Text};
use crate::identity::{Identity, VerifiableAddress};
use crate::selfservice::codes::Redeemed;
use crate::selfservice::flow::{Flow, State, registration::two_step};
use crate::selfservice::form::{Submit, submitted_traits};
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome};
use crate::selfservice::strategy::{RegistrationForm, RegistrationStep, RegistrationStrategy};
use crate::selfservice::traits;
use crate::selfservice::ui::{self, Input, group};
use serde_json::{Value as Json, json};
use uuid::Uuid;

fn form(flow: Flow, transient_payload: Option<Json>) -> RegistrationStep {
    RegistrationStep::Answer(Box::new((flow.clone(), Outcome::Form { flow, transient_payload })))
}

/// The form again with `message` on `field` (flow level when empty), the code emptied.
fn problem(mut flow: Flow, field: &str, message: Text, tp: Option<Json>) -> RegistrationStep {
    flow.ui.reset_messages();
    if let Some(n) = flow.ui.node_mut("code", None) {
        n.set_value(Some("".into()));
    }
    flow.ui.add_field_message(field, message);
    form(flow, tp)
}

/// The addresses the traits name for codes (sorted, unique).
fn addresses(extracted: &crate::schema::Extracted) -> Vec<Address> {
    let mut list = extracted.code_identifiers.clone();
    list.sort_by(|a, b| a.value.cmp(&b.value).then(a.via.cmp(&b.via)));
    list.dedup();
    list
}

impl Code {
    /// Step one (and resend): the traits are valid; a code goes to each of their addresses.
    async fn send_registration(
        &self,
        svc: &Services,
        flow: Flow,
        traits: Json,
        submit: &Submit,
        info: &RequestInfo,
    ) -> RegistrationStep {
        let tp = submit.transient_payload();
        let (_, schema) = svc.schema_of(&flow);
        let mut f = flow;
        let Some(extracted) = traits::validate(svc, &mut f, &traits) else { return form(f, tp) };
        let to = addresses(&extracted);
        if to.is_empty() {
            f.ui.reset_messages();
            f.ui.fill_traits(&traits);
            f.ui.messages.push(text::identifier_missing());
            return form(f, tp);
        }
        let mut f = match send_codes(svc, f, None, Some(&traits), &to, info, tp.clone()).await {
            Ok(f) => f,
            Err(stepped) => return RegistrationStep::Answer(Box::new(stepped)),
        };
        // The traits stay, hidden; the code form replaces every method's inputs.
        f.ui.reset_messages();
        f.ui.nodes.retain(|n| n.group == group::DEFAULT && n.input_type() != "submit");
        for n in &mut f.ui.nodes {
            if n.kind == "input" && n.name() != "csrf_token" {
                n.attributes.insert("type".into(), "hidden".into());
            }
        }
        f.ui.fill_traits(&traits);
        f.ui.nodes.extend(code_nodes(text::label_registration_code()));
        if two_step(&svc.config) {
            f.ui.nodes.push(
                Input::new(group::PROFILE, "screen", "submit")
                    .value("credential-selection")
                    .label(text::registration_back())
                    .node(),
            );
        }
        f.ui.messages.push(text::registration_code_sent());
        f.ui.sort_registration(&schema);
        f.state = State::SentEmail;
        f.active = Some("code".into());
        f.data.traits = Some(traits);
        form(f, tp)
    }

    /// Step two: the code (and the same traits) create the identity.
    async fn use_registration_code(
        &self,
        svc: &Services,
        flow: Flow,
        submitted: Option<Json>,
        submit: &Submit,
    ) -> RegistrationStep {
        let tp = submit.transient_payload();
        let Some(code) = submit.trimmed("code").map(str::to_string) else {
            return problem(flow, "code", text::required("code"), tp);
        };
        let stored = flow.data.traits.clone().unwrap_or_else(|| json!({}));
        if submitted.as_ref().is_some_and(|t| *t != stored) {
            return problem(flow, "", text::traits_mismatch(), tp);
        }
        let mut f = flow;
        let Some(extracted) = traits::validate(svc, &mut f, &stored) else { return form(f, tp) };
        let to = addresses(&extracted);
        let used = match spend(svc, &f, &code).await {
            Ok(None) => return problem(f, "", text::generic(TOO_OFTEN), tp),
            Ok(Some(Redeemed::Ok(record))) => to.into_iter().find(|a| a.value == record.address_value),
            Ok(Some(Redeemed::Used(_))) => return problem(f, "", text::generic(USED), tp),
            Ok(Some(Redeemed::Unknown | Redeemed::Expired(_))) => None,
            Err(e) => return RegistrationStep::Answer(Box::new((f, Outcome::Error(e)))),
        };
        let Some(address) = used else {
            return problem(f, "", text::registration_code_invalid(), tp);
        };
        let (schema_id, _) = svc.schema_of(&f);
        let now = svc.clock.now();
        // The code reached this address: it starts verified (kept if the schema lists it).
        let verified = VerifiableAddress {
            id: Uuid::now_v7(),
            value: address.value.clone(),
            verified: true,
            via: address.via.clone(),
            status: "completed".into(),
            verified_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        let mut identity = Identity::signing_up(schema_id, stored, now);
        identity.verifiable_addresses.push(verified);
        f.state = State::PassedChallenge;
        let identifiers = extracted.code_identifiers.iter().map(|a| a.value.clone()).collect();
        RegistrationStep::Create { flow: f, identity: Box::new(identity), identifiers }
    }
}

#[async_trait::async_trait(?Send)]
impl RegistrationStrategy for Code {
    fn handles(&self, method: &str) -> bool {
        method == "code"
    }

    fn responsible(&self, svc: &Services) -> bool {
        svc.config.selfservice.methods.code.passwordless_enabled
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: RegistrationForm) {
        if !svc.config.selfservice.methods.code.passwordless_enabled {
            return;
        }
        match form {
            RegistrationForm::OneStep | RegistrationForm::Credentials => {
                flow.ui.nodes.retain(|n| n.group != group::CODE);
                flow.ui.nodes.push(ui::submit_button(group::CODE, "code", text::register_with_code()));
            }
            RegistrationForm::Profile => {}
        }
    }

    async fn register(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> RegistrationStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return RegistrationStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let (_, schema) = svc.schema_of(&flow);
        let submitted = submitted_traits(submit, &schema);
        if submit.field("screen") == Some("credential-selection") {
            let traits = submitted.or_else(|| flow.data.traits.clone()).unwrap_or_else(|| json!({}));
            let mut f = flow;
            f.state = State::ChooseMethod;
            return RegistrationStep::ShowCredentials { flow: f, traits };
        }
        if flow.state == State::SentEmail && submit.field("resend") != Some("code") {
            return self.use_registration_code(svc, flow, submitted, submit).await;
        }
        let traits = submitted.or_else(|| flow.data.traits.clone()).unwrap_or_else(|| json!({}));
        self.send_registration(svc, flow, traits, submit, info).await
    }
}
