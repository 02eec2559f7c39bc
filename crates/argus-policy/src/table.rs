//! The compiled route table: validated once at start-up, then matched per request without allocating.

use crate::config::{AuthMode, ResponseMode, RouteConfig, RuleConfig};
use crate::path::{canonical_path, segment_prefix_matches};

/// A route configuration the gate cannot run with. The message names the route and the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("route #{index}: the name is empty")]
    EmptyName { index: usize },
    #[error("route {0:?}: the name is used by another route")]
    DuplicateName(String),
    #[error("route {route:?}: prefix {prefix:?} is already the prefix of route {other:?}")]
    DuplicatePrefix { route: String, other: String, prefix: String },
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
    /// Indices into `routes`, longest prefix first, so the first match is the longest.
    by_prefix_length: Vec<usize>,
}

/// One validated route.
#[derive(Clone, Debug)]
pub struct Route {
    index: usize,
    name: String,
    prefix: String,
    upstream: String,
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
            if let Some(other) = routes.iter().find(|r| r.prefix == route.prefix) {
                return Err(PolicyError::DuplicatePrefix {
                    route: route.name,
                    other: other.name.clone(),
                    prefix: other.prefix.clone(),
                });
            }
            routes.push(route);
        }
        let mut by_prefix_length: Vec<usize> = (0..routes.len()).collect();
        by_prefix_length.sort_by_key(|&i| std::cmp::Reverse(routes[i].prefix.len()));
        Ok(Self { routes, by_prefix_length })
    }

    /// The route with the longest prefix that `path` (canonical, see [`crate::canonical_path`]) lies under.
    pub fn match_path(&self, path: &str) -> Option<&Route> {
        self.by_prefix_length.iter().map(|&i| &self.routes[i]).find(|r| segment_prefix_matches(&r.prefix, path))
    }

    /// All routes, in configuration order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

impl Route {
    fn compile(index: usize, config: &RouteConfig) -> Result<Self, PolicyError> {
        if config.name.trim().is_empty() {
            return Err(PolicyError::EmptyName { index });
        }
        let name = config.name.clone();
        let prefix = config_path(&name, &config.prefix)?;
        if config.auth == AuthMode::None && !config.require.is_empty() {
            return Err(PolicyError::RulesWithoutAuth { route: name });
        }
        // Silently passing every answer would be a false promise of protection.
        if config.responses == ResponseMode::Block && config.openapi.is_none() {
            return Err(PolicyError::BlockWithoutSpec { route: name });
        }
        let rules = config.require.iter().map(|r| Rule::compile(&name, r)).collect::<Result<_, _>>()?;
        Ok(Self { index, name, prefix, upstream: config.upstream.clone(), auth: config.auth, rules })
    }

    /// The route's position in the configuration.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The configured name, as events and logs show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prefix, without a trailing slash (except `/` itself).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The upstream base URL as configured.
    pub fn upstream(&self) -> &str {
        &self.upstream
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
