//! Actor machinery shared by the layers above: the Janitor that runs periodic cleanup.

pub mod janitor;
