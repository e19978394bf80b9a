//! Authentication, routing, error bodies and the list endpoints, over real HTTP.

mod common;

use common::start;
use iterable::types::ProjectType;
use iterable_sim::SimConfig;
use reqwest::Method;
use serde_json::json;

fn config() -> SimConfig {
    SimConfig::new()
        .project("k-hybrid", ProjectType::Hybrid)
        .project("k-email", ProjectType::Email)
}

// iterable-api.md §1.1: the header is `Api-Key` or `Api_Key`, name case-insensitive.
#[tokio::test]
async fn api_key_header_name_is_case_insensitive_and_accepts_underscore() {
    let (sim, api) = start(config()).await;
    for name in ["Api-Key", "api-key", "API-KEY", "Api_Key", "api_key"] {
        let r = api
            .http
            .get(format!("{}/api/lists", api.base))
            .header(name, "k-hybrid")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "header {name}");
    }
    sim.shutdown().await;
}

// iterable-api.md §4.1: bad key → 401 {"msg":"Invalid API key","code":"BadApiKey","params":{…}}.
#[tokio::test]
async fn unknown_or_missing_key_is_401_bad_api_key() {
    let (sim, api) = start(config()).await;
    let r = api.get("nope", "/api/lists").await;
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["msg"], "Invalid API key");
    assert_eq!(v["code"], "BadApiKey");
    assert_eq!(v["params"]["endpoint"], "/api/lists");
    let r = api
        .send(
            Method::POST,
            None,
            "/api/lists/subscribe",
            Some("{}".into()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "BadApiKey");
    sim.shutdown().await;
}

// iterable-api.md §4.1: unknown route → 404 HTML "Action not found", not JSON.
#[tokio::test]
async fn unknown_route_is_a_404_html_page() {
    let (sim, api) = start(config()).await;
    for (m, p) in [
        (Method::GET, "/api/nothing"),
        (Method::PUT, "/api/lists"),
        (Method::GET, "/api/lists/subscribe"),
        (Method::GET, "/"),
    ] {
        let r = api.send(m, Some("k-hybrid"), p, None).await.unwrap();
        assert_eq!(r.status, 404, "{p}");
        assert!(
            r.content_type.starts_with("text/html"),
            "{p}: {}",
            r.content_type
        );
        assert!(r.text.contains("<title>Action not found</title>"));
    }
    sim.shutdown().await;
}

// iterable-api.md §4.1: malformed JSON → 400 BadJsonBody.
#[tokio::test]
async fn malformed_json_is_400_bad_json_body() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-hybrid", 7, "l").unwrap();
    for path in [
        "/api/lists/subscribe",
        "/api/lists/unsubscribe",
        "/api/lists",
    ] {
        let r = api.post_raw("k-hybrid", path, "{\"listId\": 7, ").await;
        assert_eq!(r.status, 400, "{path}");
        let v = r.json();
        assert_eq!(v["code"], "BadJsonBody");
        assert_eq!(v["msg"], format!("[{path}] Invalid JSON body"));
    }
    sim.shutdown().await;
}

