//! `/account/password`: change the password (argon2id, as everywhere), and the "change it first" step of a sign-in
//! after "this wasn't me".
//!
//! - Signed in (`GET`, then `POST` with the session's CSRF token): the current password (checked under the sign-in
//!   throttle: a wrong one counts as a failed sign-in) and the new one twice, at least
//!   [`MIN_PASSWORD_CHARS`](argus_oauth::account::MIN_PASSWORD_CHARS) characters. The user's other sessions end; this
//!   one stays. Apps' tokens are not revoked: the user revokes apps on the account page.
//! - At a sign-in of a user marked by "this wasn't me", after the password and second factor and before any
//!   session exists ([`before_session`], the one hook in `flow.rs`): this page instead of consent or a code, bound to
//!   the pending sign-in (its browser cookie and CSRF token) and to the user by a signed ticket that lasts
//!   [`TICKET_TTL`]. The new password twice (the current one was just checked); then every session of the user
//!   ends and the sign-in goes on as if nothing had happened. The ticket works while the mark is set, so once.
//!
//! Both emit `Account`/`password_changed` (and a notice).

use std::time::Duration;

use argus_model::{AccountActivity, Activity, LoginFailure, LoginOutcome, Principal};
use argus_oauth::account::check_new_password;
use argus_oauth::notice::NoticeBody;
use argus_oauth::{AuthLevel, ConsentGrant, Params, StorageError, UserRecord};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::page::see_other;
use super::shared::{ACCOUNT_CLIENT_ID, ACCOUNT_CLIENT_SCOPE, csrf_for, csrf_ok, link_key, sign, signed_in, signed_ok};
use crate::events::Caller;
use crate::flow::{Bound, FORM_INVALID, SignInAttempt, bound_pending, emit_login, retry_later, throttled};
use crate::pages;
use crate::state::{Issuer, Shared};

/// How long the "change it first" form of a sign-in works.
pub(crate) const TICKET_TTL: Duration = Duration::from_secs(15 * 60);
const TICKET_LABEL: &str = "argus password first v1";

const CURRENT_WRONG: &str = "Your current password is not correct.";

/// The password form. Contract: `<form method="post" action="/account/password">` with hidden inputs (`csrf`; and
/// for the step of a sign-in `request`, `sub`, `level`, `exp`, `ticket`), password inputs `current` (signed in only),
/// `new` and `again`.
#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    username: &'a str,
    forced: bool,
    hidden: Vec<(&'static str, String)>,
    error: Option<&'a str>,
}

/// The one hook of a complete sign-in (password and second factor checked), before its session is made. For the
/// account client, records the user's consent to the account page, so the sign-in goes straight back to it; for a
/// user who must change the password first, answers with that form instead of going on.
pub(crate) async fn before_session(
    s: &Issuer,
    bound: &Bound,
    user: &UserRecord,
    level: AuthLevel,
) -> Result<Option<Response>, StorageError> {
    if bound.pending.client_id == ACCOUNT_CLIENT_ID && s.store.consent(&user.sub, ACCOUNT_CLIENT_ID).await?.is_none() {
        let grant = ConsentGrant {
            sub: user.sub.clone(),
            client_id: ACCOUNT_CLIENT_ID.to_owned(),
            scope: ACCOUNT_CLIENT_SCOPE.to_owned(),
            granted_at: s.now(),
        };
        s.store.record_consent(&grant).await?;
    }
    if !s.store.must_change_password(&user.sub).await? {
        return Ok(None);
    }
    let key = link_key(s).await?;
    Ok(Some(forced_page(&key, s, bound, user, level, None)))
}

fn forced_page(
    key: &[u8],
    s: &Issuer,
    bound: &Bound,
    user: &UserRecord,
    level: AuthLevel,
    error: Option<&str>,
) -> Response {
    let exp = s.now().plus(TICKET_TTL).as_secs().to_string();
    let ticket = sign(key, TICKET_LABEL, &[&user.sub, &bound.pending.handle_hash, level.acr(), &exp]);
    let hidden = vec![
        ("request", bound.request.clone()),
        ("csrf", bound.csrf.clone()),
        ("sub", user.sub.clone()),
        ("level", level.acr().to_owned()),
        ("exp", exp),
        ("ticket", ticket),
    ];
    let page = PasswordPage { username: &user.username, forced: true, hidden, error };
    pages::html(if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, &page)
}

/// `GET /account/password`.
pub(crate) async fn form(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers).await {
        Ok(Some((live, cookie))) => session_page(&live.user.username, &cookie, None),
        Ok(None) => see_other("/account/login"),
        Err(e) => pages::internal_error_page(&e),
    }
}

fn session_page(username: &str, cookie: &str, error: Option<&str>) -> Response {
    let page = PasswordPage { username, forced: false, hidden: vec![("csrf", csrf_for(cookie))], error };
    pages::html(if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, &page)
}

