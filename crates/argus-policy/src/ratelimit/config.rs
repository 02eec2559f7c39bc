//! `[gate.rate_limits]`: default limits per key kind, per-route and per-operation overrides.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::quota::{Limit, Quota};
use super::store::KeyKind;

/// Rate limits of the gate.
///
/// ```toml
/// [gate.rate_limits]
/// per_ip = "6000/min"
/// per_user = "2400/min"
/// per_client = "60000/min"
/// per_token = "1200/min"
///
/// [gate.rate_limits.routes.payments]
/// per_user = "300/min burst 30"
///
/// [gate.rate_limits.routes.payments.operations.createTransfer]
/// per_user = "10/min"
/// ```
///
/// Each limit is `"N/unit"` (unit `s`, `min`, `h` or `day`), optionally followed by `burst B` (calls allowed at
/// once after a quiet spell; default N), or `"off"`. A call is checked against every limit that applies to it (its
/// token, user, client and address) and refused with 429 and `Retry-After` as soon as one is exhausted; a refused
/// call uses up none of them.
///
/// The defaults stop floods, scrapers and runaway loops, never a person: an interactive client averages well under
/// one call a second and bursts a few dozen calls when a page loads. The address limit is the widest of the
/// per-principal ones because offices and carrier-grade NAT put many users behind one address; the client limit is
/// the sum of all of an app's users, so it is the widest of all (raise it for apps with many thousands of
/// concurrent users).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Per client address (an IPv6 address counts by its /64). Default `"6000/min"`.
    #[serde(default = "default_per_ip")]
    pub per_ip: Limit,
    /// Per user (`sub`), across tokens and apps. Default `"2400/min"`.
    #[serde(default = "default_per_user")]
    pub per_user: Limit,
    /// Per app (`client_id`), across its users. Default `"60000/min"`.
    #[serde(default = "default_per_client")]
    pub per_client: Limit,
    /// Per access token (`jti`). Default `"1200/min"`.
    #[serde(default = "default_per_token")]
    pub per_token: Limit,
    /// Most buckets kept in memory. Full buckets are forgotten at no cost; beyond this, the bucket closest to full
    /// is dropped. Default 100000 (a few MB).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Overrides per route, by route name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, RouteRateLimits>,
}

/// `[gate.rate_limits.routes.<route>]`: limits replacing the defaults on one route, and per-operation overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRateLimits {
    /// Replaces `per_ip` on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<Limit>,
    /// Replaces `per_user` on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<Limit>,
    /// Replaces `per_client` on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_client: Option<Limit>,
    /// Replaces `per_token` on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_token: Option<Limit>,
    /// Overrides per operation, by `operationId`; they win over the spec's `x-argus-rate-limit`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operations: BTreeMap<String, LimitOverrides>,
}

/// Limits replacing the inherited ones, key kind by key kind: in `[gate.rate_limits.routes.<r>.operations.<op>]`
/// and in an operation's `x-argus-rate-limit`. An operation's limits count in buckets of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_client: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_token: Option<Limit>,
}

impl LimitOverrides {
    /// Parse `x-argus-rate-limit`; the error is a message for the load error.
    pub fn deserialize_value(value: &Value) -> Result<Self, String> {
        Self::deserialize(value).map_err(|e| e.to_string())
    }

    /// Whether any kind is overridden.
    pub fn is_empty(&self) -> bool {
        self.get(KeyKind::Ip).is_none()
            && self.get(KeyKind::User).is_none()
            && self.get(KeyKind::Client).is_none()
            && self.get(KeyKind::Token).is_none()
    }

    fn get(&self, kind: KeyKind) -> Option<Limit> {
        match kind {
            KeyKind::Ip => self.per_ip,
            KeyKind::User => self.per_user,
            KeyKind::Client => self.per_client,
            KeyKind::Token => self.per_token,
        }
    }
}

fn parse_default(s: &str) -> Limit {
    // The defaults are literals of this file, covered by a test.
    s.parse().unwrap_or(Limit::Off)
}

fn default_per_ip() -> Limit {
    parse_default("6000/min")
}

fn default_per_user() -> Limit {
    parse_default("2400/min")
}

fn default_per_client() -> Limit {
    parse_default("60000/min")
}

fn default_per_token() -> Limit {
    parse_default("1200/min")
}

