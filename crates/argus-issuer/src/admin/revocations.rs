//! `/admin/v1/revocations`: revoke by scope, and list what the gates are refusing now.

use argus_model::RevocationScope;
use argus_oauth::admin::{Page, validate_revocation_scope};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Admin;
use super::extract::JsonBody;
use super::paging::{PageQuery, page_answer};
use super::problem::Problem;
use super::users;
use crate::state::Shared;

/// `POST /admin/v1/revocations` body: `{"scope": {"kind": "token", "jti": "..."}}` and so on for `session` (`sid`),
/// `family`, `device`, `user` (`sub`), `client` (`client_id`), `grant` (`sub`, `client_id`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    scope: RevocationScope,
}

/// `POST /admin/v1/revocations`: 201 with the revocation the gates apply and what changed in the store.
pub(crate) async fn create(
    State(s): State<Shared>,
    admin: Admin,
    JsonBody(request): JsonBody<RevokeRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let scope = request.scope;
    validate_revocation_scope(&scope)?;
    // A user or an app that does not exist is a typo: say so rather than revoke nothing.
    match &scope {
        RevocationScope::User { sub } => check_user(&s, sub).await?,
        RevocationScope::Client { client_id } => check_client(&s, client_id).await?,
        RevocationScope::Grant { sub, client_id } => {
            check_user(&s, sub).await?;
            check_client(&s, client_id).await?;
        }
        _ => {}
    }
    let answer = s.revoke_everywhere(&admin, scope).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /admin/v1/revocations?limit=&after=`: a page of the revocations in force now, by id (UUIDv7: about the
/// order they were made in). One that expires between two pages is simply no longer listed.
pub(crate) async fn list(
    State(s): State<Shared>,
    _admin: Admin,
    PageQuery(page): PageQuery,
) -> Result<Response, Problem> {
    let rows = s.store.active_revocations_page(s.now(), page.after.as_deref(), page.rows_to_read()).await?;
    let revocations = Page::from_rows(rows, &page, |r| r.id.as_str());
    Ok(page_answer(&s, "/admin/v1/revocations", "revocations", &page, revocations))
}

/// Users are named by `sub` here: the CLI resolves user names first, so a name that is also someone's `sub` cannot
/// revoke the wrong person.
async fn check_user(s: &crate::state::Issuer, sub: &str) -> Result<(), Problem> {
    let user = users::existing(s, sub).await?;
    if user.sub != sub {
        return Err(Problem::invalid_request("scope.sub must be the user's sub, not the user name"));
    }
    Ok(())
}

async fn check_client(s: &crate::state::Issuer, client_id: &str) -> Result<(), Problem> {
    s.store.client(client_id).await?.map(|_| ()).ok_or_else(|| Problem::not_found("no client with this client_id"))
}
