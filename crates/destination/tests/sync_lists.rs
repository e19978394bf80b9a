//! End to end through the embedded simulator: which list an audience uses (design decision 7;
//! peers T1, T2, T10, T11, T18).

mod sync_support;

use std::sync::Arc;
use std::time::Duration;

use destination::lists::{ListSettings, OnMissingList};
use destination::model::ReasonCode;
use destination::settings::{AudienceConfig, ListBinding};
use destination::sync::SyncSettings;
use iterable::ProjectType;
use iterable_sim::Faults;
use serde_json::json;
use sync_support::*;

fn posts_to_create(sim: &iterable_sim::Simulator) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/lists")
        .count()
}

// peers T1: a list named like the audience is reused without POST /api/lists, and the
// second batch does not fetch the lists again.
#[tokio::test]
async fn existing_list_is_reused_by_name_without_creating() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim.create_list(KEY, 123, "test").unwrap();
    for who in ["a@example.com", "b@example.com"] {
        let r = e
            .exec
            .sync_events(&build_all(&[ev("test", None, Some(who), true)]))
            .await;
        assert!(r.outcomes.iter().all(is_delivered), "{:?}", r.outcomes);
    }
    assert_eq!(posts_to_create(&e.sim), 0);
    assert_eq!(e.exec.resolver().lists_fetches(), 1);
    assert_eq!(e.sim.lists(KEY).unwrap().len(), 1);
    assert_eq!(
        members(&e.sim, 123, false),
        vec!["a@example.com", "b@example.com"]
    );
}

// design decision 7: two Standard lists with the audience's name → "ambiguous list name"
// until the operator binds one; nothing is created or sent meanwhile.
#[tokio::test]
async fn two_lists_with_one_name_are_ambiguous_until_bound() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim.create_list(KEY, 11, "dup").unwrap();
    e.sim.create_list(KEY, 12, "dup").unwrap();
    let r = e
        .exec
        .sync_events(&build_all(&[ev("dup", None, Some("a@example.com"), true)]))
        .await;
    assert!(rejected_with(&r.outcomes[0], ReasonCode::AmbiguousList));
    let msg = &r.outcomes[0].reason().unwrap().message;
    assert!(
        msg.contains("ambiguous list name") && msg.contains("11, 12"),
        "{msg}"
    );
    assert!(r.requests.is_empty());
    assert_eq!(posts_to_create(&e.sim), 0);

    // The operator binds list 12.
    let mut dest = e.dest.clone();
    dest.audiences.insert(
        "dup".into(),
        AudienceConfig {
            list: Some(ListBinding::Id(12)),
            ..AudienceConfig::default()
        },
    );
    let exec = executor(&dest, fast_settings(), false);
    let r = exec
        .sync_events(&build_all(&[ev("dup", None, Some("a@example.com"), true)]))
        .await;
    assert!(is_delivered(&r.outcomes[0]));
    assert_eq!(members(&e.sim, 12, false), vec!["a@example.com"]);
    assert!(members(&e.sim, 11, false).is_empty());
}

// design decision 7: the event's external_audience_id is used when that list exists; a
// non-numeric one is rejected before any request (peers T10).
#[tokio::test]
async fn event_list_id_is_used_when_it_exists() {
    let e = env(ProjectType::Email, |_| {}).await;
    e.sim
        .create_list(KEY, 4269566, "renamed in Iterable")
        .unwrap();
    let r = e
        .exec
        .sync_events(&build_all(&[
            ev("first_time_shopper", None, Some("ana@example.com"), true).hint(json!("4269566")),
            ev("other", None, Some("ben@example.com"), true).hint(json!("abc")),
        ]))
        .await;
    assert!(is_delivered(&r.outcomes[0]), "{:?}", r.outcomes);
    assert!(rejected_with(&r.outcomes[1], ReasonCode::InvalidListId));
    assert_eq!(members(&e.sim, 4269566, false), vec!["ana@example.com"]);
    assert_eq!(posts_to_create(&e.sim), 0);
}

// issue 3 §6: concurrent first events of one audience create one list.
#[tokio::test]
async fn concurrent_first_batches_create_one_list() {
    let e = env(ProjectType::Email, |_| {}).await;
    let exec = Arc::new(e.exec);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let exec = exec.clone();
        let events = build_all(&[ev(
            "brand_new",
            None,
            Some(&format!("u{i}@example.com")),
            true,
        )]);
        tasks.push(tokio::spawn(async move { exec.sync_events(&events).await }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.outcomes.iter().all(is_delivered), "{:?}", r.outcomes);
    }
    assert_eq!(posts_to_create(&e.sim), 1);
    assert_eq!(
        members(&e.sim, list_id(&e.sim, "brand_new"), false).len(),
        6
    );
}

