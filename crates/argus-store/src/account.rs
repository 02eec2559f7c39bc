//! The account page's storage beyond devices and notices: implements `argus_oauth::account::AccountStore`.

use argus_model::Timestamp;
use argus_oauth::StorageError;
use argus_oauth::account::{AccountStore, DeviceFactors, GrantView};
use argus_oauth::notice::NoticeRecord;
use sqlx::Row;

use crate::Store;
use crate::issuer::{db, opt_ts, text, ts};

#[async_trait::async_trait]
impl AccountStore for Store {
    async fn user_grants(&self, sub: &str) -> Result<Vec<GrantView>, StorageError> {
        let rows = sqlx::query(
            "SELECT c.client_id, k.name, c.scope, c.granted_at, c.last_used_at FROM consents c \
             JOIN clients k ON k.client_id = c.client_id WHERE c.sub = $1 ORDER BY c.granted_at DESC, c.client_id",
        )
        .bind(sub)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(GrantView {
                    client_id: text(r, "client_id")?,
                    client_name: text(r, "name")?,
                    scope: text(r, "scope")?,
                    granted_at: ts(r, "granted_at")?,
                    last_used_at: opt_ts(r, "last_used_at")?,
                })
            })
            .collect()
    }

    async fn touch_grant(&self, sub: &str, client_id: &str, now: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE consents SET last_used_at = $3 WHERE sub = $1 AND client_id = $2")
            .bind(sub)
            .bind(client_id)
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn must_change_password(&self, sub: &str) -> Result<bool, StorageError> {
        let must: Option<i64> = sqlx::query_scalar("SELECT must_change_password FROM users WHERE sub = $1")
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(must.is_some_and(|m| m != 0))
    }

    async fn set_must_change_password(&self, sub: &str, must: bool) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE users SET must_change_password = $2 WHERE sub = $1")
            .bind(sub)
            .bind(i64::from(must))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    // Ending a session expires it now, as revocations do; the purge deletes it later.
    async fn end_sessions(&self, sub: &str, keep: Option<&str>, now: Timestamp) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "UPDATE sessions SET expires_at = $2 WHERE sub = $1 AND expires_at > $2 AND ($3 IS NULL OR sid <> $3)",
        )
        .bind(sub)
        .bind(now.as_millis())
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn end_session(&self, sub: &str, sid: &str, now: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE sessions SET expires_at = $3 WHERE sub = $1 AND sid = $2 AND expires_at > $3")
            .bind(sub)
            .bind(sid)
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn notice(&self, id: &str) -> Result<Option<NoticeRecord>, StorageError> {
        let row =
            sqlx::query("SELECT * FROM notices WHERE id = $1").bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(crate::notice::notice_from_row).transpose()
    }

    async fn use_link_once(&self, id: &str, now: Timestamp, expires_at: Timestamp) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM used_links WHERE expires_at <= $1")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let done = sqlx::query(
            "INSERT INTO used_links (id, used_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(now.as_millis())
        .bind(expires_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn link_used(&self, id: &str) -> Result<bool, StorageError> {
        let row = sqlx::query("SELECT 1 AS one FROM used_links WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.is_some_and(|r| r.try_get::<i64, _>("one").is_ok()))
    }

    async fn set_totp_device(&self, sub: &str, device_id: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE totp_credentials SET device_id = $2 WHERE sub = $1 AND confirmed_at IS NOT NULL")
            .bind(sub)
            .bind(device_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn set_passkey_device(&self, sub: &str, id: &str, device_id: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE passkeys SET device_id = $3 WHERE sub = $1 AND id = $2")
            .bind(sub)
            .bind(id)
            .bind(device_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn remove_device_factors(&self, sub: &str, device_id: &str) -> Result<DeviceFactors, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let totp = sqlx::query("DELETE FROM totp_credentials WHERE sub = $1 AND device_id = $2")
            .bind(sub)
            .bind(device_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            == 1;
        // Recovery codes belong to the credential they were made with: they go with it.
        if totp {
            sqlx::query("DELETE FROM totp_recovery_codes WHERE sub = $1")
                .bind(sub)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let passkeys = sqlx::query("DELETE FROM passkeys WHERE sub = $1 AND device_id = $2")
            .bind(sub)
            .bind(device_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(DeviceFactors { totp, passkeys })
    }
}

#[cfg(test)]
mod tests;
