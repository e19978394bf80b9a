//! One Segment-spec call (identify, track, and the other types, which are kept but not used).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Timestamp;

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
/// Fields the product needs are typed; `traits`, `properties` and `context` stay JSON maps
/// because mappings read arbitrary paths in them. Unknown top-level fields (`_metadata`,
/// `integrations`, `version`, …) are accepted and dropped. `null` is read as absent everywhere.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// Identify traits.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub traits: Map<String, Value>,
    /// Track properties.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub properties: Map<String, Value>,
    /// The context object (`personas`, `traits`, `library`, …).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub context: Map<String, Value>,
}

/// `context.personas`, read from an event without copying.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Personas<'a> {
    /// `computation_class` (`audience`, `journey_step`, `trait`, …), when a string.
    pub computation_class: Option<&'a str>,
    /// `computation_key`: the audience key. `Some("")` when present but empty.
    pub computation_key: Option<&'a str>,
    /// `computation_key` when present but not a string.
    pub computation_key_raw: Option<&'a Value>,
    /// `external_audience_id` (the list id the CDP holds), as sent.
    pub external_audience_id: Option<&'a Value>,
    /// `audience_settings`, as sent.
    pub audience_settings: Option<&'a Value>,
}

impl Event {
    /// `context.personas` when it is an object.
    pub fn personas(&self) -> Option<Personas<'_>> {
        let p = self.context.get("personas")?.as_object()?;
        let key_raw = p.get("computation_key").filter(|v| !v.is_null());
        Some(Personas {
            computation_class: p.get("computation_class").and_then(Value::as_str),
            computation_key: key_raw.and_then(Value::as_str),
            computation_key_raw: key_raw,
            external_audience_id: p.get("external_audience_id").filter(|v| !v.is_null()),
            audience_settings: p.get("audience_settings").filter(|v| !v.is_null()),
        })
    }

    /// `context.traits` when it is an object.
    pub fn context_traits(&self) -> Option<&Map<String, Value>> {
        self.context.get("traits")?.as_object()
    }

    /// The map a membership or data field is read from: `traits` for identify, `properties`
    /// for track (engage-events.md §1.2), `None` for other types.
    pub fn traits_or_properties(&self) -> Option<&Map<String, Value>> {
        match self.kind {
            EventType::Identify => Some(&self.traits),
            EventType::Track => Some(&self.properties),
            _ => None,
        }
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
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