/// `POST /account/password`.
pub(crate) async fn change(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let result = if form.get("ticket").is_some() {
        first_at_sign_in(&s, &caller, &headers, &form).await
    } else {
        signed_in_change(&s, &caller, &headers, &form).await
    };
    result.unwrap_or_else(|e| pages::internal_error_page(&e))
}

async fn signed_in_change(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, StorageError> {
    let Some((live, cookie)) = signed_in(s, headers).await? else {
        return Ok(see_other("/account/login"));
    };
    if form.first_repeated().is_some() || !csrf_ok(&cookie, form.get("csrf")) {
        return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
    }
    let user = &live.user;
    if let Some(retry_after) = throttled(s, caller, &user.username).await? {
        return Ok(retry_later(session_page(&user.username, &cookie, Some(pages::SIGN_IN_THROTTLED)), retry_after));
    }
    let (current, hash) = (form.get("current").unwrap_or("").to_owned(), user.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || argus_oauth::verify_password(&current, &hash))
        .await
        .map_err(|e| StorageError(format!("password verification task failed: {e}")))?;
    if !verified {
        let attempt = SignInAttempt { caller, client_id: ACCOUNT_CLIENT_ID, username: &user.username };
        let failure = LoginOutcome::Failure(LoginFailure::BadPassword);
        emit_login(s, &attempt, Some(&user.sub), failure).await?;
        return Ok(session_page(&user.username, &cookie, Some(CURRENT_WRONG)));
    }
    if let Err(why) = check_new_password(form.get("new").unwrap_or(""), form.get("again").unwrap_or("")) {
        return Ok(session_page(&user.username, &cookie, Some(why)));
    }
    let principal =
        Principal { sub: Some(user.sub.clone()), sid: Some(live.session.sid.clone()), ..caller.principal() };
    set_password(s, principal, user, form.get("new").unwrap_or(""), Some(&live.session.sid)).await?;
    Ok(see_other("/account?done=password_changed"))
}

async fn first_at_sign_in(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, StorageError> {
    let bound = match bound_pending(s, headers, form).await {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let invalid = || Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
    let (sub, acr, exp) =
        (form.get("sub").unwrap_or(""), form.get("level").unwrap_or(""), form.get("exp").unwrap_or(""));
    let key = link_key(s).await?;
    let unexpired = exp.parse::<i64>().is_ok_and(|exp| exp > s.now().as_secs());
    if !unexpired || !signed_ok(&key, TICKET_LABEL, &[sub, &bound.pending.handle_hash, acr, exp], form.get("ticket")) {
        return invalid();
    }
    let Some(level) = AuthLevel::ALL.into_iter().find(|l| l.acr() == acr) else {
        return invalid();
    };
    let Some(user) = s.store.user_by_sub(sub).await?.filter(|u| !u.disabled) else {
        return invalid();
    };
    // The mark is cleared by the change: the same form cannot change the password twice.
    if !s.store.must_change_password(sub).await? {
        return invalid();
    }
    if let Err(why) = check_new_password(form.get("new").unwrap_or(""), form.get("again").unwrap_or("")) {
        return Ok(forced_page(&key, s, &bound, &user, level, Some(why)));
    }
    let principal = Principal { sub: Some(user.sub.clone()), ..caller.principal() };
    set_password(s, principal, &user, form.get("new").unwrap_or(""), None).await?;
    crate::flow::signed_in_by(s, caller, headers, &bound, user, level).await
}

/// Store the new password's hash, clear the "change it first" mark, end the user's sessions but `keep`, and tell.
async fn set_password(
    s: &Issuer,
    principal: Principal,
    user: &UserRecord,
    new: &str,
    keep: Option<&str>,
) -> Result<(), StorageError> {
    let new = new.to_owned();
    let hash = tokio::task::spawn_blocking(move || argus_oauth::hash_password(&new))
        .await
        .map_err(|e| StorageError(format!("password hashing task failed: {e}")))?
        .map_err(|e| StorageError(format!("password hashing failed: {e}")))?;
    let now = s.now();
    s.store.update_user(&user.sub, Some(&hash), None, now).await?;
    s.store.set_must_change_password(&user.sub, false).await?;
    let ended = s.store.end_sessions(&user.sub, keep, now).await?;
    tracing::info!(sub = %user.sub, sessions_ended = ended, "password changed by the user");
    let activity =
        AccountActivity { activity: Activity::PasswordChanged, device_id: None, client_id: None, detail: None };
    let body = NoticeBody {
        summary: "Your password was changed".to_owned(),
        ip: principal.ip.clone(),
        ..NoticeBody::default()
    };
    s.account_activity(principal, activity, body).await;
    Ok(())
}
