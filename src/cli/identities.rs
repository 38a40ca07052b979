//! `tessera identities import|list|get|delete`: admin-API clients.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value as Json, json};
use std::io::Read;
use std::path::Path;

/// Most identities per batch request, and per batch when plain-text passwords are present.
const CHUNK: usize = 1000;
const PLAINTEXT_CHUNK: usize = 200;

/// Where the admin API is and how to authenticate.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL of the admin server, e.g. `http://127.0.0.1:4434`.
    pub url: String,
    /// Admin API key (sent as a bearer token) when the server requires one.
    pub api_key: Option<String>,
}

// Written by hand: the API key must never reach a log.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Identity ids go into URL paths: only UUIDs are sent; anything else is reported and counted.
fn checked_id(id: &str, failed: &mut usize) -> Option<uuid::Uuid> {
    let parsed = uuid::Uuid::parse_str(id).ok();
    if parsed.is_none() {
        *failed += 1;
        eprintln!("{id}: not an identity id (a UUID)");
    }
    parsed
}

impl Endpoint {
    fn request(&self, http: &reqwest::Client, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let base = self.url.trim_end_matches('/');
        let base = base.strip_suffix("/admin").unwrap_or(base);
        let req = http.request(method, format!("{base}/admin{path}"));
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(std::time::Duration::from_secs(300)).build()?)
}

async fn error_text(res: reqwest::Response) -> String {
    let status = res.status();
    let body: Json = res.json().await.unwrap_or(Json::Null);
    let reason = body["error"]["reason"].as_str().or(body["error"]["message"].as_str()).unwrap_or("");
    format!("{status}: {reason}")
}

/// Reads identities from a file (`-` = stdin): a JSON array, one JSON object, or JSON lines.
pub fn read_identities(path: &Path) -> anyhow::Result<Vec<Json>> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).with_context(|| format!("{}: invalid JSON array", path.display()));
    }
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<Json>();
    while let Some(item) = stream.next() {
        out.push(item.with_context(|| format!("{}: invalid JSON near byte {}", path.display(), stream.byte_offset()))?);
    }
    Ok(out)
}

/// `identities validate FILE…`: each identity must be a valid create body (Kratos'
/// `createIdentityBody`, no unknown keys) with a `schema_id`, and its traits must satisfy that
/// identity schema as the server serves it. Returns how many identities are not valid.
pub async fn validate(endpoint: &Endpoint, files: &[std::path::PathBuf]) -> anyhow::Result<usize> {
    let http = client()?;
    let mut schemas: std::collections::HashMap<String, Json> = std::collections::HashMap::new();
    let mut invalid = 0;
    for file in files {
        for (n, item) in read_identities(file)?.into_iter().enumerate() {
            let src = format!("{}#{}", file.display(), n + 1);
            let mut problems = Vec::new();
            if let Err(e) = serde_path_to_error::deserialize::<_, crate::identity::import::CreateIdentityBody>(&item) {
                problems.push(format!("{}: {}", e.path(), e.inner()));
            }
            match item.get("schema_id").and_then(Json::as_str) {
                None => problems.push("Expected key \"schema_id\" to be defined in identity file".into()),
                Some(id) => {
                    if !schemas.contains_key(id) {
                        let path = format!(
                            "/schemas/{}",
                            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
                        );
                        let res = endpoint.request(&http, reqwest::Method::GET, &path).send().await?;
                        if !res.status().is_success() {
                            problems
                                .push(format!("Could not fetch schema with ID \"{id}\": {}", error_text(res).await));
                        } else {
                            schemas.insert(id.to_string(), res.json().await?);
                        }
                    }
                    if let Some(schema) = schemas.get(id)
                        && let Err(found) =
                            crate::schema::check_traits(schema, item.get("traits").unwrap_or(&Json::Null))
                    {
                        problems.extend(found);
                    }
                }
            }
            if !problems.is_empty() {
                invalid += 1;
                eprintln!("{src}: not valid");
                for p in problems {
                    eprintln!("  {p}");
                }
            }
        }
    }
    Ok(invalid)
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    /// Identities that already exist (a conflict): skipped, so an import can be re-run.
    pub skipped: usize,
    pub failed: usize,
}

fn has_plaintext(item: &Json) -> bool {
    item.pointer("/credentials/password/config/password").and_then(Json::as_str).is_some_and(|p| !p.is_empty())
}

/// Imports identities in batches, reporting each failure on stderr.
pub async fn import(endpoint: &Endpoint, files: &[std::path::PathBuf]) -> anyhow::Result<ImportSummary> {
    let mut items: Vec<(String, Json)> = Vec::new();
    for file in files {
        for (n, item) in read_identities(file)?.into_iter().enumerate() {
            items.push((format!("{}#{}", file.display(), n + 1), item));
        }
    }
    let http = client()?;
    let bar = ProgressBar::new(items.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} identities ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = ImportSummary::default();
    let mut rest = &items[..];
    while !rest.is_empty() {
        let mut take = 0;
        let mut plain = 0;
        while take < rest.len() && take < CHUNK {
            let p = usize::from(has_plaintext(&rest[take].1));
            if plain + p > PLAINTEXT_CHUNK {
                break;
            }
            plain += p;
            take += 1;
        }
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        import_chunk(endpoint, &http, chunk, &mut summary, &bar).await?;
    }
    bar.finish_and_clear();
    Ok(summary)
}

