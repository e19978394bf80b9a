//! Pieces every figure uses: the engine's configuration, the simulator, accepting NDJSON.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use delivery::{Config, Engine, EngineOptions};
use iterable::ProjectType;
use iterable_sim::{RequestLogConfig, SimConfig, Simulator};

/// The simulator's API key for the benchmark project.
pub const API_KEY: &str = "bench-key";
/// The destination's name in the engine's configuration.
pub const DEST: &str = "bench";
/// The destination's write key.
pub const WRITE_KEY: &str = "bench-write-key";
/// The admin token of the service.
pub const ADMIN_TOKEN: &str = "bench-admin-token";

/// Engine configuration knobs a figure changes.
#[derive(Debug, Clone, Default)]
pub struct EngineKnobs {
    /// `rate_per_second` of the destination (`None`: found from 429s).
    pub rate: Option<f64>,
    /// Extra lines for `[delivery]`.
    pub delivery: String,
    /// Extra lines for `[server]`.
    pub server: String,
}

/// The TOML configuration of one destination on the simulator at `endpoint`.
pub fn config_text(store: &Path, endpoint: &str, knobs: &EngineKnobs) -> String {
    let rate = knobs
        .rate
        .map(|r| format!("rate_per_second = {r:?}\n"))
        .unwrap_or_default();
    format!(
        "[store]\npath = {store:?}\n\
         [server]\nadmin_token = {ADMIN_TOKEN:?}\n{server}\n\
         [delivery]\n{delivery}\n\
         [[destination]]\nname = {DEST:?}\nwrite_key = {WRITE_KEY:?}\napi_key = {API_KEY:?}\n\
         endpoint = {endpoint:?}\nallow_custom_endpoint = true\nproject_type = \"hybrid\"\n{rate}",
        store = store.display().to_string(),
        server = knobs.server,
        delivery = knobs.delivery,
    )
}

/// Starts an engine (delivering unless `accept_only`).
pub async fn engine(text: &str, accept_only: bool) -> anyhow::Result<Engine> {
    let config = Config::parse(text, |_| None).context("benchmark configuration")?;
    Ok(Engine::start(
        config,
        EngineOptions {
            accept_only,
            ..EngineOptions::default()
        },
    )
    .await?)
}

/// A simulator with the benchmark project; the request log keeps `log_entries` entries and
/// their bodies (0: no log).
pub async fn simulator(log_entries: usize) -> anyhow::Result<Simulator> {
    Ok(Simulator::start(
        SimConfig::new()
            .project(API_KEY, ProjectType::Hybrid)
            .request_log(RequestLogConfig {
                capacity: log_entries,
                max_body_bytes: 2 << 30,
            }),
    )
    .await?)
}

/// Accepts NDJSON `text` in batches of `batch` events; returns the events accepted.
pub async fn accept_ndjson(engine: &Engine, text: &str, batch: usize) -> anyhow::Result<usize> {
    let limits = segment::Limits::default();
    let mut accepted = 0;
    let mut chunk = Vec::with_capacity(batch);
    let mut it = segment::ndjson_iter(text.as_bytes(), &limits).peekable();
    while it.peek().is_some() {
        chunk.extend(it.by_ref().take(batch));
        let report = engine
            .accept_batch(DEST, std::mem::take(&mut chunk))
            .await?;
        anyhow::ensure!(
            report.rejected() == 0,
            "rejected events: {:?}",
            report.events
        );
        accepted += report.accepted();
    }
    Ok(accepted)
}

/// Waits until nothing is pending, or fails after `secs`.
pub async fn settle(engine: &Engine, secs: u64) -> anyhow::Result<()> {
    match engine.wait_settled(Duration::from_secs(secs)).await {
        delivery::WaitOutcome::Settled => Ok(()),
        other => anyhow::bail!("delivery did not settle: {other:?}"),
    }
}

/// Subscribe and unsubscribe requests in the simulator's log: (subscribe, unsubscribe, 429s,
/// other requests).
pub fn count_requests(log: &[iterable_sim::LoggedRequest]) -> (usize, usize, usize, usize) {
    let (mut sub, mut unsub, mut limited, mut other) = (0, 0, 0, 0);
    for r in log {
        if r.path.starts_with("/api/lists/subscribe") {
            sub += 1;
        } else if r.path.starts_with("/api/lists/unsubscribe") {
            unsub += 1;
        } else {
            other += 1;
            continue;
        }
        if r.status == Some(429) {
            limited += 1;
        }
    }
    (sub, unsub, limited, other)
}
