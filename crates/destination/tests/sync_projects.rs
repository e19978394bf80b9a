//! End to end through the embedded simulator: the three project types, identity rules and
//! per-subscriber results (peers-and-field-problems.md §5; design decisions 2, 3).

mod sync_support;

use destination::model::{Outcome, ReasonCode};
use iterable::ProjectType;
use iterable_sim::UserRef;
use serde_json::json;
use sync_support::*;

// Email project: subscribes and exits by email; bodies carry only the email; unsubscribe
// always says channelUnsubscribe false (peers T5).
#[tokio::test]
async fn email_project_subscribes_and_unsubscribes_by_email() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim.create_list(KEY, 500, "vip").unwrap();
    let s = json!({"updateExistingUsersOnly": true, "globalUnsubscribe": false});
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("vip", Some("u1"), Some("Ana@Example.com"), true),
            ev("vip", None, Some("ben@example.com"), true),
            ev("vip", None, Some("cat@example.com"), true),
        ]))
        .await;
    assert!(
        report.outcomes.iter().all(is_delivered),
        "{:?}",
        report.outcomes
    );
    let report2 = e
        .exec
        .sync_events(&build_all(&[ev(
            "vip",
            None,
            Some("cat@example.com"),
            false,
        )
        .settings(s)]))
        .await;
    assert!(
        report2.outcomes.iter().all(is_delivered),
        "{:?}",
        report2.outcomes
    );

    assert_eq!(
        members(&e.sim, 500, false),
        vec!["ana@example.com", "ben@example.com"]
    );
    let bodies = request_bodies(&report);
    assert_eq!(
        bodies[0]["subscribers"][0],
        json!({"email": "ana@example.com"}),
        "email projects send the email only"
    );
    assert_eq!(bodies[0]["updateExistingUsersOnly"], json!(false));
    let unsub = request_bodies(&report2);
    assert_eq!(
        unsub[0],
        json!({"listId": 500, "subscribers": [{"email": "cat@example.com"}], "channelUnsubscribe": false})
    );
    // The exit did not unsubscribe the user from any channel.
    let cat = e
        .sim
        .user(KEY, &UserRef::email("cat@example.com"))
        .unwrap()
        .unwrap();
    assert!(cat.unsubscribed_channel_ids.is_empty());
}

// userId project: the userId goes in the request; an email-only event is rejected before
// anything is sent.
#[tokio::test]
async fn user_id_project_sends_user_ids_and_rejects_email_only_events() {
    let e = env(ProjectType::UserId, |_| {}).await;
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("aud_u", Some("u-1"), Some("one@example.com"), true),
            ev("aud_u", Some("u-2"), None, true),
            ev("aud_u", None, Some("three@example.com"), true),
        ]))
        .await;
    assert!(is_delivered(&report.outcomes[0]));
    assert!(is_delivered(&report.outcomes[1]));
    assert!(
        rejected_with(&report.outcomes[2], ReasonCode::BadIdentifier),
        "{:?}",
        report.outcomes[2]
    );
    let list = list_id(&e.sim, "aud_u");
    assert_eq!(members(&e.sim, list, true), vec!["u-1", "u-2"]);
    let bodies = request_bodies(&report);
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0]["subscribers"],
        json!([{"userId": "u-1"}, {"userId": "u-2"}])
    );
}

// Hybrid project: both identifiers when both are known (design decision 3); track events find
// the email in context.traits (peers T9).
#[tokio::test]
async fn hybrid_project_sends_both_identifiers() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("hyb", Some("u-1"), Some("one@example.com"), true),
            ev("hyb", None, Some("two@example.com"), true).track(),
            ev("hyb", Some("u-3"), None, true).track(),
        ]))
        .await;
    assert!(
        report.outcomes.iter().all(is_delivered),
        "{:?}",
        report.outcomes
    );
    let list = list_id(&e.sim, "hyb");
    assert_eq!(
        members(&e.sim, list, false),
        vec!["one@example.com", "two@example.com", "u-3"]
    );
    let u1 = e.sim.user(KEY, &UserRef::user_id("u-1")).unwrap().unwrap();
    assert_eq!(u1.email.as_deref(), Some("one@example.com"));
    let bodies = request_bodies(&report);
    assert_eq!(
        bodies[0]["subscribers"][0],
        json!({"email": "one@example.com", "userId": "u-1"})
    );
}

// peers T20: email project, userId-only subscriber: preferUserId true creates a placeholder
// user; with prefer_user_id off Iterable does not know the user and the event is rejected.
#[tokio::test]
async fn email_project_user_id_only_follows_prefer_user_id() {
    let e = env(ProjectType::Email, |_| {}).await;
    let report = e
        .exec
        .sync_events(&build_all(&[ev("t20", Some("u-only"), None, true)]))
        .await;
    assert!(is_delivered(&report.outcomes[0]), "{:?}", report.outcomes);
    assert_eq!(
        request_bodies(&report)[0]["subscribers"][0],
        json!({"userId": "u-only", "preferUserId": true})
    );
    let list = list_id(&e.sim, "t20");
    let m = members(&e.sim, list, false);
    assert_eq!(m.len(), 1);
    assert!(m[0].ends_with("@placeholder.email"), "{m:?}");

    let e = env(ProjectType::Email, |d| d.prefer_user_id = false).await;
    let report = e
        .exec
        .sync_events(&build_all(&[ev("t20", Some("u-only"), None, true)]))
        .await;
    assert_eq!(
        request_bodies(&report)[0]["subscribers"][0],
        json!({"userId": "u-only"})
    );
    assert!(
        rejected_with(&report.outcomes[0], ReasonCode::NotFoundOnSubscribe),
        "{:?}",
        report.outcomes
    );
    assert!(members(&e.sim, list_id(&e.sim, "t20"), false).is_empty());
}

