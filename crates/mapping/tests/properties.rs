//! Property tests: validated mappings never panic on any event; triggers round-trip.

use mapping::{Mapping, Trigger};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("traits".to_owned()),
        Just("email".to_owned()),
        Just("0".to_owned()),
        Just("".to_owned()),
        "[a-z_.$\\[\\]]{1,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "\\PC{0,8}".prop_map(Value::String),
        Just(json!("{\"x\":1}")),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn path_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("$.traits.email".to_owned()),
        Just("$.".to_owned()),
        Just("a[b].0".to_owned()),
        Just("traits['a.b']".to_owned()),
        "[$a-z.\\[\\]'\"0-9]{0,10}",
    ]
}

/// Mappings built from every directive, mostly valid.
fn mapping_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        json_value(),
        path_text().prop_map(|p| json!({"@path": p})),
        "[a-z{}. ]{0,16}".prop_map(|t| json!({"@template": t})),
        "[a-z{}%|. ]{0,20}".prop_map(|t| json!({"@liquid": t})),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone(), inner.clone(), any::<bool>()).prop_map(|(c, t, e, blank)| {
                let k = if blank { "blank" } else { "exists" };
                json!({"@if": {k: c, "then": t, "else": e}})
            }),
            inner.clone().prop_map(|v| json!({"@literal": v})),
            (path_text(), inner.clone()).prop_map(|(p, s)| json!({"@arrayPath": [p, {"x": s}]})),
            (inner.clone(), any::<bool>()).prop_map(|(v, up)| json!({"@case": {"operator": if up {"upper"} else {"lower"}, "value": v}})),
            (inner.clone(), "[a-z.$]{1,10}", "[a-z$&`']{0,10}", any::<bool>(), any::<bool>()).prop_map(|(v, p, r, g, i)| {
                json!({"@replace": {"value": v, "pattern": p, "replacement": r, "global": g, "ignorecase": i, "pattern2": "a", "replacement2": "b"}})
            }),
            (prop::collection::vec(inner.clone(), 0..3), any::<bool>()).prop_map(|(o, l)| {
                json!({"@merge": {"objects": o, "direction": if l {"left"} else {"right"}}})
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, m)| json!({"@transform": {"apply": {"x": a}, "mapping": {"y": m}}})),
            (inner.clone(), "[_.]{1,2}", any::<bool>()).prop_map(|(v, s, o)| json!({"@flatten": {"value": v, "separator": s, "omitArrays": o}})),
            (inner.clone(), any::<bool>()).prop_map(|(v, e)| json!({"@json": {"mode": if e {"encode"} else {"decode"}, "value": v}})),
            inner.clone().prop_map(|v| json!({"@excludeWhenNull": v})),
            inner.clone().prop_map(|v| json!({"@path": v})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_mapping_applied_to_any_event_returns(fields in prop::collection::vec((key(), mapping_value()), 0..4),
                                                      root in any::<bool>(),
                                                      event in json_value()) {
        let mut m: Map<String, Value> = fields.into_iter().collect();
        if root {
            m.insert("__segment_internal_directive".into(), mapping::linked_audience_root_directive("traits"));
        }
        if let Ok(compiled) = Mapping::compile(&Value::Object(m)) {
            let _ = compiled.apply(&event);
        }
    }

    #[test]
    fn compiling_any_json_returns(v in json_value()) {
        let _ = Mapping::compile(&v);
    }

    #[test]
    fn parsed_triggers_round_trip(src in trigger_text()) {
        if let Ok(t) = Trigger::parse(&src) {
            let printed = t.to_string();
            let again = Trigger::parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&t), "{} printed as {}", src, printed);
        }
    }

    #[test]
    fn any_text_parses_or_fails_without_panicking(src in "\\PC{0,40}") {
        if let Ok(t) = Trigger::parse(&src) {
            prop_assert_eq!(Trigger::parse(&t.to_string()), Ok(t));
        }
    }
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("type".to_owned()),
        Just("event".to_owned()),
        Just("name".to_owned()),
        Just("userId".to_owned()),
        Just("anonymousId".to_owned()),
        "(properties|traits|context)(\\.[a-z_0-9$-]{1,4}){1,3}",
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "\"[a-z *\\\\\"]{0,6}\"",
        (-1000.0f64..1000.0).prop_map(|f| format!("{}", (f * 100.0).round() / 100.0)),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
        "[a-z]{1,5}",
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            field(),
            prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
            literal()
        )
            .prop_map(|(f, o, l)| format!("{f} {o} {l}")),
        (
            any::<bool>(),
            prop::sample::select(vec!["contains", "match"]),
            field(),
            "[a-z*]{0,5}"
        )
            .prop_map(|(neg, func, f, s)| format!(
                "{}{func}({f}, \"{s}\")",
                if neg { "!" } else { "" }
            )),
    ]
}

fn trigger_text() -> impl Strategy<Value = String> {
    condition().prop_recursive(3, 16, 4, |inner| {
        (
            prop::collection::vec(inner, 1..4),
            prop::collection::vec(any::<bool>(), 3),
            any::<bool>(),
        )
            .prop_map(|(parts, ops, paren)| {
                let mut s = String::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        s.push_str(if ops[i - 1] { " and " } else { " or " });
                    }
                    s.push_str(p);
                }
                if paren { format!("({s})") } else { s }
            })
    })
}
