//! `GET|POST /userinfo` (OIDC Core §5.3), a protected resource of the issuer itself: a Bearer access token
//! (RFC 6750), or — for a DPoP-bound token — the `DPoP` scheme with a proof of the token's key (RFC 9449 §7).

use argus_jose::{
    AccessClaims, CredentialsError, DPOP_ALGORITHMS, DpopCheck, PresentedScheme, verify_access_token, verify_dpop_proof,
};
use argus_model::Revocation;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::dpop::{self, DPOP};
use crate::state::{Issuer, Shared};

#[derive(Serialize)]
struct UserInfo {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
}

/// Why userinfo (or another resource of the issuer itself: the account API) refused, as RFC 6750 §3 and RFC 9449
/// §7.1 answer it.
pub(crate) enum Refusal {
    /// No token at all: a bare challenge, no error code (RFC 6750 §3.1).
    NoToken,
    InvalidToken(&'static str),
    InvalidDpopProof(&'static str),
    InsufficientScope,
    Internal(String),
}

/// How the token was presented.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// `GET|POST /userinfo`.
pub(crate) async fn userinfo(State(s): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    match run(&s, &method, &headers).await {
        Ok(info) => (no_store(), Json(info)).into_response(),
        Err(r) => refusal(r),
    }
}

async fn run(s: &Issuer, method: &Method, headers: &HeaderMap) -> Result<UserInfo, Refusal> {
    // A token for the API (the default audience) or for the issuer itself (RFC 8707 `resource` = the issuer).
    let claims = verified_request(s, method, headers, "/userinfo", &[&s.audience, &s.issuer_url]).await?;
    if !claims.has_scope("openid") {
        return Err(Refusal::InsufficientScope);
    }
    let user = s.store.user_by_sub(&claims.sub).await.map_err(|e| Refusal::Internal(e.to_string()))?;
    let user = user.filter(|u| !u.disabled).ok_or(Refusal::InvalidToken("the access token is invalid"))?;
    let preferred_username = claims.has_scope("profile").then_some(user.username);
    Ok(UserInfo { sub: user.sub, preferred_username })
}

/// The claims of the request's access token, for a resource of the issuer at `path`: a token of this issuer for one
/// of `audiences`, presented as its binding requires ([`check_binding`]), that no revocation covers.
pub(crate) async fn verified_request(
    s: &Issuer,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    audiences: &[&str],
) -> Result<AccessClaims, Refusal> {
    let (scheme, token) = authorization(headers)?;
    let now = s.now();
    let jwks = s.keys.jwks();
    let claims = audiences
        .iter()
        .find_map(|aud| verify_access_token(token, &jwks, &s.issuer_url, aud, now.as_secs()).ok())
        .ok_or(Refusal::InvalidToken("the access token is invalid"))?;
    check_binding(s, method, headers, scheme, token, &claims, path).await?;
    let revocations = s.store.active_revocations(now).await.map_err(|e| Refusal::Internal(e.to_string()))?;
    if is_revoked(&claims, &revocations) {
        return Err(Refusal::InvalidToken("the access token was revoked"));
    }
    Ok(claims)
}

/// A token bound to a key (`cnf.jkt`) is only good with the `DPoP` scheme and a fresh proof of that key for this
/// request; presented as Bearer it is refused, or whoever stole it could use it. An unbound token cannot be
/// presented with the `DPoP` scheme.
async fn check_binding(
    s: &Issuer,
    method: &Method,
    headers: &HeaderMap,
    scheme: Scheme,
    token: &str,
    claims: &AccessClaims,
    path: &str,
) -> Result<(), Refusal> {
    let Some(cnf) = &claims.cnf else {
        return match scheme {
            Scheme::Bearer => Ok(()),
            Scheme::Dpop => Err(Refusal::InvalidToken("the access token is not bound to a DPoP key")),
        };
    };
    if scheme == Scheme::Bearer {
        return Err(Refusal::InvalidToken("the access token is bound to a DPoP key: use the DPoP scheme"));
    }
    let mut proofs = headers.get_all(DPOP).iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return Err(Refusal::InvalidDpopProof("exactly one DPoP proof is required"));
    };
    let proof = proof.to_str().map_err(|_| Refusal::InvalidDpopProof("the DPoP proof is invalid"))?;
    let url = s.endpoint(path);
    let check = DpopCheck {
        method: method.as_str(),
        url: &url,
        now_secs: s.now().as_secs(),
        max_age_secs: dpop::max_age(s),
        access_token: Some(token),
    };
    let proof = verify_dpop_proof(proof, &check).map_err(|_| Refusal::InvalidDpopProof("the DPoP proof is invalid"))?;
    if !argus_jose::ct_eq(proof.jkt.as_bytes(), cnf.jkt.as_bytes()) {
        return Err(Refusal::InvalidDpopProof("the DPoP proof is not made with the token's key"));
    }
    if !dpop::first_use(s, &proof).await {
        return Err(Refusal::InvalidDpopProof("the DPoP proof was used before"));
    }
    Ok(())
}

fn is_revoked(claims: &AccessClaims, revocations: &[Revocation]) -> bool {
    let keys = claims.revocation_keys();
    revocations.iter().any(|r| r.covers(&keys))
}

/// The scheme and token of the `Authorization` header (`argus_jose::presented_token`, as the gate reads it).
fn authorization(headers: &HeaderMap) -> Result<(Scheme, &str), Refusal> {
    let values = headers.get_all(header::AUTHORIZATION).iter().map(HeaderValue::as_bytes);
    match argus_jose::presented_token(values) {
        Ok((PresentedScheme::Bearer, token)) => Ok((Scheme::Bearer, token)),
        Ok((PresentedScheme::Dpop, token)) => Ok((Scheme::Dpop, token)),
        Err(CredentialsError::Missing) => Err(Refusal::NoToken),
        Err(CredentialsError::Repeated) => Err(Refusal::InvalidToken("send exactly one Authorization header")),
        Err(CredentialsError::Malformed) => Err(Refusal::InvalidToken("the access token is malformed")),
    }
}

fn refusal(r: Refusal) -> Response {
    let Some((status, challenges)) = challenges(r, "openid") else {
        return (StatusCode::INTERNAL_SERVER_ERROR, no_store()).into_response();
    };
    let mut response = (status, no_store()).into_response();
    for challenge in challenges {
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// The status and `WWW-Authenticate` challenges of a refusal, `scope` being the scope the resource needs; `None`
/// for an internal failure (logged here), which gets no challenge.
pub(crate) fn challenges(r: Refusal, scope: &str) -> Option<(StatusCode, Vec<String>)> {
    let dpop_algs = DPOP_ALGORITHMS.join(" ");
    Some(match r {
        // Both schemes are offered, one challenge per header (RFC 9449 §7.1 allows either).
        Refusal::NoToken => (StatusCode::UNAUTHORIZED, vec!["Bearer".to_owned(), format!("DPoP algs=\"{dpop_algs}\"")]),
        Refusal::InvalidToken(why) => {
            (StatusCode::UNAUTHORIZED, vec![format!("Bearer error=\"invalid_token\", error_description=\"{why}\"")])
        }
        Refusal::InvalidDpopProof(why) => (
            StatusCode::UNAUTHORIZED,
            vec![format!("DPoP algs=\"{dpop_algs}\", error=\"invalid_dpop_proof\", error_description=\"{why}\"")],
        ),
        Refusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            vec![format!(
                "Bearer error=\"insufficient_scope\", error_description=\"the {scope} scope is required\", scope=\"{scope}\""
            )],
        ),
        Refusal::Internal(detail) => {
            tracing::error!(error = %detail, "issuer resource failure");
            return None;
        }
    })
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parsing() {
        let mut h = HeaderMap::new();
        let parsed = |h: &HeaderMap| authorization(h).ok().map(|(s, t)| (s == Scheme::Dpop, t.to_owned()));
        assert_eq!(parsed(&h), None);
        assert!(matches!(authorization(&h), Err(Refusal::NoToken)));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(parsed(&h), Some((false, "abc".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("DPoP abc"));
        assert_eq!(parsed(&h), Some((true, "abc".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(authorization(&h), Err(Refusal::NoToken)));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(matches!(authorization(&h), Err(Refusal::InvalidToken(_))));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(matches!(authorization(&h), Err(Refusal::InvalidToken(_))));
    }
}
