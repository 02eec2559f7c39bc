#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use argus::{Config, UpOptions};

/// mimalloc instead of glibc's malloc: per-thread free lists without the arena locking and consolidation glibc
/// does. Measured with bench/cpu/run.sh (see bench/README.md, "CPU per request").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Argus: protect an HTTP API against data breaches — token server, enforcement gate and observer in one binary.
#[derive(Parser)]
#[command(name = "argus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run issuer, gate and watch in one process.
    Up {
        /// Also run a sample API with users alice and bob and the public app `demo-app`.
        #[arg(long)]
        demo: bool,
        /// Configuration file (TOML). Without it every default applies.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Data directory (SQLite database, signing keys). Default: `data_dir` from the config, else ./argus-data.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Password of the demo users; random (and printed) when not given.
        #[arg(long, value_name = "PASSWORD", requires = "demo", env = "ARGUS_DEMO_PASSWORD")]
        demo_password: Option<String>,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Helpers for trying the demo.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Administer a running issuer through its admin API (clients, users, revocations), or bootstrap the first
    /// admin client.
    Admin(argus::cli_admin::AdminArgs),
    /// The issuer's signing keys, in the store: rotate, list.
    Keys {
        #[command(subcommand)]
        command: argus::keys::KeysCommand,
    },
    /// Watch's alerts through its API: list, show (with evidence and actions), a key's timeline.
    Alerts(argus::cli_watch::AlertsArgs),
    /// Watch's responses through its API: list, show, undo (lifts a block).
    Actions(argus::cli_watch::ActionsArgs),
    /// Feed recorded events (JSON lines, optionally labelled) through the detectors and print a detection report.
    Replay(argus::cli_watch::ReplayArgs),
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Sign in through the login and consent forms (code + PKCE, as the demo app) and print an access token.
    Token {
        /// The issuer's URL.
        #[arg(long, default_value = "http://127.0.0.1:7400")]
        issuer: String,
        #[arg(long, default_value = "alice")]
        user: String,
        /// The demo password printed by `argus up --demo`.
        #[arg(long, env = "ARGUS_DEMO_PASSWORD")]
        password: String,
        #[arg(long, default_value = argus::demo::DEMO_SCOPES)]
        scope: String,
        /// Print the whole token response as JSON instead of the access token alone.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: unknown keys, types, URLs. Exits non-zero on any error.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config { command: ConfigCommand::Check { file } } => {
            Config::load(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::Demo { command: DemoCommand::Token { issuer, user, password, scope, json } } => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
            let tokens = rt.block_on(argus::demo_client::token(&issuer, &user, &password, &scope))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let at = tokens.get("access_token").and_then(|v| v.as_str()).context("no access_token")?;
                println!("{at}");
            }
            Ok(())
        }
        Command::Admin(args) => argus::cli_admin::run(args),
        Command::Keys { command } => argus::keys::run(command),
        Command::Alerts(args) => argus::cli_watch::run_alerts(args),
        Command::Actions(args) => argus::cli_watch::run_actions(args),
        Command::Replay(args) => argus::cli_watch::run_replay(args),
        Command::Up { demo, config: config_path, data_dir, demo_password } => {
            let config = match &config_path {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            let metrics = Some(install_metrics()?);
            let opts = UpOptions { data_dir: config.data_dir(data_dir.as_deref()), demo, demo_password, metrics };
            init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
            rt.block_on(up(config, opts, config_path))
        }
    }
}

/// The process-wide Prometheus recorder: every part records into it, `[metrics] listen` serves it. Durations are
/// real histograms (with buckets from sub-millisecond to seconds), not summaries, so they aggregate across gates.
fn install_metrics() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), argus_gate::metrics::DURATION_BUCKETS)
        .context("metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    argus_gate::metrics::describe();
    Ok(handle)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn up(config: Config, opts: UpOptions, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    // Before anything is up: a SIGHUP sent as soon as the banner shows must reload, not kill (its default).
    let mut hangups = hangups()?;
    let mut running = argus::start(config, opts).await?;
    print!("{}", argus::banner(&running));
    use std::io::Write;
    std::io::stdout().flush().ok();
    let reloader = running.reloader.clone().with_file(config_path);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = running.wait() => return r,
            () = &mut shutdown => {
                tracing::info!("shutting down");
                running.shutdown().await;
                return Ok(());
            }
            Some(()) = hangups.recv() => reload(reloader.clone()).await,
        }
    }
}

/// One `SIGHUP`: read the configuration again and apply it, logging what happened. A configuration that does not
/// load or compile changes nothing.
async fn reload(reloader: argus::app::Reloader) {
    // Reading and compiling OpenAPI files blocks: off the async workers.
    match tokio::task::spawn_blocking(move || reloader.reload()).await {
        Ok(Ok(restart_needed)) if restart_needed.is_empty() => tracing::info!("configuration reloaded"),
        Ok(Ok(restart_needed)) => tracing::warn!(
            settings = ?restart_needed,
            "configuration reloaded; the settings named changed, but only a restart applies them (their running \
             values stay)"
        ),
        Ok(Err(error)) => {
            tracing::error!(error = format!("{error:#}"), "configuration reload refused; nothing changed")
        }
        Err(error) => tracing::error!(%error, "configuration reload failed"),
    }
}

/// `SIGHUP`s, one message each (none on platforms without them).
fn hangups() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                // A reload already queued covers this one too.
                let _ = tx.try_send(());
            }
        });
    }
    #[cfg(not(unix))]
    drop(tx);
    Ok(rx)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
