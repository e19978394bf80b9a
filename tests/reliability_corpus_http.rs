//! The bad-input corpus through the real HTTP ingest of the service (`POST /v1/batch`), then
//! the delivery log (admin API) and the simulator's list.
//!
//! Each element case sits between two valid events in one batch: the reply names the bad
//! element's index and reason when it is rejected, its neighbours are accepted, and in the end
//! the neighbours are delivered (design decisions *Isolation*, *Ingest reply*, *Outcomes*).
//! Whole bodies are refused with 400 and a code. NDJSON lines have no HTTP route; the library
//! runner (`reliability_corpus.rs`) covers them.

mod reliability_support;
mod server_support;

use std::collections::BTreeMap;

use reliability_support::corpus::{self, AUDIENCE, Case};
use serde_json::Value;
use server_support::{Harness, WRITE_KEY};

async fn post(h: &Harness, case: &Case, body: Vec<u8>) -> (u16, Value) {
    let mut req = h
        .http
        .post(h.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-type", "application/json");
    if case.encoding.as_deref() == Some("gzip") {
        req = req.header("content-encoding", "gzip");
    }
    let resp = req.body(body).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Checks the reply to a batch holding `[before, case, after]`.
fn check_reply(case: &Case, reply: &Value) -> Result<(), String> {
    if reply["success"] != true || reply["received"] != 3 {
        return Err(format!("reply {reply}"));
    }
    let errors = reply["errors"].as_array().cloned().unwrap_or_default();
    if errors.iter().any(|e| e["index"] != 1) {
        return Err(format!("a neighbour was rejected: {reply}"));
    }
    match case.expect.as_str() {
        "rejected" => {
            let [e] = errors.as_slice() else {
                return Err(format!("want one rejected element: {reply}"));
            };
            corpus::check_reason(
                case,
                e["code"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or(""),
            )
        }
        "skipped" if reply["skipped"] == 1 && reply["accepted"] == 2 => Ok(()),
        "delivered" if reply["accepted"] == 3 => Ok(()),
        want => Err(format!("want {want}: {reply}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_http_ingest_isolates_each_bad_element() {
    let h = Harness::start().await;
    let mut failures = Vec::new();
    let mut neighbours = Vec::new();
    let mut skipped = Vec::new();
    let cases = corpus::cases();
    for case in cases.iter().filter(|c| c.form == "element") {
        let (status, reply) = post(&h, case, corpus::batch_around(case, "http")).await;
        if status != 200 {
            failures.push(format!("{}: status {status}: {reply}", case.file));
            continue;
        }
        if let Err(e) = check_reply(case, &reply) {
            failures.push(format!("{}: {e}", case.file));
        }
        let (a, b) = corpus::neighbours(case, "http");
        neighbours.extend([a, b]);
        if case.expect == "skipped" {
            skipped.push(case.clone());
        }
    }
    for case in cases.iter().filter(|c| c.form == "body") {
        let (status, reply) = post(&h, case, corpus::bytes(case)).await;
        let want = case.status.unwrap_or(400);
        if status != want {
            failures.push(format!(
                "{}: status {status}, want {want}: {reply}",
                case.file
            ));
            continue;
        }
        let result = match case.expect.as_str() {
            "refused" if reply["success"] == false => corpus::check_reason(
                case,
                reply["code"].as_str().unwrap_or(""),
                reply["message"].as_str().unwrap_or(""),
            ),
            "ok" if reply["success"] == true
                && reply["received"] == case.received.unwrap_or(0)
                && reply["rejected"] == case.rejected.unwrap_or(0) =>
            {
                Ok(())
            }
            want => Err(format!("want {want}: {reply}")),
        };
        if let Err(e) = result {
            failures.push(format!("{}: {e}", case.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Delivery: every neighbour ends delivered, in the list and in the log.
    h.settle().await;
    let members = h.members(AUDIENCE);
    let missing: Vec<&String> = neighbours
        .iter()
        .filter(|u| !members.contains(&format!("{u}@example.com")))
        .collect();
    assert!(
        missing.is_empty(),
        "neighbours not in the list: {missing:?}"
    );
    let log: Value = h
        .admin_get("/admin/log?limit=10000")
        .await
        .json()
        .await
        .expect("log");
    let by_id: BTreeMap<&str, &Value> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["message_id"].as_str().unwrap_or(""), e))
        .collect();
    for u in &neighbours {
        let id = format!("m-{u}");
        let outcome = by_id.get(id.as_str()).map(|e| e["outcome"].clone());
        assert_eq!(outcome, Some(Value::from("delivered")), "{id}");
    }
    // Skipped events are in the log with their reason.
    for case in &skipped {
        let id = format!("m-bad-{}", corpus::slug(case));
        let Some(e) = by_id.get(id.as_str()) else {
            panic!("{}: {id} not in the delivery log", case.file);
        };
        assert_eq!(e["outcome"], "skipped", "{}: {e}", case.file);
        corpus::check_reason(
            case,
            e["reason_code"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or(""),
        )
        .unwrap_or_else(|err| panic!("{}: {err}", case.file));
    }
    h.stop().await;
}
