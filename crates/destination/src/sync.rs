//! An in-memory (non-durable) executor: from events or membership changes to Iterable
//! requests, answers and one outcome per input.
//!
//! For each batch it maps events with the default mapping, resolves each audience's list
//! ([`crate::lists`]), plans requests ([`crate::planner`]), sends them with bounded
//! concurrency and reads each answer with [`crate::attribution`]:
//!
//! - retryable answers (429, 408, 423, 5xx but 501, timeouts) are retried with exponential
//!   backoff and jitter, honouring `Retry-After`, for a bounded number of attempts; after that
//!   the events are `retrying` (durable retries over time belong to the ledger);
//! - a 400 (other than `invalidListId`) or 413 splits the request in halves, down to one
//!   subscriber, so one bad subscriber fails alone (design decision 9);
//! - `invalidListId` follows the list rules: a list created here moments ago is retried within
//!   its grace period, otherwise it counts as missing, the audience is resolved again once and
//!   every identity whose desired state is `in` is subscribed to the new list (peers T11);
//! - 401/403 stop the executor: nothing more is sent and unsent events stay `pending`.
//!
//! Desired state, the record of subscribes sent, and audience settings live in memory for the
//! executor's lifetime; the ledger makes them durable later.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use iterable::{ListApi, MembershipOp};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use segment::{Event, Timestamp};

use crate::attribution::{Verdict, attribute};
use crate::default_mapping::{MapContext, map_event};
use crate::lists::{
    AudienceRef, Clock, InvalidListVerdict, ListError, ListMappingStore, ListResolver,
    ListSettings, MemoryMappingStore, SystemClock,
};
use crate::model::{
    Direction, EventAudienceSettings, IdentityKey, MembershipChange, Outcome, ProcessedEvent,
    ReasonCode,
};
use crate::planner::{Plan, PlanConfig, PlanItem, PlannedRequest, plan};
use crate::settings::{DestinationSettings, EffectiveAudienceSettings};

/// Settings of the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// Requests in flight at once (default 4).
    pub concurrency: usize,
    /// Attempts per request before its events are left `retrying` (default 5).
    pub max_attempts: u32,
    /// First backoff (default 500 ms); doubles per attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest backoff (default 30 s).
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured (default 120 s); a longer one ends the attempts.
    pub retry_after_max: Duration,
    /// Most membership requests per second for the project, subscribe and unsubscribe
    /// together (design decision 13). Either way the pace adapts to 429s (halved on a 429,
    /// growing by about one request per second each second while requests go through);
    /// `None` starts unpaced.
    pub rate_per_second: Option<f64>,
    /// Seed of the jitter (tests pin it).
    pub jitter_seed: Option<u64>,
    /// List resolution.
    pub lists: ListSettings,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            concurrency: 4,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            retry_after_max: Duration::from_secs(120),
            rate_per_second: None,
            jitter_seed: None,
            lists: ListSettings::default(),
        }
    }
}

/// One request as it went out, and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// The list.
    pub list_id: i64,
    /// Subscribe or unsubscribe.
    pub direction: Direction,
    /// The exact body sent.
    pub body: Bytes,
    /// The HTTP status, or `None` when no answer came (timeout, connection error).
    pub status: Option<u16>,
    /// 1 for the first try of this body, 2 for the first retry, …
    pub attempt: u32,
}

/// An audience moved to a new list because its list disappeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// The audience.
    pub audience_key: String,
    /// The vanished list.
    pub old_list_id: i64,
    /// The new list.
    pub new_list_id: i64,
    /// Identities (desired state `in`) from earlier batches subscribed again to the new list.
    pub resent: usize,
}

/// The result of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// One outcome per input event (or change), in input order.
    pub outcomes: Vec<Outcome>,
    /// Every membership request sent, in sending order (retries and halves included).
    pub requests: Vec<SentRequest>,
    /// Audiences moved to a new list.
    pub relocations: Vec<Relocation>,
    /// Warnings for the delivery log (ignored event settings, lists that disappeared).
    pub warnings: Vec<String>,
    /// Set when Iterable refused the API key: the destination is stopped.
    pub stopped: Option<String>,
}

impl SyncReport {
    /// How many outcomes satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| pred(o)).count()
    }

    /// True when any event was rejected (`send` exits 1).
    pub fn any_rejected(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Rejected { .. }))
    }
}

/// Build the real client for a destination (the endpoint override applies only when the
/// settings allow it).
pub fn client_for(dest: &DestinationSettings) -> Result<iterable::Client, iterable::Error> {
    let key = iterable::ApiKey::new(dest.api_key.expose());
    let endpoint = iterable::Endpoint::Custom(dest.base_url().to_owned());
    iterable::Client::new(iterable::ClientConfig::new(key, endpoint))
}

/// The latest desired state of one identity in one audience.
#[derive(Debug, Clone)]
struct Desired {
    at: (Timestamp, u64),
    /// The change that set `in`; `None` for `out`.
    change: Option<MembershipChange>,
}

