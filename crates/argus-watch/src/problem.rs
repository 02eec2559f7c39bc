//! RFC 9457 problem details for the watch API.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The prefix of every problem `type` this API returns; the last segment is stable and documented.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:argus:problem:";

/// The realm of the watch API's challenges.
const REALM: &str = "argus-watch";

/// An error answer: `application/problem+json` with a stable `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `urn:argus:problem:<slug>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short, fixed summary of the type.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong with this request; never internal detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750 §3).
    #[serde(skip)]
    pub challenge: Option<String>,
}

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: Option<String>) -> Self {
        Self {
            type_uri: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            challenge: None,
        }
    }

    fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// 401 without a token: the bare challenge (RFC 6750 §3.1: no error code when no credentials were sent).
    pub fn missing_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "missing-token", "Authentication required", None)
            .with_challenge(format!("Bearer realm=\"{REALM}\""))
    }

    /// 401 `invalid_token`: expired, revoked, malformed, not an admin token ...; `detail` is for the caller.
    pub fn invalid_token(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid-token", "Invalid token", Some(detail.to_owned())).with_challenge(
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{detail}\""),
        )
    }

    /// 400 `invalid_request` of RFC 6750: the credentials are sent in a way that cannot be read.
    pub fn invalid_token_request(detail: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", "Invalid request", Some(detail.to_owned()))
            .with_challenge(format!("Bearer realm=\"{REALM}\", error=\"invalid_request\""))
    }

    /// 403 `insufficient_scope`: a valid token without `scope`.
    pub fn insufficient_scope(scope: &str) -> Self {
        let detail = format!("The token lacks the scope {scope}");
        Self::new(StatusCode::FORBIDDEN, "insufficient-scope", "Insufficient scope", Some(detail))
            .with_challenge(format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""))
    }

    /// 409: the request conflicts with the state of the resource (e.g. undoing a revocation); `detail` says why.
    pub fn conflict(slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title, Some(detail.into()))
    }

    /// 400: a query parameter or path segment that cannot be used; `detail` says which.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", "Invalid request", Some(detail.into()))
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", Some(detail.into()))
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", None)
    }

    /// 500, without detail: the cause goes to the log, not to the caller.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", None)
    }

    /// 503.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", Some(detail.into()))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let challenge = self.challenge.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
