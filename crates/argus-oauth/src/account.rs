//! The user's own account: the storage the account page needs beyond devices and notices ([`AccountStore`]) and
//! its pure rules — the signed, single-use "this wasn't me" link ([`not_me_token`], [`check_not_me_token`]), the
//! tickets that tie a form to what it acts on ([`form_mac`]), and what a new password must be
//! ([`check_new_password`]).
//!
//! Every signed value here is an HMAC-SHA256 under one server key kept in the store, each kind under its own label
//! so a value of one kind is never accepted as another.

use std::time::Duration;

use argus_model::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Serialize;

use crate::store::StorageError;

/// The scope an access token needs for the account API (`/account/api/...`).
pub const ACCOUNT_SCOPE: &str = "account";

/// How long a "this wasn't me" link works: long enough to read the mail after a weekend.
pub const NOT_ME_LINK_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// The shortest new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// One app the user granted access to, for the account page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantView {
    pub client_id: String,
    /// The app's name as its registration gives it.
    pub client_name: String,
    /// Space-separated scopes granted.
    pub scope: String,
    pub granted_at: Timestamp,
    /// The last token issued or refreshed for this user and app (recorded at most once a minute); `None` before.
    pub last_used_at: Option<Timestamp>,
}

/// The storage of the account page beyond [`crate::notice::NoticeStore`]. Implemented by `argus_store::Store`.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// The user's grants (consents) with their app's name, most recently granted first.
    async fn user_grants(&self, sub: &str) -> Result<Vec<GrantView>, StorageError>;
    /// A token was issued or refreshed for `sub` at `client_id` at `now`.
    async fn touch_grant(&self, sub: &str, client_id: &str, now: Timestamp) -> Result<(), StorageError>;

    /// Whether the user's password must be reset ("this wasn't me"): until a new one is set, the current one signs
    /// nobody in. Any new password clears it ([`crate::admin::AdminStore::update_user`]).
    async fn must_change_password(&self, sub: &str) -> Result<bool, StorageError>;
    /// Set or clear that mark; `false` if there is no such user.
    async fn set_must_change_password(&self, sub: &str, must: bool) -> Result<bool, StorageError>;

    /// End every live session of `sub` but `keep` (their cookies stop working). Returns how many ended.
    async fn end_sessions(&self, sub: &str, keep: Option<&str>, now: Timestamp) -> Result<u64, StorageError>;
    /// End one session of `sub`; `false` if it was not live.
    async fn end_session(&self, sub: &str, sid: &str, now: Timestamp) -> Result<bool, StorageError>;

    /// One notice by id, of whichever user.
    async fn notice(&self, id: &str) -> Result<Option<crate::notice::NoticeRecord>, StorageError>;
    /// Record the one use of link `id` (valid until `expires_at`): `true` for the first use, `false` ever after.
    /// Forgets uses of links expired at `now`, which cannot be used anyway.
    async fn use_link_once(&self, id: &str, now: Timestamp, expires_at: Timestamp) -> Result<bool, StorageError>;
    /// Whether link `id` was used.
    async fn link_used(&self, id: &str) -> Result<bool, StorageError>;

    /// Record that `sub`'s confirmed TOTP credential was set up from device `device_id`.
    async fn set_totp_device(&self, sub: &str, device_id: &str) -> Result<(), StorageError>;
    /// Record that passkey `id` of `sub` was registered from device `device_id`.
    async fn set_passkey_device(&self, sub: &str, id: &str, device_id: &str) -> Result<(), StorageError>;
    /// In one transaction, remove the second factors of `sub` enrolled from device `device_id` ("this wasn't me"):
    /// the TOTP credential with all recovery codes, and those passkeys. Factors enrolled elsewhere stay.
    async fn remove_device_factors(&self, sub: &str, device_id: &str) -> Result<DeviceFactors, StorageError>;
}

/// The second factors [`AccountStore::remove_device_factors`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceFactors {
    /// Whether the user's TOTP credential (and its recovery codes) went.
    pub totp: bool,
    /// The passkeys removed.
    pub passkeys: u64,
}

/// HMAC-SHA256 of `parts` (joined by newlines) under `label`, base64url.
pub fn form_mac(key: &[u8], label: &str, parts: &[&str]) -> String {
    B64URL.encode(mac(key, label, parts))
}

/// HMAC-SHA256 of `label`, then each part after a newline.
fn mac(key: &[u8], label: &str, parts: &[&str]) -> [u8; 32] {
    let mut input: Vec<&[u8]> = vec![label.as_bytes()];
    for p in parts {
        input.extend([b"\n".as_slice(), p.as_bytes()]);
    }
    argus_jose::hmac_sha256(key, &input)
}

