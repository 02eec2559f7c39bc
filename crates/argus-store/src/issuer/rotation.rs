//! Refresh-token rotations, written in batches (group commit).
//!
//! Every refresh ends in a rotation: consume the presented token, store its successor. sqlx runs each SQLite
//! connection on a thread of its own, so each statement is a hand-off between threads, and each commit writes and
//! locks the WAL: under load those costs, not SQLite's work, bound the refresh rate. So rotations go through a queue:
//! one task takes every rotation waiting (up to [`MAX_BATCH`]) and writes them with one statement — one hand-off,
//! one commit. Alone, a rotation is a batch of one: no waiting for company.
//!
//! Each rotation stays atomic and exactly-once: the statement is one implicit transaction; a successor is inserted
//! only while its predecessor is unconsumed and its family unrevoked, and the trigger of migration 0006 consumes the
//! predecessor as the successor goes in. Two rotations of one token in one batch would both see it unconsumed (the
//! statement evaluates its `SELECT` before inserting), so a batch holds each predecessor once; the later request
//! is answered "not rotatable", as it would be a moment later. If a batch fails, each of its rotations is tried
//! alone, so one bad row cannot fail the others.

use std::collections::HashSet;
use std::fmt::Write as _;

use argus_model::Timestamp;
use argus_oauth::{RefreshToken, RotateOutcome, StorageError};
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::{mpsc, oneshot};

use super::db;

/// Most rotations written by one statement (12 parameters each; SQLite allows 32,766).
const MAX_BATCH: usize = 64;
/// Rotations waiting to be written; past that, callers wait to enqueue.
const QUEUE: usize = 4096;

const COLUMNS: &str = "token_hash, family_id, client_id, sub, sid, scope, auth_time, created_at, expires_at, \
     consumed_at, access_jti, access_expires_at, rotated_from";

/// One rotation waiting for the writer, with where to send its outcome.
struct Rotation {
    old_hash: String,
    now: Timestamp,
    next: RefreshToken,
    reply: oneshot::Sender<Result<RotateOutcome, StorageError>>,
}

/// The sending end of the rotation queue, kept by every clone of the store.
#[derive(Clone, Debug)]
pub(crate) struct RotationQueue {
    tx: mpsc::Sender<Rotation>,
    /// For a rotation that cannot be queued (the writer task is gone: the runtime that started it has ended).
    pool: SqlitePool,
}

impl RotationQueue {
    /// Start the writer task on the current tokio runtime. It ends when the last store clone is dropped.
    pub fn start(pool: SqlitePool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool.clone(), rx));
        Self { tx, pool }
    }

    /// Consume `old_hash` at `now` and store `next`, atomically, with whatever other rotations are waiting.
    pub async fn rotate(
        &self,
        old_hash: &str,
        now: Timestamp,
        next: &RefreshToken,
    ) -> Result<RotateOutcome, StorageError> {
        let (reply, outcome) = oneshot::channel();
        let rotation = Rotation { old_hash: old_hash.to_owned(), now, next: next.clone(), reply };
        if let Err(mpsc::error::SendError(rotation)) = self.tx.send(rotation).await {
            return write_one(&self.pool, &rotation).await;
        }
        outcome.await.map_err(|_| StorageError("the rotation writer stopped".into()))?
    }
}

/// The writer task: take the first rotation waiting and every one queued behind it, write them, answer each.
async fn write_batches(pool: SqlitePool, mut rx: mpsc::Receiver<Rotation>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write_batch(&pool, std::mem::take(&mut batch)).await;
    }
}

async fn write_batch(pool: &SqlitePool, batch: Vec<Rotation>) {
    let (mut batch, repeats) = first_per_predecessor(batch);
    for r in repeats {
        let _ = r.reply.send(Ok(RotateOutcome::NotRotatable));
    }
    if batch.len() == 1 {
        if let Some(one) = batch.pop() {
            let outcome = write_one(pool, &one).await;
            let _ = one.reply.send(outcome);
        }
        return;
    }
    match write_many(pool, &batch).await {
        Ok(rotated) => {
            for r in batch {
                // The caller may have gone (its request was cancelled); the rotation stands all the same.
                let _ = r.reply.send(Ok(outcome(rotated.contains(r.old_hash.as_str()))));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, rotations = batch.len(), "a batch of rotations failed; writing them one by one");
            for r in batch {
                let outcome = write_one(pool, &r).await;
                let _ = r.reply.send(outcome);
            }
        }
    }
}

fn outcome(rotated: bool) -> RotateOutcome {
    if rotated { RotateOutcome::Rotated } else { RotateOutcome::NotRotatable }
}

