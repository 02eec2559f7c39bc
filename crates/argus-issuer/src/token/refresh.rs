//! The refresh_token grant (RFC 6749 §6, RFC 9700 §4.14.2, RFC 9449 §5): rotation, reuse detection that ends that
//! family only, the concurrency leeway, idle and absolute lifetimes, the DPoP key of a public client's family, and
//! the resource (RFC 8707) of each token: one of the family's grant, never another.

use std::time::Duration;

use argus_model::{EventKind, Principal, RefreshReuse, Timestamp};
use argus_oauth::{
    GrantType, OAuthError, RefreshCheck, RefreshToken, RotateOutcome, StorageError, TokenSubject, check_refresh_grant,
    live_accesses, narrow_scope, new_refresh_token, refresh_expiry, refresh_token_key, rotated_check,
};

use super::{Fail, GrantRequest, TokenResponse, check_user_enabled};
use crate::state::Issuer;

const INVALID: OAuthError = OAuthError::invalid_grant("the refresh token is invalid");

pub(super) async fn refresh_grant(g: &GrantRequest<'_>) -> Result<TokenResponse, Fail> {
    let (s, client, params) = (g.s, g.client, g.params);
    let presented = params.get("refresh_token").ok_or(OAuthError::invalid_request("refresh_token is required"))?;

    let now = s.now();
    let old = s.store.refresh_token(&refresh_token_key(presented)).await?.ok_or(INVALID)?;
    let principal =
        Principal { sub: Some(old.sub.clone()), sid: old.sid.clone(), device_id: old.device.clone(), ..g.principal() };
    match check_refresh_grant(&old, &client.client_id, g.jkt(), now, leeway(s))? {
        RefreshCheck::Rotatable => {}
        RefreshCheck::Replayed => {
            revoke_reused_family(s, &old.family_id, &principal, now).await?;
            return Err(INVALID.into());
        }
        RefreshCheck::ConcurrentlyRotated => {
            tracing::info!(family = %old.family_id, "a just-rotated refresh token came back within the leeway");
            return Err(INVALID.into());
        }
    }
    let scope = narrow_scope(&old.scope, params.get("scope"))?;
    let audience = s.resources.token_audience(&old.resources, &g.resources())?;
    check_user_enabled(s, &old.sub).await?;
    let who = TokenSubject {
        sub: &old.sub,
        client_id: &client.client_id,
        scope: &scope,
        sid: old.sid.as_deref(),
        // The sign-in the family came from: a refresh is no new authentication (RFC 9470 §4).
        auth_time: old.auth_time,
        acr: old.acr.as_deref(),
        family: Some(&old.family_id),
        device: old.device.as_deref(),
    };
    let amr = crate::passkey::amr_of_sign_in(s, old.sid.as_deref(), old.auth_time, old.acr.as_deref()).await?;
    let (access_token, access) = g.mint_access_with_amr(who, amr, &audience, now)?;
    let (refresh_token, token_hash) = new_refresh_token();
    let idle = Duration::from_secs(s.config.refresh_token_idle_ttl_secs);
    let next = RefreshToken {
        token_hash,
        created_at: now,
        expires_at: refresh_expiry(now, idle, old.family_expires_at),
        consumed_at: None,
        family_revoked_at: None,
        access: access.clone(),
        // Same family, same (unnarrowed) scope and resources, same key and the family's absolute end: rotation never
        // extends or widens a grant.
        ..old.clone()
    };
    if s.store.rotate_refresh(&old.token_hash, now, &next).await? == RotateOutcome::NotRotatable {
        lost_rotation_race(s, &old, &principal, now).await?;
        return Err(INVALID.into());
    }
    if let Some(sid) = &old.sid {
        // The family's sign-in session was used, for the account page's "last used".
        s.touch_session(sid).await;
    }
    s.touch_grant(&old.sub, &client.client_id).await;
    g.emit_issued(principal, GrantType::RefreshToken, &scope, Some(&old.family_id), &access);
    Ok(g.response(access_token, Some(refresh_token), None, &scope))
}

fn leeway(s: &Issuer) -> Duration {
    Duration::from_secs(s.config.refresh_reuse_leeway_secs)
}

/// Between our check and our rotation, another request rotated the same token (or the family was revoked). Two
/// holders of one token at the same instant is what the leeway is for; outside it, it is a replay.
async fn lost_rotation_race(
    s: &Issuer,
    old: &RefreshToken,
    principal: &Principal,
    now: Timestamp,
) -> Result<(), StorageError> {
    let Some(again) = s.store.refresh_token(&old.token_hash).await? else {
        return Ok(());
    };
    if again.family_revoked_at.is_some() {
        return Ok(());
    }
    match again.consumed_at.map(|at| rotated_check(at, now, leeway(s))) {
        Some(RefreshCheck::Replayed) => revoke_reused_family(s, &old.family_id, principal, now).await,
        _ => {
            tracing::info!(family = %old.family_id, "two concurrent refreshes of one token; the second is refused");
            Ok(())
        }
    }
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
