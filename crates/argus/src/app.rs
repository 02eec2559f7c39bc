//! Wiring: `argus up` starts issuer, gate, watch (and the demo API) in one process over one store, one event bus
//! and one control channel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argus_bus::{ControlChannel, DEFAULT_CONTROL_CAPACITY, DEFAULT_EVENT_CAPACITY, EventBus};
use argus_model::{Clock, SystemClock};
use argus_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::demo;

/// How `argus up` was asked to run, beyond the config file.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    pub data_dir: PathBuf,
    pub demo: bool,
    /// The demo users' password; random when `None`.
    pub demo_password: Option<String>,
    /// The process's Prometheus recorder, served on `[metrics] listen` when given. The binary installs one per
    /// process; in-process tests start without (and without the listener).
    pub metrics: Option<PrometheusHandle>,
}

/// A started Argus: where each part listens, and the handle to stop it.
pub struct Running {
    pub issuer_url: String,
    pub gate_url: String,
    /// `None` when `[watch] enabled = false`.
    pub watch_url: Option<String>,
    /// Set with `--demo`.
    pub demo: Option<demo::DemoInfo>,
    /// Where `GET /metrics` is served, when a recorder was given.
    pub metrics_url: Option<String>,
    /// Puts a changed configuration in force (`SIGHUP`).
    pub reloader: Reloader,
    pub events: EventBus,
    pub control: ControlChannel,
    pub store: Store,
    watch: Option<argus_watch::Watch>,
    stop: watch::Sender<bool>,
    servers: JoinSet<std::io::Result<()>>,
}

impl Running {
    /// Ask every server to stop accepting and finish in-flight requests, then wait for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.servers.join_next().await.is_some() {}
        // Last, so watch still records what the servers did while draining.
        if let Some(watch) = self.watch {
            watch.stop().await;
        }
    }

    /// Wait until a server ends on its own (an error) and report it.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        match self.servers.join_next().await {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(e).context("a server failed"),
            Some(Err(e)) => Err(e).context("a server task panicked"),
        }
    }
}

/// The listeners, bound before anything else so that port 0 works and URLs derive from the real ports.
struct Listeners {
    issuer: TcpListener,
    gate: TcpListener,
    watch: Option<TcpListener>,
    demo: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

/// The DPoP nonce secret `name`, kept in the store (created on first use): a restarted Argus, and every process over
/// this data directory, accepts the nonces handed out before or elsewhere.
async fn nonce_secret(store: &Store, name: &str, now: argus_model::Timestamp) -> anyhow::Result<Vec<u8>> {
    let candidate = argus_model::id::random_bytes(32);
    let secret = argus_oauth::IssuerStore::server_secret(store, name, &candidate, now).await;
    secret.with_context(|| format!("cannot read or create the secret {name}"))
}

async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("{name}: cannot listen on {addr}"))
}

fn base_url(public: Option<&str>, listener: &TcpListener) -> anyhow::Result<String> {
    Ok(match public {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", listener.local_addr()?),
    })
}

/// Start everything `config` and `opts` ask for.
pub async fn start(config: Config, opts: UpOptions) -> anyhow::Result<Running> {
    start_with_clock(config, opts, Arc::new(SystemClock)).await
}

