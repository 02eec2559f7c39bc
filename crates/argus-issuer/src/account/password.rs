//! `/account/password`: change the password (argon2id, as everywhere), and set a new one after "this wasn't me".
//!
//! - Signed in (`GET`, then `POST` with the session's CSRF token): the current password (checked under the sign-in
//!   throttle: a wrong one counts as a failed sign-in) and the new one twice, at least
//!   [`MIN_PASSWORD_CHARS`](argus_oauth::account::MIN_PASSWORD_CHARS) characters. The user's other sessions end; this
//!   one stays. Apps' tokens are not revoked: the user revokes apps on the account page. Refused while a reset is
//!   required: the current password is the one someone else knows, and their session may be this one.
//! - After "this wasn't me" (its `POST` answers with [`reset_form`]): the old password no longer signs in (the
//!   login refuses it as a wrong one) until a new one is set. The form carries a ticket signed over the notice, the
//!   user and an expiry ([`RESET_TTL`]), and a CSRF token bound to the ticket and the browser that confirmed (its
//!   `argus_browser` cookie). It works once (the ticket's use is recorded like the link's) and only while the reset
//!   is required; it takes the new password twice, then ends every session of the user and revokes every token of
//!   the user at every gate (`RevocationScope::User`, as the admin API does): the attacker may hold other devices.
//!   Left unused, the account stays closed to password sign-in until an admin sets a password
//!   (`PATCH /admin/v1/users/{user}`; the store clears the reset with any new password).
//!
//! Both emit `Account`/`password_changed` (and a notice).

use std::time::Duration;

use argus_model::{AccountActivity, Activity, LoginFailure, LoginOutcome, Principal};
use argus_oauth::account::check_new_password;
use argus_oauth::notice::NoticeBody;
use argus_oauth::{Params, StorageError, UserRecord, hash_secret};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::page::{MessagePage, see_other};
use super::shared::{ACCOUNT_CLIENT_ID, csrf_for, csrf_ok, link_key, sign, signed_in, signed_ok};
use crate::cookies;
use crate::events::Caller;
use crate::flow::{FORM_INVALID, SignInAttempt, emit_login, retry_later, throttled};
use crate::pages;
use crate::state::{Issuer, Shared};

/// How long the new-password form of a "this wasn't me" confirmation works.
pub(crate) const RESET_TTL: Duration = Duration::from_secs(15 * 60);
const RESET_LABEL: &str = "argus password reset v1";
const RESET_FORM_LABEL: &str = "argus password reset form v1";

const CURRENT_WRONG: &str = "Your current password is not correct.";
const RESET_PENDING: &str = "Since you reported a sign-in as not yours, your old password no longer works. Choose a \
                             new one on the page that report opened, or ask an administrator to reset it.";
const RESET_INVALID: &str = "This form is not valid. Open it again from the link you were sent.";
const RESET_EXPIRED: &str = "This form has expired. Ask an administrator to reset your password.";
const RESET_USED: &str =
    "This form was already used, or your password was reset since. Sign in with your new password.";

/// The password form. Contract: `<form method="post" action="/account/password">` with hidden inputs (`csrf`; and
/// after "this wasn't me" `notice`, `exp`, `ticket`), password inputs `current` (signed in only), `new` and `again`.
#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    username: &'a str,
    reset: bool,
    ttl_minutes: u64,
    hidden: Vec<(&'static str, String)>,
    error: Option<&'a str>,
}

/// The id under which a reset ticket's one use is recorded, beside the link's own (the notice id).
fn reset_use_id(notice_id: &str) -> String {
    format!("{notice_id}#password-reset")
}

/// The new-password form after "this wasn't me" confirmed `notice_id` of `user` in the browser whose
/// `argus_browser` cookie is `browser`; a new ticket valid for [`RESET_TTL`] from `now`.
pub(crate) fn reset_form(
    key: &[u8],
    now: argus_model::Timestamp,
    notice_id: &str,
    user: &UserRecord,
    browser: &str,
) -> Response {
    let exp = now.plus(RESET_TTL).as_secs().to_string();
    reset_page(key, &exp, notice_id, user, browser, None)
}

