//! Configuration: serde structs whose key paths are Kratos' (`reference/config.schema.json`)
//! plus tessera's own `[actors]`, `[persistence]` and `[courier.pool]` sections.
//! Loading (defaults → TOML file → environment) and key checking live in [`load`].

mod load;
mod sections;
mod selfservice;
mod values;

pub use load::{ConfigError, Loaded, from_table, json_to_toml, load, parse_file};
pub use sections::*;
pub use selfservice::*;
pub use values::{ByteSize, Cidr, Dur, canonical, redact_url};
