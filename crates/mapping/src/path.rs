//! Paths into an event (`$.traits.email`, `a.b[0].c`, `a[b]`), resolved the way Segment's
//! `get` helper does, quirks included (engage-events.md §2.2, `@path`).

use std::borrow::Cow;

use serde_json::Value;

use crate::js;

/// A parsed path: the keys to follow from the root. An empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    keys: Vec<String>,
}

impl Path {
    /// Parses a `@path` argument: the first `$.` is removed (Segment replaces it wherever it
    /// appears), then `.`, `[` and `]` separate keys; `["k"]` and `['k']` name a key that may
    /// hold separators; `a[b]` is the literal key `b`.
    pub fn parse_mapping_path(raw: &str) -> Self {
        if raw.contains("$.") {
            Self::parse_keys(&raw.replacen("$.", "", 1))
        } else {
            Self::parse_keys(raw)
        }
    }

    /// Parses a path with no `$.` handling (template placeholders and trigger fields).
    pub fn parse_keys(raw: &str) -> Self {
        if raw.is_empty() || raw == "." {
            return Self { keys: Vec::new() };
        }
        let chars: Vec<char> = raw.chars().collect();
        let mut keys = Vec::new();
        let mut current = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '[' => {
                    if !current.is_empty() {
                        keys.push(std::mem::take(&mut current));
                    }
                    // A quoted key runs to its closing quote, then `]`.
                    if let Some(&q @ ('"' | '\'')) = chars.get(i + 1) {
                        let close = (i + 2..chars.len())
                            .find(|&j| chars[j] == q && chars.get(j + 1) == Some(&']'));
                        if let Some(j) = close {
                            keys.push(chars[i + 2..j].iter().collect());
                            i = j + 2;
                            continue;
                        }
                    }
                }
                '.' | ']' => {
                    if !current.is_empty() {
                        keys.push(std::mem::take(&mut current));
                    }
                }
                other => current.push(other),
            }
            i += 1;
        }
        if !current.is_empty() {
            keys.push(current);
        }
        Self { keys }
    }

    /// Builds a path from keys already split.
    pub fn from_keys(keys: Vec<String>) -> Self {
        Self { keys }
    }

    /// The keys followed from the root.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Resolves the path against `root`. `None` is JavaScript's `undefined`.
    ///
    /// Like Segment's `prev && prev[key]`, a falsy value (`null`, `false`, `0`, `""`) met on
    /// the way is returned as the result; strings and arrays answer `length` and indices.
    pub fn resolve<'a>(&self, root: &'a Value) -> Option<Cow<'a, Value>> {
        resolve_keys(&self.keys, root)
    }
}

/// [`Path::resolve`] on keys already split (saves building a `Path`).
pub(crate) fn resolve_keys<'a>(keys: &[String], root: &'a Value) -> Option<Cow<'a, Value>> {
    {
        let mut cur: Cow<'a, Value> = Cow::Borrowed(root);
        for key in keys {
            if !js::truthy(&cur) {
                return Some(cur);
            }
            cur = match cur {
                Cow::Borrowed(v) => step(v, key)?,
                // Only scalars are ever owned (a length or one character): they have no keys.
                Cow::Owned(v) => Cow::Owned(step(&v, key)?.into_owned()),
            };
        }
        Some(cur)
    }
}

fn array_index(key: &str) -> Option<usize> {
    // JavaScript only treats canonical numerals as indices: "01" is a property, not index 1.
    if key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit())) {
        key.parse().ok()
    } else {
        None
    }
}

fn step<'a>(v: &'a Value, key: &str) -> Option<Cow<'a, Value>> {
    match v {
        Value::Object(map) => map.get(key).map(Cow::Borrowed),
        Value::Array(items) => {
            if key == "length" {
                return Some(Cow::Owned(Value::from(items.len())));
            }
            array_index(key)
                .and_then(|i| items.get(i))
                .map(Cow::Borrowed)
        }
        Value::String(s) => {
            if key == "length" {
                return Some(Cow::Owned(Value::from(js::js_len(s))));
            }
            let i = array_index(key)?;
            let unit = s.encode_utf16().nth(i)?;
            Some(Cow::Owned(Value::String(String::from_utf16_lossy(&[unit]))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(path: &str, v: &Value) -> Option<Value> {
        Path::parse_mapping_path(path)
            .resolve(v)
            .map(Cow::into_owned)
    }

    // engage-events.md §2.2 (@path): dot and bracket paths, optional `$.`.
    #[test]
    fn dot_bracket_and_dollar_paths_resolve_the_same_value() {
        let ev = json!({"a": {"b": [{"c": 7}]}});
        assert_eq!(get("$.a.b[0].c", &ev), Some(json!(7)));
        assert_eq!(get("a.b.0.c", &ev), Some(json!(7)));
        assert_eq!(get("a['b'][0][\"c\"]", &ev), Some(json!(7)));
        assert_eq!(get("$.", &ev), Some(ev.clone()));
        assert_eq!(get("a.x", &ev), None);
    }

    // engage-events.md §2.2 (@path): `a[b]` is the literal key `b`.
    #[test]
    fn unquoted_bracket_is_a_literal_key() {
        let ev = json!({"a": {"b": 1, "x": 2}, "b": "x"});
        assert_eq!(get("a[b]", &ev), Some(json!(1)));
    }

    #[test]
    fn quoted_bracket_key_may_hold_dots() {
        let ev = json!({"a": {"b.c": 3}});
        assert_eq!(get("a[\"b.c\"]", &ev), Some(json!(3)));
    }

    #[test]
    fn falsy_values_short_circuit_like_segment_get() {
        let ev = json!({"a": null, "z": 0, "s": "hey", "l": [1, 2]});
        assert_eq!(get("a.b.c", &ev), Some(json!(null)));
        assert_eq!(get("z.b", &ev), Some(json!(0)));
        assert_eq!(get("s.length", &ev), Some(json!(3)));
        assert_eq!(get("s.1", &ev), Some(json!("e")));
        assert_eq!(get("l.length", &ev), Some(json!(2)));
        assert_eq!(get("l.01", &ev), None);
    }
}
