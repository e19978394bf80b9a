//! The delivery engine against the embedded simulator: churn, ordering, duplicates, 429
//! storms, Retry-After, outages, lists deleted or not yet visible.

mod support;

use serde_json::Value;
use support::*;

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

use std::time::{Duration, Instant};

use iterable_sim::{Endpoint, Faults, LimitBody, LimitResponse, LimitRule, Limits, RetryAfter};

fn membership_requests(sim: &iterable_sim::Sim) -> Vec<iterable_sim::LoggedRequest> {
    sim.request_log()
        .into_iter()
        .filter(|r| {
            r.path.starts_with("/api/lists/subscribe")
                || r.path.starts_with("/api/lists/unsubscribe")
        })
        .collect()
}

// design: Ledger — an older event never overwrites a newer one, even when it arrives later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_event_arriving_later_does_not_overwrite_the_newer_state() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "",
    ))
    .await;
    let newer = vec![
        event("new", 1, "vip", true, 5_000),
        event("n2", 2, "vip", false, 5_000),
    ];
    let older = vec![
        event("old", 1, "vip", false, 1_000),
        event("o2", 2, "vip", true, 1_000),
    ];
    engine.accept_batch("engage", parsed(&newer)).await.unwrap();
    let r = engine.accept_batch("engage", parsed(&older)).await.unwrap();
    assert_eq!(r.skipped(), 2, "{r:?}");
    settle(&engine, 30).await;
    let all: Vec<Value> = newer.iter().chain(&older).cloned().collect();
    assert_lists_match(&sim.sim(), &all);
    assert_eq!(sim_lists(&sim.sim())["vip"].len(), 1);
}

// design: Ledger — a duplicate messageId is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_message_id_is_applied_once() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "",
    ))
    .await;
    let first = vec![
        event("m1", 1, "vip", true, 1_000),
        event("m2", 1, "vip", false, 2_000),
    ];
    engine.accept_batch("engage", parsed(&first)).await.unwrap();
    settle(&engine, 30).await;
    // m1 again, with a newer timestamp: still a duplicate, so the user stays out.
    let again = vec![event("m1", 1, "vip", true, 9_000)];
    let r = engine.accept_batch("engage", parsed(&again)).await.unwrap();
    assert_eq!(r.duplicates(), 1);
    settle(&engine, 30).await;
    assert!(sim_lists(&sim.sim())["vip"].is_empty());
}

// design decision 2: an exit for someone never subscribed to a list this service created is
// skipped without a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_never_subscribed_to_a_created_list_is_skipped_without_a_request() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "",
    ))
    .await;
    engine
        .accept_batch("engage", parsed(&[event("a", 1, "vip", true, 1_000)]))
        .await
        .unwrap();
    settle(&engine, 30).await;
    engine
        .accept_batch("engage", parsed(&[event("b", 2, "vip", false, 2_000)]))
        .await
        .unwrap();
    settle(&engine, 30).await;
    let unsubscribes = membership_requests(&sim.sim())
        .into_iter()
        .filter(|r| r.path.contains("unsubscribe"))
        .count();
    assert_eq!(unsubscribes, 0);
    assert_eq!(engine.stats().skipped.get("exit_never_sent"), Some(&1));
}

fn many_audiences(audiences: usize, users: u32) -> Vec<Value> {
    let mut events = Vec::new();
    for a in 0..audiences {
        for u in 0..users {
            let id = format!("a{a}-u{u}");
            events.push(event(
                &id,
                u,
                &format!("aud_{a}"),
                u % 5 != 0,
                1_000 + i64::from(u),
            ));
        }
    }
    events
}

async fn storm(body: LimitBody) {
    let sim = sim().await;
    sim.sim().set_limits(
        Limits::none()
            .rule(
                LimitRule::per_second(&[Endpoint::Subscribe, Endpoint::Unsubscribe], 5.0)
                    .burst(2.0),
            )
            .response(LimitResponse {
                body,
                retry_after: RetryAfter::None,
            }),
    );
    let dir = tempfile::tempdir().unwrap();
    // A configured rate far above the limit: the storm of 429s must be retried, not lost.
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "rate_per_second = 200.0",
    ))
    .await;
    let events = many_audiences(12, 30);
    engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    settle(&engine, 120).await;
    assert_lists_match(&sim.sim(), &events);
    let stats = engine.stats();
    assert!(stats.rate_limited > 0, "{stats:?}");
    assert_eq!(stats.rejected_total(), 0, "{stats:?}");
}

