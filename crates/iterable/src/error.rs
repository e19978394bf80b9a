//! What an Iterable answer means for the caller: error classes, lenient error bodies and the
//! client's typed errors.
//!
//! The HTTP status decides first; a body `code` never overrides it, because Iterable answers
//! some errors with `"code": "Success"` (iterable-api.md §7 G2).

use serde_json::Value;

/// What the caller should do with an answer (or a failed attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 2xx: the request was accepted (per-subscriber failures may still be inside).
    Success,
    /// 429, 408, 423, 5xx except 501, timeouts and connection errors: try again later.
    Retryable,
    /// 401 or 403: the key is wrong, disabled or of the wrong type; stop the destination.
    Auth,
    /// 400 whose message names `invalidListId`: the list does not exist (yet, or any more).
    InvalidListId,
    /// Other 400, and 413: something in the request is bad; split it to isolate the culprit.
    Split,
    /// Any other status: reject the request's events with Iterable's message.
    Reject,
}

impl ErrorClass {
    /// True for [`ErrorClass::Retryable`].
    pub fn is_retryable(self) -> bool {
        self == ErrorClass::Retryable
    }
}

/// Classify an HTTP answer by status, looking at the body only to tell `invalidListId` apart.
pub fn classify(status: u16, body: &[u8]) -> ErrorClass {
    match status {
        200..=299 => ErrorClass::Success,
        408 | 423 | 429 => ErrorClass::Retryable,
        501 => ErrorClass::Reject,
        500..=599 => ErrorClass::Retryable,
        401 | 403 => ErrorClass::Auth,
        400 if mentions_invalid_list_id(body) => ErrorClass::InvalidListId,
        400 | 413 => ErrorClass::Split,
        _ => ErrorClass::Reject,
    }
}

/// True when the body (JSON `msg`, or any text) names `invalidListId`.
fn mentions_invalid_list_id(body: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"invalidListId";
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// The longest message kept from an error body; HTML pages and stack traces are cut.
const MAX_MESSAGE_CHARS: usize = 300;

/// An error body parsed as far as it goes: Iterable's `{msg, code, params}`, another JSON
/// shape (`{error, message, code}` and friends), plain text or HTML (iterable-api.md §7 G17).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorBody {
    /// The human-readable message, if one was found.
    pub msg: Option<String>,
    /// Iterable's code (`BadApiKey`, `RateLimitExceeded`, …), if any.
    pub code: Option<String>,
    /// Extra parameters, if any.
    pub params: Option<Value>,
    /// The body as text when it was not JSON (an HTML page is reduced to its title).
    pub text: Option<String>,
}

impl ErrorBody {
    /// Parse any body; never fails.
    pub fn parse(body: &[u8]) -> ErrorBody {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            return Self::from_json(value);
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            return ErrorBody::default();
        }
        let text = html_title(text).unwrap_or(text);
        ErrorBody {
            text: Some(truncate(text)),
            ..ErrorBody::default()
        }
    }

    fn from_json(value: Value) -> ErrorBody {
        match value {
            Value::Object(mut map) => {
                let msg = ["msg", "message", "error"]
                    .iter()
                    .find_map(|k| map.get(*k).and_then(Value::as_str).map(truncate));
                let code = map.get("code").and_then(Value::as_str).map(str::to_owned);
                let params = map
                    .remove("params")
                    .or_else(|| map.remove("data"))
                    .filter(|v| !v.is_null());
                let text = if msg.is_none() && code.is_none() {
                    Some(truncate(&Value::Object(map).to_string()))
                } else {
                    None
                };
                ErrorBody {
                    msg,
                    code,
                    params,
                    text,
                }
            }
            Value::String(s) => ErrorBody {
                text: Some(truncate(&s)),
                ..ErrorBody::default()
            },
            other => ErrorBody {
                text: Some(truncate(&other.to_string())),
                ..ErrorBody::default()
            },
        }
    }

    /// One line for people: the message and the code when there is one, else the text.
    pub fn message(&self) -> Option<String> {
        match (&self.msg, &self.code, &self.text) {
            (Some(m), Some(c), _) if !m.is_empty() && !c.is_empty() => Some(format!("{m} ({c})")),
            (Some(m), _, _) if !m.is_empty() => Some(m.clone()),
            (_, Some(c), _) if !c.is_empty() => Some(c.clone()),
            (_, _, Some(t)) => Some(t.clone()),
            _ => None,
        }
    }
}

/// Describe an HTTP error answer in one line: `HTTP 400: Invalid JSON body (BadJsonBody)`.
pub fn describe_status(status: u16, body: &[u8]) -> String {
    match ErrorBody::parse(body).message() {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}"),
    }
}

