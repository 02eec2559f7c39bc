//! `GET /authorize`: the start of the authorization code flow, from the query or from a pushed request (RFC 9126).

use argus_oauth::{
    AuthorizationRequest, AuthorizeRejection, ClientRegistration, NextStep, OAuthError, Params, hash_secret,
    next_step_at_authorize, validate_authorize,
};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::flow::FlowRequest;
use crate::pages;
use crate::par::request_uri_secret;
use crate::state::{Issuer, Shared};

/// `GET /authorize`. A request whose client or redirect URI cannot be trusted gets an error page (400) and nothing
/// is stored; other errors go back to the client; a valid request shows the login form, the consent page, or —
/// with a live session and an earlier consent — goes straight back with a code.
pub(crate) async fn authorize(State(s): State<Shared>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match run(&s, &headers, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn run(s: &Issuer, headers: &HeaderMap, query: &str) -> Result<Response, argus_oauth::StorageError> {
    let params = Params::parse(query.as_bytes());
    let client = match params.single("client_id") {
        Ok(Some(id)) => s.store.client(id).await?,
        _ => None,
    };
    let request = match params.single("request_uri") {
        Ok(Some(request_uri)) => match pushed_request(s, client.as_ref(), request_uri).await? {
            Ok(r) => r,
            Err(why) => {
                return Ok(pages::error_page(StatusCode::BAD_REQUEST, &format!("The app's sign-in request {why}.")));
            }
        },
        _ => match validate_authorize(&params, client.as_ref(), &s.resources) {
            Ok(r) if must_push(s, client.as_ref()) => {
                let error = OAuthError::invalid_request("this client must use pushed authorization requests");
                return Ok(s.redirect_error(&r.redirect_uri, r.state.as_deref(), error));
            }
            Ok(r) => r,
            Err(AuthorizeRejection::NoRedirect(why)) => {
                return Ok(pages::error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("The app sent an invalid sign-in request: {why}."),
                ));
            }
            Err(AuthorizeRejection::Redirect { redirect_uri, state, error }) => {
                return Ok(s.redirect_error(&redirect_uri, state.as_deref(), error));
            }
        },
    };
    // Both paths only succeed for a known, enabled client.
    let Some(client) = client else {
        return Ok(pages::error_page(StatusCode::BAD_REQUEST, "unknown client"));
    };
    let flow = FlowRequest::from(request);
    let live = s.current_session(headers).await?;
    if let Some(l) = &live {
        s.touch_session(&l.session.sid).await;
    }
    let covers = match &live {
        Some(l) => s.consent_covers(&l.user.sub, &flow.client_id, &flow.scope).await?,
        None => false,
    };
    // A level the signed-in user cannot reach does not send them to sign in again: `acr_values` are voluntary
    // (OIDC Core §3.1.2.1). A user without a second factor asked for `urn:argus:acr:mfa` is served at the password
    // level, and the tokens' `acr` says so; the resource server decides whether that is enough (RFC 9470). The
    // stored request keeps the whole requirement, for whoever signs in next.
    let reach = match &live {
        Some(l) => flow.auth.within_reach(crate::second_factor::best_level(s, &l.user.sub).await?),
        None => flow.auth.clone(),
    };
    match next_step_at_authorize(flow.prompt, live.as_ref().map(|l| l.auth()), &reach, covers, s.now()) {
        NextStep::Fail(error) => Ok(s.redirect_error(&flow.redirect_uri, flow.state.as_deref(), error)),
        NextStep::IssueCode => match &live {
            Some(l) => s.issue_code(&flow, &l.session).await,
            None => Ok(pages::error_page(StatusCode::BAD_REQUEST, "no session")),
        },
        step => s.start_interaction(headers, &flow, &client, step, live.as_ref()).await,
    }
}

/// Whether authorization requests of this client must be pushed (per client, or for every client).
fn must_push(s: &Issuer, client: Option<&ClientRegistration>) -> bool {
    s.config.require_pushed_authorization_requests || client.is_some_and(|c| c.require_pushed_authorization_requests)
}

/// The pushed request a `request_uri` names, taken (it works once) — only by the client that pushed it, before it
/// expires. It was validated when pushed; the other query parameters are ignored (RFC 9126 §4). The `Err` ends the
/// sentence "The app's sign-in request ..." on an error page: with no trusted redirect URI, nothing is redirected.
async fn pushed_request(
    s: &Issuer,
    client: Option<&ClientRegistration>,
    request_uri: &str,
) -> Result<Result<AuthorizationRequest, &'static str>, argus_oauth::StorageError> {
    let Some(client) = client.filter(|c| !c.disabled) else {
        return Ok(Err("names an unknown client"));
    };
    let Some(secret) = request_uri_secret(request_uri) else {
        return Ok(Err("has an invalid request_uri"));
    };
    match s.store.take_pushed_request(&hash_secret(secret), &client.client_id, s.now()).await? {
        Some(pushed) => Ok(Ok(AuthorizationRequest::from(&pushed))),
        None => Ok(Err("has expired or was already used")),
    }
}
