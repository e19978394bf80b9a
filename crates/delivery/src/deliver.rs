//! Delivery: the scheduler, one worker per Iterable project, and the job that sends one
//! claim of rows and records the results.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use destination::attribution::{Verdict, attribute};
use destination::lists::{
    AudienceRef, InvalidListVerdict, ListError, ListMappingStore, ListOrigin, OnMissingList,
};
use destination::model::{
    Direction as PlanDirection, EventAudienceSettings, Identity, MembershipChange, Outcome,
    ReasonCode,
};
use destination::planner::{PlanItem, PlannedRequest, plan};
use iterable::{ErrorClass, MembershipOp};
use parking_lot::Mutex;
use rand::Rng;
use segment::Timestamp;
use store::{AudienceId, ClaimedRow, Direction, Millis, RowRef, Store};
use tokio::sync::{Notify, Semaphore};

use crate::engine::{Dest, ProjectStatus, Shared, blocking, now_ms};
use crate::limiter::{Limiter, RateMode};

/// kv namespace of the rate found for a project.
pub(crate) const RATE_NS: &str = "rate";
/// kv namespace of the creation time of lists this service created (grace period).
const CREATED_NS: &str = "list_created_at";

/// One audience and direction with work to send.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WorkKey {
    audience: AudienceId,
    direction: Direction,
    destination: String,
}

#[derive(Default)]
struct Ready {
    queue: VecDeque<WorkKey>,
    queued: HashSet<WorkKey>,
}

/// One Iterable project: a client, a rate limiter, a concurrency bound, a pause switch and
/// the round-robin queue of audiences with work.
pub(crate) struct Project {
    label: Mutex<String>,
    base: String,
    rate_key: String,
    fixed_rate: bool,
    pub(crate) client: iterable::Client,
    limiter: Limiter,
    permits: Arc<Semaphore>,
    paused: Mutex<Option<String>>,
    ready: Mutex<Ready>,
    notify: Notify,
}

impl Project {
    pub(crate) fn new(
        destination: &str,
        base: &str,
        rate_key: String,
        client: iterable::Client,
        mode: RateMode,
        concurrency: usize,
    ) -> Self {
        Project {
            label: Mutex::new(format!("{destination} ({base})")),
            base: base.to_owned(),
            rate_key,
            fixed_rate: matches!(mode, RateMode::Fixed(_)),
            client,
            limiter: Limiter::new(mode),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            paused: Mutex::new(None),
            ready: Mutex::new(Ready::default()),
            notify: Notify::new(),
        }
    }

    pub(crate) fn add_destination(&self, name: &str) {
        let mut l = self.label.lock();
        let names = l.split(" (").next().unwrap_or_default().to_owned();
        *l = format!("{names}, {name} ({})", self.base);
    }

    pub(crate) fn label(&self) -> String {
        self.label.lock().clone()
    }

    pub(crate) fn paused(&self) -> Option<String> {
        self.paused.lock().clone()
    }

    pub(crate) fn resume(&self) {
        *self.paused.lock() = None;
        self.notify.notify_one();
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// An operator's pause: nothing is sent until [`Project::resume`]; no error is logged,
    /// since nothing failed.
    pub(crate) fn pause_by_operator(&self, why: String) {
        *self.paused.lock() = Some(why);
        self.notify.notify_one();
    }

    fn pause(&self, why: String) {
        let mut p = self.paused.lock();
        if p.is_none() {
            tracing::error!(project = %self.label(), reason = %why, "Iterable refused the API key; project paused");
            *p = Some(why);
        }
    }

    fn enqueue(&self, key: WorkKey) {
        let mut r = self.ready.lock();
        if r.queued.insert(key.clone()) {
            r.queue.push_back(key);
            drop(r);
            self.notify.notify_one();
        }
    }

    fn pop(&self) -> Option<WorkKey> {
        let mut r = self.ready.lock();
        let k = r.queue.pop_front()?;
        r.queued.remove(&k);
        Some(k)
    }

    pub(crate) async fn status(&self) -> ProjectStatus {
        ProjectStatus {
            label: self.label(),
            rate_per_second: self.limiter.rate().await.0,
            rate_configured: self.fixed_rate,
            paused: self.paused(),
        }
    }
}

/// Audience → list mappings kept in the store (the audience's bound list).
pub(crate) struct StoreMappings {
    store: Arc<dyn Store>,
    destination: String,
}

impl StoreMappings {
    pub(crate) fn new(store: Arc<dyn Store>, destination: &str) -> Self {
        StoreMappings {
            store,
            destination: destination.to_owned(),
        }
    }
}

impl ListMappingStore for StoreMappings {
    fn get(&self, audience_key: &str) -> Option<i64> {
        self.store
            .ensure_audience(&self.destination, audience_key)
            .ok()
            .and_then(|a| a.list_id)
    }

