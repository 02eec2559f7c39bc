//! Who may call the admin API: the bearer of an access token of this issuer, obtained with the client-credentials
//! grant, with scope `argus:admin`, whose client is still enabled and still allowed that scope, and which no
//! revocation covers.
//!
//! The token's `aud` may be this issuer (an admin token asked for with `resource` = the issuer) or the API audience
//! (the issuer's default for every token). Checks run in this order, and each refusal is RFC 6750: no token (401,
//! bare challenge), two `Authorization` headers (400 `invalid_request`), a token that does not verify, is
//! sender-constrained, is not a client's own token, is revoked, or whose client is unknown or disabled (401
//! `invalid_token`), a token without the scope or of a client no longer allowed it (403 `insufficient_scope`).

use argus_jose::{AccessClaims, CredentialsError, PresentedScheme, TokenError, verify_access_token};
use argus_model::Principal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};

use super::ADMIN_SCOPE;
use super::problem::Problem;
use crate::events::Caller;
use crate::state::{Issuer, Shared};

/// An authenticated admin caller.
#[derive(Clone, Debug)]
pub(crate) struct Admin {
    /// The admin client.
    pub client_id: String,
    /// The principal of the events this caller's changes emit: the admin client, its token, its address.
    pub principal: Principal,
}

impl FromRequestParts<Shared> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Problem> {
        let caller = match Caller::from_request_parts(parts, s).await {
            Ok(c) => c,
            Err(never) => match never {},
        };
        let token = bearer(&parts.headers)?;
        let claims = verified(s, token)?;
        authorize(s, &claims).await?;
        let principal = Principal {
            client_id: Some(claims.client_id.clone()),
            jti: Some(claims.jti.clone()),
            ..caller.principal()
        };
        Ok(Self { client_id: claims.client_id, principal })
    }
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

/// Signature by a published key, `typ`, `iss`, time, and `aud` either this issuer or the API audience.
fn verified(s: &Issuer, token: &str) -> Result<AccessClaims, Problem> {
    let jwks = s.keys.jwks();
    let now = s.now().as_secs();
    let verify = |aud: &str| verify_access_token(token, &jwks, &s.issuer_url, aud, now);
    let claims = match verify(&s.issuer_url) {
        Err(TokenError::WrongAudience) => verify(&s.audience),
        other => other,
    };
    claims.map_err(|e| {
        tracing::debug!(reason = e.code(), "admin API: access token refused");
        Problem::invalid_token("The access token is invalid or expired")
    })
}

async fn authorize(s: &Issuer, claims: &AccessClaims) -> Result<(), Problem> {
    if claims.cnf.is_some() {
        // The admin API reads Bearer tokens only; a sender-constrained token without its proof is refused.
        return Err(Problem::invalid_token("Sender-constrained tokens are not accepted by the admin API"));
    }
    if claims.sub != claims.client_id || claims.sid.is_some() {
        return Err(Problem::invalid_token("Admin tokens come from the client credentials grant"));
    }
    let revocations = s.store.active_revocations(s.now()).await?;
    let keys = claims.revocation_keys();
    if revocations.iter().any(|r| r.covers(&keys)) {
        return Err(Problem::invalid_token("The access token has been revoked"));
    }
    let client = s.store.client(&claims.client_id).await?;
    let Some(client) = client.filter(|c| !c.disabled) else {
        return Err(Problem::invalid_token("The client is unknown or disabled"));
    };
    if !claims.has_scope(ADMIN_SCOPE) || !client.allowed().contains(ADMIN_SCOPE) {
        return Err(Problem::insufficient_scope());
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer a b"));
        assert!(bearer(&h).is_err());
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(bearer(&h).is_err());
    }
}
