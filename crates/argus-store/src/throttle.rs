//! Sign-in throttling counters: implements `argus_oauth::ThrottleStore` over the `login_throttle` table.
//!
//! A failure is counted in one transaction that starts with its write, so two issuer processes counting the same
//! key at once serialise on SQLite's write lock and neither count is lost. The lock a count causes is the core's
//! decision ([`ThrottleRule::after_failure`]); this module only keeps it.

use argus_model::Timestamp;
use argus_oauth::{StorageError, ThrottleRule, ThrottleState, ThrottleStore};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Store;
use crate::issuer::{corrupt, db, opt_ts, ts};

fn state_from_row(row: &SqliteRow) -> Result<ThrottleState, StorageError> {
    let failures = row.try_get::<i64, _>("failures").map_err(db)?;
    Ok(ThrottleState {
        failures: u32::try_from(failures).map_err(|_| corrupt("throttle failures"))?,
        locked_until: opt_ts(row, "locked_until")?,
        forget_at: ts(row, "forget_at")?,
    })
}

#[async_trait::async_trait]
impl ThrottleStore for Store {
    async fn throttle_state(&self, key: &str, now: Timestamp) -> Result<Option<ThrottleState>, StorageError> {
        let row = sqlx::query(
            "SELECT failures, locked_until, forget_at FROM login_throttle WHERE key = $1 AND forget_at > $2",
        )
        .bind(key)
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(state_from_row).transpose()
    }

    async fn record_failure(
        &self,
        key: &str,
        now: Timestamp,
        rule: &ThrottleRule,
    ) -> Result<ThrottleState, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // A record whose failures are forgotten starts over, whether or not the purge below reached it yet.
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, locked_until, forget_at) VALUES ($1, 1, NULL, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_throttle.forget_at <= $2 THEN 1 ELSE login_throttle.failures + 1 END, \
             locked_until = CASE WHEN login_throttle.forget_at <= $2 THEN NULL ELSE login_throttle.locked_until END \
             RETURNING failures, locked_until, forget_at",
        )
        .bind(key)
        .bind(now.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let before = state_from_row(&row)?;
        let next = rule.after_failure(before.failures, now);
        // Never shorten a lock or a memory already recorded (a longer one from another rule or an earlier count).
        let state = ThrottleState {
            failures: before.failures,
            locked_until: next.locked_until.max(before.locked_until),
            forget_at: next.forget_at.max(before.forget_at),
        };
        sqlx::query("UPDATE login_throttle SET locked_until = $2, forget_at = $3 WHERE key = $1")
            .bind(key)
            .bind(state.locked_until.map(Timestamp::as_millis))
            .bind(state.forget_at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Opportunistic purge, on the index: the table holds no more than the failures of one memory window.
        sqlx::query("DELETE FROM login_throttle WHERE forget_at <= $1")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(state)
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&self.pool).await.map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use argus_oauth::{LoginThrottle, ThrottleStore};

    use super::*;

    #[tokio::test]
    async fn counts_locks_forgets_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let rule = LoginThrottle { free_failures_per_account: 2, ..LoginThrottle::default() }.account_rule();
        let t0 = Timestamp::from_millis(1_000_000);
        assert_eq!(store.throttle_state("k", t0).await.unwrap(), None);
        let mut last = None;
        for n in 1..=4u64 {
            last = Some(store.record_failure("k", t0, &rule).await.unwrap());
            assert_eq!(last.unwrap().failures, n as u32);
        }
        // Two free, then 1 s, then 2 s.
        assert_eq!(last.unwrap().locked_until, Some(t0.plus(Duration::from_secs(2))));
        assert_eq!(store.throttle_state("k", t0).await.unwrap(), last);
        assert_eq!(store.throttle_state("other", t0).await.unwrap(), None);

        // Forgotten after the memory: the next failure starts over, and the old row is gone.
        let later = last.unwrap().forget_at;
        assert_eq!(store.throttle_state("k", later).await.unwrap(), None);
        store.record_failure("other", later, &rule).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_throttle").fetch_one(store.pool()).await.unwrap();
        assert_eq!(n, 1, "the forgotten row was purged");
        assert_eq!(store.record_failure("k", later, &rule).await.unwrap().failures, 1);

        store.clear_failures("k").await.unwrap();
        assert_eq!(store.throttle_state("k", later).await.unwrap(), None);
    }

    #[tokio::test]
    async fn concurrent_failures_are_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let rule = LoginThrottle::default().ip_rule();
        let now = Timestamp::from_millis(5_000);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.record_failure("ip:x", now, &rule).await.unwrap().failures })
            })
            .collect();
        let mut counts = Vec::new();
        for t in tasks {
            counts.push(t.await.unwrap());
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=16).collect::<Vec<_>>());
    }
}
