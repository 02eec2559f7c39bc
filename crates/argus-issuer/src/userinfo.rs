//! `GET|POST /userinfo` (OIDC Core §5.3), protected by a Bearer access token (RFC 6750).

use argus_jose::{AccessClaims, verify_access_token};
use argus_model::Revocation;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state::{Issuer, Shared};

#[derive(Serialize)]
struct UserInfo {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
}

/// Why userinfo refused, as RFC 6750 §3 answers it.
enum Refusal {
    /// No Bearer token at all: a bare challenge, no error code (RFC 6750 §3.1).
    NoToken,
    InvalidToken(&'static str),
    InsufficientScope,
    Internal(String),
}

/// `GET|POST /userinfo`.
pub(crate) async fn userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match run(&s, &headers).await {
        Ok(info) => (no_store(), Json(info)).into_response(),
        Err(r) => refusal(r),
    }
}

async fn run(s: &Issuer, headers: &HeaderMap) -> Result<UserInfo, Refusal> {
    let token = bearer(headers).ok_or(Refusal::NoToken)?;
    let now = s.now();
    let claims = verify_access_token(token, &s.keys.jwks(), &s.issuer_url, &s.audience, now.as_secs())
        .map_err(|_| Refusal::InvalidToken("the access token is invalid"))?;
    let revocations = s.store.active_revocations(now).await.map_err(|e| Refusal::Internal(e.to_string()))?;
    if is_revoked(&claims, &revocations) {
        return Err(Refusal::InvalidToken("the access token was revoked"));
    }
    if !claims.has_scope("openid") {
        return Err(Refusal::InsufficientScope);
    }
    let user = s.store.user_by_sub(&claims.sub).await.map_err(|e| Refusal::Internal(e.to_string()))?;
    let user = user.filter(|u| !u.disabled).ok_or(Refusal::InvalidToken("the access token is invalid"))?;
    let preferred_username = claims.has_scope("profile").then_some(user.username);
    Ok(UserInfo { sub: user.sub, preferred_username })
}

fn is_revoked(claims: &AccessClaims, revocations: &[Revocation]) -> bool {
    let keys = claims.revocation_keys();
    revocations.iter().any(|r| r.covers(&keys))
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn refusal(r: Refusal) -> Response {
    let (status, challenge) = match r {
        Refusal::NoToken => (StatusCode::UNAUTHORIZED, "Bearer".to_owned()),
        Refusal::InvalidToken(why) => {
            (StatusCode::UNAUTHORIZED, format!("Bearer error=\"invalid_token\", error_description=\"{why}\""))
        }
        Refusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "Bearer error=\"insufficient_scope\", error_description=\"the openid scope is required\", scope=\"openid\""
                .to_owned(),
        ),
        Refusal::Internal(detail) => {
            tracing::error!(error = %detail, "userinfo failure");
            return (StatusCode::INTERNAL_SERVER_ERROR, no_store()).into_response();
        }
    };
    let mut response = (status, no_store()).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