#[derive(Debug, Default)]
struct State {
    /// Latest `audience_settings` seen in an audience's events.
    event_settings: HashMap<String, EventAudienceSettings>,
    /// `(list, identity)` pairs for which a subscribe was sent (recorded before it leaves).
    sent_subscribes: HashSet<(i64, IdentityKey)>,
    /// Desired state per audience and identity.
    desired: HashMap<String, HashMap<IdentityKey, Desired>>,
}

/// The slowest rate the adaptive pacing goes down to, in requests per second.
const MIN_RATE: f64 = 0.5;
/// Above this adaptive rate (with no ceiling configured) pacing switches off again.
const UNPACED_RATE: f64 = 10_000.0;

/// Paces membership requests for one project (design decision 13): never above the configured
/// ceiling, and additive increase / multiplicative decrease driven by 429s, so a project
/// without a configured rate finds one.
#[derive(Debug)]
struct Pacer {
    /// The configured rate, if any.
    ceiling: Option<f64>,
    /// The current rate; `None` sends unpaced (no ceiling and no 429 seen lately).
    rate: Option<f64>,
    /// When the next request may leave.
    next_free: Duration,
    /// Departure times within the last second, to measure the rate that drew a 429.
    recent: VecDeque<Duration>,
    /// The last decrease: at most one per second, however many 429s arrive together.
    last_decrease: Option<Duration>,
}

impl Pacer {
    fn new(ceiling: Option<f64>) -> Self {
        let ceiling = ceiling.filter(|r| r.is_finite() && *r > 0.0);
        Pacer {
            ceiling,
            rate: ceiling,
            next_free: Duration::ZERO,
            recent: VecDeque::new(),
            last_decrease: None,
        }
    }

    /// Reserve a departure slot; returns how long to wait for it.
    fn reserve(&mut self, now: Duration) -> Duration {
        let wait = match self.rate {
            Some(r) => {
                let slot = self.next_free.max(now);
                self.next_free = slot + Duration::from_secs_f64(1.0 / r);
                slot - now
            }
            None => Duration::ZERO,
        };
        let departs = now + wait;
        while self
            .recent
            .front()
            .is_some_and(|t| departs.saturating_sub(*t) > Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        self.recent.push_back(departs);
        wait
    }

    /// A 429: halve the rate (measured, when unpaced), at most once per second.
    fn throttled(&mut self, now: Duration) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_sub(t) < Duration::from_secs(1))
        {
            return;
        }
        self.last_decrease = Some(now);
        let observed = (self.recent.len() as f64).max(1.0);
        let current = self
            .rate
            .map_or(observed, |r| r.min(observed.max(MIN_RATE)));
        self.rate = Some((current * 0.5).max(MIN_RATE));
        tracing::info!(rate = self.rate, "Iterable is throttling: slowing down");
    }

    /// A request went through: add about one request per second per second.
    fn succeeded(&mut self) {
        let Some(r) = self.rate else { return };
        let next = r + 1.0 / r.max(1.0);
        self.rate = match self.ceiling {
            Some(c) => Some(next.min(c)),
            None if next > UNPACED_RATE => None,
            None => Some(next),
        };
    }
}

/// The executor for one destination (one Iterable project).
pub struct Executor<A: ListApi> {
    api: Arc<A>,
    dest: DestinationSettings,
    plan_config: PlanConfig,
    settings: SyncSettings,
    resolver: Arc<ListResolver<A>>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    rng: Mutex<SmallRng>,
    pacer: Mutex<Pacer>,
    stopped: Mutex<Option<String>>,
    next_order: AtomicU64,
}

impl<A: ListApi> std::fmt::Debug for Executor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("dest", &self.dest)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What one request's processing produced.
#[derive(Default)]
struct RequestResult {
    outcomes: Vec<(usize, Outcome)>,
    sent: Vec<SentRequest>,
    relocations: Vec<(String, i64, i64, bool)>,
}

impl<A: ListApi> Executor<A> {
    /// An executor with in-memory list mappings and the system clock.
    pub fn new(dest: DestinationSettings, api: Arc<A>, settings: SyncSettings) -> Self {
        Self::with_parts(
            dest,
            api,
            settings,
            Arc::new(MemoryMappingStore::new()),
            Arc::new(SystemClock::new()),
        )
    }