// iterable-api.md §4.1: a wrong field type → 400 BadJsonBody naming the field
// (`"obj.users[1].preferUserId":"Boolean value expected"`).
#[tokio::test]
async fn wrong_field_types_are_400_bad_json_body_naming_the_field() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-hybrid", 7, "l").unwrap();
    let r = api
        .subscribe(
            "k-hybrid",
            json!({"listId": 7, "subscribers": [{"email": "a@x.com"}, {"userId": "u", "preferUserId": "yes"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["code"], "BadJsonBody");
    assert_eq!(
        v["params"]["obj.subscribers[1].preferUserId"],
        "Boolean value expected"
    );

    let r = api
        .subscribe("k-hybrid", json!({"listId": "7", "subscribers": []}))
        .await;
    assert_eq!(r.json()["params"]["obj.listId"], "Long value expected");
    let r = api.subscribe("k-hybrid", json!({"listId": 7})).await;
    assert_eq!(r.json()["params"]["obj.subscribers"], "error.path.missing");
    let r = api
        .unsubscribe(
            "k-hybrid",
            json!({"listId": 7, "subscribers": [], "campaignId": "x"}),
        )
        .await;
    assert_eq!(r.json()["params"]["obj.campaignId"], "Long value expected");
    let r = api
        .post("k-hybrid", "/api/lists", json!({"description": "d"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["params"]["obj.name"], "error.path.missing");
    // Nothing was applied.
    assert!(sim.list_members("k-hybrid", 7).unwrap().is_empty());
    sim.shutdown().await;
}

// iterable-api.md §2.1, §2.2, gotcha G7, G8: created lists are Standard, every type is listed,
// names may repeat, createdAt is epoch milliseconds.
#[tokio::test]
async fn created_lists_are_standard_and_names_may_repeat() {
    let (sim, api) = start(config()).await;
    sim.create_list_with(
        "k-hybrid",
        iterable_sim::ListConfig {
            id: 5,
            name: "dyn".into(),
            list_type: iterable::types::ListType::Dynamic,
            description: None,
        },
    )
    .unwrap();
    let a = api
        .post(
            "k-hybrid",
            "/api/lists",
            json!({"name": "aud", "description": "from segment"}),
        )
        .await;
    assert_eq!(a.status, 200);
    let b = api
        .post("k-hybrid", "/api/lists", json!({"name": "aud"}))
        .await;
    let (a, b) = (
        a.json()["listId"].as_i64().unwrap(),
        b.json()["listId"].as_i64().unwrap(),
    );
    assert_ne!(a, b);
    let r = api.get("k-hybrid", "/api/lists").await;
    assert_eq!(r.status, 200);
    let lists = r.json()["lists"].as_array().unwrap().clone();
    assert_eq!(lists.len(), 3);
    let by_id = |id: i64| lists.iter().find(|l| l["id"] == id).unwrap().clone();
    assert_eq!(by_id(a)["listType"], "Standard");
    assert_eq!(by_id(a)["name"], "aud");
    assert_eq!(by_id(a)["description"], "from segment");
    assert_eq!(by_id(b)["name"], "aud");
    assert_eq!(by_id(5)["listType"], "Dynamic");
    assert!(by_id(a)["createdAt"].as_i64().unwrap() > 1_600_000_000_000);
    // Lists belong to their project.
    let r = api.get("k-email", "/api/lists").await;
    assert_eq!(r.json()["lists"], json!([]));
    sim.shutdown().await;
}

// iterable-api.md §2.3: delete answers the Success body; afterwards the id is invalid (§4.1).
#[tokio::test]
async fn deleted_list_answers_invalid_list_id() {
    let (sim, api) = start(config()).await;
    let id = api
        .post("k-hybrid", "/api/lists", json!({"name": "x"}))
        .await
        .json()["listId"]
        .as_i64()
        .unwrap();
    let r = api.delete("k-hybrid", &format!("/api/lists/{id}")).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["code"], "Success");
    assert_eq!(
        v["msg"],
        format!("List {id} in Project 1001 was successfully deleted.")
    );
    for r in [
        api.delete("k-hybrid", &format!("/api/lists/{id}")).await,
        api.subscribe(
            "k-hybrid",
            json!({"listId": id, "subscribers": [{"userId": "u"}]}),
        )
        .await,
        api.get("k-hybrid", &format!("/api/lists/{id}/size")).await,
    ] {
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["msg"], format!("error.lists.invalidListId({id})"));
    }
    assert!(sim.lists("k-hybrid").unwrap().is_empty());
    sim.shutdown().await;
}

// iterable-api.md §4.1, gotcha G2: unknown list → 400 with code "Success" and params.
#[tokio::test]
async fn unknown_list_id_is_400_with_code_success() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-email", 77, "other project's list")
        .unwrap();
    for (path, body) in [
        (
            "/api/lists/subscribe",
            json!({"listId": 999999999, "subscribers": [{"email": "a@x.com"}]}),
        ),
        (
            "/api/lists/unsubscribe",
            json!({"listId": 999999999, "subscribers": [{"email": "a@x.com"}]}),
        ),
    ] {
        let r = api.post("k-hybrid", path, body).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json(),
            json!({"msg": "error.lists.invalidListId(999999999)", "code": "Success",
                   "params": {"projectId": 1001, "listId": 999999999}})
        );
    }
    let r = api
        .get("k-hybrid", "/api/lists/getUsers?listId=999999999")
        .await;
    assert_eq!(r.json()["code"], "Success");
    // A list of another project is unknown here.
    let r = api
        .subscribe(
            "k-hybrid",
            json!({"listId": 77, "subscribers": [{"email": "a@x.com"}]}),
        )
        .await;
    assert_eq!(r.json()["msg"], "error.lists.invalidListId(77)");
    sim.shutdown().await;
}

// iterable-api.md §2.6, §2.7: getUsers is text/plain, one identifier a line; size is a
// number as text; previewUsers samples.
#[tokio::test]
async fn get_users_and_size_answer_plain_text() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-hybrid", 7, "l").unwrap();
    let r = api
        .subscribe(
            "k-hybrid",
            json!({"listId": 7, "subscribers": [
                {"email": "A@X.com", "userId": "ua"}, {"userId": "ub"}, {"email": "c@x.com"}]}),
        )
        .await;
    assert_eq!(r.json()["successCount"], 3);
    let r = api.get("k-hybrid", "/api/lists/getUsers?listId=7").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    assert_eq!(r.text, "a@x.com\nub\nc@x.com\n");
    let r = api
        .get("k-hybrid", "/api/lists/getUsers?listId=7&preferUserId=true")
        .await;
    assert_eq!(r.text, "ua\nub\nc@x.com\n");
    let r = api.get("k-hybrid", "/api/lists/7/size").await;
    assert_eq!((r.status, r.text.as_str()), (200, "3"));
    let r = api
        .get("k-hybrid", "/api/lists/previewUsers?listId=7&size=2")
        .await;
    assert_eq!(r.text.lines().count(), 2);
    let r = api.get("k-hybrid", "/api/lists/getUsers").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "BadParams");
    assert_eq!(
        sim.list_members("k-hybrid", 7).unwrap(),
        vec!["a@x.com", "ub", "c@x.com"]
    );
    sim.shutdown().await;
}

