//! The delivery engine against the embedded simulator: churn, ordering, duplicates, 429
//! storms, Retry-After, outages, lists deleted or not yet visible.

mod delivery_support;

use delivery_support::*;
use serde_json::Value;

// design: Plan — enter, exit, enter within one flush sends one subscribe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_exit_enter_in_one_flush_sends_one_subscribe() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "flush_interval_ms = 400",
        "",
    );
    let engine = engine(&text).await;
    let events: Vec<Value> = vec![
        event("m1", 1, "vip", true, 1000),
        event("m2", 1, "vip", false, 2000),
        event("m3", 1, "vip", true, 3000),
    ];
    let report = engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    assert_eq!(report.accepted(), 3);
    settle(&engine, 30).await;
    assert_lists_match(&sim.sim(), &events);
    let log = sim.sim().request_log();
    let membership: Vec<_> = log
        .iter()
        .filter(|r| r.path.contains("subscribe"))
        .collect();
    assert_eq!(membership.len(), 1, "{membership:?}");
    assert!(membership[0].path.ends_with("/api/lists/subscribe"));
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}
