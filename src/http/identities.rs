//! Admin identity endpoints (`/admin/identities…`): parse, call the identity service, render.

use super::error::ApiError;
use super::state::{
    AppState, json_response, link_entry as link, query_all as all, query_first as first, query_pairs,
    temporary_redirect,
};
use crate::identity::Identity;
use crate::identity::import::{BatchPatchBody, CreateIdentityBody, UpdateIdentityBody};
use crate::identity::view::{AdminMetadata, CredentialsView, render};
use crate::persistence::identity::{ListFilter, ListPage};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Credential types `include_credential` accepts (Kratos' `ParseCredentialsType`).
const CREDENTIAL_TYPES: [&str; 10] = [
    "password",
    "oidc",
    "totp",
    "lookup_secret",
    "webauthn",
    "code",
    "passkey",
    "saml",
    "link_recovery",
    "code_recovery",
];
/// Most ids one list request may filter by.
const MAX_IDS: usize = 500;
/// Batch limits (`PATCH /admin/identities`).
const BATCH_LIMIT: usize = 1000;
const BATCH_PLAINTEXT_LIMIT: usize = 200;
/// Legacy page mode may not reach beyond this many items.
const PAGE_MODE_LIMIT: i64 = 1000;

/// The public server sends identity routes to the admin server (307, query kept), as Kratos.
pub(super) fn public_routes(cfg: &mut web::ServiceConfig) {
    for prefix in ["/identities", "/admin/identities"] {
        cfg.service(web::resource(prefix).to(to_admin))
            .service(web::resource(format!("{prefix}/{{tail:.*}}")).to(to_admin));
    }
}

async fn to_admin(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let path = req.path().strip_prefix("/admin").unwrap_or(req.path());
    temporary_redirect(&state.config.admin_base_url(), &format!("admin{path}"), req.query_string())
}

pub(super) fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/identities").get(list).post(create).patch(batch))
        .service(web::resource("/admin/identities/by/external/{external_id}").get(get_by_external_id))
        .service(web::resource("/admin/identities/{id}").get(get).put(update).patch(patch).delete(delete))
        .service(web::resource("/admin/identities/{id}/credentials/{type}").delete(delete_credential));
}

/// Path ids that are not UUIDs find nothing (Kratos parses them to the nil UUID).
fn path_id(raw: &str) -> Uuid {
    Uuid::parse_str(raw).unwrap_or(Uuid::nil())
}

fn included_credentials(pairs: &[(String, String)]) -> Result<Vec<String>, ApiError> {
    all(pairs, "include_credential")
        .map(|v| {
            if CREDENTIAL_TYPES.contains(&v) {
                Ok(v.to_string())
            } else {
                Err(ApiError::bad_request(format!("Invalid value `{v}` for parameter `include_credential`.")))
            }
        })
        .collect()
}

fn render_admin(state: &AppState, identity: &Identity, view: CredentialsView<'_>) -> Json {
    // Provider tokens are stored encrypted: `include_credential=oidc` shows them in clear.
    if let CredentialsView::Declassified(include) = view
        && include.iter().any(|t| t == "oidc")
        && identity.credentials.contains_key("oidc")
    {
        let mut clear = identity.clone();
        crate::selfservice::strategy::oidc::declassify(&state.config, &mut clear);
        return render(&clear, &state.identities.schema_url_of(identity), view, AdminMetadata::Show);
    }
    render(identity, &state.identities.schema_url_of(identity), view, AdminMetadata::Show)
}

/// Create and update answer with what the request set (`metadata_admin` left out when unset).
fn render_written(state: &AppState, identity: &Identity) -> Json {
    render(identity, &state.identities.schema_url_of(identity), CredentialsView::NoConfig, AdminMetadata::OmitNull)
}

/// A create/batch body that does not decode: Kratos sets only the message (`WithError`).
fn decode_error(e: &serde_json::Error) -> ApiError {
    ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, "").with_message(e.to_string())
}

/// What a list request asks for.
struct ListRequest {
    filter: ListFilter,
    include: Vec<String>,
    expand_credentials: bool,
    mode: Mode,
}

enum Mode {
    Keyset { token: Uuid, size: i64 },
    Page { page: i64, per_page: i64 },
}

