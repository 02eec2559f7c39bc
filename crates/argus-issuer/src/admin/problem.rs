//! RFC 9457 problem answers of the admin API, and RFC 6750 challenges for its token errors.

use argus_oauth::admin::AdminError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Prefix of every problem `type` (the gate's too).
const TYPE_PREFIX: &str = "urn:argus:problem:";

/// An error answer: status, stable `type`, a fixed title and a detail for the administrator.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    /// `WWW-Authenticate` value (RFC 6750 §3) for token errors.
    challenge: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl Problem {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, slug, title, detail: detail.into(), challenge: None }
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", "Invalid request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "the body must be application/json",
        )
    }

    /// RFC 6750 §3.1: no token at all gets a bare challenge, without an error code.
    pub fn missing_token() -> Self {
        Self {
            challenge: Some(format!("Bearer realm=\"argus-admin\", scope=\"{}\"", super::ADMIN_SCOPE)),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "missing-token",
                "Access token required",
                "the admin API needs an access token with scope argus:admin (client credentials grant)",
            )
        }
    }

    /// RFC 6750 §3.1 `invalid_request`: e.g. two `Authorization` headers.
    pub fn invalid_token_request(description: &'static str) -> Self {
        Self {
            challenge: Some(format!(
                "Bearer realm=\"argus-admin\", error=\"invalid_request\", error_description=\"{description}\""
            )),
            ..Self::invalid_request(description)
        }
    }

    /// RFC 6750 §3.1 `invalid_token`. The description is fixed text: never request data.
    pub fn invalid_token(description: &'static str) -> Self {
        Self {
            challenge: Some(format!(
                "Bearer realm=\"argus-admin\", error=\"invalid_token\", error_description=\"{description}\""
            )),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid-token", "Invalid access token", description)
        }
    }

    /// RFC 6750 §3.1 `insufficient_scope`, naming the scope needed.
    pub fn insufficient_scope() -> Self {
        let scope = super::ADMIN_SCOPE;
        Self {
            challenge: Some(format!(
                "Bearer realm=\"argus-admin\", error=\"insufficient_scope\", \
                 error_description=\"The access token lacks scope {scope}\", scope=\"{scope}\""
            )),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "Insufficient scope",
                format!("the admin API needs scope {scope}"),
            )
        }
    }

    /// The store failed: logged with its detail, answered without it.
    fn unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "admin API: storage failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Store unavailable",
            "the store could not complete the request; nothing was changed",
        )
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(detail) => Self::invalid_request(detail),
            AdminError::NotFound => Self::not_found("no such object"),
            AdminError::Conflict(detail) => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail),
            AdminError::Storage(e) => Self::unavailable(&e),
        }
    }
}

impl From<argus_oauth::StorageError> for Problem {
    fn from(e: argus_oauth::StorageError) -> Self {
        Self::unavailable(&e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            kind: format!("{TYPE_PREFIX}{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            json,
        )
            .into_response();
        if let Some(v) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// Any path under `/admin/v1/` that is not an endpoint.
pub(crate) async fn not_found() -> Problem {
    Problem::not_found("no admin endpoint at this path")
}

/// A method an admin endpoint does not have.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take this method",
    )
}
