//! Devices as users see them, notices and the outbox: implements `argus_oauth::notice::NoticeStore`.

use argus_model::{Activity, Timestamp};
use argus_oauth::StorageError;
use argus_oauth::notice::{
    Channel, Delivery, DeviceNovelty, DeviceSighting, NoticeBody, NoticeRecord, NoticeStore, SessionView, UserDevice,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Store;
use crate::issuer::{corrupt, db, limit_column, opt_ts, text, ts};

/// Longest error text kept for a failed delivery.
const MAX_ERROR: usize = 512;

fn opt_text(row: &SqliteRow, col: &str) -> Result<Option<String>, StorageError> {
    row.try_get(col).map_err(db)
}

fn activity(s: &str) -> Result<Activity, StorageError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| corrupt("notice kind"))
}

pub(crate) fn notice_from_row(row: &SqliteRow) -> Result<NoticeRecord, StorageError> {
    let body: NoticeBody = serde_json::from_str(&text(row, "body")?).map_err(|_| corrupt("notice body"))?;
    Ok(NoticeRecord {
        id: text(row, "id")?,
        sub: text(row, "sub")?,
        kind: activity(&text(row, "kind")?)?,
        created_at: ts(row, "created_at")?,
        read_at: opt_ts(row, "read_at")?,
        device_id: opt_text(row, "device_id")?,
        body,
    })
}

fn delivery_from_row(row: &SqliteRow) -> Result<Delivery, StorageError> {
    let attempts: i64 = row.try_get("attempts").map_err(db)?;
    Ok(Delivery {
        id: text(row, "id")?,
        notice_id: opt_text(row, "notice_id")?,
        channel: Channel::parse(&text(row, "channel")?).ok_or_else(|| corrupt("outbox channel"))?,
        target: text(row, "target")?,
        payload: text(row, "payload")?,
        created_at: ts(row, "created_at")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("outbox attempts"))?,
        next_attempt_at: ts(row, "next_attempt_at")?,
    })
}

