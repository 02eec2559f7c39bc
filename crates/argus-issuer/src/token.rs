//! `POST /token`: the authorization_code and refresh_token grants (RFC 6749 §4.1.3, §6; RFC 7636; RFC 9700 §4.14).

use std::time::Duration;

use argus_jose::ACCESS_TOKEN_TYP;
use argus_model::id::{new_id, random_secret};
use argus_model::{EventKind, Principal, RefreshReuse, Timestamp, TokenIssued};
use argus_oauth::{
    AuthorizationCode, ClientRegistration, CodeCheck, ErrorCode, IssuedAccess, OAuthError, Params, RedeemOutcome,
    RefreshCheck, RefreshToken, RotateOutcome, Scopes, StorageError, TokenSubject, UserRecord, access_claims,
    check_code_grant, check_refresh_grant, hash_secret, id_token_claims, live_accesses, narrow_scope, token_revocation,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::events::Caller;
use crate::state::{Issuer, Shared};

/// Why a token request failed: a standard error for the client, or an internal failure (logged, never detailed).
pub(crate) enum Fail {
    OAuth(OAuthError),
    Internal(String),
}

impl From<OAuthError> for Fail {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<argus_jose::KeyError> for Fail {
    fn from(e: argus_jose::KeyError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The JSON error body of RFC 6749 §5.2.
#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

/// An RFC 6749 §5.2 error answer: 401 with `WWW-Authenticate` for `invalid_client`, 400 otherwise, 500 for
/// internal failures.
pub(crate) fn error_response(fail: Fail) -> Response {
    let error = match fail {
        Fail::OAuth(e) => e,
        Fail::Internal(detail) => {
            tracing::error!(error = %detail, "token endpoint failure");
            OAuthError::new(ErrorCode::ServerError, "the server could not complete the request")
        }
    };
    let status = match error.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (
        status,
        no_store(),
        axum::Json(ErrorBody { error: error.code.as_str(), error_description: error.description }),
    )
        .into_response();
    if error.code == ErrorCode::InvalidClient {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"argus\""));
    }
    response
}

/// Token answers must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The successful answer (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    scope: String,
}

/// `POST /token`.
pub(crate) async fn token(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    match run(&s, &caller, &headers, &body).await {
        Ok(r) => (StatusCode::OK, no_store(), axum::Json(r)).into_response(),
        Err(f) => error_response(f),
    }
}

async fn run(s: &Issuer, caller: &Caller, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, Fail> {
    let params = read_form(headers, body)?;
    let client = authenticate_client(s, headers, &params).await?;
    match params.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is required").into()),
        Some("authorization_code") => code_grant(s, caller, &client, &params).await,
        Some("refresh_token") => refresh_grant(s, caller, &client, &params).await,
        Some(_) => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type").into()),
    }
}

/// The parameters of a form POST: the right content type and no repeated parameter (RFC 6749 §3.2).
pub(crate) fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let params = Params::parse(body);
    if params.first_repeated().is_some() {
        return Err(OAuthError::invalid_request("a parameter is repeated"));
    }
    Ok(params)
}

/// Identify the client. Only public clients exist in this version: they send `client_id` and no credentials.
pub(crate) async fn authenticate_client(
    s: &Issuer,
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientRegistration, Fail> {
    if headers.contains_key(header::AUTHORIZATION) || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_client("only token_endpoint_auth_method none is supported").into());
    }
    let client_id = params.get("client_id").ok_or(OAuthError::invalid_client("client_id is required"))?;
    let client = s.store.client(client_id).await?.ok_or(OAuthError::invalid_client("unknown client"))?;
    if !client.public {
        return Err(OAuthError::invalid_client("this client cannot authenticate at this issuer").into());
    }
    Ok(client)
}

