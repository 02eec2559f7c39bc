//! The issuer's signing keys, fetched over HTTP (OIDC discovery, then `jwks_uri`) and cached: what every verifier
//! of Argus access tokens outside the issuer uses (the gate, the watch API).
//!
//! Every request reads the cached set without waiting. Only a token naming a key the cache does not know
//! triggers a refetch, and refetches are coalesced (one in flight; the others wait for its result) and spaced at
//! least `min_refresh` apart, so made-up key ids cannot turn a verifier into a load generator against the issuer.
#![forbid(unsafe_code)]

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use argus_jose::{AccessClaims, JwkSet, TokenError, peek_kid, verify_access_token};
use argus_model::{Clock, Timestamp};
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// How long one discovery or JWKS request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or JWKS accepted.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// While no key set was ever fetched, retry at most this often: the issuer of `argus up` may start a moment
/// after the gate, so waiting the full `min_refresh` would refuse calls for no reason.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(1);

/// The keys cannot be fetched now; the caller answers 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the issuer's keys are unavailable")]
pub struct JwksUnavailable;

/// Why a fetch failed; logged, never shown to a caller.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0} timed out")]
    Timeout(Uri),
    #[error("{uri}: {source}")]
    Http { uri: Uri, source: hyper_util::client::legacy::Error },
    #[error("{0} answered {1}")]
    Status(Uri, StatusCode),
    #[error("{0}: body unreadable or larger than {MAX_DOCUMENT_BYTES} bytes")]
    Body(Uri),
    #[error("{0}: not the expected JSON document: {1}")]
    Json(Uri, serde_json::Error),
    #[error("discovery names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("jwks_uri {0:?} is not an http URL")]
    JwksUri(String),
}

/// The part of the discovery document the gate needs.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// A cache of one issuer's JWKS.
pub struct JwksCache {
    issuer: String,
    discovery_uri: Uri,
    client: Client<HttpConnector, Empty<Bytes>>,
    clock: Arc<dyn Clock>,
    min_refresh: Duration,
    current: RwLock<Option<Arc<JwkSet>>>,
    /// Held for the whole fetch: this is what makes concurrent refetches one.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Timestamp>,
    last_failed: bool,
    /// From discovery; forgotten after a failed JWKS fetch so the next attempt discovers again.
    jwks_uri: Option<Uri>,
}

impl JwksCache {
    /// `discovery_uri` is `{issuer}/.well-known/openid-configuration`, checked by the caller to be http.
    pub fn new(issuer: &str, discovery_uri: Uri, clock: Arc<dyn Clock>, min_refresh: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(FETCH_TIMEOUT));
        Self {
            issuer: issuer.to_owned(),
            discovery_uri,
            client: Client::builder(TokioExecutor::new()).build(connector),
            clock,
            min_refresh,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    /// The cached key set, if any was fetched yet. Never waits for the network.
    pub fn current(&self) -> Option<Arc<JwkSet>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A key set that should know `kid`: the cached one if it does (or if it was refreshed too recently to try
    /// again), otherwise a freshly fetched one.
    pub async fn refresh_for(&self, kid: &str) -> Result<Arc<JwkSet>, JwksUnavailable> {
        let mut state = self.refresh.lock().await;
        let cached = self.current();
        if let Some(set) = cached.as_ref().filter(|set| set.find(kid).is_some()) {
            // Another request fetched it while this one waited for the lock.
            return Ok(set.clone());
        }
        let now = self.clock.now();
        let spacing = if cached.is_some() { self.min_refresh } else { RETRY_WITHOUT_KEYS };
        if state.last_attempt.is_some_and(|last| now.since(last) < spacing) {
            // Too soon to ask again. A set fetched a moment ago is authoritative: the kid is unknown (401).
            return match cached {
                Some(set) if !state.last_failed => Ok(set),
                _ => Err(JwksUnavailable),
            };
        }
        state.last_attempt = Some(now);
        match self.fetch(&mut state).await {
            Ok(set) => {
                state.last_failed = false;
                let set = Arc::new(set);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(set.clone());
                tracing::debug!(keys = set.keys.len(), "fetched the issuer's JWKS");
                Ok(set)
            }
            Err(error) => {
                state.last_failed = true;
                tracing::warn!(%error, "cannot fetch the issuer's JWKS");
                Err(JwksUnavailable)
            }
        }
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<JwkSet, FetchError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let discovery: Discovery = self.get_json(&self.discovery_uri).await?;
                // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
                if discovery.issuer != self.issuer {
                    return Err(FetchError::IssuerMismatch { expected: self.issuer.clone(), found: discovery.issuer });
                }
                let uri = http_uri(&discovery.jwks_uri).ok_or(FetchError::JwksUri(discovery.jwks_uri))?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set = self.get_json::<JwkSet>(&jwks_uri).await;
        if set.is_err() {
            state.jwks_uri = None;
        }
        set
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, uri: &Uri) -> Result<T, FetchError> {
        let request = Request::get(uri.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|_| FetchError::Body(uri.clone()))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|source| FetchError::Http { uri: uri.clone(), source })?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status(uri.clone(), response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map_err(|_| FetchError::Body(uri.clone()))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| FetchError::Json(uri.clone(), e))
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange).await.map_err(|_| FetchError::Timeout(uri.clone()))?
    }
}

