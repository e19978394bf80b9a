//! The simulator's state and the Rust API over it (the same operations the control API
//! offers over HTTP).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use iterable::types::{ListDetails, ListType, ProjectType};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::config::{Faults, Limits, ListConfig, ProjectConfig, SimConfig};
use crate::limits::Buckets;
use crate::log::{LoggedRequest, RequestLog};
use crate::model::{ProjectData, UserProfile, new_list_details};

/// Designates a project: by one of its API keys, or by its id.
#[derive(Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// One of the project's API keys.
    Key(String),
    /// The project id.
    Id(i64),
}

impl std::fmt::Debug for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectRef::Key(_) => f.write_str("Key(<redacted>)"),
            ProjectRef::Id(id) => write!(f, "Id({id})"),
        }
    }
}

impl From<&str> for ProjectRef {
    fn from(key: &str) -> Self {
        ProjectRef::Key(key.to_owned())
    }
}

impl From<&String> for ProjectRef {
    fn from(key: &String) -> Self {
        ProjectRef::Key(key.clone())
    }
}

impl From<i64> for ProjectRef {
    fn from(id: i64) -> Self {
        ProjectRef::Id(id)
    }
}

/// Designates a user by email (compared case-insensitively) or by userId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    /// The email.
    #[serde(default)]
    pub email: Option<String>,
    /// The userId.
    #[serde(default)]
    pub user_id: Option<String>,
}

impl UserRef {
    /// The user with this email.
    pub fn email(email: &str) -> Self {
        UserRef {
            email: Some(email.to_owned()),
            user_id: None,
        }
    }

    /// The user with this userId.
    pub fn user_id(user_id: &str) -> Self {
        UserRef {
            email: None,
            user_id: Some(user_id.to_owned()),
        }
    }
}

/// One simulated project.
pub(crate) struct Project {
    pub id: i64,
    pub project_type: ProjectType,
    pub data: Mutex<ProjectData>,
    pub buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Registry {
    by_key: HashMap<String, Arc<Project>>,
    by_id: BTreeMap<i64, Arc<Project>>,
}

/// Limits with a generation number, so buckets notice a change.
pub(crate) struct LimitsState {
    pub limits: Limits,
    pub generation: u64,
}

pub(crate) struct Inner {
    config: SimConfig,
    registry: RwLock<Registry>,
    faults: RwLock<Arc<Faults>>,
    limits: RwLock<Arc<LimitsState>>,
    pub log: RequestLog,
    seq: AtomicU64,
    seed: u64,
    next_list_id: AtomicU64,
    limits_generation: AtomicU64,
}

/// A handle on a simulator's state; cheap to clone. [`crate::Simulator`] dereferences to it.
#[derive(Clone)]
pub struct Sim {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Sim {
    /// Builds the state described by `config` (without serving it).
    pub fn new(config: SimConfig) -> Result<Sim, SimError> {
        let sim = Sim {
            inner: Arc::new(Inner {
                registry: RwLock::new(Registry::default()),
                faults: RwLock::new(Arc::new(config.faults.clone())),
                limits: RwLock::new(Arc::new(LimitsState {
                    limits: config.limits.clone(),
                    generation: 0,
                })),
                log: RequestLog::new(config.request_log.clone()),
                seq: AtomicU64::new(0),
                seed: config.seed,
                next_list_id: AtomicU64::new(1_000_000),
                limits_generation: AtomicU64::new(0),
                config,
            }),
        };
        sim.load_projects()?;
        Ok(sim)
    }

    fn load_projects(&self) -> Result<(), SimError> {
        for p in self.inner.config.projects.clone() {
            self.add_project(p)?;
        }
        Ok(())
    }

    /// Forgets every user, list and project not declared in the configuration, empties the
    /// request log, and restores the configured faults and limits.
    pub fn reset(&self) -> Result<(), SimError> {
        *self.inner.registry.write() = Registry::default();
        self.inner.log.clear();
        self.set_faults(self.inner.config.faults.clone());
        self.set_limits(self.inner.config.limits.clone());
        self.load_projects()
    }

