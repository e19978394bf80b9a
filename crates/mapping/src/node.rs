//! The validated form of a mapping and its evaluation. Validation (in `compile`) turns JSON
//! into these nodes once, so applying a mapping to an event never re-checks its shape.

use std::borrow::Cow;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::EvalError;
use crate::js;
use crate::liquid_tpl::LiquidTemplate;
use crate::path::Path;
use crate::template::{self, Template};

/// Result of evaluating a node: `None` is JavaScript's `undefined` (the key is dropped).
pub(crate) type Eval = Result<Option<Value>, EvalError>;

#[derive(Debug)]
pub(crate) enum Node {
    /// A raw value with no directive inside: copied as is.
    Raw(Value),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Path(Path),
    /// `@path` whose argument is itself a directive.
    DynPath {
        arg: Box<Node>,
        at: Box<str>,
    },
    If(Box<IfNode>),
    Template(Template),
    DynTemplate {
        arg: Box<Node>,
        at: Box<str>,
    },
    ArrayPath {
        root: Box<Node>,
        shape: Option<Box<Node>>,
    },
    Case {
        upper: bool,
        value: Box<Node>,
    },
    Replace(Box<ReplaceNode>),
    Merge {
        objects: Vec<Node>,
        direction: Box<Node>,
    },
    Transform {
        apply: Box<Node>,
        mapping: Box<Node>,
        at: Box<str>,
    },
    Flatten {
        value: Box<Node>,
        separator: Box<Node>,
        omit_arrays: bool,
        at: Box<str>,
    },
    Json {
        encode: bool,
        value: Box<Node>,
    },
    ExcludeWhenNull(Box<Node>),
    Liquid {
        template: Box<LiquidTemplate>,
        at: Box<str>,
    },
    /// A directive that always yields `undefined` (for example `@case` with a falsy value).
    Undefined,
}

#[derive(Debug)]
pub(crate) struct IfNode {
    /// `true` for `exists`, `false` for `blank`.
    pub(crate) exists: bool,
    pub(crate) test: Node,
    pub(crate) then: Option<Node>,
    pub(crate) otherwise: Option<Node>,
}

#[derive(Debug)]
pub(crate) struct ReplaceNode {
    pub(crate) value: Node,
    /// The patterns as text, searched directly when case matters (cheaper than the regex).
    pub(crate) literal: Option<(String, Option<String>)>,
    pub(crate) first: (Regex, Replacement),
    pub(crate) second: Option<(Regex, Replacement)>,
    pub(crate) global: bool,
}

/// A replacement string with JavaScript's `$&`, `` $` ``, `$'` and `$$` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplPart {
    Text(String),
    Match,
    Before,
    After,
}

#[derive(Debug, Clone)]
pub(crate) struct Replacement(pub(crate) Vec<ReplPart>);

impl Replacement {
    pub(crate) fn parse(s: &str) -> Self {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                text.push(c);
                continue;
            }
            let part = match chars.peek() {
                Some('$') => {
                    text.push('$');
                    chars.next();
                    continue;
                }
                Some('&') => ReplPart::Match,
                Some('`') => ReplPart::Before,
                Some('\'') => ReplPart::After,
                // No capture groups exist (patterns are escaped), so `$1` stays literal.
                _ => {
                    text.push('$');
                    continue;
                }
            };
            chars.next();
            if !text.is_empty() {
                parts.push(ReplPart::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
        }
        if !text.is_empty() {
            parts.push(ReplPart::Text(text));
        }
        Self(parts)
    }
}

fn replace(
    hay: &str,
    re: &Regex,
    literal: Option<&str>,
    repl: &Replacement,
    global: bool,
) -> String {
    match literal {
        Some(pat) => replace_matches(
            hay,
            hay.match_indices(pat).map(|(i, m)| (i, i + m.len())),
            repl,
            global,
        ),
        None => replace_matches(
            hay,
            re.find_iter(hay).map(|m| (m.start(), m.end())),
            repl,
            global,
        ),
    }
}

fn replace_matches(
    hay: &str,
    matches: impl Iterator<Item = (usize, usize)>,
    repl: &Replacement,
    global: bool,
) -> String {
    let mut out = String::with_capacity(hay.len());
    let mut last = 0;
    for (start, end) in matches {
        out.push_str(&hay[last..start]);
        for part in &repl.0 {
            match part {
                ReplPart::Text(t) => out.push_str(t),
                ReplPart::Match => out.push_str(&hay[start..end]),
                ReplPart::Before => out.push_str(&hay[..start]),
                ReplPart::After => out.push_str(&hay[end..]),
            }
        }
        last = end;
        if !global {
            break;
        }
    }
    out.push_str(&hay[last..]);
    out
}

