//! The `totp` method (behaviour.md §13.4, §5.5): an authenticator app as a second factor.
//! Settings enrol a key (QR code and secret shown, the first code confirms it) or unlink it;
//! login at aal2 checks a code. Keys are stored as Kratos stores them (an `otpauth://` URL),
//! so imported credentials work; codes are checked by `totp-rs` (SHA-1, 6 digits, 30 s, one
//! step of skew, as Kratos). A code that completed a login is not accepted again for that
//! identity (RFC 6238 §5.2; Kratos accepts it again within its window).

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
use serde_json::{Value as Json, json};

/// The internal-context key of a key being enrolled.
const PENDING_URL: &str = "totp_url";

/// The TOTP method.
pub struct Totp;

impl Method for Totp {
    fn id(&self) -> &'static str {
        "totp"
    }

    fn enabled(&self, config: &Config) -> bool {
        config.selfservice.methods.totp.enabled
    }

    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }

    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        Some(self)
    }
}

/// `selfservice.methods.totp.config.issuer`, else the public URL's host name.
fn issuer(config: &Config) -> String {
    config.selfservice.methods.totp.config.issuer.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| {
        url::Url::parse(&config.public_base_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "localhost".into())
    })
}

/// The `otpauth://` URL of a key, written as Kratos (pquerna/otp) writes it.
pub fn key_url(issuer: &str, account: &str, secret_base32: &str) -> String {
    let mut u = match url::Url::parse("otpauth://totp") {
        Ok(u) => u,
        Err(_) => return String::new(),
    };
    u.set_path(&format!("/{issuer}:{account}"));
    u.query_pairs_mut()
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", "6")
        .append_pair("issuer", issuer)
        .append_pair("period", "30")
        .append_pair("secret", secret_base32);
    u.to_string()
}

/// The key in an `otpauth://` URL (stored or pending), if it is a usable one.
fn parse_key(url: &str) -> Option<totp_rs::Totp> {
    crate::identity::service::totp_key(url)
}

/// The identity's enrolled key, if it has a usable one.
pub fn enrolled(identity: &Identity) -> Option<totp_rs::Totp> {
    let url = identity.credentials.get("totp")?.config.get("totp_url")?.as_str()?;
    parse_key(url).filter(|_| !url.is_empty())
}

/// A new key for `identity`: 20 random bytes; the account is the trait flagged
/// `credentials.totp.account_name`, else the identity id.
fn new_key_url(svc: &Services, identity: &Identity) -> String {
    let account = svc
        .schemas
        .validate_traits(&identity.schema_id, &identity.traits)
        .ok()
        .and_then(|x| x.totp_account_name)
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| identity.id.to_string());
    let secret = totp_rs::Secret::generate().to_base32();
    // A colon separates issuer and account in the label: none may contain one.
    key_url(&issuer(&svc.config).replace(':', "_"), &account.replace(':', "_"), secret.trim_end_matches('='))
}

/// The time step a code of `key` is valid in at `now`, if it is valid (one step of skew).
fn check(key: &totp_rs::Totp, code: &str, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let t = u64::try_from(now.timestamp()).ok()?;
    key.check(code.trim(), t)
}

fn amr(svc: &Services) -> AuthMethod {
    AuthMethod {
        method: "totp".into(),
        aal: Some(Aal::Aal2),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    }
}

#[async_trait::async_trait(?Send)]
impl LoginStrategy for Totp {
    fn aal(&self, _config: &crate::config::Config) -> Aal {
        Aal::Aal2
    }

    fn responsible(&self, _svc: &Services, flow: &Flow) -> bool {
        flow.data.requested_aal == Some(Aal::Aal2)
    }

    fn populate(&self, _svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        let LoginForm::SecondFactor { identity } = form else { return };
        if !identity.credentials.contains_key("totp") {
            return;
        }
        flow.ui.nodes.push(
            Input::new(group::TOTP, "totp_code", "text").value("").required().label(text::login_totp_label()).node(),
        );
        flow.ui.nodes.push(ui::submit_button(group::TOTP, "totp", text::login_totp()));
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return LoginStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let problem = |flow: Flow, field: &str, message: Text| {
            LoginStep::Answer(Box::new(second_factor_problem(flow, "totp_code", field, message, tp.clone())))
        };
        let Some(code) = submit.field("totp_code").map(str::to_string) else {
            return problem(flow, "totp_code", text::required("totp_code"));
        };
        if code.chars().count() < 6 {
            return problem(flow, "totp_code", text::min_length(6, code.chars().count()));
        }
        let identity = match second_factor_identity(svc, &flow, info).await {
            Ok(i) => i,
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        let Some(key) = enrolled(&identity) else { return problem(flow, "", text::no_totp()) };
        match svc.brute_force.reserve_second_factor(identity.id).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Locked(until)) => {
                return problem(flow, "", text::locked_out(svc.brute_force.retry_after(until)));
            }
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::from(e))))),
        }
        let Some(step) = check(&key, &code, svc.clock.now()) else { return problem(flow, "", text::totp_wrong()) };
        // RFC 6238 §5.2: a code is good for one login.
        match svc.brute_force.claim_once(&format!("totp:{}:{step}", identity.id)).await {
            Ok(true) => {}
            Ok(false) => return problem(flow, "", text::totp_wrong()),
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::from(e))))),
        }
        svc.brute_force.second_factor_succeeded(identity.id).await;
        let mut flow = flow;
        flow.active = Some("totp".into());
        LoginStep::Authenticated { flow, identity, method: amr(svc) }
    }
}

