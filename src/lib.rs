//! tessera: an identity server that speaks the Ory Kratos API.

pub mod actors;
pub mod app;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod config;
pub mod courier;
pub mod error;
pub mod hash;
pub mod http;
pub mod identity;
pub mod jsonnet;
pub mod model;
pub mod net;
pub mod persistence;
pub mod schema;
pub mod seal;
pub mod selfservice;
pub mod session;
pub mod telemetry;

pub use app::App;
