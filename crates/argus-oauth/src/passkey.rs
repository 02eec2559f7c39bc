//! WebAuthn passkeys as a second factor: the records the issuer keeps, the storage it needs, and the small rules
//! that need no WebAuthn library (names, the ceremony lifetime, the `amr` of a passkey sign-in).
//!
//! The WebAuthn ceremonies themselves (challenges, signatures, counters) are `webauthn-rs`'s, in the issuer; here the
//! passkey and a ceremony's state are opaque JSON.

use argus_model::Timestamp;

use crate::store::StorageError;
use crate::totp::{AMR_MFA, AMR_PASSWORD};

/// RFC 8176 `pop`: proof of possession of a key. Passkeys come without attestation, so whether the key is in
/// hardware (`hwk`) or software (`swk`) is unknown; `pop` says what was proven and no more.
pub const AMR_POP: &str = "pop";

/// The `amr` of a sign-in with a password and a passkey. The passkey was used with user verification (webauthn-rs
/// requires it), so the methods are the password, the key, and together more than one factor.
pub const PASSKEY_AMR: [&str; 3] = [AMR_PASSWORD, AMR_POP, AMR_MFA];

/// How long a registration or sign-in ceremony may take between its start and finish requests: the browser's own
/// timeout for the user to touch the authenticator is 5 minutes (webauthn-rs's default), plus a little.
pub const CEREMONY_TTL_SECS: u64 = 6 * 60;

/// The longest passkey name kept, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// Passkeys one user may register: enough for every device they own, few enough that a sign-in's list of allowed
/// credentials stays small.
pub const MAX_PASSKEYS_PER_USER: usize = 20;

/// A name for a passkey as the user typed it: trimmed, control characters refused, at most
/// [`MAX_PASSKEY_NAME_CHARS`] characters. Empty input gets `default`.
pub fn passkey_name(input: &str, default: &str) -> Option<String> {
    let name = input.trim();
    if name.chars().any(char::is_control) || name.chars().count() > MAX_PASSKEY_NAME_CHARS {
        return None;
    }
    Some(if name.is_empty() { default.to_owned() } else { name.to_owned() })
}

/// A registered passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Our identifier (the remove button names it); not the WebAuthn credential id.
    pub id: String,
    pub sub: String,
    /// The WebAuthn credential id, base64url: unique across all users.
    pub credential_id: String,
    /// The library's passkey (public key, signature counter, backup state) as JSON. Public data only.
    pub passkey_json: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// The state of a ceremony between its start and finish requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CeremonyState {
    /// The hash of what the ceremony is bound to, under a label naming the kind of ceremony.
    pub key_hash: String,
    /// The user the ceremony is for.
    pub sub: String,
    /// The library's ceremony state as JSON (holds the challenge).
    pub state_json: String,
    pub expires_at: Timestamp,
}

/// The storage of passkeys and their ceremonies. Implemented by `argus_store::Store`.
#[async_trait::async_trait]
pub trait PasskeyStore: Send + Sync {
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, sub: &str) -> Result<Vec<PasskeyRecord>, StorageError>;
    /// Whether the user has at least one passkey.
    async fn has_passkey(&self, sub: &str) -> Result<bool, StorageError>;
    /// Store a new passkey; `false`, and nothing changed, if its credential id is registered already (to anyone).
    async fn add_passkey(&self, passkey: &PasskeyRecord) -> Result<bool, StorageError>;
    /// After a sign-in with the passkey: replace its JSON (new counter, backup state) and set its last use, only if
    /// the stored JSON is still `expected_json`. `false` if it is not: another sign-in with it came first, and this
    /// one must fail (two assertions with one counter value cannot both pass).
    async fn record_passkey_use(
        &self,
        sub: &str,
        credential_id: &str,
        expected_json: &str,
        updated_json: &str,
        now: Timestamp,
    ) -> Result<bool, StorageError>;
    /// Remove the passkey `id` of `sub`; `false` if there is none.
    async fn remove_passkey(&self, sub: &str, id: &str) -> Result<bool, StorageError>;

    /// Store a ceremony's state, replacing one under the same key (the user started again). Expired states are
    /// dropped on the way.
    async fn put_ceremony(&self, state: &CeremonyState, now: Timestamp) -> Result<(), StorageError>;
    /// Remove and return the ceremony under `key_hash` if unexpired at `now`: a state serves one finish request.
    async fn take_ceremony(&self, key_hash: &str, now: Timestamp) -> Result<Option<CeremonyState>, StorageError>;

    /// Remember that the sign-in of session `sid` at `auth_time` was completed with a passkey, until `expires_at`.
    async fn record_passkey_sign_in(
        &self,
        sid: &str,
        auth_time: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Whether the sign-in of session `sid` at `auth_time` was completed with a passkey.
    async fn was_passkey_sign_in(&self, sid: &str, auth_time: Timestamp) -> Result<bool, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(passkey_name("  Laptop  ", "Passkey").as_deref(), Some("Laptop"));
        assert_eq!(passkey_name("", "Passkey").as_deref(), Some("Passkey"));
        assert_eq!(passkey_name("   ", "Passkey").as_deref(), Some("Passkey"));
        assert_eq!(passkey_name(&"é".repeat(MAX_PASSKEY_NAME_CHARS), "P").map(|n| n.chars().count()), Some(64));
        assert_eq!(passkey_name(&"a".repeat(MAX_PASSKEY_NAME_CHARS + 1), "P"), None);
        assert_eq!(passkey_name("a\nb", "P"), None);
        assert_eq!(passkey_name("a\u{7f}b", "P"), None);
    }

    #[test]
    fn the_amr_of_a_passkey_sign_in_is_rfc_8176() {
        assert_eq!(PASSKEY_AMR, ["pwd", "pop", "mfa"]);
    }
}
