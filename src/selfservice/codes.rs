//! One-time secrets of recovery and verification: 6-digit codes and link tokens. Only an
//! HMAC-SHA-256 digest bound to the flow is stored (keyed with `secrets.default`; every
//! configured secret is tried when one is redeemed, so secrets can rotate). Issuing is a
//! durable write: the secret exists before the message that carries it is queued.

use super::flow::Flow;
use super::services::Services;
use crate::error::Error;
use crate::persistence::selfservice::{self as rows, CodeRecord};
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
// sha2 0.11, the version `hmac` is built against.
use pbkdf2::sha2::Sha256;
use rand::Rng;
use uuid::Uuid;

/// Digits in a code.
pub const CODE_LENGTH: usize = 6;

/// Used when no `secrets.default` is configured (development setups).
const FALLBACK_KEY: &[u8] = b"tessera one-time code digest";

/// A fresh 6-digit code.
pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LENGTH).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

/// A fresh link token (32 alphanumerics).
pub fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

fn digest_with(key: &[u8], flow_id: Uuid, secret: &str) -> String {
    let secret = secret.trim();
    match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(flow_id.as_bytes());
            mac.update(secret.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length: not reached.
        Err(_) => {
            use pbkdf2::sha2::Digest;
            hex::encode(Sha256::digest([key, flow_id.as_bytes(), secret.as_bytes()].concat()))
        }
    }
}

fn keys(svc: &Services) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = svc.config.secrets.default.iter().map(|s| s.as_bytes().to_vec()).collect();
    if keys.is_empty() {
        keys.push(FALLBACK_KEY.to_vec());
    }
    keys
}

/// What a code is for.
pub struct Issue<'a> {
    pub flow: &'a Flow,
    /// `code` or `link`.
    pub method: &'a str,
    pub identity_id: Option<Uuid>,
    pub address: &'a str,
    pub via: &'a str,
    pub expires_at: DateTime<Utc>,
    pub by_admin: bool,
}

/// Creates and durably stores a secret; returns it in clear (to be sent, never logged).
pub async fn issue(svc: &Services, what: Issue<'_>) -> Result<String, Error> {
    let secret = if what.method == "link" { new_token() } else { new_code() };
    let key = keys(svc).remove(0);
    let record = CodeRecord {
        id: Uuid::new_v4(),
        flow_id: what.flow.id,
        flow_kind: what.flow.kind.as_str().into(),
        method: what.method.into(),
        digest: digest_with(&key, what.flow.id, &secret),
        identity_id: what.identity_id,
        address_value: what.address.into(),
        address_via: what.via.into(),
        by_admin: what.by_admin,
        used_at: None,
        expires_at: what.expires_at,
        created_at: svc.clock.now(),
    };
    let mut pooled = svc.store.get().await.map_err(Error::from)?;
    rows::insert_code(&mut pooled.conn(), &record).await.map_err(Error::from)?;
    Ok(secret)
}

/// Forgets the unused secrets of a flow (a new one replaces them).
pub async fn forget(svc: &Services, flow_id: Uuid) -> Result<(), Error> {
    let mut pooled = svc.store.get().await.map_err(Error::from)?;
    rows::delete_codes_of_flow(&mut pooled.conn(), flow_id).await.map_err(Error::from)
}

/// What redeeming a secret found.
pub enum Redeemed {
    /// No such secret for this flow.
    Unknown,
    /// It ran out.
    Expired(Box<CodeRecord>),
    /// It was used before.
    Used(Box<CodeRecord>),
    /// Valid: now marked used.
    Ok(Box<CodeRecord>),
}

/// Looks a `method` (`code` / `link`) secret up for `flow_id` and, when it is valid, marks it used (exactly once, even
/// under concurrent submits).
pub async fn redeem(svc: &Services, flow_id: Uuid, method: &str, secret: &str) -> Result<Redeemed, Error> {
    let secret = secret.trim();
    if secret.is_empty() || secret.len() > 256 {
        return Ok(Redeemed::Unknown);
    }
    let digests: Vec<String> = keys(svc).iter().map(|k| digest_with(k, flow_id, secret)).collect();
    let mut pooled = svc.store.get().await.map_err(Error::from)?;
    let Some(record) = rows::find_code(&mut pooled.conn(), flow_id, method, &digests).await.map_err(Error::from)?
    else {
        return Ok(Redeemed::Unknown);
    };
    if record.used_at.is_some() {
        return Ok(Redeemed::Used(Box::new(record)));
    }
    let now = svc.clock.now();
    if record.expires_at < now {
        return Ok(Redeemed::Expired(Box::new(record)));
    }
    if !rows::use_code(&mut pooled.conn(), record.id, now).await.map_err(Error::from)? {
        return Ok(Redeemed::Used(Box::new(record)));
    }
    Ok(Redeemed::Ok(Box::new(record)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_tokens_32_alphanumerics() {
        for _ in 0..100 {
            let c = new_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            let t = new_token();
            assert_eq!(t.len(), 32);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn digests_bind_flow_and_key() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(digest_with(b"k", a, "123456"), digest_with(b"k", a, " 123456 "));
        assert_ne!(digest_with(b"k", a, "123456"), digest_with(b"k", b, "123456"));
        assert_ne!(digest_with(b"k", a, "123456"), digest_with(b"j", a, "123456"));
    }
}
