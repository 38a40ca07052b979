//! The session rules: tokens (only their hashes are stored), the AAL a list of methods
//! proves, issuing, activity, extension and revocation.

use crate::model::session::{Aal, AuthMethod, Device, Session};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A secret token with a prefix (`ory_st_`, `ory_lo_`): 32 alphanumerics (~190 bits).
pub fn new_token(prefix: &str) -> String {
    let body: String = rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    format!("{prefix}{body}")
}

/// The logout token of a session token: derived one-way, so it can be shown again whenever
/// the session token is presented, while only its hash is stored.
pub fn logout_token_for(session_token: &str) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(format!("tessera-logout:{session_token}").as_bytes());
    let body: String = digest.iter().take(32).map(|b| ALNUM[usize::from(*b) % ALNUM.len()] as char).collect();
    format!("ory_lo_{body}")
}

/// The SHA-256 digest of a token (the live-session registry's key).
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How tokens are stored: lower-case hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The AAL a list of completed methods proves (behaviour.md §14.1).
pub fn compute_aal(methods: &[AuthMethod]) -> Aal {
    let has = |l: Aal| methods.iter().any(|m| m.level() == l);
    if has(Aal::Aal1) && has(Aal::Aal2) {
        Aal::Aal2
    } else if methods.is_empty() {
        Aal::Aal0
    } else {
        Aal::Aal1
    }
}

/// Whether a session at `aal`, of an identity that can reach `available`, satisfies a
/// `required_aal` setting (`aal1` | `highest_available`, behaviour.md §14.2).
pub fn satisfies(required: &str, aal: Aal, available: Aal) -> bool {
    if required == "highest_available" { aal >= Aal::Aal2 || available < Aal::Aal2 } else { aal >= Aal::Aal1 }
}

impl Session {
    /// A new session for `identity_id`, authenticated now by `methods`, with fresh tokens.
    /// Returns the session and its clear-text session and logout tokens.
    pub fn issue(
        identity_id: Uuid,
        methods: Vec<AuthMethod>,
        device: Option<Device>,
        now: DateTime<Utc>,
        lifespan: Duration,
    ) -> (Session, String, String) {
        let token = new_token("ory_st_");
        let logout = logout_token_for(&token);
        let session = Session {
            id: Uuid::new_v4(),
            identity_id,
            token_hash: token_hash(&token),
            logout_token_hash: token_hash(&logout),
            active: true,
            aal: compute_aal(&methods),
            authentication_methods: methods,
            authenticated_at: now,
            issued_at: now,
            expires_at: now + lifespan,
            devices: device.into_iter().collect(),
            created_at: now,
            updated_at: now,
        };
        (session, token, logout)
    }

    /// Active as the API shows it: not revoked, not expired, identity active.
    pub fn is_active(&self, now: DateTime<Utc>, identity_active: bool) -> bool {
        self.active && self.expires_at > now && identity_active
    }

    /// Whether an extension is allowed now (`session.earliest_possible_extend`).
    pub fn can_extend(&self, now: DateTime<Utc>, earliest_possible_extend: Option<Duration>) -> bool {
        match earliest_possible_extend {
            None => true,
            Some(window) => self.expires_at - window < now,
        }
    }

    /// Revokes the session.
    pub fn revoke(&mut self, now: DateTime<Utc>) {
        self.active = false;
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(method: &str, aal: Option<Aal>) -> AuthMethod {
        AuthMethod {
            method: method.into(),
            aal,
            completed_at: crate::clock::Clock::system().now(),
            provider: None,
            organization: None,
        }
    }

    #[test]
    fn aal_follows_the_completed_methods() {
        assert_eq!(compute_aal(&[]), Aal::Aal0);
        assert_eq!(compute_aal(&[m("password", Some(Aal::Aal1))]), Aal::Aal1);
        assert_eq!(compute_aal(&[m("password", None), m("totp", None)]), Aal::Aal2);
        assert_eq!(compute_aal(&[m("totp", Some(Aal::Aal2))]), Aal::Aal1, "aal2 alone falls back to aal1");
        assert_eq!(compute_aal(&[m("code", Some(Aal::Aal1)), m("code", Some(Aal::Aal2))]), Aal::Aal2);
    }

    #[test]
    fn highest_available_asks_for_aal2_only_of_identities_that_can() {
        use Aal::*;
        assert!(satisfies("aal1", Aal1, Aal2));
        assert!(!satisfies("aal1", Aal0, Aal1));
        assert!(satisfies("highest_available", Aal1, Aal1));
        assert!(!satisfies("highest_available", Aal1, Aal2));
        assert!(satisfies("highest_available", Aal2, Aal2));
    }

    #[test]
    fn tokens_have_the_prefix_and_are_stored_hashed() {
        let now = crate::clock::Clock::system().now();
        let (s, token, logout) =
            Session::issue(Uuid::new_v4(), vec![m("password", None)], None, now, Duration::hours(1));
        assert!(token.starts_with("ory_st_") && token.len() == 39);
        assert!(logout.starts_with("ory_lo_"));
        assert_eq!(s.token_hash, token_hash(&token));
        assert_ne!(s.token_hash, token);
        assert_eq!(s.expires_at, now + Duration::hours(1));
        assert!(s.is_active(now, true));
        assert!(!s.is_active(now, false));
        assert!(!s.is_active(now + Duration::hours(2), true));
    }

    #[test]
    fn extension_window() {
        let now = crate::clock::Clock::system().now();
        let (s, _, _) = Session::issue(Uuid::new_v4(), vec![], None, now, Duration::hours(24));
        assert!(s.can_extend(now, None));
        assert!(!s.can_extend(now, Some(Duration::hours(1))));
        assert!(s.can_extend(now + Duration::hours(23) + Duration::minutes(1), Some(Duration::hours(1))));
    }
}
