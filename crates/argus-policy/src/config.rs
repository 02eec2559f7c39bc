//! The `[[gate.routes]]` configuration as written in `argus.toml`.

use serde::{Deserialize, Serialize};

/// One route of the gate: requests for `host` (any host if unset) whose path starts with `prefix` (on whole path
/// segments) go to `upstream`, or round-robin to one of `upstreams`.
///
/// ```toml
/// [[gate.routes]]
/// name = "demo"
/// prefix = "/"
/// upstream = "http://127.0.0.1:7401"
/// auth = "argus"
///
/// [[gate.routes]]
/// name = "shop"
/// host = "*.shop.example"
/// prefix = "/api"
/// upstreams = ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
/// ```
///
/// **Which route serves a call.** The request's host (`Host`, or the HTTP/2 `:authority`; compared without port
/// and case-insensitively) picks one set of routes: those naming exactly that host; if none does, those of the
/// most specific `*.` wildcard matching it (the longest suffix); if none does either (or the request names no
/// usable host), the routes without `host`. Within that set the longest matching prefix wins, and a path none of
/// them serves is 404 — a host with routes of its own is never served by another host's or a host-less route,
/// so a catch-all route cannot expose paths a host's routes left out.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A unique name; events and logs name the route by it.
    pub name: String,
    /// The host this route serves: a DNS name (`api.example.com`) or a wildcard (`*.example.com`: one or more
    /// labels before `.example.com`, never `example.com` itself), without port, any case. Unset: any host that
    /// no route names (see above). Two routes may share a prefix only if their hosts differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path prefix this route serves, matched on whole segments: `/api` matches `/api` and `/api/x`, not
    /// `/apix`. The longest matching prefix wins. `/` matches every path.
    pub prefix: String,
    /// The upstream base URL, `http://host:port` (plain http for now). The request path is passed through unchanged.
    /// Exactly one of `upstream` and `upstreams` is set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// Several upstream base URLs serving the same API, instead of `upstream`: calls go round-robin. One whose
    /// connection is refused (or cannot be made) is skipped for 10 seconds, then tried again; the call that found
    /// it down is sent to the next one if its body can be sent again (no body, or buffered because the route has
    /// `openapi`). If every one is down, the call is answered 502.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// `argus` (default): calls need a valid Argus access token, except operations whose `security` allows
    /// anonymous calls. `none`: the API keeps its own auth; calls are still validated, limited and observed.
    #[serde(default)]
    pub auth: AuthMode,
    /// Scope rules by path prefix, for routes without `openapi` (with a spec, `security` gives the scopes), tried
    /// in order; the first rule matching the method and path decides. A call that matches no rule needs only a
    /// valid token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<RuleConfig>,
    /// The API's OpenAPI 3.0/3.1 file (YAML or JSON), relative to the configuration file's folder or absolute.
    /// With it, the route is driven by the API's own description: an operation the spec lacks is 404/405, the
    /// scopes of each operation come from its `security`, `x-argus-*` extensions add rules, step-up, decoys and
    /// limits, and every input is validated before it is proxied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<std::path::PathBuf>,
    /// With `openapi`: refuse query parameters and JSON fields the spec does not declare. Default `true`.
    #[serde(default = "strict_default")]
    pub strict: bool,
    /// With `openapi`: check the upstream's answers against the responses the spec declares, to catch excessive
    /// data exposure (fields, statuses or content types the spec does not declare). `log` (default): the answer
    /// passes; the call's event is flagged with the undeclared field paths and a warning is logged (names, never
    /// values). `block`: such an answer is withheld and the caller gets 502 `undeclared-response-data`; answers
    /// the gate cannot check (compressed, or JSON larger than 4 MiB) are withheld too. `off`: no checking.
    /// Only JSON bodies are read; `log` reads only those of declared length up to 4 MiB, so other answers still
    /// stream.
    #[serde(default)]
    pub responses: ResponseMode,
}

fn strict_default() -> bool {
    true
}

/// An empty route (name, prefix and upstream still to fill in) with the file defaults: any host, `argus` auth,
/// strict.
impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            host: None,
            prefix: String::new(),
            upstream: String::new(),
            upstreams: Vec::new(),
            auth: AuthMode::default(),
            require: Vec::new(),
            openapi: None,
            strict: strict_default(),
            responses: ResponseMode::default(),
        }
    }
}

impl RouteConfig {
    /// How undeclared input is treated on this route.
    pub fn strictness(&self) -> crate::openapi::Strictness {
        crate::openapi::Strictness { allow_unknown_query_params: !self.strict, allow_unknown_fields: !self.strict }
    }
}

/// What the gate does with upstream answers that do not match the spec: `[[gate.routes]] responses`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// Answers are not checked.
    Off,
    /// Answers pass; a mismatch flags the call's event and logs a warning.
    #[default]
    Log,
    /// A mismatching (or uncheckable) answer is withheld: 502 `undeclared-response-data`.
    Block,
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
