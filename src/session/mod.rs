//! Sessions: the model and its pure rules (tokens, AAL, activity, extension), the service that
//! issues and revokes them, and the actors that keep live sessions in memory.

pub mod actor;
pub mod kratos_cookie;
pub mod live;
pub mod registry;
mod rules;
pub mod service;
pub mod tokenizer;
pub mod view;

pub use crate::model::session::{Aal, AuthMethod, Device, Session};
pub use registry::SessionRegistry;
pub use rules::{compute_aal, logout_token_for, new_token, satisfies, token_digest, token_hash};
pub use service::SessionService;