// peers T2, iterable-api.md §7 G1: a list just created answers invalidListId for a while;
// the subscribe is retried within the grace period and lands.
#[tokio::test]
async fn new_list_answering_invalid_list_id_is_retried_until_usable() {
    let sim = start(ProjectType::Email).await;
    sim.set_faults(Faults {
        new_list_invisible_ms: 600,
        ..Faults::none()
    });
    let dest = dest_for(&sim, ProjectType::Email);
    let settings = SyncSettings {
        lists: ListSettings {
            new_list_first_retry: Duration::from_millis(250),
            ..ListSettings::default()
        },
        ..fast_settings()
    };
    let exec = executor(&dest, settings, true);
    let r = exec
        .sync_events(&build_all(&[ev(
            "fresh",
            None,
            Some("a@example.com"),
            true,
        )]))
        .await;
    assert!(is_delivered(&r.outcomes[0]), "{:?}", r.outcomes);
    let statuses: Vec<_> = r.requests.iter().map(|q| q.status).collect();
    assert_eq!(statuses.first(), Some(&Some(400)), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&Some(200)), "{statuses:?}");
    assert_eq!(posts_to_create(&sim), 1, "no second list");
    assert_eq!(
        members(&sim, list_id(&sim, "fresh"), false),
        vec!["a@example.com"]
    );
}

// peers T2 bounded: a new list that never becomes usable counts as missing after the grace
// period (manual clock, so no real waiting), is replaced once, and the event lands there.
#[tokio::test]
async fn new_list_that_stays_invalid_counts_as_missing_after_the_grace_period() {
    let sim = start(ProjectType::Email).await;
    // Longer than the test runs: the first list never becomes visible.
    sim.set_faults(Faults {
        new_list_invisible_ms: 3_600_000,
        ..Faults::none()
    });
    let dest = dest_for(&sim, ProjectType::Email);
    let exec = executor(&dest, fast_settings(), false);
    let r = exec
        .sync_events(&build_all(&[ev(
            "stuck",
            None,
            Some("a@example.com"),
            true,
        )]))
        .await;
    // The replacement list is invisible too: it gets its own grace period, then the event is
    // rejected as missing rather than retried forever.
    assert!(
        rejected_with(&r.outcomes[0], ReasonCode::ListMissing),
        "{:?}",
        r.outcomes
    );
    let n = r.requests.len();
    assert!((4..60).contains(&n), "{n} attempts");
    assert_eq!(posts_to_create(&sim), 2);
}

// peers T11: the list is deleted in Iterable mid-run: the mapping is dropped, a new list is
// created once, the event lands there and earlier members are subscribed again.
#[tokio::test]
async fn deleted_list_is_recreated_and_members_are_sent_again() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    let r = e
        .exec
        .sync_events(&build_all(&[
            ev("vip", Some("u-1"), None, true),
            ev("vip", Some("u-2"), None, true),
            ev("vip", Some("u-3"), None, true),
        ]))
        .await;
    assert!(r.outcomes.iter().all(is_delivered));
    let old = list_id(&e.sim, "vip");
    // u-3 leaves before the deletion.
    e.exec
        .sync_events(&build_all(&[ev("vip", Some("u-3"), None, false)]))
        .await;
    e.sim.delete_list(KEY, old).unwrap();

    let r = e
        .exec
        .sync_events(&build_all(&[ev("vip", Some("u-4"), None, true)]))
        .await;
    assert!(is_delivered(&r.outcomes[0]), "{:?}", r.outcomes);
    assert_eq!(r.relocations.len(), 1, "{:?}", r.relocations);
    let reloc = &r.relocations[0];
    assert_eq!(reloc.old_list_id, old);
    assert_eq!(reloc.resent, 2);
    assert!(r.warnings.iter().any(|w| w.contains("no longer exists")));
    let new = list_id(&e.sim, "vip");
    assert_eq!(new, reloc.new_list_id);
    assert_ne!(new, old);
    assert_eq!(members(&e.sim, new, true), vec!["u-1", "u-2", "u-4"]);
    assert_eq!(posts_to_create(&e.sim), 2);
}

// design decision 7: on_missing_list = "reject": a vanished list is not re-created.
#[tokio::test]
async fn deleted_list_with_reject_policy_rejects_events() {
    let sim = start(ProjectType::Email).await;
    sim.create_list(KEY, 900, "keep").unwrap();
    let dest = dest_for(&sim, ProjectType::Email);
    let settings = SyncSettings {
        lists: ListSettings {
            on_missing_list: OnMissingList::Reject,
            ..ListSettings::default()
        },
        ..fast_settings()
    };
    let exec = executor(&dest, settings, false);
    let r = exec
        .sync_events(&build_all(&[ev("keep", None, Some("a@example.com"), true)]))
        .await;
    assert!(is_delivered(&r.outcomes[0]));
    sim.delete_list(KEY, 900).unwrap();
    let r = exec
        .sync_events(&build_all(&[ev("keep", None, Some("b@example.com"), true)]))
        .await;
    assert!(
        rejected_with(&r.outcomes[0], ReasonCode::ListMissing),
        "{:?}",
        r.outcomes
    );
    assert!(r.outcomes[0].reason().unwrap().message.contains("900"));
    assert!(sim.lists(KEY).unwrap().is_empty());
    assert_eq!(posts_to_create(&sim), 0);
}
