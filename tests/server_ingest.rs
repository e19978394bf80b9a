//! Ingest over HTTP: write-key auth, bodies (gzip, limits, malformed), per-element isolation,
//! the reply, backpressure, and delivery to the simulator's lists.

mod server_support;

use std::io::Write;

use serde_json::{Value, json};
use server_support::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_with_basic_auth_lands_in_the_simulator_list() {
    let h = Harness::start().await;
    let body = json!({ "batch": [
        audience_event("m1", "u1", "one@example.com", "vip", true),
        audience_event("m2", "u2", "two@example.com", "vip", true),
    ]});
    let resp = h.post_batch(WRITE_KEY, &body).await;
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    // design.md decision 10: Segment's answer plus counts.
    assert_eq!(reply["success"], true);
    assert_eq!(reply["accepted"], 2);
    assert_eq!(reply["rejected"], 0);
    h.settle().await;
    assert_eq!(
        h.members("vip"),
        set(["one@example.com", "two@example.com"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_key_in_the_body_selects_the_destination() {
    let h = Harness::start().await;
    // The second destination is an email project with its own API key.
    let body = json!({ "writeKey": OTHER_WRITE_KEY, "batch": [
        audience_event("m1", "u1", "Body@Example.com", "from_body", true),
    ]});
    let resp = h
        .http
        .post(h.url("/v1/batch"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    h.settle().await;
    assert_eq!(
        members_of(&h.sim, OTHER_API_KEY, "from_body"),
        set(["body@example.com"])
    );
    assert!(
        h.members("from_body").is_empty(),
        "the hybrid project must not get it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_missing_write_key_is_401_and_never_echoed() {
    let h = Harness::start().await;
    let body = json!({ "batch": [audience_event("m1", "u1", "a@example.com", "vip", true)] });
    let guessed = "guessed-write-key-XYZ";
    let resp = h.post_batch(guessed, &body).await;
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(text.contains("unknown_write_key"), "{text}");
    assert!(!text.contains(guessed), "the key was echoed: {text}");

    let resp = h
        .http
        .post(h.url("/v1/batch"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("missing_write_key"));

    let wrong_body_key = json!({ "writeKey": guessed, "batch": [] });
    let resp = h
        .http
        .post(h.url("/v1/batch"))
        .json(&wrong_body_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // A prefix of the right key is not the key.
    let resp = h.post_batch(&WRITE_KEY[..WRITE_KEY.len() - 1], &body).await;
    assert_eq!(resp.status(), 401);
    h.settle().await;
    assert!(h.members("vip").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_accepted_and_truncated_gzip_is_400() {
    let h = Harness::start().await;
    let body = json!({ "batch": [audience_event("g1", "u1", "gz@example.com", "gz", true)] });
    let packed = gzip(&serde_json::to_vec(&body).unwrap());
    let send = |bytes: Vec<u8>| {
        h.http
            .post(h.url("/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(bytes)
            .send()
    };
    let resp = send(packed.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = send(packed[..packed.len() / 2].to_vec()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "bad_gzip");
    assert_eq!(err["success"], false);
    h.settle().await;
    assert_eq!(h.members("gz"), set(["gz@example.com"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_segment_limits_are_refused_with_clear_errors() {
    let h = Harness::start().await;
    // Over 500 KB: refused whole (design.md decision 9).
    let pad = "x".repeat(20_000);
    let events: Vec<Value> = (0..30)
        .map(|i| {
            let mut e = audience_event(
                &format!("big{i}"),
                &format!("u{i}"),
                &format!("b{i}@example.com"),
                "big",
                true,
            );
            e["properties"] = json!({ "pad": pad });
            e
        })
        .collect();
    let resp = h.post_batch(WRITE_KEY, &json!({ "batch": events })).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "body_too_large");
    assert!(err["message"].as_str().unwrap().contains("500 KB"), "{err}");

    // One event over 32 KB inside a small batch: only that element is rejected.
    let mut big = audience_event("e-big", "u-big", "big@example.com", "mixed_size", true);
    big["properties"] = json!({ "pad": "y".repeat(40_000) });
    let ok = audience_event("e-ok", "u-ok", "ok@example.com", "mixed_size", true);
    let resp = h
        .post_batch(WRITE_KEY, &json!({ "batch": [big, ok] }))
        .await;
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["accepted"], 1);
    assert_eq!(reply["rejected"], 1);
    assert_eq!(reply["errors"][0]["index"], 0);
    assert!(
        reply["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "{reply}"
    );

    // A single call over 32 KB is refused whole.
    let mut single = audience_event("s-big", "u1", "s@example.com", "single", true);
    single["properties"] = json!({ "pad": "z".repeat(40_000) });
    let resp = h
        .http
        .post(h.url("/v1/identify"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&single)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    h.settle().await;
    assert_eq!(h.members("mixed_size"), set(["ok@example.com"]));
    assert!(h.members("big").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_with_a_reason() {
    let h = Harness::start().await;
    for (body, code) in [
        ("{not json", "invalid_json"),
        ("[1,2,3]", "not_a_batch"),
        ("{\"events\": []}", "not_a_batch"),
        ("\u{0}\u{1}", "invalid_json"),
    ] {
        let resp = h
            .http
            .post(h.url("/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], code, "{body}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_batch_rejects_each_bad_element_alone_and_delivers_the_rest() {
    let h = Harness::start().await;
    let body = json!({ "batch": [
        audience_event("x0", "u0", "zero@example.com", "mixed", true),
        "not an object",
        { "type": "identify", "messageId": "x2", "userId": "u2", "timestamp": "yesterday" },
        audience_event("x3", "u3", "three@example.com", "mixed", true),
        { "type": "identify", "messageId": "x4", "userId": "u4",
          "traits": { "mixed": "perhaps" },
          "context": { "personas": { "computation_key": "mixed" } } },
        { "type": "identify", "messageId": "x5", "anonymousId": "anon",
          "traits": { "mixed": true },
          "context": { "personas": { "computation_key": "mixed" } } },
        { "type": "track", "messageId": "x6", "userId": "u6", "event": "Clicked" },
    ]});
    let resp = h.post_batch(WRITE_KEY, &body).await;
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["received"], 7);
    assert_eq!(reply["accepted"], 2);
    // design.md decision 2: only an anonymousId, and not an audience event, are skipped.
    assert_eq!(reply["skipped"], 2);
    assert_eq!(reply["rejected"], 3);
    let errors = reply["errors"].as_array().unwrap();
    let indexes: Vec<u64> = errors
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![1, 2, 4]);
    assert_eq!(errors[2]["code"], "invalid_membership");
    assert_eq!(errors[2]["messageId"], "x4");
    assert!(
        errors
            .iter()
            .all(|e| !e["reason"].as_str().unwrap().is_empty())
    );
    h.settle().await;
    assert_eq!(
        h.members("mixed"),
        set(["zero@example.com", "three@example.com"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_call_routes_take_their_type_from_the_route() {
    let h = Harness::start().await;
    let mut identify = audience_event("i1", "u1", "ident@example.com", "single_routes", true);
    identify.as_object_mut().unwrap().remove("type");
    identify["writeKey"] = json!(WRITE_KEY);
    let resp = h
        .http
        .post(h.url("/v1/identify"))
        .json(&identify)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["accepted"], 1);
    let track = json!({
        "userId": "u2", "messageId": "t1", "event": "Audience Entered",
        "properties": { "email": "track@example.com", "single_routes": true },
        "context": { "personas": { "computation_class": "audience", "computation_key": "single_routes" } }
    });
    let resp = h
        .http
        .post(h.url("/v1/track"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&track)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // /v1/import is an alias of /v1/batch.
    let imp = json!({ "batch": [audience_event("imp1", "u3", "import@example.com", "single_routes", true)] });
    let resp = h
        .http
        .post(h.url("/v1/import"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&imp)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    h.settle().await;
    assert_eq!(
        h.members("single_routes"),
        set([
            "ident@example.com",
            "track@example.com",
            "import@example.com"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_store_answers_429_with_retry_after_and_is_not_ready() {
    // A bound of 2 pending changes, and an Iterable that cannot be reached: the backlog fills.
    let sim = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &dir.path().join("ledger.db"),
        "http://127.0.0.1:9",
        "backlog_bound = 2",
        "",
    );
    let h = Harness::start_on(sim, dir, &text).await;
    let first = json!({ "batch": [
        audience_event("b1", "u1", "one@example.com", "busy", true),
        audience_event("b2", "u2", "two@example.com", "busy", true),
    ]});
    assert_eq!(h.post_batch(WRITE_KEY, &first).await.status(), 200);
    let second =
        json!({ "batch": [audience_event("b3", "u3", "three@example.com", "busy", true)] });
    let resp = h.post_batch(WRITE_KEY, &second).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "busy");
    // Not ready while busy.
    assert_eq!(
        h.http.get(h.url("/readyz")).send().await.unwrap().status(),
        503
    );
    assert_eq!(
        h.http.get(h.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_message_ids_are_applied_once() {
    let h = Harness::start().await;
    let body = json!({ "batch": [audience_event("dup", "u1", "dup@example.com", "dups", true)] });
    assert_eq!(h.post_batch(WRITE_KEY, &body).await.status(), 200);
    let reply: Value = h.post_batch(WRITE_KEY, &body).await.json().await.unwrap();
    assert_eq!(reply["duplicates"], 1);
    assert_eq!(reply["accepted"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_received_accepted_and_rejected_by_reason() {
    let h = Harness::start().await;
    let body = json!({ "batch": [
        audience_event("m1", "u1", "one@example.com", "metrics", true),
        { "type": "identify", "messageId": "m2", "userId": "u2",
          "traits": { "metrics": 3 }, "context": { "personas": { "computation_key": "metrics" } } },
    ]});
    assert_eq!(h.post_batch(WRITE_KEY, &body).await.status(), 200);
    h.settle().await;
    let text = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "iterable_lists_events_received_total{destination=\"engage\"} 2",
        "iterable_lists_events_accepted_total{destination=\"engage\"} 1",
        "iterable_lists_events_rejected_total{destination=\"engage\",reason=\"invalid_membership\"} 1",
        "iterable_lists_pending_changes{destination=\"engage\"} 0",
        "iterable_lists_iterable_requests_total{status=\"200\"}",
        "iterable_lists_iterable_endpoint_requests_total{endpoint=\"subscribe\",status=\"200\"}",
        "iterable_lists_iterable_request_duration_seconds_count 1",
        "iterable_lists_iterable_rate_limit_wait_seconds",
        "iterable_lists_ingest_request_duration_seconds_count{route=\"batch\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_each_get_their_own_reply_when_committed_together() {
    let h = Harness::start().await;
    let mut tasks = Vec::new();
    for r in 0..24usize {
        let http = h.http.clone();
        let url = h.url("/v1/batch");
        tasks.push(tokio::spawn(async move {
            // Request r: r % 5 + 2 good events, and one bad element at index r % 3.
            let good = r % 5 + 2;
            let mut batch: Vec<Value> = (0..good)
                .map(|i| {
                    audience_event(
                        &format!("c{r}-{i}"),
                        &format!("u{r}-{i}"),
                        &format!("c{r}-{i}@example.com"),
                        "grouped",
                        true,
                    )
                })
                .collect();
            batch.insert(r % 3, json!("bad"));
            let reply: Value = http
                .post(url)
                .basic_auth(WRITE_KEY, Some(""))
                .json(&json!({ "batch": batch }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (r, good, reply)
        }));
    }
    let mut expected = std::collections::BTreeSet::new();
    for t in tasks {
        let (r, good, reply) = t.await.unwrap();
        assert_eq!(reply["received"], good + 1, "request {r}: {reply}");
        assert_eq!(reply["accepted"], good, "request {r}: {reply}");
        assert_eq!(reply["rejected"], 1, "request {r}: {reply}");
        assert_eq!(reply["errors"][0]["index"], r % 3, "request {r}: {reply}");
        for i in 0..good {
            expected.insert(format!("c{r}-{i}@example.com"));
        }
    }
    h.settle().await;
    assert_eq!(h.members("grouped"), expected);
}
