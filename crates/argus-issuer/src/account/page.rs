//! `GET /account`, the account page, server-rendered and usable without JavaScript: the user's notices (newest
//! first; viewing marks them read), devices (this one marked, each with its live sessions) and app grants, each
//! revocable by a form (`POST /account/devices/revoke`, `POST /account/apps/revoke`) that answers `303` back to the
//! page with a message; `POST /account/logout` signs this browser out.
//!
//! Signing in: a browser without a session is sent to `GET /account/login`, which starts the ordinary sign-in (login
//! form, throttling, second factor) for the issuer's own account client and comes back through
//! `/account/callback` to the page.
//!
//! Every form carries the CSRF token derived from the session cookie; a form without it is refused (400) and changes
//! nothing.

use argus_model::id::random_secret;
use argus_model::{Activity, Principal, Timestamp};
use argus_oauth::{NextStep, Params, Prompt, Scopes, StorageError};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::shared::{self, ACCOUNT_CALLBACK, ACCOUNT_CLIENT_ID, ACCOUNT_CLIENT_SCOPE, csrf_for, csrf_ok, signed_in};
use crate::cookies;
use crate::events::Caller;
use crate::flow::{FORM_INVALID, FlowRequest, LiveSession};
use crate::pages;
use crate::state::{Issuer, Shared};

/// The account page. Contract (tests parse it): each device in `<div class="item device">` with
/// `<form method="post" action="/account/devices/revoke">` and hidden inputs `csrf` and `device_id`; each app in
/// `<div class="item app">` with `<form method="post" action="/account/apps/revoke">` and hidden `csrf`, `client_id`;
/// each notice in `<div class="item notice">` (`notice unread` until viewed); "this device" marked so.
#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    username: &'a str,
    csrf: &'a str,
    message: Option<&'a str>,
    must_change_password: bool,
    notices: Vec<NoticeRow>,
    devices: Vec<DeviceRow>,
    apps: Vec<AppRow>,
}

struct NoticeRow {
    summary: String,
    when: String,
    unread: bool,
    device: Option<String>,
    ip: Option<String>,
    /// The notice's "this wasn't me" link, if it has one.
    not_me_url: Option<String>,
}

struct DeviceRow {
    device_id: String,
    label: String,
    user_agent: Option<String>,
    first_seen: String,
    last_seen: String,
    last_ip: Option<String>,
    this_device: bool,
    sessions: Vec<SessionRow>,
}

struct SessionRow {
    started: String,
    last_used: String,
    ip: Option<String>,
}

struct AppRow {
    client_id: String,
    name: String,
    scopes: Vec<String>,
    granted: String,
    last_used: String,
}

/// A page that says one thing, with a link onwards.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

/// A time as people read it: `2026-11-28 20:46 UTC`.
pub(crate) fn when(t: Timestamp) -> String {
    let iso = t.to_rfc3339();
    format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "))
}

/// The messages `?done=` may name: a fixed list, so nothing from the URL is ever echoed.
fn done_message(query: Option<&str>) -> Option<&'static str> {
    let params = Params::parse(query.unwrap_or("").as_bytes());
    match params.get("done")? {
        "device_revoked" => Some("The device was signed out."),
        "app_revoked" => Some("The app's access was removed."),
        "password_changed" => Some("Your password was changed. Your other sessions were signed out."),
        _ => None,
    }
}

