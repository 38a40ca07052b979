//! The `tessera` command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera::app::{App, BuildOptions, apply_dev_defaults};
use tessera::config::{self, Config};
use tessera::persistence::Store;

#[derive(Parser)]
#[command(name = "tessera", about = "An identity server that speaks the Ory Kratos API", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the public and admin servers.
    Serve {
        /// TOML configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Development mode: SQLite when no DSN is set, migrations applied, cookies not
        /// `Secure`, secrets generated for this run.
        #[arg(long)]
        dev: bool,
        /// Apply pending migrations before serving.
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// TOML configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

fn load_config(file: Option<&PathBuf>) -> Result<Config, String> {
    let loaded = config::load(file.map(PathBuf::as_path), std::env::vars()).map_err(|e| e.to_string())?;
    tessera::telemetry::init(&loaded.config.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.config)
}

fn runtime() -> std::io::Result<actix::SystemRunner> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    Ok(actix::System::with_tokio_rt(move || rt))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(mut config: Config, dev: bool, migrate: bool) -> Result<(), String> {
    if dev {
        apply_dev_defaults(&mut config);
    }
    let options = BuildOptions { migrate: migrate || dev, ..BuildOptions::default() };
    let app = App::build(config, options).await.map_err(|e| format!("{e:#}"))?;
    let (public, admin) = (app.public_url(), app.admin_url());
    tracing::info!(%public, %admin, "tessera is serving");
    if dev {
        println!("tessera (dev mode) is serving\n  public API: {public}/\n  admin API:  {admin}/admin/");
    }
    wait_for_signal().await;
    tracing::info!("shutting down: finishing requests and flushing writes");
    app.stop().await;
    Ok(())
}

async fn migrate(config: Config) -> Result<(), String> {
    let dsn = config.dsn.ok_or("dsn is not set: configure `dsn` or set DSN")?;
    let store = Store::connect(&dsn).map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    println!("migrations applied");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            println!("tessera {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve { config, dev, migrate: m } => {
            load_config(config.as_ref()).and_then(|c| runtime().map_err(|e| e.to_string())?.block_on(serve(c, dev, m)))
        }
        Command::Migrate { config } => {
            load_config(config.as_ref()).and_then(|c| runtime().map_err(|e| e.to_string())?.block_on(migrate(c)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
