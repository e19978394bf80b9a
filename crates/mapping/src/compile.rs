//! Validation: JSON mapping → [`Node`]s, with every problem reported at the path of the bad
//! node (`mapping.dataFields.plan: @path expects a string`).

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::js;
use crate::liquid_tpl::LiquidTemplate;
use crate::node::{IfNode, Node, ReplaceNode, Replacement};
use crate::path::Path;
use crate::template::Template;

/// The key of the root directive used by Linked Audiences mappings (engage-events.md §1.4).
pub const ROOT_DIRECTIVE_KEY: &str = "__segment_internal_directive";

/// Segment's `MAX_PATTERN_LENGTH` and `MAX_REPLACEMENT_LENGTH` for `@replace`.
pub const MAX_REPLACE_LENGTH: usize = 10;

/// Every directive this crate understands.
pub const DIRECTIVES: &[&str] = &[
    "@path",
    "@if",
    "@template",
    "@literal",
    "@arrayPath",
    "@case",
    "@replace",
    "@merge",
    "@transform",
    "@flatten",
    "@json",
    "@excludeWhenNull",
    "@liquid",
];

pub(crate) struct Compiler {
    pub(crate) errors: Vec<ValidationError>,
}

fn contains_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.starts_with('@') || contains_directive(v)),
        Value::Array(items) => items.iter().any(contains_directive),
        _ => false,
    }
}

fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

impl Compiler {
    pub(crate) fn new() -> Self {
        Self { errors: Vec::new() }
    }

    fn error(&mut self, path: &str, message: impl Into<String>) -> Node {
        self.errors.push(ValidationError {
            path: path.to_owned(),
            message: message.into(),
        });
        Node::Undefined
    }

    /// Compiles a mapping object that may carry the root directive: the other keys become
    /// the root directive's `mapping` option.
    pub(crate) fn root(&mut self, mapping: &Value, path: &str) -> Node {
        let Value::Object(map) = mapping else {
            return self.error(path, "a mapping must be an object");
        };
        let Some(root) = map.get(ROOT_DIRECTIVE_KEY) else {
            return self.value(mapping, path);
        };
        let root_path = child(path, ROOT_DIRECTIVE_KEY);
        let Value::Object(root_obj) = root else {
            return self.error(
                &root_path,
                "the root directive must be an object holding one directive",
            );
        };
        let mut keys = root_obj.keys();
        let (Some(name), None) = (keys.next(), keys.next()) else {
            return self.error(
                &root_path,
                "the root mapping must hold exactly one directive",
            );
        };
        let Some(Value::Object(opts)) = root_obj.get(name) else {
            return self.error(
                &child(&root_path, name),
                "the root directive's options must be an object",
            );
        };
        let rest: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| *k != ROOT_DIRECTIVE_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut opts = opts.clone();
        opts.insert("mapping".to_owned(), Value::Object(rest));
        let mut directive = Map::new();
        directive.insert(name.clone(), Value::Object(opts));
        self.value(&Value::Object(directive), &root_path)
    }