/// `GET /account`.
pub(crate) async fn account(State(s): State<Shared>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match show(&s, &headers, query.as_deref()).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn show(s: &Issuer, headers: &HeaderMap, query: Option<&str>) -> Result<Response, StorageError> {
    let Some((live, cookie)) = signed_in(s, headers).await? else {
        return Ok(see_other("/account/login"));
    };
    let sub = &live.user.sub;
    let this_device = s.store.session_device(&live.session.sid).await?;
    let devices = shared::devices(s, sub, this_device.as_deref()).await?;
    let apps = shared::apps(s, sub).await?;
    let notices = shared::notices(s, sub).await?;
    let now = s.now();
    // Shown now, so read: the page marks them as it lists them (still "new" on this rendering).
    for n in notices.iter().filter(|n| n.read_at.is_none()) {
        s.store.mark_notice_read(sub, &n.id, now).await?;
    }
    let page = AccountPage {
        username: &live.user.username,
        csrf: &csrf_for(&cookie),
        message: done_message(query),
        must_change_password: s.store.must_change_password(sub).await?,
        notices: notices
            .into_iter()
            .map(|n| NoticeRow {
                summary: n.body.summary,
                when: when(n.created_at),
                unread: n.read_at.is_none(),
                device: n.body.device,
                ip: n.body.ip,
                not_me_url: n.body.not_me_url,
            })
            .collect(),
        devices: devices
            .into_iter()
            .map(|d| DeviceRow {
                label: d.device.label.clone().unwrap_or_else(|| "Unknown browser".to_owned()),
                first_seen: when(d.device.first_seen_at),
                last_seen: when(d.device.last_seen_at),
                sessions: d
                    .sessions
                    .into_iter()
                    .map(|x| SessionRow {
                        started: when(x.created_at.unwrap_or(x.auth_time)),
                        last_used: when(x.last_used_at.unwrap_or(x.auth_time)),
                        ip: x.ip,
                    })
                    .collect(),
                device_id: d.device.device_id,
                user_agent: d.device.user_agent,
                last_ip: d.device.last_ip,
                this_device: d.this_device,
            })
            .collect(),
        apps: apps
            .into_iter()
            .map(|a| AppRow {
                scopes: a.scopes.into_iter().map(|w| w.description).collect(),
                granted: when(a.grant.granted_at),
                last_used: a.grant.last_used_at.map_or_else(|| "never".to_owned(), when),
                client_id: a.grant.client_id,
                name: a.grant.client_name,
            })
            .collect(),
    };
    Ok(pages::html(StatusCode::OK, &page))
}

/// A signed-in form of the account page: the session, and the form once its CSRF token checked out.
enum Form {
    Ok { live: LiveSession, form: Params },
    Refused(Response),
}

async fn account_form(s: &Issuer, headers: &HeaderMap, body: &Bytes) -> Result<Form, StorageError> {
    let Some((live, cookie)) = signed_in(s, headers).await? else {
        return Ok(Form::Refused(see_other("/account/login")));
    };
    let form = Params::parse(body);
    if form.first_repeated().is_some() || !csrf_ok(&cookie, form.get("csrf")) {
        return Ok(Form::Refused(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID)));
    }
    Ok(Form::Ok { live, form })
}

fn principal_of(caller: &Caller, live: &LiveSession, device_id: Option<String>) -> Principal {
    Principal { sub: Some(live.user.sub.clone()), sid: Some(live.session.sid.clone()), device_id, ..caller.principal() }
}