    fn put(&self, audience_key: &str, list_id: i64) {
        let r = self
            .store
            .ensure_audience(&self.destination, audience_key)
            .and_then(|a| {
                let created = a.list_created && a.list_id == Some(list_id);
                self.store.set_list(a.id, Some(list_id), created)
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "could not store an audience's list");
        }
    }

    fn remove(&self, audience_key: &str, list_id: i64) {
        let r = self
            .store
            .ensure_audience(&self.destination, audience_key)
            .and_then(|a| {
                if a.list_id == Some(list_id) {
                    self.store.set_list(a.id, None, false)
                } else {
                    Ok(())
                }
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "could not drop an audience's list");
        }
    }
}

fn stopping(shared: &Shared) -> bool {
    *shared.shutdown.borrow()
}

/// Finds due work and queues it on its project: an audience and direction is flushed when it
/// has `flush_threshold` due changes or its oldest is older than the flush interval.
pub(crate) async fn scheduler(shared: Arc<Shared>) {
    let tick = Duration::from_millis(shared.delivery.tick_ms.max(5));
    let interval = shared.delivery.flush_interval_ms as Millis;
    let threshold = shared.delivery.flush_threshold;
    let mut last_persist = tokio::time::Instant::now();
    let compact_every = Duration::from_secs(shared.retention.compact_every_minutes.max(1) * 60);
    // First compaction shortly after start, then every `compact_every`.
    let mut next_compact = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => {}
        }
        if stopping(&shared) {
            return;
        }
        let now = now_ms();
        let store = shared.store.clone();
        let due = match blocking(move || store.due(now, threshold)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "could not read due work");
                continue;
            }
        };
        for w in due {
            let Some(dest) = shared.dests.get(&w.destination) else {
                continue;
            };
            if dest.project.paused().is_some() {
                continue;
            }
            if w.count >= threshold || w.oldest_due_at + interval <= now {
                dest.project.enqueue(WorkKey {
                    audience: w.audience,
                    direction: w.direction,
                    destination: w.destination.clone(),
                });
            }
        }
        if tokio::time::Instant::now() >= next_compact {
            next_compact = tokio::time::Instant::now() + compact_every;
            let store = shared.store.clone();
            let bounds = shared.retention.bounds();
            match blocking(move || store.compact(&bounds, now_ms())).await {
                Ok(stats) => tracing::debug!(?stats, "store compacted"),
                Err(e) => tracing::warn!(error = %e, "compaction failed"),
            }
        }
        if last_persist.elapsed() >= Duration::from_secs(5) {
            last_persist = tokio::time::Instant::now();
            persist_rates(&shared).await;
        }
    }
}

/// Writes the rates found from 429s to the store.
pub(crate) async fn persist_rates(shared: &Shared) {
    for p in &shared.projects {
        if p.fixed_rate {
            continue;
        }
        let (rate, slow) = p.limiter.rate().await;
        let v = serde_json::json!({"rate": rate, "settled": !slow});
        let store = shared.store.clone();
        let key = p.rate_key.clone();
        if let Err(e) = blocking(move || store.kv_set(RATE_NS, &key, Some(&v))).await {
            tracing::warn!(error = %e, "could not persist the rate found");
        }
    }
}

