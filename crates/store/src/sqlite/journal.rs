//! The accept journal: accepted changes waiting to be applied to the ledger.
//!
//! Accept appends each change to `journal` (and its log entry to `events`): both are keyed by
//! arrival sequence, so a commit writes a few sequential pages. The ledger (`members`, keyed by
//! audience and identity) and the de-duplication memory (`seen`, keyed by a hash) are random
//! keyed; updating them per batch wrote one page per event per B-tree. [`apply`] instead
//! updates them in key order for the whole journal at once, where neighbouring changes share
//! pages.
//!
//! Until applied, accept answers from the ledger plus an in-memory [`Overlay`] of the journal:
//! per identity, the latest pending change; per `messageId`, its sequence. Both are keyed by
//! 64-bit hashes and every hit is verified against the journal or the log, so a collision is
//! detected (the batch then takes the direct path) and never merges two keys. Every other
//! operation applies the journal first, so the delivery side always reads the whole ledger;
//! opening the store applies what a crash left, so nothing accepted is lost.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rusqlite::types::ToSqlOutput;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Inner, sql};
use crate::StoreError;

/// The latest pending (journaled, not applied) change of one ledger row.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingRow {
    /// Sequence of the journal entry.
    pub(super) seq: i64,
    /// Its event timestamp.
    pub(super) event_ts: i64,
    /// The row's version once applied.
    pub(super) version: i64,
    /// When the row is due once applied.
    pub(super) next_attempt: i64,
}

/// Hasher for keys that are already well-mixed 64-bit hashes: uses them as they are.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys are hashed with this hasher; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = n as u64;
    }
}

/// A map keyed by a pre-mixed 64-bit hash.
pub(super) type HashKeyed<K, V> = HashMap<K, V, BuildHasherDefault<PrehashedKey>>;

/// What the journal holds, in memory, for accept's decisions. Bounded by
/// `SqliteOptions::journal_max_entries` entries.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    /// Ledger row hash → latest pending change of that row.
    pub(super) rows: HashKeyed<u64, PendingRow>,
    /// `messageId` hash (as stored in `seen`) → sequence of its journal entry.
    pub(super) messages: HashKeyed<i64, i64>,
    /// Journal entries on disk.
    pub(super) entries: u64,
}

impl Overlay {
    fn clear(&mut self) {
        // Keep memory bounded by what a full journal needs, not by the largest burst ever.
        self.rows = HashKeyed::default();
        self.messages = HashKeyed::default();
        self.entries = 0;
    }
}

/// A stable 64-bit hash of a ledger key (audience, identity). In memory only.
pub(super) fn row_hash(audience: i64, identity: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in audience.to_le_bytes().iter().chain(identity.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

impl Inner {
    /// Applies every journal entry to the ledger and the de-duplication memory in one
    /// transaction, then empties the journal and the overlay. Cheap when the journal is empty.
    pub(super) fn apply_journal(&mut self) -> Result<(), StoreError> {
        if self.overlay.entries == 0 {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = apply(&tx)?;
        tx.commit()?;
        tracing::debug!(applied, "journal applied to the ledger");
        self.overlay.clear();
        Ok(())
    }
}

/// Applies the whole journal inside `tx`; returns how many entries it held.
pub(super) fn apply(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let mut applied = 0u64;
    // Sorted keys first (the sort's memory is freed before the writes start).
    let order: Vec<i64> = tx
        .prepare_cached(sql::JOURNAL_BY_KEY)?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    {
        let mut entry = tx.prepare_cached(sql::JOURNAL_ENTRY)?;
        let mut upsert = tx.prepare_cached(sql::UPSERT_MEMBER)?;
        let mut skip_event = tx.prepare_cached(sql::SET_EVENT_SKIPPED)?;
        for seq in order {
            let mut rows = entry.query([seq])?;
            let Some(r) = rows.next()? else {
                continue;
            };
            let prev_seq: Option<i64> = r.get(11)?;
            let accepted_at: i64 = r.get(12)?;
            let col = |i: usize| r.get_ref(i).map(ToSqlOutput::Borrowed);
            // The entry before it for this identity (in the ledger or the journal) lost.
            if let Some(prev) = prev_seq {
                skip_event.execute(params![
                    prev,
                    "superseded",
                    "superseded by a newer event for this identity",
                    accepted_at
                ])?;
            }
            upsert.execute(params![
                col(0)?,
                col(1)?,
                col(2)?,
                col(3)?,
                col(4)?,
                col(5)?,
                col(6)?,
                col(7)?,
                col(8)?,
                col(9)?,
                col(10)?,
                accepted_at,
            ])?;
            applied += 1;
        }
    }
    let keys: Vec<(i64, i64)> = tx
        .prepare_cached(sql::JOURNAL_BY_HASH)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    {
        let mut seen_get = tx.prepare_cached(sql::SEEN_GET)?;
        let mut seen_insert = tx.prepare_cached(sql::SEEN_INSERT)?;
        for (h, seq) in keys {
            // Accept already checked that the message is new: take the first free slot.
            let mut placed = false;
            for probe in 0..64i64 {
                let key = h.wrapping_add(probe);
                let taken: Option<i64> = seen_get.query_row([key], |r| r.get(0)).optional()?;
                if taken.is_none() {
                    seen_insert.execute([key, seq])?;
                    placed = true;
                    break;
                }
            }
            if !placed {
                tracing::warn!(seq, "message de-duplication table: probe limit reached");
            }
        }
    }
    tx.execute(sql::JOURNAL_CLEAR, [])?;
    Ok(applied)
}

/// Journal entries on disk (at open: what a previous run left unapplied).
pub(super) fn count(conn: &rusqlite::Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(sql::JOURNAL_COUNT, [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
