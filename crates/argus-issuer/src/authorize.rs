//! `GET /authorize`: the start of the authorization code flow.

use argus_oauth::{AuthorizeRejection, NextStep, Params, next_step_at_authorize, validate_authorize};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::flow::FlowRequest;
use crate::pages;
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
    let request = match validate_authorize(&params, client.as_ref()) {
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
    };
    // validate_authorize only succeeds for a known client.
    let Some(client) = client else {
        return Ok(pages::error_page(StatusCode::BAD_REQUEST, "unknown client"));
    };
    let flow = FlowRequest::from(request);
    let live = s.current_session(headers).await?;
    let covers = match &live {
        Some(l) => s.consent_covers(&l.user.sub, &flow.client_id, &flow.scope).await?,
        None => false,
    };
    match next_step_at_authorize(flow.prompt, live.is_some(), covers) {
        NextStep::Fail(error) => Ok(s.redirect_error(&flow.redirect_uri, flow.state.as_deref(), error)),
        NextStep::IssueCode => match &live {
            Some(l) => s.issue_code(&flow, &l.session).await,
            None => Ok(pages::error_page(StatusCode::BAD_REQUEST, "no session")),
        },
        step => s.start_interaction(headers, &flow, &client, step, live.as_ref()).await,
    }
}
