//! `GET /schemas` and `GET /schemas/{id}`. The public server answers them (also under
//! `/admin/schemas`); the admin server redirects them to the public server (307), as Kratos.

use super::error::ApiError;
use super::pagination::LegacyPage;
use super::state::{AppState, ok_json, to_public};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    for prefix in ["", "/admin"] {
        cfg.service(web::resource(format!("{prefix}/schemas")).get(list))
            .service(web::resource(format!("{prefix}/schemas/{{id}}")).get(get));
    }
}

pub(super) fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/schemas").get(to_public))
        .service(web::resource("/admin/schemas/{id}").get(to_public));
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let all = state.schemas.all();
    let page = LegacyPage::from_request(&req, 250, 1000);
    let items: Vec<_> =
        all.iter().skip(page.offset).take(page.limit).map(|s| json!({"id": s.id, "schema": s.raw})).collect();
    let mut res = ok_json(&items);
    page.write_headers(&req, all.len(), res.headers_mut());
    res
}

async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = if id.is_empty() { state.schemas.default_id().to_string() } else { id.into_inner() };
    let schema = state
        .schemas
        .get(&id)
        .ok_or_else(|| crate::error::Error::not_found(format!("Identity schema `{id}` could not be found.")))?;
    Ok(ok_json(&schema.raw))
}