    /// Adds a project with its keys and lists.
    pub fn add_project(&self, config: ProjectConfig) -> Result<(), SimError> {
        let mut reg = self.inner.registry.write();
        if reg.by_id.contains_key(&config.id) {
            return Err(SimError::ProjectExists(config.id));
        }
        if config
            .api_keys
            .iter()
            .any(|k| reg.by_key.contains_key(&k.0))
        {
            return Err(SimError::KeyInUse);
        }
        let mut data = ProjectData::new(
            config.project_type,
            config.allow_new_fields,
            crate::rng::mix(self.inner.seed, config.id as u64),
        );
        for l in &config.lists {
            data.add_list(
                new_list_details(
                    l.id,
                    l.name.clone(),
                    l.description.clone(),
                    l.list_type,
                    now_millis(),
                ),
                None,
            );
        }
        let project = Arc::new(Project {
            id: config.id,
            project_type: config.project_type,
            data: Mutex::new(data),
            buckets: Mutex::new(Buckets::default()),
        });
        for k in &config.api_keys {
            reg.by_key.insert(k.0.clone(), project.clone());
        }
        reg.by_id.insert(config.id, project);
        Ok(())
    }

    /// Adds an API key to an existing project.
    pub fn add_key(&self, project: impl Into<ProjectRef>, api_key: &str) -> Result<(), SimError> {
        let p = self.project(project.into())?;
        let mut reg = self.inner.registry.write();
        if reg.by_key.contains_key(api_key) {
            return Err(SimError::KeyInUse);
        }
        reg.by_key.insert(api_key.to_owned(), p);
        Ok(())
    }

    /// Ids and types of every project, ascending by id.
    pub fn projects(&self) -> Vec<(i64, ProjectType)> {
        self.inner
            .registry
            .read()
            .by_id
            .values()
            .map(|p| (p.id, p.project_type))
            .collect()
    }

    pub(crate) fn project(&self, r: ProjectRef) -> Result<Arc<Project>, SimError> {
        let reg = self.inner.registry.read();
        match r {
            ProjectRef::Key(k) => reg.by_key.get(&k).cloned(),
            ProjectRef::Id(id) => reg.by_id.get(&id).cloned(),
        }
        .ok_or(SimError::NoSuchProject)
    }

    pub(crate) fn project_by_key(&self, key: &str) -> Option<Arc<Project>> {
        self.inner.registry.read().by_key.get(key).cloned()
    }

    /// Creates a `Standard` list with a given id (to mirror a real project); it is visible at
    /// once.
    pub fn create_list(
        &self,
        project: impl Into<ProjectRef>,
        id: i64,
        name: &str,
    ) -> Result<(), SimError> {
        self.create_list_with(project, ListConfig::standard(id, name))
    }

    /// Creates a list of any type with a given id; it is visible at once.
    pub fn create_list_with(
        &self,
        project: impl Into<ProjectRef>,
        list: ListConfig,
    ) -> Result<(), SimError> {
        let p = self.project(project.into())?;
        // List ids are unique across the simulator, as Iterable's are.
        if self.list_id_taken(list.id) {
            return Err(SimError::ListExists(list.id));
        }
        p.data.lock().add_list(
            new_list_details(
                list.id,
                list.name,
                list.description,
                list.list_type,
                now_millis(),
            ),
            None,
        );
        Ok(())
    }

    fn list_id_taken(&self, id: i64) -> bool {
        let projects: Vec<Arc<Project>> =
            self.inner.registry.read().by_id.values().cloned().collect();
        projects
            .iter()
            .any(|p| p.data.lock().lists.contains_key(&id))
    }

    /// Creates a list as `POST /api/lists` does: a fresh id, `Standard`, invisible to the list
    /// endpoints for the configured `new_list_invisible_ms`.
    pub(crate) fn api_create_list(
        &self,
        p: &Project,
        name: String,
        description: Option<String>,
    ) -> i64 {
        let id = loop {
            let id = self.inner.next_list_id.fetch_add(1, Ordering::Relaxed) as i64;
            // Skip ids that lists declared with their ids already hold.
            if !self.list_id_taken(id) {
                break id;
            }
        };
        let window = self.faults().new_list_invisible_ms;
        let visible_at =
            (window > 0).then(|| Instant::now() + std::time::Duration::from_millis(window));
        p.data.lock().add_list(
            new_list_details(id, name, description, ListType::Standard, now_millis()),
            visible_at,
        );
        id
    }

