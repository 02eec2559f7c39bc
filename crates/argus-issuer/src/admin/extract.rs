//! Extractors whose failures are problems, not axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::state::Shared;

/// The `{id}` of an admin path.
pub(crate) struct Id(pub String);

impl FromRequestParts<Shared> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Problem> {
        let Path(id) = Path::<String>::from_request_parts(parts, s)
            .await
            .map_err(|_| Problem::invalid_request("the id in the path is not valid"))?;
        Ok(Self(id))
    }
}

/// A JSON body: `application/json` (or a `+json` type), parsed strictly into `T`.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, s: &Shared) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || (v.starts_with("application/") && v.ends_with("+json")));
        if !is_json {
            return Err(Problem::unsupported_media_type());
        }
        let body = Bytes::from_request(req, s)
            .await
            .map_err(|_| Problem::invalid_request("the body could not be read (too large?)"))?;
        serde_json::from_slice(&body).map(Self).map_err(|e| Problem::invalid_request(format!("invalid JSON body: {e}")))
    }
}
