//! The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9449 §10, RFC 8707 §2.2): a single-use code,
//! PKCE, the exact redirect URI, the DPoP key the code was bound to, and the resource the access token is for.

use std::time::Duration;

use argus_model::id::new_id;
use argus_model::{Principal, Timestamp};
use argus_oauth::{
    AuthorizationCode, CodeCheck, CodePresentation, GrantType, OAuthError, RedeemOutcome, RefreshToken, Scopes,
    StorageError, TokenSubject, check_code_grant, hash_secret, id_token_claims, live_accesses, new_refresh_token,
    refresh_expiry, token_revocation,
};

use super::{Fail, GrantRequest, TokenResponse, check_user_enabled};
use crate::state::Issuer;

const INVALID: OAuthError = OAuthError::invalid_grant("the authorization code is invalid");

pub(super) async fn code_grant(g: &GrantRequest<'_>) -> Result<TokenResponse, Fail> {
    let (s, client, params) = (g.s, g.client, g.params);
    let code = params.get("code").ok_or(OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params.get("redirect_uri").ok_or(OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = params.get("code_verifier").ok_or(OAuthError::invalid_request("code_verifier is required"))?;

    let now = s.now();
    let stored = s.store.code(&hash_secret(code)).await?.ok_or(INVALID)?;
    let principal = Principal { sub: Some(stored.sub.clone()), sid: Some(stored.sid.clone()), ..g.principal() };
    let presented =
        CodePresentation { client_id: &client.client_id, redirect_uri, code_verifier: verifier, dpop_jkt: g.jkt() };
    if check_code_grant(&stored, &presented, now)? == CodeCheck::Replayed {
        revoke_code_issue(s, &stored, &principal, now).await?;
        return Err(INVALID.into());
    }
    check_user_enabled(s, &stored.sub).await?;
    // Before anything is written: a wrong resource leaves the code redeemable, as a wrong verifier does.
    let audience = s.resources.token_audience(&stored.resources, &g.resources())?;
    let scope = Scopes::parse(&stored.scope).unwrap_or_default();
    // A refresh family only for clients that may refresh.
    let family_id = client.allows_grant(GrantType::RefreshToken).then(new_id);
    // The device the user signed in on (`did`), so revoking the device reaches this token at the gates.
    let device = s.store.session_device(&stored.sid).await?;
    let principal = Principal { device_id: device.clone(), ..principal };
    let who = TokenSubject {
        sub: &stored.sub,
        client_id: &client.client_id,
        scope: &scope,
        sid: Some(&stored.sid),
        auth_time: Some(stored.auth_time),
        acr: Some(&stored.acr),
        family: family_id.as_deref(),
        device: device.as_deref(),
    };
    // A sign-in completed with a passkey states its own methods (RFC 8176), not the level's.
    let amr = crate::passkey::amr_of_sign_in(s, Some(&stored.sid), Some(stored.auth_time), Some(&stored.acr)).await?;
    let (access_token, access) = g.mint_access_with_amr(who, amr.clone(), &audience, now)?;
    let refresh = family_id.as_deref().map(|family| first_refresh(g, &stored, &scope, family, &access, now));
    let first = refresh.as_ref().map(|(token, _)| token);
    if s.store.redeem_code(&stored.code_hash, now, &access, first).await? == RedeemOutcome::NotRedeemable {
        // Another request redeemed it between our check and now: the same as a replay.
        if let Some(again) = s.store.code(&stored.code_hash).await? {
            revoke_code_issue(s, &again, &principal, now).await?;
        }
        return Err(INVALID.into());
    }
    let id_token = if scope.contains("openid") {
        let ttl = Duration::from_secs(s.config.id_token_ttl_secs);
        // `at_hash` depends on the signing key's algorithm: one key for both, whatever the schedule does meanwhile.
        let signer = s.keys.active.signer();
        let claims =
            id_token_claims(&s.issuer_url, who, stored.nonce.as_deref(), &access_token, signer.alg_name(), now, ttl);
        let claims = argus_oauth::IdTokenClaims { amr: amr.or(claims.amr), ..claims };
        Some(signer.sign("JWT", &claims)?)
    } else {
        None
    };
    // The grant's "last used" on the account page.
    s.touch_grant(&stored.sub, &client.client_id).await;
    g.emit_issued(principal, GrantType::AuthorizationCode, &scope, family_id.as_deref(), &access);
    Ok(g.response(access_token, refresh.map(|(_, secret)| secret), id_token, &scope))
}

/// The first refresh token of a new family, and its secret. A public client's family is bound to the DPoP key of
/// this request (RFC 9449 §5): the token alone is worthless to whoever steals it from the app.
fn first_refresh(
    g: &GrantRequest<'_>,
    code: &AuthorizationCode,
    scope: &Scopes,
    family_id: &str,
    access: &argus_oauth::IssuedAccess,
    now: Timestamp,
) -> (RefreshToken, String) {
    let s = g.s;
    let (secret, token_hash) = new_refresh_token();
    let absolute = g.client.refresh_token_ttl(s.config.refresh_token_absolute_ttl_secs);
    let family_expires_at = now.plus(Duration::from_secs(absolute));
    let idle = Duration::from_secs(s.config.refresh_token_idle_ttl_secs);
    let token = RefreshToken {
        token_hash,
        family_id: family_id.to_owned(),
        client_id: g.client.client_id.clone(),
        sub: code.sub.clone(),
        sid: Some(code.sid.clone()),
        scope: scope.to_string(),
        auth_time: Some(code.auth_time),
        created_at: now,
        expires_at: refresh_expiry(now, idle, family_expires_at),
        family_expires_at,
        jkt: if g.client.public { g.jkt().map(str::to_owned) } else { None },
        consumed_at: None,
        family_revoked_at: None,
        device: None,
        acr: Some(code.acr.clone()),
        // The whole grant, not the one resource of this token: a refresh may pick another of them.
        resources: code.resources.clone(),
        access: access.clone(),
    };
    (token, secret)
}

/// A code came back after it was redeemed: revoke everything it issued — its refresh family and every access
/// token of that family, or the one access token it issued (RFC 6749 §4.1.2, RFC 9700 §4.5).
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
