//! Devices: the long-lived `argus_device` cookie that tells one browser from another across sign-ins, so that "sign
//! out this device" can end its sessions, its refresh families and (through the `did` claim) its live access tokens.
//!
//! The cookie holds a 256-bit random secret; the store keeps its hash and a public device id. HttpOnly,
//! SameSite=Lax, Path=/, Secure over https, 400 days (the longest lifetime browsers keep, RFC 6265bis), renewed at
//! every sign-in.
//!
//! A device is recognised by the cookie plus what the browser tells: each sign-in records its IP, user agent and a
//! label ("Firefox on Linux"). A user's first sign-in on a device is a new device for that user (an event and a
//! notice; the very first device of a user too, as "first sign-in"), and so is a known cookie arriving from another
//! browser family or system than recorded: the cookie may have been copied.

use std::time::Duration;

use argus_model::id::{new_id, random_secret};
use argus_model::{AccountActivity, Activity, Principal, truncate_utf8};
use argus_oauth::admin::DeviceRecord;
use argus_oauth::notice::{DeviceNovelty, DeviceSighting, MAX_USER_AGENT, NoticeBody, device_label};
use argus_oauth::{StorageError, hash_secret};
use axum::http::{HeaderMap, HeaderValue};

use crate::cookies;
use crate::events::Caller;
use crate::state::Issuer;

/// The device cookie.
pub(crate) const DEVICE_COOKIE: &str = "argus_device";
/// 400 days, in seconds.
const DEVICE_TTL_SECS: u64 = 400 * 24 * 3600;

/// The device a sign-in was bound to, and what to send back.
pub(crate) struct BoundDevice {
    pub device_id: String,
    /// The `Set-Cookie` that (re)sets the cookie for another 400 days.
    pub cookie: Option<HeaderValue>,
}

/// Recognise the browser by its device cookie, or register it as a new device, and record the device on session
/// `sid`.
pub(crate) async fn bind_device(s: &Issuer, headers: &HeaderMap, sid: &str) -> Result<BoundDevice, StorageError> {
    let now = s.now();
    let expires_at = now.plus(Duration::from_secs(DEVICE_TTL_SECS));
    let known = match cookies::read(headers, DEVICE_COOKIE) {
        Some(cookie) => s.store.touch_device(&hash_secret(&cookie), now, expires_at).await?.map(|id| (cookie, id)),
        None => None,
    };
    let (cookie, device_id) = match known {
        Some(known) => known,
        None => {
            let cookie = random_secret(32);
            let device =
                DeviceRecord { device_id: new_id(), cookie_hash: hash_secret(&cookie), created_at: now, expires_at };
            s.store.insert_device(&device).await?;
            (cookie, device.device_id)
        }
    };
    s.store.attach_device(sid, &device_id).await?;
    Ok(BoundDevice { device_id, cookie: cookies::set(DEVICE_COOKIE, &cookie, Some(DEVICE_TTL_SECS), s.secure_cookies) })
}

/// Record a complete sign-in of `sub` on `device_id` (IP, user agent, label) and, when the device is new to the user
/// (or a known cookie arrives from another browser or system), say so: an `Account`/`new_device` event and a
/// notice. A failure to record is logged, never fails the sign-in.
pub(crate) async fn record_sign_in_device(s: &Issuer, caller: &Caller, sub: &str, sid: &str, device_id: &str) {
    let user_agent = caller.user_agent.as_deref().map(|ua| truncate_utf8(ua, MAX_USER_AGENT).to_owned());
    let ua = device_label(user_agent.as_deref());
    let sighting = DeviceSighting {
        device_id: device_id.to_owned(),
        sub: sub.to_owned(),
        sid: sid.to_owned(),
        ip: caller.ip.clone(),
        user_agent: user_agent.clone(),
        ua: ua.clone(),
        now: s.now(),
    };
    let novelty = match s.store.record_device_sign_in(&sighting).await {
        Ok(n) => n,
        Err(error) => return tracing::error!(%error, "could not record the device of a sign-in"),
    };
    let Some(detail) = novelty.notice_detail() else { return };
    let label = ua.label();
    let summary = match &novelty {
        DeviceNovelty::Changed { previous_label } => {
            format!("Your account was signed in to from {label}, with the device cookie of {previous_label}")
        }
        DeviceNovelty::New { first_for_user: true } => format!("First sign-in to your account, from {label}"),
        _ => format!("New sign-in to your account from {label}"),
    };
    let body = NoticeBody {
        summary,
        detail: Some(detail.to_owned()),
        ip: caller.ip.clone(),
        device: Some(label),
        user_agent,
        client_id: None,
        not_me_url: None,
    };
    let activity = AccountActivity {
        activity: Activity::NewDevice,
        device_id: Some(device_id.to_owned()),
        client_id: None,
        detail: Some(detail.to_owned()),
    };
    let principal = Principal { sub: Some(sub.to_owned()), sid: Some(sid.to_owned()), ..caller.principal() };
    s.account_activity(principal, activity, body).await;
}

/// How stale a session's recorded last use may get: a session used all the time is written once a minute, not on
/// every request.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Sessions remembered before the memory is cleared (it only saves writes; forgetting costs one write each).
const MAX_TOUCHES: usize = 10_000;

/// When this process last recorded each session's use.
#[derive(Default)]
pub(crate) struct SessionTouches(std::sync::Mutex<std::collections::HashMap<String, argus_model::Timestamp>>);

impl Issuer {
    /// Session `sid` was used now (its cookie at `/authorize`, a refresh of one of its families): record it, at most
    /// once a minute per session and process, so a busy session costs one write a minute. A failure is logged,
    /// never fails the request.
    pub(crate) async fn touch_session(&self, sid: &str) {
        let now = self.now();
        {
            let mut seen = self.session_touches.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.get(sid).is_some_and(|last| now.since(*last) < TOUCH_EVERY) {
                return;
            }
            if seen.len() >= MAX_TOUCHES {
                seen.clear();
            }
            seen.insert(sid.to_owned(), now);
        }
        if let Err(error) = self.store.touch_session(sid, now).await {
            tracing::warn!(%error, "could not record a session's use");
        }
    }
}
