//! Parsing bodies as real clients send them, with limits and per-element isolation
//! (issue 3 item 1, design decision 9).

use segment::{BodyError, EventType, Limits, Timestamp, parse_batch, parse_event, parse_ndjson};

const PYTHON_BATCH: &str = r#"{
 "batch": [
  {"integrations": {}, "anonymousId": null, "timestamp": "2026-12-03T16:13:18.561+00:00",
   "context": {"personas": {"computation_class": "audience", "computation_key": "my_aud",
               "computation_id": "aud_2g5Yk", "external_audience_id": "4242"},
               "library": {"name": "analytics-python", "version": "2.4.0"}},
   "type": "identify", "userId": "u1", "traits": {"email": "u1@example.com", "my_aud": true},
   "messageId": "acb26e51-73c2-49d1-85e4-7ff24d8d7248"}
 ],
 "sentAt": "2026-12-03T16:13:18.700+00:00",
 "writeKey": "WK_py"
}"#;

#[test]
fn the_python_client_batch_parses() {
    let b = parse_batch(PYTHON_BATCH.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(b.write_key.as_ref().map(|k| k.expose()), Some("WK_py"));
    assert!(
        !format!("{b:?}").contains("WK_py"),
        "write keys are never printed"
    );
    assert_eq!(
        b.sent_at,
        Some(Timestamp::parse("2026-12-03T16:13:18.700Z").unwrap())
    );
    let e = b.elements[0].as_ref().unwrap();
    assert_eq!(e.kind, EventType::Identify);
    assert_eq!(e.anonymous_id, None);
    assert_eq!(e.user_id.as_deref(), Some("u1"));
    assert_eq!(
        e.personas().unwrap().computation_key.as_deref(),
        Some("my_aud")
    );
    assert_eq!(
        e.timestamp.unwrap().to_rfc3339(),
        "2026-12-03T16:13:18.561Z"
    );
}

// design decision 9: one bad element never fails its neighbours; the error names index,
// field and reason.
#[test]
fn a_bad_element_fails_alone_with_index_field_and_reason() {
    let body = br#"{"batch":[
        {"type":"identify","userId":"a","traits":{"x":true},"_metadata":{"bundled":[]},"extra":1},
        {"type":"track","userId":"b","timestamp":"yesterday"},
        {"userId":"c"},
        {"type":"identify","userId":"d","traits":"not an object"},
        42,
        {"type":"identify","userId":7,"messageId":null,"traits":null,"context":null}
    ]}"#;
    let b = parse_batch(body, &Limits::default()).unwrap();
    assert_eq!(b.elements.len(), 6);
    assert!(b.elements[0].is_ok());
    let e1 = b.elements[1].as_ref().unwrap_err();
    assert_eq!((e1.index, e1.field.as_deref()), (1, Some("timestamp")));
    let e2 = b.elements[2].as_ref().unwrap_err();
    assert_eq!((e2.index, e2.field.as_deref()), (2, Some("type")));
    let e3 = b.elements[3].as_ref().unwrap_err();
    assert_eq!((e3.index, e3.field.as_deref()), (3, Some("traits")));
    assert!(e3.reason.contains("object"), "{}", e3.reason);
    let e4 = b.elements[4].as_ref().unwrap_err();
    assert_eq!((e4.index, e4.field.as_deref()), (4, None));
    // Numeric userIds are read as text; nulls as absent.
    let ok = b.elements[5].as_ref().unwrap();
    assert_eq!(ok.user_id.as_deref(), Some("7"));
    assert!(ok.traits().is_empty() && ok.message_id.is_none());
}

#[test]
fn other_call_types_are_kept_for_a_polite_skip() {
    let b = parse_batch(
        br#"{"batch":[{"type":"page","name":"Home"},{"type":"futuristic"}]}"#,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(b.elements[0].as_ref().unwrap().kind, EventType::Page);
    assert_eq!(
        b.elements[1].as_ref().unwrap().kind,
        EventType::Other("futuristic".into())
    );
}

// issue 3 item 1: 32 KB per event, 500 KB per batch; larger rejected with a clear error.
#[test]
fn size_limits_reject_with_a_clear_error() {
    let big_trait = "x".repeat(33 * 1024);
    let body = format!(
        r#"{{"batch":[{{"type":"identify","userId":"a","traits":{{"t":"{big_trait}"}}}},{{"type":"identify","userId":"b"}}]}}"#
    );
    let b = parse_batch(body.as_bytes(), &Limits::default()).unwrap();
    let err = b.elements[0].as_ref().unwrap_err();
    assert!(err.reason.contains("32768-byte limit"), "{err}");
    assert!(b.elements[1].is_ok());

    let huge = format!(
        r#"{{"batch":[{}]}}"#,
        vec![r#"{"type":"identify","userId":"a"}"#; 20_000].join(",")
    );
    match parse_batch(huge.as_bytes(), &Limits::default()) {
        Err(BodyError::TooLarge { limit, .. }) => assert_eq!(limit, 500 * 1024),
        other => panic!("{other:?}"),
    }
    let small = Limits {
        max_event_bytes: 10,
        max_batch_bytes: 100,
    };
    assert!(parse_event(br#"{"type":"identify","userId":"a"}"#, &small).is_err());
}

#[test]
fn a_body_that_is_not_json_or_not_a_batch_fails_whole() {
    assert!(matches!(
        parse_batch(b"{not json", &Limits::default()),
        Err(BodyError::NotJson(_))
    ));
    assert!(matches!(
        parse_batch(br#"{"events":[]}"#, &Limits::default()),
        Err(BodyError::NotABatch(_))
    ));
    assert!(matches!(
        parse_batch(br#"{"batch":{}}"#, &Limits::default()),
        Err(BodyError::NotABatch(_))
    ));
    assert!(matches!(
        parse_batch(br#"[1]"#, &Limits::default()),
        Err(BodyError::NotABatch(_))
    ));
}

#[test]
fn batch_context_fills_what_elements_lack() {
    let b = parse_batch(
        br#"{"batch":[{"type":"identify","userId":"a","context":{"library":{"name":"mine"}}}],"context":{"library":{"name":"shared"},"ip":"1.2.3.4"}}"#,
        &Limits::default(),
    )
    .unwrap();
    let e = b.elements[0].as_ref().unwrap();
    assert_eq!(e.context()["library"]["name"], "mine");
    assert_eq!(e.context()["ip"], "1.2.3.4");
}

// design decision 9: in NDJSON each line stands alone; indexes are line numbers.
#[test]
fn ndjson_lines_stand_alone() {
    let body = b"{\"type\":\"identify\",\"userId\":\"a\"}\r\n\n{oops\n{\"type\":\"track\",\"userId\":\"b\",\"event\":\"Audience Entered\"}\n";
    let r = parse_ndjson(body, &Limits::default());
    assert_eq!(r.len(), 3);
    assert!(r[0].is_ok());
    assert_eq!(r[1].as_ref().unwrap_err().index, 2);
    assert_eq!(
        r[2].as_ref().unwrap().event.as_deref(),
        Some("Audience Entered")
    );
}
