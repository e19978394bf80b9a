//! Who may call: the write key that selects a destination at ingest, and the admin bearer
//! token. Every comparison is constant-time, and no secret is ever logged or echoed.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use delivery::Secret;
use subtle::ConstantTimeEq;

/// Write keys and the destinations they select.
#[derive(Clone)]
pub struct WriteKeys {
    keys: Vec<(Secret, String)>,
}

impl std::fmt::Debug for WriteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteKeys")
            .field(
                "destinations",
                &self.keys.iter().map(|(_, d)| d).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WriteKeys {
    /// The write keys of a configuration (destinations without one cannot be reached by
    /// ingest).
    pub fn from_config(config: &delivery::Config) -> Self {
        WriteKeys {
            keys: config
                .destinations
                .iter()
                .filter_map(|d| d.write_key.clone().map(|k| (k, d.name.clone())))
                .collect(),
        }
    }

    /// The destination this key selects. Compares against every key without stopping early,
    /// so that timing tells nothing about which key, or which prefix, is right.
    pub fn destination(&self, key: &str) -> Option<&str> {
        let mut found: Option<&str> = None;
        for (secret, dest) in &self.keys {
            if ct_eq(secret.expose(), key) {
                found = Some(dest);
            }
        }
        found.filter(|_| !key.is_empty())
    }
}

/// Constant-time equality of two strings (the length may leak, the content does not).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The write key of a Basic `Authorization` header (key as user name, password empty or
/// ignored), as Segment's clients send it. `None` when the header is absent or not Basic.
pub fn basic_write_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Some(user.to_owned())
}

/// Whether the request carries `Authorization: Bearer <token>` equal to the admin token.
pub fn bearer_ok(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && ct_eq(token.expose(), given.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn basic_auth_user_name_is_the_write_key() {
        // "wk-1:" base64-encoded, as segment-analytics-python sends it.
        let h = headers("Basic d2stMTo=");
        assert_eq!(basic_write_key(&h).as_deref(), Some("wk-1"));
        assert_eq!(basic_write_key(&headers("Bearer x")), None);
        assert_eq!(basic_write_key(&HeaderMap::new()), None);
    }

    #[test]
    fn write_key_selects_its_destination_and_nothing_else() {
        let keys = WriteKeys {
            keys: vec![
                (Secret::new("wk-a"), "a".into()),
                (Secret::new("wk-b"), "b".into()),
            ],
        };
        assert_eq!(keys.destination("wk-b"), Some("b"));
        assert_eq!(keys.destination("wk-a"), Some("a"));
        assert_eq!(keys.destination("wk-"), None);
        assert_eq!(keys.destination(""), None);
        assert!(!format!("{keys:?}").contains("wk-a"));
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        let t = Secret::new("adm-token");
        assert!(bearer_ok(&headers("Bearer adm-token"), &t));
        assert!(!bearer_ok(&headers("Bearer adm-toke"), &t));
        assert!(!bearer_ok(&headers("Basic adm-token"), &t));
        assert!(!bearer_ok(&HeaderMap::new(), &t));
    }
}
