//! Typed errors of the engine.

use std::time::Duration;

/// Errors the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The backlog passed the configured bound: the caller should retry later (the HTTP layer
    /// answers 429 with `Retry-After`).
    #[error("busy: {backlog} changes pending, bound is {bound}; retry in {} s", retry_after.as_secs().max(1))]
    Busy {
        /// Pending changes now.
        backlog: u64,
        /// The configured bound.
        bound: u64,
        /// A suggested wait.
        retry_after: Duration,
    },
    /// No destination of that name is configured.
    #[error("no destination named {0:?} in the configuration")]
    UnknownDestination(String),
    /// The store is held by another process.
    #[error("{0}")]
    StoreLocked(String),
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The Iterable client could not be built for a destination.
    #[error("destination {destination:?}: {message}")]
    Client {
        /// The destination.
        destination: String,
        /// What failed.
        message: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(store::StoreError),
    /// The engine has been shut down.
    #[error("the delivery engine is shut down")]
    ShutDown,
}

impl From<store::StoreError> for EngineError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Locked { .. } => EngineError::StoreLocked(e.to_string()),
            store::StoreError::Busy { backlog, bound } => EngineError::Busy {
                backlog,
                bound,
                retry_after: Duration::from_secs(5),
            },
            other => EngineError::Store(other),
        }
    }
}
