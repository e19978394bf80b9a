//! Typed errors of the store.

use std::path::PathBuf;

/// Errors the store returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backlog (dirty ledger rows) passed the configured bound: retry later.
    #[error("store is busy: {backlog} changes pending, bound is {bound}; retry later")]
    Busy {
        /// Dirty rows now.
        backlog: u64,
        /// Configured bound.
        bound: u64,
    },
    /// Another process holds the store.
    #[error(
        "store {path} is in use by another process (a running service?); stop it or use another store file"
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The file's schema is newer than this build knows.
    #[error(
        "store schema version {found} is newer than this build supports ({supported}); upgrade iterable-lists"
    )]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A call referred to an audience the store does not know.
    #[error("unknown audience id {0}")]
    UnknownAudience(i64),
    /// I/O on the lock file.
    #[error("store lock file {path}: {source}")]
    LockIo {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON value stored in the ledger could not be read back.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
