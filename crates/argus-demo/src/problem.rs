//! RFC 9457 problem details: the one shape every error of the demo API takes.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem document (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` URIs are `urn:argus:demo:problem:<slug>`: stable, and distinct from the gate's
/// `urn:argus:problem:<slug>` so a reader of a response knows which hop refused the call.
const TYPE_PREFIX: &str = "urn:argus:demo:problem:";

/// Why a call was refused. Each kind maps to one status, `type` slug and title in [`Kind::describe`], so a refusal
/// is classified once and rendered the same way everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No bearer token: the demo must only be reached through the gate.
    MissingToken,
    /// A bearer token whose payload carries no usable `sub`.
    InvalidToken,
    /// Malformed JSON, a field out of range, an unknown field, or a transfer that makes no sense.
    InvalidRequest,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body exceeds the demo's limit.
    BodyTooLarge,
    /// `from_account` of a transfer is not one of the caller's accounts.
    NotAccountOwner,
    /// The source account's balance does not cover the amount.
    InsufficientFunds,
    /// No such resource (or, for ownership-checked reads, not one the caller may see).
    NotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
}

impl Kind {
    fn describe(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::MissingToken => (StatusCode::UNAUTHORIZED, "missing-token", "A bearer token is required"),
            Self::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid-token", "The bearer token is not usable"),
            Self::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid-request", "The request is not valid"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "The body must be application/json")
            }
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "The request body is too large"),
            Self::NotAccountOwner => {
                (StatusCode::FORBIDDEN, "not-account-owner", "The source account is not one of yours")
            }
            Self::InsufficientFunds => (StatusCode::CONFLICT, "insufficient-funds", "Insufficient funds"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3): no error code when no token came at all.
    fn challenge(self) -> Option<&'static str> {
        match self {
            Self::MissingToken => Some(r#"Bearer realm="argus-demo""#),
            Self::InvalidToken => Some(r#"Bearer realm="argus-demo", error="invalid_token""#),
            _ => None,
        }
    }
}

/// A refusal, rendered as `application/problem+json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    kind: Kind,
    detail: String,
}

impl Problem {
    /// A problem of `kind` with a human-readable `detail` about this occurrence. The detail talks about the
    /// caller's own input only; it never names internals.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }

    /// The classification of this problem.
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.kind.describe();
        let body = ProblemBody {
            r#type: format!("{TYPE_PREFIX}{slug}"),
            title,
            status: status.as_u16(),
            detail: &self.detail,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self.kind.challenge() {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_slug_and_an_error_status() {
        let kinds = [
            Kind::MissingToken,
            Kind::InvalidToken,
            Kind::InvalidRequest,
            Kind::UnsupportedMediaType,
            Kind::BodyTooLarge,
            Kind::NotAccountOwner,
            Kind::InsufficientFunds,
            Kind::NotFound,
            Kind::MethodNotAllowed,
        ];
        let mut slugs: Vec<_> = kinds.iter().map(|k| k.describe().1).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), kinds.len());
        assert!(kinds.iter().all(|k| k.describe().0.is_client_error()));
    }

    #[test]
    fn only_401s_carry_a_bearer_challenge() {
        let missing = Problem::new(Kind::MissingToken, "x").into_response();
        let challenge = missing.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some(r#"Bearer realm="argus-demo""#));
        let invalid = Problem::new(Kind::InvalidToken, "x").into_response();
        let challenge = invalid.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some(r#"Bearer realm="argus-demo", error="invalid_token""#));
        let not_found = Problem::new(Kind::NotFound, "x").into_response();
        assert!(not_found.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(not_found.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some(PROBLEM_JSON));
    }
}
