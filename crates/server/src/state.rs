//! The state every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use delivery::{Config, Engine, Secret};

use crate::auth::WriteKeys;
use crate::group::GroupCommit;
use crate::mappings::MappingRegistry;
use crate::metrics::Metrics;

/// What handlers share: the engine, the configuration, keys, metrics and mappings.
pub struct AppState {
    /// The delivery engine.
    pub engine: Arc<Engine>,
    /// The configuration the service started with.
    pub config: Arc<Config>,
    /// Write keys and their destinations.
    pub write_keys: WriteKeys,
    /// The admin token; `None` closes the admin API.
    pub admin_token: Option<Secret>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Segment's size limits.
    pub limits: segment::Limits,
    /// Mappings per destination (configured and stored).
    pub mappings: Arc<MappingRegistry>,
    /// Group commit of concurrent ingest requests.
    pub group: GroupCommit,
    draining: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.engine)
            .field("write_keys", &self.write_keys)
            .field("admin_token", &self.admin_token)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state around a started engine (inside a tokio runtime).
    pub fn new(config: Arc<Config>, engine: Arc<Engine>, mappings: Arc<MappingRegistry>) -> Self {
        AppState {
            write_keys: WriteKeys::from_config(&config),
            group: GroupCommit::start(engine.clone()),
            admin_token: config.server.admin_token.clone(),
            engine,
            metrics: Metrics::new(),
            limits: segment::Limits::default(),
            mappings,
            config,
            draining: AtomicBool::new(false),
        }
    }

    /// Marks the service as shutting down (`/readyz` answers 503 from then on).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the service is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
