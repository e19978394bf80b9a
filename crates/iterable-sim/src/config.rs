//! What a simulator is told: projects and keys, faults, rate limits, the request log's bounds.
//!
//! Every type here is serde-friendly: the same shapes are read from the `--config` TOML file
//! and exchanged as JSON by the control API under `/_sim/`.

use iterable::types::{ListType, ProjectType};
use serde::{Deserialize, Serialize};

/// An API key. Its `Debug` form never shows the key itself.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl From<&str> for ApiKey {
    fn from(s: &str) -> Self {
        ApiKey(s.to_owned())
    }
}

impl From<String> for ApiKey {
    fn from(s: String) -> Self {
        ApiKey(s)
    }
}

/// The whole configuration of a simulator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random decision (faults, placeholder emails, preview samples).
    pub seed: u64,
    /// Bounds of the request log.
    pub request_log: RequestLogConfig,
    /// Largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: Option<usize>,
    /// The projects, each with its keys and type.
    pub projects: Vec<ProjectConfig>,
    /// Faults injected into Iterable's endpoints (never into `/_sim/`).
    pub faults: Faults,
    /// Rate limits (leaky buckets) per project.
    pub limits: Limits,
}

impl SimConfig {
    /// An empty configuration: no projects, no faults, no limits, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a project of `project_type` reachable with `api_key`; its id is allocated
    /// (1001, 1002, … in declaration order).
    pub fn project(mut self, api_key: &str, project_type: ProjectType) -> Self {
        let id = 1001 + self.projects.len() as i64;
        self.projects
            .push(ProjectConfig::new(id, project_type).with_key(api_key));
        self
    }

    /// Adds a fully described project.
    pub fn with_project(mut self, project: ProjectConfig) -> Self {
        self.projects.push(project);
        self
    }

    /// Sets the seed of every random decision.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the rate limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the request log's bounds.
    pub fn request_log(mut self, log: RequestLogConfig) -> Self {
        self.request_log = log;
        self
    }

    /// Reads a TOML configuration (the `--config` file format).
    pub fn from_toml(text: &str) -> Result<Self, crate::SimError> {
        toml::from_str(text).map_err(|e| crate::SimError::Config(e.to_string()))
    }
}

/// One Iterable project.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The project id (appears in error bodies and delete messages).
    pub id: i64,
    /// How the project identifies users.
    #[serde(rename = "type")]
    pub project_type: ProjectType,
    /// Keys that reach this project.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// When false, unknown `dataFields` are dropped and reported in `filteredOutFields`
    /// instead of being created (reported in `createdFields`).
    #[serde(default = "yes")]
    pub allow_new_fields: bool,
    /// Lists that exist from the start (to mirror a real project), with their ids.
    #[serde(default)]
    pub lists: Vec<ListConfig>,
}

fn yes() -> bool {
    true
}

impl ProjectConfig {
    /// A project with no keys and no lists, accepting new fields.
    pub fn new(id: i64, project_type: ProjectType) -> Self {
        ProjectConfig {
            id,
            project_type,
            api_keys: Vec::new(),
            allow_new_fields: true,
            lists: Vec::new(),
        }
    }

    /// Adds a key.
    pub fn with_key(mut self, key: &str) -> Self {
        self.api_keys.push(ApiKey::from(key));
        self
    }

    /// Adds a list that exists from the start.
    pub fn with_list(mut self, list: ListConfig) -> Self {
        self.lists.push(list);
        self
    }
}

/// A list declared with its id (configuration file or control API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListConfig {
    /// The list id.
    pub id: i64,
    /// The list name.
    pub name: String,
    /// The list type (`Standard` unless told).
    #[serde(default = "standard")]
    pub list_type: ListType,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
}

fn standard() -> ListType {
    ListType::Standard
}

impl ListConfig {
    /// A `Standard` list with this id and name.
    pub fn standard(id: i64, name: &str) -> Self {
        ListConfig {
            id,
            name: name.to_owned(),
            list_type: ListType::Standard,
            description: None,
        }
    }
}

