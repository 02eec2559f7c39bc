//! The standard error codes of RFC 6749, RFC 6750, RFC 7009, RFC 8707, RFC 9449 and OpenID Connect, with a fixed
//! description.

use std::fmt;

/// A standard OAuth / OIDC error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    /// RFC 9449 §7.1: the DPoP proof is missing where required, malformed, or does not match the request.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server nonce sent in the `DPoP-Nonce` header.
    UseDpopNonce,
    /// RFC 8707 §2: a `resource` is not an absolute URI without fragment, not a resource of this issuer, or not one
    /// the grant covers.
    InvalidTarget,
}

impl ErrorCode {
    /// The code as it goes on the wire (`invalid_request`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidTarget => "invalid_target",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: a standard code and a fixed, human-readable description.
///
/// The description is `&'static str` on purpose: it can never carry request data or a secret back to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: &'static str,
}

impl OAuthError {
    pub const fn new(code: ErrorCode, description: &'static str) -> Self {
        Self { code, description }
    }

    pub const fn invalid_request(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub const fn invalid_grant(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub const fn invalid_scope(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub const fn invalid_client(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub const fn unauthorized_client(description: &'static str) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    pub const fn invalid_dpop_proof(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidDpopProof, description)
    }

    pub const fn invalid_target(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }
}
