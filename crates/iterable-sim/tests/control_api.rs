//! The control API under `/_sim/` and the TOML configuration, over real HTTP.

mod common;

use common::start;
use iterable_sim::{SimConfig, Simulator};
use reqwest::Method;
use serde_json::json;

// Issue 2 (control API): create projects and keys, lists with a given id, read members and
// profiles, forget a user, read the log, change faults and limits live, reset.
#[tokio::test]
async fn the_control_api_drives_the_simulator_over_http() {
    let (sim, api) = start(SimConfig::new()).await;
    let r = api
        .control(
            Method::POST,
            "/projects",
            Some(json!({"id": 77, "type": "userId", "api_keys": ["ctl-key"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .control(
            Method::POST,
            "/projects/77/keys",
            Some(json!({"apiKey": "second-key"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .control(
            Method::POST,
            "/projects/77/keys",
            Some(json!({"apiKey": "second-key"})),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = api
        .control(
            Method::POST,
            "/projects/77/lists",
            Some(json!({"id": 123456, "name": "mirror", "listType": "Standard"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .subscribe(
            "second-key",
            json!({"listId": 123456, "subscribers": [{"userId": "u1", "dataFields": {"x": 1}}, {"userId": "u2"}]}),
        )
        .await;
    assert_eq!(r.json()["successCount"], 2);
    let r = api.control(Method::GET, "/projects", None).await;
    assert_eq!(r.json(), json!([{"id": 77, "type": "userId"}]));
    let r = api.control(Method::GET, "/projects/77/lists", None).await;
    assert_eq!(r.json()[0]["id"], 123456);
    let r = api
        .control(Method::GET, "/projects/77/lists/123456/members", None)
        .await;
    assert_eq!(r.json(), json!(["u1", "u2"]));
    let r = api
        .control(Method::GET, "/projects/77/user?userId=u1", None)
        .await;
    assert_eq!(r.json()["dataFields"], json!({"x": 1}));
    assert_eq!(r.json()["listIds"], json!([123456]));
    let r = api
        .control(Method::GET, "/projects/77/user?userId=zz", None)
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .control(
            Method::POST,
            "/projects/77/forget",
            Some(json!({"userId": "u1"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api.control(Method::GET, "/projects/77/users", None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = api
        .subscribe(
            "ctl-key",
            json!({"listId": 123456, "subscribers": [{"userId": "u1"}]}),
        )
        .await;
    assert_eq!(r.json()["failedUpdates"]["forgottenUserIds"], json!(["u1"]));

    // Faults and limits, live.
    let r = api
        .control(
            Method::PUT,
            "/faults",
            Some(json!({"error_rate": 1.0, "error_statuses": [503]})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(api.get("ctl-key", "/api/lists").await.status, 503);
    let r = api.control(Method::GET, "/faults", None).await;
    assert_eq!(r.json()["error_statuses"], json!([503]));
    api.control(Method::PUT, "/faults", Some(json!({}))).await;
    let r = api
        .control(
            Method::PUT,
            "/limits",
            Some(
                json!({"rules": [{"endpoints": ["get_lists"], "requests": 1, "per_ms": 3600000}],
                        "response": {"body": "text", "retry_after": {"seconds": 3}}}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(api.get("ctl-key", "/api/lists").await.status, 200);
    let limited = api.get("ctl-key", "/api/lists").await;
    assert_eq!(
        (limited.status, limited.retry_after.as_deref()),
        (429, Some("3"))
    );

    // The log, over HTTP.
    let r = api.control(Method::GET, "/log", None).await;
    let log = r.json();
    assert!(log.as_array().unwrap().len() >= 5);
    assert_eq!(log[0]["path"], "/api/lists/subscribe");
    assert_eq!(log[0]["status"], 200);
    api.control(Method::DELETE, "/log", None).await;
    assert!(sim.request_log().is_empty());

    // Reset: back to the (empty) configuration.
    let r = api.control(Method::POST, "/reset", None).await;
    assert_eq!(r.status, 200);
    assert!(sim.projects().is_empty());
    assert_eq!(api.get("ctl-key", "/api/lists").await.status, 401);
    sim.shutdown().await;
}

const TOML: &str = r#"
seed = 5

[request_log]
capacity = 100

[[projects]]
id = 9001
type = "email"
api_keys = ["toml-email"]
lists = [{ id = 31, name = "existing" }, { id = 32, name = "segment", listType = "Dynamic" }]

[[projects]]
id = 9002
type = "hybrid"
api_keys = ["toml-hybrid", "toml-hybrid-2"]
allow_new_fields = false

[faults]
new_list_invisible_ms = 0
endpoints = ["get_users"]
error_rate = 1.0
error_statuses = [503]

[limits.response]
body = "json"
retry_after = "computed"

[[limits.rules]]
endpoints = ["subscribe", "unsubscribe"]
requests = 2
per_ms = 3600000
"#;

// Issue 2: projects, keys, lists, faults and limits can be declared in a TOML file.
#[tokio::test]
async fn a_toml_configuration_declares_projects_lists_faults_and_limits() {
    let config = SimConfig::from_toml(TOML).expect("valid TOML");
    let sim = Simulator::start(config).await.unwrap();
    let api = common::Api {
        base: sim.base_url(),
        http: reqwest::Client::new(),
    };
    let lists = api.get("toml-email", "/api/lists").await.json();
    assert_eq!(lists["lists"].as_array().unwrap().len(), 2);
    assert_eq!(lists["lists"][1]["listType"], "Dynamic");
    assert_eq!(api.get("toml-hybrid-2", "/api/lists").await.status, 200);
    assert_eq!(
        api.get("toml-email", "/api/lists/getUsers?listId=31")
            .await
            .status,
        503
    );
    let body = json!({"listId": 31, "subscribers": [{"email": "a@x.com"}]});
    assert_eq!(api.subscribe("toml-email", body.clone()).await.status, 200);
    assert_eq!(
        api.unsubscribe("toml-email", body.clone()).await.status,
        200
    );
    let r = api.subscribe("toml-email", body).await;
    assert_eq!(r.status, 429);
    assert!(r.retry_after.is_some());
    // allow_new_fields = false: unknown fields are filtered out (iterable-api.md §3).
    sim.create_list(9002, 40, "h").unwrap();
    let r = api
        .subscribe(
            "toml-hybrid",
            json!({"listId": 40, "subscribers": [{"userId": "u", "dataFields": {"newField": 1}}]}),
        )
        .await;
    assert_eq!(r.json()["filteredOutFields"], json!(["newField"]));
    assert_eq!(r.json()["successCount"], 1);
    let p = sim
        .user(9002, &iterable_sim::UserRef::user_id("u"))
        .unwrap()
        .unwrap();
    assert!(p.data_fields.is_empty());
    sim.shutdown().await;
}

// A configuration error names the problem instead of starting half a simulator.
#[test]
fn an_invalid_toml_configuration_is_an_error() {
    assert!(SimConfig::from_toml("[[projects]]\nid = 1\ntype = \"nope\"\n").is_err());
    assert!(SimConfig::from_toml("unknown_key = 1\n").is_err());
}

// The example configuration in the crate documentation stays valid.
#[test]
fn the_documented_configuration_example_parses() {
    let lib = include_str!("../src/lib.rs");
    let start = lib.find("//! ```toml\n").expect("example present") + "//! ```toml\n".len();
    let end = start + lib[start..].find("//! ```\n").expect("example closed");
    let toml: String = lib[start..end]
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l).trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n");
    let c = SimConfig::from_toml(&toml).expect("documented example parses");
    assert_eq!(c.projects[0].lists.len(), 2);
    assert_eq!(c.limits.rules[0].requests, 100.0);
}
