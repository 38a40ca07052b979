//! Identities: the model (in [`crate::model::identity`], so that storage can name it without
//! depending on this layer), import bodies, JSON Patch, the API view, and the service.

pub use crate::model::identity::*;

pub mod import;
pub mod patch;
pub mod service;
pub mod view;

pub use service::IdentityService;