async fn import_chunk(
    endpoint: &Endpoint,
    http: &reqwest::Client,
    chunk: &[(String, Json)],
    summary: &mut ImportSummary,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let body = json!({ "identities": chunk.iter().map(|(_, i)| json!({"create": i})).collect::<Vec<_>>() });
    let res = endpoint.request(http, reqwest::Method::PATCH, "/identities").json(&body).send().await?;
    if res.status().is_success() {
        let out: Json = res.json().await?;
        let results = out["identities"].as_array().cloned().unwrap_or_default();
        for ((name, _), result) in chunk.iter().zip(results) {
            record(summary, bar, name, result["action"].as_str(), &result["error"]);
        }
        return Ok(());
    }
    if res.status().is_server_error() || res.status() == reqwest::StatusCode::UNAUTHORIZED {
        bail!("import failed: {}", error_text(res).await);
    }
    // The batch was refused as a whole (one item could not be converted, or a single
    // conflict): send its items one by one to find out which.
    for (name, item) in chunk {
        let res = endpoint.request(http, reqwest::Method::POST, "/identities").json(item).send().await?;
        let status = res.status();
        if status.is_server_error() {
            bail!("import failed: {}", error_text(res).await);
        }
        let body: Json = res.json().await.unwrap_or(Json::Null);
        let action = if status.is_success() { Some("create") } else { Some("error") };
        record(summary, bar, name, action, &body["error"]);
    }
    Ok(())
}

fn record(summary: &mut ImportSummary, bar: &ProgressBar, name: &str, action: Option<&str>, error: &Json) {
    match action {
        Some("create") => summary.created += 1,
        _ if error["code"] == 409 => summary.skipped += 1,
        _ => {
            summary.failed += 1;
            let reason = error["reason"].as_str().or(error["message"].as_str()).unwrap_or("unknown error");
            bar.suspend(|| eprintln!("{name}: {reason}"));
        }
    }
    bar.inc(1);
}

/// Prints one page of identities and the next page token.
pub async fn list(endpoint: &Endpoint, page_size: u32, page_token: Option<&str>, as_json: bool) -> anyhow::Result<()> {
    let http = client()?;
    let mut query = vec![("page_size", page_size.to_string())];
    if let Some(t) = page_token {
        query.push(("page_token", t.to_string()));
    }
    let res = endpoint.request(&http, reqwest::Method::GET, "/identities").query(&query).send().await?;
    if !res.status().is_success() {
        bail!("{}", error_text(res).await);
    }
    let next = res
        .headers()
        .get(reqwest::header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.split(',').find(|e| e.ends_with("rel=\"next\"")))
        .and_then(|e| e.split("page_token=").nth(1))
        .and_then(|t| t.split(['&', '>']).next())
        .map(str::to_string);
    let list: Vec<Json> = res.json().await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&json!({"identities": list, "next_page_token": next}))?);
        return Ok(());
    }
    println!("ID\tSCHEMA\tSTATE\tADDRESSES");
    for i in &list {
        let addresses: Vec<&str> = i["verifiable_addresses"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v["value"].as_str()).collect())
            .unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}",
            i["id"].as_str().unwrap_or(""),
            i["schema_id"].as_str().unwrap_or(""),
            i["state"].as_str().unwrap_or(""),
            addresses.join(",")
        );
    }
    if let Some(t) = next {
        println!("\nNEXT PAGE TOKEN\t{t}");
    }
    Ok(())
}

/// Prints identities as JSON; returns how many could not be fetched.
pub async fn get(endpoint: &Endpoint, ids: &[String], include: &[String]) -> anyhow::Result<usize> {
    let http = client()?;
    let mut found = Vec::new();
    let mut failed = 0;
    for id in ids {
        let Some(id) = checked_id(id, &mut failed) else { continue };
        let query: Vec<(&str, &str)> = include.iter().map(|t| ("include_credential", t.as_str())).collect();
        let res =
            endpoint.request(&http, reqwest::Method::GET, &format!("/identities/{id}")).query(&query).send().await?;
        if res.status().is_success() {
            found.push(res.json::<Json>().await?);
        } else {
            failed += 1;
            eprintln!("{id}: {}", error_text(res).await);
        }
    }
    let out = if found.len() == 1 && ids.len() == 1 { found.remove(0) } else { Json::Array(found) };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(failed)
}

/// Deletes identities; returns how many could not be deleted.
pub async fn delete(endpoint: &Endpoint, ids: &[String]) -> anyhow::Result<usize> {
    let http = client()?;
    let mut failed = 0;
    for id in ids {
        let Some(id) = checked_id(id, &mut failed) else { continue };
        let res = endpoint.request(&http, reqwest::Method::DELETE, &format!("/identities/{id}")).send().await?;
        if res.status().is_success() {
            println!("{id}");
        } else {
            failed += 1;
            eprintln!("{id}: {}", error_text(res).await);
        }
    }
    Ok(failed)
}
