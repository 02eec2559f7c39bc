//! Refresh-token lookups, read in batches: every lookup waiting goes in with one `SELECT ... IN (...)`, one
//! hand-off to SQLite's thread ([`super::batch`]). Every refresh starts with one.

use std::collections::HashMap;

use argus_oauth::{RefreshToken, StorageError};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;

use super::batch::{Batch, padded, parameter_rows};
use super::{db, refresh_from_row};

/// Lookups by token hash, as a [`Batch`].
pub(crate) struct Lookups;

impl Batch for Lookups {
    type Item = String;
    type Output = Result<Option<RefreshToken>, StorageError>;
    const MAX: usize = 64;

    async fn run(pool: &SqlitePool, hashes: Vec<String>) -> Vec<Self::Output> {
        if let [one] = hashes.as_slice() {
            return vec![read_one(pool, one).await];
        }
        match read_many(pool, &hashes).await {
            Ok(found) => hashes
                .iter()
                .map(|h| match found.get(h.as_str()) {
                    Some(Ok(token)) => Ok(Some(token.clone())),
                    Some(Err(e)) => Err(StorageError(e.0.clone())),
                    None => Ok(None),
                })
                .collect(),
            Err(e) => hashes.iter().map(|_| Err(StorageError(e.0.clone()))).collect(),
        }
    }
}

/// The token, with what its family adds (end, key, revocation, device, acr). A macro so that the single lookup stays a
/// `&'static str`.
macro_rules! select_refresh {
    () => {
        "SELECT t.*, f.revoked_at, f.expires_at AS family_expires_at, f.jkt AS family_jkt, \
         f.device_id AS family_device, f.acr AS family_acr, f.resource AS family_resource \
         FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id"
    };
}

async fn read_one(pool: &SqlitePool, hash: &str) -> Result<Option<RefreshToken>, StorageError> {
    let sql = concat!(select_refresh!(), " WHERE t.token_hash = $1");
    let row = sqlx::query(sql).bind(hash).fetch_optional(pool).await.map_err(db)?;
    row.as_ref().map(refresh_from_row).transpose()
}

/// The statement for `n` lookups ([`padded`] parameters).
pub(super) fn batch_sql(n: usize) -> String {
    format!(concat!(select_refresh!(), " WHERE t.token_hash IN (VALUES {})"), parameter_rows(padded(n), 1))
}

/// The tokens found among `hashes`, by hash; a row that cannot be read is an error for its hash alone.
async fn read_many(
    pool: &SqlitePool,
    hashes: &[String],
) -> Result<HashMap<String, Result<RefreshToken, StorageError>>, StorageError> {
    // The SQL is built from parameter counts only; every value is bound. Padding binds NULL, which matches nothing.
    let mut query = sqlx::query(AssertSqlSafe(batch_sql(hashes.len())));
    for h in hashes {
        query = query.bind(h);
    }
    for _ in hashes.len()..padded(hashes.len()) {
        query = query.bind(None::<String>);
    }
    let rows = query.fetch_all(pool).await.map_err(db)?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let hash = super::text(row, "token_hash").ok()?;
            Some((hash, refresh_from_row(row)))
        })
        .collect())
}
