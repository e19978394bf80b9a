//! Which Iterable list an audience uses (design decision 7, *Which list*), and what to do when
//! that list does not answer.
//!
//! Resolution order: the operator's binding (list id or list name), else the stored mapping,
//! else the event's `external_audience_id` when that list exists, else the one Standard list
//! named exactly the audience key (several → "ambiguous list name"), else a new list with that
//! name. Concurrent first events of one audience create one list (single flight per audience).
//! `GET /api/lists` can be multi-megabyte (peers T3), so its answer is cached briefly and shared.
//!
//! A list this resolver just created may answer `invalidListId` for a while (peers T2,
//! iterable-api.md §7 G1): it is retried within a bounded grace period, then counts as
//! missing. A missing list drops the stored mapping and the audience is resolved again once
//! (`on_missing_list`), and the caller must re-send every identity whose desired state is `in`
//! (peers T11).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iterable::{ErrorClass, GetListsResponse, ListApi, ListType};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::model::{Reason, ReasonCode};

// ---------------------------------------------------------------------------------------------
// Time, injected so tests can run the 30-second grace period in no time.

/// A monotonic clock that can also sleep.
pub trait Clock: Send + Sync + 'static {
    /// Time elapsed since an arbitrary, fixed origin.
    fn now(&self) -> Duration;
    /// Wait for `d`.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The real clock (`Instant` and `tokio::time::sleep`).
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock for tests: time moves only when someone sleeps or calls [`ManualClock::advance`];
/// a sleep returns at once after moving time forward.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Move time forward.
    pub fn advance(&self, d: Duration) {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(n, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and the stored mapping.

pub use crate::settings::ListBinding;

fn describe_binding(b: &ListBinding) -> String {
    match b {
        ListBinding::Id(id) => format!("list {id}"),
        ListBinding::Name(n) => format!("the list named {n:?}"),
    }
}

/// What to do when an audience's list has disappeared (design decision 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingList {
    /// Resolve again, creating a new list if none is found (the default).
    #[default]
    Recreate,
    /// Resolve again without creating; reject the audience's events if none is found.
    Reject,
}

/// Settings of list resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSettings {
    /// What to do when a list disappears.
    pub on_missing_list: OnMissingList,
    /// How long a `GET /api/lists` answer is trusted (default 60 s).
    pub cache_ttl: Duration,
    /// A lookup that misses refetches `GET /api/lists` only when the cached copy is at least
    /// this old (default 5 s), so a burst of misses costs one fetch.
    pub refresh_after_miss: Duration,
    /// How long a list this resolver created may answer `invalidListId` before it counts as
    /// missing (default 30 s).
    pub new_list_grace: Duration,
    /// The first wait after a new list answered `invalidListId` (default 2 s); later waits
    /// grow with the list's age, up to 10 s.
    pub new_list_first_retry: Duration,
    /// Description given to created lists.
    pub created_list_description: Option<String>,
}

impl Default for ListSettings {
    fn default() -> Self {
        ListSettings {
            on_missing_list: OnMissingList::Recreate,
            cache_ttl: Duration::from_secs(60),
            refresh_after_miss: Duration::from_secs(5),
            new_list_grace: Duration::from_secs(30),
            new_list_first_retry: Duration::from_secs(2),
            created_list_description: None,
        }
    }
}

/// Where audience → list mappings are remembered. In memory here; the ledger persists them.
pub trait ListMappingStore: Send + Sync + 'static {
    /// The list remembered for an audience.
    fn get(&self, audience_key: &str) -> Option<i64>;
    /// Remember a list for an audience (replacing any other).
    fn put(&self, audience_key: &str, list_id: i64);
    /// Forget the audience's list if it is still `list_id`.
    fn remove(&self, audience_key: &str, list_id: i64);
}

/// A [`ListMappingStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryMappingStore {
    map: Mutex<HashMap<String, i64>>,
}

impl MemoryMappingStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ListMappingStore for MemoryMappingStore {
    fn get(&self, audience_key: &str) -> Option<i64> {
        self.map.lock().get(audience_key).copied()
    }

    fn put(&self, audience_key: &str, list_id: i64) {
        self.map.lock().insert(audience_key.to_owned(), list_id);
    }

