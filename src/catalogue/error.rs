//! `error.id` values (`reference/errors.tsv`) and the fixed texts of the errors the domain
//! raises. An error without an id gets the standard message of its status (`http::error`).

/// 422: the next step needs a full browser navigation.
pub const BROWSER_LOCATION_CHANGE_REQUIRED: &str = "browser_location_change_required";
/// 500: a server-side misconfiguration surfaced to the caller.
pub const INVALID_CONFIGURATION: &str = "invalid_configuration";
/// 403: a browser flow without a matching CSRF token.
pub const SECURITY_CSRF_VIOLATION: &str = "security_csrf_violation";
/// 403: a settings flow of another identity.
pub const SECURITY_IDENTITY_MISMATCH: &str = "security_identity_mismatch";
/// 400: the flow kind is disabled.
pub const SELF_SERVICE_FLOW_DISABLED: &str = "self_service_flow_disabled";
/// 410: the flow expired.
pub const SELF_SERVICE_FLOW_EXPIRED: &str = "self_service_flow_expired";
/// 410: the flow had to start over.
pub const SELF_SERVICE_FLOW_REPLACED: &str = "self_service_flow_replaced";
/// 400: a `return_to` outside the allow-list.
pub const SELF_SERVICE_FLOW_RETURN_TO_FORBIDDEN: &str = "self_service_flow_return_to_forbidden";
/// 401: a higher AAL was asked for without a session.
pub const SESSION_AAL1_REQUIRED: &str = "session_aal1_required";
/// 403: the session's AAL is too low.
pub const SESSION_AAL2_REQUIRED: &str = "session_aal2_required";
/// 401: declared by Kratos, emitted by no code path (reserved).
pub const SESSION_AAL_ALREADY_FULFILLED: &str = "session_aal_already_fulfilled";
/// 400: a session exists already.
pub const SESSION_ALREADY_AVAILABLE: &str = "session_already_available";
/// 401: no usable session.
pub const SESSION_INACTIVE: &str = "session_inactive";
/// 403: the change needs a recent sign-in.
pub const SESSION_REFRESH_REQUIRED: &str = "session_refresh_required";
/// 403: sign-in needs a verified address.
pub const SESSION_VERIFIED_ADDRESS_REQUIRED: &str = "session_verified_address_required";
/// 502: a remote identity schema could not be fetched.
pub const UPSTREAM_ERROR: &str = "upstream_error";

/// The message of `session_already_available` at login and registration.
pub const ALREADY_SIGNED_IN_MESSAGE: &str = "you are already logged in";
/// Reason: a login flow while signed in.
pub const LOGIN_ALREADY_SIGNED_IN: &str =
    "A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?";
/// Reason: a registration flow while signed in.
pub const REGISTRATION_ALREADY_SIGNED_IN: &str = "A valid session was detected and thus registration is not possible.";
/// Reason: a recovery flow while signed in.
pub const RECOVERY_ALREADY_SIGNED_IN: &str = "A valid session was detected and thus recovery is not possible.";

/// Message and reason: registration is disabled.
pub const REGISTRATION_DISABLED_MESSAGE: &str = "registration flow disabled";
pub const REGISTRATION_DISABLED: &str = "Registration is not allowed because it was disabled.";
/// Reason: recovery is disabled.
pub const RECOVERY_DISABLED: &str = "Recovery is not allowed because it was disabled.";
/// Reason: verification is disabled.
pub const VERIFICATION_DISABLED: &str = "Verification is not allowed because it was disabled.";
/// Reason: an admin endpoint whose method is disabled.
pub const ENDPOINT_DISABLED: &str = "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.";

