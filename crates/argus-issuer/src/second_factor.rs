//! The second step of a sign-in (`POST /login/totp`): after a correct password, a user with a confirmed TOTP
//! credential is asked for a code from their app, or one of their recovery codes, before any session is made. A user
//! with a passkey is offered it on the same page (the ceremony is `crate::passkey`'s, bound and counted alike). The
//! step is bound like the login form (the pending request's handle, its CSRF token and the browser cookie) and to
//! the user whose password was accepted for that request; wrong codes are counted, and after
//! [`MAX_SECOND_FACTOR_FAILURES`] the request ends and the sign-in starts again at the app.

use argus_model::{LoginFailure, LoginOutcome};
use argus_oauth::{
    AuthLevel, MAX_SECOND_FACTOR_FAILURES, Params, StorageError, TotpCheck, TotpCredential, UserRecord, check_totp,
    hash_secret, normalize_recovery_code,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::events::Caller;
use crate::flow::{self, Bound, FORM_INVALID, SignInAttempt};
use crate::pages::{self, CODE_FAILED, SIGN_IN_THROTTLED, SecondFactorPage};
use crate::state::{Issuer, Shared};

/// The best level `sub` can sign in at: with a confirmed TOTP credential or a passkey, the second factor; else the
/// password.
pub(crate) async fn best_level(s: &Issuer, sub: &str) -> Result<AuthLevel, StorageError> {
    let factors = factors(s, sub).await?;
    Ok(if factors.totp || factors.passkey { AuthLevel::Mfa } else { AuthLevel::Password })
}

/// The second factors a user has.
struct Factors {
    totp: bool,
    passkey: bool,
}

async fn factors(s: &Issuer, sub: &str) -> Result<Factors, StorageError> {
    Ok(Factors { totp: confirmed_totp(s, sub).await?.is_some(), passkey: crate::passkey::has_passkey(s, sub).await? })
}

async fn confirmed_totp(s: &Issuer, sub: &str) -> Result<Option<TotpCredential>, StorageError> {
    Ok(s.store.totp_credential(sub).await?.filter(|c| c.confirmed_at.is_some()))
}

/// After a correct password: a user with a second factor is asked for it (nothing is signed in yet); anyone else is
/// signed in at the password level.
pub(crate) async fn after_password(
    s: &Issuer,
    headers: &HeaderMap,
    bound: &Bound,
    user: UserRecord,
    attempt: &SignInAttempt<'_>,
) -> Result<Response, StorageError> {
    let factors = factors(s, &user.sub).await?;
    if !(factors.totp || factors.passkey) {
        flow::emit_login(s, attempt, Some(&user.sub), LoginOutcome::Success).await?;
        return flow::signed_in_by(s, attempt.caller, headers, bound, user, AuthLevel::Password).await;
    }
    // The wait lives as long as the request it belongs to.
    s.store.insert_second_factor_wait(&bound.pending.handle_hash, &user.sub, bound.pending.expires_at).await?;
    Ok(page(bound, &factors, None))
}

/// The second-factor page for the user `sub` the request waits for, offering the factors they have.
pub(crate) async fn page_for(
    s: &Issuer,
    bound: &Bound,
    sub: &str,
    error: Option<&str>,
) -> Result<Response, StorageError> {
    Ok(page(bound, &factors(s, sub).await?, error))
}

fn page(bound: &Bound, factors: &Factors, error: Option<&str>) -> Response {
    let page = SecondFactorPage {
        client_name: &bound.client.name,
        request: &bound.request,
        csrf: &bound.csrf,
        error,
        totp: factors.totp,
        passkey: factors.passkey,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    if factors.passkey { crate::passkey::html_with_script(status, &page) } else { pages::html(status, &page) }
}

/// `POST /login/totp`.
pub(crate) async fn second_factor(
    State(s): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let bound = match flow::bound_pending(&s, &headers, &form).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match run(&s, &caller, &headers, &bound, form.get("code").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn run(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    bound: &Bound,
    code: &str,
) -> Result<Response, StorageError> {
    let handle = &bound.pending.handle_hash;
    let invalid = || pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID);
    // Only a request whose password was accepted waits here, and only for that user.
    let Some(sub) = s.store.second_factor_wait(handle, s.now()).await? else {
        return Ok(invalid());
    };
    let user = s.store.user_by_sub(&sub).await?.filter(|u| !u.disabled);
    let (Some(user), Some(cred)) = (user, confirmed_totp(s, &sub).await?) else {
        s.store.end_second_factor_wait(handle).await?;
        return Ok(invalid());
    };
    let attempt = SignInAttempt { caller, client_id: &bound.client.client_id, username: &user.username };
    if let Some(page) = throttled(s, &attempt, bound, &sub).await? {
        return Ok(page);
    }
    if second_factor_accepted(s, &cred, code).await? {
        s.store.end_second_factor_wait(handle).await?;
        flow::emit_login(s, &attempt, Some(&sub), LoginOutcome::Success).await?;
        return flow::signed_in_by(s, caller, headers, bound, user, AuthLevel::Mfa).await;
    }
    refused(s, &attempt, bound, &sub, CODE_FAILED).await
}

const TOO_MANY: &str = "Too many failed attempts. Go back to the app and sign in again.";

/// Second factors are throttled with the password: a wrong one counts as a failed sign-in of the pair and the
/// address. `Some(page)` (429, the factor not checked) while the pair or the address is locked.
pub(crate) async fn throttled(
    s: &Issuer,
    attempt: &SignInAttempt<'_>,
    bound: &Bound,
    sub: &str,
) -> Result<Option<Response>, StorageError> {
    let Some(retry_after) = flow::throttled(s, attempt.caller, attempt.username).await? else {
        return Ok(None);
    };
    flow::emit_login(s, attempt, Some(sub), LoginOutcome::Failure(LoginFailure::Throttled)).await?;
    Ok(Some(flow::retry_later(page_for(s, bound, sub, Some(SIGN_IN_THROTTLED)).await?, retry_after)))
}

/// A second factor that was not accepted (a wrong code, a refused passkey): counted against the waiting sign-in,
/// which ends after [`MAX_SECOND_FACTOR_FAILURES`] — the next attempt starts at the app, with the password.
pub(crate) async fn refused(
    s: &Issuer,
    attempt: &SignInAttempt<'_>,
    bound: &Bound,
    sub: &str,
    message: &str,
) -> Result<Response, StorageError> {
    let handle = &bound.pending.handle_hash;
    flow::emit_login(s, attempt, Some(sub), LoginOutcome::Failure(LoginFailure::SecondFactor)).await?;
    let failures = s.store.fail_second_factor(handle).await?;
    if failures < MAX_SECOND_FACTOR_FAILURES {
        return page_for(s, bound, sub, Some(message)).await;
    }
    s.store.end_second_factor_wait(handle).await?;
    s.store.take_pending(handle, s.now()).await?;
    tracing::warn!(sub = %sub, "too many failed second factors; the sign-in request ended");
    Ok(pages::error_page(StatusCode::TOO_MANY_REQUESTS, TOO_MANY))
}

/// Whether `code` is a TOTP code of a step not used before, or an unused recovery code of the user; either is used
/// up by this call. The conditional writes of the store decide, so two requests with one code cannot both pass.
async fn second_factor_accepted(s: &Issuer, cred: &TotpCredential, code: &str) -> Result<bool, StorageError> {
    let now = s.now();
    if let Some(recovery) = normalize_recovery_code(code) {
        return s.store.use_recovery_code(&cred.sub, &hash_secret(&recovery), now).await;
    }
    match check_totp(&cred.secret, code, now, cred.last_step) {
        TotpCheck::Accepted { step } => s.store.use_totp_step(&cred.sub, step).await,
        TotpCheck::Replayed | TotpCheck::Wrong => Ok(false),
    }
}