    fn remove(&self, audience_key: &str, list_id: i64) {
        let mut map = self.map.lock();
        if map.get(audience_key) == Some(&list_id) {
            map.remove(audience_key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results.

/// What a resolution needs to know about the audience.
#[derive(Debug, Clone, Copy)]
pub struct AudienceRef<'a> {
    /// The audience key; also the name of a list found or created by name.
    pub audience_key: &'a str,
    /// The operator's binding, if any.
    pub binding: Option<&'a ListBinding>,
    /// The event's `external_audience_id`, already numeric.
    pub list_hint: Option<i64>,
}

/// How a list was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOrigin {
    /// The operator's binding.
    Binding,
    /// The stored mapping.
    Stored,
    /// The event's `external_audience_id`.
    EventListId,
    /// The one Standard list named like the audience.
    ExistingName,
    /// Created by this resolver.
    Created,
}

/// The list an audience uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedList {
    /// The list id.
    pub list_id: i64,
    /// How it was found.
    pub origin: ListOrigin,
    /// True when this service created the list (so nobody was ever subscribed to it except
    /// through this service).
    pub created_here: bool,
}

/// Why an audience has no usable list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListError {
    /// Several Standard lists carry the name; the operator must bind one.
    #[error(
        "ambiguous list name: {count} Standard lists are named {name:?} (ids {ids}); bind the audience to one list id",
        count = ids.len(),
        ids = join_ids(ids)
    )]
    Ambiguous {
        /// The name.
        name: String,
        /// The lists carrying it.
        ids: Vec<i64>,
    },
    /// The operator's binding names no existing Standard list.
    #[error(
        "the audience is bound to {}, which does not exist in Iterable",
        describe_binding(binding)
    )]
    BindingNotFound {
        /// The binding.
        binding: ListBinding,
    },
    /// The list disappeared and may not be re-created (or disappeared again).
    #[error("list {list_id} of audience {audience_key:?} no longer exists in Iterable and {why}")]
    Missing {
        /// The audience.
        audience_key: String,
        /// The vanished list.
        list_id: i64,
        /// Why it is not re-created.
        why: &'static str,
    },
    /// Iterable could not be asked (transport, auth, other status).
    #[error("could not resolve the list: {0}")]
    Api(#[from] iterable::Error),
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ListError {
    /// The class of the failure: API errors keep theirs; the others reject the events.
    pub fn class(&self) -> ErrorClass {
        match self {
            ListError::Api(e) => e.class(),
            _ => ErrorClass::Reject,
        }
    }

    /// The reason to give each affected event when the failure is final.
    pub fn reason(&self) -> Reason {
        let code = match self {
            ListError::Ambiguous { .. } => ReasonCode::AmbiguousList,
            ListError::BindingNotFound { .. } | ListError::Missing { .. } => {
                ReasonCode::ListMissing
            }
            ListError::Api(e) if e.class().is_retryable() => ReasonCode::Transient,
            ListError::Api(_) => ReasonCode::IterableRejected,
        };
        Reason::new(code, self.to_string())
    }
}

/// What to do after a list answered `invalidListId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidListVerdict {
    /// The list was created here moments ago: try again after this delay.
    RetryAfter(Duration),
    /// The list counts as missing: call [`ListResolver::list_missing`].
    Missing,
}

/// The new list of an audience whose list disappeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocated {
    /// The vanished list.
    pub old_list_id: i64,
    /// Where the audience's requests go now.
    pub list: ResolvedList,
    /// True the first time this disappearance is reported: every identity whose desired state
    /// is `in` must be subscribed again to the new list. False when a concurrent request
    /// already reported it (the re-send is under way).
    pub resend_all_in: bool,
}

// ---------------------------------------------------------------------------------------------
// The cached project lists.

#[derive(Debug, Default)]
struct ListIndex {
    /// Standard lists by id.
    standard: HashSet<i64>,
    /// Standard list ids by exact name.
    by_name: HashMap<String, Vec<i64>>,
}