async fn code_grant(
    s: &Issuer,
    caller: &Caller,
    client: &ClientRegistration,
    params: &Params,
) -> Result<TokenResponse, Fail> {
    let code = params.get("code").ok_or(OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params.get("redirect_uri").ok_or(OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = params.get("code_verifier").ok_or(OAuthError::invalid_request("code_verifier is required"))?;
    const INVALID: OAuthError = OAuthError::invalid_grant("the authorization code is invalid");

    let now = s.now();
    let stored = s.store.code(&hash_secret(code)).await?.ok_or(INVALID)?;
    let principal = Principal {
        sub: Some(stored.sub.clone()),
        client_id: Some(client.client_id.clone()),
        sid: Some(stored.sid.clone()),
        ..caller.principal()
    };
    if check_code_grant(&stored, &client.client_id, redirect_uri, verifier, now)? == CodeCheck::Replayed {
        revoke_code_issue(s, &stored, &principal, now).await?;
        return Err(INVALID.into());
    }
    let user = enabled_user(s, &stored.sub).await?;
    let scope = Scopes::parse(&stored.scope).unwrap_or_default();
    let who = TokenSubject {
        sub: &user.sub,
        client_id: &client.client_id,
        scope: &scope,
        sid: Some(&stored.sid),
        auth_time: Some(stored.auth_time),
    };
    let (access_token, access) = mint_access(s, who, now)?;
    let refresh_token = random_secret(32);
    let family_id = new_id();
    let first = RefreshToken {
        token_hash: hash_secret(&refresh_token),
        family_id: family_id.clone(),
        client_id: client.client_id.clone(),
        sub: user.sub.clone(),
        sid: Some(stored.sid.clone()),
        scope: scope.to_string(),
        auth_time: Some(stored.auth_time),
        created_at: now,
        expires_at: now.plus(Duration::from_secs(s.config.refresh_token_ttl_secs)),
        consumed_at: None,
        family_revoked_at: None,
        access: access.clone(),
    };
    if s.store.redeem_code(&stored.code_hash, now, &first).await? == RedeemOutcome::NotRedeemable {
        // Another request redeemed it between our check and now: the same as a replay.
        if let Some(again) = s.store.code(&stored.code_hash).await? {
            revoke_code_issue(s, &again, &principal, now).await?;
        }
        return Err(INVALID.into());
    }
    let id_token = if scope.contains("openid") {
        let claims = id_token_claims(
            &s.issuer_url,
            who,
            stored.nonce.as_deref(),
            &access_token,
            now,
            Duration::from_secs(s.config.id_token_ttl_secs),
        );
        Some(s.keys.active.sign("JWT", &claims)?)
    } else {
        None
    };
    emit_issued(s, principal, "authorization_code", &scope, &family_id, &access);
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: s.config.access_token_ttl_secs,
        refresh_token,
        id_token,
        scope: scope.to_string(),
    })
}

/// A code came back after it was redeemed: revoke everything it issued — its refresh family and every access
/// token of that family (RFC 6749 §4.1.2, RFC 9700 §4.5).
async fn revoke_code_issue(
    s: &Issuer,
    code: &AuthorizationCode,
    principal: &Principal,
    now: Timestamp,
) -> Result<(), StorageError> {
    let revocations = match (&code.family_id, &code.access) {
        (Some(family), _) => live_accesses(&s.store.revoke_family(family, now).await?, now),
        (None, Some(access)) => token_revocation(&access.jti, access.expires_at, now).into_iter().collect(),
        (None, None) => Vec::new(),
    };
    tracing::warn!(client_id = %code.client_id, "authorization code replayed; its tokens are revoked");
    s.publish_revocations(revocations, principal, "issuer").await;
    Ok(())
}

