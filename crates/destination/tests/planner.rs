//! Planner rules: latest state per identity, grouping, chunking, and request bodies field for
//! field (iterable-api.md §2.4/§2.5, design decisions 3 and 5, peers T4/T5/T7/T20).

use destination::identity::IdentityError;
use destination::model::{Direction, Identity, MembershipChange, Outcome, ReasonCode, Timestamp};
use destination::planner::{self, PlanConfig, PlanItem, PlannedRequest};
use destination::settings::{BatchLimits, EffectiveAudienceSettings};
use iterable::ProjectType;
use serde_json::{Map, Value, json};

fn id(email: Option<&str>, user: Option<&str>, p: ProjectType) -> Identity {
    Identity::new(email, user, p).unwrap()
}

fn change(n: u64, ts_ms: i64, dir: Direction, identity: Identity) -> MembershipChange {
    MembershipChange {
        message_id: format!("m{n}"),
        timestamp: Timestamp::from_unix_millis(ts_ms),
        received_order: n,
        audience_key: "aud".into(),
        list_hint: None,
        direction: dir,
        identity,
        data_fields: Map::new(),
        audience_settings: None,
    }
}

fn config(p: ProjectType) -> PlanConfig {
    PlanConfig {
        project_type: p,
        prefer_user_id: true,
        limits: BatchLimits::default(),
    }
}

fn items(
    changes: &[MembershipChange],
    list_id: i64,
    s: EffectiveAudienceSettings,
) -> Vec<PlanItem<'_>> {
    changes
        .iter()
        .map(|change| PlanItem {
            list_id,
            settings: s,
            change,
        })
        .collect()
}

