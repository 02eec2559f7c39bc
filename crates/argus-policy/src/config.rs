//! The `[[gate.routes]]` configuration as written in `argus.toml`.

use serde::{Deserialize, Serialize};

/// One route of the gate: requests whose path starts with `prefix` (on whole path segments) go to `upstream`.
///
/// ```toml
/// [[gate.routes]]
/// name = "demo"
/// prefix = "/"
/// upstream = "http://127.0.0.1:7401"
/// auth = "argus"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A unique name; events and logs name the route by it.
    pub name: String,
    /// The path prefix this route serves, matched on whole segments: `/api` matches `/api` and `/api/x`, not
    /// `/apix`. The longest matching prefix wins. `/` matches every path.
    pub prefix: String,
    /// The upstream base URL, `http://host:port` (plain http for now). The request path is passed through unchanged.
    pub upstream: String,
    /// `argus` (default): every call needs a valid Argus access token. `none`: the route is public.
    #[serde(default)]
    pub auth: AuthMode,
    /// Scope rules, tried in order; the first rule matching the method and path decides the scopes a call needs.
    /// A call that matches no rule needs only a valid token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<RuleConfig>,
}

/// Whether a route requires an access token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Require a valid, unrevoked Argus access token.
    #[default]
    Argus,
    /// No token needed; the request is proxied as it came.
    None,
}

/// One `[[gate.routes.require]]` rule.
///
/// ```toml
/// [[gate.routes.require]]
/// methods = ["GET"]
/// path = "/accounts"
/// scopes = ["accounts:read"]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// HTTP methods the rule applies to; empty means any method. A rule naming `GET` also covers `HEAD`, which
    /// reveals the same resource's headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// A path prefix, matched on whole segments like the route prefix.
    pub path: String,
    /// Scopes the access token must all carry.
    #[serde(default)]
    pub scopes: Vec<String>,
}