// iterable-api.md §2.2: ids Iterable assigns never collide with ids of lists declared to
// mirror a real project.
#[tokio::test]
async fn assigned_list_ids_skip_declared_ones() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-email", 1_000_000, "declared").unwrap();
    assert!(sim.create_list("k-hybrid", 1_000_000, "again").is_err());
    let id = api
        .post("k-hybrid", "/api/lists", json!({"name": "new"}))
        .await
        .json()["listId"]
        .as_i64()
        .unwrap();
    assert_ne!(id, 1_000_000);
    assert_eq!(sim.lists("k-hybrid").unwrap()[0].id, id);
    sim.shutdown().await;
}

// JSON escapes in identifiers and field names are decoded before the rules apply.
#[tokio::test]
async fn escaped_identifiers_and_field_names_are_decoded() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-hybrid", 7, "l").unwrap();
    let r = api
        .post_raw(
            "k-hybrid",
            "/api/lists/subscribe",
            r#"{"listId":7,"subscribers":[{"userId":"u\u0041","dataFields":{"a\"b":1}}]}"#,
        )
        .await;
    assert_eq!(r.json()["successCount"], 1);
    let p = sim
        .user("k-hybrid", &iterable_sim::UserRef::user_id("uA"))
        .unwrap()
        .unwrap();
    assert_eq!(p.data_fields.get("a\"b"), Some(&json!(1)));
    sim.shutdown().await;
}

// iterable-api.md §2.3, gotcha G9: deleting a list in use answers 409.
#[tokio::test]
async fn deleting_a_list_in_use_is_409() {
    let (sim, api) = start(config()).await;
    sim.create_list("k-hybrid", 8, "journey list").unwrap();
    let r = api
        .control(
            Method::PUT,
            "/projects/1001/lists/8/in_use",
            Some(json!({"inUse": true})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api.delete("k-hybrid", "/api/lists/8").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["msg"], "List is in use");
    assert_eq!(sim.lists("k-hybrid").unwrap().len(), 1);
    sim.set_list_in_use("k-hybrid", 8, false).unwrap();
    assert_eq!(api.delete("k-hybrid", "/api/lists/8").await.status, 200);
    sim.shutdown().await;
}
