//! Refresh-token lookups, read in batches: every lookup waiting goes in with one `SELECT ... IN (...)`, one
//! hand-off to SQLite's thread ([`super::batch`]). Every refresh starts with one.

use std::collections::HashMap;

use argus_model::Timestamp;
use argus_oauth::{IssuedAccess, RefreshToken, StorageError, resources_from_stored};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqlitePool;

use super::batch::{Batch, padded, parameter_rows};
use super::{corrupt, db, refresh_from_row};

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
            Ok(found) => hashes.iter().map(|h| Ok(found.get(h.as_str()).cloned())).collect(),
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

/// The statement for `n` lookups ([`padded`] parameters): every token found as one JSON array of [`Found`] rows, in
/// one result row. sqlx's SQLite worker thread sends each result row to the caller as a message of its own, and on
/// a busy core each message can cost a thread switch; one row per batch costs one.
pub(super) fn batch_sql(n: usize) -> String {
    format!(
        "SELECT json_group_array(json_array(t.token_hash, t.family_id, t.client_id, t.sub, t.sid, t.scope, \
         t.auth_time, t.created_at, t.expires_at, t.consumed_at, t.access_jti, t.access_expires_at, \
         f.revoked_at, f.expires_at, f.jkt, f.device_id, f.acr, f.resource)) \
         FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id \
         WHERE t.token_hash IN (VALUES {})",
        parameter_rows(padded(n), 1)
    )
}

/// One token of a batch, in the column order of [`batch_sql`] (the columns [`refresh_from_row`] reads).
#[derive(serde::Deserialize)]
struct Found(
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    String,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<Found> for RefreshToken {
    fn from(f: Found) -> Self {
        let ms = Timestamp::from_millis;
        RefreshToken {
            token_hash: f.0,
            family_id: f.1,
            client_id: f.2,
            sub: f.3,
            sid: f.4,
            scope: f.5,
            auth_time: f.6.map(ms),
            created_at: ms(f.7),
            expires_at: ms(f.8),
            consumed_at: f.9.map(ms),
            access: IssuedAccess { jti: f.10, expires_at: ms(f.11) },
            family_revoked_at: f.12.map(ms),
            family_expires_at: ms(f.13),
            jkt: f.14,
            device: f.15,
            acr: f.16,
            resources: resources_from_stored(f.17.as_deref()),
        }
    }
}

/// The tokens found among `hashes`, by hash.
async fn read_many(pool: &SqlitePool, hashes: &[String]) -> Result<HashMap<String, RefreshToken>, StorageError> {
    // The SQL is built from parameter counts only; every value is bound. Padding binds NULL, which matches nothing.
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(batch_sql(hashes.len())));
    for h in hashes {
        query = query.bind(h);
    }
    for _ in hashes.len()..padded(hashes.len()) {
        query = query.bind(None::<String>);
    }
    let json = query.fetch_one(pool).await.map_err(db)?;
    let found: Vec<Found> = serde_json::from_str(&json).map_err(|_| corrupt("a refresh token"))?;
    Ok(found.into_iter().map(RefreshToken::from).map(|t| (t.token_hash.clone(), t)).collect())
}
