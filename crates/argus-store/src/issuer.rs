//! Storage for the issuer: implements `argus_oauth`'s storage traits.
//!
//! Queries are written once in portable SQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`) so the PostgreSQL
//! implementation can reuse them. Operations that must happen at most once (redeeming a code, rotating a refresh
//! token, taking a pending request) are conditional `UPDATE`/`DELETE` statements whose affected row count decides
//! the outcome, inside one transaction with whatever they write next.

use argus_model::{Revocation, RevocationScope, Timestamp};
use argus_oauth::{
    AuthorizationCode, ClientRegistration, ConsentGrant, GrantType, IssuedAccess, IssuerStore, PendingAuthorization,
    PushedRequest, RedeemOutcome, RefreshToken, RotateOutcome, SessionRecord, StorageError, StoredSigningKey,
    TokenEndpointAuthMethod, UserRecord, resources_from_stored, resources_to_stored,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError};

mod batch;
mod lookup;
mod rotation;
mod totp;

/// The batching queues of the refresh hot path ([`batch`]).
#[derive(Clone, Debug)]
pub(crate) struct RefreshQueues {
    lookups: batch::Queue<lookup::Lookups>,
    rotations: batch::Queue<rotation::Rotations>,
}

impl RefreshQueues {
    /// Start the batching tasks on the current tokio runtime.
    pub fn start(pool: &sqlx::SqlitePool) -> Self {
        Self { lookups: batch::Queue::start(pool.clone()), rotations: batch::Queue::start(pool.clone()) }
    }
}

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> Self {
        StorageError(e.to_string())
    }
}

pub(crate) fn db(e: sqlx::Error) -> StorageError {
    StorageError(format!("database: {e}"))
}

pub(crate) fn corrupt(what: &str) -> StorageError {
    StorageError(format!("stored data is corrupt: {what}"))
}

pub(crate) fn ts(row: &SqliteRow, col: &str) -> Result<Timestamp, StorageError> {
    Ok(Timestamp::from_millis(row.try_get::<i64, _>(col).map_err(db)?))
}

pub(crate) fn opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StorageError> {
    Ok(row.try_get::<Option<i64>, _>(col).map_err(db)?.map(Timestamp::from_millis))
}

pub(crate) fn text(row: &SqliteRow, col: &str) -> Result<String, StorageError> {
    row.try_get::<String, _>(col).map_err(db)
}

fn opt_text(row: &SqliteRow, col: &str) -> Result<Option<String>, StorageError> {
    row.try_get::<Option<String>, _>(col).map_err(db)
}

/// RFC 8707 resources, stored space-separated (NULL for none).
fn resources(row: &SqliteRow, col: &str) -> Result<Vec<String>, StorageError> {
    Ok(resources_from_stored(opt_text(row, col)?.as_deref()))
}

fn flag(row: &SqliteRow, col: &str) -> Result<bool, StorageError> {
    Ok(row.try_get::<i64, _>(col).map_err(db)? != 0)
}

