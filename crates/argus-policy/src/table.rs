//! The compiled route table: validated once at start-up, then matched per request without allocating.

use crate::config::{AuthMode, ResponseMode, RouteConfig, RuleConfig};
use crate::path::{canonical_path, segment_prefix_matches};

mod host;

use host::{HostPattern, request_host};

/// A route configuration the gate cannot run with. The message names the route and the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("route #{index}: the name is empty")]
    EmptyName { index: usize },
    #[error("route {0:?}: the name is used by another route")]
    DuplicateName(String),
    #[error("route {route:?}: prefix {prefix:?} is already the prefix of route {other:?}")]
    DuplicatePrefix { route: String, other: String, prefix: String },
    #[error("route {route:?}: host {host:?} and prefix {prefix:?} are already those of route {other:?}")]
    DuplicateHostPrefix { route: String, other: String, host: String, prefix: String },
    #[error(
        "route {route:?}: host {host:?} must be a DNS name (api.example.com) or a wildcard of one (*.example.com), \
         without port"
    )]
    BadHost { route: String, host: String },
    #[error("route {route:?}: set `upstream` or `upstreams`")]
    NoUpstream { route: String },
    #[error("route {route:?}: `upstream` and `upstreams` exclude each other; set one")]
    BothUpstreams { route: String },
    #[error("route {route:?}: upstream {url:?} is listed twice")]
    DuplicateUpstream { route: String, url: String },
    #[error(
        "route {route:?}: path {path:?} must start with '/', be written decoded and contain no '.', '..', empty \
         segments, ';', '?', '#' or '\\'"
    )]
    BadPath { route: String, path: String },
    #[error("route {route:?}: {method:?} is not an HTTP method")]
    BadMethod { route: String, method: String },
    #[error("route {route:?}: {scope:?} is not a scope token (RFC 6749 section 3.3)")]
    BadScope { route: String, scope: String },
    #[error("route {route:?}: scope rules need auth = \"argus\"; a public route has no token to check")]
    RulesWithoutAuth { route: String },
    #[error("route {route:?}: responses = \"block\" needs `openapi`: without a spec there is nothing to check against")]
    BlockWithoutSpec { route: String },
}

/// The validated routes of one gate.
#[derive(Clone, Debug)]
pub struct RouteTable {
    /// In configuration order; [`Route::index`] points here.
    routes: Vec<Route>,
    /// The routes of each configured host, most specific host first (see [`RouteTable::match_route`]).
    hosts: Vec<HostRoutes>,
    /// The routes without a host, as indices into `routes`, longest prefix first so the first match is the longest.
    any_host: Vec<usize>,
}

/// The routes naming one host pattern, longest prefix first.
#[derive(Clone, Debug)]
struct HostRoutes {
    pattern: HostPattern,
    routes: Vec<usize>,
}

/// One validated route.
#[derive(Clone, Debug)]
pub struct Route {
    index: usize,
    name: String,
    host: Option<HostPattern>,
    prefix: String,
    /// One or more, as configured.
    upstreams: Vec<String>,
    auth: AuthMode,
    rules: Vec<Rule>,
}

/// One validated scope rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Upper-case; empty means any method.
    methods: Vec<String>,
    path: String,
    scopes: Vec<String>,
}

