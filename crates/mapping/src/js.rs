//! The handful of JavaScript value semantics that Segment's mapping kit and trigger matcher
//! lean on (truthiness, `String(x)`, `Number(x)`, `x == ''`, `JSON.stringify`), applied to
//! JSON values. Reproducing them is what lets users paste mappings written for Segment.

use serde_json::Value;

/// JavaScript truthiness of a JSON value (`!!x`).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `String(n)` for a JavaScript number.
pub(crate) fn number_to_string(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if f == f.trunc() && f.abs() < 1e21 {
        // Integral values print without a fraction, as JavaScript does (`1.0` → `"1"`).
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

/// `String(n)` for a JSON number, keeping integers exact.
pub(crate) fn json_number_to_string(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        number_to_string(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// `String(x)` for a JSON value; `None` stands for `undefined`.
pub(crate) fn to_js_string(v: Option<&Value>) -> String {
    match v {
        None => "undefined".to_owned(),
        Some(v) => value_to_js_string(v),
    }
}

fn value_to_js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => json_number_to_string(n),
        Value::String(s) => s.clone(),
        Value::Object(_) => "[object Object]".to_owned(),
        // Array.prototype.join: null and undefined items become empty strings.
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Null => String::new(),
                other => value_to_js_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// `Number(x)` for a JSON value; `None` stands for `undefined`.
pub(crate) fn to_js_number(v: Option<&Value>) -> f64 {
    match v {
        None => f64::NAN,
        Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => string_to_number(s),
        Some(Value::Object(_)) => f64::NAN,
        Some(a @ Value::Array(_)) => string_to_number(&value_to_js_string(a)),
    }
}

/// `Number(s)`: trimmed, empty is 0, hex/octal/binary prefixes, `Infinity`, else NaN.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    let radix = |p: &str, r: u32| {
        u64::from_str_radix(p, r)
            .map(|n| n as f64)
            .unwrap_or(f64::NAN)
    };
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return radix(h, 16);
    }
    if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        return radix(o, 8);
    }
    if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        return radix(b, 2);
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    // Rust accepts "inf", "nan" and friends that JavaScript does not.
    if t.chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// `x == ''` with JavaScript's loose equality.
pub(crate) fn loosely_equals_empty_string(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => !*b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Object(_) => false,
        Value::Array(_) => value_to_js_string(v).is_empty(),
    }
}

/// `JSON.stringify(x)`: compact, and numbers printed as JavaScript prints them.
pub(crate) fn stringify(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&json_number_to_string(n)),
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    // serde_json escapes exactly the characters JSON.stringify does for well-formed strings.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// Length in UTF-16 code units, as JavaScript's `.length` counts.
pub(crate) fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_conversion_matches_javascript() {
        assert_eq!(to_js_string(None), "undefined");
        assert_eq!(to_js_string(Some(&json!(null))), "null");
        assert_eq!(to_js_string(Some(&json!(1.0))), "1");
        assert_eq!(to_js_string(Some(&json!(1.5))), "1.5");
        assert_eq!(to_js_string(Some(&json!([1, null, "a"]))), "1,,a");
        assert_eq!(to_js_string(Some(&json!({"a": 1}))), "[object Object]");
    }

    #[test]
    fn number_conversion_matches_javascript() {
        assert_eq!(to_js_number(Some(&json!(" 12 "))), 12.0);
        assert_eq!(to_js_number(Some(&json!(""))), 0.0);
        assert_eq!(to_js_number(Some(&json!(null))), 0.0);
        assert_eq!(to_js_number(Some(&json!(true))), 1.0);
        assert_eq!(to_js_number(Some(&json!("0x10"))), 16.0);
        assert!(to_js_number(Some(&json!("inf"))).is_nan());
        assert!(to_js_number(None).is_nan());
        assert!(to_js_number(Some(&json!({}))).is_nan());
    }

    #[test]
    fn loose_empty_string_equality_matches_javascript() {
        assert!(loosely_equals_empty_string(&json!(0)));
        assert!(loosely_equals_empty_string(&json!(false)));
        assert!(loosely_equals_empty_string(&json!([])));
        assert!(!loosely_equals_empty_string(&json!(true)));
        assert!(!loosely_equals_empty_string(&json!("0")));
        assert!(!loosely_equals_empty_string(&json!({})));
    }

    #[test]
    fn stringify_prints_integral_floats_as_integers() {
        assert_eq!(
            stringify(&json!({"a": [1.0, "x\"y"], "b": null})),
            r#"{"a":[1,"x\"y"],"b":null}"#
        );
    }
}
