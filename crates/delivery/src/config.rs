//! The service's TOML configuration, shared by `send`, `serve` and `demo`.
//!
//! ```toml
//! [store]
//! path = "iterable-lists.db"      # default
//! synchronous = "full"            # "full" (default) or "normal"
//!
//! [server]
//! listen = "127.0.0.1:8088"       # default
//! admin_token = "…"               # or ITERABLE_LISTS_ADMIN_TOKEN
//!
//! [delivery]
//! flush_interval_ms = 1000        # send a list's changes once the oldest is this old
//! flush_threshold = 1000          # … or once this many are pending in one direction
//! backlog_bound = 10000000        # accept answers busy past this many pending changes
//! backoff_base_ms = 500           # first retry delay (doubles per attempt, with jitter)
//! backoff_cap_ms = 60000          # longest retry delay
//! send_timeout_ms = 30000         # one Iterable request
//! retry_after_max_ms = 600000     # longest Retry-After honoured as is
//! new_list_grace_ms = 30000       # a list created here may answer invalidListId this long
//! aimd_initial_rate = 10.0        # requests/s to start from when no rate is configured
//!
//! [retention]
//! dedup_window_hours = 168        # messageId de-duplication window
//! log_max_age_hours = 168         # delivery log age bound
//! log_max_entries = 10000000      # delivery log size bound
//! out_rows_max_age_hours = 720    # confirmed exits are forgotten after this
//! compact_every_minutes = 10
//!
//! [[destination]]
//! name = "engage"                 # required; names the destination in logs and commands
//! write_key = "…"                 # or ITERABLE_LISTS_ENGAGE_WRITE_KEY
//! api_key = "…"                   # or ITERABLE_LISTS_ENGAGE_API_KEY
//! region = "us"                   # "us" (default) or "eu"
//! endpoint = "http://127.0.0.1:8099"  # only with allow_custom_endpoint = true
//! allow_custom_endpoint = false
//! project_type = "hybrid"         # required: "email", "userId" or "hybrid"
//! prefer_user_id = true
//! data_fields = []
//! rate_per_second = 50.0          # optional; without it the rate is found from 429s
//! concurrency = 4
//! on_missing_list = "recreate"    # or "reject"
//! allow_event_global_unsubscribe = false
//! batch = { max_subscribers = 1000, max_bytes = 4194304 }
//!
//! [destination.audiences.vip_customers]
//! list = { id = 4242 }            # or { name = "VIP customers" }
//! update_existing_users_only = false
//! global_unsubscribe = false
//! campaign_id = 12345
//! ```
//!
//! Environment variables override secrets: `ITERABLE_LISTS_<DEST>_API_KEY`,
//! `ITERABLE_LISTS_<DEST>_WRITE_KEY` (`<DEST>` is the destination name upper-cased, every
//! character other than a letter or digit replaced by `_`) and `ITERABLE_LISTS_ADMIN_TOKEN`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::lists::OnMissingList;
use destination::settings::{ApiKey, AudienceConfig, BatchLimits, DestinationSettings};
use iterable::{ProjectType, Region};
use serde::Deserialize;

/// A secret string (write key, admin token). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for comparisons only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[store]`: where the ledger lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[server]`: the HTTP service (used by `serve`).
    #[serde(default)]
    pub server: ServerConfig,
    /// `[delivery]`: flushing, retries, backpressure.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// `[retention]`: how long de-duplication, the delivery log and confirmed exits are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[[destination]]`: one per Iterable project and write key.
    #[serde(default, rename = "destination")]
    pub destinations: Vec<DestinationConfig>,
}

/// How hard the store syncs a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// An acknowledged batch survives power loss (default).
    #[default]
    Full,
    /// An acknowledged batch survives a process crash; the last commits may be lost on power
    /// loss.
    Normal,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file (default `iterable-lists.db`, relative to the working directory).
    pub path: PathBuf,
    /// `full` (default) or `normal`.
    pub synchronous: SyncMode,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("iterable-lists.db"),
            synchronous: SyncMode::Full,
        }
    }
}

/// `[server]`: plain data for the HTTP service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:8088`).
    pub listen: SocketAddr,
    /// Bearer token of the admin API (no default: the admin API is closed without one);
    /// `ITERABLE_LISTS_ADMIN_TOKEN` overrides it.
    pub admin_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            admin_token: None,
        }
    }
}