#[async_trait::async_trait(?Send)]
impl SettingsStrategy for Totp {
    fn claims(&self, submit: &Submit) -> bool {
        submit.flag("totp_unlink")
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, identity: &Identity, _traits: &Json, _schema: &Json) {
        if enrolled(identity).is_some() {
            flow.ui.nodes.push(
                Input::new(group::TOTP, "totp_unlink", "submit")
                    .value("true")
                    .required()
                    .label(text::settings_totp_unlink())
                    .node(),
            );
            return;
        }
        let url = new_key_url(svc, identity);
        let Some(key) = parse_key(&url) else { return };
        let qr = match key.to_qr_base64() {
            Ok(png) => format!("data:image/png;base64,{png}"),
            Err(e) => {
                tracing::warn!(error = %e, "TOTP QR code could not be drawn");
                String::new()
            }
        };
        let secret = key.secret().to_base32();
        let secret = secret.trim_end_matches('=');
        svc.keep_secret(flow, PENDING_URL, &Json::String(url.clone()));
        flow.ui.nodes.push(ui::image(group::TOTP, "totp_qr", &qr, 256, text::settings_totp_qr()));
        flow.ui.nodes.push(ui::text(
            group::TOTP,
            "totp_secret_key",
            text::settings_totp_secret(secret),
            text::settings_totp_secret_label(),
        ));
        flow.ui
            .nodes
            .push(Input::new(group::TOTP, "totp_code", "text").required().label(text::label_verify_code()).node());
        flow.ui.nodes.push(ui::submit_button(group::TOTP, "totp", text::label_save()));
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
        let problem = |mut f: Flow, message: Text| {
            f.ui.reset_messages();
            f.ui.add_field_message("totp_code", message);
            SettingsStep::Answer(Box::new(show(f, false, to_ui)))
        };
        if enrolled(&identity).is_some() {
            if submit.flag("totp_unlink") {
                identity.credentials.remove("totp");
            }
            return SettingsStep::Save { flow, identity: Box::new(identity), proved: None };
        }
        let Some(code) = submit.field("totp_code").map(str::to_string) else {
            return problem(flow, text::required("totp_code"));
        };
        let pending = svc.kept_secret(&flow, PENDING_URL).and_then(|u| u.as_str().map(str::to_string));
        let Some((url, key)) = pending.and_then(|u| parse_key(&u).map(|k| (u, k))) else {
            return problem(flow, text::totp_wrong());
        };
        if check(&key, &code, svc.clock.now()).is_none() {
            return problem(flow, text::totp_wrong());
        }
        let now = svc.clock.now();
        let mut credential = crate::identity::service::new_credential("totp", now);
        credential.identifiers = vec![identity.id.to_string()];
        credential.config = json!({ "totp_url": url });
        identity.credentials.insert("totp".into(), credential);
        let mut f = flow;
        f.data.internal.remove(PENDING_URL);
        SettingsStep::Save { flow: f, identity: Box::new(identity), proved: Some(amr(svc)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_urls_are_written_as_kratos_writes_them_and_read_back() {
        let url = key_url("issuer.ory.sh", "6e11a9a7-62fd-4c88-871a-097f18f0306f", "2F43HRJNMUW67EDMRR7AKQYRZP3AI6IG");
        assert_eq!(
            url,
            "otpauth://totp/issuer.ory.sh:6e11a9a7-62fd-4c88-871a-097f18f0306f?algorithm=SHA1&digits=6&issuer=issuer.ory.sh&period=30&secret=2F43HRJNMUW67EDMRR7AKQYRZP3AI6IG"
        );
        let key = parse_key(&url).map(|k| (k.digits(), k.step(), k.secret().to_base32()));
        assert_eq!(key, Some((6, 30, "2F43HRJNMUW67EDMRR7AKQYRZP3AI6IG".to_string())));
    }

    #[test]
    fn labels_with_spaces_are_escaped_and_read_back() {
        let url = key_url("Example Corp", "ann smith@example.org", "2F43HRJNMUW67EDMRR7AKQYRZP3AI6IG");
        assert!(url.starts_with("otpauth://totp/Example%20Corp:ann%20smith@example.org?"), "{url}");
        assert!(url.contains("&issuer=Example+Corp&"), "{url}");
        assert!(parse_key(&url).is_some());
    }

    #[test]
    fn codes_are_good_for_one_step_either_side() {
        let url = key_url("example.org", "a@example.org", "2F43HRJNMUW67EDMRR7AKQYRZP3AI6IG");
        let Some(key) = parse_key(&url) else { panic!("key") };
        let now = crate::clock::Clock::system().now();
        let t = u64::try_from(now.timestamp()).unwrap_or_default();
        let code = key.generate(t).to_string();
        assert_eq!(check(&key, &code, now), Some(t / 30));
        assert!(check(&key, &code, now + chrono::Duration::seconds(30)).is_some());
        assert!(check(&key, &code, now + chrono::Duration::seconds(95)).is_none());
        assert!(check(&key, "000000x", now).is_none());
    }
}
