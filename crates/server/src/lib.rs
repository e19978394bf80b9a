//! The HTTP service of iterable-lists: Segment-compatible ingest, the admin API, metrics and
//! health, in front of the durable delivery engine (`delivery`).
//!
//! - **Ingest** ([`ingest`]): `POST /v1/batch` (and `/v1/import`), `/v1/identify`,
//!   `/v1/track` and the other single-call routes, as Segment's tracking API answers them.
//!   The write key (Basic auth user name, or `writeKey` in the body) selects the destination.
//!   A batch is acknowledged only once the engine wrote it durably; the 200 answer carries
//!   Segment's `{"success": true}` plus counts and each rejected element's index and reason.
//!   A busy store answers 429 with `Retry-After`; a store that cannot write answers 503.
//! - **Admin API** ([`admin`]): under `/admin`, bearer token, described by
//!   `/admin/openapi.json`.
//! - **Operations**: `/metrics` (Prometheus text), `/healthz`, `/readyz`.
//!
//! ```no_run
//! # async fn run(config: delivery::Config) -> Result<(), server::ServerError> {
//! let server = server::Server::start(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! server
//!     .serve(listener, async { let _ = tokio::signal::ctrl_c().await; }, std::time::Duration::from_secs(10))
//!     .await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod auth;
pub mod body;
pub mod error;
pub mod group;
pub mod ingest;
pub mod mappings;
pub mod metrics;
pub mod state;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use delivery::{Config, Engine, EngineOptions, Mapper, WaitOutcome};
use destination::custom_mapping::MappingConfig;
use serde_json::json;

pub use error::ApiError;
pub use mappings::{MappingRegistry, RegistryMapper};
pub use state::AppState;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The engine could not start (store locked, bad configuration…).
    #[error(transparent)]
    Engine(#[from] delivery::EngineError),
    /// The stored mappings could not be loaded.
    #[error("mappings: {0}")]
    Mappings(#[from] mappings::MappingChangeError),
    /// Binding or serving failed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
}

/// The running service: engine, state and routes.
#[derive(Debug, Clone)]
pub struct Server {
    state: Arc<AppState>,
}

impl Server {
    /// Starts the engine on the configured store and loads each destination's mappings.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        Self::start_with(config, EngineOptions::default()).await
    }

    /// Like [`Server::start`], with engine options (mappers given here win over the registry).
    pub async fn start_with(config: Config, options: EngineOptions) -> Result<Server, ServerError> {
        Self::build(config, None, options).await
    }

    /// Starts on an already opened store (tests inject faulty stores this way).
    pub async fn start_on_store(
        config: Config,
        store: Arc<dyn store::Store>,
        options: EngineOptions,
    ) -> Result<Server, ServerError> {
        Self::build(config, Some(store), options).await
    }

    async fn build(
        config: Config,
        store: Option<Arc<dyn store::Store>>,
        mut options: EngineOptions,
    ) -> Result<Server, ServerError> {
        let config = Arc::new(config);
        // The registry needs the store, which the engine opens: start the engine with mappers
        // that read a registry filled in right after.
        let names: Vec<String> = config.destinations.iter().map(|d| d.name.clone()).collect();
        let slot: Arc<parking_lot::RwLock<Option<Arc<MappingRegistry>>>> = Arc::default();
        for n in &names {
            options.mappers.entry(n.clone()).or_insert_with(|| {
                Arc::new(LateMapper {
                    slot: slot.clone(),
                    destination: n.clone(),
                }) as Arc<dyn Mapper>
            });
        }
        let engine = Arc::new(match store {
            Some(s) => Engine::with_store((*config).clone(), s, options).await?,
            None => Engine::start((*config).clone(), options).await?,
        });
        let store = engine.store();
        let registry = tokio::task::spawn_blocking({
            let names = names.clone();
            let declared: HashMap<String, Vec<MappingConfig>> = config
                .destinations
                .iter()
                .map(|d| (d.name.clone(), d.mappings.clone()))
                .collect();
            move || MappingRegistry::load(store, &names, &declared)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        let registry = Arc::new(registry);
        *slot.write() = Some(registry.clone());
        Ok(Server {
            state: Arc::new(AppState::new(config, engine, registry)),
        })
    }

    /// The shared state (engine, metrics…).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.state.engine
    }

    /// Every route of the service.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves on `listener` until `signal` resolves, then shuts down gracefully: stops
    /// accepting connections and lets requests in progress finish, then gives delivery up to
    /// `flush_bound` to send what is pending, then stops the engine. What is still pending
    /// stays in the store for the next start.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
        flush_bound: Duration,
    ) -> Result<(), ServerError> {
        let state = self.state.clone();
        let app = self.router();
        let drain_state = state.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                signal.await;
                drain_state.start_draining();
                tracing::info!("shutting down: no new connections");
            })
            .await?;
        let started = tokio::time::Instant::now();
        match state.engine.wait_settled(flush_bound).await {
            WaitOutcome::Settled => tracing::info!("shutdown: every accepted change was delivered"),
            WaitOutcome::TimedOut { pending } => {
                tracing::warn!(
                    pending,
                    "shutdown: changes still pending stay in the store for the next start"
                )
            }
            WaitOutcome::Paused { pending, .. } => {
                tracing::warn!(
                    pending,
                    "shutdown: a project is paused; pending changes stay in the store"
                )
            }
        }
        let left = flush_bound
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        state.engine.shutdown(left).await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// A mapper that waits for the registry (the registry needs the store the engine opens).
struct LateMapper {
    slot: Arc<parking_lot::RwLock<Option<Arc<MappingRegistry>>>>,
    destination: String,
}

