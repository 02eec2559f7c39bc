//! Watch, the out-of-band observer: consumes every event from the bus, keeps them in a hash-chained audit log,
//! runs the detectors of `argus-detect` over them, serves the alerts they raise and responds to them as the
//! `[[watch.responses]]` rules say (block at the gates, revoke, step-up, notify, record).
//!
//! The pipeline has the shape of a Vector topology, one small piece each:
//!
//! ```text
//! source (bus) ──> audit sink (store) ──> detectors (argus-detect) ──> alert sink (store, then bus)
//!                                                                  ──> responder (rules; control channel, issuer)
//! ```
//!
//! It moves batches: whatever the bus has queued, up to `watch.max_batch`, is audited in one transaction, so the
//! audit log keeps up with the issuer's peak; while events keep coming a batch starts at most every 5 ms, so a
//! batch holds tens of events rather than a few (a lone event is written at once). Events the bus drops anyway (watch fell behind) are counted
//! (`events_lost` on `/healthz`) and raise an `audit_gap` alert: never lost silently.
//!
//! HTTP (every `/api/...` call with an admin token of the issuer, scope `argus:admin`): `GET /api/alerts` (newest
//! first; `?attack=&key_type=&key=&status=&limit=&before=`, a full page names the next in `Link: rel="next"`),
//! `GET /api/alerts/{id}` (with its evidence events and
//! actions), `GET /api/keys/{type}/{value}/timeline` (`?before=&limit=`), `GET /api/actions` (`?alert=&before=
//! &limit=`), `GET /api/actions/{id}`, `POST /api/actions/{id}/undo`, `GET /api/notifications` (`?user=&limit=`);
//! `GET /healthz`, open. Errors are RFC 9457 `application/problem+json`.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod config;
mod issuer;
mod pipeline;
mod problem;
mod respond;
mod sink;
mod source;
mod stats;

use std::sync::Arc;

use argus_bus::{ControlChannel, EventBus};
use argus_detect::{ActionStore, ConfigError, Detectors, WatchStore};
use argus_model::Clock;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use argus_detect::DetectorsConfig;
pub use config::{DEFAULT_LISTEN, DEFAULT_MAX_BATCH, MAX_BATCH_LIMIT, WatchConfig};
pub use issuer::{IssuerAccess, IssuerLink};
pub use problem::{PROBLEM_TYPE_PREFIX, Problem};
pub use sink::NODE;
pub use stats::WatchStats;

use crate::api::ApiState;
use crate::auth::ApiAuth;
use crate::pipeline::{Pipeline, Running};
use crate::respond::Responder;
use crate::sink::{AlertSink, AuditSink};
use crate::source::BusSource;
use crate::stats::Stats;

/// Why watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The `[watch]` configuration cannot be used.
    #[error("invalid watch configuration: {0}")]
    Config(#[from] ConfigError),
    /// The issuer's URL is not an absolute `http` URL (its keys are fetched from it).
    #[error("the issuer URL {0:?} is not an absolute http URL")]
    Issuer(String),
}

/// What watch needs from the process that runs it.
pub struct WatchDeps {
    /// Where the audit log and alerts live.
    pub store: Arc<dyn WatchStore>,
    /// Where actions and notifications live, and the API's reads of the audit log.
    pub actions: Arc<dyn ActionStore>,
    /// The issuer: revocations, and the admin tokens the API is called with.
    pub issuer: IssuerLink,
    /// The control channel blocks and revocations go to every gate on.
    pub control: ControlChannel,
    /// The bus to consume every event from, and to publish `Alert` events on.
    pub events: EventBus,
    /// Stamps the `Alert` events watch emits. Detection itself takes time from the observed events.
    pub clock: Arc<dyn Clock>,
}

/// A running watch: the consumer task and the state its API serves.
///
/// Dropping it leaves the consumer running (the task is detached; it ends with the runtime); call
/// [`Watch::stop`] to end it explicitly.
pub struct Watch {
    api: ApiState,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Watch {
    /// Subscribes to the bus before returning (no event published after this call is missed) and spawns the
    /// consumer task.
    pub async fn start(config: &WatchConfig, deps: WatchDeps) -> Result<Watch, WatchError> {
        config.validate()?;
        let detectors = Detectors::from_config(&config.detectors)?;
        let responses = config.compile_responses()?;
        let detector_names = detectors.names();
        let rules = config.responses.len();
        let stats = Arc::new(Stats::default());
        let auth = Arc::new(ApiAuth::new(deps.issuer.clone(), deps.clock.clone())?);
        let responder = Responder::new(
            responses,
            deps.actions.clone(),
            deps.issuer,
            deps.control.clone(),
            deps.events.clone(),
            deps.clock.clone(),
            stats.clone(),
        );
        let api = ApiState {
            store: deps.store.clone(),
            actions: deps.actions,
            stats: stats.clone(),
            auth,
            control: deps.control,
            bus: deps.events.clone(),
            clock: deps.clock.clone(),
        };
        let pipeline = Pipeline {
            source: BusSource::new(deps.events.subscribe(), stats.clone(), config.max_batch.get()),
            audit: AuditSink::new(deps.store.clone(), stats.clone()),
            detectors,
            alerts: AlertSink::new(deps.store, deps.events, deps.clock, stats.clone()),
            responder,
            stats: stats.clone(),
            last_event: None,
        };
        let stop = Arc::new(Notify::new());
        let running = Running::mark(stats);
        let task = tokio::spawn(pipeline.run(stop.clone(), running));
        tracing::info!(detectors = ?detector_names, response_rules = rules, "watch started");
        Ok(Watch { api, stop, task })
    }

    /// The watch API. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`, like every Argus router.
    pub fn router(&self) -> axum::Router {
        api::router(self.api.clone())
    }

    /// The consumer's counters.
    pub fn stats(&self) -> WatchStats {
        self.api.stats.snapshot()
    }

    /// Stops the consumer and waits for it: the batch in hand and the events the bus had queued for watch are
    /// audited and run through the detectors first (at most the bus's capacity of them), so a clean shutdown loses
    /// none.
    pub async fn stop(self) {
        self.stop.notify_one();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "watch consumer ended abnormally");
        }
    }
}
