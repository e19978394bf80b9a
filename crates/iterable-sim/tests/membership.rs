//! Subscribe and unsubscribe semantics per project type, identifier rules, conflicts, GDPR,
//! dataFields, over real HTTP.

mod common;

use common::{Api, start, strings};
use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator, UserRef};
use serde_json::{Value, json};

const LIST: i64 = 4242;

async fn project(ty: ProjectType) -> (Simulator, Api) {
    let (sim, api) = start(SimConfig::new().project("k", ty).seed(1)).await;
    sim.create_list("k", LIST, "audience").unwrap();
    (sim, api)
}

async fn sub(api: &Api, subscribers: Value) -> Value {
    let r = api
        .subscribe("k", json!({"listId": LIST, "subscribers": subscribers}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

async fn unsub(api: &Api, body: Value) -> Value {
    let mut body = body;
    body["listId"] = json!(LIST);
    let r = api.unsubscribe("k", body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

// iterable-api.md §3: every array is present, including createdFields/filteredOutFields and
// the ten failedUpdates arrays.
#[tokio::test]
async fn bulk_answer_has_every_documented_array() {
    let (sim, api) = project(ProjectType::Hybrid).await;
    let v = sub(&api, json!([{"userId": "u1"}])).await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(v["failCount"], 0);
    for k in [
        "createdFields",
        "filteredOutFields",
        "invalidEmails",
        "invalidUserIds",
    ] {
        assert!(v[k].is_array(), "{k}");
    }
    for k in [
        "conflictEmails",
        "conflictUserIds",
        "forgottenEmails",
        "forgottenUserIds",
        "invalidDataEmails",
        "invalidDataUserIds",
        "invalidEmails",
        "invalidUserIds",
        "notFoundEmails",
        "notFoundUserIds",
    ] {
        assert!(v["failedUpdates"][k].is_array(), "failedUpdates.{k}");
    }
    sim.shutdown().await;
}

// iterable-api.md §6.3: userId ≤ 52 chars, printable ASCII, no surrounding whitespace,
// non-empty; reported per subscriber with HTTP 200.
#[tokio::test]
async fn invalid_user_ids_are_reported_per_subscriber_with_200() {
    let (sim, api) = project(ProjectType::UserId).await;
    let long = "x".repeat(53);
    let ok52 = "y".repeat(52);
    let v = sub(
        &api,
        json!([{"userId": long}, {"userId": " lead"}, {"userId": "trail "}, {"userId": ""},
               {"userId": "naïve"}, {"userId": "tab\t"}, {"userId": ok52}]),
    )
    .await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(v["failCount"], 6);
    let bad = strings(&v, "/failedUpdates/invalidUserIds");
    assert_eq!(
        bad,
        vec![long.as_str(), " lead", "trail ", "", "naïve", "tab\t"]
    );
    assert_eq!(
        strings(&v, "/invalidUserIds"),
        bad,
        "deprecated top-level copy"
    );
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec![ok52]);
    sim.shutdown().await;
}

// iterable-api.md §6.3, gotcha G4: emails are format-checked and stored lowercase; failure
// arrays carry them lowercased, so clients compare case-insensitively.
#[tokio::test]
async fn emails_are_checked_and_stored_lowercase() {
    let (sim, api) = project(ProjectType::Email).await;
    let v = sub(
        &api,
        json!([{"email": "Jane.Doe@Example.COM"}, {"email": "User @example.com"},
               {"email": "bad@@example.com"}]),
    )
    .await;
    assert_eq!(
        (v["successCount"].as_i64(), v["failCount"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        strings(&v, "/failedUpdates/invalidEmails"),
        vec!["user @example.com", "bad@@example.com"]
    );
    assert_eq!(
        sim.list_members("k", LIST).unwrap(),
        vec!["jane.doe@example.com"]
    );
    // The same person in another case is the same user.
    let v = sub(&api, json!([{"email": "JANE.DOE@example.com"}])).await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(sim.users("k").unwrap().len(), 1);
    sim.shutdown().await;
}

// iterable-api.md §2.4, §6.2: in an email project an unknown email is created; a userId alone
// is not found unless preferUserId creates a @placeholder.email user; updateExistingUsersOnly
// is not respected.
#[tokio::test]
async fn email_project_creates_by_email_and_needs_prefer_user_id_for_a_user_id() {
    let (sim, api) = project(ProjectType::Email).await;
    let r = api
        .subscribe(
            "k",
            json!({"listId": LIST, "updateExistingUsersOnly": true,
                   "subscribers": [{"email": "new@x.com"}, {"userId": "ghost"},
                                   {"userId": "anon1", "preferUserId": true}]}),
        )
        .await;
    let v = r.json();
    assert_eq!(v["successCount"], 2);
    assert_eq!(strings(&v, "/failedUpdates/notFoundUserIds"), vec!["ghost"]);
    let members = sim.list_members("k", LIST).unwrap();
    assert_eq!(members[0], "new@x.com");
    assert!(members[1].ends_with("@placeholder.email"), "{members:?}");
    let anon = sim.user("k", &UserRef::user_id("anon1")).unwrap().unwrap();
    assert_eq!(anon.email.as_deref(), Some(members[1].as_str()));
    // Email wins when both are sent, and the userId on the profile is overwritten.
    sub(&api, json!([{"email": "new@x.com", "userId": "u-new"}])).await;
    let p = sim
        .user("k", &UserRef::email("new@x.com"))
        .unwrap()
        .unwrap();
    assert_eq!(p.user_id.as_deref(), Some("u-new"));
    sim.shutdown().await;
}

// iterable-api.md §2.4, §6.2: updateExistingUsersOnly is respected in userId and hybrid
// projects (unknown users → notFound…); preferUserId is ignored there.
#[tokio::test]
async fn update_existing_users_only_reports_unknown_users_in_user_id_and_hybrid_projects() {
    for ty in [ProjectType::UserId, ProjectType::Hybrid] {
        let (sim, api) = project(ty).await;
        sub(&api, json!([{"userId": "known"}])).await;
        let r = api
            .subscribe(
                "k",
                json!({"listId": LIST, "updateExistingUsersOnly": true,
                       "subscribers": [{"userId": "known"}, {"userId": "stranger", "preferUserId": true}]}),
            )
            .await;
        let v = r.json();
        assert_eq!(v["successCount"], 1, "{ty}");
        assert_eq!(
            strings(&v, "/failedUpdates/notFoundUserIds"),
            vec!["stranger"],
            "{ty}"
        );
        assert!(
            sim.user("k", &UserRef::user_id("stranger"))
                .unwrap()
                .is_none()
        );
        // Without the flag the unknown user is created, with no placeholder email.
        sub(&api, json!([{"userId": "stranger"}])).await;
        let p = sim
            .user("k", &UserRef::user_id("stranger"))
            .unwrap()
            .unwrap();
        assert_eq!(p.email, None, "{ty}");
        sim.shutdown().await;
    }
}

// iterable-api.md §6.1, §6.2: a userId project identifies by userId; an email-only subscriber
// matches an existing user with that email, else is not found (never created).
#[tokio::test]
async fn user_id_project_identifies_by_user_id() {
    let (sim, api) = project(ProjectType::UserId).await;
    sub(&api, json!([{"userId": "u1", "email": "One@x.com"}])).await;
    let v = sub(
        &api,
        json!([{"email": "one@x.com"}, {"email": "nobody@x.com"}]),
    )
    .await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(
        strings(&v, "/failedUpdates/notFoundEmails"),
        vec!["nobody@x.com"]
    );
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["u1"]);
    assert_eq!(sim.users("k").unwrap().len(), 1);
    sim.shutdown().await;
}

// iterable-api.md §3 (conflictEmails/conflictUserIds), gotcha G14: in a hybrid project an
// email and a userId that belong to two different users are a conflict.
#[tokio::test]
async fn hybrid_identity_conflicts_are_reported() {
    let (sim, api) = project(ProjectType::Hybrid).await;
    sub(
        &api,
        json!([{"email": "a@x.com", "userId": "ua"}, {"email": "b@x.com", "userId": "ub"}]),
    )
    .await;
    let v = sub(
        &api,
        json!([{"email": "A@x.com", "userId": "ub"},
               {"email": "b@x.com", "userId": "uc"},
               {"email": "c@x.com", "userId": "ua"}]),
    )
    .await;
    // 1: email of ua's user, userId of another user. 2: email held by a user with another
    // userId. 3: a fresh email for an existing userId is an identity update, not a conflict.
    assert_eq!(v["successCount"], 1);
    assert_eq!(v["failCount"], 2);
    assert_eq!(
        strings(&v, "/failedUpdates/conflictEmails"),
        vec!["a@x.com", "b@x.com"]
    );
    assert_eq!(
        strings(&v, "/failedUpdates/conflictUserIds"),
        vec!["ub", "uc"]
    );
    let p = sim.user("k", &UserRef::user_id("ua")).unwrap().unwrap();
    assert_eq!(p.email.as_deref(), Some("c@x.com"));
    // A lone email attaches a userId to a user that has none.
    sub(&api, json!([{"email": "d@x.com"}])).await;
    let v = sub(&api, json!([{"email": "d@x.com", "userId": "ud"}])).await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(
        sim.user("k", &UserRef::user_id("ud"))
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("d@x.com")
    );
    sim.shutdown().await;
}

// iterable-api.md §3 (forgotten…), gotcha G16: GDPR-forgotten users are reported and never
// re-added.
#[tokio::test]
async fn forgotten_users_are_reported_and_never_readded() {
    let (sim, api) = project(ProjectType::Hybrid).await;
    sub(
        &api,
        json!([{"email": "gone@x.com", "userId": "ug"}, {"userId": "stay"}]),
    )
    .await;
    sim.forget_user("k", &UserRef::user_id("ug")).unwrap();
    sim.forget_user("k", &UserRef::email("Never@x.com"))
        .unwrap();
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["stay"]);
    assert!(
        sim.user("k", &UserRef::email("gone@x.com"))
            .unwrap()
            .is_none()
    );
    let v = sub(
        &api,
        json!([{"email": "GONE@x.com"}, {"userId": "ug"}, {"email": "never@x.com"}, {"userId": "new"}]),
    )
    .await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(
        strings(&v, "/failedUpdates/forgottenEmails"),
        vec!["gone@x.com", "never@x.com"]
    );
    assert_eq!(strings(&v, "/failedUpdates/forgottenUserIds"), vec!["ug"]);
    let v = unsub(&api, json!({"subscribers": [{"userId": "ug"}]})).await;
    assert_eq!(strings(&v, "/failedUpdates/forgottenUserIds"), vec!["ug"]);
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["stay", "new"]);
    sim.shutdown().await;
}

// iterable-api.md §2.4, §6.4: dataFields merge (top-level overwrite, mergeNestedObjects
// merges, null removes); createdFields names new fields.
#[tokio::test]
async fn data_fields_merge_into_the_profile() {
    let (sim, api) = project(ProjectType::UserId).await;
    let v = sub(
        &api,
        json!([{"userId": "u", "dataFields": {"plan": "pro", "s": {"mobile": true}, "gone": 1}}]),
    )
    .await;
    let mut created = strings(&v, "/createdFields");
    created.sort();
    assert_eq!(created, vec!["gone", "plan", "s", "s.mobile"]);
    sub(
        &api,
        json!([{"userId": "u", "mergeNestedObjects": true,
                "dataFields": {"s": {"email": true}, "gone": null}}]),
    )
    .await;
    let p = sim.user("k", &UserRef::user_id("u")).unwrap().unwrap();
    assert_eq!(
        Value::Object(p.data_fields.clone()),
        json!({"plan": "pro", "s": {"mobile": true, "email": true}})
    );
    sub(
        &api,
        json!([{"userId": "u", "dataFields": {"s": {"sms": false}, "plan": "basic"}}]),
    )
    .await;
    let p = sim.user("k", &UserRef::user_id("u")).unwrap().unwrap();
    assert_eq!(
        Value::Object(p.data_fields),
        json!({"plan": "basic", "s": {"sms": false}})
    );
    sim.shutdown().await;
}

// iterable-api.md §6.4: field types are per project; a value of another type is reported in
// invalidDataEmails/invalidDataUserIds and that subscriber is not added.
#[tokio::test]
async fn a_field_of_another_type_is_invalid_data() {
    let (sim, api) = project(ProjectType::Hybrid).await;
    sub(&api, json!([{"userId": "u1", "dataFields": {"age": 30, "signupDate": "2020-08-19 20:50:04 +00:00"}}])).await;
    let v = sub(
        &api,
        json!([{"userId": "u2", "dataFields": {"age": "thirty"}},
               {"email": "e@x.com", "dataFields": {"signupDate": "GGG"}},
               {"userId": "u3", "dataFields": {"age": 41}}]),
    )
    .await;
    assert_eq!(v["successCount"], 1);
    assert_eq!(strings(&v, "/failedUpdates/invalidDataUserIds"), vec!["u2"]);
    assert_eq!(
        strings(&v, "/failedUpdates/invalidDataEmails"),
        vec!["e@x.com"]
    );
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["u1", "u3"]);
    assert!(sim.user("k", &UserRef::user_id("u2")).unwrap().is_none());
    sim.shutdown().await;
}

// iterable-api.md §2.4, §2.5: subscribe and unsubscribe are idempotent; unsubscribing an
// existing non-member succeeds; an unknown user on unsubscribe is not found and not created.
#[tokio::test]
async fn subscribe_and_unsubscribe_are_idempotent() {
    let (sim, api) = project(ProjectType::Email).await;
    for _ in 0..2 {
        let v = sub(&api, json!([{"email": "a@x.com"}])).await;
        assert_eq!(
            (v["successCount"].as_i64(), v["failCount"].as_i64()),
            (Some(1), Some(0))
        );
    }
    assert_eq!(sim.list_members("k", LIST).unwrap(), vec!["a@x.com"]);
    for _ in 0..2 {
        let v = unsub(&api, json!({"subscribers": [{"email": "A@x.com"}]})).await;
        assert_eq!(
            (v["successCount"].as_i64(), v["failCount"].as_i64()),
            (Some(1), Some(0))
        );
    }
    assert!(sim.list_members("k", LIST).unwrap().is_empty());
    let v = unsub(&api, json!({"subscribers": [{"email": "stranger@x.com"}]})).await;
    assert_eq!(
        strings(&v, "/failedUpdates/notFoundEmails"),
        vec!["stranger@x.com"]
    );
    assert!(
        sim.user("k", &UserRef::email("stranger@x.com"))
            .unwrap()
            .is_none()
    );
    sim.shutdown().await;
}

// iterable-api.md §2.5, gotcha G5, G6: channelUnsubscribe records a channel unsubscribe;
// campaignId is recorded with the unsubscribe; a plain exit records neither.
#[tokio::test]
async fn channel_unsubscribe_and_campaign_id_are_recorded() {
    let (sim, api) = project(ProjectType::Hybrid).await;
    sub(
        &api,
        json!([{"userId": "plain"}, {"userId": "chan"}, {"userId": "camp"}]),
    )
    .await;
    unsub(
        &api,
        json!({"subscribers": [{"userId": "plain"}], "channelUnsubscribe": false}),
    )
    .await;
    unsub(
        &api,
        json!({"subscribers": [{"userId": "chan"}], "channelUnsubscribe": true}),
    )
    .await;
    unsub(
        &api,
        json!({"subscribers": [{"userId": "camp"}], "campaignId": 555}),
    )
    .await;
    let plain = sim.user("k", &UserRef::user_id("plain")).unwrap().unwrap();
    assert!(plain.unsubscribed_channel_ids.is_empty() && plain.unsubscribes.is_empty());
    let chan = sim.user("k", &UserRef::user_id("chan")).unwrap().unwrap();
    assert_eq!(chan.unsubscribed_channel_ids.len(), 1);
    assert!(chan.unsubscribes[0].channel_unsubscribe);
    let camp = sim.user("k", &UserRef::user_id("camp")).unwrap().unwrap();
    assert!(camp.unsubscribed_channel_ids.is_empty());
    assert_eq!(camp.unsubscribes[0].campaign_id, Some(555));
    assert_eq!(camp.unsubscribes[0].list_id, LIST);
    assert!(sim.list_members("k", LIST).unwrap().is_empty());
    sim.shutdown().await;
}

// iterable-api.md §6.1: each project has its own users and lists.
#[tokio::test]
async fn projects_are_isolated() {
    let (sim, api) = start(
        SimConfig::new()
            .project("ka", ProjectType::Hybrid)
            .project("kb", ProjectType::Hybrid),
    )
    .await;
    sim.create_list("ka", 1, "a").unwrap();
    sim.create_list("kb", 2, "b").unwrap();
    api.subscribe(
        "ka",
        json!({"listId": 1, "subscribers": [{"userId": "u", "dataFields": {"f": 1}}]}),
    )
    .await;
    let r = api
        .subscribe(
            "kb",
            json!({"listId": 2, "subscribers": [{"userId": "u", "dataFields": {"f": "text"}}]}),
        )
        .await;
    // Field types are per project: "f" is a number in a, free in b.
    assert_eq!(r.json()["successCount"], 1);
    assert_eq!(sim.users("kb").unwrap().len(), 1);
    assert_eq!(sim.list_members(1001, 1).unwrap(), vec!["u"]);
    sim.shutdown().await;
}
