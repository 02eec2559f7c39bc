//! "This wasn't me": every new-device notice carries a signed, single-use link, `/account/not-me?t=...` (an
//! HMAC over the notice id and an expiry, with a server key kept in the store; see
//! [`argus_oauth::account::not_me_token`]).
//!
//! `GET` shows what the notice said and a confirmation form, and changes nothing: mail scanners fetch links.
//! `POST` (the form, whose CSRF token is bound to the link) records the link's one use, then signs the device out
//! everywhere (its sessions, its refresh families, and its live access tokens at every gate — the revocation by
//! device of the admin API), requires a password reset (the old password stops signing in: whoever used it knows
//! it), removes the second factors enrolled from that device (TOTP and its recovery codes, passkeys; each an
//! `Account`/`factor_removed`), emits `Account`/`not_me` for watch, and answers with the new-password form of
//! [`super::password::reset_form`], bound to this link and this browser. The user's other devices keep working
//! until the new password is set, which revokes everything of the user. A used, expired or altered link gets an
//! error page and changes nothing.

use argus_model::{AccountActivity, Activity, Principal};
use argus_oauth::account::{LinkRefusal, NOT_ME_LINK_TTL, check_not_me_token, not_me_token};
use argus_oauth::notice::{NoticeBody, NoticeRecord};
use argus_oauth::{Params, StorageError};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::page::{MessagePage, when};
use super::password::reset_form;
use super::shared::{link_key, sign, signed_ok};
use crate::cookies;
use crate::events::Caller;
use crate::pages;
use crate::state::{Issuer, Shared};

/// The path of the link.
pub(crate) const NOT_ME_PATH: &str = "/account/not-me";
/// The label of the confirmation form's CSRF token, an HMAC of the link token.
const FORM_LABEL: &str = "argus not-me form v1";

const LINK_INVALID: &str = "This link is not valid. Use the newest link you were sent, or sign in to your account.";
const LINK_EXPIRED: &str = "This link has expired. Sign in to your account to sign out devices you do not know.";
const LINK_USED: &str = "This link was already used. Sign in to your account to see your devices.";

/// Notice kinds that carry the link.
fn has_link(kind: Activity) -> bool {
    kind == Activity::NewDevice
}

/// `notice` with its "this wasn't me" link in the body, if its kind carries one. Called as the notice is made, so
/// the account page, the webhook and the e-mail all carry the same link. Without the key (a store failure) the
/// notice goes out without a link rather than not at all.
pub(crate) async fn with_link(s: &Issuer, mut notice: NoticeRecord) -> NoticeRecord {
    if !has_link(notice.kind) {
        return notice;
    }
    match link_key(s).await {
        Ok(key) => {
            let t = not_me_token(&key, &notice.id, notice.created_at.plus(NOT_ME_LINK_TTL));
            notice.body.not_me_url = Some(format!("{}?t={t}", s.endpoint(NOT_ME_PATH)));
        }
        Err(error) => tracing::error!(%error, "no \"this wasn't me\" link: the link key is not available"),
    }
    notice
}

/// The confirmation page. Contract: `<form method="post" action="/account/not-me">` with hidden inputs `t` and
/// `csrf`.
#[derive(Template)]
#[template(path = "not_me.html")]
struct NotMePage<'a> {
    summary: &'a str,
    when: String,
    device: Option<&'a str>,
    ip: Option<&'a str>,
    t: &'a str,
    csrf: &'a str,
}

/// A link whose signature, expiry and single use check out, and its notice.
enum Checked {
    Ok { notice: NoticeRecord, key: Vec<u8>, expires_at: argus_model::Timestamp },
    Refused(Response),
}

async fn check(s: &Issuer, t: Option<&str>) -> Result<Checked, StorageError> {
    let refuse = |status, message| Ok(Checked::Refused(pages::error_page(status, message)));
    let key = link_key(s).await?;
    let (id, expires_at) = match t.map(|t| check_not_me_token(&key, t, s.now())) {
        Some(Ok(checked)) => checked,
        Some(Err(LinkRefusal::Expired)) => return refuse(StatusCode::GONE, LINK_EXPIRED),
        Some(Err(LinkRefusal::Invalid)) | None => return refuse(StatusCode::BAD_REQUEST, LINK_INVALID),
    };
    if s.store.link_used(&id).await? {
        return refuse(StatusCode::GONE, LINK_USED);
    }
    match s.store.notice(&id).await? {
        Some(notice) if has_link(notice.kind) => Ok(Checked::Ok { notice, key, expires_at }),
        // Signed by us for a notice since purged (or of another kind): nothing to act on.
        _ => refuse(StatusCode::GONE, LINK_EXPIRED),
    }
}

