//! Code login (behaviour.md §5.3–5.5, §13.4): passwordless (`code.passwordless_enabled`) the
//! identifier step sends a code to the account's code addresses and the code signs it in; as
//! a second factor (`code.mfa_enabled`) the signed-in identity picks one of its addresses.
//! Each step is a state of the flow: `choose_method` → `sent_email` → `passed_challenge`.

use super::{Address, Code, TOO_OFTEN, USED, code_addresses, code_nodes, second_factor, send_codes, spend};
use crate::catalogue::{self as text, Text};
use crate::config::Config;
use crate::error::Error;
use crate::identity::{Identity, IdentityState};
use crate::selfservice::codes::Redeemed;
use crate::selfservice::flow::{Flow, State};
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, Stepped, check_csrf, csrf_outcome};
use crate::selfservice::strategy::{
    LoginForm, LoginStep, LoginStrategy, find_account, login_problem, normalise_identifier, second_factor_identity,
};
use crate::selfservice::ui::{self, Input, group};
use crate::session::{Aal, AuthMethod};
use serde_json::Value as Json;

fn answer(stepped: Stepped) -> LoginStep {
    LoginStep::Answer(Box::new(stepped))
}

/// The addresses a second-factor code may go to: the code credential's, else (with
/// `missing_credential_fallback_enabled`) the verifiable addresses. Sorted by value.
pub fn second_factor_addresses(config: &Config, identity: &Identity) -> Vec<Address> {
    let mut list = code_addresses(identity);
    if list.is_empty() && config.selfservice.methods.code.config.missing_credential_fallback_enabled {
        list = identity
            .verifiable_addresses
            .iter()
            .filter(|a| !a.value.is_empty())
            .map(|a| Address { value: a.value.clone(), via: a.via.clone() })
            .collect();
    }
    list.sort_by(|a, b| a.value.cmp(&b.value).then(a.via.cmp(&b.via)));
    list.dedup();
    list
}

/// The account a passwordless identifier names and the addresses its code goes to (`None`:
/// no such account, or one that cannot sign in with a code).
async fn resolve(svc: &Services, identifier: &str) -> Result<Option<(Identity, Vec<Address>)>, Error> {
    if let Some(identity) = find_account(svc, &["code"], identifier).await? {
        let all = code_addresses(&identity);
        // The address typed, when it is one of them; else every address of the account.
        let typed: Vec<Address> = all.iter().filter(|a| a.value == identifier).cloned().collect();
        let chosen = if typed.is_empty() { all } else { typed };
        return Ok((!chosen.is_empty()).then_some((identity, chosen)));
    }
    if !svc.config.selfservice.methods.code.config.missing_credential_fallback_enabled {
        return Ok(None);
    }
    let found = find_account(svc, &["password", "webauthn"], identifier).await?;
    Ok(found.map(|i| (i, vec![Address { value: identifier.to_string(), via: "email".into() }])))
}

/// Whether a submit asks for a (new) code rather than using one.
fn sending(flow: &Flow, submit: &Submit) -> bool {
    flow.state != State::SentEmail || submit.field("resend") == Some("code")
}

/// The identifier a submit names (`address` preferred by `prefer_address`), normalised.
fn submitted_identifier(submit: &Submit, prefer_address: bool) -> Option<String> {
    let (a, b) = if prefer_address { ("address", "identifier") } else { ("identifier", "address") };
    submit.trimmed(a).or_else(|| submit.trimmed(b)).map(normalise_identifier)
}

/// The flow once a code went out: the identifier kept hidden (`shown`: its label), the code
/// form, and 1010014.
fn sent(mut flow: Flow, identifier: &str, identifier_group: &'static str, shown: Option<Text>) -> Flow {
    let old = flow.ui.nodes.iter().find(|n| n.name() == "identifier").cloned();
    flow.ui.nodes.retain(|n| n.name() == "csrf_token");
    let node = match old {
        Some(mut n) => {
            n.attributes.insert("type".into(), "hidden".into());
            n.set_value(Some(identifier.into()));
            n
        }
        None => {
            let mut input = Input::new(identifier_group, "identifier", "hidden").value(identifier).required();
            if let Some(label) = shown {
                input = input.label(label);
            }
            input.node()
        }
    };
    flow.ui.nodes.push(node);
    flow.ui.nodes.extend(code_nodes(text::label_login_code()));
    flow.ui.reset_messages();
    flow.ui.messages.push(text::login_code_sent());
    flow.state = State::SentEmail;
    flow.active = Some("code".into());
    flow.data.identifier = Some(identifier.to_string());
    flow
}

/// A problem on the code form: the code emptied, `message` on `field` (flow level when empty).
fn code_problem(flow: Flow, field: &str, message: Text, tp: Option<Json>) -> LoginStep {
    answer(crate::selfservice::strategy::second_factor_problem(flow, "code", field, message, tp))
}

