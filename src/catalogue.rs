//! The catalogue: every stable id tessera emits, with its text, in one place.
//!
//! * [`error`]: the `error.id` values of error envelopes (`reference/errors.tsv`) and the
//!   texts (message, reason) of the domain errors that carry them. Which HTTP status an error
//!   gets is not decided here but in `http::error`.
//! * UI messages (`uiText`): the ids are Kratos' (`reference/messages.tsv`); the wording is
//!   ours. tessera's own ids live in the 4_01_9xxx range (see README, "Message ids of our own").

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

pub mod error;

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
            "expired_at": crate::clock::ts(&expired_at),
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

/// 4069001 / 4079001 (tessera): too many recovery / verification messages requested.
pub fn too_many_messages(verification: bool, retry_after_seconds: i64) -> Text {
    error(
        if verification { 4079001 } else { 4069001 },
        format!("Too many messages were requested. Please try again in {retry_after_seconds} seconds."),
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
    let ts = crate::clock::ts(&expires_at);
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

// --- identity schema violations (4000xxx) ---------------------------------------------------

/// 4000003: a string is too short.
pub fn min_length(limit: u64, actual: usize) -> Text {
    error(
        4000003,
        format!("length must be >= {limit}, but got {actual}"),
        Some(json!({"min_length": limit, "actual_length": actual})),
    )
}

/// 4000017: a string is too long.
pub fn max_length(limit: u64, actual: usize) -> Text {
    error(
        4000017,
        format!("length must be <= {limit}, but got {actual}"),
        Some(json!({"max_length": limit, "actual_length": actual})),
    )
}

/// 4000004: a string does not match the schema's pattern.
pub fn pattern_mismatch(pattern: &str) -> Text {
    error(4000004, format!("does not match pattern \"{pattern}\""), Some(json!({ "pattern": pattern })))
}

/// 4000018: a number is below the minimum.
pub fn minimum(limit: &Json, actual: &Json) -> Text {
    error(4000018, format!("must be >= {limit} but found {actual}"), Some(json!({"minimum": limit, "actual": actual})))
}

/// 4000019: a number is not above the exclusive minimum.
pub fn exclusive_minimum(limit: &Json, actual: &Json) -> Text {
    error(4000019, format!("must be > {limit} but found {actual}"), Some(json!({"minimum": limit, "actual": actual})))
}

/// 4000020: a number is above the maximum.
pub fn maximum(limit: &Json, actual: &Json) -> Text {
    error(4000020, format!("must be <= {limit} but found {actual}"), Some(json!({"maximum": limit, "actual": actual})))
}

/// 4000021: a number is not below the exclusive maximum.
pub fn exclusive_maximum(limit: &Json, actual: &Json) -> Text {
    error(4000021, format!("must be < {limit} but found {actual}"), Some(json!({"maximum": limit, "actual": actual})))
}

/// 4000022: a number is not a multiple of the schema's base.
pub fn multiple_of(base: f64, actual: &Json) -> Text {
    error(4000022, format!("{actual} not multipleOf {base}"), Some(json!({"base": base, "actual": actual})))
}

/// 4000023: too many items.
pub fn max_items(limit: u64, actual: usize) -> Text {
    error(
        4000023,
        format!("maximum {limit} items allowed, but found {actual} items"),
        Some(json!({"max_items": limit, "actual_items": actual})),
    )
}

/// 4000024: too few items.
pub fn min_items(limit: u64, actual: usize) -> Text {
    error(
        4000024,
        format!("minimum {limit} items allowed, but found {actual} items"),
        Some(json!({"min_items": limit, "actual_items": actual})),
    )
}

/// 4000025: items repeat.
pub fn unique_items() -> Text {
    error(4000025, "items must be unique", None)
}

/// 4000026: a value of the wrong JSON type.
pub fn wrong_type(allowed: &[String], actual: &str) -> Text {
    error(
        4000026,
        format!("expected {}, but got {actual}", allowed.join(" or ")),
        Some(json!({"allowed_types": allowed, "actual_type": actual})),
    )
}

/// 4000029: a value differs from the schema's constant.
pub fn constant(expected: &Json) -> Text {
    error(4000029, format!("must be equal to constant {expected}"), Some(json!({ "expected": expected })))
}

/// 4000040 (`email`) or 4000041 (`tel`): a value not in the schema's format; `None` for
/// other formats.
pub fn invalid_format(format: &str, value: &Json) -> Option<Text> {
    let id = match format {
        "email" => 4000040,
        "tel" => 4000041,
        _ => return None,
    };
    Some(error(id, format!("{value} is not valid \"{format}\""), Some(json!({ "value": value }))))
}

// --- second factors: TOTP, lookup secrets, WebAuthn ---------------------------------------

fn info_with(id: u32, text: impl Into<String>, context: Json) -> Text {
    Text { id, text: text.into(), kind: TextType::Info, context: Some(context) }
}

/// 1010006: the label of the TOTP input at login.
pub fn login_totp_label() -> Text {
    info(1010006, "Authentication code")
}

/// 1010009: the TOTP submit at login.
pub fn login_totp() -> Text {
    info(1010009, "Use Authenticator")
}

/// 1010007: the label of the lookup secret input at login.
pub fn login_lookup_label() -> Text {
    info(1010007, "Backup recovery code")
}

/// 1010010: the lookup secret submit at login.
pub fn login_lookup() -> Text {
    info(1010010, "Use backup recovery code")
}

/// 1010008: the WebAuthn trigger at login.
pub fn login_webauthn() -> Text {
    info(1010008, "Sign in with hardware key")
}

/// 1050004: unlink TOTP.
pub fn settings_totp_unlink() -> Text {
    info(1050004, "Unlink TOTP Authenticator App")
}

/// 1050005: the TOTP QR code.
pub fn settings_totp_qr() -> Text {
    info(1050005, "Authenticator app QR code")
}

/// 1050006: the TOTP secret itself.
pub fn settings_totp_secret(secret: &str) -> Text {
    info_with(1050006, secret, json!({ "secret": secret }))
}

/// 1050017: the label of the TOTP secret.
pub fn settings_totp_secret_label() -> Text {
    info(1050017, "This is your authenticator app secret. Use it if you can not scan the QR code.")
}

/// 1070006: the label of a code to verify (TOTP enrolment).
pub fn label_verify_code() -> Text {
    info(1070006, "Verify code")
}

/// 1050007: reveal lookup secrets.
pub fn settings_lookup_reveal() -> Text {
    info(1050007, "Reveal backup recovery codes")
}

/// 1050008: generate new lookup secrets.
pub fn settings_lookup_regenerate() -> Text {
    info(1050008, "Generate new backup recovery codes")
}

/// 1050011: confirm lookup secrets.
pub fn settings_lookup_confirm() -> Text {
    info(1050011, "Confirm backup recovery codes")
}

/// 1050016: disable lookup secrets.
pub fn settings_lookup_disable() -> Text {
    info(1050016, "Disable this method")
}

/// 1050009: an unused lookup secret.
pub fn settings_lookup_secret(secret: &str) -> Text {
    info_with(1050009, secret, json!({ "secret": secret }))
}

/// 1050014: a used lookup secret.
pub fn settings_lookup_used(used_at: chrono::DateTime<chrono::Utc>) -> Text {
    info_with(
        1050014,
        format!("Secret was used at {}", used_at.format("%Y-%m-%d %H:%M:%S %z UTC")),
        json!({ "used_at": used_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "used_at_unix": used_at.timestamp() }),
    )
}

/// 1050015: the list of lookup secrets (`secrets`: 1050009 / 1050014 texts).
pub fn settings_lookup_list(shown: &[String], secrets: Vec<Text>) -> Text {
    info_with(1050015, shown.join(", "), json!({ "secrets": secrets }))
}

/// 1050010: the label of the lookup secret list.
pub fn settings_lookup_list_label() -> Text {
    info(1050010, "These are your back up recovery codes. Please keep them in a safe place!")
}

/// 1050012: add a security key.
pub fn settings_webauthn_register() -> Text {
    info(1050012, "Add security key")
}

/// 1050013: the name of a new security key.
pub fn settings_webauthn_display_name() -> Text {
    info(1050013, "Name of the security key")
}

/// 1050018: remove a security key.
pub fn settings_webauthn_remove(name: &str, added_at: chrono::DateTime<chrono::Utc>) -> Text {
    info_with(
        1050018,
        format!("Remove security key \"{name}\""),
        json!({ "display_name": name, "added_at": added_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "added_at_unix": added_at.timestamp() }),
    )
}

/// 4000008: a wrong TOTP code (also a failed WebAuthn assertion).
pub fn totp_wrong() -> Text {
    error(4000008, "The provided authentication code is invalid, please try again.", None)
}

/// 4000011: no TOTP set up.
pub fn no_totp() -> Text {
    error(4000011, "You have no TOTP device set up.", None)
}

/// 4000012: a used lookup secret.
pub fn lookup_used() -> Text {
    error(4000012, "This backup recovery code has already been used.", None)
}

/// 4000013: no WebAuthn key set up.
pub fn no_webauthn() -> Text {
    error(4000013, "You have no WebAuthn device set up.", None)
}

/// 4000014: no lookup secrets set up.
pub fn no_lookup() -> Text {
    error(4000014, "You have no backup recovery codes set up.", None)
}

/// 4000016: an unknown lookup secret.
pub fn lookup_invalid() -> Text {
    error(4000016, "The backup recovery code is not valid.", None)
}

// --- one-time codes for login and registration, passkeys ----------------------------------

/// 1010014: a login code was sent.
pub fn login_code_sent() -> Text {
    info(
        1010014,
        "A code was sent to the address you provided. If you didn't receive it, please check the spelling of the address and try again.",
    )
}

/// 1010015: the submit that sends a login code.
pub fn login_with_code() -> Text {
    info(1010015, "Send sign in code")
}

/// 1010023: send a second-factor code to `address` (over `channel`).
pub fn login_code_to(address: &str, channel: &str) -> Text {
    info_with(1010023, format!("Send code to {address}"), json!({ "address": address, "channel": channel }))
}

/// 1040005: a registration code was sent.
pub fn registration_code_sent() -> Text {
    info(
        1040005,
        "A code has been sent to the address(es) you provided. If you have not received a message, check the spelling of the address and retry the registration.",
    )
}

/// 1040006: the submit that sends a registration code.
pub fn register_with_code() -> Text {
    info(1040006, "Send sign up code")
}

/// 1070012: "Registration code".
pub fn label_registration_code() -> Text {
    info(1070012, "Registration code")
}

/// 1070013: "Login code".
pub fn label_login_code() -> Text {
    info(1070013, "Login code")
}

/// 4000035: no account, or one that cannot sign in with a code.
pub fn no_code_user() -> Text {
    error(4000035, "This account does not exist or has not setup sign in with code.", None)
}

/// 4000036: the traits changed between sending the code and using it.
pub fn traits_mismatch() -> Text {
    error(4000036, "The provided traits do not match the traits previously associated with this flow.", None)
}

/// 4010008: a wrong or used login code.
pub fn login_code_invalid() -> Text {
    error(4010008, "The login code is invalid or has already been used. Please try again.", None)
}

/// 4010010: a second-factor address the identity does not have.
pub fn unknown_code_address() -> Text {
    error(4010010, "The address you entered does not match any known addresses in the current account.", None)
}

/// 4040003: a wrong or used registration code.
pub fn registration_code_invalid() -> Text {
    error(4040003, "The registration code is invalid or has already been used. Please try again.", None)
}

/// 1010021: sign in with a passkey.
pub fn login_passkey() -> Text {
    info(1010021, "Sign in with passkey")
}

/// 1040007: sign up with a passkey.
pub fn register_passkey() -> Text {
    info(1040007, "Sign up with passkey")
}

/// 1050019: add a passkey.
pub fn settings_passkey_register() -> Text {
    info(1050019, "Add passkey")
}

/// 1050020: remove a passkey.
pub fn settings_passkey_remove(name: &str, added_at: chrono::DateTime<chrono::Utc>) -> Text {
    let shown = if name.is_empty() { "unnamed" } else { name };
    info_with(
        1050020,
        format!("Remove passkey \"{shown}\""),
        json!({ "display_name": name, "added_at": added_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "added_at_unix": added_at.timestamp() }),
    )
}

/// 4000015: no account, or one without a passkey.
pub fn no_passkey_user() -> Text {
    error(4000015, "This account does not exist or has no security key set up.", None)
}

// --- recovery v2 (`feature_flags.choose_recovery_address`) ----------------------------------

/// 1060004: a recovery code went to the (masked) address.
pub fn recovery_code_sent_to(masked: &str) -> Text {
    info_with(
        1060004,
        format!(
            "A recovery code has been sent to {masked}. If you have not received it, check the spelling of the address and make sure to use the address you registered with."
        ),
        json!({ "masked_address": masked }),
    )
}

/// 1060005: type the chosen address in full.
pub fn recovery_full_address() -> Text {
    info(1060005, "Recover access to your account by providing your recovery address in full.")
}

/// 1060006: choose one of the account's addresses.
pub fn recovery_choose_address() -> Text {
    info(1060006, "How do you want to recover your account?")
}

/// 1060007: back to the previous recovery screen.
pub fn recovery_back() -> Text {
    info(1060007, "Back")
}

/// 1070000: a plain label (a masked address).
pub fn label_plain(text: &str) -> Text {
    info(1070000, text)
}

/// 1070016: "Recovery address".
pub fn label_recovery_address() -> Text {
    info(1070016, "Recovery address")
}

/// 1070017: "Phone number".
pub fn label_phone() -> Text {
    info(1070017, "Phone number")
}

/// 1010012: prepare the WebAuthn device (passwordless login).
pub fn login_webauthn_prepare() -> Text {
    info(1010012, "Prepare your WebAuthn device (e.g. security key, biometrics scanner, ...) and press continue.")
}

/// 1010013: "Continue" (the passwordless WebAuthn trigger).
pub fn login_continue() -> Text {
    info(1010013, "Continue")
}

/// 1040004: sign up with a security key (passwordless WebAuthn).
pub fn register_webauthn() -> Text {
    info(1040004, "Sign up with security key")
}

// --- social sign-in (OpenID Connect / OAuth2) ------------------------------------------------

/// 1010002: the login button of a provider (`label`: its label, else its id). A refresh
/// login names only the provider.
pub fn login_with_provider(label: &str, id: &str, refresh: bool) -> Text {
    let context = if refresh { json!({"provider": label}) } else { json!({"provider": label, "provider_id": id}) };
    info_with(1010002, format!("Sign in with {label}"), context)
}

/// 1040002: the registration button of a provider.
pub fn register_with_provider(label: &str, id: &str) -> Text {
    info_with(1040002, format!("Sign up with {label}"), json!({"provider": label, "provider_id": id}))
}

/// 1040003: continue a provider registration whose traits need completing.
pub fn registration_continue() -> Text {
    info(1040003, "Continue")
}

/// 1050002: link a provider in settings.
pub fn link_provider(label: &str) -> Text {
    info_with(1050002, format!("Link {label}"), json!({"provider": label}))
}

/// 1050003: unlink a provider in settings.
pub fn unlink_provider(label: &str) -> Text {
    info_with(1050003, format!("Unlink {label}"), json!({"provider": label}))
}

/// 1010016: the provider account's identifier belongs to an existing account; sign in to it
/// to link the provider.
pub fn login_to_link(
    duplicate: &str,
    provider: &str,
    login_url: &str,
    credential_types: &[String],
    providers: &[String],
) -> Text {
    info_with(
        1010016,
        format!(
            "You tried to sign in with {duplicate:?}, but that email is already used by another account. Sign in to your account with one of the options below to add your account {duplicate:?} at {provider:?} as another way to sign in."
        ),
        json!({
            "duplicateIdentifier": duplicate,
            "duplicate_identifier": duplicate,
            "provider": provider,
            "newLoginUrl": login_url,
            "new_login_url": login_url,
            "available_credential_types": credential_types,
            "available_providers": providers,
        }),
    )
}

/// 1010017: the first-factor submit label while linking.
pub fn login_and_link() -> Text {
    info(1010017, "Sign in and link")
}

/// 1010018: a provider button while linking.
pub fn login_with_provider_and_link(label: &str) -> Text {
    info_with(1010018, format!("Confirm with {label}"), json!({"provider": label}))
}

/// 4010009: the account signed in to is not the one the provider account matched.
pub fn linked_credentials_mismatch() -> Text {
    error(4010009, "Linked credentials do not match.", None)
}
