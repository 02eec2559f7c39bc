//! `/admin/v1/users`: create (with a password), list, show (by `sub` or user name), update (password, disabled),
//! disable (which ends the user's sessions and revokes every token of theirs), delete (the user and everything of
//! theirs), reset their TOTP second factor or their passkeys.

use argus_model::id::new_id;
use argus_model::{AccountActivity, Activity, EventKind, Principal, RevocationScope};
use argus_oauth::admin::{AdminError, NewUser, Page, UserPatch, UserView};
use argus_oauth::{UserRecord, hash_password};
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

/// `POST /admin/v1/users`: 201 with the user.
pub(crate) async fn create(
    State(s): State<Shared>,
    admin: Admin,
    JsonBody(input): JsonBody<NewUser>,
) -> Result<Response, Problem> {
    input.validate()?;
    let user = UserRecord {
        sub: new_id(),
        username: input.username,
        password_hash: hashed(input.password).await?,
        disabled: false,
    };
    if !s.store.insert_user(&user, s.now()).await? {
        return Err(AdminError::Conflict("a user with this username exists").into());
    }
    if let Some(email) = input.email.as_deref() {
        s.store.set_user_email(&user.sub, Some(email)).await?;
    }
    s.emit_admin_change(&admin, "user.create", &user.sub, Vec::new());
    let location = format!("/admin/v1/users/{}", user.sub);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(json!({ "user": UserView::from(&user) })))
        .into_response())
}

/// `GET /admin/v1/users?limit=&after=`: a page of users, by `sub` (the order they were created in).
pub(crate) async fn list(
    State(s): State<Shared>,
    _admin: Admin,
    PageQuery(page): PageQuery,
) -> Result<Response, Problem> {
    let rows = s.store.users(page.after.as_deref(), page.rows_to_read()).await?;
    let users = Page::from_rows(rows, &page, |u| u.sub.as_str()).map(|u| UserView::from(&u));
    Ok(page_answer(&s, "/admin/v1/users", "users", &page, users))
}

/// `GET /admin/v1/users/{sub or username}`.
pub(crate) async fn show(State(s): State<Shared>, _admin: Admin, Id(id): Id) -> Result<Json<Value>, Problem> {
    let user = existing(&s, &id).await?;
    Ok(Json(json!({ "user": UserView::from(&user) })))
}

