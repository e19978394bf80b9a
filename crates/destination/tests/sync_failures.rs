//! End to end through the embedded simulator: transport and HTTP failures, per-subscriber
//! attribution, isolation by splitting, and the auth stop (peers T6, T14, T16; design
//! decisions 2 and 9; iterable-api.md §4).

mod sync_support;

use std::sync::Arc;
use std::time::Duration;

use destination::lists::{Clock, ManualClock, MemoryMappingStore};
use destination::model::{Outcome, ReasonCode};
use destination::settings::{ApiKey, AudienceConfig, ListBinding};
use destination::sync::{Executor, SyncSettings, client_for};
use iterable::ProjectType;
use iterable_sim::{
    Endpoint, Faults, LimitBody, LimitResponse, LimitRule, Limits, RetryAfter, SimConfig,
    Simulator, UserRef,
};
use serde_json::json;
use sync_support::*;

fn is_retrying(o: &Outcome) -> bool {
    matches!(o, Outcome::Retrying { reason, .. } if reason.code == ReasonCode::Transient)
}

// peers T6: a 500 is surfaced and retried, never reported as success; once Iterable
// recovers, sending again delivers.
#[tokio::test]
async fn server_errors_are_retried_then_left_retrying() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim.create_list(KEY, 42, "t6").unwrap();
    e.sim.set_faults(Faults {
        endpoints: vec![Endpoint::Subscribe],
        error_rate: 1.0,
        error_statuses: vec![500],
        ..Faults::none()
    });
    let events = build_all(&[
        ev("t6", None, Some("a@example.com"), true),
        ev("t6", None, Some("b@example.com"), true),
    ]);
    let r = e.exec.sync_events(&events).await;
    assert!(r.outcomes.iter().all(is_retrying), "{:?}", r.outcomes);
    let statuses: Vec<_> = r.requests.iter().map(|q| (q.status, q.attempt)).collect();
    assert_eq!(
        statuses,
        vec![(Some(500), 1), (Some(500), 2), (Some(500), 3)],
        "three attempts, all surfaced"
    );
    assert!(members(&e.sim, 42, false).is_empty());

    e.sim.set_faults(Faults::none());
    let r = e.exec.sync_events(&events).await;
    assert!(r.outcomes.iter().all(is_delivered), "{:?}", r.outcomes);
    assert_eq!(
        members(&e.sim, 42, false),
        vec!["a@example.com", "b@example.com"]
    );
}

// A cut connection is a retryable transport failure.
#[tokio::test]
async fn cut_connections_are_retried() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim.create_list(KEY, 43, "cut").unwrap();
    e.sim.set_faults(Faults {
        endpoints: vec![Endpoint::Subscribe],
        cut_before_rate: 1.0,
        ..Faults::none()
    });
    let r = e
        .exec
        .sync_events(&build_all(&[ev("cut", None, Some("a@example.com"), true)]))
        .await;
    assert!(is_retrying(&r.outcomes[0]), "{:?}", r.outcomes);
    assert_eq!(r.requests.len(), 3);
    assert!(r.requests.iter().all(|q| q.status.is_none()));
}

// peers T16: a plain-text 429 does not break parsing; Retry-After is honoured; the events
// stay retryable while the limit holds and are delivered once it lifts.
#[tokio::test]
async fn plain_text_429_is_retried_honouring_retry_after() {
    let sim = start(ProjectType::Email).await;
    sim.create_list(KEY, 44, "t16").unwrap();
    sim.set_limits(
        Limits::none()
            .rule(LimitRule::per_minute(&[Endpoint::Subscribe], 1.0))
            .response(LimitResponse {
                body: LimitBody::Text,
                retry_after: RetryAfter::Seconds(7),
            }),
    );
    let dest = dest_for(&sim, ProjectType::Email);
    let clock = Arc::new(ManualClock::new());
    let exec = Executor::with_parts(
        dest.clone(),
        Arc::new(client_for(&dest).unwrap()),
        fast_settings(),
        Arc::new(MemoryMappingStore::new()),
        clock.clone(),
    );
    // The first request uses the minute's only slot.
    let r = exec
        .sync_events(&build_all(&[ev("t16", None, Some("a@example.com"), true)]))
        .await;
    assert!(is_delivered(&r.outcomes[0]));
    let before = clock.now();
    let r = exec
        .sync_events(&build_all(&[
            ev("t16", None, Some("b@example.com"), true),
            ev("t16", None, Some("c@example.com"), true),
        ]))
        .await;
    assert!(r.outcomes.iter().all(is_retrying), "{:?}", r.outcomes);
    let msg = &r.outcomes[0].reason().unwrap().message;
    assert!(
        msg.contains("429") && msg.contains("Exceeded rate limit"),
        "{msg}"
    );
    assert!(r.requests.iter().all(|q| q.status == Some(429)));
    // Two waits between three attempts, each exactly the Retry-After (no backoff guess).
    assert_eq!(clock.now() - before, Duration::from_secs(14));

    sim.set_limits(Limits::none());
    let r = exec
        .sync_events(&build_all(&[
            ev("t16", None, Some("b@example.com"), true),
            ev("t16", None, Some("c@example.com"), true),
        ]))
        .await;
    assert!(r.outcomes.iter().all(is_delivered), "{:?}", r.outcomes);
    assert_eq!(
        members(&sim, 44, false),
        vec!["a@example.com", "b@example.com", "c@example.com"]
    );
}

