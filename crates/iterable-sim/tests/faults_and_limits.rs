//! Rate limits, injected faults, eventual consistency and the request log, over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{Api, start};
use iterable::types::ProjectType;
use iterable_sim::{
    CutMode, Endpoint, Faults, LimitBody, LimitResponse, LimitRule, Limits, RequestLogConfig,
    RetryAfter, SimConfig,
};
use reqwest::Method;
use serde_json::json;

const LIST: i64 = 10;
const HOUR_MS: u64 = 3_600_000;

fn config() -> SimConfig {
    SimConfig::new()
        .project("k", ProjectType::Hybrid)
        .project("k2", ProjectType::Hybrid)
}

async fn sub(api: &Api, key: &str, user: &str) -> common::Answer {
    api.subscribe(
        key,
        json!({"listId": LIST, "subscribers": [{"userId": user}]}),
    )
    .await
}

async fn unsub(api: &Api, key: &str, user: &str) -> common::Answer {
    api.unsubscribe(
        key,
        json!({"listId": LIST, "subscribers": [{"userId": user}]}),
    )
    .await
}

async fn with_list(config: SimConfig) -> (iterable_sim::Simulator, Api) {
    let (sim, api) = start(config).await;
    sim.create_list("k", LIST, "l").unwrap();
    sim.create_list("k2", LIST + 1, "l2").unwrap();
    (sim, api)
}

// iterable-api.md §4.2, §4.3, design decision 13: subscribe and unsubscribe can share one
// leaky bucket per project; other endpoints and other projects are unaffected.
#[tokio::test]
async fn subscribe_and_unsubscribe_share_one_bucket_per_project() {
    let limits = Limits::none().rule(LimitRule {
        endpoints: vec![Endpoint::Subscribe, Endpoint::Unsubscribe],
        requests: 3.0,
        per_ms: HOUR_MS,
        burst: None,
    });
    let (sim, api) = with_list(config().limits(limits)).await;
    assert_eq!(sub(&api, "k", "a").await.status, 200);
    assert_eq!(unsub(&api, "k", "a").await.status, 200);
    assert_eq!(sub(&api, "k", "b").await.status, 200);
    let r = unsub(&api, "k", "b").await;
    assert_eq!(r.status, 429);
    // iterable-api.md §4.1: the RateLimitExceeded body; no Retry-After unless asked (§4.2).
    let v = r.json();
    assert_eq!(v["code"], "RateLimitExceeded");
    assert_eq!(
        v["msg"],
        "Exceeded rate limit for endpoint: /api/lists/unsubscribe, project: 1001 "
    );
    assert_eq!(r.retry_after, None);
    assert_eq!(sub(&api, "k", "c").await.status, 429);
    // The limited requests were not applied.
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["b"]);
    assert_eq!(api.get("k", "/api/lists").await.status, 200);
    let other = api
        .subscribe(
            "k2",
            json!({"listId": LIST + 1, "subscribers": [{"userId": "x"}]}),
        )
        .await;
    assert_eq!(other.status, 200);
    // The control API is never limited.
    let r = api.control(Method::GET, "/projects/1001/lists", None).await;
    assert_eq!(r.status, 200);
    sim.shutdown().await;
}

