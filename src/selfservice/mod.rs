//! Self-service flows: login, registration, settings, recovery and verification, with their
//! methods, hooks, CSRF protection, brute-force defence and stored errors.
//!
//! Layout, from the bottom up (no module imports one above it):
//! * the flow model ([`flow`]'s `mod.rs`), UI nodes ([`ui`]), request and answer of a step
//!   ([`step`]), payload decoding ([`form`]), `return_to` rules ([`redirect`]), CSRF tokens;
//! * what flows work with ([`services`]: store, clock, identities, sessions, live flows in
//!   [`registry`], [`hook`]s, courier), one-time [`codes`], [`brute_force`], stored [`errors`];
//! * the methods ([`strategy`]): one module each, registered once;
//! * the flows ([`flow`]`::login`, …): pure decision functions (unit-tested) and the code that
//!   runs their effects, handing submits to the strategies.
//!
//! Live flows are `FlowActor`s (one step at a time per flow).

pub mod brute_force;
pub mod challenge;
pub mod codes;
pub mod csrf;
pub mod errors;
pub mod flow;
pub mod form;
pub mod hook;
pub mod hydra;
pub mod outbox;
pub mod redirect;
pub mod registry;
pub mod services;
pub mod step;
pub mod strategy;
pub mod traits;
pub mod ui;

use services::Services;
use strategy::registry::Strategies;

/// What the flows use: the services and the enabled methods.
#[derive(Clone)]
pub struct SelfService {
    pub services: Services,
    pub strategies: Strategies,
}

impl std::ops::Deref for SelfService {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
