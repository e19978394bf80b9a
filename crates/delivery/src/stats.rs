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
    by_endpoint: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    rate_waits: AtomicU64,
    rate_wait_micros: AtomicU64,
}

/// Upper bounds (seconds) of the Iterable request latency histogram's buckets.
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Iterable request latency, as a cumulative histogram.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySnapshot {
    /// Requests at or below each bound of [`LATENCY_BOUNDS`] (cumulative).
    pub buckets: Vec<u64>,
    /// Every request timed.
    pub count: u64,
    /// Total seconds.
    pub sum_seconds: f64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
    /// Answers by endpoint (`subscribe`, `unsubscribe`), then by HTTP status.
    pub by_endpoint: BTreeMap<String, BTreeMap<String, u64>>,
    /// Time from sending a membership request to its answer.
    pub latency: LatencySnapshot,
    /// Requests that had to wait for the project's rate limiter.
    pub rate_waits: u64,
    /// Seconds spent waiting for the rate limiter, all requests together.
    pub rate_wait_seconds: f64,
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

    /// One membership request's answer on `endpoint`, and how long it took.
    pub(crate) fn request_on(
        &self,
        endpoint: &str,
        status: Option<u16>,
        elapsed: std::time::Duration,
    ) {
        self.request(status);
        let key = status.map_or_else(|| "transport".to_owned(), |s| s.to_string());
        *self
            .by_endpoint
            .lock()
            .entry(endpoint.to_owned())
            .or_default()
            .entry(key)
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Time a request spent waiting for the rate limiter (only waits are counted).
    pub(crate) fn rate_wait(&self, waited: std::time::Duration) {
        if waited >= std::time::Duration::from_millis(1) {
            self.rate_waits.fetch_add(1, Ordering::Relaxed);
            self.rate_wait_micros
                .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
        }
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
            by_endpoint: self.by_endpoint.lock().clone(),
            latency: LatencySnapshot {
                buckets: self
                    .latency_buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
                count: self.latency_count.load(Ordering::Relaxed),
                sum_seconds: self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            },
            rate_waits: self.rate_waits.load(Ordering::Relaxed),
            rate_wait_seconds: self.rate_wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}
