//! The `lookup_secret` method (behaviour.md §13.4, §5.5): twelve one-time backup codes as a
//! second factor. Settings generate codes (shown, kept in the flow until confirmed), confirm,
//! reveal or disable them; login at aal2 spends one code.

use super::{
    LoginForm, LoginStep, LoginStrategy, Method, SettingsStep, SettingsStrategy, second_factor_identity,
    second_factor_problem,
};
use crate::catalogue::{self as text, Text};
use crate::config::Config;
use crate::error::Error;
use crate::identity::Identity;
use crate::selfservice::brute_force::Verdict;
use crate::selfservice::flow::Flow;
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome, show};
use crate::selfservice::ui::{self, Input, group};
use crate::session::{Aal, AuthMethod};
use chrono::{DateTime, Timelike, Utc};
use rand::Rng;
use serde_json::{Value as Json, json};

/// How many codes a set has.
pub const CODES: usize = 12;
/// The internal-context key of codes generated but not confirmed.
const REGENERATED: &str = "lookup_secret_regenerated";
/// The settings nodes this method shows (removed before showing another state).
const SETTINGS_NODES: [&str; 5] = [
    "lookup_secret_reveal",
    "lookup_secret_regenerate",
    "lookup_secret_codes",
    "lookup_secret_confirm",
    "lookup_secret_disable",
];

/// The lookup secret method.
pub struct LookupSecret;

impl Method for LookupSecret {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.lookup_secret.enabled
    }

    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        Some(self)
    }
}

/// One stored code.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub code: String,
    pub used_at: Option<DateTime<Utc>>,
}

/// The codes in a credential config (`recovery_codes`) or an internal-context list.
pub fn parse_codes(list: Option<&Json>) -> Vec<Code> {
    list.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let code = c.get("code")?.as_str()?.to_string();
                    let used_at = c
                        .get("used_at")
                        .and_then(Json::as_str)
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc))
                        .filter(|t| t.timestamp() > 0);
                    Some(Code { code, used_at })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The codes as Kratos stores them (`used_at` null while unused).
pub fn codes_json(codes: &[Code]) -> Json {
    Json::Array(
        codes
            .iter()
            .map(|c| {
                let used = c.used_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                json!({ "code": c.code, "used_at": used })
            })
            .collect(),
    )
}

/// The identity's stored codes.
fn stored(identity: &Identity) -> Vec<Code> {
    identity.credentials.get("lookup_secret").map(|c| parse_codes(c.config.get("recovery_codes"))).unwrap_or_default()
}

/// Twelve new codes: eight lower-case letters and digits each.
fn generate() -> Vec<Code> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..CODES)
        .map(|_| Code {
            code: (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect(),
            used_at: None,
        })
        .collect()
}

/// The `lookup_secret_codes` text node: every code, used ones as "used".
fn codes_node(codes: &[Code]) -> ui::Node {
    let shown: Vec<String> =
        codes.iter().map(|c| if c.used_at.is_some() { "used".to_string() } else { c.code.clone() }).collect();
    let secrets: Vec<Text> = codes
        .iter()
        .map(|c| match c.used_at {
            Some(at) => text::settings_lookup_used(at),
            None => text::settings_lookup_secret(&c.code),
        })
        .collect();
    ui::text(
        group::LOOKUP_SECRET,
        "lookup_secret_codes",
        text::settings_lookup_list(&shown, secrets),
        text::settings_lookup_list_label(),
    )
}

fn button(name: &str, label: Text) -> ui::Node {
    Input::new(group::LOOKUP_SECRET, name, "submit").value("true").label(label).node()
}

fn amr(svc: &Services) -> AuthMethod {
    AuthMethod {
        method: "lookup_secret".into(),
        aal: Some(Aal::Aal2),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    }
}

/// What spending a code found.
enum Spent {
    Ok(Box<Identity>),
    Problem(Text),
}