/// [`start`] with every part reading time from `clock`: tests move a fake clock to mount attacks that last hours
/// (token expiry, throttling, blocks' TTL, detector windows) without sleeping.
pub async fn start_with_clock(mut config: Config, opts: UpOptions, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    let listeners = Listeners {
        issuer: bind("issuer", config.issuer.listen).await?,
        gate: bind("gate", config.gate.listen).await?,
        watch: if config.watch.enabled { Some(bind("watch", config.watch.listen).await?) } else { None },
        demo: if opts.demo { Some(bind("demo", config.demo.listen).await?) } else { None },
        metrics: match opts.metrics {
            Some(_) => Some(bind("metrics", config.metrics.listen).await?),
            None => None,
        },
    };
    let issuer_url = base_url(config.issuer.public_url.as_deref(), &listeners.issuer)?;
    let gate_url = base_url(config.gate.public_url.as_deref(), &listeners.gate)?;
    let watch_url = match &listeners.watch {
        Some(l) => Some(format!("http://{}", l.local_addr()?)),
        None => None,
    };
    let audience = config.gate.audience.clone().unwrap_or_else(|| gate_url.clone());
    let gate_issuer = config.gate.issuer.clone().unwrap_or_else(|| issuer_url.clone());

    let store = Store::open_dir(&opts.data_dir)
        .await
        .with_context(|| format!("cannot open the store in {}", opts.data_dir.display()))?;
    let events = EventBus::new(DEFAULT_EVENT_CAPACITY);
    let control = ControlChannel::new(DEFAULT_CONTROL_CAPACITY);
    let issuer_nonce_secret = nonce_secret(&store, "dpop-nonce:issuer", clock.now()).await?;
    let gate_nonce_secret = nonce_secret(&store, "dpop-nonce:gate", clock.now()).await?;

    // Watch subscribes first so it sees every event the others emit from their first request on. Turned off, nobody
    // subscribes and published events are dropped at once (`bench/gate` measures the gate with and without it).
    let watch = if config.watch.enabled {
        // The demo's responses (demo.toml) stand in for none configured (a copy: a reload compares the file's).
        let mut watch_config = config.watch.clone();
        if opts.demo && watch_config.responses.is_empty() {
            watch_config.responses = demo::watch_responses()?;
        }
        let shared = Arc::new(store.clone());
        let deps = argus_watch::WatchDeps {
            store: shared.clone(),
            actions: shared.clone(),
            issuer: argus_watch::IssuerLink {
                store: shared,
                url: issuer_url.clone(),
                audience: audience.clone(),
                access_token_ttl: Duration::from_secs(config.issuer.access_token_ttl_secs),
                refresh_token_ttl: Duration::from_secs(config.issuer.refresh_token_absolute_ttl_secs),
                // Users are told through the issuer's notices, delivered as `[notify]` says.
                notify: config.notify.routes(),
            },
            control: control.clone(),
            events: events.clone(),
            clock: clock.clone(),
        };
        Some(argus_watch::Watch::start(&watch_config, deps).await.context("watch")?)
    } else {
        None
    };

    // Watch's blocks in force: the issuer's login form and the gate refuse the blocked from their first call.
    let initial_blocks = argus_detect::respond::ActionStore::standing_blocks(&store, clock.now())
        .await
        .context("cannot load the blocks in force")?;
    // `[notify]` is a table of its own in the file; the issuer reads it with its own settings.
    let issuer_config = argus_issuer::IssuerConfig { notify: config.notify.clone(), ..config.issuer.clone() };
    let issuer_router = argus_issuer::router(
        &issuer_config,
        &issuer_url,
        &audience,
        argus_issuer::IssuerDeps {
            store: Arc::new(store.clone()),
            events: events.clone(),
            control: control.clone(),
            clock: clock.clone(),
            // DPoP proof and client assertion jtis. One issuer per process for now; several issuers will share
            // the cache (Redis).
            replay: Arc::new(argus_gate::MemoryReplayCache::default()),
            dpop_nonce_secret: issuer_nonce_secret,
            initial_blocks: initial_blocks.clone(),
        },
    )
    .await
    .context("issuer")?;

    // The demo's routes stand in for an empty route list, now and at every reload.
    let mut demo_routes = None;
    let demo_info = match &listeners.demo {
        Some(l) => {
            let demo_url = format!("http://{}", l.local_addr()?);
            let info = demo::provision(&store, &demo_url, opts.demo_password.clone(), clock.clone()).await?;
            if config.gate.routes.is_empty() {
                let openapi = demo::write_openapi(&opts.data_dir)?;
                let routes = demo::gate_routes(&demo_url, &openapi)?;
                config.gate.routes.clone_from(&routes);
                demo_routes = Some(routes);
            }
            Some(info)
        }
        None => None,
    };

    // Loaded after the issuer and before serving: a gate starting late still refuses what was revoked before.
    let initial_revocations = argus_oauth::IssuerStore::active_revocations(&store, clock.now())
        .await
        .context("gate: cannot load the revocations in force")?;
    // Likewise the sessions configured triggers asked to sign in again.
    let initial_step_ups = argus_oauth::step_up_demand::StepUpDemandStore::active_step_up_demands(&store, clock.now())
        .await
        .context("gate: cannot load the step-up demands in force")?;
    let gate = argus_gate::start(
        &config.gate,
        &gate_issuer,
        &audience,
        argus_gate::GateDeps {
            events: events.clone(),
            control: control.clone(),
            clock: clock.clone(),
            initial_revocations,
            initial_blocks,
            initial_step_ups,
            dpop_nonce_secret: gate_nonce_secret,
            replay: Arc::new(argus_gate::MemoryReplayCache::default()),
        },
    )
    .await
    .context("gate")?;

    let (stop, stopped) = watch::channel(false);
    let mut servers = JoinSet::new();
    spawn_housekeeping(&mut servers, store.clone(), clock.clone(), stopped.clone());
    // Notices to users: the outbox's delivery worker (webhook, SMTP) and the purge of old notices.
    let outbox =
        argus_issuer::outbox::spawn(config.notify.clone(), Arc::new(store.clone()), clock.clone(), stopped.clone());
    servers.spawn(async move { outbox.await.map_err(std::io::Error::other) });
    serve(&mut servers, listeners.issuer, issuer_router, stopped.clone());
    serve_gate(&mut servers, listeners.gate, gate.router(), &config.gate, stopped.clone());
    if let (Some(l), Some(w)) = (listeners.watch, &watch) {
        serve(&mut servers, l, w.router(), stopped.clone());
    }
    if let (Some(l), Some(info)) = (listeners.demo, &demo_info) {
        serve(&mut servers, l, argus_demo::router(info.api.clone()), stopped.clone());
    }

    let metrics_url = match (listeners.metrics, opts.metrics) {
        (Some(l), Some(handle)) => {
            let url = format!("http://{}/metrics", l.local_addr()?);
            spawn_metrics_upkeep(&mut servers, handle.clone(), stopped.clone());
            serve(&mut servers, l, metrics_router(handle), stopped.clone());
            Some(url)
        }
        _ => None,
    };

    let reloader = Reloader { path: None, started: config, demo_routes, gate };
    Ok(Running {
        issuer_url,
        gate_url,
        watch_url,
        demo: demo_info,
        metrics_url,
        reloader,
        events,
        control,
        store,
        watch,
        stop,
        servers,
    })
}

