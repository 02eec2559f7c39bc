//! The account page as a JSON API for the user's own access token: `GET /account/api/devices|apps|notices`,
//! `DELETE /account/api/devices/{id}`, `DELETE /account/api/apps/{client_id}`,
//! `POST /account/api/notices/{id}/read`.
//!
//! The token must be this issuer's, for the issuer itself as audience (RFC 8707 `resource` = the issuer URL: a token
//! for the API is no key to the account), presented as its binding requires (Bearer, or DPoP with a proof for this
//! URL), unrevoked, of an enabled user, with scope `account`. Refusals are RFC 6750 challenges (`WWW-Authenticate`)
//! with RFC 9457 problem bodies, like the admin API's.

use argus_jose::AccessClaims;
use argus_model::{Activity, Principal};
use argus_oauth::StorageError;
use argus_oauth::account::ACCOUNT_SCOPE;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::shared;
use crate::events::Caller;
use crate::state::Shared;
use crate::userinfo::{Refusal, challenges, verified_request};

/// The caller of the account API: the user of the token.
pub(crate) struct AccountCaller {
    claims: AccessClaims,
    principal: Principal,
}

impl FromRequestParts<Shared> for AccountCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Response> {
        let caller = match Caller::from_request_parts(parts, s).await {
            Ok(c) => c,
            Err(never) => match never {},
        };
        let path = parts.uri.path().to_owned();
        let claims =
            verified_request(s, &parts.method, &parts.headers, &path, &[&s.issuer_url]).await.map_err(refused)?;
        if !claims.has_scope(ACCOUNT_SCOPE) {
            return Err(refused(Refusal::InsufficientScope));
        }
        match s.user_enabled(&claims.sub).await {
            Ok(true) => {}
            Ok(false) => return Err(refused(Refusal::InvalidToken("the access token is invalid"))),
            Err(e) => return Err(unavailable(&e)),
        }
        let principal = Principal {
            sub: Some(claims.sub.clone()),
            client_id: Some(claims.client_id.clone()),
            sid: claims.sid.clone(),
            jti: Some(claims.jti.clone()),
            device_id: claims.did.clone(),
            ..caller.principal()
        };
        Ok(Self { claims, principal })
    }
}

/// `GET /account/api/devices`: `{"devices": [...]}`, `this_device` being the token's device.
pub(crate) async fn devices(State(s): State<Shared>, who: AccountCaller) -> Response {
    match shared::devices(&s, &who.claims.sub, who.claims.did.as_deref()).await {
        Ok(devices) => answer(json!({ "devices": devices })),
        Err(e) => unavailable(&e),
    }
}

/// `GET /account/api/apps`: `{"apps": [...]}`.
pub(crate) async fn apps(State(s): State<Shared>, who: AccountCaller) -> Response {
    match shared::apps(&s, &who.claims.sub).await {
        Ok(apps) => answer(json!({ "apps": apps })),
        Err(e) => unavailable(&e),
    }
}

/// `GET /account/api/notices`: `{"notices": [...]}`, newest first. Reading them here does not mark them read.
pub(crate) async fn notices(State(s): State<Shared>, who: AccountCaller) -> Response {
    match shared::notices(&s, &who.claims.sub).await {
        Ok(notices) => answer(json!({ "notices": notices })),
        Err(e) => unavailable(&e),
    }
}

/// `DELETE /account/api/devices/{id}`: 204, or 404 for a device the user never signed in on.
pub(crate) async fn revoke_device(State(s): State<Shared>, who: AccountCaller, Path(id): Path<String>) -> Response {
    let done = shared::revoke_device(&s, who.principal, &who.claims.sub, &id, Activity::DeviceRevoked).await;
    no_content_or_404(done, "no such device on your account")
}

/// `DELETE /account/api/apps/{client_id}`: 204, or 404 for an app without a grant.
pub(crate) async fn revoke_app(State(s): State<Shared>, who: AccountCaller, Path(client_id): Path<String>) -> Response {
    let done = shared::revoke_app(&s, who.principal, &who.claims.sub, &client_id).await;
    no_content_or_404(done, "that app has no access to your account")
}

/// `POST /account/api/notices/{id}/read`: 204, or 404 for a notice that is not the user's.
pub(crate) async fn read_notice(State(s): State<Shared>, who: AccountCaller, Path(id): Path<String>) -> Response {
    let done = s.store.mark_notice_read(&who.claims.sub, &id, s.now()).await;
    no_content_or_404(done, "no such notice")
}

fn no_content_or_404(done: Result<bool, StorageError>, missing: &'static str) -> Response {
    match done {
        Ok(true) => (StatusCode::NO_CONTENT, [no_store()]).into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "not-found", "Not found", missing, None),
        Err(e) => unavailable(&e),
    }
}

fn answer(body: serde_json::Value) -> Response {
    ([no_store()], Json(body)).into_response()
}

fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// A token refusal: its RFC 6750 challenge and a problem body.
fn refused(r: Refusal) -> Response {
    let (slug, title, detail) = match &r {
        Refusal::NoToken => ("missing-token", "Access token required", "the account API needs an access token"),
        Refusal::InvalidToken(why) => ("invalid-token", "Invalid access token", *why),
        Refusal::InvalidDpopProof(why) => ("invalid-dpop-proof", "Invalid DPoP proof", *why),
        Refusal::InsufficientScope => {
            ("insufficient-scope", "Insufficient scope", "the account API needs an access token with scope account")
        }
        Refusal::Internal(_) => ("store-unavailable", "Unavailable", "the request could not be completed"),
    };
    match challenges(r, ACCOUNT_SCOPE) {
        Some((status, challenges)) => problem(status, slug, title, detail, Some(challenges)),
        None => problem(StatusCode::SERVICE_UNAVAILABLE, slug, title, detail, None),
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "account API: storage failure");
    let detail = "the store could not complete the request; nothing was changed";
    problem(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", "Store unavailable", detail, None)
}

/// An RFC 9457 problem, `type` under the same prefix as the admin API's and the gate's.
fn problem(status: StatusCode, slug: &str, title: &str, detail: &str, challenges: Option<Vec<String>>) -> Response {
    let body = json!({ "type": format!("urn:argus:problem:{slug}"), "title": title, "status": status.as_u16(), "detail": detail });
    let mut response = (status, [no_store()], body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    for c in challenges.unwrap_or_default() {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}
