//! Administration: the storage it needs beyond [`IssuerStore`](crate::IssuerStore) ([`AdminStore`]), and its pure
//! rules — what a revocation by scope revokes and for how long gates keep it ([`revocation`]), what a user or client
//! record may contain and how an update applies ([`users`], [`clients`]), and when a signing key is published,
//! signs and leaves the JWKS ([`keys`]), and how lists are read a page at a time ([`paging`]).
//!
//! The HTTP surface (`/admin/v1/...` on the issuer) and the CLI only translate to and from these functions.

mod clients;
mod keys;
mod paging;
mod revocation;
mod users;

use argus_model::{RevocationScope, Timestamp};

use crate::store::{IssuedAccess, StorageError, UserRecord};

pub use clients::{ClientPatch, ClientView, NewClient, PatchOutcome, rotate_client_secret};
pub use keys::{KeyState, KeyTiming, ScheduledKey, key_schedule, next_key_change};
pub use paging::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, PageRequest, encode_cursor};
pub use revocation::{admin_revocation, backstop_revocations, validate_revocation_scope};
pub use users::{MAX_PASSWORD_BYTES, NewUser, UserPatch, UserView, validate_password, validate_username};

/// The scope an access token needs for the admin API. Only tokens of the client-credentials grant carry it there.
pub const ADMIN_SCOPE: &str = "argus:admin";

/// Why an admin operation was refused. Messages are for the administrator: they may name a field or echo a value
/// the administrator sent, never a secret or a password.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request is malformed or asks for something invalid.
    #[error("{0}")]
    Invalid(String),
    /// No such user, client or key.
    #[error("not found")]
    NotFound,
    /// The object exists already (a user name, a client id).
    #[error("{0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A browser the issuer recognises by its long-lived `argus_device` cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Public, opaque id: what access tokens carry as `did` and what an admin revokes.
    pub device_id: String,
    /// SHA-256 of the cookie value; the cookie itself is never stored.
    pub cookie_hash: String,
    pub created_at: Timestamp,
    /// The cookie's end; each sign-in on the device moves it forward.
    pub expires_at: Timestamp,
}

/// What a revocation by scope changed in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeEffects {
    /// Refresh-token families revoked by this call (families revoked before are not counted).
    pub families_revoked: u64,
    /// Sign-in sessions ended.
    pub sessions_ended: u64,
    /// Consents removed (scope `grant` only).
    pub consents_removed: u64,
    /// The access tokens issued in the families in scope that had not expired at the time of the call, so the
    /// caller can revoke them one by one as well.
    pub live_accesses: Vec<IssuedAccess>,
}

/// The storage admin operations need beyond [`IssuerStore`](crate::IssuerStore). Implemented by `argus_store::Store`.
#[async_trait::async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Create a user; `false` (and nothing written) if the `sub` or the user name is taken.
    async fn insert_user(&self, user: &UserRecord, now: Timestamp) -> Result<bool, StorageError>;
    /// At most `limit` users whose `sub` comes after `after` (from the first without it), by `sub`: one page of the
    /// users ([`PageRequest`]). Subs are UUIDv7, so that is the order they were created in.
    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<UserRecord>, StorageError>;
    /// Change a user's password hash and/or disabled flag; `false` if there is no such user. A new password hash
    /// also clears a required reset ([`crate::account::AccountStore::must_change_password`]).
    async fn update_user(
        &self,
        sub: &str,
        password_hash: Option<&str>,
        disabled: Option<bool>,
        now: Timestamp,
    ) -> Result<bool, StorageError>;

    /// In one transaction, everything a revocation of `scope` changes in the store: revoke the refresh families in
    /// scope, end the sessions in scope (`session`, `device`, `user`), remove the consent (`grant`). A `token`
    /// scope changes nothing here: one access token lives only at the gates.
    async fn revoke_scope(&self, scope: &RevocationScope, now: Timestamp) -> Result<ScopeEffects, StorageError>;

    async fn insert_device(&self, device: &DeviceRecord) -> Result<(), StorageError>;
    /// The id of the unexpired device with this cookie hash, after moving its expiry to `expires_at`.
    async fn touch_device(
        &self,
        cookie_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Option<String>, StorageError>;
    /// Record that session `sid` was signed in on device `device_id`. Refresh families started in the session
    /// are attached to the device too.
    async fn attach_device(&self, sid: &str, device_id: &str) -> Result<(), StorageError>;
    /// The device a session was signed in on.
    async fn session_device(&self, sid: &str) -> Result<Option<String>, StorageError>;
    /// The device a refresh family was started on.
    async fn family_device(&self, family_id: &str) -> Result<Option<String>, StorageError>;

    /// Delete expired devices. Returns the rows removed.
    async fn purge_expired_devices(&self, now: Timestamp) -> Result<u64, StorageError>;

    /// In one transaction, delete user `sub` and every row that is theirs: sessions, refresh families and tokens,
    /// codes, consents, TOTP and recovery codes, passkeys and ceremonies, notices and their deliveries, second-factor
    /// waits, and the devices no one else signed in on. `None` (and nothing changed) if there is no such user.
    /// Revocations stay: the gates must keep refusing the user's tokens until they expire.
    async fn delete_user(&self, sub: &str) -> Result<Option<UserDeletion>, StorageError>;
    /// Remove all of the user's passkeys and their unfinished passkey ceremonies. Returns the passkeys removed.
    async fn delete_passkeys(&self, sub: &str) -> Result<u64, StorageError>;
}

/// What deleting a user removed: the rows per table, for the tables that held any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDeletion {
    pub removed: Vec<(&'static str, u64)>,
}
