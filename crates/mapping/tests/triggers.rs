//! The trigger language: each root, operator, function and quirk (engage-events.md §2.1).

use mapping::{Condition, GroupOp, Trigger};
use serde_json::{Value, json};

fn t(src: &str) -> Trigger {
    Trigger::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn matches(src: &str, event: &Value) -> bool {
    t(src).matches(event)
}

fn identify() -> Value {
    json!({
        "type": "identify", "userId": "u-1",
        "traits": {"email": "ana@example.com", "vip": true, "score": 12, "score_text": "12", "flag": "true",
                   "nothing": null},
        "context": {"personas": {"computation_key": "first_time_shopper", "event_emitter_id": "ee_1",
                                 "computation_class": "audience"}}
    })
}

fn track() -> Value {
    json!({"type": "track", "event": "Audience Entered", "userId": "u-2",
           "properties": {"audience_key": "carts", "carts": true, "n": 3}})
}

// §2.1 examples seen in the wild.
#[test]
fn real_world_triggers_match_as_segment_does() {
    assert!(matches(
        r#"type = "identify" or type = "track""#,
        &identify()
    ));
    assert!(matches(r#"type = "identify" or type = "track""#, &track()));
    assert!(!matches(
        r#"type = "identify" or type = "track""#,
        &json!({"type": "page"})
    ));
    assert!(matches(
        r#"event = "Audience Entered" or event = "Audience Exited""#,
        &track()
    ));
    assert!(matches(
        r#"type = "track" and event = "Audience Entered""#,
        &track()
    ));
    assert!(!matches(
        r#"type = "track" and event = "Audience Exited""#,
        &track()
    ));
    assert!(matches(
        r#"context.personas.event_emitter_id = "ee_1""#,
        &identify()
    ));
    assert!(matches(r#"properties.audience_key = "carts""#, &track()));
}

#[test]
fn name_and_user_id_roots_compare_as_strings() {
    assert!(matches(
        r#"name = "Home""#,
        &json!({"type": "page", "name": "Home"})
    ));
    assert!(matches(r#"userId = "u-1""#, &identify()));
    assert!(matches(r#"userId != "u-9""#, &identify()));
}

// §2.1: `= true` on properties/traits/context requires an actual boolean…
#[test]
fn equals_true_on_properties_requires_a_boolean() {
    assert!(matches("traits.vip = true", &identify()));
    assert!(
        !matches("traits.flag = true", &identify()),
        "the string \"true\" is not a boolean"
    );
    assert!(matches("traits.vip != false", &identify()));
    assert!(!matches("traits.vip = false", &identify()));
}

// …while on type, event and name it is a plain string compare.
#[test]
fn equals_true_on_event_is_a_string_compare() {
    assert!(matches(
        "event = true",
        &json!({"type": "track", "event": "true"})
    ));
    // String(true) === "true": a boolean event name matches too.
    assert!(matches(
        "event = true",
        &json!({"type": "track", "event": true})
    ));
    assert!(!matches(
        "event = true",
        &json!({"type": "track", "event": "yes"})
    ));
}

// §2.1: `!= null` means exists, `= null` means does not exist.
#[test]
fn null_compares_mean_exists_and_does_not_exist() {
    assert!(matches("traits.email != null", &identify()));
    assert!(
        !matches("traits.nothing != null", &identify()),
        "null does not exist"
    );
    assert!(matches("traits.nothing = null", &identify()));
    assert!(matches("traits.absent = null", &identify()));
    assert!(matches("userId != null", &identify()));
    assert!(matches("userId = null", &json!({"type": "track"})));
    assert!(matches(
        "context.personas.event_emitter_id != null",
        &identify()
    ));
}

// §2.1: a numeric literal with = / != is a numeric equality.
#[test]
fn numeric_equality_and_comparisons() {
    assert!(matches("traits.score = 12", &identify()));
    assert!(
        matches("traits.score_text = 12", &identify()),
        "numeric equality converts the value"
    );
    assert!(matches("traits.score != 13", &identify()));
    assert!(matches(
        "traits.score > 11 and traits.score >= 12 and traits.score < 13 and traits.score <= 12",
        &identify()
    ));
    assert!(!matches("traits.score > 12", &identify()));
    assert!(
        !matches("traits.absent < 100", &identify()),
        "undefined is NaN"
    );
    assert!(matches("properties.n = 3.0", &track()));
}

// §2.1: otherwise `=` is string equality: `actual === String(expected)`.
#[test]
fn equality_on_text_is_string_equality() {
    assert!(matches(r#"traits.score = "12""#, &identify()));
    assert!(!matches(r#"traits.email = "ANA@example.com""#, &identify()));
    assert!(matches(r#"traits.email != "other""#, &identify()));
}

#[test]
fn contains_and_match_with_and_without_negation() {
    let ev = identify();
    assert!(matches(r#"contains(traits.email, "@example")"#, &ev));
    assert!(!matches(r#"!contains(traits.email, "@example")"#, &ev));
    assert!(matches(r#"match(traits.email, "ana*")"#, &ev));
    assert!(matches(r#"match(traits.email, "*.com")"#, &ev));
    assert!(!matches(r#"!match(traits.email, "*.com")"#, &ev));
    assert!(matches(r#"!match(traits.email, "bob*")"#, &ev));
    assert!(
        !matches(r#"!contains(traits.score, "x")"#, &ev),
        "negated functions still need a string"
    );
    assert!(matches(r#"contains(event, "Entered")"#, &track()));
}

// SAD parse-fql.ts: without a trailing `*`, match() drops the first character, whatever it is.
#[test]
fn match_without_star_drops_the_first_character() {
    assert!(matches(r#"match(traits.email, "xample.com")"#, &identify()));
}

// §2.1 quirk: the group operator is the last and/or seen: `a and b or c` is or(a, b, c).
#[test]
fn last_conjunction_wins_for_the_whole_level() {
    let trig = t(r#"type = "identify" and event = "x" or userId = "nobody""#);
    assert_eq!(trig.root().op, GroupOp::Or);
    assert_eq!(trig.root().children.len(), 3);
    assert!(trig.matches(&identify()), "or(a, b, c) matches on a alone");
    let trig = t(r#"type = "identify" or event = "x" and userId = "nobody""#);
    assert_eq!(trig.root().op, GroupOp::And);
    assert!(!trig.matches(&identify()));
}

#[test]
fn parentheses_create_subgroups() {
    let trig = t(r#"type = "track" and (event = "Audience Entered" or event = "Audience Exited")"#);
    assert!(matches!(trig.root().children[1], Condition::Group(_)));
    assert!(trig.matches(&track()));
    assert!(!trig.matches(&json!({"type": "track", "event": "Order Completed"})));
    assert!(t(r#"((type = "track"))"#).matches(&track()));
}

// §2.1: unknown roots are dropped; if every condition is dropped the parse errors.
#[test]
fn unknown_roots_are_dropped_and_an_all_unknown_trigger_is_an_error() {
    let trig = t(r#"anonymousId = "a" and type = "track""#);
    assert_eq!(trig.root().children.len(), 1);
    assert_eq!(trig.to_string(), r#"type = "track""#);
    let e = Trigger::parse(r#"anonymousId = "a""#).unwrap_err();
    assert_eq!(e.column, 1);
}

// SAD validate.ts: properties.* on identify events reads traits (and traits.* on track reads properties).
#[test]
fn properties_on_identify_read_traits() {
    assert!(matches(
        r#"properties.email = "ana@example.com""#,
        &identify()
    ));
    assert!(matches(r#"traits.audience_key = "carts""#, &track()));
}

#[test]
fn syntax_errors_name_the_column() {
    let cases = [
        (r#"type = "identify" or"#, 21),
        (r#"type "identify""#, 6),
        (r#"type = "identify"#, 8),
        (r#"(type = "identify""#, 19),
        (r#"type = "identify")"#, 18),
        (r#"type = "a" type = "b""#, 12),
        (r#"type = ~"#, 8),
        ("", 1),
        (r#"contains(traits.a "x")"#, 19),
        (r#"!type = "a""#, 2),
    ];
    for (src, col) in cases {
        let e = Trigger::parse(src).expect_err(src);
        assert_eq!(e.column, col, "{src}: {e}");
    }
}

#[test]
fn display_reparses_to_the_same_tree() {
    for src in [
        r#"type = "identify" or type = "track""#,
        r#"type = "track" and (event = "Audience Entered" or event = "Audience Exited")"#,
        r#"traits.vip = true and traits.n != 3 and traits.x = null and context.a.b != null"#,
        r#"!contains(traits.email, "a\"b") or match(userId, "u-*") or !match(name, "*x")"#,
        r#"properties.n <= -2.5 and properties.s > "4" and event = 5 and traits.q != true"#,
        r#"match(event, "")"#,
    ] {
        let trig = t(src);
        let printed = trig.to_string();
        assert_eq!(t(&printed), trig, "{src} → {printed}");
    }
}
