//! Passkeys (WebAuthn), their ceremony states and the sign-ins they completed: implements `argus_oauth`'s
//! [`PasskeyStore`]. A user's rows go with the user (foreign keys, `ON DELETE CASCADE`).

use argus_model::Timestamp;
use argus_oauth::{CeremonyState, PasskeyRecord, PasskeyStore, StorageError};
use sqlx::sqlite::SqliteRow;

use crate::Store;
use crate::issuer::{db, opt_ts, text, ts};

fn passkey_from_row(row: &SqliteRow) -> Result<PasskeyRecord, StorageError> {
    Ok(PasskeyRecord {
        id: text(row, "id")?,
        sub: text(row, "sub")?,
        credential_id: text(row, "credential_id")?,
        passkey_json: text(row, "passkey")?,
        name: text(row, "name")?,
        created_at: ts(row, "created_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
    })
}

#[async_trait::async_trait]
impl PasskeyStore for Store {
    async fn passkeys(&self, sub: &str) -> Result<Vec<PasskeyRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, sub, credential_id, passkey, name, created_at, last_used_at FROM passkeys \
             WHERE sub = $1 ORDER BY created_at, id",
        )
        .bind(sub)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn has_passkey(&self, sub: &str) -> Result<bool, StorageError> {
        let row = sqlx::query("SELECT 1 FROM passkeys WHERE sub = $1 LIMIT 1")
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.is_some())
    }

    async fn add_passkey(&self, p: &PasskeyRecord) -> Result<bool, StorageError> {
        // The UNIQUE credential id decides: a credential registered to anyone is not registered again.
        let done = sqlx::query(
            "INSERT INTO passkeys (id, sub, credential_id, passkey, name, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(&p.id)
        .bind(&p.sub)
        .bind(&p.credential_id)
        .bind(&p.passkey_json)
        .bind(&p.name)
        .bind(p.created_at.as_millis())
        .bind(p.last_used_at.map(Timestamp::as_millis))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_passkey_use(
        &self,
        sub: &str,
        credential_id: &str,
        expected_json: &str,
        updated_json: &str,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        // Conditional on the JSON read before the check: of two sign-ins with one counter value, one wins.
        let done = sqlx::query(
            "UPDATE passkeys SET passkey = $1, last_used_at = $2 \
             WHERE sub = $3 AND credential_id = $4 AND passkey = $5",
        )
        .bind(updated_json)
        .bind(now.as_millis())
        .bind(sub)
        .bind(credential_id)
        .bind(expected_json)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_passkey(&self, sub: &str, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM passkeys WHERE sub = $1 AND id = $2")
            .bind(sub)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_ceremony(&self, state: &CeremonyState, now: Timestamp) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO passkey_ceremonies (key_hash, sub, state, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_hash) DO UPDATE SET sub = excluded.sub, state = excluded.state, \
             expires_at = excluded.expires_at",
        )
        .bind(&state.key_hash)
        .bind(&state.sub)
        .bind(&state.state_json)
        .bind(state.expires_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn take_ceremony(&self, key_hash: &str, now: Timestamp) -> Result<Option<CeremonyState>, StorageError> {
        // DELETE ... RETURNING: of two finish requests with one state, one gets it.
        let row = sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE key_hash = $1 RETURNING key_hash, sub, state, expires_at",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state = CeremonyState {
            key_hash: text(&row, "key_hash")?,
            sub: text(&row, "sub")?,
            state_json: text(&row, "state")?,
            expires_at: ts(&row, "expires_at")?,
        };
        Ok((state.expires_at > now).then_some(state))
    }

    async fn record_passkey_sign_in(
        &self,
        sid: &str,
        auth_time: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM passkey_sign_ins WHERE expires_at <= $1")
            .bind(auth_time.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO passkey_sign_ins (sid, auth_time, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sid, auth_time) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(sid)
        .bind(auth_time.as_millis())
        .bind(expires_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn was_passkey_sign_in(&self, sid: &str, auth_time: Timestamp) -> Result<bool, StorageError> {
        let row = sqlx::query("SELECT 1 FROM passkey_sign_ins WHERE sid = $1 AND auth_time = $2")
            .bind(sid)
            .bind(auth_time.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests;
