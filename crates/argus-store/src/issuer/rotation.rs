//! Refresh-token rotations, written in batches (group commit): every rotation waiting goes in with one statement,
//! one hand-off to SQLite's thread and one commit ([`super::batch`]).
//!
//! Each rotation stays atomic and exactly-once: the statement is one implicit transaction; a successor is inserted
//! only while its predecessor is unconsumed and its family unrevoked, and the trigger of migration 0006 consumes the
//! predecessor as the successor goes in. Two rotations of one token in one batch would both see it unconsumed (the
//! statement evaluates its `SELECT` before inserting), so a batch holds each predecessor once; a later request for
//! the same predecessor is answered "not rotatable", as it would be a moment later. If a batch fails, each of its
//! rotations is tried alone, so one bad row cannot fail the others.

use std::collections::HashSet;

use argus_model::Timestamp;
use argus_oauth::{RefreshToken, RotateOutcome, StorageError};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;

use super::batch::{Batch, padded, parameter_rows};
use super::db;

/// One rotation: consume `old_hash` at `now`, store `next`.
pub(crate) struct Rotation {
    pub old_hash: String,
    pub now: Timestamp,
    pub next: RefreshToken,
}

/// Rotations, as a [`Batch`].
pub(crate) struct Rotations;

impl Batch for Rotations {
    type Item = Rotation;
    type Output = Result<RotateOutcome, StorageError>;
    /// 12 parameters each; SQLite allows 32,766.
    const MAX: usize = 64;

    async fn run(pool: &SqlitePool, rotations: Vec<Rotation>) -> Vec<Self::Output> {
        let firsts = first_per_predecessor(&rotations);
        let mut outcomes: Vec<Self::Output> = rotations.iter().map(|_| Ok(RotateOutcome::NotRotatable)).collect();
        let written = match firsts.as_slice() {
            [] => Ok(Vec::new()),
            [one] => write_one(pool, &rotations[*one]).await.map(|o| vec![(*one, o)]),
            _ => write_many(pool, &rotations, &firsts).await,
        };
        match written {
            Ok(written) => {
                for (i, outcome) in written {
                    outcomes[i] = Ok(outcome);
                }
            }
            Err(e) if firsts.len() > 1 => {
                tracing::warn!(error = %e, rotations = firsts.len(), "a batch of rotations failed; writing them one by one");
                for &i in &firsts {
                    outcomes[i] = write_one(pool, &rotations[i]).await;
                }
            }
            Err(e) => outcomes[firsts[0]] = Err(e),
        }
        outcomes
    }
}

fn outcome(rotated: bool) -> RotateOutcome {
    if rotated { RotateOutcome::Rotated } else { RotateOutcome::NotRotatable }
}

/// The positions of the first rotation of each predecessor, in order. The others stay "not rotatable".
fn first_per_predecessor(rotations: &[Rotation]) -> Vec<usize> {
    let mut seen = HashSet::new();
    (0..rotations.len()).filter(|&i| seen.insert(rotations[i].old_hash.as_str())).collect()
}

/// The statement for `n` rotations ([`padded`] rows): the successors as a `VALUES` list, each joined to its
/// predecessor and family. Each row holds the twelve parameters [`bind_rotation`] binds. It returns no rows: sqlx's
/// SQLite worker thread sends each result row to the caller as a message of its own (on a busy core, a thread
/// switch each), so the outcome is read from the count of successors written and, only when some were not,
/// from one more single-row statement ([`written_successors`]).
pub(super) fn batch_sql(n: usize) -> String {
    format!(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, sid, scope, auth_time, created_at, \
         expires_at, consumed_at, access_jti, access_expires_at, rotated_from) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, \
         NULL, v.column10, v.column11, t.token_hash \
         FROM (VALUES {}) AS v \
         JOIN refresh_tokens t ON t.token_hash = v.column12 \
         JOIN refresh_families f ON f.family_id = t.family_id \
         WHERE t.consumed_at IS NULL AND t.family_id = v.column2 AND f.revoked_at IS NULL",
        parameter_rows(padded(n), 12)
    )
}

/// Write the rotations at `positions` (each predecessor once) in one statement; the outcome of each position.
async fn write_many(
    pool: &SqlitePool,
    rotations: &[Rotation],
    positions: &[usize],
) -> Result<Vec<(usize, RotateOutcome)>, StorageError> {
    // The SQL is built from parameter numbers only; every value is bound.
    let mut query = sqlx::query(AssertSqlSafe(batch_sql(positions.len())));
    for &i in positions {
        query = bind_rotation(query, &rotations[i]);
    }
    for _ in positions.len()..padded(positions.len()) {
        query = bind_nothing(query);
    }
    let written = query.execute(pool).await.map_err(db)?.rows_affected();
    if written == positions.len() as u64 {
        return Ok(positions.iter().map(|&i| (i, RotateOutcome::Rotated)).collect());
    }
    let successors: Vec<&str> = positions.iter().map(|&i| rotations[i].next.token_hash.as_str()).collect();
    let found = written_successors(pool, &successors).await?;
    Ok(positions.iter().map(|&i| (i, outcome(found.contains(rotations[i].next.token_hash.as_str())))).collect())
}

/// Which of `successors` (new, unique token keys) are stored: the rotations of a batch that went in. One row, as
/// a JSON array.
async fn written_successors(pool: &SqlitePool, successors: &[&str]) -> Result<HashSet<String>, StorageError> {
    let sql = format!(
        "SELECT json_group_array(token_hash) FROM refresh_tokens WHERE token_hash IN (VALUES {})",
        parameter_rows(padded(successors.len()), 1)
    );
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
    for s in successors {
        query = query.bind(*s);
    }
    for _ in successors.len()..padded(successors.len()) {
        query = query.bind(None::<String>);
    }
    let json = query.fetch_one(pool).await.map_err(db)?;
    serde_json::from_str(&json).map_err(|_| super::corrupt("the successors of a batch of rotations"))
}

/// One rotation in one statement: [`batch_sql`] for one, with the successor's row count as the outcome (SQLite
/// does not count a trigger's changes).
async fn write_one(pool: &SqlitePool, r: &Rotation) -> Result<RotateOutcome, StorageError> {
    let done = bind_rotation(sqlx::query(ROTATE_ONE), r).execute(pool).await.map_err(db)?;
    Ok(outcome(done.rows_affected() == 1))
}

const ROTATE_ONE: &str = "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, sid, scope, auth_time, \
     created_at, expires_at, consumed_at, access_jti, access_expires_at, rotated_from) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, t.token_hash \
     FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id \
     WHERE t.token_hash = $12 AND t.consumed_at IS NULL AND t.family_id = $2 AND f.revoked_at IS NULL";

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Bind one rotation's twelve parameters: the successor's eleven columns, then the predecessor. The successor is
/// created at `now`: the trigger consumes the predecessor at the successor's creation time.
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

/// A padding row: twelve NULLs, whose predecessor (NULL) is no token.
fn bind_nothing(mut query: Query<'_>) -> Query<'_> {
    for _ in 0..12 {
        query = query.bind(None::<String>);
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_statement_has_twelve_parameters_per_padded_row() {
        let twelve = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        assert!(batch_sql(2).contains(&format!("VALUES {twelve}, {twelve}) AS v")));
        assert_eq!(batch_sql(3).matches('?').count(), 4 * 12, "three rotations take four rows");
        assert_eq!(batch_sql(3), batch_sql(4), "one statement text per power of two");
    }
}
