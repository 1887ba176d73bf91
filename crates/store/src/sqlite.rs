//! The embedded SQLite store, the default: one file in the data directory, WAL journal,
//! foreign keys on. Writes go through one writer at a time (an in-process lock plus SQLite's
//! busy timeout for other processes such as `ringfence admin`), so a write transaction never
//! fails for contention.

use crate::{Result, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

type Db = sqlx::Sqlite;
type This = SqliteStore;
const BACKEND: &str = "sqlite";

/// A parameter holding a JSON array, as rows whose `value` is each element: one bound
/// parameter for any number of rows (SQLite looks named parameters up linearly, so
/// statements with hundreds of them cost more to bind than to run).
macro_rules! json_rows {
    ($n:literal) => {
        concat!("json_each($", $n, ")")
    };
}

/// Like `json_rows!`, for an array of strings: `value` is each string as text.
macro_rules! json_texts {
    ($n:literal) => {
        concat!("json_each($", $n, ")")
    };
}

/// Joins a column's values of several rows with commas.
macro_rules! agg {
    ($col:literal) => {
        concat!("group_concat(", $col, ", ',')")
    };
}

pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    writer: tokio::sync::Mutex<()>,
    /// The folder holding the database file, whose free space readiness reports.
    dir: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it and its folder on first use, and
    /// applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Open(format!(
                    "cannot create the data directory {}: {e}; choose a writable --data-dir",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(15))
            // 64 MiB of page cache per connection (the default is 2 MiB): an inventory
            // report touches thousands of index pages and would otherwise spill mid-transaction.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection whose transaction could not be ended (a COMMIT or ROLLBACK that
            // failed on a full disk, say) is closed, not handed to the next caller, whose
            // BEGIN would fail for as long as the server runs.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    // Waits for a rollback queued by a dropped transaction.
                    conn.ping().await?;
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!("a database connection left inside a transaction was closed");
                    }
                    Ok(clean)
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Open(format!(
                    "cannot open the SQLite database {}: {e}; check the path and its permissions",
                    path.display()
                ))
            })?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => std::path::PathBuf::from("."),
        };
        Ok(Self { pool, writer: tokio::sync::Mutex::new(()), dir })
    }

    /// Holds the single-writer lock for the length of a write transaction.
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writer.lock().await)
    }

    /// Write transactions take SQLite's write lock at once, so they wait for another writer
    /// (busy timeout) instead of failing when a read would have to be upgraded.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The pool, for tests that must reach under the store (e.g. to tamper with a row).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    fn free_bytes(&self) -> Option<u64> {
        crate::free_bytes(&self.dir)
    }
}

/// SQLite's write transactions are exclusive already: no row locks.
fn row_lock_sql(_table: &'static str) -> Option<String> {
    None
}

include!("sql_common.rs");
include!("sql_intel.rs");
include!("sql_agents.rs");
include!("sql_remediation.rs");
include!("sql_deploy.rs");
include!("sql_reports.rs");
include!("sql_appliances.rs");