impl RouteTable {
    /// Validate and compile the configured routes.
    pub fn new(configs: &[RouteConfig]) -> Result<Self, PolicyError> {
        let mut routes: Vec<Route> = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            let route = Route::compile(index, config)?;
            if let Some(other) = routes.iter().find(|r| r.name == route.name) {
                return Err(PolicyError::DuplicateName(other.name.clone()));
            }
            if let Some(other) = routes.iter().find(|r| r.host == route.host && r.prefix == route.prefix) {
                return Err(match &route.host {
                    None => PolicyError::DuplicatePrefix {
                        route: route.name,
                        other: other.name.clone(),
                        prefix: other.prefix.clone(),
                    },
                    Some(host) => PolicyError::DuplicateHostPrefix {
                        route: route.name.clone(),
                        other: other.name.clone(),
                        host: host.to_config(),
                        prefix: other.prefix.clone(),
                    },
                });
            }
            routes.push(route);
        }
        let (hosts, any_host) = group_by_host(&routes);
        Ok(Self { routes, hosts, any_host })
    }

    /// The route serving a request for `host` (a `Host` header or `:authority` as sent, port and all; `None` if
    /// the request named none) and `path` (canonical, see [`crate::canonical_path`]).
    ///
    /// The host picks one set of routes: those naming it exactly; else those of the longest `*.` wildcard
    /// matching it; else (also for a missing or malformed host) the routes without a host. In that set the
    /// longest prefix `path` lies under wins. No fallback to another set: a host with routes of its own is
    /// served by those alone.
    pub fn match_route(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        let host = host.and_then(request_host);
        let candidates = host
            .and_then(|h| self.hosts.iter().find(|group| group.pattern.matches(h)))
            .map_or(&self.any_host, |group| &group.routes);
        candidates.iter().map(|&i| &self.routes[i]).find(|r| segment_prefix_matches(&r.prefix, path))
    }

    /// All routes, in configuration order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// The routes grouped by host pattern, most specific pattern first, and the routes without a host; each list
/// longest prefix first.
fn group_by_host(routes: &[Route]) -> (Vec<HostRoutes>, Vec<usize>) {
    let mut hosts: Vec<HostRoutes> = Vec::new();
    let mut any_host = Vec::new();
    for route in routes {
        match &route.host {
            None => any_host.push(route.index),
            Some(pattern) => match hosts.iter_mut().find(|group| group.pattern == *pattern) {
                Some(group) => group.routes.push(route.index),
                None => hosts.push(HostRoutes { pattern: pattern.clone(), routes: vec![route.index] }),
            },
        }
    }
    let longest_prefix_first = |list: &mut Vec<usize>| list.sort_by_key(|&i| std::cmp::Reverse(routes[i].prefix.len()));
    longest_prefix_first(&mut any_host);
    for group in &mut hosts {
        longest_prefix_first(&mut group.routes);
    }
    // Exact names first, then wildcards longest suffix first: the first group matching a host is the one to use.
    hosts.sort_by_key(|group| std::cmp::Reverse(group.pattern.specificity()));
    (hosts, any_host)
}

impl Route {
    fn compile(index: usize, config: &RouteConfig) -> Result<Self, PolicyError> {
        if config.name.trim().is_empty() {
            return Err(PolicyError::EmptyName { index });
        }
        let name = config.name.clone();
        let host = match &config.host {
            Some(value) => Some(
                HostPattern::parse(value)
                    .ok_or_else(|| PolicyError::BadHost { route: name.clone(), host: value.clone() })?,
            ),
            None => None,
        };
        let prefix = config_path(&name, &config.prefix)?;
        let upstreams = config_upstreams(&name, config)?;
        if config.auth == AuthMode::None && !config.require.is_empty() {
            return Err(PolicyError::RulesWithoutAuth { route: name });
        }
        // Silently passing every answer would be a false promise of protection.
        if config.responses == ResponseMode::Block && config.openapi.is_none() {
            return Err(PolicyError::BlockWithoutSpec { route: name });
        }
        let rules = config.require.iter().map(|r| Rule::compile(&name, r)).collect::<Result<_, _>>()?;
        Ok(Self { index, name, host, prefix, upstreams, auth: config.auth, rules })
    }

    /// The route's position in the configuration.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The configured name, as events and logs show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host (`api.example.com`, `*.example.com`), lower-case; `None` for a route serving any host.
    pub fn host(&self) -> Option<String> {
        self.host.as_ref().map(HostPattern::to_config)
    }