/// The batch with each predecessor once (the first request for it, in queue order), and the repeats.
fn first_per_predecessor(batch: Vec<Rotation>) -> (Vec<Rotation>, Vec<Rotation>) {
    let mut seen = HashSet::new();
    batch.into_iter().partition(|r| seen.insert(r.old_hash.clone()))
}

/// The statement for `n` rotations: the successors as a `VALUES` list, each joined to its predecessor and family.
/// Parameters `12k+1 ..= 12k+12` are rotation `k`'s: the eleven columns of the successor, then the predecessor.
pub(super) fn batch_sql(n: usize) -> String {
    let mut values = String::with_capacity(n * 72);
    for k in 0..n {
        let p = 12 * k;
        let sep = if k == 0 { "" } else { ", " };
        let _ = write!(values, "{sep}(");
        for i in 1..=12 {
            let _ = write!(values, "{}${}", if i == 1 { "" } else { ", " }, p + i);
        }
        values.push(')');
    }
    format!(
        "INSERT INTO refresh_tokens ({COLUMNS}) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, \
         NULL, v.column10, v.column11, t.token_hash \
         FROM (VALUES {values}) AS v \
         JOIN refresh_tokens t ON t.token_hash = v.column12 \
         JOIN refresh_families f ON f.family_id = t.family_id \
         WHERE t.consumed_at IS NULL AND t.family_id = v.column2 AND f.revoked_at IS NULL \
         RETURNING rotated_from"
    )
}

/// Write a batch (each predecessor once) in one statement; the predecessors that were rotated.
async fn write_many(pool: &SqlitePool, batch: &[Rotation]) -> Result<HashSet<String>, StorageError> {
    let sql = batch_sql(batch.len());
    // The SQL is built from parameter numbers only; every value is bound.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for r in batch {
        query = bind_rotation(query, r);
    }
    let rows = query.fetch_all(pool).await.map_err(db)?;
    rows.iter().map(|row| row.try_get::<String, _>("rotated_from").map_err(db)).collect()
}

/// A rotation alone, in one statement.
async fn write_one(pool: &SqlitePool, r: &Rotation) -> Result<RotateOutcome, StorageError> {
    let done = bind_rotation(sqlx::query(ROTATE_ONE), r).execute(pool).await.map_err(db)?;
    Ok(outcome(done.rows_affected() == 1))
}

/// [`batch_sql`] for one rotation, with the successor's row count as the outcome (SQLite does not count a
/// trigger's changes).
const ROTATE_ONE: &str = "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, sid, scope, auth_time, \
     created_at, expires_at, consumed_at, access_jti, access_expires_at, rotated_from) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, t.token_hash \
     FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id \
     WHERE t.token_hash = $12 AND t.consumed_at IS NULL AND t.family_id = $2 AND f.revoked_at IS NULL";

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Bind one rotation's twelve parameters, in the order of [`ROTATE_ONE`]. The successor is created at `now`: the
/// trigger consumes the predecessor at the successor's creation time.
fn bind_rotation<'q>(query: Query<'q>, r: &'q Rotation) -> Query<'q> {
    let next = &r.next;
    query
        .bind(&next.token_hash)
        .bind(&next.family_id)
        .bind(&next.client_id)
        .bind(&next.sub)
        .bind(&next.sid)
        .bind(&next.scope)
        .bind(next.auth_time.map(Timestamp::as_millis))
        .bind(r.now.as_millis())
        .bind(next.expires_at.as_millis())
        .bind(&next.access.jti)
        .bind(next.access.expires_at.as_millis())
        .bind(&r.old_hash)
}

/// Write `rotations` as one batch, as the writer task would had they all been queued at once; their outcomes in
/// order.
#[cfg(test)]
pub(super) async fn write_together(
    pool: &SqlitePool,
    rotations: Vec<(&str, Timestamp, RefreshToken)>,
) -> Vec<Result<RotateOutcome, StorageError>> {
    let mut batch = Vec::new();
    let mut outcomes = Vec::new();
    for (old_hash, now, next) in rotations {
        let (reply, outcome) = oneshot::channel();
        batch.push(Rotation { old_hash: old_hash.to_owned(), now, next, reply });
        outcomes.push(outcome);
    }
    write_batch(pool, batch).await;
    let mut answers = Vec::new();
    for outcome in outcomes {
        answers.push(outcome.await.unwrap_or_else(|_| Err(StorageError("no answer".into()))));
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_statement_numbers_twelve_parameters_per_rotation() {
        let sql = batch_sql(2);
        assert!(sql.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12), ($13, "), "{sql}");
        assert!(sql.contains("$24)) AS v"), "{sql}");
        assert!(!sql.contains("$25"));
    }
}
