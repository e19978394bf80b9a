//! A faithful local stand-in for Iterable's list API, for tests, demos and benchmarks.
//!
//! The simulator serves Iterable's list endpoints (`/api/lists`, `/api/lists/subscribe`,
//! `/api/lists/unsubscribe`, `/api/lists/getUsers`, `/api/lists/previewUsers`,
//! `/api/lists/{listId}`, `/api/lists/{listId}/size`) with the bodies, status codes and quirks
//! described in `iterable-api.md`, over several projects (each an email, userId or hybrid
//! project with its own keys, lists and users). It can inject what the real service does to
//! its clients — rate limits, 5xx answers, delays, cut connections, lists that are not yet
//! visible — deterministically under a seed, and it keeps a bounded log of the requests it
//! served. A control API under `/_sim/` and the methods of [`Sim`] read and change its state.
//!
//! # Embedding in a test
//!
//! ```
//! use iterable::types::ProjectType;
//! use iterable_sim::{Faults, SimConfig, Simulator, UserRef};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), iterable_sim::SimError> {
//! // A simulator on 127.0.0.1:0 with two projects, declared in code.
//! let sim = Simulator::start(
//!     SimConfig::new()
//!         .project("key-hybrid", ProjectType::Hybrid)
//!         .project("key-email", ProjectType::Email)
//!         .seed(7),
//! )
//! .await?;
//! let base = sim.base_url(); // "http://127.0.0.1:PORT"; a client posts to base + "/api/lists/subscribe"
//! assert!(base.starts_with("http://127.0.0.1:"));
//!
//! // Mirror a real project: a list with a known id.
//! sim.create_list("key-hybrid", 4242, "vip")?;
//!
//! // ... drive the code under test against `base` ...
//!
//! // Read the state back without HTTP.
//! let members: Vec<String> = sim.list_members("key-hybrid", 4242)?; // as getUsers returns them
//! assert!(members.is_empty());
//! let lists = sim.lists("key-hybrid")?;
//! assert_eq!(lists[0].id, 4242);
//! let profile = sim.user("key-hybrid", &UserRef::user_id("u1"))?; // dataFields, unsubscribes
//! assert!(profile.is_none());
//! sim.forget_user("key-hybrid", &UserRef::email("gone@example.com"))?; // GDPR
//!
//! // Change faults at run time (deterministic under the seed).
//! sim.set_faults(Faults { error_rate: 0.1, error_statuses: vec![503], ..Faults::none() });
//! let log = sim.request_log(); // method, path, body, status of each request
//! assert!(log.is_empty());
//!
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Configuration file
//!
//! `iterable-lists sim --listen 127.0.0.1:8099 --config sim.toml` reads a [`SimConfig`]:
//!
//! ```toml
//! seed = 7
//! [request_log]
//! capacity = 10000            # entries; max_body_bytes bounds the bodies kept
//!
//! [[projects]]
//! id = 1001
//! type = "hybrid"             # email | userId | hybrid
//! api_keys = ["local-key"]
//! lists = [{ id = 4242, name = "vip" }, { id = 9, name = "seg", listType = "Dynamic" }]
//!
//! [faults]
//! error_rate = 0.05           # answered 500/502/503/504 (error_statuses), nothing applied
//! cut_after_rate = 0.01       # applied, then the connection is reset
//! new_list_invisible_ms = 2000
//!
//! [limits.response]
//! body = "json"               # or "text"
//! retry_after = "computed"    # or "none", or { seconds = 2 }
//!
//! [[limits.rules]]            # subscribe and unsubscribe share one bucket
//! endpoints = ["subscribe", "unsubscribe"]
//! requests = 100
//! per_ms = 1000
//! ```
//!
//! The control API (`/_sim/…`, see the `control` module's table in the source) exchanges the
//! same shapes as JSON: `PUT /_sim/faults` takes a [`Faults`], `PUT /_sim/limits` a [`Limits`].
//!
//! # Choices where the reference leaves room
//!
//! - Emails are stored lowercase, and the failure arrays of a bulk answer carry emails
//!   **lowercased** (iterable-api.md gotcha G4: what comes back may not byte-match what was
//!   sent), so clients must compare emails case-insensitively. User ids are echoed exactly.
//! - A subscriber that fails because of *who* it is (not found, conflict, invalid data) and
//!   carries both identifiers is reported in both arrays (`…Emails` and `…UserIds`), counted
//!   once in `failCount`. Invalid identifiers are reported only in the array of the invalid one.
//! - In a userId project an email-only subscriber matches an existing user with that email, and
//!   is otherwise reported in `notFoundEmails` (a user cannot be created without a userId).
//! - `lists/unsubscribe` never creates users; unknown users land in `notFound…`.

mod body;
mod config;
mod control;
mod fields;
mod hash;
mod http_api;
mod identity;
mod limits;
mod log;
mod model;
mod rng;
mod server;
mod sim;

pub use config::{
    ApiKey, CutMode, Endpoint, Faults, LimitBody, LimitResponse, LimitRule, Limits, ListConfig,
    ProjectConfig, RequestLogConfig, RetryAfter, SimConfig,
};
pub use log::LoggedRequest;
pub use model::{UnsubscribeRecord, UserProfile};
pub use server::Simulator;
pub use sim::{ProjectRef, Sim, UserRef};

/// What can go wrong when driving the simulator from Rust.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No project has this key or id.
    #[error("no such project")]
    NoSuchProject,
    /// A project with this id already exists.
    #[error("project {0} already exists")]
    ProjectExists(i64),
    /// The API key already reaches another project.
    #[error("the API key is already in use")]
    KeyInUse,
    /// The project has no list with this id.
    #[error("no list {0} in this project")]
    NoSuchList(i64),
    /// A list with this id already exists (list ids are unique across projects).
    #[error("list {0} already exists")]
    ListExists(i64),
    /// The configuration is not valid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
