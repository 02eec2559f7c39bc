//! The storage the issuer needs, as a trait the store implements, and the records it keeps.
//!
//! Every secret (authorization code, refresh token, session cookie, request handle, CSRF token) arrives here as its
//! SHA-256 ([`crate::hash_secret`]); the store never sees one in the clear. Operations that must not happen twice
//! (redeeming a code, rotating a refresh token) are single atomic methods, so two concurrent requests cannot both
//! succeed.

use argus_model::{Revocation, Timestamp};

use crate::client::ClientRegistration;

/// A storage failure. The message is for logs; it carries no secret.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

/// A signing key as stored. The private key is needed to sign, so it is the one secret kept in the clear (PKCS#8
/// DER, base64url in the database).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    /// `ES256`.
    pub alg: String,
    pub pkcs8_der: Vec<u8>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// An end user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable, opaque subject identifier.
    pub sub: String,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("sub", &self.sub)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A validated authorization request waiting for login and consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// Hash of the random handle the login and consent forms carry.
    pub handle_hash: String,
    /// Hash of the browser-binding cookie set at `/authorize`.
    pub browser_hash: String,
    /// Hash of the CSRF token the forms carry.
    pub csrf_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// Canonical `prompt` value (see [`crate::Prompt::to_param`]).
    pub prompt: String,
    /// The DPoP key thumbprint the code will be bound to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// `max_age` of the request (see [`crate::AuthRequirement::to_stored`]).
    pub max_age: Option<u64>,
    /// `acr_values` of the request, space-separated.
    pub acr_values: Option<String>,
    /// The resources (RFC 8707) the grant is to cover; empty when the request named none.
    pub resources: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A pushed authorization request (RFC 9126), validated when pushed, waiting for the browser at `/authorize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    /// Hash of the random part of the `request_uri`.
    pub request_uri_hash: String,
    /// The client that pushed it: only this client can use it.
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// Canonical `prompt` value.
    pub prompt: String,
    /// The DPoP key thumbprint the code will be bound to.
    pub dpop_jkt: Option<String>,
    /// `max_age` of the request.
    pub max_age: Option<u64>,
    /// `acr_values` of the request, space-separated.
    pub acr_values: Option<String>,
    /// The resources (RFC 8707) the grant is to cover; empty when the request named none.
    pub resources: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A sign-in session at the issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub sid: String,
    /// Hash of the session cookie.
    pub cookie_hash: String,
    pub sub: String,
    /// When the user last signed in (a sign-in again in the same browser renews it: [`IssuerStore::renew_session`]).
    pub auth_time: Timestamp,
    /// The level that sign-in reached, as its `acr` value ([`crate::AuthLevel::acr`]).
    pub acr: String,
    pub expires_at: Timestamp,
}

/// A user's consent to a client, for a set of scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentGrant {
    pub sub: String,
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    pub granted_at: Timestamp,
}

/// An access token as far as revocation needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedAccess {
    pub jti: String,
    pub expires_at: Timestamp,
}

/// An authorization code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub sub: String,
    pub sid: String,
    /// The session's sign-in when the code was issued.
    pub auth_time: Timestamp,
    /// The `acr` the code's tokens state ([`crate::AuthRequirement::acr_claim`]).
    pub acr: String,
    pub expires_at: Timestamp,
    /// Set when redeemed.
    pub used_at: Option<Timestamp>,
    /// The refresh family the redemption started, so a second redemption can revoke it.
    pub family_id: Option<String>,
    /// The access token the redemption issued.
    pub access: Option<IssuedAccess>,
    /// The DPoP key the code is bound to: the token request must prove possession of it (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// The resources (RFC 8707) the grant covers; empty: the default audience only.
    pub resources: Vec<String>,
}

/// A refresh token of a rotation family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub sub: String,
    pub sid: Option<String>,
    /// The scopes granted to the family; never wider after rotation.
    pub scope: String,
    pub auth_time: Option<Timestamp>,
    pub created_at: Timestamp,
    /// When this token stops working unless rotated: the idle lifetime, never later than the family's end.
    pub expires_at: Timestamp,
    /// The family's absolute end, counted from the sign-in; rotation never moves it. Written when the family is
    /// created ([`IssuerStore::redeem_code`]), read-only afterwards.
    pub family_expires_at: Timestamp,
    /// The DPoP key the family is bound to (public clients, RFC 9449 §5): every refresh must prove possession of
    /// it. Written when the family is created, read-only afterwards.
    pub jkt: Option<String>,
    /// Set when rotated (or redeemed).
    pub consumed_at: Option<Timestamp>,
    /// Set when the whole family was revoked. Read-only: set by [`IssuerStore::revoke_family`].
    pub family_revoked_at: Option<Timestamp>,
    /// The device the family was started on (`did` of its access tokens), if known. Read-only: the store copies it
    /// from the sign-in session when the family is created.
    pub device: Option<String>,
    /// The `acr` of the sign-in the family came from, stated by every token of the family (`None` for families
    /// created before it was recorded). Written when the family is created, read-only afterwards.
    pub acr: Option<String>,
    /// The resources (RFC 8707) the family's grant covers (empty: the default audience only); a refresh picks one,
    /// never another. Written when the family is created, read-only afterwards.
    pub resources: Vec<String>,
    /// The access token issued together with this refresh token.
    pub access: IssuedAccess,
}

/// The result of [`IssuerStore::redeem_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedeemOutcome {
    /// The code was unused and unexpired; it is now used and the refresh token stored.
    Redeemed,
    /// The code had been used (or expired, or vanished) meanwhile; nothing was written.
    NotRedeemable,
}

