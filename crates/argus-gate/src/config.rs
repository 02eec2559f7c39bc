//! The `[gate]` table of `argus.toml`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

pub use argus_policy::RouteConfig;
use argus_policy::ratelimit::RateLimitConfig;
use serde::{Deserialize, Serialize};

/// The gate: the reverse proxy that enforces Argus access tokens in front of an API.
///
/// ```toml
/// [gate]
/// listen = "127.0.0.1:7480"
/// upstream_timeout_secs = 30
/// dpop_nonce = true
///
/// [[gate.routes]]
/// name = "demo"
/// prefix = "/"
/// upstream = "http://127.0.0.1:7401"
/// auth = "argus"
/// openapi = "demo-openapi.yaml"
///
/// [gate.rate_limits]
/// per_ip = "6000/min"
/// ```
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// The address the gate listens on. Default `127.0.0.1:7480`.
    pub listen: SocketAddr,
    /// The gate's public base URL, as callers reach it. Default: `http://` and the bound address.
    pub public_url: Option<String>,
    /// The access-token audience (`aud`) this gate accepts. Default: the public URL.
    pub audience: Option<String>,
    /// The issuer whose tokens this gate accepts; its keys come from `{issuer}/.well-known/openid-configuration`.
    /// Plain `http` only for now. Default: the local issuer of `argus up`.
    pub issuer: Option<String>,
    /// The routes, `[[gate.routes]]`. The longest matching prefix wins; a path no route matches gets 404.
    pub routes: Vec<RouteConfig>,
    /// Seconds to wait for the upstream's response head (connect included) before answering 504. Default 30.
    pub upstream_timeout_secs: u64,
    /// The largest request body passed upstream, in bytes; larger bodies are answered 413. Default 1 MiB.
    pub max_body_bytes: u64,
    /// A token signed by an unknown key makes the gate refetch the issuer's JWKS, but at most once per this many
    /// seconds, so a flood of made-up key ids cannot flood the issuer. Default 10.
    pub jwks_min_refresh_secs: u64,
    /// Require DPoP server nonces (RFC 9449 §9) on proofs for DPoP-bound tokens. A proof without the current
    /// nonce is answered 401 `use_dpop_nonce` with a `DPoP-Nonce` header; clients (openid-client, oauth4webapi)
    /// retry once by themselves. Default `true`: a nonce proves the proof was made just now, so proofs
    /// pre-computed by code that briefly had the key (XSS) are worthless (RFC 9449 §11.2), at the cost of one
    /// extra round trip per client per nonce window.
    pub dpop_nonce: bool,
    /// How long a server nonce is current, in seconds; it is still accepted for one more window after. Default 300.
    pub dpop_nonce_window_secs: u64,
    /// How far a DPoP proof's `iat` may be from now, in seconds, in either direction (plus 5 s of leeway): the
    /// window in which a proof is usable, and its `jti` remembered against replay. Default 60.
    pub dpop_proof_max_age_secs: u64,
    /// Rate limits per token, user, client and address, `[gate.rate_limits]`; on by default with limits that stop
    /// floods, never a person (see [`RateLimitConfig`]).
    pub rate_limits: RateLimitConfig,
}

impl GateConfig {
    /// Make every route's relative `openapi` path relative to `folder` (the configuration file's).
    pub fn resolve_paths(&mut self, folder: &Path) {
        for route in &mut self.routes {
            if let Some(spec) = &mut route.openapi
                && spec.is_relative()
            {
                *spec = folder.join(&*spec);
            }
        }
    }
}

/// Default `[gate] listen`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 7480);

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            public_url: None,
            audience: None,
            issuer: None,
            routes: Vec::new(),
            upstream_timeout_secs: 30,
            max_body_bytes: 1024 * 1024,
            jwks_min_refresh_secs: 10,
            dpop_nonce: true,
            dpop_nonce_window_secs: 300,
            dpop_proof_max_age_secs: 60,
            rate_limits: RateLimitConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let empty: GateConfig = toml::from_str("").unwrap();
        assert_eq!(empty.listen, "127.0.0.1:7480".parse::<SocketAddr>().unwrap());
        assert_eq!((empty.upstream_timeout_secs, empty.max_body_bytes, empty.jwks_min_refresh_secs), (30, 1 << 20, 10));
        assert!(empty.routes.is_empty() && empty.issuer.is_none());
        assert_eq!((empty.dpop_nonce, empty.dpop_nonce_window_secs, empty.dpop_proof_max_age_secs), (true, 300, 60));

        let set: GateConfig = toml::from_str(
            "listen = \"0.0.0.0:8080\"\nmax_body_bytes = 10\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\n\
             upstream = \"http://127.0.0.1:9000\"\n",
        )
        .unwrap();
        assert_eq!((set.listen.port(), set.max_body_bytes, set.routes.len()), (8080, 10, 1));

        let err = toml::from_str::<GateConfig>("upstream_timeout = 3\n").unwrap_err().to_string();
        assert!(err.contains("upstream_timeout"), "{err}");
        assert!(set.routes[0].strict && set.routes[0].openapi.is_none(), "strict by default");
    }

    #[test]
    fn spec_paths_resolve_against_the_config_folder() {
        let mut config: GateConfig = toml::from_str(
            "[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"http://x\"\nopenapi = \"specs/a.yaml\"\n\
             strict = false\n[[routes]]\nname = \"b\"\nprefix = \"/b\"\nupstream = \"http://x\"\n\
             openapi = \"/abs/b.json\"\n",
        )
        .unwrap();
        config.resolve_paths(Path::new("/etc/argus"));
        assert_eq!(config.routes[0].openapi.as_deref(), Some(Path::new("/etc/argus/specs/a.yaml")));
        assert_eq!(config.routes[1].openapi.as_deref(), Some(Path::new("/abs/b.json")));
        assert_eq!(
            config.routes[0].strictness(),
            argus_policy::openapi::Strictness { allow_unknown_query_params: true, allow_unknown_fields: true }
        );
    }
}