impl ListIndex {
    fn from_response(resp: GetListsResponse) -> Self {
        let mut index = ListIndex::default();
        for l in resp.lists {
            if l.list_type == ListType::Standard {
                index.standard.insert(l.id);
                index.by_name.entry(l.name).or_default().push(l.id);
            }
        }
        for ids in index.by_name.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
        index
    }

    fn add(&mut self, id: i64, name: &str) {
        if self.standard.insert(id) {
            self.by_name.entry(name.to_owned()).or_default().push(id);
        }
    }
}

#[derive(Debug)]
struct Cached {
    fetched_at: Duration,
    index: ListIndex,
}

/// Lookups answered from the cached index.
enum Lookup<T> {
    Found(T),
    NotFound,
}

// ---------------------------------------------------------------------------------------------
// The resolver.

/// Resolves audiences to lists for one Iterable project.
pub struct ListResolver<A: ListApi> {
    api: Arc<A>,
    store: Arc<dyn ListMappingStore>,
    clock: Arc<dyn Clock>,
    settings: ListSettings,
    cache: Mutex<Option<Cached>>,
    /// Single flight for `GET /api/lists`.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Single flight per audience.
    audience_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Lists created here, with their creation time and name.
    created: Mutex<HashMap<i64, (Duration, String)>>,
    /// Lists known to be gone; never handed out again.
    dead: Mutex<HashSet<i64>>,
    /// Audiences whose list vanished under `on_missing_list = reject` (with that list): never
    /// create for them.
    no_create: Mutex<HashMap<String, i64>>,
    lists_fetches: AtomicU64,
    lists_created: AtomicU64,
}

