//! Traits submitted in a registration: validated against the identity schema and, when they
//! do not fit, rendered into the form with their values kept (behaviour.md §13.2).

use super::flow::Flow;
use super::services::Services;
use crate::catalogue as text;
use crate::schema::{Extracted, TraitsError};
use serde_json::Value as Json;

/// Validates `traits` against the flow's schema. On failure the flow shows the violations
/// (values kept, passwords cleared, sorted) and `None` is returned.
pub fn validate(svc: &Services, flow: &mut Flow, traits: &Json) -> Option<Extracted> {
    let (schema_id, schema) = svc.schema_of(flow);
    match svc.schemas.validate_traits(&schema_id, traits) {
        Ok(x) => Some(x),
        Err(e) => {
            flow.ui.reset_messages();
            flow.ui.fill_traits(traits);
            flow.ui.clear_passwords();
            show_problem(flow, e);
            flow.ui.sort_registration(&schema);
            None
        }
    }
}

/// Renders why traits do not fit their schema into the flow.
pub fn show_problem(flow: &mut Flow, e: TraitsError) {
    match e {
        TraitsError::Invalid(violations) => {
            let ui: Vec<_> = violations.into_iter().map(|v| v.ui).collect();
            flow.ui.add_violations(&ui);
        }
        TraitsError::UnknownSchema(id) => {
            flow.ui.messages.push(text::generic(&format!("Unable to find JSON Schema ID: {id}")));
        }
    }
}
