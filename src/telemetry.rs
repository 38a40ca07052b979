//! Logging through `tracing`, configured by `[log]`.

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

/// Installs the global subscriber (once per process; later calls do nothing).
pub fn init(config: &LogConfig) {
    let builder = tracing_subscriber::fmt().with_max_level(level(config.level)).with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
