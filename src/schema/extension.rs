//! Reads the `ory.sh/kratos` extension: walks the schema alongside a valid identity document
//! and collects credential identifiers and addresses, normalised as Kratos does.

use super::violation::{UiViolation, Violation, pointer_to_field};
use serde_json::Value as Json;

/// An address with its channel (`email` or `sms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub via: String,
    pub value: String,
}

/// What the extension says about one identity's traits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Values that identify the identity for the password method (lower-cased, trimmed).
    pub password_identifiers: Vec<String>,
    /// Values that identify the identity for passwordless WebAuthn (lower-cased, trimmed).
    pub webauthn_identifiers: Vec<String>,
    /// Addresses that one-time codes may be sent to.
    pub code_identifiers: Vec<Address>,
    /// The TOTP account name.
    pub totp_account_name: Option<String>,
    /// The passkey display name.
    pub passkey_display_name: Option<String>,
    /// Addresses to verify.
    pub verifiable_addresses: Vec<Address>,
    /// Addresses recovery messages go to.
    pub recovery_addresses: Vec<Address>,
}

impl Extracted {
    /// Whether `other` names the same credential identifiers and addresses: a change of
    /// traits that alters any of them needs a privileged session (behaviour.md §7).
    pub fn same_identifiers(&self, other: &Extracted) -> bool {
        self.password_identifiers == other.password_identifiers
            && self.webauthn_identifiers == other.webauthn_identifiers
            && self.code_identifiers == other.code_identifiers
            && self.verifiable_addresses == other.verifiable_addresses
            && self.recovery_addresses == other.recovery_addresses
    }
}

/// Normalises an address for its channel: e-mail lower-cased and trimmed, phone in E.164.
pub fn normalise(via: &str, value: &str) -> Result<String, String> {
    match via {
        "sms" => {
            let number =
                phonenumber::parse(None, value.trim()).map_err(|_| format!("{value:?} is not a valid phone number"))?;
            if !phonenumber::is_valid(&number) {
                return Err(format!("{value:?} is not a valid phone number"));
            }
            Ok(number.format().mode(phonenumber::Mode::E164).to_string())
        }
        _ => Ok(value.trim().to_lowercase()),
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

pub(super) fn extract(schema: &Json, document: &Json) -> Result<Extracted, Vec<Violation>> {
    let mut out = Extracted::default();
    let mut violations = Vec::new();
    walk(schema, schema, document, &mut String::new(), &mut out, &mut violations, 0);
    if violations.is_empty() { Ok(out) } else { Err(violations) }
}

fn resolve<'a>(root: &'a Json, node: &'a Json) -> &'a Json {
    match node.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(node),
        None => node,
    }
}

fn walk(
    root: &Json,
    node: &Json,
    value: &Json,
    path: &mut String,
    out: &mut Extracted,
    violations: &mut Vec<Violation>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let node = resolve(root, node);
    if let Some(ext) = node.get("ory.sh/kratos")
        && let Some(s) = value.as_str()
    {
        apply(ext, s, path, out, violations);
    }
    if let Some(all) = node.get("allOf").and_then(Json::as_array) {
        for sub in all {
            walk(root, sub, value, path, out, violations, depth + 1);
        }
    }
    match value {
        Json::Object(map) => {
            if let Some(props) = node.get("properties").and_then(Json::as_object) {
                for (key, sub) in props {
                    if let Some(v) = map.get(key) {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                        walk(root, sub, v, path, out, violations, depth + 1);
                        path.truncate(len);
                    }
                }
            }
        }
        Json::Array(items) => {
            if let Some(sub) = node.get("items") {
                for (i, v) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    walk(root, sub, v, path, out, violations, depth + 1);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn apply(ext: &Json, value: &str, path: &str, out: &mut Extracted, violations: &mut Vec<Violation>) {
    let flag = |p: &str| ext.pointer(p).and_then(Json::as_bool).unwrap_or(false);
    let mut norm = |via: &str| match normalise(via, value) {
        Ok(v) => Some(v),
        Err(message) => {
            let ui = UiViolation::generic(pointer_to_field(path), &message);
            push_unique(violations, Violation { instance_path: path.to_string(), message, ui });
            None
        }
    };
    if flag("/credentials/password/identifier") {
        push_unique(&mut out.password_identifiers, value.trim().to_lowercase());
    }
    if flag("/credentials/webauthn/identifier") {
        push_unique(&mut out.webauthn_identifiers, value.trim().to_lowercase());
    }
    if flag("/credentials/totp/account_name") {
        out.totp_account_name = Some(value.to_string());
    }
    if flag("/credentials/passkey/display_name") {
        out.passkey_display_name = Some(value.to_string());
    }
    if flag("/credentials/code/identifier") {
        let via = ext.pointer("/credentials/code/via").and_then(Json::as_str).unwrap_or("email");
        if let Some(v) = norm(via) {
            push_unique(&mut out.code_identifiers, Address { via: via.into(), value: v });
        }
    }
    if let Some(via) = ext.pointer("/verification/via").and_then(Json::as_str)
        && let Some(v) = norm(via)
    {
        push_unique(&mut out.verifiable_addresses, Address { via: via.into(), value: v });
    }
    if let Some(via) = ext.pointer("/recovery/via").and_then(Json::as_str)
        && let Some(v) = norm(via)
    {
        push_unique(&mut out.recovery_addresses, Address { via: via.into(), value: v });
    }
}
