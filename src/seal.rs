//! Authenticated encryption of short texts (AES-256-GCM through the cookie crate's private
//! jar): one key per configured secret, the first seals, every one opens (rotation).

use actix_web::cookie::{Cookie, CookieJar, Key};
use sha2::{Digest, Sha512};
use std::sync::Arc;

/// Seals and opens texts with keys derived from secrets.
#[derive(Clone, Default)]
pub struct Sealer {
    keys: Arc<Vec<Key>>,
}

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
            .map(|s| {
                let material = if purpose.is_empty() { s.clone() } else { format!("{purpose}:{s}") };
                Key::from(Sha512::digest(material.as_bytes()).as_slice())
            })
            .collect();
        Sealer { keys: Arc::new(keys) }
    }

    /// Whether there is a key to seal with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `text` encrypted with the first key (opaque, URL-safe); `None` without keys.
    pub fn seal(&self, text: &str) -> Option<String> {
        let key = self.keys.first()?;
        let mut jar = CookieJar::new();
        jar.private_mut(key).add(Cookie::new("s", text.to_string()));
        jar.get("s").map(|c| c.value().to_string())
    }

    /// The text of a value made by [`Self::seal`] with any of the keys.
    pub fn open(&self, sealed: &str) -> Option<String> {
        self.keys.iter().find_map(|key| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new("s", sealed.to_string()));
            jar.private(key).get("s").map(|c| c.value().to_string())
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
    }
}
