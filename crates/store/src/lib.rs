//! The membership ledger and the delivery log of iterable-lists, behind one trait, with an
//! embedded SQLite engine.
//!
//! The ledger stores the **desired state** of each (destination, audience, identity), not
//! queued requests: accepting an event writes its state durably in one transaction per batch;
//! the delivery engine then claims dirty rows per audience and direction, sends them, and
//! records the results, version-guarded so that a row sent at version `v` becomes clean only
//! if no newer event arrived meanwhile. The delivery log keeps one entry per event with its
//! outcome (design, decision *Outcomes*).
//!
//! The SQLite engine makes accept cheap by appending each batch to a journal in arrival order
//! (plus its log entries) and answering duplicates and ordering from point reads and an
//! in-memory index of the journal; the journal is applied to the ledger in key order before
//! any call that reads ledger rows, when it reaches its bound, and on open after a crash.
//!
//! ```no_run
//! use store::{SqliteOptions, SqliteStore, Store};
//! let store = SqliteStore::open("ledger.db", SqliteOptions::default())?;
//! println!("{} changes pending", store.backlog());
//! # Ok::<(), store::StoreError>(())
//! ```
//!
//! The crate speaks in plain types of its own (strings, `i64` milliseconds, JSON values) so
//! that it depends on no other crate of the project.

mod error;
mod lock;
mod sqlite;
mod store;
mod types;

pub use error::StoreError;
pub use sqlite::{MemberCounts, SqliteOptions, SqliteStore, Synchronous};
pub use store::Store;
pub use types::{
    AcceptOutcome, Audience, AudienceId, Change, ClaimedRow, CompactStats, Direction, DueWork,
    FinalEvent, LogEntry, LogQuery, Millis, Outcome, PendingCount, Retention, RowRef, Status,
};