/// Takes queued audiences round-robin, claims one request's worth of rows each, and starts a
/// job for it when a concurrency permit is free.
pub(crate) async fn worker(shared: Arc<Shared>, project: Arc<Project>) {
    loop {
        if stopping(&shared) {
            return;
        }
        if project.paused().is_some() {
            project.ready.lock().queue.clear();
            project.ready.lock().queued.clear();
            project.notify.notified().await;
            continue;
        }
        let Some(key) = project.pop() else {
            let notified = project.notify.notified();
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        };
        let Ok(permit) = project.permits.clone().acquire_owned().await else {
            return;
        };
        let Some(dest) = shared.dests.get(&key.destination).cloned() else {
            continue;
        };
        let limit = dest.settings.batch.max_subscribers.max(1);
        let store = shared.store.clone();
        let (aid, dir) = (key.audience, key.direction);
        let rows = match blocking(move || store.claim(aid, dir, now_ms(), limit)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not claim rows");
                continue;
            }
        };
        if rows.is_empty() {
            continue;
        }
        if rows.len() == limit {
            // More may be due: back of the line, so other lists get their turn first.
            project.enqueue(key.clone());
        }
        shared.inflight.fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        tokio::spawn(async move {
            run_job(&shared2, &dest, key.audience, key.direction, rows).await;
            shared2.inflight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

fn request_id() -> String {
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("req-{:x}-{n}", now_ms())
}

fn refs(rows: &[ClaimedRow], idx: &[usize]) -> Vec<RowRef> {
    idx.iter()
        .filter_map(|&i| rows.get(i))
        .map(|r| r.row.clone())
        .collect()
}

/// What became of a job's rows, recorded in the store.
struct Recorder<'a> {
    shared: &'a Shared,
}

impl Recorder<'_> {
    async fn confirm(&self, rows: Vec<RowRef>, request_id: String) {
        if rows.is_empty() {
            return;
        }
        let back = rows.clone();
        let store = self.shared.store.clone();
        let now = now_ms();
        match blocking(move || store.confirm(&rows, &request_id, now)).await {
            Ok(c) => self
                .shared
                .stats
                .delivered(c.iter().filter(|x| **x).count() as u64),
            Err(e) => {
                tracing::error!(error = %e, "could not record delivered rows");
                self.release(back).await;
            }
        }
    }

    async fn skip(&self, rows: Vec<RowRef>, code: ReasonCode, reason: String, req: Option<String>) {
        if rows.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        let now = now_ms();
        let c = code.as_str();
        let back = rows.clone();
        match blocking(move || store.settle_skipped(&rows, c, &reason, req.as_deref(), now)).await {
            Ok(done) => self
                .shared
                .stats
                .skipped(c, done.iter().filter(|x| **x).count() as u64),
            Err(e) => {
                tracing::error!(error = %e, "could not record skipped rows");
                self.release(back).await;
            }
        }
    }

    async fn reject(&self, rows: Vec<RowRef>, code: ReasonCode, reason: String) {
        if rows.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        let now = now_ms();
        let c = code.as_str();
        let back = rows.clone();
        match blocking(move || store.reject(&rows, c, &reason, now)).await {
            Ok(done) => self
                .shared
                .stats
                .rejected(c, done.iter().filter(|x| **x).count() as u64),
            Err(e) => {
                tracing::error!(error = %e, "could not record rejected rows");
                self.release(back).await;
            }
        }
    }

    async fn retry(&self, rows: Vec<RowRef>, delay: Duration, reason: String) {
        if rows.is_empty() {
            return;
        }
        self.shared.stats.retries(rows.len() as u64);
        let store = self.shared.store.clone();
        let now = now_ms();
        let next = now + delay.as_millis() as Millis;
        let back = rows.clone();
        if let Err(e) =
            blocking(move || store.retry(&rows, next, ReasonCode::Transient.as_str(), &reason, now))
                .await
        {
            tracing::error!(error = %e, "could not record a retry");
            self.release(back).await;
        }
    }

    async fn release(&self, rows: Vec<RowRef>) {
        if rows.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        if let Err(e) = blocking(move || store.release(&rows)).await {
            tracing::error!(error = %e, "could not release rows");
        }
    }
}

/// Exponential backoff with jitter: between half and all of `base * 2^(attempt-1)`, capped.
fn backoff(shared: &Shared, attempt: i64) -> Duration {
    let base = shared.delivery.backoff_base_ms.max(1);
    let cap = shared.delivery.backoff_cap_ms.max(base);
    let exp = base
        .saturating_mul(1u64 << attempt.clamp(1, 30).saturating_sub(1))
        .min(cap);
    let factor: f64 = rand::thread_rng().gen_range(0.5..=1.0);
    Duration::from_millis(((exp as f64) * factor) as u64)
}

/// Resolves the audience's list: `(list id, created by this service)`.
async fn resolve_list(
    shared: &Shared,
    dest: &Dest,
    audience: &store::Audience,
) -> Result<(i64, bool), ListError> {
    let key = audience.audience_key.clone();
    let binding = dest.settings.audience(&key).and_then(|a| a.list.as_ref());
    if binding.is_none()
        && let Some(old) = refused_list(shared, &dest.name, &key).await
    {
        // on_missing_list = "reject" refused a new list before (perhaps before a restart):
        // only an operator binding lifts it.
        return Err(ListError::Missing {
            audience_key: key,
            list_id: old,
            why: "on_missing_list = \"reject\" forbids creating a new one; bind the audience to a list",
        });
    }
    let hint = shared.list_hint(&dest.name, &key);
    let resolved = dest
        .resolver
        .resolve(AudienceRef {
            audience_key: &key,
            binding,
            list_hint: hint,
        })
        .await?;
    let created = resolved.created_here
        || (audience.list_created && audience.list_id == Some(resolved.list_id));
    if resolved.origin == ListOrigin::Created {
        // Remember when, so that the grace period survives a restart.
        let store = shared.store.clone();
        let id = resolved.list_id.to_string();
        let now = serde_json::Value::from(now_ms());
        let _ = blocking(move || store.kv_set(CREATED_NS, &id, Some(&now))).await;
    }
    // Re-fetch: the resolver may have stored the mapping meanwhile.
    let store = shared.store.clone();
    let aid = audience.id;
    let current = blocking(move || store.audience(aid)).await.ok();
    let before = current.as_ref().and_then(|a| a.list_id);
    let stored_created = current.as_ref().is_some_and(|a| a.list_created);
    if before != Some(resolved.list_id) || stored_created != created {
        let store = shared.store.clone();
        let list = resolved.list_id;
        let _ = blocking(move || store.set_list(aid, Some(list), created)).await;
    }
    // A different list than the one the audience used before (re-bound by the operator):
    // everyone who should be in it must be sent again.
    if let Some(old) = audience.list_id
        && old != resolved.list_id
    {
        let store = shared.store.clone();
        let n = blocking(move || store.mark_in_dirty(aid, now_ms()))
            .await
            .unwrap_or(0);
        shared.warn(format!(
            "destination {}: audience {key} moved from list {old} to list {}; {n} members will be subscribed again",
            dest.name, resolved.list_id
        ));
    }
    Ok((resolved.list_id, created))
}

/// Is `list_id` a list this service created within the grace period? (Survives restarts,
/// unlike the resolver's memory.)
async fn within_grace(shared: &Shared, dest: &Dest, list_id: i64) -> Option<Duration> {
    if let InvalidListVerdict::RetryAfter(d) = dest.resolver.invalid_list_id(list_id) {
        return Some(d.min(grace_step(shared)));
    }
    let store = shared.store.clone();
    let id = list_id.to_string();
    let at = blocking(move || store.kv_get(CREATED_NS, &id))
        .await
        .ok()
        .flatten()?
        .as_i64()?;
    let age = now_ms() - at;
    (age >= 0 && (age as u64) < shared.delivery.new_list_grace_ms).then(|| grace_step(shared))
}

fn grace_step(shared: &Shared) -> Duration {
    Duration::from_millis((shared.delivery.new_list_grace_ms / 10).clamp(50, 2000))
}

/// Sends one claim of rows of one audience and direction, and records the outcomes.
async fn run_job(
    shared: &Shared,
    dest: &Dest,
    audience_id: AudienceId,
    direction: Direction,
    rows: Vec<ClaimedRow>,
) {
    let rec = Recorder { shared };
    let all: Vec<usize> = (0..rows.len()).collect();
    let store = shared.store.clone();
    let audience = match blocking(move || store.audience(audience_id)).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "could not read the audience");
            rec.release(refs(&rows, &all)).await;
            return;
        }
    };
    let project = &dest.project;
    let (mut list_id, list_created) = match resolve_list(shared, dest, &audience).await {
        Ok(l) => l,
        Err(e) => {
            list_error(shared, dest, &rows, &all, &e).await;
            return;
        }
    };

    // Rebuild the changes the planner needs from the ledger rows.
    let project_type = dest.settings.project_type;
    let plan_dir = match direction {
        Direction::In => PlanDirection::Subscribe,
        Direction::Out => PlanDirection::Unsubscribe,
    };
    let mut changes: Vec<MembershipChange> = Vec::with_capacity(rows.len());
    let mut origin: Vec<usize> = Vec::with_capacity(rows.len());
    let mut never_sent = Vec::new();
    let mut bad = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        // Design decision 2: an exit for someone never subscribed to a list this service
        // created needs no request.
        if direction == Direction::Out && list_created && !r.subscribe_sent {
            never_sent.push(i);
            continue;
        }
        let identity = match Identity::new(r.email.as_deref(), r.user_id.as_deref(), project_type) {
            Ok(id) => id,
            Err(e) => {
                bad.push((i, e.reason()));
                continue;
            }
        };
        let data_fields = match &r.data_fields {
            Some(serde_json::Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        changes.push(MembershipChange {
            message_id: r.row.message_id.clone(),
            timestamp: Timestamp::from_unix_millis(0),
            received_order: i as u64,
            audience_key: audience.audience_key.clone(),
            list_hint: None,
            direction: plan_dir,
            identity,
            data_fields,
            audience_settings: None,
        });
        origin.push(i);
    }
    rec.skip(
        refs(&rows, &never_sent),
        ReasonCode::ExitNeverSent,
        "exit for a user never subscribed to this list, which this service created".into(),
        None,
    )
    .await;
    for (i, reason) in bad {
        rec.reject(refs(&rows, &[i]), reason.code, reason.message)
            .await;
    }
    if changes.is_empty() {
        return;
    }
    let event_settings: Option<EventAudienceSettings> = audience
        .event_settings
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let (effective, warnings) = dest
        .settings
        .effective(&audience.audience_key, event_settings.as_ref());
    for w in warnings {
        tracing::debug!("{w}");
    }
    let items: Vec<PlanItem<'_>> = changes
        .iter()
        .map(|c| PlanItem {
            list_id,
            settings: effective,
            change: c,
        })
        .collect();
    let planned = plan(&dest.plan_config, &items);
    // Map plan indices back to claimed rows.
    let to_rows = |idx: &[usize]| -> Vec<RowRef> {
        idx.iter().map(|&i| rows[origin[i]].row.clone()).collect()
    };
    for (i, outcome) in planned.settled {
        settle(&rec, to_rows(&[i]), outcome, None).await;
    }
    let mut queue: VecDeque<PlannedRequest> = planned.requests.into();
    let mut relocated = false;
    while let Some(mut req) = queue.pop_front() {
        if req.list_id != list_id {
            req = with_list_id(req, list_id);
        }
        let req_rows = to_rows(&req.changes);
        if project.paused().is_some() || stopping(shared) {
            rec.release(req_rows).await;
            continue;
        }
        if req.direction == PlanDirection::Subscribe {
            // Recorded before the request leaves (design decision 2).
            let store = shared.store.clone();
            let r = req_rows.clone();
            if let Err(e) = blocking(move || store.mark_subscribe_sent(&r)).await {
                tracing::error!(error = %e, "could not record subscribes as sent");
                rec.release(req_rows).await;
                continue;
            }
        }
        let waiting = std::time::Instant::now();
        project.limiter.acquire().await;
        shared.stats.rate_wait(waiting.elapsed());
        let (op, endpoint) = match req.direction {
            PlanDirection::Subscribe => (MembershipOp::Subscribe, "subscribe"),
            PlanDirection::Unsubscribe => (MembershipOp::Unsubscribe, "unsubscribe"),
        };
        let sending = std::time::Instant::now();
        let answer = project
            .client
            .membership_raw(op, Bytes::from(req.body.clone()))
            .await;
        shared.stats.request_on(
            endpoint,
            answer.as_ref().ok().map(|r| r.status),
            sending.elapsed(),
        );
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
        let cap = Duration::from_millis(shared.delivery.retry_after_max_ms);
        let retry_after = retry_after.map(|d| d.min(cap));
        match verdict {
            Verdict::Completed { results, .. } => {
                let rid = request_id();
                let mut delivered = Vec::new();
                for (i, outcome) in results {
                    match outcome {
                        Outcome::Delivered => delivered.push(i),
                        other => settle(&rec, to_rows(&[i]), other, Some(rid.clone())).await,
                    }
                }
                rec.confirm(to_rows(&delivered), rid).await;
            }
            Verdict::Retryable { status, message } => {
                let attempts = req
                    .changes
                    .iter()
                    .map(|&i| rows[origin[i]].attempts)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let delay = if status == 429 {
                    project.limiter.on_rate_limited(retry_after).await;
                    // The limiter adapts the pace; the rows only wait a little.
                    retry_after.unwrap_or_else(|| backoff(shared, 1))
                } else {
                    if let Some(d) = retry_after {
                        project.limiter.hold_for(d).await;
                    }
                    retry_after.unwrap_or_else(|| backoff(shared, attempts))
                };
                let msg = if status == 0 {
                    message
                } else {
                    format!("Iterable answered {status}: {message}")
                };
                tracing::debug!(list_id, status, ?delay, "retryable answer");
                rec.retry(req_rows, delay, msg).await;
            }
            Verdict::AuthFailed { status, message } => {
                project.pause(format!(
                    "Iterable refused the API key (HTTP {status}: {message}); fix the key and restart or resume"
                ));
                rec.release(req_rows).await;
            }
            Verdict::ListMissing { message } => {
                if let Some(step) = within_grace(shared, dest, list_id).await {
                    tracing::debug!(list_id, ?step, "new list not usable yet");
                    rec.retry(
                        req_rows,
                        step,
                        format!("new list {list_id} not visible yet: {message}"),
                    )
                    .await;
                    continue;
                }
                if relocated {
                    let e = ListError::Missing {
                        audience_key: audience.audience_key.clone(),
                        list_id,
                        why: "it disappeared again right after being replaced",
                    };
                    list_error_rows(shared, dest, req_rows, &e).await;
                    continue;
                }
                let binding = dest
                    .settings
                    .audience(&audience.audience_key)
                    .and_then(|a| a.list.as_ref());
                let aref = AudienceRef {
                    audience_key: &audience.audience_key,
                    binding,
                    list_hint: shared.list_hint(&dest.name, &audience.audience_key),
                };
                match dest.resolver.list_missing(aref, list_id).await {
                    Ok(moved) => {
                        let new = moved.list.list_id;
                        let created = moved.list.created_here;
                        let store = shared.store.clone();
                        let _ =
                            blocking(move || store.set_list(audience_id, Some(new), created)).await;
                        if created {
                            let store = shared.store.clone();
                            let id = new.to_string();
                            let now = serde_json::Value::from(now_ms());
                            let _ =
                                blocking(move || store.kv_set(CREATED_NS, &id, Some(&now))).await;
                        }
                        if moved.resend_all_in {
                            let store = shared.store.clone();
                            let n = blocking(move || store.mark_in_dirty(audience_id, now_ms()))
                                .await
                                .unwrap_or(0);
                            shared.warn(format!(
                                "destination {}: list {list_id} of audience {} no longer exists in Iterable; now using list {new}; {n} members will be subscribed again",
                                dest.name, audience.audience_key
                            ));
                        }
                        relocated = true;
                        list_id = new;
                        // Send this request again, to the new list.
                        queue.push_front(with_list_id(req, new));
                    }
                    Err(e) => list_error_rows(shared, dest, req_rows, &e).await,
                }
            }
            Verdict::Split { status, message } => match req.split() {
                Some((left, right)) => {
                    tracing::debug!(status, %message, n = req.changes.len(), "splitting request");
                    queue.push_front(right);
                    queue.push_front(left);
                }
                None => {
                    rec.reject(
                        req_rows,
                        ReasonCode::IterableRejected,
                        format!("Iterable answered {status}: {message}"),
                    )
                    .await
                }
            },
            Verdict::RejectAll { reason, .. } => {
                rec.reject(req_rows, reason.code, reason.message).await;
            }
        }
    }
}

