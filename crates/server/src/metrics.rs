//! Prometheus metrics at `/metrics`.
//!
//! Ingest counters are kept here as requests pass; delivery figures (pending changes,
//! Iterable requests by status, retries, rate-limited answers, project rates) are read from
//! the engine at scrape time and mirrored into the registry, so that one text exposition
//! holds both. Labels carry destination names, reason codes and HTTP statuses: never a key.

use std::sync::atomic::Ordering;

use delivery::{AcceptReport, EngineStatus, EventResult};
use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    received: Family<Labels, Counter>,
    accepted: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    skipped: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    ingest_requests: Family<Labels, Counter>,
    ingest_seconds: Family<Labels, Histogram>,
    pending: Family<Labels, Gauge>,
    backlog: Gauge,
    in_flight: Gauge,
    iterable_requests: Family<Labels, Counter>,
    iterable_rate_limited: Counter,
    retries: Counter,
    delivered: Counter,
    outcomes_skipped: Family<Labels, Counter>,
    outcomes_rejected: Family<Labels, Counter>,
    project_rate: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    project_paused: Family<Labels, Gauge>,
    iterable_endpoint_requests: Family<Labels, Counter>,
    rate_limit_waits: Counter,
    rate_limit_wait_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// The engine's latency histogram, written out by hand: it is kept by the engine as
    /// cumulative bucket counts, which prometheus-client's histogram cannot take over.
    iterable_latency: Mutex<delivery::LatencySnapshot>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered under the `iterable_lists` prefix.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("iterable_lists");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            received: Family::default(),
            accepted: Family::default(),
            duplicates: Family::default(),
            skipped: Family::default(),
            rejected: Family::default(),
            ingest_requests: Family::default(),
            ingest_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            pending: Family::default(),
            backlog: Gauge::default(),
            in_flight: Gauge::default(),
            iterable_requests: Family::default(),
            iterable_rate_limited: Counter::default(),
            retries: Counter::default(),
            delivered: Counter::default(),
            outcomes_skipped: Family::default(),
            outcomes_rejected: Family::default(),
            project_rate: Family::default(),
            project_paused: Family::default(),
            iterable_endpoint_requests: Family::default(),
            rate_limit_waits: Counter::default(),
            rate_limit_wait_seconds: Gauge::default(),
            iterable_latency: Mutex::new(delivery::LatencySnapshot::default()),
        };
        r.register(
            "events_received",
            "Events received at ingest, per destination",
            m.received.clone(),
        );
        r.register(
            "events_accepted",
            "Events written to the ledger, per destination",
            m.accepted.clone(),
        );
        r.register(
            "events_duplicate",
            "Events whose messageId was already accepted",
            m.duplicates.clone(),
        );
        r.register(
            "events_skipped",
            "Events skipped at ingest, by reason",
            m.skipped.clone(),
        );
        r.register(
            "events_rejected",
            "Events rejected at ingest, by reason",
            m.rejected.clone(),
        );
        r.register(
            "ingest_requests",
            "Ingest HTTP requests by route and status",
            m.ingest_requests.clone(),
        );
        r.register(
            "ingest_request_duration_seconds",
            "Ingest request handling time, by route",
            m.ingest_seconds.clone(),
        );
        r.register(
            "pending_changes",
            "Ledger changes not yet confirmed by Iterable, per destination",
            m.pending.clone(),
        );
        r.register(
            "backlog",
            "Pending changes in the whole store",
            m.backlog.clone(),
        );
        r.register(
            "iterable_in_flight",
            "Iterable requests in flight",
            m.in_flight.clone(),
        );
        r.register(
            "iterable_requests",
            "Iterable membership requests by HTTP status (transport: no answer)",
            m.iterable_requests.clone(),
        );
        r.register(
            "iterable_endpoint_requests",
            "Iterable membership requests by endpoint and HTTP status (transport: no answer)",
            m.iterable_endpoint_requests.clone(),
        );
        r.register(
            "iterable_rate_limit_waits",
            "Iterable requests that waited for their project's rate limiter",
            m.rate_limit_waits.clone(),
        );
        r.register(
            "iterable_rate_limit_wait_seconds",
            "Seconds Iterable requests spent waiting for their project's rate limiter, in all",
            m.rate_limit_wait_seconds.clone(),
        );
        r.register(
            "iterable_rate_limited",
            "Iterable requests answered 429",
            m.iterable_rate_limited.clone(),
        );
        r.register(
            "delivery_retries",
            "Changes put back for a later attempt",
            m.retries.clone(),
        );
        r.register(
            "delivered",
            "Changes Iterable confirmed",
            m.delivered.clone(),
        );
        r.register(
            "outcome_skipped",
            "Events ending skipped (ingest and delivery), by reason",
            m.outcomes_skipped.clone(),
        );
        r.register(
            "outcome_rejected",
            "Events ending rejected (ingest and delivery), by reason",
            m.outcomes_rejected.clone(),
        );
        r.register(
            "project_rate_per_second",
            "Request rate in force per Iterable project",
            m.project_rate.clone(),
        );
        r.register(
            "project_paused",
            "1 when an Iterable project is paused",
            m.project_paused.clone(),
        );
        *m.registry.lock() = r;
        m
    }

    /// Counts one ingest request's events.
    pub fn record_accept(&self, destination: &str, received: usize, report: &AcceptReport) {
        let d = labels(&[("destination", destination)]);
        self.received.get_or_create(&d).inc_by(received as u64);
        for e in &report.events {
            match &e.result {
                EventResult::Accepted => {
                    self.accepted.get_or_create(&d).inc();
                }
                EventResult::Duplicate => {
                    self.duplicates.get_or_create(&d).inc();
                }
                EventResult::Skipped { reason } => {
                    self.skipped
                        .get_or_create(&labels(&[
                            ("destination", destination),
                            ("reason", reason.code.as_str()),
                        ]))
                        .inc();
                }
                EventResult::Rejected { reason } => {
                    self.rejected
                        .get_or_create(&labels(&[
                            ("destination", destination),
                            ("reason", reason.code.as_str()),
                        ]))
                        .inc();
                }
            }
        }
    }

    /// Counts events of a body refused whole (they never reached the engine).
    pub fn record_refused_body(&self, destination: Option<&str>, reason: &str) {
        let dest = destination.unwrap_or("unknown");
        self.rejected
            .get_or_create(&labels(&[("destination", dest), ("reason", reason)]))
            .inc();
    }

    /// Counts one ingest request and its handling time.
    pub fn record_request(&self, route: &str, status: u16, seconds: f64) {
        let s = status.to_string();
        self.ingest_requests
            .get_or_create(&labels(&[("route", route), ("status", &s)]))
            .inc();
        self.ingest_seconds
            .get_or_create(&labels(&[("route", route)]))
            .observe(seconds);
    }

    /// Mirrors the engine's figures into the registry.
    pub fn update_from_engine(&self, status: &EngineStatus, destinations: &[String]) {
        for d in destinations {
            let total: u64 = status
                .pending
                .iter()
                .filter(|p| &p.destination == d)
                .map(|p| p.pending)
                .sum();
            self.pending
                .get_or_create(&labels(&[("destination", d)]))
                .set(total as i64);
        }
        self.backlog.set(status.backlog as i64);
        self.in_flight.set(status.in_flight as i64);
        let st = &status.stats;
        for (code, n) in &st.statuses {
            set_counter(
                self.iterable_requests
                    .get_or_create(&labels(&[("status", code)]))
                    .inner(),
                *n,
            );
        }
        for (endpoint, by_status) in &st.by_endpoint {
            for (code, n) in by_status {
                set_counter(
                    self.iterable_endpoint_requests
                        .get_or_create(&labels(&[("endpoint", endpoint), ("status", code)]))
                        .inner(),
                    *n,
                );
            }
        }
        set_counter(self.rate_limit_waits.inner(), st.rate_waits);
        self.rate_limit_wait_seconds.set(st.rate_wait_seconds);
        *self.iterable_latency.lock() = st.latency.clone();
        set_counter(self.iterable_rate_limited.inner(), st.rate_limited);
        set_counter(self.retries.inner(), st.retries);
        set_counter(self.delivered.inner(), st.delivered);
        for (code, n) in &st.skipped {
            set_counter(
                self.outcomes_skipped
                    .get_or_create(&labels(&[("reason", code)]))
                    .inner(),
                *n,
            );
        }
        for (code, n) in &st.rejected {
            set_counter(
                self.outcomes_rejected
                    .get_or_create(&labels(&[("reason", code)]))
                    .inner(),
                *n,
            );
        }
        for p in &status.projects {
            let l = labels(&[("project", &p.label)]);
            self.project_rate.get_or_create(&l).set(p.rate_per_second);
            self.project_paused
                .get_or_create(&l)
                .set(i64::from(p.paused.is_some()));
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry.lock());
        let histogram = latency_exposition(&self.iterable_latency.lock());
        // The exposition ends with `# EOF`; the hand-written histogram goes before it.
        match out.rfind("# EOF") {
            Some(at) => out.insert_str(at, &histogram),
            None => out.push_str(&histogram),
        }
        out
    }
}

/// Counters mirrored from the engine only move forward.
fn set_counter(c: &std::sync::atomic::AtomicU64, v: u64) {
    c.fetch_max(v, Ordering::Relaxed);
}

/// The engine's Iterable request latency as an OpenMetrics histogram.
fn latency_exposition(l: &delivery::LatencySnapshot) -> String {
    use std::fmt::Write;
    const NAME: &str = "iterable_lists_iterable_request_duration_seconds";
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP {NAME} Time from sending a membership request to Iterable's answer."
    );
    let _ = writeln!(out, "# TYPE {NAME} histogram");
    for (bound, n) in delivery::LATENCY_BOUNDS.iter().zip(&l.buckets) {
        let _ = writeln!(out, "{NAME}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{NAME}_bucket{{le=\"+Inf\"}} {}", l.count);
    let _ = writeln!(out, "{NAME}_sum {}", l.sum_seconds);
    let _ = writeln!(out, "{NAME}_count {}", l.count);
    out
}