/// `PATCH /admin/v1/users/{sub or username}`: `password` and/or `disabled`. Disabling revokes as `disable` does.
pub(crate) async fn update(
    State(s): State<Shared>,
    admin: Admin,
    Id(id): Id,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<Value>, Problem> {
    patch.validate()?;
    let user = existing(&s, &id).await?;
    let fields = patch.fields();
    let disables = patch.disabled == Some(true) && !user.disabled;
    let password_hash = match patch.password {
        Some(p) => Some(hashed(p).await?),
        None => None,
    };
    if (password_hash.is_some() || patch.disabled.is_some())
        && !s.store.update_user(&user.sub, password_hash.as_deref(), patch.disabled, s.now()).await?
    {
        return Err(AdminError::NotFound.into());
    }
    if let Some(email) = patch.email.as_deref() {
        s.store.set_user_email(&user.sub, Some(email).filter(|e| !e.is_empty())).await?;
    }
    s.registry.forget_user(&user.sub);
    s.emit_admin_change(&admin, "user.update", &user.sub, fields);
    let mut body = json!({ "user": UserView::from(&existing(&s, &user.sub).await?) });
    if disables {
        body["revoked"] = s.revoke_everywhere(&admin, RevocationScope::User { sub: user.sub }).await?;
    }
    Ok(Json(body))
}

/// `POST /admin/v1/users/{sub or username}/disable`: the user can no longer sign in or refresh; their sessions end
/// and every token of theirs is revoked at every gate. Idempotent.
pub(crate) async fn disable(State(s): State<Shared>, admin: Admin, Id(id): Id) -> Result<Json<Value>, Problem> {
    let user = existing(&s, &id).await?;
    if !s.store.update_user(&user.sub, None, Some(true), s.now()).await? {
        return Err(AdminError::NotFound.into());
    }
    s.registry.forget_user(&user.sub);
    s.emit_admin_change(&admin, "user.disable", &user.sub, vec!["disabled".to_owned()]);
    let revoked = s.revoke_everywhere(&admin, RevocationScope::User { sub: user.sub.clone() }).await?;
    let user = existing(&s, &user.sub).await?;
    Ok(Json(json!({ "user": UserView::from(&user), "revoked": revoked })))
}

/// `DELETE /admin/v1/users/{sub or username}/totp`: remove the user's TOTP credential and recovery codes (a lost
/// phone), so their next sign-in asks for the password alone and they can enrol again. Idempotent: `removed` says
/// whether there was one; only a removal is an admin change.
pub(crate) async fn reset_totp(State(s): State<Shared>, admin: Admin, Id(id): Id) -> Result<Json<Value>, Problem> {
    let user = existing(&s, &id).await?;
    let removed = s.store.delete_totp(&user.sub).await?;
    if removed {
        s.emit_admin_change(&admin, "user.totp_reset", &user.sub, vec!["totp".to_owned()]);
    }
    Ok(Json(json!({ "user": UserView::from(&user), "removed": removed })))
}

/// `DELETE /admin/v1/users/{sub or username}`: 204. In one store transaction the user and every row of theirs
/// (sessions, refresh tokens, codes, consents, second factors, notices, devices no one else used) are deleted; then
/// every gate refuses their access tokens until those would have expired, through the path of the revocations API.
/// The user name is free again, and a new user with it gets a new `sub`: nothing of the old one applies to them.
pub(crate) async fn delete(State(s): State<Shared>, admin: Admin, Id(id): Id) -> Result<StatusCode, Problem> {
    let user = existing(&s, &id).await?;
    // Deleted first, revoked second: a token issued between the two would have a later `iat` than the revocation
    // covers; after the deletion no sign-in or refresh of this user can issue one.
    let Some(deleted) = s.store.delete_user(&user.sub).await? else {
        return Err(Problem::not_found("no user with this sub or username"));
    };
    s.registry.forget_user(&user.sub);
    let fields = deleted.removed.iter().map(|(table, _)| (*table).to_owned()).collect();
    s.emit_admin_change(&admin, "user.delete", &user.sub, fields);
    s.revoke_everywhere(&admin, RevocationScope::User { sub: user.sub }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /admin/v1/users/{sub or username}/passkeys`: remove all of the user's passkeys (and unfinished passkey
/// ceremonies), so their next sign-in does not offer them and they can register new ones. Idempotent: `removed`
/// says whether there was one; only a removal is an admin change, and the user is told (`factor_removed`).
pub(crate) async fn reset_passkeys(State(s): State<Shared>, admin: Admin, Id(id): Id) -> Result<Json<Value>, Problem> {
    let user = existing(&s, &id).await?;
    let removed = s.store.delete_passkeys(&user.sub).await?;
    if removed > 0 {
        s.emit_admin_change(&admin, "user.passkeys_reset", &user.sub, vec!["passkeys".to_owned()]);
        let principal = Principal { sub: Some(user.sub.clone()), ..Principal::default() };
        let activity = AccountActivity {
            activity: Activity::FactorRemoved,
            device_id: None,
            client_id: None,
            detail: Some("passkey".to_owned()),
        };
        s.emit(principal, EventKind::Account(activity));
    }
    Ok(Json(json!({ "user": UserView::from(&user), "removed": removed > 0, "passkeys_removed": removed })))
}

/// The user with this `sub`, else with this user name.
pub(super) async fn existing(s: &Issuer, id: &str) -> Result<UserRecord, Problem> {
    if let Some(u) = s.store.user_by_sub(id).await? {
        return Ok(u);
    }
    s.store.user_by_username(id).await?.ok_or_else(|| Problem::not_found("no user with this sub or username"))
}

/// argon2id on the blocking pool, so hashing does not stall other requests.
async fn hashed(password: String) -> Result<String, Problem> {
    let joined = tokio::task::spawn_blocking(move || hash_password(&password)).await;
    match joined {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(e)) => Err(Problem::invalid_request(e.to_string())),
        Err(e) => Err(AdminError::Storage(argus_oauth::StorageError(format!("password hashing task: {e}"))).into()),
    }
}