/// Why [`JwksCache::verify`] refused a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is not a valid access token of the issuer for the audience (RFC 6750 `invalid_token`).
    #[error("invalid access token: {0}")]
    Invalid(TokenError),
    /// It names a key the cache does not know and the keys cannot be fetched now: it may well be good (503).
    #[error(transparent)]
    Unavailable(#[from] JwksUnavailable),
}

impl JwksCache {
    /// Verifies an access token (signature, `typ`, `iss`, `aud`, time) with the cached keys, fetching fresh ones only
    /// for a well-formed token naming a key not cached (key rotation).
    pub async fn verify(&self, token: &str, audience: &str, now_secs: i64) -> Result<AccessClaims, VerifyError> {
        let no_keys = JwkSet { keys: Vec::new() };
        let cached = self.current();
        let verify = |keys: &JwkSet| verify_access_token(token, keys, &self.issuer, audience, now_secs);
        match verify(cached.as_deref().unwrap_or(&no_keys)) {
            Err(TokenError::UnknownKey) => match peek_kid(token) {
                Some(kid) => verify(&*self.refresh_for(&kid).await?).map_err(VerifyError::Invalid),
                None => Err(VerifyError::Invalid(TokenError::UnknownKey)),
            },
            other => other.map_err(VerifyError::Invalid),
        }
    }
}

/// `s` as a URI if it is an absolute `http` URL. TLS to the issuer comes with the TLS work of a later issue.
pub fn http_uri(s: &str) -> Option<Uri> {
    let uri: Uri = s.parse().ok()?;
    (uri.scheme() == Some(&http::uri::Scheme::HTTP) && uri.authority().is_some()).then_some(uri)
}

#[cfg(test)]
mod tests {
    use argus_testkit::{FakeClock, JwksServer, test_key};

    use super::*;

    fn cache(server: &JwksServer, clock: Arc<FakeClock>, min_refresh_secs: u64) -> JwksCache {
        let discovery = http_uri(&format!("{}/.well-known/openid-configuration", server.issuer())).unwrap();
        JwksCache::new(server.issuer(), discovery, clock, Duration::from_secs(min_refresh_secs))
    }

