//! `@liquid`: Liquid templates of at most 1000 characters, with the tags and filters that
//! Segment disables refused at validation (engage-events.md §2.2).

use std::sync::OnceLock;

use liquid_lib::stdlib;
use serde_json::Value;

use crate::js;
use crate::liquid_view::Lenient;

/// Segment's limit on a `@liquid` template, in characters.
pub const MAX_LIQUID_LENGTH: usize = 1000;

/// Tags Segment disables (loops, includes and `case`).
pub const DISABLED_TAGS: &[&str] = &["case", "for", "include", "layout", "render", "tablerow"];

/// Filters Segment disables.
pub const DISABLED_FILTERS: &[&str] = &[
    "array_to_sentence_string",
    "concat",
    "find",
    "find_exp",
    "find_index",
    "find_index_exp",
    "group_by",
    "group_by_exp",
    "has",
    "has_exp",
    "map",
    "newline_to_br",
    "reject",
    "reject_exp",
    "reverse",
    "sort",
    "sort_natural",
    "uniq",
    "where_exp",
    "type",
];

/// A parsed Liquid template.
pub(crate) struct LiquidTemplate {
    template: Option<liquid::Template>,
}

impl std::fmt::Debug for LiquidTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiquidTemplate")
    }
}

/// The parser holds only the allowed tags and filters, so a disabled one cannot parse even
/// if the friendlier check below missed it.
fn parser() -> Option<&'static liquid::Parser> {
    static PARSER: OnceLock<Option<liquid::Parser>> = OnceLock::new();
    PARSER
        .get_or_init(|| {
            liquid::ParserBuilder::new()
                .tag(stdlib::AssignTag)
                .tag(stdlib::BreakTag)
                .tag(stdlib::ContinueTag)
                .tag(stdlib::CycleTag)
                .tag(stdlib::IncrementTag)
                .tag(stdlib::DecrementTag)
                .block(stdlib::RawBlock)
                .block(stdlib::IfBlock)
                .block(stdlib::UnlessBlock)
                .block(stdlib::IfChangedBlock)
                .block(stdlib::CommentBlock)
                .block(stdlib::CaptureBlock)
                .filter(stdlib::Abs)
                .filter(stdlib::Append)
                .filter(stdlib::AtLeast)
                .filter(stdlib::AtMost)
                .filter(stdlib::Capitalize)
                .filter(stdlib::Ceil)
                .filter(stdlib::Compact)
                .filter(stdlib::Date)
                .filter(stdlib::Default)
                .filter(stdlib::DividedBy)
                .filter(stdlib::Downcase)
                .filter(stdlib::Escape)
                .filter(stdlib::EscapeOnce)
                .filter(stdlib::First)
                .filter(stdlib::Floor)
                .filter(stdlib::Join)
                .filter(stdlib::Last)
                .filter(stdlib::Lstrip)
                .filter(stdlib::Minus)
                .filter(stdlib::Modulo)
                .filter(stdlib::Plus)
                .filter(stdlib::Prepend)
                .filter(stdlib::Remove)
                .filter(stdlib::RemoveFirst)
                .filter(stdlib::Replace)
                .filter(stdlib::ReplaceFirst)
                .filter(stdlib::Round)
                .filter(stdlib::Rstrip)
                .filter(stdlib::Size)
                .filter(stdlib::Slice)
                .filter(stdlib::Split)
                .filter(stdlib::Strip)
                .filter(stdlib::StripHtml)
                .filter(stdlib::StripNewlines)
                .filter(stdlib::Times)
                .filter(stdlib::Truncate)
                .filter(stdlib::TruncateWords)
                .filter(stdlib::Upcase)
                .filter(stdlib::UrlDecode)
                .filter(stdlib::UrlEncode)
                .filter(stdlib::Where)
                .build()
                .ok()
        })
        .as_ref()
}

/// Finds a disabled tag (`{% for`) or filter (`| sort`) to name it in the error.
fn find_disabled(src: &str) -> Option<String> {
    let mut rest = src;
    while let Some(i) = rest.find("{%") {
        let after = rest[i + 2..].trim_start_matches('-').trim_start();
        let word: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if DISABLED_TAGS.contains(&word.as_str()) {
            return Some(format!("tag \"{word}\" is disabled"));
        }
        rest = &rest[i + 2..];
    }
    for (i, _) in src.match_indices('|') {
        let after = src[i + 1..].trim_start();
        let word: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if DISABLED_FILTERS.contains(&word.as_str()) {
            return Some(format!("filter \"{word}\" is disabled"));
        }
    }
    None
}

/// Integer literals too large for an i64 make the Rust Liquid parser panic (found by
/// fuzzing); they are refused here instead. Only markup (`{{ }}`, `{% %}`) is checked.
fn find_oversized_integer(src: &str) -> Option<String> {
    let mut rest = src;
    while let Some(open) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        let body = &rest[open + 2..];
        let close = [body.find("}}"), body.find("%}")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(body.len());
        let markup = &body[..close];
        let bytes = markup.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let fraction = start > 0 && bytes[start - 1] == b'.';
                if !fraction && markup[start..i].parse::<i64>().is_err() {
                    return Some(format!(
                        "@liquid: the number {} is too large",
                        &markup[start..i]
                    ));
                }
            } else {
                i += 1;
            }
        }
        rest = &body[close..];
    }
    None
}

impl LiquidTemplate {
    /// Validates and parses a template.
    pub(crate) fn compile(src: &str) -> Result<Self, String> {
        if js::js_len(src) > MAX_LIQUID_LENGTH {
            return Err(format!(
                "@liquid templates are limited to {MAX_LIQUID_LENGTH} characters"
            ));
        }
        if src.is_empty() {
            return Ok(Self { template: None });
        }
        if let Some(msg) = find_disabled(src) {
            return Err(format!("@liquid: {msg}"));
        }
        if let Some(msg) = find_oversized_integer(src) {
            return Err(msg);
        }
        let parser =
            parser().ok_or_else(|| "@liquid: the template engine failed to start".to_owned())?;
        let template = parser
            .parse(src)
            .map_err(|e| format!("@liquid: {}", first_line(&e.to_string())))?;
        Ok(Self {
            template: Some(template),
        })
    }

    /// Renders against the event.
    pub(crate) fn render(&self, payload: &Value) -> Result<String, String> {
        let Some(template) = &self.template else {
            return Ok(String::new());
        };
        let globals = match payload {
            Value::Object(_) => Lenient::from_json(payload),
            _ => Lenient::Object(Vec::new()),
        };
        template
            .render(&globals)
            .map_err(|e| format!("@liquid: {}", first_line(&e.to_string())))
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}
