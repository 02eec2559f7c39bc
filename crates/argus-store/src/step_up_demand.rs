//! Step-up demands of configured triggers: implements `argus_oauth::step_up_demand::StepUpDemandStore` over the
//! `step_up_demands` table.

use argus_model::{StepUpDemand, Timestamp};
use argus_oauth::StorageError;
use argus_oauth::step_up_demand::StepUpDemandStore;
use sqlx::Row;

use crate::Store;
use crate::issuer::{db, ts};

#[async_trait::async_trait]
impl StepUpDemandStore for Store {
    async fn add_step_up_demand(&self, demand: &StepUpDemand, now: Timestamp) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM step_up_demands WHERE expires_at < $1")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO step_up_demands (id, sid, not_before, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&demand.id)
        .bind(&demand.sid)
        .bind(demand.not_before.as_millis())
        .bind(demand.until.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn active_step_up_demands(&self, now: Timestamp) -> Result<Vec<StepUpDemand>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, sid, not_before, expires_at FROM step_up_demands WHERE expires_at > $1 \
             ORDER BY not_before, id",
        )
        .bind(now.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(StepUpDemand {
                    id: row.try_get("id").map_err(db)?,
                    sid: row.try_get("sid").map_err(db)?,
                    not_before: ts(row, "not_before")?,
                    until: ts(row, "expires_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demands_are_kept_until_they_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let demand = |id: &str, until: i64| StepUpDemand {
            id: id.into(),
            sid: format!("sid-{id}"),
            not_before: Timestamp::from_secs(100),
            until: Timestamp::from_secs(until),
        };
        let now = Timestamp::from_secs(150);
        store.add_step_up_demand(&demand("a", 200), now).await.unwrap();
        store.add_step_up_demand(&demand("a", 200), now).await.unwrap();
        store.add_step_up_demand(&demand("b", 400), now).await.unwrap();
        assert_eq!(store.active_step_up_demands(now).await.unwrap(), vec![demand("a", 200), demand("b", 400)]);
        assert_eq!(store.active_step_up_demands(Timestamp::from_secs(300)).await.unwrap(), vec![demand("b", 400)]);
        // Adding later deletes what has ended.
        store.add_step_up_demand(&demand("c", 900), Timestamp::from_secs(300)).await.unwrap();
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM step_up_demands").fetch_one(&store.pool).await.unwrap();
        assert_eq!(left, 2);
    }
}
