//! UI texts (`uiText`): the ids are Kratos' (`reference/messages.tsv`); the wording is ours.
//! tessera's own ids live in the 4_01_9xxx range (see README, "Message ids of our own").

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

/// `info`, `error` or `success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextType {
    Info,
    Error,
    Success,
}

/// One `uiText`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub id: u32,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: TextType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Json>,
}

fn info(id: u32, text: impl Into<String>) -> Text {
    Text { id, text: text.into(), kind: TextType::Info, context: None }
}

fn error(id: u32, text: impl Into<String>, context: Option<Json>) -> Text {
    Text { id, text: text.into(), kind: TextType::Error, context }
}

// --- login (101xxxx) ---------------------------------------------------------------------

/// 1010003: confirm the identity again (refresh).
pub fn login_reauth() -> Text {
    info(1010003, "Please confirm this action by verifying that it is you.")
}

/// 1010004: a second factor is required.
pub fn login_mfa() -> Text {
    info(1010004, "Please complete the second authentication challenge.")
}

/// 1010001: the submit label of a refresh login.
pub fn login_submit() -> Text {
    info(1010001, "Sign in")
}

/// 1010022: the password login submit label.
pub fn login_with_password() -> Text {
    info(1010022, "Sign in with password")
}

/// 1040001: the registration submit label.
pub fn register() -> Text {
    info(1040001, "Sign up")
}

/// 1040008: back to the previous registration step.
pub fn registration_back() -> Text {
    info(1040008, "Back")
}

/// 1040009: choose how to sign in, shown on the credential step.
pub fn registration_choose_credentials() -> Text {
    info(1040009, "Please choose a credential to authenticate yourself with.")
}

// --- labels (107xxxx) --------------------------------------------------------------------

/// 1070001: "Password".
pub fn label_password() -> Text {
    info(1070001, "Password")
}

/// 1070002: a label generated from a schema `title`.
pub fn label_generated(title: &str, name: &str) -> Text {
    Text { id: 1070002, text: title.into(), kind: TextType::Info, context: Some(json!({"title": title, "name": name})) }
}

/// 1070004: "ID".
pub fn label_id() -> Text {
    info(1070004, "ID")
}

/// 1070009: "Continue".
pub fn label_continue() -> Text {
    info(1070009, "Continue")
}

// --- validation (4xxxxxx) -------------------------------------------------------------------

/// 4000001: a generic validation error carrying a reason.
pub fn generic(reason: &str) -> Text {
    error(4000001, reason, Some(json!({"reason": reason})))
}

/// 4000002: a required property is missing.
pub fn required(property: &str) -> Text {
    error(4000002, format!("Property {property} is missing."), Some(json!({"property": property})))
}

/// 4000006: invalid credentials.
pub fn invalid_credentials() -> Text {
    error(
        4000006,
        "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.",
        None,
    )
}

/// 4000007: the identifier is taken.
pub fn duplicate_credentials() -> Text {
    error(4000007, "An account with the same identifier (email, phone, username, ...) exists already.", None)
}

/// 4000028: the identifier is taken; how the existing account signs in.
pub fn duplicate_with_hints(identifier: &str, types: &[String], providers: &[String]) -> Text {
    let who = if identifier.is_empty() { "an email, phone, or username" } else { identifier };
    let mut text = format!("You tried signing in with {who} which is already in use by another account.");
    let mut ways: Vec<&str> = types
        .iter()
        .filter_map(|t| match t.as_str() {
            "password" => Some("your password"),
            "oidc" | "saml" => Some("social sign in"),
            "webauthn" => Some("your passkey or a security key"),
            "passkey" => Some("your passkey"),
            _ => None,
        })
        .collect();
    ways.dedup();
    if !ways.is_empty() {
        let list = match ways.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, or {last}", rest.join(", ")),
            _ => ways.join(", "),
        };
        text.push_str(&format!(" You can sign in using {list}."));
    }
    if !providers.is_empty() {
        let titled: Vec<String> = providers
            .iter()
            .map(|p| {
                let mut c = p.chars();
                c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
            })
            .collect();
        text.push_str(&format!(
            " You can sign in using one of the following social sign in providers: {}.",
            titled.join(", ")
        ));
    }
    error(
        4000028,
        text,
        Some(json!({
            "available_credential_types": types,
            "available_oidc_providers": providers,
            "credential_identifier_hint": identifier,
        })),
    )
}

