//! Logging through `tracing`, configured by `[log]`, and Prometheus metrics ([`metrics`]).

pub mod metrics;

use crate::config::{LogConfig, LogFormat, LogLevel};
use tracing::Level;

fn level(l: LogLevel) -> Level {
    match l {
        LogLevel::Trace => Level::TRACE,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Error | LogLevel::Fatal | LogLevel::Panic => Level::ERROR,
    }
}

/// Libraries that log the values bound to SQL statements (password hashes, tokens, traits)
/// at debug level: never logged, whatever the level.
const SILENCED: [&str; 2] = ["tokio_postgres", "diesel"];

/// What is logged: `level` and up, nothing from [`SILENCED`] targets.
fn filter(level: Level) -> tracing_subscriber::filter::Targets {
    SILENCED.iter().fold(tracing_subscriber::filter::Targets::new().with_default(level), |targets, target| {
        targets.with_target(*target, tracing_subscriber::filter::LevelFilter::OFF)
    })
}

/// Installs the global subscriber (once per process; later calls do nothing).
pub fn init(config: &LogConfig) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Colour codes only for a terminal: a log file or a collector gets plain text.
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter(level(config.level)));
    let _ = match config.format {
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).try_init(),
        LogFormat::Text => registry.with(fmt).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_parameter_loggers_are_off_at_every_level() {
        let f = filter(Level::TRACE);
        let enabled = |target: &str, level: Level| f.would_enable(target, &level);
        assert!(!enabled("tokio_postgres::query", Level::DEBUG));
        assert!(!enabled("tokio_postgres", Level::ERROR));
        assert!(enabled("tessera::http", Level::TRACE));
    }
}