async fn insert_deliveries(tx: &mut sqlx::SqliteConnection, deliveries: &[Delivery]) -> Result<(), StorageError> {
    for d in deliveries {
        sqlx::query(
            "INSERT INTO outbox (id, notice_id, channel, target, payload, created_at, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&d.id)
        .bind(&d.notice_id)
        .bind(d.channel.as_str())
        .bind(&d.target)
        .bind(&d.payload)
        .bind(d.created_at.as_millis())
        .bind(i64::from(d.attempts))
        .bind(d.next_attempt_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl NoticeStore for Store {
    async fn record_device_sign_in(&self, s: &DeviceSighting) -> Result<DeviceNovelty, StorageError> {
        let now = s.now.as_millis();
        // IMMEDIATE: it writes after reading, and a deferred transaction whose snapshot went stale meanwhile cannot
        // upgrade to a write in WAL mode (SQLITE_BUSY at once, no busy timeout).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let recorded = sqlx::query("SELECT ua_family, label FROM devices WHERE device_id = $1")
            .bind(&s.device_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let (old_family, old_label) = match &recorded {
            Some(r) => (opt_text(r, "ua_family")?, opt_text(r, "label")?),
            None => (None, None),
        };
        let known_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_devices WHERE sub = $1")
            .bind(&s.sub)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        // The insert decides "first sign-in of this user here": of two sign-ins at once, one inserts.
        let inserted = sqlx::query(
            "INSERT INTO user_devices (sub, device_id, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (sub, device_id) DO NOTHING",
        )
        .bind(&s.sub)
        .bind(&s.device_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let is_new = inserted.rows_affected() > 0;
        if !is_new {
            sqlx::query("UPDATE user_devices SET last_seen_at = $3 WHERE sub = $1 AND device_id = $2")
                .bind(&s.sub)
                .bind(&s.device_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let family = s.ua.family();
        sqlx::query(
            "UPDATE devices SET last_ip = $2, user_agent = $3, label = $4, ua_family = $5 WHERE device_id = $1",
        )
        .bind(&s.device_id)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.ua.label())
        .bind(&family)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE sessions SET ip = $2, user_agent = $3, created_at = COALESCE(created_at, $4), \
             last_used_at = $4 WHERE sid = $1",
        )
        .bind(&s.sid)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(if is_new {
            DeviceNovelty::New { first_for_user: known_before == 0 }
        } else {
            match (old_family, old_label) {
                (Some(old), Some(previous_label)) if old != family => DeviceNovelty::Changed { previous_label },
                _ => DeviceNovelty::Known,
            }
        })
    }

    async fn touch_session(&self, sid: &str, now: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE sid = $1")
            .bind(sid)
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn user_devices(&self, sub: &str) -> Result<Vec<UserDevice>, StorageError> {
        let rows = sqlx::query(
            "SELECT d.device_id, d.label, d.user_agent, d.last_ip, u.first_seen_at, u.last_seen_at \
             FROM user_devices u JOIN devices d ON d.device_id = u.device_id WHERE u.sub = $1 \
             ORDER BY u.last_seen_at DESC",
        )
        .bind(sub)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(UserDevice {
                    device_id: text(r, "device_id")?,
                    label: opt_text(r, "label")?,
                    user_agent: opt_text(r, "user_agent")?,
                    last_ip: opt_text(r, "last_ip")?,
                    first_seen_at: ts(r, "first_seen_at")?,
                    last_seen_at: ts(r, "last_seen_at")?,
                })
            })
            .collect()
    }

    async fn user_sessions(&self, sub: &str, now: Timestamp) -> Result<Vec<SessionView>, StorageError> {
        let rows = sqlx::query(
            "SELECT sid, device_id, ip, user_agent, created_at, last_used_at, auth_time, expires_at FROM sessions \
             WHERE sub = $1 AND expires_at > $2 ORDER BY COALESCE(last_used_at, auth_time) DESC",
        )
        .bind(sub)
        .bind(now.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(SessionView {
                    sid: text(r, "sid")?,
                    device_id: opt_text(r, "device_id")?,
                    ip: opt_text(r, "ip")?,
                    user_agent: opt_text(r, "user_agent")?,
                    created_at: opt_ts(r, "created_at")?,
                    last_used_at: opt_ts(r, "last_used_at")?,
                    auth_time: ts(r, "auth_time")?,
                    expires_at: ts(r, "expires_at")?,
                })
            })
            .collect()
    }

    async fn user_email(&self, sub: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT email FROM users WHERE sub = $1")
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| opt_text(&r, "email")).transpose()?.flatten())
    }

    async fn set_user_email(&self, sub: &str, email: Option<&str>) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE users SET email = $2 WHERE sub = $1")
            .bind(sub)
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_notice(&self, n: &NoticeRecord, deliveries: &[Delivery]) -> Result<(), StorageError> {
        let body = serde_json::to_string(&n.body).map_err(|e| StorageError(format!("notice body: {e}")))?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO notices (id, sub, kind, created_at, read_at, device_id, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&n.id)
        .bind(&n.sub)
        .bind(n.kind.as_str())
        .bind(n.created_at.as_millis())
        .bind(n.read_at.map(Timestamp::as_millis))
        .bind(&n.device_id)
        .bind(body)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        insert_deliveries(&mut tx, deliveries).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_deliveries(&mut tx, deliveries).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn notices(&self, sub: &str, limit: usize) -> Result<Vec<NoticeRecord>, StorageError> {
        let rows = sqlx::query("SELECT * FROM notices WHERE sub = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
            .bind(sub)
            .bind(limit_column(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(notice_from_row).collect()
    }

    async fn mark_notice_read(&self, sub: &str, id: &str, now: Timestamp) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE notices SET read_at = COALESCE(read_at, $3) WHERE sub = $1 AND id = $2")
            .bind(sub)
            .bind(id)
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StorageError> {
        // Polled every second or so: a read first, so an empty outbox never takes the write lock.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 LIMIT 1",
        )
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        // One statement: a row is claimed by one worker, and the claim moves it out of "due" until the lease ends.
        let rows = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2 WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL \
             AND failed_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
             RETURNING id, notice_id, channel, target, payload, created_at, attempts, $1 AS next_attempt_at",
        )
        .bind(now.as_millis())
        .bind(lease_until.as_millis())
        .bind(limit_column(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn delivery_succeeded(&self, id: &str, now: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE outbox SET delivered_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delivery_failed(
        &self,
        id: &str,
        attempts: u32,
        retry_at: Option<Timestamp>,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let error = argus_model::truncate_utf8(error, MAX_ERROR);
        sqlx::query(
            "UPDATE outbox SET attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
             failed_at = CASE WHEN $3 IS NULL THEN $5 ELSE NULL END, last_error = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(retry_at.map(Timestamp::as_millis))
        .bind(error)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn purge_notices(&self, before: Timestamp, notices_before: Timestamp) -> Result<u64, StorageError> {
        let outbox = sqlx::query(
            "DELETE FROM outbox WHERE (delivered_at IS NOT NULL AND delivered_at < $1) \
             OR (failed_at IS NOT NULL AND failed_at < $1)",
        )
        .bind(before.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let notices = sqlx::query("DELETE FROM notices WHERE created_at < $1")
            .bind(notices_before.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(outbox.rows_affected() + notices.rows_affected())
    }
}

#[cfg(test)]
mod tests;
