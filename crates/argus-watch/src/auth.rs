//! Who may call the watch API: the same callers as the issuer's admin API. That is the bearer of an access token of
//! the issuer, obtained with the client-credentials grant, with scope `argus:admin`, whose client is still enabled
//! and still allowed that scope, and which no revocation covers.
//!
//! The token is verified with the issuer's published keys (the shared `argus-jwks` cache, as the gate does); its
//! `aud` may be the issuer or the API audience. The client and revocation checks read the issuer's store. Each
//! refusal is RFC 6750 with a problem body: no token (401, bare challenge), two `Authorization` headers (400), a
//! token that does not verify, is sender-constrained, is not a client's own token, is revoked, or whose client is
//! unknown or disabled (401 `invalid_token`), a token without the scope (403 `insufficient_scope`); the issuer's
//! keys unavailable (503).

use std::sync::Arc;
use std::time::Duration;

use argus_jose::{AccessClaims, CredentialsError, PresentedScheme, TokenError};
use argus_jwks::{JwksCache, VerifyError, http_uri};
use argus_model::Clock;
use argus_oauth::admin::ADMIN_SCOPE;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::WatchError;
use crate::issuer::IssuerLink;
use crate::problem::Problem;

/// At most one refetch of the issuer's keys per this, however many tokens name unknown keys.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);

/// An authenticated caller of the watch API, put in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct AdminCaller {
    /// The admin client.
    pub(crate) client_id: String,
}

/// Checks the callers of the watch API.
pub(crate) struct ApiAuth {
    jwks: JwksCache,
    issuer: IssuerLink,
    clock: Arc<dyn Clock>,
}

impl ApiAuth {
    pub(crate) fn new(issuer: IssuerLink, clock: Arc<dyn Clock>) -> Result<Self, WatchError> {
        let discovery = format!("{}/.well-known/openid-configuration", issuer.url.trim_end_matches('/'));
        let discovery = http_uri(&discovery).ok_or_else(|| WatchError::Issuer(issuer.url.clone()))?;
        let jwks = JwksCache::new(&issuer.url, discovery, clock.clone(), JWKS_MIN_REFRESH);
        Ok(Self { jwks, issuer, clock })
    }

    /// The caller of a request with these headers, or the refusal.
    pub(crate) async fn check(&self, headers: &HeaderMap) -> Result<AdminCaller, Problem> {
        let token = bearer(headers)?;
        let claims = self.verified(token).await?;
        self.authorize(&claims).await?;
        Ok(AdminCaller { client_id: claims.client_id })
    }

    /// Signature by a published key, `typ`, `iss`, time, and `aud` either the issuer or the API audience.
    async fn verified(&self, token: &str) -> Result<AccessClaims, Problem> {
        let now = self.clock.now().as_secs();
        let claims = match self.jwks.verify(token, &self.issuer.url, now).await {
            Err(VerifyError::Invalid(TokenError::WrongAudience)) => {
                self.jwks.verify(token, &self.issuer.audience, now).await
            }
            other => other,
        };
        claims.map_err(|e| match e {
            VerifyError::Unavailable(_) => Problem::unavailable("the issuer's keys cannot be fetched now"),
            VerifyError::Invalid(reason) => {
                tracing::debug!(reason = reason.code(), "watch API: access token refused");
                Problem::invalid_token("The access token is invalid or expired")
            }
        })
    }

    async fn authorize(&self, claims: &AccessClaims) -> Result<(), Problem> {
        if claims.cnf.is_some() {
            // The API reads Bearer tokens only; a sender-constrained token without its proof is refused.
            return Err(Problem::invalid_token("Sender-constrained tokens are not accepted here"));
        }
        if claims.sub != claims.client_id || claims.sid.is_some() {
            return Err(Problem::invalid_token("Admin tokens come from the client credentials grant"));
        }
        let store = &self.issuer.store;
        let revocations = store.active_revocations(self.clock.now()).await.map_err(storage_failure)?;
        let keys = claims.revocation_keys();
        if revocations.iter().any(|r| r.covers(&keys)) {
            return Err(Problem::invalid_token("The access token has been revoked"));
        }
        let client = store.client(&claims.client_id).await.map_err(storage_failure)?;
        let Some(client) = client.filter(|c| !c.disabled) else {
            return Err(Problem::invalid_token("The client is unknown or disabled"));
        };
        if !claims.has_scope(ADMIN_SCOPE) || !client.allowed().contains(ADMIN_SCOPE) {
            return Err(Problem::insufficient_scope(ADMIN_SCOPE));
        }
        Ok(())
    }
}

fn storage_failure(error: argus_oauth::StorageError) -> Problem {
    tracing::error!(%error, "watch API: the issuer's store failed");
    Problem::internal()
}

/// The token of the one `Authorization: Bearer` header (`argus_jose::presented_token`); a DPoP token is refused as
/// missing, since this API takes Bearer tokens only.
fn bearer(headers: &HeaderMap) -> Result<&str, Problem> {
    let values = headers.get_all(header::AUTHORIZATION).iter().map(HeaderValue::as_bytes);
    match argus_jose::presented_token(values) {
        Ok((PresentedScheme::Bearer, token)) => Ok(token),
        Ok((PresentedScheme::Dpop, _)) | Err(CredentialsError::Missing) => Err(Problem::missing_token()),
        Err(CredentialsError::Repeated) => Err(Problem::invalid_token_request("Send exactly one Authorization header")),
        Err(CredentialsError::Malformed) => Err(Problem::invalid_token("The access token is malformed")),
    }
}

/// The middleware in front of every `/api/...` route.
pub(crate) async fn require_admin(State(auth): State<Arc<ApiAuth>>, mut request: Request, next: Next) -> Response {
    match auth.check(request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h).unwrap_err().status, 401);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h).unwrap_err().type_uri, "urn:argus:problem:missing-token");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer a b"));
        assert_eq!(bearer(&h).unwrap_err().type_uri, "urn:argus:problem:invalid-token");
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h).unwrap_err().status, 400);
    }
}
