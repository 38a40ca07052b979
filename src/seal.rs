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

#[cfg(test)]
mod tests {
    use super::Sealer;

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