// iterable-api.md §4.2: "Requests succeed again after enough requests have emptied out of the
// bucket."
#[tokio::test]
async fn a_bucket_admits_again_once_drained() {
    let limits = Limits::none().rule(LimitRule {
        endpoints: vec![Endpoint::Subscribe],
        requests: 1.0,
        per_ms: 100,
        burst: None,
    });
    let (sim, api) = with_list(config().limits(limits)).await;
    assert_eq!(sub(&api, "k", "a").await.status, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(sub(&api, "k", "b").await.status, 200);
    sim.shutdown().await;
}

// iterable-api.md §4.2 (Retry-After not documented, so configurable) and G17 (plain-text
// error bodies exist).
#[tokio::test]
async fn limit_answers_can_be_text_and_carry_retry_after() {
    let rule = LimitRule::per_second(&[Endpoint::GetLists], 1.0).burst(1.0);
    let rule = LimitRule {
        per_ms: HOUR_MS,
        ..rule
    };
    let (sim, api) = with_list(config().limits(Limits::none().rule(rule.clone()).response(
        LimitResponse {
            body: LimitBody::Text,
            retry_after: RetryAfter::Seconds(7),
        },
    )))
    .await;
    assert_eq!(api.get("k", "/api/lists").await.status, 200);
    let r = api.get("k", "/api/lists").await;
    assert_eq!(r.status, 429);
    assert!(r.content_type.starts_with("text/plain"));
    assert!(
        r.text
            .starts_with("Exceeded rate limit for endpoint: /api/lists")
    );
    assert_eq!(r.retry_after.as_deref(), Some("7"));
    // Computed: the seconds until the bucket has room (one request per hour here).
    sim.set_limits(Limits::none().rule(rule).response(LimitResponse {
        body: LimitBody::Json,
        retry_after: RetryAfter::Computed,
    }));
    assert_eq!(
        api.get("k", "/api/lists").await.status,
        200,
        "new limits, fresh buckets"
    );
    let r = api.get("k", "/api/lists").await;
    assert_eq!(r.status, 429);
    let secs: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&secs), "{secs}");
    assert_eq!(r.json()["code"], "RateLimitExceeded");
    sim.shutdown().await;
}