/// Message and reason: no usable session (`session_inactive`, or without an id).
pub const NO_SESSION_MESSAGE: &str = "request does not have a valid authentication session";
pub const NO_SESSION: &str = "No active session was found in this request.";
/// Reason: a settings flow read or submitted without any session.
pub const SESSION_MISSING: &str = "A valid Ory Session Cookie or Ory Session Token is missing.";
/// Message and reason: the identity may not sign in.
pub const IDENTITY_DISABLED_MESSAGE: &str = "identity is disabled";
pub const IDENTITY_DISABLED: &str = "Identity is disabled.";
/// Message and reason of `session_aal1_required`.
pub const AAL1_REQUIRED_MESSAGE: &str = "aal2 and aal3 can only be requested if a session exists already";
pub const AAL1_REQUIRED: &str = "You can not requested a higher AAL (AAL2/AAL3) without an active session.";
/// Message and reason of `session_aal2_required`.
pub const AAL2_REQUIRED_MESSAGE: &str = "Session does not fulfill the requested Authenticator Assurance Level";
pub const AAL2_REQUIRED: &str = "An active session was found but it does not fulfill the requested Authenticator Assurance Level. Please verify yourself with a second factor to resolve this issue.";

/// Message, reason and details of `security_csrf_violation`.
pub const CSRF_MESSAGE: &str = "the request was rejected to protect you from Cross-Site-Request-Forgery";
pub const CSRF_REASON: &str = "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other serious security issues.";
pub const CSRF_DOCS: &str = "https://www.ory.sh/kratos/docs/debug/csrf";
pub const CSRF_HINT_TOKEN_MISSING: &str = "The anti-CSRF cookie was found but the CSRF token was not included in the HTTP request body (csrf_token) nor in the HTTP Header (X-CSRF-Token).";
pub const CSRF_HINT_AJAX: &str = "We detected an AJAX call: make sure that CORS is enabled for this origin and that the request is sent with credentials (`credentials: 'include'` with fetch, `withCredentials: true` with axios), from the same top-level domain as this server.";
pub const CSRF_HINT_SERVER: &str = "We detected a regular browser or server-side call: make sure that the browser sends the CSRF cookie with the form and that the form includes the csrf_token field. Server-side apps must forward the Cookie header.";
/// `reject_reason`s of a CSRF failure.
pub const CSRF_NO_COOKIE_HEADER: &str = "The HTTP Cookie Header is empty or not set.";
pub const CSRF_NO_CSRF_COOKIE: &str = "The HTTP Cookie Header was set but did not include the anti-CSRF cookie.";
pub const CSRF_MISMATCH: &str = "The HTTP Cookie Header was set and a CSRF token was sent but they do not match. We recommend deleting all cookies for this domain and retrying the flow.";

/// Reason of `security_identity_mismatch`.
pub const IDENTITY_MISMATCH: &str =
    "You must restart the flow because the resumable session was initiated by another person.";
/// Reason of `session_refresh_required`.
pub const REFRESH_REQUIRED: &str =
    "The login session is too old and thus not allowed to update these fields. Please re-authenticate.";
/// Message and reason of `session_verified_address_required`.
pub const VERIFIED_ADDRESS_REQUIRED_MESSAGE: &str = "The request was forbidden";
pub const VERIFIED_ADDRESS_REQUIRED: &str = "A verified address is required to log in.";

/// Message of `self_service_flow_expired` on submit.
pub const FLOW_EXPIRED_MESSAGE: &str = "self-service flow expired";
/// Reason of `self_service_flow_expired` on submit.
pub fn flow_expired(minutes_ago: f64) -> String {
    format!("The self-service flow expired {minutes_ago:.2} minutes ago, initialize a new one.")
}
/// Message of an expired flow that is fetched.
pub const FLOW_GONE_MESSAGE: &str =
    "The requested resource is no longer available because it has expired or is otherwise invalid.";
/// Reason of an expired browser flow that is fetched.
pub fn flow_gone_browser(kind: &str) -> String {
    format!(
        "The {kind} flow has expired. Redirect the user to the {kind} flow init endpoint to initialize a new {kind} flow."
    )
}
/// Reason of an expired API flow that is fetched.
pub fn flow_gone_api(kind: &str) -> String {
    format!("The {kind} flow has expired. Call the {kind} flow init API endpoint to initialize a new {kind} flow.")
}
/// Message of `self_service_flow_replaced`.
pub const FLOW_REPLACED_MESSAGE: &str = "self-service flow replaced";
/// Message and reason of `browser_location_change_required`.
pub const LOCATION_CHANGE_MESSAGE: &str = "browser location change required";
pub fn location_change(to: &str) -> String {
    format!("In order to complete this flow please redirect the browser to: {to}")
}
/// Reason of `self_service_flow_return_to_forbidden`.
pub fn return_to_forbidden(url: &str) -> String {
    format!("Requested return_to URL \"{url}\" is not allowed.")
}

