//! Storage for watch's responses: actions, user notifications, and the audit-log reads of the watch API (an
//! alert's evidence events, a key's timeline). Implements `argus_detect`'s [`ActionStore`]; the rules (when an
//! action stands, what can be undone) are `argus_detect`'s, this module only reads and writes rows.

use argus_detect::respond::{MAX_LIST_LIMIT, TIMELINE_SCAN};
use argus_detect::{
    ActionFilter, ActionKind, ActionRecord, ActionStatus, ActionStore, KeyType, Notification, TimelineEntry,
    TimelinePage, TimelineQuery, UndoRefusal, WatchStoreError,
};
use argus_model::{Block, Event, Timestamp};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::Store;
use crate::watch::{corrupt, db, millis, signed, text, unsigned, write_transaction};

/// Most evidence events read at once (an alert keeps at most 20).
const MAX_EVENT_IDS: usize = 100;

const ACTION_COLUMNS: &str = "id, alert_id, rule, kind, target_json, status, time_ms, until_ms, detail, undone_at_ms";

fn optional_millis(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, WatchStoreError> {
    Ok(row.try_get::<Option<i64>, _>(col).map_err(db)?.map(Timestamp::from_millis))
}

fn action_from_row(row: &SqliteRow) -> Result<ActionRecord, WatchStoreError> {
    let kind: ActionKind = text(row, "kind")?.parse().map_err(|_| corrupt("action kind"))?;
    let status = ActionStatus::parse(&text(row, "status")?).ok_or_else(|| corrupt("action status"))?;
    Ok(ActionRecord {
        id: text(row, "id")?,
        alert_id: text(row, "alert_id")?,
        rule: text(row, "rule")?,
        kind,
        target: serde_json::from_str(&text(row, "target_json")?).map_err(|_| corrupt("action target"))?,
        status,
        time: millis(row, "time_ms")?,
        until: optional_millis(row, "until_ms")?,
        detail: text(row, "detail")?,
        undone_at: optional_millis(row, "undone_at_ms")?,
    })
}

fn notification_from_row(row: &SqliteRow) -> Result<Notification, WatchStoreError> {
    Ok(Notification {
        id: text(row, "id")?,
        sub: text(row, "sub")?,
        alert_id: text(row, "alert_id")?,
        action_id: text(row, "action_id")?,
        time: millis(row, "time_ms")?,
        message: text(row, "message")?,
    })
}

fn event_from_json(json: &str) -> Result<Event, WatchStoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(format!("audit event: {e}")))
}

/// Where an event names a key of this type (an SQLite JSON path; a constant, never request data).
fn key_path(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Ip => "$.principal.ip",
        KeyType::User => "$.principal.sub",
        KeyType::Client => "$.principal.client_id",
        KeyType::Session => "$.principal.sid",
        KeyType::Token => "$.principal.jti",
        KeyType::Account => "$.username",
        KeyType::Family => "$.family",
        KeyType::Node => "$.node",
    }
}

fn limit(n: u32) -> i64 {
    i64::from(n.clamp(1, MAX_LIST_LIMIT))
}

