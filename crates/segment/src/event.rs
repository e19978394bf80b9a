//! One Segment-spec call (identify, track, and the other types, which are kept but not used).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Timestamp, raw};

/// The call type (`type` field).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// `identify`: traits of a user.
    Identify,
    /// `track`: an action with properties.
    Track,
    /// `page`.
    Page,
    /// `screen`.
    Screen,
    /// `group`.
    Group,
    /// `alias`.
    Alias,
    /// Any other type a client sent; tolerated and skipped downstream.
    #[serde(untagged)]
    Other(String),
}

impl EventType {
    /// The spec name (`"identify"`, …) or whatever the client sent.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
            EventType::Other(s) => s,
        }
    }

    fn from_name(s: &str) -> Self {
        match s {
            "identify" => EventType::Identify,
            "track" => EventType::Track,
            "page" => EventType::Page,
            "screen" => EventType::Screen,
            "group" => EventType::Group,
            "alias" => EventType::Alias,
            other => EventType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EventType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a call type string such as \"identify\" or \"track\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EventType, E> {
                Ok(EventType::from_name(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// A Segment event as a client sent it.
///
/// Fields the product needs are typed. `traits`, `properties` and `context` are kept as the
/// client's JSON text: [`Event::traits`] and friends build a map on first use (mappings read
/// arbitrary paths), while the default mapping reads single keys without building anything
/// ([`Event::traits_raw`], [`crate::raw::find`]). Unknown top-level fields (`_metadata`,
/// `integrations`, …) are accepted and dropped. `null` is read as absent everywhere.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The call type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The client's unique id for this call; de-duplication key.
    #[serde(default, deserialize_with = "opt_string_like")]
    pub message_id: Option<String>,
    /// The user id (numbers are accepted and read as their decimal text).
    #[serde(default, deserialize_with = "opt_string_like")]
    pub user_id: Option<String>,
    /// The anonymous id (not an Iterable identifier).
    #[serde(default, deserialize_with = "opt_string_like")]
    pub anonymous_id: Option<String>,
    /// The track event name.
    #[serde(default, deserialize_with = "opt_string_like")]
    pub event: Option<String>,
    /// The page or screen name.
    #[serde(default, deserialize_with = "opt_string_like")]
    pub name: Option<String>,
    /// When the call happened, per the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// When the client sent the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// When Segment (or a relay) received the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "raw_object", rename = "traits")]
    #[serde(skip_serializing_if = "Option::is_none")]
    traits_raw: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "raw_object", rename = "properties")]
    #[serde(skip_serializing_if = "Option::is_none")]
    properties_raw: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "raw_object", rename = "context")]
    #[serde(skip_serializing_if = "Option::is_none")]
    context_raw: Option<Box<RawValue>>,
    #[serde(skip)]
    traits: OnceLock<Map<String, Value>>,
    #[serde(skip)]
    properties: OnceLock<Map<String, Value>>,
    #[serde(skip)]
    context: OnceLock<Map<String, Value>>,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind
            && self.message_id == o.message_id
            && self.user_id == o.user_id
            && self.anonymous_id == o.anonymous_id
            && self.event == o.event
            && self.name == o.name
            && self.timestamp == o.timestamp
            && self.sent_at == o.sent_at
            && self.received_at == o.received_at
            && self.traits() == o.traits()
            && self.properties() == o.properties()
            && self.context() == o.context()
    }
}

/// `context.personas`, read from an event without building a JSON tree.
#[derive(Debug, Clone, Default)]
pub struct Personas<'a> {
    /// `computation_class` (`audience`, `journey_step`, `trait`, …), when a string.
    pub computation_class: Option<Cow<'a, str>>,
    /// `computation_key`: the audience key, when a string (`Some("")` when empty).
    pub computation_key: Option<Cow<'a, str>>,
    /// `external_audience_id` (the list id the CDP holds), as sent; absent when null.
    pub external_audience_id: Option<&'a RawValue>,
    /// `audience_settings`, as sent; absent when null.
    pub audience_settings: Option<&'a RawValue>,
}

