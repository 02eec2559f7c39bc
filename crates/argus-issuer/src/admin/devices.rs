//! Devices: the long-lived `argus_device` cookie that tells one browser from another across sign-ins, so that "sign
//! out this device" can end its sessions, its refresh families and (through the `did` claim) its live access tokens.
//!
//! The cookie holds a 256-bit random secret; the store keeps its hash and a public device id. HttpOnly,
//! SameSite=Lax, Path=/, Secure over https, 400 days (the longest lifetime browsers keep, RFC 6265bis), renewed at
//! every sign-in.

use std::time::Duration;

use argus_model::id::{new_id, random_secret};
use argus_oauth::admin::DeviceRecord;
use argus_oauth::{StorageError, hash_secret};
use axum::http::{HeaderMap, HeaderValue};

use crate::cookies;
use crate::state::Issuer;

/// The device cookie.
pub(crate) const DEVICE_COOKIE: &str = "argus_device";
/// 400 days, in seconds.
const DEVICE_TTL_SECS: u64 = 400 * 24 * 3600;

/// Recognise the browser by its device cookie, or register it as a new device, and record the device on session
/// `sid`. Returns the `Set-Cookie` that (re)sets the cookie for another 400 days.
pub(crate) async fn bind_device(
    s: &Issuer,
    headers: &HeaderMap,
    sid: &str,
) -> Result<Option<HeaderValue>, StorageError> {
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
    Ok(cookies::set(DEVICE_COOKIE, &cookie, Some(DEVICE_TTL_SECS), s.secure_cookies))
}
