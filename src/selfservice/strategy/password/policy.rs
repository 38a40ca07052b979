//! The password policy (behaviour.md §13.4): minimum length, the hasher's length limit,
//! similarity to the identifier, and the breached-password range API (k-anonymity: only the
//! first five hex digits of the SHA-1 leave the server).

use crate::catalogue::{self as text, Text};
use crate::config::{HashAlgorithm, PasswordPolicyConfig};
use sha1::{Digest, Sha1};
use std::time::Duration;

/// Kratos' thresholds: a password closer than this edit distance to the identifier, or sharing
/// more than half of its length as a common substring, is too similar.
const MIN_DISTANCE: usize = 5;
const MAX_SUBSTRING_SHARE: f32 = 0.5;
/// bcrypt's input limit in bytes.
pub const BCRYPT_MAX: usize = 72;

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn longest_common_substring(a: &[char], b: &[char]) -> usize {
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for ca in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            if ca == cb {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

/// Longest input compared (the comparison is quadratic); longer passwords are not similar to
/// any identifier in a way that matters.
const MAX_COMPARED: usize = 1024;

/// Whether `password` is too similar to `identifier`.
pub fn too_similar(identifier: &str, password: &str) -> bool {
    if identifier.len() > MAX_COMPARED || password.len() > MAX_COMPARED {
        return false;
    }
    let id: Vec<char> = identifier.to_lowercase().chars().collect();
    let pw: Vec<char> = password.to_lowercase().chars().collect();
    if id.is_empty() || pw.is_empty() {
        return !id.is_empty();
    }
    let share = longest_common_substring(&id, &pw) as f32 / pw.len() as f32;
    levenshtein(&id, &pw) < MIN_DISTANCE || share > MAX_SUBSTRING_SHARE
}

/// The breached-password checker (one HTTP client, reused).
#[derive(Clone)]
pub struct BreachChecker {
    client: reqwest::Client,
}

impl Default for BreachChecker {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        BreachChecker { client }
    }
}

impl BreachChecker {
    /// How often `password` appears in breaches (`Err` on network or protocol failure).
    pub async fn count(&self, host: &str, password: &str) -> Result<u64, String> {
        let digest = hex::encode_upper(Sha1::digest(password.as_bytes()));
        let (prefix, suffix) = digest.split_at(5);
        // A bare host name is Kratos' form; a full base URL points at a local range-API server.
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            host.trim_end_matches('/').to_string()
        } else {
            format!("https://{host}")
        };
        let res = self.client.get(format!("{base}/range/{prefix}")).send().await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("unexpected status {}", res.status()));
        }
        let body = res.text().await.map_err(|e| e.to_string())?;
        for line in body.lines() {
            let mut parts = line.trim().split(':');
            let hash = parts.next().unwrap_or_default();
            if hash.eq_ignore_ascii_case(suffix) {
                let count = match parts.next() {
                    Some(c) => c.trim().replace(',', "").parse::<u64>().map_err(|e| e.to_string())?,
                    None => 1,
                };
                return Ok(count);
            }
        }
        Ok(0)
    }
}

/// Checks a new password for the identity's password identifiers. `None` when it may be used.
pub async fn check(
    policy: &PasswordPolicyConfig,
    algorithm: HashAlgorithm,
    breaches: &BreachChecker,
    identifiers: &[String],
    password: &str,
) -> Option<Text> {
    // Lengths are in bytes, as Kratos counts them.
    let length = password.len();
    if length < policy.min_password_length {
        return Some(text::password_too_short(policy.min_password_length, length));
    }
    if algorithm == HashAlgorithm::Bcrypt && password.len() > BCRYPT_MAX {
        return Some(text::password_too_long(BCRYPT_MAX, password.len()));
    }
    if policy.identifier_similarity_check_enabled && identifiers.iter().any(|id| too_similar(id, password)) {
        return Some(text::password_too_similar());
    }
    if !policy.haveibeenpwned_enabled {
        return None;
    }
    match breaches.count(&policy.haveibeenpwned_host, password).await {
        Ok(n) if n > u64::from(policy.max_breaches) => Some(text::password_breached(n)),
        Ok(_) => None,
        Err(_) if policy.ignore_network_errors => None,
        Err(e) => Some(text::password_policy(&format!("the breached-password check failed ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_follows_kratos_thresholds() {
        assert!(too_similar("alice@example.org", "alice@example.org"));
        assert!(too_similar("alice@example.org", "ALICE@example.org1"));
        assert!(too_similar("alice@example.org", "xxalice@exampxx"), "long shared substring");
        assert!(!too_similar("alice@example.org", "correct horse battery staple"));
        assert!(!too_similar("", "anything"));
    }

    #[test]
    fn edit_distance_and_substring() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&c("kitten"), &c("sitting")), 3);
        assert_eq!(longest_common_substring(&c("abcdef"), &c("zcdez")), 3);
    }
}
