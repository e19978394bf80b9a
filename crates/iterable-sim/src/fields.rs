//! `dataFields`: per-project field types and merging into profiles (iterable-api.md §6.4).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::hash::FastMap;

/// The type a field takes the first time a value is stored in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    String,
    Date,
    Number,
    Boolean,
    Object,
}

/// A string that looks like a date Iterable would index as one
/// (`2020-08-19 20:50:04 +00:00`, `2020-08-19T20:50:04.000Z`, `2020-08-19`).
fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() < 10 || !digits(0..4) || b[4] != b'-' || !digits(5..7) || b[7] != b'-' {
        return false;
    }
    if !digits(8..10) {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    b.len() >= 19
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

fn scalar_type(v: &Value) -> Option<FieldType> {
    match v {
        Value::String(s) if looks_like_date(s) => Some(FieldType::Date),
        Value::String(_) => Some(FieldType::String),
        Value::Number(_) => Some(FieldType::Number),
        Value::Bool(_) => Some(FieldType::Boolean),
        Value::Object(_) => Some(FieldType::Object),
        Value::Null | Value::Array(_) => None,
    }
}

fn compatible(existing: FieldType, incoming: FieldType) -> bool {
    existing == incoming || (existing == FieldType::String && incoming == FieldType::Date)
}

/// The outcome of checking a subscriber's `dataFields` against the project's field types.
#[derive(Debug, Default)]
pub(crate) struct FieldCheck {
    /// Fields (dotted paths) that do not exist yet, with the type they would get.
    pub new_fields: Vec<(String, FieldType)>,
    /// True when a value's type differs from its field's type.
    pub mismatch: bool,
}

/// Checks `fields` against `types` without changing anything.
pub(crate) fn check<'k>(
    types: &FastMap<String, FieldType>,
    fields: impl IntoIterator<Item = (&'k str, &'k Value)>,
) -> FieldCheck {
    let mut out = FieldCheck::default();
    walk(types, "", fields, &mut out);
    out
}

fn walk<'k>(
    types: &FastMap<String, FieldType>,
    prefix: &str,
    fields: impl IntoIterator<Item = (&'k str, &'k Value)>,
    out: &mut FieldCheck,
) {
    for (key, value) in fields {
        // Top-level paths borrow the key: no allocation for the common case.
        let nested;
        let path = if prefix.is_empty() {
            key
        } else {
            nested = format!("{prefix}.{key}");
            nested.as_str()
        };
        check_value(types, path, value, out);
        if out.mismatch {
            return;
        }
    }
}

fn check_value(
    types: &FastMap<String, FieldType>,
    path: &str,
    value: &Value,
    out: &mut FieldCheck,
) {
    if let Value::Array(items) = value {
        // An array takes the type of its elements.
        for item in items {
            check_value(types, path, item, out);
            if out.mismatch {
                return;
            }
        }
        return;
    }
    let Some(incoming) = scalar_type(value) else {
        return;
    };
    let known = types.get(path).copied().or_else(|| {
        out.new_fields
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| *t)
    });
    match known {
        Some(existing) if !compatible(existing, incoming) => {
            out.mismatch = true;
            return;
        }
        Some(_) => {}
        None => out.new_fields.push((path.to_owned(), incoming)),
    }
    if let Value::Object(inner) = value {
        walk(types, path, inner.iter().map(|(k, v)| (k.as_str(), v)), out);
    }
}

/// Merges `incoming` into `profile`: top-level keys overwrite, `null` removes a key, and with
/// `merge_nested` two objects under the same key are merged key by key. An unchanged value is
/// left in place (re-subscribes usually carry the same fields).
pub(crate) fn merge(
    profile: &mut Map<String, Value>,
    incoming: Vec<(Cow<'_, str>, Value)>,
    merge_nested: bool,
) {
    for (key, value) in incoming {
        match value {
            Value::Null => {
                profile.remove(key.as_ref());
            }
            Value::Object(inner) if merge_nested => match profile.get_mut(key.as_ref()) {
                Some(Value::Object(existing)) => {
                    for (k, v) in inner {
                        if v.is_null() {
                            existing.remove(&k);
                        } else {
                            existing.insert(k, v);
                        }
                    }
                }
                _ => {
                    profile.insert(key.into_owned(), Value::Object(inner));
                }
            },
            other => match profile.get_mut(key.as_ref()) {
                Some(slot) => {
                    if *slot != other {
                        *slot = other;
                    }
                }
                None => {
                    profile.insert(key.into_owned(), other);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn pairs(v: Value) -> Vec<(Cow<'static, str>, Value)> {
        obj(v)
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k), v))
            .collect()
    }

    fn check_json(types: &FastMap<String, FieldType>, v: Value) -> FieldCheck {
        let m = obj(v);
        check(types, m.iter().map(|(k, v)| (k.as_str(), v)))
    }

    // iterable-api.md §6.4: the mergeNestedObjects example from the spec.
    #[test]
    fn merge_nested_objects_merges_top_level_objects() {
        let mut p = obj(json!({"mySettings": {"mobile": true}, "a": 1}));
        merge(&mut p, pairs(json!({"mySettings": {"email": true}})), true);
        assert_eq!(
            Value::Object(p),
            json!({"mySettings": {"mobile": true, "email": true}, "a": 1})
        );
        let mut p = obj(json!({"mySettings": {"mobile": true}}));
        merge(
            &mut p,
            pairs(json!({"mySettings": {"email": true}, "b": null})),
            false,
        );
        assert_eq!(Value::Object(p), json!({"mySettings": {"email": true}}));
    }

    // iterable-api.md §6.4: types are per project; a date field refuses "GGG".
    #[test]
    fn type_checks_follow_the_first_type() {
        let mut types = FastMap::default();
        types.insert("signupDate".to_owned(), FieldType::Date);
        types.insert("plan".to_owned(), FieldType::String);
        assert!(check_json(&types, json!({"signupDate": "GGG"})).mismatch);
        assert!(!check_json(&types, json!({"plan": "2020-01-01"})).mismatch);
        assert!(check_json(&types, json!({"plan": 3})).mismatch);
        let c = check_json(&types, json!({"n": {"x": [1, 2]}}));
        assert!(!c.mismatch);
        assert_eq!(c.new_fields.len(), 2);
        assert!(check_json(&types, json!({"z": [1, "a"]})).mismatch);
    }
}
