//! Custom mappings: which mapping handles an event, the mapped fields' rules, and validation
//! of mapping sets (design decisions 1, 3, 4, 6, 8; engage-events.md §1.2, §2.1–2.2).

use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::default_mapping::MapContext;
use destination::model::{Direction, MembershipChange, ProcessedEvent, ReasonCode, Timestamp};
use destination::settings::{ApiKey, DestinationSettings};
use iterable::ProjectType;
use segment::Event;
use serde_json::{Value, json};

fn ctx() -> MapContext {
    MapContext {
        received_order: 1,
        received_at: Timestamp::from_unix_millis(5_000),
    }
}

fn settings() -> DestinationSettings {
    DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid)
}

fn config(name: &str, trigger: &str, mapping: Value) -> MappingConfig {
    let mut c = MappingConfig::new(name);
    c.trigger = trigger.to_owned();
    c.mapping = mapping.as_object().cloned().unwrap_or_default();
    c
}

fn set(configs: &[MappingConfig]) -> MappingSet {
    MappingSet::from_configs(configs).unwrap()
}

fn event(v: Value) -> Event {
    serde_json::from_value(v).unwrap()
}

fn change(p: ProcessedEvent) -> MembershipChange {
    match p {
        ProcessedEvent::Change(c) => *c,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn verdict(p: &ProcessedEvent) -> (&'static str, Option<ReasonCode>) {
    match p {
        ProcessedEvent::Change(_) => ("change", None),
        ProcessedEvent::Skipped(r) => ("skipped", Some(r.code)),
        ProcessedEvent::Rejected(r) => ("rejected", Some(r.code)),
    }
}

/// A Linked-Audiences-style track without `context.personas`: the audience key is in
/// `properties.audience_key` (engage-events.md §1.4).
fn linked_track(key: &str, value: Value) -> Value {
    json!({"type": "track", "event": "Audience Entered", "userId": "u1", "messageId": "m1",
           "properties": {"audience_key": key, key: value, "plan": "pro"},
           "context": {"traits": {"email": "Jane@Example.com"}}})
}

fn key_from_properties() -> Value {
    json!({"segmentAudienceKey": {"@path": "$.properties.audience_key"}})
}

// design decision 8: the first enabled mapping in declared order whose trigger matches.
#[test]
fn first_enabled_matching_mapping_in_declared_order_handles_the_event() {
    let tagged = |name: &str, trigger: &str, enabled: bool| {
        let mut m = key_from_properties();
        m["dataFields"] = json!({"handled_by": {"@literal": name}});
        let mut c = config(name, trigger, m);
        c.enabled = enabled;
        c
    };
    let s = set(&[
        tagged("disabled", r#"type = "track""#, false),
        tagged("identify-only", r#"type = "identify""#, true),
        tagged("first-track", r#"event = "Audience Entered""#, true),
        tagged("second-track", r#"type = "track""#, true),
    ]);
    let trace = s.map_traced(&event(linked_track("a", json!(true))), &settings(), ctx());
    assert_eq!(trace.mapping.as_deref(), Some("first-track"));
    let c = change(trace.processed);
    assert_eq!(c.data_fields["handled_by"], json!("first-track"));
}

// design decision 2 and 8: no enabled mapping matches → skipped, not an error.
#[test]
fn an_event_no_enabled_mapping_matches_is_skipped_no_trigger_matched() {
    let mut disabled = config("off", r#"type = "track""#, key_from_properties());
    disabled.enabled = false;
    let s = set(&[
        config("identify", r#"type = "identify""#, key_from_properties()),
        disabled,
    ]);
    let p = s.map(&event(linked_track("a", json!(true))), &settings(), ctx());
    assert_eq!(verdict(&p), ("skipped", Some(ReasonCode::NoTriggerMatched)));
}

// design decision 1: with custom mappings an event is an audience event when a trigger
// matches, even without context.personas; the mapped key must then be non-empty.
#[test]
fn a_matching_event_without_personas_is_an_audience_event_under_custom_mappings() {
    let s = set(&[config("t", r#"type = "track""#, key_from_properties())]);
    let c = change(s.map(
        &event(linked_track("carts", json!(true))),
        &settings(),
        ctx(),
    ));
    assert_eq!(c.audience_key, "carts");
    assert_eq!(c.direction, Direction::Subscribe);
    assert_eq!(c.identity.email(), Some("jane@example.com"));
    assert_eq!(c.identity.user_id(), Some("u1"));
    assert_eq!(c.list_hint, None);
}

// design decision 1: "the mapped audience key must then be non-empty, or the event is rejected".
#[test]
fn a_missing_blank_or_non_string_mapped_audience_key_is_rejected() {
    let s = set(&[config("t", r#"type = "track""#, key_from_properties())]);
    for key in [
        json!(""),
        json!("   "),
        json!(null),
        json!(true),
        json!({"a": 1}),
    ] {
        let mut v = linked_track("x", json!(true));
        v["properties"]["audience_key"] = key.clone();
        let p = s.map(&event(v), &settings(), ctx());
        assert_eq!(
            verdict(&p),
            ("rejected", Some(ReasonCode::MissingAudienceKey)),
            "{key}"
        );
    }
}

// design decision 4, engage-events.md §1.2–1.3: booleans and "true"/"false" decide; anything
// else is rejected, never an exit.
#[test]
fn membership_values_follow_the_membership_rules() {
    let s = set(&[config("t", r#"type = "track""#, key_from_properties())]);
    let dir = |v: Value| s.map(&event(linked_track("a", v)), &settings(), ctx());
    assert_eq!(change(dir(json!(true))).direction, Direction::Subscribe);
    assert_eq!(change(dir(json!(false))).direction, Direction::Unsubscribe);
    assert_eq!(change(dir(json!("true"))).direction, Direction::Subscribe);
    assert_eq!(
        change(dir(json!("false"))).direction,
        Direction::Unsubscribe
    );
    for odd in [
        json!(null),
        json!(0),
        json!(1),
        json!("yes"),
        json!("TRUE"),
        json!([]),
    ] {
        assert_eq!(
            verdict(&dir(odd.clone())),
            ("rejected", Some(ReasonCode::InvalidMembership)),
            "{odd}"
        );
    }
    let mut v = linked_track("a", json!(true));
    v["properties"].as_object_mut().unwrap().remove("a");
    assert_eq!(
        verdict(&s.map(&event(v), &settings(), ctx())),
        ("rejected", Some(ReasonCode::InvalidMembership))
    );
}

// design decision 4, engage-events.md §1.2 step 3: a journey step without a value enters.
#[test]
fn a_journey_step_without_a_value_enters() {
    let s = set(&[config(
        "journeys",
        mapping::PRESET_JOURNEY_STEP.trigger,
        json!({}),
    )]);
    let v = json!({"type": "track", "event": "Step Entered", "userId": "u1",
                   "properties": {"journey_metadata": {"journey_id": "j1"}},
                   "context": {"personas": {"computation_class": "journey_step",
                                            "computation_key": "journey__step_1"}}});
    let c = change(s.map(&event(v), &settings(), ctx()));
    assert_eq!(c.direction, Direction::Subscribe);
    assert_eq!(c.audience_key, "journey__step_1");
}

// issue 3 item 5, design decision 3: identifiers are validated and normalised.
#[test]
fn mapped_identifiers_are_validated_and_normalised() {
    let with = |email: Value, user_id: Value| {
        let s = set(&[config(
            "t",
            r#"type = "track""#,
            json!({"segmentAudienceKey": {"@path": "$.properties.audience_key"},
                   "email": {"@literal": email}, "userId": {"@literal": user_id}}),
        )]);
        s.map(&event(linked_track("a", json!(true))), &settings(), ctx())
    };
    let c = change(with(json!("  Jane@Example.COM "), json!(null)));
    assert_eq!(c.identity.email(), Some("jane@example.com"));
    assert_eq!(c.identity.user_id(), None);
    // A numeric userId is read as its decimal text.
    assert_eq!(
        change(with(json!(null), json!(1234))).identity.user_id(),
        Some("1234")
    );
    assert_eq!(
        verdict(&with(json!("user @example.com"), json!(null))),
        ("rejected", Some(ReasonCode::BadIdentifier))
    );
    assert_eq!(
        verdict(&with(json!(null), json!("u1 "))),
        ("rejected", Some(ReasonCode::BadIdentifier))
    );
    assert_eq!(
        verdict(&with(json!(["a@x.com"]), json!(null))),
        ("rejected", Some(ReasonCode::BadIdentifier))
    );
    // design decision 2: nothing Iterable can identify (only an anonymousId) is skipped.
    assert_eq!(
        verdict(&with(json!(null), json!(null))),
        ("skipped", Some(ReasonCode::NoIdentifier))
    );
}

// design decision 3: a userId project needs a userId.
#[test]
fn a_user_id_project_rejects_a_mapped_email_only_identity() {
    let s = set(&[config(
        "t",
        r#"type = "track""#,
        json!({"segmentAudienceKey": {"@path": "$.properties.audience_key"}, "userId": null}),
    )]);
    let us = DestinationSettings::new(ApiKey::new("k"), ProjectType::UserId);
    assert_eq!(
        verdict(&s.map(&event(linked_track("a", json!(true))), &us, ctx())),
        ("rejected", Some(ReasonCode::BadIdentifier))
    );
}

// issue 3 item 6: a list id present but not a number is rejected; numbers and digit strings
// are list hints.
#[test]
fn the_mapped_list_id_must_be_a_number_when_present() {
    let with = |id: Value| {
        let mut m = key_from_properties();
        m["segmentAudienceId"] = json!({"@literal": id});
        let s = set(&[config("t", r#"type = "track""#, m)]);
        s.map(&event(linked_track("a", json!(true))), &settings(), ctx())
    };
    assert_eq!(change(with(json!("4269566"))).list_hint, Some(4269566));
    assert_eq!(change(with(json!(77))).list_hint, Some(77));
    assert_eq!(change(with(json!(null))).list_hint, None);
    for bad in [
        json!("abc"),
        json!(""),
        json!("12a"),
        json!(-4),
        json!(1.5),
        json!(true),
    ] {
        assert_eq!(
            verdict(&with(bad.clone())),
            ("rejected", Some(ReasonCode::InvalidListId)),
            "{bad}"
        );
    }
}

// design decision 6: the mapping's dataFields are sent, never the audience-key boolean nor the
// fields Iterable manages (iterable-api.md §6.4); the destination's named fields come first.
#[test]
fn data_fields_come_from_the_mapping_without_the_audience_key_or_managed_fields() {
    let mut m = key_from_properties();
    m["dataFields"] = json!({
        "plan": {"@path": "$.properties.plan"},
        "a": {"@path": "$.properties.a"},
        "email": {"@path": "$.context.traits.email"},
        "signupDate": {"@literal": "2020-01-01"},
        "emailListIds": {"@literal": [1]},
        "nested": {"city": {"@literal": "Lyon"}}
    });
    let s = set(&[config("t", r#"type = "track""#, m)]);
    let mut dest = settings();
    dest.data_fields = vec!["plan".into(), "audience_key".into(), "a".into()];
    let c = change(s.map(&event(linked_track("a", json!(true))), &dest, ctx()));
    assert_eq!(
        Value::Object(c.data_fields),
        json!({"plan": "pro", "audience_key": "a", "nested": {"city": "Lyon"}})
    );
    // Without the destination option and without a mapping dataFields: none (decision 6).
    let s = set(&[config("t", r#"type = "track""#, key_from_properties())]);
    let c = change(s.map(&event(linked_track("a", json!(true))), &settings(), ctx()));
    assert!(c.data_fields.is_empty());
}

// A dataFields that maps to something other than an object cannot be sent.
#[test]
fn a_non_object_data_fields_is_rejected() {
    let mut m = key_from_properties();
    m["dataFields"] = json!({"@path": "$.properties.plan"});
    let s = set(&[config("t", r#"type = "track""#, m)]);
    assert_eq!(
        verdict(&s.map(&event(linked_track("a", json!(true))), &settings(), ctx())),
        ("rejected", Some(ReasonCode::BadInput))
    );
}

// design decision 5, T7: audience settings come from the event's personas, as on the default
// path; a non-numeric campaignId rejects.
#[test]
fn audience_settings_are_read_from_the_event() {
    let s = set(&[config("t", r#"type = "track""#, key_from_properties())]);
    let mut v = linked_track("a", json!(false));
    v["context"]["personas"] =
        json!({"audience_settings": {"campaignId": "12345", "globalUnsubscribe": "true"}});
    let c = change(s.map(&event(v.clone()), &settings(), ctx()));
    let a = c.audience_settings.unwrap();
    assert_eq!(a.campaign_id, Some(12345));
    assert_eq!(a.global_unsubscribe, Some(true));
    v["context"]["personas"]["audience_settings"]["campaignId"] = json!("abc");
    assert_eq!(
        verdict(&s.map(&event(v), &settings(), ctx())),
        ("rejected", Some(ReasonCode::InvalidAudienceSettings))
    );
}

// Missing messageId and timestamp fall back to arrival, as on the default path.
#[test]
fn message_id_and_timestamp_fall_back_to_arrival() {
    let s = set(&[config("t", r#"type = "track""#, key_from_properties())]);
    let mut v = linked_track("a", json!(true));
    v.as_object_mut().unwrap().remove("messageId");
    let c = change(s.map(&event(v), &settings(), ctx()));
    assert_eq!(c.timestamp, Timestamp::from_unix_millis(5_000));
    assert_eq!(c.message_id, "generated-5000000000-1");
    assert_eq!(c.received_order, 1);
}

// engage-events.md §1.4: the Linked Audiences preset's root directive flattens the entity
// context into the fields a mapping reads.
#[test]
fn the_linked_audiences_root_directive_feeds_data_fields() {
    let mut m = key_from_properties();
    m[mapping::ROOT_DIRECTIVE_KEY] = mapping::linked_audience_root_directive("properties");
    m["dataFields"] = json!({"cart_id": {"@path": "$.properties.shopping_cart__id"}});
    let s = set(&[config(
        "linked",
        "context.personas.event_emitter_id != null",
        m,
    )]);
    let v = json!({"type": "track", "event": "Audience Entered", "userId": "u1",
        "properties": {"audience_key": "carts", "carts": true,
                       "data_graph_entity_context": {"shopping_cart": {"id": "123"}}},
        "context": {"personas": {"event_emitter_id": "ee_1", "computation_key": "carts"}}});
    let c = change(s.map(&event(v), &settings(), ctx()));
    assert_eq!(c.data_fields["cart_id"], json!("123"));
}

// design decision 8: no custom mapping → the default mapping.
#[test]
fn an_empty_list_of_mappings_is_the_default_mapping() {
    let s = MappingSet::from_configs(&[]).unwrap();
    assert!(s.is_default());
    assert_eq!(s.names(), vec!["default"]);
    let v = json!({"type": "identify", "userId": "u1", "traits": {"a": true},
                   "context": {"personas": {"computation_key": "a"}}});
    assert_eq!(
        change(s.map(&event(v), &settings(), ctx())).audience_key,
        "a"
    );
    // design decision 1: with the default mapping, no personas → skipped, not rejected.
    let p = s.map(&event(linked_track("a", json!(true))), &settings(), ctx());
    assert_eq!(verdict(&p), ("skipped", Some(ReasonCode::NotAudienceEvent)));
}

// issue 5 "Validation": every invalid mapping is reported with its name and the path to the
// bad node; nothing is built.
#[test]
fn invalid_mappings_are_reported_with_their_name_and_path() {
    let err = MappingSet::from_configs(&[
        config("good", r#"type = "track""#, json!({})),
        config(
            "bad-field",
            r#"type = "track""#,
            json!({"dataFields": {"plan": {"@path": 5}}}),
        ),
        config("bad-trigger", r#"type = "track" and ("#, json!({})),
        config(
            "unknown",
            r#"type = "track""#,
            json!({"phone": {"@path": "$.traits.phone"}}),
        ),
        config("good", r#"type = "identify""#, json!({})),
        config(" ", r#"type = "identify""#, json!({})),
    ])
    .unwrap_err();
    let names: Vec<(&str, usize)> = err
        .errors
        .iter()
        .map(|e| (e.name.as_str(), e.position))
        .collect();
    assert_eq!(
        names,
        vec![
            ("bad-field", 2),
            ("bad-trigger", 3),
            ("unknown", 4),
            ("good", 5),
            (" ", 6)
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("mapping \"bad-field\" (#2): mapping.dataFields.plan"),
        "{text}"
    );
    assert!(
        text.contains("mapping \"bad-trigger\" (#3): trigger:"),
        "{text}"
    );
    assert!(
        text.contains("column"),
        "trigger errors name the column: {text}"
    );
    assert!(text.contains("mapping.phone"), "{text}");
    assert!(text.contains("same name"), "{text}");
    assert!(text.contains("name: must not be blank"), "{text}");
}

// The configuration form (TOML or JSON) reads name, trigger, mapping and enabled.
#[test]
fn mapping_configs_read_from_toml_with_defaults() {
    let c: MappingConfig = toml::from_str(
        r#"
        name = "vip"
        mapping = { dataFields = { plan = { "@path" = "$.traits.plan" } } }
        "#,
    )
    .unwrap();
    assert_eq!(c.trigger, mapping::DEFAULT_TRIGGER);
    assert!(c.enabled);
    assert!(MappingSet::from_configs(&[c]).is_ok());
    assert!(toml::from_str::<MappingConfig>("name = \"x\"\ntriger = \"type = 1\"").is_err());
}

// The set is shared across the delivery engine's threads.
#[test]
fn mapping_sets_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<MappingSet>();
}
