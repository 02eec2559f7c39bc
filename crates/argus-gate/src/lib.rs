//! The gate: Argus's enforcement point, a reverse proxy in front of an API.
//!
//! Each call goes through named phases, each a small function in its module (after Pingora's request phases):
//!
//! 1. **route** (`phases`): the request's host picks the routes naming it (exact, else the longest wildcard, else
//!    those without a host), then the longest configured prefix, on whole segments, of a canonical path;
//! 2. **token** (`phases`, `jwks`): an RFC 6750 bearer token, verified as an RFC 9068 access token against the
//!    issuer's JWKS (discovered, cached, refetched for an unknown `kid`, coalesced and spaced);
//! 3. **revocation** (`revocation`): the set fed by the control channel (and loaded at start), indexed by jti,
//!    sid, sub, client_id, refresh family and device;
//! 4. **DPoP** (`dpop`): a token bound to a key (`cnf.jkt`) needs the `DPoP` scheme and a fresh, single-use proof
//!    of that key for this request (RFC 9449), with server nonces when configured; other tokens need `Bearer`;
//!    then a session a configured trigger asked to sign in again (`revocation`, `ControlMessage::StepUp`) gets
//!    the RFC 9470 challenge for a token from an earlier sign-in;
//! 5. **scopes** (`phases`): the route's first matching rule;
//! 6. **block list, rate limit** (`operation_phases`): blocks from the control channel; GCRA limits per token,
//!    user, client and address, with `RateLimit` / `RateLimit-Policy` headers and 429 + `Retry-After`;
//! 7. **proxy** (`proxy`): a keep-alive pool to the upstream (round-robin over several, one whose connection
//!    failed skipped for a while), hop-by-hop headers stripped, forwarding headers set, bodies streamed and the
//!    request body limited;
//! 8. **emit** (`emit`): one `ApiCall` event per call, allowed or refused, after the response body is sent.
//!
//! A route with an `openapi` spec (`api`, `operation_phases`) runs the API's own description: after the route,
//! the **operation** is matched (404 / 405 with `Allow`; a decoy answers 404 and is flagged in the event); the
//! scopes come from the operation's `security`, then its `x-argus-rule` (CEL) and `x-argus-step-up` (RFC 9470)
//! apply; after block list and rate limit, the whole request is **validated** before the (buffered) body is
//! proxied.
//!
//! Every refusal is one [`Refusal`], which alone decides status, RFC 9457 problem `type`, `WWW-Authenticate` and
//! the event's `reason`. Challenges answer in the scheme the token came with (`Bearer` or `DPoP`).
//!
//! Operations: [`serve`] runs the listener (HTTP/1.1 and h2c on one port, header and first-request timeouts,
//! graceful drain); [`GateHandle::reload`] swaps routes, specs and limits in without dropping a connection;
//! [`metrics`] names what the gate counts; the client address comes from `X-Forwarded-For` / `Forwarded` only
//! through `[gate] trusted_proxies` (`forwarded`); verified tokens are cached until they expire (`token_cache`).
#![forbid(unsafe_code)]

mod api;
mod config;
mod dpop;
mod emit;
mod gate;
mod housekeeping;
mod jwks;
pub mod metrics;
mod operation_phases;
mod phases;
mod proxy;
mod refusal;
mod response_phase;
mod revocation;
mod server;
mod token_cache;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use api::ApiError;
pub use argus_cache::{MemoryReplayCache, ReplayCache};
pub use argus_policy::ratelimit::RateLimitConfig;
pub use argus_policy::{AuthMode, PolicyError, ResponseMode, RuleConfig};
pub use config::{DEFAULT_LISTEN, GateConfig, RouteConfig};
pub use refusal::{PROBLEM_TYPE_PREFIX, Refusal, TokenScheme};
pub use revocation::RevocationSet;
pub use server::serve;

use arc_swap::ArcSwap;
use argus_jose::{NonceIssuer, normalize_htu};
use argus_policy::RouteTable;
use argus_policy::ratelimit::RateLimiter;

use crate::api::Apis;
use crate::dpop::DpopGuard;
use crate::gate::{CurrentGate, Gate};
use crate::jwks::{JwksCache, http_uri};
use crate::proxy::{Upstream, parse_upstream_url, upstream_client};
use crate::revocation::Revocations;
use crate::token_cache::VerifiedTokens;
use argus_policy::forwarded::TrustedProxies;