async fn settle(rec: &Recorder<'_>, rows: Vec<RowRef>, outcome: Outcome, req: Option<String>) {
    match outcome {
        Outcome::Delivered => rec.confirm(rows, req.unwrap_or_else(request_id)).await,
        Outcome::Skipped { reason } => rec.skip(rows, reason.code, reason.message, req).await,
        Outcome::Rejected { reason } => rec.reject(rows, reason.code, reason.message).await,
        Outcome::Retrying { reason, .. } => {
            rec.retry(rows, Duration::from_secs(1), reason.message)
                .await
        }
        Outcome::Pending => rec.release(rows).await,
    }
}

async fn list_error(
    shared: &Shared,
    dest: &Dest,
    rows: &[ClaimedRow],
    idx: &[usize],
    e: &ListError,
) {
    list_error_rows(shared, dest, refs(rows, idx), e).await;
}

/// kv namespace of audiences whose vanished list may not be re-created.
const REFUSED_NS: &str = "list_refused";

async fn refused_list(shared: &Shared, destination: &str, audience_key: &str) -> Option<i64> {
    let store = shared.store.clone();
    let k = format!("{destination}\n{audience_key}");
    blocking(move || store.kv_get(REFUSED_NS, &k))
        .await
        .ok()
        .flatten()
        .and_then(|v| v.as_i64())
}

/// A list could not be resolved: retry, pause or reject, by the failure's class.
async fn list_error_rows(shared: &Shared, dest: &Dest, rows: Vec<RowRef>, e: &ListError) {
    let rec = Recorder { shared };
    if let (
        ListError::Missing {
            audience_key,
            list_id,
            ..
        },
        OnMissingList::Reject,
    ) = (e, dest.resolver.settings().on_missing_list)
    {
        let store = shared.store.clone();
        let k = format!("{}\n{audience_key}", dest.name);
        let v = serde_json::Value::from(*list_id);
        let _ = blocking(move || store.kv_set(REFUSED_NS, &k, Some(&v))).await;
    }
    match e.class() {
        ErrorClass::Retryable => {
            let attempts = 1;
            rec.retry(rows, backoff(shared, attempts), e.to_string())
                .await
        }
        ErrorClass::Auth => {
            dest.project
                .pause(format!("Iterable refused the API key: {e}"));
            rec.release(rows).await;
        }
        _ => {
            let reason = e.reason();
            rec.reject(rows, reason.code, reason.message).await;
        }
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
