//! The trigger language (Segment's FQL subset; engage-events.md §2.1).
//!
//! ```
//! use serde_json::json;
//! let t: mapping::Trigger = r#"type = "track" and event = "Audience Entered""#.parse().unwrap();
//! assert!(t.matches(&json!({"type": "track", "event": "Audience Entered"})));
//! assert_eq!(t.to_string(), r#"type = "track" and event = "Audience Entered""#);
//! ```

mod ast;
mod lexer;
mod parser;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use ast::{CompareOp, Condition, Field, Group, GroupOp, Literal, TextFn};

use crate::error::TriggerError;
use crate::js;
use crate::path::resolve_keys;

/// The default trigger of the Iterable Lists action.
pub const DEFAULT_TRIGGER: &str = r#"type = "identify" or type = "track""#;

/// A parsed trigger. Its `Display` prints text that parses back to the same tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    root: Group,
}

impl Trigger {
    /// Parses a trigger; a syntax error names its 1-based column.
    pub fn parse(src: &str) -> Result<Self, TriggerError> {
        parser::parse(src).map(|root| Self { root })
    }

    /// The top-level group.
    pub fn root(&self) -> &Group {
        &self.root
    }

    /// Whether the event matches.
    pub fn matches(&self, event: &Value) -> bool {
        group_matches(&self.root, event)
    }
}

impl FromStr for Trigger {
    type Err = TriggerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

fn group_matches(g: &Group, event: &Value) -> bool {
    match g.op {
        GroupOp::And => g.children.iter().all(|c| condition_matches(c, event)),
        GroupOp::Or => g.children.iter().any(|c| condition_matches(c, event)),
    }
}

fn lookup<'a>(field: &Field, event: &'a Value) -> Option<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    let top = |k: &str| event.get(k).map(Cow::Borrowed);
    let under = |container: Option<&'a Value>, keys: &[String]| {
        container.and_then(|c| resolve_keys(keys, c))
    };
    match field {
        Field::Type => top("type"),
        Field::Event => top("event"),
        Field::Name => top("name"),
        Field::UserId => top("userId"),
        // Segment reads traits on identify and group events, properties on the others, for
        // both roots.
        Field::Properties(keys) | Field::Traits(keys) => {
            let kind = event.get("type").and_then(Value::as_str);
            let container = if matches!(kind, Some("identify" | "group")) {
                "traits"
            } else {
                "properties"
            };
            under(event.get(container), keys)
        }
        Field::Context(keys) => under(event.get("context"), keys),
    }
}

fn condition_matches(c: &Condition, event: &Value) -> bool {
    match c {
        Condition::Group(g) => group_matches(g, event),
        Condition::Compare { field, op, value } => {
            let actual = lookup(field, event);
            let actual = actual.as_deref();
            // The common case, text against text, without building strings.
            if let (Some(Value::String(a)), Literal::Str(b), CompareOp::Eq | CompareOp::Ne) =
                (actual, value, op)
            {
                return (a == b) == (*op == CompareOp::Eq);
            }
            match op {
                CompareOp::Eq => js::to_js_string(actual) == value.to_js_string(),
                CompareOp::Ne => js::to_js_string(actual) != value.to_js_string(),
                CompareOp::Lt => js::to_js_number(actual) < value.to_js_number(),
                CompareOp::Le => js::to_js_number(actual) <= value.to_js_number(),
                CompareOp::Gt => js::to_js_number(actual) > value.to_js_number(),
                CompareOp::Ge => js::to_js_number(actual) >= value.to_js_number(),
            }
        }
        Condition::Exists { field, exists } => {
            let present = lookup(field, event).is_some_and(|v| !v.is_null());
            present == *exists
        }
        Condition::IsBool { field, value } => {
            matches!(lookup(field, event).as_deref(), Some(Value::Bool(b)) if b == value)
        }
        Condition::NumberEquals {
            field,
            value,
            equal,
        } => {
            let n = js::to_js_number(lookup(field, event).as_deref());
            (n == *value) == *equal
        }
        Condition::Text {
            field,
            func,
            negate,
            value,
        } => match lookup(field, event).as_deref() {
            Some(Value::String(s)) => {
                let hit = match func {
                    TextFn::Contains => s.contains(value.as_str()),
                    TextFn::StartsWith => s.starts_with(value.as_str()),
                    TextFn::EndsWith => s.ends_with(value.as_str()),
                };
                hit != *negate
            }
            // Both the test and its negation require a string.
            _ => false,
        },
    }
}
