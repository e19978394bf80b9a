//! `@template`: `{{path}}` (HTML-escaped) and `{{{path}}}` (raw); a missing or null value
//! becomes `""` (engage-events.md §2.2).
//!
//! Segment replaces triple braces first, then double braces in the result, so text inserted
//! by the first pass is scanned by the second. A template whose first pass finds nothing is
//! split into pieces once, at validation; the rest are rendered with the two passes.

use std::sync::OnceLock;

use regex::{Captures, Regex};
use serde_json::Value;

use crate::js;
use crate::path::Path;

fn triple() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\{\{\{([^}]+)\}\}\}").unwrap_or_else(|_| unreachable!()))
}

fn double() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\{\{([^}]+)\}\}").unwrap_or_else(|_| unreachable!()))
}

/// A template ready to render.
#[derive(Debug, Clone)]
pub(crate) enum Template {
    /// Pieces of a template with no triple braces.
    Pieces(Vec<Piece>),
    /// A template with triple braces, rendered in two passes.
    TwoPass(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Escaped(Path),
}

impl Template {
    pub(crate) fn compile(src: &str) -> Self {
        if triple().is_match(src) {
            return Template::TwoPass(src.to_owned());
        }
        let mut pieces = Vec::new();
        let mut last = 0;
        for caps in double().captures_iter(src) {
            let (Some(whole), Some(inner)) = (caps.get(0), caps.get(1)) else {
                continue;
            };
            if whole.start() > last {
                pieces.push(Piece::Text(src[last..whole.start()].to_owned()));
            }
            pieces.push(Piece::Escaped(Path::parse_keys(inner.as_str().trim())));
            last = whole.end();
        }
        if last < src.len() {
            pieces.push(Piece::Text(src[last..].to_owned()));
        }
        Template::Pieces(pieces)
    }

    pub(crate) fn render(&self, payload: &Value) -> String {
        match self {
            Template::Pieces(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Escaped(path) => match path.resolve(payload).as_deref() {
                            None | Some(Value::Null) => {}
                            Some(Value::String(s)) => escape_html_into(s, &mut out),
                            Some(other) => out.push_str(&js::to_js_string(Some(other))),
                        },
                    }
                }
                out
            }
            Template::TwoPass(src) => render_two_pass(src, payload),
        }
    }
}

/// Renders a template string computed at run time.
pub(crate) fn render_two_pass(src: &str, payload: &Value) -> String {
    let first = triple().replace_all(src, |c: &Captures<'_>| substitute(c, payload, false));
    double()
        .replace_all(&first, |c: &Captures<'_>| substitute(c, payload, true))
        .into_owned()
}

fn substitute(c: &Captures<'_>, payload: &Value, escape: bool) -> String {
    let inner = c.get(1).map_or("", |m| m.as_str()).trim();
    let path = Path::parse_keys(inner);
    placeholder(path.resolve(payload).as_deref(), escape)
}

fn placeholder(v: Option<&Value>, escape: bool) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if escape => escape_html(s),
        Some(other) => js::to_js_string(Some(other)),
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_html_into(s, &mut out);
    out
}

fn escape_html_into(s: &str, out: &mut String) {
    if !s.contains(['&', '<', '>', '"', '\'', '/', '`', '=']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '/' => out.push_str("&#x2F;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        let compiled = Template::compile(t).render(v);
        // Both render paths must agree.
        assert_eq!(compiled, render_two_pass(t, v));
        compiled
    }

    // engage-events.md §2.2 (@template): missing → "".
    #[test]
    fn placeholders_resolve_paths_and_missing_values_become_empty() {
        let ev = json!({"traits": {"name": "Ana", "n": 3, "nul": null}});
        assert_eq!(
            render(
                "Hi {{traits.name}} ({{ traits.n }}){{traits.nope}}{{traits.nul}}",
                &ev
            ),
            "Hi Ana (3)"
        );
    }

    #[test]
    fn double_braces_escape_html_and_triple_braces_do_not() {
        let ev = json!({"a": "<b>&'"});
        assert_eq!(render("{{a}}", &ev), "&lt;b&gt;&amp;&#39;");
        assert_eq!(render("{{{a}}}", &ev), "<b>&'");
    }

    #[test]
    fn text_inserted_by_triple_braces_is_scanned_again() {
        let ev = json!({"a": "{{b}}", "b": "x"});
        assert_eq!(render("{{{a}}}", &ev), "x");
    }

    #[test]
    fn dollar_prefix_is_not_stripped_in_templates() {
        let ev = json!({"a": "x"});
        assert_eq!(render("{{$.a}}", &ev), "");
    }
}
