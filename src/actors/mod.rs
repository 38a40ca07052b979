//! Actor machinery shared by the layers above: the generic registry of live actors and the
//! Janitor that runs periodic cleanup and idle passivation.

pub mod janitor;
pub mod registry;

/// Stop an actor (passivation or invalidation); every registry resident handles it.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Passivate;
