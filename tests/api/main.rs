//! The one integration-test binary: real servers on port 0, real databases
//! (SQLite always, PostgreSQL when `DATABASE_URL` is set), real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod browser;
mod chromium;
mod cli;
mod compat;
mod cors;
mod courier;
mod durability;
mod hardening;
mod harness;
mod hash_vectors;
mod health;
mod hooks;
mod hydra;
mod identities;
mod kratos_migration;
mod metrics;
mod mfa;
mod oidc;
mod ownpg;
mod passkeys;
mod passwordless;
mod persister;
mod recovery;
mod schemas;
mod sdk;
mod selfservice;
mod sessions;
mod settings;
mod tokenizer;
mod ui;
mod ui_browser;