    /// An executor with a given mapping store and clock.
    pub fn with_parts(
        dest: DestinationSettings,
        api: Arc<A>,
        settings: SyncSettings,
        store: Arc<dyn ListMappingStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let resolver = Arc::new(ListResolver::new(
            api.clone(),
            store,
            clock.clone(),
            settings.lists.clone(),
        ));
        let rng = match settings.jitter_seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_entropy(),
        };
        let pacer = Mutex::new(Pacer::new(settings.rate_per_second));
        Executor {
            plan_config: PlanConfig::from_settings(&dest),
            api,
            dest,
            settings,
            resolver,
            clock,
            state: Mutex::new(State::default()),
            rng: Mutex::new(rng),
            pacer,
            stopped: Mutex::new(None),
            next_order: AtomicU64::new(0),
        }
    }

    /// The list resolver (to inspect lists created, fetches made).
    pub fn resolver(&self) -> &ListResolver<A> {
        &self.resolver
    }

    /// Why the executor stopped (Iterable refused the API key), if it did.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.lock().clone()
    }

    /// Map, plan, send and attribute a batch of parsed events: one outcome per event.
    pub async fn sync_events(&self, events: &[Event]) -> SyncReport {
        let received_at = Timestamp::now();
        let mut outcomes = vec![Outcome::Pending; events.len()];
        let mut changes = Vec::new();
        let mut origin = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let ctx = MapContext {
                received_order: self.next_order.fetch_add(1, Ordering::Relaxed),
                received_at,
            };
            match map_event(event, &self.dest, ctx) {
                ProcessedEvent::Change(c) => {
                    changes.push(*c);
                    origin.push(i);
                }
                other => outcomes[i] = other.outcome(),
            }
        }
        let mut report = self.sync_changes(changes).await;
        for (o, i) in report.outcomes.drain(..).zip(origin) {
            outcomes[i] = o;
        }
        report.outcomes = outcomes;
        report
    }

    /// Like [`Executor::sync_events`] for the elements of a parsed batch or NDJSON body: an
    /// element that did not parse is rejected with its error (design decision 9).
    pub async fn sync_parsed(
        &self,
        elements: &[Result<Event, segment::ElementError>],
    ) -> SyncReport {
        let events: Vec<Event> = elements
            .iter()
            .filter_map(|e| e.as_ref().ok().cloned())
            .collect();
        let mut report = self.sync_events(&events).await;
        let mut parsed = std::mem::take(&mut report.outcomes).into_iter();
        report.outcomes = elements
            .iter()
            .map(|e| match e {
                Ok(_) => parsed.next().unwrap_or(Outcome::Pending),
                Err(err) => Outcome::rejected(ReasonCode::BadInput, err.to_string()),
            })
            .collect();
        report
    }

    /// Plan, send and attribute already-mapped changes: one outcome per change.
    pub async fn sync_changes(&self, changes: Vec<MembershipChange>) -> SyncReport {
        let mut report = SyncReport {
            outcomes: vec![Outcome::Pending; changes.len()],
            ..SyncReport::default()
        };
        if let Some(why) = self.stopped() {
            report.stopped = Some(why);
            return report;
        }
        let effective = self.record_changes(&changes, &mut report.warnings);

        // Resolve each audience once.
        let mut audiences: Vec<&MembershipChange> = Vec::new();
        let mut seen = HashSet::new();
        for c in &changes {
            if seen.insert(c.audience_key.as_str()) {
                audiences.push(c);
            }
        }
        // Futures are built eagerly (no closure inside the stream type), which keeps the whole
        // sync future `Send` for callers that spawn it.
        let lookups: Vec<_> = audiences.into_iter().map(|c| self.resolve_one(c)).collect();
        let resolved: HashMap<String, Result<i64, ListError>> = futures::stream::iter(lookups)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;

        let mut items = Vec::with_capacity(changes.len());
        let mut item_origin = Vec::with_capacity(changes.len());
        for (i, c) in changes.iter().enumerate() {
            match resolved.get(&c.audience_key) {
                Some(Ok(list_id)) => {
                    items.push(PlanItem {
                        list_id: *list_id,
                        settings: effective[i],
                        change: c,
                    });
                    item_origin.push(i);
                }
                Some(Err(e)) => report.outcomes[i] = self.list_error_outcome(e),
                None => {}
            }
        }

        let (plan, never_sent) = self.plan_without_unsent_exits(&items);
        for (i, o) in plan.settled.into_iter().chain(never_sent) {
            report.outcomes[item_origin[i]] = o;
        }
        let requests = interleave_lists(plan.requests);
        let sends: Vec<_> = requests
            .into_iter()
            .map(|req| self.run_request(req, &items))
            .collect();
        let results: Vec<RequestResult> = futures::stream::iter(sends)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;

        let mut relocations = Vec::new();
        for r in results {
            for (i, o) in r.outcomes {
                report.outcomes[item_origin[i]] = o;
            }
            report.requests.extend(r.sent);
            relocations.extend(r.relocations);
        }
        let batch_keys: HashSet<(&str, IdentityKey)> = changes
            .iter()
            .map(|c| {
                (
                    c.audience_key.as_str(),
                    c.identity.key(self.plan_config.project_type),
                )
            })
            .collect();
        // Only the request that first met the disappearance re-sends the audience's members.
        for (audience, old, new, first) in relocations {
            if !first {
                continue;
            }
            report.warnings.push(format!(
                "audience {audience}: list {old} no longer exists in Iterable; now using list {new}"
            ));
            let resent = self
                .resend_desired_in(&audience, new, &batch_keys, &mut report)
                .await;
            report.relocations.push(Relocation {
                audience_key: audience,
                old_list_id: old,
                new_list_id: new,
                resent,
            });
        }
        report.stopped = self.stopped();
        report
    }

    /// Resolve one audience's list, retrying transient failures (bounded attempts).
    async fn resolve_one(&self, c: &MembershipChange) -> (String, Result<i64, ListError>) {
        let binding = self
            .dest
            .audience(&c.audience_key)
            .and_then(|a| a.list.as_ref());
        let aref = AudienceRef {
            audience_key: &c.audience_key,
            binding,
            list_hint: c.list_hint,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.resolver.resolve(aref).await {
                Ok(l) => return (c.audience_key.clone(), Ok(l.list_id)),
                Err(e) if e.class().is_retryable() && attempt < self.settings.max_attempts => {
                    let delay = self.backoff(attempt);
                    tracing::debug!(audience = %c.audience_key, ?delay, error = %e, "retrying list resolution");
                    self.clock.sleep(delay).await;
                }
                Err(e) => return (c.audience_key.clone(), Err(e)),
            }
        }
    }

    /// Record audience settings and desired state; return each change's effective settings.
    fn record_changes(
        &self,
        changes: &[MembershipChange],
        warnings: &mut Vec<String>,
    ) -> Vec<EffectiveAudienceSettings> {
        let project = self.plan_config.project_type;
        let mut state = self.state.lock();
        // Size each audience's map once: growing it by doubling cost about a fifth of the
        // executor's CPU on a 200,000-event batch (BENCHMARKS.md, figure 1).
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for c in changes {
            *counts.entry(c.audience_key.as_str()).or_default() += 1;
        }
        for (key, n) in counts {
            state.desired.entry(key.to_owned()).or_default().reserve(n);
        }
        for c in changes {
            if let Some(s) = c.audience_settings {
                state.event_settings.insert(c.audience_key.clone(), s);
            }
            let at = (c.timestamp, c.received_order);
            let slot = state
                .desired
                .entry(c.audience_key.clone())
                .or_default()
                .entry(c.identity.key(project));
            let newer = match &slot {
                std::collections::hash_map::Entry::Occupied(o) => at >= o.get().at,
                std::collections::hash_map::Entry::Vacant(_) => true,
            };
            if newer {
                let d = Desired {
                    at,
                    change: (c.direction == Direction::Subscribe).then(|| c.clone()),
                };
                match slot {
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        o.insert(d);
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(d);
                    }
                }
            }
        }
        let mut per_audience: HashMap<&str, EffectiveAudienceSettings> = HashMap::new();
        changes
            .iter()
            .map(|c| {
                *per_audience
                    .entry(c.audience_key.as_str())
                    .or_insert_with(|| {
                        let (eff, w) = self
                            .dest
                            .effective(&c.audience_key, state.event_settings.get(&c.audience_key));
                        warnings.extend(w);
                        eff
                    })
            })
            .collect()
    }

    /// Plan; then skip exits to lists created here for identities never subscribed there
    /// (design decision 2) and plan again without them.
    fn plan_without_unsent_exits(&self, items: &[PlanItem<'_>]) -> (Plan, Vec<(usize, Outcome)>) {
        let first = plan(&self.plan_config, items);
        let project = self.plan_config.project_type;
        let mut skip = HashSet::new();
        {
            let state = self.state.lock();
            for r in &first.requests {
                if r.direction != Direction::Unsubscribe || !self.resolver.created_here(r.list_id) {
                    continue;
                }
                for &i in &r.changes {
                    let key = items[i].change.identity.key(project);
                    if !state.sent_subscribes.contains(&(r.list_id, key)) {
                        skip.insert(i);
                    }
                }
            }
        }
        if skip.is_empty() {
            return (first, Vec::new());
        }
        let winners: Vec<usize> = first
            .requests
            .iter()
            .flat_map(|r| r.changes.iter().copied())
            .filter(|i| !skip.contains(i))
            .collect();
        let kept: Vec<PlanItem<'_>> = winners.iter().map(|&i| items[i]).collect();
        let mut second = plan(&self.plan_config, &kept);
        for r in &mut second.requests {
            for i in &mut r.changes {
                *i = winners[*i];
            }
        }
        for s in &mut second.settled {
            s.0 = winners[s.0];
        }
        second.settled.extend(first.settled);
        let never_sent = skip
            .into_iter()
            .map(|i| {
                (
                    i,
                    Outcome::skipped(
                        ReasonCode::ExitNeverSent,
                        "exit for a user never subscribed to this list, which this service created",
                    ),
                )
            })
            .collect();
        (second, never_sent)
    }

    fn list_error_outcome(&self, e: &ListError) -> Outcome {
        match e.class() {
            iterable::ErrorClass::Auth => {
                self.stop(e.to_string());
                Outcome::Pending
            }
            iterable::ErrorClass::Retryable => {
                self.retrying(self.settings.backoff_base, e.to_string())
            }
            _ => Outcome::Rejected { reason: e.reason() },
        }
    }

    fn stop(&self, why: String) {
        let mut s = self.stopped.lock();
        if s.is_none() {
            tracing::error!(reason = %why, "Iterable refused the API key; destination stopped");
            *s = Some(why);
        }
    }

    fn retrying(&self, delay: Duration, message: String) -> Outcome {
        let nanos = i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX);
        Outcome::Retrying {
            next_attempt: Timestamp::from_unix_nanos(
                Timestamp::now().unix_nanos().saturating_add(nanos),
            ),
            reason: crate::model::Reason::new(ReasonCode::Transient, message),
        }
    }

    /// Exponential backoff with jitter: between half and all of `base * 2^(attempt-1)`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.settings.backoff_max);
        let factor: f64 = self.rng.lock().gen_range(0.5..=1.0);
        exp.mul_f64(factor)
    }

    async fn pace(&self) {
        let wait = self.pacer.lock().reserve(self.clock.now());
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
    }

    /// Send one planned request until it is settled: retries, halves, list rules.
    async fn run_request(&self, req: PlannedRequest, items: &[PlanItem<'_>]) -> RequestResult {
        let mut result = RequestResult::default();
        let project = self.plan_config.project_type;
        let mut queue = VecDeque::from([req]);
        while let Some(mut req) = queue.pop_front() {
            let mut attempt = 0u32;
            let mut relocated = false;
            loop {
                if self.stopped().is_some() {
                    result
                        .outcomes
                        .extend(req.changes.iter().map(|&i| (i, Outcome::Pending)));
                    break;
                }
                attempt += 1;
                if req.direction == Direction::Subscribe {
                    let mut state = self.state.lock();
                    for &i in &req.changes {
                        let key = items[i].change.identity.key(project);
                        state.sent_subscribes.insert((req.list_id, key));
                    }
                }
                self.pace().await;
                let op = match req.direction {
                    Direction::Subscribe => MembershipOp::Subscribe,
                    Direction::Unsubscribe => MembershipOp::Unsubscribe,
                };
                let body = Bytes::from(req.body.clone());
                let answer = self.api.membership(op, body.clone()).await;
                result.sent.push(SentRequest {
                    list_id: req.list_id,
                    direction: req.direction,
                    body,
                    status: answer.as_ref().ok().map(|r| r.status),
                    attempt,
                });
                match answer.as_ref().map(|r| r.status) {
                    Ok(429) => self.pacer.lock().throttled(self.clock.now()),
                    Ok(200..=299) => self.pacer.lock().succeeded(),
                    _ => {}
                }
                let (verdict, retry_after) = match answer {
                    Ok(raw) => (attribute(&req, raw.status, &raw.body), raw.retry_after),
                    Err(e) => (
                        Verdict::Retryable {
                            status: 0,
                            message: e.to_string(),
                        },
                        None,
                    ),
                };
                match verdict {
                    Verdict::Completed { results, .. } => {
                        result.outcomes.extend(results);
                        break;
                    }
                    Verdict::Retryable { status, message } => {
                        let message = if status == 0 {
                            message
                        } else {
                            format!("Iterable answered {status}: {message}")
                        };
                        let delay = match retry_after {
                            Some(d) => d,
                            None => self.backoff(attempt),
                        };
                        if attempt >= self.settings.max_attempts
                            || delay > self.settings.retry_after_max
                        {
                            result.outcomes.extend(
                                req.changes
                                    .iter()
                                    .map(|&i| (i, self.retrying(delay, message.clone()))),
                            );
                            break;
                        }
                        tracing::debug!(list_id = req.list_id, attempt, ?delay, %message, "retrying");
                        self.clock.sleep(delay).await;
                    }
                    Verdict::AuthFailed { status, message } => {
                        self.stop(format!(
                            "Iterable refused the API key (HTTP {status}): {message}"
                        ));
                        result
                            .outcomes
                            .extend(req.changes.iter().map(|&i| (i, Outcome::Pending)));
                        break;
                    }
                    Verdict::ListMissing { message } => {
                        match self.resolver.invalid_list_id(req.list_id) {
                            InvalidListVerdict::RetryAfter(d) => {
                                // Bounded by the list's grace period, not by the attempts.
                                attempt -= 1;
                                tracing::debug!(
                                    list_id = req.list_id,
                                    ?d,
                                    "new list not usable yet"
                                );
                                self.clock.sleep(d).await;
                                continue;
                            }
                            InvalidListVerdict::Missing => {}
                        }
                        let audience = &items[req.changes[0]].change;
                        let binding = self
                            .dest
                            .audience(&audience.audience_key)
                            .and_then(|a| a.list.as_ref());
                        let aref = AudienceRef {
                            audience_key: &audience.audience_key,
                            binding,
                            list_hint: audience.list_hint,
                        };
                        if relocated {
                            let e = ListError::Missing {
                                audience_key: audience.audience_key.clone(),
                                list_id: req.list_id,
                                why: "it disappeared again right after being replaced",
                            };
                            result.outcomes.extend(
                                req.changes
                                    .iter()
                                    .map(|&i| (i, self.list_error_outcome(&e))),
                            );
                            break;
                        }
                        match self.resolver.list_missing(aref, req.list_id).await {
                            Ok(moved) => {
                                tracing::warn!(
                                    audience = %audience.audience_key,
                                    old = req.list_id,
                                    new = moved.list.list_id,
                                    %message,
                                    "list disappeared; moved to another list"
                                );
                                result.relocations.push((
                                    audience.audience_key.clone(),
                                    req.list_id,
                                    moved.list.list_id,
                                    moved.resend_all_in,
                                ));
                                req = with_list_id(req, moved.list.list_id);
                                relocated = true;
                                attempt = 0;
                            }
                            Err(e) => {
                                result.outcomes.extend(
                                    req.changes
                                        .iter()
                                        .map(|&i| (i, self.list_error_outcome(&e))),
                                );
                                break;
                            }
                        }
                    }
                    Verdict::Split { status, message } => {
                        match req.split() {
                            Some((left, right)) => {
                                tracing::debug!(status, %message, n = req.changes.len(), "splitting request");
                                queue.push_front(right);
                                queue.push_front(left);
                            }
                            None => result.outcomes.extend(req.changes.iter().map(|&i| {
                                (
                                    i,
                                    Outcome::rejected(
                                        ReasonCode::IterableRejected,
                                        format!("Iterable answered {status}: {message}"),
                                    ),
                                )
                            })),
                        }
                        break;
                    }
                    Verdict::RejectAll { reason, .. } => {
                        result.outcomes.extend(req.changes.iter().map(|&i| {
                            (
                                i,
                                Outcome::Rejected {
                                    reason: reason.clone(),
                                },
                            )
                        }));
                        break;
                    }
                }
            }
        }
        result
    }

    /// Subscribe again, to `list_id`, every identity of `audience` whose desired state is `in`
    /// and that this batch does not already carry.
    async fn resend_desired_in(
        &self,
        audience: &str,
        list_id: i64,
        batch_keys: &HashSet<(&str, IdentityKey)>,
        report: &mut SyncReport,
    ) -> usize {
        let changes: Vec<MembershipChange> = {
            let state = self.state.lock();
            state
                .desired
                .get(audience)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| !batch_keys.contains(&(audience, (*k).clone())))
                        .filter_map(|(_, d)| d.change.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        if changes.is_empty() {
            return 0;
        }
        let settings = {
            let state = self.state.lock();
            self.dest
                .effective(audience, state.event_settings.get(audience))
                .0
        };
        let items: Vec<PlanItem<'_>> = changes
            .iter()
            .map(|c| PlanItem {
                list_id,
                settings,
                change: c,
            })
            .collect();
        let planned = plan(&self.plan_config, &items);
        for req in planned.requests {
            let r = self.run_request(req, &items).await;
            report.requests.extend(r.sent);
        }
        changes.len()
    }
}

/// The same request addressed to another list.
fn with_list_id(mut req: PlannedRequest, list_id: i64) -> PlannedRequest {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&req.body)
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("listId".into(), list_id.into());
        if let Ok(body) = serde_json::to_vec(&v) {
            req.body = body;
        }
    }
    req.list_id = list_id;
    req
}

