//! `App::build(config)`: the store, the actors and both HTTP servers, bound and running.
//! Tests build it with port 0 and talk to it over HTTP.

use crate::clock::Clock;
use crate::config::{Config, SchemaSource};
use crate::http::{AppState, admin_app, public_app};
use crate::persistence::{Persister, Store};
use crate::schema::{DEV_SCHEMA, SchemaRegistry};
use actix_web::{HttpServer, web};
use anyhow::Context;
use base64::Engine;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Options that come from the command line rather than the configuration.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Apply pending migrations before serving.
    pub migrate: bool,
    /// HTTP worker threads per server (default: one per core).
    pub workers: Option<usize>,
    /// The clock (tests pass a fixed one).
    pub clock: Option<Clock>,
}

/// A running tessera: both servers and the actor system behind them.
pub struct App {
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    servers: Vec<actix_web::dev::ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    state: web::Data<AppState>,
    /// Held so the supervised Janitor lives as long as the servers.
    _janitor: actix::Addr<crate::actors::janitor::Janitor>,
    dispatcher: Option<actix::Addr<crate::courier::dispatcher::Dispatcher>>,
    upkeep: tokio::task::JoinHandle<()>,
}

/// Folds recorded histogram samples every few seconds, so they do not pile up between scrapes
/// (or without any); ends with the app.
async fn metrics_upkeep(state: std::sync::Weak<AppState>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        let Some(state) = state.upgrade() else { return };
        for m in state.metric_sets() {
            m.upkeep();
        }
        state.http_metrics.upkeep();
    }
}

/// The DSN `serve --dev` uses when none is configured.
pub const DEV_DSN: &str = "sqlite://tessera-dev.sqlite?_fk=true";

/// Fills in what `--dev` provides: a SQLite database, a schema and secrets for this run.
pub fn apply_dev_defaults(config: &mut Config) {
    config.dev = true;
    if config.dsn.is_none() {
        config.dsn = Some(DEV_DSN.into());
    }
    if config.identity.schemas.is_empty() {
        config.identity.schemas.push(SchemaSource {
            id: config.identity.default_schema_id.clone(),
            url: format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(DEV_SCHEMA)),
            selfservice_selectable: true,
        });
    }
}

/// What `serve --dev` adds for the bundled UI, for every key the file and environment leave
/// unset (`given` answers whether they set a key): the UI on, and with it recovery and
/// verification (by code) and a session right after sign-up, so the pages give the whole
/// experience.
pub fn apply_dev_ui_defaults(config: &mut Config, given: impl Fn(&[&str]) -> bool) {
    config.ui.enabled.get_or_insert(true);
    if !config.ui.on() {
        return;
    }
    let flows = &mut config.selfservice.flows;
    for (name, enabled) in
        [("recovery", &mut flows.recovery.enabled), ("verification", &mut flows.verification.enabled)]
    {
        if !given(&["selfservice", "flows", name, "enabled"]) {
            *enabled = true;
        }
    }
    if !given(&["selfservice", "flows", "registration", "after"]) {
        let after = &mut flows.registration.after;
        for method in [&mut after.password, &mut after.code, &mut after.webauthn, &mut after.passkey, &mut after.oidc] {
            method.hooks = vec![crate::config::HookConfig { hook: "session".into(), config: None }];
        }
    }
}

fn random_secret() -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect()
}

/// Connections the kernel queues before they are accepted (std's default of 128 makes a burst
/// of clients wait for SYN retransmits, seconds each).
const LISTEN_BACKLOG: u32 = 2048;

fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}:{port}"))?
        .next()
        .with_context(|| format!("cannot resolve {host}:{port}"))?;
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr).with_context(|| format!("cannot listen on {host}:{port}"))?;
    let listener = socket.listen(LISTEN_BACKLOG).with_context(|| format!("cannot listen on {host}:{port}"))?;
    let listener = listener.into_std()?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl App {
    /// Connects the store, starts the actors and binds both servers. Must run inside an
    /// actix `System`.
    pub async fn build(mut config: Config, options: BuildOptions) -> anyhow::Result<App> {
        let dsn = config.dsn.clone().context("dsn is not set: configure `dsn`, set DSN, or use --dev")?;
        let tuning = crate::persistence::store::Tuning {
            statement_timeout: Some(config.persistence.statement_timeout.0),
            keepalive: Some(config.persistence.keepalive.0),
        };
        let store = Store::connect_tuned(&dsn, tuning)?;
        if options.migrate {
            store.migrate().await.context("applying migrations")?;
        }
        // Queued messages are sealed only with configured secrets: generated ones die with the
        // process, and a message queued before a restart must still be readable after it.
        let sealer = crate::courier::Sealer::from_secrets(&config.secrets);
        if !config.dev {
            config.secrets.check_for_serving().map_err(anyhow::Error::msg)?;
            config.serve.admin.check_for_serving().map_err(anyhow::Error::msg)?;
        }
        if config.selfservice.methods.oidc.enabled {
            crate::selfservice::strategy::oidc::check_config(&config).map_err(anyhow::Error::msg)?;
        }
        if config.secrets.default.is_empty() && config.secrets.cookie.is_empty() {
            // `--dev` only: secrets for this run.
            config.secrets.default.push(random_secret());
        }
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
        let schemas = SchemaRegistry::load(&config.identity, &http).await?;
        let hashes = crate::hash::HashPool::new(&config.hashers).context("hashers")?;

        let public = bind(&config.serve.public.host, config.serve.public.port)?;
        let admin = bind(&config.serve.admin.host, config.serve.admin.port)?;
        let (public_addr, admin_addr) = (public.local_addr()?, admin.local_addr()?);
        // With port 0 the real port is only known now; derived base URLs must use it.
        config.serve.public.port = public_addr.port();
        config.serve.admin.port = admin_addr.port();
        config.apply_ui_defaults();

        let persister = Persister::start(store.clone(), config.persistence.clone());
        let config = Arc::new(config);
        let clock = options.clock.unwrap_or_default();
        let registry = crate::session::SessionRegistry::new(
            store.clone(),
            config.actors.session.clone(),
            config.public_base_url(),
            crate::selfservice::strategy::code::second_factor(&config),
        );
        let flows = crate::selfservice::registry::FlowRegistry::new(
            store.clone(),
            persister.clone(),
            clock.clone(),
            config.actors.flow.clone(),
        );
        let invalidation = crate::persistence::invalidation::Invalidation::start(store.pg_url(), persister.instance());
        registry.follow(&invalidation);
        flows.follow(&invalidation);
        let sessions = crate::session::SessionService::new(
            config.clone(),
            store.clone(),
            persister.clone(),
            registry.clone(),
            clock.clone(),
            invalidation.clone(),
        );
        let identities = crate::identity::IdentityService {
            config: config.clone(),
            store: store.clone(),
            persister: persister.clone(),
            schemas: schemas.clone(),
            hashes,
            clock: clock.clone(),
            invalidation,
        };
        let dummy_hash =
            identities.hashes.hash(random_secret().into_bytes()).await.context("hashing the dummy password")?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let courier = crate::courier::Courier::new(
            store.clone(),
            persister.clone(),
            clock.clone(),
            wake.clone(),
            Arc::new(config.courier.clone()),
            sealer.clone(),
        );
        let services = crate::selfservice::services::Services {
            courier: courier.clone(),
            outbox: Default::default(),
            config: config.clone(),
            store: store.clone(),
            persister: persister.clone(),
            clock: clock.clone(),
            schemas: schemas.clone(),
            identities: identities.clone(),
            sessions: sessions.clone(),
            flows: flows.clone(),
            brute_force: crate::selfservice::brute_force::BruteForce::new(
                config.security.brute_force.clone(),
                config.security.send_limits.clone(),
                store.clone(),
                clock.clone(),
            ),
            hooks: crate::selfservice::hook::HookRunner::new(config.clone(), sessions.clone()),
            hydra: Default::default(),
        };
        let selfservice = crate::selfservice::SelfService {
            services,
            strategies: crate::selfservice::strategy::registry::Strategies::new(config.clone(), Arc::new(dummy_hash)),
        };
        let sweeps: Vec<(&'static str, crate::actors::janitor::Sweep)> = vec![
            (
                "session",
                Arc::new({
                    let r = registry.clone();
                    move || r.sweep_idle()
                }),
            ),
            (
                "flow",
                Arc::new({
                    let f = flows.clone();
                    move || f.sweep_idle()
                }),
            ),
        ];
        let janitor = crate::actors::janitor::start(store.clone(), sweeps, config.actors.clone(), clock.clone());
        let dispatcher = if config.courier.worker.enabled {
            Some(
                crate::courier::dispatcher::start(
                    store.clone(),
                    persister.clone(),
                    config.courier.clone(),
                    clock.clone(),
                    wake,
                    sealer,
                    courier.templates().clone(),
                    courier.metrics().clone(),
                )
                .map_err(|e| anyhow::anyhow!(e))?,
            )
        } else {
            None
        };
        let state = web::Data::new(AppState {
            config: config.clone(),
            store,
            persister,
            schemas,
            clock,
            identities,
            sessions,
            selfservice,
            courier,
            http_metrics: Default::default(),
        });

        let workers = options.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let s = state.clone();
        let public_server = HttpServer::new(move || public_app(s.clone()))
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(120)
            .listen(public)?
            .run();
        let s = state.clone();
        let admin_server = HttpServer::new(move || admin_app(s.clone()))
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(120)
            .listen(admin)?
            .run();
        let servers = vec![public_server.handle(), admin_server.handle()];
        let tasks = vec![tokio::spawn(public_server), tokio::spawn(admin_server)];
        let upkeep = tokio::spawn(metrics_upkeep(std::sync::Arc::downgrade(&state.clone().into_inner())));
        Ok(App { public_addr, admin_addr, servers, tasks, state, _janitor: janitor, dispatcher, upkeep })
    }

    /// `http://<addr>` of the public server.
    pub fn public_url(&self) -> String {
        format!("http://{}", self.public_addr)
    }

    /// `http://<addr>` of the admin server.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// The shared state (tests reach the store and Persister through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Graceful shutdown: the courier stops claiming, in-flight requests finish, then the
    /// Persister flushes.
    pub async fn stop(self) {
        self.upkeep.abort();
        if let Some(d) = &self.dispatcher {
            let _ = d.send(crate::courier::dispatcher::Shutdown).await;
        }
        for handle in &self.servers {
            handle.stop(true).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        self.state.persister.shutdown().await;
    }
}
