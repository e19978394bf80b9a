//! The action's fields, their default mappings, presets, mapping selection and test-mapping.

use mapping::{
    ActionMapping, DEFAULT_TRIGGER, MapError, MappedFields, MappingSpec, PRESET_JOURNEY_STEP,
    PRESET_LINKED_AUDIENCE, PRESET_TRACK, PRESETS, Trigger, default_fields, select, test_mapping,
};
use serde_json::{Value, json};

fn fixture_events() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/engage"
    );
    let mut out = Vec::new();
    for name in ["identify-audiences.ndjson", "track-audiences.ndjson"] {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap_or_default();
        out.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    out
}

fn sample_events() -> Vec<Value> {
    vec![
        json!({"type": "identify", "userId": "u1",
               "traits": {"email": "a@x.io", "first_time_shopper": true},
               "context": {"personas": {"computation_class": "audience", "computation_key": "first_time_shopper",
                                        "external_audience_id": "4269566"}}}),
        json!({"type": "track", "event": "Audience Exited", "userId": "u2",
               "properties": {"audience_key": "carts", "carts": false},
               "context": {"traits": {"email": "b@x.io"},
                           "personas": {"computation_class": "audience", "computation_key": "carts"}}}),
        json!({"type": "track", "event": "Audience Entered", "anonymousId": "an",
               "properties": {"email": "c@x.io", "carts": true},
               "context": {"personas": {"computation_key": "carts", "external_audience_id": 77}}}),
    ]
}

