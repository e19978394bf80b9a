//! The event as Liquid sees it, lenient like liquidjs (which Segment uses): a missing
//! variable or index renders as nothing and is falsy, instead of failing the template as
//! the Rust engine does with plain objects.

use std::fmt;

use liquid::model::{
    ArrayView, DisplayCow, KStringCow, ObjectView, ScalarCow, State, Value as LValue, ValueView,
};
use serde_json::Value;

/// A JSON value viewed by Liquid.
#[derive(Debug)]
pub(crate) enum Lenient {
    /// Absent: empty, falsy, and any index into it is absent too.
    Missing,
    /// A scalar or nil.
    Leaf(LValue),
    Array(Vec<Lenient>),
    Object(Vec<(String, Lenient)>),
}

static MISSING: Lenient = Lenient::Missing;

impl Lenient {
    pub(crate) fn from_json(v: &Value) -> Self {
        match v {
            Value::Null => Lenient::Leaf(LValue::Nil),
            Value::Bool(b) => Lenient::Leaf(LValue::scalar(*b)),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Lenient::Leaf(LValue::scalar(i)),
                (None, Some(f)) => Lenient::Leaf(LValue::scalar(f)),
                _ => Lenient::Leaf(LValue::Nil),
            },
            Value::String(s) => Lenient::Leaf(LValue::scalar(s.clone())),
            Value::Array(items) => Lenient::Array(items.iter().map(Self::from_json).collect()),
            Value::Object(m) => Lenient::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl ValueView for Lenient {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        match self {
            Lenient::Missing => DisplayCow::Owned(Box::new("")),
            Lenient::Leaf(v) => v.render(),
            other => DisplayCow::Owned(Box::new(other.to_value().render().to_string())),
        }
    }

    fn source(&self) -> DisplayCow<'_> {
        match self {
            Lenient::Missing => DisplayCow::Owned(Box::new("nil")),
            Lenient::Leaf(v) => v.source(),
            other => DisplayCow::Owned(Box::new(other.to_value().source().to_string())),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Lenient::Missing => "nil",
            Lenient::Leaf(v) => v.type_name(),
            Lenient::Array(_) => "array",
            Lenient::Object(_) => "object",
        }
    }

    fn query_state(&self, state: State) -> bool {
        match self {
            Lenient::Missing => !matches!(state, State::Truthy),
            Lenient::Leaf(v) => v.query_state(state),
            Lenient::Array(items) => match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => items.is_empty(),
            },
            Lenient::Object(entries) => match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => entries.is_empty(),
            },
        }
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        match self {
            Lenient::Missing => KStringCow::from_static(""),
            Lenient::Leaf(v) => v.to_kstr(),
            other => KStringCow::from_string(other.to_value().to_kstr().as_str().to_owned()),
        }
    }

    fn to_value(&self) -> LValue {
        match self {
            Lenient::Missing => LValue::Nil,
            Lenient::Leaf(v) => v.clone(),
            Lenient::Array(items) => LValue::Array(items.iter().map(ValueView::to_value).collect()),
            Lenient::Object(entries) => LValue::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone().into(), v.to_value()))
                    .collect(),
            ),
        }
    }

    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self {
            Lenient::Leaf(v) => v.as_scalar(),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self {
            Lenient::Array(_) => Some(self),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            // Indexing into something absent gives something absent.
            Lenient::Object(_) | Lenient::Missing => Some(self),
            _ => None,
        }
    }

    fn is_nil(&self) -> bool {
        match self {
            Lenient::Missing => true,
            Lenient::Leaf(v) => v.is_nil(),
            _ => false,
        }
    }
}

impl ObjectView for Lenient {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        match self {
            Lenient::Object(entries) => entries.len() as i64,
            _ => 0,
        }
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        match self {
            Lenient::Object(entries) => Box::new(
                entries
                    .iter()
                    .map(|(k, _)| KStringCow::from_ref(k.as_str())),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Lenient::Object(entries) => Box::new(entries.iter().map(|(_, v)| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        match self {
            Lenient::Object(entries) => Box::new(
                entries
                    .iter()
                    .map(|(k, v)| (KStringCow::from_ref(k.as_str()), v as &dyn ValueView)),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn contains_key(&self, _index: &str) -> bool {
        // Every variable "exists": the absent ones are `Missing`.
        true
    }

    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        let found = match self {
            Lenient::Object(entries) => entries.iter().find(|(k, _)| k == index).map(|(_, v)| v),
            _ => None,
        };
        Some(found.unwrap_or(&MISSING))
    }
}

impl ArrayView for Lenient {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        match self {
            Lenient::Array(items) => items.len() as i64,
            _ => 0,
        }
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Lenient::Array(items) => Box::new(items.iter().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn contains_key(&self, index: i64) -> bool {
        ArrayView::get(self, index).is_some()
    }

    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        let Lenient::Array(items) = self else {
            return None;
        };
        // Negative indices count from the end, as Liquid does.
        let i = if index < 0 {
            items.len() as i64 + index
        } else {
            index
        };
        usize::try_from(i)
            .ok()
            .and_then(|i| items.as_slice().get(i))
            .map(|v| v as &dyn ValueView)
    }
}