fn body(r: &PlannedRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

use Direction::{Subscribe as In, Unsubscribe as Out};

// iterable-api.md §2.4 + design decision 3: hybrid sends both identifiers;
// updateExistingUsersOnly is explicit; no preferUserId, no empty dataFields.
#[test]
fn hybrid_subscribe_body_matches_the_reference() {
    let p = ProjectType::Hybrid;
    let cs = vec![
        change(1, 1, In, id(Some("Jane@Example.com"), Some("u123"), p)),
        change(2, 2, In, id(Some("bob@example.com"), None, p)),
        change(3, 3, In, id(None, Some("u9"), p)),
    ];
    let plan = planner::plan(
        &config(p),
        &items(&cs, 4269566, EffectiveAudienceSettings::default()),
    );
    assert!(plan.settled.is_empty());
    assert_eq!(plan.requests.len(), 1);
    let r = &plan.requests[0];
    assert_eq!(r.path(), "/api/lists/subscribe");
    assert_eq!(r.changes, vec![0, 1, 2]);
    assert_eq!(
        body(r),
        json!({"listId": 4269566, "subscribers": [
            {"email": "jane@example.com", "userId": "u123"},
            {"email": "bob@example.com"},
            {"userId": "u9"}
        ], "updateExistingUsersOnly": false})
    );
}

// The hand-built bytes equal serde's serialisation of iterable's typed request.
#[test]
fn bodies_are_byte_identical_to_the_typed_serialisation() {
    let p = ProjectType::Hybrid;
    let mut c = change(1, 1, In, id(Some("a@x.com"), Some("u1"), p));
    c.data_fields
        .insert("plan".into(), json!({"tier": "pro", "n": [1, 2]}));
    let cs = vec![c, change(2, 1, Out, id(Some("b@x.com"), None, p))];
    let s = EffectiveAudienceSettings {
        update_existing_users_only: true,
        channel_unsubscribe: false,
        campaign_id: Some(9),
    };
    let plan = planner::plan(&config(p), &items(&cs, 7, s));
    assert_eq!(plan.requests.len(), 2);
    for r in &plan.requests {
        let typed = match r.direction {
            In => serde_json::to_vec(&r.subscribe_request().unwrap()).unwrap(),
            Out => serde_json::to_vec(&r.unsubscribe_request().unwrap()).unwrap(),
        };
        assert_eq!(
            String::from_utf8_lossy(&typed),
            String::from_utf8_lossy(&r.body)
        );
    }
}

// T5 (peers-and-field-problems.md) and iterable-api.md §2.5: an exit never becomes a channel
// unsubscribe, even with updateExistingUsersOnly true; channelUnsubscribe is always explicit.
#[test]
fn unsubscribe_sends_channel_unsubscribe_false_even_with_update_existing_users_only() {
    let p = ProjectType::Hybrid;
    let cs = vec![change(1, 1, Out, id(Some("a@x.com"), None, p))];
    let s = EffectiveAudienceSettings {
        update_existing_users_only: true,
        channel_unsubscribe: false,
        campaign_id: None,
    };
    let plan = planner::plan(&config(p), &items(&cs, 5, s));
    let r = &plan.requests[0];
    assert_eq!(r.path(), "/api/lists/unsubscribe");
    assert_eq!(
        body(r),
        json!({"listId": 5, "subscribers": [{"email": "a@x.com"}], "channelUnsubscribe": false})
    );
}

// T7(b): campaignId is sent as a number, only when set, only on unsubscribe.
#[test]
fn campaign_id_is_a_number_on_unsubscribe_only() {
    let p = ProjectType::Hybrid;
    let cs = vec![
        change(1, 1, Out, id(Some("a@x.com"), None, p)),
        change(2, 1, In, id(Some("b@x.com"), None, p)),
    ];
    let s = EffectiveAudienceSettings {
        update_existing_users_only: false,
        channel_unsubscribe: true,
        campaign_id: Some(12345),
    };
    let plan = planner::plan(&config(p), &items(&cs, 5, s));
    let sub = plan.requests.iter().find(|r| r.direction == In).unwrap();
    let unsub = plan.requests.iter().find(|r| r.direction == Out).unwrap();
    assert_eq!(
        body(sub),
        json!({"listId": 5, "subscribers": [{"email": "b@x.com"}], "updateExistingUsersOnly": false})
    );
    assert_eq!(
        body(unsub),
        json!({"listId": 5, "subscribers": [{"email": "a@x.com"}], "campaignId": 12345, "channelUnsubscribe": true})
    );
}

// T20 and design decision 3: in an email project a userId-only subscriber carries
// preferUserId:true when the option is on, nothing when off; never in other project types.
#[test]
fn prefer_user_id_only_for_user_id_only_subscribers_in_email_projects() {
    let p = ProjectType::Email;
    let cs = vec![
        change(1, 1, In, id(None, Some("u1"), p)),
        change(2, 1, In, id(Some("a@x.com"), Some("u2"), p)),
    ];
    let on = planner::plan(
        &config(p),
        &items(&cs, 3, EffectiveAudienceSettings::default()),
    );
    assert_eq!(
        body(&on.requests[0])["subscribers"],
        json!([{"userId": "u1", "preferUserId": true}, {"email": "a@x.com"}])
    );
    let off_cfg = PlanConfig {
        prefer_user_id: false,
        ..config(p)
    };
    let off = planner::plan(
        &off_cfg,
        &items(&cs, 3, EffectiveAudienceSettings::default()),
    );
    assert_eq!(
        body(&off.requests[0])["subscribers"],
        json!([{"userId": "u1"}, {"email": "a@x.com"}])
    );
    for p in [ProjectType::Hybrid, ProjectType::UserId] {
        let cs = vec![change(1, 1, In, id(None, Some("u1"), p))];
        let r = planner::plan(
            &config(p),
            &items(&cs, 3, EffectiveAudienceSettings::default()),
        );
        assert_eq!(
            body(&r.requests[0])["subscribers"],
            json!([{"userId": "u1"}]),
            "{p}"
        );
    }
    // Unsubscribe never carries preferUserId.
    let cs = vec![change(1, 1, Out, id(None, Some("u1"), ProjectType::Email))];
    let r = planner::plan(
        &config(ProjectType::Email),
        &items(&cs, 3, EffectiveAudienceSettings::default()),
    );
    assert_eq!(
        body(&r.requests[0])["subscribers"],
        json!([{"userId": "u1"}])
    );
}

// design decision 3: a userId project sends only the userId.
#[test]
fn user_id_project_sends_only_user_ids() {
    let p = ProjectType::UserId;
    let cs = vec![change(1, 1, In, id(Some("a@x.com"), Some("u1"), p))];
    let r = planner::plan(
        &config(p),
        &items(&cs, 3, EffectiveAudienceSettings::default()),
    );
    assert_eq!(
        body(&r.requests[0])["subscribers"],
        json!([{"userId": "u1"}])
    );
}

// T4: dataFields objects pass through on subscribe; never on unsubscribe; absent when empty.
#[test]
fn data_fields_go_on_subscribes_only_when_non_empty() {
    let p = ProjectType::Hybrid;
    let mut a = change(1, 1, In, id(Some("a@x.com"), None, p));
    a.data_fields.insert("firstName".into(), json!("Jane"));
    let mut b = change(2, 1, Out, id(Some("b@x.com"), None, p));
    b.data_fields.insert("firstName".into(), json!("Bob"));
    let cs = vec![a, b];
    let plan = planner::plan(
        &config(p),
        &items(&cs, 1, EffectiveAudienceSettings::default()),
    );
    let sub = plan.requests.iter().find(|r| r.direction == In).unwrap();
    let unsub = plan.requests.iter().find(|r| r.direction == Out).unwrap();
    assert_eq!(
        body(sub)["subscribers"],
        json!([{"email": "a@x.com", "dataFields": {"firstName": "Jane"}}])
    );
    assert_eq!(body(unsub)["subscribers"], json!([{"email": "b@x.com"}]));
}

// issue 3 item 7: a user who entered and left ends outside; the enter is superseded.
#[test]
fn exit_after_enter_in_one_batch_ends_unsubscribed() {
    let p = ProjectType::Hybrid;
    let cs = vec![
        change(1, 100, In, id(Some("a@x.com"), Some("u1"), p)),
        change(2, 200, Out, id(Some("a@x.com"), Some("u1"), p)),
    ];
    let plan = planner::plan(
        &config(p),
        &items(&cs, 9, EffectiveAudienceSettings::default()),
    );
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(plan.requests[0].direction, Out);
    assert_eq!(plan.requests[0].changes, vec![1]);
    assert_eq!(plan.settled.len(), 1);
    assert_eq!(plan.settled[0].0, 0);
    assert!(
        matches!(&plan.settled[0].1, Outcome::Skipped { reason } if reason.code == ReasonCode::Superseded)
    );
}

// The event timestamp decides, not arrival: an older exit arriving late loses.
#[test]
fn an_older_event_arriving_later_is_superseded() {
    let p = ProjectType::Hybrid;
    let cs = vec![
        change(1, 200, In, id(Some("a@x.com"), None, p)),
        change(2, 100, Out, id(Some("A@X.com"), None, p)),
    ];
    let plan = planner::plan(
        &config(p),
        &items(&cs, 9, EffectiveAudienceSettings::default()),
    );
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(plan.requests[0].direction, In);
    assert_eq!(plan.settled[0].0, 1);
}

// Ties on timestamp go to the later arrival.
#[test]
fn equal_timestamps_are_ordered_by_arrival() {
    let p = ProjectType::Hybrid;
    let mut first = change(7, 100, Out, id(None, Some("u1"), p));
    let mut second = change(3, 100, In, id(None, Some("u1"), p));
    first.received_order = 8;
    second.received_order = 9;
    // Input position reversed on purpose: arrival order, not position, decides.
    let cs = vec![second, first];
    let plan = planner::plan(
        &config(p),
        &items(&cs, 9, EffectiveAudienceSettings::default()),
    );
    assert_eq!(plan.requests[0].direction, In);
}

// The same identity in two lists is two independent states.
#[test]
fn identities_are_deduplicated_per_list_only() {
    let p = ProjectType::Hybrid;
    let cs = [
        change(1, 1, In, id(None, Some("u1"), p)),
        change(2, 2, Out, id(None, Some("u1"), p)),
    ];
    let its = vec![
        PlanItem {
            list_id: 1,
            settings: EffectiveAudienceSettings::default(),
            change: &cs[0],
        },
        PlanItem {
            list_id: 2,
            settings: EffectiveAudienceSettings::default(),
            change: &cs[1],
        },
    ];
    let plan = planner::plan(&config(p), &its);
    assert_eq!(plan.requests.len(), 2);
    assert!(plan.settled.is_empty());
}

// issue 3 item 7: at most N subscribers per request.
#[test]
fn requests_hold_at_most_max_subscribers() {
    let p = ProjectType::UserId;
    let cs: Vec<_> = (0..2500)
        .map(|i| change(i, 1, In, id(None, Some(&format!("u{i}")), p)))
        .collect();
    let plan = planner::plan(
        &config(p),
        &items(&cs, 1, EffectiveAudienceSettings::default()),
    );
    let sizes: Vec<usize> = plan.requests.iter().map(|r| r.changes.len()).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    for r in &plan.requests {
        assert_eq!(
            body(r)["subscribers"].as_array().unwrap().len(),
            r.changes.len()
        );
    }
    let all: Vec<usize> = plan
        .requests
        .iter()
        .flat_map(|r| r.changes.clone())
        .collect();
    assert_eq!(all, (0..2500).collect::<Vec<_>>());
}

// issue 3 item 7: at most M bytes per request; a subscriber too large alone is rejected.
#[test]
fn requests_hold_at_most_max_bytes() {
    let p = ProjectType::UserId;
    let cs: Vec<_> = (0..50)
        .map(|i| change(i, 1, In, id(None, Some(&format!("user-{i:04}")), p)))
        .collect();
    let cfg = PlanConfig {
        limits: BatchLimits {
            max_subscribers: 1000,
            max_bytes: 300,
        },
        ..config(p)
    };
    let plan = planner::plan(&cfg, &items(&cs, 1, EffectiveAudienceSettings::default()));
    assert!(plan.requests.len() > 1);
    for r in &plan.requests {
        assert!(r.body.len() <= 300, "{}", r.body.len());
    }
    assert_eq!(
        plan.requests.iter().map(|r| r.changes.len()).sum::<usize>(),
        50
    );

    let mut big = change(99, 1, In, id(None, Some("big"), p));
    big.data_fields
        .insert("blob".into(), json!("x".repeat(400)));
    let cs = vec![big, change(100, 1, In, id(None, Some("small"), p))];
    let plan = planner::plan(&cfg, &items(&cs, 1, EffectiveAudienceSettings::default()));
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(plan.requests[0].changes, vec![1]);
    assert!(
        matches!(&plan.settled[..], [(0, Outcome::Rejected { reason })] if reason.code == ReasonCode::BadInput)
    );
}

// iterable-api.md §3: one identifier names one subscriber per request, so two hybrid identities
// sharing an email go to different requests.
#[test]
fn hybrid_identities_sharing_an_email_never_share_a_request() {
    let p = ProjectType::Hybrid;
    let cs = vec![
        change(1, 1, In, id(Some("a@x.com"), Some("u1"), p)),
        change(2, 1, In, id(Some("a@x.com"), Some("u2"), p)),
        change(3, 1, In, id(Some("c@x.com"), Some("u3"), p)),
    ];
    let plan = planner::plan(
        &config(p),
        &items(&cs, 1, EffectiveAudienceSettings::default()),
    );
    assert_eq!(plan.requests.len(), 2);
    for r in &plan.requests {
        let sent = r.sent_identifiers();
        let mut emails: Vec<_> = sent.iter().filter_map(|(e, _)| e.clone()).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), sent.len());
    }
}

// design decision 9: a request splits into halves that keep body and change order.
#[test]
fn split_halves_a_request() {
    let p = ProjectType::UserId;
    let cs: Vec<_> = (0..5)
        .map(|i| change(i, 1, Out, id(None, Some(&format!("u{i}")), p)))
        .collect();
    let s = EffectiveAudienceSettings {
        campaign_id: Some(4),
        ..Default::default()
    };
    let plan = planner::plan(&config(p), &items(&cs, 1, s));
    let (a, b) = plan.requests[0].split().unwrap();
    assert_eq!(a.changes, vec![0, 1]);
    assert_eq!(b.changes, vec![2, 3, 4]);
    assert_eq!(
        body(&a),
        json!({"listId": 1, "subscribers": [{"userId": "u0"}, {"userId": "u1"}], "campaignId": 4, "channelUnsubscribe": false})
    );
    assert_eq!(body(&b)["subscribers"].as_array().unwrap().len(), 3);
    assert!(a.split().unwrap().0.split().is_none());
}

#[test]
fn identity_errors_are_typed() {
    assert_eq!(
        Identity::new(None, None, ProjectType::Hybrid),
        Err(IdentityError::Missing)
    );
}
