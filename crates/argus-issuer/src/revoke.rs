//! `POST /revoke` (RFC 7009): every token kind (access tokens of every grant, refresh tokens), every client
//! authentication method.

use argus_jose::verify_access_token;
use argus_model::Principal;
use argus_oauth::{ClientRegistration, live_accesses, refresh_token_key, token_revocation};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::client_auth::authenticated_client;
use crate::events::Caller;
use crate::state::{Issuer, Shared};
use crate::token::{Fail, error_response, no_store, read_form};

/// `POST /revoke`. A refresh token revokes its whole family with its access tokens; an access token is revoked at
/// every gate through the control channel. An unknown, expired or already revoked token, or a token of another
/// client, gets the same 200 and changes nothing (RFC 7009 §2.2).
pub(crate) async fn revoke(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    match run(&s, &caller, &headers, &body).await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(f) => error_response(f),
    }
}

async fn run(s: &Issuer, caller: &Caller, headers: &HeaderMap, body: &[u8]) -> Result<(), Fail> {
    let params = read_form(headers, body)?;
    let client = authenticated_client(s, headers, &params, "/revoke").await?;
    let token = params.get("token").ok_or(argus_oauth::OAuthError::invalid_request("token is required"))?.to_owned();
    let principal = Principal { client_id: Some(client.client_id.clone()), ..caller.principal() };
    let mut revoked = false;
    for kind in lookup_order(&params, &token) {
        revoked = match kind {
            TokenKind::Access => revoke_access(s, &client, &token, &principal).await?,
            TokenKind::Refresh => revoke_refresh(s, &client, &token, &principal).await?,
        };
        if revoked {
            break;
        }
    }
    if !revoked {
        tracing::debug!(client_id = %client.client_id, "revocation of an unknown or foreign token ignored");
    }
    Ok(())
}

/// The kinds of token this issuer hands out that can be revoked or introspected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

/// In which order to look a presented token up. The hint only orders the lookups (RFC 7009 §2.1, RFC 7662 §2.1);
/// an unknown hint is ignored, and without one a JWT is looked at as an access token first.
pub(crate) fn lookup_order(params: &argus_oauth::Params, token: &str) -> [TokenKind; 2] {
    let access_first = match params.get("token_type_hint") {
        Some("access_token") => true,
        Some("refresh_token") => false,
        _ => token.matches('.').count() == 2,
    };
    if access_first { [TokenKind::Access, TokenKind::Refresh] } else { [TokenKind::Refresh, TokenKind::Access] }
}

/// An access token signed by us, still live and issued to this client: revoke its `jti` everywhere.
async fn revoke_access(
    s: &Issuer,
    client: &ClientRegistration,
    token: &str,
    principal: &Principal,
) -> Result<bool, Fail> {
    let now = s.now();
    let Ok(claims) = verify_access_token(token, &s.keys.jwks(), &s.issuer_url, &s.audience, now.as_secs()) else {
        return Ok(false);
    };
    if claims.client_id != client.client_id {
        return Ok(false);
    }
    let Some(revocation) = token_revocation(&claims.jti, argus_model::Timestamp::from_secs(claims.exp), now) else {
        return Ok(false);
    };
    let principal = Principal {
        sub: Some(claims.sub.clone()),
        sid: claims.sid.clone(),
        jti: Some(claims.jti.clone()),
        ..principal.clone()
    };
    s.publish_revocations(vec![revocation], &principal, "client").await;
    Ok(true)
}

/// A refresh token of this client: revoke its family and the family's live access tokens.
async fn revoke_refresh(
    s: &Issuer,
    client: &ClientRegistration,
    token: &str,
    principal: &Principal,
) -> Result<bool, Fail> {
    let Some(stored) = s.store.refresh_token(&refresh_token_key(token)).await? else {
        return Ok(false);
    };
    if stored.client_id != client.client_id || stored.family_revoked_at.is_some() {
        return Ok(false);
    }
    let now = s.now();
    let accesses = s.store.revoke_family(&stored.family_id, now).await?;
    let principal = Principal { sub: Some(stored.sub.clone()), sid: stored.sid.clone(), ..principal.clone() };
    s.publish_revocations(live_accesses(&accesses, now), &principal, "client").await;
    Ok(true)
}