/// Bounds of the request log: the oldest entries go first once either bound is reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLogConfig {
    /// Most entries kept.
    pub capacity: usize,
    /// Most body bytes kept over all entries.
    pub max_body_bytes: usize,
}

impl Default for RequestLogConfig {
    fn default() -> Self {
        RequestLogConfig {
            capacity: 10_000,
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// An Iterable endpoint of the list API, as faults and limits name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /api/lists`
    GetLists,
    /// `POST /api/lists`
    CreateList,
    /// `DELETE /api/lists/{listId}`
    DeleteList,
    /// `POST /api/lists/subscribe`
    Subscribe,
    /// `POST /api/lists/unsubscribe`
    Unsubscribe,
    /// `GET /api/lists/getUsers`
    GetUsers,
    /// `GET /api/lists/previewUsers`
    PreviewUsers,
    /// `GET /api/lists/{listId}/size`
    Size,
}

impl Endpoint {
    /// The path Iterable names the endpoint by (as in its rate-limit messages).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::GetLists | Endpoint::CreateList => "/api/lists",
            Endpoint::DeleteList => "/api/lists/{listId}",
            Endpoint::Subscribe => "/api/lists/subscribe",
            Endpoint::Unsubscribe => "/api/lists/unsubscribe",
            Endpoint::GetUsers => "/api/lists/getUsers",
            Endpoint::PreviewUsers => "/api/lists/previewUsers",
            Endpoint::Size => "/api/lists/{listId}/size",
        }
    }
}

/// How a cut connection behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutMode {
    /// The connection is reset (TCP RST) without a response.
    #[default]
    Reset,
    /// No response at all until `hang_ms` has passed (the client times out first), then reset.
    Hang,
}

/// Faults injected into a fraction of Iterable-endpoint requests. Rates are fractions in
/// `0.0..=1.0`; each request draws its fate from the seed and its sequence number, so a run
/// of sequential requests is reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Endpoints the faults apply to; empty means every endpoint.
    pub endpoints: Vec<Endpoint>,
    /// Fraction answered with one of `error_statuses` (nothing applied).
    pub error_rate: f64,
    /// Statuses to choose from, uniformly: 500, 502, 503, 504, or 429 (answered like a limit).
    pub error_statuses: Vec<u16>,
    /// Fraction delayed by a time between `delay_min_ms` and `delay_max_ms`.
    pub delay_rate: f64,
    /// Shortest delay.
    pub delay_min_ms: u64,
    /// Longest delay.
    pub delay_max_ms: u64,
    /// Fraction cut before the request is applied.
    pub cut_before_rate: f64,
    /// Fraction cut after the request was applied (the client sees no answer, yet the change
    /// happened).
    pub cut_after_rate: f64,
    /// What a cut looks like to the client.
    pub cut_mode: CutMode,
    /// How long a hanging cut holds the connection before resetting it.
    pub hang_ms: u64,
    /// For this long after `POST /api/lists` created a list, the list answers `invalidListId`
    /// (eventual consistency, iterable-api.md gotcha G1).
    pub new_list_invisible_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            endpoints: Vec::new(),
            error_rate: 0.0,
            error_statuses: vec![500, 502, 503, 504],
            delay_rate: 0.0,
            delay_min_ms: 0,
            delay_max_ms: 0,
            cut_before_rate: 0.0,
            cut_after_rate: 0.0,
            cut_mode: CutMode::Reset,
            hang_ms: 60_000,
            new_list_invisible_ms: 0,
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }
}

/// Rate limits: leaky buckets per project, one per rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The rules; a request must fit in the bucket of every rule naming its endpoint.
    pub rules: Vec<LimitRule>,
    /// What a limited request is answered with.
    pub response: LimitResponse,
}

impl Limits {
    /// No limits.
    pub fn none() -> Self {
        Self::default()
    }