    #[tokio::test]
    async fn fetches_lazily_and_spaces_refetches() {
        let key = test_key();
        let server = JwksServer::start(vec![key.public_jwk().clone()]).await;
        let clock = Arc::new(FakeClock::default());
        let cache = cache(&server, clock.clone(), 10);
        assert!(cache.current().is_none());
        assert_eq!(server.jwks_fetches(), 0, "nothing fetched before it is needed");

        let set = cache.refresh_for(key.kid()).await.unwrap();
        assert!(set.find(key.kid()).is_some());
        assert!(cache.current().is_some());

        // A known kid never refetches; an unknown one refetches once per spacing.
        cache.refresh_for(key.kid()).await.unwrap();
        assert!(cache.refresh_for("made-up").await.unwrap().find("made-up").is_none());
        cache.refresh_for("made-up").await.unwrap();
        clock.advance(Duration::from_secs(9));
        cache.refresh_for("made-up").await.unwrap();
        assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (1, 1));
        clock.advance(Duration::from_secs(1));
        cache.refresh_for("made-up").await.unwrap();
        assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (1, 2), "discovery is cached");
    }

    #[tokio::test]
    async fn concurrent_refetches_are_coalesced() {
        let old = test_key();
        let server = JwksServer::start(vec![old.public_jwk().clone()]).await;
        let cache = Arc::new(cache(&server, Arc::new(FakeClock::default()), 0));
        cache.refresh_for(old.kid()).await.unwrap();
        let new = test_key();
        server.set_keys(vec![old.public_jwk().clone(), new.public_jwk().clone()]);
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                let kid = new.kid().to_owned();
                tokio::spawn(async move { cache.refresh_for(&kid).await })
            })
            .collect();
        for w in waiters {
            assert!(w.await.unwrap().unwrap().find(new.kid()).is_some());
        }
        assert_eq!(server.jwks_fetches(), 2, "sixteen waiters, one refetch");
    }

    #[tokio::test]
    async fn unavailable_issuer_is_reported_and_retried() {
        let key = test_key();
        let server = JwksServer::start(vec![key.public_jwk().clone()]).await;
        let clock = Arc::new(FakeClock::default());
        let cache = cache(&server, clock.clone(), 10);
        server.set_available(false);
        assert_eq!(cache.refresh_for(key.kid()).await, Err(JwksUnavailable));
        server.set_available(true);
        assert_eq!(cache.refresh_for(key.kid()).await, Err(JwksUnavailable), "spaced even after a failure");
        clock.advance(RETRY_WITHOUT_KEYS);
        assert!(cache.refresh_for(key.kid()).await.is_ok());

        // With keys cached, a failed refetch for a new kid is unavailability (503), not an unknown key (401).
        clock.advance(Duration::from_secs(10));
        server.set_available(false);
        assert_eq!(cache.refresh_for("rotated").await, Err(JwksUnavailable));
        assert_eq!(cache.refresh_for("rotated").await, Err(JwksUnavailable));
        assert!(cache.current().is_some(), "the cached keys stay usable");
    }

    #[tokio::test]
    async fn discovery_must_name_the_same_issuer() {
        let key = test_key();
        let server = JwksServer::start(vec![key.public_jwk().clone()]).await;
        let discovery = http_uri(&format!("{}/.well-known/openid-configuration", server.issuer())).unwrap();
        let cache = JwksCache::new("http://other", discovery, Arc::new(FakeClock::default()), Duration::ZERO);
        assert_eq!(cache.refresh_for(key.kid()).await, Err(JwksUnavailable));
        assert_eq!(server.jwks_fetches(), 0);
    }

    #[tokio::test]
    async fn verify_fetches_keys_for_an_unknown_kid_only() {
        let key = test_key();
        let server = JwksServer::start(vec![key.public_jwk().clone()]).await;
        let clock = Arc::new(FakeClock::default());
        let cache = cache(&server, clock.clone(), 10);
        let now = clock.now();
        let claims = argus_testkit::access_claims(server.issuer(), "api", now);
        let token = argus_testkit::mint_access_token(&key, &claims);
        assert_eq!(cache.verify(&token, "api", now.as_secs()).await, Ok(claims.clone()));
        assert_eq!(cache.verify(&token, "api", now.as_secs()).await, Ok(claims.clone()));
        assert_eq!(server.jwks_fetches(), 1, "the second verification uses the cached keys");
        assert_eq!(
            cache.verify(&token, "other-api", now.as_secs()).await,
            Err(VerifyError::Invalid(TokenError::WrongAudience))
        );
        assert_eq!(
            cache.verify("not.a.jwt", "api", now.as_secs()).await,
            Err(VerifyError::Invalid(TokenError::Malformed))
        );
        assert_eq!(server.jwks_fetches(), 1, "a bad token never causes a fetch");
        // A token of a key the issuer does not publish: a refetch, then invalid; the issuer away: unavailable.
        let stranger = argus_testkit::mint_access_token(&test_key(), &claims);
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            cache.verify(&stranger, "api", now.as_secs()).await,
            Err(VerifyError::Invalid(TokenError::UnknownKey))
        );
        clock.advance(Duration::from_secs(10));
        server.set_available(false);
        assert_eq!(cache.verify(&stranger, "api", now.as_secs()).await, Err(VerifyError::Unavailable(JwksUnavailable)));
    }

    #[test]
    fn only_absolute_http_urls() {
        assert!(http_uri("http://127.0.0.1:7400/jwks").is_some());
        for bad in ["https://issuer/jwks", "/jwks", "issuer/jwks", "", "ftp://x/y"] {
            assert!(http_uri(bad).is_none(), "{bad}");
        }
    }
}
