//! Storage for watch: the hash-chained audit log and alerts, implementing `argus_detect`'s storage traits.
//!
//! The chain and merge rules live in `argus_detect` (pure); this module only reads and writes rows. Every write
//! that depends on what it read first (the chain head, the open alert for a key) runs in a `BEGIN IMMEDIATE`
//! transaction, which takes SQLite's write lock up front: appends are serialised across tasks and processes, so
//! the chain cannot fork and two drafts for one key cannot both open an alert.
//!
//! Watch appends in batches: a batch is one transaction of a few statements whatever its size (a head check and
//! multi-row `INSERT`s), because with sqlx every statement is a round trip to the connection's thread and that
//! hand-off, not SQLite, is what an append costs.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use argus_detect::{
    Alert, AlertChange, AlertDraft, AlertFilter, AlertStore, Attack, AuditLog, AuditRecord, BatchAppended, ChainHead,
    ChainLinker, ChainVerdict, ChainVerifier, KeyType, MAX_ALERT_LIMIT, WatchStoreError,
};
use argus_model::id::new_id;
use argus_model::{Event, Timestamp};
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::Store;

/// Records read per query while verifying the chain: bounds memory for a log of any length.
const VERIFY_PAGE: u32 = 1_000;

/// Most rows in one multi-row `INSERT` (7 parameters each, far below SQLite's 32,766). A batch is cut into chunks
/// whose lengths are powers of two up to this, so batches of any size share at most nine statement texts and each
/// stays prepared in sqlx's per-connection cache.
const INSERT_CHUNK_MAX: usize = 256;

const AUDIT_COLUMNS: &str =
    "INSERT INTO audit_log (seq, event_id, time_ms, event_type, event_json, prev_hash, hash) VALUES ";

/// A duplicate event is skipped, not an error; a clash on `seq` or `prev_hash` (a forked chain) still fails.
const SKIP_LOGGED_EVENTS: &str = " ON CONFLICT (event_id) DO NOTHING";

pub(crate) fn db(e: sqlx::Error) -> WatchStoreError {
    WatchStoreError::Backend(Box::new(e))
}

pub(crate) fn corrupt(what: impl Into<String>) -> WatchStoreError {
    WatchStoreError::Corrupt(what.into())
}

pub(crate) fn text(row: &SqliteRow, col: &str) -> Result<String, WatchStoreError> {
    row.try_get::<String, _>(col).map_err(db)
}

pub(crate) fn millis(row: &SqliteRow, col: &str) -> Result<Timestamp, WatchStoreError> {
    Ok(Timestamp::from_millis(row.try_get::<i64, _>(col).map_err(db)?))
}

pub(crate) fn unsigned(row: &SqliteRow, col: &str) -> Result<u64, WatchStoreError> {
    let n = row.try_get::<i64, _>(col).map_err(db)?;
    u64::try_from(n).map_err(|_| corrupt(format!("negative {col}")))
}

fn parsed<T: std::str::FromStr>(row: &SqliteRow, col: &str) -> Result<T, WatchStoreError> {
    text(row, col)?.parse().map_err(|_| corrupt(format!("alert {col}")))
}