    /// The documented limits (`GET /api/lists` 100/s; `getUsers`, `previewUsers`, `size`
    /// 5/min each) plus these assumptions where Iterable publishes none: subscribe and
    /// unsubscribe 500/s sharing one bucket, create list 10/s, delete list 10/s.
    pub fn realistic() -> Self {
        Limits {
            rules: vec![
                LimitRule::per_second(&[Endpoint::GetLists], 100.0),
                LimitRule::per_minute(&[Endpoint::GetUsers], 5.0),
                LimitRule::per_minute(&[Endpoint::PreviewUsers], 5.0),
                LimitRule::per_minute(&[Endpoint::Size], 5.0),
                LimitRule::per_second(&[Endpoint::Subscribe, Endpoint::Unsubscribe], 500.0),
                LimitRule::per_second(&[Endpoint::CreateList], 10.0),
                LimitRule::per_second(&[Endpoint::DeleteList], 10.0),
            ],
            response: LimitResponse::default(),
        }
    }

    /// Subscribe and unsubscribe together limited to `per_second` requests per second per
    /// project (one shared bucket holding one second's worth).
    pub fn writes_per_second(per_second: f64) -> Self {
        Limits::none().rule(LimitRule::per_second(
            &[Endpoint::Subscribe, Endpoint::Unsubscribe],
            per_second,
        ))
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: LimitRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the answer of limited requests.
    pub fn response(mut self, response: LimitResponse) -> Self {
        self.response = response;
        self
    }
}

/// One leaky bucket per project: it holds at most `burst` requests (default: `requests`) and
/// drains `requests` every `per_ms` milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// Endpoints sharing this bucket (e.g. subscribe and unsubscribe together).
    pub endpoints: Vec<Endpoint>,
    /// Requests drained per period.
    pub requests: f64,
    /// The period, in milliseconds.
    pub per_ms: u64,
    /// Bucket capacity; `requests` when absent.
    #[serde(default)]
    pub burst: Option<f64>,
}

impl LimitRule {
    /// `requests` per second on `endpoints` together.
    pub fn per_second(endpoints: &[Endpoint], requests: f64) -> Self {
        LimitRule {
            endpoints: endpoints.to_vec(),
            requests,
            per_ms: 1000,
            burst: None,
        }
    }

    /// `requests` per minute on `endpoints` together.
    pub fn per_minute(endpoints: &[Endpoint], requests: f64) -> Self {
        LimitRule {
            endpoints: endpoints.to_vec(),
            requests,
            per_ms: 60_000,
            burst: None,
        }
    }

    /// Sets the bucket capacity.
    pub fn burst(mut self, burst: f64) -> Self {
        self.burst = Some(burst);
        self
    }
}

/// The body of a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitBody {
    /// `{"msg":"Exceeded rate limit for endpoint: …","code":"RateLimitExceeded","params":{}}`
    #[default]
    Json,
    /// A plain-text body.
    Text,
}

/// Whether a 429 carries `Retry-After` (Iterable documents none, iterable-api.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    /// No header.
    #[default]
    None,
    /// The whole seconds until the bucket has room again (at least 1).
    Computed,
    /// Always this many seconds.
    Seconds(u64),
}

/// How a limited request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitResponse {
    /// JSON or plain-text body.
    pub body: LimitBody,
    /// The `Retry-After` header, if any.
    pub retry_after: RetryAfter,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Design decision 13: subscribe and unsubscribe share one rate per project.
    #[test]
    fn writes_per_second_is_one_bucket_for_subscribe_and_unsubscribe() {
        let l = Limits::writes_per_second(25.0);
        assert_eq!(l.rules.len(), 1);
        assert_eq!(
            l.rules[0].endpoints,
            vec![Endpoint::Subscribe, Endpoint::Unsubscribe]
        );
        assert_eq!((l.rules[0].requests, l.rules[0].per_ms), (25.0, 1000));
    }

    #[test]
    fn api_keys_are_redacted_in_debug_output() {
        let c = SimConfig::new().project("secret-key-123", ProjectType::Hybrid);
        assert!(!format!("{c:?}").contains("secret-key-123"));
    }
}
