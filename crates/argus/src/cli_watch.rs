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
    /// Alerts, most recently seen first: every page, or with `--limit` one page (the cursor of the next printed to
    /// stderr, for `--before`).
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
        /// One page of at most this many (1 to 1000); without it, every alert.
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this cursor: the next-page cursor an earlier `--limit` listing printed.
        #[arg(long)]
        before: Option<String>,
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
            AlertsCommand::List { attack, key_type, key, status, limit, before } => {
                let filters = [("attack", attack), ("key_type", key_type), ("key", key), ("status", status)];
                list_alerts(&api, &filters, limit, before).await
            }
            AlertsCommand::Show { id } => api.get(&["api", "alerts", &id], &[]).await,
            AlertsCommand::Timeline { key_type, key, limit, before } => {
                let query = [("limit", limit.map(|l| l.to_string())), ("before", before.map(|b| b.to_string()))];
                api.get(&["api", "keys", &key_type, &key, "timeline"], &query).await
            }
        }
    })
}

/// Alerts a page at a time, following each page's `Link: <...>; rel="next"`: with `limit`, that one page (its
/// next cursor to stderr); without, every page of 1,000 as one list.
async fn list_alerts(
    api: &WatchApi,
    filters: &[(&str, Option<String>)],
    limit: Option<u32>,
    mut before: Option<String>,
) -> anyhow::Result<Value> {
    let page_size = limit.unwrap_or(1000).to_string();
    let mut all = Vec::new();
    loop {
        let mut query = filters.to_vec();
        query.push(("limit", Some(page_size.clone())));
        query.push(("before", before.clone()));
        let (page, next) = api.get_page(&["api", "alerts"], &query).await?;
        let Value::Array(items) = page else { bail!("the alert list is not an array") };
        all.extend(items);
        match next {
            Some(cursor) if limit.is_some() => {
                eprintln!("more alerts follow: --before {cursor}");
                break;
            }
            Some(cursor) if before.as_deref() == Some(cursor.as_str()) => bail!("the alert list repeats its cursor"),
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    Ok(Value::Array(all))
}

/// The `before` cursor of an RFC 8288 `Link` header's `rel="next"` target.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find(|l| l.contains("rel=\"next\"")).and_then(|l| {
        let target = l.split_once('<')?.1.split_once('>')?.0;
        let query = target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "before").map(|(_, v)| v.into_owned())
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

    /// A GET of a paged list: its answer and the cursor its `Link` names for the next page.
    async fn get_page(
        &self,
        segments: &[&str],
        query: &[(&str, Option<String>)],
    ) -> anyhow::Result<(Value, Option<String>)> {
        let url = self.url(segments, query)?;
        let request = http::Request::get(url.as_str())
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Full::new(Bytes::new()))?;
        let response = self.http.request(request).await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let next = response.headers().get(header::LINK).and_then(|v| v.to_str().ok()).and_then(next_cursor);
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.context("body")?.to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{status}: {} {}",
                answer["title"].as_str().unwrap_or("error"),
                answer["detail"].as_str().map(|d| format!("({d})")).unwrap_or_default()
            );
        }
        Ok((answer, next))
    }

    /// `<watch>/<segments>?<query>`, absent values left out.
    fn url(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> anyhow::Result<url::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("the watch URL cannot have a path"))?
            .pop_if_empty()
            .extend(segments);
        let present: Vec<(&str, &str)> = query.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))).collect();
        if !present.is_empty() {
            url.query_pairs_mut().extend_pairs(present);
        }
        Ok(url)
    }

    /// Calls `<watch>/<segments>?<query>` (absent values left out); a problem answer becomes an error with its
    /// title and detail.
    async fn call(&self, method: Method, segments: &[&str], query: &[(&str, Option<String>)]) -> anyhow::Result<Value> {
        let url = self.url(segments, query)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_comes_from_the_rel_next_link() {
        let link = "</api/alerts?attack=probing&limit=2&before=1764000000123.019a-7f>; rel=\"next\"";
        assert_eq!(next_cursor(link).as_deref(), Some("1764000000123.019a-7f"));
        let two = "</api/alerts?before=1.a>; rel=\"prev\", </api/alerts?limit=1&before=2.b>; rel=\"next\"";
        assert_eq!(next_cursor(two).as_deref(), Some("2.b"));
        for none in ["", "</api/alerts?before=1.a>; rel=\"prev\"", "</api/alerts?limit=1>; rel=\"next\"", "junk"] {
            assert_eq!(next_cursor(none), None, "{none}");
        }
    }
}