/// Message of `invalid_configuration`.
pub const INVALID_CONFIGURATION_MESSAGE: &str = "The services failed to load its configuration";
/// Reasons of `invalid_configuration`.
pub const LOGIN_CHALLENGE_UNSUPPORTED: &str =
    "refusing to parse login_challenge query parameter because oauth2_provider.url is invalid or unset";
/// Reasons of OAuth2 provider (Hydra) failures.
pub const OAUTH2_GET_LOGIN_REQUEST: &str = "Unable to get OAuth 2.0 Login Challenge.";
pub const OAUTH2_ACCEPT_LOGIN_REQUEST: &str = "Unable to accept OAuth 2.0 Login Challenge.";
pub const LOGIN_CHALLENGE_EMPTY: &str = "the login_challenge parameter is present but empty";
pub const NO_VERIFIABLE_ADDRESS: &str = "A misconfiguration prevents login. Expected to find a verification address but this identity does not have one assigned.";

/// Message and reason of a web hook that timed out.
pub const UPSTREAM_TIMEOUT_MESSAGE: &str = "The web hook timed out";
pub const UPSTREAM_TIMEOUT: &str = "A third-party upstream service could not be reached in time.";
/// Message of a web hook that failed.
pub const UPSTREAM_MESSAGE: &str = "An upstream server encountered an error or returned a malformed response";
/// Reasons of a web hook that failed.
pub const UPSTREAM_UNREACHABLE: &str = "A third-party upstream service responded improperly.";
pub const MIGRATION_HOOK_UNREACHABLE: &str =
    "A third-party upstream service could not be reached. Please try again later.";
pub const MIGRATION_HOOK_IMPROPER: &str =
    "A third-party upstream service responded improperly. Please try again later.";
pub const UPSTREAM_UNPARSABLE: &str = "The web hook response could not be parsed.";
pub const UPSTREAM_REFUSED_UNPARSABLE: &str = "The web hook refused the request but its response could not be parsed.";
pub fn upstream_status(status: u16) -> String {
    format!("web hook failed with status code {status}")
}

/// Reason of a create that collides with an existing identity.
pub const IDENTITY_CONFLICT: &str = "This identity conflicts with another identity that already exists.";
/// Message of a unique violation (Kratos' `sqlcon.ErrUniqueViolation`, no reason).
pub const UNIQUE_VIOLATION_MESSAGE: &str =
    "Unable to insert or update resource because a resource with that value exists already";
/// Reason of a write that lost a race: the record changed after it was read.
pub const STALE_REASON: &str = "The record was changed by another request while this one ran. Load it again and retry.";
/// Message of a missing row (Kratos' `sqlcon.ErrNoRows`, no reason).
pub const NO_ROWS_MESSAGE: &str = "Unable to locate the resource";

/// Reason of a logout whose token does not belong to the session.
pub const LOGOUT_TOKEN_MISMATCH: &str =
    "Unable to log out because the logout token in the URL query does not match the session cookie.";
/// Reason of an API logout with an unknown token.
pub const SESSION_TOKEN_UNKNOWN: &str =
    "The provided Ory Session Token could not be found, is invalid, or otherwise malformed.";

/// Reasons of 4000001 (a flow shown again with the reason as a message).
pub const GET_NOT_ALLOWED: &str =
    "Unable to decode body because HTTP Request Method was \"GET\" but only [POST PUT PATCH] are supported.";
pub const API_FLOW_ORIGIN: &str = "The HTTP Request Header included the \"Origin\" key, indicating that this request was made as part of an AJAX request in a Browser. The flow however was initiated as an API request. To prevent potential misuse and mitigate several attack vectors including CSRF, the request has been blocked.";
pub const API_FLOW_COOKIE: &str = "The HTTP Request Header included the \"Cookie\" key, indicating that this request was made by a Browser. The flow however was initiated as an API request. To prevent potential misuse and mitigate several attack vectors including CSRF, the request has been blocked.";
