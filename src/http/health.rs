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
                .service(web::resource("/admin/metrics/prometheus").get(prometheus))
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

/// Prometheus text format: Kratos' HTTP families, then tessera's own (actors, Persister,
/// courier, hash pool, brute force).
async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    use crate::telemetry::metrics::{CONTENT_TYPE, Exposition};
    let mut body = state.http_metrics.render();
    for m in state.metric_sets() {
        body.push_str(&m.render());
    }
    let mut e = Exposition::default();
    let (sessions, flows) = (state.sessions.registry.stats(), state.selfservice.services.flows.stats());
    let by = |f: fn(&crate::actors::registry::RegistryStats) -> u64| {
        [(sessions, "session"), (flows, "flow")].map(|(s, r)| (r, f(&s) as f64))
    };
    let samples = |v: [(&'static str, f64); 2]| v.map(|(r, n)| (vec![("registry", r)], n));
    let family = |e: &mut Exposition, name: &str, kind: &str, help: &str, v: [(&'static str, f64); 2]| {
        let rows = samples(v);
        let refs: Vec<(&[(&str, &str)], f64)> = rows.iter().map(|(l, n)| (l.as_slice(), *n)).collect();
        e.family(name, kind, help, &refs);
    };
    family(&mut e, "tessera_live_actors", "gauge", "session and flow actors held in memory", by(|s| s.live));
    family(
        &mut e,
        "tessera_registry_activations_total",
        "counter",
        "actors activated from the store",
        by(|s| s.activations),
    );
    family(
        &mut e,
        "tessera_registry_evictions_total",
        "counter",
        "actors evicted because the registry was full (actors.*.max_live)",
        by(|s| s.evictions),
    );
    family(
        &mut e,
        "tessera_registry_passivations_total",
        "counter",
        "actors passivated after their idle timeout",
        by(|s| s.passivations),
    );
    let p = state.persister.stats().snapshot();
    let gauge =
        |e: &mut Exposition, name: &str, kind: &str, help: &str, v: f64| e.family(name, kind, help, &[(&[], v)]);
    gauge(
        &mut e,
        "tessera_persister_queue_depth",
        "gauge",
        "writes queued and not yet committed",
        state.persister.pending() as f64,
    );
    gauge(&mut e, "tessera_persister_transactions_total", "counter", "transactions committed", p.transactions as f64);
    gauge(&mut e, "tessera_persister_operations_total", "counter", "writes committed", p.operations as f64);
    gauge(
        &mut e,
        "tessera_persister_coalesced_total",
        "counter",
        "writes merged into a queued write of the same row",
        p.coalesced as f64,
    );
    gauge(
        &mut e,
        "tessera_persister_retries_total",
        "counter",
        "batches retried while the database was unreachable",
        p.retries as f64,
    );
    let hashes = &state.identities.hashes;
    gauge(
        &mut e,
        "tessera_hash_jobs_total",
        "counter",
        "password hashes and verifications finished",
        hashes.completed() as f64,
    );
    gauge(&mut e, "tessera_hash_in_flight", "gauge", "hashes and verifications running now", hashes.in_flight() as f64);
    gauge(&mut e, "tessera_hash_workers", "gauge", "hash pool workers", hashes.workers() as f64);
    body.push_str(&e.into_text());
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(body)
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