/// What the typed default path computes, written out by hand from the design's description.
fn expected_default(ev: &Value) -> MappedFields {
    let s = |v: Option<&Value>| {
        v.and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    // Present and not blank: null, "" and whitespace-only strings are skipped.
    fn present(v: Option<&Value>) -> Option<&Value> {
        v.filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
    }
    // A blank string counts as absent, as in the typed default path (issue 3 item 3).
    fn email_at(v: Option<&Value>) -> Option<&Value> {
        present(v).filter(|v| v.as_str().is_none_or(|s| !s.trim().is_empty()))
    }
    let email = email_at(ev.pointer("/traits/email"))
        .or_else(|| email_at(ev.pointer("/context/traits/email")))
        .or_else(|| present(ev.pointer("/properties/email")));
    let top = match ev["type"].as_str() {
        Some("identify") => ev.get("traits"),
        Some("track") => ev.get("properties"),
        _ => None,
    };
    MappedFields {
        email: s(email),
        user_id: s(ev.get("userId")),
        data_fields: None,
        traits_or_properties: top.and_then(|v| v.as_object().cloned()),
        segment_audience_key: s(ev.pointer("/context/personas/computation_key")),
        segment_audience_id: s(ev.pointer("/context/personas/external_audience_id")),
    }
}

#[test]
fn default_mapping_gives_the_typed_default_fields_on_every_fixture_and_sample() {
    let m = ActionMapping::default_mapping();
    let events: Vec<Value> = fixture_events()
        .into_iter()
        .chain(sample_events())
        .collect();
    assert!(events.len() >= 14, "fixtures were found");
    for ev in &events {
        assert!(m.matches(ev));
        assert_eq!(m.map(ev).unwrap(), expected_default(ev), "{ev}");
    }
}

#[test]
fn default_traits_or_properties_is_empty_for_other_event_types() {
    let m = ActionMapping::default_mapping();
    let ev = json!({"type": "page", "properties": {"a": 1}, "traits": {"b": 2}, "_": {"page": {"x": 1}}});
    assert_eq!(
        m.map(&ev).unwrap().traits_or_properties,
        Some(json!({"x": 1}).as_object().unwrap().clone()),
        "documented limit: a top-level `_` key is read for unknown types"
    );
    let ev = json!({"type": "page", "properties": {"a": 1}, "traits": {"b": 2}});
    assert_eq!(m.map(&ev).unwrap().traits_or_properties, None);
    let ev = json!({"properties": {"a": 1}});
    assert_eq!(m.map(&ev).unwrap().traits_or_properties, None);
}

#[test]
fn default_email_falls_back_past_null_and_blank_strings() {
    let m = ActionMapping::default_mapping();
    for first in [json!(null), json!(""), json!("   ")] {
        let ev = json!({"type": "track", "traits": {"email": first}, "context": {"traits": {"email": ""}},
                        "properties": {"email": "c@x.io"}});
        assert_eq!(
            m.map(&ev).unwrap().email.as_deref(),
            Some("c@x.io"),
            "{first}"
        );
    }
    let none = json!({"type": "track", "traits": {"email": " "}});
    assert_eq!(m.map(&none).unwrap().email, None);
}

#[test]
fn default_email_that_is_not_a_string_is_picked_and_rejected() {
    let m = ActionMapping::default_mapping();
    for bad in [json!(0), json!(false), json!({"a": 1}), json!([1])] {
        let ev = json!({"type": "identify", "traits": {"email": bad}, "context": {"traits": {"email": "c@x.io"}}});
        assert!(matches!(m.map(&ev), Err(MapError::Fields(_))), "{bad}");
    }
}

#[test]
fn default_constants_are_valid_json_and_the_default_trigger_parses() {
    assert_eq!(default_fields().len(), 5);
    assert!(default_fields().values().all(|v| v.is_object()));
    assert_eq!(
        Trigger::parse(DEFAULT_TRIGGER).unwrap().to_string(),
        DEFAULT_TRIGGER
    );
}

#[test]
fn custom_fields_override_defaults_and_null_unsets_a_field() {
    let spec = MappingSpec {
        fields: json!({"dataFields": {"plan": {"@path": "$.traits.plan"}}, "userId": null})
            .as_object()
            .unwrap()
            .clone(),
        ..MappingSpec::default()
    };
    let m = ActionMapping::compile(&spec).unwrap();
    let out = m.map(&json!({"type": "identify", "userId": "u", "traits": {"email": "e@x.io", "plan": "pro"}})).unwrap();
    assert_eq!(out.user_id, None);
    assert_eq!(out.email.as_deref(), Some("e@x.io"));
    assert_eq!(out.data_fields, json!({"plan": "pro"}).as_object().cloned());
}

#[test]
fn invalid_specs_report_the_trigger_and_every_field_problem() {
    let spec = MappingSpec {
        trigger: r#"type = "identify" or"#.into(),
        fields: json!({"dataFields": {"plan": {"@path": 3}}, "list": 5})
            .as_object()
            .unwrap()
            .clone(),
        ..MappingSpec::default()
    };
    let e = ActionMapping::compile(&spec).unwrap_err();
    assert_eq!(
        e.reasons(),
        vec![
            "trigger: trigger syntax error at column 21: expected a condition, found the end".to_owned(),
            "mapping.list: unknown field (the fields are email, userId, dataFields, traitsOrProperties, segmentAudienceKey, segmentAudienceId)".to_owned(),
            "mapping.dataFields.plan: @path expects a string".to_owned(),
        ]
    );
}

#[test]
fn wrongly_typed_fields_are_reasons_not_panics() {
    let spec = MappingSpec {
        fields: json!({"email": {"@path": "$.traits.n"}, "dataFields": "x"})
            .as_object()
            .unwrap()
            .clone(),
        ..MappingSpec::default()
    };
    let m = ActionMapping::compile(&spec).unwrap();
    let e = m
        .map(&json!({"type": "identify", "traits": {"n": 3}}))
        .unwrap_err();
    assert_eq!(
        e,
        MapError::Fields(vec![
            "email must be a string, got a number".into(),
            "dataFields must be an object, got a string".into()
        ])
    );
}

// Design decision 8: the first enabled mapping, in declared order, whose trigger matches.
#[test]
fn the_first_enabled_matching_mapping_handles_the_event() {
    let mk = |trigger: &str, enabled: bool| {
        ActionMapping::compile(&MappingSpec {
            trigger: trigger.into(),
            enabled,
            ..MappingSpec::default()
        })
        .unwrap()
    };
    let ms = vec![
        mk(r#"type = "track""#, false),
        mk(r#"type = "identify""#, true),
        mk(r#"type = "track""#, true),
    ];
    assert_eq!(
        select(&ms, &json!({"type": "track"})).map(|(i, _)| i),
        Some(2)
    );
    assert_eq!(
        select(&ms, &json!({"type": "identify"})).map(|(i, _)| i),
        Some(1)
    );
    assert_eq!(select(&ms, &json!({"type": "page"})).map(|(i, _)| i), None);
}

#[test]
fn presets_compile_and_match_their_events() {
    for p in PRESETS {
        ActionMapping::compile(&p.spec()).unwrap_or_else(|e| panic!("{}: {e}", p.slug));
    }
    let track = ActionMapping::compile(&PRESET_TRACK.spec()).unwrap();
    assert!(track.matches(&json!({"type": "track", "event": "Audience Exited"})));
    assert!(!track.matches(&json!({"type": "track", "event": "Order Completed"})));
    let journey = ActionMapping::compile(&PRESET_JOURNEY_STEP.spec()).unwrap();
    assert!(journey.matches(&json!({"type": "track", "event": "x", "context": {"personas": {"computation_class": "journey_step"}}})));
}

// engage-events.md §1.4: Linked Audiences flatten the entity context with `__`.
#[test]
fn linked_audience_preset_flattens_entity_context_into_traits() {
    let m = ActionMapping::compile(&PRESET_LINKED_AUDIENCE.spec()).unwrap();
    let ev = json!({
        "type": "identify", "userId": "u1",
        "traits": {"email": "j@x.io", "carts_aud": true,
                   "data_graph_entity_context": {"shopping_cart": {"id": "123", "products": [{"id": "324"}]}}},
        "context": {"personas": {"computation_key": "carts_aud", "event_emitter_id": "ee_2"}}
    });
    assert!(m.matches(&ev));
    let out = m.map(&ev).unwrap();
    assert_eq!(out.email.as_deref(), Some("j@x.io"));
    assert_eq!(out.segment_audience_key.as_deref(), Some("carts_aud"));
    assert_eq!(
        Value::Object(out.traits_or_properties.unwrap()),
        json!({"email": "j@x.io", "carts_aud": true, "shopping_cart__id": "123", "shopping_cart__products": [{"id": "324"}]})
    );
}

#[test]
fn test_mapping_reports_trigger_fields_and_reasons() {
    let ev = json!({"type": "page", "userId": "u1"});
    let spec = MappingSpec {
        trigger: r#"type = "track""#.into(),
        ..MappingSpec::default()
    };
    let r = test_mapping(&ev, &spec).unwrap();
    assert!(!r.trigger_matched);
    assert_eq!(
        r.fields.as_ref().and_then(|f| f.user_id.as_deref()),
        Some("u1")
    );
    assert_eq!(
        r.reasons,
        vec![r#"the trigger `type = "track"` does not match this event"#.to_owned()]
    );

    let ok = test_mapping(&json!({"type": "track", "userId": "u"}), &spec).unwrap();
    assert!(ok.trigger_matched && ok.reasons.is_empty());

    let bad = MappingSpec {
        trigger: "type =".into(),
        ..MappingSpec::default()
    };
    assert!(test_mapping(&ev, &bad).is_err());
}

#[test]
fn specs_deserialize_with_defaults() {
    let spec: MappingSpec =
        serde_json::from_value(json!({"fields": {"userId": {"@path": "$.userId"}}})).unwrap();
    assert!(spec.enabled);
    assert_eq!(spec.trigger, DEFAULT_TRIGGER);
    assert!(serde_json::from_value::<MappingSpec>(json!({"trigga": "x"})).is_err());
}