// iterable-api.md §4.3: the documented limits: size and getUsers 5 requests/minute per
// project.
#[tokio::test]
async fn realistic_limits_allow_five_size_calls_a_minute() {
    let (sim, api) = with_list(config().limits(Limits::realistic())).await;
    for _ in 0..5 {
        assert_eq!(
            api.get("k", &format!("/api/lists/{LIST}/size"))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        api.get("k", &format!("/api/lists/{LIST}/size"))
            .await
            .status,
        429
    );
    let users = format!("/api/lists/getUsers?listId={LIST}");
    for _ in 0..5 {
        assert_eq!(api.get("k", &users).await.status, 200);
    }
    assert_eq!(api.get("k", &users).await.status, 429);
    assert_eq!(
        api.get("k2", &format!("/api/lists/{}/size", LIST + 1))
            .await
            .status,
        200
    );
    sim.shutdown().await;
}

async fn statuses(seed: u64, n: usize) -> Vec<u16> {
    let faults = Faults {
        error_rate: 0.5,
        error_statuses: vec![500, 502, 503, 504],
        ..Faults::none()
    };
    let (sim, api) = with_list(config().seed(seed).faults(faults)).await;
    let mut out = Vec::new();
    for i in 0..n {
        out.push(sub(&api, "k", &format!("u{i}")).await.status);
    }
    sim.shutdown().await;
    out
}

// Issue 2: faults are deterministic under the seed; a fraction of requests gets 5xx.
#[tokio::test]
async fn error_faults_replay_under_the_same_seed() {
    let a = statuses(42, 40).await;
    assert_eq!(a, statuses(42, 40).await);
    assert_ne!(a, statuses(43, 40).await);
    let errors = a.iter().filter(|s| **s != 200).count();
    assert!((5..=35).contains(&errors), "{a:?}");
    assert!(a.iter().all(|s| [200, 500, 502, 503, 504].contains(s)));
}

// iterable-api.md §4.2, G17: injected errors answer with the bodies real gateways give, and
// apply nothing.
#[tokio::test]
async fn injected_errors_apply_nothing_and_have_realistic_bodies() {
    let (sim, api) = with_list(config()).await;
    for (status, json_body) in [(500, true), (502, false), (503, true), (504, false)] {
        sim.set_faults(Faults {
            error_rate: 1.0,
            error_statuses: vec![status],
            ..Faults::none()
        });
        let r = sub(&api, "k", "u").await;
        assert_eq!(r.status, status);
        if json_body {
            assert!(r.json()["msg"].is_string());
        } else {
            assert!(r.content_type.starts_with("text/html"), "{status}");
        }
    }
    sim.set_faults(Faults {
        error_rate: 1.0,
        error_statuses: vec![429],
        ..Faults::none()
    });
    assert_eq!(
        sub(&api, "k", "u").await.json()["code"],
        "RateLimitExceeded"
    );
    assert!(sim.list_members("k", LIST).unwrap().is_empty());
    // Faults restricted to one endpoint leave the others alone.
    sim.set_faults(Faults {
        endpoints: vec![Endpoint::Unsubscribe],
        error_rate: 1.0,
        ..Faults::none()
    });
    assert_eq!(sub(&api, "k", "u").await.status, 200);
    assert!(unsub(&api, "k", "u").await.status >= 500);
    sim.shutdown().await;
}

// Issue 2: a fraction of requests is delayed.
#[tokio::test]
async fn delayed_requests_take_at_least_the_delay() {
    let faults = Faults {
        delay_rate: 1.0,
        delay_min_ms: 200,
        delay_max_ms: 200,
        ..Faults::none()
    };
    let (sim, api) = with_list(config().faults(faults)).await;
    let t = Instant::now();
    assert_eq!(sub(&api, "k", "u").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(sim.request_log()[0].fault.as_deref(), Some("delay"));
    sim.shutdown().await;
}

// Issue 2: a cut before the request is applied: no answer, no change.
#[tokio::test]
async fn a_cut_before_applying_resets_the_connection_and_changes_nothing() {
    let faults = Faults {
        cut_before_rate: 1.0,
        ..Faults::none()
    };
    let (sim, api) = with_list(config().faults(faults)).await;
    let body = json!({"listId": LIST, "subscribers": [{"userId": "u"}]}).to_string();
    let err = api
        .send(Method::POST, Some("k"), "/api/lists/subscribe", Some(body))
        .await
        .expect_err("the connection is cut");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(sim.list_members("k", LIST).unwrap().is_empty());
    let log = sim.request_log();
    assert_eq!(log[0].status, None);
    assert_eq!(log[0].fault.as_deref(), Some("cut_before"));
    // The simulator keeps serving other connections.
    sim.set_faults(Faults::none());
    assert_eq!(sub(&api, "k", "v").await.status, 200);
    sim.shutdown().await;
}

// Issue 2: a cut after the request was applied: no answer, yet the change happened.
#[tokio::test]
async fn a_cut_after_applying_loses_the_answer_but_keeps_the_change() {
    let faults = Faults {
        cut_after_rate: 1.0,
        ..Faults::none()
    };
    let (sim, api) = with_list(config().faults(faults)).await;
    let body = json!({"listId": LIST, "subscribers": [{"userId": "u"}]}).to_string();
    let res = api
        .send(Method::POST, Some("k"), "/api/lists/subscribe", Some(body))
        .await;
    assert!(res.is_err());
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["u"]);
    assert_eq!(sim.request_log()[0].fault.as_deref(), Some("cut_after"));
    sim.shutdown().await;
}

// Issue 2: a hanging cut gives no response until the client times out.
#[tokio::test]
async fn a_hanging_cut_makes_the_client_time_out() {
    let faults = Faults {
        cut_before_rate: 1.0,
        cut_mode: CutMode::Hang,
        hang_ms: 60_000,
        ..Faults::none()
    };
    let (sim, api) = with_list(config().faults(faults)).await;
    let err = api
        .http
        .post(format!("{}/api/lists/subscribe", api.base))
        .header("Api-Key", "k")
        .timeout(Duration::from_millis(300))
        .json(&json!({"listId": LIST, "subscribers": [{"userId": "u"}]}))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err:?}");
    assert!(sim.list_members("k", LIST).unwrap().is_empty());
    sim.shutdown().await;
}