    /// Compiles any mapping value.
    pub(crate) fn value(&mut self, v: &Value, path: &str) -> Node {
        if !contains_directive(v) {
            return Node::Raw(v.clone());
        }
        match v {
            Value::Array(items) => Node::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(item, &format!("{path}[{i}]")))
                    .collect(),
            ),
            Value::Object(map) => {
                let directives: Vec<&String> = map.keys().filter(|k| k.starts_with('@')).collect();
                match (directives.as_slice(), map.len()) {
                    ([], _) => Node::Object(
                        map.iter()
                            .map(|(k, v)| (k.clone(), self.value(v, &child(path, k))))
                            .collect(),
                    ),
                    ([name], 1) => self.directive(name, &map[name.as_str()], path),
                    ([_], _) => self.error(
                        path,
                        "a directive cannot be mixed with other keys in the same object",
                    ),
                    _ => self.error(
                        path,
                        format!("only one directive per object, found {}", directives.len()),
                    ),
                }
            }
            _ => Node::Raw(v.clone()),
        }
    }

    /// A string, or a directive that yields one at run time.
    fn string_or_directive(
        &mut self,
        name: &str,
        v: &Value,
        path: &str,
    ) -> Result<Result<String, Node>, ()> {
        match v {
            Value::String(s) => Ok(Ok(s.clone())),
            Value::Object(m) if m.len() == 1 && m.keys().all(|k| k.starts_with('@')) => {
                Ok(Err(self.value(v, path)))
            }
            _ => {
                self.error(path, format!("{name} expects a string"));
                Err(())
            }
        }
    }

    fn options<'a>(
        &mut self,
        name: &str,
        v: &'a Value,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.error(path, format!("{name} expects an object"));
                None
            }
        }
    }

    fn directive(&mut self, name: &str, arg: &Value, path: &str) -> Node {
        let at = child(path, name);
        match name {
            "@path" => match self.string_or_directive(name, arg, path) {
                Ok(Ok(s)) => Node::Path(Path::parse_mapping_path(&s)),
                Ok(Err(node)) => Node::DynPath {
                    arg: Box::new(node),
                    at: at.into(),
                },
                Err(()) => Node::Undefined,
            },
            "@template" => match self.string_or_directive(name, arg, path) {
                Ok(Ok(s)) => Node::Template(Template::compile(&s)),
                Ok(Err(node)) => Node::DynTemplate {
                    arg: Box::new(node),
                    at: at.into(),
                },
                Err(()) => Node::Undefined,
            },
            "@literal" => self.value(arg, &at),
            "@excludeWhenNull" => Node::ExcludeWhenNull(Box::new(self.value(arg, &at))),
            "@liquid" => match arg {
                Value::String(s) => match LiquidTemplate::compile(s) {
                    Ok(t) => Node::Liquid {
                        template: Box::new(t),
                        at: at.into(),
                    },
                    Err(m) => self.error(path, m),
                },
                _ => self.error(path, "@liquid expects a string"),
            },
            "@if" => self.if_directive(arg, path, &at),
            "@arrayPath" => self.array_path(arg, path, &at),
            "@case" => self.case(arg, path, &at),
            "@replace" => self.replace(arg, path, &at),
            "@merge" => self.merge(arg, path, &at),
            "@transform" => self.transform(arg, path, &at),
            "@flatten" => self.flatten(arg, path, &at),
            "@json" => self.json(arg, path, &at),
            other => self.error(path, format!("unknown directive {other}")),
        }
    }

    fn if_directive(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@if", arg, path) else {
            return Node::Undefined;
        };
        let truthy = |k: &str| opts.get(k).is_some_and(js::truthy);
        if !truthy("exists") && !truthy("blank") {
            return self.error(
                path,
                "@if requires an \"exists\" or a \"blank\" key holding a path or value",
            );
        }
        // Segment checks `exists` first whenever the key is present, even with a falsy value.
        let (exists, key) = if opts.contains_key("exists") {
            (true, "exists")
        } else {
            (false, "blank")
        };
        let test = self.value(&opts[key], &child(at, key));
        let then = opts.get("then").map(|v| self.value(v, &child(at, "then")));
        // `else` is used only when its mapping value is truthy (engage-events.md §2.2).
        let otherwise = opts
            .get("else")
            .filter(|v| js::truthy(v))
            .map(|v| self.value(v, &child(at, "else")));
        Node::If(Box::new(IfNode {
            exists,
            test,
            then,
            otherwise,
        }))
    }

    fn array_path(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Value::Array(items) = arg else {
            return self.error(path, "@arrayPath expects an array");
        };
        let root = match items.first() {
            Some(Value::String(s)) => Node::Path(Path::parse_mapping_path(s)),
            Some(v) => self.value(v, &format!("{at}[0]")),
            None => return self.error(path, "@arrayPath expects a path as its first item"),
        };
        let shape = match items.get(1) {
            Some(v @ Value::Object(m)) if !m.is_empty() => {
                Some(Box::new(self.value(v, &format!("{at}[1]"))))
            }
            None | Some(Value::Object(_)) => None,
            Some(_) => return self.error(path, "@arrayPath expects an object as its item shape"),
        };
        Node::ArrayPath {
            root: Box::new(root),
            shape,
        }
    }

    fn case(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@case", arg, path) else {
            return Node::Undefined;
        };
        let upper = match opts.get("operator") {
            Some(Value::String(s)) if s == "upper" => true,
            Some(Value::String(s)) if s == "lower" => false,
            _ => {
                return self.error(
                    path,
                    "@case requires an \"operator\" of \"lower\" or \"upper\"",
                );
            }
        };
        match opts.get("value").filter(|v| js::truthy(v)) {
            Some(v) => Node::Case {
                upper,
                value: Box::new(self.value(v, &child(at, "value"))),
            },
            None => Node::Undefined,
        }
    }

    fn replace_string(
        &mut self,
        opts: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<String> {
        match opts.get(key) {
            Some(Value::String(s)) if js::js_len(s) > MAX_REPLACE_LENGTH => {
                self.error(
                    path,
                    format!("@replace \"{key}\" must be at most {MAX_REPLACE_LENGTH} characters"),
                );
                None
            }
            Some(Value::String(s)) if !(required && s.is_empty()) => Some(s.clone()),
            None | Some(Value::Null) if !required => Some(String::new()),
            _ => {
                let what = if required {
                    "a non-empty string"
                } else {
                    "a string"
                };
                self.error(path, format!("@replace \"{key}\" must be {what}"));
                None
            }
        }
    }

    fn replace_flag(
        &mut self,
        opts: &Map<String, Value>,
        key: &str,
        default: bool,
        path: &str,
    ) -> bool {
        match opts.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(path, format!("@replace \"{key}\" must be a boolean"));
                default
            }
        }
    }

    fn replace(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@replace", arg, path) else {
            return Node::Undefined;
        };
        let pattern = self.replace_string(opts, "pattern", path, true);
        let replacement = self.replace_string(opts, "replacement", path, false);
        let second = match opts.get("pattern2").filter(|v| js::truthy(v)) {
            Some(_) => {
                let p2 = self.replace_string(opts, "pattern2", path, true);
                let r2 = self.replace_string(opts, "replacement2", path, false);
                Some((p2, r2))
            }
            None => None,
        };
        let global = self.replace_flag(opts, "global", true, path);
        let ignorecase = self.replace_flag(opts, "ignorecase", false, path);
        let value = opts
            .get("value")
            .filter(|v| js::truthy(v))
            .map(|v| self.value(v, &child(at, "value")));
        let (Some(pattern), Some(replacement)) = (pattern, replacement) else {
            return Node::Undefined;
        };
        let Some(first) = literal_regex(&pattern, ignorecase) else {
            return self.error(path, "@replace pattern is too complex");
        };
        let literal = (!ignorecase).then(|| {
            let p2 = match &second {
                Some((Some(p2), _)) => Some(p2.clone()),
                _ => None,
            };
            (pattern.clone(), p2)
        });
        let second = match second {
            Some((Some(p2), Some(r2))) => match literal_regex(&p2, ignorecase) {
                Some(re) => Some((re, Replacement::parse(&r2))),
                None => return self.error(path, "@replace pattern2 is too complex"),
            },
            Some(_) => return Node::Undefined,
            None => None,
        };
        // Without a (truthy) value Segment returns nothing at all.
        let Some(value) = value else {
            return Node::Undefined;
        };
        Node::Replace(Box::new(ReplaceNode {
            value,
            literal,
            first: (first, Replacement::parse(&replacement)),
            second,
            global,
        }))
    }

    fn merge(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@merge", arg, path) else {
            return Node::Undefined;
        };
        let direction = match opts.get("direction") {
            Some(Value::String(s)) if s == "left" || s == "right" => {
                Node::Raw(Value::String(s.clone()))
            }
            Some(v @ Value::Object(_)) => self.value(v, &child(at, "direction")),
            _ => {
                return self.error(
                    path,
                    "@merge requires a \"direction\" of \"left\" or \"right\"",
                );
            }
        };
        let objects = match opts.get("objects") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    // Keep literal objects as objects so that `undefined` entries can override.
                    Value::Object(m) if !m.keys().any(|k| k.starts_with('@')) => Node::Object(
                        m.iter()
                            .map(|(k, v)| {
                                (k.clone(), self.value(v, &format!("{at}.objects[{i}].{k}")))
                            })
                            .collect(),
                    ),
                    v => self.value(v, &format!("{at}.objects[{i}]")),
                })
                .collect(),
            _ => return self.error(path, "@merge requires an \"objects\" array"),
        };
        Node::Merge {
            objects,
            direction: Box::new(direction),
        }
    }

    fn transform(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@transform", arg, path) else {
            return Node::Undefined;
        };
        let apply = match opts.get("apply") {
            Some(v @ Value::Object(_)) => self.root(v, &child(at, "apply")),
            _ => return self.error(path, "@transform requires an \"apply\" object"),
        };
        let mapping = match opts.get("mapping") {
            Some(v) if js::truthy(v) => self.value(v, &child(at, "mapping")),
            _ => return self.error(path, "@transform requires a \"mapping\""),
        };
        Node::Transform {
            apply: Box::new(apply),
            mapping: Box::new(mapping),
            at: at.into(),
        }
    }

    fn flatten(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@flatten", arg, path) else {
            return Node::Undefined;
        };
        let separator = match opts.get("separator") {
            Some(Value::String(s)) if !s.is_empty() => Node::Raw(Value::String(s.clone())),
            Some(v @ Value::Object(_)) => self.value(v, &child(at, "separator")),
            _ => return self.error(path, "@flatten requires a non-empty string \"separator\""),
        };
        let value = opts
            .get("value")
            .map_or(Node::Undefined, |v| self.value(v, &child(at, "value")));
        // Segment reads `omitArrays` unresolved, by truthiness.
        let omit_arrays = opts.get("omitArrays").is_some_and(js::truthy);
        Node::Flatten {
            value: Box::new(value),
            separator: Box::new(separator),
            omit_arrays,
            at: at.into(),
        }
    }

    fn json(&mut self, arg: &Value, path: &str, at: &str) -> Node {
        let Some(opts) = self.options("@json", arg, path) else {
            return Node::Undefined;
        };
        let encode = match opts.get("mode") {
            Some(Value::String(s)) if s == "encode" => true,
            Some(Value::String(s)) if s == "decode" => false,
            _ => {
                return self.error(
                    path,
                    "@json requires a \"mode\" of \"encode\" or \"decode\"",
                );
            }
        };
        match opts.get("value").filter(|v| js::truthy(v)) {
            Some(v) => Node::Json {
                encode,
                value: Box::new(self.value(v, &child(at, "value"))),
            },
            None => self.error(path, "@json requires a \"value\""),
        }
    }
}

/// Patterns are literal text, never regular expressions (Segment escapes them).
fn literal_regex(pattern: &str, ignorecase: bool) -> Option<Regex> {
    RegexBuilder::new(&regex::escape(pattern))
        .case_insensitive(ignorecase)
        .build()
        .ok()
}
