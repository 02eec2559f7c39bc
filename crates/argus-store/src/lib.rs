//! Argus's storage adapter: SQLite (embedded default, WAL) through sqlx. PostgreSQL comes behind the same traits.
//!
//! The store implements the storage traits of the cores: `argus_oauth`'s for the issuer (module `issuer`),
//! `argus_detect`'s for watch (module `watch`). Secrets (refresh tokens, codes, session cookies, passwords) arrive
//! here already hashed; this crate never sees a secret in the clear.
#![forbid(unsafe_code)]

mod admin;
mod issuer;
mod watch;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// A storage failure. Callers map it to a 500-class answer without detail; the message is for logs and carries no
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The database, cheap to clone (two pools).
#[derive(Clone, Debug)]
pub struct Store {
    /// Connections for reads (and, for now, the writes of the admin and watch modules).
    pool: SqlitePool,
    /// The one connection the issuer's writes go through.
    writer: SqlitePool,
}

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "argus.db";

impl Store {
    /// Open (creating if needed) the SQLite database in `data_dir` and run the migrations.
    pub async fn open_dir(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Corrupt(format!("{}: {e}", data_dir.display())))?;
        let opts = SqliteConnectOptions::new().filename(data_dir.join(SQLITE_FILE));
        Self::open_with(opts).await
    }

    /// Open a database by URL (`sqlite://path`, `sqlite::memory:`).
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        Self::open_with(SqliteConnectOptions::from_str(url)?).await
    }

    async fn open_with(opts: SqliteConnectOptions) -> Result<Self, StoreError> {
        let in_memory = opts.get_filename().to_string_lossy().contains(":memory:");
        let env = |k: &str, d: u32| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        let mut opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if env("ARGUS_TMP_PRAGMAS", 0) == 1 {
            opts = opts.pragma("mmap_size", "268435456").pragma("cache_size", "-16384").pragma("temp_store", "memory");
        }
        // An in-memory database exists per connection: keep exactly one.
        let max = if in_memory { 1 } else { env("ARGUS_TMP_READERS", 8) };
        let pool = SqlitePoolOptions::new().max_connections(max).min_connections(1).connect_with(opts.clone()).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let writer = if in_memory || env("ARGUS_TMP_WRITER", 0) == 0 {
            pool.clone()
        } else {
            SqlitePoolOptions::new().max_connections(1).min_connections(1).connect_with(opts).await?
        };
        Ok(Self { pool, writer })
    }

    /// A private database in memory, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::open_url("sqlite::memory:").await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_and_migrates_twice() {
        let dir = tempfile::tempdir().unwrap();
        Store::open_dir(dir.path()).await.unwrap();
        let again = Store::open_dir(dir.path()).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(again.pool()).await.unwrap();
        assert_eq!(mode, "wal");
    }
}
