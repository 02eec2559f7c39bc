//! The admin API, `/admin/v1/...`: clients, users, revocations by scope and the signing keys, as JSON.
//!
//! Every call needs an access token of this issuer with scope `argus:admin`, obtained with the client-credentials
//! grant ([`auth`]). Errors are RFC 9457 problems ([`problem`]); every change emits an event (`AdminChange`, or
//! `Revoked` for a revocation) that watch writes to the audit log. Lists come a page at a time ([`paging`]). The
//! rules are in `argus_oauth::admin`; this module does the HTTP.
//!
//! The module also binds sign-ins to devices ([`devices`]): the `argus_device` cookie that revocation by device
//! keys on.

mod auth;
mod clients;
pub(crate) mod devices;
mod extract;
mod keys;
mod paging;
mod problem;
mod revocations;
mod users;

use std::time::Duration;

use argus_model::{AdminChange, EventKind, RevocationScope};
use argus_oauth::admin::{admin_revocation, backstop_revocations};
use axum::Router;
use axum::routing::{any, delete, get, post};

use crate::state::{Issuer, Shared};
use auth::Admin;
use problem::Problem;

pub(crate) use argus_oauth::admin::ADMIN_SCOPE;

/// The admin routes, merged into the issuer's router.
pub(crate) fn routes() -> Router<Shared> {
    let not_allowed = problem::method_not_allowed;
    Router::new()
        .route("/admin/v1/clients", get(clients::list).post(clients::create).fallback(not_allowed))
        .route("/admin/v1/clients/{id}", get(clients::show).patch(clients::update).fallback(not_allowed))
        .route("/admin/v1/clients/{id}/disable", post(clients::disable).fallback(not_allowed))
        .route("/admin/v1/clients/{id}/secret", post(clients::rotate_secret).fallback(not_allowed))
        .route("/admin/v1/users", get(users::list).post(users::create).fallback(not_allowed))
        .route(
            "/admin/v1/users/{id}",
            get(users::show).patch(users::update).delete(users::delete).fallback(not_allowed),
        )
        .route("/admin/v1/users/{id}/disable", post(users::disable).fallback(not_allowed))
        .route("/admin/v1/users/{id}/totp", delete(users::reset_totp).fallback(not_allowed))
        .route("/admin/v1/users/{id}/passkeys", delete(users::reset_passkeys).fallback(not_allowed))
        .route("/admin/v1/revocations", get(revocations::list).post(revocations::create).fallback(not_allowed))
        .route("/admin/v1/keys", get(keys::list).fallback(not_allowed))
        .route("/admin/v1/{*rest}", any(problem::not_found))
}

impl Issuer {
    /// The longest lifetime an access token of this issuer can have: the configured one or a client's override.
    async fn longest_access_ttl(&self) -> Result<Duration, argus_oauth::StorageError> {
        let clients = self.store.clients().await?;
        let longest = clients.iter().filter_map(|c| c.access_token_ttl_secs).max().unwrap_or(0);
        Ok(Duration::from_secs(longest.max(self.config.access_token_ttl_secs)))
    }

    /// Revoke `scope` everywhere: in the store (families, sessions, consent) in one transaction, then at every gate
    /// until every covered token has expired. Returns what was done, as the admin API answers it.
    async fn revoke_everywhere(&self, admin: &Admin, scope: RevocationScope) -> Result<serde_json::Value, Problem> {
        Ok(self.revoke_scope_everywhere(scope, &admin.principal, "admin").await?)
    }

    /// [`Issuer::revoke_everywhere`] for any caller (`by`: `admin`, `user`): the admin API and the account page
    /// share this one path. Returns what was done.
    pub(crate) async fn revoke_scope_everywhere(
        &self,
        scope: RevocationScope,
        principal: &argus_model::Principal,
        by: &str,
    ) -> Result<serde_json::Value, argus_oauth::StorageError> {
        let now = self.now();
        let longest = self.longest_access_ttl().await?;
        let effects = self.store.revoke_scope(&scope, now).await?;
        let backstops = backstop_revocations(&scope, &effects.live_accesses, now);
        let revocation = admin_revocation(scope, now, longest);
        let answer = serde_json::json!({
            "revocation": revocation,
            "families_revoked": effects.families_revoked,
            "sessions_ended": effects.sessions_ended,
            "consents_removed": effects.consents_removed,
            "tokens_revoked": backstops.len(),
        });
        let mut all = vec![revocation];
        all.extend(backstops);
        self.publish_revocations(all, principal, by).await;
        Ok(answer)
    }

    /// Record an admin change for watch and the audit log.
    fn emit_admin_change(&self, admin: &Admin, action: &str, target: &str, fields: Vec<String>) {
        let change = AdminChange { action: action.to_owned(), target: target.to_owned(), fields };
        tracing::info!(admin = %admin.client_id, action, target, "admin change");
        self.emit(admin.principal.clone(), EventKind::AdminChange(change));
    }
}
