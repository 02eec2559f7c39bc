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
/// header_timeout_secs = 10
/// body_timeout_secs = 30
/// token_cache_entries = 50000
/// trusted_proxies = ["10.0.0.0/8"]
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
    /// Seconds to wait for a connection to an upstream. An upstream that cannot be reached within this is marked
    /// down for a cool-down and, where the request can be resent, the next upstream of the route is tried; keep it
    /// well under `upstream_timeout_secs`, which covers both attempts. Default 5.
    pub connect_timeout_secs: u64,
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
    /// Seconds a client has to send a whole request head (HTTP/1.1), and a new connection its first request: a
    /// slowloris caller is disconnected after this long. It is also how long an idle keep-alive connection
    /// stays open. Default 10.
    pub header_timeout_secs: u64,
    /// Seconds, counted from the request head, within which the whole request body must have arrived; a body
    /// still trickling in after that is answered 408 (`body-timeout`). Default 30.
    pub body_timeout_secs: u64,
    /// How many verified access tokens the gate remembers (by SHA-256 of the token), so a token's signature is
    /// checked once rather than on every call. An entry lasts until the token expires; revocation, DPoP and
    /// every rule still run on each call. 0 turns the cache off. Default 50000.
    pub token_cache_entries: usize,
    /// The proxies (CIDRs such as `10.0.0.0/8`, or single addresses) whose `X-Forwarded-For` / `Forwarded`
    /// headers are believed. The client address (for rate limits, blocks and events) is the peer's unless the
    /// peer is one of these; then the forwarding chain is walked right to left, past trusted hops. Default none:
    /// the headers are ignored, since any caller can write them.
    pub trusted_proxies: Vec<String>,
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

impl GateConfig {
    /// The settings that differ between `self` (running) and `new` but that a running gate cannot change: they are
    /// bound into its listener, its key cache or its DPoP checks. A reload keeps their running values and names
    /// them, so the operator knows a restart is due.
    pub fn restart_only_changes(&self, new: &Self) -> Vec<&'static str> {
        // Spelled out field by field (no `..`): a new setting does not compile until it is sorted into live or
        // restart-only here.
        let Self {
            listen,
            public_url,
            audience,
            issuer,
            jwks_min_refresh_secs,
            dpop_nonce,
            dpop_nonce_window_secs,
            dpop_proof_max_age_secs,
            header_timeout_secs,
            token_cache_entries,
            connect_timeout_secs,
            rate_limits,
            // Live: swapped in by a reload.
            routes: _,
            upstream_timeout_secs: _,
            max_body_bytes: _,
            body_timeout_secs: _,
            trusted_proxies: _,
        } = self;
        [
            ("gate.listen", *listen != new.listen),
            ("gate.public_url", *public_url != new.public_url),
            ("gate.audience", *audience != new.audience),
            ("gate.issuer", *issuer != new.issuer),
            ("gate.jwks_min_refresh_secs", *jwks_min_refresh_secs != new.jwks_min_refresh_secs),
            ("gate.dpop_nonce", *dpop_nonce != new.dpop_nonce),
            ("gate.dpop_nonce_window_secs", *dpop_nonce_window_secs != new.dpop_nonce_window_secs),
            ("gate.dpop_proof_max_age_secs", *dpop_proof_max_age_secs != new.dpop_proof_max_age_secs),
            ("gate.header_timeout_secs", *header_timeout_secs != new.header_timeout_secs),
            ("gate.token_cache_entries", *token_cache_entries != new.token_cache_entries),
            ("gate.connect_timeout_secs", *connect_timeout_secs != new.connect_timeout_secs),
            ("gate.rate_limits.max_keys", rate_limits.max_keys != new.rate_limits.max_keys),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// `self` with the restart-only settings of `running`: what a reload can actually put in force.
    pub(crate) fn with_restart_only_of(mut self, running: &Self) -> Self {
        self.listen = running.listen;
        self.public_url.clone_from(&running.public_url);
        self.audience.clone_from(&running.audience);
        self.issuer.clone_from(&running.issuer);
        self.jwks_min_refresh_secs = running.jwks_min_refresh_secs;
        self.dpop_nonce = running.dpop_nonce;
        self.dpop_nonce_window_secs = running.dpop_nonce_window_secs;
        self.dpop_proof_max_age_secs = running.dpop_proof_max_age_secs;
        self.header_timeout_secs = running.header_timeout_secs;
        self.token_cache_entries = running.token_cache_entries;
        self.connect_timeout_secs = running.connect_timeout_secs;
        self.rate_limits.max_keys = running.rate_limits.max_keys;
        self
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
            connect_timeout_secs: 5,
            max_body_bytes: 1024 * 1024,
            jwks_min_refresh_secs: 10,
            dpop_nonce: true,
            dpop_nonce_window_secs: 300,
            dpop_proof_max_age_secs: 60,
            rate_limits: RateLimitConfig::default(),
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            token_cache_entries: 50_000,
            trusted_proxies: Vec::new(),
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
        assert_eq!((empty.header_timeout_secs, empty.body_timeout_secs, empty.token_cache_entries), (10, 30, 50_000));
        assert!(empty.trusted_proxies.is_empty(), "no forwarding header is believed by default");

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
    fn a_reload_names_and_keeps_the_settings_only_a_restart_changes() {
        let running = GateConfig::default();
        let mut new: GateConfig = toml::from_str(
            "listen = \"127.0.0.1:9999\"\nheader_timeout_secs = 3\ntoken_cache_entries = 0\n\
             max_body_bytes = 10\nbody_timeout_secs = 5\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [rate_limits]\nmax_keys = 7\n",
        )
        .unwrap();
        new.routes.push(RouteConfig { name: "a".into(), prefix: "/a".into(), ..RouteConfig::default() });
        assert_eq!(
            running.restart_only_changes(&new),
            ["gate.listen", "gate.header_timeout_secs", "gate.token_cache_entries", "gate.rate_limits.max_keys"]
        );
        let applied = new.with_restart_only_of(&running);
        assert!(running.restart_only_changes(&applied).is_empty());
        assert_eq!((applied.max_body_bytes, applied.body_timeout_secs, applied.routes.len()), (10, 5, 1), "live");
        assert_eq!(applied.trusted_proxies, ["10.0.0.0/8"]);
        assert_eq!((applied.listen, applied.header_timeout_secs), (running.listen, 10), "kept");
        assert!(running.restart_only_changes(&running.clone()).is_empty());
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
