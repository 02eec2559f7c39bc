//! `/admin/v1/clients`: create (a confidential client's secret is generated and shown once), list, show, update,
//! disable (which revokes every token of the app), rotate the secret.

use argus_model::RevocationScope;
use argus_model::id::new_id;
use argus_oauth::ClientRegistration;
use argus_oauth::admin::{AdminError, ClientPatch, ClientView, NewClient, Page, rotate_client_secret};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Admin;
use super::extract::{Id, JsonBody};
use super::paging::{PageQuery, page_answer};
use super::problem::Problem;
use crate::state::{Issuer, Shared};

/// `POST /admin/v1/clients`: 201 with the client and, for a secret-based method, `client_secret` (shown only here).
pub(crate) async fn create(
    State(s): State<Shared>,
    admin: Admin,
    JsonBody(input): JsonBody<NewClient>,
) -> Result<Response, Problem> {
    let (client, secret) = input.into_registration(new_id())?;
    if s.store.client(&client.client_id).await?.is_some() {
        return Err(AdminError::Conflict("a client with this client_id exists").into());
    }
    s.store.upsert_client(&client, s.now()).await?;
    s.registry.forget_client(&client.client_id);
    s.emit_admin_change(&admin, "client.create", &client.client_id, Vec::new());
    let location = format!("/admin/v1/clients/{}", client.client_id);
    let mut body = json!({ "client": ClientView::from(&client) });
    if let Some(secret) = secret {
        body["client_secret"] = Value::String(secret);
    }
    Ok((StatusCode::CREATED, no_store(), [(header::LOCATION, location)], Json(body)).into_response())
}

/// `GET /admin/v1/clients?limit=&after=`: a page of clients, by `client_id`.
pub(crate) async fn list(
    State(s): State<Shared>,
    _admin: Admin,
    PageQuery(page): PageQuery,
) -> Result<Response, Problem> {
    let rows = s.store.clients_page(page.after.as_deref(), page.rows_to_read()).await?;
    let clients = Page::from_rows(rows, &page, |c| c.client_id.as_str()).map(|c| ClientView::from(&c));
    Ok(page_answer(&s, "/admin/v1/clients", "clients", &page, clients))
}

/// `GET /admin/v1/clients/{id}`.
pub(crate) async fn show(State(s): State<Shared>, _admin: Admin, Id(id): Id) -> Result<Json<Value>, Problem> {
    let client = existing(&s, &id).await?;
    Ok(Json(json!({ "client": ClientView::from(&client) })))
}

/// `PATCH /admin/v1/clients/{id}`. A patch that switches to a secret-based method answers the new secret once; one
/// that disables the client revokes its tokens as `disable` does.
pub(crate) async fn update(
    State(s): State<Shared>,
    admin: Admin,
    Id(id): Id,
    JsonBody(patch): JsonBody<ClientPatch>,
) -> Result<Response, Problem> {
    let current = existing(&s, &id).await?;
    let outcome = patch.apply(&current)?;
    s.store.upsert_client(&outcome.client, s.now()).await?;
    s.registry.forget_client(&id);
    s.emit_admin_change(&admin, "client.update", &id, outcome.fields);
    let mut body = json!({ "client": ClientView::from(&outcome.client) });
    if let Some(secret) = outcome.new_secret {
        body["client_secret"] = Value::String(secret);
    }
    if outcome.disables {
        body["revoked"] = s.revoke_everywhere(&admin, RevocationScope::Client { client_id: id }).await?;
    }
    Ok((no_store(), Json(body)).into_response())
}

/// `POST /admin/v1/clients/{id}/disable`: the client can no longer authenticate or sign users in, and every token
/// it holds is revoked at every gate. Idempotent.
pub(crate) async fn disable(State(s): State<Shared>, admin: Admin, Id(id): Id) -> Result<Json<Value>, Problem> {
    existing(&s, &id).await?;
    if !s.store.set_client_disabled(&id, true, s.now()).await? {
        return Err(AdminError::NotFound.into());
    }
    s.registry.forget_client(&id);
    s.emit_admin_change(&admin, "client.disable", &id, vec!["disabled".to_owned()]);
    let revoked = s.revoke_everywhere(&admin, RevocationScope::Client { client_id: id.clone() }).await?;
    let client = existing(&s, &id).await?;
    Ok(Json(json!({ "client": ClientView::from(&client), "revoked": revoked })))
}

/// `POST /admin/v1/clients/{id}/secret`: a new secret, shown once; the old one stops working at once. Tokens already
/// issued stay valid (revoke the client for that).
pub(crate) async fn rotate_secret(State(s): State<Shared>, admin: Admin, Id(id): Id) -> Result<Response, Problem> {
    let current = existing(&s, &id).await?;
    let (client, secret) = rotate_client_secret(&current)?;
    s.store.upsert_client(&client, s.now()).await?;
    s.registry.forget_client(&id);
    s.emit_admin_change(&admin, "client.rotate_secret", &id, vec!["client_secret".to_owned()]);
    Ok((no_store(), Json(json!({ "client_id": id, "client_secret": secret }))).into_response())
}

async fn existing(s: &Issuer, id: &str) -> Result<ClientRegistration, Problem> {
    s.store.client(id).await?.ok_or_else(|| Problem::not_found("no client with this client_id"))
}

/// Answers that carry a secret must not be cached.
fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}
