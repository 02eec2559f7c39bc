//! What the account page, its JSON API, "this wasn't me" and the password change share: who is signed in, the
//! forms' CSRF token, the server key of the signed links, what the page lists, and revoking a device or an app.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use argus_model::id::random_bytes;
use argus_model::{AccountActivity, Activity, Principal, RevocationScope, Timestamp};
use argus_oauth::account::{GrantView, form_mac, form_mac_ok};
use argus_oauth::notice::{NoticeBody, NoticeRecord, SessionView, UserDevice};
use argus_oauth::{ClientRegistration, GrantType, StorageError, describe_scope, hash_secret};
use axum::http::HeaderMap;

use crate::cookies;
use crate::flow::LiveSession;
use crate::state::Issuer;

/// The issuer's own client for signing in to the account page: a sign-in there runs the ordinary login form,
/// throttling and second factors through a pending request of this client, and its code (bound to a PKCE
/// challenge nobody knows the verifier of) is never redeemed. Registered on first use; not listed as an app.
pub(crate) const ACCOUNT_CLIENT_ID: &str = "argus-account";
/// Where the account client's sign-in comes back to.
pub(crate) const ACCOUNT_CALLBACK: &str = "/account/callback";
/// The scope of the account client's (never redeemed) codes.
pub(crate) const ACCOUNT_CLIENT_SCOPE: &str = "openid";

/// The name of the server key every signed account value (links, tickets) is made with.
const LINK_KEY_NAME: &str = "account_links";

/// The server key of "this wasn't me" links and password tickets, the same for every issuer over this store. Read
/// once per process: it never changes, and reading it is a write (it is created on first read).
pub(crate) async fn link_key(s: &Issuer) -> Result<Vec<u8>, StorageError> {
    if let Some(key) = s.account.key.get() {
        return Ok(key.clone());
    }
    let key = s.store.server_secret(LINK_KEY_NAME, &random_bytes(32), s.now()).await?;
    Ok(s.account.key.get_or_init(|| key).clone())
}

/// The live session of this browser and its cookie, which the account forms' CSRF token is derived from.
pub(crate) async fn signed_in(s: &Issuer, headers: &HeaderMap) -> Result<Option<(LiveSession, String)>, StorageError> {
    let Some(cookie) = cookies::read(headers, cookies::SESSION) else {
        return Ok(None);
    };
    Ok(s.current_session(headers).await?.map(|live| (live, cookie)))
}

/// The account forms' CSRF token: a hash of the session cookie under its own label. It needs no storage and is
/// worthless without the cookie, which a cross-site page cannot read.
pub(crate) fn csrf_for(session_cookie: &str) -> String {
    hash_secret(&format!("argus account csrf\n{session_cookie}"))
}

pub(crate) fn csrf_ok(session_cookie: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|c| argus_jose::ct_eq(c.as_bytes(), csrf_for(session_cookie).as_bytes()))
}

/// A form token over `parts` with the server key (see [`form_mac`]).
pub(crate) fn sign(key: &[u8], label: &str, parts: &[&str]) -> String {
    form_mac(key, label, parts)
}

pub(crate) fn signed_ok(key: &[u8], label: &str, parts: &[&str], presented: Option<&str>) -> bool {
    presented.is_some_and(|p| form_mac_ok(key, label, parts, p))
}

/// The account client's registration, as registered on first use.
pub(crate) fn account_client(s: &Issuer) -> ClientRegistration {
    ClientRegistration {
        client_id: ACCOUNT_CLIENT_ID.to_owned(),
        name: "your Argus account".to_owned(),
        redirect_uris: vec![s.endpoint(ACCOUNT_CALLBACK)],
        allowed_scopes: vec![ACCOUNT_CLIENT_SCOPE.to_owned()],
        public: true,
        grant_types: vec![GrantType::AuthorizationCode],
        ..ClientRegistration::default()
    }
}

/// One device of the user as the page and the API show it.
#[derive(serde::Serialize)]
pub(crate) struct DeviceItem {
    #[serde(flatten)]
    pub device: UserDevice,
    /// The device of the request (the browser's session; the access token's `did`).
    pub this_device: bool,
    /// Its live sessions of this user.
    pub sessions: Vec<SessionView>,
}

/// One app grant as the page and the API show it.
#[derive(serde::Serialize)]
pub(crate) struct AppItem {
    #[serde(flatten)]
    pub grant: GrantView,
    /// Each scope in plain words, as the consent page said it.
    pub scopes: Vec<ScopeWords>,
}

#[derive(serde::Serialize)]
pub(crate) struct ScopeWords {
    pub scope: String,
    pub description: String,
}

