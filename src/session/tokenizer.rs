//! Tokenized sessions (behaviour.md §14.3): `whoami?tokenize_as=<template>` answers the session
//! with a JWT signed by the first key of the template's JWKS. Claims `jti`, `iss` (the public
//! URL), `exp` (now + `ttl`), `sid`, `nbf`, `iat`, `sub` (identity id or `external_id`), then
//! an optional Jsonnet mapper's `claims` merged over them, `sub` imposed again.
//!
//! Key sets are cached per URL for an hour and mappers fetched over HTTP for an hour (as
//! Kratos); a token is reused for the same template and the same session (same rendered
//! session JSON) while at least half of its lifetime is left.

use crate::config::{SubjectSource, TokenizerTemplate};
use crate::error::Error;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a fetched key set or mapper is used before it is fetched again.
const FETCH_CACHE: Duration = Duration::from_secs(3600);
/// Most tokens kept for reuse.
const MAX_CACHED_TOKENS: usize = 100_000;
/// Largest key set or mapper accepted.
const MAX_DOCUMENT: usize = 512 * 1024;

/// Why a session could not be tokenized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    /// 400: the template, its keys or its mapper cannot make a token.
    #[error("{0}")]
    Invalid(String),
    /// 500: the key set or mapper could not be fetched (logged, not shown).
    #[error("{0}")]
    Fetch(String),
}

impl From<TokenizeError> for Error {
    fn from(e: TokenizeError) -> Error {
        match e {
            TokenizeError::Invalid(reason) => Error::Invalid(reason),
            TokenizeError::Fetch(cause) => Error::Internal(format!("tokenizer: {cause}")),
        }
    }
}

fn invalid(reason: &str) -> TokenizeError {
    TokenizeError::Invalid(reason.to_string())
}

/// A JWS signing key with its `alg` and `kid`.
pub struct SigningKey {
    alg: &'static str,
    kid: String,
    key: KeyKind,
}

enum KeyKind {
    Es256(p256::ecdsa::SigningKey),
    Es384(p384::ecdsa::SigningKey),
    Es512(p521::ecdsa::SigningKey),
    EdDsa(Box<ed25519_dalek::SigningKey>),
    Rsa(Box<rsa::RsaPrivateKey>, RsaHash),
}

#[derive(Clone, Copy)]
enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

fn b64_field(jwk: &Json, name: &str) -> Result<Vec<u8>, TokenizeError> {
    let raw = jwk.get(name).and_then(Json::as_str).ok_or_else(|| invalid("Unable to decode the given private key."))?;
    URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).map_err(|_| invalid("Unable to decode the given private key."))
}

impl SigningKey {
    /// The first key of a JWKS (or a single JWK), as Kratos picks it: no `kid`, `use` or
    /// `key_ops` check; `alg` must be there and name a signing algorithm the key fits.
    pub fn from_jwks(body: &[u8]) -> Result<SigningKey, TokenizeError> {
        let doc: Json = serde_json::from_slice(body).map_err(|_| invalid("failed to parse JWK set"))?;
        let first = match doc.get("keys") {
            Some(Json::Array(keys)) => keys.first().cloned(),
            Some(_) => return Err(invalid("failed to parse JWK set")),
            None if doc.get("kty").is_some() => Some(doc),
            None => return Err(invalid("failed to parse JWK set")),
        };
        let Some(jwk) = first else {
            return Err(invalid("Could not find key a suitable key for tokenization in the JWKS url."));
        };
        SigningKey::from_jwk(&jwk)
    }

