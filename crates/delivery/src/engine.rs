//! The engine: opens the store, accepts batches durably, runs delivery, reports status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use destination::default_mapping::MapContext;
use destination::lists::{ListResolver, ListSettings, SystemClock};
use destination::model::{ProcessedEvent, Reason, ReasonCode};
use destination::planner::PlanConfig;
use destination::settings::DestinationSettings;
use parking_lot::Mutex;
use segment::{ElementError, Event, Timestamp};
use serde::Serialize;
use store::{AcceptOutcome, Change, FinalEvent, Millis, SqliteOptions, SqliteStore, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::EngineError;
use crate::config::{Config, DeliveryConfig, SyncMode};
use crate::deliver::{self, Project, StoreMappings};
use crate::limiter::RateMode;
use crate::mapper::{DefaultMapper, Mapper};
use crate::stats::Stats;
use destination::custom_mapping::MappingSet;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Runs `f` on the blocking pool (store calls are synchronous SQLite transactions).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, EngineError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(EngineError::from),
        Err(e) => Err(EngineError::Store(store::StoreError::Json(
            serde::de::Error::custom(format!("store task failed: {e}")),
        ))),
    }
}

/// Options of [`Engine::start`] that are not configuration.
#[derive(Clone, Default)]
pub struct EngineOptions {
    /// Custom mappings per destination name; destinations without one use the default mapping.
    pub mappers: HashMap<String, Arc<dyn Mapper>>,
    /// Accept only, never deliver (benchmarks of the accept path, inspection tools).
    pub accept_only: bool,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("mappers", &self.mappers.keys().collect::<Vec<_>>())
            .field("accept_only", &self.accept_only)
            .finish()
    }
}

/// What became of one event of an accepted batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EventResult {
    /// Written to the ledger; delivery follows.
    Accepted,
    /// Its `messageId` was accepted before: applied once.
    Duplicate,
    /// Final, not an error.
    Skipped {
        /// Why.
        reason: Reason,
    },
    /// Final, with a reason.
    Rejected {
        /// Why.
        reason: Reason,
    },
}

/// One event's result with its position in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventReport {
    /// Index in the batch (or line number in NDJSON, as the parser numbered it).
    pub index: usize,
    /// The event's `messageId`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// What became of it.
    #[serde(flatten)]
    pub result: EventResult,
}

/// The answer to [`Engine::accept_batch`]: one report per input, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcceptReport {
    /// Per event, in input order.
    pub events: Vec<EventReport>,
}

impl AcceptReport {
    /// Events written to the ledger.
    pub fn accepted(&self) -> usize {
        self.count(|r| matches!(r, EventResult::Accepted))
    }
    /// Duplicates.
    pub fn duplicates(&self) -> usize {
        self.count(|r| matches!(r, EventResult::Duplicate))
    }
    /// Skipped at ingest.
    pub fn skipped(&self) -> usize {
        self.count(|r| matches!(r, EventResult::Skipped { .. }))
    }
    /// Rejected at ingest.
    pub fn rejected(&self) -> usize {
        self.count(|r| matches!(r, EventResult::Rejected { .. }))
    }
    fn count(&self, f: impl Fn(&EventResult) -> bool) -> usize {
        self.events.iter().filter(|e| f(&e.result)).count()
    }
}

/// One destination at run time.
pub(crate) struct Dest {
    pub(crate) name: String,
    pub(crate) settings: DestinationSettings,
    pub(crate) plan_config: PlanConfig,
    pub(crate) project: Arc<Project>,
    pub(crate) resolver: ListResolver<iterable::Client>,
    pub(crate) mapper: Arc<dyn Mapper>,
}

/// Shared state of the engine's tasks.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) delivery: DeliveryConfig,
    pub(crate) retention: crate::config::RetentionConfig,
    pub(crate) dests: BTreeMap<String, Arc<Dest>>,
    pub(crate) projects: Vec<Arc<Project>>,
    pub(crate) stats: Stats,
    pub(crate) inflight: AtomicU64,
    pub(crate) order: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) warnings: Mutex<Vec<String>>,
    hints: Mutex<HashMap<(String, String), i64>>,
}

impl Shared {
    /// Records a warning for status output and the log.
    pub(crate) fn warn(&self, message: String) {
        tracing::warn!("{message}");
        let mut w = self.warnings.lock();
        if w.len() >= 100 {
            w.remove(0);
        }
        w.push(message);
    }

