//! Allocation-free reads of raw JSON objects: find a few keys' values without building a tree.
//!
//! The default mapping reads five or six values per event; building `serde_json::Value` maps
//! for `traits` and `context` costs more than everything else on the event path.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Finds the values of `keys` in the JSON object `raw`. `out[i]` receives the value of
/// `keys[i]` (the last one when a key repeats), `None` when absent. A value that is not an
/// object leaves `out` all `None`.
pub fn find<'a>(raw: &'a RawValue, keys: &[&str], out: &mut [Option<&'a RawValue>]) {
    out.iter_mut().for_each(|o| *o = None);
    if !raw.get().trim_start().starts_with('{') {
        return;
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let _ = (&mut de).deserialize_map(FindVisitor { keys, out });
}

/// [`find`] for a fixed number of keys.
pub fn find_n<'a, const N: usize>(raw: &'a RawValue, keys: [&str; N]) -> [Option<&'a RawValue>; N] {
    let mut out = [None; N];
    find(raw, &keys, &mut out);
    out
}

/// A JSON string value, borrowed when it has no escapes; `None` when not a string.
pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let t = raw.get();
    if !t.starts_with('"') {
        return None;
    }
    if let Ok(s) = serde_json::from_str::<&str>(t) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(t).ok().map(Cow::Owned)
}

/// True when the raw value is JSON `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

struct FindVisitor<'k, 'o, 'a> {
    keys: &'k [&'k str],
    out: &'o mut [Option<&'a RawValue>],
}

impl<'a> Visitor<'a> for FindVisitor<'_, '_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key_seed(KeySeed)? {
            match self.keys.iter().position(|want| *want == k.as_ref()) {
                Some(i) => self.out[i] = Some(m.next_value::<&'a RawValue>()?),
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a key borrowed when it has no escapes (serde's `Cow` impl always copies).
struct KeySeed;

impl<'a> DeserializeSeed<'a> for KeySeed {
    type Value = Cow<'a, str>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'a> Visitor<'a> for KeyVisitor {
    type Value = Cow<'a, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn finds_values_of_requested_keys_only() {
        let r = raw(r#"{"a":1,"b":{"x":[1,2]},"c":"s","e\u0073c":true,"a":2}"#);
        let [a, b, missing, esc] = find_n(&r, ["a", "b", "zz", "esc"]);
        assert_eq!(a.unwrap().get(), "2");
        assert_eq!(b.unwrap().get(), r#"{"x":[1,2]}"#);
        assert!(missing.is_none());
        assert_eq!(esc.unwrap().get(), "true");
        let arr = raw("[1]");
        let [x] = find_n(&arr, ["x"]);
        assert!(x.is_none());
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        assert!(matches!(
            as_str(&raw(r#""plain""#)),
            Some(Cow::Borrowed("plain"))
        ));
        assert_eq!(as_str(&raw(r#""a\"b""#)).unwrap(), "a\"b");
        assert!(as_str(&raw("12")).is_none());
    }
}