/// `[delivery]`: engine-wide delivery settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// A list's pending changes are sent once the oldest is this old (default 1000 ms).
    pub flush_interval_ms: u64,
    /// … or once this many are pending in one direction (default 1000).
    pub flush_threshold: u64,
    /// Accepting answers busy while this many changes are pending (default 10,000,000).
    pub backlog_bound: u64,
    /// First retry delay; doubles per failed attempt, with jitter (default 500 ms).
    pub backoff_base_ms: u64,
    /// Longest retry delay (default 60,000 ms).
    pub backoff_cap_ms: u64,
    /// Timeout of one Iterable request (default 30,000 ms).
    pub send_timeout_ms: u64,
    /// Longest `Retry-After` honoured as given; longer ones are cut to this (default 600,000 ms).
    pub retry_after_max_ms: u64,
    /// How long a list created by the service may answer `invalidListId` before it counts as
    /// missing (default 30,000 ms).
    pub new_list_grace_ms: u64,
    /// Starting rate, in requests per second, of a project without `rate_per_second`, when no
    /// rate was found before (default 10).
    pub aimd_initial_rate: f64,
    /// How often the scheduler looks for due work (default 50 ms).
    pub tick_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            flush_interval_ms: 1000,
            flush_threshold: 1000,
            backlog_bound: 10_000_000,
            backoff_base_ms: 500,
            backoff_cap_ms: 60_000,
            send_timeout_ms: 30_000,
            retry_after_max_ms: 600_000,
            new_list_grace_ms: 30_000,
            aimd_initial_rate: 10.0,
            tick_ms: 50,
        }
    }
}

impl DeliveryConfig {
    /// The flush interval.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }
}

/// `[retention]` (design decision 12). Compaction runs every `compact_every_minutes`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// `messageId` de-duplication window, in hours (default 168: 7 days).
    pub dedup_window_hours: u64,
    /// Delivery log entries older than this are removed, in hours (default 168: 7 days).
    pub log_max_age_hours: u64,
    /// At most this many delivery log entries are kept (default 10,000,000).
    pub log_max_entries: u64,
    /// Ledger rows confirmed `out` are removed after this many hours (default 720: 30 days).
    pub out_rows_max_age_hours: u64,
    /// How often compaction runs, in minutes (default 10).
    pub compact_every_minutes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            dedup_window_hours: 168,
            log_max_age_hours: 168,
            log_max_entries: 10_000_000,
            out_rows_max_age_hours: 720,
            compact_every_minutes: 10,
        }
    }
}