    /// The prefix, without a trailing slash (except `/` itself).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The upstream base URLs as configured: `upstream`, or each of `upstreams`.
    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }

    /// Whether calls need an access token.
    pub fn auth(&self) -> AuthMode {
        self.auth
    }

    /// The scope rules, in configuration order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The scopes a call needs: those of the first rule matching `method` and the canonical `path`, or none.
    pub fn required_scopes(&self, method: &str, path: &str) -> &[String] {
        self.rules.iter().find(|r| r.applies_to(method, path)).map_or(&[], |r| &r.scopes)
    }
}

impl Rule {
    fn compile(route: &str, config: &RuleConfig) -> Result<Self, PolicyError> {
        let path = config_path(route, &config.path)?;
        let mut methods = Vec::with_capacity(config.methods.len());
        for m in &config.methods {
            if !is_token(m) {
                return Err(PolicyError::BadMethod { route: route.to_owned(), method: m.clone() });
            }
            // Methods are case-sensitive on the wire, but "get" in a config file means GET, not a custom method.
            methods.push(m.to_ascii_uppercase());
        }
        for s in &config.scopes {
            if !is_scope_token(s) {
                return Err(PolicyError::BadScope { route: route.to_owned(), scope: s.clone() });
            }
        }
        Ok(Self { methods, path, scopes: config.scopes.clone() })
    }

    /// Whether the rule applies to a call. A rule naming GET covers HEAD too: HEAD exposes the same resource.
    pub fn applies_to(&self, method: &str, path: &str) -> bool {
        let method_ok =
            self.methods.is_empty() || self.methods.iter().any(|m| m == method || (method == "HEAD" && m == "GET"));
        method_ok && segment_prefix_matches(&self.path, path)
    }

    /// The methods, upper-case; empty means any.
    pub fn methods(&self) -> &[String] {
        &self.methods
    }

    /// The path prefix, without a trailing slash.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The scopes a call matching the rule needs, all of them.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// The scopes of `required` that `granted` (a space-separated `scope` claim) lacks, in `required` order.
pub fn missing_scopes<'a>(required: &'a [String], granted: &str) -> Vec<&'a str> {
    required
        .iter()
        .map(String::as_str)
        .filter(|wanted| !granted.split_ascii_whitespace().any(|g| g == *wanted))
        .collect()
}

/// The upstreams of a route: `upstream` or `upstreams`, exactly one of them, without repeats (a repeated URL
/// would silently get a double share of the calls).
fn config_upstreams(route: &str, config: &RouteConfig) -> Result<Vec<String>, PolicyError> {
    match (config.upstream.is_empty(), config.upstreams.is_empty()) {
        (false, true) => Ok(vec![config.upstream.clone()]),
        (true, false) => {
            for (i, url) in config.upstreams.iter().enumerate() {
                if config.upstreams[..i].contains(url) {
                    return Err(PolicyError::DuplicateUpstream { route: route.to_owned(), url: url.clone() });
                }
            }
            Ok(config.upstreams.clone())
        }
        (true, true) => Err(PolicyError::NoUpstream { route: route.to_owned() }),
        (false, false) => Err(PolicyError::BothUpstreams { route: route.to_owned() }),
    }
}

/// A configured prefix or rule path: canonical already, without query or fragment; a trailing slash is dropped
/// so that `/api/` and `/api` mean the same.
fn config_path(route: &str, value: &str) -> Result<String, PolicyError> {
    let bad = || PolicyError::BadPath { route: route.to_owned(), path: value.to_owned() };
    let canonical = canonical_path(value).map_err(|_| bad())?;
    if canonical != value || value.contains(['?', '#', '%', ';']) {
        return Err(bad());
    }
    let trimmed = value.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

/// RFC 9110 `token`, the syntax of a method name.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 6749 §3.3 `scope-token`: `%x21 / %x23-5B / %x5D-7E`. Keeping `"` and `\` out also keeps a scope safe inside
/// the quoted `scope` attribute of a `WWW-Authenticate` header.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests;