fn key_from_row(row: &SqliteRow) -> Result<StoredSigningKey, StorageError> {
    let pkcs8 = hex::decode(text(row, "pkcs8")?).map_err(|_| corrupt("signing key"))?;
    Ok(StoredSigningKey {
        kid: text(row, "kid")?,
        alg: text(row, "alg")?,
        pkcs8_der: pkcs8,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StorageError> {
    Ok(UserRecord {
        sub: text(row, "sub")?,
        username: text(row, "username")?,
        password_hash: text(row, "password_hash")?,
        disabled: flag(row, "disabled")?,
    })
}

/// A row count as a `LIMIT`.
pub(crate) fn limit_column(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Seconds as a BIGINT column; a span beyond `i64` is stored as the longest one.
fn secs_column(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn opt_secs(row: &SqliteRow, col: &str) -> Result<Option<u64>, StorageError> {
    row.try_get::<Option<i64>, _>(col).map_err(db)?.map(|v| u64::try_from(v).map_err(|_| corrupt(col))).transpose()
}

/// Every column of a client registration, in the order `upsert_client` binds them. A macro so that the queries stay
/// `&'static str` (sqlx refuses dynamic SQL).
macro_rules! client_columns {
    () => {
        "client_id, name, redirect_uris, allowed_scopes, is_public, token_endpoint_auth_method, client_secret_hash, \
         jwks, grant_types, access_token_ttl_secs, refresh_token_ttl_secs, require_par, dpop_bound_access_tokens, \
         disabled"
    };
}

fn client_from_row(row: &SqliteRow) -> Result<ClientRegistration, StorageError> {
    let redirect_uris: Vec<String> =
        serde_json::from_str(&text(row, "redirect_uris")?).map_err(|_| corrupt("client redirect_uris"))?;
    let allowed_scopes = text(row, "allowed_scopes")?.split_ascii_whitespace().map(str::to_owned).collect();
    let method = TokenEndpointAuthMethod::parse(&text(row, "token_endpoint_auth_method")?)
        .ok_or_else(|| corrupt("client token_endpoint_auth_method"))?;
    let jwks =
        opt_text(row, "jwks")?.map(|j| serde_json::from_str(&j).map_err(|_| corrupt("client jwks"))).transpose()?;
    let grant_types = text(row, "grant_types")?
        .split_ascii_whitespace()
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("client grant_types")))
        .collect::<Result<_, _>>()?;
    Ok(ClientRegistration {
        client_id: text(row, "client_id")?,
        name: text(row, "name")?,
        redirect_uris,
        allowed_scopes,
        public: flag(row, "is_public")?,
        token_endpoint_auth_method: method,
        client_secret_hash: opt_text(row, "client_secret_hash")?,
        jwks,
        grant_types,
        access_token_ttl_secs: opt_secs(row, "access_token_ttl_secs")?,
        refresh_token_ttl_secs: opt_secs(row, "refresh_token_ttl_secs")?,
        require_pushed_authorization_requests: flag(row, "require_par")?,
        dpop_bound_access_tokens: flag(row, "dpop_bound_access_tokens")?,
        disabled: flag(row, "disabled")?,
    })
}

fn pushed_from_row(row: &SqliteRow) -> Result<PushedRequest, StorageError> {
    Ok(PushedRequest {
        request_uri_hash: text(row, "request_uri_hash")?,
        client_id: text(row, "client_id")?,
        redirect_uri: text(row, "redirect_uri")?,
        scope: text(row, "scope")?,
        state: opt_text(row, "state")?,
        nonce: opt_text(row, "nonce")?,
        code_challenge: text(row, "code_challenge")?,
        prompt: text(row, "prompt")?,
        dpop_jkt: opt_text(row, "dpop_jkt")?,
        max_age: opt_secs(row, "max_age")?,
        acr_values: opt_text(row, "acr_values")?,
        resources: resources(row, "resource")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn pending_from_row(row: &SqliteRow) -> Result<PendingAuthorization, StorageError> {
    Ok(PendingAuthorization {
        handle_hash: text(row, "handle_hash")?,
        browser_hash: text(row, "browser_hash")?,
        csrf_hash: text(row, "csrf_hash")?,
        client_id: text(row, "client_id")?,
        redirect_uri: text(row, "redirect_uri")?,
        scope: text(row, "scope")?,
        state: opt_text(row, "state")?,
        nonce: opt_text(row, "nonce")?,
        code_challenge: text(row, "code_challenge")?,
        prompt: text(row, "prompt")?,
        dpop_jkt: opt_text(row, "dpop_jkt")?,
        max_age: opt_secs(row, "max_age")?,
        acr_values: opt_text(row, "acr_values")?,
        resources: resources(row, "resource")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, StorageError> {
    Ok(SessionRecord {
        sid: text(row, "sid")?,
        cookie_hash: text(row, "cookie_hash")?,
        sub: text(row, "sub")?,
        auth_time: ts(row, "auth_time")?,
        acr: text(row, "acr")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn code_from_row(row: &SqliteRow) -> Result<AuthorizationCode, StorageError> {
    let access = match (opt_text(row, "access_jti")?, opt_ts(row, "access_expires_at")?) {
        (Some(jti), Some(expires_at)) => Some(IssuedAccess { jti, expires_at }),
        _ => None,
    };
    Ok(AuthorizationCode {
        code_hash: text(row, "code_hash")?,
        client_id: text(row, "client_id")?,
        redirect_uri: text(row, "redirect_uri")?,
        code_challenge: text(row, "code_challenge")?,
        scope: text(row, "scope")?,
        nonce: opt_text(row, "nonce")?,
        sub: text(row, "sub")?,
        sid: text(row, "sid")?,
        auth_time: ts(row, "auth_time")?,
        acr: text(row, "acr")?,
        expires_at: ts(row, "expires_at")?,
        used_at: opt_ts(row, "used_at")?,
        family_id: opt_text(row, "family_id")?,
        access,
        dpop_jkt: opt_text(row, "dpop_jkt")?,
        resources: resources(row, "resource")?,
    })
}

fn refresh_from_row(row: &SqliteRow) -> Result<RefreshToken, StorageError> {
    Ok(RefreshToken {
        token_hash: text(row, "token_hash")?,
        family_id: text(row, "family_id")?,
        client_id: text(row, "client_id")?,
        sub: text(row, "sub")?,
        sid: opt_text(row, "sid")?,
        scope: text(row, "scope")?,
        auth_time: opt_ts(row, "auth_time")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        family_expires_at: ts(row, "family_expires_at")?,
        jkt: opt_text(row, "family_jkt")?,
        consumed_at: opt_ts(row, "consumed_at")?,
        family_revoked_at: opt_ts(row, "revoked_at")?,
        device: opt_text(row, "family_device")?,
        acr: opt_text(row, "family_acr")?,
        resources: resources(row, "family_resource")?,
        access: IssuedAccess { jti: text(row, "access_jti")?, expires_at: ts(row, "access_expires_at")? },
    })
}

fn revocation_from_row(row: &SqliteRow) -> Result<Revocation, StorageError> {
    let scope: RevocationScope = serde_json::from_str(&text(row, "scope")?).map_err(|_| corrupt("revocation scope"))?;
    Ok(Revocation { id: text(row, "id")?, scope, at: ts(row, "revoked_at")?, until: ts(row, "expires_at")? })
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, sid, scope, auth_time, \
     created_at, expires_at, consumed_at, access_jti, access_expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11)";

async fn insert_refresh<'c, E>(executor: E, t: &RefreshToken) -> Result<(), StorageError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query(INSERT_REFRESH)
        .bind(&t.token_hash)
        .bind(&t.family_id)
        .bind(&t.client_id)
        .bind(&t.sub)
        .bind(&t.sid)
        .bind(&t.scope)
        .bind(t.auth_time.map(Timestamp::as_millis))
        .bind(t.created_at.as_millis())
        .bind(t.expires_at.as_millis())
        .bind(&t.access.jti)
        .bind(t.access.expires_at.as_millis())
        .execute(executor)
        .await
        .map_err(db)?;
    Ok(())
}

#[async_trait::async_trait]
impl IssuerStore for Store {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StorageError> {
        let rows = sqlx::query("SELECT kid, alg, pkcs8, created_at FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, pkcs8, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(hex::encode(&key.pkcs8_der))
            .bind(key.created_at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn upsert_user(
        &self,
        new_sub: &str,
        username: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let row = sqlx::query(
            "INSERT INTO users (sub, username, password_hash, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4) \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, disabled = 0, \
             updated_at = excluded.updated_at \
             RETURNING sub",
        )
        .bind(new_sub)
        .bind(username)
        .bind(password_hash)
        .bind(now.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        text(&row, "sub")
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let row = sqlx::query("SELECT sub, username, password_hash, disabled FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_sub(&self, sub: &str) -> Result<Option<UserRecord>, StorageError> {
        let row = sqlx::query("SELECT sub, username, password_hash, disabled FROM users WHERE sub = $1")
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn upsert_client(&self, client: &ClientRegistration, now: Timestamp) -> Result<(), StorageError> {
        let json = |e: serde_json::Error| StorageError(e.to_string());
        let uris = serde_json::to_string(&client.redirect_uris).map_err(json)?;
        let jwks = client.jwks.as_ref().map(serde_json::to_string).transpose().map_err(json)?;
        let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
        let secs = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ", created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
             ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris, \
             allowed_scopes = excluded.allowed_scopes, is_public = excluded.is_public, \
             token_endpoint_auth_method = excluded.token_endpoint_auth_method, \
             client_secret_hash = excluded.client_secret_hash, jwks = excluded.jwks, \
             grant_types = excluded.grant_types, access_token_ttl_secs = excluded.access_token_ttl_secs, \
             refresh_token_ttl_secs = excluded.refresh_token_ttl_secs, require_par = excluded.require_par, \
             dpop_bound_access_tokens = excluded.dpop_bound_access_tokens, disabled = excluded.disabled, \
             updated_at = excluded.updated_at"
        ))
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(uris)
        .bind(client.allowed_scopes.join(" "))
        .bind(i64::from(client.public))
        .bind(client.token_endpoint_auth_method.as_str())
        .bind(&client.client_secret_hash)
        .bind(jwks)
        .bind(grants.join(" "))
        .bind(secs(client.access_token_ttl_secs))
        .bind(secs(client.refresh_token_ttl_secs))
        .bind(i64::from(client.require_pushed_authorization_requests))
        .bind(i64::from(client.dpop_bound_access_tokens))
        .bind(i64::from(client.disabled))
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRegistration>, StorageError> {
        let row = sqlx::query(concat!("SELECT ", client_columns!(), " FROM clients WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRegistration>, StorageError> {
        let rows = sqlx::query(concat!("SELECT ", client_columns!(), " FROM clients ORDER BY client_id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn clients_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<ClientRegistration>, StorageError> {
        // `after` NULL compares as unknown, so the first page is asked for explicitly.
        let rows = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE ($1 IS NULL OR client_id > $1) ORDER BY client_id LIMIT $2"
        ))
        .bind(after)
        .bind(limit_column(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool, now: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE clients SET disabled = $1, updated_at = $2 WHERE client_id = $3")
            .bind(i64::from(disabled))
            .bind(now.as_millis())
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_pending(&self, p: &PendingAuthorization) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO pending_authorizations (handle_hash, browser_hash, csrf_hash, client_id, redirect_uri, \
             scope, state, nonce, code_challenge, prompt, created_at, expires_at, dpop_jkt, max_age, acr_values, \
             resource) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&p.handle_hash)
        .bind(&p.browser_hash)
        .bind(&p.csrf_hash)
        .bind(&p.client_id)
        .bind(&p.redirect_uri)
        .bind(&p.scope)
        .bind(&p.state)
        .bind(&p.nonce)
        .bind(&p.code_challenge)
        .bind(&p.prompt)
        .bind(p.created_at.as_millis())
        .bind(p.expires_at.as_millis())
        .bind(&p.dpop_jkt)
        .bind(p.max_age.map(secs_column))
        .bind(&p.acr_values)
        .bind(resources_to_stored(&p.resources))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn pending(&self, handle_hash: &str, now: Timestamp) -> Result<Option<PendingAuthorization>, StorageError> {
        let row = sqlx::query("SELECT * FROM pending_authorizations WHERE handle_hash = $1 AND expires_at > $2")
            .bind(handle_hash)
            .bind(now.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(pending_from_row).transpose()
    }

    async fn take_pending(&self, handle_hash: &str, now: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM pending_authorizations WHERE handle_hash = $1 AND expires_at > $2")
            .bind(handle_hash)
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_pushed_request(&self, r: &PushedRequest) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO pushed_requests (request_uri_hash, client_id, redirect_uri, scope, state, nonce, \
             code_challenge, prompt, dpop_jkt, created_at, expires_at, max_age, acr_values, resource) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&r.request_uri_hash)
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(&r.scope)
        .bind(&r.state)
        .bind(&r.nonce)
        .bind(&r.code_challenge)
        .bind(&r.prompt)
        .bind(&r.dpop_jkt)
        .bind(r.created_at.as_millis())
        .bind(r.expires_at.as_millis())
        .bind(r.max_age.map(secs_column))
        .bind(&r.acr_values)
        .bind(resources_to_stored(&r.resources))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        request_uri_hash: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<Option<PushedRequest>, StorageError> {
        // One statement: of two concurrent uses, exactly one gets the row.
        let row = sqlx::query(
            "DELETE FROM pushed_requests WHERE request_uri_hash = $1 AND client_id = $2 AND expires_at > $3 \
             RETURNING *",
        )
        .bind(request_uri_hash)
        .bind(client_id)
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(pushed_from_row).transpose()
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sessions (sid, cookie_hash, sub, auth_time, acr, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.sid)
        .bind(&s.cookie_hash)
        .bind(&s.sub)
        .bind(s.auth_time.as_millis())
        .bind(&s.acr)
        .bind(s.expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn renew_session(&self, s: &SessionRecord, now: Timestamp) -> Result<bool, StorageError> {
        // An ended session has `expires_at <= now` (admin revocations end sessions that way): never revived.
        let done = sqlx::query(
            "UPDATE sessions SET cookie_hash = $1, auth_time = $2, acr = $3, expires_at = $4 \
             WHERE sid = $5 AND sub = $6 AND expires_at > $7",
        )
        .bind(&s.cookie_hash)
        .bind(s.auth_time.as_millis())
        .bind(&s.acr)
        .bind(s.expires_at.as_millis())
        .bind(&s.sid)
        .bind(&s.sub)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn session_by_cookie(
        &self,
        cookie_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let row = sqlx::query(
            "SELECT sid, cookie_hash, sub, auth_time, acr, expires_at FROM sessions \
             WHERE cookie_hash = $1 AND expires_at > $2",
        )
        .bind(cookie_hash)
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn consent(&self, sub: &str, client_id: &str) -> Result<Option<ConsentGrant>, StorageError> {
        let row = sqlx::query("SELECT scope, granted_at FROM consents WHERE sub = $1 AND client_id = $2")
            .bind(sub)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| {
            Ok(ConsentGrant {
                sub: sub.to_owned(),
                client_id: client_id.to_owned(),
                scope: text(&r, "scope")?,
                granted_at: ts(&r, "granted_at")?,
            })
        })
        .transpose()
    }

    async fn record_consent(&self, g: &ConsentGrant) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO consents (sub, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sub, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(&g.sub)
        .bind(&g.client_id)
        .bind(&g.scope)
        .bind(g.granted_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_code(&self, c: &AuthorizationCode) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, code_challenge, scope, nonce, sub, \
             sid, auth_time, expires_at, used_at, family_id, access_jti, access_expires_at, dpop_jkt, acr, resource) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, NULL, $11, $12, $13)",
        )
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.scope)
        .bind(&c.nonce)
        .bind(&c.sub)
        .bind(&c.sid)
        .bind(c.auth_time.as_millis())
        .bind(c.expires_at.as_millis())
        .bind(&c.dpop_jkt)
        .bind(&c.acr)
        .bind(resources_to_stored(&c.resources))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn code(&self, code_hash: &str) -> Result<Option<AuthorizationCode>, StorageError> {
        let row = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(code_from_row).transpose()
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: Timestamp,
        access: &IssuedAccess,
        first: Option<&RefreshToken>,
    ) -> Result<RedeemOutcome, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The write comes first so the transaction holds the write lock from its first statement on.
        let used = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1, family_id = $2, access_jti = $3, access_expires_at = $4 \
             WHERE code_hash = $5 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now.as_millis())
        .bind(first.map(|f| f.family_id.as_str()))
        .bind(&access.jti)
        .bind(access.expires_at.as_millis())
        .bind(code_hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if used.rows_affected() != 1 {
            return Ok(RedeemOutcome::NotRedeemable);
        }
        if let Some(first) = first {
            sqlx::query(
                "INSERT INTO refresh_families (family_id, client_id, sub, sid, created_at, expires_at, revoked_at, \
                 jkt, acr, resource) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)",
            )
            .bind(&first.family_id)
            .bind(&first.client_id)
            .bind(&first.sub)
            .bind(&first.sid)
            .bind(first.created_at.as_millis())
            .bind(first.family_expires_at.as_millis())
            .bind(&first.jkt)
            .bind(&first.acr)
            .bind(resources_to_stored(&first.resources))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            insert_refresh(&mut *tx, first).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(RedeemOutcome::Redeemed)
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StorageError> {
        self.refresh.lookups.call(token_hash.to_owned()).await?
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        now: Timestamp,
        next: &RefreshToken,
    ) -> Result<RotateOutcome, StorageError> {
        let rotation = rotation::Rotation { old_hash: old_hash.to_owned(), now, next: next.clone() };
        self.refresh.rotations.call(rotation).await?
    }

    async fn revoke_family(&self, family_id: &str, now: Timestamp) -> Result<Vec<IssuedAccess>, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE refresh_families SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now.as_millis())
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let rows = sqlx::query(
            "SELECT access_jti, access_expires_at FROM refresh_tokens WHERE family_id = $1 ORDER BY created_at",
        )
        .bind(family_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.iter()
            .map(|r| Ok(IssuedAccess { jti: text(r, "access_jti")?, expires_at: ts(r, "access_expires_at")? }))
            .collect()
    }

    async fn add_revocation(&self, r: &Revocation) -> Result<(), StorageError> {
        let scope = serde_json::to_string(&r.scope).map_err(|e| StorageError(e.to_string()))?;
        sqlx::query(
            "INSERT INTO revocations (id, scope, revoked_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&r.id)
        .bind(scope)
        .bind(r.at.as_millis())
        .bind(r.until.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn active_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, scope, revoked_at, expires_at FROM revocations WHERE expires_at > $1 ORDER BY revoked_at, id",
        )
        .bind(now.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(revocation_from_row).collect()
    }

    async fn active_revocations_page(
        &self,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Revocation>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, scope, revoked_at, expires_at FROM revocations \
             WHERE expires_at > $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(now.as_millis())
        .bind(after)
        .bind(limit_column(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(revocation_from_row).collect()
    }

    async fn server_secret(&self, name: &str, candidate: &[u8], now: Timestamp) -> Result<Vec<u8>, StorageError> {
        // Of two processes creating it at once, the first insert wins and both read what it wrote.
        let row = sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING value",
        )
        .bind(name)
        .bind(hex::encode(candidate))
        .bind(now.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        hex::decode(text(&row, "value")?).map_err(|_| corrupt("server secret"))
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut removed = 0;
        for sql in [
            "DELETE FROM pending_authorizations WHERE expires_at <= $1",
            "DELETE FROM pushed_requests WHERE expires_at <= $1",
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM authorization_codes WHERE expires_at <= $1",
            // Rotated tokens are kept as long as their family can live, however short their idle lifetime: a
            // rotated token that comes back must still be recognised as reuse and end the family.
            "DELETE FROM refresh_tokens WHERE family_id IN \
             (SELECT family_id FROM refresh_families WHERE expires_at <= $1)",
            "DELETE FROM refresh_families WHERE expires_at <= $1",
            "DELETE FROM revocations WHERE expires_at <= $1",
            "DELETE FROM second_factor_waits WHERE expires_at <= $1",
        ] {
            removed += sqlx::query(sql).bind(now.as_millis()).execute(&mut *tx).await.map_err(db)?.rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