    /// The latest `external_audience_id` seen for an audience.
    pub(crate) fn list_hint(&self, destination: &str, audience_key: &str) -> Option<i64> {
        let key = (destination.to_owned(), audience_key.to_owned());
        if let Some(h) = self.hints.lock().get(&key) {
            return Some(*h);
        }
        let v = self
            .store
            .kv_get(HINT_NS, &hint_key(destination, audience_key))
            .ok()
            .flatten()?;
        let h = v.as_i64()?;
        self.hints.lock().insert(key, h);
        Some(h)
    }
}

const HINT_NS: &str = "list_hint";

fn hint_key(destination: &str, audience_key: &str) -> String {
    format!("{destination}\n{audience_key}")
}

/// Whether [`Engine::wait_settled`] saw everything delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// No change is pending.
    Settled,
    /// The timeout passed with changes pending.
    TimedOut {
        /// Pending changes.
        pending: u64,
    },
    /// A project was paused (its API key was refused) with changes pending.
    Paused {
        /// Pending changes.
        pending: u64,
        /// Why, per project.
        reasons: Vec<String>,
    },
}

/// A project's state, for status output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectStatus {
    /// A label naming its destinations and base URL (never the key).
    pub label: String,
    /// The rate in force, in requests per second.
    pub rate_per_second: f64,
    /// True when the rate is configured, false when found from 429s.
    pub rate_configured: bool,
    /// Why it is paused, if it is.
    pub paused: Option<String>,
}

/// The engine's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineStatus {
    /// Pending changes in the store.
    pub backlog: u64,
    /// The bound past which accept answers busy.
    pub backlog_bound: u64,
    /// Pending changes per destination, audience (list) and direction.
    pub pending: Vec<PendingEntry>,
    /// Per Iterable project.
    pub projects: Vec<ProjectStatus>,
    /// Requests in flight.
    pub in_flight: u64,
    /// Counters since start.
    pub stats: crate::stats::StatsSnapshot,
    /// Recent warnings (lists that disappeared, ignored settings…).
    pub warnings: Vec<String>,
}

/// Pending changes of one destination, audience and direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingEntry {
    /// Destination.
    pub destination: String,
    /// Audience key.
    pub audience_key: String,
    /// The list, if resolved.
    pub list_id: Option<i64>,
    /// `subscribe` or `unsubscribe`.
    pub direction: &'static str,
    /// Pending changes.
    pub pending: u64,
}

