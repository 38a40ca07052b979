//! The JSON shape of a session (`session` in the OpenAPI document).

use crate::identity::Identity;
use crate::identity::view::{AdminMetadata, CredentialsView, render, ts};
use crate::model::session::Session;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};

/// Renders `session`; `identity` is `(identity, schema_url)` when expanded (else `null`);
/// `active` is the computed activity (stored flag, expiry, identity state).
pub fn render_session(
    session: &Session,
    identity: Option<(&Identity, &str)>,
    with_devices: bool,
    now: DateTime<Utc>,
) -> Json {
    let identity_active = identity.is_none_or(|(i, _)| i.state == crate::identity::IdentityState::Active);
    let mut m = Map::new();
    m.insert("id".into(), json!(session.id));
    m.insert("active".into(), json!(session.is_active(now, identity_active)));
    m.insert("expires_at".into(), ts(&session.expires_at));
    m.insert("authenticated_at".into(), ts(&session.authenticated_at));
    m.insert("authenticator_assurance_level".into(), json!(session.aal.as_str()));
    let methods: Vec<Json> = session
        .authentication_methods
        .iter()
        .map(|a| {
            let mut e = Map::new();
            e.insert("method".into(), json!(a.method));
            e.insert("aal".into(), json!(a.level().as_str()));
            e.insert("completed_at".into(), ts(&a.completed_at));
            if let Some(p) = a.provider.as_deref().filter(|p| !p.is_empty()) {
                e.insert("provider".into(), json!(p));
            }
            if let Some(o) = a.organization.as_deref().filter(|o| !o.is_empty()) {
                e.insert("organization".into(), json!(o));
            }
            Json::Object(e)
        })
        .collect();
    m.insert("authentication_methods".into(), Json::Array(methods));
    m.insert("issued_at".into(), ts(&session.issued_at));
    m.insert(
        "identity".into(),
        identity.map_or(Json::Null, |(i, url)| render(i, url, CredentialsView::Hidden, AdminMetadata::Hidden)),
    );
    let devices: Vec<Json> = if with_devices {
        session
            .devices
            .iter()
            .map(
                |d| json!({"id": d.id, "ip_address": d.ip_address, "user_agent": d.user_agent, "location": d.location}),
            )
            .collect()
    } else {
        Vec::new()
    };
    m.insert("devices".into(), Json::Array(devices));
    Json::Object(m)
}
