//! Counters since the engine started: what `send` summarises and `status` shows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use crate::engine::{EventReport, EventResult};

/// Live counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    delivered: AtomicU64,
    skipped: Mutex<BTreeMap<String, u64>>,
    rejected: Mutex<BTreeMap<String, u64>>,
    statuses: Mutex<BTreeMap<String, u64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Events written to the ledger.
    pub accepted: u64,
    /// Events whose `messageId` was seen before.
    pub duplicates: u64,
    /// Membership requests sent to Iterable (retries and halves included).
    pub requests: u64,
    /// Of those, answered 429.
    pub rate_limited: u64,
    /// Changes put back for a later attempt.
    pub retries: u64,
    /// Changes Iterable confirmed.
    pub delivered: u64,
    /// Skipped events (at ingest and at delivery), by reason code.
    pub skipped: BTreeMap<String, u64>,
    /// Rejected events (at ingest and at delivery), by reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Answers by HTTP status (`"transport"` when none came).
    pub statuses: BTreeMap<String, u64>,
}

impl StatsSnapshot {
    /// Skipped events, all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
    /// Rejected events, all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

impl Stats {
    pub(crate) fn add_accepted(&self, reports: &[EventReport]) {
        for r in reports {
            match &r.result {
                EventResult::Accepted => {
                    self.accepted.fetch_add(1, Ordering::Relaxed);
                }
                EventResult::Duplicate => {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                EventResult::Skipped { reason } => {
                    self.skipped(reason.code.as_str(), 1);
                }
                EventResult::Rejected { reason } => {
                    self.rejected(reason.code.as_str(), 1);
                }
            }
        }
    }

    pub(crate) fn skipped(&self, code: &str, n: u64) {
        if n > 0 {
            *self.skipped.lock().entry(code.to_owned()).or_default() += n;
        }
    }

    pub(crate) fn rejected(&self, code: &str, n: u64) {
        if n > 0 {
            *self.rejected.lock().entry(code.to_owned()).or_default() += n;
        }
    }

    pub(crate) fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn retries(&self, n: u64) {
        self.retries.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn request(&self, status: Option<u16>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status == Some(429) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let key = status.map_or_else(|| "transport".to_owned(), |s| s.to_string());
        *self.statuses.lock().entry(key).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            skipped: self.skipped.lock().clone(),
            rejected: self.rejected.lock().clone(),
            statuses: self.statuses.lock().clone(),
        }
    }
}
