//! Commands that talk to a running server's admin API (like Kratos' `import`, `get`,
//! `list`, `delete identities`).

pub mod identities;