/// Whether `presented` is [`form_mac`] of the same input, compared in constant time.
pub fn form_mac_ok(key: &[u8], label: &str, parts: &[&str], presented: &str) -> bool {
    B64URL.decode(presented).is_ok_and(|raw| argus_jose::ct_eq(&raw, &mac(key, label, parts)))
}

const NOT_ME_LABEL: &str = "argus not-me link v1";

/// The `t` of a "this wasn't me" link for notice `notice_id`: `<notice id>.<expiry, unix seconds>.<HMAC>`.
pub fn not_me_token(key: &[u8], notice_id: &str, expires_at: Timestamp) -> String {
    let exp = expires_at.as_secs().to_string();
    format!("{notice_id}.{exp}.{}", form_mac(key, NOT_ME_LABEL, &[notice_id, &exp]))
}

/// Why a "this wasn't me" link is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not one of ours, or changed.
    Invalid,
    Expired,
}

/// The notice id and expiry of a link token if its signature holds and it has not expired at `now`. The signature
/// is checked before anything the token says is believed.
pub fn check_not_me_token(key: &[u8], token: &str, now: Timestamp) -> Result<(String, Timestamp), LinkRefusal> {
    let mut parts = token.splitn(3, '.');
    let (Some(id), Some(exp), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(LinkRefusal::Invalid);
    };
    let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let exp_ok = !exp.is_empty() && exp.len() <= 12 && exp.bytes().all(|b| b.is_ascii_digit());
    if !(id_ok && exp_ok && form_mac_ok(key, NOT_ME_LABEL, &[id, exp], sig)) {
        return Err(LinkRefusal::Invalid);
    }
    let expires_at = Timestamp::from_secs(exp.parse().map_err(|_| LinkRefusal::Invalid)?);
    if now >= expires_at {
        return Err(LinkRefusal::Expired);
    }
    Ok((id.to_owned(), expires_at))
}

/// Why a new password is refused: a sentence for the form.
pub fn check_new_password(new: &str, again: &str) -> Result<(), &'static str> {
    if new != again {
        return Err("The two new passwords are not the same.");
    }
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Err("The new password must have at least 12 characters.");
    }
    if new.len() > crate::admin::MAX_PASSWORD_BYTES {
        return Err("The new password is too long.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn not_me_links_verify_and_expire() {
        let exp = Timestamp::from_secs(2_000);
        let t = not_me_token(KEY, "0190-abc", exp);
        assert_eq!(check_not_me_token(KEY, &t, Timestamp::from_secs(1_000)), Ok(("0190-abc".into(), exp)));
        assert_eq!(check_not_me_token(KEY, &t, exp), Err(LinkRefusal::Expired));
        assert_eq!(
            check_not_me_token(b"another key, another key, another", &t, Timestamp::from_secs(1)).unwrap_err(),
            LinkRefusal::Invalid
        );
    }

    #[test]
    fn tampered_links_are_refused() {
        let t = not_me_token(KEY, "n1", Timestamp::from_secs(2_000));
        let now = Timestamp::from_secs(1_000);
        let (id, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        for bad in [
            format!("n2.{rest}"),
            format!("{id}.9999999.{sig}"),
            format!("{id}.2000.{}", sig.replace(|c: char| c != 'A', "A")),
            format!("{id}.2000"),
            String::new(),
            format!("{id}/x.2000.{sig}"),
            format!("{t}x"),
        ] {
            assert_eq!(check_not_me_token(KEY, &bad, now), Err(LinkRefusal::Invalid), "{bad}");
        }
    }

    #[test]
    fn form_macs_are_labelled() {
        let m = form_mac(KEY, "a", &["x", "y"]);
        assert!(form_mac_ok(KEY, "a", &["x", "y"], &m));
        assert!(!form_mac_ok(KEY, "b", &["x", "y"], &m));
        assert!(!form_mac_ok(KEY, "a", &["x", "z"], &m));
        assert!(!form_mac_ok(KEY, "a", &["x", "y"], "not base64 !"));
    }

    #[test]
    fn new_passwords() {
        assert!(check_new_password("long enough pass", "long enough pass").is_ok());
        assert!(check_new_password("long enough pass", "long enough pasS").is_err());
        assert!(check_new_password("short", "short").is_err());
        assert!(check_new_password("ééééééééééé", "ééééééééééé").is_err(), "11 characters, 22 bytes");
        let huge = "x".repeat(2000);
        assert!(check_new_password(&huge, &huge).is_err());
    }
}
