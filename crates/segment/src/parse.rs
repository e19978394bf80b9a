//! Parsing bodies: one event, a `/v1/batch` envelope, or NDJSON, with size limits and
//! per-element isolation (design decision 9: one bad element never fails its neighbours; a
//! body that is not JSON or is over the limit fails whole).

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Event, Timestamp};

/// Size limits. Segment's HTTP API documents 32 KB per call and 500 KB per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest accepted event, in bytes of JSON.
    pub max_event_bytes: usize,
    /// Largest accepted batch body, in bytes.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
        }
    }
}

/// A body refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the limit.
    #[error("body of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not a `{"batch": [...]}` envelope.
    #[error("body is not a batch: {0}")]
    NotABatch(String),
}

/// Why one element (of a batch, or one NDJSON line) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ElementError {
    /// The element's position: index in `batch`, or 0-based line number in NDJSON.
    pub index: usize,
    /// The offending field, when one can be named (`"timestamp"`, `"type"`, …).
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub reason: String,
}

impl ElementError {
    fn describe(&self) -> String {
        match &self.field {
            Some(f) => format!("element {}: field `{f}`: {}", self.index, self.reason),
            None => format!("element {}: {}", self.index, self.reason),
        }
    }
}

/// The write key of a batch. Never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct WriteKey(String);

impl WriteKey {
    /// The secret, for authentication checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteKey(<redacted>)")
    }
}

/// A parsed `/v1/batch` body.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `writeKey` from the body, if any.
    pub write_key: Option<WriteKey>,
    /// The envelope's `sentAt`, if present and readable.
    pub sent_at: Option<Timestamp>,
    /// One result per element of `batch`, in order.
    pub elements: Vec<Result<Event, ElementError>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    write_key: Option<&'a RawValue>,
    #[serde(default)]
    sent_at: Option<&'a RawValue>,
    #[serde(default)]
    context: Option<&'a RawValue>,
}

/// Parses a `/v1/batch` body: `{"batch":[...], "writeKey"?, "sentAt"?, "context"?}`.
///
/// A batch-level `context` fills the keys an element's own `context` lacks.
pub fn parse_batch(body: &[u8], limits: &Limits) -> Result<Batch, BodyError> {
    if body.len() > limits.max_batch_bytes {
        return Err(BodyError::TooLarge {
            size: body.len(),
            limit: limits.max_batch_bytes,
        });
    }
    // serde would also read the envelope's fields from a JSON array (`[[...], "key"]`);
    // Segment's API takes only the object form.
    if let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace())
        && first == b'['
    {
        return Err(BodyError::NotABatch(
            "expected an object {\"batch\": [...]}, got an array".into(),
        ));
    }
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            BodyError::NotABatch(e.to_string())
        } else {
            BodyError::NotJson(e.to_string())
        }
    })?;
    let raws = env
        .batch
        .ok_or_else(|| BodyError::NotABatch("missing `batch` array".into()))?;
    let write_key = env
        .write_key
        .and_then(|r| {
            serde_json::from_str::<Option<String>>(r.get())
                .ok()
                .flatten()
        })
        .map(WriteKey);
    let sent_at = env.sent_at.and_then(|r| {
        serde_json::from_str::<Option<Timestamp>>(r.get())
            .ok()
            .flatten()
    });
    let shared_context = env
        .context
        .and_then(|r| serde_json::from_str::<Map<String, Value>>(r.get()).ok())
        .filter(|m| !m.is_empty());
    let elements = raws
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let mut ev = parse_element(raw.get(), i, limits)?;
            if let Some(shared) = &shared_context {
                ev.merge_context(shared);
            }
            Ok(ev)
        })
        .collect();
    Ok(Batch {
        write_key,
        sent_at,
        elements,
    })
}

/// Parses one event body (`/v1/identify`, `/v1/track`, …). Over the event limit or not JSON
/// is an error naming the problem.
pub fn parse_event(body: &[u8], limits: &Limits) -> Result<Event, ElementError> {
    let text = std::str::from_utf8(body).map_err(|_| ElementError {
        index: 0,
        field: None,
        reason: "not UTF-8 text".into(),
    })?;
    parse_element(text, 0, limits)
}

/// Parses NDJSON: one event per line, each line standing alone. Blank lines are skipped but
/// keep their number, so `index` is always the 0-based line number.
pub fn parse_ndjson(body: &[u8], limits: &Limits) -> Vec<Result<Event, ElementError>> {
    ndjson_iter(body, limits).collect()
}

/// [`parse_ndjson`] as a lazy iterator, for large files: nothing is held but the current event.
pub fn ndjson_iter<'a>(
    body: &'a [u8],
    limits: &'a Limits,
) -> impl Iterator<Item = Result<Event, ElementError>> + 'a {
    body.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            Some(match std::str::from_utf8(line) {
                Ok(text) => parse_element(text, i, limits),
                Err(_) => Err(ElementError {
                    index: i,
                    field: None,
                    reason: "line is not UTF-8 text".into(),
                }),
            })
        })
}

/// Parses one element. The typed parse is the fast path; only when it fails is the element
/// re-read as a JSON tree to name the offending field.
pub fn parse_element(text: &str, index: usize, limits: &Limits) -> Result<Event, ElementError> {
    if text.len() > limits.max_event_bytes {
        return Err(ElementError {
            index,
            field: None,
            reason: format!(
                "event of {} bytes is over the {}-byte limit",
                text.len(),
                limits.max_event_bytes
            ),
        });
    }
    serde_json::from_str::<Event>(text).map_err(|e| diagnose(text, index, &e))
}

/// Fields whose type the typed parse checks, with what each must be.
const CHECKED: &[(&str, &str)] = &[
    ("type", "string"),
    ("messageId", "string"),
    ("userId", "string"),
    ("anonymousId", "string"),
    ("event", "string"),
    ("name", "string"),
    ("timestamp", "timestamp"),
    ("sentAt", "timestamp"),
    ("receivedAt", "timestamp"),
    ("traits", "object"),
    ("properties", "object"),
    ("context", "object"),
];

fn diagnose(text: &str, index: usize, err: &serde_json::Error) -> ElementError {
    let at = |field: Option<&str>, reason: String| ElementError {
        index,
        field: field.map(str::to_owned),
        reason,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return at(None, format!("not valid JSON: {e}")),
    };
    let Some(obj) = value.as_object() else {
        return at(None, "not a JSON object".into());
    };
    if !obj.contains_key("type") {
        return at(
            Some("type"),
            "missing; expected \"identify\", \"track\", …".into(),
        );
    }
    for (field, want) in CHECKED {
        let Some(v) = obj.get(*field) else { continue };
        let ok = match (*want, v) {
            (_, Value::Null) => *field != "type",
            ("string", Value::String(_)) => true,
            ("string", Value::Number(n)) => *field != "type" && (n.is_i64() || n.is_u64()),
            ("object", Value::Object(_)) => true,
            ("timestamp", Value::String(s)) => {
                if let Err(e) = Timestamp::parse(s) {
                    return at(Some(field), e.to_string());
                }
                true
            }
            _ => false,
        };
        if !ok {
            return at(
                Some(field),
                format!("expected a {want}, got {}", kind_of(v)),
            );
        }
    }
    at(None, err.to_string())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