/// 4000009: the schema has no password identifier.
pub fn identifier_missing() -> Text {
    error(
        4000009,
        "Could not find any login identifiers. Did you forget to set them? This could also be caused by a server misconfiguration.",
        None,
    )
}

/// 4000031: the password is too similar to the identifier.
pub fn password_too_similar() -> Text {
    error(4000031, "The password can not be used because it is too similar to the identifier.", None)
}

/// 4000032: the password is too short.
pub fn password_too_short(min: usize, actual: usize) -> Text {
    error(
        4000032,
        format!("The password must be at least {min} characters long, but got {actual}."),
        Some(json!({"min_length": min, "actual_length": actual})),
    )
}

/// 4000033: the password is too long for the hasher.
pub fn password_too_long(max: usize, actual: usize) -> Text {
    error(
        4000033,
        format!("The password must be at most {max} characters long, but got {actual}."),
        Some(json!({"max_length": max, "actual_length": actual})),
    )
}

/// 4000034: the password appears in data breaches.
pub fn password_breached(breaches: u64) -> Text {
    error(
        4000034,
        "The password has been found in data breaches and must no longer be used.",
        Some(json!({"breaches": breaches})),
    )
}

/// 4000005: the password policy could not be checked or was violated otherwise.
pub fn password_policy(reason: &str) -> Text {
    error(4000005, format!("The password can not be used because {reason}."), Some(json!({"reason": reason})))
}

/// 4010001: the login flow expired.
pub fn login_expired(expired_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    expired(4010001, "login", expired_at, now)
}

/// 4040001: the registration flow expired.
pub fn registration_expired(expired_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    expired(4040001, "registration", expired_at, now)
}

fn expired(id: u32, what: &str, expired_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    let ago = (now - expired_at).num_seconds().max(0);
    error(
        id,
        format!("The {what} flow expired {:.2} minutes ago, please try again.", ago as f64 / 60.0),
        Some(json!({
            "expired_at": crate::identity::view::ts(&expired_at),
            "expired_at_unix": expired_at.timestamp(),
        })),
    )
}

/// 4010002: no method is responsible for the submitted payload.
pub fn no_strategy() -> Text {
    error(4010002, "Could not find a strategy to log you in with. Did you fill out the form correctly?", None)
}

/// 4010003: no method is responsible for the registration payload.
pub fn no_registration_strategy() -> Text {
    error(4010003, "Could not find a strategy to sign you up with. Did you fill out the form correctly?", None)
}

/// 4000037: no account for the identifier (identifier-first login without enumeration mitigation).
pub fn account_not_found() -> Text {
    error(4000037, "This account does not exist or has no login method configured.", None)
}

/// 4019001 (tessera): too many failed attempts; try again later.
pub fn locked_out(retry_after_seconds: i64) -> Text {
    error(
        4019001,
        format!("Too many failed sign-in attempts. Please try again in {retry_after_seconds} seconds."),
        Some(json!({"retry_after_seconds": retry_after_seconds})),
    )
}

fn success(id: u32, text: impl Into<String>, context: Option<Json>) -> Text {
    Text { id, text: text.into(), kind: TextType::Success, context }
}

// --- settings, recovery, verification (105/106/108xxxx) --------------------------------------

/// 1050001: the settings were saved.
pub fn settings_saved() -> Text {
    success(1050001, "Your changes have been saved!", None)
}

/// 1060001: recovered; the privileged session lasts until `expires_at`.
pub fn recovery_successful(expires_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    let ts = crate::identity::view::ts(&expires_at);
    success(
        1060001,
        format!(
            "You successfully recovered your account. Please change your password or set up an alternative login method (e.g. social sign in) within the next {:.2} minutes.",
            (expires_at - now).num_seconds().max(0) as f64 / 60.0
        ),
        Some(json!({
            "privilegedSessionExpiresAt": ts,
            "privileged_session_expires_at": ts,
            "privileged_session_expires_at_unix": expires_at.timestamp(),
        })),
    )
}

