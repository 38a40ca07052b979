//! Kratos' own session cookie, for browsers that signed in before a migration: gorilla
//! `securecookie` as Kratos configures it — hash key = the secret, block key = SHA-256 of it
//! (AES-256-CTR, random IV first), value = `base64url(date|base64url(iv‖ciphertext)|mac)` with
//! an HMAC-SHA-256 over `name|date|value`. Only a value whose MAC one of the secrets verifies is
//! opened; the session token is then read from the gob-encoded map (the string after
//! `session_token`), and looked up like any other token.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use pbkdf2::sha2::{Digest, Sha256};

/// Gorilla's cookies older than this are refused (its default `MaxAge`, 30 days); the session
/// behind them is checked for expiry anyway.
const MAX_AGE_SECONDS: i64 = 30 * 24 * 3600;

fn b64(data: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE.decode(data).or_else(|_| URL_SAFE_NO_PAD.decode(data)).ok()
}

/// The session token inside a Kratos session cookie `value` named `name`, if one of `secrets`
/// made it and it is not older than 30 days at `now` (Unix seconds).
pub fn token(secrets: &[String], name: &str, value: &str, now: i64) -> Option<String> {
    let raw = b64(value.trim().as_bytes())?;
    let first = raw.iter().position(|b| *b == b'|')?;
    let second = first + 1 + raw[first + 1..].iter().position(|b| *b == b'|')?;
    let (date, sealed, mac) = (&raw[..first], &raw[first + 1..second], &raw[second + 1..]);
    let date: i64 = std::str::from_utf8(date).ok()?.parse().ok()?;
    if date > now + 300 || now - date > MAX_AGE_SECONDS {
        return None;
    }
    let signed = [name.as_bytes(), b"|", &raw[..second]].concat();
    for secret in secrets {
        let Ok(mut h) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else { continue };
        h.update(&signed);
        if h.verify_slice(mac).is_err() {
            continue;
        }
        let mut data = b64(sealed)?;
        if data.len() < 16 {
            return None;
        }
        let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let (iv, body) = data.split_at_mut(16);
        use ctr::cipher::{KeyIvInit, StreamCipher};
        let iv: [u8; 16] = iv.try_into().ok()?;
        ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &iv.into()).apply_keystream(body);
        return token_in_gob(body);
    }
    None
}

/// The string value after the `session_token` key of a gob-encoded `map[interface{}]interface{}`:
/// gob writes a string as its length then its bytes, so the first length-prefixed run of token
/// characters after the key's `string` type name is the token.
fn token_in_gob(gob: &[u8]) -> Option<String> {
    let key = b"session_token";
    let at = gob.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &gob[at..];
    let typed = rest.windows(6).position(|w| w == b"string").map_or(0, |p| p + 6);
    let rest = &rest[typed..];
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    (0..rest.len()).find_map(|p| {
        let len = usize::from(rest[p]);
        let run = rest.get(p + 1..p + 1 + len)?;
        (len >= 16 && run.iter().all(is_token)).then(|| String::from_utf8_lossy(run).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gob map as Go writes it for `{"session_token": token}` (after the type definitions).
    fn gob(token: &str) -> Vec<u8> {
        let mut v = vec![0x0e, 0xff, 0x81, 0x04, 0x01, 0x02, 0xff, 0x82, 0x00, 0x01, 0x10, 0x01, 0x10, 0x00, 0x00];
        v.extend([0x30, 0xff, 0x82, 0x00, 0x01, 0x06]);
        v.extend(b"string");
        v.extend([0x0c, 0x0f, 0x00, 0x0d]);
        v.extend(b"session_token");
        v.extend([0x06]);
        v.extend(b"string");
        v.extend([0x0c, (token.len() + 2) as u8, 0x00, token.len() as u8]);
        v.extend(token.as_bytes());
        v
    }

    fn cookie(secret: &str, name: &str, token: &str, date: i64) -> String {
        let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut data = vec![7u8; 16];
        let mut body = gob(token);
        use ctr::cipher::{KeyIvInit, StreamCipher};
        ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[7u8; 16].into()).apply_keystream(&mut body);
        data.extend(body);
        let value = URL_SAFE.encode(data);
        let mut h = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        h.update(format!("{name}|{date}|{value}").as_bytes());
        let mut out = format!("{date}|{value}|").into_bytes();
        out.extend(h.finalize().into_bytes());
        URL_SAFE.encode(out)
    }

    #[test]
    fn opens_only_what_a_secret_signed() {
        let token = "ory_st_abcdefghijklmnopqrstuvwxyz012345";
        let now = 1_800_000_000;
        let c = cookie("kratos-cookie-secret", "ory_kratos_session", token, now - 60);
        let secrets = vec!["other-secret".to_string(), "kratos-cookie-secret".to_string()];
        assert_eq!(super::token(&secrets, "ory_kratos_session", &c, now).as_deref(), Some(token));
        assert_eq!(super::token(&secrets[..1], "ory_kratos_session", &c, now), None, "wrong secret");
        assert_eq!(super::token(&secrets, "other_name", &c, now), None, "the name is signed");
        assert_eq!(super::token(&secrets, "ory_kratos_session", &c, now + MAX_AGE_SECONDS + 61), None, "too old");
        assert_eq!(super::token(&secrets, "ory_kratos_session", "bm9wZQ==", now), None);
    }
}
