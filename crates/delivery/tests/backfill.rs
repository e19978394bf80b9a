//! A 250,000-event backfill at a simulated rate limit: once with the rate configured, once
//! with the rate found from 429s. No event may be lost either way.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use iterable_sim::{Endpoint, LimitRule, Limits};
use segment::{ElementError, Event, Limits as SegLimits};
use support::*;

const EVENTS: usize = 250_000;
const AUDIENCES: usize = 5;

/// `EVENTS` events over `AUDIENCES` audiences, one per (audience, user); every tenth user
/// exits instead of entering. Returns the events in chunks of 1000 and the expected members.
type Chunks = Vec<Vec<Result<Event, ElementError>>>;

fn backfill() -> (Chunks, BTreeMap<String, BTreeSet<String>>) {
    let limits = SegLimits::default();
    let mut chunks = Vec::new();
    let mut chunk = Vec::with_capacity(1000);
    let mut model: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in 0..EVENTS {
        let audience = format!("backfill_{}", i % AUDIENCES);
        let user = i / AUDIENCES;
        let member = user % 10 != 0;
        let email = format!("user{user}@example.com");
        if member {
            model
                .entry(audience.clone())
                .or_default()
                .insert(email.clone());
        }
        let text = format!(
            r#"{{"type":"identify","messageId":"bf-{i}","userId":"u{user}","timestamp":"2024-05-06T09:30:22.829Z","traits":{{"email":"{email}","{audience}":{member}}},"context":{{"personas":{{"computation_class":"audience","computation_key":"{audience}"}}}}}}"#
        );
        chunk.push(segment::parse_element(&text, i, &limits));
        if chunk.len() == 1000 {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    (chunks, model)
}

/// The two backfills run one after the other: each measures rates, and on a 2-core machine
/// they would otherwise compete for the CPU they measure.
static ONE_AT_A_TIME: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

async fn run_backfill(
    sim_rate: f64,
    destination_extra: &str,
    delivery_extra: &str,
) -> (delivery::StatsSnapshot, Option<Duration>) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sim = sim().await;
    sim.sim()
        .set_limits(Limits::none().rule(LimitRule::per_second(
            &[Endpoint::Subscribe, Endpoint::Unsubscribe],
            sim_rate,
        )));
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        &format!("flush_interval_ms = 1000\n{delivery_extra}"),
        destination_extra,
    );
    let (chunks, model) = backfill();
    // The whole backfill is accepted first, with delivery off, so that delivery starts with
    // the full backlog and meets the simulator's limit at once.
    {
        let config = delivery::Config::parse(&text, |_| None).unwrap();
        let options = delivery::EngineOptions {
            accept_only: true,
            ..Default::default()
        };
        let accepting = delivery::Engine::start(config, options).await.unwrap();
        let t = Instant::now();
        for chunk in chunks {
            accepting.accept_batch("engage", chunk).await.unwrap();
        }
        println!("backfill: accepted in {:.1} s", t.elapsed().as_secs_f64());
        accepting.shutdown(Duration::from_secs(1)).await;
    }
    let engine = std::sync::Arc::new(engine(&text).await);
    let start = Instant::now();
    // Watch the rate in force: when does it first reach half the simulator's limit?
    let watcher = {
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                let s = engine.status().await.unwrap();
                if s.projects[0].rate_per_second >= sim_rate / 2.0 {
                    return Some(start.elapsed());
                }
                if start.elapsed() > Duration::from_secs(300) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    settle(&engine, 600).await;
    let found = watcher.await.unwrap();
    let stats = engine.stats();
    assert_eq!(stats.rejected_total(), 0, "{stats:?}");
    let got = sim_lists(&sim.sim());
    for (audience, members) in &model {
        let have = got.get(audience).cloned().unwrap_or_default();
        assert_eq!(have.len(), members.len(), "{audience}");
        assert_eq!(&have, members, "{audience}");
    }
    println!(
        "backfill: {} requests, {} answered 429 ({:.2} %), {:.1} s, rate reached {} req/s after {:?}",
        stats.requests,
        stats.rate_limited,
        100.0 * stats.rate_limited as f64 / stats.requests.max(1) as f64,
        start.elapsed().as_secs_f64(),
        sim_rate / 2.0,
        found
    );
    (stats, found)
}

// design decision 13: with a configured rate the service keeps under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_at_the_configured_rate_loses_nothing_and_rarely_meets_429() {
    let (stats, _) = run_backfill(10.0, "rate_per_second = 10.0", "").await;
    assert!(
        stats.rate_limited * 50 <= stats.requests,
        "more than 2 % of requests answered 429: {stats:?}"
    );
}

// design decision 13: without a configured rate it finds the rate from 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_without_a_rate_finds_it_within_a_minute_and_loses_nothing() {
    let (stats, found) = run_backfill(6.0, "", "aimd_initial_rate = 1.0").await;
    let found = found.expect("the rate never reached half the simulator's limit");
    assert!(found <= Duration::from_secs(60), "{found:?}");
    // The limit was met (and the rate found from the 429s), not merely approached.
    assert!(stats.rate_limited > 0, "{stats:?}");
}
