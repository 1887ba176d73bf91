//! Fresh, empty stores for tests: a SQLite file in a new temporary folder, or a new database
//! on the PostgreSQL server named by `RINGFENCE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! When PostgreSQL cannot be reached, `fresh_postgres` returns `None` after saying why, so a
//! developer without it can still run the SQLite half; under CI (`CI` set) it panics instead,
//! because CI must run both.

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use std::path::PathBuf;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A temporary folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("temporary folder can be created");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn fresh_sqlite() -> (SqliteStore, TempDir) {
    let dir = TempDir::new("ringfence-test");
    let store = SqliteStore::open(&dir.0.join("ringfence.db")).await.expect("SQLite store opens");
    (store, dir)
}

/// The URL of a new, empty database on the test PostgreSQL server, or `None` (with a message)
/// when the server cannot be reached outside CI.
pub async fn fresh_postgres_url() -> Option<String> {
    use sqlx::Connection;
    let admin_url =
        std::env::var("RINGFENCE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
    let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at {admin_url} is required under CI: {e}");
            }
            eprintln!(
                "SKIPPED: PostgreSQL at {admin_url} is not reachable ({e}); start it or set RINGFENCE_TEST_POSTGRES_URL"
            );
            return None;
        }
    };
    let name = format!("ringfence_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("test database can be created");
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

pub async fn fresh_postgres() -> Option<PgStore> {
    let url = fresh_postgres_url().await?;
    Some(PgStore::connect(&url).await.expect("PostgreSQL store opens"))
}
