//! `/health/alive`, `/health/ready` (both servers), `/admin/health/config` and `/admin/version`.

use super::state::{AppState, Side, ok_json};
use actix_web::{HttpResponse, web};
use serde_json::{Map, json};

/// Shown on the public server instead of the real readiness errors.
const OBFUSCATED: &str = "error may contain sensitive information and was obfuscated";

pub(super) fn routes(cfg: &mut web::ServiceConfig, side: Side) {
    match side {
        Side::Public => {
            cfg.service(web::resource("/health/alive").get(alive))
                .service(web::resource("/health/ready").get(ready_public));
        }
        Side::Admin => {
            cfg.service(web::resource("/admin/health/alive").get(alive))
                .service(web::resource("/admin/health/ready").get(ready_admin))
                .service(web::resource("/admin/health/config").get(config_hash))
                .service(web::resource("/admin/version").get(version));
        }
    }
}

async fn alive() -> HttpResponse {
    ok_json(&json!({"status": "ok"}))
}

/// The configuration's `revision`, else the hex SHA-256 of the loaded keys (as upstream: it
/// tells which configuration a process runs).
async fn config_hash(state: web::Data<AppState>) -> HttpResponse {
    let c = &state.config;
    let body = c.revision.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| c.digest.clone());
    HttpResponse::Ok().content_type("text/plain").body(body)
}

async fn version() -> HttpResponse {
    ok_json(&json!({"version": env!("CARGO_PKG_VERSION")}))
}

async fn ready_public(state: web::Data<AppState>) -> HttpResponse {
    ready(&state, true).await
}

async fn ready_admin(state: web::Data<AppState>) -> HttpResponse {
    ready(&state, false).await
}

/// Ready when the database answers and no migration is pending.
async fn ready(state: &AppState, obfuscate: bool) -> HttpResponse {
    let mut errors = Map::new();
    match state.store.ping().await {
        Err(e) => {
            errors.insert("database".into(), json!(e.to_string()));
        }
        Ok(()) => match state.store.pending_migrations().await {
            Ok(pending) if !pending.is_empty() => {
                errors.insert(
                    "migrations".into(),
                    json!(format!("migrations have not yet been fully applied: {} pending", pending.len())),
                );
            }
            Ok(_) => {}
            Err(e) => {
                errors.insert("migrations".into(), json!(e.to_string()));
            }
        },
    }
    if errors.is_empty() {
        return ok_json(&json!({"status": "ok"}));
    }
    if obfuscate {
        for v in errors.values_mut() {
            *v = json!(OBFUSCATED);
        }
    }
    HttpResponse::ServiceUnavailable().json(json!({"errors": errors}))
}
