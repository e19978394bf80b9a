//! test-mapping previews (issue 5): trigger, mapped fields, membership decision and the exact
//! Iterable request, or the reasons for a rejection; nothing is sent.

use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::default_mapping::{MapContext, map_event};
use destination::model::{ProcessedEvent, ReasonCode, Timestamp};
use destination::planner::{self, PlanConfig, PlanItem};
use destination::preview::{
    ListChoice, PLACEHOLDER_LIST_ID, Preview, PreviewOutcome, preview, preview_json,
};
use destination::settings::{ApiKey, AudienceConfig, DestinationSettings, ListBinding};
use iterable::{ProjectType, Region};
use segment::Event;
use serde_json::{Value, json};

fn ctx() -> MapContext {
    MapContext {
        received_order: 0,
        received_at: Timestamp::from_unix_millis(1_000),
    }
}

fn settings(p: ProjectType) -> DestinationSettings {
    DestinationSettings::new(ApiKey::new("secret-key"), p)
}

// engage-events.md §1.1 identify example.
fn identify(member: Value) -> Value {
    json!({"type": "identify", "messageId": "m1", "userId": "u123",
           "traits": {"email": "Jane@Example.com", "first_time_shopper": member, "plan": "pro"},
           "context": {"personas": {"computation_class": "audience",
                                    "computation_key": "first_time_shopper",
                                    "external_audience_id": "4269566"}},
           "timestamp": "2024-05-06T09:30:22.829Z"})
}

fn run(v: &Value, set: &MappingSet, s: &DestinationSettings) -> Preview {
    let e: Event = serde_json::from_value(v.clone()).unwrap();
    preview(&e, set, s, ctx())
}

/// What the planner alone makes of the typed default path's change, for comparison.
fn planned_body(v: &Value, s: &DestinationSettings, list_id: i64) -> Value {
    let e: Event = serde_json::from_value(v.clone()).unwrap();
    let ProcessedEvent::Change(c) = map_event(&e, s, ctx()) else {
        panic!("not a change")
    };
    let (eff, _) = s.effective(&c.audience_key, c.audience_settings.as_ref());
    let plan = planner::plan(
        &PlanConfig::from_settings(s),
        &[PlanItem {
            list_id,
            settings: eff,
            change: &c,
        }],
    );
    serde_json::from_slice(&plan.requests[0].body).unwrap()
}

// iterable-api.md §2.4: the subscribe body the sender would post, field for field.
#[test]
fn an_enter_previews_the_exact_subscribe_request() {
    let s = settings(ProjectType::Hybrid);
    let v = identify(json!(true));
    let p = run(&v, &MappingSet::default_mapping(), &s);
    assert_eq!(p.outcome, PreviewOutcome::Change);
    assert!(p.trigger_matched);
    assert_eq!(p.mapping.as_deref(), Some("default"));
    let m = p.membership.as_ref().unwrap();
    assert_eq!(m.audience_key, "first_time_shopper");
    assert_eq!(m.email.as_deref(), Some("jane@example.com"));
    assert_eq!(m.identity_key, "u:u123");
    let r = p.request.as_ref().unwrap();
    assert_eq!(r.path, "/api/lists/subscribe");
    assert_eq!(r.url, "https://api.iterable.com/api/lists/subscribe");
    assert_eq!(r.list, ListChoice::Event { list_id: 4269566 });
    assert_eq!(r.body, planned_body(&v, &s, 4269566));
    assert_eq!(
        r.body,
        json!({"listId": 4269566,
               "subscribers": [{"email": "jane@example.com", "userId": "u123"}],
               "updateExistingUsersOnly": false})
    );
    assert_eq!(
        p.mapped_fields.as_ref().unwrap()["segmentAudienceId"],
        json!("4269566")
    );
    assert!(p.reasons.is_empty());
}

// iterable-api.md §2.5, design decision 5: an exit with the event's campaignId; the
// channelUnsubscribe is always explicit; the EU region's host.
#[test]
fn an_exit_previews_the_unsubscribe_request_with_audience_settings() {
    let mut s = settings(ProjectType::Hybrid);
    s.region = Region::Eu;
    let mut v = identify(json!(false));
    v["context"]["personas"]["audience_settings"] = json!({"campaignId": "12345"});
    let p = run(&v, &MappingSet::default_mapping(), &s);
    let r = p.request.unwrap();
    assert_eq!(r.url, "https://api.eu.iterable.com/api/lists/unsubscribe");
    assert_eq!(r.body, planned_body(&v, &s, 4269566));
    assert_eq!(r.body["channelUnsubscribe"], json!(false));
    assert_eq!(r.body["campaignId"], json!(12345));
}

// design decision 5: an event's globalUnsubscribe is ignored unless allowed, with a warning.
#[test]
fn an_ignored_global_unsubscribe_is_a_warning() {
    let s = settings(ProjectType::Hybrid);
    let mut v = identify(json!(false));
    v["context"]["personas"]["audience_settings"] = json!({"globalUnsubscribe": true});
    let p = run(&v, &MappingSet::default_mapping(), &s);
    assert_eq!(p.request.unwrap().body["channelUnsubscribe"], json!(false));
    assert!(
        p.warnings.iter().any(|w| w.contains("globalUnsubscribe")),
        "{:?}",
        p.warnings
    );
}

