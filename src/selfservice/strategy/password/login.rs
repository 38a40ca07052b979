//! Password login: the identifier and password are checked (brute-force slot reserved first,
//! unknown identifiers checked against a dummy hash), legacy hashes re-hashed.

use super::{Password, hashed_password, password_node, submit};
use crate::catalogue as text;
use crate::error::Error;
use crate::identity::{Identity, IdentityState};
use crate::selfservice::brute_force::Verdict;
use crate::selfservice::flow::Flow;
use crate::selfservice::form::Submit;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo, check_csrf, csrf_outcome};
use crate::selfservice::strategy::{LoginForm, LoginStep, LoginStrategy, login_problem};
use crate::selfservice::ui::{self, Input, group};
use crate::session::{Aal, AuthMethod};
use serde_json::Value as Json;

#[async_trait::async_trait(?Send)]
impl LoginStrategy for Password {
    fn aal(&self, _config: &crate::config::Config) -> Aal {
        Aal::Aal1
    }

    fn responsible(&self, _svc: &Services, flow: &Flow) -> bool {
        flow.data.requested_aal.unwrap_or(Aal::Aal1) == Aal::Aal1 || flow.data.refresh
    }

    fn populate(&self, svc: &Services, flow: &mut Flow, form: LoginForm<'_>) {
        match form {
            LoginForm::FirstFactor => {
                let (_, schema) = svc.schema_of(flow);
                flow.ui.nodes.push(
                    Input::new(group::DEFAULT, "identifier", "text")
                        .value("")
                        .required()
                        .label(ui::identifier_label(&schema))
                        .node(),
                );
                flow.ui.nodes.push(password_node("current-password"));
                flow.ui.nodes.push(submit(text::login_with_password()));
            }
            LoginForm::Refresh { identity } => {
                let identifier = hashed_password(identity)
                    .and_then(|_| identity.credentials.get("password"))
                    .and_then(|c| c.identifiers.first().cloned());
                if let Some(identifier) = identifier {
                    flow.ui.nodes.push(Input::new(group::DEFAULT, "identifier", "hidden").value(identifier).node());
                    flow.ui.nodes.push(password_node("current-password"));
                    flow.ui.nodes.push(submit(text::login_submit()));
                }
            }
            LoginForm::Credentials { identity } => {
                // Only an account with a password is offered one (with account enumeration
                // mitigated, every account, and accounts that do not exist).
                let has = identity.is_some_and(|i| hashed_password(i).is_some());
                if !has && !svc.config.security.account_enumeration.mitigate {
                    return;
                }
                flow.ui.nodes.push(password_node("current-password"));
                flow.ui.nodes.push(submit(text::login_with_password()));
            }
            LoginForm::Identification | LoginForm::SecondFactor { .. } => {}
        }
    }

