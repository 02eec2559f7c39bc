//! Storage for admin operations: implements `argus_oauth::admin::AdminStore`.
//!
//! A revocation by scope is one transaction: revoke the families in scope, read their live access tokens, end the
//! sessions in scope, remove the consent. Either all of it happens or none.

use argus_model::{RevocationScope, Timestamp};
use argus_oauth::admin::{AdminStore, DeviceRecord, ScopeEffects, UserDeletion};
use argus_oauth::{IssuedAccess, StorageError, UserRecord};
use sqlx::Row;

mod delete;

use crate::Store;
use crate::issuer::{db, limit_column, text, ts, user_from_row};

/// The statements of one revocation scope, written out per scope so every SQL string is a literal. `$1` is the
/// time of the revocation, `$2` and `$3` the scope's identifiers.
struct ScopeSql {
    revoke_families: &'static str,
    live_accesses: &'static str,
    /// An app's or a grant's revocation leaves the user signed in at the issuer: the session is the user's, not one
    /// app's.
    end_sessions: Option<&'static str>,
}

/// The family statements for a condition on `refresh_families`.
macro_rules! families {
    ($cond:literal) => {
        (
            concat!("UPDATE refresh_families SET revoked_at = $1 WHERE revoked_at IS NULL AND ", $cond),
            concat!(
                "SELECT access_jti, access_expires_at FROM refresh_tokens WHERE access_expires_at > $1 ",
                "AND family_id IN (SELECT family_id FROM refresh_families WHERE ",
                $cond,
                ") ORDER BY created_at"
            ),
        )
    };
}

/// Ending a session expires it now; the purge deletes it later like any other expired session.
macro_rules! sessions {
    ($cond:literal) => {
        Some(concat!("UPDATE sessions SET expires_at = $1 WHERE expires_at > $1 AND ", $cond))
    };
}

/// The statements and the identifiers to bind for `scope`; `None` for a single token, which the store does not hold.
fn scope_sql(scope: &RevocationScope) -> Option<(ScopeSql, Vec<&str>)> {
    let ((revoke_families, live_accesses), end_sessions, ids) = match scope {
        RevocationScope::Token { .. } => return None,
        RevocationScope::Session { sid } => (families!("sid = $2"), sessions!("sid = $2"), vec![sid.as_str()]),
        RevocationScope::Family { family } => (families!("family_id = $2"), None, vec![family.as_str()]),
        RevocationScope::User { sub } => (families!("sub = $2"), sessions!("sub = $2"), vec![sub.as_str()]),
        RevocationScope::Client { client_id } => (families!("client_id = $2"), None, vec![client_id.as_str()]),
        RevocationScope::Grant { sub, client_id } => {
            (families!("sub = $2 AND client_id = $3"), None, vec![sub.as_str(), client_id.as_str()])
        }
        RevocationScope::Device { device } => {
            (families!("device_id = $2"), sessions!("device_id = $2"), vec![device.as_str()])
        }
    };
    Some((ScopeSql { revoke_families, live_accesses, end_sessions }, ids))
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// `sql` with the time bound to `$1` and `ids` to `$2`...
fn scoped<'q>(sql: &'static str, now: Timestamp, ids: &[&'q str]) -> SqliteQuery<'q> {
    ids.iter().fold(sqlx::query(sql).bind(now.as_millis()), |q, id| q.bind(*id))
}

#[async_trait::async_trait]
impl AdminStore for Store {
    async fn insert_user(&self, u: &UserRecord, now: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO users (sub, username, password_hash, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&u.sub)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(i64::from(u.disabled))
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<UserRecord>, StorageError> {
        // `after` NULL compares as unknown, so the first page is asked for explicitly.
        let rows = sqlx::query(
            "SELECT sub, username, password_hash, disabled FROM users WHERE ($1 IS NULL OR sub > $1) \
             ORDER BY sub LIMIT $2",
        )
        .bind(after)
        .bind(limit_column(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(
        &self,
        sub: &str,
        password_hash: Option<&str>,
        disabled: Option<bool>,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            // A new password ends a reset "this wasn't me" required: the old password was the compromised one.
            "UPDATE users SET password_hash = COALESCE($2, password_hash), disabled = COALESCE($3, disabled), \
             must_change_password = CASE WHEN $2 IS NULL THEN must_change_password ELSE 0 END, \
             updated_at = $4 WHERE sub = $1",
        )
        .bind(sub)
        .bind(password_hash)
        .bind(disabled.map(i64::from))
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_scope(&self, scope: &RevocationScope, now: Timestamp) -> Result<ScopeEffects, StorageError> {
        let mut effects = ScopeEffects::default();
        let Some((sql, ids)) = scope_sql(scope) else {
            return Ok(effects);
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The write comes first so the transaction holds the write lock from its first statement on.
        effects.families_revoked =
            scoped(sql.revoke_families, now, &ids).execute(&mut *tx).await.map_err(db)?.rows_affected();
        let rows = scoped(sql.live_accesses, now, &ids).fetch_all(&mut *tx).await.map_err(db)?;
        effects.live_accesses = rows
            .iter()
            .map(|r| Ok(IssuedAccess { jti: text(r, "access_jti")?, expires_at: ts(r, "access_expires_at")? }))
            .collect::<Result<_, StorageError>>()?;
        if let Some(end_sessions) = sql.end_sessions {
            effects.sessions_ended =
                scoped(end_sessions, now, &ids).execute(&mut *tx).await.map_err(db)?.rows_affected();
        }
        if let RevocationScope::Grant { sub, client_id } = scope {
            effects.consents_removed = sqlx::query("DELETE FROM consents WHERE sub = $1 AND client_id = $2")
                .bind(sub)
                .bind(client_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(effects)
    }

    async fn insert_device(&self, d: &DeviceRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO devices (device_id, cookie_hash, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(&d.device_id)
        .bind(&d.cookie_hash)
        .bind(d.created_at.as_millis())
        .bind(d.expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn touch_device(
        &self,
        cookie_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Option<String>, StorageError> {
        let row = sqlx::query(
            "UPDATE devices SET last_seen_at = $2, expires_at = $3 WHERE cookie_hash = $1 AND expires_at > $2 \
             RETURNING device_id",
        )
        .bind(cookie_hash)
        .bind(now.as_millis())
        .bind(expires_at.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(|r| text(r, "device_id")).transpose()
    }

    async fn attach_device(&self, sid: &str, device_id: &str) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for sql in [
            "UPDATE sessions SET device_id = $2 WHERE sid = $1",
            "UPDATE refresh_families SET device_id = $2 WHERE sid = $1 AND device_id IS NULL",
        ] {
            sqlx::query(sql).bind(sid).bind(device_id).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn session_device(&self, sid: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT device_id FROM sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("device_id")).transpose().map_err(db)?.flatten())
    }

    async fn family_device(&self, family_id: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT device_id FROM refresh_families WHERE family_id = $1")
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("device_id")).transpose().map_err(db)?.flatten())
    }

    async fn purge_expired_devices(&self, now: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM devices WHERE expires_at <= $1")
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn delete_user(&self, sub: &str) -> Result<Option<UserDeletion>, StorageError> {
        delete::delete_user(&self.pool, sub).await
    }

    async fn delete_passkeys(&self, sub: &str) -> Result<u64, StorageError> {
        delete::delete_passkeys(&self.pool, sub).await
    }
}

#[cfg(test)]
mod tests;
