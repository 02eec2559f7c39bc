//! The issuer's shared state.

use std::sync::Arc;
use std::time::Duration;

use argus_bus::{ControlChannel, EventBus};
use argus_cache::ReplayCache;
use argus_jose::NonceIssuer;
use argus_model::{Clock, Timestamp};
use argus_oauth::{ClientRegistration, IssuerStore, Resources, StorageError};

use crate::IssuerDeps;
use crate::config::IssuerConfig;
use crate::error::IssuerError;
use crate::keys::Keys;
use crate::registry::Registry;

/// Everything a handler needs, shared by all of them.
pub(crate) struct Issuer {
    pub config: IssuerConfig,
    /// The `iss` value, without a trailing slash.
    pub issuer_url: String,
    pub audience: String,
    /// What `resource` (RFC 8707) may name: the audience, the issuer, the configured resources.
    pub resources: Resources,
    pub store: Arc<dyn IssuerStore>,
    pub events: EventBus,
    pub control: ControlChannel,
    pub clock: Arc<dyn Clock>,
    pub keys: Keys,
    /// Mark cookies `Secure`: the issuer is served over https.
    pub secure_cookies: bool,
    /// One-time values already seen: DPoP proof and client assertion `jti`s.
    pub replay: Arc<dyn ReplayCache>,
    /// The server nonces DPoP proofs must carry at the token and PAR endpoints.
    pub nonces: NonceIssuer,
    /// Client registrations and users' enabled flags, as token requests read them.
    pub registry: Registry,
    /// Watch's blocks, so that a blocked address cannot go on guessing passwords at the login form.
    pub(crate) blocks: Arc<crate::blocks::IssuerBlocks>,
    /// Whose forwarding headers name the client (`[issuer] trusted_proxies`).
    pub(crate) trusted_proxies: argus_policy::forwarded::TrustedProxies,
    /// The configured triggers (`[[issuer.triggers]]` and the shipped defaults), compiled.
    pub(crate) triggers: argus_policy::triggers::Triggers,
    /// When this process last recorded each session's use, so a busy session costs one write a minute.
    pub(crate) session_touches: crate::admin::devices::SessionTouches,
    /// The account page's memory: each grant's last recorded use, the signed-link key once read.
    pub(crate) account: crate::account::shared::AccountMemory,
}

/// How long a DPoP server nonce is handed out before the next one; each is accepted for one more window after.
const DPOP_NONCE_WINDOW_SECS: u64 = 60;

pub(crate) type Shared = Arc<Issuer>;

impl Issuer {
    pub async fn new(
        config: &IssuerConfig,
        issuer_url: &str,
        audience: &str,
        deps: IssuerDeps,
    ) -> Result<Self, IssuerError> {
        config.validate().map_err(IssuerError::Config)?;
        let issuer_url = check_issuer_url(issuer_url)?;
        if audience.trim().is_empty() {
            return Err(IssuerError::Config("the access-token audience must not be empty".into()));
        }
        if deps.dpop_nonce_secret.len() < 32 {
            return Err(IssuerError::Config("the DPoP nonce secret must be at least 32 bytes".into()));
        }
        let resources = Resources::new(audience, &issuer_url, &config.resources).map_err(IssuerError::Config)?;
        crate::passkey::relying_party(config, &issuer_url).map_err(IssuerError::Config)?;
        let keys = Keys::start(deps.store.clone(), deps.clock.clone(), config).await?;
        let trusted_proxies =
            argus_policy::forwarded::TrustedProxies::parse(&config.trusted_proxies).map_err(|entry| {
                IssuerError::Config(format!("issuer.trusted_proxies: {entry:?} is not an address or a CIDR"))
            })?;
        let blocks = crate::blocks::IssuerBlocks::start(&deps.control, deps.clock.clone(), &deps.initial_blocks);
        Ok(Self {
            config: config.clone(),
            secure_cookies: issuer_url.starts_with("https://"),
            issuer_url,
            audience: audience.to_owned(),
            resources,
            store: deps.store,
            events: deps.events,
            control: deps.control,
            clock: deps.clock,
            keys,
            replay: deps.replay,
            nonces: NonceIssuer::new(&deps.dpop_nonce_secret, DPOP_NONCE_WINDOW_SECS),
            registry: Registry::new(Duration::from_secs(config.registry_cache_secs)),
            blocks,
            trusted_proxies,
            triggers: crate::triggers::compile(config).map_err(IssuerError::Config)?,
            session_touches: Default::default(),
            account: Default::default(),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// An endpoint's absolute URL.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer_url)
    }

    /// The registration of `client_id` (disabled or not), as the token endpoints read it: from the registry.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRegistration>>, StorageError> {
        self.registry.client(self.store.as_ref(), client_id, self.now()).await
    }

    /// Whether the user `sub` exists and is enabled, as the token endpoints read it: from the registry.
    pub async fn user_enabled(&self, sub: &str) -> Result<bool, StorageError> {
        self.registry.user_enabled(self.store.as_ref(), sub, self.now()).await
    }

    /// The access-token lifetime for `client`: its own or the issuer's.
    pub fn access_ttl(&self, client: &ClientRegistration) -> Duration {
        Duration::from_secs(client.access_token_ttl(self.config.access_token_ttl_secs))
    }
}

/// The issuer URL must be an absolute http(s) URL without query or fragment (RFC 8414 §2); a trailing slash is
/// dropped so endpoint URLs and `iss` are written one way.
fn check_issuer_url(raw: &str) -> Result<String, IssuerError> {
    let trimmed = raw.trim_end_matches('/');
    let ok = url::Url::parse(trimmed).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() && u.fragment().is_none()
    });
    if !ok {
        return Err(IssuerError::Config(format!("issuer URL {raw:?} must be an absolute http(s) URL")));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls() {
        assert_eq!(check_issuer_url("http://127.0.0.1:7400/").unwrap(), "http://127.0.0.1:7400");
        assert_eq!(check_issuer_url("https://id.example/tenant").unwrap(), "https://id.example/tenant");
        for bad in ["", "ftp://x", "http://x/?q=1", "http://x/#f", "/relative"] {
            assert!(check_issuer_url(bad).is_err(), "{bad}");
        }
    }
}
