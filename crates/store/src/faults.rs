//! Storage faults: which database failures mean "the storage cannot take writes right now"
//! (a full disk, a read-only file system, an I/O error, an unreachable server) rather than a
//! bug or bad input. The server reports them on `/readyz`, logs them once per change, and
//! recovers by itself when the cause goes away.

use crate::StoreError;

/// Why the database cannot take writes, or cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left where the database writes.
    DiskFull,
    /// The database or its file system refuses writes.
    ReadOnly,
    /// Reading or writing the storage failed.
    Io,
    /// The database server does not answer, or refuses connections.
    Unreachable,
}

impl StorageFault {
    /// What an operator should read, and do.
    pub fn describe(self) -> &'static str {
        match self {
            StorageFault::DiskFull => {
                "the disk holding the database is full: free space there; writes resume by themselves"
            }
            StorageFault::ReadOnly => {
                "the database is read-only (file system or server setting): make it writable; writes resume by themselves"
            }
            StorageFault::Io => {
                "the storage under the database reports I/O errors: check the disk and the system log"
            }
            StorageFault::Unreachable => {
                "the database server cannot be reached: check that it is running and reachable"
            }
        }
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageFault::DiskFull => "disk_full",
            StorageFault::ReadOnly => "read_only",
            StorageFault::Io => "io_error",
            StorageFault::Unreachable => "unreachable",
        }
    }
}

impl StoreError {
    /// The storage fault behind this error, if it is one.
    pub fn fault(&self) -> Option<StorageFault> {
        match self {
            StoreError::Database(e) => fault_of(e),
            StoreError::Batch(_, fault) => *fault,
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => fault_of(e),
            _ => None,
        }
    }
}

/// Classifies a driver error: SQLite's primary result codes, PostgreSQL's SQLSTATE classes.
pub fn fault_of(e: &sqlx::Error) -> Option<StorageFault> {
    match e {
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                let code: i64 = sqlx::error::DatabaseError::code(sqlite).and_then(|c| c.parse().ok())?;
                // Extended codes keep the primary code in the low byte.
                return match code & 0xff {
                    13 => Some(StorageFault::DiskFull), // SQLITE_FULL
                    8 => Some(StorageFault::ReadOnly),  // SQLITE_READONLY
                    10 | 14 => Some(StorageFault::Io),  // SQLITE_IOERR, SQLITE_CANTOPEN
                    _ => None,
                };
            }
            let state = db.code()?;
            match state.as_ref() {
                "53100" => Some(StorageFault::DiskFull), // disk_full
                "25006" => Some(StorageFault::ReadOnly), // read_only_sql_transaction
                "58030" => Some(StorageFault::Io),       // io_error
                "57P01" | "57P02" | "57P03" => Some(StorageFault::Unreachable), // shutting down
                s if s.starts_with("08") => Some(StorageFault::Unreachable), // connection exception
                _ => None,
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => Some(StorageFault::Unreachable),
        _ => None,
    }
}

/// Free space, in bytes, on the file system holding `path` (for unprivileged writers).
#[cfg(unix)]
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `s` is a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `s`.
    let s = unsafe { s.assume_init() };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_bytes(_path: &std::path::Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_faults_are_told_from_other_errors() {
        assert_eq!(StoreError::Database(sqlx::Error::PoolTimedOut).fault(), Some(StorageFault::Unreachable));
        assert_eq!(StoreError::Database(sqlx::Error::RowNotFound).fault(), None);
        assert_eq!(StoreError::Conflict("x".into()).fault(), None);
        assert_eq!(
            StoreError::Batch("x".into(), Some(StorageFault::DiskFull)).fault(),
            Some(StorageFault::DiskFull)
        );
    }

    #[cfg(unix)]
    #[test]
    fn free_space_is_read_for_an_existing_path_only() {
        assert!(free_bytes(std::path::Path::new("/")).is_some());
        assert_eq!(free_bytes(std::path::Path::new("/no/such/folder/anywhere")), None);
    }
}
