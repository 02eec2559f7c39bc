//! The API each route serves, compiled once at start: its OpenAPI spec, each operation's `x-argus-*` policy and
//! rate limits, and the limits of routes without a spec. The phases read it; nothing here changes per call.

use std::path::Path;

use argus_policy::openapi::{LoadError, LoadOptions, Operation, Spec};
use argus_policy::ratelimit::{LimitSet, RateLimitConfig, UnknownRoute};
use argus_policy::rules::{ExtensionError, OperationPolicy, RuleEngine};
use argus_policy::{AuthMode, ResponseMode, Route, RouteTable};

use crate::config::RouteConfig;

/// A route's OpenAPI description that the gate cannot enforce. The message names the route.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("gate route {route:?}: openapi {file:?}: {error}")]
    Spec { route: String, file: String, error: Box<LoadError> },
    #[error("gate route {route:?}: openapi {file:?}: {error}")]
    Extension { route: String, file: String, error: Box<ExtensionError> },
    #[error(
        "gate route {route:?}: `require` rules and `openapi` exclude each other; the spec's `security` gives the scopes"
    )]
    RulesWithSpec { route: String },
    #[error(
        "gate route {route:?}: auth = \"argus\" but no operation of {file:?} requires a credential (no `security`); \
         declare `security` in the spec, or set auth = \"none\" if the API is public"
    )]
    NoSecurity { route: String, file: String },
    #[error("{0}")]
    RateLimits(#[from] UnknownRoute),
}

/// What one operation asks of each call, besides its validation (which the [`Operation`] does).
#[derive(Debug)]
pub(crate) struct OperationRuntime {
    pub(crate) policy: OperationPolicy,
    pub(crate) limits: LimitSet,
}

/// A route's compiled spec, with one [`OperationRuntime`] per operation, by position in [`Spec::operations`].
#[derive(Debug)]
pub(crate) struct RouteApi {
    pub(crate) spec: Spec,
    runtimes: Vec<OperationRuntime>,
    /// What to do with answers that do not match the spec.
    pub(crate) responses: ResponseMode,
}

impl RouteApi {
    /// The runtime of an operation of this spec.
    pub(crate) fn runtime(&self, operation: &Operation) -> Option<&OperationRuntime> {
        // Operations are few (tens); a pointer comparison per operation beats hashing the id on every call.
        let index = self.spec.operations().iter().position(|op| std::ptr::eq(op, operation))?;
        self.runtimes.get(index)
    }
}

/// The compiled APIs of all routes, by [`Route::index`].
#[derive(Debug)]
pub(crate) struct Apis {
    specs: Vec<Option<RouteApi>>,
    /// The limits of calls to routes without a spec.
    route_limits: Vec<LimitSet>,
}

impl Apis {
    /// Load and compile every route's spec (a bad spec is an error naming the route) and resolve the limits.
    pub(crate) fn load(
        configs: &[RouteConfig],
        table: &RouteTable,
        rate_limits: &RateLimitConfig,
        max_body_bytes: u64,
    ) -> Result<Self, ApiError> {
        rate_limits.check_routes(configs.iter().map(|c| c.name.as_str()))?;
        let engine = RuleEngine::new();
        let mut specs = Vec::with_capacity(configs.len());
        let mut route_limits = Vec::with_capacity(configs.len());
        for (config, route) in configs.iter().zip(table.routes()) {
            route_limits.push(rate_limits.resolve_route(route.name()));
            specs.push(match &config.openapi {
                Some(file) => Some(load_route_api(config, route, file, &engine, rate_limits, max_body_bytes)?),
                None => None,
            });
        }
        Ok(Self { specs, route_limits })
    }

    /// The spec of a route, if it has one.
    pub(crate) fn spec_of(&self, route: &Route) -> Option<&RouteApi> {
        self.specs.get(route.index()).and_then(Option::as_ref)
    }

    /// The limits of a route's calls that have no operation.
    pub(crate) fn route_limits(&self, route: &Route) -> Option<&LimitSet> {
        self.route_limits.get(route.index())
    }
}

fn load_route_api(
    config: &RouteConfig,
    route: &Route,
    file: &Path,
    engine: &RuleEngine,
    rate_limits: &RateLimitConfig,
    max_body_bytes: u64,
) -> Result<RouteApi, ApiError> {
    let route_name = || config.name.clone();
    let file_name = || file.display().to_string();
    if !config.require.is_empty() {
        return Err(ApiError::RulesWithSpec { route: route_name() });
    }
    let options = LoadOptions {
        strictness: config.strictness(),
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
        ..LoadOptions::default()
    };
    let spec = Spec::load(file, &options).map_err(|error| ApiError::Spec {
        route: route_name(),
        file: file_name(),
        error: Box::new(error),
    })?;
    // An `argus` route whose spec declares no security anywhere would quietly become public: refuse it.
    if config.auth == AuthMode::Argus && spec.operations().iter().all(|op| op.security.is_empty()) {
        return Err(ApiError::NoSecurity { route: route_name(), file: file_name() });
    }
    let runtimes = spec
        .operations()
        .iter()
        .map(|op| {
            let extensions = op.extensions.iter().map(|(k, v)| (k.as_str(), v));
            let policy = OperationPolicy::from_extensions(engine, &op.id, extensions).map_err(|error| {
                ApiError::Extension { route: route_name(), file: file_name(), error: Box::new(error) }
            })?;
            let limits = rate_limits.resolve(route.name(), Some(&op.id), &policy.rate_limit);
            Ok(OperationRuntime { policy, limits })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(RouteApi { spec, runtimes, responses: config.responses })
}
