//! The `[issuer]` table of `argus.toml`.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The issuer's configuration: the `[issuer]` table of `argus.toml`. Every field has a safe default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Address the issuer (token server, login and consent pages) listens on. Default `127.0.0.1:7400`.
    pub listen: SocketAddr,
    /// The issuer's public base URL (its `iss`), e.g. `https://login.example.com`. Default: derived from the
    /// bound address (`http://127.0.0.1:7400`). Cookies are marked `Secure` when it is `https`.
    pub public_url: Option<String>,
    /// Lifetime of access tokens, in seconds. Default 300 (5 minutes): short, because a stolen access token is
    /// usable until it expires unless it is revoked at the gate.
    pub access_token_ttl_secs: u64,
    /// Lifetime of id_tokens, in seconds. Default 300.
    pub id_token_ttl_secs: u64,
    /// Absolute lifetime of a refresh-token family, in seconds, counted from the sign-in; rotation does not extend
    /// it. Default 2,592,000 (30 days). A client's `refresh_token_ttl_secs` overrides it. (Also accepted under its
    /// earlier name `refresh_token_ttl_secs`.)
    #[serde(alias = "refresh_token_ttl_secs")]
    pub refresh_token_absolute_ttl_secs: u64,
    /// Idle lifetime of a refresh token, in seconds: a token not used (rotated) for this long stops working, so an
    /// app left alone does not keep a grant alive for the whole absolute lifetime. Default 1,209,600 (14 days).
    pub refresh_token_idle_ttl_secs: u64,
    /// How long after a rotation the rotated refresh token may come back without ending its family, in seconds.
    /// Default 2. Within it, a second use is answered `invalid_grant` and nothing is issued — no second successor
    /// exists, so a thief racing the owner gets nothing — but the family lives on: two refreshes sent at once by
    /// the same app (two tabs, a retry after a timeout) are not an attack. Later, a rotated token coming back
    /// revokes the family (RFC 9700 §4.14.2). 0 turns the leeway off; at most 60.
    pub refresh_reuse_leeway_secs: u64,
    /// Every client must use pushed authorization requests (RFC 9126 §5), not only those registered with
    /// `require_pushed_authorization_requests`. Default false.
    pub require_pushed_authorization_requests: bool,
    /// DPoP proofs at the token and PAR endpoints must carry a server nonce (RFC 9449 §8): a proof without the
    /// current nonce is answered `use_dpop_nonce` with a fresh one in `DPoP-Nonce`. Default true: it limits a
    /// proof made in advance on a compromised client to the nonce's lifetime, at the cost of one extra round trip
    /// per client (which openid-client and oauth4webapi do on their own).
    pub dpop_nonce_required: bool,
    /// How far a DPoP proof's `iat` may be from the server's clock, in seconds. Default 60.
    pub dpop_proof_max_age_secs: u64,
    /// How long a `private_key_jwt` client assertion may still be valid when presented (`exp` - now), in seconds.
    /// Default 3,600: the default of common client libraries (authlib); each assertion is single use anyway (its
    /// `jti` is kept until it expires).
    pub client_assertion_max_lifetime_secs: u64,
    /// How long a signing key added by `argus keys rotate` is published in the JWKS before the issuer signs with it,
    /// in seconds. Default 300: the JWKS is served with `Cache-Control: max-age=300`, so any verifier that honours
    /// it has the new key before the first token it signed (the gate refetches on an unknown `kid` anyway, so a
    /// deployment with only Argus gates may lower it, even to 0). At most 86,400.
    pub key_publish_lead_secs: u64,
    /// How often the issuer looks in the store for keys added by `argus keys rotate`, in seconds. Default 5.
    /// Between 1 and 3,600.
    pub key_reload_secs: u64,
    /// Lifetime of authorization codes, in seconds. Default 60.
    pub code_ttl_secs: u64,
    /// Lifetime of a sign-in session at the issuer (the session cookie), in seconds. Default 43,200 (12 hours).
    pub session_ttl_secs: u64,
    /// How long a user has to sign in and consent after the app sent them to `/authorize`, in seconds.
    /// Default 600 (10 minutes).
    pub authorization_request_ttl_secs: u64,
    /// How long a request may be answered from the issuer's in-memory copy of a client registration or of a user's
    /// enabled flag, in seconds. Default 5. A change through this issuer's admin API applies at once; a change made
    /// elsewhere (another issuer process, `argus admin` on the database) applies within this time. 0 reads the
    /// store on every request; at most 300.
    pub registry_cache_secs: u64,
    /// The protected resources clients may ask tokens for with `resource` (RFC 8707), each an absolute URI
    /// without a fragment, written as clients will send it, e.g. `["https://reports.example/api"]`. The API
    /// audience (the gate's, what a token is for when no resource is named) and the issuer itself (its admin API)
    /// are always resources; default: no others. A token is for one resource (its `aud`); an authorization
    /// request may name several, and each token request then names the one it wants.
    pub resources: Vec<String>,
    /// The proxies (CIDRs such as `10.0.0.0/8`, or single addresses) in front of the issuer whose
    /// `X-Forwarded-For` / `Forwarded` headers are believed, as at the gate. The client address of sign-ins,
    /// events and watch's blocks is the peer's unless the peer is one of these. Default none: behind a proxy, set
    /// it, or every sign-in counts (and is blocked) as the proxy's.
    pub trusted_proxies: Vec<String>,
    /// Where notices go besides the account page and the log: the top-level `[notify]` table of `argus.toml`
    /// (not `[issuer.notify]`), copied here by the binary.
    #[serde(skip)]
    pub notify: crate::outbox::NotifyConfig,
    /// Configured triggers, `[[issuer.triggers]]`: CEL rules over events (`when`, over `event`), each with
    /// `actions` — `notify_user`, `admin_webhook`, `require_step_up`, `revoke_session` — and optional `events`,
    /// `message`, `enabled`, `observe_only` (see `argus_policy::triggers`). They add to the shipped defaults; one
    /// named like a default (`new-device`, `credentials-changed`, `first-grant`) replaces it.
    pub triggers: Vec<argus_policy::triggers::TriggerConfig>,
    /// Whether the shipped default triggers apply: notify the user of a new device, a changed password or factor,
    /// a first grant to an app. Default `true`; `false` leaves only the configured ones.
    pub default_triggers: bool,
    /// Progressive sign-in throttling, `[issuer.login_throttle]`: per (user name, client address) and per client
    /// address, a few free failures, then each further failure locks that key for twice as long as the last
    /// (1 s, 2 s, 4 s ... up to `max_lockout_secs`), and attempts on a locked key are answered 429 with
    /// `Retry-After` without checking the password. Nothing locks an account as such: a guesser locks out only
    /// their own address. Defaults: 5 free failures per pair, 20 per address, locks from 1 s to 900 s, failures
    /// remembered for 3,600 s.
    pub login_throttle: argus_oauth::LoginThrottle,
    /// The WebAuthn relying-party id of passkeys: a domain, the issuer URL's host or a parent domain of it. Default:
    /// the issuer URL's host. Passkeys are bound to it: changing it makes every registered passkey useless. WebAuthn
    /// does not work on IP addresses: an issuer whose `public_url` is `http://127.0.0.1:...` offers no passkeys;
    /// give it a host name (`http://localhost:7400` works on one machine, browsers treat localhost as secure).
    pub webauthn_rp_id: Option<String>,
    /// Further origins passkey ceremonies may come from, e.g. `["https://login.example.com"]` when the issuer sits
    /// behind a proxy under another name than its public URL. Default none: the issuer URL's origin only.
    pub webauthn_origins: Vec<String>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7400)),
            public_url: None,
            access_token_ttl_secs: 300,
            id_token_ttl_secs: 300,
            refresh_token_absolute_ttl_secs: 30 * 24 * 3600,
            refresh_token_idle_ttl_secs: 14 * 24 * 3600,
            refresh_reuse_leeway_secs: 2,
            require_pushed_authorization_requests: false,
            dpop_nonce_required: true,
            dpop_proof_max_age_secs: 60,
            client_assertion_max_lifetime_secs: 3600,
            key_publish_lead_secs: 300,
            key_reload_secs: 5,
            code_ttl_secs: 60,
            session_ttl_secs: 12 * 3600,
            authorization_request_ttl_secs: 600,
            registry_cache_secs: 5,
            resources: Vec::new(),
            trusted_proxies: Vec::new(),
            notify: crate::outbox::NotifyConfig::default(),
            triggers: Vec::new(),
            default_triggers: true,
            login_throttle: argus_oauth::LoginThrottle::default(),
            webauthn_rp_id: None,
            webauthn_origins: Vec::new(),
        }
    }
}