impl RetentionConfig {
    /// The store's retention bounds.
    pub fn bounds(&self) -> store::Retention {
        const HOUR: i64 = 3_600_000;
        let h = |v: u64| {
            i64::try_from(v)
                .unwrap_or(i64::MAX / HOUR)
                .saturating_mul(HOUR)
        };
        store::Retention {
            dedup_window_ms: h(self.dedup_window_hours),
            log_max_age_ms: h(self.log_max_age_hours),
            log_max_entries: self.log_max_entries,
            out_rows_max_age_ms: h(self.out_rows_max_age_hours),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_concurrency() -> usize {
    4
}

/// One `[[destination]]`: a write key's events go to one Iterable project.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Name (required, unique): used in logs, commands and environment variable names.
    pub name: String,
    /// Segment write key that selects this destination at ingest (optional for `send`).
    #[serde(default)]
    pub write_key: Option<Secret>,
    /// Iterable server-side API key (required, here or in the environment).
    #[serde(default)]
    pub api_key: Option<ApiKey>,
    /// `us` (default) or `eu`.
    #[serde(default)]
    pub region: Region,
    /// Base URL override (e.g. the simulator); needs `allow_custom_endpoint = true`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allows `endpoint` (default false, so that a stray override cannot leak the key).
    #[serde(default)]
    pub allow_custom_endpoint: bool,
    /// `email`, `userId` or `hybrid` (required: Iterable does not tell).
    pub project_type: ProjectType,
    /// Email projects: send `preferUserId: true` for userId-only subscribers (default true).
    #[serde(default = "default_true")]
    pub prefer_user_id: bool,
    /// Traits (identify) or properties (track) copied into `dataFields` (default none).
    #[serde(default)]
    pub data_fields: Vec<String>,
    /// Request size limits (default 1000 subscribers, 4 MB).
    #[serde(default)]
    pub batch: BatchLimits,
    /// Membership requests per second for this Iterable project, subscribe and unsubscribe
    /// together. Without it the rate is found from 429 answers (additive increase,
    /// multiplicative decrease) and remembered in the store.
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Requests in flight at once for this Iterable project (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// `recreate` (default) or `reject`: what to do when an audience's list is deleted.
    #[serde(default)]
    pub on_missing_list: OnMissingList,
    /// Let an event's `globalUnsubscribe: true` take effect (default false).
    #[serde(default)]
    pub allow_event_global_unsubscribe: bool,
    /// Per-audience settings and list bindings, keyed by audience key.
    #[serde(default)]
    pub audiences: BTreeMap<String, AudienceConfig>,
    /// Custom mappings (`[[destination.mappings]]`: `name`, `trigger`, `mapping`, `enabled`),
    /// tried in declared order; the first enabled one whose trigger matches handles an event.
    /// None (the default): the default mapping applies. Declared here, they are read-only in
    /// the admin API.
    #[serde(default)]
    pub mappings: Vec<MappingConfig>,
}

impl fmt::Debug for DestinationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestinationConfig")
            .field("name", &self.name)
            .field("write_key", &self.write_key)
            .field("api_key", &self.api_key)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("allow_custom_endpoint", &self.allow_custom_endpoint)
            .field("project_type", &self.project_type)
            .field("rate_per_second", &self.rate_per_second)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl DestinationConfig {
    /// The destination's settings in the form the `destination` crate uses. Call after
    /// [`Config::validate`] (the API key must be present).
    pub fn settings(&self) -> DestinationSettings {
        let mut s = DestinationSettings::new(
            self.api_key.clone().unwrap_or_else(|| ApiKey::new("")),
            self.project_type,
        );
        s.region = self.region;
        s.endpoint = self.endpoint.clone();
        s.allow_custom_endpoint = self.allow_custom_endpoint;
        s.prefer_user_id = self.prefer_user_id;
        s.data_fields = self.data_fields.clone();
        s.allow_event_global_unsubscribe = self.allow_event_global_unsubscribe;
        s.batch = self.batch;
        s.audiences = self.audiences.clone();
        s
    }

    /// The environment variable prefix of this destination: `ITERABLE_LISTS_<DEST>_`.
    pub fn env_prefix(&self) -> String {
        let dest: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("ITERABLE_LISTS_{dest}_")
    }
}

/// Why a configuration was refused. Messages name the file's key and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid configuration{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What `toml` said (it names the key and the line).
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// `line N: <what toml said>` on one line (toml's own rendering spans several).
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

impl Config {
    /// Reads and validates a file, with secrets overridden from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, |k| std::env::var(k).ok()).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text; `env` looks up environment variables (injected so that
    /// tests control it).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: None,
            message: one_line(text, &e),
        })?;
        config.apply_env(env);
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(t) = env("ITERABLE_LISTS_ADMIN_TOKEN").filter(|t| !t.is_empty()) {
            self.server.admin_token = Some(Secret::new(t));
        }
        for d in &mut self.destinations {
            let prefix = d.env_prefix();
            if let Some(k) = env(&format!("{prefix}API_KEY")).filter(|k| !k.is_empty()) {
                d.api_key = Some(ApiKey::new(k));
            }
            if let Some(k) = env(&format!("{prefix}WRITE_KEY")).filter(|k| !k.is_empty()) {
                d.write_key = Some(Secret::new(k));
            }
        }
    }

