//! Parsing request bodies as Iterable does: a typed fast path, and on failure a walk over the
//! JSON that names the offending field the way Iterable's `BadJsonBody` answers do
//! (`{"obj.subscribers[1].preferUserId":"Boolean value expected"}`, iterable-api.md §4.1).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

/// `SubscribeRequest`, borrowing identifiers from the body (no allocation per identifier
/// unless it contains escapes).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscribeBody<'a> {
    pub list_id: i64,
    #[serde(borrow)]
    pub subscribers: Vec<SubscriberBody<'a>>,
    #[serde(default)]
    pub update_existing_users_only: Option<bool>,
}

/// `OptionalApiUser`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriberBody<'a> {
    #[serde(borrow, default)]
    pub email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data_fields: Option<DataFields<'a>>,
    #[serde(default)]
    pub prefer_user_id: Option<bool>,
    #[serde(default)]
    pub merge_nested_objects: Option<bool>,
}

/// A `dataFields` object as (key, value) pairs in body order, keys borrowed from the body:
/// cheaper than a map for what is only walked once and merged.
#[derive(Debug, Default)]
pub(crate) struct DataFields<'a>(pub Vec<(Cow<'a, str>, Value)>);

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for DataFields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DataFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<DataFields<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: Value = map.next_value()?;
                    out.push((k, v));
                }
                Ok(DataFields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `UnsubscribeRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnsubscribeBody<'a> {
    pub list_id: i64,
    #[serde(borrow)]
    pub subscribers: Vec<UnsubscriberBody<'a>>,
    #[serde(default)]
    pub campaign_id: Option<i64>,
    #[serde(default)]
    pub channel_unsubscribe: Option<bool>,
}

/// `Unsubscriber`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnsubscriberBody<'a> {
    #[serde(borrow, default)]
    pub email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_id: Option<Cow<'a, str>>,
}

/// The expected shape of a JSON value.
pub(crate) enum Shape {
    Long,
    Bool,
    Str,
    AnyObject,
    Array(&'static Shape),
    /// An object with known fields: (name, shape, required).
    Object(&'static [(&'static str, Shape, bool)]),
}

pub(crate) static CREATE_LIST: Shape = Shape::Object(&[
    ("name", Shape::Str, true),
    ("description", Shape::Str, false),
]);

static SUBSCRIBER: Shape = Shape::Object(&[
    ("email", Shape::Str, false),
    ("userId", Shape::Str, false),
    ("dataFields", Shape::AnyObject, false),
    ("preferUserId", Shape::Bool, false),
    ("mergeNestedObjects", Shape::Bool, false),
]);

pub(crate) static SUBSCRIBE: Shape = Shape::Object(&[
    ("listId", Shape::Long, true),
    ("subscribers", Shape::Array(&SUBSCRIBER), true),
    ("updateExistingUsersOnly", Shape::Bool, false),
]);

static UNSUBSCRIBER: Shape =
    Shape::Object(&[("email", Shape::Str, false), ("userId", Shape::Str, false)]);

pub(crate) static UNSUBSCRIBE: Shape = Shape::Object(&[
    ("listId", Shape::Long, true),
    ("subscribers", Shape::Array(&UNSUBSCRIBER), true),
    ("campaignId", Shape::Long, false),
    ("channelUnsubscribe", Shape::Bool, false),
]);

/// Parses `bytes` as `T`; on failure returns the `params` of a `BadJsonBody` answer.
pub(crate) fn parse<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    shape: &Shape,
) -> Result<T, Map<String, Value>> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(typed_err) => {
            let mut params = Map::new();
            match serde_json::from_slice::<Value>(bytes) {
                Err(e) => {
                    params.insert("obj".into(), Value::String(format!("Invalid Json: {e}")));
                }
                Ok(v) => {
                    check(&v, shape, "obj", &mut params);
                    if params.is_empty() {
                        params.insert("obj".into(), Value::String(typed_err.to_string()));
                    }
                }
            }
            Err(params)
        }
    }
}

fn expected(shape: &Shape) -> &'static str {
    match shape {
        Shape::Long => "Long value expected",
        Shape::Bool => "Boolean value expected",
        Shape::Str => "String value expected",
        Shape::AnyObject | Shape::Object(_) => "Object value expected",
        Shape::Array(_) => "Array value expected",
    }
}

fn check(v: &Value, shape: &Shape, path: &str, errors: &mut Map<String, Value>) {
    let ok = match (shape, v) {
        (Shape::Long, Value::Number(n)) => n.is_i64(),
        (Shape::Bool, Value::Bool(_)) | (Shape::Str, Value::String(_)) => true,
        (Shape::AnyObject, Value::Object(_)) => true,
        (Shape::Array(item), Value::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                check(it, item, &format!("{path}[{i}]"), errors);
            }
            true
        }
        (Shape::Object(fields), Value::Object(map)) => {
            for (name, field_shape, required) in fields.iter() {
                let p = format!("{path}.{name}");
                match map.get(*name) {
                    None | Some(Value::Null) if *required => {
                        errors.insert(p, Value::String("error.path.missing".into()));
                    }
                    None | Some(Value::Null) => {}
                    Some(x) => check(x, field_shape, &p, errors),
                }
            }
            true
        }
        _ => false,
    };
    if !ok {
        errors.insert(path.to_owned(), Value::String(expected(shape).into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // iterable-api.md §4.1: wrong types are named by path.
    #[test]
    fn names_the_offending_field() {
        let e = parse::<SubscribeBody>(
            br#"{"listId":1,"subscribers":[{"email":"a@b.co"},{"preferUserId":"yes"}]}"#,
            &SUBSCRIBE,
        )
        .unwrap_err();
        assert_eq!(
            e.get("obj.subscribers[1].preferUserId"),
            Some(&Value::String("Boolean value expected".into()))
        );
        let e = parse::<SubscribeBody>(br#"{"subscribers":[]}"#, &SUBSCRIBE).unwrap_err();
        assert!(e.contains_key("obj.listId"));
        let e = parse::<SubscribeBody>(br#"{"listId":1,"#, &SUBSCRIBE).unwrap_err();
        assert!(e.contains_key("obj"));
    }
}
