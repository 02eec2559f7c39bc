//! The issuer: Argus's OAuth 2.x authorization server and OpenID provider, as an axum router.
//!
//! Authorization code + PKCE (S256), pushed authorization requests (RFC 9126), the login and consent pages, second
//! factors — TOTP with recovery codes, WebAuthn passkeys — (the `urn:argus:acr:mfa` level of step-up), refresh-token
//! rotation with reuse detection and a concurrency leeway, client credentials; public, secret and `private_key_jwt`
//! clients; DPoP-bound tokens with server nonces (RFC 9449); revocation (RFC 7009), introspection (RFC 7662), RFC
//! 9068 JWT access tokens, id_tokens, userinfo, discovery (RFC 8414 / OIDC) and JWKS. The rules live in
//! `argus_oauth`; this crate does the HTTP, the cookies, the pages, the keys and the events.
#![forbid(unsafe_code)]

mod account;
mod admin;
mod authorize;
mod blocks;
mod client_auth;
mod config;
mod cookies;
mod discovery;
mod dpop;
mod error;
mod events;
mod flow;
mod introspect;
mod keys;
pub mod outbox;
mod pages;
mod par;
mod passkey;
pub mod provision;
mod registry;
mod revoke;
mod second_factor;
mod state;
mod token;
mod triggers;
mod userinfo;

use std::sync::Arc;

use argus_bus::{ControlChannel, EventBus};
use argus_cache::ReplayCache;
use argus_model::Clock;
use argus_oauth::IssuerStore;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use config::IssuerConfig;
pub use error::IssuerError;
pub use keys::key_timing;
pub use outbox::{NotifyConfig, SmtpConfig, SmtpTls};

/// What the issuer needs from the process that runs it.
pub struct IssuerDeps {
    pub store: Arc<dyn IssuerStore>,
    pub events: EventBus,
    pub control: ControlChannel,
    pub clock: Arc<dyn Clock>,
    /// Remembers DPoP proof and client assertion `jti`s. Issuers behind one load balancer must share it.
    pub replay: Arc<dyn ReplayCache>,
    /// The secret DPoP server nonces are derived from (at least 32 bytes). Issuers behind one load balancer must
    /// share it, or a nonce from one is refused by the next.
    pub dpop_nonce_secret: Vec<u8>,
    /// Watch's blocks in force when the issuer starts (from the store); later ones come over `control`.
    pub initial_blocks: Vec<argus_model::Block>,
}

/// The largest request body the issuer reads. Its forms and token requests are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The issuer's router.
///
/// `issuer_url`: the `iss` value and base of every endpoint URL (e.g. "http://127.0.0.1:7400", no trailing slash).
/// `audience`: the `aud` of access tokens (the gate's API identifier).
/// Loads the signing key from the store, creating and storing an ES256 key on first start.
pub async fn router(
    config: &IssuerConfig,
    issuer_url: &str,
    audience: &str,
    deps: IssuerDeps,
) -> Result<Router, IssuerError> {
    let state = Arc::new(state::Issuer::new(config, issuer_url, audience, deps).await?);
    triggers::follow_events(&state);
    Ok(Router::new()
        .route("/.well-known/openid-configuration", get(discovery::metadata))
        .route("/.well-known/oauth-authorization-server", get(discovery::metadata))
        .route("/jwks", get(discovery::jwks))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(flow::login))
        .route("/login/totp", post(second_factor::second_factor))
        .route("/account/totp", get(account::totp_enrolment).post(account::confirm_totp))
        .merge(account::routes())
        .route("/account/passkeys", get(passkey::passkeys_page))
        .route("/account/passkeys/register/start", post(passkey::register_start))
        .route("/account/passkeys/register/finish", post(passkey::register_finish))
        .route("/account/passkeys/remove", post(passkey::remove))
        .route("/login/passkey/start", post(passkey::sign_in_start))
        .route("/login/passkey/finish", post(passkey::sign_in_finish))
        .route("/passkey.js", get(passkey::script))
        .route("/consent", post(flow::consent))
        .route("/token", post(token::token))
        .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .route("/revoke", post(revoke::revoke))
        .merge(admin::routes())
        .route("/introspect", post(introspect::introspect))
        .route("/par", post(par::par))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state))
}