fn parse_list(pairs: &[(String, String)]) -> Result<ListRequest, ApiError> {
    let mut filters = 0;
    let mut filter = ListFilter::All;
    let mut expand_credentials = false;
    let ids: Vec<&str> = all(pairs, "ids").collect();
    if !ids.is_empty() {
        filters += 1;
        let parsed = ids
            .iter()
            .map(|v| {
                Uuid::parse_str(v)
                    .map_err(|_| ApiError::bad_request(format!("Invalid UUID value `{v}` for parameter `ids`.")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.len() > MAX_IDS {
            return Err(ApiError::bad_request("The number of ids to filter must not exceed 500."));
        }
        filter = ListFilter::Ids(parsed);
    }
    if let Some(org) = first(pairs, "organization_id").filter(|v| !v.is_empty()) {
        filters += 1;
        let org = Uuid::parse_str(org).map_err(|_| {
            ApiError::bad_request(format!("Invalid UUID value `{org}` for parameter `organization_id`."))
        })?;
        filter = ListFilter::Organization(org);
    }
    if let Some(identifier) = first(pairs, "credentials_identifier").filter(|v| !v.is_empty()) {
        filters += 1;
        expand_credentials = true;
        filter = ListFilter::Identifier { normalised: identifier.trim().to_lowercase(), raw: identifier.to_string() };
    }
    if let Some(prefix) = first(pairs, "preview_credentials_identifier_similar").filter(|v| !v.is_empty()) {
        filters += 1;
        expand_credentials = true;
        filter = ListFilter::IdentifierPrefix { normalised: prefix.trim().to_lowercase(), raw: prefix.to_string() };
    }
    let include = included_credentials(pairs)?;
    expand_credentials |= !include.is_empty();
    if filters > 1 {
        return Err(ApiError::bad_request("You cannot combine multiple filters in this API"));
    }
    let has = |k: &str| first(pairs, k).is_some();
    let mode = if has("page_token") || has("page_size") || !has("page") {
        // `per_page` alone (no page_token, page_size or page) is an alias of `page_size`.
        let alias = !has("page_token") && !has("page_size") && !has("page");
        let size_raw = first(pairs, "page_size").or_else(|| first(pairs, "per_page").filter(|_| alias));
        let size = match size_raw.filter(|s| !s.is_empty()) {
            None => 250,
            Some(s) => s
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("strconv.Atoi: parsing {s:?}: invalid syntax")))?,
        };
        let size = if size < 1 { 250 } else { size.min(500) };
        let token = match first(pairs, "page_token") {
            None | Some("") => Uuid::nil(),
            Some(t) => Uuid::parse_str(t)
                .map_err(|_| ApiError::bad_request("The page token is invalid, do not craft your own page tokens"))?,
        };
        Mode::Keyset { token, size }
    } else {
        let page = first(pairs, "page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(0).max(0);
        let per_page = first(pairs, "per_page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(250).clamp(1, 500);
        if page.saturating_mul(per_page) > PAGE_MODE_LIMIT {
            return Err(ApiError::bad_request(format!(
                "Legacy pagination is not supported for enumerating over {PAGE_MODE_LIMIT} items. Please switch to using page_token and page_size."
            )));
        }
        Mode::Page { page, per_page }
    };
    Ok(ListRequest { filter, include, expand_credentials, mode })
}

/// The page-mode `Link` (Kratos' `pagepagination`): entries carry `page` and `per_page`.
fn page_link(req: &HttpRequest, pairs: &[(String, String)], total: i64, page: i64, ipp: i64) -> String {
    let entry = |rel: &str, limit: i64, offset: i64| {
        link(req, pairs, &[("per_page", limit.to_string()), ("page", (offset / limit).to_string())], rel)
    };
    let offset = page * ipp;
    let last = if total % ipp == 0 { total - ipp } else { (total / ipp) * ipp };
    let rels = if offset >= last {
        if total == 0 {
            vec![
                entry("first", ipp, 0),
                entry("next", ipp, (offset / ipp + 1) * ipp),
                entry("prev", ipp, (offset / ipp - 1) * ipp),
            ]
        } else if total <= ipp {
            vec![entry("first", total, 0)]
        } else {
            vec![entry("first", ipp, 0), entry("prev", ipp, last - ipp)]
        }
    } else if offset < ipp {
        vec![entry("next", ipp, ipp), entry("last", ipp, last)]
    } else {
        vec![
            entry("first", ipp, 0),
            entry("next", ipp, (offset / ipp + 1) * ipp),
            entry("prev", ipp, (offset / ipp - 1) * ipp),
            entry("last", ipp, last),
        ]
    };
    rels.join(",")
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let mut pairs = query_pairs(&req);
    let request = parse_list(&pairs)?;
    let service = &state.identities;
    let (identities, headers) = match request.mode {
        Mode::Keyset { token, size } => {
            let mut found = service
                .list(&request.filter, ListPage::After { after: token, limit: size + 1 }, request.expand_credentials)
                .await?;
            let more = found.len() as i64 > size;
            found.truncate(size as usize);
            // Kratos rewrites a lone `per_page` into `page_size` before building links.
            let has = |k: &str| pairs.iter().any(|(key, _)| key == k);
            if !has("page_token")
                && !has("page_size")
                && !has("page")
                && let Some(pos) = pairs.iter().position(|(k, _)| k == "per_page")
            {
                pairs.remove(pos);
            }
            let mut links = vec![link(
                &req,
                &pairs,
                &[("page_token", Uuid::nil().to_string()), ("page_size", size.to_string())],
                "first",
            )];
            if more && let Some(last) = found.last() {
                links.push(link(
                    &req,
                    &pairs,
                    &[("page_token", last.id.to_string()), ("page_size", size.to_string())],
                    "next",
                ));
            }
            (found, vec![(header::LINK, links.join(","))])
        }
        Mode::Page { page, per_page } => {
            let found = service
                .list(
                    &request.filter,
                    ListPage::Offset { offset: page * per_page, limit: per_page },
                    request.expand_credentials,
                )
                .await?;
            let total = if matches!(request.filter, ListFilter::Identifier { .. }) {
                found.len() as i64
            } else {
                service.count().await?
            };
            (
                found,
                vec![
                    (header::HeaderName::from_static("x-total-count"), total.to_string()),
                    (header::LINK, page_link(&req, &pairs, total, page, per_page)),
                ],
            )
        }
    };
    let view = if request.expand_credentials {
        CredentialsView::Declassified(&request.include)
    } else {
        CredentialsView::Hidden
    };
    let body: Vec<Json> = identities.iter().map(|i| render_admin(&state, i, view)).collect();
    let mut res = json_response(actix_web::http::StatusCode::OK, &Json::Array(body));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
    Ok(res)
}

async fn get(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let identity = state.identities.get(path_id(&id)).await?;
    let include = included_credentials(&query_pairs(&req))?;
    Ok(json_response(
        actix_web::http::StatusCode::OK,
        &render_admin(&state, &identity, CredentialsView::Declassified(&include)),
    ))
}

async fn get_by_external_id(
    state: web::Data<AppState>,
    req: HttpRequest,
    external_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if external_id.is_empty() {
        return Err(ApiError::bad_request("The external ID must not be empty."));
    }
    let identity = state.identities.get_by_external_id(&external_id).await?;
    let include = included_credentials(&query_pairs(&req))?;
    Ok(json_response(
        actix_web::http::StatusCode::OK,
        &render_admin(&state, &identity, CredentialsView::Declassified(&include)),
    ))
}

async fn create(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: CreateIdentityBody = serde_json::from_slice(&body).map_err(|e| decode_error(&e))?;
    let identity = state.identities.create(body).await?;
    let location = format!("{}identities/{}", state.config.admin_base_url(), identity.id);
    let mut res = json_response(actix_web::http::StatusCode::CREATED, &render_written(&state, &identity));
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn batch(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: BatchPatchBody = serde_json::from_slice(&body).map_err(|e| decode_error(&e))?;
    let entries = body.identities.unwrap_or_default();
    if entries.len() > BATCH_LIMIT {
        return Err(ApiError::bad_request(format!(
            "The maximum number of identities per request that can be created or deleted at once is {BATCH_LIMIT}."
        )));
    }
    let plaintext = entries.iter().filter(|e| e.create.as_ref().is_some_and(|c| c.has_plaintext_password())).count();
    if plaintext > BATCH_PLAINTEXT_LIMIT {
        return Err(ApiError::bad_request(format!(
            "The maximum number of identities per request that can be created with a plaintext password is {BATCH_PLAINTEXT_LIMIT}."
        )));
    }
    let patch_ids: Vec<Option<Uuid>> = entries.iter().map(|e| e.patch_id).collect();
    let results = state.identities.create_batch(entries.into_iter().map(|e| e.create).collect()).await?;
    let items: Vec<Json> = results
        .into_iter()
        .zip(patch_ids)
        .map(|(result, patch_id)| {
            let mut item = match result {
                None => return Json::Null,
                Some(Ok(id)) => json!({ "action": "create", "identity": id }),
                Some(Err(e)) => json!({ "action": "error", "error": ApiError::from(e).inner_body() }),
            };
            if let Some(p) = patch_id {
                item["patch_id"] = json!(p);
            }
            item
        })
        .collect();
    Ok(json_response(actix_web::http::StatusCode::OK, &json!({ "identities": items })))
}

async fn update(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: UpdateIdentityBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Unable to decode JSON payload: {e}")))?;
    let identity = state.identities.update(path_id(&id), body).await?;
    Ok(json_response(actix_web::http::StatusCode::OK, &render_written(&state, &identity)))
}

async fn patch(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let identity = state.identities.patch(path_id(&id), &body).await?;
    Ok(json_response(actix_web::http::StatusCode::OK, &render_admin(&state, &identity, CredentialsView::NoConfig)))
}

async fn delete(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    state.identities.delete(path_id(&id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn delete_credential(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, kind) = path.into_inner();
    let pairs = query_pairs(&req);
    state.identities.delete_credential(path_id(&id), &kind, first(&pairs, "identifier")).await?;
    Ok(HttpResponse::NoContent().finish())
}
