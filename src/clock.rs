//! The only source of "now": a system clock, or a fixed/advanceable one in tests.

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// Tells the time. Cloning shares the same clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { fixed: None }
    }

    /// A clock that stands still at `at` until advanced.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock { fixed: Some(Arc::new(Mutex::new(at))) }
    }

    /// Now, truncated to microseconds (the precision both databases keep).
    pub fn now(&self) -> DateTime<Utc> {
        let now = match &self.fixed {
            Some(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
            #[allow(clippy::disallowed_methods)]
            None => Utc::now(),
        };
        chrono::DurationRound::duration_trunc(now, Duration::microseconds(1)).unwrap_or(now)
    }

    /// Moves a fixed clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.fixed {
            let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
            *t += by;
        }
    }
}

/// A timestamp as the API renders it (RFC 3339, UTC, fractional seconds as needed).
pub fn ts(t: &DateTime<Utc>) -> serde_json::Value {
    serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}
