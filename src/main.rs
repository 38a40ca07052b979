//! The `tessera` command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera::app::{App, BuildOptions, apply_dev_defaults, apply_dev_ui_defaults};
use tessera::config::{self, Config};
use tessera::persistence::Store;

#[derive(Parser)]
#[command(name = "tessera", about = "An identity server that speaks the Ory Kratos API", version)]
struct Cli {
    /// Configuration file: TOML, or YAML (`.yml`, `.yaml`) or JSON (`.json`) as Kratos reads
    /// it; before or after the subcommand.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the public and admin servers.
    Serve {
        /// Development mode: SQLite when no DSN is set, migrations applied, cookies not
        /// `Secure`, secrets generated for this run.
        #[arg(long)]
        dev: bool,
        /// Apply pending migrations before serving.
        #[arg(long)]
        migrate: bool,
        /// Accepted for Kratos' command lines: the courier always runs in this process.
        #[arg(long, hide = true)]
        watch_courier: bool,
    },
    /// Apply pending database migrations and exit (`migrate sql [-e] [--yes] [DSN]` as in Kratos).
    Migrate {
        #[command(subcommand)]
        command: Option<MigrateCommand>,
    },
    /// Check or convert a configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Delete expired sessions once, in batches of `actors.janitor.batch_size`, and exit.
    Cleanup,
    /// The courier: `watch` delivers queued messages (alone, without the HTTP servers).
    Courier {
        #[command(subcommand)]
        command: CourierCommand,
    },
    /// Manage identities through a running server's admin API.
    Identities {
        #[command(flatten)]
        endpoint: EndpointArgs,
        #[command(subcommand)]
        command: IdentitiesCommand,
    },
    /// Password hashers: `hashers argon2 calibrate REQUESTS_PER_MINUTE`.
    Hashers {
        #[command(subcommand)]
        command: HashersCommand,
    },
    /// Jsonnet templates: `jsonnet lint FILE…`.
    Jsonnet {
        #[command(subcommand)]
        command: JsonnetCommand,
    },
    /// Kratos' spelling of `jsonnet lint`: `lint lint FILE…`.
    #[command(hide = true)]
    Lint {
        #[command(subcommand)]
        command: JsonnetCommand,
    },
    /// Kratos' spelling of `jsonnet format`: `format jsonnet [-w] FILE…`.
    #[command(hide = true)]
    Format {
        #[command(subcommand)]
        command: FormatCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum CourierCommand {
    /// Deliver queued e-mail and SMS until stopped (SIGTERM / Ctrl-C); several watchers may
    /// share one PostgreSQL database, no message is sent twice.
    Watch,
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Apply pending migrations to the database of `DSN`, or of the configuration
    /// (`migrate sql [DSN] [-e] [--yes]`, with `status`, `up` and `down` as in Kratos).
    Sql {
        #[command(flatten)]
        target: MigrateTarget,
        /// Do not ask before applying (asked only on a terminal).
        #[arg(short, long, global = true)]
        yes: bool,
        #[command(subcommand)]
        command: Option<SqlCommand>,
    },
    /// Print each migration and whether it is applied.
    Status {
        #[command(flatten)]
        target: MigrateTarget,
    },
    /// Apply pending migrations (asks first on a terminal unless `--yes`).
    Up {
        #[command(flatten)]
        target: MigrateTarget,
        #[arg(short, long)]
        yes: bool,
    },
    /// Copy identities and active sessions from a Kratos database (PostgreSQL or SQLite) into
    /// this one (its migrations are applied first); what is already here is left alone, so it
    /// can be run again.
    FromKratos {
        /// The Kratos database (its DSN as Kratos reads it).
        #[arg(long)]
        source_dsn: String,
        #[command(flatten)]
        target: MigrateTarget,
        /// Rows read and written per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
    },
    /// Revert the newest applied migrations (asks first on a terminal unless `--yes`).
    Down {
        #[command(flatten)]
        target: MigrateTarget,
        /// How many migrations to revert.
        #[arg(long, default_value_t = 1)]
        steps: usize,
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum SqlCommand {
    /// Print each migration and whether it is applied.
    Status {
        #[command(flatten)]
        target: MigrateTarget,
    },
    /// Apply pending migrations.
    Up {
        #[command(flatten)]
        target: MigrateTarget,
    },
    /// Revert the newest applied migrations.
    Down {
        #[command(flatten)]
        target: MigrateTarget,
        #[arg(long, default_value_t = 1)]
        steps: usize,
    },
}

#[derive(clap::Args, Clone)]
struct MigrateTarget {
    /// The database; without it, `dsn` from the configuration (or the environment).
    dsn: Option<String>,
    /// Read the DSN from the environment (`DSN`), as Kratos' `-e`.
    #[arg(short = 'e', long = "read-from-env")]
    read_from_env: bool,
}

#[derive(Subcommand)]
enum HashersCommand {
    /// Argon2 parameters for this machine.
    Argon2 {
        #[command(subcommand)]
        command: Argon2Command,
    },
}

#[derive(Subcommand)]
enum Argon2Command {
    /// Find memory and iterations for which one hash takes just under the expected duration
    /// (`hashers.argon2.expected_duration`) on this machine, then check that the given login
    /// rate fits `hashers.argon2.dedicated_memory`; prints the result as TOML.
    Calibrate(tessera::cli::hashers::CalibrateArgs),
}

#[derive(Subcommand)]
enum JsonnetCommand {
    /// Check Jsonnet files (web-hook bodies, claims mappers): exit 1 when one does not parse.
    Lint {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Format Jsonnet files (indentation, spacing, blank lines; tokens kept as written) to
    /// stdout, or in place with `-w`.
    Format {
        /// Write the result back to each file.
        #[arg(short, long)]
        write: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FormatCommand {
    /// Kratos' `format jsonnet [-w] FILE…`.
    Jsonnet {
        #[arg(short, long)]
        write: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load a configuration file (and the environment) as `serve` would, without starting:
    /// errors name the key and line; Kratos keys tessera does not implement are listed.
    Check { file: PathBuf },
    /// Print a configuration file (TOML, YAML or JSON) as TOML, after checking it.
    Convert { file: PathBuf },
}

#[derive(clap::Args)]
struct EndpointArgs {
    /// Admin API base URL.
    #[arg(short, long, global = true, env = "TESSERA_ADMIN_URL", default_value = "http://127.0.0.1:4434")]
    endpoint: String,
    /// Admin API key, when the server requires one.
    #[arg(long, global = true, env = "TESSERA_ADMIN_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Subcommand)]
enum IdentitiesCommand {
    /// Import identities from JSON files (an array, one object, or JSON lines; `-` = stdin).
    /// Identities that already exist are skipped, so an interrupted import can be re-run.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List one page of identities and print the next page token.
    #[command(alias = "ls")]
    List {
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        #[arg(long)]
        page_token: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print identities as JSON.
    Get {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Include a credential's configuration (e.g. password, oidc); repeatable.
        #[arg(short = 'i', long = "include-credential")]
        include: Vec<String>,
    },
    /// Delete identities.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Check identity files (an array, one object, or JSON lines; `-` = stdin) against the
    /// create body and the identity schema the server serves; exit 1 when one is not valid.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

async fn identities(endpoint: EndpointArgs, command: IdentitiesCommand) -> Result<(), String> {
    use tessera::cli::identities as cmd;
    let endpoint = cmd::Endpoint { url: endpoint.endpoint, api_key: endpoint.api_key };
    let failed = match command {
        IdentitiesCommand::Import { files } => {
            let s = cmd::import(&endpoint, &files).await.map_err(|e| format!("{e:#}"))?;
            println!("imported {}, skipped {} (already exist), failed {}", s.created, s.skipped, s.failed);
            s.failed
        }
        IdentitiesCommand::List { page_size, page_token, json } => {
            cmd::list(&endpoint, page_size, page_token.as_deref(), json).await.map_err(|e| format!("{e:#}"))?;
            0
        }
        IdentitiesCommand::Get { ids, include } => {
            cmd::get(&endpoint, &ids, &include).await.map_err(|e| format!("{e:#}"))?
        }
        IdentitiesCommand::Delete { ids } => cmd::delete(&endpoint, &ids).await.map_err(|e| format!("{e:#}"))?,
        IdentitiesCommand::Validate { files } => {
            let invalid = cmd::validate(&endpoint, &files).await.map_err(|e| format!("{e:#}"))?;
            if invalid > 0 {
                return Err(format!("{invalid} identities are not valid"));
            }
            println!("All identity files are valid.");
            0
        }
    };
    if failed > 0 { Err(format!("{failed} identities failed")) } else { Ok(()) }
}

fn load_config(file: Option<&PathBuf>) -> Result<Config, String> {
    load_given(file).map(|loaded| loaded.config)
}

/// The configuration with what the file and environment set (logging is set up from it).
fn load_given(file: Option<&PathBuf>) -> Result<config::Loaded, String> {
    let loaded = config::load(file.map(PathBuf::as_path), std::env::vars()).map_err(|e| e.to_string())?;
    tessera::telemetry::init(&loaded.config.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded)
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

async fn serve(loaded: config::Loaded, dev: bool, migrate: bool) -> Result<(), String> {
    let mut config = loaded.config.clone();
    if dev {
        apply_dev_defaults(&mut config);
        apply_dev_ui_defaults(&mut config, |path| loaded.sets(path));
    }
    let ui = config.ui.on();
    let mail_waits = config.courier.smtp.connection_uri.is_empty();
    let options = BuildOptions { migrate: migrate || dev, ..BuildOptions::default() };
    let app = App::build(config, options).await.map_err(|e| format!("{e:#}"))?;
    let (public, admin) = (app.public_url(), app.admin_url());
    tracing::info!(%public, %admin, "tessera is serving");
    if dev {
        let base = app.state().config.public_base_url();
        let mut banner = String::new();
        if ui {
            banner.push_str(&format!("  open:       {base}ui/welcome\n"));
        }
        banner.push_str(&format!("  public API: {public}/\n  admin API:  {admin}/admin/\n"));
        if mail_waits {
            banner.push_str(&format!("  mail:       {admin}/admin/courier/messages (no SMTP server configured)\n"));
        }
        print!("{banner}");
    }
    wait_for_signal().await;
    tracing::info!("shutting down: finishing requests and flushing writes");
    app.stop().await;
    Ok(())
}

async fn cleanup(config: Config) -> Result<(), String> {
    let dsn = config.dsn.clone().ok_or("dsn is not set: configure `dsn` or set DSN")?;
    let store = Store::connect(&dsn).map_err(|e| e.to_string())?;
    let clock = tessera::clock::Clock::system();
    let batch = config.actors.janitor.batch_size.max(1);
    let n =
        tessera::persistence::cleanup::delete_expired(&store, clock.now(), batch).await.map_err(|e| e.to_string())?;
    println!("deleted {n} expired sessions");
    Ok(())
}

async fn courier_watch(config: Config) -> Result<(), String> {
    let dsn = config.dsn.clone().ok_or("dsn is not set: configure `dsn` or set DSN")?;
    let store = Store::connect(&dsn).map_err(|e| e.to_string())?;
    let persister = tessera::persistence::Persister::start(store.clone(), config.persistence.clone());
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let dispatcher = tessera::courier::dispatcher::start(
        store,
        persister.clone(),
        config.courier.clone(),
        tessera::clock::Clock::system(),
        wake,
        tessera::courier::Sealer::from_secrets(&config.secrets),
        tessera::courier::template::Templates::new(std::sync::Arc::new(config.courier.clone())),
        tessera::telemetry::metrics::Metrics::default(),
    )?;
    tracing::info!("courier: watching for queued messages");
    wait_for_signal().await;
    tracing::info!("courier: stopping");
    let _ = dispatcher.send(tessera::courier::dispatcher::Shutdown).await;
    persister.shutdown().await;
    Ok(())
}

/// What a `migrate` command does.
enum MigrateAction {
    Status,
    Up { ask: bool },
    Down { steps: usize, ask: bool },
}

async fn migrate(config: Config, action: MigrateAction) -> Result<(), String> {
    let dsn = config.dsn.ok_or("dsn is not set: configure `dsn` or set DSN")?;
    let store = Store::connect(&dsn).map_err(|e| e.to_string())?;
    match action {
        MigrateAction::Status => {
            for (name, applied) in store.migration_status().await.map_err(|e| e.to_string())? {
                println!("{:<8} {name}", if applied { "Applied" } else { "Pending" });
            }
        }
        MigrateAction::Up { ask } => {
            let pending = store.pending_migrations().await.map_err(|e| e.to_string())?;
            if pending.is_empty() {
                println!("no pending migrations");
                return Ok(());
            }
            if ask && !confirm(&format!("Apply {} pending migrations?", pending.len())) {
                return Err("migrations not applied".into());
            }
            for name in store.migrate().await.map_err(|e| e.to_string())? {
                println!("applied  {name}");
            }
            println!("migrations applied");
        }
        MigrateAction::Down { steps, ask } => {
            if ask && !confirm(&format!("Revert the newest {steps} migrations? Their data is lost.")) {
                return Err("no migration reverted".into());
            }
            let reverted = store.migrate_down(steps).await.map_err(|e| e.to_string())?;
            if reverted.is_empty() {
                println!("no migration to revert");
            }
            for name in reverted {
                println!("reverted {name}");
            }
        }
    }
    Ok(())
}

/// Asks on a terminal; without one (scripts, containers) there is nobody to ask.
fn confirm(question: &str) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return true;
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// `config check` and `config convert`.
fn config_command(command: ConfigCommand) -> Result<(), String> {
    match command {
        ConfigCommand::Check { file } => {
            let loaded = config::load(Some(&file), std::env::vars()).map_err(|e| e.to_string())?;
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", file.display());
            Ok(())
        }
        ConfigCommand::Convert { file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("config: cannot read {}: {e}", file.display()))?;
            let table = config::parse_file(&file, &text).map_err(|e| e.to_string())?;
            config::load(Some(&file), Vec::new()).map_err(|e| e.to_string())?;
            let toml = toml::to_string(&table).map_err(|e| format!("config: cannot write TOML: {e}"))?;
            print!("{toml}");
            Ok(())
        }
    }
}

/// `migrate from-kratos`: the target is migrated, then filled through a Persister.
async fn from_kratos(config: Config, source_dsn: &str, batch: usize) -> Result<(), String> {
    let dsn = config.dsn.clone().ok_or("dsn is not set: configure `dsn` or set DSN")?;
    let target = Store::connect(&dsn).map_err(|e| e.to_string())?;
    target.migrate().await.map_err(|e| e.to_string())?;
    let source = Store::connect(source_dsn).map_err(|e| format!("--source-dsn: {e}"))?;
    let persister = tessera::persistence::Persister::start(target.clone(), config.persistence.clone());
    let now = tessera::clock::Clock::system().now();
    let result = tessera::cli::kratos::migrate(&source, &target, &persister, batch, now).await;
    persister.shutdown().await;
    let summary = result.map_err(|e| format!("{e:#}"))?;
    println!("{summary}");
    if summary.identities_failed + summary.sessions_failed > 0 {
        return Err("some rows could not be copied (see above)".into());
    }
    Ok(())
}

/// `migrate`, `migrate sql [DSN] [-e] [--yes] [status|up|down]`, `migrate status|up|down`,
/// `migrate from-kratos`.
async fn migrate_command(mut config: Config, command: Option<MigrateCommand>) -> Result<(), String> {
    if let Some(MigrateCommand::FromKratos { source_dsn, target, batch_size }) = command {
        target.apply(&mut config)?;
        return from_kratos(config, &source_dsn, batch_size).await;
    }
    let (target, action) = match command {
        None => (None, MigrateAction::Up { ask: false }),
        Some(MigrateCommand::Sql { target, yes, command }) => match command {
            None | Some(SqlCommand::Up { .. }) => {
                let inner = match command {
                    Some(SqlCommand::Up { target }) => target,
                    _ => target.clone(),
                };
                (Some(merge(target, inner)), MigrateAction::Up { ask: !yes })
            }
            Some(SqlCommand::Status { target: inner }) => (Some(merge(target, inner)), MigrateAction::Status),
            Some(SqlCommand::Down { target: inner, steps }) => {
                (Some(merge(target, inner)), MigrateAction::Down { steps, ask: !yes })
            }
        },
        Some(MigrateCommand::Status { target }) => (Some(target), MigrateAction::Status),
        Some(MigrateCommand::Up { target, yes }) => (Some(target), MigrateAction::Up { ask: !yes }),
        Some(MigrateCommand::Down { target, steps, yes }) => (Some(target), MigrateAction::Down { steps, ask: !yes }),
        Some(MigrateCommand::FromKratos { .. }) => return Ok(()),
    };
    if let Some(target) = target {
        target.apply(&mut config)?;
    }
    migrate(config, action).await
}

impl MigrateTarget {
    /// The DSN given on the command line (or by `-e`) replaces the configured one.
    fn apply(self, config: &mut Config) -> Result<(), String> {
        if let Some(dsn) = self.dsn {
            config.dsn = Some(dsn);
        } else if self.read_from_env {
            config.dsn = Some(std::env::var("DSN").map_err(|_| "-e: the environment has no DSN".to_string())?);
        }
        Ok(())
    }
}

/// `migrate sql [DSN] [-e] up [DSN] [-e]`: either place counts.
fn merge(outer: MigrateTarget, inner: MigrateTarget) -> MigrateTarget {
    MigrateTarget { dsn: inner.dsn.or(outer.dsn), read_from_env: inner.read_from_env || outer.read_from_env }
}

/// `jsonnet format [-w] FILE…`: formatted text to stdout, or written back with `-w`.
fn jsonnet_format(files: &[PathBuf], write: bool) -> Result<(), String> {
    let mut failed = 0;
    for file in files {
        let formatted = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|text| tessera::jsonnet::format(&text));
        match formatted {
            Ok(text) if write => {
                if let Err(e) = std::fs::write(file, text) {
                    eprintln!("{}: cannot write: {e}", file.display());
                    failed += 1;
                }
            }
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                failed += 1;
            }
        }
    }
    if failed > 0 { Err(format!("{failed} file(s) could not be formatted")) } else { Ok(()) }
}

/// `jsonnet lint FILE…`: every file is checked; exit 1 when one does not parse.
fn jsonnet_lint(files: &[PathBuf]) -> Result<(), String> {
    let mut failed = 0;
    for file in files {
        let checked = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|text| tessera::jsonnet::check_syntax(&text));
        match checked {
            Ok(()) => println!("{}: ok", file.display()),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                failed += 1;
            }
        }
    }
    if failed > 0 { Err(format!("Linter found issues in {failed} file(s).")) } else { Ok(()) }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            println!("tessera {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve { dev, migrate: m, watch_courier: _ } => load_given(cli.config.as_ref())
            .and_then(|c| runtime().map_err(|e| e.to_string())?.block_on(serve(c, dev, m))),
        Command::Identities { endpoint, command } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(identities(endpoint, command))),
        Command::Courier { command: CourierCommand::Watch } => load_config(cli.config.as_ref())
            .and_then(|c| runtime().map_err(|e| e.to_string())?.block_on(courier_watch(c))),
        Command::Cleanup => {
            load_config(cli.config.as_ref()).and_then(|c| runtime().map_err(|e| e.to_string())?.block_on(cleanup(c)))
        }
        Command::Migrate { command } => load_config(cli.config.as_ref())
            .and_then(|c| runtime().map_err(|e| e.to_string())?.block_on(migrate_command(c, command))),
        Command::Config { command } => config_command(command),
        Command::Jsonnet { command: JsonnetCommand::Lint { files } }
        | Command::Lint { command: JsonnetCommand::Lint { files } } => jsonnet_lint(&files),
        Command::Jsonnet { command: JsonnetCommand::Format { write, files } }
        | Command::Lint { command: JsonnetCommand::Format { write, files } }
        | Command::Format { command: FormatCommand::Jsonnet { write, files } } => jsonnet_format(&files, write),
        Command::Hashers { command: HashersCommand::Argon2 { command: Argon2Command::Calibrate(args) } } => {
            load_config(cli.config.as_ref()).and_then(|c| tessera::cli::hashers::calibrate(&c.hashers, &args))
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
