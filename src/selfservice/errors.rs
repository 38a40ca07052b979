//! Stored self-service errors (behaviour.md §11): a browser request that fails is sent to the
//! error UI with `?id=`, and the UI reads the error from `GET /self-service/errors?id=`.

use super::services::Services;
use crate::error::Error;
use crate::identity::view::ts;
use crate::persistence::selfservice::{self as rows, ErrorRecord};
use crate::persistence::{Durability, WriteOp};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Stores `error` (its JSON; durable: the browser is about to ask for it) and returns its id.
pub async fn store(svc: &Services, error: Json) -> Result<Uuid, Error> {
    let now = svc.clock.now();
    let record =
        ErrorRecord { id: Uuid::new_v4(), error, was_seen: false, seen_at: None, created_at: now, updated_at: now };
    let id = record.id;
    svc.persister
        .write(WriteOp::InsertError(Box::new(record)), Durability::Durable)
        .await
        .map_err(|e| Error::internal(&e))?;
    Ok(id)
}

/// The canned error of `?id=stub:500`.
fn stub() -> Json {
    json!({
        "code": 500,
        "status": "Internal Server Error",
        "reason": "This is a stub error.",
        "message": "An internal server error occurred, please contact the system administrator",
    })
}

/// `GET /self-service/errors?id=`: the container, marked as seen.
pub async fn read(svc: &Services, id: &str) -> Result<Json, Error> {
    let now = svc.clock.now();
    if id == "stub:500" {
        return Ok(json!({"id": id, "error": stub(), "created_at": ts(&now), "updated_at": ts(&now)}));
    }
    let Ok(uuid) = Uuid::parse_str(id) else { return Err(Error::no_rows()) };
    let mut pooled = svc.store.get().await.map_err(Error::from)?;
    let record =
        rows::read_error(&mut pooled.conn(), uuid, now).await.map_err(Error::from)?.ok_or_else(Error::no_rows)?;
    Ok(json!({
        "id": record.id,
        "error": record.error,
        "created_at": ts(&record.created_at),
        "updated_at": ts(&record.updated_at),
    }))
}
