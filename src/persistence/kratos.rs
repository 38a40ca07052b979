//! Reading a Kratos database (v1.x / v26.x schema, PostgreSQL or SQLite) for `tessera migrate
//! from-kratos`: identities with credentials, identifiers and addresses, and sessions with
//! devices, in keyset batches. Every column is read as text (`CAST(… AS TEXT)` works on both
//! backends) and parsed here, so one query serves both.

use super::store::{Store, StoreError};
use crate::model::identity::{Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress};
use crate::model::session::{Aal, AuthMethod, Device, Session};
use crate::on_conn;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Row6 {
    #[diesel(sql_type = Nullable<Text>)]
    a: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    e: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    f: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    g: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    h: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    i: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    j: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    k: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    l: Option<String>,
}

/// Runs `sql` whose columns are aliased `a`…`l` (missing ones selected as NULL).
async fn rows(store: &Store, sql: &str) -> Result<Vec<Row6>, StoreError> {
    let mut pooled = store.get().await?;
    let mut conn = pooled.conn();
    let rows: Vec<Row6> = on_conn!(&mut conn, c => diesel::sql_query(sql).load(c).await)?;
    Ok(rows)
}

/// `CAST(col AS TEXT) AS alias` for each column, padded with NULLs to twelve.
fn select(columns: &[&str]) -> String {
    let aliases = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    aliases
        .iter()
        .enumerate()
        .map(|(n, alias)| match columns.get(n) {
            Some(col) => format!("CAST({col} AS TEXT) AS {alias}"),
            None => format!("CAST(NULL AS TEXT) AS {alias}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kratos writes times as `2006-01-02 15:04:05.999999` (PostgreSQL `timestamp`, UTC) or, in
/// SQLite, with an offset or as RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in
        ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%dT%H:%M:%S%.f%:z"]
    {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // " +0000 UTC" (Go's time.String) and plain UTC times.
    let plain = s.split(" +").next().unwrap_or(s).trim_end_matches(" UTC").trim_end_matches('Z');
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(plain, f) {
            return Some(t.and_utc());
        }
    }
    None
}

fn parse_bool(s: Option<&str>) -> bool {
    matches!(s.map(str::trim), Some("true" | "t" | "1" | "TRUE"))
}

fn json_of(s: Option<&str>) -> Option<Json> {
    s.and_then(|v| serde_json::from_str(v).ok()).filter(|v: &Json| !v.is_null())
}

fn uuid_of(s: Option<&str>) -> Option<Uuid> {
    s.and_then(|v| Uuid::parse_str(v.trim()).ok())
}

fn quoted(ids: &[Uuid]) -> String {
    ids.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(", ")
}

/// How many identities and sessions the source has.
pub async fn counts(source: &Store) -> Result<(u64, u64), StoreError> {
    let r = rows(
        source,
        &format!("SELECT {}", select(&["(SELECT COUNT(*) FROM identities)", "(SELECT COUNT(*) FROM sessions)"])),
    )
    .await?;
    let n = |v: Option<&String>| v.and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(<[Row6]>::first(&r).map_or((0, 0), |r| (n(r.a.as_ref()), n(r.b.as_ref()))))
}

/// Up to `limit` identities after `after` (by id), complete with credentials and addresses.
/// Rows that cannot be read (a broken id) are skipped and counted in the second value.
pub async fn identities_after(
    source: &Store,
    after: Option<Uuid>,
    limit: usize,
) -> Result<(Vec<Identity>, Option<Uuid>, usize), StoreError> {
    let cols = [
        "id",
        "schema_id",
        "traits",
        "state",
        "state_changed_at",
        "metadata_public",
        "metadata_admin",
        "external_id",
        "organization_id",
        "created_at",
        "updated_at",
    ];
    let filter = after.map(|a| format!("WHERE id > '{a}'")).unwrap_or_default();
    let sql = format!("SELECT {} FROM identities {filter} ORDER BY id LIMIT {limit}", select(&cols));
    let found = rows(source, &sql).await?;
    let last = found.last().and_then(|r| uuid_of(r.a.as_deref()));
    let mut broken = 0;
    let mut identities: Vec<Identity> = Vec::with_capacity(found.len());
    for r in &found {
        let (Some(id), Some(created_at)) = (uuid_of(r.a.as_deref()), r.j.as_deref().and_then(parse_time)) else {
            broken += 1;
            continue;
        };
        identities.push(Identity {
            id,
            schema_id: r.b.clone().unwrap_or_else(|| "default".into()),
            state: r.d.as_deref().and_then(IdentityState::parse).unwrap_or(IdentityState::Active),
            state_changed_at: r.e.as_deref().and_then(parse_time),
            traits: json_of(r.c.as_deref()).unwrap_or_else(|| Json::Object(Default::default())),
            metadata_public: json_of(r.f.as_deref()),
            metadata_admin: json_of(r.g.as_deref()),
            external_id: r.h.clone().filter(|e| !e.is_empty()),
            organization_id: uuid_of(r.i.as_deref()),
            credentials: BTreeMap::new(),
            verifiable_addresses: Vec::new(),
            recovery_addresses: Vec::new(),
            created_at,
            updated_at: r.k.as_deref().and_then(parse_time).unwrap_or(created_at),
            version: 0,
        });
    }
    if identities.is_empty() {
        return Ok((identities, last, broken));
    }
    let ids: Vec<Uuid> = identities.iter().map(|i| i.id).collect();
    let list = quoted(&ids);
    let by_id: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(n, id)| (*id, n)).collect();

    // Credentials with their type names, then their identifiers.
    let sql = format!(
        "SELECT {} FROM identity_credentials ic JOIN identity_credential_types t ON t.id = \
         ic.identity_credential_type_id WHERE ic.identity_id IN ({list})",
        select(&["ic.id", "ic.identity_id", "t.name", "ic.config", "ic.version", "ic.created_at", "ic.updated_at"])
    );
    let mut credential_owner: HashMap<Uuid, (usize, String)> = HashMap::new();
    for r in rows(source, &sql).await? {
        let (Some(cid), Some(owner), Some(kind)) = (uuid_of(r.a.as_deref()), uuid_of(r.b.as_deref()), r.c.clone())
        else {
            continue;
        };
        let Some(&n) = by_id.get(&owner) else { continue };
        let created_at = r.f.as_deref().and_then(parse_time).unwrap_or(identities[n].created_at);
        credential_owner.insert(cid, (n, kind.clone()));
        identities[n].credentials.insert(
            kind.clone(),
            Credential {
                id: cid,
                kind,
                identifiers: Vec::new(),
                config: json_of(r.d.as_deref()).unwrap_or_else(|| Json::Object(Default::default())),
                version: r.e.as_deref().and_then(|v| v.trim().parse().ok()).unwrap_or(0),
                created_at,
                updated_at: r.g.as_deref().and_then(parse_time).unwrap_or(created_at),
            },
        );
    }
    let sql = format!(
        "SELECT {} FROM identity_credential_identifiers WHERE identity_credential_id IN \
         (SELECT id FROM identity_credentials WHERE identity_id IN ({list})) ORDER BY identifier",
        select(&["identity_credential_id", "identifier"])
    );
    for r in rows(source, &sql).await? {
        let (Some(cid), Some(identifier)) = (uuid_of(r.a.as_deref()), r.b.clone()) else { continue };
        if let Some((n, kind)) = credential_owner.get(&cid)
            && let Some(c) = identities[*n].credentials.get_mut(kind)
        {
            c.identifiers.push(identifier);
        }
    }

    let sql = format!(
        "SELECT {} FROM identity_verifiable_addresses WHERE identity_id IN ({list}) ORDER BY created_at, id",
        select(&["id", "identity_id", "value", "verified", "via", "status", "verified_at", "created_at", "updated_at"])
    );
    for r in rows(source, &sql).await? {
        let (Some(aid), Some(owner), Some(value)) = (uuid_of(r.a.as_deref()), uuid_of(r.b.as_deref()), r.c.clone())
        else {
            continue;
        };
        let Some(&n) = by_id.get(&owner) else { continue };
        let created_at = r.h.as_deref().and_then(parse_time).unwrap_or(identities[n].created_at);
        identities[n].verifiable_addresses.push(VerifiableAddress {
            id: aid,
            value,
            verified: parse_bool(r.d.as_deref()),
            via: r.e.clone().unwrap_or_else(|| "email".into()),
            status: r.f.clone().unwrap_or_else(|| "pending".into()),
            verified_at: r.g.as_deref().and_then(parse_time),
            created_at,
            updated_at: r.i.as_deref().and_then(parse_time).unwrap_or(created_at),
        });
    }
    let sql = format!(
        "SELECT {} FROM identity_recovery_addresses WHERE identity_id IN ({list}) ORDER BY created_at, id",
        select(&["id", "identity_id", "value", "via", "created_at", "updated_at"])
    );
    for r in rows(source, &sql).await? {
        let (Some(aid), Some(owner), Some(value)) = (uuid_of(r.a.as_deref()), uuid_of(r.b.as_deref()), r.c.clone())
        else {
            continue;
        };
        let Some(&n) = by_id.get(&owner) else { continue };
        let created_at = r.e.as_deref().and_then(parse_time).unwrap_or(identities[n].created_at);
        identities[n].recovery_addresses.push(RecoveryAddress {
            id: aid,
            value,
            via: r.d.clone().unwrap_or_else(|| "email".into()),
            created_at,
            updated_at: r.f.as_deref().and_then(parse_time).unwrap_or(created_at),
        });
    }
    Ok((identities, last, broken))
}

/// A Kratos session as stored: the token and logout token are in clear there.
pub struct KratosSession {
    pub session: Session,
    pub token: String,
    pub logout_token: Option<String>,
}

/// Up to `limit` sessions after `after` (by id), with their devices; `token_hash` and
/// `logout_token_hash` are left empty for the caller (which hashes the clear tokens).
pub async fn sessions_after(
    source: &Store,
    after: Option<Uuid>,
    limit: usize,
) -> Result<(Vec<KratosSession>, Option<Uuid>), StoreError> {
    let cols = [
        "id",
        "identity_id",
        "token",
        "logout_token",
        "active",
        "aal",
        "authentication_methods",
        "authenticated_at",
        "issued_at",
        "expires_at",
        "created_at",
        "updated_at",
    ];
    let filter = after.map(|a| format!("WHERE id > '{a}'")).unwrap_or_default();
    let sql = format!("SELECT {} FROM sessions {filter} ORDER BY id LIMIT {limit}", select(&cols));
    let found = rows(source, &sql).await?;
    let last = found.last().and_then(|r| uuid_of(r.a.as_deref()));
    let mut out: Vec<KratosSession> = Vec::new();
    for r in &found {
        let (Some(id), Some(identity_id), Some(token), Some(expires_at)) =
            (uuid_of(r.a.as_deref()), uuid_of(r.b.as_deref()), r.c.clone(), r.j.as_deref().and_then(parse_time))
        else {
            continue;
        };
        let issued_at = r.i.as_deref().and_then(parse_time).unwrap_or(expires_at);
        let methods: Vec<AuthMethod> = r.g.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
        out.push(KratosSession {
            session: Session {
                id,
                identity_id,
                token_hash: String::new(),
                logout_token_hash: String::new(),
                active: parse_bool(r.e.as_deref()),
                aal: Aal::parse(r.f.as_deref().unwrap_or("aal1")),
                authentication_methods: methods,
                authenticated_at: r.h.as_deref().and_then(parse_time).unwrap_or(issued_at),
                issued_at,
                expires_at,
                devices: Vec::new(),
                created_at: r.k.as_deref().and_then(parse_time).unwrap_or(issued_at),
                updated_at: r.l.as_deref().and_then(parse_time).unwrap_or(issued_at),
            },
            token,
            logout_token: r.d.clone().filter(|t| !t.is_empty()),
        });
    }
    if out.is_empty() {
        return Ok((out, last));
    }
    let ids: Vec<Uuid> = out.iter().map(|s| s.session.id).collect();
    let by_id: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(n, id)| (*id, n)).collect();
    let sql = format!(
        "SELECT {} FROM session_devices WHERE session_id IN ({}) ORDER BY created_at",
        select(&["id", "session_id", "ip_address", "user_agent", "location", "created_at"]),
        quoted(&ids)
    );
    for r in rows(source, &sql).await? {
        let (Some(did), Some(sid)) = (uuid_of(r.a.as_deref()), uuid_of(r.b.as_deref())) else { continue };
        let Some(&n) = by_id.get(&sid) else { continue };
        let created_at = r.f.as_deref().and_then(parse_time).unwrap_or(out[n].session.created_at);
        out[n].session.devices.push(Device {
            id: did,
            ip_address: r.c.clone(),
            user_agent: r.d.clone(),
            location: r.e.clone(),
            created_at,
        });
    }
    Ok((out, last))
}

/// Which of `ids` exist in tessera's store already (identities or sessions).
pub async fn present(target: &Store, table: &str, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let table = match table {
        "sessions" => "sessions",
        _ => "identities",
    };
    let sql = format!("SELECT {} FROM {table} WHERE CAST(id AS TEXT) IN ({})", select(&["id"]), quoted(ids));
    Ok(rows(target, &sql).await?.iter().filter_map(|r| uuid_of(r.a.as_deref())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kratos_times() {
        let want = chrono::NaiveDate::from_ymd_opt(2024, 5, 6)
            .and_then(|d| d.and_hms_micro_opt(7, 8, 9, 123_456))
            .map(|t| t.and_utc());
        for s in [
            "2024-05-06 07:08:09.123456",
            "2024-05-06T07:08:09.123456Z",
            "2024-05-06 07:08:09.123456+00:00",
            "2024-05-06 09:08:09.123456+02:00",
            "2024-05-06 07:08:09.123456 +0000 UTC",
        ] {
            assert_eq!(parse_time(s), want, "{s}");
        }
        assert_eq!(parse_time("yesterday"), None);
        assert!(parse_bool(Some("true")) && parse_bool(Some("1")) && !parse_bool(Some("0")) && !parse_bool(None));
    }
}