fn parse_map(raw: Option<&RawValue>) -> Map<String, Value> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default()
}

fn non_null(r: Option<&RawValue>) -> Option<&RawValue> {
    r.filter(|r| !raw::is_null(r))
}

impl Event {
    /// Identify traits (built on first use).
    pub fn traits(&self) -> &Map<String, Value> {
        self.traits
            .get_or_init(|| parse_map(self.traits_raw.as_deref()))
    }

    /// Track properties (built on first use).
    pub fn properties(&self) -> &Map<String, Value> {
        self.properties
            .get_or_init(|| parse_map(self.properties_raw.as_deref()))
    }

    /// The context object (built on first use).
    pub fn context(&self) -> &Map<String, Value> {
        self.context
            .get_or_init(|| parse_map(self.context_raw.as_deref()))
    }

    /// `traits` as the client's JSON text (always an object when present).
    pub fn traits_raw(&self) -> Option<&RawValue> {
        self.traits_raw.as_deref()
    }

    /// `properties` as the client's JSON text (always an object when present).
    pub fn properties_raw(&self) -> Option<&RawValue> {
        self.properties_raw.as_deref()
    }

    /// `context` as the client's JSON text (always an object when present).
    pub fn context_raw(&self) -> Option<&RawValue> {
        self.context_raw.as_deref()
    }

    /// `context.traits` as JSON text, when present and not null.
    pub fn context_traits_raw(&self) -> Option<&RawValue> {
        let [t] = raw::find_n(self.context_raw()?, ["traits"]);
        non_null(t)
    }

    /// The JSON text a membership or data field is read from: `traits` for identify,
    /// `properties` for track (engage-events.md §1.2), `None` for other types.
    pub fn traits_or_properties_raw(&self) -> Option<&RawValue> {
        match self.kind {
            EventType::Identify => self.traits_raw(),
            EventType::Track => self.properties_raw(),
            _ => None,
        }
    }

    /// `context.personas` when it is an object.
    pub fn personas(&self) -> Option<Personas<'_>> {
        let [p] = raw::find_n(self.context_raw()?, ["personas"]);
        let p = p.filter(|p| p.get().starts_with('{'))?;
        let [class, key, list, settings] = raw::find_n(
            p,
            [
                "computation_class",
                "computation_key",
                "external_audience_id",
                "audience_settings",
            ],
        );
        Some(Personas {
            // A class that is not a string is "another class" (design decision 1), kept as its
            // JSON text so the reason can name it; `null` counts as absent.
            computation_class: class.and_then(|c| {
                raw::as_str(c).or_else(|| (c.get() != "null").then(|| Cow::Borrowed(c.get())))
            }),
            computation_key: key.and_then(raw::as_str),
            external_audience_id: non_null(list),
            audience_settings: non_null(settings),
        })
    }

    /// Fills keys missing from this event's `context` from a batch-level context.
    pub(crate) fn merge_context(&mut self, shared: &Map<String, Value>) {
        let mut ctx = self.context().clone();
        let before = ctx.len();
        for (k, v) in shared {
            if !ctx.contains_key(k) {
                ctx.insert(k.clone(), v.clone());
            }
        }
        if ctx.len() != before {
            self.context_raw = serde_json::value::to_raw_value(&ctx).ok();
            self.context = OnceLock::from(ctx);
        }
    }
}

/// Keeps an object's JSON text; `null` is absent; anything else is an error.
fn raw_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    let r = Box::<RawValue>::deserialize(d)?;
    let t = r.get();
    if t == "null" {
        Ok(None)
    } else if t.starts_with('{') {
        Ok(Some(r))
    } else {
        Err(de::Error::custom("expected an object"))
    }
}

/// Reads a string, a number (as its text) or null.
fn opt_string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, a number or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}
