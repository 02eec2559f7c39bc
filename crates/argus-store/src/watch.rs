//! Storage for watch: the hash-chained audit log and alerts, implementing `argus_detect`'s storage traits.
//!
//! The chain and merge rules live in `argus_detect` (pure); this module only reads and writes rows. Every write
//! that depends on what it read first (the chain head, the open alert for a key) runs in a `BEGIN IMMEDIATE`
//! transaction, which takes SQLite's write lock up front: appends are serialised across tasks and processes, so
//! the chain cannot fork and two drafts for one key cannot both open an alert.

use argus_detect::{
    Alert, AlertChange, AlertDraft, AlertFilter, AlertStore, AuditLog, AuditRecord, ChainHead, ChainVerdict,
    ChainVerifier, MAX_ALERT_LIMIT, WatchStoreError,
};
use argus_model::id::new_id;
use argus_model::{Event, Timestamp};
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::Store;

/// Records read per query while verifying the chain: bounds memory for a log of any length.
const VERIFY_PAGE: u32 = 1_000;

fn db(e: sqlx::Error) -> WatchStoreError {
    WatchStoreError::Backend(Box::new(e))
}

fn corrupt(what: impl Into<String>) -> WatchStoreError {
    WatchStoreError::Corrupt(what.into())
}

fn text(row: &SqliteRow, col: &str) -> Result<String, WatchStoreError> {
    row.try_get::<String, _>(col).map_err(db)
}

fn millis(row: &SqliteRow, col: &str) -> Result<Timestamp, WatchStoreError> {
    Ok(Timestamp::from_millis(row.try_get::<i64, _>(col).map_err(db)?))
}

fn unsigned(row: &SqliteRow, col: &str) -> Result<u64, WatchStoreError> {
    let n = row.try_get::<i64, _>(col).map_err(db)?;
    u64::try_from(n).map_err(|_| corrupt(format!("negative {col}")))
}

fn parsed<T: std::str::FromStr>(row: &SqliteRow, col: &str) -> Result<T, WatchStoreError> {
    text(row, col)?.parse().map_err(|_| corrupt(format!("alert {col}")))
}

/// SQLite integers are signed; the chain and counts never get near `i64::MAX`, and saturating is safer than
/// wrapping if they did.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn record_from_row(row: &SqliteRow) -> Result<AuditRecord, WatchStoreError> {
    Ok(AuditRecord {
        seq: unsigned(row, "seq")?,
        event_id: text(row, "event_id")?,
        time: millis(row, "time_ms")?,
        event_type: text(row, "event_type")?,
        json: text(row, "event_json")?,
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

fn alert_from_row(row: &SqliteRow) -> Result<Alert, WatchStoreError> {
    Ok(Alert {
        id: text(row, "id")?,
        detector: text(row, "detector")?,
        attack: parsed(row, "attack")?,
        key_type: parsed(row, "key_type")?,
        key: text(row, "key")?,
        severity: parsed(row, "severity")?,
        status: parsed(row, "status")?,
        first_seen: millis(row, "first_seen_ms")?,
        last_seen: millis(row, "last_seen_ms")?,
        count: unsigned(row, "count")?,
        feature: serde_json::from_str(&text(row, "feature_json")?).map_err(|_| corrupt("alert feature"))?,
        evidence: serde_json::from_str(&text(row, "evidence_json")?).map_err(|_| corrupt("alert evidence"))?,
    })
}

/// The JSON columns of an alert.
fn alert_json(alert: &Alert) -> Result<(String, String), WatchStoreError> {
    let feature = serde_json::to_string(&alert.feature).map_err(|e| corrupt(format!("alert feature: {e}")))?;
    let evidence = serde_json::to_string(&alert.evidence).map_err(|e| corrupt(format!("alert evidence: {e}")))?;
    Ok((feature, evidence))
}

async fn write_transaction(store: &Store) -> Result<Transaction<'static, Sqlite>, WatchStoreError> {
    store.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db)
}

async fn audit_by_event_id(
    tx: &mut Transaction<'static, Sqlite>,
    event_id: &str,
) -> Result<Option<AuditRecord>, WatchStoreError> {
    let sql =
        "SELECT seq, event_id, time_ms, event_type, event_json, prev_hash, hash FROM audit_log WHERE event_id = $1";
    let row = sqlx::query(sql).bind(event_id).fetch_optional(&mut **tx).await.map_err(db)?;
    row.as_ref().map(record_from_row).transpose()
}

async fn audit_head(tx: &mut Transaction<'static, Sqlite>) -> Result<Option<(u64, String)>, WatchStoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    row.map(|r| Ok((unsigned(&r, "seq")?, text(&r, "hash")?))).transpose()
}