fn html_title(text: &str) -> Option<&str> {
    if !text.starts_with('<') {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    text.get(start..end).map(str::trim)
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The request or the connection attempt timed out.
    #[error("request to Iterable timed out: {0}")]
    Timeout(String),
    /// The connection could not be made or broke.
    #[error("could not reach Iterable: {0}")]
    Connect(String),
    /// Anything else below HTTP (TLS, body read).
    #[error("request to Iterable failed: {0}")]
    Other(String),
}

/// Errors of the client's typed methods.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No HTTP answer; always retryable.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Iterable answered with a non-2xx status.
    #[error("Iterable answered {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What to do about it.
        class: ErrorClass,
        /// `HTTP <status>: <Iterable's message>`.
        message: String,
    },
    /// A 2xx answer whose body is not what the API describes.
    #[error("unexpected answer from Iterable to {operation}: {message}")]
    Decode {
        /// The operation (`get lists`, `create list`, …).
        operation: &'static str,
        /// What did not parse.
        message: String,
    },
    /// The client could not be built (bad endpoint, TLS setup).
    #[error("invalid Iterable client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The class of this error; transport failures are retryable, decode failures rejected.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Transport(_) => ErrorClass::Retryable,
            Error::Status { class, .. } => *class,
            Error::Decode { .. } | Error::Config(_) => ErrorClass::Reject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // iterable-api.md §4.1 and §7 G2: the status decides, even when code says Success.
    #[test]
    fn invalid_list_id_is_a_distinct_class_despite_code_success() {
        let body = br#"{"msg":"error.lists.invalidListId(999999999)","code":"Success","params":{"projectId":9079,"listId":999999999}}"#;
        assert_eq!(classify(400, body), ErrorClass::InvalidListId);
        assert_eq!(
            classify(400, br#"{"msg":"x","code":"BadParams"}"#),
            ErrorClass::Split
        );
    }

    // iterable-api.md §4.2, §8.5; issue 3 §8.
    #[test]
    fn status_classes_follow_the_retry_table() {
        for s in [408, 423, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify(s, b""), ErrorClass::Retryable, "{s}");
        }
        assert_eq!(classify(501, b""), ErrorClass::Reject);
        assert_eq!(classify(401, b""), ErrorClass::Auth);
        assert_eq!(classify(403, b""), ErrorClass::Auth);
        assert_eq!(classify(413, b""), ErrorClass::Split);
        assert_eq!(classify(400, b"oops"), ErrorClass::Split);
        for s in [404, 409, 422, 302] {
            assert_eq!(classify(s, b""), ErrorClass::Reject, "{s}");
        }
        assert_eq!(
            classify(200, br#"{"code":"BadParams"}"#),
            ErrorClass::Success
        );
    }

    // A body code must not turn a 2xx into an error or a 5xx into a success.
    #[test]
    fn body_code_never_overrides_status() {
        assert_eq!(
            classify(500, br#"{"msg":"ok","code":"Success"}"#),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(429, br#"{"msg":"error.lists.invalidListId(1)"}"#),
            ErrorClass::Retryable
        );
    }

    // iterable-api.md §4.1: the standard envelope.
    #[test]
    fn standard_error_envelope_is_read() {
        let b = ErrorBody::parse(
            br#"{"msg":"Invalid API key","code":"BadApiKey","params":{"ip":"1.2.3.4"}}"#,
        );
        assert_eq!(b.msg.as_deref(), Some("Invalid API key"));
        assert_eq!(b.code.as_deref(), Some("BadApiKey"));
        assert!(b.params.is_some());
        assert_eq!(b.message().as_deref(), Some("Invalid API key (BadApiKey)"));
    }

    // iterable-api.md §4.1: other JSON shapes (catalog errors) and a string params.
    #[test]
    fn other_json_shapes_are_read() {
        let b = ErrorBody::parse(
            br#"{"error":"NotFound","message":"Catalog not found: x","code":"error.catalogs.notFound","data":{}}"#,
        );
        assert_eq!(b.msg.as_deref(), Some("Catalog not found: x"));
        let b = ErrorBody::parse(br#"{"weird":1}"#);
        assert_eq!(b.message().as_deref(), Some(r#"{"weird":1}"#));
        let b = ErrorBody::parse(
            br#"{"msg":"Exceeded rate limit","code":"RateLimitExceeded","params":"{}"}"#,
        );
        assert_eq!(b.code.as_deref(), Some("RateLimitExceeded"));
    }

    // peers T16: a plain-text 429 must not crash parsing.
    #[test]
    fn plain_text_and_html_bodies_are_read() {
        let b = ErrorBody::parse(b"Rate limit exceeded. Please try again later.");
        assert_eq!(
            b.message().as_deref(),
            Some("Rate limit exceeded. Please try again later.")
        );
        // iterable-api.md §4.1: unknown routes answer an HTML page.
        let b = ErrorBody::parse(
            b"<!DOCTYPE html><html><head><title>Action not found</title></head><body>...</body></html>",
        );
        assert_eq!(b.message().as_deref(), Some("Action not found"));
        assert_eq!(ErrorBody::parse(b"").message(), None);
        assert_eq!(describe_status(502, b""), "HTTP 502");
    }

    #[test]
    fn long_bodies_are_truncated() {
        let long = "x".repeat(5000);
        let m = ErrorBody::parse(long.as_bytes()).message().unwrap();
        assert!(m.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }
}