/// What the gate shares with the rest of Argus.
pub struct GateDeps {
    /// Where the gate publishes one `ApiCall` event per call.
    pub events: argus_bus::EventBus,
    /// Where revocations arrive.
    pub control: argus_bus::ControlChannel,
    /// The source of "now" for token expiry, JWKS refetch spacing, revocation pruning and event times.
    pub clock: Arc<dyn argus_model::Clock>,
    /// The revocations in force when the gate starts (from the store), applied before the first call: a gate
    /// that starts late still refuses what was revoked before.
    pub initial_revocations: Vec<argus_model::Revocation>,
    /// The blocks in force when the gate starts (watch's standing blocks, from the store), for the same reason.
    pub initial_blocks: Vec<argus_model::Block>,
    /// The step-up demands in force when the gate starts (from the store), for the same reason.
    pub initial_step_ups: Vec<argus_model::StepUpDemand>,
    /// The key of the DPoP server nonces (at least 16 bytes when `dpop_nonce` is on). Gates that share it accept
    /// each other's nonces.
    pub dpop_nonce_secret: Vec<u8>,
    /// Where DPoP proof `jti`s are remembered against replay; shared by gates that must refuse each other's
    /// replays.
    pub replay: Arc<dyn ReplayCache>,
}

/// Shortest DPoP nonce secret accepted: nonces must not be guessable ahead of time.
const MIN_NONCE_SECRET_BYTES: usize = 16;