    /// Marks a list as used by a campaign or journey (then `DELETE /api/lists/{id}` answers
    /// 409 "List is in use"), or not.
    pub fn set_list_in_use(
        &self,
        project: impl Into<ProjectRef>,
        list_id: i64,
        in_use: bool,
    ) -> Result<(), SimError> {
        let p = self.project(project.into())?;
        let mut data = p.data.lock();
        let list = data
            .lists
            .get_mut(&list_id)
            .ok_or(SimError::NoSuchList(list_id))?;
        list.in_use = in_use;
        Ok(())
    }

    /// Deletes a list and its memberships (even one in use).
    pub fn delete_list(
        &self,
        project: impl Into<ProjectRef>,
        list_id: i64,
    ) -> Result<(), SimError> {
        let p = self.project(project.into())?;
        p.data
            .lock()
            .lists
            .remove(&list_id)
            .map(|_| ())
            .ok_or(SimError::NoSuchList(list_id))
    }

    /// Every list of the project (of every type, visible yet or not), ascending by id.
    pub fn lists(&self, project: impl Into<ProjectRef>) -> Result<Vec<ListDetails>, SimError> {
        Ok(self.project(project.into())?.data.lock().list_details())
    }

    /// A list's members as `getUsers` returns them (without `preferUserId`).
    pub fn list_members(
        &self,
        project: impl Into<ProjectRef>,
        list_id: i64,
    ) -> Result<Vec<String>, SimError> {
        self.list_members_by(project, list_id, false)
    }

    /// A list's members as `getUsers?preferUserId=…` returns them.
    pub fn list_members_by(
        &self,
        project: impl Into<ProjectRef>,
        list_id: i64,
        prefer_user_id: bool,
    ) -> Result<Vec<String>, SimError> {
        let p = self.project(project.into())?;
        let data = p.data.lock();
        let list = data
            .lists
            .get(&list_id)
            .ok_or(SimError::NoSuchList(list_id))?;
        Ok(data.members(list, prefer_user_id))
    }

    /// A user's profile (dataFields, lists, channel unsubscribes), if the user exists.
    pub fn user(
        &self,
        project: impl Into<ProjectRef>,
        user: &UserRef,
    ) -> Result<Option<UserProfile>, SimError> {
        let p = self.project(project.into())?;
        let data = p.data.lock();
        Ok(data.profile(user.email.as_deref(), user.user_id.as_deref()))
    }

    /// Every user's profile, in creation order.
    pub fn users(&self, project: impl Into<ProjectRef>) -> Result<Vec<UserProfile>, SimError> {
        Ok(self.project(project.into())?.data.lock().all_profiles())
    }

    /// GDPR-forgets a user: the profile goes and its identifiers are refused from now on
    /// (reported in `forgottenEmails`/`forgottenUserIds`). Works for unknown users too.
    pub fn forget_user(
        &self,
        project: impl Into<ProjectRef>,
        user: &UserRef,
    ) -> Result<(), SimError> {
        let p = self.project(project.into())?;
        p.data
            .lock()
            .forget(user.email.as_deref(), user.user_id.as_deref());
        Ok(())
    }

    /// The faults in force.
    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.read().clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.write() = Arc::new(faults);
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.inner.limits.read().limits.clone()
    }

    pub(crate) fn limits_state(&self) -> Arc<LimitsState> {
        self.inner.limits.read().clone()
    }

    /// Replaces the limits; every bucket starts empty.
    pub fn set_limits(&self, limits: Limits) {
        let generation = self.inner.limits_generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.inner.limits.write() = Arc::new(LimitsState { limits, generation });
    }

    /// The request log, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.inner.log.snapshot()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.inner.log.clear();
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn seed(&self) -> u64 {
        self.inner.seed
    }

    pub(crate) fn max_body_bytes(&self) -> usize {
        self.inner.config.max_body_bytes.unwrap_or(16 * 1024 * 1024)
    }
}

/// A project as the control API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProjectSummary {
    pub id: i64,
    #[serde(rename = "type")]
    pub project_type: ProjectType,
}
