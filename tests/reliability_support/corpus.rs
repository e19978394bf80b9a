//! The bad-input corpus (`tests/corpus/`): reading `cases.toml` and building the bodies that
//! put each bad element between two valid neighbours.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

/// The audience every corpus event enters.
pub const AUDIENCE: &str = "corpus";

/// One case of `cases.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Path under `tests/corpus/`.
    pub file: String,
    /// `element` (one JSON value, put inside a batch and on an NDJSON line), `line` (the bytes
    /// of one NDJSON line) or `body` (a whole `/v1/batch` body).
    pub form: String,
    /// `delivered`, `skipped`, `rejected` (elements and lines); `refused` or `ok` (bodies).
    pub expect: String,
    /// The reason code (`bad_input`, …) or, for bodies, the error code of the 400.
    #[serde(default)]
    pub code: Option<String>,
    /// Text the reason must contain (case-insensitive), so that it names the problem.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// Bodies: the HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Bodies: `gzip` when the file is sent with `Content-Encoding: gzip`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Bodies answered 200: how many elements the reply counts.
    #[serde(default)]
    pub received: Option<usize>,
    /// Bodies answered 200: how many of those elements are rejected.
    #[serde(default)]
    pub rejected: Option<usize>,
    /// Why the case is there.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Deserialize)]
struct Manifest {
    case: Vec<Case>,
}

/// The corpus folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every case, in manifest order; checks that every file in the corpus is listed once.
pub fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("cases.toml")).expect("cases.toml");
    let m: Manifest = toml::from_str(&text).expect("cases.toml parses");
    let mut listed: Vec<&str> = m.case.iter().map(|c| c.file.as_str()).collect();
    listed.sort_unstable();
    let before = listed.len();
    listed.dedup();
    assert_eq!(before, listed.len(), "a file is listed twice in cases.toml");
    for sub in ["element", "line", "body"] {
        for entry in std::fs::read_dir(dir().join(sub)).expect("corpus folder") {
            let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(
                listed.binary_search(&name.as_str()).is_ok(),
                "{name} has no expected outcome in cases.toml"
            );
        }
    }
    m.case
}

/// The file's bytes.
pub fn bytes(case: &Case) -> Vec<u8> {
    std::fs::read(dir().join(&case.file)).expect("corpus file")
}

/// The file without its trailing newline (element and line files end with one).
pub fn trimmed(case: &Case) -> Vec<u8> {
    let mut b = bytes(case);
    while b.last() == Some(&b'\n') {
        b.pop();
    }
    b
}

/// A valid neighbour: user `user` enters the corpus audience.
pub fn neighbour(user: &str) -> Value {
    json!({
        "type": "identify",
        "messageId": format!("m-{user}"),
        "userId": user,
        "timestamp": "2026-01-01T00:00:00Z",
        "traits": { "email": format!("{user}@example.com"), AUDIENCE: true },
        "context": { "personas": { "computation_class": "audience", "computation_key": AUDIENCE } }
    })
}

/// A short stable name of a case for user ids (`element/user-id-padded.json` →
/// `user-id-padded`).
pub fn slug(case: &Case) -> String {
    let name = case.file.rsplit('/').next().unwrap_or(&case.file);
    name.split('.').next().unwrap_or(name).to_owned()
}

/// The neighbours of a case, before and after it.
pub fn neighbours(case: &Case, via: &str) -> (String, String) {
    let s = slug(case);
    (format!("{via}-{s}-before"), format!("{via}-{s}-after"))
}

/// `{"batch": [before, ELEMENT, after]}` with the element's text spliced in verbatim.
pub fn batch_around(case: &Case, via: &str) -> Vec<u8> {
    let (a, b) = neighbours(case, via);
    let mut body = br#"{"batch": ["#.to_vec();
    body.extend_from_slice(neighbour(&a).to_string().as_bytes());
    body.extend_from_slice(b", ");
    body.extend_from_slice(&trimmed(case));
    body.extend_from_slice(b", ");
    body.extend_from_slice(neighbour(&b).to_string().as_bytes());
    body.extend_from_slice(b"]}");
    body
}

/// Three NDJSON lines: before, the case's bytes, after.
pub fn ndjson_around(case: &Case, via: &str) -> Vec<u8> {
    let (a, b) = neighbours(case, via);
    let mut body = neighbour(&a).to_string().into_bytes();
    body.push(b'\n');
    body.extend_from_slice(&trimmed(case));
    body.push(b'\n');
    body.extend_from_slice(neighbour(&b).to_string().as_bytes());
    body.push(b'\n');
    body
}

/// Checks a reason against the case: code and text.
pub fn check_reason(case: &Case, code: &str, message: &str) -> Result<(), String> {
    if let Some(want) = &case.code
        && want != code
    {
        return Err(format!("code {code:?}, want {want:?} ({message})"));
    }
    if message.trim().is_empty() {
        return Err("empty reason".into());
    }
    if let Some(want) = &case.reason_contains
        && !message.to_lowercase().contains(&want.to_lowercase())
    {
        return Err(format!("reason {message:?} does not mention {want:?}"));
    }
    Ok(())
}