/// SQLite integers are signed; the chain and counts never get near `i64::MAX`, and saturating is safer than
/// wrapping if they did.
pub(crate) fn signed(n: u64) -> i64 {
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

pub(crate) async fn write_transaction(store: &Store) -> Result<Transaction<'static, Sqlite>, WatchStoreError> {
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

const HEAD_SQL: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

fn head_from_row(row: Option<SqliteRow>) -> Result<Option<(u64, String)>, WatchStoreError> {
    row.map(|r| Ok((unsigned(&r, "seq")?, text(&r, "hash")?))).transpose()
}

async fn audit_head(tx: &mut Transaction<'static, Sqlite>) -> Result<Option<(u64, String)>, WatchStoreError> {
    head_from_row(sqlx::query(HEAD_SQL).fetch_optional(&mut **tx).await.map_err(db)?)
}

/// The head `first` was chained after: `None` for the first record of a log.
fn head_before(first: &AuditRecord) -> Option<(u64, String)> {
    (first.seq > 1).then(|| (first.seq - 1, first.prev_hash.clone()))
}

/// Fails unless the log's head is `expected`, so a batch chained after a stale head writes nothing (and one
/// chained after a head the log never had cannot leave a gap).
async fn check_head(
    tx: &mut Transaction<'static, Sqlite>,
    expected: &Option<(u64, String)>,
) -> Result<(), WatchStoreError> {
    let found = audit_head(tx).await?;
    if found == *expected {
        return Ok(());
    }
    let seq = |head: &Option<(u64, String)>| head.as_ref().map_or(0, |(seq, _)| *seq);
    Err(WatchStoreError::StaleHead { expected: seq(expected), found: seq(&found) })
}

/// The lengths `n` rows are inserted in: the largest power of two up to [`INSERT_CHUNK_MAX`], repeatedly.
fn chunk_lengths(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let len = if n >= INSERT_CHUNK_MAX { INSERT_CHUNK_MAX } else { 1 << n.ilog2() };
        n -= len;
        Some(len)
    })
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(AUDIT_COLUMNS.len() + rows * 24 + SKIP_LOGGED_EVENTS.len());
    sql.push_str(AUDIT_COLUMNS);
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?)" });
    }
    sql.push_str(SKIP_LOGGED_EVENTS);
    sql
}

/// Inserts `rows` in one statement; returns how many were new (a logged event's row is skipped).
async fn insert_records(tx: &mut Transaction<'static, Sqlite>, rows: &[AuditRecord]) -> Result<u64, WatchStoreError> {
    let sql = insert_sql(rows.len());
    // Built from constant fragments and a row count only; every value is a bound parameter.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        query = query
            .bind(signed(r.seq))
            .bind(&r.event_id)
            .bind(r.time.as_millis())
            .bind(&r.event_type)
            .bind(&r.json)
            .bind(&r.prev_hash)
            .bind(&r.hash);
    }
    Ok(query.execute(&mut **tx).await.map_err(db)?.rows_affected())
}

/// The common case, every event new: all rows in a few statements. Returns `false`, having written rows that
/// must be rolled back, if any row was skipped because its event was already logged. Usually the rows after such
/// a row make the statement fail instead, as they link to a row that was not written (the table refuses them): the
/// caller treats a failure the same way.
async fn insert_all_new(
    tx: &mut Transaction<'static, Sqlite>,
    records: &[AuditRecord],
) -> Result<bool, WatchStoreError> {
    let mut rest = records;
    for len in chunk_lengths(records.len()) {
        let (chunk, after) = rest.split_at(len);
        if insert_records(tx, chunk).await? != len as u64 {
            return Ok(false);
        }
        rest = after;
    }
    Ok(true)
}