fn amr(svc: &Services, aal: Aal) -> AuthMethod {
    AuthMethod {
        method: "code".into(),
        aal: Some(aal),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    }
}

/// What a submitted code is worth for `identity`: `Ok(address)` it was sent to, or the
/// message to show.
async fn spend_login(
    svc: &Services,
    flow: &Flow,
    identity: &Identity,
    code: &str,
) -> Result<Result<String, Text>, Error> {
    Ok(match spend(svc, flow, code).await? {
        None => Err(text::generic(TOO_OFTEN)),
        Some(Redeemed::Unknown | Redeemed::Expired(_)) => Err(text::login_code_invalid()),
        Some(Redeemed::Used(_)) => Err(text::generic(USED)),
        Some(Redeemed::Ok(record)) if record.identity_id == Some(identity.id) => Ok(record.address_value.clone()),
        Some(Redeemed::Ok(_)) => Err(text::login_code_invalid()),
    })
}

impl Code {
    /// Passwordless, step one (and resend): the code goes to the account's addresses.
    async fn send_first_factor(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        let Some(identifier) = submitted_identifier(submit, false).or_else(|| flow.data.identifier.clone()) else {
            return answer(login_problem(flow, "", "identifier", text::required("identifier"), tp));
        };
        let (identity, addresses) = match resolve(svc, &identifier).await {
            Ok(Some(found)) => found,
            Ok(None) => return answer(login_problem(flow, &identifier, "", text::no_code_user(), tp)),
            Err(e) => return answer((flow, Outcome::Error(e))),
        };
        let flow = match send_codes(svc, flow, Some(&identity), None, &addresses, info, tp.clone()).await {
            Ok(f) => f,
            Err(stepped) => return answer(stepped),
        };
        let f = sent(flow, &identifier, group::DEFAULT, None);
        answer((f.clone(), Outcome::Form { flow: f, transient_payload: tp }))
    }

    /// Passwordless, step two: the code signs the account in.
    async fn use_first_factor(&self, svc: &Services, flow: Flow, submit: &Submit) -> LoginStep {
        let tp = submit.transient_payload();
        let Some(code) = submit.trimmed("code").map(str::to_string) else {
            return code_problem(flow, "code", text::required("code"), tp);
        };
        let Some(identifier) = submitted_identifier(submit, true).or_else(|| flow.data.identifier.clone()) else {
            return code_problem(flow, "identifier", text::required("identifier"), tp);
        };
        let identity = match resolve(svc, &identifier).await {
            Ok(Some((identity, _))) => identity,
            Ok(None) => return code_problem(flow, "", text::no_code_user(), tp),
            Err(e) => return answer((flow, Outcome::Error(e))),
        };
        let address = match spend_login(svc, &flow, &identity, &code).await {
            Ok(Ok(address)) => address,
            Ok(Err(message)) => return code_problem(flow, "", message, tp),
            Err(e) => return answer((flow, Outcome::Error(e))),
        };
        if identity.state != IdentityState::Active {
            return answer((flow, Outcome::Error(Error::IdentityDisabled)));
        }
        // The code reached the address: it is verified now.
        let identity = if identity.verifiable_addresses.iter().any(|a| a.value == address && !a.verified) {
            match svc.identities.mark_verified(identity.id, &address).await {
                Ok(i) => i,
                Err(e) => return answer((flow, Outcome::Error(e))),
            }
        } else {
            identity
        };
        // Kratos records every code login at aal2 when codes are a second factor.
        let aal = if svc.config.selfservice.methods.code.mfa_enabled { Aal::Aal2 } else { Aal::Aal1 };
        let mut flow = flow;
        flow.state = State::PassedChallenge;
        flow.active = Some("code".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc, aal) }
    }

    /// Second factor, step one: a code to one of the signed-in identity's addresses.
    async fn send_second_factor(
        &self,
        svc: &Services,
        flow: Flow,
        identity: &Identity,
        submit: &Submit,
        info: &RequestInfo,
    ) -> LoginStep {
        let tp = submit.transient_payload();
        let Some(value) = submitted_identifier(submit, true).or_else(|| flow.data.identifier.clone()) else {
            return answer(login_problem(flow, "", "address", text::required("address"), tp));
        };
        let candidates = second_factor_addresses(&svc.config, identity);
        let Some(address) = candidates.into_iter().find(|a| a.value == value) else {
            let message = if svc.config.selfservice.methods.code.config.missing_credential_fallback_enabled {
                text::unknown_code_address()
            } else {
                text::no_code_user()
            };
            return answer(login_problem(flow, "", "", message, tp));
        };
        let label = text::login_code_to(&address.value, &address.via);
        let flow =
            match send_codes(svc, flow, Some(identity), None, std::slice::from_ref(&address), info, tp.clone()).await {
                Ok(f) => f,
                Err(stepped) => return answer(stepped),
            };
        let f = sent(flow, &address.value, group::CODE, Some(label));
        answer((f.clone(), Outcome::Form { flow: f, transient_payload: tp }))
    }

    /// Second factor, step two.
    async fn use_second_factor(&self, svc: &Services, flow: Flow, identity: Identity, submit: &Submit) -> LoginStep {
        let tp = submit.transient_payload();
        let Some(code) = submit.trimmed("code").map(str::to_string) else {
            return code_problem(flow, "code", text::required("code"), tp);
        };
        match spend_login(svc, &flow, &identity, &code).await {
            Ok(Ok(_)) => {}
            Ok(Err(message)) => return code_problem(flow, "", message, tp),
            Err(e) => return answer((flow, Outcome::Error(e))),
        }
        let mut flow = flow;
        flow.state = State::PassedChallenge;
        flow.active = Some("code".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc, Aal::Aal2) }
    }
}