impl<A: ListApi> fmt::Debug for ListResolver<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListResolver")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<A: ListApi> ListResolver<A> {
    /// A resolver over `api`, remembering mappings in `store`.
    pub fn new(
        api: Arc<A>,
        store: Arc<dyn ListMappingStore>,
        clock: Arc<dyn Clock>,
        settings: ListSettings,
    ) -> Self {
        ListResolver {
            api,
            store,
            clock,
            settings,
            cache: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            audience_locks: Mutex::new(HashMap::new()),
            created: Mutex::new(HashMap::new()),
            dead: Mutex::new(HashSet::new()),
            no_create: Mutex::new(HashMap::new()),
            lists_fetches: AtomicU64::new(0),
            lists_created: AtomicU64::new(0),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &ListSettings {
        &self.settings
    }

    /// How many times `GET /api/lists` was called.
    pub fn lists_fetches(&self) -> u64 {
        self.lists_fetches.load(Ordering::Relaxed)
    }

    /// How many lists this resolver created.
    pub fn lists_created(&self) -> u64 {
        self.lists_created.load(Ordering::Relaxed)
    }

    /// True when this resolver created `list_id`.
    pub fn created_here(&self, list_id: i64) -> bool {
        self.created.lock().contains_key(&list_id)
    }

    /// The list an audience uses, creating it when nothing else applies.
    pub async fn resolve(&self, audience: AudienceRef<'_>) -> Result<ResolvedList, ListError> {
        // Fast path: a binding by id, or a remembered list.
        if let Some(ListBinding::Id(id)) = audience.binding {
            return self.bound_id(audience.audience_key, *id);
        }
        if audience.binding.is_none()
            && let Some(id) = self.store.get(audience.audience_key)
            && !self.dead.lock().contains(&id)
        {
            return Ok(self.resolved(id, ListOrigin::Stored));
        }
        let lock = self.audience_lock(audience.audience_key);
        let _guard = lock.lock().await;
        let vanished = self.no_create.lock().get(audience.audience_key).copied();
        self.resolve_locked(audience, vanished).await
    }

    fn bound_id(&self, audience_key: &str, id: i64) -> Result<ResolvedList, ListError> {
        if self.dead.lock().contains(&id) {
            return Err(ListError::Missing {
                audience_key: audience_key.to_owned(),
                list_id: id,
                why: "the audience is bound to it; bind it to an existing list",
            });
        }
        Ok(self.resolved(id, ListOrigin::Binding))
    }

    fn resolved(&self, list_id: i64, origin: ListOrigin) -> ResolvedList {
        ResolvedList {
            list_id,
            origin,
            created_here: origin == ListOrigin::Created || self.created_here(list_id),
        }
    }

    fn audience_lock(&self, audience_key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.audience_locks
            .lock()
            .entry(audience_key.to_owned())
            .or_default()
            .clone()
    }

    /// The resolution order, under the audience's lock.
    /// `vanished` is the list that disappeared under `on_missing_list = reject`, if any: then
    /// nothing is created.
    async fn resolve_locked(
        &self,
        audience: AudienceRef<'_>,
        vanished: Option<i64>,
    ) -> Result<ResolvedList, ListError> {
        let key = audience.audience_key;
        match audience.binding {
            Some(ListBinding::Id(id)) => return self.bound_id(key, *id),
            Some(ListBinding::Name(name)) => {
                return match self.lookup_name(name).await? {
                    Lookup::Found(id) => Ok(self.resolved(id, ListOrigin::Binding)),
                    Lookup::NotFound => Err(ListError::BindingNotFound {
                        binding: ListBinding::Name(name.clone()),
                    }),
                };
            }
            None => {}
        }
        // Another event of this audience may have resolved it while we waited for the lock.
        if let Some(id) = self.store.get(key)
            && !self.dead.lock().contains(&id)
        {
            return Ok(self.resolved(id, ListOrigin::Stored));
        }
        if let Some(hint) = audience.list_hint
            && self.list_exists(hint).await?
        {
            self.store.put(key, hint);
            return Ok(self.resolved(hint, ListOrigin::EventListId));
        }
        if let Lookup::Found(id) = self.lookup_name(key).await? {
            self.store.put(key, id);
            return Ok(self.resolved(id, ListOrigin::ExistingName));
        }
        if let Some(list_id) = vanished {
            return Err(ListError::Missing {
                audience_key: key.to_owned(),
                list_id,
                why: "on_missing_list = \"reject\" forbids creating a new one",
            });
        }
        self.create(key).await
    }

    async fn create(&self, name: &str) -> Result<ResolvedList, ListError> {
        let id = match self.api.create_list(name).await {
            Ok(id) => id,
            Err(e) => {
                // No answer, or a 5xx: Iterable may have created the list all the same. Drop
                // the cached lists so that the next attempt looks the name up afresh instead
                // of creating a second list with the same name.
                if e.class().is_retryable() {
                    self.invalidate_cache();
                }
                return Err(e.into());
            }
        };
        self.lists_created.fetch_add(1, Ordering::Relaxed);
        tracing::info!(audience = name, list_id = id, "created Iterable list");
        self.created
            .lock()
            .insert(id, (self.clock.now(), name.to_owned()));
        // `GET /api/lists` may not show the new list for a while (peers T2): add it ourselves.
        if let Some(c) = self.cache.lock().as_mut() {
            c.index.add(id, name);
        }
        self.store.put(name, id);
        Ok(self.resolved(id, ListOrigin::Created))
    }

    /// Does a Standard list with this id exist (and is it not known dead)?
    async fn list_exists(&self, id: i64) -> Result<bool, ListError> {
        if self.dead.lock().contains(&id) {
            return Ok(false);
        }
        if self.created_here(id) {
            return Ok(true);
        }
        let found = self
            .with_index(|index| {
                if index.standard.contains(&id) {
                    Lookup::Found(())
                } else {
                    Lookup::NotFound
                }
            })
            .await?;
        Ok(matches!(found, Lookup::Found(())))
    }

    /// The one live Standard list with this exact name.
    async fn lookup_name(&self, name: &str) -> Result<Lookup<i64>, ListError> {
        let dead = self.dead.lock().clone();
        let ids = self
            .with_index(|index| {
                let ids: Vec<i64> = index
                    .by_name
                    .get(name)
                    .map(|ids| ids.iter().copied().filter(|i| !dead.contains(i)).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    Lookup::NotFound
                } else {
                    Lookup::Found(ids)
                }
            })
            .await?;
        match ids {
            Lookup::NotFound => Ok(Lookup::NotFound),
            Lookup::Found(ids) if ids.len() == 1 => Ok(Lookup::Found(ids[0])),
            Lookup::Found(ids) => Err(ListError::Ambiguous {
                name: name.to_owned(),
                ids,
            }),
        }
    }

    /// Answer a lookup from the cached index; on a miss, refetch once if the copy is old
    /// enough, so that a burst of misses costs at most one `GET /api/lists`.
    async fn with_index<T>(
        &self,
        look: impl Fn(&ListIndex) -> Lookup<T>,
    ) -> Result<Lookup<T>, ListError> {
        let now = self.clock.now();
        let age = {
            let cache = self.cache.lock();
            match cache.as_ref() {
                Some(c) if now.saturating_sub(c.fetched_at) < self.settings.cache_ttl => {
                    if let Lookup::Found(t) = look(&c.index) {
                        return Ok(Lookup::Found(t));
                    }
                    Some(now.saturating_sub(c.fetched_at))
                }
                _ => None,
            }
        };
        if let Some(age) = age
            && age < self.settings.refresh_after_miss
        {
            return Ok(Lookup::NotFound);
        }
        self.refresh(now).await?;
        let cache = self.cache.lock();
        Ok(cache.as_ref().map_or(Lookup::NotFound, |c| look(&c.index)))
    }

    async fn refresh(&self, asked_at: Duration) -> Result<(), ListError> {
        let _guard = self.fetch_lock.lock().await;
        // Someone else fetched while we waited.
        if let Some(c) = self.cache.lock().as_ref()
            && c.fetched_at >= asked_at
        {
            return Ok(());
        }
        let fetched_at = self.clock.now();
        self.lists_fetches.fetch_add(1, Ordering::Relaxed);
        let resp = self.api.get_lists().await?;
        let mut index = ListIndex::from_response(resp);
        for (id, (_, name)) in self.created.lock().iter() {
            index.add(*id, name);
        }
        *self.cache.lock() = Some(Cached { fetched_at, index });
        Ok(())
    }

    /// Forget the cached `GET /api/lists` answer.
    pub fn invalidate_cache(&self) {
        *self.cache.lock() = None;
    }

    /// Decide what an `invalidListId` answer for `list_id` means: retry while a list created
    /// here is younger than the grace period, else missing.
    pub fn invalid_list_id(&self, list_id: i64) -> InvalidListVerdict {
        let created_at = self.created.lock().get(&list_id).map(|(t, _)| *t);
        let Some(created_at) = created_at else {
            return InvalidListVerdict::Missing;
        };
        let age = self.clock.now().saturating_sub(created_at);
        if age >= self.settings.new_list_grace {
            return InvalidListVerdict::Missing;
        }
        // The first wait, growing with the list's age, never past the end of the grace period.
        let step = self
            .settings
            .new_list_first_retry
            .max(age / 2)
            .min(Duration::from_secs(10));
        InvalidListVerdict::RetryAfter(step.min(self.settings.new_list_grace - age))
    }

    /// `list_id` of this audience is gone: drop the mapping and resolve again once. On
    /// success the caller must re-send every identity whose desired state is `in`.
    pub async fn list_missing(
        &self,
        audience: AudienceRef<'_>,
        list_id: i64,
    ) -> Result<Relocated, ListError> {
        let key = audience.audience_key;
        let lock = self.audience_lock(key);
        let _guard = lock.lock().await;
        // Another request of this audience may have handled the same disappearance already.
        let first_time = self.dead.lock().insert(list_id);
        self.store.remove(key, list_id);
        if first_time {
            tracing::warn!(
                audience = key,
                list_id,
                "Iterable list no longer exists; its mapping was dropped"
            );
            self.invalidate_cache();
            if self.settings.on_missing_list == OnMissingList::Reject {
                self.no_create.lock().insert(key.to_owned(), list_id);
            }
        }
        let vanished = self.no_create.lock().get(key).copied();
        let list = self.resolve_locked(audience, vanished).await?;
        Ok(Relocated {
            old_list_id: list_id,
            list,
            resend_all_in: first_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use iterable::{Error, ListDetails, MembershipOp, RawResponse, TransportError};

    /// A fake project: lists, a create counter, and an optional delay inside create so that
    /// concurrent resolutions overlap.
    #[derive(Default)]
    struct FakeApi {
        lists: Mutex<Vec<ListDetails>>,
        next_id: AtomicU64,
        gets: AtomicU64,
        creates: AtomicU64,
        /// Create the list, then lose the answer (a connection cut after it was applied).
        cut_after_create: std::sync::atomic::AtomicBool,
    }

    impl FakeApi {
        fn with(lists: &[(i64, &str, ListType)]) -> Arc<Self> {
            let api = FakeApi {
                next_id: AtomicU64::new(1000),
                ..Default::default()
            };
            *api.lists.lock() = lists
                .iter()
                .map(|(id, name, t)| ListDetails {
                    id: *id,
                    name: (*name).to_owned(),
                    created_at: 1,
                    list_type: *t,
                    description: None,
                    is_global_suppression_enabled: None,
                })
                .collect();
            Arc::new(api)
        }
    }

    impl ListApi for FakeApi {
        async fn get_lists(&self) -> Result<GetListsResponse, Error> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            Ok(GetListsResponse {
                lists: self.lists.lock().clone(),
            })
        }

        async fn create_list(&self, name: &str) -> Result<i64, Error> {
            self.creates.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            let id = self.next_id.fetch_add(1, Ordering::SeqCst) as i64;
            if self.cut_after_create.swap(false, Ordering::SeqCst) {
                self.lists.lock().push(ListDetails {
                    id,
                    name: name.to_owned(),
                    created_at: 1,
                    list_type: ListType::Standard,
                    description: None,
                    is_global_suppression_enabled: None,
                });
                return Err(Error::Transport(TransportError::Other(
                    "connection reset".into(),
                )));
            }
            Ok(id)
        }

        async fn membership(
            &self,
            _op: MembershipOp,
            _body: Bytes,
        ) -> Result<RawResponse, TransportError> {
            Err(TransportError::Other("not used".into()))
        }
    }

    fn resolver(
        api: Arc<FakeApi>,
        settings: ListSettings,
    ) -> (ListResolver<FakeApi>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let r = ListResolver::new(
            api,
            Arc::new(MemoryMappingStore::new()),
            clock.clone(),
            settings,
        );
        (r, clock)
    }

    fn aud(key: &str) -> AudienceRef<'_> {
        AudienceRef {
            audience_key: key,
            binding: None,
            list_hint: None,
        }
    }

    // peers T1: an existing list with the audience's name is reused, no POST.
    #[tokio::test]
    async fn existing_list_named_like_the_audience_is_reused_without_creating() {
        let api = FakeApi::with(&[
            (123, "test", ListType::Standard),
            (5, "other", ListType::Standard),
        ]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let got = r.resolve(aud("test")).await.unwrap();
        assert_eq!((got.list_id, got.origin), (123, ListOrigin::ExistingName));
        // Second time: the stored mapping, no second GET.
        let got = r.resolve(aud("test")).await.unwrap();
        assert_eq!((got.list_id, got.origin), (123, ListOrigin::Stored));
        assert_eq!(api.creates.load(Ordering::SeqCst), 0);
        assert_eq!(api.gets.load(Ordering::SeqCst), 1);
    }

    // iterable-api.md §7 G7: only Standard lists count when matching names.
    #[tokio::test]
    async fn dynamic_list_with_the_name_is_not_used() {
        let api = FakeApi::with(&[(9, "vip", ListType::Dynamic)]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let got = r.resolve(aud("vip")).await.unwrap();
        assert_eq!(got.origin, ListOrigin::Created);
        assert!(got.created_here);
        assert_eq!(api.creates.load(Ordering::SeqCst), 1);
    }

    // design decision 7: several Standard lists with the name → ambiguous, nothing created.
    #[tokio::test]
    async fn two_lists_with_the_audience_name_are_ambiguous() {
        let api = FakeApi::with(&[
            (1, "dup", ListType::Standard),
            (2, "dup", ListType::Standard),
        ]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let err = r.resolve(aud("dup")).await.unwrap_err();
        assert_eq!(
            err,
            ListError::Ambiguous {
                name: "dup".into(),
                ids: vec![1, 2]
            }
        );
        assert_eq!(err.reason().code, ReasonCode::AmbiguousList);
        assert!(err.to_string().contains("ambiguous list name"));
        assert_eq!(api.creates.load(Ordering::SeqCst), 0);
        // An operator binding resolves it.
        let b = ListBinding::Id(2);
        let got = r
            .resolve(AudienceRef {
                binding: Some(&b),
                ..aud("dup")
            })
            .await
            .unwrap();
        assert_eq!((got.list_id, got.origin), (2, ListOrigin::Binding));
    }

    // design decision 7: binding by name uses that list; a missing one is an error.
    #[tokio::test]
    async fn binding_by_name_wins_and_must_exist() {
        let api = FakeApi::with(&[
            (7, "Chosen", ListType::Standard),
            (8, "aud", ListType::Standard),
        ]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let b = ListBinding::Name("Chosen".into());
        let got = r
            .resolve(AudienceRef {
                binding: Some(&b),
                ..aud("aud")
            })
            .await
            .unwrap();
        assert_eq!(got.list_id, 7);
        let b = ListBinding::Name("Nope".into());
        let err = r
            .resolve(AudienceRef {
                binding: Some(&b),
                ..aud("aud")
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ListError::BindingNotFound { .. }));
        assert_eq!(api.creates.load(Ordering::SeqCst), 0);
    }

    // design decision 7: the event's list id is used when that list exists, else by name.
    #[tokio::test]
    async fn event_list_id_is_used_only_when_the_list_exists() {
        let api = FakeApi::with(&[(55, "x", ListType::Standard)]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let got = r
            .resolve(AudienceRef {
                list_hint: Some(55),
                ..aud("a1")
            })
            .await
            .unwrap();
        assert_eq!((got.list_id, got.origin), (55, ListOrigin::EventListId));
        let got = r
            .resolve(AudienceRef {
                list_hint: Some(4269566),
                ..aud("a2")
            })
            .await
            .unwrap();
        assert_eq!(got.origin, ListOrigin::Created);
    }

    // issue 3 §6: concurrent first events of one audience create one list.
    #[tokio::test]
    async fn concurrent_first_events_create_one_list() {
        let api = FakeApi::with(&[]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let r = Arc::new(r);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let r = r.clone();
            tasks.push(tokio::spawn(async move {
                r.resolve(aud("new_aud")).await.unwrap().list_id
            }));
        }
        let mut ids = HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap());
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(api.creates.load(Ordering::SeqCst), 1);
        assert_eq!(r.lists_created(), 1);
    }

    // peers T3: many audiences resolved in a burst cost one GET /api/lists.
    #[tokio::test]
    async fn lists_are_fetched_once_for_a_burst_of_lookups() {
        let api = FakeApi::with(&[(1, "a", ListType::Standard), (2, "b", ListType::Standard)]);
        let (r, clock) = resolver(api.clone(), ListSettings::default());
        for key in ["a", "b", "c", "d"] {
            r.resolve(aud(key)).await.unwrap();
        }
        assert_eq!(api.gets.load(Ordering::SeqCst), 1);
        // After the TTL, a lookup fetches again.
        clock.advance(Duration::from_secs(61));
        r.resolve(aud("e")).await.unwrap();
        assert_eq!(api.gets.load(Ordering::SeqCst), 2);
    }

    // iterable-api.md §7 G8: a create whose answer was lost may have been applied; the next
    // attempt finds that list by name instead of creating a second one with the same name.
    #[tokio::test]
    async fn create_cut_after_it_was_applied_is_found_by_name_not_created_again() {
        let api = FakeApi::with(&[(1, "other", ListType::Standard)]);
        let (r, _clock) = resolver(api.clone(), ListSettings::default());
        // Fill the cache first, so that a stale cache would miss the new list.
        r.resolve(aud("other")).await.unwrap();
        api.cut_after_create.store(true, Ordering::SeqCst);
        assert!(r.resolve(aud("fresh")).await.is_err());
        let again = r.resolve(aud("fresh")).await.unwrap();
        assert_eq!(api.creates.load(Ordering::SeqCst), 1);
        let named: Vec<i64> = api
            .lists
            .lock()
            .iter()
            .filter(|l| l.name == "fresh")
            .map(|l| l.id)
            .collect();
        assert_eq!(named, vec![again.list_id]);
    }

    // peers T2, iterable-api.md §7 G1: a new list may answer invalidListId for ~30 s.
    #[tokio::test]
    async fn new_list_invalid_list_id_is_retried_within_the_grace_period_only() {
        let api = FakeApi::with(&[]);
        let (r, clock) = resolver(api.clone(), ListSettings::default());
        let id = r.resolve(aud("fresh")).await.unwrap().list_id;
        let mut waited = Duration::ZERO;
        let mut retries = 0;
        while let InvalidListVerdict::RetryAfter(d) = r.invalid_list_id(id) {
            assert!(d > Duration::ZERO);
            clock.advance(d);
            waited += d;
            retries += 1;
            assert!(retries < 100);
        }
        assert_eq!(waited, Duration::from_secs(30));
        assert!(retries >= 3, "{retries}");
        // A list not created here is missing at once.
        assert_eq!(r.invalid_list_id(424242), InvalidListVerdict::Missing);
    }

    // peers T11: a vanished list is re-created once and the caller is told to re-send.
    #[tokio::test]
    async fn vanished_list_is_recreated_once() {
        let api = FakeApi::with(&[(10, "gone", ListType::Standard)]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        assert_eq!(r.resolve(aud("gone")).await.unwrap().list_id, 10);
        api.lists.lock().clear();
        let moved = r.list_missing(aud("gone"), 10).await.unwrap();
        assert!(moved.resend_all_in);
        assert_eq!(moved.list.origin, ListOrigin::Created);
        assert_ne!(moved.list.list_id, 10);
        // The same disappearance reported again by a concurrent request does not create more.
        let again = r.list_missing(aud("gone"), 10).await.unwrap();
        assert_eq!(again.list.list_id, moved.list.list_id);
        assert!(!again.resend_all_in);
        assert_eq!(api.creates.load(Ordering::SeqCst), 1);
        assert_eq!(
            r.resolve(aud("gone")).await.unwrap().list_id,
            moved.list.list_id
        );
    }

    // design decision 7: `GET /api/lists` may still show the deleted list; it is not reused.
    #[tokio::test]
    async fn vanished_list_still_listed_is_not_reused() {
        let api = FakeApi::with(&[(10, "gone", ListType::Standard)]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        r.resolve(aud("gone")).await.unwrap();
        let moved = r.list_missing(aud("gone"), 10).await.unwrap();
        assert_ne!(moved.list.list_id, 10);
    }

    // design decision 7: on_missing_list = "reject".
    #[tokio::test]
    async fn vanished_list_with_reject_policy_rejects_and_never_creates() {
        let api = FakeApi::with(&[(10, "gone", ListType::Standard)]);
        let settings = ListSettings {
            on_missing_list: OnMissingList::Reject,
            ..Default::default()
        };
        let (r, _) = resolver(api.clone(), settings);
        r.resolve(aud("gone")).await.unwrap();
        api.lists.lock().clear();
        let err = r.list_missing(aud("gone"), 10).await.unwrap_err();
        assert!(
            matches!(err, ListError::Missing { list_id: 10, .. }),
            "{err:?}"
        );
        assert_eq!(err.reason().code, ReasonCode::ListMissing);
        // Later events of the audience are rejected too, still without creating.
        assert!(matches!(
            r.resolve(aud("gone")).await,
            Err(ListError::Missing { .. })
        ));
        assert_eq!(api.creates.load(Ordering::SeqCst), 0);
    }

    // A bound id that vanished cannot be re-created: reject with a clear reason.
    #[tokio::test]
    async fn vanished_bound_list_is_rejected() {
        let api = FakeApi::with(&[]);
        let (r, _) = resolver(api.clone(), ListSettings::default());
        let b = ListBinding::Id(77);
        let a = AudienceRef {
            binding: Some(&b),
            ..aud("bound")
        };
        assert_eq!(r.resolve(a).await.unwrap().list_id, 77);
        let err = r.list_missing(a, 77).await.unwrap_err();
        assert!(err.to_string().contains("bound"), "{err}");
        assert_eq!(api.creates.load(Ordering::SeqCst), 0);
    }
}