impl IssuerConfig {
    /// Check the values: every lifetime must be at least one second and at most ten years; the reuse leeway at most
    /// a minute, the DPoP window between 1 second and 10 minutes.
    pub fn validate(&self) -> Result<(), String> {
        const TEN_YEARS: u64 = 10 * 365 * 24 * 3600;
        if self.refresh_reuse_leeway_secs > 60 {
            return Err(format!(
                "issuer.refresh_reuse_leeway_secs must be at most 60 seconds, not {}",
                self.refresh_reuse_leeway_secs
            ));
        }
        if !(1..=600).contains(&self.dpop_proof_max_age_secs) {
            return Err(format!(
                "issuer.dpop_proof_max_age_secs must be between 1 and 600 seconds, not {}",
                self.dpop_proof_max_age_secs
            ));
        }
        if self.key_publish_lead_secs > 86_400 || !(1..=3600).contains(&self.key_reload_secs) {
            return Err(format!(
                "issuer.key_publish_lead_secs must be at most 86400 and issuer.key_reload_secs between 1 and 3600, \
                 not {} and {}",
                self.key_publish_lead_secs, self.key_reload_secs
            ));
        }
        if self.registry_cache_secs > 300 {
            return Err(format!(
                "issuer.registry_cache_secs must be at most 300 seconds, not {}",
                self.registry_cache_secs
            ));
        }
        if let Some(bad) = self.resources.iter().find(|r| !argus_oauth::is_resource_uri(r)) {
            return Err(format!("issuer.resources: {bad:?} must be an absolute URI without a fragment or spaces"));
        }
        for (name, v) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("id_token_ttl_secs", self.id_token_ttl_secs),
            ("refresh_token_absolute_ttl_secs", self.refresh_token_absolute_ttl_secs),
            ("refresh_token_idle_ttl_secs", self.refresh_token_idle_ttl_secs),
            ("client_assertion_max_lifetime_secs", self.client_assertion_max_lifetime_secs),
            ("code_ttl_secs", self.code_ttl_secs),
            ("session_ttl_secs", self.session_ttl_secs),
            ("authorization_request_ttl_secs", self.authorization_request_ttl_secs),
        ] {
            if v == 0 || v > TEN_YEARS {
                return Err(format!("issuer.{name} must be between 1 and {TEN_YEARS} seconds, not {v}"));
            }
        }
        argus_policy::forwarded::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|entry| format!("issuer.trusted_proxies: {entry:?} is not an address or a CIDR"))?;
        self.notify.validate()?;
        argus_policy::triggers::Triggers::compile(&self.triggers, self.default_triggers)
            .map_err(|e| format!("issuer.{e}"))?;
        self.login_throttle.validate()?;
        // Without a public URL the issuer's address is known only once bound; the router checks it then.
        if let Some(url) = &self.public_url {
            crate::passkey::relying_party(self, url.trim_end_matches('/'))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let c: IssuerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, IssuerConfig::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:7400");
        assert_eq!(c.validate(), Ok(()));
        let c: IssuerConfig = serde_json::from_str(r#"{"code_ttl_secs": 30}"#).unwrap();
        assert_eq!(c.code_ttl_secs, 30);
        assert!(serde_json::from_str::<IssuerConfig>(r#"{"code_ttl": 30}"#).is_err());
        let c = IssuerConfig { access_token_ttl_secs: 0, ..IssuerConfig::default() };
        assert!(c.validate().unwrap_err().contains("access_token_ttl_secs"));
        let c = IssuerConfig { refresh_reuse_leeway_secs: 61, ..IssuerConfig::default() };
        assert!(c.validate().unwrap_err().contains("refresh_reuse_leeway_secs"));
        let c = IssuerConfig { dpop_proof_max_age_secs: 0, ..IssuerConfig::default() };
        assert!(c.validate().unwrap_err().contains("dpop_proof_max_age_secs"));
        assert_eq!(IssuerConfig { refresh_reuse_leeway_secs: 0, ..IssuerConfig::default() }.validate(), Ok(()));
        assert_eq!(IssuerConfig { registry_cache_secs: 0, ..IssuerConfig::default() }.validate(), Ok(()));
        let c = IssuerConfig { registry_cache_secs: 301, ..IssuerConfig::default() };
        assert!(c.validate().unwrap_err().contains("registry_cache_secs"));
        // The earlier name of the absolute lifetime still reads.
        let c: IssuerConfig = serde_json::from_str(r#"{"refresh_token_ttl_secs": 60}"#).unwrap();
        assert_eq!(c.refresh_token_absolute_ttl_secs, 60);
        let c: IssuerConfig = serde_json::from_str(r#"{"resources": ["https://reports.example/api"]}"#).unwrap();
        assert_eq!((c.resources.len(), c.validate()), (1, Ok(())));
        let c: IssuerConfig = serde_json::from_str(r#"{"login_throttle": {"max_lockout_secs": 60}}"#).unwrap();
        assert_eq!((c.login_throttle.max_lockout_secs, c.login_throttle.free_failures_per_account), (60, 5));
        let mut c = IssuerConfig::default();
        c.login_throttle.first_lockout_secs = 0;
        assert!(c.validate().unwrap_err().contains("issuer.login_throttle"));
        for bad in ["reports", "https://reports.example/#x", "https://reports.example/a b"] {
            let c = IssuerConfig { resources: vec![bad.into()], ..IssuerConfig::default() };
            assert!(c.validate().unwrap_err().contains("issuer.resources"), "{bad}");
        }
    }
}