impl Mapper for LateMapper {
    fn map(
        &self,
        event: &segment::Event,
        settings: &destination::settings::DestinationSettings,
        ctx: destination::default_mapping::MapContext,
    ) -> destination::model::ProcessedEvent {
        let reg = self.slot.read().clone();
        match reg {
            Some(r) => RegistryMapper::new(r, &self.destination).map(event, settings, ctx),
            None => destination::default_mapping::map_event(event, settings, ctx),
        }
    }
}

/// The routes over a state.
pub fn router(state: Arc<AppState>) -> Router {
    let admin = Router::new()
        .route("/status", get(admin::status))
        .route("/destinations", get(admin::destinations))
        .route("/destinations/{name}", get(admin::destination))
        .route("/destinations/{name}/audiences", get(admin::audiences))
        .route("/destinations/{name}/pause", post(admin::pause))
        .route("/destinations/{name}/resume", post(admin::resume))
        .route("/destinations/{name}/replay", post(admin::replay))
        .route(
            "/destinations/{name}/test-mapping",
            post(admin::test_mapping),
        )
        .route(
            "/destinations/{name}/mappings",
            get(admin::mappings_list).post(admin::mappings_create),
        )
        .route(
            "/destinations/{name}/mappings/{mapping}",
            axum::routing::put(admin::mappings_replace).delete(admin::mappings_delete),
        )
        .route(
            "/destinations/{name}/mappings/{mapping}/enable",
            post(admin::mappings_enable),
        )
        .route(
            "/destinations/{name}/mappings/{mapping}/disable",
            post(admin::mappings_disable),
        )
        .route("/log", get(admin::log))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ))
        .route("/openapi.json", get(admin::openapi));
    Router::new()
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/import", post(ingest::batch))
        .route("/v1/identify", post(ingest::identify))
        .route("/v1/track", post(ingest::track))
        .route("/v1/page", post(ingest::page))
        .route("/v1/screen", post(ingest::screen))
        .route("/v1/group", post(ingest::group))
        .route("/v1/alias", post(ingest::alias))
        .nest("/admin", admin)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if let Ok(st) = state.engine.status().await {
        state
            .metrics
            .update_from_engine(&st, &state.engine.destinations());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Ready when not shutting down, the store answers, and the backlog is under its bound.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "shutting_down" })),
        )
            .into_response();
    }
    match state.engine.status().await {
        Ok(st) if st.backlog >= st.backlog_bound => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "busy", "backlog": st.backlog, "backlog_bound": st.backlog_bound })),
        )
            .into_response(),
        Ok(st) => axum::Json(json!({ "status": "ready", "backlog": st.backlog })).into_response(),
        Err(e) => {
            let err = ApiError::from_engine(&e);
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "status": "store_unavailable", "message": err.message })))
                .into_response()
        }
    }
}
