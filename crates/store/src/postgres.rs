//! The PostgreSQL store: the same schema and SQL as SQLite, for large fleets and for several
//! `serve` processes sharing one database. Concurrent writers are serialized where it
//! matters by row locks (an evidence append updates its chain head first).

use crate::{Result, StoreError};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

type Db = sqlx::Postgres;
type This = PgStore;
const BACKEND: &str = "postgres";

/// A parameter holding a JSON array, as rows whose `value` is each element: one bound
/// parameter for any number of rows.
macro_rules! json_rows {
    ($n:literal) => {
        concat!("jsonb_array_elements($", $n, "::jsonb)")
    };
}

/// Like `json_rows!`, for an array of strings: `value` is each string as text.
macro_rules! json_texts {
    ($n:literal) => {
        concat!("jsonb_array_elements_text($", $n, "::jsonb)")
    };
}

/// Joins a column's values of several rows with commas.
macro_rules! agg {
    ($col:literal) => {
        concat!("string_agg(", $col, ", ',')")
    };
}

pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    /// Connects to `url` and applies pending migrations (under PostgreSQL's advisory lock, so
    /// several servers starting at once migrate once).
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            // A connection whose transaction could not be ended is closed, not reused.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect(url)
            .await
            .map_err(|e| {
                StoreError::Open(format!(
                    "cannot connect to PostgreSQL at {}: {e}; check that the server is running and the URL (user, host, port, database) is right",
                    crate::redact_url(url)
                ))
            })?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// PostgreSQL needs no process-wide writer lock.
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }

    /// The pool, for tests that must reach under the store (e.g. to tamper with a row).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
    /// The server's disks are its own: PostgreSQL reports a full disk by its errors.
    fn free_bytes(&self) -> Option<u64> {
        None
    }
}

/// `SELECT … FOR UPDATE` on one row of `table`.
fn row_lock_sql(table: &'static str) -> Option<String> {
    Some(format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE"))
}

include!("sql_common.rs");
include!("sql_intel.rs");
include!("sql_agents.rs");
include!("sql_remediation.rs");
include!("sql_deploy.rs");
include!("sql_reports.rs");
include!("sql_appliances.rs");