// design decision 7: an operator binding wins over the event's list id.
#[test]
fn an_operator_binding_sets_the_list() {
    let mut s = settings(ProjectType::Hybrid);
    s.audiences.insert(
        "first_time_shopper".into(),
        AudienceConfig {
            list: Some(ListBinding::Id(99)),
            ..AudienceConfig::default()
        },
    );
    let p = run(&identify(json!(true)), &MappingSet::default_mapping(), &s);
    let r = p.request.unwrap();
    assert_eq!(r.list, ListChoice::Binding { list_id: 99 });
    assert_eq!(r.body["listId"], json!(99));
}

// design decision 7: with no id known, the body carries a marked placeholder.
#[test]
fn an_unknown_list_is_a_clearly_marked_placeholder() {
    let s = settings(ProjectType::Hybrid);
    let mut v = identify(json!(true));
    v["context"]["personas"]
        .as_object_mut()
        .unwrap()
        .remove("external_audience_id");
    let p = run(&v, &MappingSet::default_mapping(), &s);
    let r = p.request.unwrap();
    assert_eq!(
        r.list,
        ListChoice::ByAudienceName {
            name: "first_time_shopper".into()
        }
    );
    assert_eq!(r.body["listId"], json!(PLACEHOLDER_LIST_ID));
    assert!(p.warnings.iter().any(|w| w.contains("placeholder")));
}

// design decision 3: an email project sends the email only; userId-only gets preferUserId.
#[test]
fn the_request_carries_the_identifiers_the_project_type_says() {
    let s = settings(ProjectType::Email);
    let p = run(&identify(json!(true)), &MappingSet::default_mapping(), &s);
    assert_eq!(
        p.request.unwrap().body["subscribers"],
        json!([{"email": "jane@example.com"}])
    );
    let mut v = identify(json!(true));
    v["traits"].as_object_mut().unwrap().remove("email");
    let p = run(&v, &MappingSet::default_mapping(), &s);
    assert_eq!(
        p.request.unwrap().body["subscribers"],
        json!([{"userId": "u123", "preferUserId": true}])
    );
}

// issue 5: a custom mapping's dataFields reach the body.
#[test]
fn a_custom_mappings_data_fields_reach_the_body() {
    let mut c = MappingConfig::new("vip");
    c.mapping = json!({"dataFields": {"plan": {"@path": "$.traits.plan"}}})
        .as_object()
        .cloned()
        .unwrap();
    let set = MappingSet::single(&c).unwrap();
    let p = run(&identify(json!(true)), &set, &settings(ProjectType::Hybrid));
    assert_eq!(p.mapping.as_deref(), Some("vip"));
    assert_eq!(
        p.request.unwrap().body["subscribers"][0]["dataFields"],
        json!({"plan": "pro"})
    );
}

// issue 5: the trigger's verdict is shown, and the fields are mapped anyway for debugging.
#[test]
fn a_trigger_that_does_not_match_still_shows_the_mapped_fields() {
    let mut c = MappingConfig::new("tracks");
    c.trigger = r#"type = "track""#.into();
    c.enabled = false; // test-mapping previews a mapping whether or not it is enabled
    let set = MappingSet::single(&c).unwrap();
    let p = run(&identify(json!(true)), &set, &settings(ProjectType::Hybrid));
    assert!(!p.trigger_matched);
    assert_eq!(p.outcome, PreviewOutcome::Skipped);
    assert_eq!(p.reasons[0].code, ReasonCode::NoTriggerMatched);
    assert_eq!(
        p.mapped_fields.unwrap()["segmentAudienceKey"],
        json!("first_time_shopper")
    );
    assert!(p.request.is_none());
}

// engage-events.md §1.2: a rejected event gives its reasons and no request.
#[test]
fn a_rejected_event_gives_reasons_and_no_request() {
    let p = run(
        &identify(json!("maybe")),
        &MappingSet::default_mapping(),
        &settings(ProjectType::Hybrid),
    );
    assert!(p.is_rejected());
    assert_eq!(p.reasons[0].code, ReasonCode::InvalidMembership);
    assert!(p.request.is_none() && p.membership.is_none());
}

// issue 3 item 1: an event Segment's API would refuse is a rejection, not a crash.
#[test]
fn an_unreadable_event_is_rejected_as_bad_input() {
    let p = preview_json(
        br#"{"userId": "u1"}"#,
        &MappingSet::default_mapping(),
        &settings(ProjectType::Hybrid),
        ctx(),
    );
    assert!(p.is_rejected());
    assert_eq!(p.reasons[0].code, ReasonCode::BadInput);
}

// The admin API returns the preview as JSON; the API key never appears in it.
#[test]
fn the_preview_serialises_to_json_without_the_api_key() {
    let p = run(
        &identify(json!(true)),
        &MappingSet::default_mapping(),
        &settings(ProjectType::Hybrid),
    );
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["outcome"], json!("change"));
    assert_eq!(v["triggerMatched"], json!(true));
    assert_eq!(v["membership"]["direction"], json!("subscribe"));
    assert_eq!(
        v["request"]["list"],
        json!({"source": "event", "listId": 4269566})
    );
    assert_eq!(v["request"]["body"]["listId"], json!(4269566));
    assert!(!v.to_string().contains("secret-key"));
}