/// A gate configuration that cannot run. The message names the offending key and value.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("gate routes: {0}")]
    Routes(#[from] PolicyError),
    #[error(transparent)]
    Api(#[from] Box<ApiError>),
    #[error("gate route {route:?}: upstream {url:?} {reason}")]
    Upstream { route: String, url: String, reason: &'static str },
    #[error("gate issuer {0:?} must be an absolute http:// URL (https comes with TLS support)")]
    Issuer(String),
    #[error("gate audience must not be empty")]
    EmptyAudience,
    #[error("gate {0} must be greater than zero")]
    Zero(&'static str),
    #[error("gate public_url {0:?} must be an absolute http:// or https:// URL")]
    PublicUrl(String),
    #[error("the gate's DPoP nonce secret must be at least {MIN_NONCE_SECRET_BYTES} bytes")]
    NonceSecret,
    #[error("gate trusted_proxies entry {0:?} is neither a CIDR (10.0.0.0/8) nor an IP address")]
    TrustedProxy(String),
}

/// What a configuration compiles to: everything a reload replaces.
struct Compiled {
    table: RouteTable,
    upstreams: Vec<Upstream>,
    apis: Apis,
    trusted_proxies: TrustedProxies,
}

impl GateConfig {
    /// Validate the routes and limits without starting anything (for `argus config check`).
    pub fn check(&self) -> Result<(), GateError> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled, GateError> {
        for (key, value) in [
            ("upstream_timeout_secs", self.upstream_timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("dpop_nonce_window_secs", self.dpop_nonce_window_secs),
            ("dpop_proof_max_age_secs", self.dpop_proof_max_age_secs),
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
        ] {
            if value == 0 {
                return Err(GateError::Zero(key));
            }
        }
        if let Some(url) = &self.public_url
            && normalize_htu(url).is_none()
        {
            return Err(GateError::PublicUrl(url.clone()));
        }
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies).map_err(GateError::TrustedProxy)?;
        let table = RouteTable::new(&self.routes)?;
        let upstreams = table.routes().iter().map(upstream_of).collect::<Result<Vec<_>, _>>()?;
        let apis = Apis::load(&self.routes, &table, &self.rate_limits, self.max_body_bytes).map_err(Box::new)?;
        Ok(Compiled { table, upstreams, apis, trusted_proxies })
    }
}

/// The upstream servers of `route`, their URLs checked; the error names the route and the URL.
fn upstream_of(route: &argus_policy::Route) -> Result<Upstream, GateError> {
    let authorities = route
        .upstreams()
        .iter()
        .map(|url| {
            parse_upstream_url(url).map_err(|reason| GateError::Upstream {
                route: route.name().to_owned(),
                url: url.clone(),
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Upstream::new(route.name(), authorities))
}

/// A started gate: its router, and the handle that puts a new configuration in force.
#[derive(Clone)]
pub struct GateHandle {
    current: Arc<CurrentGate>,
    /// The configuration in force, restart-only settings as the gate started with them.
    config: Arc<Mutex<GateConfig>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// Changed settings that only a restart applies (their running values were kept), e.g. `gate.listen`.
    pub restart_needed: Vec<&'static str>,
}

impl GateHandle {
    /// The gate's router: every method and path goes through the phases. Serve it with [`serve`] (or with
    /// `into_make_service_with_connect_info::<SocketAddr>()`) so events and `X-Forwarded-For` carry the peer.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().fallback(gate::handle).with_state(self.current.clone())
    }

    /// Put `config` in force: routes, OpenAPI specs (read again from their files), rate limits, upstreams, body
    /// limits and timeouts, trusted proxies. All or nothing: a configuration that does not compile changes
    /// nothing, and the error names what is wrong. Calls in flight finish under the configuration they started
    /// with; connections stay open; keys, cached tokens, revocations, rate-limit state, the DPoP replay cache and
    /// the upstream connection pool carry over.
    pub fn reload(&self, config: &GateConfig) -> Result<Reloaded, GateError> {
        let mut running = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        let restart_needed = running.restart_only_changes(config);
        let applied = config.clone().with_restart_only_of(&running);
        let compiled = applied.compile().inspect_err(|_| metrics::reloaded(false))?;
        let next = self.current.load().reconfigured(compiled, &applied);
        self.current.store(Arc::new(next));
        *running = applied;
        metrics::reloaded(true);
        Ok(Reloaded { restart_needed })
    }
}

impl Gate {
    /// This gate under another configuration, sharing all its state.
    fn reconfigured(&self, compiled: Compiled, config: &GateConfig) -> Self {
        Self {
            table: compiled.table,
            apis: compiled.apis,
            upstreams: compiled.upstreams,
            trusted_proxies: compiled.trusted_proxies,
            upstream_timeout: Duration::from_secs(config.upstream_timeout_secs),
            max_body_bytes: config.max_body_bytes,
            body_timeout: Duration::from_secs(config.body_timeout_secs),
            limiter: self.limiter.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            jwks: self.jwks.clone(),
            verified: self.verified.clone(),
            revocations: self.revocations.clone(),
            dpop: self.dpop.clone(),
            client: self.client.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// Start a gate: compile `config`, subscribe to the control channel (no revocation published after this call is
/// missed) and return its handle. The issuer's keys are fetched on the first call that needs them, so the issuer
/// may start after the gate.
pub async fn start(
    config: &GateConfig,
    issuer_url: &str,
    audience: &str,
    deps: GateDeps,
) -> Result<GateHandle, GateError> {
    let compiled = config.compile()?;
    if audience.is_empty() {
        return Err(GateError::EmptyAudience);
    }
    let discovery = format!("{}/.well-known/openid-configuration", issuer_url.trim_end_matches('/'));
    let discovery = http_uri(&discovery).ok_or_else(|| GateError::Issuer(issuer_url.to_owned()))?;
    let upstream_timeout = Duration::from_secs(config.upstream_timeout_secs);
    let gate = Gate {
        table: compiled.table,
        apis: compiled.apis,
        limiter: rate_limiter(config, deps.clock.clone()),
        upstreams: compiled.upstreams,
        issuer: issuer_url.to_owned(),
        audience: audience.to_owned(),
        jwks: Arc::new(JwksCache::new(
            issuer_url,
            discovery,
            deps.clock.clone(),
            Duration::from_secs(config.jwks_min_refresh_secs),
        )),
        verified: Arc::new(VerifiedTokens::new(config.token_cache_entries)),
        revocations: Revocations::start(
            deps.control,
            deps.clock.clone(),
            deps.initial_revocations,
            deps.initial_blocks,
            deps.initial_step_ups,
        ),
        dpop: Arc::new(dpop_guard(config, audience, &deps.dpop_nonce_secret, deps.replay)?),
        client: upstream_client(Duration::from_secs(config.connect_timeout_secs)),
        upstream_timeout,
        max_body_bytes: config.max_body_bytes,
        body_timeout: Duration::from_secs(config.body_timeout_secs),
        trusted_proxies: compiled.trusted_proxies,
        events: deps.events,
        clock: deps.clock,
    };
    Ok(GateHandle { current: Arc::new(ArcSwap::from_pointee(gate)), config: Arc::new(Mutex::new(config.clone())) })
}

/// The in-memory rate limiter, pruned in the background.
fn rate_limiter(config: &GateConfig, clock: Arc<dyn argus_model::Clock>) -> Arc<RateLimiter> {
    let limiter = Arc::new(RateLimiter::in_memory(config.rate_limits.max_keys));
    housekeeping::prune_rate_limits(&limiter, clock);
    limiter
}

/// The gate's router, for a gate that is never reloaded: [`start`], then [`GateHandle::router`].
pub async fn router(
    config: &GateConfig,
    issuer_url: &str,
    audience: &str,
    deps: GateDeps,
) -> Result<axum::Router, GateError> {
    Ok(start(config, issuer_url, audience, deps).await?.router())
}

/// The DPoP phase's settings. Proofs name the URL the caller used: the configured public URL, else the audience
/// (which `argus up` sets to the gate's URL when none is configured).
fn dpop_guard(
    config: &GateConfig,
    audience: &str,
    nonce_secret: &[u8],
    replay: Arc<dyn ReplayCache>,
) -> Result<DpopGuard, GateError> {
    let nonces = if config.dpop_nonce {
        if nonce_secret.len() < MIN_NONCE_SECRET_BYTES {
            return Err(GateError::NonceSecret);
        }
        Some(NonceIssuer::new(nonce_secret, config.dpop_nonce_window_secs))
    } else {
        None
    };
    let htu_base = config.public_url.as_deref().unwrap_or(audience);
    Ok(DpopGuard::new(htu_base, config.dpop_proof_max_age_secs, nonces, replay))
}