fn default_max_keys() -> usize {
    100_000
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip: default_per_ip(),
            per_user: default_per_user(),
            per_client: default_per_client(),
            per_token: default_per_token(),
            max_keys: default_max_keys(),
            routes: BTreeMap::new(),
        }
    }
}

/// One resolved limit: the policy name (its buckets, and the name in the `RateLimit` headers) and the quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    name: Arc<str>,
    kind: KeyKind,
    quota: Quota,
    /// The `RateLimit-Policy` member, formatted once.
    header: Arc<str>,
}

impl Policy {
    fn new(name: String, kind: KeyKind, quota: Quota) -> Self {
        let header = super::headers::policy_member(&name, &quota);
        Self { name: name.into(), kind, quota, header: header.into() }
    }

    /// The policy name: `ip`, `<route>.user`, `<route>.<operationId>.token`, ...
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key kind it counts.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Its quota.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Its `RateLimit-Policy` member, e.g. `"ip";q=6000;w=60`.
    pub fn header(&self) -> &str {
        &self.header
    }
}

/// The limits that apply to one operation (or one route), by key kind; resolved at load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitSet {
    policies: [Option<Policy>; 4],
}

impl LimitSet {
    /// The policy for `kind`, if that kind is limited.
    pub fn get(&self, kind: KeyKind) -> Option<&Policy> {
        self.policies[kind.index()].as_ref()
    }

    /// Whether no limit applies.
    pub fn is_empty(&self) -> bool {
        self.policies.iter().all(Option::is_none)
    }
}

/// A route override names a route the configuration does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("gate.rate_limits.routes: no route is named {0:?}")]
pub struct UnknownRoute(pub String);

impl RateLimitConfig {
    /// Check that every route override names a configured route.
    pub fn check_routes<'a>(&self, route_names: impl IntoIterator<Item = &'a str> + Clone) -> Result<(), UnknownRoute> {
        match self.routes.keys().find(|r| !route_names.clone().into_iter().any(|n| n == r.as_str())) {
            Some(unknown) => Err(UnknownRoute(unknown.clone())),
            None => Ok(()),
        }
    }

    /// The limits of calls to `route` that match no operation (or whose route has no spec).
    pub fn resolve_route(&self, route: &str) -> LimitSet {
        self.resolve(route, None, &LimitOverrides::default())
    }

    /// The limits of one operation: the configuration's override for it, else the spec's `x-argus-rate-limit`,
    /// else the route's, else the default, key kind by key kind.
    pub fn resolve(&self, route: &str, operation: Option<&str>, spec: &LimitOverrides) -> LimitSet {
        let route_config = self.routes.get(route);
        let config_op = operation.and_then(|op| route_config?.operations.get(op));
        let mut set = LimitSet::default();
        for kind in KeyKind::ALL {
            let op_limit = config_op.and_then(|o| o.get(kind)).or_else(|| spec.get(kind));
            let route_limit = route_config.and_then(|r| r.get(kind));
            let (limit, name) = match (op_limit, route_limit, operation) {
                (Some(limit), _, Some(op)) => {
                    (limit, format!("{}.{}.{}", policy_part(route), policy_part(op), kind.as_str()))
                }
                (_, Some(limit), _) => (limit, format!("{}.{}", policy_part(route), kind.as_str())),
                _ => (self.default_for(kind), kind.as_str().to_owned()),
            };
            set.policies[kind.index()] = limit.quota().map(|q| Policy::new(name, kind, *q));
        }
        set
    }

    fn default_for(&self, kind: KeyKind) -> Limit {
        match kind {
            KeyKind::Ip => self.per_ip,
            KeyKind::User => self.per_user,
            KeyKind::Client => self.per_client,
            KeyKind::Token => self.per_token,
        }
    }
}

impl RouteRateLimits {
    fn get(&self, kind: KeyKind) -> Option<Limit> {
        match kind {
            KeyKind::Ip => self.per_ip,
            KeyKind::User => self.per_user,
            KeyKind::Client => self.per_client,
            KeyKind::Token => self.per_token,
        }
    }
}

/// A route name or operationId as part of a policy name: the header carries it inside an sf-string, so anything
/// but letters, digits and `-_:/` becomes `_`.
fn policy_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_:/".contains(c) { c } else { '_' }).collect()
}
