//! Lists a page at a time: `?limit=` (default 100, at most 1000) and `?after=<cursor>` in, the page, its `next`
//! cursor and an RFC 8288 `Link: <...>; rel="next"` out. The rules are `argus_oauth::admin::PageRequest` and
//! `Page`.

use argus_oauth::Params;
use argus_oauth::admin::{Page, PageRequest};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::problem::Problem;
use crate::state::{Issuer, Shared};

/// The page a list request asks for. Any other query parameter, or one given twice, is refused: a mistyped
/// `limt=5` would otherwise quietly answer 100 rows.
pub(crate) struct PageQuery(pub PageRequest);

impl FromRequestParts<Shared> for PageQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _s: &Shared) -> Result<Self, Problem> {
        let params = Params::parse(parts.uri.query().unwrap_or("").as_bytes());
        if params.first_repeated().is_some() {
            return Err(Problem::invalid_request("a query parameter is repeated"));
        }
        if params.names().any(|n| n != "limit" && n != "after") {
            return Err(Problem::invalid_request("the only query parameters of a list are limit and after"));
        }
        Ok(Self(PageRequest::parse(params.get("limit"), params.get("after"))?))
    }
}

/// The answer for one page of the list at `path`: `{"<field>": [...], "next": "<cursor>"}` (no `next` on the last
/// page) and, when another page follows, its URL in a `Link` header.
pub(crate) fn page_answer<T: Serialize>(
    s: &Issuer,
    path: &str,
    field: &str,
    request: &PageRequest,
    page: Page<T>,
) -> Response {
    let mut body = json!({ field: page.items });
    let Some(next) = page.next else {
        return Json(body).into_response();
    };
    // The cursor is base64url: nothing in it needs escaping in a URL or a header.
    let link = format!("<{}{path}?limit={}&after={next}>; rel=\"next\"", s.issuer_url, request.limit);
    body["next"] = Value::String(next);
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}