/// The user's devices with their live sessions, this device first.
pub(crate) async fn devices(s: &Issuer, sub: &str, this_device: Option<&str>) -> Result<Vec<DeviceItem>, StorageError> {
    let mut sessions: HashMap<String, Vec<SessionView>> = HashMap::new();
    for session in s.store.user_sessions(sub, s.now()).await? {
        if let Some(device) = session.device_id.clone() {
            sessions.entry(device).or_default().push(session);
        }
    }
    let mut items: Vec<DeviceItem> = s
        .store
        .user_devices(sub)
        .await?
        .into_iter()
        .map(|device| DeviceItem {
            this_device: this_device == Some(device.device_id.as_str()),
            sessions: sessions.remove(&device.device_id).unwrap_or_default(),
            device,
        })
        .collect();
    items.sort_by_key(|d| !d.this_device);
    Ok(items)
}

/// The apps the user granted access to (the account page's own client is not one).
pub(crate) async fn apps(s: &Issuer, sub: &str) -> Result<Vec<AppItem>, StorageError> {
    let grants = s.store.user_grants(sub).await?;
    Ok(grants
        .into_iter()
        .filter(|g| g.client_id != ACCOUNT_CLIENT_ID)
        .map(|grant| {
            let scopes = grant
                .scope
                .split_ascii_whitespace()
                .map(|scope| ScopeWords { scope: scope.to_owned(), description: describe_scope(scope) })
                .collect();
            AppItem { grant, scopes }
        })
        .collect())
}

/// Notices listed at most, newest first.
pub(crate) const NOTICES_SHOWN: usize = 50;

pub(crate) async fn notices(s: &Issuer, sub: &str) -> Result<Vec<NoticeRecord>, StorageError> {
    s.store.notices(sub, NOTICES_SHOWN).await
}

/// Sign device `device_id` of user `sub` out everywhere: its sessions, its refresh families and its live access
/// tokens at every gate (the admin API's revocation by device), and tell watch. `false`, and nothing done, if the
/// user never signed in on that device. A device is one browser: other users signed in on it are signed out too.
pub(crate) async fn revoke_device(
    s: &Issuer,
    principal: Principal,
    sub: &str,
    device_id: &str,
    activity: Activity,
) -> Result<bool, StorageError> {
    let known = s.store.user_devices(sub).await?.into_iter().any(|d| d.device_id == device_id);
    if !known {
        return Ok(false);
    }
    let scope = RevocationScope::Device { device: device_id.to_owned() };
    s.revoke_scope_everywhere(scope, &principal, "user").await?;
    let event = AccountActivity { activity, device_id: Some(device_id.to_owned()), client_id: None, detail: None };
    let body = NoticeBody { summary: "A device was signed out of your account".to_owned(), ..NoticeBody::default() };
    s.account_activity(principal, event, body).await;
    Ok(true)
}

/// Revoke the user's grant to app `client_id`: the consent, its refresh families, and its live access tokens at
/// every gate. `false`, and nothing done, if there is no such grant.
pub(crate) async fn revoke_app(
    s: &Issuer,
    principal: Principal,
    sub: &str,
    client_id: &str,
) -> Result<bool, StorageError> {
    let known =
        client_id != ACCOUNT_CLIENT_ID && s.store.user_grants(sub).await?.into_iter().any(|g| g.client_id == client_id);
    if !known {
        return Ok(false);
    }
    let scope = RevocationScope::Grant { sub: sub.to_owned(), client_id: client_id.to_owned() };
    s.revoke_scope_everywhere(scope, &principal, "user").await?;
    let event = AccountActivity {
        activity: Activity::GrantRevoked,
        device_id: principal.device_id.clone(),
        client_id: Some(client_id.to_owned()),
        detail: None,
    };
    let body = NoticeBody {
        summary: format!("You revoked the access of {client_id}"),
        client_id: Some(client_id.to_owned()),
        ..NoticeBody::default()
    };
    s.account_activity(principal, event, body).await;
    Ok(true)
}

/// How stale a grant's recorded last use may get: an app refreshing all the time costs one write a minute.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Grants remembered before the memory is cleared (it only saves writes; forgetting costs one write each).
const MAX_TOUCHES: usize = 10_000;

/// What the account page keeps in memory, per issuer.
#[derive(Default)]
pub(crate) struct AccountMemory {
    /// When this process last recorded each (user, app) grant's use.
    touches: Mutex<HashMap<(String, String), Timestamp>>,
    /// The signed-link key ([`link_key`]).
    key: std::sync::OnceLock<Vec<u8>>,
}

impl Issuer {
    /// A token was issued or refreshed for `sub` at `client_id`: record it as the grant's last use, at most once a
    /// minute per grant and process. A failure is logged, never fails the token request.
    pub(crate) async fn touch_grant(&self, sub: &str, client_id: &str) {
        let now = self.now();
        {
            let mut seen = self.account.touches.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = (sub.to_owned(), client_id.to_owned());
            if seen.get(&key).is_some_and(|last| now.since(*last) < TOUCH_EVERY) {
                return;
            }
            if seen.len() >= MAX_TOUCHES {
                seen.clear();
            }
            seen.insert(key, now);
        }
        if let Err(error) = self.store.touch_grant(sub, client_id, now).await {
            tracing::warn!(%error, "could not record a grant's use");
        }
    }
}