#[async_trait]
impl ActionStore for Store {
    async fn claim_action(&self, action: &ActionRecord, now: Timestamp) -> Result<bool, WatchStoreError> {
        let target = serde_json::to_string(&action.target).map_err(|e| corrupt(format!("action target: {e}")))?;
        let mut tx = write_transaction(self).await?;
        let sql = format!("SELECT {ACTION_COLUMNS} FROM watch_actions WHERE alert_id = $1 AND rule = $2");
        let earlier = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&action.alert_id)
            .bind(&action.rule)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for row in &earlier {
            if action_from_row(row)?.stands(now) {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO watch_actions (id, alert_id, rule, kind, target_json, status, time_ms, until_ms, detail, \
             undone_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&action.id)
        .bind(&action.alert_id)
        .bind(&action.rule)
        .bind(action.kind.as_str())
        .bind(target)
        .bind(action.status.as_str())
        .bind(action.time.as_millis())
        .bind(action.until.map(Timestamp::as_millis))
        .bind(&action.detail)
        .bind(action.undone_at.map(Timestamp::as_millis))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn set_action_status(&self, id: &str, status: ActionStatus, detail: &str) -> Result<(), WatchStoreError> {
        sqlx::query("UPDATE watch_actions SET status = $2, detail = $3 WHERE id = $1")
            .bind(id)
            .bind(status.as_str())
            .bind(detail)
            .execute(self.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn actions(&self, filter: &ActionFilter) -> Result<Vec<ActionRecord>, WatchStoreError> {
        // Ids are UUIDv7: by id is by time. An absent filter is a NULL parameter that matches everything.
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM watch_actions WHERE ($1 IS NULL OR alert_id = $1) \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.alert_id.as_deref())
            .bind(filter.before.as_deref())
            .bind(limit(filter.limit))
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        rows.iter().map(action_from_row).collect()
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, WatchStoreError> {
        let sql = format!("SELECT {ACTION_COLUMNS} FROM watch_actions WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await.map_err(db)?;
        row.as_ref().map(action_from_row).transpose()
    }

    async fn undo_action(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<Result<ActionRecord, UndoRefusal>>, WatchStoreError> {
        let mut tx = write_transaction(self).await?;
        let sql = format!("SELECT {ACTION_COLUMNS} FROM watch_actions WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *tx).await.map_err(db)?;
        let Some(mut action) = row.as_ref().map(action_from_row).transpose()? else {
            return Ok(None);
        };
        if let Err(refusal) = action.check_undo(now) {
            return Ok(Some(Err(refusal)));
        }
        action.status = ActionStatus::Undone;
        action.undone_at = Some(now);
        sqlx::query("UPDATE watch_actions SET status = $2, undone_at_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(action.status.as_str())
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(Ok(action)))
    }

    async fn standing_blocks(&self, now: Timestamp) -> Result<Vec<Block>, WatchStoreError> {
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM watch_actions WHERE kind = 'block' AND status = 'applied' \
             AND undone_at_ms IS NULL AND until_ms > $1 ORDER BY id"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.as_millis()).fetch_all(self.pool()).await.map_err(db)?;
        let mut blocks = Vec::with_capacity(rows.len());
        for row in &rows {
            blocks.extend(action_from_row(row)?.standing_block(now));
        }
        Ok(blocks)
    }

    async fn add_notification(&self, n: &Notification) -> Result<(), WatchStoreError> {
        sqlx::query(
            "INSERT INTO watch_notifications (id, sub, alert_id, action_id, time_ms, message) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&n.id)
        .bind(&n.sub)
        .bind(&n.alert_id)
        .bind(&n.action_id)
        .bind(n.time.as_millis())
        .bind(&n.message)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn notifications(&self, sub: Option<&str>, max: u32) -> Result<Vec<Notification>, WatchStoreError> {
        let rows = sqlx::query(
            "SELECT id, sub, alert_id, action_id, time_ms, message FROM watch_notifications \
             WHERE ($1 IS NULL OR sub = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(sub)
        .bind(limit(max))
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(notification_from_row).collect()
    }

    async fn events(&self, ids: &[String]) -> Result<Vec<Event>, WatchStoreError> {
        let ids = &ids[..ids.len().min(MAX_EVENT_IDS)];
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        // Built from constant fragments and a count only; every id is a bound parameter.
        let sql = format!("SELECT event_json FROM audit_log WHERE event_id IN ({placeholders}) ORDER BY seq");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.pool()).await.map_err(db)?;
        rows.iter().map(|r| event_from_json(&text(r, "event_json")?)).collect()
    }

    async fn timeline(&self, query: &TimelineQuery) -> Result<TimelinePage, WatchStoreError> {
        let before = match query.before {
            Some(before) => before,
            None => {
                let head: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(self.pool()).await.map_err(db)?;
                head.and_then(|h| u64::try_from(h).ok()).map_or(1, |h| h + 1)
            }
        };
        // Read at most TIMELINE_SCAN records per page: [lowest, before).
        let lowest = before.saturating_sub(TIMELINE_SCAN).max(1);
        if before <= lowest {
            return Ok(TimelinePage::default());
        }
        let max = limit(query.limit);
        let rows = sqlx::query(
            "SELECT seq, event_json FROM audit_log WHERE seq < $1 AND seq >= $2 AND json_extract(event_json, $3) = $4 \
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(signed(before))
        .bind(signed(lowest))
        .bind(key_path(query.key_type))
        .bind(&query.key)
        .bind(max)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        let events = rows
            .iter()
            .map(|r| Ok(TimelineEntry { seq: unsigned(r, "seq")?, event: event_from_json(&text(r, "event_json")?)? }))
            .collect::<Result<Vec<_>, WatchStoreError>>()?;
        let next = match events.last() {
            // A full page: the next one starts below its last event.
            Some(last) if events.len() as i64 == max => Some(last.seq),
            // The window is read out: go on below it, unless it reached the start of the log.
            _ => (lowest > 1).then_some(lowest),
        };
        Ok(TimelinePage { events, next })
    }
}