fn err(at: &str, message: impl Into<String>) -> EvalError {
    EvalError {
        path: at.to_owned(),
        message: message.into(),
    }
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// `Object.assign(target, source)` for one source.
fn assign(target: &mut Map<String, Value>, source: Value) {
    match source {
        Value::Object(m) => target.extend(m),
        Value::Array(items) => {
            for (i, v) in items.into_iter().enumerate() {
                target.insert(i.to_string(), v);
            }
        }
        Value::String(s) => {
            for (i, unit) in s.encode_utf16().enumerate() {
                target.insert(
                    i.to_string(),
                    Value::String(String::from_utf16_lossy(&[unit])),
                );
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The flattening of `@flatten` (engage-events.md §2.2): nested keys joined by `separator`;
/// arrays are walked too unless `omit_arrays`; a scalar becomes `{"": value}`.
fn flatten(
    input: Option<Value>,
    prefix: &str,
    sep: &str,
    omit_arrays: bool,
    out: &mut Map<String, Value>,
) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}{sep}{k}")
        }
    };
    match input {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                flatten(Some(v), &key(&k), sep, omit_arrays, out);
            }
        }
        Some(Value::Array(items)) if !omit_arrays => {
            for (i, v) in items.into_iter().enumerate() {
                flatten(Some(v), &key(&i.to_string()), sep, omit_arrays, out);
            }
        }
        // `undefined` leaves are dropped at the end, exactly as if never written.
        None => {
            out.shift_remove(prefix);
        }
        Some(other) => {
            out.insert(prefix.to_owned(), other);
        }
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

impl Node {
    /// Evaluates an object node, keeping `undefined` entries (needed by `@merge`, where an
    /// `undefined` value overrides an earlier one before the final clean-up removes it).
    fn eval_entries(
        entries: &[(String, Node)],
        payload: &Value,
    ) -> Result<Vec<(String, Option<Value>)>, EvalError> {
        entries
            .iter()
            .map(|(k, n)| Ok((k.clone(), n.eval(payload)?)))
            .collect()
    }

    /// Like [`Node::eval`], borrowing from the event where a path allows it (saves copies
    /// when a value is only inspected).
    fn eval_ref<'a>(&self, payload: &'a Value) -> Result<Option<Cow<'a, Value>>, EvalError> {
        match self {
            Node::Path(p) => Ok(p.resolve(payload)),
            other => Ok(other.eval(payload)?.map(Cow::Owned)),
        }
    }

    pub(crate) fn eval(&self, payload: &Value) -> Eval {
        Ok(match self {
            Node::Raw(v) => Some(v.clone()),
            Node::Undefined => None,
            Node::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, n) in entries {
                    if let Some(v) = n.eval(payload)? {
                        map.insert(k.clone(), v);
                    }
                }
                Some(Value::Object(map))
            }
            // `undefined` inside an array serializes as `null`.
            Node::Array(items) => Some(Value::Array(
                items
                    .iter()
                    .map(|n| n.eval(payload).map(|v| v.unwrap_or(Value::Null)))
                    .collect::<Result<_, _>>()?,
            )),
            Node::Path(p) => p.resolve(payload).map(Cow::into_owned),
            Node::DynPath { arg, at } => match arg.eval(payload)? {
                Some(Value::String(s)) => Path::parse_mapping_path(&s)
                    .resolve(payload)
                    .map(Cow::into_owned),
                other => {
                    return Err(err(
                        at,
                        format!("@path: expected string, got {}", type_name(other.as_ref())),
                    ));
                }
            },
            Node::If(n) => {
                let v = n.test.eval_ref(payload)?;
                let cond = match v.as_deref() {
                    None | Some(Value::Null) => false,
                    Some(v) => n.exists || !js::loosely_equals_empty_string(v),
                };
                match (cond, &n.then, &n.otherwise) {
                    (true, Some(then), _) => then.eval(payload)?,
                    (false, _, Some(otherwise)) => otherwise.eval(payload)?,
                    _ => None,
                }
            }
            Node::Template(t) => Some(Value::String(t.render(payload))),
            Node::DynTemplate { arg, at } => match arg.eval(payload)? {
                Some(Value::String(s)) => {
                    Some(Value::String(template::render_two_pass(&s, payload)))
                }
                other => {
                    return Err(err(
                        at,
                        format!(
                            "@template: expected string, got {}",
                            type_name(other.as_ref())
                        ),
                    ));
                }
            },
            Node::ArrayPath { root, shape } => {
                let root = root.eval(payload)?;
                match (root, shape) {
                    (Some(Value::Array(items)), Some(shape)) => Some(Value::Array(
                        items
                            .iter()
                            .map(|item| shape.eval(item).map(|v| v.unwrap_or(Value::Null)))
                            .collect::<Result<_, _>>()?,
                    )),
                    // A single object is wrapped into an array.
                    (Some(obj @ Value::Object(_)), Some(shape)) => {
                        Some(Value::Array(vec![shape.eval(&obj)?.unwrap_or(Value::Null)]))
                    }
                    (root, _) => root,
                }
            }
            Node::Case { upper, value } => match value.eval(payload)? {
                Some(Value::String(s)) => Some(Value::String(if *upper {
                    s.to_uppercase()
                } else {
                    s.to_lowercase()
                })),
                other => other,
            },
            Node::Replace(r) => {
                let got = r.value.eval_ref(payload)?;
                let value: Option<Cow<'_, str>> = match got.as_deref() {
                    Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
                    // Numbers and booleans are stringified.
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                        Some(Cow::Owned(js::to_js_string(Some(v))))
                    }
                    _ => None,
                };
                // Anything else becomes "" (Segment starts from an empty result).
                let Some(value) = value else {
                    return Ok(Some(Value::String(String::new())));
                };
                let (lit1, lit2) = match &r.literal {
                    Some((a, b)) => (Some(a.as_str()), b.as_deref()),
                    None => (None, None),
                };
                let mut out = replace(&value, &r.first.0, lit1, &r.first.1, r.global);
                if let Some((re, repl)) = &r.second {
                    out = replace(&out, re, lit2, repl, r.global);
                }
                Some(Value::String(out))
            }
            Node::Merge { objects, direction } => {
                let left =
                    matches!(direction.eval(payload)?, Some(Value::String(ref s)) if s == "left");
                let mut evaluated = Vec::with_capacity(objects.len());
                for o in objects {
                    evaluated.push(match o {
                        Node::Object(entries) => Err(Self::eval_entries(entries, payload)?),
                        other => Ok(other.eval(payload)?),
                    });
                }
                if left {
                    evaluated.reverse();
                }
                let mut map = Map::new();
                for source in evaluated {
                    match source {
                        Ok(Some(v)) => assign(&mut map, v),
                        Ok(None) => {}
                        Err(entries) => {
                            for (k, v) in entries {
                                match v {
                                    Some(v) => {
                                        map.insert(k, v);
                                    }
                                    None => {
                                        map.shift_remove(&k);
                                    }
                                }
                            }
                        }
                    }
                }
                Some(Value::Object(map))
            }
            Node::Transform { apply, mapping, at } => {
                if !payload.is_object() {
                    return Err(err(
                        at,
                        format!(
                            "@transform: data must be an object, got {}",
                            type_name(Some(payload))
                        ),
                    ));
                }
                let new_payload = apply
                    .eval(payload)?
                    .unwrap_or_else(|| Value::Object(Map::new()));
                mapping.eval(&new_payload)?
            }
            Node::Flatten {
                value,
                separator,
                omit_arrays,
                at,
            } => {
                let sep = match separator.eval(payload)? {
                    Some(Value::String(s)) => s,
                    _ => return Err(err(at, "@flatten requires a string separator")),
                };
                let mut out = Map::new();
                flatten(value.eval(payload)?, "", &sep, *omit_arrays, &mut out);
                Some(Value::Object(out))
            }
            Node::Json {
                encode: true,
                value,
            } => value
                .eval_ref(payload)?
                .map(|v| Value::String(js::stringify(&v))),
            Node::Json {
                encode: false,
                value,
            } => {
                let v = value.eval(payload)?;
                {
                    match v {
                        // Invalid JSON is returned unchanged.
                        Some(Value::String(s)) => {
                            Some(serde_json::from_str(&s).unwrap_or(Value::String(s)))
                        }
                        other => other,
                    }
                }
            }
            Node::ExcludeWhenNull(inner) => match inner.eval(payload)? {
                Some(Value::Null) | None => None,
                Some(v) => Some(strip_nulls(v)),
            },
            Node::Liquid { template, at } => Some(Value::String(
                template.render(payload).map_err(|m| err(at, m))?,
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_patterns_follow_javascript() {
        let re = Regex::new("b").unwrap();
        let r = |s: &str| {
            let by_regex = replace("abc", &re, None, &Replacement::parse(s), true);
            assert_eq!(
                by_regex,
                replace("abc", &re, Some("b"), &Replacement::parse(s), true)
            );
            by_regex
        };
        assert_eq!(r("[$&]"), "a[b]c");
        assert_eq!(r("$$"), "a$c");
        assert_eq!(r("$`"), "aac");
        assert_eq!(r("$'"), "acc");
        assert_eq!(r("$1"), "a$1c");
    }
}
