//! Command-line work beyond serving: commands that talk to a running server's admin API (like
//! Kratos' `import`, `get`, `list`, `delete identities`) and `hashers argon2 calibrate`.

pub mod hashers;
pub mod identities;
pub mod kratos;