// peers T15 and iterable-api.md §2.4: with updateExistingUsersOnly an unknown user is
// rejected on subscribe; an unknown user on unsubscribe is already off the list (skipped).
#[tokio::test]
async fn update_existing_users_only_and_not_found_results() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    e.sim.create_list(KEY, 700, "existing_only").unwrap();
    // Make u-known exist (through another list).
    e.exec
        .sync_events(&build_all(&[ev("warmup", Some("u-known"), None, true)]))
        .await;
    let s = json!({"updateExistingUsersOnly": true});
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("existing_only", Some("u-known"), None, true).settings(s.clone()),
            ev("existing_only", Some("u-missing"), None, true).settings(s.clone()),
            ev("existing_only", Some("user_missing"), None, false).settings(s),
        ]))
        .await;
    assert!(is_delivered(&report.outcomes[0]), "{:?}", report.outcomes);
    assert!(rejected_with(
        &report.outcomes[1],
        ReasonCode::NotFoundOnSubscribe
    ));
    assert!(
        skipped_with(&report.outcomes[2], ReasonCode::NotFoundOnUnsubscribe),
        "{:?}",
        report.outcomes[2]
    );
    assert_eq!(report.count(|o| matches!(o, Outcome::Rejected { .. })), 1);
    assert_eq!(members(&e.sim, 700, true), vec!["u-known"]);
    assert!(
        e.sim
            .user(KEY, &UserRef::user_id("u-missing"))
            .unwrap()
            .is_none()
    );
    let sub = &request_bodies(&report)[0];
    assert_eq!(sub["updateExistingUsersOnly"], json!(true));
}

// iterable-api.md §7 G16: a GDPR-forgotten user is skipped, never an error, never on the list.
#[tokio::test]
async fn gdpr_forgotten_user_is_skipped() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim
        .forget_user(KEY, &UserRef::email("gone@example.com"))
        .unwrap();
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("gdpr", None, Some("gone@example.com"), true),
            ev("gdpr", None, Some("here@example.com"), true),
        ]))
        .await;
    assert!(
        skipped_with(&report.outcomes[0], ReasonCode::Forgotten),
        "{:?}",
        report.outcomes
    );
    assert!(is_delivered(&report.outcomes[1]));
    assert!(!report.any_rejected());
    assert_eq!(
        members(&e.sim, list_id(&e.sim, "gdpr"), false),
        vec!["here@example.com"]
    );
}

// iterable-api.md §6.2: in a hybrid project an email owned by another userId is a conflict,
// rejected for that subscriber alone.
#[tokio::test]
async fn hybrid_identity_conflict_is_rejected_alone() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    let first = e
        .exec
        .sync_events(&build_all(&[ev(
            "conf",
            Some("u-1"),
            Some("shared@example.com"),
            true,
        )]))
        .await;
    assert!(is_delivered(&first.outcomes[0]));
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("conf", Some("u-2"), Some("shared@example.com"), true),
            ev("conf", Some("u-3"), Some("three@example.com"), true),
        ]))
        .await;
    assert!(
        rejected_with(&report.outcomes[0], ReasonCode::IdentityConflict),
        "{:?}",
        report.outcomes
    );
    assert!(is_delivered(&report.outcomes[1]));
    assert_eq!(
        members(&e.sim, list_id(&e.sim, "conf"), true),
        vec!["u-1", "u-3"]
    );
}

// design: Plan. Enter then exit of one user in one batch ends outside, and the exit to a list
// this service just created is never sent (design decision 2).
#[tokio::test]
async fn enter_then_exit_in_one_batch_ends_outside_without_requests() {
    let e = env(ProjectType::Email, |_| {}).await;
    let report = e
        .exec
        .sync_events(&build_all(&[
            ev("churn", None, Some("a@example.com"), true),
            ev("churn", None, Some("a@example.com"), false),
            ev("churn", None, Some("b@example.com"), true),
        ]))
        .await;
    assert!(skipped_with(&report.outcomes[0], ReasonCode::Superseded));
    assert!(
        skipped_with(&report.outcomes[1], ReasonCode::ExitNeverSent),
        "{:?}",
        report.outcomes
    );
    assert!(is_delivered(&report.outcomes[2]));
    let bodies = request_bodies(&report);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        bodies[0]["subscribers"],
        json!([{"email": "b@example.com"}])
    );
    assert_eq!(
        members(&e.sim, list_id(&e.sim, "churn"), false),
        vec!["b@example.com"]
    );
    // A later exit of b is sent: b was subscribed by this service.
    let report = e
        .exec
        .sync_events(&build_all(&[ev(
            "churn",
            None,
            Some("b@example.com"),
            false,
        )]))
        .await;
    assert!(is_delivered(&report.outcomes[0]), "{:?}", report.outcomes);
    assert!(members(&e.sim, list_id(&e.sim, "churn"), false).is_empty());
}
