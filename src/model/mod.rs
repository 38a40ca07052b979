//! The data the layers hand each other: identities and sessions as plain values. A leaf
//! module (it depends on nothing in the crate), so storage can read and write these types
//! without importing the domain layers that give them rules.

pub mod identity;
pub mod session;
