//! Reading a request body: the size limit, and gzip (`Content-Encoding: gzip`), decoded with
//! the same limit so that a small compressed body cannot expand without bound.

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, header};

use crate::error::ApiError;

/// Reads the whole body, decoding gzip, refusing anything over `limit` bytes once decoded.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding {other:?} is not supported (use gzip or none)"),
            ));
        }
    };
    // A compressed body is never larger than what it decodes to, except for tiny bodies: the
    // raw limit leaves room for gzip's header.
    let raw_limit = if gzip { limit + 1024 } else { limit };
    let raw = axum::body::to_bytes(body, raw_limit)
        .await
        .map_err(|e| too_large_or_unreadable(&e, limit))?;
    if !gzip {
        return Ok(raw.to_vec());
    }
    gunzip(&raw, limit)
}

fn too_large_or_unreadable(e: &axum::Error, limit: usize) -> ApiError {
    // `to_bytes` fails with a length-limit error, or when the connection broke mid-body.
    let text = e.to_string();
    if text.contains("length limit") {
        over_limit(limit)
    } else {
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    }
}

/// The 400 for a body over the limit.
pub fn over_limit(limit: usize) -> ApiError {
    ApiError::bad_request(
        "body_too_large",
        format!(
            "body is over the {} KB limit (Segment's limits: 32 KB per event, 500 KB per batch)",
            limit / 1024
        ),
    )
}

/// Decodes gzip, refusing output over `limit` and truncated or corrupt streams.
pub fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit + 1));
    let decoder = flate2::read::MultiGzDecoder::new(raw);
    match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(over_limit(limit)),
        Ok(_) => Ok(out),
        Err(_) => Err(ApiError::bad_request(
            "bad_gzip",
            "the body is marked Content-Encoding: gzip but is not a complete gzip stream",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trips_under_the_limit() {
        assert_eq!(
            gunzip(&gz(b"{\"batch\":[]}"), 100).unwrap(),
            b"{\"batch\":[]}"
        );
    }

    #[test]
    fn truncated_gzip_is_a_bad_request() {
        let full = gz(&[b'a'; 5000]);
        let err = gunzip(&full[..full.len() - 6], 10_000).unwrap_err();
        assert_eq!(err.code, "bad_gzip");
        assert_eq!(err.status, 400);
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let err = gunzip(&gz(&vec![b' '; 2_000_000]), 500 * 1024).unwrap_err();
        assert_eq!(err.code, "body_too_large");
    }
}
