//! Plain types the store speaks: no dependency on the destination or the client crates.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch. Every call that needs "now" takes it as an argument so that
/// tests and the engine control time.
pub type Millis = i64;

/// The store's identifier of an audience (a destination and an audience key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AudienceId(pub i64);

/// Desired membership of an identity in an audience's list, which is also the request direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// In the list: delivered by a subscribe.
    In,
    /// Out of the list: delivered by an unsubscribe.
    Out,
}

impl Direction {
    pub(crate) fn as_int(self) -> i64 {
        match self {
            Direction::In => 1,
            Direction::Out => 0,
        }
    }

    pub(crate) fn from_int(v: i64) -> Self {
        if v == 0 {
            Direction::Out
        } else {
            Direction::In
        }
    }
}

/// One membership change, as the mapping step produced it from one accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Destination name (configuration key).
    pub destination: String,
    /// Audience key (the Engage `computation_key`, or a mapping's audience key).
    pub audience_key: String,
    /// Ledger identity key: the `userId` when present, else the lowercased email.
    pub identity: String,
    /// Email to send, if any.
    pub email: Option<String>,
    /// User id to send, if any.
    pub user_id: Option<String>,
    /// In or out.
    pub direction: Direction,
    /// Data fields to send with a subscribe (a JSON object), if any.
    pub data_fields: Option<Value>,
    /// The event's `messageId`; duplicates per destination are applied once.
    pub message_id: String,
    /// The event's timestamp; an older event never overwrites a newer one.
    pub timestamp: Millis,
    /// The event's `audience_settings`, if it carried any: remembered as the audience's latest.
    pub audience_settings: Option<Value>,
}

/// What [`crate::Store::accept`] did with one change, in the order of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// The change is now the desired state; `version` is the row's new version.
    Applied {
        /// The ledger row's version after this change.
        version: i64,
    },
    /// A newer event for the same identity was already recorded; logged as skipped.
    Superseded,
    /// The `messageId` was already accepted for this destination; nothing changed.
    Duplicate,
}

/// An event that ended before reaching the ledger (not an audience event, no identifier, bad
/// input…), recorded so that the delivery log tells about every accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalEvent {
    /// Destination name.
    pub destination: String,
    /// Audience key, when known.
    pub audience_key: Option<String>,
    /// Identity key, when known.
    pub identity: Option<String>,
    /// The event's `messageId`.
    pub message_id: String,
    /// Skipped or rejected.
    pub outcome: Outcome,
    /// Stable machine-readable reason (e.g. `not_audience_event`).
    pub reason_code: String,
    /// Reason a person understands.
    pub reason: String,
}

/// An event's outcome in the delivery log (design, decision *Outcomes*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Accepted, not yet sent.
    Pending,
    /// Sent and failed retryably; see the next attempt.
    Retrying,
    /// Iterable confirmed the state the event implies.
    Delivered,
    /// Final and not an error (superseded, not found on unsubscribe, GDPR-forgotten…).
    Skipped,
    /// Final, with a reason; can be replayed once the cause is fixed.
    Rejected,
}

impl Outcome {
    pub(crate) fn as_int(self) -> i64 {
        match self {
            Outcome::Pending => 0,
            Outcome::Retrying => 1,
            Outcome::Delivered => 2,
            Outcome::Skipped => 3,
            Outcome::Rejected => 4,
        }
    }

    pub(crate) fn from_int(v: i64) -> Self {
        match v {
            1 => Outcome::Retrying,
            2 => Outcome::Delivered,
            3 => Outcome::Skipped,
            4 => Outcome::Rejected,
            _ => Outcome::Pending,
        }
    }

    /// True for delivered, skipped and rejected.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Outcome::Delivered | Outcome::Skipped | Outcome::Rejected
        )
    }
}

/// An audience as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    /// Store identifier.
    pub id: AudienceId,
    /// Destination name.
    pub destination: String,
    /// Audience key.
    pub audience_key: String,
    /// The Iterable list currently bound, if resolved.
    pub list_id: Option<i64>,
    /// Whether this service created that list (design, decision *Outcomes*: exits of never
    /// subscribed identities are skipped only in such lists).
    pub list_created: bool,
    /// Effective settings (operator configuration, then latest event settings, then defaults).
    pub settings: Option<Value>,
    /// The latest `audience_settings` seen in this audience's events.
    pub event_settings: Option<Value>,
}

