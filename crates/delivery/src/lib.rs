//! The durable delivery engine of iterable-lists.
//!
//! Accepting a batch writes the **desired state** it implies into the ledger (the `store`
//! crate) in one transaction, and only then answers. Delivery runs beside it: a scheduler
//! finds audiences with due changes and flushes one when it has [`DeliveryConfig::flush_threshold`]
//! changes in one direction or its oldest change is older than the flush interval; one worker
//! per Iterable project (API key and base URL) takes those audiences round-robin, under one
//! rate limiter and one concurrency bound, claims up to one request's worth of rows, resolves
//! the audience's list, plans the request, sends it, and records what Iterable said,
//! version-guarded so that a row sent at version `v` becomes clean only if it is still at `v`.
//!
//! - [`Config`]: the TOML configuration shared by `send`, `serve` and `demo`.
//! - [`Engine`]: [`Engine::start`], [`Engine::accept_batch`], [`Engine::status`],
//!   [`Engine::wait_settled`], [`Engine::shutdown`].
//! - [`Mapper`]: where custom mappings plug in; [`DefaultMapper`] otherwise.
//!
//! Crash safety comes from the ledger: a `kill -9` loses nothing acknowledged, claims are
//! freed when the store is opened again, and re-sending is harmless because subscribe and
//! unsubscribe are idempotent.

pub mod config;
mod deliver;
mod engine;
mod error;
pub mod limiter;
mod mapper;
mod stats;

pub use config::{
    Config, ConfigError, DeliveryConfig, DestinationConfig, RetentionConfig, Secret, ServerConfig,
    StoreConfig, SyncMode,
};
pub use engine::{
    AcceptReport, Engine, EngineOptions, EngineStatus, EventReport, EventResult, PendingEntry,
    ProjectStatus, WaitOutcome, now_ms,
};
pub use error::EngineError;
pub use mapper::{DefaultMapper, Mapper};
pub use stats::{LATENCY_BOUNDS, LatencySnapshot, StatsSnapshot};