/// The result of [`IssuerStore::rotate_refresh`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is consumed and the new one stored.
    Rotated,
    /// The old token had been consumed (or its family revoked) meanwhile; nothing was written.
    NotRotatable,
}

/// Everything the issuer stores. Implemented by `argus_store::Store`.
///
/// The admin operations' storage ([`crate::admin::AdminStore`]) and the second factors'
/// ([`crate::SecondFactorStore`]) come with it, so the issuer reaches both through
/// one handle.
#[async_trait::async_trait]
pub trait IssuerStore:
    crate::admin::AdminStore
    + crate::totp::SecondFactorStore
    + crate::throttle::ThrottleStore
    + crate::passkey::PasskeyStore
    + crate::notice::NoticeStore
    + crate::step_up_demand::StepUpDemandStore
    + crate::account::AccountStore
    + Send
    + Sync
    + 'static
{
    /// Every signing key, oldest first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StorageError>;
    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), StorageError>;

    /// Create the user with `new_sub`, or, if `username` exists, replace its password hash and enable it. Returns
    /// the user's `sub` (the existing one when the user existed).
    async fn upsert_user(
        &self,
        new_sub: &str,
        username: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<String, StorageError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StorageError>;
    async fn user_by_sub(&self, sub: &str) -> Result<Option<UserRecord>, StorageError>;

    /// Create or replace a client registration, every field as given (read, change and write back to keep a field,
    /// e.g. the secret hash). Callers validate first ([`ClientRegistration::validate`]).
    async fn upsert_client(&self, client: &ClientRegistration, now: Timestamp) -> Result<(), StorageError>;
    /// One client registration, disabled or not.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRegistration>, StorageError>;
    /// Every client registration, disabled ones included, by `client_id`.
    async fn clients(&self) -> Result<Vec<ClientRegistration>, StorageError>;
    /// At most `limit` client registrations whose `client_id` comes after `after` (from the first without it), by
    /// `client_id`: one page of [`IssuerStore::clients`].
    async fn clients_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<ClientRegistration>, StorageError>;
    /// Disable or enable a client; `false` if there is no such client. Disabling does not revoke tokens already
    /// issued: the caller publishes the revocation (scope `Client`).
    async fn set_client_disabled(&self, client_id: &str, disabled: bool, now: Timestamp) -> Result<bool, StorageError>;

    async fn insert_pending(&self, pending: &PendingAuthorization) -> Result<(), StorageError>;
    /// The pending request with this handle hash, if not expired at `now`.
    async fn pending(&self, handle_hash: &str, now: Timestamp) -> Result<Option<PendingAuthorization>, StorageError>;
    /// Remove the pending request; `true` if this call removed it (so only one consent decision can use it).
    async fn take_pending(&self, handle_hash: &str, now: Timestamp) -> Result<bool, StorageError>;

    async fn insert_pushed_request(&self, request: &PushedRequest) -> Result<(), StorageError>;
    /// Remove and return the pushed request with this hash if it belongs to `client_id` and is unexpired at `now`:
    /// a `request_uri` works once, for its own client.
    async fn take_pushed_request(
        &self,
        request_uri_hash: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<Option<PushedRequest>, StorageError>;

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StorageError>;
    /// A new sign-in in the browser of a live session of the same user: replace the session's cookie hash,
    /// `auth_time`, `acr` and expiry with `renewed`'s, keeping its `sid` (so revoking the session still reaches
    /// every token it issued, before and after). `false`, and nothing changed, if the session `renewed.sid` of
    /// `renewed.sub` has ended or expired at `now`.
    async fn renew_session(&self, renewed: &SessionRecord, now: Timestamp) -> Result<bool, StorageError>;
    /// The session with this cookie hash, if not expired at `now`.
    async fn session_by_cookie(&self, cookie_hash: &str, now: Timestamp)
    -> Result<Option<SessionRecord>, StorageError>;

    async fn consent(&self, sub: &str, client_id: &str) -> Result<Option<ConsentGrant>, StorageError>;
    /// Create or replace the grant of `sub` to `client_id`.
    async fn record_consent(&self, grant: &ConsentGrant) -> Result<(), StorageError>;

    async fn insert_code(&self, code: &AuthorizationCode) -> Result<(), StorageError>;
    async fn code(&self, code_hash: &str) -> Result<Option<AuthorizationCode>, StorageError>;
    /// Atomically: mark the code used (only if unused and unexpired at `now`), record the access token it issued,
    /// and, when the client gets one, create the refresh family of `first_refresh` and store that first token.
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: Timestamp,
        access: &IssuedAccess,
        first_refresh: Option<&RefreshToken>,
    ) -> Result<RedeemOutcome, StorageError>;

    /// The refresh token with this hash, with what its family adds (end, key, revocation, device): everything a
    /// refresh needs, in one read.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StorageError>;
    /// Atomically: consume `old_hash` at `now` (only if unconsumed, of `next`'s family and that family not revoked)
    /// and store `next`, created at `now`. The hot path of every refresh: one round trip where the store can.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        now: Timestamp,
        next: &RefreshToken,
    ) -> Result<RotateOutcome, StorageError>;
    /// Revoke a family (idempotent) and return the access tokens issued in it, for the caller to revoke too.
    async fn revoke_family(&self, family_id: &str, now: Timestamp) -> Result<Vec<IssuedAccess>, StorageError>;

    /// Keep a revocation until its `until`, so gates that start later can load it.
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StorageError>;
    /// The revocations still in force at `now`.
    async fn active_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>, StorageError>;
    /// At most `limit` of the revocations in force at `now` whose id comes after `after`, by id (ids are UUIDv7, so
    /// that is roughly the order they were made in): one page of [`IssuerStore::active_revocations`].
    async fn active_revocations_page(
        &self,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Revocation>, StorageError>;

    /// The server secret named `name`, storing `candidate` (created at `now`) as it first if there is none yet: every process over
    /// this store, and every restart, gets the same bytes (e.g. the key DPoP server nonces are derived from, so a
    /// nonce one process handed out is good at the next).
    async fn server_secret(&self, name: &str, candidate: &[u8], now: Timestamp) -> Result<Vec<u8>, StorageError>;

    /// Delete expired pending and pushed requests, sessions, codes, refresh tokens, families and revocations.
    /// Returns the rows removed.
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StorageError>;
}
