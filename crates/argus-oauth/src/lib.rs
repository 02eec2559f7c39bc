//! The OAuth 2.x / OpenID Connect core of the issuer: request validation, redirect-URI and scope rules, PKCE-bound
//! code redemption, refresh-token rotation decisions, token claims, password hashing, and the storage trait the
//! store implements.
//!
//! Pure: no sockets, no database, no clock of its own. Time arrives as [`argus_model::Timestamp`] arguments and
//! storage is behind [`IssuerStore`], so every rule here is testable without I/O.
#![forbid(unsafe_code)]

pub mod account;
mod acr;
pub mod admin;
mod authorize;
mod client;
mod client_auth;
mod consent;
mod error;
mod introspection;
pub mod notice;
mod params;
mod passkey;
mod password;
mod resource;
mod scope;
pub mod step_up_demand;
mod store;
mod throttle;
mod token;
mod totp;

pub use acr::{ACR_MFA, ACR_PASSWORD, AuthLevel, AuthRequirement, Authentication, amr_for_acr};
pub use authorize::{
    AuthorizationRequest, AuthorizeRejection, MAX_STATE_LEN, NextStep, Prompt, authorization_response_url,
    next_step_after_login, next_step_at_authorize, validate_authorize,
};
pub use client::{
    ClientError, ClientRegistration, GrantType, MAX_CLIENT_TTL_SECS, TokenEndpointAuthMethod, hash_client_secret,
    new_client_secret, redirect_uri_matches,
};
pub use client_auth::{
    AssertionCheck, CLIENT_ASSERTION_ALGORITHMS, Credentials, JWT_BEARER_CLIENT_ASSERTION_TYPE, VerifiedAssertion,
    authenticate_client, read_credentials, verify_client_assertion,
};
pub use consent::describe_scope;
pub use error::{ErrorCode, OAuthError};
pub use introspection::{INTROSPECT_SCOPE, Introspection, is_user_token, may_introspect, refresh_token_is_active};
pub use params::{Params, Repeated};
pub use passkey::{
    AMR_POP, CEREMONY_TTL_SECS, CeremonyState, MAX_PASSKEY_NAME_CHARS, MAX_PASSKEYS_PER_USER, PASSKEY_AMR,
    PasskeyRecord, PasskeyStore, passkey_name,
};
pub use password::{PasswordError, hash_password, login_outcome, verify_password, verify_password_against_dummy};
pub use resource::{Resources, is_resource_uri, resources_from_stored, resources_to_stored};
pub use scope::Scopes;
pub use store::{
    AuthorizationCode, ConsentGrant, IssuedAccess, IssuerStore, PendingAuthorization, PushedRequest, RedeemOutcome,
    RefreshToken, RotateOutcome, SessionRecord, StorageError, StoredSigningKey, UserRecord,
};
pub use throttle::{
    LoginThrottle, ThrottleDecision, ThrottleKeys, ThrottleRule, ThrottleState, ThrottleStore, throttle_decision,
    throttle_keys,
};
pub use token::{
    CodeCheck, CodePresentation, IdTokenClaims, RefreshCheck, TokenSubject, access_claims, at_hash, check_code_grant,
    check_refresh_grant, client_credentials_scope, hash_secret, id_token_claims, live_accesses, narrow_scope,
    new_refresh_token, refresh_expiry, refresh_token_key, rotated_check, token_revocation,
};
pub use totp::{
    AMR_MFA, AMR_OTP, AMR_PASSWORD, MAX_SECOND_FACTOR_FAILURES, RECOVERY_CODE_BYTES, RECOVERY_CODE_COUNT,
    SecondFactorStore, TOTP_SECRET_LEN, TotpCheck, TotpCredential, check_totp, format_recovery_code,
    normalize_recovery_code, otpauth_uri, totp_secret_base32,
};