#[async_trait::async_trait(?Send)]
impl LoginStrategy for Code {
    fn aal(&self, config: &Config) -> Aal {
        if second_factor(config) { Aal::Aal2 } else { Aal::Aal1 }
    }

    fn responsible(&self, svc: &Services, flow: &Flow) -> bool {
        if flow.data.requested_aal.unwrap_or(Aal::Aal1) == Aal::Aal2 {
            second_factor(&svc.config)
        } else {
            svc.config.selfservice.methods.code.passwordless_enabled
        }
    }

    fn claims(&self, submit: &Submit) -> bool {
        submit.field("address").is_some()
    }

    fn sole_factor_submit(&self) -> Option<&'static str> {
        Some("code")
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        let code = &svc.config.selfservice.methods.code;
        let send = || ui::submit_button(group::CODE, "code", text::login_with_code());
        match form {
            LoginForm::FirstFactor if code.passwordless_enabled => {
                crate::selfservice::strategy::ensure_identifier(svc, flow, None);
                flow.ui.nodes.push(send());
            }
            LoginForm::Refresh { identity } if code.passwordless_enabled => {
                if let Some(a) = code_addresses(identity).first() {
                    if flow.ui.node_mut("identifier", None).is_none() {
                        flow.ui
                            .nodes
                            .push(Input::new(group::DEFAULT, "identifier", "hidden").value(a.value.clone()).node());
                    }
                    flow.ui.nodes.push(send());
                }
            }
            LoginForm::Credentials { identity } if code.passwordless_enabled => {
                let has = identity
                    .is_some_and(|i| !code_addresses(i).is_empty() || code.config.missing_credential_fallback_enabled);
                if has || svc.config.security.account_enumeration.mitigate {
                    flow.ui.nodes.push(send());
                }
            }
            LoginForm::SecondFactor { identity } if second_factor(&svc.config) => {
                for a in second_factor_addresses(&svc.config, identity) {
                    let label = text::login_code_to(&a.value, &a.via);
                    flow.ui.nodes.push(Input::new(group::CODE, "address", "submit").value(a.value).label(label).node());
                }
            }
            _ => {}
        }
    }

    async fn started(&self, svc: &Services, flow: Flow, identity: &Identity, info: &RequestInfo) -> Flow {
        // The code goes out at once when it is the identity's only second factor, to its only
        // address (Kratos' FastLogin2FA).
        let others = [group::TOTP, group::LOOKUP_SECRET, group::WEBAUTHN];
        let addresses = second_factor_addresses(&svc.config, identity);
        if !second_factor(&svc.config)
            || addresses.len() != 1
            || flow.ui.nodes.iter().any(|n| others.contains(&n.group.as_str()))
        {
            return flow;
        }
        let address = &addresses[0];
        let label = text::login_code_to(&address.value, &address.via);
        match send_codes(svc, flow, Some(identity), None, std::slice::from_ref(address), info, None).await {
            Ok(f) => sent(f, &address.value, group::CODE, Some(label)),
            // Not sent (a send limit): the address button stays.
            Err((f, _)) => f,
        }
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return answer(csrf_outcome(flow, failure, tp));
        }
        if flow.state == State::PassedChallenge {
            return answer(login_problem(flow, "", "", text::no_strategy(), tp));
        }
        if flow.data.requested_aal.unwrap_or(Aal::Aal1) == Aal::Aal2 {
            let identity = match second_factor_identity(svc, &flow, info).await {
                Ok(i) => i,
                Err(e) => return answer((flow, Outcome::Error(e))),
            };
            return if sending(&flow, submit) {
                self.send_second_factor(svc, flow, &identity, submit, info).await
            } else {
                self.use_second_factor(svc, flow, identity, submit).await
            };
        }
        if sending(&flow, submit) {
            self.send_first_factor(svc, flow, submit, info).await
        } else {
            self.use_first_factor(svc, flow, submit).await
        }
    }
}