/// `GET /account/not-me?t=...`: the confirmation page. Changes nothing.
pub(crate) async fn confirm(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let run = async {
        let params = Params::parse(query.unwrap_or_default().as_bytes());
        let t = params.single("t").ok().flatten();
        let (notice, key) = match check(&s, t).await? {
            Checked::Ok { notice, key, .. } => (notice, key),
            Checked::Refused(r) => return Ok(r),
        };
        let t = t.unwrap_or_default();
        let page = NotMePage {
            summary: &notice.body.summary,
            when: when(notice.created_at),
            device: notice.body.device.as_deref(),
            ip: notice.body.ip.as_deref(),
            t,
            csrf: &sign(&key, FORM_LABEL, &[t]),
        };
        Ok(pages::html(StatusCode::OK, &page))
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `POST /account/not-me`: act on the link, once.
pub(crate) async fn act(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let form = Params::parse(&body);
        if form.first_repeated().is_some() {
            return Ok(pages::error_page(StatusCode::BAD_REQUEST, LINK_INVALID));
        }
        let t = form.get("t");
        let (notice, key, expires_at) = match check(&s, t).await? {
            Checked::Ok { notice, key, expires_at } => (notice, key, expires_at),
            Checked::Refused(r) => return Ok(r),
        };
        if !signed_ok(&key, FORM_LABEL, &[t.unwrap_or_default()], form.get("csrf")) {
            return Ok(pages::error_page(StatusCode::BAD_REQUEST, crate::flow::FORM_INVALID));
        }
        // The one use is recorded first: of two submits at once, one acts and the other is told it was used.
        if !s.store.use_link_once(&notice.id, s.now(), expires_at).await? {
            return Ok(pages::error_page(StatusCode::GONE, LINK_USED));
        }
        not_me(&s, &caller, &notice).await?;
        answer(&s, &headers, &key, &notice).await
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// The answer to a confirmed "this wasn't me": the new-password form, bound to this browser by its `argus_browser`
/// cookie (set here if the link was opened where nobody signed in, e.g. a mail client's browser).
async fn answer(s: &Issuer, headers: &HeaderMap, key: &[u8], notice: &NoticeRecord) -> Result<Response, StorageError> {
    let Some(user) = s.store.user_by_sub(&notice.sub).await?.filter(|u| !u.disabled) else {
        // A deleted or disabled user has no password to set; what had to be revoked is.
        let page = MessagePage {
            heading: "That device is signed out",
            message: "The device is signed out of your account and the apps' access from it is revoked.",
            link: None,
        };
        return Ok(pages::html(StatusCode::OK, &page));
    };
    let existing = cookies::read(headers, cookies::BROWSER);
    let browser = existing.clone().unwrap_or_else(|| argus_model::id::random_secret(32));
    let mut response = reset_form(key, s.now(), &notice.id, &user, &browser);
    if existing.is_none()
        && let Some(v) = cookies::set(cookies::BROWSER, &browser, None, s.secure_cookies)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Remove the second factors of `sub` enrolled from `device`: whoever signed in there may have added a TOTP app or
/// a passkey, which would keep them in and leave the user, after the reset, asked for a factor they do not have.
/// Factors enrolled from the user's other devices stay. One `Account`/`factor_removed` per factor removed.
async fn remove_factors(s: &Issuer, principal: &Principal, sub: &str, device: &str) -> Result<(), StorageError> {
    let removed = s.store.remove_device_factors(sub, device).await?;
    let kinds = std::iter::repeat_n("totp", usize::from(removed.totp))
        .chain(std::iter::repeat_n("passkey", usize::try_from(removed.passkeys).unwrap_or(usize::MAX)));
    for kind in kinds {
        tracing::warn!(%sub, %device, factor = kind, "a second factor enrolled from a reported device was removed");
        let activity = AccountActivity {
            activity: Activity::FactorRemoved,
            device_id: Some(device.to_owned()),
            client_id: None,
            detail: Some(kind.to_owned()),
        };
        let body = NoticeBody {
            summary: format!("A {} added from the device you reported was removed", factor_name(kind)),
            detail: Some(kind.to_owned()),
            ..NoticeBody::default()
        };
        s.account_activity(principal.clone(), activity, body).await;
    }
    Ok(())
}

fn factor_name(kind: &str) -> &'static str {
    if kind == "totp" { "authenticator app (TOTP)" } else { "passkey" }
}

/// What "this wasn't me" does for `notice`.
async fn not_me(s: &Issuer, caller: &Caller, notice: &NoticeRecord) -> Result<(), StorageError> {
    let principal =
        Principal { sub: Some(notice.sub.clone()), device_id: notice.device_id.clone(), ..caller.principal() };
    if let Some(device) = &notice.device_id {
        // The event of this is the `Account`/`not_me` below: no separate `device_revoked`.
        let scope = argus_model::RevocationScope::Device { device: device.clone() };
        s.revoke_scope_everywhere(scope, &principal, "user").await?;
        remove_factors(s, &principal, &notice.sub, device).await?;
    }
    // Until a new password is set, the old one signs nobody in (flow.rs refuses it like a wrong one).
    s.store.set_must_change_password(&notice.sub, true).await?;
    tracing::warn!(sub = %notice.sub, notice = %notice.id, device = ?notice.device_id,
        "the user reported a sign-in as not theirs: device signed out, password reset required");
    let activity = AccountActivity {
        activity: Activity::NotMe,
        device_id: notice.device_id.clone(),
        client_id: None,
        detail: Some(notice.kind.as_str().to_owned()),
    };
    let body = NoticeBody {
        summary: "You reported a sign-in as not yours: that device was signed out".to_owned(),
        device: notice.body.device.clone(),
        ip: caller.ip.clone(),
        ..NoticeBody::default()
    };
    s.account_activity(principal, activity, body).await;
    Ok(())
}