    fn from_jwk(jwk: &Json) -> Result<SigningKey, TokenizeError> {
        let alg_given = jwk.get("alg").and_then(Json::as_str).unwrap_or("");
        let bad_alg = || {
            TokenizeError::Invalid(format!(
                "The JSON Web Key must include a valid \"alg\" parameter but \"{alg_given}\" was given."
            ))
        };
        let kty = jwk.get("kty").and_then(Json::as_str).unwrap_or("");
        let crv = jwk.get("crv").and_then(Json::as_str).unwrap_or("");
        let not_private = || invalid("Unable to sign JSON Web Token.");
        let (alg, key) = match alg_given {
            "ES256" | "ES384" | "ES512" | "EdDSA" if jwk.get("d").is_none() => return Err(not_private()),
            "RS256" | "RS384" | "RS512" if jwk.get("d").is_none() => return Err(not_private()),
            "ES256" if kty == "EC" && crv == "P-256" => {
                let d = b64_field(jwk, "d")?;
                let k = p256::ecdsa::SigningKey::from_slice(&d)
                    .map_err(|_| invalid("Unable to decode the given private key."))?;
                ("ES256", KeyKind::Es256(k))
            }
            "ES384" if kty == "EC" && crv == "P-384" => {
                let d = b64_field(jwk, "d")?;
                let k = p384::ecdsa::SigningKey::from_slice(&d)
                    .map_err(|_| invalid("Unable to decode the given private key."))?;
                ("ES384", KeyKind::Es384(k))
            }
            "ES512" if kty == "EC" && crv == "P-521" => {
                let d = b64_field(jwk, "d")?;
                let k = p521::ecdsa::SigningKey::from_slice(&d)
                    .map_err(|_| invalid("Unable to decode the given private key."))?;
                ("ES512", KeyKind::Es512(k))
            }
            "EdDSA" if kty == "OKP" && crv == "Ed25519" => {
                let d = b64_field(jwk, "d")?;
                let seed: [u8; 32] = d.try_into().map_err(|_| invalid("Unable to decode the given private key."))?;
                ("EdDSA", KeyKind::EdDsa(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed))))
            }
            "RS256" | "RS384" | "RS512" if kty == "RSA" => {
                let int = |name: &str| b64_field(jwk, name).map(|b| rsa::BigUint::from_bytes_be(&b));
                let primes = match (int("p"), int("q")) {
                    (Ok(p), Ok(q)) => vec![p, q],
                    _ => Vec::new(),
                };
                let key = rsa::RsaPrivateKey::from_components(int("n")?, int("e")?, int("d")?, primes)
                    .map_err(|_| invalid("Unable to decode the given private key."))?;
                let (alg, hash) = match alg_given {
                    "RS256" => ("RS256", RsaHash::Sha256),
                    "RS384" => ("RS384", RsaHash::Sha384),
                    _ => ("RS512", RsaHash::Sha512),
                };
                (alg, KeyKind::Rsa(Box::new(key), hash))
            }
            // A known algorithm the key does not fit cannot sign.
            "ES256" | "ES384" | "ES512" | "EdDSA" | "RS256" | "RS384" | "RS512" => return Err(not_private()),
            _ => return Err(bad_alg()),
        };
        let kid = jwk.get("kid").and_then(Json::as_str).unwrap_or("").to_string();
        Ok(SigningKey { alg, kid, key })
    }

    /// `header.payload.signature`, compact serialisation.
    pub fn sign(&self, claims: &Json) -> Result<String, TokenizeError> {
        let header = json!({ "alg": self.alg, "kid": self.kid, "typ": "JWT" });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature: Vec<u8> = match &self.key {
            KeyKind::Es256(k) => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            KeyKind::Es384(k) => {
                use p384::ecdsa::signature::Signer;
                let s: p384::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            KeyKind::Es512(k) => {
                use p521::ecdsa::signature::Signer;
                let s: p521::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            KeyKind::EdDsa(k) => {
                use ed25519_dalek::Signer;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
            KeyKind::Rsa(k, hash) => {
                use rsa::signature::{SignatureEncoding, Signer};
                let key = (**k).clone();
                let signed = match hash {
                    RsaHash::Sha256 => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key)
                        .try_sign(input.as_bytes())
                        .map(|s| s.to_vec()),
                    RsaHash::Sha384 => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha384>::new(key)
                        .try_sign(input.as_bytes())
                        .map(|s| s.to_vec()),
                    RsaHash::Sha512 => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha512>::new(key)
                        .try_sign(input.as_bytes())
                        .map(|s| s.to_vec()),
                };
                signed.map_err(|_| invalid("Unable to sign JSON Web Token."))?
            }
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(input)
    }
}

/// What a token is made of, besides the template.
pub struct TokenRequest<'a> {
    pub template_name: &'a str,
    pub template: &'a TokenizerTemplate,
    /// The whoami JSON of the session (identity included, no credentials, no admin metadata).
    pub session: &'a Json,
    pub session_id: uuid::Uuid,
    pub identity_id: uuid::Uuid,
    pub external_id: Option<&'a str>,
    /// `iss`: the public base URL.
    pub issuer: &'a str,
    pub now: DateTime<Utc>,
}

/// Fetches and caches keys and mappers, signs tokens and keeps them for reuse.
pub struct Tokenizer {
    outbound: crate::net::Outbound,
    keys: DashMap<String, (Instant, Arc<SigningKey>)>,
    mappers: DashMap<String, (Instant, Arc<String>)>,
    tokens: DashMap<[u8; 32], (i64, i64, String)>,
}

impl Tokenizer {
    /// Fetches over `clients` (`disallow_private_ip_ranges` applies).
    pub fn new(clients: &crate::config::ClientsConfig) -> Tokenizer {
        let outbound = crate::net::Outbound::new(clients, Duration::from_secs(10));
        Tokenizer { outbound, keys: DashMap::new(), mappers: DashMap::new(), tokens: DashMap::new() }
    }

    /// The signed token for `req`, reused while at least half of its lifetime is left.
    pub async fn tokenize(&self, req: &TokenRequest<'_>) -> Result<String, TokenizeError> {
        let now = req.now.timestamp();
        let cache_key: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(req.template_name.as_bytes());
            h.update([0]);
            h.update(req.session.to_string().as_bytes());
            h.finalize().into()
        };
        if let Some(hit) = self.tokens.get(&cache_key) {
            let (iat, exp, token) = hit.value();
            if *iat <= now && (exp - now) * 2 >= (exp - iat) && *exp > now {
                return Ok(token.clone());
            }
        }
        let template = req.template;
        let sub = match template.subject_source {
            SubjectSource::Id => req.identity_id.to_string(),
            SubjectSource::ExternalId => match req.external_id.filter(|e| !e.is_empty()) {
                Some(e) => e.to_string(),
                None => {
                    return Err(invalid(
                        "The session's identity does not have an external ID set, but it is required for the \
                         subject claim.",
                    ));
                }
            },
        };
        let ttl = i64::try_from(template.ttl.0.as_secs()).unwrap_or(i64::MAX / 2);
        let exp = now.saturating_add(ttl);
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("iss".into(), json!(req.issuer));
        claims.insert("exp".into(), json!(exp));
        claims.insert("sid".into(), json!(req.session_id.to_string()));
        claims.insert("nbf".into(), json!(now));
        claims.insert("iat".into(), json!(now));
        claims.insert("sub".into(), json!(sub));
        let key = self.key(&template.jwks_url).await?;
        if let Some(mapper_url) = template.claims_mapper_url.as_deref().filter(|u| !u.is_empty()) {
            let mapper = self.mapper(mapper_url).await?;
            let ext = vec![
                ("session".to_string(), req.session.clone()),
                ("claims".to_string(), Json::Object(claims.clone())),
            ];
            let out = crate::jsonnet::eval_ext(mapper.as_ref().clone(), ext).await.map_err(|e| {
                tracing::info!(error = %e, template = req.template_name, "tokenizer claims mapper failed");
                invalid("Unable to execute tokenizer JsonNet.")
            })?;
            let Some(Json::Object(mapped)) = out.as_ref().and_then(|o| o.get("claims")).cloned() else {
                return Err(invalid("Expected tokenizer JsonNet to return a claims object but it did not."));
            };
            claims.extend(mapped);
            // The mapper cannot change the subject.
            claims.insert("sub".into(), json!(sub));
        }
        let token = key.sign(&Json::Object(claims))?;
        if self.tokens.len() >= MAX_CACHED_TOKENS {
            self.tokens.retain(|_, (_, e, _)| *e > now);
            if self.tokens.len() >= MAX_CACHED_TOKENS {
                self.tokens.clear();
            }
        }
        if ttl > 0 {
            self.tokens.insert(cache_key, (now, exp, token.clone()));
        }
        Ok(token)
    }

    async fn key(&self, url: &str) -> Result<Arc<SigningKey>, TokenizeError> {
        if let Some(hit) = self.keys.get(url)
            && hit.0.elapsed() < FETCH_CACHE
        {
            return Ok(hit.1.clone());
        }
        let body = self.fetch(url).await?;
        let key = Arc::new(SigningKey::from_jwks(&body)?);
        self.keys.insert(url.to_string(), (Instant::now(), key.clone()));
        Ok(key)
    }

    /// A mapper: fetched over HTTP once an hour, read from a file each time (as Kratos).
    async fn mapper(&self, url: &str) -> Result<Arc<String>, TokenizeError> {
        let remote = url.starts_with("http://") || url.starts_with("https://");
        if remote
            && let Some(hit) = self.mappers.get(url)
            && hit.0.elapsed() < FETCH_CACHE
        {
            return Ok(hit.1.clone());
        }
        let body = self.fetch(url).await?;
        let text = Arc::new(String::from_utf8(body).map_err(|_| invalid("Unable to execute tokenizer JsonNet."))?);
        if remote {
            self.mappers.insert(url.to_string(), (Instant::now(), text.clone()));
        }
        Ok(text)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, TokenizeError> {
        let fail = |what: String| TokenizeError::Fetch(format!("{}: {what}", crate::config::redact_url(url)));
        if let Some(b) = url.strip_prefix("base64://") {
            return STANDARD
                .decode(b.trim())
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b.trim()))
                .map_err(|e| fail(format!("invalid base64: {e}")));
        }
        if let Some(path) = url.strip_prefix("file://") {
            let bytes = tokio::fs::read(path).await.map_err(|e| fail(e.to_string()))?;
            if bytes.len() > MAX_DOCUMENT {
                return Err(fail("too large".into()));
            }
            return Ok(bytes);
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            let client = self.outbound.client_for(url).map_err(|e| fail(e.to_string()))?;
            let mut res = client.get(url).send().await.map_err(|e| fail(e.without_url().to_string()))?;
            if res.status().as_u16() != 200 {
                return Err(fail(format!("expected status 200 but got {}", res.status().as_u16())));
            }
            let mut body = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(|e| fail(e.without_url().to_string()))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_DOCUMENT {
                    return Err(fail("too large".into()));
                }
            }
            return Ok(body);
        }
        Err(fail("expected one of the prefixes http://, https://, file://, base64://".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 A.1 (Ed25519) and a P-256 key: signatures verify with the public halves.
    #[test]
    fn signs_eddsa_and_es256_verifiably() -> Result<(), TokenizeError> {
        let ed = json!({"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ed",
            "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let key = SigningKey::from_jwks(&serde_json::to_vec(&json!({"keys":[ed]})).unwrap_or_default())?;
        let token = key.sign(&json!({"sub":"x"}))?;
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Json =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap_or_default()).unwrap_or_default();
        assert_eq!(header, json!({"alg":"EdDSA","kid":"ed","typ":"JWT"}));
        let x: [u8; 32] = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap_or_default()
            .try_into()
            .unwrap_or([0; 32]);
        let public = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| invalid("x"))?;
        let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default().try_into().unwrap_or([0; 64]);
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify_strict(signed.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).is_ok());

        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).map_err(|_| invalid("p256"))?;
        let es = json!({"kty":"EC","crv":"P-256","alg":"ES256","d": URL_SAFE_NO_PAD.encode(secret.to_bytes())});
        let token = SigningKey::from_jwks(es.to_string().as_bytes())?.sign(&json!({"a":1}))?;
        let parts: Vec<&str> = token.split('.').collect();
        let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default())
            .map_err(|_| invalid("sig"))?;
        use p256::ecdsa::signature::Verifier;
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(secret.verifying_key().verify(signed.as_bytes(), &sig).is_ok());
        Ok(())
    }

    #[test]
    fn refuses_keys_that_cannot_sign() {
        let err = |v: Json| SigningKey::from_jwks(v.to_string().as_bytes()).err();
        assert_eq!(
            err(json!({"keys":[]})),
            Some(invalid("Could not find key a suitable key for tokenization in the JWKS url."))
        );
        assert_eq!(SigningKey::from_jwks(b"{\"keys\":[").err(), Some(invalid("failed to parse JWK set")));
        assert_eq!(
            err(json!({"kty":"EC","crv":"P-256","d":"AA"})),
            Some(invalid("The JSON Web Key must include a valid \"alg\" parameter but \"\" was given."))
        );
        assert_eq!(
            err(json!({"kty":"EC","crv":"P-256","alg":"ES256","x":"AA","y":"AA"})),
            Some(invalid("Unable to sign JSON Web Token."))
        );
        assert_eq!(
            err(json!({"kty":"EC","crv":"P-256","alg":"HS1024","d":"AA"})).map(|e| e.to_string().contains("HS1024")),
            Some(true)
        );
    }
}
