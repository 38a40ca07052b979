//! CSRF protection for browser flows (behaviour.md §3.3): a random token in a cookie named
//! after the public base URL, and a masked copy of it in every form. The cookie itself is
//! read and written in `http::cookies`.

use crate::config::Config;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const TOKEN_LEN: usize = 32;

/// `csrf_token_` + hex SHA-256 of the public base URL.
pub fn cookie_name(config: &Config) -> String {
    format!("csrf_token_{}", hex::encode(Sha256::digest(config.public_base_url().as_bytes())))
}

/// A new real token (base64 of 32 random bytes).
pub fn new_token() -> String {
    let mut b = [0u8; TOKEN_LEN];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn decode(token: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()
}

/// Whether `token` is a well-formed real token (base64 of 32 bytes).
pub fn is_valid(token: &str) -> bool {
    decode(token).is_some_and(|t| t.len() == TOKEN_LEN)
}

/// A masked form token: base64(pad ‖ (token XOR pad)); a new pad each time.
pub fn mask(real: &str) -> String {
    let Some(token) = decode(real).filter(|t| t.len() == TOKEN_LEN) else { return String::new() };
    let mut pad = [0u8; TOKEN_LEN];
    rand::rng().fill_bytes(&mut pad);
    let mut out = Vec::with_capacity(2 * TOKEN_LEN);
    out.extend_from_slice(&pad);
    out.extend(token.iter().zip(pad.iter()).map(|(a, b)| a ^ b));
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn unmask(masked: &str) -> Option<Vec<u8>> {
    let raw = decode(masked)?;
    if raw.len() != 2 * TOKEN_LEN {
        return None;
    }
    let (pad, x) = raw.split_at(TOKEN_LEN);
    Some(x.iter().zip(pad.iter()).map(|(a, b)| a ^ b).collect())
}

/// Whether a form token belongs to the real cookie token (constant time). Masked tokens are
/// what forms carry; an unmasked token is accepted too, as nosurf does.
pub fn verify(real: &str, sent: &str) -> bool {
    let sent = match decode(sent) {
        Some(raw) if raw.len() == TOKEN_LEN => Some(raw),
        Some(_) => unmask(sent),
        None => None,
    };
    match (decode(real), sent) {
        (Some(r), Some(m)) if r.len() == TOKEN_LEN => bool::from(r.ct_eq(&m)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_verify_against_their_real_token_only() {
        let real = new_token();
        let other = new_token();
        let a = mask(&real);
        let b = mask(&real);
        assert_ne!(a, b, "each render gets a new pad");
        assert!(verify(&real, &a) && verify(&real, &b));
        assert!(!verify(&other, &a));
        assert!(verify(&real, &real), "an unmasked token is accepted, as nosurf does");
        assert!(!verify(&real, &other));
        assert!(!verify("not base64!", &a), "a malformed cookie never matches");
        assert!(!verify(&real, ""));
        assert!(!verify(&real, "not base64!"));
    }
}