// peers T14: mixed per-subscriber failures in one 200 are attributed to each subscriber.
#[tokio::test]
async fn mixed_failures_are_attributed_per_subscriber() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    e.exec
        .sync_events(&build_all(&[ev(
            "warmup",
            Some("u-owner"),
            Some("conflict@example.com"),
            true,
        )]))
        .await;
    e.sim
        .forget_user(KEY, &UserRef::email("forgotten@example.com"))
        .unwrap();
    let r = e
        .exec
        .sync_events(&build_all(&[
            ev("mixed", None, Some("forgotten@example.com"), true),
            ev("mixed", Some("u-other"), Some("Conflict@Example.com"), true),
            ev("mixed", None, Some("clean1@example.com"), true),
            ev("mixed", Some("u-clean2"), None, true),
        ]))
        .await;
    assert_eq!(r.requests.len(), 1, "one request carried all four");
    assert!(
        skipped_with(&r.outcomes[0], ReasonCode::Forgotten),
        "{:?}",
        r.outcomes
    );
    assert!(rejected_with(&r.outcomes[1], ReasonCode::IdentityConflict));
    assert!(is_delivered(&r.outcomes[2]));
    assert!(is_delivered(&r.outcomes[3]));
    assert_eq!(
        members(&e.sim, list_id(&e.sim, "mixed"), true),
        vec!["clean1@example.com", "u-clean2"]
    );
}

// design decision 9: a 413 splits the request in halves down to one subscriber, so the one
// oversized subscriber fails alone and the others are delivered.
#[tokio::test]
async fn oversized_subscriber_fails_alone_after_splitting() {
    let mut config = SimConfig::new().project(KEY, ProjectType::Email).seed(7);
    config.max_body_bytes = Some(1500);
    let sim = Simulator::start(config).await.unwrap();
    sim.create_list(KEY, 45, "split").unwrap();
    let mut dest = dest_for(&sim, ProjectType::Email);
    dest.data_fields = vec!["bio".into()];
    let exec = executor(&dest, fast_settings(), false);
    let mut evs: Vec<Ev> = (0..7)
        .map(|i| ev("split", None, Some(&format!("ok{i}@example.com")), true))
        .collect();
    evs.insert(
        3,
        ev("split", None, Some("huge@example.com"), true).trait_("bio", json!("x".repeat(3000))),
    );
    let r = exec.sync_events(&build_all(&evs)).await;
    for (i, o) in r.outcomes.iter().enumerate() {
        if i == 3 {
            assert!(rejected_with(o, ReasonCode::IterableRejected), "{o:?}");
            assert!(o.reason().unwrap().message.contains("413"), "{o:?}");
        } else {
            assert!(is_delivered(o), "{i}: {o:?}");
        }
    }
    assert!(r.requests.iter().filter(|q| q.status == Some(413)).count() >= 4);
    let m = members(&sim, 45, false);
    assert_eq!(m.len(), 7);
    assert!(!m.contains(&"huge@example.com".to_string()));
}

// iterable-api.md §1.2, §4.1: a refused key stops the executor with a clear error that never
// shows the key; nothing more is sent and the events stay pending.
#[tokio::test]
async fn unauthorized_key_stops_the_executor() {
    let sim = start(ProjectType::Email).await;
    sim.create_list(KEY, 46, "auth").unwrap();
    let mut dest = dest_for(&sim, ProjectType::Email);
    dest.api_key = ApiKey::new("wrong-key-abcdef");
    dest.audiences.insert(
        "auth".into(),
        AudienceConfig {
            list: Some(ListBinding::Id(46)),
            ..AudienceConfig::default()
        },
    );
    // One request at a time, so that "nothing more is sent" is observable.
    let one_at_a_time = SyncSettings {
        concurrency: 1,
        ..fast_settings()
    };
    let exec = executor(&dest, one_at_a_time, false);
    let r = exec
        .sync_events(&build_all(&[
            ev("auth", None, Some("a@example.com"), true),
            ev("auth", None, Some("b@example.com"), false),
        ]))
        .await;
    assert!(
        r.outcomes.iter().all(|o| matches!(o, Outcome::Pending)),
        "{:?}",
        r.outcomes
    );
    let why = r.stopped.clone().expect("stopped");
    assert!(why.contains("401"), "{why}");
    assert!(!why.contains("wrong-key-abcdef"));
    assert_eq!(r.requests.len(), 1, "the second request is never sent");
    let r2 = exec
        .sync_events(&build_all(&[ev("auth", None, Some("c@example.com"), true)]))
        .await;
    assert!(r2.requests.is_empty());
    assert!(r2.stopped.is_some());
    assert!(members(&sim, 46, false).is_empty());

    // Without a binding the refusal comes from GET /api/lists: same stop.
    let mut dest = dest_for(&sim, ProjectType::Email);
    dest.api_key = ApiKey::new("wrong-key-abcdef");
    let exec = executor(&dest, fast_settings(), false);
    let r = exec
        .sync_events(&build_all(&[ev(
            "other",
            None,
            Some("a@example.com"),
            true,
        )]))
        .await;
    assert!(matches!(r.outcomes[0], Outcome::Pending));
    assert!(r.stopped.is_some());
    assert!(r.requests.is_empty());
}

// A failing GET /api/lists is retried (bounded), then the events are left retrying; no list
// is created blindly.
#[tokio::test]
async fn failing_list_lookup_is_retried_then_left_retrying() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim.set_faults(Faults {
        endpoints: vec![Endpoint::GetLists],
        error_rate: 1.0,
        error_statuses: vec![503],
        ..Faults::none()
    });
    let r = e
        .exec
        .sync_events(&build_all(&[ev(
            "lookup",
            None,
            Some("a@example.com"),
            true,
        )]))
        .await;
    assert!(is_retrying(&r.outcomes[0]), "{:?}", r.outcomes);
    let log = e.sim.request_log();
    assert_eq!(log.iter().filter(|q| q.method == "GET").count(), 3);
    assert!(!log.iter().any(|q| q.method == "POST"));
}
