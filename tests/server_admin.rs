//! The admin API: token, secrets never returned, audiences, mappings validated on save and
//! applied at ingest, test-mapping, the delivery log, replay, and the OpenAPI document.

mod server_support;

/// Percent-encodes a mapping name for a path segment (spaces only in these tests).
fn enc(name: &str) -> String {
    name.replace(' ', "%20")
}

use serde_json::{Value, json};
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_the_bearer_token() {
    let h = Harness::start().await;
    let resp = h
        .http
        .get(h.url("/admin/destinations"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let resp = h
        .http
        .get(h.url("/admin/destinations"))
        .bearer_auth("admin-token-S3CRET-000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("admin-token"), "{text}");
    // The write key is not an admin token.
    let resp = h
        .http
        .get(h.url("/admin/status"))
        .bearer_auth(WRITE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(h.admin_get("/admin/destinations").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_closed_without_a_configured_token() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&dir.path().join("ledger.db"), &sim.base_url(), "", "")
        .replace(&format!("admin_token = \"{ADMIN_TOKEN}\""), "");
    let h = Harness::start_on(sim, dir, &text).await;
    let resp = h.admin_get("/admin/destinations").await;
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "admin_disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_show_settings_but_never_a_key() {
    let h = Harness::start().await;
    let text = h
        .admin_get("/admin/destinations")
        .await
        .text()
        .await
        .unwrap();
    for secret in [
        API_KEY,
        WRITE_KEY,
        ADMIN_TOKEN,
        OTHER_API_KEY,
        OTHER_WRITE_KEY,
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let all: Value = serde_json::from_str(&text).unwrap();
    let d = &all["destinations"][0];
    assert_eq!(d["name"], "engage");
    assert_eq!(d["api_key_set"], true);
    assert_eq!(d["project_type"], "hybrid");
    assert_eq!(h.admin_get("/admin/destinations/nope").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiences_show_their_list_and_pending_changes() {
    let h = Harness::start().await;
    let body = json!({ "batch": [audience_event("a1", "u1", "a@example.com", "gold", true)] });
    assert_eq!(h.post_batch(WRITE_KEY, &body).await.status(), 200);
    h.settle().await;
    let v: Value = h
        .admin_get("/admin/destinations/engage/audiences")
        .await
        .json()
        .await
        .unwrap();
    let gold = v["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "gold")
        .expect("gold");
    let list_id = gold["list_id"].as_i64().expect("list id");
    let lists = h.sim.sim().lists(API_KEY).unwrap();
    assert_eq!(lists.iter().find(|l| l.name == "gold").unwrap().id, list_id);
    assert_eq!(gold["members"]["pending_subscribe"], 0);
    assert_eq!(gold["members"]["in"], 1);
    assert_eq!(gold["members"]["confirmed_in"], 1);
    assert_eq!(gold["members"]["rejected"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mapping_plans_the_request_without_sending_it() {
    let h = Harness::start().await;
    let event = audience_event("t1", "u-42", "Plan@Example.com", "planned", true);
    let resp = h
        .admin_post(
            "/admin/destinations/engage/test-mapping",
            &json!({ "event": event }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["outcome"], "change");
    assert_eq!(v["membership"]["direction"], "subscribe");
    assert_eq!(v["request"]["path"], "/api/lists/subscribe");
    let sub = &v["request"]["body"]["subscribers"][0];
    assert_eq!(sub["email"], "plan@example.com");
    assert_eq!(sub["userId"], "u-42");
    // Nothing was stored or sent.
    assert!(h.sim.sim().request_log().is_empty());
    assert!(h.sim.sim().lists(API_KEY).unwrap().is_empty());
    let log: Value = h
        .admin_get("/admin/log?destination=engage")
        .await
        .json()
        .await
        .unwrap();
    assert!(log["entries"].as_array().unwrap().is_empty());

    let skipped = json!({ "event": { "type": "identify", "userId": "u1", "traits": {} } });
    let v: Value = h
        .admin_post("/admin/destinations/engage/test-mapping", &skipped)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["outcome"], "skipped");
    assert_eq!(v["reasons"][0]["code"], "not_audience_event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_are_validated_on_save_and_applied_at_ingest() {
    let h = Harness::start().await;
    let bad = json!({ "name": "broken", "trigger": "type = ", "mapping": {} });
    let resp = h
        .admin_post("/admin/destinations/engage/mappings", &bad)
        .await;
    assert_eq!(resp.status(), 422);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["message"].as_str().unwrap().contains("trigger"),
        "{err}"
    );

    // A mapping for plain track events: the audience key from a property.
    let spec = json!({
        "name": "signup lists",
        "trigger": "type = \"track\" and event = \"Joined\"",
        "fields": {
            "traitsOrProperties": { "@literal": { "joined_list": true } },
            "segmentAudienceKey": { "@literal": "joined_list" }
        }
    });
    let resp = h
        .admin_post("/admin/destinations/engage/mappings", &spec)
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["name"].as_str().unwrap().to_owned();
    assert_eq!(id, "signup lists");
    assert_eq!(created["source"], "store");
    // Names identify mappings: a second one with the same name is refused.
    let resp = h
        .admin_post("/admin/destinations/engage/mappings", &spec)
        .await;
    assert_eq!(resp.status(), 409);

    let listed: Value = h
        .admin_get("/admin/destinations/engage/mappings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["default_mapping_in_use"], false);
    assert_eq!(listed["mappings"].as_array().unwrap().len(), 1);

    let joined = json!({ "type": "track", "event": "Joined", "userId": "j1", "messageId": "j1",
                         "properties": { "email": "joined@example.com" } });
    let other = audience_event("o1", "u1", "engage@example.com", "vip", true);
    let reply: Value = h
        .post_batch(WRITE_KEY, &json!({ "batch": [joined, other] }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["accepted"], 1, "{reply}");
    // design.md decision 8: custom mappings replace the default; the Engage event matches none.
    assert_eq!(reply["skipped"], 1, "{reply}");
    h.settle().await;
    assert_eq!(h.members("joined_list"), set(["joined@example.com"]));
    assert!(h.members("vip").is_empty());

    // Disabled: nothing matches any more.
    let resp = h
        .admin_post(
            &format!("/admin/destinations/engage/mappings/{id}/disable"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let joined2 = json!({ "type": "track", "event": "Joined", "userId": "j2", "messageId": "j2",
                          "properties": { "email": "second@example.com" } });
    let reply: Value = h
        .post_batch(WRITE_KEY, &json!({ "batch": [joined2] }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["skipped"], 1, "{reply}");

    // Deleted: the default mapping applies again.
    let resp = h
        .http
        .delete(h.url(&format!("/admin/destinations/engage/mappings/{}", enc(&id))))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let other = audience_event("o2", "u2", "engage@example.com", "vip", true);
    let reply: Value = h
        .post_batch(WRITE_KEY, &json!({ "batch": [other] }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["accepted"], 1, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_mappings_survive_a_restart() {
    let h = Harness::start().await;
    let spec = json!({ "name": "kept", "trigger": "type = \"track\"" });
    assert_eq!(
        h.admin_post("/admin/destinations/engage/mappings", &spec)
            .await
            .status(),
        201
    );
    let (sim, dir) = h.stop().await;
    let text = config_text(&dir.path().join("ledger.db"), &sim.base_url(), "", "");
    let h = Harness::start_on(sim, dir, &text).await;
    let listed: Value = h
        .admin_get("/admin/destinations/engage/mappings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["mappings"][0]["name"], "kept", "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_log_filters_by_outcome_audience_and_identity() {
    let h = Harness::start().await;
    let body = json!({ "batch": [
        audience_event("l1", "u1", "one@example.com", "logged", true),
        { "type": "identify", "messageId": "l2", "userId": "u2", "traits": { "logged": "nope" },
          "context": { "personas": { "computation_key": "logged" } } },
    ]});
    assert_eq!(h.post_batch(WRITE_KEY, &body).await.status(), 200);
    h.settle().await;
    let v: Value = h
        .admin_get("/admin/log?outcome=rejected")
        .await
        .json()
        .await
        .unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["message_id"], "l2");
    assert_eq!(entries[0]["reason_code"], "invalid_membership");
    let v: Value = h
        .admin_get("/admin/log?destination=engage&audience=logged&outcome=delivered")
        .await
        .json()
        .await
        .unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let identity = entries[0]["identity"].as_str().unwrap().to_owned();
    let v: Value = h
        .admin_get(&format!("/admin/log?identity={identity}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["entries"][0]["message_id"], "l1");
    let resp = h.admin_get("/admin/log?outcome=lost").await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_requeues_rejected_changes_after_the_cause_is_fixed() {
    // update_existing_users_only: a subscribe of an unknown user is rejected (not found).
    let h = Harness::start_with(
        "",
        "[destination.audiences.existing_only]\nupdate_existing_users_only = true\n",
    )
    .await;
    let body = json!({ "batch": [audience_event("r1", "new-user", "new@example.com", "existing_only", true)] });
    assert_eq!(h.post_batch(WRITE_KEY, &body).await.status(), 200);
    h.settle().await;
    let v: Value = h
        .admin_get("/admin/log?outcome=rejected")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["entries"][0]["reason_code"], "not_found_on_subscribe",
        "{v}"
    );
    assert!(h.members("existing_only").is_empty());
    // The user now exists in Iterable (another audience subscribes it, creating the user).
    let other =
        json!({ "batch": [audience_event("r2", "new-user", "new@example.com", "creator", true)] });
    assert_eq!(h.post_batch(WRITE_KEY, &other).await.status(), 200);
    h.settle().await;
    let resp = h
        .admin_post(
            "/admin/destinations/engage/replay",
            &json!({ "audience": "existing_only" }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["requeued"], 1);
    h.settle().await;
    assert_eq!(h.members("existing_only"), set(["new@example.com"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_admin_route() {
    let h = Harness::start().await;
    let resp = h
        .http
        .get(h.url("/admin/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/admin/status"),
        ("get", "/admin/destinations"),
        ("get", "/admin/destinations/{name}"),
        ("get", "/admin/destinations/{name}/audiences"),
        ("post", "/admin/destinations/{name}/pause"),
        ("post", "/admin/destinations/{name}/resume"),
        ("post", "/admin/destinations/{name}/replay"),
        ("post", "/admin/destinations/{name}/test-mapping"),
        ("get", "/admin/destinations/{name}/mappings"),
        ("post", "/admin/destinations/{name}/mappings"),
        ("put", "/admin/destinations/{name}/mappings/{mapping}"),
        ("delete", "/admin/destinations/{name}/mappings/{mapping}"),
        (
            "post",
            "/admin/destinations/{name}/mappings/{mapping}/enable",
        ),
        (
            "post",
            "/admin/destinations/{name}/mappings/{mapping}/disable",
        ),
        ("get", "/admin/log"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
        // And the route exists: with the token, never a 404 from the router (405 or 404 JSON
        // from a handler carries a code).
        let url = h.url(&path.replace("{name}", "engage").replace("{mapping}", "m1"));
        let req = match method {
            "get" => h.http.get(url),
            "post" => h.http.post(url).json(&json!({})),
            "put" => h.http.put(url).json(&json!({})),
            _ => h.http.delete(url),
        };
        let resp = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            status != 404 || body.contains("\"code\""),
            "{method} {path}: {status} {body}"
        );
        assert_ne!(status, 405, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_destination_keeps_accepting_and_delivers_after_resume() {
    let h = Harness::start().await;
    let resp = h
        .admin_post("/admin/destinations/engage/pause", &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let body =
        json!({ "batch": [audience_event("p1", "u1", "paused@example.com", "paused", true)] });
    let reply: Value = h.post_batch(WRITE_KEY, &body).await.json().await.unwrap();
    assert_eq!(reply["accepted"], 1);
    // Several flush intervals (100 ms here) pass: nothing is sent while paused.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let out = h
        .server
        .engine()
        .wait_settled(std::time::Duration::from_millis(100))
        .await;
    assert!(
        matches!(out, delivery::WaitOutcome::Paused { pending: 1, .. }),
        "{out:?}"
    );
    assert!(h.members("paused").is_empty());
    let status: Value = h.admin_get("/admin/status").await.json().await.unwrap();
    assert!(
        status["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["paused"].is_string()),
        "{status}"
    );
    let resp = h
        .admin_post("/admin/destinations/engage/resume", &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    h.settle().await;
    assert_eq!(h.members("paused"), set(["paused@example.com"]));
    assert_eq!(
        h.admin_post("/admin/destinations/nope/pause", &json!({}))
            .await
            .status(),
        404
    );
}