#[async_trait]
impl AuditLog for Store {
    async fn append(&self, event: &Event) -> Result<AuditRecord, WatchStoreError> {
        let mut tx = write_transaction(self).await?;
        if let Some(existing) = audit_by_event_id(&mut tx, &event.id).await? {
            return Ok(existing);
        }
        let head = audit_head(&mut tx).await?;
        let head = head.as_ref().map(|(seq, hash)| ChainHead { seq: *seq, hash });
        let record = AuditRecord::next(head, event).map_err(|e| corrupt(format!("event does not serialise: {e}")))?;
        sqlx::query(
            "INSERT INTO audit_log (seq, event_id, time_ms, event_type, event_json, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(signed(record.seq))
        .bind(&record.event_id)
        .bind(record.time.as_millis())
        .bind(&record.event_type)
        .bind(&record.json)
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn records_after(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, WatchStoreError> {
        let rows = sqlx::query(
            "SELECT seq, event_id, time_ms, event_type, event_json, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(signed(after))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn verify_chain(&self) -> Result<ChainVerdict, WatchStoreError> {
        // Verify up to the head as it is now; records appended meanwhile are left for the next check.
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(self.pool()).await.map_err(db)?;
        let Some(last) = last.and_then(|n| u64::try_from(n).ok()) else {
            return Ok(ChainVerifier::new().finish());
        };
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        while after < last {
            let page = self.records_after(after, VERIFY_PAGE).await?;
            for record in page.iter().take_while(|r| r.seq <= last) {
                if let Err(broken) = verifier.check(record) {
                    return Ok(ChainVerdict::Broken(broken));
                }
                after = record.seq;
            }
            if page.len() < VERIFY_PAGE as usize {
                break;
            }
        }
        Ok(verifier.finish())
    }
}

#[async_trait]
impl AlertStore for Store {
    async fn record_alert(&self, draft: AlertDraft) -> Result<AlertChange, WatchStoreError> {
        let mut tx = write_transaction(self).await?;
        let open =
            sqlx::query("SELECT * FROM alerts WHERE attack = $1 AND key_type = $2 AND key = $3 AND status = 'open'")
                .bind(draft.attack.as_str())
                .bind(draft.key_type.as_str())
                .bind(&draft.key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let change = match open {
            None => {
                let alert = Alert::open(new_id(), draft);
                insert_alert(&mut tx, &alert).await?;
                AlertChange::Opened(alert)
            }
            Some(row) => {
                let mut alert = alert_from_row(&row)?;
                let escalated_from = alert.absorb(draft);
                update_alert(&mut tx, &alert).await?;
                match escalated_from {
                    Some(from) => AlertChange::Escalated { alert, from },
                    None => AlertChange::Updated(alert),
                }
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(change)
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, WatchStoreError> {
        // One static statement: an absent filter is a NULL parameter that matches everything.
        let rows = sqlx::query(
            "SELECT * FROM alerts \
             WHERE ($1 IS NULL OR attack = $1) AND ($2 IS NULL OR key_type = $2) \
               AND ($3 IS NULL OR key = $3) AND ($4 IS NULL OR status = $4) \
             ORDER BY last_seen_ms DESC, id DESC LIMIT $5",
        )
        .bind(filter.attack.map(|a| a.as_str()))
        .bind(filter.key_type.map(|k| k.as_str()))
        .bind(filter.key.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(filter.limit.clamp(1, MAX_ALERT_LIMIT)))
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn alert(&self, id: &str) -> Result<Option<Alert>, WatchStoreError> {
        let row =
            sqlx::query("SELECT * FROM alerts WHERE id = $1").bind(id).fetch_optional(self.pool()).await.map_err(db)?;
        row.as_ref().map(alert_from_row).transpose()
    }
}

async fn insert_alert(tx: &mut Transaction<'static, Sqlite>, alert: &Alert) -> Result<(), WatchStoreError> {
    let (feature, evidence) = alert_json(alert)?;
    sqlx::query(
        "INSERT INTO alerts (id, detector, attack, key_type, key, severity, status, first_seen_ms, last_seen_ms, \
         count, feature_json, evidence_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&alert.id)
    .bind(&alert.detector)
    .bind(alert.attack.as_str())
    .bind(alert.key_type.as_str())
    .bind(&alert.key)
    .bind(alert.severity.as_str())
    .bind(alert.status.as_str())
    .bind(alert.first_seen.as_millis())
    .bind(alert.last_seen.as_millis())
    .bind(signed(alert.count))
    .bind(feature)
    .bind(evidence)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

async fn update_alert(tx: &mut Transaction<'static, Sqlite>, alert: &Alert) -> Result<(), WatchStoreError> {
    let (feature, evidence) = alert_json(alert)?;
    sqlx::query(
        "UPDATE alerts SET severity = $2, first_seen_ms = $3, last_seen_ms = $4, count = $5, feature_json = $6, \
         evidence_json = $7 WHERE id = $1",
    )
    .bind(&alert.id)
    .bind(alert.severity.as_str())
    .bind(alert.first_seen.as_millis())
    .bind(alert.last_seen.as_millis())
    .bind(signed(alert.count))
    .bind(feature)
    .bind(evidence)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}