// iterable-api.md §4.2: 429s are retried whatever their body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_with_json_bodies_loses_nothing() {
    storm(LimitBody::Json).await;
}

// iterable-api.md §7 G17: a 429 may come with a plain-text body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_with_plain_text_bodies_loses_nothing() {
    storm(LimitBody::Text).await;
}

// design: Send — Retry-After is honoured for the whole project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_holds_the_project_before_the_next_request() {
    let sim = sim().await;
    sim.sim().set_limits(
        Limits::none()
            .rule(
                LimitRule::per_second(&[Endpoint::Subscribe, Endpoint::Unsubscribe], 10.0)
                    .burst(1.0),
            )
            .response(LimitResponse {
                body: LimitBody::Json,
                retry_after: RetryAfter::Seconds(2),
            }),
    );
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "rate_per_second = 1000.0\nconcurrency = 1",
    ))
    .await;
    let events = many_audiences(3, 5);
    let start = Instant::now();
    engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    settle(&engine, 60).await;
    assert_lists_match(&sim.sim(), &events);
    let stats = engine.stats();
    // Without honouring Retry-After the 50 ms backoff would hit the limit again and again.
    assert!(stats.rate_limited >= 1, "{stats:?}");
    assert!(stats.rate_limited <= 2, "{stats:?}");
    assert!(start.elapsed() >= Duration::from_secs(2));
}

// design: Send — an outage longer than the backoff cap ends in delivery, not in loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_longer_than_the_backoff_cap_is_survived() {
    let sim = sim().await;
    sim.sim().set_faults(Faults {
        error_rate: 1.0,
        error_statuses: vec![503],
        ..Faults::none()
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "",
    ))
    .await;
    let events = many_audiences(2, 20);
    engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    // Backoff cap is 500 ms in these tests; stay down for 2.5 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(engine.backlog() > 0);
    assert!(engine.stats().retries >= 4, "{:?}", engine.stats());
    sim.sim().set_faults(Faults::none());
    settle(&engine, 60).await;
    assert_lists_match(&sim.sim(), &events);
}

// design decision 7 and peers T11: a list deleted mid-run is re-created and every identity
// that should be in it is subscribed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_deleted_mid_run_is_recreated_with_every_member() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "new_list_grace_ms = 300",
        "",
    ))
    .await;
    let mut events: Vec<Value> = (0..10)
        .map(|u| event(&format!("e{u}"), u, "vip", true, 1_000))
        .collect();
    engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    settle(&engine, 30).await;
    let old = sim.sim().lists(KEY).unwrap()[0].id;
    sim.sim().delete_list(KEY, old).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late = vec![event("late", 99, "vip", true, 2_000)];
    events.extend(late.clone());
    engine.accept_batch("engage", parsed(&late)).await.unwrap();
    settle(&engine, 30).await;
    let lists = sim.sim().lists(KEY).unwrap();
    assert_eq!(lists.len(), 1);
    assert_ne!(lists[0].id, old);
    assert_lists_match(&sim.sim(), &events);
    let status = engine.status().await.unwrap();
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("no longer exists")),
        "{:?}",
        status.warnings
    );
}

// iterable-api.md §7 G1, peers T2: a new list may answer invalidListId for a while; it is
// retried, not replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_list_answering_invalid_list_id_for_a_while_is_retried_not_replaced() {
    let sim = sim().await;
    sim.sim().set_faults(Faults {
        new_list_invisible_ms: 1_000,
        ..Faults::none()
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "new_list_grace_ms = 5000",
        "",
    ))
    .await;
    let events: Vec<Value> = (0..10)
        .map(|u| event(&format!("e{u}"), u, "fresh", true, 1_000))
        .collect();
    engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    settle(&engine, 30).await;
    assert_eq!(sim.sim().lists(KEY).unwrap().len(), 1);
    assert_lists_match(&sim.sim(), &events);
    let refused = membership_requests(&sim.sim())
        .iter()
        .filter(|r| r.status == Some(400))
        .count();
    assert!(refused >= 1, "the simulator never answered invalidListId");
}

