//! `POST /introspect` (RFC 7662): for authenticated confidential clients only. Who may see which token is
//! `argus_oauth::may_introspect`: its own tokens, or any token for a resource server (scope `argus:introspect`).

use argus_jose::{AccessClaims, verify_access_token};
use argus_oauth::{
    Introspection, OAuthError, is_user_token, may_introspect, refresh_token_is_active, refresh_token_key,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::client_auth::authenticated_client;
use crate::revoke::{TokenKind, lookup_order};
use crate::state::{Issuer, Shared};
use crate::token::{Fail, error_response, no_store, read_form};

/// `POST /introspect`: 200 with the token's state — `{"active": false}` for anything unknown, expired, revoked,
/// of a disabled client or user, or not the caller's to see — or an RFC 6749 §5.2 error for a bad request.
pub(crate) async fn introspect(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&s, &headers, &body).await {
        Ok(answer) => (StatusCode::OK, no_store(), Json(answer)).into_response(),
        Err(f) => error_response(f),
    }
}

async fn run(s: &Issuer, headers: &HeaderMap, body: &[u8]) -> Result<Introspection, Fail> {
    let params = read_form(headers, body)?;
    let caller = authenticated_client(s, headers, &params, "/introspect").await?;
    if caller.public {
        return Err(OAuthError::invalid_client("introspection needs an authenticated confidential client").into());
    }
    let token = params.get("token").ok_or(OAuthError::invalid_request("token is required"))?;
    for kind in lookup_order(&params, token) {
        let found = match kind {
            TokenKind::Access => access_token(s, token).await?,
            TokenKind::Refresh => refresh_token(s, token).await?,
        };
        if let Some(answer) = found {
            let visible = answer.client_id.as_deref().is_some_and(|c| may_introspect(&caller, c));
            return Ok(if answer.active && visible { answer } else { Introspection::inactive() });
        }
    }
    Ok(Introspection::inactive())
}

/// `None` if `token` is not one of our access tokens at all (it may be a refresh token); otherwise its state.
async fn access_token(s: &Issuer, token: &str) -> Result<Option<Introspection>, Fail> {
    let now = s.now();
    let Ok(claims) = verify_access_token(token, &s.keys.jwks(), &s.issuer_url, &s.audience, now.as_secs()) else {
        return Ok(None);
    };
    let live = claims.exp > now.as_secs() && !revoked(s, &claims).await? && holders_enabled(s, &claims).await?;
    Ok(Some(if live { Introspection::of_access_token(&claims) } else { Introspection::inactive() }))
}

async fn revoked(s: &Issuer, claims: &AccessClaims) -> Result<bool, Fail> {
    let keys = claims.revocation_keys();
    Ok(s.store.active_revocations(s.now()).await?.iter().any(|r| r.covers(&keys)))
}

/// The token's client, and its user if it has one, still exist and are enabled.
async fn holders_enabled(s: &Issuer, claims: &AccessClaims) -> Result<bool, Fail> {
    if !client_enabled(s, &claims.client_id).await? {
        return Ok(false);
    }
    if !is_user_token(claims) {
        return Ok(true);
    }
    Ok(s.user_enabled(&claims.sub).await?)
}

async fn client_enabled(s: &Issuer, client_id: &str) -> Result<bool, Fail> {
    Ok(s.client(client_id).await?.is_some_and(|c| !c.disabled))
}

/// `None` if `token` is not one of our refresh tokens; otherwise its state.
async fn refresh_token(s: &Issuer, token: &str) -> Result<Option<Introspection>, Fail> {
    let Some(stored) = s.store.refresh_token(&refresh_token_key(token)).await? else {
        return Ok(None);
    };
    let live = refresh_token_is_active(&stored, s.now())
        && client_enabled(s, &stored.client_id).await?
        && s.user_enabled(&stored.sub).await?;
    Ok(Some(if live { Introspection::of_refresh_token(&stored, &s.issuer_url) } else { Introspection::inactive() }))
}