/// `POST /account/devices/revoke`: sign a device out. This device signs this browser out.
pub(crate) async fn revoke_device(
    State(s): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let (live, form) = match account_form(&s, &headers, &body).await? {
            Form::Ok { live, form } => (live, form),
            Form::Refused(r) => return Ok(r),
        };
        let device_id = form.get("device_id").unwrap_or("");
        let this_device = s.store.session_device(&live.session.sid).await?;
        let principal = principal_of(&caller, &live, this_device.clone());
        if !shared::revoke_device(&s, principal, &live.user.sub, device_id, Activity::DeviceRevoked).await? {
            return Ok(pages::error_page(StatusCode::NOT_FOUND, "There is no such device on your account."));
        }
        if this_device.as_deref() == Some(device_id) {
            let page = MessagePage {
                heading: "Signed out",
                message: "This device was signed out of your account.",
                link: Some(("/account", "Sign in again")),
            };
            return Ok(forget_session(pages::html(StatusCode::OK, &page), &s));
        }
        Ok(see_other("/account?done=device_revoked"))
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `POST /account/apps/revoke`: remove an app's access.
pub(crate) async fn revoke_app(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let (live, form) = match account_form(&s, &headers, &body).await? {
            Form::Ok { live, form } => (live, form),
            Form::Refused(r) => return Ok(r),
        };
        let client_id = form.get("client_id").unwrap_or("");
        let device = s.store.session_device(&live.session.sid).await?;
        let principal = principal_of(&caller, &live, device);
        if !shared::revoke_app(&s, principal, &live.user.sub, client_id).await? {
            return Ok(pages::error_page(StatusCode::NOT_FOUND, "That app has no access to your account."));
        }
        Ok(see_other("/account?done=app_revoked"))
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `POST /account/logout`: end this browser's session. The apps' tokens are not touched: signing out of the
/// account is not revoking an app (that is the apps' list).
pub(crate) async fn logout(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let live = match account_form(&s, &headers, &body).await? {
            Form::Ok { live, .. } => live,
            Form::Refused(r) => return Ok(r),
        };
        s.store.end_session(&live.user.sub, &live.session.sid, s.now()).await?;
        let page = MessagePage {
            heading: "Signed out",
            message: "You are signed out of your account.",
            link: Some(("/account", "Sign in again")),
        };
        Ok(forget_session(pages::html(StatusCode::OK, &page), &s))
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `GET /account/login`: the ordinary sign-in, for the account page. Signed in already: the page.
pub(crate) async fn login(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let run = async {
        if s.current_session(&headers).await?.is_some() {
            return Ok(see_other("/account"));
        }
        let client = match s.store.client(ACCOUNT_CLIENT_ID).await? {
            Some(c) => c,
            None => {
                let c = shared::account_client(&s);
                s.store.upsert_client(&c, s.now()).await?;
                c
            }
        };
        // A challenge whose verifier is thrown away: the code this sign-in ends with can never be redeemed.
        let challenge = argus_jose::pkce_challenge_s256(&random_secret(32));
        let flow = FlowRequest {
            client_id: client.client_id.clone(),
            redirect_uri: s.endpoint(ACCOUNT_CALLBACK),
            scope: Scopes::parse(ACCOUNT_CLIENT_SCOPE).unwrap_or_default(),
            state: None,
            nonce: None,
            code_challenge: challenge,
            prompt: Prompt::default(),
            dpop_jkt: None,
            auth: Default::default(),
            resources: Vec::new(),
        };
        s.start_interaction(&headers, &flow, &client, NextStep::Login, None).await
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `GET /account/callback`: the end of the account sign-in. The session cookie is set; the code is ignored.
pub(crate) async fn callback() -> Response {
    see_other("/account")
}

/// `303` to a path of the issuer, not stored by caches.
pub(crate) fn see_other(path: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static(path)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// `response` with the session cookie cleared.
fn forget_session(mut response: Response, s: &Issuer) -> Response {
    if let Some(v) = cookies::set(cookies::SESSION, "", Some(0), s.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_keeps_its_form_contract_and_escapes() {
        let page = AccountPage {
            username: "<alice>",
            csrf: "c1",
            message: done_message(Some("done=app_revoked")),
            must_change_password: true,
            notices: vec![NoticeRow {
                summary: "New sign-in from <b>".into(),
                when: "w".into(),
                unread: true,
                device: Some("Firefox on Linux".into()),
                ip: None,
                not_me_url: Some("http://i/account/not-me?t=a.1.b".into()),
            }],
            devices: vec![DeviceRow {
                device_id: "d1".into(),
                label: "<script>".into(),
                user_agent: None,
                first_seen: "f".into(),
                last_seen: "l".into(),
                last_ip: Some("192.0.2.1".into()),
                this_device: true,
                sessions: vec![],
            }],
            apps: vec![AppRow {
                client_id: "app".into(),
                name: "App".into(),
                scopes: vec!["Read your accounts".into()],
                granted: "g".into(),
                last_used: "never".into(),
            }],
        };
        let body = page.render().unwrap();
        assert!(!body.contains("<script>") && !body.contains("<alice>") && !body.contains("<b>"));
        assert!(body.contains("<div class=\"item notice unread\">"));
        assert!(body.contains("<a class=\"not-me\" href=\"http://i/account/not-me?t=a.1.b\">"));
        assert!(body.contains("<form method=\"post\" action=\"/account/devices/revoke\">"));
        assert!(body.contains("<input type=\"hidden\" name=\"device_id\" value=\"d1\">"));
        assert!(body.contains("<form method=\"post\" action=\"/account/apps/revoke\">"));
        assert!(body.contains("<input type=\"hidden\" name=\"client_id\" value=\"app\">"));
        assert_eq!(body.matches("<input type=\"hidden\" name=\"csrf\" value=\"c1\">").count(), 3);
        assert!(body.contains("this device</span>") && body.contains("href=\"/account/password\""));
        assert!(body.contains("The app&#39;s access was removed.") || body.contains("The app's access was removed."));
    }

    #[test]
    fn only_known_messages_are_shown() {
        assert_eq!(done_message(Some("done=%3Cscript%3E")), None);
        assert_eq!(done_message(None), None);
        assert!(done_message(Some("done=device_revoked")).is_some());
    }

    #[test]
    fn times_read_as_minutes() {
        assert_eq!(when(Timestamp::from_secs(0)), "1970-01-01 00:00 UTC");
    }
}
