//! A flow submitted after it expired is replaced (behaviour.md §4.5): a new flow of the same
//! kind, type, request URL, schema and `return_to` carries the "expired" message; JSON
//! clients get 410 naming it, browsers are sent to it.

use super::Flow;
use crate::catalogue::Text;
use crate::error::Error;
use crate::selfservice::csrf;
use crate::selfservice::services::Services;
use crate::selfservice::step::{Outcome, RequestInfo};

/// Creates and stores the replacement of `old`: `prepare` builds its form, `message` says
/// that the old one expired.
pub async fn replace(
    svc: &Services,
    old: &Flow,
    info: &RequestInfo,
    prepare: impl FnOnce(&mut Flow),
    message: Text,
) -> Outcome {
    let now = svc.clock.now();
    let csrf = info.csrf_cookie.clone().filter(|t| csrf::is_valid(t)).unwrap_or_else(csrf::new_token);
    let mut new_flow = svc.new_flow(old.kind, old.flow_type, old.request_url.clone(), csrf);
    new_flow.data.identity_schema = old.data.identity_schema.clone();
    new_flow.return_to = old.return_to.clone();
    prepare(&mut new_flow);
    new_flow.ui.messages.push(message);
    svc.flows.create(new_flow.clone()).await;
    let error = Error::FlowExpired {
        expired_at: old.expires_at,
        now,
        replacement: Some(new_flow.id),
        continue_with: Vec::new(),
    };
    Outcome::Expired { new_flow, error }
}
