//! Authenticated encryption of short texts: AES-256-GCM with one key per configured secret;
//! the first seals, every one opens (rotation). A sealed value is base64 of
//! `nonce ‖ ciphertext ‖ tag` (the format of the cookie crate's private jar, which sealed these
//! values before, so values sealed then still open).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha512};
use std::sync::Arc;

const NONCE_LEN: usize = 12;
/// Associated data bound into every seal.
const AAD: &[u8] = b"s";

/// Seals and opens texts with keys derived from secrets.
#[derive(Clone, Default)]
pub struct Sealer {
    keys: Arc<Vec<Aes256Gcm>>,
}

// Written by hand: the keys must never reach a log.
impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("keys", &self.keys.len()).finish()
    }
}

impl Sealer {
    /// Keys from `secrets`; a non-empty `purpose` separates the keys of different uses.
    pub fn new(secrets: &[String], purpose: &str) -> Sealer {
        let keys = secrets
            .iter()
            .filter_map(|s| {
                let material = if purpose.is_empty() { s.clone() } else { format!("{purpose}:{s}") };
                // The second half of a SHA-512 digest, as the cookie crate's key derivation.
                let digest = Sha512::digest(material.as_bytes());
                Aes256Gcm::new_from_slice(&digest[32..]).ok()
            })
            .collect();
        Sealer { keys: Arc::new(keys) }
    }

    /// Whether there is a key to seal with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `text` encrypted with the first key (opaque); `None` without keys.
    pub fn seal(&self, text: &str) -> Option<String> {
        let key = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key.encrypt(Nonce::from_slice(&nonce), Payload { msg: text.as_bytes(), aad: AAD }).ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// The text of a value made by [`Self::seal`] with any of the keys.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let data = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
        if data.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        self.keys.iter().find_map(|key| {
            let plain = key.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: AAD }).ok()?;
            String::from_utf8(plain).ok()
        })
    }
}

/// Kratos' `aes` cipher (`ciphers.algorithm: aes`) for values stored in identity
/// credentials, such as the provider tokens of an oidc credential: AES-256-GCM keyed with the
/// first 32 bytes of a `secrets.cipher` entry (zero-padded), hex of `nonce ‖ ciphertext ‖ tag`
/// without associated data. The first secret encrypts; every secret decrypts. Values Kratos
/// wrote with the same secrets open here, and the other way round.
#[derive(Clone, Default)]
pub struct TokenCipher {
    keys: Arc<Vec<Aes256Gcm>>,
}

// Written by hand: the keys must never reach a log.
impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher").field("keys", &self.keys.len()).finish()
    }
}

impl TokenCipher {
    /// Keys from `secrets` (Kratos' `ToCipherSecrets`).
    pub fn new(secrets: &[String]) -> TokenCipher {
        let keys = secrets
            .iter()
            .filter_map(|s| {
                let mut key = [0u8; 32];
                let bytes = s.as_bytes();
                let n = bytes.len().min(32);
                key[..n].copy_from_slice(&bytes[..n]);
                Aes256Gcm::new_from_slice(&key).ok()
            })
            .collect();
        TokenCipher { keys: Arc::new(keys) }
    }

    /// `plain` encrypted (empty stays empty; `None` without keys).
    pub fn encrypt(&self, plain: &str) -> Option<String> {
        if plain.is_empty() {
            return Some(String::new());
        }
        let key = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key.encrypt(Nonce::from_slice(&nonce), plain.as_bytes()).ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(hex::encode(out))
    }

    /// The text of a value made by [`Self::encrypt`] with any key (empty stays empty).
    pub fn decrypt(&self, stored: &str) -> Option<String> {
        if stored.is_empty() {
            return Some(String::new());
        }
        let data = hex::decode(stored).ok()?;
        if data.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        self.keys.iter().find_map(|key| {
            let plain = key.decrypt(Nonce::from_slice(nonce), ciphertext).ok()?;
            String::from_utf8(plain).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Sealer, TokenCipher};

    #[test]
    fn token_cipher_round_trips_and_rotates() {
        let old = TokenCipher::new(&["0123456789abcdef0123456789abcdef".into()]);
        let rotated =
            TokenCipher::new(&["another-secret-of-32-characters!".into(), "0123456789abcdef0123456789abcdef".into()]);
        let stored = old.encrypt("id-token").unwrap_or_default();
        assert!(hex::decode(&stored).is_ok() && !stored.contains("id-token"));
        assert_eq!(rotated.decrypt(&stored).as_deref(), Some("id-token"));
        assert_eq!(old.encrypt("").as_deref(), Some(""));
        assert_eq!(TokenCipher::default().encrypt("x"), None);
        assert_eq!(old.decrypt("zz"), None);
    }

    /// A value encrypted by Kratos' `aes` cipher (cryptopasta: AES-256-GCM, nonce prepended,
    /// hex) with the secret `0123456789abcdef0123456789abcdef`, built here the same way.
    #[test]
    fn opens_the_kratos_aes_format() {
        use aes_gcm::aead::{Aead, KeyInit};
        let key =
            aes_gcm::Aes256Gcm::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap_or_else(|_| unreachable!());
        let nonce = [7u8; 12];
        let mut data = nonce.to_vec();
        data.extend(key.encrypt(aes_gcm::Nonce::from_slice(&nonce), b"refresh".as_slice()).unwrap_or_default());
        let cipher = TokenCipher::new(&["0123456789abcdef0123456789abcdef".into()]);
        assert_eq!(cipher.decrypt(&hex::encode(data)).as_deref(), Some("refresh"));
    }

    #[test]
    fn seals_and_opens_with_any_secret_of_one_purpose() {
        let old = Sealer::new(&["old-secret".into()], "p");
        let rotated = Sealer::new(&["new-secret".into(), "old-secret".into()], "p");
        let sealed = old.seal("hello").unwrap_or_default();
        assert_ne!(sealed, "hello");
        assert_eq!(rotated.open(&sealed).as_deref(), Some("hello"));
        assert_eq!(Sealer::new(&["old-secret".into()], "other").open(&sealed), None);
        assert_eq!(Sealer::default().seal("x"), None);
        assert_eq!(old.open("not base64!"), None);
        assert_eq!(old.open("AAAA"), None);
    }

    /// A value sealed by the cookie crate's private jar (the format before this module used
    /// AES-GCM directly) with the key of secret "old-secret", purpose "p".
    #[test]
    fn opens_values_sealed_by_the_previous_implementation() {
        let sealer = Sealer::new(&["old-secret".into()], "p");
        assert_eq!(sealer.open(PREVIOUS).as_deref(), Some("hello"));
    }

    const PREVIOUS: &str = "Vy68MhgufCraqGNEsfzJ5QPEBVGF8t/D9iK223UAO0P2";
}
