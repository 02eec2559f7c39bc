//! `argus keys rotate|list`: the issuer's signing keys, read and written straight in the store of a data directory
//! (the running issuer picks a new key up within `key_reload_secs`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use argus_detect::AuditLog;
use argus_jose::{SIGNING_ALGORITHMS, SigningKey};
use argus_model::{AdminChange, Clock, Event, EventKind, Principal, SystemClock};
use argus_oauth::admin::{KeyState, key_schedule};
use argus_oauth::{IssuerStore, StoredSigningKey};
use argus_store::{SQLITE_FILE, Store};

use crate::config::Config;

/// `argus keys ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key. The issuer publishes it in its JWKS at once (within `key_reload_secs`), signs with it
    /// after `key_publish_lead_secs`, and keeps the older keys published until the tokens they signed have expired.
    Rotate {
        /// The algorithm of the new key.
        #[arg(long, default_value = "ES256", value_parser = SIGNING_ALGORITHMS)]
        alg: String,
        #[command(flatten)]
        place: DataPlace,
    },
    /// List the signing keys: pending (published, not signing yet), active, retiring (verifying only) or retired.
    List {
        #[command(flatten)]
        place: DataPlace,
    },
}

/// Where the store is: `--data-dir`, else `data_dir` of `--config`, else `./argus-data`.
#[derive(Clone, Debug, clap::Args)]
pub struct DataPlace {
    /// Configuration file: its `data_dir` and `[issuer]` key timing apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory of Argus (holding argus.db).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataPlace {
    /// The configuration and the store. With `must_exist`, a directory without a database is an error rather than
    /// a new empty store.
    pub async fn open(&self, must_exist: bool) -> anyhow::Result<(Config, Store)> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let dir = config.data_dir(self.data_dir.as_deref());
        if must_exist && !dir.join(SQLITE_FILE).exists() {
            bail!("no Argus store in {} (give --data-dir or --config)", dir.display());
        }
        let store =
            Store::open_dir(&dir).await.with_context(|| format!("cannot open the store in {}", dir.display()))?;
        Ok((config, store))
    }
}

/// Record a change made from the command line in the audit log, as the admin API's changes are (through watch).
/// The CLI runs beside the bus, so it appends directly; a failure is reported but does not undo the change.
pub async fn audit_offline(store: &Store, action: &str, target: &str) {
    let principal =
        Principal { user_agent: Some(format!("argus-cli/{}", env!("CARGO_PKG_VERSION"))), ..Principal::default() };
    let change = AdminChange { action: action.to_owned(), target: target.to_owned(), fields: Vec::new() };
    let event = Event::new(SystemClock.now(), "cli", principal, EventKind::AdminChange(change));
    if let Err(e) = store.append(&event).await {
        eprintln!("warning: the change was made but could not be written to the audit log: {e}");
    }
}

/// Run a `keys` command.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(async {
        match command {
            KeysCommand::Rotate { alg, place } => rotate(&alg, &place).await,
            KeysCommand::List { place } => list(&place).await,
        }
    })
}

async fn rotate(alg: &str, place: &DataPlace) -> anyhow::Result<()> {
    let (config, store) = place.open(false).await?;
    let key = SigningKey::generate(alg)?;
    let now = SystemClock.now();
    store
        .add_signing_key(&StoredSigningKey {
            kid: key.kid().to_owned(),
            alg: key.alg_name().to_owned(),
            pkcs8_der: key.pkcs8_der().to_vec(),
            created_at: now,
        })
        .await
        .context("cannot store the new key")?;
    audit_offline(&store, "key.rotate", key.kid()).await;
    let lead = config.issuer.key_publish_lead_secs;
    println!("added {} key {}", key.alg_name(), key.kid());
    println!(
        "published by a running issuer within {} s; it signs from {} (in {lead} s, issuer.key_publish_lead_secs)",
        config.issuer.key_reload_secs,
        now.plus(std::time::Duration::from_secs(lead))
    );
    Ok(())
}

async fn list(place: &DataPlace) -> anyhow::Result<()> {
    let (config, store) = place.open(true).await?;
    let keys = store.signing_keys().await?;
    let timing = argus_issuer::key_timing(&config.issuer, &store.clients().await?);
    println!("{:<44} {:<6} {:<25} STATE", "KID", "ALG", "ADDED");
    for k in key_schedule(&keys, SystemClock.now(), timing) {
        let state = match k.state {
            KeyState::Pending { signs_from } => format!("pending (signs from {signs_from})"),
            KeyState::Active => "active (signing)".to_owned(),
            KeyState::Retiring { until } => format!("retiring (published until {until})"),
            KeyState::Retired => "retired (not published)".to_owned(),
        };
        println!("{:<44} {:<6} {:<25} {state}", k.kid, k.alg, k.created_at.to_string());
    }
    Ok(())
}
