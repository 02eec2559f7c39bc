//! Argus's storage adapter: SQLite (embedded default, WAL) through sqlx. PostgreSQL comes behind the same traits.
//!
//! The store implements the storage traits of the cores: `argus_oauth`'s for the issuer (module `issuer`),
//! `argus_detect`'s for watch (module `watch`). Secrets (refresh tokens, codes, session cookies, passwords) arrive
//! here already hashed; this crate never sees a secret in the clear.
#![forbid(unsafe_code)]

mod account;
mod admin;
mod issuer;
mod notice;
mod passkey;
mod step_up_demand;
mod throttle;
mod watch;
mod watch_actions;

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

/// The database, cheap to clone (a pool, and the queues of the refresh hot path).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// Refresh-token lookups and rotations are done in batches: see `issuer::batch`.
    refresh: issuer::RefreshQueues,
}

/// Connections of the pool of a database file: enough for a writer, a write transaction of watch and reads side by
/// side. Each SQLite connection of sqlx runs on a thread of its own, and every commit empties the page cache of
/// every other connection; measured on the token endpoint (bench/README.md), 2 or 3 connections serve refreshes
/// ~15% faster than 8.
const MAX_CONNECTIONS: u32 = 3;

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "argus.db";

/// Create the data directory (0700) and the database file (0600) for the owner alone, and narrow an existing
/// database file that others could read: it holds the signing keys, the DPoP nonce secrets and the hashes of every
/// secret. SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private(data_dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(data_dir)?;
        let db = data_dir.join(SQLITE_FILE);
        // Append mode: creates an empty file (a valid empty database) if missing, never truncates one.
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&db)?;
        let mode = std::fs::metadata(&db)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(data_dir)?;
    Ok(())
}

impl Store {
    /// Open (creating if needed) the SQLite database in `data_dir` and run the migrations.
    pub async fn open_dir(data_dir: &Path) -> Result<Self, StoreError> {
        create_private(data_dir).map_err(|e| StoreError::Corrupt(format!("{}: {e}", data_dir.display())))?;
        let opts = SqliteConnectOptions::new().filename(data_dir.join(SQLITE_FILE));
        Self::open_with(opts).await
    }

    /// Open a database by URL (`sqlite://path`, `sqlite::memory:`).
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        Self::open_with(SqliteConnectOptions::from_str(url)?).await
    }

    async fn open_with(opts: SqliteConnectOptions) -> Result<Self, StoreError> {
        let in_memory = opts.get_filename().to_string_lossy().contains(":memory:");
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // An in-memory database exists per connection: keep exactly one.
        let max = if in_memory { 1 } else { MAX_CONNECTIONS };
        let pool = SqlitePoolOptions::new().max_connections(max).min_connections(1).connect_with(opts).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let refresh = issuer::RefreshQueues::start(&pool);
        Ok(Self { pool, refresh })
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

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_dir_and_database_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let store = Store::open_dir(&dir).await.unwrap();
        sqlx::query("CREATE TABLE probe (x)").execute(store.pool()).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for file in [SQLITE_FILE, "argus.db-wal", "argus.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        drop(store);

        // A database others could read is narrowed when it is opened.
        std::fs::set_permissions(dir.join(SQLITE_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open_dir(&dir).await.unwrap();
        assert_eq!(mode(&dir.join(SQLITE_FILE)), 0o600);
    }
}