/// 1060002: a recovery link was sent (if the address is known).
pub fn recovery_link_sent() -> Text {
    info(
        1060002,
        "An email containing a recovery link has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}

/// 1060003: a recovery code was sent (if the address is known).
pub fn recovery_code_sent() -> Text {
    info(
        1060003,
        "An email containing a recovery code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}

/// 1080001: a verification link was sent (if the address is known).
pub fn verification_link_sent() -> Text {
    info(
        1080001,
        "An email containing a verification link has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}

/// 1080002: the address is verified.
pub fn verification_successful() -> Text {
    success(1080002, "You successfully verified your email address.", None)
}

/// 1080003: a verification code was sent (if the address is known).
pub fn verification_code_sent() -> Text {
    info(
        1080003,
        "An email containing a verification code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}

/// 1070007: "Email".
pub fn label_email() -> Text {
    info(1070007, "Email")
}

/// 1070008: "Resend code".
pub fn label_resend() -> Text {
    info(1070008, "Resend code")
}

/// 1070010: "Recovery code".
pub fn label_recovery_code() -> Text {
    info(1070010, "Recovery code")
}

/// 1070011: "Verification code".
pub fn label_verification_code() -> Text {
    info(1070011, "Verification code")
}

/// 1070003: "Save".
pub fn label_save() -> Text {
    info(1070003, "Save")
}

/// 4050001: the settings flow expired.
pub fn settings_expired(expired_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    expired(4050001, "settings", expired_at, now)
}

/// 4060001: the flow was already completed; a new one was started.
pub fn recovery_retry_success() -> Text {
    error(4060001, "The request was already completed successfully and can not be retried.", None)
}

/// 4060002: the flow is in a state that does not accept this submit.
pub fn recovery_state_failure() -> Text {
    error(4060002, "The recovery flow reached a failure state and must be retried.", None)
}

/// 4060004: the recovery link is invalid or was used.
pub fn recovery_token_invalid() -> Text {
    error(4060004, "The recovery token is invalid or has already been used. Please retry the flow.", None)
}

/// 4060005: the recovery flow expired.
pub fn recovery_expired(expired_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    expired(4060005, "recovery", expired_at, now)
}

/// 4060006: the recovery code is wrong or was used.
pub fn recovery_code_invalid() -> Text {
    error(4060006, "The recovery code is invalid or has already been used. Please try again.", None)
}

/// 4070001: the verification link is invalid or was used.
pub fn verification_token_invalid() -> Text {
    error(4070001, "The verification token is invalid or has already been used. Please retry the flow.", None)
}

/// 4070002: the flow was already completed; a new one was started.
pub fn verification_retry_success() -> Text {
    error(4070002, "The request was already completed successfully and can not be retried.", None)
}

/// 4070005: the verification flow expired.
pub fn verification_expired(expired_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Text {
    expired(4070005, "verification", expired_at, now)
}

/// 4070006: the verification code is wrong or was used.
pub fn verification_code_invalid() -> Text {
    error(4070006, "The verification code is invalid or has already been used. Please try again.", None)
}

impl Text {
    /// The same text with `context`.
    pub fn with_context(mut self, context: Json) -> Text {
        self.context = Some(context);
        self
    }
}

/// 4010005: no recovery method is responsible for the submit.
pub fn no_recovery_strategy() -> Text {
    error(4010005, "Could not find a strategy to recover your account with. Did you fill out the form correctly?", None)
}

/// 4010006: no verification method is responsible for the submit.
pub fn no_verification_strategy() -> Text {
    error(4010006, "Could not find a strategy to verify your account with. Did you fill out the form correctly?", None)
}

/// 4000040: not an e-mail address.
pub fn invalid_email(value: &str) -> Text {
    error(4000040, format!("\"{value}\" is not a valid email address"), Some(json!({"value": value})))
}

/// 4010004: no settings method is responsible for the submit.
pub fn no_settings_strategy() -> Text {
    error(4010004, "Could not find a strategy to update your settings. Did you fill out the form correctly?", None)
}

/// 4000039: the new password is the current one.
pub fn password_same_as_old() -> Text {
    error(4000039, "The new password must be different from the old password.", None)
}