    /// Checks what deserialisation cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let d = &self.delivery;
        if d.flush_threshold == 0 {
            return bad("`delivery.flush_threshold` must be at least 1".into());
        }
        if d.backlog_bound == 0 {
            return bad("`delivery.backlog_bound` must be at least 1".into());
        }
        if d.send_timeout_ms == 0 {
            return bad("`delivery.send_timeout_ms` must be at least 1".into());
        }
        if d.backoff_cap_ms < d.backoff_base_ms {
            return bad(
                "`delivery.backoff_cap_ms` must not be below `delivery.backoff_base_ms`".into(),
            );
        }
        if !(d.aimd_initial_rate.is_finite() && d.aimd_initial_rate > 0.0) {
            return bad("`delivery.aimd_initial_rate` must be a positive number".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut write_keys = std::collections::HashSet::new();
        for dest in &self.destinations {
            let n = &dest.name;
            if n.trim().is_empty() {
                return bad("a `[[destination]]` has an empty `name`".into());
            }
            if !names.insert(n.as_str()) {
                return bad(format!("two destinations are named {n:?}"));
            }
            if let Some(w) = &dest.write_key
                && !write_keys.insert(w.expose())
            {
                return bad(format!(
                    "destination {n:?} uses the same `write_key` as another destination"
                ));
            }
            if dest.api_key.is_none() {
                return bad(format!(
                    "destination {n:?} has no `api_key` (set it in the file or in {}API_KEY)",
                    dest.env_prefix()
                ));
            }
            if dest.concurrency == 0 {
                return bad(format!(
                    "destination {n:?}: `concurrency` must be at least 1"
                ));
            }
            if let Some(r) = dest.rate_per_second
                && !(r.is_finite() && r > 0.0)
            {
                return bad(format!(
                    "destination {n:?}: `rate_per_second` must be a positive number"
                ));
            }
            dest.settings()
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("destination {n:?}: {e}")))?;
            MappingSet::from_configs(&dest.mappings)
                .map_err(|e| ConfigError::Invalid(format!("destination {n:?}: {e}")))?;
        }
        Ok(())
    }

    /// The destination with this name.
    pub fn destination(&self, name: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| d.name == name)
    }

    /// The destination a write key selects.
    pub fn destination_for_write_key(&self, write_key: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| {
            d.write_key
                .as_ref()
                .is_some_and(|w| w.expose() == write_key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const MIN: &str =
        "[[destination]]\nname = \"engage\"\napi_key = \"k-secret\"\nproject_type = \"hybrid\"\n";

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::parse(MIN, no_env).unwrap();
        assert_eq!(c.delivery, DeliveryConfig::default());
        assert_eq!(c.delivery.flush_interval_ms, 1000);
        assert_eq!(c.delivery.flush_threshold, 1000);
        assert_eq!(c.store.path, PathBuf::from("iterable-lists.db"));
        assert_eq!(c.store.synchronous, SyncMode::Full);
        let d = &c.destinations[0];
        assert_eq!(d.concurrency, 4);
        assert_eq!(d.rate_per_second, None);
        assert_eq!(d.on_missing_list, OnMissingList::Recreate);
        assert!(d.prefer_user_id);
        assert_eq!(d.settings().base_url(), "https://api.iterable.com");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = Config::parse(&format!("{MIN}flush_intervall = 3\n"), no_env).unwrap_err();
        assert!(err.to_string().contains("flush_intervall"), "{err}");
        let err = Config::parse("[delivery]\nflush_intervall_ms = 3\n", no_env).unwrap_err();
        assert!(err.to_string().contains("flush_intervall_ms"), "{err}");
        let err = Config::parse("[stor]\npath = \"x\"\n", no_env).unwrap_err();
        assert!(err.to_string().contains("stor"), "{err}");
    }

    // peers-and-field-problems.md T7(b): a non-numeric campaign_id is a configuration error.
    #[test]
    fn non_numeric_campaign_id_is_refused() {
        let text = format!("{MIN}[destination.audiences.vip]\ncampaign_id = \"abc\"\n");
        let err = Config::parse(&text, no_env).unwrap_err();
        assert!(
            err.to_string().contains("campaign_id must be a number"),
            "{err}"
        );
    }

    #[test]
    fn endpoint_override_needs_allow_custom_endpoint() {
        let text = format!("{MIN}endpoint = \"http://127.0.0.1:9\"\n");
        let err = Config::parse(&text, no_env).unwrap_err();
        assert!(err.to_string().contains("allow_custom_endpoint"), "{err}");
        let text =
            format!("{MIN}endpoint = \"http://127.0.0.1:9\"\nallow_custom_endpoint = true\n");
        let c = Config::parse(&text, no_env).unwrap();
        assert_eq!(
            c.destinations[0].settings().base_url(),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn unknown_project_type_is_refused() {
        let err = Config::parse(
            "[[destination]]\nname = \"a\"\napi_key = \"k\"\nproject_type = \"phone\"\n",
            no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("phone"), "{err}");
    }

    #[test]
    fn environment_overrides_secrets() {
        let text = "[[destination]]\nname = \"my-dest\"\nproject_type = \"email\"\n";
        let env = |k: &str| match k {
            "ITERABLE_LISTS_MY_DEST_API_KEY" => Some("from-env".to_owned()),
            "ITERABLE_LISTS_MY_DEST_WRITE_KEY" => Some("wk".to_owned()),
            "ITERABLE_LISTS_ADMIN_TOKEN" => Some("tok".to_owned()),
            _ => None,
        };
        let c = Config::parse(text, env).unwrap();
        let d = &c.destinations[0];
        assert_eq!(d.api_key.as_ref().unwrap().expose(), "from-env");
        assert_eq!(d.write_key.as_ref().unwrap().expose(), "wk");
        assert_eq!(c.server.admin_token.as_ref().unwrap().expose(), "tok");
        let err = Config::parse(text, no_env).unwrap_err();
        assert!(
            err.to_string().contains("ITERABLE_LISTS_MY_DEST_API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let text =
            format!("{MIN}write_key = \"wk-secret\"\n[server]\nadmin_token = \"adm-secret\"\n");
        let c = Config::parse(&text, no_env).unwrap();
        let dbg = format!("{c:?}");
        for s in ["k-secret", "wk-secret", "adm-secret"] {
            assert!(!dbg.contains(s), "{s} in {dbg}");
        }
    }

    #[test]
    fn duplicate_destination_names_are_refused() {
        let err = Config::parse(&format!("{MIN}{MIN}"), no_env).unwrap_err();
        assert!(err.to_string().contains("two destinations"), "{err}");
    }
}
