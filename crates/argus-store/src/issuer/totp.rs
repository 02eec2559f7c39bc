//! Second factors: TOTP credentials, recovery codes and sign-ins waiting for a second factor.

use argus_model::Timestamp;
use argus_oauth::{SecondFactorStore, StorageError, TotpCredential};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{corrupt, db, opt_ts, text, ts};
use crate::Store;

fn credential_from_row(row: &SqliteRow) -> Result<TotpCredential, StorageError> {
    let secret = hex::decode(text(row, "secret")?).map_err(|_| corrupt("totp secret"))?;
    let last_step = row.try_get::<Option<i64>, _>("last_step").map_err(db)?;
    Ok(TotpCredential {
        sub: text(row, "sub")?,
        secret,
        created_at: ts(row, "created_at")?,
        confirmed_at: opt_ts(row, "confirmed_at")?,
        last_step: last_step.map(|s| u64::try_from(s).map_err(|_| corrupt("totp step"))).transpose()?,
    })
}

/// Steps are seconds / 30 since 1970: far inside `i64`. One that is not cannot be stored, and is refused.
fn step_i64(step: u64) -> Result<i64, StorageError> {
    i64::try_from(step).map_err(|_| StorageError("totp step out of range".into()))
}

#[async_trait::async_trait]
impl SecondFactorStore for Store {
    async fn totp_credential(&self, sub: &str) -> Result<Option<TotpCredential>, StorageError> {
        let row =
            sqlx::query("SELECT sub, secret, created_at, confirmed_at, last_step FROM totp_credentials WHERE sub = $1")
                .bind(sub)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn put_unconfirmed_totp(&self, cred: &TotpCredential) -> Result<bool, StorageError> {
        // A confirmed credential is never replaced here: that would take the second factor away.
        let done = sqlx::query(
            "INSERT INTO totp_credentials (sub, secret, created_at, confirmed_at, last_step) \
             VALUES ($1, $2, $3, NULL, NULL) \
             ON CONFLICT (sub) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, \
             last_step = NULL WHERE totp_credentials.confirmed_at IS NULL",
        )
        .bind(&cred.sub)
        .bind(hex::encode(&cred.secret))
        .bind(cred.created_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn confirm_totp(
        &self,
        sub: &str,
        step: u64,
        recovery_hashes: &[String],
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE totp_credentials SET confirmed_at = $1, last_step = $2 WHERE sub = $3 AND confirmed_at IS NULL",
        )
        .bind(now.as_millis())
        .bind(step_i64(step)?)
        .bind(sub)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM totp_recovery_codes WHERE sub = $1").bind(sub).execute(&mut *tx).await.map_err(db)?;
        for hash in recovery_hashes {
            sqlx::query("INSERT INTO totp_recovery_codes (sub, code_hash, used_at) VALUES ($1, $2, NULL)")
                .bind(sub)
                .bind(hash)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn use_totp_step(&self, sub: &str, step: u64) -> Result<bool, StorageError> {
        // Conditional on the recorded step: of two requests with the same code, one wins.
        let done = sqlx::query(
            "UPDATE totp_credentials SET last_step = $1 \
             WHERE sub = $2 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step_i64(step)?)
        .bind(sub)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_recovery_code(&self, sub: &str, code_hash: &str, now: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE totp_recovery_codes SET used_at = $1 WHERE sub = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now.as_millis())
        .bind(sub)
        .bind(code_hash)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_second_factor_wait(
        &self,
        handle_hash: &str,
        sub: &str,
        expires_at: Timestamp,
    ) -> Result<(), StorageError> {
        // A password given again for the same request starts the wait again, for whoever gave it; the failure count
        // stays, so signing in again does not buy more guesses.
        sqlx::query(
            "INSERT INTO second_factor_waits (handle_hash, sub, failures, expires_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (handle_hash) DO UPDATE SET sub = excluded.sub, expires_at = excluded.expires_at",
        )
        .bind(handle_hash)
        .bind(sub)
        .bind(expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn second_factor_wait(&self, handle_hash: &str, now: Timestamp) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT sub FROM second_factor_waits WHERE handle_hash = $1 AND expires_at > $2")
            .bind(handle_hash)
            .bind(now.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(|r| text(r, "sub")).transpose()
    }

    async fn fail_second_factor(&self, handle_hash: &str) -> Result<u32, StorageError> {
        let row = sqlx::query(
            "UPDATE second_factor_waits SET failures = failures + 1 WHERE handle_hash = $1 RETURNING failures",
        )
        .bind(handle_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        // A wait that vanished meanwhile has ended: count it as spent.
        let Some(row) = row else { return Ok(u32::MAX) };
        let failures = row.try_get::<i64, _>("failures").map_err(db)?;
        Ok(u32::try_from(failures).unwrap_or(u32::MAX))
    }

    async fn end_second_factor_wait(&self, handle_hash: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM second_factor_waits WHERE handle_hash = $1")
            .bind(handle_hash)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_totp(&self, sub: &str) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done =
            sqlx::query("DELETE FROM totp_credentials WHERE sub = $1").bind(sub).execute(&mut *tx).await.map_err(db)?;
        sqlx::query("DELETE FROM totp_recovery_codes WHERE sub = $1").bind(sub).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }
}