/// What `SIGHUP` does: read the configuration file again (and the OpenAPI files it names) and put in force what
/// can change while running — the gate's routes, specs, limits, timeouts and trusted proxies — without dropping a
/// connection. Cheap to clone; [`Reloader::reload`] blocks on file reads, so call it off the async workers.
#[derive(Clone)]
pub struct Reloader {
    /// The configuration file; without one, the configuration Argus started with is applied again, which re-reads
    /// the OpenAPI files.
    path: Option<PathBuf>,
    /// The configuration Argus started with (the demo's routes filled in).
    started: Config,
    demo_routes: Option<Vec<argus_gate::RouteConfig>>,
    gate: argus_gate::GateHandle,
}

impl Reloader {
    /// The same reloader, reading `path` from now on.
    pub fn with_file(mut self, path: Option<PathBuf>) -> Self {
        self.path = path;
        self
    }

    /// Read the configuration again and apply it. On success, the changed settings that only a restart applies
    /// (kept at their running values); on error (a file that does not parse, a spec that does not compile),
    /// nothing changed.
    pub fn reload(&self) -> anyhow::Result<Vec<&'static str>> {
        let mut new = match &self.path {
            Some(path) => Config::load(path)?,
            None => self.started.clone(),
        };
        if new.gate.routes.is_empty()
            && let Some(routes) = &self.demo_routes
        {
            new.gate.routes.clone_from(routes);
        }
        let mut restart_needed = self.started.restart_only_changes(&new);
        let gate = self.gate.reload(&new.gate).context("[gate]")?;
        restart_needed.extend(gate.restart_needed);
        Ok(restart_needed)
    }
}

/// `GET /metrics`: the Prometheus text exposition of everything recorded in this process.
fn metrics_router(handle: PrometheusHandle) -> axum::Router {
    let render = move || {
        let text = handle.render();
        async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text) }
    };
    axum::Router::new().route("/metrics", axum::routing::get(render))
}

/// How often the recorder's histograms are compacted (the exporter does this itself only when it runs its own
/// listener).
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

fn spawn_metrics_upkeep(
    set: &mut JoinSet<std::io::Result<()>>,
    handle: PrometheusHandle,
    mut stop: watch::Receiver<bool>,
) {
    set.spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => handle.run_upkeep(),
                _ = stop.changed() => return Ok(()),
            }
        }
    });
}

/// The gate on its own listener loop (HTTP/1.1 and h2c, header timeout), draining on stop like the others.
fn serve_gate(
    set: &mut JoinSet<std::io::Result<()>>,
    l: TcpListener,
    router: axum::Router,
    config: &argus_gate::GateConfig,
    mut stop: watch::Receiver<bool>,
) {
    let header_timeout = Duration::from_secs(config.header_timeout_secs);
    set.spawn(async move {
        argus_gate::serve(l, router, header_timeout, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
}

/// How often expired codes, sessions, refresh tokens and revocations are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Delete what has expired, now and every [`PURGE_EVERY`], so the database does not grow with dead secrets.
fn spawn_housekeeping(
    set: &mut JoinSet<std::io::Result<()>>,
    store: Store,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    use argus_oauth::IssuerStore;
    use argus_oauth::admin::AdminStore;
    set.spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match store.purge_expired(clock.now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(rows = n, "purged expired issuer records"),
                        Err(error) => tracing::warn!(%error, "purging expired issuer records failed"),
                    }
                    if let Err(error) = store.purge_expired_devices(clock.now()).await {
                        tracing::warn!(%error, "purging expired devices failed");
                    }
                },
                _ = stop.changed() => return Ok(()),
            }
        }
    });
}

fn serve(
    set: &mut JoinSet<std::io::Result<()>>,
    l: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    set.spawn(async move {
        axum::serve(l, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
}
