//! The `Store` trait: everything the delivery engine and the ingest path ask of the ledger.

use serde_json::Value;

use crate::StoreError;
use crate::types::{
    AcceptOutcome, Audience, AudienceId, Change, ClaimedRow, CompactStats, Direction, DueWork,
    FinalEvent, LogEntry, LogQuery, Millis, Retention, RowRef, Status,
};

/// The membership ledger, the delivery log and small persistent state.
///
/// The API is synchronous and every call is one short transaction (or a read). Implementations
/// are `Send + Sync`; callers on an async runtime run calls on a blocking thread
/// (`tokio::task::spawn_blocking`) or on a dedicated store thread. Calls that need the current
/// time take it as `now` (milliseconds since the epoch), so that time is injected.
pub trait Store: Send + Sync {
    /// Writes a batch of membership changes in one durable transaction and only then returns,
    /// with one outcome per change in batch order. Fails with [`StoreError::Busy`] without
    /// writing anything when the backlog is at or past the configured bound.
    fn accept(&self, batch: &[Change], now: Millis) -> Result<Vec<AcceptOutcome>, StoreError>;

    /// Records events that ended before the ledger (skipped or rejected at ingest) in the log.
    /// A `messageId` already logged for the destination is left as it is.
    fn record_final(&self, events: &[FinalEvent], now: Millis) -> Result<(), StoreError>;

    /// The audience of a destination and key, created (unbound) if new.
    fn ensure_audience(
        &self,
        destination: &str,
        audience_key: &str,
    ) -> Result<Audience, StoreError>;

    /// The audience with this id.
    fn audience(&self, id: AudienceId) -> Result<Audience, StoreError>;

    /// Every audience, or those of one destination.
    fn audiences(&self, destination: Option<&str>) -> Result<Vec<Audience>, StoreError>;

    /// Binds (or unbinds, with `None`) the audience's list, and says whether this service
    /// created it. Ledger rows are kept.
    fn set_list(
        &self,
        id: AudienceId,
        list_id: Option<i64>,
        created_by_service: bool,
    ) -> Result<(), StoreError>;

    /// Stores the audience's effective settings.
    fn set_settings(&self, id: AudienceId, settings: Option<&Value>) -> Result<(), StoreError>;

    /// After a list was re-created or re-bound: every identity whose desired state is `in` is
    /// dirty again (due at `now`), and no subscribe counts as sent to the new list. Returns
    /// how many rows became dirty.
    fn mark_in_dirty(&self, id: AudienceId, now: Millis) -> Result<u64, StoreError>;

    /// Audiences and directions with due, unclaimed dirty rows; counts stop at `cap`.
    fn due(&self, now: Millis, cap: u64) -> Result<Vec<DueWork>, StoreError>;

    /// Claims at most `limit` due dirty rows of one audience and direction, oldest due first.
    /// Claimed rows are not claimed again until a result call or [`Store::release`] frees
    /// them; claims do not survive a restart (every row is free again on open).
    fn claim(
        &self,
        id: AudienceId,
        direction: Direction,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>, StoreError>;

    /// Gives claimed rows back untouched (e.g. not sent because of shutdown).
    fn release(&self, rows: &[RowRef]) -> Result<(), StoreError>;

    /// Records that a subscribe is about to be sent for these rows; call before the request
    /// leaves (design, decision *Outcomes*).
    fn mark_subscribe_sent(&self, rows: &[RowRef]) -> Result<(), StoreError>;

    /// Iterable confirmed these rows at the versions sent: each becomes clean only if it is
    /// still at that version, and its event is logged delivered with `request_id`. Returns,
    /// per row, whether it became clean.
    fn confirm(
        &self,
        rows: &[RowRef],
        request_id: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError>;

    /// Final without an error (not found on unsubscribe, GDPR-forgotten…): like
    /// [`Store::confirm`], but the event is logged skipped with the reason.
    fn settle_skipped(
        &self,
        rows: &[RowRef],
        reason_code: &str,
        reason: &str,
        request_id: Option<&str>,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError>;

    /// Retryable failure: rows are freed and not due before `next_attempt`; their events are
    /// logged retrying.
    fn retry(
        &self,
        rows: &[RowRef],
        next_attempt: Millis,
        reason_code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// Permanent rejection at the versions sent: rows still at that version stop being dirty
    /// and are kept for [`Store::replay_rejected`]; their events are logged rejected.
    fn reject(
        &self,
        rows: &[RowRef],
        reason_code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError>;

    /// Re-queues the rejected rows of a destination (or of one of its audiences); their events
    /// go back to pending. Returns how many rows were re-queued.
    fn replay_rejected(
        &self,
        destination: &str,
        audience_key: Option<&str>,
        now: Millis,
    ) -> Result<u64, StoreError>;

    /// Delivery log entries, newest first.
    fn log(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError>;

    /// Applies retention: old and excess log entries, old confirmed-out ledger rows.
    fn compact(&self, retention: &Retention, now: Millis) -> Result<CompactStats, StoreError>;

    /// Pending rows per destination, list and direction, and the backlog.
    fn status(&self) -> Result<Status, StoreError>;

    /// Dirty rows in the store (cheap: kept in memory).
    fn backlog(&self) -> u64;

    /// Reads a small persistent value (e.g. the rate found for an Iterable project).
    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Value>, StoreError>;

    /// Writes a small persistent value; `None` deletes it.
    fn kv_set(&self, namespace: &str, key: &str, value: Option<&Value>) -> Result<(), StoreError>;

    /// Member counts per audience (wanted in, confirmed in, pending each way, rejected), of
    /// every destination or of one. Scans each audience's ledger rows: for operators, not for
    /// hot paths.
    fn member_counts(
        &self,
        destination: Option<&str>,
    ) -> Result<Vec<crate::MemberCounts>, StoreError>;
}
