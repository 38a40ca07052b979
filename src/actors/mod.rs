//! Cross-cutting actor machinery: change notices that tell instances to drop cached actors.

pub mod invalidator;
pub mod janitor;

use uuid::Uuid;

/// Something changed that live actors may cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A session was revoked or extended.
    Session(Uuid),
    /// An identity changed (state, credentials, traits) or was deleted.
    Identity(Uuid),
}

impl Notice {
    /// The NOTIFY payload: `s:<uuid>` or `i:<uuid>`.
    pub fn encode(self) -> String {
        match self {
            Notice::Session(id) => format!("s:{id}"),
            Notice::Identity(id) => format!("i:{id}"),
        }
    }

    /// Parses a NOTIFY payload.
    pub fn decode(s: &str) -> Option<Notice> {
        let (kind, id) = s.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "s" => Some(Notice::Session(id)),
            "i" => Some(Notice::Identity(id)),
            _ => None,
        }
    }
}