// iterable-api.md gotcha G1: right after POST /api/lists the new list can answer
// invalidListId for a while.
#[tokio::test]
async fn a_new_list_answers_invalid_list_id_for_the_configured_window() {
    let faults = Faults {
        new_list_invisible_ms: 300,
        ..Faults::none()
    };
    let (sim, api) = start(config().faults(faults)).await;
    let id = api
        .post("k", "/api/lists", json!({"name": "fresh"}))
        .await
        .json()["listId"]
        .as_i64()
        .unwrap();
    let body = json!({"listId": id, "subscribers": [{"userId": "u"}]});
    let first = api.subscribe("k", body.clone()).await;
    let started = Instant::now();
    assert_eq!(first.status, 400);
    assert_eq!(
        first.json()["msg"],
        format!("error.lists.invalidListId({id})")
    );
    // The list is listed meanwhile.
    assert!(api.get("k", "/api/lists").await.text.contains("fresh"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = api.subscribe("k", body.clone()).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 400);
        assert!(Instant::now() < deadline, "the list never became visible");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(sim.list_members("k", id).unwrap(), vec!["u"]);
    // Lists created with a given id (mirroring a real project) are visible at once.
    sim.create_list("k", 99, "mirrored").unwrap();
    assert_eq!(
        api.subscribe("k", json!({"listId": 99, "subscribers": [{"userId": "u"}]}))
            .await
            .status,
        200
    );
    sim.shutdown().await;
}

// Issue 2: the request log records method, path, body and status, and is bounded.
#[tokio::test]
async fn the_request_log_is_complete_and_bounded() {
    let (sim, api) = with_list(config().request_log(RequestLogConfig {
        capacity: 3,
        max_body_bytes: 1 << 20,
    }))
    .await;
    for i in 0..5 {
        sub(&api, "k", &format!("u{i}")).await;
    }
    api.get("nope", "/api/lists").await;
    let log = sim.request_log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].seq, 3);
    assert_eq!(log[1].method, "POST");
    assert_eq!(log[1].path, "/api/lists/subscribe");
    assert_eq!(log[1].status, Some(200));
    assert_eq!(log[1].project_id, Some(1001));
    assert!(log[1].body.contains("\"u4\""));
    assert_eq!((log[2].status, log[2].project_id), (Some(401), None));
    // The API key never appears in the log.
    assert!(!serde_json::to_string(&log).unwrap().contains("\"k\""));
    // Bounded by body bytes too.
    sim.clear_request_log();
    let (sim2, api2) = with_list(config().request_log(RequestLogConfig {
        capacity: 1000,
        max_body_bytes: 200,
    }))
    .await;
    for i in 0..10 {
        sub(&api2, "k", &format!("user-{i}")).await;
    }
    let log = sim2.request_log();
    assert!(log.len() < 10 && !log.is_empty(), "{}", log.len());
    assert!(log.iter().map(|e| e.body.len()).sum::<usize>() <= 200);
    assert!(sim.request_log().is_empty());
    sim.shutdown().await;
    sim2.shutdown().await;
}

// Issue 2: the simulator shuts down even with a connection held open by a hang.
#[tokio::test]
async fn shutdown_is_not_held_up_by_hanging_requests() {
    let faults = Faults {
        cut_before_rate: 1.0,
        cut_mode: CutMode::Hang,
        hang_ms: 600_000,
        ..Faults::none()
    };
    let (sim, api) = with_list(config().faults(faults)).await;
    let base = api.base.clone();
    let pending = tokio::spawn(async move {
        api.http
            .post(format!("{base}/api/lists/subscribe"))
            .header("Api-Key", "k")
            .json(&json!({"listId": LIST, "subscribers": [{"userId": "u"}]}))
            .send()
            .await
    });
    // Wait until the request is being held.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.request_log().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::timeout(Duration::from_secs(20), sim.shutdown())
        .await
        .expect("shutdown completes");
    let res = pending.await.unwrap();
    assert!(res.is_err());
}
