//! Helpers shared by the delivery and send tests: engines on temporary stores, events, and
//! the model (latest state per identity) that every simulator list must equal.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use delivery::{Config, Engine, EngineOptions};
use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

pub const KEY: &str = "test-key";

/// A configuration for one hybrid destination named `engage` pointed at `base`, with small
/// intervals so that tests run in seconds; `extra` is appended to the destination table.
pub fn config_text(store: &Path, base: &str, delivery: &str, extra: &str) -> String {
    let mut settings: BTreeMap<String, String> = [
        ("flush_interval_ms", "100"),
        ("tick_ms", "20"),
        ("backoff_base_ms", "50"),
        ("backoff_cap_ms", "500"),
        ("new_list_grace_ms", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for line in delivery.lines().filter(|l| l.contains('=')) {
        let (k, v) = line.split_once('=').unwrap();
        settings.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let delivery: String = settings
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    format!(
        "[store]\npath = {store:?}\nsynchronous = \"normal\"\n\n[delivery]\n{delivery}\n[[destination]]\nname = \"engage\"\napi_key = \"{KEY}\"\nendpoint = \"{base}\"\nallow_custom_endpoint = true\nproject_type = \"hybrid\"\n{extra}\n",
        store = store.display().to_string()
    )
}

pub async fn sim() -> Simulator {
    Simulator::start(SimConfig::new().project(KEY, ProjectType::Hybrid).seed(7))
        .await
        .expect("simulator starts")
}

pub async fn engine(text: &str) -> Engine {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = Config::parse(text, |_| None).expect("config parses");
    // After an in-process restart, the previous engine's last tasks may still hold the store
    // (and its lock) for a moment after shutdown: wait for them, boundedly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match Engine::start(config.clone(), EngineOptions::default()).await {
            Err(delivery::EngineError::StoreLocked(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            started => return started.expect("engine starts"),
        }
    }
}

/// An Engage identify event: `user` enters (`true`) or exits (`false`) `audience`.
pub fn event(id: &str, user: u32, audience: &str, member: bool, ts_ms: i64) -> Value {
    json!({
        "type": "identify",
        "messageId": id,
        "userId": format!("u{user}"),
        "timestamp": segment::Timestamp::from_unix_millis(ts_ms).to_rfc3339(),
        "traits": {"email": format!("user{user}@example.com"), audience: member},
        "context": {"personas": {"computation_class": "audience", "computation_key": audience}}
    })
}

pub fn parsed(events: &[Value]) -> Vec<Result<segment::Event, segment::ElementError>> {
    events
        .iter()
        .map(|v| Ok(serde_json::from_value(v.clone()).expect("event parses")))
        .collect()
}

/// Latest state per (audience, email) by timestamp, ties by order: the expected members.
pub fn model(events: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut latest: BTreeMap<(String, String), (i64, usize, bool)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let audience = e["context"]["personas"]["computation_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let email = e["traits"]["email"].as_str().unwrap().to_lowercase();
        let ts = segment::Timestamp::parse(e["timestamp"].as_str().unwrap())
            .unwrap()
            .unix_millis();
        let member = e["traits"][&audience].as_bool().unwrap();
        let slot = latest
            .entry((audience, email))
            .or_insert((i64::MIN, 0, false));
        if (ts, i) >= (slot.0, slot.1) {
            *slot = (ts, i, member);
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((audience, email), (_, _, member)) in latest {
        let set = out.entry(audience).or_default();
        if member {
            set.insert(email);
        }
    }
    out
}

/// The simulator's lists by name with their members (lowercased emails).
pub fn sim_lists(sim: &iterable_sim::Sim) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for l in sim.lists(KEY).expect("project") {
        let members = sim.list_members(KEY, l.id).expect("list");
        out.insert(
            l.name.clone(),
            members.into_iter().map(|m| m.to_lowercase()).collect(),
        );
    }
    out
}

/// Asserts every audience of the model has a list equal to it.
pub fn assert_lists_match(sim: &iterable_sim::Sim, events: &[Value]) {
    let want = model(events);
    let got = sim_lists(sim);
    for (audience, members) in &want {
        let have = got.get(audience).cloned().unwrap_or_default();
        assert_eq!(
            have.len(),
            members.len(),
            "audience {audience}: {} members in the simulator, {} in the model",
            have.len(),
            members.len()
        );
        assert_eq!(&have, members, "audience {audience}");
    }
}

pub async fn settle(engine: &Engine, secs: u64) {
    let outcome = engine.wait_settled(Duration::from_secs(secs)).await;
    assert_eq!(
        outcome,
        delivery::WaitOutcome::Settled,
        "{:?}",
        engine.stats()
    );
}

pub fn shared<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