fn reset_page(
    key: &[u8],
    exp: &str,
    notice_id: &str,
    user: &UserRecord,
    browser: &str,
    error: Option<&str>,
) -> Response {
    let ticket = sign(key, RESET_LABEL, &[notice_id, &user.sub, exp]);
    let csrf = sign(key, RESET_FORM_LABEL, &[&ticket, &hash_secret(browser)]);
    let hidden = vec![("notice", notice_id.to_owned()), ("exp", exp.to_owned()), ("ticket", ticket), ("csrf", csrf)];
    let page =
        PasswordPage { username: &user.username, reset: true, ttl_minutes: RESET_TTL.as_secs() / 60, hidden, error };
    pages::html(if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, &page)
}

/// `GET /account/password`.
pub(crate) async fn form(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let run = async {
        let Some((live, cookie)) = signed_in(&s, &headers).await? else {
            return Ok(see_other("/account/login"));
        };
        if s.store.must_change_password(&live.user.sub).await? {
            return Ok(pages::error_page(StatusCode::FORBIDDEN, RESET_PENDING));
        }
        Ok(session_page(&live.user.username, &cookie, None))
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

fn session_page(username: &str, cookie: &str, error: Option<&str>) -> Response {
    let page = PasswordPage { username, reset: false, ttl_minutes: 0, hidden: vec![("csrf", csrf_for(cookie))], error };
    pages::html(if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, &page)
}

/// `POST /account/password`.
pub(crate) async fn change(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let result = if form.get("ticket").is_some() {
        reset_by_ticket(&s, &caller, &headers, &form).await
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
    if s.store.must_change_password(&user.sub).await? {
        return Ok(pages::error_page(StatusCode::FORBIDDEN, RESET_PENDING));
    }
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

/// The new-password form of a "this wasn't me" confirmation: checked (browser, CSRF token, ticket, expiry, one use,
/// the reset still required) before anything changes; a refused new password shows the form again, unused.
async fn reset_by_ticket(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, StorageError> {
    let invalid = || Ok(pages::error_page(StatusCode::BAD_REQUEST, RESET_INVALID));
    let (Some(notice_id), Some(exp), Some(ticket)) = (form.get("notice"), form.get("exp"), form.get("ticket")) else {
        return invalid();
    };
    let Some(browser) = cookies::read(headers, cookies::BROWSER) else {
        return invalid();
    };
    let key = link_key(s).await?;
    if form.first_repeated().is_some()
        || !signed_ok(&key, RESET_FORM_LABEL, &[ticket, &hash_secret(&browser)], form.get("csrf"))
    {
        return invalid();
    }
    let Some(notice) = s.store.notice(notice_id).await? else {
        return invalid();
    };
    let Ok(exp_secs) = exp.parse::<i64>() else {
        return invalid();
    };
    if !signed_ok(&key, RESET_LABEL, &[notice_id, &notice.sub, exp], Some(ticket)) {
        return invalid();
    }
    if exp_secs <= s.now().as_secs() {
        return Ok(pages::error_page(StatusCode::GONE, RESET_EXPIRED));
    }
    let Some(user) = s.store.user_by_sub(&notice.sub).await?.filter(|u| !u.disabled) else {
        return invalid();
    };
    let use_id = reset_use_id(notice_id);
    if s.store.link_used(&use_id).await? || !s.store.must_change_password(&user.sub).await? {
        return Ok(pages::error_page(StatusCode::GONE, RESET_USED));
    }
    let new = form.get("new").unwrap_or("");
    if let Err(why) = check_new_password(new, form.get("again").unwrap_or("")) {
        return Ok(reset_page(&key, exp, notice_id, &user, &browser, Some(why)));
    }
    // The one use is recorded first: of two submits at once, one sets the password and the other is refused.
    if !s.store.use_link_once(&use_id, s.now(), argus_model::Timestamp::from_secs(exp_secs)).await? {
        return Ok(pages::error_page(StatusCode::GONE, RESET_USED));
    }
    let principal = Principal { sub: Some(user.sub.clone()), ..caller.principal() };
    // Everything of the user's, before the new password opens the account again: the attacker may hold sessions
    // and tokens on devices the notice did not name.
    let scope = argus_model::RevocationScope::User { sub: user.sub.clone() };
    s.revoke_scope_everywhere(scope, &principal, "user").await?;
    set_password(s, principal, &user, new, None).await?;
    let page = MessagePage {
        heading: "Your password is changed",
        message: "Every device is signed out of your account and the apps' access is revoked. Sign in with your new \
                  password.",
        link: Some(("/account", "Go to your account")),
    };
    Ok(pages::html(StatusCode::OK, &page))
}

/// Store the new password's hash (the store clears a required reset with it), end the user's sessions but `keep`,
/// and tell.
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
