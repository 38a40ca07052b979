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
    /// A self-service flow changed; the second id is the instance that wrote it.
    Flow(Uuid, Uuid),
}

impl Notice {
    /// The NOTIFY payload: `s:<uuid>` or `i:<uuid>`.
    pub fn encode(self) -> String {
        match self {
            Notice::Session(id) => format!("s:{id}"),
            Notice::Identity(id) => format!("i:{id}"),
            Notice::Flow(id, origin) => format!("f:{id}:{origin}"),
        }
    }

    /// Parses a NOTIFY payload.
    pub fn decode(s: &str) -> Option<Notice> {
        let (kind, rest) = s.split_once(':')?;
        if kind == "f" {
            let (id, origin) = rest.split_once(':')?;
            return Some(Notice::Flow(Uuid::parse_str(id).ok()?, Uuid::parse_str(origin).ok()?));
        }
        let id = Uuid::parse_str(rest).ok()?;
        match kind {
            "s" => Some(Notice::Session(id)),
            "i" => Some(Notice::Identity(id)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Notice;
    use uuid::Uuid;

    #[test]
    fn notices_round_trip() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for n in [Notice::Session(a), Notice::Identity(a), Notice::Flow(a, b)] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("f:not-a-uuid:x"), None);
        assert_eq!(Notice::decode("x:00000000-0000-0000-0000-000000000000"), None);
    }
}