/// Marks `code` used on the identity (compare-and-set; re-read when another write won).
async fn spend(svc: &Services, identity: Identity, code: &str) -> Result<Spent, Error> {
    let mut identity = identity;
    for _ in 0..3 {
        let mut codes = stored(&identity);
        if codes.is_empty() {
            return Ok(Spent::Problem(text::no_lookup()));
        }
        let Some(found) = codes.iter_mut().find(|c| c.code == code) else {
            return Ok(Spent::Problem(text::lookup_invalid()));
        };
        if found.used_at.is_some() {
            return Ok(Spent::Problem(text::lookup_used()));
        }
        let now = svc.clock.now();
        found.used_at = Some(now.with_nanosecond(0).unwrap_or(now));
        if let Some(c) = identity.credentials.get_mut("lookup_secret") {
            c.config = json!({ "recovery_codes": codes_json(&codes) });
            c.updated_at = now;
        }
        match svc.identities.save_changed(&mut identity).await {
            Ok(()) => return Ok(Spent::Ok(Box::new(identity))),
            Err(Error::Stale) => identity = svc.identities.get(identity.id).await?,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Stale)
}

#[async_trait::async_trait(?Send)]
impl LoginStrategy for LookupSecret {
    fn aal(&self, _config: &crate::config::Config) -> Aal {
        Aal::Aal2
    }

    fn responsible(&self, _svc: &Services, flow: &Flow) -> bool {
        flow.data.requested_aal == Some(Aal::Aal2)
    }

    fn populate(&self, _svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        let LoginForm::SecondFactor { identity } = form else { return };
        if !identity.credentials.contains_key("lookup_secret") {
            return;
        }
        flow.ui.nodes.push(
            Input::new(group::LOOKUP_SECRET, "lookup_secret", "text")
                .value("")
                .required()
                .label(text::login_lookup_label())
                .node(),
        );
        flow.ui.nodes.push(ui::submit_button(group::LOOKUP_SECRET, "lookup_secret", text::login_lookup()));
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return LoginStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let problem = |flow: Flow, field: &str, message: Text| {
            LoginStep::Answer(Box::new(second_factor_problem(flow, "lookup_secret", field, message, tp.clone())))
        };
        let Some(code) = submit.trimmed("lookup_secret").map(str::to_string) else {
            return problem(flow, "lookup_secret", text::required("lookup_secret"));
        };
        let identity = match second_factor_identity(svc, &flow, info).await {
            Ok(i) => i,
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        match svc.brute_force.reserve_second_factor(identity.id).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Locked(until)) => {
                return problem(flow, "", text::locked_out(svc.brute_force.retry_after(until)));
            }
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::from(e))))),
        }
        let identity = match spend(svc, identity, &code).await {
            Ok(Spent::Ok(identity)) => *identity,
            Ok(Spent::Problem(message)) => return problem(flow, "", message),
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        svc.brute_force.second_factor_succeeded(identity.id).await;
        let mut flow = flow;
        flow.active = Some("lookup_secret".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc) }
    }
}

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for LookupSecret {
    fn claims(&self, submit: &Submit) -> bool {
        ["lookup_secret_confirm", "lookup_secret_reveal", "lookup_secret_disable", "lookup_secret_regenerate"]
            .iter()
            .any(|f| submit.flag(f))
    }

    fn populate(&self, _svc: &Services, flow: &mut Flow, identity: &Identity, _traits: &Json, _schema: &Json) {
        if stored(identity).is_empty() {
            flow.ui.nodes.push(button("lookup_secret_regenerate", text::settings_lookup_regenerate()));
        } else {
            flow.ui.nodes.push(button("lookup_secret_reveal", text::settings_lookup_reveal()));
            flow.ui.nodes.push(button("lookup_secret_disable", text::settings_lookup_disable()));
        }
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
        let (confirm, reveal, disable, regenerate) = (
            submit.flag("lookup_secret_confirm"),
            submit.flag("lookup_secret_reveal"),
            submit.flag("lookup_secret_disable"),
            submit.flag("lookup_secret_regenerate"),
        );
        let mut f = flow;
        f.ui.reset_messages();
        if !(confirm || reveal || disable || regenerate) {
            f.ui.messages.push(text::no_settings_strategy());
            return SettingsStep::Answer(Box::new(show(f, false, to_ui)));
        }
        if !privileged {
            return SettingsStep::RefreshRequired(f);
        }
        let refuse = |mut f: Flow, reason: &str| {
            f.ui.messages.push(text::generic(reason));
            SettingsStep::Answer(Box::new(show(f, false, to_ui)))
        };
        let now = svc.clock.now();
        if confirm {
            let codes = parse_codes(svc.kept_secret(&f, REGENERATED).as_ref());
            if codes.len() != CODES {
                return refuse(f, "You must (re-)generate recovery backup codes before you can save them.");
            }
            let mut credential = crate::identity::service::new_credential("lookup_secret", now);
            credential.identifiers = vec![identity.id.to_string()];
            credential.config = json!({ "recovery_codes": codes_json(&codes) });
            identity.credentials.insert("lookup_secret".into(), credential);
            f.data.internal.remove(REGENERATED);
            return SettingsStep::Save { flow: f, identity: Box::new(identity), proved: Some(amr(svc)) };
        }
        if reveal {
            let codes = stored(&identity);
            if codes.is_empty() {
                return refuse(f, "Can not reveal lookup codes because you have none.");
            }
            f.ui.nodes.retain(|n| !SETTINGS_NODES.contains(&n.name()));
            f.ui.nodes.push(codes_node(&codes));
            f.ui.nodes.push(button("lookup_secret_disable", text::settings_lookup_disable()));
            f.ui.nodes.push(button("lookup_secret_regenerate", text::settings_lookup_regenerate()));
            f.data.internal.insert("lookup_secret_revealed".into(), true.into());
            return SettingsStep::Answer(Box::new(show(f, true, to_ui)));
        }
        if disable {
            identity.credentials.remove("lookup_secret");
            f.data.internal.remove(REGENERATED);
            f.data.internal.insert("lookup_secret_revealed".into(), false.into());
            return SettingsStep::Save { flow: f, identity: Box::new(identity), proved: None };
        }
        let codes = generate();
        f.ui.nodes.retain(|n| !SETTINGS_NODES.contains(&n.name()));
        f.ui.nodes.push(codes_node(&codes));
        f.ui.nodes.push(button("lookup_secret_confirm", text::settings_lookup_confirm()));
        svc.keep_secret(&mut f, REGENERATED, &codes_json(&codes));
        SettingsStep::Answer(Box::new(show(f, true, to_ui)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_twelve_distinct_lowercase_alphanumerics() {
        let codes = generate();
        assert_eq!(codes.len(), CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.code.len() == 8 && c.code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        );
        let mut distinct: Vec<&str> = codes.iter().map(|c| c.code.as_str()).collect();
        distinct.dedup();
        assert_eq!(distinct.len(), CODES);
    }

    #[test]
    fn stored_codes_round_trip_and_used_ones_show_as_used() {
        let at = DateTime::parse_from_rfc3339("2021-08-17T11:32:39Z").map(|t| t.with_timezone(&Utc)).ok();
        let codes = vec![Code { code: "key-0".into(), used_at: None }, Code { code: "key-1".into(), used_at: at }];
        let stored = codes_json(&codes);
        assert_eq!(
            stored,
            json!([{"code": "key-0", "used_at": null}, {"code": "key-1", "used_at": "2021-08-17T11:32:39Z"}])
        );
        assert_eq!(parse_codes(Some(&stored)), codes);
        let node = serde_json::to_value(codes_node(&codes)).unwrap_or_default();
        assert_eq!(node["attributes"]["text"]["text"], "key-0, used");
        assert_eq!(node["attributes"]["text"]["context"]["secrets"][1]["id"], 1050014);
        assert_eq!(
            node["attributes"]["text"]["context"]["secrets"][1]["text"],
            "Secret was used at 2021-08-17 11:32:39 +0000 UTC"
        );
        assert_eq!(node["attributes"]["id"], "lookup_secret_codes");
    }
}