async fn refresh_grant(
    s: &Issuer,
    caller: &Caller,
    client: &ClientRegistration,
    params: &Params,
) -> Result<TokenResponse, Fail> {
    let presented = params.get("refresh_token").ok_or(OAuthError::invalid_request("refresh_token is required"))?;
    const INVALID: OAuthError = OAuthError::invalid_grant("the refresh token is invalid");

    let now = s.now();
    let old = s.store.refresh_token(&hash_secret(presented)).await?.ok_or(INVALID)?;
    let principal = Principal {
        sub: Some(old.sub.clone()),
        client_id: Some(client.client_id.clone()),
        sid: old.sid.clone(),
        ..caller.principal()
    };
    if check_refresh_grant(&old, &client.client_id, now)? == RefreshCheck::Replayed {
        revoke_reused_family(s, &old.family_id, &principal, now).await?;
        return Err(INVALID.into());
    }
    let scope = narrow_scope(&old.scope, params.get("scope"))?;
    let user = enabled_user(s, &old.sub).await?;
    let who = TokenSubject {
        sub: &user.sub,
        client_id: &client.client_id,
        scope: &scope,
        sid: old.sid.as_deref(),
        auth_time: old.auth_time,
    };
    let (access_token, access) = mint_access(s, who, now)?;
    let refresh_token = random_secret(32);
    let next = RefreshToken {
        token_hash: hash_secret(&refresh_token),
        created_at: now,
        consumed_at: None,
        family_revoked_at: None,
        access: access.clone(),
        // Same family, same (unnarrowed) scope and the family's absolute expiry: rotation never extends a grant.
        ..old.clone()
    };
    if s.store.rotate_refresh(&old.token_hash, now, &next).await? == RotateOutcome::NotRotatable {
        // Consumed by a concurrent request since our check: two holders of one token, the same as a replay.
        revoke_reused_family(s, &old.family_id, &principal, now).await?;
        return Err(INVALID.into());
    }
    emit_issued(s, principal, "refresh_token", &scope, &old.family_id, &access);
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: s.config.access_token_ttl_secs,
        refresh_token,
        id_token: None,
        scope: scope.to_string(),
    })
}

/// A rotated refresh token came back: someone else has a copy. Revoke that family (and only that family) with
/// its live access tokens, and tell watch.
async fn revoke_reused_family(
    s: &Issuer,
    family_id: &str,
    principal: &Principal,
    now: Timestamp,
) -> Result<(), StorageError> {
    let accesses = s.store.revoke_family(family_id, now).await?;
    tracing::warn!(family = %family_id, "refresh token reused; its family is revoked");
    s.emit(principal.clone(), EventKind::RefreshReuse(RefreshReuse { family: family_id.to_owned() }));
    s.publish_revocations(live_accesses(&accesses, now), principal, "issuer").await;
    Ok(())
}

/// The user a grant is for, if it still exists and is enabled.
async fn enabled_user(s: &Issuer, sub: &str) -> Result<UserRecord, Fail> {
    let user = s.store.user_by_sub(sub).await?.filter(|u| !u.disabled);
    Ok(user.ok_or(OAuthError::invalid_grant("the grant's user is no longer active"))?)
}

/// Sign an RFC 9068 access token.
fn mint_access(s: &Issuer, who: TokenSubject<'_>, now: Timestamp) -> Result<(String, IssuedAccess), Fail> {
    let jti = new_id();
    let claims = access_claims(&s.issuer_url, &s.audience, who, &jti, now, s.access_ttl());
    let token = s.keys.active.sign(ACCESS_TOKEN_TYP, &claims)?;
    let expires_at = Timestamp::from_secs(claims.exp);
    Ok((token, IssuedAccess { jti, expires_at }))
}

fn emit_issued(s: &Issuer, principal: Principal, grant: &str, scope: &Scopes, family: &str, access: &IssuedAccess) {
    let principal = Principal { jti: Some(access.jti.clone()), ..principal };
    s.emit(
        principal,
        EventKind::TokenIssued(TokenIssued {
            grant_type: grant.to_owned(),
            scope: scope.to_string(),
            family: Some(family.to_owned()),
            expires_at: access.expires_at,
        }),
    );
}