/// A claimed ledger row: what the planner needs to build a request, and what the result calls
/// need to find the row again.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRow {
    /// Row reference for the result calls.
    pub row: RowRef,
    /// Email to send, if any.
    pub email: Option<String>,
    /// User id to send, if any.
    pub user_id: Option<String>,
    /// Direction (the row's desired state at this version).
    pub direction: Direction,
    /// Data fields, for a subscribe.
    pub data_fields: Option<Value>,
    /// Whether a subscribe was ever recorded as sent for this row in the current list.
    pub subscribe_sent: bool,
    /// Failed attempts so far for this row (reset when it becomes clean).
    pub attempts: i64,
    /// When this row became due (its change time, or its next attempt for a retry).
    pub due_at: Millis,
}

/// Identifies a ledger row at the version that was claimed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowRef {
    /// The audience.
    pub audience: AudienceId,
    /// Identity key.
    pub identity: String,
    /// Version that was claimed (and is being sent).
    pub version: i64,
    /// `messageId` of the event that set this version.
    pub message_id: String,
    /// Arrival sequence of that event (its delivery log entry).
    pub event_seq: i64,
}

/// Work that is due for one audience and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct DueWork {
    /// The audience.
    pub audience: AudienceId,
    /// Destination name.
    pub destination: String,
    /// Audience key.
    pub audience_key: String,
    /// Direction.
    pub direction: Direction,
    /// Due, unclaimed dirty rows, counted up to the `cap` given to [`crate::Store::due`].
    pub count: u64,
    /// The earliest due time among them (change time, or next attempt for retries).
    pub oldest_due_at: Millis,
}

/// Pending (dirty) rows of one destination, list and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCount {
    /// Destination name.
    pub destination: String,
    /// Audience key.
    pub audience_key: String,
    /// List currently bound, if any.
    pub list_id: Option<i64>,
    /// Direction.
    pub direction: Direction,
    /// Dirty rows (claimed or not, due or not).
    pub pending: u64,
}

/// Store-wide status.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Dirty rows in the whole store.
    pub backlog: u64,
    /// The bound past which accept answers busy.
    pub backlog_bound: u64,
    /// Per destination, list and direction.
    pub pending: Vec<PendingCount>,
}

/// One delivery log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The event's `messageId`.
    pub message_id: String,
    /// Destination name.
    pub destination: String,
    /// Audience key, when known.
    pub audience_key: Option<String>,
    /// Identity key, when known.
    pub identity: Option<String>,
    /// Outcome so far.
    pub outcome: Outcome,
    /// Machine-readable reason, for skipped, rejected and retrying.
    pub reason_code: Option<String>,
    /// Human reason.
    pub reason: Option<String>,
    /// Next attempt, for retrying.
    pub next_attempt: Option<Millis>,
    /// Request id the event went in, for delivered.
    pub request_id: Option<String>,
    /// When the event was accepted.
    pub accepted_at: Millis,
    /// When the entry last changed.
    pub updated_at: Millis,
}

/// Filter for [`crate::Store::log`]. Empty fields match everything; newest entries first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Destination name.
    pub destination: Option<String>,
    /// Audience key (needs `destination`).
    pub audience_key: Option<String>,
    /// Identity key.
    pub identity: Option<String>,
    /// Outcome.
    pub outcome: Option<Outcome>,
    /// At most this many entries (0 means 100).
    pub limit: usize,
}

/// Retention bounds (design, decision *Retention*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `messageId` de-duplication window; log entries younger than this are never compacted,
    /// since the log is also the de-duplication memory.
    pub dedup_window_ms: Millis,
    /// Log entries older than this are removed.
    pub log_max_age_ms: Millis,
    /// At most this many log entries are kept (oldest go first, but see `dedup_window_ms`).
    pub log_max_entries: u64,
    /// Ledger rows confirmed `out` whose last change is older than this are removed.
    pub out_rows_max_age_ms: Millis,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: Millis = 24 * 3600 * 1000;
        Retention {
            dedup_window_ms: 7 * DAY,
            log_max_age_ms: 7 * DAY,
            log_max_entries: 10_000_000,
            out_rows_max_age_ms: 30 * DAY,
        }
    }
}

/// What a compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Delivery log entries removed.
    pub log_entries_removed: u64,
    /// Log entries still above `log_max_entries` because they are inside the dedup window.
    pub log_entries_over_bound: u64,
    /// Confirmed-out ledger rows removed.
    pub out_rows_removed: u64,
}