/// The durable delivery engine.
///
/// ```no_run
/// # async fn demo(config: delivery::Config, events: Vec<Result<segment::Event, segment::ElementError>>) -> Result<(), delivery::EngineError> {
/// use std::time::Duration;
/// let engine = delivery::Engine::start(config, delivery::EngineOptions::default()).await?;
/// let report = engine.accept_batch("engage", events).await?; // durable when it returns
/// println!("{} accepted", report.accepted());
/// engine.wait_settled(Duration::from_secs(600)).await;
/// engine.shutdown(Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
pub struct Engine {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "destinations",
                &self.shared.dests.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the configured store (refusing one another process holds) and starts delivery.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: Config, options: EngineOptions) -> Result<Engine, EngineError> {
        config.validate()?;
        let opts = SqliteOptions {
            synchronous: match config.store.synchronous {
                SyncMode::Full => store::Synchronous::Full,
                SyncMode::Normal => store::Synchronous::Normal,
            },
            backlog_bound: config.delivery.backlog_bound,
            ..SqliteOptions::default()
        };
        let path = config.store.path.clone();
        let store: Arc<dyn Store> = Arc::new(
            tokio::task::spawn_blocking(move || SqliteStore::open(&path, opts))
                .await
                .map_err(|e| EngineError::StoreLocked(format!("store open failed: {e}")))??,
        );
        Self::with_store(config, store, options).await
    }

    /// Starts the engine on an already opened store.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        let delivery = config.delivery.clone();
        let (stop, shutdown) = watch::channel(false);
        // One project per (API key, base URL): one limiter and one concurrency bound.
        let mut projects: Vec<Arc<Project>> = Vec::new();
        let mut by_key: HashMap<(String, String), Arc<Project>> = HashMap::new();
        let mut dests = BTreeMap::new();
        for dc in &config.destinations {
            let settings = dc.settings();
            let base = settings.base_url().to_owned();
            let id = (settings.api_key.expose().to_owned(), base.clone());
            let project = match by_key.get(&id) {
                Some(p) => {
                    p.add_destination(&dc.name);
                    p.clone()
                }
                None => {
                    let mut cc = iterable::ClientConfig::new(
                        iterable::ApiKey::new(settings.api_key.expose()),
                        iterable::Endpoint::Custom(base.clone()),
                    );
                    cc.timeout = Duration::from_millis(delivery.send_timeout_ms);
                    let client = iterable::Client::new(cc).map_err(|e| EngineError::Client {
                        destination: dc.name.clone(),
                        message: e.to_string(),
                    })?;
                    let rate_key = format!("{base} {}", dc.name);
                    let mode = match dc.rate_per_second {
                        Some(r) => RateMode::Fixed(r),
                        None => {
                            let saved = store.kv_get(deliver::RATE_NS, &rate_key).ok().flatten();
                            let rate = saved
                                .as_ref()
                                .and_then(|v| v.get("rate"))
                                .and_then(|v| v.as_f64())
                                .filter(|r| *r > 0.0);
                            RateMode::Adaptive {
                                initial: rate.unwrap_or(delivery.aimd_initial_rate),
                                settled: rate.is_some(),
                            }
                        }
                    };
                    let p = Arc::new(Project::new(
                        &dc.name,
                        &base,
                        rate_key,
                        client,
                        mode,
                        dc.concurrency,
                    ));
                    by_key.insert(id, p.clone());
                    projects.push(p.clone());
                    p
                }
            };
            let mappings = Arc::new(StoreMappings::new(store.clone(), &dc.name));
            let list_settings = ListSettings {
                on_missing_list: dc.on_missing_list,
                new_list_grace: Duration::from_millis(delivery.new_list_grace_ms),
                ..ListSettings::default()
            };
            let resolver = ListResolver::new(
                Arc::new(project.client.clone()),
                mappings,
                Arc::new(SystemClock::new()),
                list_settings,
            );
            // A mapper given by the caller (the service's live registry) wins; else the
            // mappings the file declares; else the default mapping.
            let mapper: Arc<dyn Mapper> = match options.mappers.get(&dc.name) {
                Some(m) => m.clone(),
                None if dc.mappings.is_empty() => Arc::new(DefaultMapper),
                None => Arc::new(MappingSet::from_configs(&dc.mappings).map_err(|e| {
                    EngineError::Config(crate::config::ConfigError::Invalid(format!(
                        "destination {:?}: {e}",
                        dc.name
                    )))
                })?),
            };
            dests.insert(
                dc.name.clone(),
                Arc::new(Dest {
                    name: dc.name.clone(),
                    plan_config: PlanConfig::from_settings(&settings),
                    settings,
                    project,
                    resolver,
                    mapper,
                }),
            );
        }
        let shared = Arc::new(Shared {
            store,
            delivery,
            retention: config.retention.clone(),
            dests,
            projects,
            stats: Stats::default(),
            inflight: AtomicU64::new(0),
            order: AtomicU64::new(0),
            shutdown,
            warnings: Mutex::new(Vec::new()),
            hints: Mutex::new(HashMap::new()),
        });
        let mut tasks = Vec::new();
        if !options.accept_only {
            tasks.push(tokio::spawn(deliver::scheduler(shared.clone())));
            for p in &shared.projects {
                tasks.push(tokio::spawn(deliver::worker(shared.clone(), p.clone())));
            }
        }
        Ok(Engine {
            shared,
            stop,
            tasks: Mutex::new(tasks),
        })
    }

    /// The configured destination names.
    pub fn destinations(&self) -> Vec<String> {
        self.shared.dests.keys().cloned().collect()
    }

    /// The store (for the delivery log, replay and other admin reads).
    pub fn store(&self) -> Arc<dyn Store> {
        self.shared.store.clone()
    }

    /// Maps a batch of parsed events for `destination` and writes every resulting change in
    /// one store transaction; returns only once that transaction is durable. Events that end
    /// at ingest (skipped, rejected, unparseable) are recorded in the delivery log.
    /// Fails with [`EngineError::Busy`] when the backlog passed the bound (nothing written).
    pub async fn accept_batch(
        &self,
        destination: &str,
        events: Vec<Result<Event, ElementError>>,
    ) -> Result<AcceptReport, EngineError> {
        if *self.shared.shutdown.borrow() {
            return Err(EngineError::ShutDown);
        }
        let dest = self
            .shared
            .dests
            .get(destination)
            .cloned()
            .ok_or_else(|| EngineError::UnknownDestination(destination.to_owned()))?;
        let backlog = self.shared.store.backlog();
        let bound = self.shared.delivery.backlog_bound;
        if backlog >= bound {
            return Err(EngineError::Busy {
                backlog,
                bound,
                retry_after: Duration::from_secs(5),
            });
        }
        let shared = self.shared.clone();
        let report = tokio::task::spawn_blocking(move || accept_blocking(&shared, &dest, events))
            .await
            .map_err(|e| {
                EngineError::Store(store::StoreError::Json(serde::de::Error::custom(format!(
                    "accept task failed: {e}"
                ))))
            })??;
        Ok(report)
    }

    /// Pending work, paused projects, counters and recent warnings.
    pub async fn status(&self) -> Result<EngineStatus, EngineError> {
        let store = self.shared.store.clone();
        let st = blocking(move || store.status()).await?;
        let mut projects = Vec::new();
        for p in &self.shared.projects {
            projects.push(p.status().await);
        }
        Ok(EngineStatus {
            backlog: st.backlog,
            backlog_bound: st.backlog_bound,
            pending: st
                .pending
                .into_iter()
                .map(|p| PendingEntry {
                    destination: p.destination,
                    audience_key: p.audience_key,
                    list_id: p.list_id,
                    direction: match p.direction {
                        store::Direction::In => "subscribe",
                        store::Direction::Out => "unsubscribe",
                    },
                    pending: p.pending,
                })
                .collect(),
            projects,
            in_flight: self.shared.inflight.load(Ordering::Relaxed),
            stats: self.shared.stats.snapshot(),
            warnings: self.shared.warnings.lock().clone(),
        })
    }

    /// Counters since start (requests sent, outcomes by reason…).
    pub fn stats(&self) -> crate::stats::StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Pending changes in the store (cheap).
    pub fn backlog(&self) -> u64 {
        self.shared.store.backlog()
    }

    /// Waits until no change is pending, a project is paused with work pending, or `timeout`
    /// passes.
    pub async fn wait_settled(&self, timeout: Duration) -> WaitOutcome {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self.shared.store.backlog();
            let inflight = self.shared.inflight.load(Ordering::Relaxed);
            if pending == 0 && inflight == 0 {
                return WaitOutcome::Settled;
            }
            let reasons: Vec<String> = self
                .shared
                .projects
                .iter()
                .filter_map(|p| p.paused().map(|r| format!("{}: {r}", p.label())))
                .collect();
            if !reasons.is_empty() && inflight == 0 {
                return WaitOutcome::Paused { pending, reasons };
            }
            if tokio::time::Instant::now() >= deadline {
                return WaitOutcome::TimedOut { pending };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Lifts the pause of every project a destination uses (after the operator fixed its
    /// key). Returns false for an unknown destination.
    pub fn resume(&self, destination: &str) -> bool {
        match self.shared.dests.get(destination) {
            Some(d) => {
                d.project.resume();
                true
            }
            None => false,
        }
    }

    /// Pauses delivery for the Iterable project a destination uses (so for every destination
    /// sharing its API key and endpoint), as an operator asks: accepting continues and changes
    /// wait in the store until [`Engine::resume`]. Returns false for an unknown destination.
    pub fn pause(&self, destination: &str, reason: &str) -> bool {
        match self.shared.dests.get(destination) {
            Some(d) => {
                d.project.pause_by_operator(reason.to_owned());
                true
            }
            None => false,
        }
    }

    /// Stops accepting and scheduling, lets requests in flight finish for up to `bound`, then
    /// stops. Claimed rows not sent are free again at the next start.
    pub async fn shutdown(&self, bound: Duration) {
        let _ = self.stop.send(true);
        for p in &self.shared.projects {
            p.wake();
        }
        let deadline = tokio::time::Instant::now() + bound;
        while self.shared.inflight.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            t.abort();
        }
        deliver::persist_rates(&self.shared).await;
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

/// The accept path, on a blocking thread: map, one store transaction, log ingest finals.
fn accept_blocking(
    shared: &Shared,
    dest: &Dest,
    events: Vec<Result<Event, ElementError>>,
) -> Result<AcceptReport, EngineError> {
    let now = now_ms();
    let received_at = Timestamp::from_unix_millis(now);
    let project = dest.settings.project_type;
    let mut reports: Vec<EventReport> = Vec::with_capacity(events.len());
    let mut changes: Vec<Change> = Vec::with_capacity(events.len());
    let mut change_slot: Vec<usize> = Vec::with_capacity(events.len());
    let mut finals: Vec<FinalEvent> = Vec::new();
    let mut hints: Vec<(String, i64)> = Vec::new();
    for (pos, ev) in events.into_iter().enumerate() {
        let event = match ev {
            Ok(e) => e,
            Err(err) => {
                let reason = Reason::new(ReasonCode::BadInput, err.to_string());
                finals.push(FinalEvent {
                    destination: dest.name.clone(),
                    audience_key: None,
                    identity: None,
                    message_id: format!(
                        "unparsed-{now}-{}-{}",
                        err.index,
                        shared.order.fetch_add(1, Ordering::Relaxed)
                    ),
                    outcome: store::Outcome::Rejected,
                    reason_code: reason.code.as_str().to_owned(),
                    reason: reason.message.clone(),
                });
                reports.push(EventReport {
                    index: err.index,
                    message_id: None,
                    result: EventResult::Rejected { reason },
                });
                continue;
            }
        };
        let ctx = MapContext {
            received_order: shared.order.fetch_add(1, Ordering::Relaxed),
            received_at,
        };
        let index = pos;
        match dest.mapper.map(&event, &dest.settings, ctx) {
            ProcessedEvent::Change(c) => {
                if let Some(h) = c.list_hint {
                    hints.retain(|(k, _)| *k != c.audience_key);
                    hints.push((c.audience_key.clone(), h));
                }
                let settings = c
                    .audience_settings
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok());
                let data = (!c.data_fields.is_empty())
                    .then(|| serde_json::Value::Object(c.data_fields.clone()));
                reports.push(EventReport {
                    index,
                    message_id: Some(c.message_id.clone()),
                    result: EventResult::Accepted,
                });
                change_slot.push(reports.len() - 1);
                changes.push(Change {
                    destination: dest.name.clone(),
                    audience_key: c.audience_key.clone(),
                    identity: c.identity.key(project).to_storage(),
                    email: c.identity.email().map(str::to_owned),
                    user_id: c.identity.user_id().map(str::to_owned),
                    direction: match c.direction {
                        destination::model::Direction::Subscribe => store::Direction::In,
                        destination::model::Direction::Unsubscribe => store::Direction::Out,
                    },
                    data_fields: data,
                    message_id: c.message_id.clone(),
                    timestamp: c.timestamp.unix_millis(),
                    audience_settings: settings,
                });
            }
            other => {
                let (outcome, reason, result) = match other {
                    ProcessedEvent::Skipped(r) => (
                        store::Outcome::Skipped,
                        r.clone(),
                        EventResult::Skipped { reason: r },
                    ),
                    ProcessedEvent::Rejected(r) => (
                        store::Outcome::Rejected,
                        r.clone(),
                        EventResult::Rejected { reason: r },
                    ),
                    ProcessedEvent::Change(_) => continue,
                };
                let message_id = event
                    .message_id
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| format!("generated-{now}-{}", ctx.received_order));
                finals.push(FinalEvent {
                    destination: dest.name.clone(),
                    audience_key: None,
                    identity: None,
                    message_id: message_id.clone(),
                    outcome,
                    reason_code: reason.code.as_str().to_owned(),
                    reason: reason.message.clone(),
                });
                reports.push(EventReport {
                    index,
                    message_id: Some(message_id),
                    result,
                });
            }
        }
    }
    // The ledger changes first, in one transaction: only then is the batch acknowledged.
    if !changes.is_empty() {
        let outcomes = shared.store.accept(&changes, now)?;
        for (slot, outcome) in change_slot.iter().zip(outcomes) {
            let r = &mut reports[*slot].result;
            match outcome {
                AcceptOutcome::Applied { .. } => {}
                AcceptOutcome::Duplicate => *r = EventResult::Duplicate,
                AcceptOutcome::Superseded => {
                    *r = EventResult::Skipped {
                        reason: Reason::new(
                            ReasonCode::Superseded,
                            "a newer event for this identity was already received",
                        ),
                    }
                }
            }
        }
    }
    if !finals.is_empty() {
        shared.store.record_final(&finals, now)?;
    }
    for (audience, hint) in hints {
        let key = (dest.name.clone(), audience.clone());
        let known = shared.hints.lock().get(&key).copied();
        if known != Some(hint) {
            shared.store.kv_set(
                HINT_NS,
                &hint_key(&dest.name, &audience),
                Some(&serde_json::Value::from(hint)),
            )?;
            shared.hints.lock().insert(key, hint);
        }
    }
    shared.stats.add_accepted(&reports);
    Ok(AcceptReport { events: reports })
}