    async fn login(&self, svc: &Services, flow: Flow, submit: &Submit, info: &RequestInfo) -> LoginStep {
        let tp = submit.transient_payload();
        if let Err(failure) = check_csrf(&flow, info, &submit.body) {
            return LoginStep::Answer(Box::new(csrf_outcome(flow, failure, tp)));
        }
        let identifier = submit
            .field("identifier")
            .or_else(|| submit.field("password_identifier"))
            .map(str::to_string)
            .or_else(|| flow.data.identifier.clone());
        let password = submit.field("password").map(str::to_string);
        let (Some(identifier), Some(password)) = (identifier.clone(), password) else {
            let mut f = flow;
            f.ui.reset_messages();
            f.ui.clear_passwords();
            if identifier.is_none() {
                f.ui.add_field_message("identifier", text::required("identifier"));
            } else if let Some(n) = f.ui.node_mut("identifier", None)
                && n.input_type() != "hidden"
            {
                n.set_value(identifier.clone().map(Json::from));
            }
            if submit.field("password").is_none() {
                f.ui.add_field_message("password", text::required("password"));
            }
            f.ui.sort_login();
            return LoginStep::Answer(Box::new((f.clone(), Outcome::Form { flow: f, transient_payload: tp })));
        };
        // Brute-force defence: reserve the attempt before anything is checked.
        match svc.brute_force.reserve(&identifier, info.client_ip.as_deref()).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Locked(until)) => {
                let message = text::locked_out(svc.brute_force.retry_after(until));
                return LoginStep::Answer(Box::new(login_problem(flow, &identifier, "", message, tp)));
            }
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::from(e))))),
        }
        let identity = match super::find_identity(svc, &identifier).await {
            Ok(i) => i,
            Err(e) => return LoginStep::Answer(Box::new((flow, Outcome::Error(e)))),
        };
        // Imported with `use_password_migration_hook`: the remote system checks the password
        // once; a match is stored as an ordinary hash and the hook is never asked again.
        if let Some(identity) = identity.as_ref().filter(|i| migrates_password(i)) {
            return LoginStep::Answer(Box::new(
                match self.migrate(svc, &flow, info, identity, &identifier, &password).await {
                    Ok(Some(identity)) => return authenticated(svc, flow, identity, &identifier, info).await,
                    Ok(None) => login_problem(flow, &identifier, "", text::invalid_credentials(), tp),
                    Err(e) => (flow, Outcome::Error(e)),
                },
            ));
        }
        let stored = identity.as_ref().and_then(hashed_password);
        // Unknown identifiers and identities without a password are checked against a dummy
        // hash, so they take as long as a wrong password.
        let encoded = stored.clone().unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = match svc.identities.hashes.verify(password.clone().into_bytes(), encoded).await {
            Ok(m) => m,
            Err(busy @ crate::hash::HashError::Busy) => {
                return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::from(busy)))));
            }
            Err(_) => false,
        };
        let (Some(identity), Some(stored), true) = (identity, stored, matched) else {
            return LoginStep::Answer(Box::new(login_problem(flow, &identifier, "", text::invalid_credentials(), tp)));
        };
        let identity = rehash_if_needed(svc, identity, &stored, &password).await;
        authenticated(svc, flow, identity, &identifier, info).await
    }
}

impl Password {
    /// Asks the migration hook; on a match the password is hashed and stored (the hook is not
    /// asked again). `Ok(None)`: the password does not match.
    async fn migrate(
        &self,
        svc: &Services,
        flow: &Flow,
        info: &RequestInfo,
        identity: &Identity,
        identifier: &str,
        password: &str,
    ) -> Result<Option<Identity>, Error> {
        if !svc.hooks.password_migration(flow, info, identity, identifier, password).await? {
            return Ok(None);
        }
        let hashed = svc.identities.hashes.hash(password.as_bytes().to_vec()).await.map_err(Error::from)?;
        svc.identities.replace_password_hash(identity.id, &hashed).await.map(Some)
    }
}

/// Whether the identity's password is checked by the migration hook (imported without a hash).
fn migrates_password(identity: &Identity) -> bool {
    identity.credentials.get("password").is_some_and(|c| {
        c.config.get("use_password_migration_hook").and_then(Json::as_bool) == Some(true)
            && hashed_password(identity).is_none()
    })
}

/// The password matched: the identity must be active; the brute-force counter starts over.
async fn authenticated(
    svc: &Services,
    flow: Flow,
    identity: Identity,
    identifier: &str,
    info: &RequestInfo,
) -> LoginStep {
    if identity.state != IdentityState::Active {
        return LoginStep::Answer(Box::new((flow, Outcome::Error(Error::IdentityDisabled))));
    }
    if let Err(e) = svc.brute_force.succeeded(identifier, info.client_ip.as_deref()).await {
        tracing::warn!(error = %e, "brute-force counter could not be cleared");
    }
    let method = AuthMethod {
        method: "password".into(),
        aal: Some(Aal::Aal1),
        completed_at: svc.clock.now(),
        provider: None,
        organization: None,
    };
    let mut flow = flow;
    flow.active = Some("password".into());
    LoginStep::Authenticated { flow, identity, method }
}

/// Re-hashes a password stored in another algorithm family (behaviour.md §18.2) or at a cost
/// above the configured one; failures are logged and ignored.
async fn rehash_if_needed(svc: &Services, identity: Identity, stored: &str, password: &str) -> Identity {
    if !svc.identities.hashes.needs_rehash(stored) {
        return identity;
    }
    match svc.identities.hashes.hash(password.as_bytes().to_vec()).await {
        Ok(new_hash) => match svc.identities.replace_password_hash(identity.id, &new_hash).await {
            Ok(updated) => updated,
            Err(e) => {
                tracing::warn!(error = %e, "password re-hash could not be stored");
                identity
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "password re-hash failed");
            identity
        }
    }
}