// design: Respect Iterable — a refused key pauses the project instead of spinning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_api_key_pauses_the_project_without_spinning() {
    let sim = sim().await;
    sim.sim().create_list(KEY, 77, "vip").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&dir.path().join("s.db"), &sim.base_url(), "", "")
        .replace(&format!("api_key = \"{KEY}\""), "api_key = \"wrong-key\"")
        + "[destination.audiences.vip]\nlist = { id = 77 }\n";
    let engine = engine(&text).await;
    engine
        .accept_batch("engage", parsed(&[event("a", 1, "vip", true, 1_000)]))
        .await
        .unwrap();
    let outcome = engine.wait_settled(Duration::from_secs(30)).await;
    assert!(
        matches!(outcome, delivery::WaitOutcome::Paused { pending: 1, .. }),
        "{outcome:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(engine.stats().requests, 1, "{:?}", engine.stats());
    let status = engine.status().await.unwrap();
    assert!(
        status.projects[0]
            .paused
            .as_deref()
            .unwrap_or("")
            .contains("API key")
    );
}

// design decision 13: a backfill of one list never starves the trickle of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_change_on_one_list_is_delivered_while_another_list_backfills() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "",
        "rate_per_second = 10.0\nconcurrency = 1\nbatch = { max_subscribers = 10 }",
    ))
    .await;
    // 60 requests at 10 per second: about six seconds of backfill.
    let big: Vec<Value> = (0..600)
        .map(|u| event(&format!("b{u}"), u, "big", true, 1_000))
        .collect();
    engine.accept_batch("engage", parsed(&big)).await.unwrap();
    while engine.stats().requests < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let small = vec![event("s1", 10_000, "small", true, 1_000)];
    engine.accept_batch("engage", parsed(&small)).await.unwrap();
    let start = Instant::now();
    loop {
        let lists = sim_lists(&sim.sim());
        if lists.get("small").is_some_and(|m| m.len() == 1) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the single change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The backfill is still under way: the single change did not wait for it.
    let status = engine.status().await.unwrap();
    let big_pending: u64 = status
        .pending
        .iter()
        .filter(|p| p.audience_key == "big")
        .map(|p| p.pending)
        .sum();
    assert!(big_pending >= 100, "{big_pending} big changes pending");
    settle(&engine, 60).await;
    let all: Vec<Value> = big.iter().chain(&small).cloned().collect();
    assert_lists_match(&sim.sim(), &all);
}

// design decision 7: with on_missing_list = "reject", a vanished list is never re-created,
// not even after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_list_with_reject_policy_rejects_and_is_not_recreated_after_restart() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        "new_list_grace_ms = 100",
        "on_missing_list = \"reject\"",
    );
    let first = engine(&text).await;
    first
        .accept_batch("engage", parsed(&[event("a", 1, "vip", true, 1_000)]))
        .await
        .unwrap();
    settle(&first, 30).await;
    let old = sim.sim().lists(KEY).unwrap()[0].id;
    sim.sim().delete_list(KEY, old).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    first
        .accept_batch("engage", parsed(&[event("b", 2, "vip", true, 2_000)]))
        .await
        .unwrap();
    settle(&first, 30).await;
    assert_eq!(
        first.stats().rejected.get("list_missing"),
        Some(&1),
        "{:?}",
        first.stats()
    );
    first.shutdown(Duration::from_secs(5)).await;
    drop(first);

    let second = engine(&text).await;
    second
        .accept_batch("engage", parsed(&[event("c", 3, "vip", true, 3_000)]))
        .await
        .unwrap();
    settle(&second, 30).await;
    assert_eq!(
        second.stats().rejected.get("list_missing"),
        Some(&1),
        "{:?}",
        second.stats()
    );
    assert!(sim.sim().lists(KEY).unwrap().is_empty());
}
