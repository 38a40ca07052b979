//! How a schema violation is told: where in the document, what is wrong, and the UI message
//! (id, text, context from the catalogue) on the node it concerns (behaviour.md §13.2).

use crate::catalogue::{self, Text};
use serde_json::Value as Json;

/// One violation of an identity schema by an identity document.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// JSON pointer into the identity document, e.g. `/traits/email`.
    pub instance_path: String,
    /// What is wrong.
    pub message: String,
    /// How a UI shows it: the node it belongs to and the `uiText` id and context.
    pub ui: UiViolation,
}

/// A violation as a UI message (behaviour.md §13.2): the node it belongs to and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct UiViolation {
    /// Dotted node name (`traits.email`); empty for the flow level.
    pub field: String,
    pub text: Text,
}

impl UiViolation {
    /// A violation shown as the generic message 4000001.
    pub fn generic(field: String, reason: &str) -> UiViolation {
        UiViolation { field, text: catalogue::generic(reason) }
    }
}

/// `/traits/a/b` → `traits.a.b`.
pub fn pointer_to_field(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

pub(super) fn ui_violation(e: &jsonschema::ValidationError<'_>) -> UiViolation {
    use jsonschema::error::ValidationErrorKind as K;
    let field = pointer_to_field(&e.instance_path().to_string());
    let instance = e.instance();
    let len = || instance.as_str().map_or(0, |s| s.chars().count());
    let items = || instance.as_array().map_or(0, Vec::len);
    let text = match e.kind() {
        K::Required { property } => {
            let name = property.as_str().unwrap_or_default().to_string();
            let field = if field.is_empty() { name.clone() } else { format!("{field}.{name}") };
            return UiViolation { field, text: catalogue::required(&name) };
        }
        K::MinLength { limit } => catalogue::min_length(*limit, len()),
        K::MaxLength { limit } => catalogue::max_length(*limit, len()),
        K::Pattern { pattern } => catalogue::pattern_mismatch(pattern),
        K::Minimum { limit } => catalogue::minimum(limit, instance),
        K::ExclusiveMinimum { limit } => catalogue::exclusive_minimum(limit, instance),
        K::Maximum { limit } => catalogue::maximum(limit, instance),
        K::ExclusiveMaximum { limit } => catalogue::exclusive_maximum(limit, instance),
        K::MultipleOf { multiple_of } => catalogue::multiple_of(*multiple_of, instance),
        K::MaxItems { limit } => catalogue::max_items(*limit, items()),
        K::MinItems { limit } => catalogue::min_items(*limit, items()),
        K::UniqueItems => catalogue::unique_items(),
        K::Type { kind } => {
            let allowed: Vec<String> = match kind {
                jsonschema::error::TypeKind::Single(t) => vec![t.to_string()],
                jsonschema::error::TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect(),
            };
            let actual = match &**instance {
                Json::Null => "null",
                Json::Bool(_) => "boolean",
                Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Json::Number(_) => "number",
                Json::String(_) => "string",
                Json::Array(_) => "array",
                Json::Object(_) => "object",
            };
            catalogue::wrong_type(&allowed, actual)
        }
        K::Constant { expected_value } => catalogue::constant(expected_value),
        K::Format { format } => match catalogue::invalid_format(format, instance) {
            Some(text) => text,
            None => return UiViolation::generic(field, &e.to_string()),
        },
        _ => return UiViolation::generic(field, &e.to_string()),
    };
    UiViolation { field, text }
}