/// The rare case, some event already logged: one row at a time, re-linking each after the last row written.
async fn insert_skipping_logged(
    tx: &mut Transaction<'static, Sqlite>,
    records: &[AuditRecord],
    head: Option<(u64, String)>,
) -> Result<BatchAppended, WatchStoreError> {
    let mut linker = ChainLinker::after(head);
    let (mut appended, mut duplicates) = (0, 0);
    for record in records {
        let record = linker.relinked(record);
        if insert_records(tx, std::slice::from_ref(&record)).await? == 1 {
            linker.advance(&record);
            appended += 1;
        } else {
            duplicates += 1;
        }
    }
    Ok(BatchAppended { appended, duplicates, head: linker.into_head() })
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

    async fn head(&self) -> Result<Option<(u64, String)>, WatchStoreError> {
        head_from_row(sqlx::query(HEAD_SQL).fetch_optional(self.pool()).await.map_err(db)?)
    }

    async fn append_batch(&self, records: &[AuditRecord]) -> Result<BatchAppended, WatchStoreError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(BatchAppended { head: self.head().await?, ..BatchAppended::default() });
        };
        let expected = head_before(first);
        let mut tx = write_transaction(self).await?;
        check_head(&mut tx, &expected).await?;
        if let Ok(true) = insert_all_new(&mut tx, records).await {
            tx.commit().await.map_err(db)?;
            let appended = records.len() as u64;
            return Ok(BatchAppended { appended, duplicates: 0, head: Some((last.seq, last.hash.clone())) });
        }
        // Some event was logged already (or the batch failed for another reason, which the row-by-row path meets
        // again and reports): start over, one row at a time.
        tx.rollback().await.map_err(db)?;
        let mut tx = write_transaction(self).await?;
        check_head(&mut tx, &expected).await?;
        let done = insert_skipping_logged(&mut tx, records, expected).await?;
        tx.commit().await.map_err(db)?;
        Ok(done)
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
        let mut changes = self.record_alerts(vec![draft]).await?;
        changes.pop().ok_or_else(|| corrupt("recording one draft made no change"))
    }

    async fn record_alerts(&self, drafts: Vec<AlertDraft>) -> Result<Vec<AlertChange>, WatchStoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = write_transaction(self).await?;
        // Each key's open alert is read once and written once, however many drafts of the batch it absorbs.
        let mut open: HashMap<(Attack, KeyType, String), OpenAlert> = HashMap::new();
        let mut changes = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let (attack, key_type, key) = draft.alert_key();
            let slot = match open.entry((attack, key_type, key.to_owned())) {
                Entry::Occupied(slot) => slot.into_mut(),
                Entry::Vacant(slot) => {
                    let stored = open_alert(&mut tx, &draft).await?;
                    slot.insert(OpenAlert { stored: stored.is_some(), alert: stored })
                }
            };
            changes.push(AlertChange::apply(&mut slot.alert, draft, new_id));
        }
        for slot in open.values() {
            match (&slot.alert, slot.stored) {
                (Some(alert), true) => update_alert(&mut tx, alert).await?,
                (Some(alert), false) => insert_alert(&mut tx, alert).await?,
                (None, _) => {}
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(changes)
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, WatchStoreError> {
        // One static statement: an absent filter is a NULL parameter that matches everything.
        let rows = sqlx::query(
            "SELECT * FROM alerts \
             WHERE ($1 IS NULL OR attack = $1) AND ($2 IS NULL OR key_type = $2) \
               AND ($3 IS NULL OR key = $3) AND ($4 IS NULL OR status = $4) \
             AND ($6 IS NULL OR last_seen_ms < $6 OR (last_seen_ms = $6 AND id < $7)) \
             ORDER BY last_seen_ms DESC, id DESC LIMIT $5",
        )
        .bind(filter.attack.map(|a| a.as_str()))
        .bind(filter.key_type.map(|k| k.as_str()))
        .bind(filter.key.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(filter.limit.clamp(1, MAX_ALERT_LIMIT)))
        // The next page: after the cursor's alert in the listing order.
        .bind(filter.before.as_ref().map(|c| c.last_seen.as_millis()))
        .bind(filter.before.as_ref().map(|c| c.id.as_str()))
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

/// A key's open alert while a batch of drafts is applied: `stored` says whether it is in the table already
/// (updated at the end) or opened by this batch (inserted).
struct OpenAlert {
    alert: Option<Alert>,
    stored: bool,
}

async fn open_alert(
    tx: &mut Transaction<'static, Sqlite>,
    draft: &AlertDraft,
) -> Result<Option<Alert>, WatchStoreError> {
    let row = sqlx::query("SELECT * FROM alerts WHERE attack = $1 AND key_type = $2 AND key = $3 AND status = 'open'")
        .bind(draft.attack.as_str())
        .bind(draft.key_type.as_str())
        .bind(&draft.key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    row.as_ref().map(alert_from_row).transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_powers_of_two() {
        let cut = |n| chunk_lengths(n).collect::<Vec<_>>();
        assert!(cut(0).is_empty());
        assert_eq!(cut(1), [1]);
        assert_eq!(cut(7), [4, 2, 1]);
        assert_eq!(cut(1000), [256, 256, 256, 128, 64, 32, 8]);
        for n in 0..2_000 {
            let lengths = cut(n);
            assert_eq!(lengths.iter().sum::<usize>(), n);
            assert!(lengths.iter().all(|l| l.is_power_of_two() && *l <= INSERT_CHUNK_MAX));
        }
    }

    #[test]
    fn the_insert_has_seven_parameters_per_row() {
        let sql = insert_sql(3);
        assert_eq!(sql.matches('?').count(), 21);
        assert!(sql.ends_with("(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"), "{sql}");
    }
}
