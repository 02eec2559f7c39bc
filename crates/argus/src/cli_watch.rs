//! `argus alerts ...` and `argus actions ...`: the watch API from the command line, with the admin token the admin
//! CLI uses; and `argus replay FILE.jsonl`: recorded events through the detectors, offline, with a report.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use argus_detect::{Detectors, DetectorsConfig, Replay, parse_line};
use bytes::Bytes;
use http::{Method, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::cli_admin::{BOOTSTRAP_CLIENT_ID, admin_token, send};
use crate::config::Config;

/// Where the watch API is and how to get an admin token for it.
#[derive(Debug, clap::Args)]
pub struct WatchApiArgs {
    /// The watch API's URL.
    #[arg(long, env = "ARGUS_WATCH", default_value = "http://127.0.0.1:7490", global = true)]
    pub watch: String,
    /// The issuer's URL (the admin token comes from there).
    #[arg(long, env = "ARGUS_ISSUER", default_value = "http://127.0.0.1:7400", global = true)]
    pub issuer: String,
    /// The admin client's id.
    #[arg(long, env = "ARGUS_ADMIN_CLIENT_ID", default_value = BOOTSTRAP_CLIENT_ID, global = true)]
    pub client_id: String,
    /// The admin client's secret. Prefer the environment variable: command lines are visible to other users.
    #[arg(long, env = "ARGUS_ADMIN_CLIENT_SECRET", hide_env_values = true, global = true)]
    pub client_secret: Option<String>,
}

/// `argus alerts`.
#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub api: WatchApiArgs,
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Alerts, most recently seen first.
    List {
        /// Only this attack (brute_force, credential_stuffing, stolen_token, decoy_hit, ...).
        #[arg(long)]
        attack: Option<String>,
        /// Only keys of this type (ip, account, user, client, session, token, family, node).
        #[arg(long)]
        key_type: Option<String>,
        /// Only this key.
        #[arg(long)]
        key: Option<String>,
        /// open or resolved.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One alert, with its evidence events and the actions taken on it.
    Show { id: String },
    /// The events of one key (e.g. `ip 203.0.113.7`), newest first, from the audit log.
    Timeline {
        /// ip, account, user, client, session, token, family or node.
        key_type: String,
        key: String,
        /// At most this many events (1 to 1000; default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Events before this record number (the `next` of the previous page).
        #[arg(long)]
        before: Option<u64>,
    },
}

/// `argus actions`.
#[derive(Debug, clap::Args)]
pub struct ActionsArgs {
    #[command(flatten)]
    pub api: WatchApiArgs,
    #[command(subcommand)]
    pub command: ActionsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ActionsCommand {
    /// Actions watch took (or, observe-only, would have), newest first.
    List {
        /// Only those on this alert.
        #[arg(long)]
        alert: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Those before this action id (the `next` of the previous page).
        #[arg(long)]
        before: Option<String>,
    },
    /// One action.
    Show { id: String },
    /// Undo an action: lifts a block at every gate. A revocation cannot be undone.
    Undo { id: String },
}

/// `argus replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Recorded events, one JSON event per line, each optionally with a top-level `"label"`: `"benign"` or the
    /// attack it is part of (`"brute_force"`, `"decoy_hit"`, ...).
    pub file: PathBuf,
    /// The configuration whose `[watch.detectors]` to replay with; without it, the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run an `alerts` command.
pub fn run_alerts(args: AlertsArgs) -> anyhow::Result<()> {
    with_api(&args.api, |api| async move {
        match args.command {
            AlertsCommand::List { attack, key_type, key, status, limit } => {
                let limit = limit.map(|l| l.to_string());
                let query =
                    [("attack", attack), ("key_type", key_type), ("key", key), ("status", status), ("limit", limit)];
                api.get(&["api", "alerts"], &query).await
            }
            AlertsCommand::Show { id } => api.get(&["api", "alerts", &id], &[]).await,
            AlertsCommand::Timeline { key_type, key, limit, before } => {
                let query = [("limit", limit.map(|l| l.to_string())), ("before", before.map(|b| b.to_string()))];
                api.get(&["api", "keys", &key_type, &key, "timeline"], &query).await
            }
        }
    })
}

/// Run an `actions` command.
pub fn run_actions(args: ActionsArgs) -> anyhow::Result<()> {
    with_api(&args.api, |api| async move {
        match args.command {
            ActionsCommand::List { alert, limit, before } => {
                let query = [("alert", alert), ("limit", limit.map(|l| l.to_string())), ("before", before)];
                api.get(&["api", "actions"], &query).await
            }
            ActionsCommand::Show { id } => api.get(&["api", "actions", &id], &[]).await,
            ActionsCommand::Undo { id } => api.call(Method::POST, &["api", "actions", &id, "undo"], &[]).await,
        }
    })
}

/// Connects (an admin token), runs `command` and prints its answer as JSON.
fn with_api<F, Fut>(args: &WatchApiArgs, command: F) -> anyhow::Result<()>
where
    F: FnOnce(WatchApi) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(async {
        let secret = args
            .client_secret
            .as_deref()
            .ok_or_else(|| anyhow!("the admin client's secret is needed: set ARGUS_ADMIN_CLIENT_SECRET"))?;
        let api = WatchApi::connect(&args.watch, &args.issuer, &args.client_id, secret).await?;
        let answer = command(api).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        Ok(())
    })
}

/// The watch API, with an admin token.
pub struct WatchApi {
    http: Client<HttpConnector, Full<Bytes>>,
    base: url::Url,
    token: String,
}

impl WatchApi {
    async fn connect(watch: &str, issuer: &str, client_id: &str, secret: &str) -> anyhow::Result<Self> {
        let http = Client::builder(TokioExecutor::new()).build_http();
        let base = url::Url::parse(watch.trim_end_matches('/')).with_context(|| format!("watch URL {watch:?}"))?;
        let token = admin_token(&http, issuer, client_id, secret).await?;
        Ok(Self { http, base, token })
    }

    async fn get(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> anyhow::Result<Value> {
        self.call(Method::GET, segments, query).await
    }

    /// Calls `<watch>/<segments>?<query>` (absent values left out); a problem answer becomes an error with its
    /// title and detail.
    async fn call(&self, method: Method, segments: &[&str], query: &[(&str, Option<String>)]) -> anyhow::Result<Value> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("the watch URL cannot have a path"))?
            .pop_if_empty()
            .extend(segments);
        let present: Vec<(&str, &str)> = query.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))).collect();
        if !present.is_empty() {
            url.query_pairs_mut().extend_pairs(present);
        }
        let bearer = format!("Bearer {}", self.token);
        let (status, answer) =
            send(&self.http, method, url.as_str(), &[(header::AUTHORIZATION, bearer.as_str())], None).await?;
        if !status.is_success() {
            bail!(
                "{status}: {} {}",
                answer["title"].as_str().unwrap_or("error"),
                answer["detail"].as_str().map(|d| format!("({d})")).unwrap_or_default()
            );
        }
        Ok(answer)
    }
}

/// Run `argus replay`: stream the file through the detectors of the configuration and print the report.
pub fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    let detectors = match &args.config {
        Some(path) => Config::load(path)?.watch.detectors,
        None => DetectorsConfig::default(),
    };
    let detectors = Detectors::from_config(&detectors).context("[watch.detectors]")?;
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut replay = Replay::new(detectors);
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", args.file.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let (event, label) = parse_line(&line).with_context(|| format!("{}: line {}", args.file.display(), i + 1))?;
        replay.observe(&event, label);
    }
    let report = replay.report();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