/// Order requests round-robin across lists, so a backfill of one list does not hold back the
/// requests of the others (design decision 13).
fn interleave_lists(requests: Vec<PlannedRequest>) -> Vec<PlannedRequest> {
    let mut per_list: Vec<(i64, VecDeque<PlannedRequest>)> = Vec::new();
    for r in requests {
        match per_list.iter_mut().find(|(id, _)| *id == r.list_id) {
            Some((_, q)) => q.push_back(r),
            None => per_list.push((r.list_id, VecDeque::from([r]))),
        }
    }
    let mut out = Vec::new();
    loop {
        let mut any = false;
        for (_, q) in per_list.iter_mut() {
            if let Some(r) = q.pop_front() {
                out.push(r);
                any = true;
            }
        }
        if !any {
            return out;
        }
    }
}

/// One-shot convenience: map, plan, send and attribute `events` with default executor
/// settings and fresh in-memory state.
pub async fn sync_once<A: ListApi>(
    dest: &DestinationSettings,
    api: Arc<A>,
    events: &[Event],
) -> SyncReport {
    Executor::new(dest.clone(), api, SyncSettings::default())
        .sync_events(events)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::ManualClock;
    use crate::settings::ApiKey;
    use iterable::{NullSink, ProjectType};

    fn req(list_id: i64, n: usize) -> PlannedRequest {
        PlannedRequest {
            list_id,
            direction: Direction::Subscribe,
            settings: EffectiveAudienceSettings::default(),
            body: format!("{{\"listId\":{list_id},\"subscribers\":[]}}").into_bytes(),
            changes: vec![n],
        }
    }

    fn event(audience: &str, email: &str, member: bool) -> Event {
        let body = format!(
            r#"{{"type":"identify","messageId":"m-{email}","traits":{{"email":"{email}","{audience}":{member}}},"context":{{"personas":{{"computation_class":"audience","computation_key":"{audience}"}}}},"timestamp":"2026-11-02T09:30:22Z"}}"#
        );
        segment::parse_event(body.as_bytes(), &segment::Limits::default()).unwrap()
    }

    fn executor_over_sink(
        settings: SyncSettings,
    ) -> (Executor<NullSink>, Arc<NullSink>, Arc<ManualClock>) {
        let sink = Arc::new(NullSink::new());
        let clock = Arc::new(ManualClock::new());
        let dest = DestinationSettings::new(ApiKey::new("k"), ProjectType::Email);
        let exec = Executor::with_parts(
            dest,
            sink.clone(),
            settings,
            Arc::new(MemoryMappingStore::new()),
            clock.clone(),
        );
        (exec, sink, clock)
    }

    // design decision 13: one list's backfill does not queue ahead of another list's change.
    #[test]
    fn requests_are_interleaved_across_lists() {
        let reqs = vec![req(1, 0), req(1, 1), req(1, 2), req(2, 3)];
        let order: Vec<usize> = interleave_lists(reqs)
            .iter()
            .map(|r| r.changes[0])
            .collect();
        assert_eq!(order, vec![0, 3, 1, 2]);
    }

    #[test]
    fn relocated_request_names_the_new_list() {
        let r = with_list_id(req(1, 0), 99);
        assert_eq!(r.list_id, 99);
        assert_eq!(r.body, br#"{"listId":99,"subscribers":[]}"#);
    }

    // design: Send. Backoff doubles per attempt, with jitter in [half, full], capped.
    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let settings = SyncSettings {
            jitter_seed: Some(3),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..SyncSettings::default()
        };
        let (exec, _, _) = executor_over_sink(settings);
        for _ in 0..50 {
            let d1 = exec.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = exec.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = exec.backoff(9);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000),
                "{d9:?}"
            );
        }
    }

    // The do-nothing sink: every event is delivered, requests are counted, nothing is sent.
    #[tokio::test]
    async fn null_sink_delivers_every_event() {
        let (exec, sink, _) = executor_over_sink(SyncSettings::default());
        let events: Vec<Event> = (0..2500)
            .map(|i| event("big", &format!("u{i}@example.com"), true))
            .collect();
        let report = exec.sync_events(&events).await;
        assert_eq!(report.count(|o| matches!(o, Outcome::Delivered)), 2500);
        // 1000 subscribers per request (the default limit).
        assert_eq!(sink.requests(), 3);
        assert_eq!(report.requests.len(), 3);
        assert_eq!(exec.resolver().lists_created(), 1);
    }

    // design decision 13: with a configured rate, requests are spaced to it.
    #[tokio::test]
    async fn configured_rate_spaces_requests() {
        let settings = SyncSettings {
            rate_per_second: Some(2.0),
            concurrency: 1,
            ..SyncSettings::default()
        };
        let (exec, sink, clock) = executor_over_sink(settings);
        let events: Vec<Event> = (0..4)
            .map(|i| event(&format!("aud{i}"), "a@example.com", true))
            .collect();
        let report = exec.sync_events(&events).await;
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Delivered))
        );
        assert_eq!(sink.requests(), 4);
        // Four requests at 2/s: the last leaves 1.5 s after the first.
        assert_eq!(clock.now(), Duration::from_millis(1500));
    }

    /// A project that allows `per_second` membership requests per second of the clock and
    /// answers 429 beyond that.
    struct Throttling {
        clock: Arc<ManualClock>,
        per_second: u64,
        window: Mutex<(u64, u64)>,
        throttled: std::sync::atomic::AtomicU64,
        next_list: std::sync::atomic::AtomicI64,
    }

    impl ListApi for Throttling {
        async fn get_lists(&self) -> Result<iterable::GetListsResponse, iterable::Error> {
            Ok(iterable::GetListsResponse::default())
        }

        async fn create_list(&self, _name: &str) -> Result<i64, iterable::Error> {
            Ok(self.next_list.fetch_add(1, Ordering::Relaxed))
        }

        async fn membership(
            &self,
            _op: MembershipOp,
            _body: Bytes,
        ) -> Result<iterable::RawResponse, iterable::TransportError> {
            let second = self.clock.now().as_secs();
            let mut w = self.window.lock();
            if w.0 != second {
                *w = (second, 0);
            }
            w.1 += 1;
            let (status, body): (u16, &'static [u8]) = if w.1 > self.per_second {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                (429, b"Rate limit exceeded. Please try again later.")
            } else {
                (200, br#"{"successCount":1,"failCount":0}"#)
            };
            Ok(iterable::RawResponse {
                status,
                body: Bytes::from_static(body),
                retry_after: None,
            })
        }
    }

    // design decision 13: without a configured rate the pace is found from 429s (AIMD), so a
    // long run draws few 429s instead of one per request beyond the limit.
    #[tokio::test]
    async fn pace_adapts_to_throttling() {
        let clock = Arc::new(ManualClock::new());
        let api = Arc::new(Throttling {
            clock: clock.clone(),
            per_second: 4,
            window: Mutex::new((0, 0)),
            throttled: std::sync::atomic::AtomicU64::new(0),
            next_list: std::sync::atomic::AtomicI64::new(1),
        });
        let settings = SyncSettings {
            concurrency: 1,
            max_attempts: 20,
            jitter_seed: Some(9),
            backoff_base: Duration::from_millis(10),
            ..SyncSettings::default()
        };
        let dest = DestinationSettings::new(ApiKey::new("k"), ProjectType::Email);
        let exec = Executor::with_parts(
            dest,
            api.clone(),
            settings,
            Arc::new(MemoryMappingStore::new()),
            clock.clone(),
        );
        let events: Vec<Event> = (0..120)
            .map(|i| event(&format!("aud{i}"), "a@example.com", true))
            .collect();
        let report = exec.sync_events(&events).await;
        assert_eq!(report.count(|o| matches!(o, Outcome::Delivered)), 120);
        let throttled = api.throttled.load(Ordering::Relaxed);
        assert!(throttled < 30, "{throttled} requests throttled out of 120");
        // And the pace stays near the limit: 120 requests at 4/s take about 30 s.
        assert!(clock.now() < Duration::from_secs(80), "{:?}", clock.now());
    }

    #[test]
    fn pacer_halves_on_429_once_per_second_and_grows_back_under_the_ceiling() {
        let mut p = Pacer::new(Some(10.0));
        let t = Duration::from_secs(5);
        for _ in 0..10 {
            p.reserve(t);
        }
        p.throttled(t);
        assert_eq!(p.rate, Some(5.0));
        p.throttled(t + Duration::from_millis(100));
        assert_eq!(p.rate, Some(5.0), "one decrease per second");
        for _ in 0..1000 {
            p.succeeded();
        }
        assert_eq!(p.rate, Some(10.0), "never above the ceiling");
        let mut free = Pacer::new(None);
        assert_eq!(free.reserve(t), Duration::ZERO);
        assert_eq!(free.rate, None);
    }

    /// A project that refuses, with a 400, any request carrying one poisoned subscriber.
    struct Poisoned {
        calls: std::sync::atomic::AtomicU64,
    }

    impl ListApi for Poisoned {
        async fn get_lists(&self) -> Result<iterable::GetListsResponse, iterable::Error> {
            Ok(iterable::GetListsResponse::default())
        }

        async fn create_list(&self, _name: &str) -> Result<i64, iterable::Error> {
            Ok(77)
        }

        async fn membership(
            &self,
            _op: MembershipOp,
            body: Bytes,
        ) -> Result<iterable::RawResponse, iterable::TransportError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let poisoned = body.windows(15).any(|w| w == b"bad@example.com");
            let (status, answer): (u16, &'static [u8]) = if poisoned {
                (
                    400,
                    br#"{"msg":"[/api/lists/subscribe] Invalid JSON body","code":"BadJsonBody","params":{"obj.subscribers[3].dataFields":"error"}}"#,
                )
            } else {
                (200, br#"{"successCount":1,"failCount":0}"#)
            };
            Ok(iterable::RawResponse {
                status,
                body: Bytes::from_static(answer),
                retry_after: None,
            })
        }
    }

    // design decision 9: a 400 (not invalidListId) splits the request in halves down to one
    // subscriber; the bad one is rejected with Iterable's message, the others delivered.
    #[tokio::test]
    async fn bad_request_is_split_until_the_bad_subscriber_fails_alone() {
        let api = Arc::new(Poisoned {
            calls: std::sync::atomic::AtomicU64::new(0),
        });
        let dest = DestinationSettings::new(ApiKey::new("k"), ProjectType::Email);
        let exec = Executor::with_parts(
            dest,
            api.clone(),
            SyncSettings::default(),
            Arc::new(MemoryMappingStore::new()),
            Arc::new(ManualClock::new()),
        );
        let mut events: Vec<Event> = (0..8)
            .map(|i| event("aud", &format!("ok{i}@example.com"), true))
            .collect();
        events[5] = event("aud", "bad@example.com", true);
        let report = exec.sync_events(&events).await;
        for (i, o) in report.outcomes.iter().enumerate() {
            if i == 5 {
                let Outcome::Rejected { reason } = o else {
                    panic!("{o:?}")
                };
                assert_eq!(reason.code, ReasonCode::IterableRejected);
                assert!(reason.message.contains("BadJsonBody"), "{reason:?}");
            } else {
                assert!(matches!(o, Outcome::Delivered), "{i}: {o:?}");
            }
        }
        // 8 → 4+4 → 2+2 → 1+1: seven requests, the bad one alone at the end.
        assert_eq!(api.calls.load(Ordering::Relaxed), 7);
        let last_bad = report
            .requests
            .iter()
            .rfind(|r| r.status == Some(400))
            .expect("a 400");
        let body: serde_json::Value = serde_json::from_slice(&last_bad.body).unwrap();
        assert_eq!(body["subscribers"].as_array().unwrap().len(), 1);
    }

    // A sync future must be spawnable (the service runs it on a multi-threaded runtime).
    #[test]
    fn sync_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let (exec, _, _) = executor_over_sink(SyncSettings::default());
        assert_send(exec.sync_events(&[]));
        assert_send(exec.sync_changes(Vec::new()));
    }
}
